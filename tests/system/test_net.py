"""Guest networking: virtio-net with TAP (ifup/ifdown scripts, Linux bridges), user mode
(libslirp: DHCP, TFTP, hostfwd), socket links, derived and exclusive MAC addresses.
The guest probe's virtio-net driver and responder (tests/guest/probe/net.c) run the
guest side, under kestrel and, for the same scenarios, QEMU 7.2. Every TAP and bridge
lives in a network namespace the test creates and deletes (netns.py)."""
import os
import random
import re
import socket
import subprocess
import time
import zlib

import pytest

from conftest import KESTREL, QEMU, Session, kestrel, need_qemu, probe_lines, qemu
from netns import Netns, bridge_scripts, unique, write_script

BASE = ["-m", "128m", "-nographic"]
QEMU_BASE = ["-M", "pc", "-m", "128m", "-nographic", "-no-reboot"]


@pytest.fixture
def netns():
    spaces = []

    def make():
        ns = Netns()
        spaces.append(ns)
        return ns

    yield make
    for ns in spaces:
        ns.close()


@pytest.fixture
def vms():
    started = []

    def start(argv):
        s = Session(argv)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()


def random_mac():
    return "52:54:00:%02x:%02x:%02x" % (0xe0, random.randrange(256), random.randrange(256))


def vmm(kind, probe, *args, scenario):
    if kind == "qemu":
        return [*QEMU, *QEMU_BASE, *args, "-kernel", probe, "-append", f"probe={scenario}"]
    return [str(KESTREL), *BASE, *args, "-kernel", probe, "-append", f"probe={scenario}"]


def tap_args(kind, ifname, up, down, mac):
    return ["-netdev", f"tap,id=n0,ifname={ifname},script={up},downscript={down}",
            "-device", f"virtio-net-pci,netdev=n0,mac={mac}"]


def finish(s, timeout=60):
    status = s.wait(timeout=timeout)
    return status, probe_lines(s.text())


# ---- TAP on a bridge ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_probe_on_a_bridge_answers_ping(kind, probe, netns, vms, tmp_path):
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, tap = unique("kbr"), unique("ktap")
    ns.bridge(br, "10.77.0.1/24")
    up, down, log = bridge_scripts(tmp_path, br)
    s = vms(ns.argv(*vmm(kind, probe, *tap_args(kind, tap, up, down, random_mac()),
                         scenario="net-respond,ip=10.77.0.2,count=3,timeout=60")))
    s.expect(r"probe: net: ready", timeout=60)
    assert ns.has_link(tap)
    assert f"master {br}" in ns.run("ip", "link", "show", tap).stdout
    ping = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "5", "10.77.0.2", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "3 received" in ping.stdout
    status, lines = finish(s)
    assert status == 0, s.text()
    assert "probe: net: answered 3 icmp 0 udp 1 arp" in lines or any(
        re.match(r"probe: net: answered 3 icmp 0 udp \d+ arp", l) for l in lines), lines
    assert "probe: PASS" in lines
    # The downscript ran on exit, with the TAP still there; then the TAP went away.
    assert log.read_text().split("\n")[:2] == [f"up {tap}", f"down {tap}"]
    assert not ns.has_link(tap)


@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_two_probes_on_one_bridge_exchange_frames(kind, probe, netns, vms, tmp_path):
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, tap_a, tap_b = unique("kbr"), unique("ka"), unique("kb")
    ns.bridge(br, "10.78.0.1/24")
    up, down, _ = bridge_scripts(tmp_path, br)
    a = vms(ns.argv(*vmm(kind, probe, *tap_args(kind, tap_a, up, down, random_mac()),
                         scenario="net-respond,ip=10.78.0.2,timeout=60")))
    a.expect(r"probe: net: ready", timeout=60)
    b = vms(ns.argv(*vmm(kind, probe, *tap_args(kind, tap_b, up, down, random_mac()),
                         scenario="net-send,ip=10.78.0.3,peer=10.78.0.2,count=20,quit=1")))
    status_b, lines_b = finish(b)
    status_a, lines_a = finish(a)
    assert status_b == 0 and "probe: net: sent 20 got 20 echoes" in lines_b, b.text()
    assert status_a == 0 and any(re.match(r"probe: net: answered 0 icmp 21 udp \d+ arp \(quit\)", l)
                                 for l in lines_a), a.text()


def test_legacy_net_options_join_a_hub(probe, netns, vms, tmp_path):
    """-net nic,vlan=1 + -net tap,vlan=1: the NIC and the TAP meet on hub 1."""
    ns = netns()
    br, tap = unique("kbr"), unique("ktap")
    ns.bridge(br, "10.79.0.1/24")
    up, down, _ = bridge_scripts(tmp_path, br)
    s = vms(ns.argv(*vmm("kestrel", probe,
                         "-net", f"nic,vlan=1,model=virtio,macaddr={random_mac()}",
                         "-net", f"tap,vlan=1,ifname={tap},script={up},downscript={down}",
                         scenario="net-respond,ip=10.79.0.2,count=2,timeout=60")))
    s.expect(r"probe: net: ready", timeout=60)
    assert ns.run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.79.0.2",
                  check=False).returncode == 0
    status, lines = finish(s)
    assert status == 0 and "probe: PASS" in lines, s.text()


def test_failing_ifup_script_stops_start_up(probe, netns, tmp_path):
    ns = netns()
    tap = unique("ktap")
    up = write_script(tmp_path / "ifup-fails", 'echo "ifup ran for $1"; exit 7\n')
    r = ns.run(*vmm("kestrel", probe, "-netdev", f"tap,id=n0,ifname={tap},script={up},downscript=no",
                    "-device", "virtio-net-pci,netdev=n0", scenario="hello"), check=False)
    assert r.returncode == 1
    assert f"network script {up} failed with status 7" in r.stderr
    assert f"ifup ran for {tap}" in r.stdout      # the script got the interface as $1
    assert "probe:" not in r.stdout                # the guest never started
    assert not ns.has_link(tap)


def test_missing_default_ifup_script_is_named(probe, netns):
    """Without script=, /etc/kestrel-ifup runs (QEMU's /etc/qemu-ifup rule)."""
    if os.path.exists("/etc/kestrel-ifup"):
        pytest.skip("/etc/kestrel-ifup exists on this host")
    ns = netns()
    r = ns.run(*vmm("kestrel", probe, "-netdev", f"tap,id=n0,ifname={unique('kt')}",
                    "-device", "virtio-net-pci,netdev=n0", scenario="hello"), check=False)
    assert r.returncode == 1
    assert "could not launch network script /etc/kestrel-ifup: No such file or directory" in r.stderr


def test_vhost_on_says_why_it_cannot(probe, netns):
    ns = netns()
    r = ns.run(*vmm("kestrel", probe, "-netdev", f"tap,id=n0,ifname={unique('kt')},script=no,"
                    "downscript=no,vhost=on", "-device", "virtio-net-pci,netdev=n0",
                    scenario="hello"), check=False)
    assert r.returncode == 1
    assert "vhost=on: /dev/vhost-net" in r.stderr


def test_nic_model_help_and_bad_model(probe):
    status, out, err = kestrel("-net", "nic,model=help")
    assert status == 0 and "virtio-net-pci" in out
    status, out, err = kestrel("-net", "nic,model=e1000", "-kernel", probe)
    assert status == 1
    assert "unsupported NIC model 'e1000'" in err and "virtio-net-pci" in err


# ---- user mode (libslirp) -------------------------------------------------------

@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_user_mode_dhcp_lease(kind, probe):
    if kind == "qemu":
        need_qemu()
    run = qemu if kind == "qemu" else kestrel
    base = QEMU_BASE if kind == "qemu" else BASE
    status, out, err = run(*base, "-netdev", "user,id=u0", "-device", "virtio-net-pci,netdev=u0",
                           "-kernel", probe, "-append", "probe=net-dhcp,timeout=20", timeout=60)
    lines = probe_lines(out)
    assert status == 0, err
    assert ("probe: net: dhcp: ip 10.0.2.15 mask 255.255.255.0 router 10.0.2.2 dns 10.0.2.3 "
            "server 10.0.2.2") in lines
    # net=, host=, dns= and dhcpstart= move the network.
    status, out, err = run(*base, "-netdev", "user,id=u0,net=192.168.76.0/24,host=192.168.76.9,"
                           "dns=192.168.76.8,dhcpstart=192.168.76.40",
                           "-device", "virtio-net-pci,netdev=u0", "-kernel", probe,
                           "-append", "probe=net-dhcp,timeout=20", timeout=60)
    assert status == 0, err
    assert ("probe: net: dhcp: ip 192.168.76.40 mask 255.255.255.0 router 192.168.76.9 "
            "dns 192.168.76.8 server 192.168.76.9") in probe_lines(out)


@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_user_mode_tftp_serves_the_bootfile(kind, probe, tmp_path):
    if kind == "qemu":
        need_qemu()
    data = os.urandom(100_000 + 123)
    (tmp_path / "boot.bin").write_bytes(data)
    run = qemu if kind == "qemu" else kestrel
    base = QEMU_BASE if kind == "qemu" else BASE
    status, out, err = run(*base, "-netdev", f"user,id=u0,tftp={tmp_path},bootfile=boot.bin",
                           "-device", "virtio-net-pci,netdev=u0", "-kernel", probe,
                           "-append", "probe=net-tftp,timeout=30", timeout=90)
    lines = probe_lines(out)
    assert status == 0, err + out
    assert any(l.endswith("bootfile boot.bin") for l in lines), lines
    assert f"probe: net: tftp: boot.bin {len(data)} bytes crc32 0x{zlib.crc32(data):08x}" in lines


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_hostfwd_udp_reaches_the_probe_echo(kind, probe, vms):
    if kind == "qemu":
        need_qemu()
    port = free_udp_port()
    s = vms(vmm(kind, probe, "-netdev", f"user,id=u0,hostfwd=udp:127.0.0.1:{port}-:7",
                "-device", "virtio-net-pci,netdev=u0", scenario="net-respond,timeout=60"))
    s.expect(r"probe: net: ready", timeout=60)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(1.0)
        for i in range(5):
            msg = f"hello {i}".encode()
            for _ in range(5):
                c.sendto(msg, ("127.0.0.1", port))
                try:
                    reply, _ = c.recvfrom(2048)
                    break
                except socket.timeout:
                    continue
            else:
                pytest.fail(f"no echo for {msg!r}; output:\n{s.text()}")
            assert reply == msg
        c.sendto(b"quit", ("127.0.0.1", port))
    status, lines = finish(s)
    assert status == 0, s.text()
    assert any(re.match(r"probe: net: answered 0 icmp [5-9]\d* udp \d+ arp \(quit\)", l)
               for l in lines), lines


# ---- socket links and MAC addresses -----------------------------------------------

def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_socket_listen_connect_links_two_vms(probe, vms):
    port = free_tcp_port()
    a = vms(vmm("kestrel", probe, "-name", "sock-a", "-netdev",
                f"socket,id=s0,listen=127.0.0.1:{port}", "-device", "virtio-net-pci,netdev=s0",
                scenario="net-respond,ip=10.80.0.2,timeout=60"))
    a.expect(r"probe: net: ready", timeout=60)
    b = vms(vmm("kestrel", probe, "-name", "sock-b", "-netdev",
                f"socket,id=s0,connect=127.0.0.1:{port}", "-device", "virtio-net-pci,netdev=s0",
                scenario="net-send,ip=10.80.0.3,peer=10.80.0.2,count=10,quit=1"))
    status_b, lines_b = finish(b)
    status_a, lines_a = finish(a)
    assert status_b == 0 and "probe: net: sent 10 got 10 echoes" in lines_b, b.text()
    assert status_a == 0 and "probe: PASS" in lines_a, a.text()


def probe_mac(*args):
    status, out, err = kestrel(*BASE, *args, "-kernel", str(KESTREL.parents[1] / "tests/guest/probe/probe.elf"),
                               "-append", "probe=net-respond,ip=10.0.0.9,timeout=0")
    assert status == 0, err
    macs = [l.split()[3] for l in probe_lines(out) if l.startswith("probe: net: mac ")]
    return macs


def test_derived_mac_is_stable_per_vm_and_nic(probe):
    nic = ["-netdev", "user,id=u0", "-device", "virtio-net-pci,netdev=u0"]
    a1 = probe_mac("-name", "alpha", *nic)
    a2 = probe_mac("-name", "alpha", *nic)
    b = probe_mac("-name", "beta", *nic)
    u = probe_mac("-name", "alpha", "-uuid", "6b657374-7265-6c00-0000-000000000001", *nic)
    assert a1 == a2 and len(a1) == 1
    assert a1[0].startswith("52:54:00:") and a1[0] != "52:54:00:12:34:56"
    assert b[0].startswith("52:54:00:") and b[0] != a1[0]
    assert u[0] != a1[0]                       # the UUID, when given, names the VM
    # Without a name or UUID: QEMU's default.
    assert probe_mac(*nic) == ["52:54:00:12:34:56"]
    # An explicit MAC wins.
    assert probe_mac("-name", "alpha", "-netdev", "user,id=u0", "-device",
                     "virtio-net-pci,netdev=u0,mac=52:54:00:aa:bb:cc") == ["52:54:00:aa:bb:cc"]


def test_duplicate_mac_refused_unless_allowed(probe, vms):
    mac = random_mac()
    port = free_tcp_port()
    a = vms(vmm("kestrel", probe, "-name", "holder", "-netdev",
                f"socket,id=s0,listen=127.0.0.1:{port}",
                "-device", f"virtio-net-pci,netdev=s0,mac={mac}",
                scenario="net-respond,ip=10.81.0.2,timeout=60"))
    a.expect(r"probe: net: ready", timeout=60)
    second = ["-name", "second", "-netdev", f"socket,id=s0,listen=127.0.0.1:{free_tcp_port()}"]
    status, out, err = kestrel(*BASE, *second, "-device", f"virtio-net-pci,netdev=s0,mac={mac}",
                               "-kernel", probe, "-append", "probe=hello")
    assert status == 1
    assert f"MAC address {mac} is already in use by another running VM " \
           f"(pid {a.proc.pid}, name holder)" in err
    assert "dup=allow" in err and "probe:" not in out
    status, out, err = kestrel(*BASE, *second, "-device",
                               f"virtio-net-pci,netdev=s0,mac={mac},dup=allow",
                               "-kernel", probe, "-append", "probe=hello")
    assert status == 0 and "probe: PASS" in out, err
    # Once the holder is gone, the MAC is free again.
    a.kill()
    status, out, err = kestrel(*BASE, *second, "-device", f"virtio-net-pci,netdev=s0,mac={mac}",
                               "-kernel", probe, "-append", "probe=hello")
    assert status == 0, err
