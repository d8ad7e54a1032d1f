"""The read-only formats dmg, cloop and bochs (issue 19): images built by roimages.py (and by
cloop-utils' create_compressed_fs and bximage where installed) read back through kestrel-img
exactly as through qemu-img 7.2 and as the data put in; info and map print what qemu-img
prints; every writing command is refused in qemu-img's words; hostile tables give a clear
error, bounded memory and no hang."""
import os
import resource
import shutil
import struct
import subprocess
import zlib

import pytest

import roimages as R
from test_img_helpers import BUILD, Holder, kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

DATA = R.pattern(1 << 20)
SANITIZED = "asan" in str(BUILD) or "san" in os.environ.get("KESTREL_BUILD", "")


def images():
    """name -> (image bytes, what a reader must see)."""
    d = DATA
    zlib_raw_zero = [[(R.UDZO, d[:262144]), (R.UDRW, d[262144:300032]),
                      (R.UDZE, bytes(65536))], [(R.UDZO, d[:131072]), (R.UDIG, bytes(4096))]]
    out = {
        "c64k.cloop": (R.cloop(d, 65536), d),
        "c512.cloop": (R.cloop(d[:65536], 512), d[:65536]),
        "codd.cloop": (R.cloop(d[:300 * 512], 16384), d[:300 * 512] + bytes(-300 * 512 % 16384)),
        "v2.bochs": (R.bochs(d), d),
        "v1.bochs": (R.bochs(d, version=1, extent=4096), d),
        "e512.bochs": (R.bochs(d[:65536], extent=512), d[:65536]),
        "big.bochs": (R.bochs(d, extent=1 << 20, seed=3), d),
    }
    for name, kw in (("xml.dmg", {}), ("rsrc.dmg", {"xml": False})):
        out[name] = R.dmg(zlib_raw_zero, **kw)
    out["one.dmg"] = R.dmg([[(R.UDZO, d)]], extra_data=False)
    return out


IMAGES = images()


@pytest.fixture(scope="module")
def imgdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ro-images")
    for name, (img, _) in IMAGES.items():
        (d / name).write_bytes(img)
    return d


def fmt_of(name):
    return name.rsplit(".", 1)[1]


def quiet(err):
    """qemu-img's stderr without the module loader's noise about dmg-bz2/lzfse."""
    return "".join(l for l in err.splitlines(True) if "module block-block-dmg" not in l)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_reads_like_qemu_img_and_the_data_put_in(imgdir, tmp_path, name):
    src = imgdir / name
    ok(kimg("convert", "-O", "raw", src, tmp_path / "k.raw"))
    ok(qimg("convert", "-O", "raw", src, tmp_path / "q.raw"))
    k = (tmp_path / "k.raw").read_bytes()
    assert k == (tmp_path / "q.raw").read_bytes()
    assert k == IMAGES[name][1]
    # qcow2 output too: the same bytes as qemu-img writes from the same source.
    ok(kimg("convert", "-O", "qcow2", src, tmp_path / "k.qcow2"))
    ok(qimg("convert", "-O", "qcow2", src, tmp_path / "q.qcow2"))
    assert (tmp_path / "k.qcow2").read_bytes() == (tmp_path / "q.qcow2").read_bytes()
    assert ok(kimg("compare", src, tmp_path / "q.raw")) == "Images are identical.\n"


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_unaligned_reads_through_the_cache(imgdir, tmp_path, name):
    """dd bs=3000: reads that start and end inside blocks and chunks (the cached path;
    convert's 2 MiB reads take whole units straight into its buffer)."""
    ok(kimg("dd", "-f", fmt_of(name), "-O", "raw", f"if={imgdir / name}",
            f"of={tmp_path / 'k.raw'}", "bs=3000"))
    assert (tmp_path / "k.raw").read_bytes() == IMAGES[name][1]


@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize("cmd", ["info", "map"])
@pytest.mark.parametrize("output", ["human", "json"])
@pytest.mark.interop
def test_info_and_map_print_what_qemu_img_prints(imgdir, name, cmd, output):
    k = kimg(cmd, f"--output={output}", name, cwd=imgdir)
    q = qimg(cmd, f"--output={output}", name, cwd=imgdir)
    assert k[0] == q[0], (k, q)
    assert k[1] == q[1]
    # map's human output fails as qemu-img's does: no host offsets for these formats.
    assert k[2].replace("kestrel-img", "qemu-img") == quiet(q[2])


def test_compare_finds_the_same_mismatch(imgdir, tmp_path):
    other = bytearray(DATA)
    other[5000] ^= 0xFF
    (tmp_path / "o.raw").write_bytes(other)
    for name in ("c64k.cloop", "v2.bochs", "xml.dmg"):
        k = kimg("compare", imgdir / name, tmp_path / "o.raw")
        q = qimg("compare", imgdir / name, tmp_path / "o.raw")
        assert k[0] == q[0] == 1 and k[1] == q[1] == "Content mismatch at offset 4608!\n"


@pytest.mark.skipif(shutil.which("create_compressed_fs") is None, reason="no cloop-utils")
def test_cloop_utils_image(tmp_path):
    (tmp_path / "d.raw").write_bytes(DATA[:300000])
    subprocess.run(["create_compressed_fs", "-B", "16384", str(tmp_path / "d.raw"),
                    str(tmp_path / "c.cloop")], check=True, capture_output=True)
    ok(kimg("convert", "-O", "raw", tmp_path / "c.cloop", tmp_path / "k.raw"))
    ok(qimg("convert", "-O", "raw", tmp_path / "c.cloop", tmp_path / "q.raw"))
    k = (tmp_path / "k.raw").read_bytes()
    assert k == (tmp_path / "q.raw").read_bytes() and k[:300000] == DATA[:300000]
    assert ok(kimg("info", "c.cloop", cwd=tmp_path)) == ok(qimg("info", "c.cloop", cwd=tmp_path))


@pytest.mark.skipif(shutil.which("bximage") is None, reason="no bximage")
def test_bximage_growing_image(tmp_path):
    subprocess.run(["bximage", "-func=create", "-hd=10M", "-imgmode=growing", "-q", "b.img"],
                   cwd=tmp_path, check=True, capture_output=True)
    for output in ("human", "json"):
        assert ok(kimg("info", f"--output={output}", "b.img", cwd=tmp_path)) == \
            ok(qimg("info", f"--output={output}", "b.img", cwd=tmp_path))
    ok(kimg("convert", "-O", "raw", tmp_path / "b.img", tmp_path / "k.raw"))
    k = (tmp_path / "k.raw").read_bytes()
    assert len(k) == 10321920 and not any(k)


def test_bzip2_chunks_read_as_the_data_put_in(tmp_path):
    img, disk = R.dmg([[(R.UDBZ, DATA[:262144]), (R.UDZO, DATA[:4096]),
                        (R.UDBZ, DATA[4096:8192])]])
    (tmp_path / "bz.dmg").write_bytes(img)
    rc, out, err = kimg("convert", "-O", "raw", tmp_path / "bz.dmg", tmp_path / "k.raw")
    if "built without bzip2" in err:
        # meson -Dbzip2=disabled: refused as by a QEMU without dmg-bz2, never misread.
        assert rc == 1 and "error while reading at byte 0: Input/output error" in err
        return
    assert rc == 0, err
    assert (tmp_path / "k.raw").read_bytes() == disk
    # Debian's qemu-img 7.2 has no dmg-bz2 module: where it has one, it must agree.
    q = qimg("convert", "-O", "raw", tmp_path / "bz.dmg", tmp_path / "q.raw")
    if q[0] == 0:
        assert (tmp_path / "q.raw").read_bytes() == disk
    else:
        assert "dmg-bzip2 module is missing" in q[2]


def test_lzfse_chunks_are_refused_by_name(tmp_path):
    img, disk = R.dmg([[(R.UDZO, DATA[:8192]), (R.ULFO, DATA[8192:16384])]])
    (tmp_path / "l.dmg").write_bytes(img)
    rc, out, err = kimg("info", tmp_path / "l.dmg")
    assert rc == 0 and "lzfse compressed chunks, which Kestrel cannot read" in err
    # The zlib chunk reads; the lzfse one fails by name, never as zeroes or junk.
    rc, out, err = kimg("dd", "if=" + str(tmp_path / "l.dmg"), "of=" + str(tmp_path / "a.raw"),
                        "bs=8192", "count=1")
    assert rc == 0 and (tmp_path / "a.raw").read_bytes() == DATA[:8192]
    rc, out, err = kimg("convert", "-O", "raw", tmp_path / "l.dmg", tmp_path / "k.raw")
    assert rc == 1 and "error while reading at byte 8192: Operation not supported" in err, err
    q = qimg("convert", "-O", "raw", tmp_path / "l.dmg", tmp_path / "q.raw")
    assert q[0] == 1


@pytest.mark.parametrize("fmt", ["dmg", "cloop", "bochs"])
def test_writing_commands_are_refused_as_qemu_img_refuses_them(imgdir, tmp_path, fmt):
    name = {"dmg": "xml.dmg", "cloop": "c64k.cloop", "bochs": "v2.bochs"}[fmt]
    shutil.copy(imgdir / name, tmp_path / name)
    before = (tmp_path / name).read_bytes()
    (tmp_path / "d.raw").write_bytes(DATA)
    for cmd in (["create", "-f", fmt, "x." + fmt, "1M"],
                ["convert", "-O", fmt, "d.raw", "y." + fmt],
                ["resize", name, "2M"], ["commit", name], ["snapshot", "-c", "s", name],
                ["amend", "-o", "size=2M", name], ["check", name], ["check", "-r", "all", name],
                ["rebase", "-u", "-b", "", name]):
        k = kimg(*cmd, cwd=tmp_path)
        q = qimg(*cmd, cwd=tmp_path)
        assert k[0] == q[0] != 0, (cmd, k, q)
        assert k[2].replace("kestrel-img", "qemu-img") == quiet(q[2]), cmd
    assert (tmp_path / name).read_bytes() == before
    assert not (tmp_path / ("x." + fmt)).exists() and not (tmp_path / ("y." + fmt)).exists()


def test_image_in_use_is_locked_as_qemu_locks_it(imgdir, tmp_path):
    shutil.copy(imgdir / "c64k.cloop", tmp_path / "c.cloop")
    h = Holder(["qemu-io", "-f", "raw"], tmp_path / "c.cloop")
    try:
        k = kimg("info", "c.cloop", cwd=tmp_path)
        q = qimg("info", "c.cloop", cwd=tmp_path)
        assert k[0] == q[0] == 1
        assert k[2].replace(f" It is in use by process {h.proc.pid}.", "") == \
            q[2].replace("qemu-img", "kestrel-img")
        assert ok(kimg("info", "-U", "c.cloop", cwd=tmp_path)) == \
            ok(qimg("info", "-U", "c.cloop", cwd=tmp_path))
    finally:
        h.close()


# ---------------------------------------------------------------- hostile images

def patched(img, *edits):
    """img with (offset, struct format, value) edits applied."""
    b = bytearray(img)
    for off, fmt, val in edits:
        struct.pack_into(fmt, b, off, val)
    return bytes(b)


def limited():
    """No allocation the file cannot justify: 1 GiB of address space is plenty."""
    if not SANITIZED:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def kimg_bounded(*args, cwd):
    p = subprocess.run([str(BUILD / "src" / "block" / "kestrel-img"), *map(str, args)],
                       capture_output=True, text=True, timeout=20, cwd=cwd,
                       preexec_fn=limited)
    assert p.returncode in (0, 1), (p.returncode, p.stderr)     # no crash, no signal
    return p.returncode, p.stdout, p.stderr


CLOOP = R.cloop(DATA[:4 * 65536], 65536)          # 4 blocks: offsets at 136..176
BOCHS = R.bochs(DATA[:65536], extent=4096)        # 16 catalog entries at 512
DMG_XML, _ = R.dmg([[(R.UDZO, DATA[:65536]), (R.UDRW, DATA[:4096])]], extra_data=False)
KOLY = len(DMG_XML) - 512


def rsrc_table(img):
    """Where the first mish block lies in a resource fork dmg of roimages.dmg (its
    resource data starts 256 bytes into the fork, after a 4 byte length)."""
    return struct.unpack_from(">Q", img, len(img) - 512 + 0x28)[0] + 256 + 4


def dmg_chunk_edit(field, value, chunk=0):
    """A dmg whose first mish chunk has field (type 0, sector 8, count 16, offset 24,
    length 32) set, in the resource fork variant (binary tables are easy to edit)."""
    img, _ = R.dmg([[(R.UDZO, DATA[:65536]), (R.UDRW, DATA[:4096])]], xml=False)
    table = rsrc_table(img)
    fmt = ">I" if field == 0 else ">Q"
    return patched(img, (table + 204 + 40 * chunk + field, fmt, value))


def bomb_cloop():
    """Block 0 inflates to 16 MiB though blocks are 64 KiB."""
    big = zlib.compress(bytes(16 << 20), 9)
    head = R.CLOOP_PREAMBLE.ljust(128, b"\0") + struct.pack(">II", 65536, 1)
    return head + struct.pack(">QQ", 152, 152 + len(big)) + big


def bomb_dmg():
    """A zlib chunk that says 8 sectors but inflates to 16 MiB."""
    img, _ = R.dmg([[(R.UDRW, bytes(4096))]], xml=False)
    big = zlib.compress(bytes(16 << 20), 9)
    img = big + img[4096:]
    koly = len(img) - 512
    b = bytearray(img)
    # The resource fork moved by len(big) - 4096; the data fork grew by as much.
    struct.pack_into(">Q", b, koly + 0x28, struct.unpack_from(">Q", b, koly + 0x28)[0]
                     + len(big) - 4096)
    struct.pack_into(">Q", b, koly + 0x20, len(big))
    table = rsrc_table(bytes(b))
    struct.pack_into(">IIQQQQ", b, table + 204, R.UDZO, 0, 0, 8, 0, len(big))
    return bytes(b)


# (name, image, format, message kestrel-img prints, whether open succeeds and reads fail)
HOSTILE = [
    ("cloop-truncated-header", CLOOP[:100], "cloop", "cloop header is truncated", False),
    ("cloop-block-size-odd", patched(CLOOP, (128, ">I", 1000)), "cloop",
     "block_size 1000 must be a multiple of 512", False),
    ("cloop-block-size-zero", patched(CLOOP, (128, ">I", 0)), "cloop",
     "block_size cannot be zero", False),
    ("cloop-block-size-huge", patched(CLOOP, (128, ">I", 128 << 20)), "cloop",
     "block_size 134217728 must be 64 MB or less", False),
    ("cloop-n-blocks-max", patched(CLOOP, (132, ">I", 0xFFFFFFFF)), "cloop",
     "n_blocks 4294967295 must be 536870911 or less", False),
    ("cloop-too-many-offsets", patched(CLOOP, (132, ">I", 0x10000000)), "cloop",
     "image requires too many offsets, try increasing block size", False),
    ("cloop-table-past-eof", patched(CLOOP, (132, ">I", 1000000)), "cloop",
     "cloop offsets table of 1000000 blocks is truncated", False),
    ("cloop-decreasing", patched(CLOOP, (136 + 16, ">Q", 180)), "cloop",
     "offsets not monotonically increasing at index 2, image file is corrupt", False),
    ("cloop-overlaps-table", patched(CLOOP, (136, ">Q", 140)), "cloop",
     "block 0 at offset 140 overlaps the offsets table", False),
    ("cloop-block-huge", patched(CLOOP, (144, ">Q", 1 << 40), (152, ">Q", 1 << 40),
                                 (160, ">Q", 1 << 40), (168, ">Q", 1 << 40)), "cloop",
     "invalid compressed block size at index 1, image file is corrupt", False),
    ("cloop-past-eof", patched(CLOOP, (168, ">Q", len(CLOOP) + 1)), "cloop",
     "block 3 ends at offset", False),
    ("cloop-bomb", bomb_cloop(), "cloop", "Input/output error", True),
    ("cloop-garbage-block", CLOOP[:200] + b"\xAA" * 64 + CLOOP[264:], "cloop",
     "Input/output error", True),
    ("bochs-truncated-header", BOCHS[:300], "bochs", "Bochs header is truncated", False),
    ("bochs-bad-magic", patched(BOCHS, (0, "4s", b"Xoch")), "bochs",
     "Image not in Bochs format", False),
    ("bochs-bad-version", patched(BOCHS, (64, "<I", 3)), "bochs", "Image not in Bochs format",
     False),
    ("bochs-catalog-huge", patched(BOCHS, (72, "<I", 0x200000)), "bochs",
     "Catalog size is too large", False),
    ("bochs-extent-small", patched(BOCHS, (80, "<I", 256)), "bochs",
     "Extent size must be at least 512", False),
    ("bochs-extent-odd", patched(BOCHS, (80, "<I", 3000)), "bochs",
     "Extent size 3000 is not a power of two", False),
    ("bochs-extent-huge", patched(BOCHS, (80, "<I", 16 << 20)), "bochs",
     "Extent size 16777216 is too large", False),
    ("bochs-disk-huge", patched(BOCHS, (88, "<Q", 1 << 50)), "bochs",
     "Catalog size is too small for this disk size", False),
    ("bochs-catalog-past-eof", patched(BOCHS, (72, "<I", 0x100000)), "bochs",
     "Catalog of 1048576 entries at offset 512 extends past the end of the file", False),
    ("bochs-header-size-huge", patched(BOCHS, (68, "<I", 0xFFFFFF00)), "bochs",
     "extends past the end of the file", False),
    ("bochs-entry-past-eof", patched(BOCHS, (512, "<I", 0x7FFFFFFF)), "bochs",
     "Catalog entry 0 points to extent 2147483647, past the end of the file", False),
    ("bochs-bitmap-huge", patched(BOCHS, (76, "<I", 0)), "bochs",
     "past the end of the file", False),
    ("dmg-short", b"koly" + bytes(100), "dmg", "dmg file must be at least 512 bytes long",
     False),
    ("dmg-no-koly", bytes(4096), "dmg", "Could not locate UDIF trailer in dmg file", False),
    ("dmg-cut-trailer", DMG_XML[:-300], "dmg", "Could not locate UDIF trailer", False),
    ("dmg-truncated-trailer", bytes(200) + b"koly" + bytes(396), "dmg",
     "UDIF trailer at offset 200 is truncated", False),
    ("dmg-data-fork-past", patched(DMG_XML, (KOLY + 0x18, ">Q", 1 << 40)), "dmg",
     "data fork offset 1099511627776 lies past the UDIF trailer", False),
    ("dmg-xml-past", patched(DMG_XML, (KOLY + 0xE0, ">Q", 1 << 40)), "dmg",
     "XML property list (1099511627776 bytes at offset", False),
    ("dmg-rsrc-past", patched(DMG_XML, (KOLY + 0x28, ">Q", 5), (KOLY + 0x30, ">Q", 1 << 33)),
     "dmg", "resource fork (8589934592 bytes at offset 5) lies past the UDIF trailer", False),
    ("dmg-no-tables", patched(DMG_XML, (KOLY + 0xE0, ">Q", 0)), "dmg",
     "UDIF trailer names no resource fork and no XML property list", False),
    ("dmg-unclosed-data", DMG_XML.replace(b"</data>", b"</dat>x"), "dmg",
     "XML property list has <data> without </data>", False),
    ("dmg-sector-count-huge", dmg_chunk_edit(16, 1 << 30), "dmg",
     "sector count 1073741824 for chunk 0 is larger than max (131072)", False),
    ("dmg-length-huge", dmg_chunk_edit(32, 1 << 40), "dmg",
     "length 1099511627776 for chunk 0 is larger than max (67108864)", False),
    ("dmg-sector-overflow", dmg_chunk_edit(8, 1 << 62), "dmg",
     "sector range of chunk 0 is too large", False),
    ("dmg-chunk-past-eof", dmg_chunk_edit(24, 1 << 30), "dmg",
     "chunk 0 (", False),
    ("dmg-bomb", bomb_dmg(), "dmg", "Input/output error", True),
]


@pytest.mark.parametrize("name,img,fmt,msg,opens", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_images_fail_clearly(tmp_path, name, img, fmt, msg, opens):
    path = tmp_path / ("x." + fmt)
    path.write_bytes(img)
    rc, out, err = kimg_bounded("info", "-f", fmt, path, cwd=tmp_path)
    if not opens:
        assert rc == 1 and err == f"kestrel-img: Could not open '{path}': " + \
            err.split(": ", 2)[2] and msg in err, err
        return
    assert rc == 0, err
    rc, out, err = kimg_bounded("convert", "-f", fmt, "-O", "raw", path, tmp_path / "o.raw",
                                cwd=tmp_path)
    assert rc == 1 and "error while reading at byte 0" in err and msg in err, err
    # qemu-img fails on it too: these are corrupt, not something Kestrel misreads.
    assert qimg("convert", "-f", fmt, "-O", "raw", path, tmp_path / "q.raw")[0] == 1


def test_dmg_sectors_no_chunk_describes_fail_as_in_qemu(tmp_path):
    """A trailer with more sectors than the tables cover: reads there are I/O errors."""
    img = patched(DMG_XML, (KOLY + 0x1EC, ">Q", 1024))
    (tmp_path / "x.dmg").write_bytes(img)
    k = kimg("convert", "-O", "raw", tmp_path / "x.dmg", tmp_path / "k.raw")
    q = qimg("convert", "-O", "raw", tmp_path / "x.dmg", tmp_path / "q.raw")
    assert k[0] == q[0] == 1
    # (qemu-img names the start of its 2 MiB request, kestrel-img the failing sector.)
    assert "error while reading at byte 69632: Input/output error" in k[2]
    assert "Input/output error" in q[2]


def test_dmg_huge_zero_chunk_reads_without_a_buffer(tmp_path):
    """Zero chunks may cover any range (QEMU never buffers them): a 1 TiB one opens."""
    img, _ = R.dmg([[(R.UDZE, bytes(512))]], xml=False)
    b = bytearray(img)
    koly = len(b) - 512
    table = rsrc_table(img)
    struct.pack_into(">Q", b, table + 204 + 16, 1 << 31)
    struct.pack_into(">Q", b, koly + 0x1EC, 1 << 31)
    (tmp_path / "z.dmg").write_bytes(bytes(b))
    k = kimg_bounded("info", "--output=json", "z.dmg", cwd=tmp_path)
    assert k[0] == 0 and '"virtual-size": 1099511627776' in k[1]
    assert k[1] == ok(qimg("info", "--output=json", "z.dmg", cwd=tmp_path))
    rc, out, err = kimg_bounded("dd", "if=z.dmg", "of=o.raw", "bs=1M", "count=4",
                                cwd=tmp_path)
    assert rc == 0 and (tmp_path / "o.raw").read_bytes() == bytes(4 << 20)


# ---------------------------------------------------------------- through a VM

@pytest.mark.guest
@pytest.mark.parametrize("fmt", ["dmg", "cloop", "bochs"])
def test_guest_reads_the_image_as_qemu_img_converts_it(probe, tmp_path, fmt):
    """The guest probe reads a read-only virtio-blk disk in each format (readonly=on, as
    QEMU needs for a -device that is not auto-read-only) and finds the probe's pattern
    where qemu-img's raw conversion of the same file has it."""
    from conftest import kestrel, probe_lines
    from test_virtio import pattern
    disk = bytearray(4 << 20)
    disk[100 * R.SECTOR:400 * R.SECTOR] = pattern(7, 100 * R.SECTOR, 300 * R.SECTOR)
    disk = bytes(disk)
    if fmt == "dmg":
        img, _ = R.dmg([[(R.UDZO, disk[:1 << 20]), (R.UDRW, disk[1 << 20:2 << 20]),
                         (R.UDZE, disk[2 << 20:])]])
    else:
        img = R.cloop(disk) if fmt == "cloop" else R.bochs(disk)
    path = tmp_path / ("disk." + fmt)
    path.write_bytes(img)
    ok(qimg("convert", "-O", "raw", path, tmp_path / "q.raw"))
    assert (tmp_path / "q.raw").read_bytes() == disk
    status, out, err = kestrel("-m", "128m", "-nographic",
                               "-drive", f"file={path},format={fmt},if=none,id=d0,readonly=on",
                               "-device", "virtio-blk-pci,drive=d0,serial=disk42",
                               "-kernel", probe, "-append",
                               "probe=blk-read,pattern=7,sectors=300,offset=100", timeout=60)
    assert status == 0, err
    assert "probe: blk: verified" in probe_lines(out)


def test_dmg_without_chunks_opens_and_reads_fail(tmp_path):
    """Tables with no mish block: an image with no chunk at all (the fuzzer's first find,
    an empty table sorted).  qemu-img 7.2 dies of SIGSEGV reading it; kestrel-img fails
    the read with an I/O error."""
    img, _ = R.dmg([[(R.UDZO, bytes(4096))]], xml=False)
    b = bytearray(img)
    b[rsrc_table(img):rsrc_table(img) + 4] = b"XXXX"     # no "mish": skipped, as in QEMU
    (tmp_path / "e.dmg").write_bytes(bytes(b))
    assert "virtual size: 4 KiB" in ok(kimg("info", "e.dmg", cwd=tmp_path))
    rc, out, err = kimg_bounded("convert", "-O", "raw", "e.dmg", "o.raw", cwd=tmp_path)
    assert rc == 1 and err == "kestrel-img: error while reading at byte 0: Input/output error\n"
    assert qimg("convert", "-O", "raw", "e.dmg", "q.raw", cwd=tmp_path)[0] != 0
