"""The human monitor (HMP) and QMP on kestrel, driven as a user and a management
tool would: through a terminal (pty), unix sockets, and a QMP client."""
import json
import os
import pty
import re
import select
import socket
import subprocess
import time
import tty

import pytest

from conftest import KESTREL
from qmp_client import QMP

pytestmark = pytest.mark.guest  # every test here starts a guest


class Terminal:
    """kestrel on a pseudo-terminal, as a person runs it under -nographic."""

    def __init__(self, argv):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     close_fds=True)
        os.close(slave)
        self.out = b""

    def expect(self, pattern, timeout=20, since=0):
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern.encode())
        # The terminal's output processing turns "\r\n" into "\r\r\n": match without CRs.
        while not regex.search(self.out[since:].replace(b"\r", b"")):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}:\n"
                                     + self.out.decode(errors="replace"))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    raise AssertionError("terminal closed:\n" + self.out.decode(errors="replace"))
        return self.out

    def type(self, text):
        os.write(self.master, text.encode() if isinstance(text, str) else text)

    def command(self, line, expect):
        mark = len(self.out)
        self.type(line + "\r")
        self.expect(expect, since=mark)
        return self.out[mark:].decode(errors="replace").replace("\r", "")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminal(probe):
    terms = []

    def start(*args):
        t = Terminal([str(KESTREL), "-m", "128m", "-smp", "2", *args, "-kernel", probe,
                      "-append", "probe=echo"])
        terms.append(t)
        return t

    yield start
    for t in terms:
        t.close()


def test_ctrl_a_c_monitor_stop_cont_on_a_terminal(terminal):
    t = terminal("-nographic")
    t.expect(r"probe: echo: ready")
    t.type("\x01c")
    t.expect(r"monitor - type 'help' for more information\n\(qemu\) ")
    assert "VM status: running" in t.command("info status", r"VM status: \w+.*\n\(qemu\) ")
    t.command("stop", r"stop\n\(qemu\) ")
    assert "VM status: paused" in t.command("info status", r"VM status: \w+.*\n\(qemu\) ")
    t.command("cont", r"cont\n\(qemu\) ")
    t.type("\x01c")          # back to the guest
    t.type("still there\r")
    t.expect(r"probe: echo: still there")
    t.type("quit\r")
    assert t.proc.wait(timeout=20) == 0


def test_monitor_line_editing_and_history(terminal):
    t = terminal("-nographic")
    t.expect(r"probe: echo: ready")
    t.type("\x01c")
    t.expect(r"\(qemu\) ")
    # "info statsu", fix the typo with left-arrow/backspace, then run it.
    t.command("info statsu\x1b[D\x7fu\x1b[C\x7f\x7fus", r"VM status: running")
    # Up-arrow recalls it; Home / Ctrl-K / typing edits it into "info kvm" (Ctrl-A is
    # the terminal's escape key here, as in QEMU).
    t.command("\x1b[A\x1b[H\x1b[C\x1b[C\x1b[C\x1b[C\x1b[C\x0bkvm", r"kvm support: enabled")
    t.type("q\r")
    assert t.proc.wait(timeout=20) == 0


def test_unknown_command_gets_qemus_message(terminal):
    t = terminal("-nographic")
    t.expect(r"probe: echo: ready")
    t.type("\x01c")
    t.expect(r"\(qemu\) ")
    assert "unknown command: 'frobnicate'" in t.command("frobnicate", r"command: 'frobnicate'\n")


def hmp_socket(path):
    s = socket.socket(socket.AF_UNIX)
    for _ in range(200):
        try:
            s.connect(str(path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.05)
    s.settimeout(20)
    return s


def read_until(s, pattern):
    buf = b""
    while not re.search(pattern.encode(), buf):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")


def test_hmp_over_a_unix_socket(probe, session, tmp_path):
    path = tmp_path / "hmp.sock"
    vm = session([str(KESTREL), "-nographic", "-monitor", f"unix:{path},server,nowait",
                  "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    s = hmp_socket(path)
    read_until(s, r"\(qemu\) ")
    s.sendall(b"stop\r")
    read_until(s, r"\(qemu\) ")
    s.sendall(b"info status\r")
    assert "VM status: paused" in read_until(s, r"status: \w+\r\n\(qemu\) ")
    s.sendall(b"cont\r")
    read_until(s, r"\(qemu\) ")
    s.close()
    vm.send(b"after the monitor\r")
    vm.expect(r"probe: echo: after the monitor")
    vm.send(b"quit\r")
    assert vm.wait() == 0


def start_qmp_vm(session, probe, tmp_path, *extra):
    path = tmp_path / "qmp.sock"
    vm = session([str(KESTREL), "-m", "128m", "-smp", "2", "-name", "myos", "-nographic",
                  "-qmp", f"unix:{path},server,nowait", *extra, "-kernel", probe,
                  "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    return vm, QMP(path)


def test_qmp_session(probe, session, tmp_path):
    vm, q = start_qmp_vm(session, probe, tmp_path)
    assert q.greeting["QMP"]["version"]["qemu"]["major"] == 7
    assert q.cmd("query-status")["error"]["class"] == "CommandNotFound"  # not negotiated
    assert q.cmd("qmp_capabilities") == {"return": {}}
    assert q.cmd("query-status")["return"] == {"status": "running", "singlestep": False,
                                               "running": True}
    cpus = q.cmd("query-cpus-fast")["return"]
    assert [c["cpu-index"] for c in cpus] == [0, 1]
    assert all(isinstance(c["thread-id"], int) and c["thread-id"] > 0 for c in cpus)
    assert q.cmd("query-block") == {"return": []}
    assert q.cmd("query-kvm")["return"] == {"enabled": True, "present": True}
    assert q.cmd("query-name")["return"] == {"name": "myos"}
    assert "qemu" in q.cmd("query-version")["return"]

    assert q.cmd("stop") == {"return": {}}
    q.event("STOP")
    assert q.cmd("query-status")["return"]["status"] == "paused"
    assert q.cmd("cont") == {"return": {}}
    q.event("RESUME")
    vm.send(b"resumed\r")
    vm.expect(r"probe: echo: resumed")

    hmp = q.cmd("human-monitor-command", **{"command-line": "info status"})
    assert hmp == {"return": "VM status: running\r\n"}

    assert q.cmd("system_powerdown") == {"return": {}}
    q.event("POWERDOWN")
    shutdown = q.event("SHUTDOWN")
    assert shutdown["data"] == {"guest": True, "reason": "guest-shutdown"}
    assert vm.wait() == 0
    assert "probe: echo: power button pressed" in vm.text()


def test_qmp_quit_and_events_carry_timestamps(probe, session, tmp_path):
    vm, q = start_qmp_vm(session, probe, tmp_path)
    q.cmd("qmp_capabilities")
    q.cmd("stop")
    ev = q.event("STOP")
    assert set(ev["timestamp"]) == {"seconds", "microseconds"}
    assert q.cmd("quit") == {"return": {}}
    assert q.event("SHUTDOWN")["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert vm.wait() == 0


def test_qmp_system_reset_reboots(probe, session, tmp_path):
    vm, q = start_qmp_vm(session, probe, tmp_path)
    q.cmd("qmp_capabilities")
    q.cmd("system_reset")
    assert q.event("RESET")["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    vm.expect(r"(?s)echo: ready.*probe: start.*echo: ready")


def test_qmp_bad_input_keeps_the_vm_running(probe, session, tmp_path):
    vm, q = start_qmp_vm(session, probe, tmp_path)
    q.cmd("qmp_capabilities")
    q.send_raw(b'{"execute": "query-status"')      # split across writes
    q.send_raw(b'}')
    assert q.reply()["return"]["running"] is True
    q.send_raw(b'{not json}')
    assert q.reply()["error"]["class"] == "GenericError"
    assert q.cmd("no-such-command")["error"]["class"] == "CommandNotFound"
    bad = q.cmd("human-monitor-command", **{"command-line": 42})
    assert bad["error"]["class"] == "GenericError"
    q.send_raw(b'{"execute": "query-kvm", "arguments": {"x": 1}}')
    assert q.reply()["error"]["class"] == "GenericError"
    q.send_raw(b'{"execute": "query-kvm", "id": "abc"}')
    assert q.reply() == {"return": {"enabled": True, "present": True}, "id": "abc"}
    q.send_raw(b'["' + b"x" * (2 << 20) + b'"]')  # oversized
    assert q.reply()["error"]["class"] == "GenericError"
    assert q.cmd("query-status")["return"]["running"] is True
    q.send_raw(b'{"execute": "query-st')            # and leave mid-message
    q.close()

    path = tmp_path / "qmp.sock"
    for _ in range(100):                             # clients come and go
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(path))
        s.recv(4096)
        s.close()
    q2 = QMP(path)
    q2.cmd("qmp_capabilities")
    assert q2.cmd("query-status")["return"]["running"] is True
    vm.send(b"alive\r")
    vm.expect(r"probe: echo: alive")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening_addresses(port):
    """Local addresses with a TCP listener on port, from /proc/net/tcp{,6}."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.split(":")
                if int(p, 16) == port and state == "0A":
                    found.append(addr)
    return found


def test_qmp_over_tcp_listens_on_loopback_only(probe, session):
    port = free_port()
    vm = session([str(KESTREL), "-nographic", "-qmp", f"tcp::{port},server,nowait",
                  "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    # 127.0.0.1 in /proc/net/tcp's little-endian hex, never 0.0.0.0.
    assert listening_addresses(port) == ["0100007F"]
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    greeting = json.loads(s.makefile().readline())
    assert "QMP" in greeting
    s.close()


def test_chardev_and_mon_options(probe, session, tmp_path):
    path = tmp_path / "mon.sock"
    vm = session([str(KESTREL), "-nographic", "-chardev",
                  f"socket,id=mon0,path={path},server=on,wait=off",
                  "-mon", "chardev=mon0,mode=control", "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    q = QMP(path)
    q.cmd("qmp_capabilities")
    labels = {c["label"]: c for c in q.cmd("query-chardev")["return"]}
    assert labels["mon0"]["filename"].startswith(f"unix:{path}")
    assert labels["serial0"]["filename"] == "stdio"
    q.cmd("quit")
    assert vm.wait() == 0


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def drain(vm):
    """Takes whatever the VM printed so far without waiting; returns the last tick seen."""
    while select.select([vm.proc.stdout], [], [], 0)[0]:
        chunk = os.read(vm.proc.stdout.fileno(), 65536)
        if not chunk:
            break
        vm.output += chunk
    ticks = re.findall(rb"probe: tick (\d+)", vm.output)
    return int(ticks[-1]) if ticks else 0


def test_a_client_that_never_reads_stalls_nobody(probe, session, tmp_path):
    """Issue #16, Must show: an HMP client sends 140 `xp /4096g 0` (about 16 MiB of
    answers) and never reads.  Another client's 1,000 QMP round trips keep a p99
    under 50 ms, the guest's serial output keeps flowing, and kestrel's memory
    stays bounded (the hostile client's backlog is capped; its input waits)."""
    hmp_path, qmp_path = tmp_path / "hmp.sock", tmp_path / "qmp.sock"
    vm = session([str(KESTREL), "-m", "128m", "-nographic",
                  "-monitor", f"unix:{hmp_path},server,nowait",
                  "-qmp", f"unix:{qmp_path},server,nowait",
                  "-kernel", probe, "-append", "probe=tick,ms=5"])
    vm.expect(r"probe: tick 1\b")
    q = QMP(qmp_path)
    q.cmd("qmp_capabilities")
    rss_before = vm_rss_kib(vm.proc.pid)

    hostile = hmp_socket(hmp_path)
    hostile.setblocking(False)
    pending = b"xp /4096g 0\r" * 140
    start = time.monotonic()
    times, last_tick, last_tick_at = [], drain(vm), start
    stalls = []
    for _ in range(1000):
        if pending:                                # push what the socket takes
            try:
                pending = pending[hostile.send(pending):]
            except BlockingIOError:
                pass
        t0 = time.monotonic()
        assert q.cmd("query-status")["return"]["running"] is True
        times.append(time.monotonic() - t0)
        now = time.monotonic()
        if now - last_tick_at >= 0.25:             # serial output keeps coming
            tick = drain(vm)
            if tick <= last_tick:
                stalls.append(round(now - start, 3))
            last_tick, last_tick_at = tick, now
    # A last look at the serial side after the round trips, with the client still silent.
    time.sleep(0.3)
    assert drain(vm) > last_tick, "guest serial output stopped"
    rss_after = vm_rss_kib(vm.proc.pid)

    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    assert p99 < 0.050, f"p99 {p99 * 1000:.1f} ms; slowest {times[-5:]}"
    assert not stalls, f"serial output stalled at {stalls}"
    # One client's backlog is bounded by CHARDEV_OUT_HIGH plus one answer (~120 KiB).
    assert rss_after - rss_before < 16 * 1024, (rss_before, rss_after)
    print(f"monitor robustness: 1000 QMP round trips beside a silent HMP client: "
          f"p50 {times[499] * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {times[-1] * 1000:.2f} ms; "
          f"VmRSS {rss_before} -> {rss_after} KiB")

    # The silent client was throttled, not served in full: it gets its answers once it reads.
    hostile.setblocking(True)
    hostile.settimeout(20)
    got = b""
    while got.count(b"(qemu) ") < 2:
        got += hostile.recv(65536)
    assert b"0000000000000000:" in got
    hostile.close()
    assert q.cmd("query-status")["return"]["running"] is True
    q.cmd("quit")
    assert vm.wait() == 0
