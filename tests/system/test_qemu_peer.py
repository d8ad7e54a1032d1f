"""The same guest probe under QEMU 7.2, the reference peer: proves the probe (and
so the tests built on it), not just Kestrel."""
import re

import pytest

from conftest import need_qemu, probe_lines, qemu, kestrel

pytestmark = [pytest.mark.qemu, pytest.mark.guest]
BASE = ["-m", "128m", "-smp", "2", "-name", "myos", "-nographic", "-no-reboot"]


@pytest.mark.parametrize("machine", ["pc", "microvm"])
def test_probe_reports_two_cpus_and_128m_under_qemu(probe, machine):
    need_qemu()
    status, out, err = qemu("-M", machine, *BASE, "-kernel", probe, "-append", "probe=hello")
    lines = probe_lines(out)
    assert status == 0, err
    assert "probe: memory: 128 MiB" in lines
    assert any(re.match(r"probe: cpus: 2 \(madt 2, ", l) for l in lines), lines
    assert "probe: cmdline: probe=hello" in lines
    assert "probe: PASS" in lines and lines[-1] == "probe: poweroff"


def test_echo_under_qemu(probe, session):
    need_qemu()
    from conftest import QEMU
    vm = session([*QEMU, "-M", "microvm", *BASE, "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    vm.send(b"hello kestrel\r")
    vm.expect(r"probe: echo: hello kestrel")
    vm.send(b"quit\r")
    assert vm.wait() == 0


def test_reset_with_no_reboot_under_qemu(probe):
    need_qemu()
    status, out, _ = qemu("-M", "pc", *BASE, "-kernel", probe, "-append", "probe=reset")
    assert status == 0 and "probe: reset" in out and "FAIL" not in out


def test_same_smp_and_memory_view_as_qemu(probe):
    """Kestrel's tables and QEMU's (SeaBIOS-built) tell the probe the same CPU count
    and memory size; SeaBIOS lists one MP-table CPU per socket, hence sockets=4."""
    need_qemu()
    args = ["-m", "512", "-smp", "4,sockets=4", "-nographic", "-no-reboot", "-kernel", probe,
            "-append", "probe=smp"]
    _, kout, _ = kestrel(*args)
    _, qout, _ = qemu("-M", "pc", *args)

    def view(out):
        return [l for l in probe_lines(out)
                if l.startswith(("probe: memory:", "probe: cpus:", "probe: PASS"))]
    assert view(kout) == view(qout) == ["probe: memory: 512 MiB",
                                        "probe: cpus: 4 (madt 4, mptable 4)", "probe: PASS"]
