"""parallels (issue 19): images qemu-img 7.2 makes read back identically (bytes, info,
map), images kestrel-img makes pass qemu-img check/compare, check [-r] prints what
qemu-img prints on damaged images, the inuse marker guards read-write opens as QEMU's
does, and bad headers fail cleanly without touching the file."""
import os
import struct
import subprocess

import pytest

from img_interop import (block_io, checks_like_qemu, guest_reads, passes_qemu, qemu_io,
                         reads_like_qemu, refused, refused_while_held, same_text)
from test_img_helpers import BLOCK_IO, make_raw, kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

MB = 1 << 20
INUSE = 0x746F6E59


def qcreate(path, size, opts=""):
    ok(qimg("create", "-q", "-f", "parallels", *(["-o", opts] if opts else []), path, size))


def field(path, off, fmt, value=None):
    with open(path, "r+b") as f:
        f.seek(off)
        old = struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
        if value is not None:
            f.seek(off)
            f.write(struct.pack(fmt, value))
    return old


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src.raw"
    make_raw(path, 24 * MB, seed=7)
    return path


@pytest.mark.parametrize("opts,size", [("", "24M"), ("cluster_size=64k", "5M"),
                                       ("cluster_size=4k", "3M"), ("cluster_size=1000", "1000"),
                                       ("cluster_size=512", "100k")])
@pytest.mark.interop
def test_qemu_images_read_identically(tmp_path, opts, size):
    img = tmp_path / "a.par"
    qcreate(img, size, opts)
    qemu_io(img, "write -P 0x11 0 512")
    if size not in ("1000",):
        qemu_io(img, "write -P 0x22 1536 3k", "write -P 0x33 40k 20k")
    reads_like_qemu(img, tmp_path, "parallels")


def test_old_magic_counts_the_bat_in_sectors(tmp_path):
    """"WithoutFreeSpace" images: BAT entries in sectors, 32-bit sector count."""
    img = tmp_path / "a.par"
    qcreate(img, "8M", "cluster_size=64k")
    qemu_io(img, "write -P 1 0 64k", "write -P 2 1M 70k")
    with open(img, "r+b") as f:
        f.write(b"WithoutFreeSpace")
    for i in range(128):
        e = field(img, 64 + 4 * i, "<I")
        field(img, 64 + 4 * i, "<I", e * 128)
    data = reads_like_qemu(img, tmp_path, "parallels")
    assert data[:64 * 1024] == b"\x01" * 65536


@pytest.mark.parametrize("opts", ["", "cluster_size=64k", "cluster_size=4k"])
def test_kestrel_convert_passes_qemu_check(tmp_path, src, opts):
    out = tmp_path / "k.par"
    ok(kimg("convert", "-O", "parallels", *(["-o", opts] if opts else []), src, out))
    passes_qemu(out, src, "parallels")
    assert field(out, 44, "<I") == 0
    q = tmp_path / "q.par"
    ok(qimg("convert", "-O", "parallels", *(["-o", opts] if opts else []), src, q))
    # Same layout as qemu-img's (clusters appended in guest order, the file cut at the last).
    assert out.read_bytes() == q.read_bytes()


@pytest.mark.parametrize("cmd", [
    ["X", "10M"], ["X", "1000"], ["X", "0"], ["-o", "cluster_size=64k", "X", "10M"],
    ["-o", "cluster_size=4k", "X", "10G"], ["-o", "cluster_size=0", "X", "1M"],
    ["-o", "cluster_size=512", "X", "1P"], ["-o", "preallocation=full", "X", "10M"],
    ["-o", "preallocation=metadata", "X", "10M"], ["-b", "base.par", "X", "1M"],
    ["-o", "help", "X", "1M"],
])
def test_create_as_qemu_img(tmp_path, cmd):
    qcreate(tmp_path / "base.par", "2M")
    k = kimg("create", "-f", "parallels", *[c.replace("X", "k.par") for c in cmd], cwd=tmp_path)
    q = qimg("create", "-f", "parallels", *[c.replace("X", "q.par") for c in cmd], cwd=tmp_path)
    same_text(k, q, "k.par", "q.par")
    if k[0] == 0 and (tmp_path / "q.par").exists():
        assert (tmp_path / "k.par").read_bytes() == (tmp_path / "q.par").read_bytes()
        assert os.stat(tmp_path / "k.par").st_blocks == os.stat(tmp_path / "q.par").st_blocks


def test_partial_writes_and_zeroes(tmp_path):
    img = tmp_path / "a.par"
    qcreate(img, "6M", "cluster_size=64k")
    qemu_io(img, "write -P 0x77 1M 64k")
    data = tmp_path / "data"
    data.write_bytes(bytes(range(256)) * 4096)
    block_io(img, "parallels", data, "w 1000 3000 0\nw 70000 200000 5\nz 1048600 5000\n"
             "z 3000000 5000\nw 6287000 4456 9\nf\n")
    model = bytearray(6 * MB)
    model[MB:MB + 65536] = b"\x77" * 65536
    for off, ln, doff in ((1000, 3000, 0), (70000, 200000, 5), (6287000, 4456, 9)):
        model[off:off + ln] = data.read_bytes()[doff:doff + ln]
    model[1048600:1053600] = bytes(5000)
    ok(qimg("check", img))
    assert reads_like_qemu(img, tmp_path, "parallels") == bytes(model)
    # Zeroes over unallocated clusters allocate nothing.
    assert "0x2d0000" not in ok(kimg("map", img))


def test_tiny_data_off_never_lets_data_over_the_bat(tmp_path):
    img = tmp_path / "a.par"
    qcreate(img, "4M", "cluster_size=4k")
    field(img, 48, "<I", 1)
    data = tmp_path / "data"
    data.write_bytes(b"\x42" * 8192)
    block_io(img, "parallels", data, "w 0 8192 0\nf\n")
    ok(qimg("check", img))
    assert reads_like_qemu(img, tmp_path, "parallels")[:8192] == b"\x42" * 8192


def damage(path, kind):
    with open(path, "r+b") as f:
        if kind == "outside":
            f.seek(64 + 4 * 3)
            f.write(struct.pack("<I", 24))
        if kind in ("unclean", "both"):
            f.seek(44)
            f.write(struct.pack("<I", INUSE))
        if kind in ("leak", "both"):
            f.seek(0, 2)
            f.write(b"x" * (3 * MB + 5))


@pytest.fixture
def written(tmp_path):
    img = tmp_path / "w.par"
    qcreate(img, "16M")
    qemu_io(img, "write -P 1 0 1M", "write -P 2 5M 100k", "write -P 3 9M 4k")
    return img


@pytest.mark.parametrize("repair", ["", "leaks", "all"])
@pytest.mark.parametrize("kind", ["outside", "unclean", "leak", "both"])
def test_check_of_damaged_images_as_qemu_img(tmp_path, written, kind, repair):
    damage(written, kind)
    rc = checks_like_qemu(tmp_path, written, "parallels", repair)[0]
    assert rc != 0 or repair == "all" or (repair == "leaks" and kind == "leak")


def test_unclean_image_opens_read_only_only(tmp_path, written, src):
    damage(written, "unclean")
    before = written.read_bytes()
    rc, out, err = kimg("convert", "-n", "-O", "parallels", src, written)
    assert rc == 1 and "parallels: Image was not closed correctly; cannot be opened " \
        "read/write" in err, err
    assert written.read_bytes() == before
    reads_like_qemu(written, tmp_path, "parallels")


def test_inuse_is_on_disk_while_writing(tmp_path, written):
    """A writer that dies leaves inuse set, and check says so as qemu-img's does."""
    data = tmp_path / "data"
    data.write_bytes(b"\x42" * 65536)
    p = subprocess.run([str(a) for a in (BLOCK_IO, "-f", "parallels", "-d", data, written)],
                       input=b"w 0 65536 0\nw 2097152 65536 0\nf\n", capture_output=True,
                       env=dict(os.environ, KESTREL_CRASH_AFTER_WRITES="2"), timeout=60)
    assert p.returncode == 86, p.stderr
    assert field(written, 44, "<I") == INUSE
    rc = checks_like_qemu(tmp_path, written, "parallels", "")[0]
    assert rc == 2
    checks_like_qemu(tmp_path, written, "parallels", "all")


@pytest.mark.parametrize("off,fmt,value,trunc,msg", [
    (16, "<I", 3, None, None),	# wrong version: not parallels, so probed as raw
    (28, "<I", 0, None, "Invalid image: Zero sectors per track"),
    (28, "<I", 0x7fffffff, None, "Invalid image: Too big cluster"),
    (32, "<I", 0x7fffffff, None, "Catalog too large"),
    (32, "<I", 0x10000000, None, "Catalog of 268435456 entries runs past the end of the file"),
    (36, "<Q", 1 << 60, None, "Invalid image: virtual size too large"),
])
def test_bad_headers_fail_cleanly(tmp_path, off, fmt, value, trunc, msg):
    img = tmp_path / "bad.par"
    qcreate(img, "10M")
    field(img, off, fmt, value)
    if msg is None:
        rc, out, err = kimg("info", "-f", "parallels", img)
        assert rc == 1 and "Image not in Parallels format" in err
        same_text(kimg("info", img), qimg("info", img))
        return
    refused(tmp_path, img, msg)


def test_truncated_header_reads_as_qemu(tmp_path):
    img = tmp_path / "t.par"
    qcreate(img, "10M")
    with open(img, "r+b") as f:
        f.truncate(30)
    same_text(kimg("info", "-f", "parallels", img), qimg("info", "-f", "parallels", img))


def test_bat_past_eof_reads_zeroes_and_check_reports_it(tmp_path, written):
    damage(written, "outside")
    reads_like_qemu(written, tmp_path, "parallels")


def test_resize_is_refused_as_qemu_img(tmp_path, written):
    same_text(kimg("resize", written, "32M"), qimg("resize", written, "32M"))


@pytest.mark.parametrize("cmd", [["check", "-r", "all", "IMG"],
                                 ["convert", "-n", "-O", "parallels", "SRC", "IMG"]])
def test_in_use_image_is_refused(tmp_path, written, src, cmd):
    refused_while_held(written, "parallels", [str(written) if c == "IMG" else str(src)
                                              if c == "SRC" else c for c in cmd])


@pytest.mark.guest
def test_guest_reads_qemu_made_parallels(probe, tmp_path):
    guest_reads(probe, tmp_path, "parallels")


def test_huge_disk_with_a_small_bat_maps_at_once(tmp_path):
    """512 TiB of disk, ten BAT entries: map takes one step past the BAT, not one per
    cluster (qemu-img 7.2 asserts on this image, so the expected text is written out)."""
    img = tmp_path / "a.par"
    qcreate(img, "5k", "cluster_size=512")
    qemu_io(img, "write -P 1 0 512")
    field(img, 36, "<Q", 1 << 40)
    assert "virtual size: 512 TiB (562949953421312 bytes)" in ok(kimg("info", img))
    out = ok(kimg("map", "--output=json", img, timeout=20))
    assert out == ('[{ "start": 0, "length": 512, "depth": 0, "present": true, "zero": false, '
                   '"data": true, "offset": 512},\n{ "start": 512, "length": 562949953420800, '
                   '"depth": 0, "present": false, "zero": true, "data": false}]\n')
