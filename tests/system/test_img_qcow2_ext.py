"""qcow2 external data files (data_file, data_file_raw) and extended L2 entries
(extended_l2, subclusters) beside qemu-img 7.2, both ways: images qemu-img and
qemu-io make are read by kestrel-img as qemu-img reads them, and images
kestrel-img (and the block layer through block-io) writes pass qemu-img check
and read back as the model of what was written.

Data file names are relative, with the images' directory as the working
directory: qemu-img 7.2 resolves them against the working directory,
Kestrel (like later QEMU) against the image's directory; here both agree."""
import json
import os
import random

import pytest

from test_img_helpers import (KIMG, Writer, kimg, make_raw, needs_build, needs_qemu_img, ok,
                              qimg, run)

pytestmark = [needs_build, needs_qemu_img]

SIZE = 4 << 20

EXT_OPTS = [
    "extended_l2=on",
    "extended_l2=on,cluster_size=16k",
    "extended_l2=on,cluster_size=2M",
    "data_file=img.data",
    "data_file=img.data,data_file_raw=on",
    "data_file=img.data,extended_l2=on",
    "extended_l2=on,preallocation=metadata",
    "data_file=img.data,preallocation=metadata",
]


def read_raw(tool, img, cwd):
    """The disk as raw bytes, converted by tool in the image's directory."""
    out = cwd / "read.raw"
    ok(tool("convert", "-O", "raw", img, out, cwd=cwd))
    data = out.read_bytes()
    out.unlink()
    return data


def norm(text, name):
    return text.replace("kestrel-img", "qemu-img").replace(name, "IMG")


def info_json(path, tool, cwd):
    j = json.loads(ok(tool("info", "--output=json", path, cwd=cwd)))
    j.pop("actual-size", None)
    j["filename"] = "IMG"
    return j


@pytest.mark.parametrize("opts", EXT_OPTS)
def test_create_like_qemu(tmp_path, opts):
    """Same "Formatting" line, info (human and JSON), map and check as qemu-img's image."""
    kd, qd = tmp_path / "k", tmp_path / "q"
    kd.mkdir()
    qd.mkdir()
    kr = kimg("create", "-f", "qcow2", "-o", opts, "img.qcow2", "4M", cwd=kd)
    qr = qimg("create", "-f", "qcow2", "-o", opts, "img.qcow2", "4M", cwd=qd)
    assert kr[0] == qr[0] == 0, (kr, qr)
    assert kr[1] == qr[1]
    if "data_file" in opts:
        assert (kd / "img.data").stat().st_size == (qd / "img.data").stat().st_size == SIZE
    for d in (kd, qd):
        # Each tool reads both images exactly as qemu-img does.
        assert info_json("img.qcow2", kimg, d) == info_json("img.qcow2", qimg, d)
        kh = ok(kimg("info", "img.qcow2", cwd=d)).splitlines()
        qh = ok(qimg("info", "img.qcow2", cwd=d)).splitlines()
        assert [l for l in kh if "disk size" not in l] == [l for l in qh if "disk size" not in l]
        assert ok(kimg("map", "--output=json", "img.qcow2", cwd=d)) == \
            ok(qimg("map", "--output=json", "img.qcow2", cwd=d))
        assert ok(kimg("map", "img.qcow2", cwd=d)) == ok(qimg("map", "img.qcow2", cwd=d))
        assert ok(qimg("check", "img.qcow2", cwd=d)) == ok(kimg("check", "img.qcow2", cwd=d))
    assert info_json("img.qcow2", qimg, kd) == info_json("img.qcow2", qimg, qd)


@pytest.mark.parametrize("opts", [
    "extended_l2=on,compat=0.10",
    "extended_l2=on,cluster_size=8k",
    "data_file=x.data,compat=0.10",
    "data_file_raw=on",
    "data_file=x.data,data_file_raw=on,backing_file=b.raw,backing_fmt=raw",
])
def test_create_errors_like_qemu(tmp_path, opts):
    (tmp_path / "b.raw").write_bytes(bytes(SIZE))
    kr = kimg("create", "-f", "qcow2", "-o", opts, "x.qcow2", "4M", cwd=tmp_path)
    qr = qimg("create", "-f", "qcow2", "-o", opts, "x.qcow2", "4M", cwd=tmp_path)
    assert kr[0] == qr[0] == 1
    assert norm(kr[2], "x.qcow2") == norm(qr[2], "x.qcow2")


def test_backing_with_preallocation_needs_extended_l2(tmp_path):
    """qemu-img allows a backing file with preallocation only with subclusters;
    the preallocated clusters still read from the backing file."""
    make_raw(tmp_path / "b.raw", SIZE, 7)
    args = ["-f", "qcow2", "-b", "b.raw", "-F", "raw", "-o", "preallocation=metadata"]
    r = kimg("create", *args, "x.qcow2", "4M", cwd=tmp_path)
    assert r[0] == 1 and "extended_l2 is on" in r[2]
    ok(kimg("create", *args + ["-o", "extended_l2=on"], "x.qcow2", "4M", cwd=tmp_path))
    assert read_raw(kimg, "x.qcow2", tmp_path) == (tmp_path / "b.raw").read_bytes()
    assert read_raw(qimg, "x.qcow2", tmp_path) == (tmp_path / "b.raw").read_bytes()
    assert ok(kimg("map", "--output=json", "x.qcow2", cwd=tmp_path)) == \
        ok(qimg("map", "--output=json", "x.qcow2", cwd=tmp_path))


# Guest writes through qemu-io: partial subclusters, zeroes with and without
# unmap, discards, writes over a backing file.
QEMU_IO_OPS = [
    "write -P 0x11 4k 2k", "write -P 0x22 70k 10k", "write -z 200k 8k", "discard 1M 64k",
    "write -z 2M 64k", "write -P 0x33 3M 100k", "write -z -u 3M 4k", "write -P 0x44 3000k 7",
    "write -z 3001k 1k", "write -P 0x55 4095k 1k",
]


@pytest.mark.parametrize("opts,backing", [
    ("extended_l2=on", True), ("extended_l2=on", False), ("extended_l2=on,cluster_size=16k", True),
    ("data_file=img.data", False), ("data_file=img.data,data_file_raw=on", False),
    ("data_file=img.data,extended_l2=on", False),
])
def test_qemu_io_writes_read_by_kestrel(tmp_path, opts, backing):
    args = ["-f", "qcow2", "-o", opts]
    if backing:
        make_raw(tmp_path / "b.raw", SIZE, 3)
        args += ["-b", "b.raw", "-F", "raw"]
    ok(qimg("create", *args, "img.qcow2", "4M", cwd=tmp_path))
    cmd = ["qemu-io"] + [a for op in QEMU_IO_OPS for a in ("-c", op)] + ["img.qcow2"]
    ok(run(cmd, cwd=tmp_path))
    assert read_raw(kimg, "img.qcow2", tmp_path) == read_raw(qimg, "img.qcow2", tmp_path)
    for fmt in ("json", "human"):
        assert ok(kimg("map", "--output=" + fmt, "img.qcow2", cwd=tmp_path)) == \
            ok(qimg("map", "--output=" + fmt, "img.qcow2", cwd=tmp_path))
    assert ok(kimg("check", "img.qcow2", cwd=tmp_path)) == \
        ok(qimg("check", "img.qcow2", cwd=tmp_path))
    q = tmp_path / "q.raw"
    ok(qimg("convert", "-O", "raw", "img.qcow2", q, cwd=tmp_path))
    assert "identical" in ok(kimg("compare", "img.qcow2", q, cwd=tmp_path))
    if "data_file_raw" in opts:
        # The data file is the disk as a raw image.
        assert (tmp_path / "img.data").read_bytes() == q.read_bytes()


def test_same_ops_same_map(tmp_path):
    """The block layer's writes make the subcluster layout qemu-io's make, to the offset."""
    make_raw(tmp_path / "b.raw", SIZE, 5)
    for name in ("k.qcow2", "q.qcow2"):
        ok(qimg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "b.raw", "-F", "raw",
                name, "4M", cwd=tmp_path))
    cmd = ["qemu-io"] + [a for op in QEMU_IO_OPS[:7] for a in ("-c", op)] + ["q.qcow2"]
    ok(run(cmd, cwd=tmp_path))
    w = Writer(tmp_path, SIZE, 5)
    w.write(4 << 10, 2 << 10)
    w.write(70 << 10, 10 << 10)
    w.zero(200 << 10, 8 << 10)
    w.discard(1 << 20, 64 << 10)
    w.zero(2 << 20, 64 << 10)
    w.write(3 << 20, 100 << 10)
    w.discard(3 << 20, 4 << 10)
    w.apply(tmp_path / "k.qcow2")
    assert ok(qimg("map", "--output=json", "k.qcow2", cwd=tmp_path)) == \
        ok(qimg("map", "--output=json", "q.qcow2", cwd=tmp_path))
    assert ok(qimg("check", "k.qcow2", cwd=tmp_path)) == ok(qimg("check", "q.qcow2", cwd=tmp_path))


@pytest.mark.parametrize("opts,backing,compressed", [
    ("extended_l2=on", False, True), ("extended_l2=on", True, True),
    ("extended_l2=on,cluster_size=16k", True, False), ("extended_l2=on,lazy_refcounts=on", False, True),
    ("data_file=img.data", False, False), ("data_file=img.data,data_file_raw=on", False, False),
    ("data_file=img.data,extended_l2=on", False, False),
])
def test_random_writes_pass_qemu_check(tmp_path, opts, backing, compressed):
    """Random writes, zeroes, discards (and compressed clusters where allowed)
    through the block layer: qemu-img check finds nothing, both tools read the model."""
    seed = random.Random(opts).randrange(1 << 30) + backing
    args = ["-q", "-f", "qcow2", "-o", opts]
    w = Writer(tmp_path, SIZE, seed)
    if backing:
        make_raw(tmp_path / "b.raw", SIZE, seed)
        args += ["-b", "b.raw", "-F", "raw"]
        w.model[:] = (tmp_path / "b.raw").read_bytes()
    ok(kimg("create", *args, "img.qcow2", "4M", cwd=tmp_path))
    cluster = 16384 if "16k" in opts else 65536
    w.random_ops(250, cluster, compressed=compressed)
    img = tmp_path / "img.qcow2"
    w.apply(img)
    r = qimg("check", "img.qcow2", cwd=tmp_path)
    assert r[0] == 0 and "No errors were found" in r[1], r
    assert read_raw(qimg, "img.qcow2", tmp_path) == bytes(w.model)
    assert read_raw(kimg, "img.qcow2", tmp_path) == bytes(w.model)
    m = tmp_path / "model.raw"
    m.write_bytes(bytes(w.model))
    assert "identical" in ok(qimg("compare", "img.qcow2", m, cwd=tmp_path))
    assert ok(kimg("map", "--output=json", "img.qcow2", cwd=tmp_path)) == \
        ok(qimg("map", "--output=json", "img.qcow2", cwd=tmp_path))
    assert ok(kimg("check", "img.qcow2", cwd=tmp_path)) == r[1]
    if "data_file_raw" in opts:
        assert (tmp_path / "img.data").read_bytes() == bytes(w.model)


@pytest.mark.parametrize("opts", ["extended_l2=on", "data_file=out.data",
                                  "data_file=out.data,extended_l2=on,cluster_size=32k"])
def test_convert_into_and_out_of(tmp_path, opts):
    """convert -O qcow2 -o ... and convert -n into an image made by create: qemu-img
    reads what kestrel-img wrote, and kestrel-img converts it back to the same bytes."""
    src = tmp_path / "src.raw"
    make_raw(src, SIZE, 11)
    ok(kimg("convert", "-O", "qcow2", "-o", opts, "src.raw", "out.qcow2", cwd=tmp_path))
    assert "identical" in ok(qimg("compare", "src.raw", "out.qcow2", cwd=tmp_path))
    assert ok(qimg("check", "out.qcow2", cwd=tmp_path)).startswith("No errors")
    assert read_raw(kimg, "out.qcow2", tmp_path) == src.read_bytes()
    opts2 = opts.replace("out.data", "n.data")
    ok(kimg("create", "-q", "-f", "qcow2", "-o", opts2, "n.qcow2", "4M", cwd=tmp_path))
    ok(kimg("convert", "-n", "-O", "qcow2", "src.raw", "n.qcow2", cwd=tmp_path))
    assert "identical" in ok(qimg("compare", "src.raw", "n.qcow2", cwd=tmp_path))
    assert ok(qimg("check", "n.qcow2", cwd=tmp_path)).startswith("No errors")


def test_data_file_refusals_like_qemu(tmp_path):
    """No internal snapshots and no compressed clusters with an external data file."""
    ok(qimg("create", "-q", "-f", "qcow2", "-o", "data_file=d.raw", "x.qcow2", "1M", cwd=tmp_path))
    kr = kimg("snapshot", "-c", "s1", "x.qcow2", cwd=tmp_path)
    qr = qimg("snapshot", "-c", "s1", "x.qcow2", cwd=tmp_path)
    assert kr[0] == qr[0] == 1
    assert norm(kr[2], "x.qcow2") == norm(qr[2], "x.qcow2")
    # Compressible or not, convert -c fails: the data file holds no compressed clusters.
    for content in (b"\x5a" * (1 << 20), random.Random(1).randbytes(1 << 20)):
        (tmp_path / "s.raw").write_bytes(content)
        kr = kimg("convert", "-c", "-O", "qcow2", "-o", "data_file=c.raw", "s.raw", "c.qcow2",
                  cwd=tmp_path)
        qr = qimg("convert", "-c", "-O", "qcow2", "-o", "data_file=c.raw", "s.raw", "c.qcow2",
                  cwd=tmp_path)
        assert kr[0] == qr[0] == 1
        assert "Operation not supported" in kr[2] and "Operation not supported" in qr[2]


def test_data_file_missing(tmp_path):
    ok(qimg("create", "-q", "-f", "qcow2", "-o", "data_file=d.raw", "x.qcow2", "1M", cwd=tmp_path))
    os.unlink(tmp_path / "d.raw")
    # info reads only metadata: like qemu-img, it works without the data file.
    assert ok(kimg("info", "x.qcow2", cwd=tmp_path)).splitlines()[5:] == \
        ok(qimg("info", "x.qcow2", cwd=tmp_path)).splitlines()[5:]
    for cmd in (["map"], ["check"], ["convert", "-O", "raw", "x.qcow2", "o.raw"]):
        args = cmd + (["x.qcow2"] if len(cmd) == 1 else [])
        kr = kimg(*args, cwd=tmp_path)
        qr = qimg(*args, cwd=tmp_path)
        assert kr[0] == qr[0] == 1
        assert norm(kr[2], "x.qcow2") == norm(qr[2], "x.qcow2")


def test_data_file_relative_to_image(tmp_path):
    """Kestrel opens the data file next to the image from any directory
    (qemu-img 7.2 looks in the working directory: docs/kestrel-img.1)."""
    ok(kimg("create", "-q", "-f", "qcow2", "-o", "data_file=d.raw", "x.qcow2", "1M", cwd=tmp_path))
    ok(run(["qemu-io", "-c", "write -P 0x66 0 64k", "x.qcow2"], cwd=tmp_path))
    out = ok(kimg("map", tmp_path / "x.qcow2", cwd="/"))
    assert f"{tmp_path}/d.raw" in out
    out = tmp_path / "o.raw"
    ok(kimg("convert", "-O", "raw", tmp_path / "x.qcow2", out, cwd="/"))
    assert out.read_bytes()[:65536] == b"\x66" * 65536


@pytest.mark.parametrize("opts,amend", [
    ("extended_l2=on", "extended_l2=off"), ("", "extended_l2=on"), ("", "extended_l2=off"),
    ("extended_l2=on", "compat=0.10"), ("data_file=d.raw", "compat=0.10"),
    ("data_file=d.raw", "data_file_raw=on"), ("", "data_file=d.raw"),
])
def test_amend_refusals_like_qemu(tmp_path, opts, amend):
    args = ["-q", "-f", "qcow2"] + (["-o", opts] if opts else [])
    ok(qimg("create", *args, "x.qcow2", "1M", cwd=tmp_path))
    before = (tmp_path / "x.qcow2").read_bytes()
    kr = kimg("amend", "-o", amend, "x.qcow2", cwd=tmp_path)
    qr = qimg("amend", "-o", amend, "x.qcow2", cwd=tmp_path)
    assert kr[0] == qr[0] == 1
    assert qr[2].split("qemu-img: ")[-1] in kr[2]
    assert (tmp_path / "x.qcow2").read_bytes() == before


def test_amend_data_file_like_qemu(tmp_path):
    for name in ("k", "q"):
        ok(qimg("create", "-q", "-f", "qcow2", "-o", "data_file=d.raw,data_file_raw=on",
                f"{name}.qcow2", "1M", cwd=tmp_path))
    (tmp_path / "d2.raw").write_bytes(bytes(1 << 20))
    ok(kimg("amend", "-o", "data_file=d2.raw,data_file_raw=off", "k.qcow2", cwd=tmp_path))
    ok(qimg("amend", "-o", "data_file=d2.raw,data_file_raw=off", "q.qcow2", cwd=tmp_path))
    assert info_json("k.qcow2", qimg, tmp_path) == info_json("q.qcow2", qimg, tmp_path)
    assert (tmp_path / "k.qcow2").read_bytes() == (tmp_path / "q.qcow2").read_bytes()


@pytest.mark.parametrize("opts", ["extended_l2=on", "extended_l2=on,cluster_size=16k",
                                  "extended_l2=on,cluster_size=2M,refcount_bits=1"])
@pytest.mark.parametrize("size", ["1M", "10G", "1T"])
def test_measure_like_qemu(opts, size):
    assert ok(kimg("measure", "-O", "qcow2", "-o", opts, "--size", size)) == \
        ok(qimg("measure", "-O", "qcow2", "-o", opts, "--size", size))


def test_resize_grows_data_file(tmp_path):
    for name in ("k", "q"):
        ok(qimg("create", "-q", "-f", "qcow2", "-o", f"data_file={name}.data",
                f"{name}.qcow2", "1M", cwd=tmp_path))
    ok(kimg("resize", "k.qcow2", "3M", cwd=tmp_path))
    ok(qimg("resize", "q.qcow2", "3M", cwd=tmp_path))
    assert (tmp_path / "k.data").stat().st_size == (tmp_path / "q.data").stat().st_size
    assert ok(qimg("check", "k.qcow2", cwd=tmp_path)).startswith("No errors")


def test_damaged_entries_reported_like_qemu(tmp_path):
    """A bitmap with a subcluster both allocated and zero, allocation bits on an
    unallocated cluster, a compressed cluster in a data-file image: check counts
    them as qemu-img does."""
    ok(qimg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "x.qcow2", "1M",
            cwd=tmp_path))
    ok(run(["qemu-io", "-c", "write -P 1 0 4k", "x.qcow2"], cwd=tmp_path))
    img = tmp_path / "x.qcow2"
    raw = bytearray(img.read_bytes())
    l1 = int.from_bytes(raw[40:48], "big")
    l2 = int.from_bytes(raw[l1:l1 + 8], "big") & 0x00fffffffffffe00
    raw[l2 + 8:l2 + 16] = (0x0000000100000001).to_bytes(8, "big")   # alloc and zero
    raw[l2 + 24:l2 + 32] = (0x0000000000000003).to_bytes(8, "big")  # alloc bits, no cluster
    img.write_bytes(bytes(raw))
    kr = kimg("check", "x.qcow2", cwd=tmp_path)
    qr = qimg("check", "x.qcow2", cwd=tmp_path)
    assert kr[0] == qr[0] == 2
    assert kr[1] == qr[1]
    assert sorted(kr[2].splitlines()) == sorted(qr[2].splitlines())
    kr = kimg("convert", "-O", "raw", "x.qcow2", "o.raw", cwd=tmp_path)
    qr = qimg("convert", "-O", "raw", "x.qcow2", "o.raw", cwd=tmp_path)
    assert kr[0] == qr[0] == 1
    # The corruption is reported in QEMU's words (the last line is convert's own).
    assert kr[2].splitlines()[0] == qr[2].splitlines()[0]
    assert "Invalid cluster entry found  (L2 offset: " in kr[2]


def test_data_file_bit_without_name_like_qemu(tmp_path):
    """The external data file bit without a name: info shows the image, the rest refuse."""
    ok(qimg("create", "-q", "-f", "qcow2", "x.qcow2", "1M", cwd=tmp_path))
    raw = bytearray((tmp_path / "x.qcow2").read_bytes())
    raw[72:80] = (4).to_bytes(8, "big")
    (tmp_path / "x.qcow2").write_bytes(bytes(raw))
    for args in (["info", "x.qcow2"], ["info", "--output=json", "x.qcow2"], ["map", "x.qcow2"],
                 ["check", "x.qcow2"], ["convert", "-O", "raw", "x.qcow2", "o.raw"]):
        kr = kimg(*args, cwd=tmp_path)
        qr = qimg(*args, cwd=tmp_path)
        assert kr[0] == qr[0], args
        assert norm(kr[2], "x.qcow2") == norm(qr[2], "x.qcow2")
        if args[0] == "info":
            assert [l for l in kr[1].splitlines() if "disk size" not in l and "actual" not in l] \
                == [l for l in qr[1].splitlines() if "disk size" not in l and "actual" not in l]


def test_blockdev_data_file_refused_by_name(tmp_path):
    """The VMM's -blockdev qcow2 node has no data-file= child: refused by name, before
    any guest starts (the data file the image names is opened by the block layer)."""
    kestrel = KIMG.parent.parent / "kestrel"
    if not kestrel.exists():
        pytest.skip("kestrel is not built")
    ok(kimg("create", "-q", "-f", "qcow2", "-o", "data_file=d.raw", "x.qcow2", "1M",
            cwd=tmp_path))
    for extra in ("data-file=other", "data-file.driver=file,data-file.filename=other"):
        rc, out, err = run([kestrel, "-blockdev", "driver=qcow2,node-name=d0,file.driver=file,"
                            f"file.filename={tmp_path}/x.qcow2,{extra}"], timeout=30)
        assert rc != 0 and "data-file= is not supported" in err, (rc, err)


def test_rebase_refused_with_raw_data_file(tmp_path):
    """qcow2 spec: raw external data conflicts with backing files; qemu-img's rebase fails."""
    ok(qimg("create", "-q", "-f", "qcow2", "-o", "data_file=r.raw,data_file_raw=on", "r.qcow2",
            "1M", cwd=tmp_path))
    (tmp_path / "b.raw").write_bytes(bytes(1 << 20))
    before = (tmp_path / "r.qcow2").read_bytes()
    for extra in (["-u"], []):
        args = ["rebase", *extra, "-b", "b.raw", "-F", "raw", "r.qcow2"]
        kr = kimg(*args, cwd=tmp_path)
        qr = qimg(*args, cwd=tmp_path)
        assert kr[0] == qr[0] == 1
        assert norm(kr[2], "r.qcow2") == norm(qr[2], "r.qcow2")
    assert (tmp_path / "r.qcow2").read_bytes() == before


@pytest.mark.parametrize("aio", ["threads", "io_uring"])
def test_parallel_subcluster_writes_like_qemu(tmp_path, aio):
    """bench -w with requests of 1.5 subclusters, 8 in flight, the direct I/O path
    included: same bytes as qemu-img bench's, and a clean image."""
    for t in ("k", "q"):
        ok(qimg("create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=16k",
                f"{t}.qcow2", "8M", cwd=tmp_path))
        ok(run(["qemu-io", "-c", "write -P 9 0 4M", f"{t}.qcow2"], cwd=tmp_path))
    args = ["bench", "-q", "-w", "-i", aio, "-t", "none", "-c", "300", "-d", "8", "-o", "1024",
            "-s", "768", "-S", "7168", "--pattern=5"]
    ok(kimg(*args, "k.qcow2", cwd=tmp_path))
    ok(qimg(*args, "q.qcow2", cwd=tmp_path))
    assert "identical" in ok(qimg("compare", "k.qcow2", "q.qcow2", cwd=tmp_path))
    assert ok(qimg("check", "k.qcow2", cwd=tmp_path)).startswith("No errors")
