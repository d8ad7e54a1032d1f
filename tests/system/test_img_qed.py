"""qed (issue 19): images qemu-img 7.2 makes read back identically (bytes, info, map),
images kestrel-img makes pass qemu-img check/compare, check and the need-check repair
behave as QEMU's qed driver, resize/rebase -u/commit work, bad headers fail cleanly."""
import os
import struct
import subprocess

import pytest

from img_interop import (block_io, checks_like_qemu, guest_reads, passes_qemu, qemu_io,
                         reads_like_qemu, refused, refused_while_held, same_text)
from test_img_helpers import BLOCK_IO, make_raw, kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

MB = 1 << 20
# (create options, virtual size): every cluster/table size class and an odd size.
LAYOUTS = [("", "24M"), ("cluster_size=4k", "3M"), ("cluster_size=1M,table_size=2", "40M"),
           ("table_size=16", "5M"), ("cluster_size=64k", "1000")]


def qcreate(path, size, opts="", *extra):
    ok(qimg("create", "-q", "-f", "qed", *(["-o", opts] if opts else []), *extra, path,
            *([size] if size else [])))


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src.raw"
    make_raw(path, 24 * MB, seed=19)
    return path


@pytest.mark.parametrize("opts,size", LAYOUTS)
@pytest.mark.interop
def test_qemu_images_read_identically(tmp_path, opts, size):
    img = tmp_path / "a.qed"
    qcreate(img, size, opts)
    n = os.path.getsize(img)
    qemu_io(img, "write -P 0x11 0 512")
    if size != "1000":
        qemu_io(img, "write -P 0x11 0 4k", "write -z 8k 4k", "write -P 0x22 1536 3k")
        qemu_io(img, "write -P 0x33 2M 130k", "write -z 1M 1M")
    assert os.path.getsize(img) > n
    reads_like_qemu(img, tmp_path, "qed")


@pytest.mark.parametrize("bfmt", ["qed", "raw"])
def test_backing_chain_reads_identically(tmp_path, bfmt):
    base = tmp_path / f"base.{bfmt}"
    ok(qimg("create", "-q", "-f", bfmt, base, "8M"))
    qemu_io(base, "write -P 0x55 0 8M")
    top = tmp_path / "top.qed"
    # A top larger than its base: past the base's end reads zeroes.
    qcreate(top, "12M", "", "-b", base.name, "-F", bfmt)
    qemu_io(top, "write -P 6 100k 300k", "write -z 2M 128k")
    reads_like_qemu(top, tmp_path, "qed")
    info = ok(kimg("info", top))
    # Only "raw" is stored (the spec's "backing file is raw" bit); qed is probed.
    assert ("backing file format: raw" in info) == (bfmt == "raw")


def test_empty_backing_name_is_no_backing_file(tmp_path):
    img = tmp_path / "a.qed"
    qcreate(img, "1M")
    with open(img, "r+b") as f:
        f.seek(16)
        f.write(struct.pack("<Q", 1))	# backing-file feature, zero-length name
    reads_like_qemu(img, tmp_path, "qed")


@pytest.mark.parametrize("opts", ["", "cluster_size=4k", "cluster_size=1M,table_size=2",
                                  "table_size=16"])
def test_kestrel_convert_passes_qemu_check(tmp_path, src, opts):
    out = tmp_path / "k.qed"
    ok(kimg("convert", "-O", "qed", *(["-o", opts] if opts else []), src, out))
    passes_qemu(out, src, "qed")
    # What qemu-img makes from the same source maps the same guest ranges.
    q = tmp_path / "q.qed"
    ok(qimg("convert", "-O", "qed", *(["-o", opts] if opts else []), src, q))
    assert ok(kimg("map", "--output=json", out)).replace("k.qed", "") == \
        ok(qimg("map", "--output=json", q)).replace("q.qed", "")


@pytest.mark.parametrize("cmd", [
    ["-f", "qed", "X", "10M"], ["-f", "qed", "-b", "base.qed", "-F", "qed", "X"],
    ["-f", "qed", "-b", "base.qed", "-F", "raw", "X", "1M"],
    ["-f", "qed", "-o", "backing_file=base.qed,backing_fmt=qed", "X"],
    ["-f", "qed", "-o", "cluster_size=1M,table_size=1", "X", "10M"],
    ["-f", "qed", "X", "1000"], ["-f", "qed", "X", "0"],
    ["-f", "qed", "-o", "preallocation=full", "X", "10M"],
    ["-f", "qed", "-o", "cluster_size=1000", "X", "1M"],
    ["-f", "qed", "-o", "table_size=3", "X", "1M"],
    ["-f", "qed", "-o", "cluster_size=4k,table_size=1", "X", "1T"],
    ["-f", "qed", "-b", "base.qed", "X"],
    ["-f", "qed", "-o", "help", "X", "1M"],
])
def test_create_as_qemu_img(tmp_path, cmd):
    qcreate(tmp_path / "base.qed", "2M")
    k = kimg("create", *[c.replace("X", "k.qed") for c in cmd], cwd=tmp_path)
    q = qimg("create", *[c.replace("X", "q.qed") for c in cmd], cwd=tmp_path)
    same_text(k, q, "k.qed", "q.qed")
    if k[0] == 0 and (tmp_path / "q.qed").exists():
        kb, qb = (tmp_path / "k.qed").read_bytes(), (tmp_path / "q.qed").read_bytes()
        assert kb == qb
        assert os.stat(tmp_path / "k.qed").st_blocks == os.stat(tmp_path / "q.qed").st_blocks


def test_partial_writes_copy_the_backing_file(tmp_path):
    """Writes smaller than a cluster over a backing file keep the rest of the cluster."""
    base = tmp_path / "base.qed"
    qcreate(base, "4M")
    qemu_io(base, "write -P 0x77 0 4M")
    top = tmp_path / "top.qed"
    qcreate(top, "", "", "-b", base.name, "-F", "qed")
    data = tmp_path / "data"
    data.write_bytes(bytes(range(256)) * 4096)
    block_io(top, "qed", data, "w 1000 3000 0\nw 70000 200000 5\nz 300000 5000\n"
             "w 4190000 4304 9\nf\n")
    ok(qimg("check", top))
    model = bytearray(b"\x77" * (4 * MB))
    for off, ln, doff in ((1000, 3000, 0), (70000, 200000, 5), (4190000, 4304, 9)):
        model[off:off + ln] = data.read_bytes()[doff:doff + ln]
    model[300000:305000] = bytes(5000)
    assert reads_like_qemu(top, tmp_path, "qed") == bytes(model)


def damage(path, kind):
    """One kind of damage the spec's consistency check knows."""
    with open(path, "r+b") as f:
        h = f.read(64)
        cs = struct.unpack("<I", h[4:8])[0]
        l1 = struct.unpack("<Q", h[40:48])[0]
        f.seek(l1)
        l2 = struct.unpack("<Q", f.read(8))[0]
        if kind == "l2-past-eof":
            f.seek(l2 + 8)
            f.write(struct.pack("<Q", 1 << 40))
        elif kind == "l1-past-eof":
            f.seek(l1 + 8)
            f.write(struct.pack("<Q", 1 << 40))
        elif kind == "leak":
            f.seek(0, 2)
            f.write(b"x" * cs * 3)
        elif kind == "double-ref":
            f.seek(l2)
            first = [e for e in struct.unpack("<4Q", f.read(32)) if e > 1][0]
            f.seek(l2 + 8 * 10)
            f.write(struct.pack("<Q", first))
        elif kind == "unaligned":
            f.seek(l2 + 8 * 4)
            f.write(struct.pack("<Q", cs + 512))
        elif kind == "need-check":
            f.seek(16)
            f.write(struct.pack("<Q", 2))
            f.seek(l2 + 8 * 4)
            f.write(struct.pack("<Q", 1 << 40))


KINDS = ["l2-past-eof", "l1-past-eof", "leak", "double-ref", "unaligned", "need-check"]


@pytest.fixture
def written(tmp_path):
    img = tmp_path / "w.qed"
    qcreate(img, "8M")
    qemu_io(img, "write -P 1 0 256k", "write -P 2 3M 64k", "write -z 5M 64k")
    return img


@pytest.mark.parametrize("repair", ["", "leaks", "all"])
@pytest.mark.parametrize("kind", KINDS)
def test_check_of_damaged_images_as_qemu_img(tmp_path, written, kind, repair):
    damage(written, kind)
    rc = checks_like_qemu(tmp_path, written, "qed", repair)[0]
    assert rc != 0 or repair or kind == "need-check"


def test_need_check_is_repaired_on_read_write_open(tmp_path, written):
    """A crash left need-check set and a bad entry: a writer's open repairs it, as QEMU's."""
    damage(written, "need-check")
    q = tmp_path / "q.qed"
    q.write_bytes(written.read_bytes())
    ok(kimg("resize", written, "16M"))
    ok(qimg("resize", q, "16M"))
    assert written.read_bytes() == q.read_bytes()
    assert struct.unpack("<Q", written.read_bytes()[16:24])[0] == 0
    ok(qimg("check", written))


def test_writes_set_need_check_until_flushed(tmp_path):
    """need-check is on disk before the first allocation: a writer that dies between the
    data and its L2 table leaves a flagged image; a clean close leaves none."""
    img = tmp_path / "a.qed"
    qcreate(img, "4M")
    data = tmp_path / "data"
    data.write_bytes(b"\x5a" * MB)
    block_io(img, "qed", data, "w 0 65536 0\n")
    assert struct.unpack("<Q", img.read_bytes()[16:24])[0] == 0
    p = subprocess.run([str(BLOCK_IO), "-f", "qed", "-d", str(data), str(img)],
                       input=b"w 1048576 65536 0\n", capture_output=True, timeout=60,
                       env=dict(os.environ, KESTREL_CRASH_AFTER_WRITES="2"))
    assert p.returncode == 86, p.stderr
    assert struct.unpack("<Q", img.read_bytes()[16:24])[0] == 2
    checks_like_qemu(tmp_path, img, "qed", "")
    checks_like_qemu(tmp_path, img, "qed", "all")


def test_resize_rebase_commit(tmp_path):
    base = tmp_path / "base.qed"
    qcreate(base, "8M")
    qemu_io(base, "write -P 5 0 8M")
    for tool, name in ((kimg, "k"), (qimg, "q")):
        (tmp_path / name).mkdir()
        b, t = tmp_path / name / "b.qed", tmp_path / name / "t.qed"
        b.write_bytes(base.read_bytes())
        qcreate(t, "", "", "-b", "../base.qed", "-F", "qed")
        qemu_io(t, "write -P 6 100k 300k")
        ok(tool("rebase", "-u", "-b", b.name, "-F", "qed", t))
        ok(tool("commit", t))
        ok(tool("resize", t, "16M"))
    kt, qt = tmp_path / "k" / "t.qed", tmp_path / "q" / "t.qed"
    for cmd in (["info"], ["map"]):
        same_text(kimg(*cmd, kt), qimg(*cmd, qt), str(tmp_path / "k"), str(tmp_path / "q"))
    assert (tmp_path / "k" / "b.qed").read_bytes() == (tmp_path / "q" / "b.qed").read_bytes()
    assert kt.read_bytes() == qt.read_bytes()
    for args in (["--shrink", "X", "1M"], ["X", "1M"], ["--preallocation=full", "X", "32M"],
                 ["X", "+1000"]):
        same_text(kimg("resize", *[a.replace("X", str(kt)) for a in args]),
                  qimg("resize", *[a.replace("X", str(qt)) for a in args]),
                  str(tmp_path / "k"), str(tmp_path / "q"))


def header_variant(tmp_path, off, fmt, value, truncate=None):
    img = tmp_path / "bad.qed"
    qcreate(img, "10M")
    with open(img, "r+b") as f:
        if fmt:
            f.seek(off)
            f.write(struct.pack(fmt, value))
        if truncate is not None:
            f.truncate(truncate)
    return img


@pytest.mark.parametrize("off,fmt,value,trunc,msg", [
    (16, "<Q", 0x100, None, "Unsupported QED features: 100"),
    (4, "<I", 1000, None, "QED cluster size is invalid"),
    (4, "<I", 1 << 31, None, "QED cluster size is invalid"),
    (8, "<I", 3, None, "QED table size is invalid"),
    (8, "<I", 32, None, "QED table size is invalid"),
    (48, "<Q", 1 << 62, None, "QED image size is invalid"),
    (48, "<Q", 1000, None, "QED image size is invalid"),
    (40, "<Q", 1 << 40, None, "QED table offset is invalid"),
    (40, "<Q", 0, None, "QED table offset is invalid"),
    (12, "<I", 0xffffffff, None, "QED table offset is invalid"),
    (0, None, 0, 30, "QED table offset is invalid"),
    (0, None, 0, 100000, "QED table offset is invalid"),
])
def test_bad_headers_fail_cleanly(tmp_path, off, fmt, value, trunc, msg):
    img = header_variant(tmp_path, off, fmt, value, trunc)
    rc, out, err = qimg("info", img)
    assert msg in err
    refused(tmp_path, img, msg)


def test_table_size_1_opens_nowhere(tmp_path):
    """QEMU 7.2 creates table_size=1 images it then refuses to open; Kestrel agrees."""
    for tool, name in ((kimg, "k.qed"), (qimg, "q.qed")):
        ok(tool("create", "-q", "-f", "qed", "-o", "table_size=1", tmp_path / name, "1M"))
    assert (tmp_path / "k.qed").read_bytes() == (tmp_path / "q.qed").read_bytes()
    refused(tmp_path, tmp_path / "k.qed", "QED table offset is invalid")


def test_backing_loop_is_refused(tmp_path):
    a, b = tmp_path / "a.qed", tmp_path / "b.qed"
    qcreate(a, "1M")
    qcreate(b, "", "", "-b", "a.qed", "-F", "qed")
    ok(qimg("rebase", "-u", "-b", "b.qed", "-F", "qed", a))
    rc, out, err = kimg("convert", "-O", "raw", b, tmp_path / "o.raw")
    assert rc == 1 and "loop" in err.lower(), err


def test_backing_name_outside_header_is_refused(tmp_path):
    img = tmp_path / "a.qed"
    qcreate(img, "1M", "", "-b", "x.raw", "-F", "raw", "-u")
    with open(img, "r+b") as f:
        f.seek(56)
        f.write(struct.pack("<I", 65534))
    refused(tmp_path, img, "QED backing filename offset is invalid")


def test_bad_l2_entry_is_an_io_error_not_a_crash(tmp_path, written):
    damage(written, "l2-past-eof")
    before = written.read_bytes()
    rc, out, err = kimg("convert", "-O", "raw", written, tmp_path / "o.raw")
    assert rc == 1 and "Input/output error" in err, err
    assert written.read_bytes() == before


@pytest.mark.parametrize("cmd", [["resize", "IMG", "16M"], ["check", "-r", "all", "IMG"],
                                 ["rebase", "-u", "-b", "", "IMG"],
                                 ["convert", "-n", "-O", "qed", "SRC", "IMG"]])
def test_in_use_image_is_refused(tmp_path, written, src, cmd):
    refused_while_held(written, "qed", [str(written) if c == "IMG" else str(src) if c == "SRC"
                                        else c for c in cmd])


@pytest.mark.guest
def test_guest_reads_qemu_made_qed(probe, tmp_path):
    guest_reads(probe, tmp_path, "qed")


@pytest.mark.parametrize("fmt", ["qed", "parallels"])
def test_measure_is_refused_as_qemu_img(tmp_path, fmt):
    """Neither QEMU driver has bdrv_measure: same message, same exit status."""
    same_text(kimg("measure", "-O", fmt, "--size", "10M"),
              qimg("measure", "-O", fmt, "--size", "10M"))


def test_unallocated_l1_ranges_map_in_one_step(tmp_path):
    """256 GiB of 4 KiB clusters, nothing written: map skips each absent L2 table whole."""
    img = tmp_path / "a.qed"
    qcreate(img, "255G", "cluster_size=4k,table_size=16")
    qemu_io(img, "write -P 1 200G 4k")
    for cmd in (["map"], ["map", "--output=json"]):
        same_text(kimg(*cmd, img, timeout=20), qimg(*cmd, img))
