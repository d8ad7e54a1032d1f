"""-netdev socket,mcast= and ,udp=: one frame per UDP datagram, as QEMU sends them.
Multicast runs inside a network namespace the test makes (loopback with multicast
on, a route for 224.0.0.0/4 through it), so nothing leaves the host; udp= links two
VMs over 127.0.0.1.  Kestrel talks to kestrel and to QEMU 7.2."""
import socket

import pytest

from conftest import kestrel, need_qemu
from netns import Netns
from test_net import finish, vmm, vms  # noqa: F401

GROUP = "230.0.0.7"


@pytest.fixture
def mcast_ns():
    ns = Netns()
    ns.run("ip", "link", "set", "lo", "multicast", "on")
    ns.run("ip", "route", "add", "224.0.0.0/4", "dev", "lo")
    yield ns
    ns.close()


def free_udp_ports(n):
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.guest
@pytest.mark.parametrize("peer", ["kestrel", "qemu"])
def test_mcast_segment_links_vms(probe, mcast_ns, vms, peer):
    if peer == "qemu":
        need_qemu()
    port = free_udp_ports(1)[0]
    net = lambda mac: ["-netdev", f"socket,id=m0,mcast={GROUP}:{port},localaddr=127.0.0.1",
                       "-device", f"virtio-net-pci,netdev=m0,mac={mac}"]
    a = vms(mcast_ns.argv(*vmm("kestrel", probe, *net("52:54:00:e2:00:01"),
                               scenario="net-respond,ip=10.84.0.2,timeout=90")))
    a.expect(r"probe: net: ready", timeout=60)
    b = vms(mcast_ns.argv(*vmm(peer, probe, *net("52:54:00:e2:00:02"),
                               scenario="net-send,ip=10.84.0.3,peer=10.84.0.2,count=10,quit=1")))
    status, lines = finish(b, timeout=120)
    assert status == 0 and "probe: net: sent 10 got 10 echoes" in lines, b.text()
    status, lines = finish(a, timeout=60)
    assert status == 0 and "probe: PASS" in lines, a.text()


@pytest.mark.guest
def test_udp_link_between_two_vms(probe, vms):
    pa, pb = free_udp_ports(2)
    a = vms(vmm("kestrel", probe, "-netdev",
                f"socket,id=u0,udp=127.0.0.1:{pb},localaddr=127.0.0.1:{pa}",
                "-device", "virtio-net-pci,netdev=u0,mac=52:54:00:e3:00:01",
                scenario="net-respond,ip=10.85.0.2,timeout=90"))
    a.expect(r"probe: net: ready", timeout=60)
    b = vms(vmm("kestrel", probe, "-netdev",
                f"socket,id=u0,udp=127.0.0.1:{pa},localaddr=127.0.0.1:{pb}",
                "-device", "virtio-net-pci,netdev=u0,mac=52:54:00:e3:00:02",
                scenario="net-send,ip=10.85.0.3,peer=10.85.0.2,count=5,quit=1"))
    status, lines = finish(b, timeout=120)
    assert status == 0 and "probe: net: sent 5 got 5 echoes" in lines, b.text()
    assert finish(a, timeout=60)[0] == 0


@pytest.mark.parametrize("args,needle", [
    ("socket,id=s,mcast=10.0.0.1:1234", "not a multicast address"),
    ("socket,id=s,mcast=230.0.0.1", "not address:port"),
    ("socket,id=s,udp=127.0.0.1:1234", "udp= needs localaddr="),
    ("socket,id=s,mcast=230.0.0.1:1234,listen=:5555", "do not go with listen="),
    ("socket,id=s,mcast=230.0.0.1:1234,bogus=1", "Invalid parameter 'bogus'"),
])
def test_dgram_errors(probe, args, needle):
    status, out, err = kestrel("-nographic", "-netdev", args, "-device",
                               "virtio-net-pci,netdev=s", "-kernel", probe)
    assert status == 1 and needle in err, err
