"""kestrel-img's front end against qemu-img 7.2: what a script sees (exit codes,
messages, progress lines, map output) and options that must do what they say
(issue 25: convert -S 0/-n, commit -b, file: names, -p steps, map rounding,
check -r lines, open errors, the program's name; issue 26: bench -i/-n,
convert/commit -r, convert --salvage, amend -p/-q/--force, rebase -U)."""
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from test_img_helpers import KIMG, Holder, kimg, needs_build, needs_qemu_img, ok, qimg, run

pytestmark = [needs_build, needs_qemu_img]


def norm(text):
    """kestrel-img's messages with qemu-img's name, to compare them line by line."""
    return "\n".join(l.replace("kestrel-img:", "qemu-img:", 1) if l.startswith("kestrel-img:")
                     else l for l in text.split("\n"))


def both(tmp, setup, *args):
    """Runs args with each tool on its own fresh copy made by setup(dir); returns both."""
    res = {}
    for name, tool in (("q", qimg), ("k", kimg)):
        d = Path(tmp) / name
        d.mkdir(exist_ok=True)
        setup(d)
        rc, out, err = tool(*args, cwd=d)
        res[name] = (rc, out, norm(err), d)
    return res["q"], res["k"]


def qio(*args):
    ok(run(["qemu-io", *args]))


def map_json(path):
    return ok(qimg("map", "--output=json", path))


# --- 1. convert -S 0, convert -n, convert -n -o --------------------------------

def sparse_raw(path, size=4 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
        f.seek(1 << 20)
        f.write(b"kestrel" * 100)


@pytest.mark.parametrize("sparse", [["-S", "0"], []])
@pytest.mark.parametrize("extra", [["-O", "raw"], ["-O", "qcow2"], ["-c", "-O", "qcow2"],
                                   ["-O", "qcow2", "-B", "s.qcow2", "-F", "qcow2"],
                                   ["-c", "-O", "qcow2", "-B", "s.qcow2", "-F", "qcow2"]])
def test_convert_S0_allocates_zero_areas(tmp_path, sparse, extra):
    src = tmp_path / "s.qcow2"
    ok(qimg("create", "-f", "qcow2", src, "4M"))
    qio("-c", "write -P 1 0 64k", "-c", "write -z 1M 64k", src)
    maps = []
    for tool, name in ((qimg, "q"), (kimg, "k")):
        ok(tool("convert", *sparse, *extra, "s.qcow2", f"{name}.img", cwd=tmp_path))
        maps.append(map_json(tmp_path / f"{name}.img"))
    assert maps[1] == maps[0]
    if sparse:	# fully allocated: no zero ranges at all (with -B, none left to the backing file)
        assert '"zero": true' not in maps[1] and '"depth": 1' not in maps[1]


@pytest.mark.parametrize("srcfmt", ["raw", "qcow2"])
def test_convert_n_writes_what_qemu_writes(tmp_path, srcfmt):
    src = tmp_path / f"s.{srcfmt}"
    if srcfmt == "raw":
        sparse_raw(src)
    else:
        ok(qimg("create", "-f", "qcow2", src, "4M"))
        qio("-c", "write -P 1 0 64k", "-c", "write -z 2M 64k", src)
    maps = []
    for tool, name in ((qimg, "q"), (kimg, "k")):
        dst = tmp_path / f"{name}.qcow2"
        ok(qimg("create", "-f", "qcow2", dst, "4M"))
        ok(tool("convert", "-n", "-O", "qcow2", src, dst))
        maps.append(map_json(dst))
        ok(qimg("check", dst))
    assert maps[1] == maps[0]


def test_convert_n_with_o_fails_as_qemu(tmp_path):
    src = tmp_path / "s.raw"
    sparse_raw(src)

    def setup(d):
        ok(qimg("create", "-q", "-f", "qcow2", d / "t.qcow2", "4M"))
    q, k = both(tmp_path, setup, "convert", "-n", "-O", "qcow2", "-o", "cluster_size=4k",
                src, "t.qcow2")
    assert q[0] != 0 and k[0] == q[0]
    assert k[2] == q[2]


# --- 2. commit -b ---------------------------------------------------------------

def chain(d):
    (d / "sub").mkdir()
    ok(qimg("create", "-q", "-f", "qcow2", d / "sub/base.qcow2", "1M"))
    ok(qimg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
            d / "sub/mid.qcow2"))
    ok(qimg("create", "-q", "-f", "qcow2", "-b", "sub/mid.qcow2", "-F", "qcow2",
            d / "top.qcow2"))
    qio("-c", "write -P 0x5a 0 64k", d / "top.qcow2")


@pytest.mark.parametrize("base", ["base.qcow2", "ABS/sub/base.qcow2", "sub/mid.qcow2",
                                  "./sub/../sub/mid.qcow2", "sub/base.qcow2", "nonexist"])
def test_commit_b_finds_base_as_qemu(tmp_path, base):
    def arg(d):
        return base.replace("ABS", str(d))
    res = {}
    for name, tool in (("q", qimg), ("k", kimg)):
        d = tmp_path / name
        d.mkdir()
        chain(d)
        rc, out, err = tool("commit", "-b", arg(d), "top.qcow2", cwd=d)
        res[name] = (rc, out, norm(err).replace(str(d), "DIR"))
        if rc == 0:
            target = d / ("sub/mid.qcow2" if "mid" in base else "sub/base.qcow2")
            ok(run(["qemu-io", "-c", "read -P 0x5a 0 64k", target]))
    assert res["k"] == res["q"]


# --- 3. file: names ----------------------------------------------------------------

def test_file_prefix_stripped(tmp_path):
    def setup(d):
        pass
    q, k = both(tmp_path, setup, "create", "-q", "-f", "qcow2", "file:f.qcow2", "1M")
    assert q[0] == 0 and k[0] == 0
    assert (k[3] / "f.qcow2").exists() and not (k[3] / "file:f.qcow2").exists()
    for cmd in (["info", "file:f.qcow2"], ["info", "--output=json", "file:f.qcow2"],
                ["check", "file:f.qcow2"], ["info", "file:nonexist"]):
        # The same file for both ("disk size" differs between the creators' layouts).
        rq = qimg(*cmd, cwd=q[3])
        rk = kimg(*cmd, cwd=q[3])
        assert (rk[0], rk[1], norm(rk[2])) == rq, cmd


# --- 4. progress, map rounding, check -r lines, open errors ---------------------

def progress_images(d):
    ok(qimg("create", "-q", "-f", "qcow2", d / "p1.qcow2", "64M"))
    qio("-c", "write 0 3M", "-c", "write 5M 100k", "-c", "write -z 8M 1M", "-c", "write 20M 7M",
        "-c", "write 40M 64k", "-c", "write 41M 64k", "-c", "write 50M 13M", d / "p1.qcow2")
    with open(d / "p2.raw", "wb") as f:
        f.truncate(30 << 20)
        for mib in (0, 1, 7, 13, 20, 29):
            f.seek(mib << 20)
            f.write(os.urandom(300 << 10))


@pytest.mark.parametrize("args", [
    ["p1.qcow2"], ["-S", "0", "p1.qcow2"], ["p2.raw"], ["-S", "0", "p2.raw"],
    ["-O", "qcow2", "p1.qcow2"], ["-c", "-O", "qcow2", "p2.raw"], ["p1.qcow2", "p2.raw"],
    ["-S", "64k", "p2.raw"], ["nonexist"]])
def test_convert_progress_lines_as_qemu(tmp_path, args):
    progress_images(tmp_path)
    outs = []
    for tool, name in ((qimg, "q"), (kimg, "k")):
        rc, out, err = tool("convert", "-p", *args, tmp_path / f"out.{name}", cwd=tmp_path)
        outs.append((rc, out, norm(err).replace(f"out.{name}", "OUT")))
    assert outs[1] == outs[0]
    assert outs[0][1].startswith("    (0.00/100%)\r")


def compare_images(d):
    progress_images(d)
    shutil.copy(d / "p1.qcow2", d / "same.qcow2")
    shutil.copy(d / "p1.qcow2", d / "diff.qcow2")
    qio("-c", "write -P 7 51M 512", d / "diff.qcow2")
    ok(qimg("convert", "-O", "raw", d / "p1.qcow2", d / "big.raw"))
    ok(qimg("resize", "-f", "raw", d / "big.raw", "80M"))


@pytest.mark.parametrize("args", [
    ["p1.qcow2", "same.qcow2"], ["p1.qcow2", "diff.qcow2"], ["p1.qcow2", "big.raw"],
    ["p2.raw", "p1.qcow2"], ["-q", "p1.qcow2", "same.qcow2"], ["p1.qcow2", "nonexist"]])
def test_compare_progress_lines_as_qemu(tmp_path, args):
    """qemu-img compare's steps: a run of block status each (2 MiB at most
    when read), lines at least 2% apart, and the line ended on every way out."""
    compare_images(tmp_path)
    q = qimg("compare", "-p", *args, cwd=tmp_path)
    k = kimg("compare", "-p", *args, cwd=tmp_path)
    assert (k[0], k[1], norm(k[2])) == q


def rebase_images(d):
    ok(qimg("create", "-q", "-f", "qcow2", d / "old.qcow2", "64M"))
    qio("-c", "write -P 1 0 9M", "-c", "write -P 2 30M 5M", d / "old.qcow2")
    ok(qimg("create", "-q", "-f", "qcow2", d / "new.qcow2", "40M"))
    qio("-c", "write -P 1 0 4M", d / "new.qcow2")
    ok(qimg("create", "-q", "-f", "qcow2", "-b", "old.qcow2", "-F", "qcow2", d / "top.qcow2"))
    qio("-c", "write -P 3 1M 3M", "-c", "write -P 4 33M 64k", d / "top.qcow2")


@pytest.mark.parametrize("args", [["-b", "new.qcow2", "-F", "qcow2"], ["-b", ""],
                                  ["-u", "-b", "new.qcow2", "-F", "qcow2"],
                                  ["-t", "bogus", "-b", "new.qcow2", "-F", "qcow2"]])
def test_rebase_progress_lines_as_qemu(tmp_path, args):
    """qemu-img rebase: one equal step per run the image does not hold
    (cut at either backing file's end), 0 first and 100 last, the line
    ended on errors too; the images read the same afterwards."""
    q, k = both(tmp_path, rebase_images, "rebase", "-p", *args, "top.qcow2")
    assert k[:3] == q[:3]
    assert q[1].startswith("    (0.00/100%)\r")
    ok(qimg("compare", q[3] / "top.qcow2", k[3] / "top.qcow2"))


def test_commit_progress_first_and_last_lines(tmp_path):
    """qemu-img commit's lines between 0 and 100 vary with timing (see the
    manual); kestrel-img's are the same ends with rising steps between."""
    rebase_images(tmp_path)
    rc, out, err = kimg("commit", "-p", tmp_path / "top.qcow2")
    assert rc == 0, err
    lines = out.split("\r")
    assert lines[0] == "    (0.00/100%)" and lines[-2] == "    (100.00/100%)"
    assert lines[-1] == "\nImage committed.\n"
    vals = [float(l.strip()[1:].split("/")[0]) for l in lines[:-1]]
    assert vals == sorted(vals) and len(vals) > 3
    assert all(b - a > 1 or b == 100 for a, b in zip(vals, vals[1:]))


def test_bench_past_the_end_writes_nothing(tmp_path):
    """qemu-img 7.2 wraps bench offsets at the image size (not at size minus
    the request): a step that does not divide it sends a request past the
    end, which fails as qemu-img's does; kestrel-img checks every offset
    first, so the failing run writes nothing at all.  (qemu-img's own file
    is not compared: which of its other requests land first is a race.)"""
    def setup(d):
        ok(qimg("create", "-q", "-f", "raw", d / "a.raw", "1M"))
        qio("-f", "raw", "-c", "write -P 9 0 1M", d / "a.raw")
    q, k = both(tmp_path, setup, "bench", "-w", "-c", "4", "-S", "1046529", "-f", "raw", "a.raw")
    assert (k[0], k[2]) == (q[0], q[2]) == (1, "qemu-img: Failed request: Input/output error\n")
    assert (k[3] / "a.raw").read_bytes() == b"\x09" * (1 << 20)
    # Wrapped at the size, the 17th request of 64 KiB steps lands at 0 again.
    q, k = both(tmp_path, setup, "bench", "-w", "-c", "17", "-S", "64k", "-f", "raw", "a.raw")
    assert k[0] == q[0] == 0
    assert (k[3] / "a.raw").read_bytes() == (q[3] / "a.raw").read_bytes()


@pytest.mark.parametrize("size,hole_at", [(1000, None), (70000, 66000), (70144, 0)])
def test_map_rounds_raw_to_sectors(tmp_path, size, hole_at):
    img = tmp_path / "odd.raw"
    with open(img, "wb") as f:
        f.truncate(size)
        f.seek(hole_at if hole_at is not None else 0)
        f.write(b"x" if hole_at is not None else os.urandom(size))
    for extra in ([], ["--start-offset=512"], ["--max-length=999"]):
        for out in ("human", "json"):
            q = qimg("map", f"--output={out}", *extra, img)
            k = kimg("map", f"--output={out}", *extra, img)
            assert (k[0], k[1], norm(k[2])) == q, (extra, out)


def leaky(path, needs_rebuild):
    """A qcow2 with leaked clusters (and with needs_rebuild a data cluster counted 0)."""
    ok(qimg("create", "-q", "-f", "qcow2", path, "4M"))
    qio("-c", "write 0 128k", path)
    with open(path, "r+b") as f:
        f.truncate(9 * 65536)
        h = f.read(104)
        f.seek(struct.unpack(">Q", h[48:56])[0])
        rb = struct.unpack(">Q", f.read(8))[0]
        f.seek(rb + 2 * 7)
        f.write(struct.pack(">H", 1))
        f.seek(rb)
        f.write(struct.pack(">H", 2))
        if needs_rebuild:
            f.seek(struct.unpack(">Q", h[40:48])[0])
            l2 = struct.unpack(">Q", f.read(8))[0] & 0xfffffffffe00
            f.seek(rb + 2 * (l2 >> 16))
            f.write(struct.pack(">H", 0))


@pytest.mark.parametrize("fix,rebuild", [("leaks", False), ("all", False), ("leaks", True)])
def test_check_repair_lines_as_qemu(tmp_path, fix, rebuild):
    q, k = both(tmp_path, lambda d: leaky(d / "l.qcow2", rebuild), "check", "-r", fix,
                "l.qcow2")
    assert k[:3] == q[:3]
    assert "Repairing cluster" in q[2] + q[1] or rebuild


def test_open_errors_as_qemu(tmp_path):
    def setup(d):
        (d / "dir").mkdir()
        ok(qimg("create", "-q", "-u", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2",
                d / "nb.qcow2", "1M"))
        ok(qimg("create", "-q", "-f", "qcow2", d / "q.qcow2", "1M"))
        ok(qimg("create", "-q", "-u", "-f", "qcow2", "-b", "loop2.qcow2", "-F", "qcow2",
                d / "loop.qcow2", "1M"))
        ok(qimg("create", "-q", "-u", "-f", "qcow2", "-b", "loop.qcow2", "-F", "qcow2",
                d / "loop2.qcow2", "1M"))
    for args in (["check", "nb.qcow2"], ["resize", "nb.qcow2", "2M"],
                 ["amend", "-o", "size=2M", "nb.qcow2"], ["snapshot", "-l", "nb.qcow2"],
                 ["map", "nb.qcow2"], ["commit", "dir"], ["info", "dir"], ["check", "nope"],
                 ["convert", "nope", "o.raw"], ["info", "--backing-chain", "nb.qcow2"],
                 ["info", "--backing-chain", "loop.qcow2"], ["commit", "-b", "nope", "q.qcow2"],
                 ["create", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", "new.qcow2"],
                 ["rebase", "-b", "gone.qcow2", "-F", "qcow2", "q.qcow2"]):
        shutil.rmtree(tmp_path / "q", ignore_errors=True)
        shutil.rmtree(tmp_path / "k", ignore_errors=True)
        q, k = both(tmp_path, setup, *args)
        assert k[:3] == q[:3], args
        assert q[0] != 0


# --- 5. the program's name as invoked -------------------------------------------

def test_name_as_invoked(tmp_path):
    link = tmp_path / "bin" / "qemu-img"
    link.parent.mkdir()
    link.symlink_to(KIMG)
    for args in (["info", "nonexist"], ["nosuchcommand"], ["convert", "-r", "x", "a", "b"]):
        k = run([link, *args])
        q = qimg(*args)
        assert k[0] != 0 and k[2].startswith("qemu-img: "), args
        if args[0] != "nosuchcommand":
            assert k[2] == q[2], args
    rc, out, _ = run([link, "convert", "-h"])
    assert rc == 0 and "Usage: qemu-img convert" in out and "kestrel-img" not in out
    assert "kestrel-img" not in run([link, "--help"])[1]
    # Under its own name it says its own name.
    assert kimg("info", "nonexist")[2].startswith("kestrel-img: ")


# --- 6. options honoured (issue 26) ----------------------------------------------

def io_uring_calls(args):
    # LeakSanitizer cannot run under ptrace: a sanitizer build would fail at exit.
    p = subprocess.run(["strace", "-f", "-c", "-e", "trace=io_uring_enter", str(KIMG), *args],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    for line in p.stderr.splitlines():
        if line.rstrip().endswith("io_uring_enter"):
            return p.returncode, int(line.split()[3])
    return p.returncode, 0


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_bench_io_uring_uses_the_ring(tmp_path):
    img = tmp_path / "b.raw"
    ok(qimg("create", "-q", "-f", "raw", img, "16M"))
    uring_ok = qimg("bench", "-c", "10", "-i", "io_uring", img)[0] == 0
    rc, calls = io_uring_calls(["bench", "-c", "500", "-i", "io_uring", img])
    if not uring_ok:	# measured: this kernel refuses io_uring, so both must refuse
        assert rc != 0
        return
    assert rc == 0 and calls > 0
    rc, calls = io_uring_calls(["bench", "-c", "500", "-i", "threads", img])
    assert rc == 0 and calls == 0
    rc, calls = io_uring_calls(["bench", "-c", "500", "-w", "-i", "io_uring", img])
    assert rc == 0 and calls > 0


def syscall_count(name, args):
    # LeakSanitizer cannot run under ptrace: a sanitizer build would fail at exit.
    p = subprocess.run(["strace", "-f", "-c", "-e", f"trace={name}", str(KIMG), *args],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    for line in p.stderr.splitlines():
        if line.rstrip().endswith(name):
            return p.returncode, int(line.split()[3])
    return p.returncode, 0


def test_bench_native_aio(tmp_path):
    img = tmp_path / "b.raw"
    ok(qimg("create", "-q", "-f", "raw", img, "16M"))
    # Without O_DIRECT both refuse with file-posix's message, before any output.
    for args in (["-n"], ["-i", "native"], ["-n", "-t", "writeback"],
                 ["-i", "native", "-t", "unsafe", "-w"]):
        q = qimg("bench", "-c", "10", *args, img)
        k = kimg("bench", "-c", "10", *args, img)
        assert q[0] != 0 and (k[0], norm(k[2]), k[1]) == (q[0], q[2], q[1]), args
    # With it, the run goes as qemu-img's (same first line, exit 0).
    for args in (["-n", "-t", "none"], ["-i", "native", "-t", "directsync"]):
        q = qimg("bench", "-c", "100", *args, img)
        k = kimg("bench", "-c", "100", *args, img)
        assert q[0] == k[0] == 0, k[2]
        assert k[1].splitlines()[0] == q[1].splitlines()[0]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_bench_native_uses_linux_aio(tmp_path):
    img = tmp_path / "b.raw"
    ok(qimg("create", "-q", "-f", "raw", img, "16M"))
    for args in (["-n"], ["-i", "native"], ["-w", "-n"], ["-i", "threads", "-n"]):
        rc, calls = syscall_count("io_submit", ["bench", "-c", "500", "-t", "none", *args, img])
        assert rc == 0 and calls > 0, args
    rc, calls = syscall_count("io_submit", ["bench", "-c", "500", "-t", "none", img])
    assert rc == 0 and calls == 0


def timed(tool, *args):
    t = time.monotonic()
    ok(tool(*args))
    return time.monotonic() - t


def test_convert_rate_limit(tmp_path):
    src = tmp_path / "r.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", src, "4M"))
    qio("-c", "write -P 3 0 4M", src)
    # 4 MiB at 1 MiB/s: the first 2 MiB request goes at once, the second waits (qemu-img: 1.94 s).
    assert timed(kimg, "convert", "-r", "1M", "-O", "raw", src, tmp_path / "o.raw") >= 1.6
    assert timed(kimg, "convert", "-O", "raw", src, tmp_path / "o2.raw") < 1.5
    assert (tmp_path / "o.raw").read_bytes() == (tmp_path / "o2.raw").read_bytes()
    q = qimg("convert", "-r", "x", src, tmp_path / "o3.raw")
    k = kimg("convert", "-r", "x", src, tmp_path / "o3.raw")
    assert q[0] != 0 and (k[0], norm(k[2])) == (q[0], q[2])


def test_commit_rate_limit(tmp_path):
    base, top = tmp_path / "b.qcow2", tmp_path / "t.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", base, "2M"))
    ok(qimg("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top))
    qio("-c", "write -P 9 0 1M", top)
    # 1 MiB at 512 KiB/s (qemu-img: 2.07 s).
    assert timed(kimg, "commit", "-r", "512k", top) >= 1.6
    ok(run(["qemu-io", "-c", "read -P 9 0 1M", base]))
    q = qimg("commit", "-r", "x", top)
    k = kimg("commit", "-r", "x", top)
    assert q[0] != 0 and (k[0], norm(k[2])) == (q[0], q[2])


def broken_compressed(path, tmp):
    raw = Path(tmp) / "sv.raw"
    raw.write_bytes((b"kestrel salvage test " * 60000)[:1 << 20])
    ok(qimg("convert", "-c", "-O", "qcow2", raw, path))
    with open(path, "r+b") as f:
        h = f.read(104)
        f.seek(struct.unpack(">Q", h[40:48])[0])
        l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
        f.seek(l2 + 8 * 3)
        e = struct.unpack(">Q", f.read(8))[0]
        f.seek(e & ((1 << 54) - 1))	# cluster 3's compressed bytes: garbage
        f.write(b"\xff" * 64)


def test_convert_salvage(tmp_path):
    img = tmp_path / "svc.qcow2"
    broken_compressed(img, tmp_path)
    q = qimg("convert", "-O", "raw", img, tmp_path / "q0.raw")
    k = kimg("convert", "-O", "raw", img, tmp_path / "k0.raw")
    assert q[0] != 0 and (k[0], norm(k[2])) == (q[0], q[2])
    q = qimg("convert", "--salvage", "-O", "raw", img, tmp_path / "q.raw")
    k = kimg("convert", "--salvage", "-O", "raw", img, tmp_path / "k.raw")
    assert q[0] == 0 and (k[0], norm(k[2])) == (q[0], q[2])
    assert "warning: error while reading offset 196608" in k[2]
    assert (tmp_path / "k.raw").read_bytes() == (tmp_path / "q.raw").read_bytes()
    k = kimg("convert", "-q", "--salvage", "-O", "raw", img, tmp_path / "k.raw")
    assert k[0] == 0 and k[2] == ""


@pytest.mark.parametrize("opt", ["lazy_refcounts=on", "size=8M"])
def test_amend_progress_quiet_force(tmp_path, opt):
    def setup(d):
        ok(qimg("create", "-q", "-f", "qcow2", d / "a.qcow2", "4M"))
    for extra in (["-p"], ["-p", "-q"], ["--force"], ["-q"]):
        shutil.rmtree(tmp_path / "q", ignore_errors=True)
        shutil.rmtree(tmp_path / "k", ignore_errors=True)
        q, k = both(tmp_path, setup, "amend", *extra, "-o", opt, "a.qcow2")
        assert k[:3] == q[:3], extra
        assert ok(qimg("info", "a.qcow2", cwd=k[3])) == ok(qimg("info", "a.qcow2", cwd=q[3]))
    assert q[0] == 0


def test_rebase_U_shares_a_busy_backing_file(tmp_path):
    old, new, ov = tmp_path / "ob.qcow2", tmp_path / "nb.qcow2", tmp_path / "ov.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", old, "1M"))
    ok(qimg("create", "-q", "-f", "qcow2", new, "1M"))
    qio("-c", "write -P 7 0 64k", new)
    # Another process writes the new backing file: qemu-io holds it open read-write.
    holder = Holder(["qemu-io", "-f", "qcow2"], new)
    try:
        res = {}
        for tool, name in ((qimg, "q"), (kimg, "k")):
            for U in ([], ["-U"]):
                ok(qimg("create", "-q", "-f", "qcow2", "-b", old, "-F", "qcow2", ov))
                rc, out, err = tool("rebase", *U, "-F", "qcow2", "-b", new, ov)
                res[name, bool(U)] = (rc, norm(err).split("\n")[0])
        assert res["q", False][0] != 0 and res["q", True][0] == 0
        assert res["k", False] == res["q", False]
        assert res["k", True] == res["q", True]
    finally:
        holder.close()


def test_help_lists_the_formats_this_build_has():
    """--help's "Supported formats:" line comes from the driver table, as qemu-img's does."""
    rc, out, _ = kimg("--help")
    line = [l for l in out.splitlines() if l.startswith("Supported formats:")][0]
    names = line.split(":", 1)[1].split()
    assert names == sorted(names)
    for fmt in ("raw", "qcow2", "vmdk", "vhdx", "vpc", "vdi", "qed", "parallels", "luks", "dmg",
                "cloop", "bochs", "file", "null-co"):
        assert fmt in names, fmt
    for absent in ("vvfat",):
        assert absent not in names
