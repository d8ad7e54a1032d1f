"""The four host network models of the seed (isolated, routed, NAT, bridged), each set up
by contrib/kestrel-netmodel inside network namespaces the test creates and deletes, with
probe VMs attached through contrib/kestrel-ifup and kestrel-ifdown, carrying probe traffic
the way each model promises (and not the way it forbids)."""
import os
import subprocess
import time

import pytest

from conftest import KESTREL, ROOT, Session, probe_lines
from netns import Netns, unique

pytestmark = pytest.mark.guest  # every test here starts a guest

CONTRIB = ROOT / "contrib"
NETMODEL = str(CONTRIB / "kestrel-netmodel")

UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 7))
log = open(sys.argv[1], "a", buffering=1)
while True:
    data, peer = s.recvfrom(2048)
    log.write(f"{peer[0]} {data.decode(errors='replace')}\\n")
    s.sendto(data, peer)
"""


@pytest.fixture
def env():
    """Namespaces, VMs and helper processes, all removed at the end."""
    class Env:
        def __init__(self):
            self.spaces, self.procs = [], []

        def ns(self):
            n = Netns()
            self.spaces.append(n)
            return n

        def start(self, argv, **kw):
            s = Session(argv)
            self.procs.append(s)
            return s

    e = Env()
    yield e
    for p in e.procs:
        p.kill()
    for n in e.spaces:
        n.close()


def vm(host, bridge, probe, name, scenario):
    env_argv = ["env", f"KESTREL_BRIDGE={bridge}"]
    return host.argv(*env_argv, str(KESTREL), "-m", "128m", "-nographic", "-name", name,
                     "-netdev", f"tap,id=n0,ifname={unique('kt')},"
                     f"script={CONTRIB / 'kestrel-ifup'},downscript={CONTRIB / 'kestrel-ifdown'}",
                     "-device", "virtio-net-pci,netdev=n0",
                     "-kernel", probe, "-append", f"probe={scenario}")


def veth(a, a_name, b, b_name):
    """A veth pair between namespaces a and b."""
    a.run("ip", "link", "add", a_name, "type", "veth", "peer", "name", b_name, "netns", b.name)
    a.run("ip", "link", "set", a_name, "up")
    b.run("ip", "link", "set", b_name, "up")


def done(s):
    status = s.wait(timeout=60)
    return status, probe_lines(s.text())


def test_isolated_vms_see_each_other_but_not_the_host(probe, env):
    host = env.ns()
    br = unique("kbr")
    host.run(NETMODEL, "isolated", "up", br)
    a = env.start(vm(host, br, probe, "iso-a", "net-respond,ip=10.90.0.2,timeout=60"))
    a.expect("probe: net: ready", timeout=60)
    b = env.start(vm(host, br, probe, "iso-b",
                     "net-send,ip=10.90.0.3,peer=10.90.0.2,count=5,quit=1"))
    status_b, lines_b = done(b)
    assert status_b == 0 and "probe: net: sent 5 got 5 echoes" in lines_b, b.text()
    assert done(a)[0] == 0
    # The host has no address on the bridge, hence no way in.
    r = host.run("ping", "-c", "1", "-W", "1", "10.90.0.2", check=False)
    assert r.returncode != 0
    host.run(NETMODEL, "isolated", "down", br)
    assert not host.has_link(br)


def test_routed_vms_are_reachable_by_their_own_address(probe, env):
    host, outside = env.ns(), env.ns()
    br, up, out = unique("kbr"), unique("kup"), unique("kout")
    host.run(NETMODEL, "routed", "up", br, "10.91.0.1/24")
    veth(host, up, outside, out)
    host.run("ip", "addr", "add", "192.168.200.1/24", "dev", up)
    outside.run("ip", "addr", "add", "192.168.200.2/24", "dev", out)
    outside.run("ip", "route", "add", "10.91.0.0/24", "via", "192.168.200.1")
    a = env.start(vm(host, br, probe, "routed-a", "net-respond,ip=10.91.0.2,count=2,timeout=60"))
    a.expect("probe: net: ready", timeout=60)
    r = outside.run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.91.0.2", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "from 10.91.0.2" in r.stdout           # the VM's own address, routed, not NATed
    status, lines = done(a)
    assert status == 0 and "probe: PASS" in lines, a.text()
    host.run(NETMODEL, "routed", "down", br)


def test_nat_vms_reach_out_as_the_host_and_nothing_reaches_in(probe, env, tmp_path):
    host, outside = env.ns(), env.ns()
    br, up, out = unique("kbr"), unique("kup"), unique("kout")
    host.run(NETMODEL, "nat", "up", br, "10.92.0.1/24")
    veth(host, up, outside, out)
    host.run("ip", "addr", "add", "192.168.201.1/24", "dev", up)
    outside.run("ip", "addr", "add", "192.168.201.2/24", "dev", out)
    log = tmp_path / "echo.log"
    log.write_text("")
    server = subprocess.Popen(outside.argv("python3", "-c", UDP_ECHO, log))
    try:
        time.sleep(0.5)
        b = env.start(vm(host, br, probe, "nat-b",
                         "net-send,ip=10.92.0.2,peer=192.168.201.2,gw=10.92.0.1,count=5"))
        status, lines = done(b)
        assert status == 0 and "probe: net: sent 5 got 5 echoes" in lines, b.text()
        sources = {l.split()[0] for l in log.read_text().splitlines()}
        assert sources == {"192.168.201.1"}        # masqueraded as the host
    finally:
        server.kill()
        server.wait()
    # No route from outside to the VM subnet: NAT lets nothing in.
    r = outside.run("ping", "-c", "1", "-W", "1", "10.92.0.2", check=False)
    assert r.returncode != 0
    host.run(NETMODEL, "nat", "down", br)
    assert "kestrel_nat" not in host.run("nft", "list", "tables").stdout


def test_bridged_vms_are_peers_on_the_lan(probe, env):
    host, lan = env.ns(), env.ns()
    br, up, other = unique("kbr"), unique("kup"), unique("klan")
    veth(host, up, lan, other)
    host.run("ip", "addr", "add", "10.93.0.1/24", "dev", up)
    lan.run("ip", "addr", "add", "10.93.0.5/24", "dev", other)
    host.run(NETMODEL, "bridged", "up", br, up, "10.93.0.1/24")
    a = env.start(vm(host, br, probe, "bridged-a", "net-respond,ip=10.93.0.2,count=4,timeout=60"))
    a.expect("probe: net: ready", timeout=60)
    # Another machine on the LAN reaches the VM directly (same subnet, no router)...
    r = lan.run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.93.0.2", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    neigh = lan.run("ip", "neigh", "show", "10.93.0.2").stdout
    assert "lladdr 52:54:00:" in neigh              # resolved by ARP: the VM's own MAC
    # ...and so does the host, through the bridge that now holds its address.
    r = host.run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.93.0.2", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    status, lines = done(a)
    assert status == 0 and "probe: PASS" in lines, a.text()
    host.run(NETMODEL, "bridged", "down", br)
