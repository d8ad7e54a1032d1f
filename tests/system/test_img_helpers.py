"""Helpers shared by the kestrel-img system tests (test_img_*.py); no tests here.

kestrel-img and block-io (the block library driven from stdin) are built by
src/block/meson.build; qemu-img 7.2 (Debian qemu-utils) is the reference."""
import os
import random
import re
import shutil
import struct
import socket
import subprocess
import time
from pathlib import Path

import pytest

# The file's allocated byte ranges (SEEK_DATA/SEEK_HOLE): one walker, the
# differential matrix's (img_matrix.py runs without pytest, so it lives there).
from img_matrix import extents as data_extents  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / os.environ.get("KESTREL_BUILD", "build")
KIMG = BUILD / "src" / "block" / "kestrel-img"
BLOCK_IO = BUILD / "src" / "block" / "block-io"

SANITIZER_REPORT = re.compile(r"ERROR: (Leak|Address)Sanitizer|runtime error: ")

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                    reason="qemu-img (qemu-utils) is not installed")
needs_build = pytest.mark.skipif(not KIMG.exists(), reason=f"{KIMG} is not built")


def run(argv, input=None, timeout=300, cwd=None):
    """Runs a command; returns (exit status, stdout, stderr) as text."""
    p = subprocess.run([str(a) for a in argv], input=input, capture_output=True,
                       timeout=timeout, cwd=cwd)
    err = p.stderr.decode(errors="replace")
    # Under the sanitizer build a leak or other report fails the test even where
    # the command was meant to fail (bad input exits non-zero anyway).
    assert not SANITIZER_REPORT.search(err), f"{argv[0]}: sanitizer report\n{err}"
    return p.returncode, p.stdout.decode(errors="replace"), err


def kimg(*args, **kw):
    return run([KIMG, *args], **kw)


def qimg(*args, **kw):
    return run(["qemu-img", *args], **kw)


def ok(res):
    rc, out, err = res
    assert rc == 0, f"exit {rc}\nstdout:\n{out}\nstderr:\n{err}"
    return out


def qemu_check_clean(path):
    """qemu-img check must find no errors and no leaks."""
    rc, out, err = qimg("check", path)
    assert rc == 0, f"qemu-img check {path}: exit {rc}\n{out}\n{err}"


def read_raw_via_qemu(path, tmp):
    out = Path(tmp) / (Path(path).name + ".qemu.raw")
    ok(qimg("convert", "-O", "raw", path, out))
    data = out.read_bytes()
    out.unlink()
    return data


def read_raw_via_kestrel(path, tmp, *extra):
    out = Path(tmp) / (Path(path).name + ".k.raw")
    ok(kimg("convert", *extra, "-O", "raw", path, out))
    data = out.read_bytes()
    out.unlink()
    return data


class Writer:
    """Builds a request script for block-io and the model of what the disk holds."""

    def __init__(self, tmp, size, seed, data_size=8 << 20):
        self.rnd = random.Random(seed)
        self.size = size
        self.model = bytearray(size)
        self.data_path = Path(tmp) / f"data{seed}"
        # Half random, half compressible, so compressed writes shrink.
        half = data_size // 2
        rnd = random.Random(seed ^ 0x5EED)
        self.data = rnd.randbytes(half) + (b"kestrel-img " * (half // 12 + 1))[:half]
        self.data_path.write_bytes(self.data)
        self.lines = []

    def write(self, off, length, doff=None):
        if doff is None:
            doff = self.rnd.randrange(0, len(self.data) - length)
        self.lines.append(f"w {off} {length} {doff}")
        self.model[off:off + length] = self.data[doff:doff + length]

    def compressed(self, off, length, doff=None):
        if doff is None:
            doff = self.rnd.randrange(len(self.data) // 2, len(self.data) - length)
        self.lines.append(f"c {off} {length} {doff}")
        self.model[off:off + length] = self.data[doff:doff + length]

    def zero(self, off, length):
        self.lines.append(f"z {off} {length}")
        self.model[off:off + length] = bytes(length)

    def discard(self, off, length):
        self.lines.append(f"u {off} {length}")
        self.model[off:off + length] = bytes(length)

    def flush(self):
        self.lines.append("f")

    def random_ops(self, n, cluster, compressed=True):
        for _ in range(n):
            op = self.rnd.random()
            off = self.rnd.randrange(0, self.size)
            if op < 0.55:
                length = self.rnd.randrange(1, min(self.size - off, 3 * cluster) + 1)
                if self.rnd.random() < 0.5:
                    off -= off % 512
                    length = min(max(512, length - length % 512), self.size - off)
                self.write(off, length)
            elif op < 0.65:
                self.zero(off, self.rnd.randrange(1, min(self.size - off, 4 * cluster) + 1))
            elif op < 0.75:
                self.discard(off, self.rnd.randrange(1, min(self.size - off, 4 * cluster) + 1))
            elif op < 0.9 and compressed:
                c = self.rnd.randrange(0, self.size // cluster)
                self.compressed(c * cluster, min(cluster, self.size - c * cluster))
            else:
                self.flush()

    def apply(self, image, fmt="qcow2", cache="writeback"):
        ok(run([BLOCK_IO, "-f", fmt, "-t", cache, "-d", self.data_path, image],
               input=("\n".join(self.lines) + "\n").encode()))
        self.lines = []


def both_tools(*args, env=None):
    """The same command through qemu-img and kestrel-img: (qemu, kestrel) CompletedProcess."""
    q = subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True,
                       timeout=60, env=env)
    k = subprocess.run([str(KIMG), *map(str, args)], capture_output=True, text=True,
                       timeout=60, env=env)
    return q, k


def same_as_qemu_img(*args, env=None):
    """Both tools answer alike: exit status, stdout, and stderr with the program name."""
    q, k = both_tools(*args, env=env)
    assert (k.returncode, k.stdout, k.stderr.replace("kestrel-img:", "qemu-img:")) == \
        (q.returncode, q.stdout, q.stderr), args
    return k


def make_raw(path, size, seed, regions=40):
    """A sparse raw file with random, compressible and zero regions."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for _ in range(regions):
            off = rnd.randrange(0, size)
            length = min(rnd.randrange(1, 300000), size - off)
            f.seek(off)
            kind = rnd.random()
            if kind < 0.4:
                f.write(rnd.randbytes(length))
            elif kind < 0.8:
                f.write((b"kestrel" * (length // 7 + 1))[:length])
            else:
                f.write(bytes(length))
    return Path(path).read_bytes()


def header_field(path, offset, fmt, value=None):
    """Reads (or, given value, overwrites) one big-endian qcow2 header field."""
    size = struct.calcsize(">" + fmt)
    with open(path, "r+b") as f:
        f.seek(offset)
        old = struct.unpack(">" + fmt, f.read(size))[0]
        if value is not None:
            f.seek(offset)
            f.write(struct.pack(">" + fmt, value))
    return old


def poke(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def free_port():
    """A TCP port on 127.0.0.1 nothing listens on now (for a server the test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def holds_locks(pid):
    """True once the process has an OFD lock on some file (QEMU's lock bytes)."""
    fddir = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fddir):
        try:
            with open(os.path.join(fddir, fd)) as f:
                if any(line.startswith("lock:") for line in f):
                    return True
        except OSError:
            pass
    return False


class Holder:
    """A process that holds an image open, started and waited for until its locks are
    taken (polling with qemu-img info instead races the holder and can make it fail)."""

    def __init__(self, argv, image):
        self.proc = subprocess.Popen([*map(str, argv), str(image)], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not holds_locks(self.proc.pid):
            assert self.proc.poll() is None, "the lock holder exited"
            assert time.monotonic() < deadline, "the lock holder took no lock"
            time.sleep(0.02)

    def close(self):
        self.proc.communicate(b"", timeout=30)
