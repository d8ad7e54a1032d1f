"""Cross-validation of kestrel-img and the block library against qemu-img 7.2.

Images kestrel writes (a matrix of create options and write patterns) must
pass `qemu-img check` clean and read back identical through
`qemu-img convert -O raw`; images qemu-img writes must read identically
through kestrel-img; `info`, `check` and `map` JSON must match qemu-img's."""
import pytest

from test_img_helpers import (Writer, kimg, make_raw, needs_build, needs_qemu_img, ok, qimg,
                              qemu_check_clean, read_raw_via_kestrel, read_raw_via_qemu)

pytestmark = [needs_build, needs_qemu_img]

# (create options, cluster size, virtual size)
CREATE_MATRIX = [
    ("cluster_size=65536", 65536, 32 << 20),
    ("cluster_size=512", 512, 8 << 20),
    ("cluster_size=1024,refcount_bits=64", 1024, 16 << 20),
    ("cluster_size=4096,refcount_bits=1", 4096, 16 << 20),
    ("cluster_size=2048,refcount_bits=2", 2048, 8 << 20),
    ("cluster_size=8192,refcount_bits=4", 8192, 16 << 20),
    ("cluster_size=16384,refcount_bits=8", 16384, 16 << 20),
    ("cluster_size=32768,refcount_bits=32", 32768, 16 << 20),
    ("cluster_size=2M", 2 << 20, 64 << 20),
    ("compat=0.10", 65536, 32 << 20),
    ("compat=0.10,cluster_size=4096", 4096, 16 << 20),
    ("compression_type=zstd,cluster_size=8192", 8192, 16 << 20),
    ("lazy_refcounts=on", 65536, 32 << 20),
    ("preallocation=metadata,cluster_size=16384", 16384, 16 << 20),
    ("preallocation=falloc", 65536, 16 << 20),
    ("preallocation=full,cluster_size=4096", 4096, 8 << 20),
]


@pytest.mark.parametrize("opts,cluster,size", CREATE_MATRIX, ids=[m[0] for m in CREATE_MATRIX])
@pytest.mark.parametrize("cache", ["writeback", "unsafe"])
def test_kestrel_writes_qemu_reads(tmp_path, opts, cluster, size, cache):
    img = tmp_path / "k.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", "-o", opts, img, str(size)))
    w = Writer(tmp_path, size, seed=hash((opts, cache)) & 0xffff)
    w.random_ops(250, cluster)
    w.apply(img, cache=cache)
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)
    # A second session on the same image: overwrites, COW, frees.
    w.random_ops(150, cluster)
    w.apply(img, cache=cache)
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)
    assert read_raw_via_kestrel(img, tmp_path) == bytes(w.model)
    ok(kimg("check", img))


PATTERNS = ["sequential", "reverse", "sparse-4k", "whole-disk-zero", "compressed-all",
            "overwrite-compressed", "discard-all", "tail-partial"]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("opts,cluster", [("cluster_size=65536", 65536),
                                          ("cluster_size=4096,compat=0.10", 4096),
                                          ("cluster_size=512,refcount_bits=8", 512)])
def test_write_patterns(tmp_path, pattern, opts, cluster):
    size = 8 << 20 if cluster >= 4096 else (2 << 20)
    size += 1536        # a virtual size that ends inside a cluster
    img = tmp_path / "p.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", "-o", opts, img, str(size)))
    w = Writer(tmp_path, size, seed=len(pattern))
    step = 256 << 10
    if pattern == "sequential":
        for off in range(0, size, step):
            w.write(off, min(step, size - off))
    elif pattern == "reverse":
        for off in reversed(range(0, size, 12288)):
            w.write(off, min(12288, size - off))
    elif pattern == "sparse-4k":
        for off in range(0, size, 3 * cluster + 4096):
            w.write(off, min(4096, size - off))
    elif pattern == "whole-disk-zero":
        for off in range(0, size, step):
            w.write(off, min(step, size - off))
        w.zero(0, size)
        w.write(size // 3, 10000)
    elif pattern in ("compressed-all", "overwrite-compressed"):
        for off in range(0, size, cluster):
            w.compressed(off, min(cluster, size - off))
        if pattern == "overwrite-compressed":
            for off in range(cluster // 2, size, 5 * cluster):
                w.write(off, min(700, size - off))
    elif pattern == "discard-all":
        for off in range(0, size, step):
            w.write(off, min(step, size - off))
        w.flush()
        w.discard(0, size)
        w.write(cluster * 3 + 17, 5000)
    elif pattern == "tail-partial":
        w.write(size - 1000, 1000)
        w.write(size - cluster - 7, 300)
    w.apply(img)
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)


CONVERT_MATRIX = [
    [],
    ["-c"],
    ["-c", "-o", "compression_type=zstd"],
    ["-o", "compat=0.10"],
    ["-o", "cluster_size=512"],
    ["-o", "cluster_size=2M"],
    ["-o", "cluster_size=4k,refcount_bits=1"],
    ["-c", "-o", "cluster_size=4k,refcount_bits=2"],
    ["-S", "0"],
    ["-S", "64k"],
    ["-o", "preallocation=metadata"],
    ["-o", "preallocation=full,cluster_size=16k"],
    ["-o", "lazy_refcounts=on"],
    ["-W", "-m", "16"],
]


@pytest.mark.parametrize("args", CONVERT_MATRIX, ids=[" ".join(a) or "default" for a in CONVERT_MATRIX])
def test_convert_raw_to_qcow2(tmp_path, args):
    raw = tmp_path / "src.raw"
    data = make_raw(raw, 24 << 20, seed=7)
    img = tmp_path / "k.qcow2"
    ok(kimg("convert", "-O", "qcow2", *args, raw, img))
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == data
    assert ok(kimg("info", "--output=json", img)) == ok(qimg("info", "--output=json", img))
    assert ok(kimg("map", "--output=json", img)) == ok(qimg("map", "--output=json", img))
    assert ok(kimg("check", "--output=json", img)) == ok(qimg("check", "--output=json", img))


QEMU_MADE = [
    ["-c"],
    ["-c", "-o", "compression_type=zstd"],
    ["-c", "-o", "cluster_size=512"],
    ["-c", "-o", "cluster_size=2M,compression_type=zstd"],
    ["-o", "compat=0.10"],
    ["-o", "compat=0.10,cluster_size=1k"],
    ["-o", "cluster_size=512"],
    ["-o", "cluster_size=2M"],
    ["-o", "cluster_size=4k,refcount_bits=8"],
    ["-o", "refcount_bits=1"],
    ["-o", "refcount_bits=64"],
    ["-o", "preallocation=metadata"],
    ["-o", "lazy_refcounts=on"],
]


@pytest.mark.parametrize("args", QEMU_MADE, ids=[" ".join(a) for a in QEMU_MADE])
def test_qemu_writes_kestrel_reads(tmp_path, args):
    raw = tmp_path / "src.raw"
    data = make_raw(raw, 24 << 20, seed=3)
    img = tmp_path / "q.qcow2"
    ok(qimg("convert", "-O", "qcow2", *args, raw, img))
    assert read_raw_via_kestrel(img, tmp_path) == data
    ok(kimg("compare", img, raw))
    assert ok(kimg("info", "--output=json", img)) == ok(qimg("info", "--output=json", img))
    assert ok(kimg("info", img)) == ok(qimg("info", img))
    assert ok(kimg("check", "--output=json", img)) == ok(qimg("check", "--output=json", img))
    assert ok(kimg("map", "--output=json", img)) == ok(qimg("map", "--output=json", img))


def test_qemu_snapshots_read_and_listed(tmp_path):
    img = tmp_path / "s.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", img, "16M"))
    ok(run_qemu_io(img, "write -P 0x11 0 1M", "write -P 0x22 5M 64k"))
    ok(qimg("snapshot", "-c", "first", img))
    ok(run_qemu_io(img, "write -P 0x33 0 512k", "write -P 0x44 12M 3M"))
    ok(qimg("snapshot", "-c", "second", img))
    ok(run_qemu_io(img, "write -P 0x55 100k 4k"))
    assert ok(kimg("snapshot", "-l", img)) == ok(qimg("snapshot", "-l", img))
    assert ok(kimg("info", "--output=json", img)) == ok(qimg("info", "--output=json", img))
    assert ok(kimg("check", "--output=json", img)) == ok(qimg("check", "--output=json", img))
    # Reading a snapshot's state (-l) gives what qemu-img gives.
    for snap in ("first", "second"):
        k = tmp_path / f"k-{snap}.raw"
        q = tmp_path / f"q-{snap}.raw"
        ok(kimg("convert", "-l", snap, "-O", "raw", img, k))
        ok(qimg("convert", "-l", snap, "-O", "raw", img, q))
        assert k.read_bytes() == q.read_bytes()
    assert read_raw_via_kestrel(img, tmp_path) == read_raw_via_qemu(img, tmp_path)


def test_kestrel_snapshots_for_qemu(tmp_path):
    img = tmp_path / "s.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", img, "16M"))
    w = Writer(tmp_path, 16 << 20, seed=11)
    w.random_ops(100, 65536)
    w.apply(img)
    first = bytes(w.model)
    ok(kimg("snapshot", "-c", "first", img))
    w.random_ops(100, 65536)
    w.apply(img)
    second = bytes(w.model)
    ok(kimg("snapshot", "-c", "second", img))
    w.random_ops(60, 65536)
    w.apply(img)
    qemu_check_clean(img)
    assert ok(kimg("snapshot", "-l", img)) == ok(qimg("snapshot", "-l", img))
    for name, want in (("first", first), ("second", second)):
        q = tmp_path / f"{name}.raw"
        ok(qimg("convert", "-l", name, "-O", "raw", img, q))
        assert q.read_bytes() == want
    ok(kimg("snapshot", "-a", "first", img))
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == first
    ok(kimg("snapshot", "-d", "first", img))
    qemu_check_clean(img)
    ok(kimg("snapshot", "-a", "second", img))
    assert read_raw_via_qemu(img, tmp_path) == second
    ok(kimg("snapshot", "-d", "second", img))
    qemu_check_clean(img)
    assert ok(qimg("snapshot", "-l", img)) == ""
    # qemu-img may take it from here.
    ok(qimg("snapshot", "-c", "third", img))
    ok(kimg("check", img))


def run_qemu_io(img, *cmds):
    from test_img_helpers import run
    argv = ["qemu-io", "-f", "qcow2"]
    for c in cmds:
        argv += ["-c", c]
    return run(argv + [img])


@pytest.mark.parametrize("depth", [1, 3, 12])
def test_backing_chains(tmp_path, depth):
    size = 4 << 20
    base = tmp_path / "l0.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", base, str(size)))
    model = bytearray(size)
    prev = base
    w = Writer(tmp_path, size, seed=depth)
    for level in range(depth + 1):
        img = prev if level == 0 else tmp_path / f"l{level}.qcow2"
        if level:
            # Alternate who creates the overlay.
            tool = kimg if level % 2 else qimg
            ok(tool("create", "-q", "-f", "qcow2", "-b", prev.name, "-F", "qcow2", img))
        w.model = model
        w.random_ops(40, 65536, compressed=False)
        w.apply(img)
        model = w.model
        prev = img
    top = prev
    assert read_raw_via_kestrel(top, tmp_path) == bytes(model)
    assert read_raw_via_qemu(top, tmp_path) == bytes(model)
    assert ok(kimg("info", "--backing-chain", "--output=json", top)) == \
        ok(qimg("info", "--backing-chain", "--output=json", top))
    assert ok(kimg("map", "--output=json", top)) == ok(qimg("map", "--output=json", top))


def test_persistent_bitmaps_listed_and_counted(tmp_path):
    img = tmp_path / "bm.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", img, "64M"))
    ok(run_qemu_io(img, "write -P 1 0 4M"))
    ok(qimg("bitmap", "--add", img, "b0"))
    ok(qimg("bitmap", "--add", "-g", "128k", "--disable", img, "b1"))
    assert ok(kimg("info", "--output=json", img)) == ok(qimg("info", "--output=json", img))
    assert ok(kimg("info", img)) == ok(qimg("info", img))
    assert ok(kimg("check", "--output=json", img)) == ok(qimg("check", "--output=json", img))


def test_unknown_header_extension_kept(tmp_path):
    import struct
    img = tmp_path / "ext.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", img, "16M"))
    data = bytearray(img.read_bytes())
    # Find the end-of-extensions marker and put an unknown extension before it.
    off = 112
    while struct.unpack(">I", data[off:off + 4])[0] != 0:
        off += 8 + ((struct.unpack(">I", data[off + 4:off + 8])[0] + 7) & ~7)
    data[off:off + 24] = struct.pack(">II", 0x4b455354, 5) + b"hello\0\0\0" + bytes(8)
    img.write_bytes(bytes(data))
    qemu_check_clean(img)
    ok(kimg("resize", img, "32M"))
    ok(kimg("amend", "-o", "lazy_refcounts=on", img))
    ok(kimg("snapshot", "-c", "s", img))
    raw = img.read_bytes()
    assert struct.pack(">II", 0x4b455354, 5) + b"hello" in raw[:65536]
    qemu_check_clean(img)
