"""The kestrel VMM with the guest probe: boot, CPUs, memory, console, power."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import QEMU, host_has_hw_virt, KESTREL, kestrel, need_qemu, probe_lines, qemu
from qmp_client import QMP

BASE = ["-m", "128m", "-smp", "2", "-name", "myos", "-nographic"]


@pytest.mark.guest
def test_probe_reports_two_cpus_and_128m_then_powers_off(probe):
    status, out, err = kestrel(*BASE, "-kernel", probe, "-append", "probe=hello")
    lines = probe_lines(out)
    assert status == 0, err
    assert "probe: cmdline: probe=hello" in lines
    assert "probe: memory: 128 MiB" in lines
    assert "probe: cpus: 2 (madt 2, mptable 2)" in lines
    assert re.search(r"probe: acpi: FACP at 0x[0-9a-f]+ len 244", out)
    assert "probe: PASS" in lines and lines[-1] == "probe: poweroff"


@pytest.mark.guest
def test_e820_map_is_what_kestrel_built(probe):
    status, out, _ = kestrel("-m", "128m", "-nographic", "-kernel", probe)
    assert status == 0
    e820 = [l for l in probe_lines(out) if l.startswith("probe: e820:")]
    assert e820 == [
        "probe: e820: 0x0000000000000000-0x000000000009fc00 1",
        "probe: e820: 0x000000000009fc00-0x00000000000a0000 2",
        "probe: e820: 0x00000000000e0000-0x0000000000100000 2",
        "probe: e820: 0x0000000000100000-0x0000000008000000 1",
        "probe: e820: 0x00000000feffc000-0x00000000ff000000 2",
    ]


@pytest.mark.guest
@pytest.mark.parametrize("mem,expect_mib", [("64", 64), ("512M", 512), ("1G", 1024),
                                             ("4G", 4096)])
def test_memory_sizes(probe, mem, expect_mib):
    status, out, err = kestrel("-m", mem, "-nographic", "-kernel", probe)
    assert status == 0, err
    assert f"probe: memory: {expect_mib} MiB" in probe_lines(out)
    if expect_mib == 4096:
        # 3 GiB below the PCI hole, the last GiB above 4 GiB, as QEMU's pc machine.
        assert "probe: e820: 0x0000000100000000-0x0000000140000000 1" in probe_lines(out)


@pytest.mark.guest
@pytest.mark.parametrize("smp,cpus", [("1", 1), ("4", 4), ("sockets=2,cores=2", 4),
                                      ("cpus=2,maxcpus=4", 2), ("3,threads=1,cores=3", 3)])
def test_smp_topologies(probe, smp, cpus):
    status, out, err = kestrel("-smp", smp, "-nographic", "-kernel", probe, "-append", "probe=smp")
    assert status == 0, err
    assert f"probe: cpus: {cpus} (madt {cpus}, mptable {cpus})" in probe_lines(out)
    assert "probe: PASS" in probe_lines(out)


@pytest.mark.guest
def test_serial_input_is_echoed(probe, session):
    vm = session([str(KESTREL), *BASE, "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    vm.send(b"hello kestrel\r")
    vm.expect(r"probe: echo: hello kestrel")
    vm.send(b"quit\r")
    assert vm.wait() == 0
    assert "probe: PASS" in vm.text()


@pytest.mark.guest
def test_typed_ahead_input_is_not_lost(probe, session):
    """More than a 16-byte FIFO typed before the guest reads: nothing may be dropped."""
    line = "".join(chr(ord("a") + i % 26) for i in range(200))
    vm = session([str(KESTREL), *BASE, "-kernel", probe, "-append", "probe=echo"])
    vm.send(f"{line}\rquit\r".encode())
    vm.expect(f"probe: echo: {line}")
    assert vm.wait() == 0


@pytest.mark.guest
def test_guest_reset_with_no_reboot_exits_0(probe):
    status, out, err = kestrel(*BASE, "-no-reboot", "-kernel", probe, "-append", "probe=reset")
    assert status == 0, err
    assert "probe: reset" in probe_lines(out)
    assert "probe: FAIL" not in out


@pytest.mark.guest
def test_guest_reset_reboots_the_machine(probe, session):
    vm = session([str(KESTREL), *BASE, "-kernel", probe, "-append", "probe=reset"])
    vm.expect(r"(?s)probe: reset.*probe: start.*probe: reset")
    assert vm.proc.poll() is None, "kestrel exited instead of rebooting"


@pytest.mark.guest
def test_ctrl_a_x_quits(probe, session):
    vm = session([str(KESTREL), *BASE, "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    vm.send(b"\x01h")
    vm.expect(r"C-a x    exit emulator")
    vm.send(b"\x01x")
    assert vm.wait() == 0
    assert "terminating on Ctrl-a x" in vm.text()


@pytest.mark.guest
def test_ctrl_a_ctrl_a_sends_a_literal_ctrl_a(probe, session):
    vm = session([str(KESTREL), *BASE, "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    vm.send(b"x\x01\x01y\r")
    vm.expect("probe: echo: x\x01y")
    vm.send(b"quit\r")
    assert vm.wait() == 0


@pytest.mark.guest
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_shut_down_cleanly(probe, session, sig):
    vm = session([str(KESTREL), *BASE, "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    vm.proc.send_signal(sig)
    assert vm.wait() == 0
    assert f"terminating on signal {int(sig)}" in vm.text()


@pytest.mark.guest
def test_serial_to_file(probe, tmp_path):
    log = tmp_path / "serial.log"
    status, out, err = kestrel("-display", "none", "-serial", f"file:{log}", "-kernel", probe)
    assert status == 0, err
    assert out == ""
    assert "probe: PASS" in log.read_text()


@pytest.mark.guest
def test_serial_on_unix_socket_server(probe, tmp_path):
    path = tmp_path / "console.sock"
    proc = subprocess.Popen([str(KESTREL), "-display", "none", "-serial",
                             f"unix:{path},server,nowait", "-kernel", probe, "-append",
                             "probe=echo"], stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            if path.exists():
                break
            time.sleep(0.05)
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(path))
        s.sendall(b"over the socket\rquit\r")
        data = b""
        s.settimeout(20)
        while b"probe: poweroff" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert b"probe: echo: over the socket" in data
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()
    assert not path.exists(), "the socket is removed on exit"


@pytest.mark.guest
def test_serial_on_pty(probe):
    proc = subprocess.Popen([str(KESTREL), "-display", "none", "-serial", "pty", "-kernel", probe,
                             "-append", "probe=echo"], stderr=subprocess.PIPE)
    try:
        line = proc.stderr.readline().decode()
        m = re.match(r"char device redirected to (/dev/pts/\d+) \(label serial0\)", line)
        assert m, line
        fd = os.open(m.group(1), os.O_RDWR | os.O_NOCTTY)
        import tty
        tty.setraw(fd)
        os.write(fd, b"via pty\rquit\r")
        data = b""
        deadline = time.monotonic() + 20
        while b"probe: poweroff" not in data and time.monotonic() < deadline:
            data += os.read(fd, 4096)
        os.close(fd)
        assert b"probe: echo: via pty" in data
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.guest
def test_daemonize_and_pidfile(probe, tmp_path):
    pidfile = tmp_path / "vm.pid"
    sock = tmp_path / "s"
    status, out, err = kestrel("-daemonize", "-pidfile", str(pidfile), "-display", "none",
                               "-serial", f"unix:{sock},server,nowait", "-kernel", probe,
                               "-append", "probe=echo")
    assert status == 0, err
    pid = int(pidfile.read_text())
    os.kill(pid, 0)  # alive, detached
    # A second instance must not take over the same pid file.
    status2, _, err2 = kestrel("-pidfile", str(pidfile), "-display", "none", "-kernel", probe)
    assert status2 == 1 and "pidfile" in err2
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not pidfile.exists():
            break
        time.sleep(0.05)
    assert not pidfile.exists()


@pytest.mark.guest
def test_no_shutdown_keeps_the_process_after_poweroff(probe, session):
    vm = session([str(KESTREL), *BASE, "-no-shutdown", "-kernel", probe])
    vm.expect(r"probe: poweroff")
    time.sleep(0.5)
    assert vm.proc.poll() is None
    vm.proc.send_signal(signal.SIGTERM)
    assert vm.wait() == 0


@pytest.mark.guest
def test_debug_exit_device_sets_the_exit_status(probe):
    status, out, _ = kestrel("-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-nographic",
                             "-kernel", probe, "-append", "probe=debug-exit,code=33")
    assert status == (0x21 << 1) | 1
    assert "probe: debug-exit" in out


def test_check_host_tells_the_three_hosts_apart(kestrel_bin):
    status, out, _ = kestrel("--check-host")
    assert "Checking if /dev/kvm exists and is accessible" in out
    assert "Checking for /dev/net/tun" in out and "Checking for KSM" in out
    flavour = next(l for l in out.splitlines() if "Checking the KVM flavour" in l)
    if not os.path.exists("/dev/kvm"):
        # A kernel may load kvm_pvm without binding it (it is a PVM guest itself).
        assert "FAIL (no KVM" in flavour and "PVM:" not in flavour, flavour
        assert status == 1
    elif host_has_hw_virt():
        assert "PASS (hardware" in flavour, flavour
        assert status == 0
    else:
        assert os.path.exists("/sys/module/kvm_pvm"), "a KVM host without vmx/svm is PVM here"
        assert "INFO (PVM:" in flavour, flavour
        assert status == 0


@pytest.mark.skipif(os.path.exists("/dev/kvm"), reason="/dev/kvm exists: covered by the guest tests")
def test_without_kvm_the_options_are_checked_first_then_kvm_is_named(probe, tmp_path):
    """Issue #13: on a host without /dev/kvm a good command line gets the KVM error
    only after the drives were opened and the kernel checked, and exits 1."""
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(1 << 20))
    status, out, err = kestrel("-nographic", "-kernel", probe, "-drive",
                               f"file={disk},format=raw,if=virtio")
    assert status == 1
    assert err.strip().splitlines() == ["kestrel: /dev/kvm does not exist: load the kvm module "
                                        "(kvm_intel, kvm_amd or kvm_pvm) and enable "
                                        "virtualization in the firmware"], err


def test_version_and_help(kestrel_bin):
    status, out, _ = kestrel("-version")
    assert status == 0 and out.startswith("Kestrel emulator version")
    status, out, _ = kestrel("-h")
    assert status == 0 and "-smp" in out and "-nographic" in out
    for what, needle in (("-cpu", "host"), ("-machine", "pc"), ("-M", "pc")):
        status, out, _ = kestrel(what, "help")
        assert status == 0 and needle in out


@pytest.mark.guest
def test_triple_fault_is_a_guest_reset_as_in_qemu(probe):
    """Issue #16: QEMU 7.2 (kvm_cpu_exec, KVM_EXIT_SHUTDOWN) resets the guest on a
    triple fault; under -no-reboot that is a shutdown, exit 0, after one run."""
    need_qemu()
    status, out, err = kestrel("-nographic", "-no-reboot", "-kernel", probe,
                               "-append", "probe=fault")
    assert status == 0, err
    assert out.count("probe: fault: executing ud2") == 1, out
    qstatus, qout, qerr = qemu("-nographic", "-no-reboot", "-kernel", probe,
                               "-append", "probe=fault")
    assert qstatus == 0, qerr
    assert qout.count("probe: fault: executing ud2") == 1, qout


@pytest.mark.guest
def test_triple_fault_reboots_without_no_reboot(probe, session, tmp_path):
    path = tmp_path / "qmp.sock"
    vm = session([str(KESTREL), *BASE, "-qmp", f"unix:{path},server,nowait",
                  "-kernel", probe, "-append", "probe=fault"])
    q = QMP(path)
    q.cmd("qmp_capabilities")
    assert q.event("RESET")["data"] == {"guest": True, "reason": "guest-reset"}
    vm.expect(r"(?s)executing ud2.*executing ud2")
    assert q.cmd("query-status")["return"]["status"] == "running"
    q.cmd("quit")
    assert vm.wait() == 0


def internal_error_status(q, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        status = q.cmd("query-status")["return"]
        if status["status"] != "running" or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


@pytest.mark.guest
@pytest.mark.qemu
def test_kvm_internal_error_pauses_with_the_monitor_up(probe, session, tmp_path):
    """Issue #16: on KVM_EXIT_INTERNAL_ERROR (the probe's x87 load from MMIO at CPL0,
    which KVM's emulator cannot do) QEMU 7.2 prints the error and the registers,
    pauses in "internal-error" and keeps the monitor: cont is refused, info
    registers and xp work, system_reset starts the guest again.  Both VMMs, same guest."""
    need_qemu()
    args = [*BASE, "-kernel", probe, "-append", "probe=emulation-failure"]
    qpath = tmp_path / "q.sock"
    ref = session([*QEMU, *args, "-qmp", f"unix:{qpath},server,nowait"])
    rq = QMP(qpath, timeout=60)
    rq.cmd("qmp_capabilities")
    ref_status = internal_error_status(rq)
    rq.cmd("quit")
    ref.wait()
    if ref_status.get("status") != "internal-error":
        # Measured, not assumed: whether this host's KVM reports the x87 load as an
        # internal error decides what either VMM can show.
        pytest.skip(f"this host's KVM does not fail the probe's x87 load at CPL0 with an "
                    f"internal error (QEMU 7.2 reached {ref_status})")
    assert "KVM internal error. Suberror: 1" in ref.text(), ref.text()

    path = tmp_path / "k.sock"
    vm = session([str(KESTREL), *args, "-qmp", f"unix:{path},server,nowait"])
    vm.expect(r"probe: emulation-failure: x87 load from 0xc0000000 at CPL0")
    vm.expect(r"KVM internal error\. Suberror: 1\r?\n(extra data\[\d+\]: 0x[0-9a-f]{16}\r?\n)*"
              r"emulation failure\r?\n")
    vm.expect(r"RIP=[0-9a-f]{16} RFL=[0-9a-f]{8} CPL=0")
    q = QMP(path)
    q.cmd("qmp_capabilities")
    assert internal_error_status(q) == {"status": "internal-error", "singlestep": False,
                                        "running": False}
    assert vm.proc.poll() is None                    # the process stays
    assert q.cmd("cont")["error"] == {"class": "GenericError",
                                      "desc": "Resetting the Virtual Machine is required"}
    hmp = lambda line: q.cmd("human-monitor-command", **{"command-line": line})["return"]
    assert "VM status: paused (internal-error)" in hmp("info status")
    assert re.search(r"RIP=[0-9a-f]{16} RFL=[0-9a-f]{8} CPL=0", hmp("info registers"))
    assert "0x336ec578" in hmp("xp /1xw 0x7000")     # hvm_start_info's magic, still there
    assert "probe: start" not in vm.text()           # the guest never went on

    q.cmd("system_reset")
    assert q.event("RESET")["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    q.event("STOP")                                  # the rebuilt guest fails again
    assert q.cmd("query-status")["return"]["status"] == "internal-error"
    q.cmd("quit")
    assert vm.wait() == 0


@pytest.mark.skipif(os.path.exists("/dev/kvm"), reason="/dev/kvm exists: the demo boots a guest")
def test_demo_without_kvm_says_why_and_fails():
    """Issue #13: make demo on a host without /dev/kvm explains itself, exits non-zero."""
    from conftest import ROOT
    p = subprocess.run([str(ROOT / "scripts/demo.sh")], capture_output=True, text=True,
                       timeout=30, env={**os.environ, "PATH": os.environ.get("PATH", "")})
    assert p.returncode != 0
    assert "this host has no /dev/kvm, so no virtual machine can run here" in p.stderr
    assert "Traceback" not in p.stderr + p.stdout


@pytest.mark.guest
def test_name_process_and_debug_threads(probe, session):
    """-name process= is the comm name, debug-threads=on names vCPU threads as QEMU (#26)."""
    vm = session([str(KESTREL), "-m", "128m", "-smp", "2", "-nographic", "-name",
                  "myos,process=kvm-myos,debug-threads=on", "-kernel", probe,
                  "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    pid = vm.proc.pid
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "kvm-myos"
    names = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            names.add(f.read().strip())
    assert {"CPU 0/KVM", "CPU 1/KVM"} <= names, names
    vm.send(b"quit\r")
    assert vm.wait() == 0
