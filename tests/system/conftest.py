"""Shared helpers for the system tests: they run the real kestrel binary and
the reference peer (QEMU 7.2) against real guests."""
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / os.environ.get("KESTREL_BUILD", "build")
KESTREL = BUILD / "src" / "kestrel"
PROBE = BUILD / "tests" / "guest" / "probe" / "probe.elf"

# QEMU 7.2 on these hosts: plain "-cpu host" aborts on MSR 0x10a (DESIGN.md).
QEMU = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host,-arch-capabilities"]


# Decided once for the whole run: a test marked "guest" (or "linux", which boots
# one) needs a vCPU, and on a host without /dev/kvm it is skipped with this
# reason; every other test runs for real there (README: what runs where).
HAVE_KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)
NO_KVM = "no /dev/kvm on this host"


def pytest_configure(config):
    config.addinivalue_line("markers", "guest: starts a guest on /dev/kvm (Kestrel's or QEMU's)")
    config.addinivalue_line("markers", "linux: needs the Linux test guest (slow)")
    config.addinivalue_line("markers", "qemu: runs the reference peer QEMU 7.2")
    config.addinivalue_line("markers", "interop: a format's every-option round trip with "
                            "qemu-img (the release stage runs them; the sanitizer stage skips)")


def pytest_collection_modifyitems(config, items):
    if HAVE_KVM:
        return
    skip = pytest.mark.skip(reason=NO_KVM)
    for item in items:
        if item.get_closest_marker("guest") or item.get_closest_marker("linux"):
            item.add_marker(skip)


def host_has_hw_virt():
    with open("/proc/cpuinfo") as f:
        return bool(re.search(r"^flags\b.*\b(vmx|svm)\b", f.read(), re.M))


def run(argv, stdin_data=None, timeout=30):
    """Runs a VMM to completion; returns (exit status, stdout, stderr)."""
    p = subprocess.run(argv, input=stdin_data, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def kestrel(*args, stdin_data=b"", timeout=30):
    return run([str(KESTREL), *args], stdin_data=stdin_data, timeout=timeout)


def qemu(*args, stdin_data=b"", timeout=60):
    return run([*QEMU, *args], stdin_data=stdin_data, timeout=timeout)


class Session:
    """A VMM running in the background, with its console on a pipe."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.output = b""

    def expect(self, pattern, timeout=30):
        """Waits until pattern (a regex) appears in the output; returns the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        while True:
            m = regex.search(self.output)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; output so far:\n"
                                     + self.text())
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    if self.proc.poll() is not None:
                        raise AssertionError(f"exited ({self.proc.returncode}) before {pattern!r}:\n"
                                             + self.text())
                    time.sleep(0.05)
                self.output += chunk

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, timeout=30):
        out, _ = self.proc.communicate(timeout=timeout)
        self.output += out or b""
        return self.proc.returncode

    def text(self):
        return self.output.decode(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def session():
    sessions = []

    def start(argv):
        s = Session(argv)
        sessions.append(s)
        return s

    yield start
    for s in sessions:
        s.kill()


@pytest.fixture(scope="session")
def probe():
    assert PROBE.exists(), f"{PROBE} missing: build first (make build)"
    return str(PROBE)


@pytest.fixture(scope="session")
def kestrel_bin():
    assert KESTREL.exists(), f"{KESTREL} missing: build first (make build)"
    return str(KESTREL)


@pytest.fixture(scope="session")
def linux_guest():
    """The Linux test guest built by tests/guest/linux/build.sh (see run-tests.sh)."""
    d = os.environ.get("KESTREL_LINUX_DIR")
    if not d:
        d = subprocess.run([str(ROOT / "tests/guest/linux/build.sh")], capture_output=True,
                           text=True, check=True).stdout.strip()
    path = Path(d)
    for name in ("bzImage", "vmlinux", "initramfs.cpio"):
        assert (path / name).exists(), f"{path / name} missing"
    return path


def probe_lines(output):
    return [l.rstrip("\r") for l in output.splitlines() if l.startswith("probe:")]


def need_qemu():
    if not shutil.which("qemu-system-x86_64"):
        pytest.fail("qemu-system-x86_64 is not installed (scripts/install-deps.sh installs it)")


def pytest_terminal_summary(terminalreporter):
    """Says how many guest tests were skipped for want of KVM, and which level the
    Linux boot tests reached (init, or the early log)."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and NO_KVM in str(r.longrepr[2])]
    terminalreporter.section("Host")
    if HAVE_KVM:
        terminalreporter.write_line("/dev/kvm present: guest tests ran")
    else:
        terminalreporter.write_line(f"{len(skipped)} guest tests skipped: {NO_KVM}; "
                                    "every other test ran")
    try:
        import test_linux_boot
    except ImportError:
        return
    lines = test_linux_boot.pytest_terminal_summary_lines()
    if lines:
        terminalreporter.section("Linux boot level")
        for line in lines:
            terminalreporter.write_line(line)
