"""kestrel-img commands beside qemu-img: create/amend/resize/measure, commit,
rebase, compare exit codes, dd, bench, help, locking and format probing."""
import os
import shutil
import subprocess
import time

import pytest

from test_img_helpers import (BLOCK_IO, KIMG, Holder, Writer, header_field, kimg, make_raw,
                              needs_build, needs_qemu_img, ok, qemu_check_clean, qimg,
                              read_raw_via_qemu, run)

pytestmark = [needs_build, needs_qemu_img]


def both(*args, cwd=None):
    """The same command through kestrel-img and qemu-img, on copies of the inputs."""
    return kimg(*args, cwd=cwd), qimg(*args, cwd=cwd)


def prealloc_size(tmp_path, size, full):
    """falloc/full take the space for real, twice (both programs' images): the
    size, or the largest power of two this host's free space allows (an eighth
    of it per image), written zeroes (full) capped at 1 GiB to bound the time."""
    want = {"0": 0, "1": 1, "64M": 64 << 20, "1G": 1 << 30, "1T": 1 << 40}[size]
    cap = shutil.disk_usage(tmp_path).free // 8
    cap = min(cap, (1 << 30) if full else (4 << 30))
    while want > cap:
        want //= 2
    assert want >= 64 << 20 or size in ("0", "1", "64M"), "no room to preallocate at all"
    return str(want)


@pytest.mark.parametrize("opts", [
    "", "cluster_size=4096", "compat=0.10", "lazy_refcounts=on", "refcount_bits=1",
    "refcount_bits=64,cluster_size=512", "compression_type=zstd", "cluster_size=2M",
    "preallocation=metadata", "preallocation=falloc", "preallocation=full,cluster_size=65536",
])
@pytest.mark.parametrize("size", ["0", "1", "64M", "1G", "1T"])
def test_create_like_qemu(tmp_path, opts, size):
    k, q = tmp_path / "k.qcow2", tmp_path / "q.qcow2"
    try:
        compare_create(tmp_path, opts, size, k, q)
    finally:
        # preallocation=full writes gigabytes: gone once compared (pytest keeps tmp_path).
        k.unlink(missing_ok=True)
        q.unlink(missing_ok=True)


def compare_create(tmp_path, opts, size, k, q):
    if "full" in opts or "falloc" in opts:
        size = prealloc_size(tmp_path, size, full="full" in opts)
    args = ["-f", "qcow2"] + (["-o", opts] if opts else [])
    kr = kimg("create", *args, k, size)
    qr = qimg("create", *args, q, size)
    assert kr[0] == qr[0]
    if qr[0]:
        return
    assert kr[1].replace("k.qcow2", "q.qcow2") == qr[1]
    qemu_check_clean(k)
    kj = ok(qimg("info", "--output=json", k)).replace("k.qcow2", "q.qcow2").splitlines()
    qj = ok(qimg("info", "--output=json", q)).splitlines()
    assert [l for l in kj if "actual-size" not in l] == [l for l in qj if "actual-size" not in l]
    assert ok(kimg("map", "--output=json", k)) == ok(qimg("map", "--output=json", k))
    if not opts.startswith("preallocation") and size != "1T" and "512" not in opts:
        # Same bytes as qemu-img's fresh image, up to the end of qemu-img's file.
        kb, qb = k.read_bytes(), q.read_bytes()
        assert kb[:len(qb)] == qb and not kb[len(qb):].strip(b"\0")


def test_create_errors_like_qemu(tmp_path):
    cases = [
        ["-f", "qcow2", "-o", "cluster_size=3000", "x", "1M"],
        ["-f", "qcow2", "-o", "compat=0.10,lazy_refcounts=on", "x", "1M"],
        ["-f", "qcow2", "-o", "compat=0.10,refcount_bits=8", "x", "1M"],
        ["-f", "qcow2", "-o", "refcount_bits=128", "x", "1M"],
        ["-f", "qcow2", "x"],
        ["-f", "qcow2", "x", "1000"],
        ["-f", "qcow2", "-b", "missing.qcow2", "-F", "qcow2", "x"],
        ["-f", "raw", "-b", "x", "y", "1M"],
    ]
    for c in cases:
        k, q = both("create", *c, cwd=tmp_path)
        assert (k[0] != 0) == (q[0] != 0), (c, k, q)


def test_create_help(tmp_path):
    rc, out, err = kimg("create", "-f", "qcow2", "-o", "help")
    assert rc == 0 and "cluster_size=<size>" in out and "refcount_bits=<num>" in out
    rc, out, err = kimg("--help")
    assert rc == 0 and "Command syntax:" in out and "convert" in out
    for cmd in ("create", "info", "check", "convert", "resize", "map", "compare", "snapshot",
                "commit", "rebase", "amend", "measure", "dd", "bench"):
        rc, out, err = kimg(cmd, "--help")
        assert rc == 0 and out.startswith("Usage: kestrel-img " + cmd), cmd


def test_create_with_backing(tmp_path):
    ok(qimg("create", "-q", "-f", "qcow2", tmp_path / "base.qcow2", "48M"))
    ok(kimg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
            tmp_path / "top.qcow2"))
    info = ok(qimg("info", "--output=json", tmp_path / "top.qcow2"))
    assert '"backing-filename": "base.qcow2"' in info and '"virtual-size": 50331648' in info
    assert ok(kimg("info", tmp_path / "top.qcow2")) == ok(qimg("info", tmp_path / "top.qcow2"))
    # Without -F qemu-img 7.2 refuses; so does kestrel-img.
    rc, out, err = kimg("create", "-f", "qcow2", "-b", "base.qcow2", tmp_path / "x.qcow2")
    assert rc == 1 and "backing format" in err


@pytest.mark.parametrize("opts", ["", "compat=0.10", "cluster_size=4096"])
def test_resize_grow_and_shrink(tmp_path, opts):
    img = tmp_path / "r.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", *(["-o", opts] if opts else []), img, "8M"))
    w = Writer(tmp_path, 8 << 20, seed=4)
    w.random_ops(80, 4096 if "4096" in opts else 65536)
    w.apply(img)
    ok(kimg("resize", img, "+4G"))
    qemu_check_clean(img)
    data = read_raw_via_qemu(img, tmp_path)
    assert len(data) == (8 << 20) + (4 << 30) and data[:8 << 20] == bytes(w.model)
    rc, out, err = kimg("resize", img, "4M")
    assert rc == 1 and "--shrink" in err
    ok(kimg("resize", "--shrink", img, "4M"))
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == bytes(w.model[:4 << 20])
    ok(kimg("resize", "-q", "--shrink", img, "-1M"))
    assert header_field(img, 24, "Q") == 3 << 20
    ok(kimg("resize", "--preallocation=full", img, "+1M"))
    qemu_check_clean(img)
    raw = tmp_path / "r.raw"
    ok(kimg("create", "-q", "-f", "raw", raw, "1M"))
    ok(kimg("resize", "-f", "raw", raw, "3M"))
    assert raw.stat().st_size == 3 << 20


def test_amend(tmp_path):
    img = tmp_path / "a.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", img, "16M"))
    w = Writer(tmp_path, 16 << 20, seed=8)
    w.random_ops(120, 65536)
    w.apply(img)
    for opts in ("lazy_refcounts=on", "refcount_bits=4", "refcount_bits=64",
                 "refcount_bits=16,lazy_refcounts=off", "compat=0.10", "compat=1.1", "size=32M"):
        ok(kimg("amend", "-o", opts, img))
        qemu_check_clean(img)
        assert read_raw_via_qemu(img, tmp_path)[:16 << 20] == bytes(w.model), opts
    info = ok(qimg("info", "--output=json", img))
    assert '"compat": "1.1"' in info and '"refcount-bits": 16' in info
    rc, out, err = kimg("amend", "-o", "cluster_size=4096", img)
    assert rc == 1 and err.endswith("Invalid parameter 'cluster_size'\n"
                                    "This option is only supported for image creation\n")


@pytest.mark.parametrize("args", [["--size", "1G"], ["--size", "10G", "-o", "cluster_size=4k"],
                                  ["--size", "3G", "-o", "refcount_bits=1"], ["IMG"],
                                  ["IMG", "-o", "preallocation=full"], ["IMG", "-O", "raw"]])
def test_measure_like_qemu(tmp_path, args):
    img = tmp_path / "m.qcow2"
    raw = tmp_path / "m.raw"
    make_raw(raw, 12 << 20, seed=2)
    ok(qimg("convert", "-O", "qcow2", raw, img))
    argv = [str(img) if a == "IMG" else a for a in args]
    if "-O" not in argv:
        argv = ["-O", "qcow2"] + argv
    for out in ("human", "json"):
        assert ok(kimg("measure", "--output=" + out, *argv)) == \
            ok(qimg("measure", "--output=" + out, *argv))


def test_measure_snapshot_like_qemu(tmp_path):
    """measure -l counts the snapshot's data, not the active layer's."""
    img = tmp_path / "s.qcow2"
    raw = tmp_path / "s.raw"
    make_raw(raw, 4 << 20, seed=3)
    ok(qimg("convert", "-O", "qcow2", raw, img))
    ok(qimg("snapshot", "-c", "s1", img))
    ok(qimg("resize", img, "64M"))
    make_raw(raw, 64 << 20, seed=4)
    ok(qimg("convert", "-n", "-f", "raw", "-O", "qcow2", raw, img))
    for args in (["-l", "s1"], ["-l", "snapshot.name=s1"], ["-l", "snapshot.id=1"], []):
        for out in ("human", "json"):
            k = ok(kimg("measure", "--output=" + out, "-O", "qcow2", *args, img))
            assert k == ok(qimg("measure", "--output=" + out, "-O", "qcow2", *args, img))
    for cmd in (["measure", "-O", "qcow2"], ["convert", "-O", "raw"]):
        dest = [tmp_path / "out.raw"] if cmd[0] == "convert" else []
        k, q = both(*cmd, "-l", "nosuch", img, *dest)
        assert k[0] == q[0] == 1
        assert k[2].replace("kestrel-img:", "qemu-img:") == q[2] == \
            "qemu-img: Failed to load snapshot: Can't find snapshot\n"
    rc, out, err = kimg("measure", "-O", "qcow2", "-l", "s1", "--size", "1M")
    assert rc == 1 and "--image-opts, -f, and -l require a filename argument." in err


def test_snapshot_on_raw_like_qemu(tmp_path):
    """A format without snapshots: each action fails (or lists nothing) in
    qemu-img's words and exit code."""
    make_raw(tmp_path / "r.raw", 1 << 20, seed=8)
    opts = "driver=raw,file.filename=" + str(tmp_path / "r.raw")
    for act in (["-c", "s1"], ["-a", "s1"], ["-d", "s1"], ["-l"]):
        k, q = both("snapshot", *act, "--image-opts", opts)
        assert k[0] == q[0], act
        assert k[2].replace("kestrel-img:", "qemu-img:") == q[2], act


def test_resize_metadata_raw_like_qemu(tmp_path):
    make_raw(tmp_path / "r.raw", 1 << 20, seed=9)
    k = kimg("resize", "-f", "raw", "--preallocation=metadata", tmp_path / "r.raw", "2M")
    q = qimg("resize", "-f", "raw", "--preallocation=metadata", tmp_path / "r.raw", "2M")
    assert k[0] == q[0] == 1
    assert k[2].replace("kestrel-img:", "qemu-img:") == q[2]


def test_compare_exit_codes(tmp_path):
    a, b = tmp_path / "a.qcow2", tmp_path / "b.raw"
    make_raw(b, 4 << 20, seed=6)
    ok(kimg("convert", "-O", "qcow2", b, a))
    assert kimg("compare", a, b)[0] == qimg("compare", a, b)[0] == 0
    with open(b, "r+b") as f:
        f.seek(3 << 20)
        f.write(b"\x01")
    k, q = both("compare", a, b)
    assert k[0] == q[0] == 1 and k[1] == q[1]
    # Different sizes: fine unless strict, or unless the extra part holds data.
    c = tmp_path / "c.qcow2"
    ok(kimg("convert", "-O", "qcow2", a, c))
    ok(kimg("resize", c, "+1M"))
    k, q = both("compare", a, c)
    assert k[0] == q[0] == 0 and k[1] == q[1]
    k, q = both("compare", "-s", a, c)
    assert k[0] == q[0] == 1 and k[1] == q[1]
    assert kimg("compare", a, tmp_path / "missing")[0] == 2


def test_commit_and_rebase(tmp_path):
    base, mid, top = (tmp_path / n for n in ("base.qcow2", "mid.qcow2", "top.qcow2"))
    ok(qimg("create", "-q", "-f", "qcow2", base, "8M"))
    w = Writer(tmp_path, 8 << 20, seed=21)
    w.random_ops(50, 65536, compressed=False)
    w.apply(base)
    base_data = bytes(w.model)
    ok(kimg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid))
    w.random_ops(50, 65536)
    w.apply(mid)
    mid_data = bytes(w.model)
    ok(kimg("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top))
    w.random_ops(50, 65536)
    w.apply(top)
    top_data = bytes(w.model)

    # Safe rebase of top straight onto base: same content, one link shorter.
    ok(kimg("rebase", "-b", "base.qcow2", "-F", "qcow2", top))
    qemu_check_clean(top)
    assert read_raw_via_qemu(top, tmp_path) == top_data
    assert '"backing-filename": "base.qcow2"' in ok(qimg("info", "--output=json", top))
    # Unsafe rebase only rewrites the name (the safe one made top independent of it).
    ok(kimg("rebase", "-u", "-b", "mid.qcow2", "-F", "qcow2", top))
    assert '"backing-filename": "mid.qcow2"' in ok(qimg("info", "--output=json", top))
    assert read_raw_via_qemu(top, tmp_path) == top_data
    ok(kimg("rebase", "-u", "-b", "base.qcow2", "-F", "qcow2", top))

    # Commit top into base: base holds top's view, top is emptied.
    ok(kimg("commit", top))
    qemu_check_clean(top)
    qemu_check_clean(base)
    assert read_raw_via_qemu(base, tmp_path) == top_data
    assert read_raw_via_qemu(top, tmp_path) == top_data
    assert '"depth": 0, "present": true' not in ok(qimg("map", "--output=json", top))
    # Rebase onto nothing: top becomes standalone with the same content.
    ok(kimg("rebase", "-b", "", top))
    assert "backing" not in ok(qimg("info", top))
    assert read_raw_via_qemu(top, tmp_path) == top_data
    qemu_check_clean(top)


def test_dd(tmp_path):
    raw = tmp_path / "in.raw"
    data = make_raw(raw, 3 << 20, seed=12)
    # qemu-img 7.2 caps the input by count= before skip= applies (skip=3
    # count=7 copies 4 blocks); a skip past that end warns, writes an empty
    # image and exits 0.
    for args, want, warn in ((["bs=64k"], data, False),
                             (["bs=4k", "count=100"], data[:409600], False),
                             (["bs=1k", "skip=3", "count=7"], data[3072:7168], False),
                             (["bs=512", "skip=2048", "count=100"], b"", True),
                             (["bs=1k", "skip=3073"], b"", True)):
        for fmt in ("raw", "qcow2"):
            out = tmp_path / f"out.{fmt}"
            res = {}
            for name, tool in (("k", kimg), ("q", qimg)):
                out.unlink(missing_ok=True)
                rc, o, err = tool("dd", "-f", "raw", "-O", fmt, *args, f"if={raw}", f"of={out}")
                assert rc == 0
                assert ("cannot skip to specified offset" in err) == warn
                if fmt == "qcow2":
                    qemu_check_clean(out)
                res[name] = read_raw_via_qemu(out, tmp_path)
            assert res["k"] == res["q"] == want


def test_bench(tmp_path):
    img = tmp_path / "b.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", img, "64M"))
    rc, out, err = kimg("bench", "-w", "-c", "2000", "-s", "64k", "--pattern=0xab", img)
    assert rc == 0 and "Sending 2000 write requests, 65536 bytes each, 64 in parallel" in out
    assert "Run completed in" in out
    qemu_check_clean(img)
    data = read_raw_via_qemu(img, tmp_path)
    assert data[:2000 * 65536 % (64 << 20) or 64 << 20].count(0xab) > 0
    rc, out, err = kimg("bench", "-c", "5000", "-d", "4", "-S", "12288", img)
    assert rc == 0 and "read requests" in out
    rc, out, err = kimg("bench", "-w", "-c", "100", "--flush-interval=10", "-d", "8", img)
    assert rc == 0 and "Sending flush every 10 requests" in out
    rc, out, err = kimg("bench", "-w", "--flush-interval=2", img)
    assert rc == 1 and "Flush interval can't be smaller than depth" in err
    qemu_check_clean(img)


def test_lock_refuses_second_writer(tmp_path):
    img = tmp_path / "l.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", img, "16M"))
    # block-io holds the image open for writing while it waits on stdin.
    p = subprocess.Popen([str(BLOCK_IO), str(img)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        rc, out, err = kimg("resize", img, "32M")
        assert rc == 1 and f"process {p.pid}" in err, err
        rc, out, err = kimg("snapshot", "-c", "x", img)
        assert rc == 1 and "lock" in err
        # QEMU sees our locks, and we would see its.
        rc, out, err = qimg("info", img)
        assert rc == 1 and "lock" in err
        ok(kimg("info", "-U", img))
        ok(qimg("info", "-U", img))
    finally:
        p.communicate(b"f\n", timeout=30)
    ok(kimg("resize", img, "32M"))


def test_lock_sees_qemu(tmp_path):
    img = tmp_path / "q.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", img, "16M"))
    p = Holder(["qemu-io", "-f", "qcow2"], img)
    try:
        rc, out, err = kimg("resize", img, "32M")
        assert rc == 1 and str(p.proc.pid) in err, err
        rc, out, err = run([BLOCK_IO, img], input=b"")
        assert rc == 1 and "lock" in err
    finally:
        p.close()


def test_probe_warning_for_raw(tmp_path):
    raw = tmp_path / "p.raw"
    ok(kimg("create", "-q", "-f", "raw", raw, "1M"))
    rc, out, err = kimg("resize", raw, "2M")
    assert rc == 0
    assert ("WARNING: Image format was not specified for '%s' and probing guessed raw." % raw) in err
    assert "write operations on block 0 will be restricted" in err
    # A read-only open does not warn, an explicit format does not either.
    assert "WARNING" not in kimg("info", raw)[2]
    assert "WARNING" not in kimg("resize", "-f", "raw", raw, "3M")[2]
    # Writing a qcow2 header into block 0 of a probed raw image is refused.
    q = tmp_path / "hdr.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", q, "1M"))
    data = tmp_path / "d"
    data.write_bytes(q.read_bytes()[:512])
    rc, out, err = run([BLOCK_IO, "-d", data, raw], input=b"w 0 512 0\n")
    assert rc != 0 and "not permitted" in err.lower()
    rc, out, err = run([BLOCK_IO, "-f", "raw", "-d", data, raw], input=b"w 0 512 0\n")
    assert rc == 0
    assert kimg("info", "--output=json", raw)[1].count('"format": "qcow2"') == 1


def test_raw_sparse_map_and_discard(tmp_path):
    raw = tmp_path / "s.raw"
    ok(kimg("create", "-q", "-f", "raw", raw, "8M"))
    data = tmp_path / "d"
    data.write_bytes(os.urandom(1 << 20))
    ok(run([BLOCK_IO, "-f", "raw", "-d", data, raw],
           input=b"w 1048576 1048576 0\nw 5242880 65536 0\nu 1114112 65536\nf\n"))
    assert ok(kimg("map", "--output=json", "-f", "raw", raw)) == \
        ok(qimg("map", "--output=json", "-f", "raw", raw))
    assert ok(kimg("info", "--output=json", raw)) == ok(qimg("info", "--output=json", raw))


def test_cache_modes(tmp_path):
    for cache in ("none", "writethrough", "directsync", "unsafe", "writeback"):
        img = tmp_path / f"c-{cache}.qcow2"
        ok(kimg("create", "-q", "-f", "qcow2", img, "8M"))
        w = Writer(tmp_path, 8 << 20, seed=3)
        w.random_ops(60, 65536)
        try:
            w.apply(img, cache=cache)
        except AssertionError as e:
            if cache in ("none", "directsync") and "O_DIRECT" in str(e):
                pytest.skip("no O_DIRECT on this file system")
            raise
        qemu_check_clean(img)
        assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)


def test_convert_variants(tmp_path):
    a, b = tmp_path / "a.raw", tmp_path / "b.raw"
    da = make_raw(a, 3 << 20, seed=31)
    db = make_raw(b, (5 << 20) + 512, seed=32)
    # Several sources are concatenated, as qemu-img does.
    cat = tmp_path / "cat.qcow2"
    ok(kimg("convert", "-f", "raw", "-O", "qcow2", a, b, cat))
    qemu_check_clean(cat)
    assert read_raw_via_qemu(cat, tmp_path) == da + db
    # -n into an existing image, zeroes written where the source has none.
    tgt = tmp_path / "n.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", tgt, str(len(da) + len(db))))
    ok(run_io_fill(tgt, tmp_path))
    ok(kimg("convert", "-n", "-f", "qcow2", "-O", "qcow2", cat, tgt))
    qemu_check_clean(tgt)
    assert read_raw_via_qemu(tgt, tmp_path) == da + db
    # -B: only what the source's top layer holds goes into the new overlay.
    base = tmp_path / "base.qcow2"
    ok(kimg("convert", "-O", "qcow2", a, base))
    top = tmp_path / "top.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top))
    w = Writer(tmp_path, len(da), seed=33)
    w.model = bytearray(da)
    w.random_ops(40, 65536, compressed=False)
    w.apply(top)
    out = tmp_path / "out.qcow2"
    ok(kimg("convert", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2", top, out))
    qemu_check_clean(out)
    assert read_raw_via_qemu(out, tmp_path) == bytes(w.model)
    assert "base.qcow2" in ok(qimg("info", out))
    assert out.stat().st_size < top.stat().st_size + (1 << 20)
    # -p prints qemu-img's progress lines; -q prints nothing.
    rc, o, e = kimg("convert", "-p", "-O", "raw", cat, tmp_path / "p.raw")
    assert rc == 0 and "(100.00/100%)" in o
    rc, o, e = kimg("convert", "-q", "-p", "-O", "raw", cat, tmp_path / "q.raw")
    assert rc == 0 and o == ""
    # -c with a virtual size that ends inside a cluster.
    odd = tmp_path / "odd.raw"
    dodd = make_raw(odd, 3 * 65536 + 1536, seed=34)
    ok(kimg("convert", "-c", "-O", "qcow2", odd, tmp_path / "odd.qcow2"))
    assert read_raw_via_qemu(tmp_path / "odd.qcow2", tmp_path)[:len(dodd)] == dodd


def run_io_fill(img, tmp_path):
    """Random data everywhere in an image, so a later -n convert must overwrite it."""
    w = Writer(tmp_path, 8 << 20, seed=35)
    for off in range(0, 8 << 20, 1 << 20):
        w.write(off, 1 << 20)
    return run([BLOCK_IO, "-f", "qcow2", "-d", w.data_path, img],
               input=("\n".join(w.lines) + "\n").encode())
