"""libvirt 9.0's capability probe, run for Kestrel and for QEMU 7.2 side by side:

    <binary> -S -no-user-config -nodefaults -nographic -machine none,accel=kvm:tcg
             -qmp unix:SOCK,server=on,wait=off -pidfile PID -daemonize

Both must daemonize once QMP listens, leave the daemon's pid in the pidfile,
answer QMP the same way (prelaunch, query-kvm, cont -> RESUME, quit) and
clean up; the errors of the probe's options must read as QEMU's.  Machine
none runs no guest code, so all of this runs on a host without /dev/kvm.
A real guest held by -S is the one test marked guest."""
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import HAVE_KVM, KESTREL, need_qemu
from qmp_client import QMP

QEMU_BIN = "qemu-system-x86_64"
BINARIES = ["kestrel", "qemu"]


def binary(which):
    if which == "qemu":
        need_qemu()
        return QEMU_BIN
    return str(KESTREL)


def probe_argv(which, sock, pidfile, accel="kvm:tcg"):
    return [binary(which), "-S", "-no-user-config", "-nodefaults", "-nographic",
            "-machine", f"none,accel={accel}", "-qmp", f"unix:{sock},server=on,wait=off",
            "-pidfile", str(pidfile), "-daemonize"]


def alive(pid):
    """True while pid runs (a zombie awaiting its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still running"
        time.sleep(0.02)


def shape(value):
    """A JSON value with the leaves replaced by their types (version numbers differ)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def hmp(q, line):
    return q.cmd("human-monitor-command", **{"command-line": line})


def probe_session(which, tmp_path):
    """Runs the probe line and its QMP dialogue; returns what a comparison needs."""
    d = tmp_path / which
    d.mkdir()
    sock, pidfile = d / "capabilities.monitor.sock", d / "capabilities.pidfile"
    start = time.monotonic()
    p = subprocess.run(probe_argv(which, sock, pidfile), capture_output=True, timeout=30)
    out = {"rc": p.returncode, "start_s": time.monotonic() - start}
    assert p.returncode == 0, p.stderr.decode()
    # The parent returned: QMP already listens and the pidfile names the daemon.
    assert sock.exists() and pidfile.exists()
    text = pidfile.read_text()
    assert re.fullmatch(r"\d+\n", text), repr(text)
    pid = int(text)
    assert pid != p.returncode and alive(pid)
    q = QMP(sock, timeout=10)
    try:
        out["greeting"] = shape(q.greeting)
        out["caps"] = q.greeting["QMP"]["capabilities"]
        out["negotiate"] = q.cmd("qmp_capabilities")
        out["status0"] = q.cmd("query-status")
        out["kvm"] = q.cmd("query-kvm")
        out["version"] = shape(q.cmd("query-version"))
        out["cpus"] = q.cmd("query-cpus-fast")
        out["info_status0"] = hmp(q, "info status")
        out["info_kvm"] = hmp(q, "info kvm")
        # stop and a power button in prelaunch change nothing (no STOP, still prelaunch).
        out["stop_pre"] = q.cmd("stop")
        out["powerdown"] = q.cmd("system_powerdown")
        out["powerdown_ev"] = sorted(q.event("POWERDOWN", timeout=5))
        out["status_pre"] = q.cmd("query-status")
        out["cont"] = q.cmd("cont")
        resume = q.event("RESUME", timeout=5)
        out["resume"] = sorted(resume)
        out["resume_ts"] = shape(resume["timestamp"])
        out["status1"] = q.cmd("query-status")
        out["cont_again"] = q.cmd("cont")        # running already: no second RESUME
        out["stop"] = q.cmd("stop")
        out["stop_ev"] = sorted(q.event("STOP", timeout=5))
        out["status2"] = q.cmd("query-status")
        out["info_status2"] = hmp(q, "info status")
        out["hmp_c"] = hmp(q, "c")               # HMP's short name for cont
        q.event("RESUME", timeout=5)
        out["status3"] = q.cmd("query-status")
        out["quit"] = q.cmd("quit")
        out["shutdown"] = q.event("SHUTDOWN", timeout=5)["data"]
        out["extra_events"] = sorted(e["event"] for e in q.events
                                     if e["event"] not in ("SHUTDOWN",))
    finally:
        q.close()
    wait_gone(pid)
    # QEMU removes both on a clean exit; so must Kestrel.
    out["left_behind"] = sorted(x.name for x in d.iterdir())
    return out


@pytest.mark.parametrize("which", BINARIES)
def test_probe_line_daemonizes_and_serves_qmp(which, tmp_path):
    r = probe_session(which, tmp_path)
    assert r["start_s"] < 10
    assert r["caps"] == ["oob"]
    assert r["negotiate"] == {"return": {}}
    assert r["status0"] == {"return": {"status": "prelaunch", "singlestep": False,
                                       "running": False}}
    # Without /dev/kvm: KVM built in, not enabled (libvirt: "KVM is not supported").
    assert r["kvm"] == {"return": {"enabled": HAVE_KVM, "present": True}}
    assert r["version"] == {"return": {"qemu": {"micro": "int", "minor": "int", "major": "int"},
                                       "package": "str"}}
    assert r["cpus"] == {"return": []}
    assert r["info_status0"] == {"return": "VM status: paused (prelaunch)\r\n"}
    assert r["info_kvm"] == {"return": "kvm support: %s\r\n"
                             % ("enabled" if HAVE_KVM else "disabled")}
    assert r["stop_pre"] == r["powerdown"] == {"return": {}}
    assert r["powerdown_ev"] == ["event", "timestamp"]
    assert r["status_pre"] == r["status0"]
    assert r["cont"] == {"return": {}}
    assert r["resume"] == ["event", "timestamp"]   # QEMU's RESUME carries no data
    assert r["resume_ts"] == {"seconds": "int", "microseconds": "int"}
    assert r["status1"]["return"]["status"] == "running"
    assert r["status1"]["return"]["running"] is True
    assert r["stop"] == {"return": {}}
    assert r["status2"]["return"] == {"status": "paused", "singlestep": False,
                                      "running": False}
    assert r["info_status2"] == {"return": "VM status: paused\r\n"}
    assert r["hmp_c"] == {"return": ""}
    assert r["status3"]["return"]["status"] == "running"
    assert r["quit"] == {"return": {}}
    assert r["shutdown"] == {"guest": False, "reason": "host-qmp-quit"}
    assert r["extra_events"] == []
    assert r["left_behind"] == []


def test_probe_answers_match_qemu(tmp_path):
    """The whole dialogue, Kestrel's against QEMU's, apart from start-up time."""
    k = probe_session("kestrel", tmp_path)
    q = probe_session("qemu", tmp_path)
    for r in (k, q):
        del r["start_s"]
    assert k == q


def run_err(which, *args, pass_fds=(), timeout=20):
    p = subprocess.run([binary(which), *args], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, pass_fds=pass_fds)
    prog = "kestrel" if which == "kestrel" else QEMU_BIN
    # Only the program name differs; QEMU 7.2 may add its ui-module notes.
    lines = [l.replace(prog + ":", "PROG:") for l in p.stderr.decode().splitlines()
             if "module ui-" not in l]
    return p.returncode, lines


# Option errors on the probe's path that QEMU 7.2 and Kestrel must word alike.
SAME_ERRORS = [
    ["-M", "none,accel=foo", "-nodefaults"],
    ["-M", "none", "-accel", "foo", "-nodefaults"],
    ["-M", "none,accel=kvm", "-accel", "kvm", "-nodefaults"],
    ["-M", "none", "-kernel", "/etc/hostname", "-nodefaults"],
    ["-M", "none", "-smp", "2", "-nodefaults"],
    ["-M", "none", "-nographic", "-daemonize"],
    ["-M", "none", "-nographic", "-daemonize", "-serial", "null"],
    ["-M", "none", "-nodefaults", "-msg", "foo=on"],
    ["-M", "none", "-nodefaults", "-msg", "timestamp=maybe"],
    ["-M", "none", "-nodefaults", "-chardev", "null,id=c", "-mon", "chardev=c,id=m",
     "-mon", "chardev=c,id=m"],
    ["-M", "none", "-nodefaults", "-chardev", "socket,id=c,fd=987,server=on,wait=off"],
    ["-M", "none", "-nodefaults", "-chardev",
     "socket,id=c,fd=987,path=/tmp/x.sock,server=on,wait=off"],
]


@pytest.mark.parametrize("args", SAME_ERRORS, ids=lambda a: " ".join(a))
def test_errors_read_as_qemus(args):
    k = run_err("kestrel", *args)
    q = run_err("qemu", *args)
    assert q[0] == 1
    assert k == q


def test_passed_fd_that_is_not_a_socket(tmp_path):
    """libvirt passes its monitor socket as fd=N; a file there is QEMU's error."""
    f = open(tmp_path / "plain", "w")
    try:
        fd = f.fileno()
        args = ["-M", "none", "-nodefaults", "-chardev",
                f"socket,id=charmonitor,fd={fd},server=on,wait=off"]
        k = run_err("kestrel", *args, pass_fds=(fd,))
        q = run_err("qemu", *args, pass_fds=(fd,))
    finally:
        f.close()
    assert k == q
    assert k[1] == [f"PROG: -chardev socket,id=charmonitor,fd={fd},server=on,wait=off: "
                    f"File descriptor '{fd}' is not a socket"]


@pytest.mark.skipif(HAVE_KVM, reason="what happens without /dev/kvm")
@pytest.mark.parametrize("args", [["-M", "none,accel=kvm"], ["-M", "none", "-accel", "kvm"],
                                  ["-M", "none", "-enable-kvm"]],
                         ids=lambda a: " ".join(a))
def test_kvm_alone_without_dev_kvm_fails_as_qemu(args):
    k = run_err("kestrel", *args, "-nodefaults")
    q = run_err("qemu", *args, "-nodefaults")
    assert k == q
    assert k[0] == 1
    assert "failed to initialize kvm: No such file or directory" in k[1][-1]


@pytest.mark.parametrize("args", [["-M", "none,accel=tcg"], ["-M", "none", "-accel", "tcg"]],
                         ids=lambda a: " ".join(a))
def test_tcg_is_refused_as_by_a_qemu_without_tcg(args):
    """Kestrel has no TCG: QEMU's words for an accelerator the binary lacks."""
    rc, lines = run_err("kestrel", *args, "-nodefaults")
    prefix = "-accel tcg: " if "-accel" in args else ""
    assert (rc, lines) == (1, [f"PROG: {prefix}invalid accelerator tcg"])


def test_probe_with_kvm_tcg_lists_tcg_as_missing(tmp_path):
    """kvm:tcg: tcg is reported absent; without /dev/kvm none goes on without KVM."""
    sock, pidfile = tmp_path / "m.sock", tmp_path / "m.pid"
    p = subprocess.run(probe_argv("kestrel", sock, pidfile), capture_output=True, timeout=30)
    err = p.stderr.decode().splitlines()
    try:
        assert p.returncode == 0
        assert err[0] == "kestrel: invalid accelerator tcg"
        if HAVE_KVM:
            assert err[1:] == ["kestrel: falling back to kvm"]
        else:
            assert err[1:] == [
                "Could not access KVM kernel module: No such file or directory",
                "kestrel: failed to initialize kvm: No such file or directory",
                "kestrel: machine 'none' runs no guest code: continuing without an "
                "accelerator"]
    finally:
        q = QMP(sock, timeout=10)
        q.cmd("qmp_capabilities")
        q.cmd("quit")
        q.close()
        wait_gone(int(pidfile.read_text()) if pidfile.exists() else 0)


def test_msg_timestamp_prefixes_errors_as_qemu():
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z "
    args = ["-M", "none", "-nodefaults", "-msg", "timestamp=on", "-smp", "2"]
    k, q = run_err("kestrel", *args), run_err("qemu", *args)
    assert k[0] == q[0] == 1
    assert re.fullmatch(stamp + r"PROG: Invalid SMP CPUs 2\. .*", k[1][0]), k
    assert [re.sub(stamp, "", l) for l in k[1]] == [re.sub(stamp, "", l) for l in q[1]]
    # Its time is now (UTC), not some fixed text.
    when = time.strptime(k[1][0][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(when) - time.mktime(time.gmtime())) < 60
    # timestamp=off (and no -msg): no prefix.
    for extra in (["-msg", "timestamp=off"], []):
        rc, lines = run_err("kestrel", "-M", "none", "-nodefaults", *extra, "-smp", "2")
        assert lines[0].startswith("PROG: Invalid SMP CPUs 2")


def test_msg_guest_name_prefixes_errors():
    rc, lines = run_err("kestrel", "-M", "none", "-nodefaults", "-name", "vm7", "-msg",
                        "guest-name=on", "-smp", "2")
    q = run_err("qemu", "-M", "none", "-nodefaults", "-name", "vm7", "-msg", "guest-name=on",
                "-smp", "2")
    assert (rc, lines) == q
    assert lines[0].startswith("vm7 PROG: Invalid SMP CPUs 2")


def test_machine_help_lists_none():
    out = subprocess.run([str(KESTREL), "-machine", "help"], capture_output=True, text=True,
                         timeout=10).stdout
    qout = subprocess.run([QEMU_BIN, "-machine", "help"], capture_output=True, text=True,
                          timeout=10).stdout
    none = [l for l in out.splitlines() if l.startswith("none ")]
    assert none == [l for l in qout.splitlines() if l.startswith("none ")]


def listening_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(4)
    return s


@pytest.mark.parametrize("which", BINARIES)
def test_monitor_on_a_passed_listening_socket(which, tmp_path):
    """libvirt at start: it binds the monitor socket itself and passes the fd."""
    path = tmp_path / "monitor.sock"
    ls = listening_socket(path)
    fd = ls.fileno()
    p = subprocess.Popen([binary(which), "-S", "-nodefaults", "-display", "none", "-machine",
                          "none", "-chardev", f"socket,id=charmonitor,fd={fd},server=on,wait=off",
                          "-mon", "chardev=charmonitor,id=monitor,mode=control"],
                         pass_fds=(fd,), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ls.close()      # the VMM holds its own copy
    try:
        q = QMP(path, timeout=10)
        assert q.cmd("qmp_capabilities") == {"return": {}}
        assert q.cmd("query-status")["return"]["status"] == "prelaunch"
        assert q.cmd("query-chardev")["return"][0]["label"] == "charmonitor"
        assert q.cmd("cont") == {"return": {}}
        q.event("RESUME", timeout=5)
        assert q.cmd("quit") == {"return": {}}
        q.close()
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_pidfile_is_written_by_the_daemon_before_the_parent_returns(tmp_path):
    """The pid in the file is the daemon's (alive, a session leader), not the parent's."""
    sock, pidfile = tmp_path / "d.sock", tmp_path / "d.pid"
    p = subprocess.run(probe_argv("kestrel", sock, pidfile), capture_output=True, timeout=30)
    assert p.returncode == 0
    pid = int(pidfile.read_text())
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        assert int(fields[3]) == pid         # session id: setsid() was called
        # A second instance with the same pidfile is refused while the first runs.
        sock2 = tmp_path / "d2.sock"
        p2 = subprocess.run(probe_argv("kestrel", sock2, pidfile), capture_output=True,
                            timeout=30)
        assert p2.returncode == 1
        assert "cannot lock" in p2.stderr.decode()
        assert int(pidfile.read_text()) == pid
    finally:
        q = QMP(sock, timeout=10)
        q.cmd("qmp_capabilities")
        q.cmd("quit")
        q.close()
        wait_gone(pid)
    assert not pidfile.exists()


@pytest.mark.guest
def test_start_paused_holds_the_guest_until_cont(probe, session, tmp_path):
    """-S on a real guest: vCPUs exist (query-cpus-fast) but run no code until cont."""
    path = tmp_path / "qmp.sock"
    vm = session([str(KESTREL), "-S", "-m", "128m", "-smp", "2", "-nographic",
                  "-qmp", f"unix:{path},server=on,wait=off", "-kernel", probe,
                  "-append", "probe=hello"])
    q = QMP(path)
    q.cmd("qmp_capabilities")
    assert q.cmd("query-status")["return"]["status"] == "prelaunch"
    cpus = q.cmd("query-cpus-fast")["return"]
    assert [c["cpu-index"] for c in cpus] == [0, 1]
    assert all(c["thread-id"] > 0 for c in cpus)
    time.sleep(1.0)
    assert "probe:" not in vm.text()
    assert q.cmd("cont") == {"return": {}}
    q.event("RESUME")
    vm.expect(r"probe: hello from the kestrel guest probe")
    assert q.cmd("query-status")["return"]["status"] == "running"
    q.cmd("quit")
    vm.wait()
