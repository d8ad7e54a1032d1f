"""The e1000 (82540EM) NIC, driven by the guest probe's e1000 driver
(tests/guest/probe/e1000.c, nic=e1000) through the same IPv4 host as the
virtio-net tests: DHCP and TFTP from user mode, ping over a TAP on a bridge in
a namespace the test makes and removes; under kestrel and QEMU 7.2 alike."""
import os
import zlib

import pytest

from conftest import kestrel, need_qemu, probe_lines, qemu
from netns import unique
from test_net import BASE, QEMU_BASE, finish, netns, random_mac, vmm, vms  # noqa: F401


def run_on(kind, *args, timeout=90):
    if kind == "qemu":
        need_qemu()
        return qemu(*QEMU_BASE, *args, timeout=timeout)
    return kestrel(*BASE, *args, timeout=timeout)


@pytest.mark.guest
@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_e1000_gets_a_dhcp_lease(kind, probe):
    status, out, err = run_on(kind, "-net", "nic,model=e1000,macaddr=52:54:00:e1:00:01",
                              "-net", "user", "-kernel", probe,
                              "-append", "probe=net-dhcp,nic=e1000,timeout=20")
    lines = probe_lines(out)
    assert status == 0, err + out
    assert any(l.startswith("probe: net: e1000 ") and "mac 52:54:00:e1:00:01 link up" in l
               for l in lines), lines
    assert ("probe: net: dhcp: ip 10.0.2.15 mask 255.255.255.0 router 10.0.2.2 dns 10.0.2.3 "
            "server 10.0.2.2") in lines


@pytest.mark.guest
@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_e1000_fetches_the_bootfile_over_tftp(kind, probe, tmp_path):
    data = os.urandom(200_000 + 77)
    (tmp_path / "boot.bin").write_bytes(data)
    status, out, err = run_on(kind, "-netdev", f"user,id=u0,tftp={tmp_path},bootfile=boot.bin",
                              "-device", "e1000,netdev=u0", "-kernel", probe,
                              "-append", "probe=net-tftp,nic=e1000,timeout=60", timeout=120)
    lines = probe_lines(out)
    assert status == 0, err + out
    assert f"probe: net: tftp: boot.bin {len(data)} bytes crc32 0x{zlib.crc32(data):08x}" in lines


@pytest.mark.guest
@pytest.mark.parametrize("kind", ["kestrel", "qemu"])
def test_e1000_on_a_bridge_answers_ping(kind, probe, netns, vms, tmp_path):
    if kind == "qemu":
        need_qemu()
    ns = netns()
    br, up, down, _ = ns.bridge_with_scripts(tmp_path, "10.78.0.1/24")
    tap = unique("ktap")
    nic = ["-netdev", f"tap,id=n0,ifname={tap},script={up},downscript={down}",
           "-device", f"e1000,netdev=n0,mac={random_mac()}"]
    s = vms(ns.argv(*vmm(kind, probe, *nic,
                         scenario="net-respond,nic=e1000,ip=10.78.0.2,count=3,timeout=60")))
    s.expect(r"probe: net: ready", timeout=60)
    ping = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "5", "10.78.0.2", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    status, lines = finish(s)
    assert status == 0 and "probe: PASS" in lines, s.text()


def test_e1000_is_listed():
    status, out, err = kestrel("-net", "nic,model=help")
    assert status == 0 and "e1000" in out
    status, out, err = kestrel("-device", "help")
    assert status == 0 and '"e1000"' in out
