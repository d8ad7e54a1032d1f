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
import zlib

import pytest

from conftest import KESTREL, QEMU, kestrel, need_qemu, probe_lines, qemu
from netns import Netns, unique, write_script
from qmp_client import QMP

BASE = ["-m", "128m", "-nographic"]
# Each scenario under kestrel and, marked "qemu", under the reference QEMU 7.2.
KINDS = ["kestrel", pytest.param("qemu", marks=pytest.mark.qemu)]
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
def vms(session):
    """conftest's session fixture: VMs started by a test are killed after it."""
    return session


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
    # stderr shares the pipe: a log line (written whole) may land inside a serial line.
    return status, probe_lines(re.sub(r"kestrel: [^\n]*\n", "", s.text()))


# ---- TAP on a bridge ---------------------------------------------------------------

@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
def test_probe_on_a_bridge_answers_ping(kind, probe, netns, vms, tmp_path):
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, up, down, log = ns.bridge_with_scripts(tmp_path, "10.77.0.1/24")
    tap = unique("ktap")
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


@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
def test_two_probes_on_one_bridge_exchange_frames(kind, probe, netns, vms, tmp_path):
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, up, down, _ = ns.bridge_with_scripts(tmp_path, "10.78.0.1/24")
    tap_a, tap_b = unique("ka"), unique("kb")
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


@pytest.mark.guest
def test_legacy_net_options_join_a_hub(probe, netns, vms, tmp_path):
    """-net nic,vlan=1 + -net tap,vlan=1: the NIC and the TAP meet on hub 1."""
    ns = netns()
    br, up, down, _ = ns.bridge_with_scripts(tmp_path, "10.79.0.1/24")
    tap = unique("ktap")
    s = vms(ns.argv(*vmm("kestrel", probe,
                         "-net", f"nic,vlan=1,model=virtio,macaddr={random_mac()}",
                         "-net", f"tap,vlan=1,ifname={tap},script={up},downscript={down}",
                         scenario="net-respond,ip=10.79.0.2,count=2,timeout=60")))
    s.expect(r"probe: net: ready", timeout=60)
    assert ns.run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.79.0.2",
                  check=False).returncode == 0
    status, lines = finish(s)
    assert status == 0 and "probe: PASS" in lines, s.text()


@pytest.mark.guest
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


@pytest.mark.guest
def test_missing_default_ifup_script_is_named(probe, netns):
    """Without script=, /etc/kestrel-ifup runs (QEMU's /etc/qemu-ifup rule)."""
    if os.path.exists("/etc/kestrel-ifup"):
        pytest.skip("/etc/kestrel-ifup exists on this host")
    ns = netns()
    r = ns.run(*vmm("kestrel", probe, "-netdev", f"tap,id=n0,ifname={unique('kt')}",
                    "-device", "virtio-net-pci,netdev=n0", scenario="hello"), check=False)
    assert r.returncode == 1
    assert "could not launch network script /etc/kestrel-ifup: No such file or directory" in r.stderr


HAVE_VHOST = os.path.exists("/dev/vhost-net")
NO_VHOST = "/dev/vhost-net is missing on this host (no vhost_net module): vhost=on not exercised"


@pytest.mark.guest
@pytest.mark.skipif(HAVE_VHOST, reason="/dev/vhost-net exists here: vhost=on works (test_vhost_*)")
@pytest.mark.parametrize("opt", ["vhost=on", "vhostforce=on"])
def test_vhost_on_says_why_it_cannot(probe, netns, opt):
    ns = netns()
    r = ns.run(*vmm("kestrel", probe, "-netdev", f"tap,id=n0,ifname={unique('kt')},script=no,"
                    f"downscript=no,{opt}", "-device", "virtio-net-pci,netdev=n0",
                    scenario="hello"), check=False)
    assert r.returncode == 1
    assert ("vhost=on: /dev/vhost-net: No such file or directory (load the vhost_net module, "
            "or use vhost=off)") in r.stderr


def test_vhostfd_without_vhost_is_refused(probe, netns):
    """QEMU's rule: vhost=off wins over vhostfd=, which then makes no sense."""
    ns = netns()
    r = ns.run(*vmm("kestrel", probe, "-netdev", f"tap,id=n0,ifname={unique('kt')},script=no,"
                    "downscript=no,vhost=off,vhostfd=0", "-device", "virtio-net-pci,netdev=n0",
                    scenario="hello"), check=False)
    assert r.returncode == 1
    assert "vhostfd= is not valid without vhost" in r.stderr


@pytest.mark.guest
@pytest.mark.skipif(not HAVE_VHOST, reason=NO_VHOST)
@pytest.mark.parametrize("kind", KINDS)
def test_vhost_probe_on_a_bridge_answers_ping(kind, probe, netns, vms, tmp_path):
    """vhost=on: the kernel moves the frames (kestrel says which pair it handed over)."""
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, up, down, log = ns.bridge_with_scripts(tmp_path, "10.81.0.1/24")
    tap = unique("kvh")
    net = ["-netdev", f"tap,id=n0,ifname={tap},script={up},downscript={down},vhost=on",
           "-device", f"virtio-net-pci,netdev=n0,mac={random_mac()}"]
    argv = vmm(kind, probe, *net, scenario="net-respond,ip=10.81.0.2,count=5,timeout=60")
    s = vms(ns.argv("env", "KESTREL_DEBUG=1", *argv))
    s.expect(r"probe: net: ready", timeout=60)
    if kind == "kestrel":
        s.expect(r"queue pair 0 served by vhost-net", timeout=10)
        assert "stays in userspace" not in s.text()
    ping = ns.run("ping", "-c", "5", "-i", "0.2", "-W", "5", "10.81.0.2", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert "5 received" in ping.stdout
    status, lines = finish(s)
    assert status == 0, s.text()
    assert any(re.match(r"probe: net: answered 5 icmp 0 udp \d+ arp", l) for l in lines), lines
    assert "probe: PASS" in lines
    assert log.read_text().split("\n")[:2] == [f"up {tap}", f"down {tap}"]
    assert not ns.has_link(tap)


@pytest.mark.guest
@pytest.mark.parametrize("vhost", ["off", pytest.param("on", marks=pytest.mark.skipif(
    not HAVE_VHOST, reason=NO_VHOST))])
def test_vhost_rings_survive_a_system_reset(probe, netns, vms, tmp_path, vhost):
    """A reset rebuilds the VM: vhost lets go of the old RAM and gets the new rings (vhost=off:
    the same path in userspace, the control run)."""
    ns = netns()
    br, up, down, _ = ns.bridge_with_scripts(tmp_path, "10.82.0.1/24")
    tap = unique("kvr")
    sock = tmp_path / "qmp.sock"
    s = vms(ns.argv("env", "KESTREL_DEBUG=1", *vmm(
        "kestrel", probe, "-qmp", f"unix:{sock},server,nowait",
        "-netdev", f"tap,id=n0,ifname={tap},script={up},downscript={down},vhost={vhost}",
        "-device", f"virtio-net-pci,netdev=n0,mac={random_mac()}",
        scenario="net-respond,ip=10.82.0.2,timeout=120")))
    for boot in (1, 2):
        s.expect(r"(?s)" + r"probe: net: ready.*" * boot, timeout=60)
        if vhost == "on":
            s.expect(r"(?s)" + r"queue pair 0 served by vhost-net.*" * boot, timeout=10)
        ping = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "5", "10.82.0.2", check=False)
        assert ping.returncode == 0 and "3 received" in ping.stdout, (boot, ping.stdout, s.text())
        if boot == 1:
            q = QMP(sock)
            q.cmd("qmp_capabilities")
            q.cmd("system_reset")
    q.cmd("quit")
    assert s.wait(timeout=30) == 0
    assert "stays in userspace" not in s.text()


@pytest.mark.guest
@pytest.mark.skipif(not HAVE_VHOST, reason=NO_VHOST)
def test_vhost_needs_a_virtio_nic_linked_directly(probe, netns):
    ns = netns()
    r = ns.run(*vmm("kestrel", probe, "-net", "nic,vlan=1,model=virtio",
                    "-net", f"tap,vlan=1,ifname={unique('kt')},script=no,downscript=no,vhost=on",
                    scenario="hello"), check=False)
    assert r.returncode == 1
    assert "vhost=on needs a virtio-net-pci NIC linked to it directly" in r.stderr
    assert "a hub (vlan=)" in r.stderr


def test_nic_model_help_and_bad_model(probe):
    status, out, err = kestrel("-net", "nic,model=help")
    assert status == 0 and "virtio-net-pci" in out
    status, out, err = kestrel("-net", "nic,model=ne2k_pci", "-kernel", probe)
    assert status == 1
    assert "unsupported NIC model 'ne2k_pci'" in err and "virtio-net-pci" in err


# ---- user mode (libslirp) -------------------------------------------------------

@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
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
                           "dns=192.168.76.8,dhcpstart=192.168.76.40,hostname=probehost",
                           "-device", "virtio-net-pci,netdev=u0", "-kernel", probe,
                           "-append", "probe=net-dhcp,timeout=20", timeout=60)
    assert status == 0, err
    assert ("probe: net: dhcp: ip 192.168.76.40 mask 255.255.255.0 router 192.168.76.9 "
            "dns 192.168.76.8 server 192.168.76.9 hostname probehost") in probe_lines(out)
    # restrict=on: a lease still, but no way out, so no router and no DNS (libslirp).
    status, out, err = run(*base, "-netdev", "user,id=u0,restrict=on,ipv6=off",
                           "-device", "virtio-net-pci,netdev=u0", "-kernel", probe,
                           "-append", "probe=net-dhcp,timeout=20", timeout=60)
    assert status == 0, err
    assert ("probe: net: dhcp: ip 10.0.2.15 mask 255.255.255.0 router 0.0.0.0 dns 0.0.0.0 "
            "server 10.0.2.2") in probe_lines(out)


@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
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


@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
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


@pytest.mark.guest
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


@pytest.mark.guest
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


@pytest.mark.guest
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


# ---- multiqueue ----------------------------------------------------------------------

UDP_FLOWS = """
import socket, sys
ip, n = sys.argv[1], int(sys.argv[2])
ok = 0
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # a new source port: a new flow
    s.settimeout(1.0)
    msg = f"flow {i}".encode()
    for _ in range(5):
        s.sendto(msg, (ip, 7))
        try:
            if s.recvfrom(2048)[0] == msg:
                ok += 1
                break
        except socket.timeout:
            pass
    s.close()
q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q.sendto(b"quit", (ip, 7))
print(f"echoes {ok}")
"""


@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
def test_multiqueue_tap_and_queue_pairs(kind, probe, netns, vms, tmp_path):
    """queues=2 on the TAP and mq=on: the probe uses two queue pairs, both carry frames."""
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, up, down, _ = ns.bridge_with_scripts(tmp_path, "10.82.0.1/24")
    tap = unique("ktap")
    s = vms(ns.argv(*vmm(kind, probe, "-netdev",
                         f"tap,id=n0,ifname={tap},queues=2,script={up},downscript={down},vhost=off",
                         "-device", f"virtio-net-pci,netdev=n0,mac={random_mac()},mq=on,vectors=6",
                         scenario="net-respond,ip=10.82.0.2,pairs=2,timeout=60")))
    s.expect(r"probe: net: ready", timeout=60)
    assert "probe: net: 2 of 2 queue pairs" in s.text()
    r = ns.run("python3", "-c", UDP_FLOWS, "10.82.0.2", "24", timeout=120)
    assert r.stdout.strip() == "echoes 24", r.stdout + r.stderr
    status, lines = finish(s)
    assert status == 0 and "probe: PASS" in lines, s.text()
    per_pair = next(l for l in lines if l.startswith("probe: net: frames per pair:"))
    counts = dict(zip(per_pair.split()[5::2], map(int, per_pair.split()[6::2])))
    assert set(counts) == {"rx0", "tx0", "rx1", "tx1"}
    assert all(v > 0 for v in counts.values()), per_pair


@pytest.mark.guest
@pytest.mark.parametrize("spelling", [
    ["-nic", "user,model=virtio-net-pci"],
    ["-net", "nic,model=virtio", "-net", "user"],
    ["-net", "nic,vlan=2", "-net", "user,vlan=2,dhcpstart=10.0.2.33"],
])
def test_nic_and_legacy_net_spellings_reach_user_mode(probe, spelling):
    # Without model= the NIC is an e1000, QEMU's default on pc.
    nic = "virtio" if any("model=virtio" in a for a in spelling) else "e1000"
    status, out, err = kestrel(*BASE, *spelling, "-kernel", probe,
                               "-append", f"probe=net-dhcp,nic={nic},timeout=20", timeout=60)
    assert status == 0, err
    want = "10.0.2.33" if "dhcpstart=10.0.2.33" in spelling[-1] else "10.0.2.15"
    assert any(l.startswith(f"probe: net: dhcp: ip {want} ") for l in probe_lines(out)), out


@pytest.mark.guest
@pytest.mark.qemu
def test_socket_link_between_kestrel_and_qemu(probe, vms):
    """The same length-prefixed stream as QEMU's -netdev socket: the two VMMs talk."""
    need_qemu()
    port = free_tcp_port()
    a = vms(vmm("kestrel", probe, "-name", "sock-k", "-netdev",
                f"socket,id=s0,listen=127.0.0.1:{port}", "-device", "virtio-net-pci,netdev=s0",
                scenario="net-respond,ip=10.83.0.2,timeout=90"))
    a.expect(r"probe: net: ready", timeout=60)
    b = vms(vmm("qemu", probe, "-netdev", f"socket,id=s0,connect=127.0.0.1:{port}",
                "-device", "virtio-net-pci,netdev=s0,mac=52:54:00:e1:00:02",
                scenario="net-send,ip=10.83.0.3,peer=10.83.0.2,count=10,quit=1"))
    status_b, lines_b = finish(b, timeout=90)
    status_a, lines_a = finish(a)
    assert status_b == 0 and "probe: net: sent 10 got 10 echoes" in lines_b, b.text()
    assert status_a == 0 and "probe: PASS" in lines_a, a.text()


@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
def test_guest_checksum_offload_reaches_the_tap(kind, probe, netns, vms, tmp_path):
    """With GUEST_CSUM negotiated the VMM turns on the TAP's checksum offload
    (TUNSETOFFLOAD): UDP from the host then arrives with NEEDS_CSUM in the vnet
    header instead of being checksummed by the host kernel. Without it, never."""
    if kind == "qemu":
        need_qemu()
    seen = {}
    for offload in (1, 0):
        ns = netns()
        br, up, down, _ = ns.bridge_with_scripts(tmp_path, "10.84.0.1/24")
        tap = unique("ktap")
        s = vms(ns.argv(*vmm(kind, probe, *tap_args(kind, tap, up, down, random_mac()),
                             scenario=f"net-respond,ip=10.84.0.2,offload={offload},timeout=60")))
        s.expect(r"probe: net: ready", timeout=60)
        r = ns.run("python3", "-c", UDP_FLOWS, "10.84.0.2", "4", timeout=60)
        assert r.stdout.strip() == "echoes 4", r.stdout + r.stderr
        status, lines = finish(s)
        assert status == 0, s.text()
        assert "TUNSETOFFLOAD" not in s.text()
        m = [l for l in lines if l.startswith("probe: net: received ")]
        seen[offload] = int(m[0].split()[3]) if m else None
    assert seen[1] and seen[1] >= 4, seen        # the host left the checksums to the guest
    assert seen[0] == 0                          # no GUEST_CSUM: never (§5.1.6.4.1)


@pytest.mark.guest
def test_netdev_bridge_puts_a_tap_on_the_bridge(probe, netns, vms):
    """-netdev bridge,br=: qemu-bridge-helper's job, done by kestrel itself."""
    ns = netns()
    br = unique("kbr")
    ns.bridge(br, "10.85.0.1/24")
    s = vms(ns.argv(*vmm("kestrel", probe, "-netdev", f"bridge,id=n0,br={br}",
                         "-device", f"virtio-net-pci,netdev=n0,mac={random_mac()}",
                         scenario="net-respond,ip=10.85.0.2,count=2,timeout=60")))
    s.expect(r"probe: net: ready", timeout=60)
    ports = ns.run("ip", "-o", "link", "show", "master", br).stdout
    assert len(ports.splitlines()) == 1, ports
    assert ns.run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.85.0.2",
                  check=False).returncode == 0
    status, lines = finish(s)
    assert status == 0 and "probe: PASS" in lines, s.text()
    assert ns.run("ip", "-o", "link", "show", "master", br).stdout == ""   # gone with kestrel
    r = ns.run(*vmm("kestrel", probe, "-netdev", "bridge,id=n0,br=nosuchbr0",
                    "-device", "virtio-net-pci,netdev=n0", scenario="hello"), check=False)
    assert r.returncode == 1 and "br=nosuchbr0: no such bridge" in r.stderr


TAP_FD_WRAPPER = """
import fcntl, os, struct, subprocess, sys
name, bridge = sys.argv[1], sys.argv[2]
fd = os.open("/dev/net/tun", os.O_RDWR)
# TUNSETIFF with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as libvirt opens TAPs for QEMU.
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", name.encode(), 0x0002 | 0x1000 | 0x4000))
subprocess.run(["ip", "link", "set", name, "master", bridge], check=True)
subprocess.run(["ip", "link", "set", name, "up"], check=True)
os.set_inheritable(fd, True)
argv = [a.replace("FD", str(fd)) for a in sys.argv[3:]]
os.execv(argv[0], argv)
"""


@pytest.mark.guest
@pytest.mark.parametrize("kind", KINDS)
def test_tap_fd_opened_by_the_caller(kind, probe, netns, vms):
    """fd=N: a TAP someone else opened and configured (libvirt's way); no scripts run."""
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, tap = unique("kbr"), unique("ktap")
    ns.bridge(br, "10.86.0.1/24")
    argv = vmm(kind, probe, "-netdev", "tap,id=n0,fd=FD",
               "-device", f"virtio-net-pci,netdev=n0,mac={random_mac()}",
               scenario="net-respond,ip=10.86.0.2,count=2,timeout=60")
    if kind == "qemu":
        argv[0] = subprocess.run(["which", argv[0]], capture_output=True, text=True).stdout.strip()
    s = vms(ns.argv("python3", "-c", TAP_FD_WRAPPER, tap, br, *argv))
    s.expect(r"probe: net: ready", timeout=60)
    assert ns.run("ping", "-c", "2", "-i", "0.2", "-W", "5", "10.86.0.2",
                  check=False).returncode == 0
    status, lines = finish(s)
    assert status == 0 and "probe: PASS" in lines, s.text()
    assert not ns.has_link(tap)    # the only descriptor closed with the VMM


@pytest.mark.guest
@pytest.mark.qemu
def test_failing_ifup_script_under_qemu_too(probe, netns, tmp_path):
    """The reference: QEMU 7.2 also refuses to start; it prints the raw wait status."""
    need_qemu()
    ns = netns()
    up = write_script(tmp_path / "ifup-fails", "exit 7\n")
    r = ns.run(*vmm("qemu", probe, "-netdev", f"tap,id=n0,ifname={unique('kt')},script={up},"
                    "downscript=no", "-device", "virtio-net-pci,netdev=n0", scenario="hello"),
               check=False, timeout=60)
    assert r.returncode == 1
    assert f"network script {up} failed with status {7 << 8}" in r.stderr
