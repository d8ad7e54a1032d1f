"""vpc (VHD) images (issue 19): dynamic and fixed, with and without force_size, read,
written and created as qemu-img 7.2 does; hostile footers, headers and tables refused
by name.  Every comparison runs qemu-img on the same file."""
import struct

import pytest

from img_blockmap_interop import (converted_like_qemu, digest, guest_round_trip,
                         measure_and_dd_as_qemu, never_written, qemu_io,
                         random_writes, refused_while_held, same_as_qemu, views_match)
from test_img_helpers import kimg, make_raw, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

# Every combination of vpc's create options.
OPTS = ["", "subformat=dynamic", "subformat=fixed", "force_size=on",
        "subformat=fixed,force_size=on", "subformat=dynamic,force_size=off"]
# The layouts: "subformat=dynamic" and "force_size=off" are the defaults.
LAYOUTS = ["", "subformat=fixed", "force_size=on", "subformat=fixed,force_size=on"]
# A geometry size, sizes CHS rounds up, an odd byte count, and empty.
SIZES = ["10M", "33M", "1000", "0"]


def create(tool, path, opts, size):
    args = ["create", "-q", "-f", "vpc"] + (["-o", opts] if opts else [])
    ok(tool(*args, path, size))


def checksum(buf):
    """The footer checksum: one's complement of the byte sum, its own field as zero."""
    return ~(sum(buf[:64]) + sum(buf[68:512])) & 0xffffffff


def set_footer(path, at, **fields):
    """Rewrites footer fields (VHD spec "Hard Disk Footer Format") and its checksum."""
    layout = {"app": (28, "4s"), "cur": (48, ">Q"), "chs": (56, ">HBB"), "type": (60, ">I")}
    data = bytearray(open(path, "rb").read())
    foot = at if at >= 0 else len(data) + at
    for name, value in fields.items():
        off, fmt = layout[name]
        struct.pack_into(fmt, data, foot + off, *(value if isinstance(value, tuple) else
                                                   (value,)))
    struct.pack_into(">I", data, foot + 64, checksum(data[foot:foot + 512]))
    open(path, "wb").write(data)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("opts", LAYOUTS)
@pytest.mark.interop
def test_qemu_images_read_identically(tmp_path, opts, size):
    img = tmp_path / "q.vhd"
    create(qimg, img, opts, size)
    if size not in ("0", "1000"):
        qemu_io(img, "vpc", "write -P 0x11 0 3M", "write -P 0x22 5M 4k",
                "write -P 0x33 9M 512")
    views_match(img, "vpc")


@pytest.mark.parametrize("size", ["33M", "1000"])
@pytest.mark.parametrize("opts", OPTS)
@pytest.mark.interop
def test_kestrel_creates_what_qemu_creates(tmp_path, opts, size):
    """Same Formatting line, same size rounding, same layout (map, file size)."""
    k, q = tmp_path / "k.vhd", tmp_path / "q.vhd"
    args = ["create", "-f", "vpc"] + (["-o", opts] if opts else [])
    rc, out, _ = kimg(*args, k, size)
    assert rc == 0 and out.replace("k.vhd", "q.vhd") == ok(qimg(*args, q, size))
    assert k.stat().st_size == q.stat().st_size
    for cmd in (["info", "--output=json"], ["map", "--output=json"]):
        assert ok(kimg(*cmd, "-f", "vpc", k)).replace("k.vhd", "q.vhd") == \
            ok(qimg(*cmd, "-f", "vpc", q))


@pytest.mark.parametrize("opts", LAYOUTS)
def test_convert_to_vpc_passes_qemu_compare(tmp_path, opts):
    converted_like_qemu(tmp_path, "vpc", opts)


@pytest.mark.parametrize("maker", ["qemu", "kestrel"])
@pytest.mark.parametrize("opts", ["", "subformat=fixed"])
def test_random_writes_read_back_in_qemu(tmp_path, maker, opts):
    """Partial blocks, rewrites of allocated blocks, zeroes and discards."""
    img = tmp_path / "w.vhd"
    create(qimg if maker == "qemu" else kimg, img, opts, "12M")
    size = int(ok(qimg("info", "--output=json", "-f", "vpc", img)).split(
        '"virtual-size": ')[1].split(",")[0])
    random_writes(tmp_path, img, "vpc", size, 2 << 20, seed=11)
    views_match(img, "vpc")


def test_kestrel_writes_into_blocks_qemu_allocated(tmp_path):
    img, src = tmp_path / "w.vhd", tmp_path / "src.raw"
    create(qimg, img, "", "14M")
    qemu_io(img, "vpc", "write -P 7 1M 3M")
    make_raw(src, 14 * (1 << 20), seed=3)
    ok(kimg("convert", "-n", "-f", "raw", "-O", "vpc", src, img))
    rc, out, err = qimg("compare", "-f", "raw", "-F", "vpc", src, img)
    assert rc == 0 and "Images are identical." in out, err


# (creator app, current size) -> QEMU 7.2's choice between CHS and current_size.
@pytest.mark.parametrize("app,chs", [
    (b"qemu", None), (b"vpc ", None), (b"qem2", None), (b"win ", None), (b"d2v ", None),
    (b"CTXS", None), (b"tap\0", None), (b"tap ", None), (b"xxxx", None),
    (b"qemu", (65535, 16, 255)),
])
def test_creator_app_picks_the_size_as_qemu_does(tmp_path, app, chs):
    img = tmp_path / "a.vhd"
    create(qimg, img, "", "10M")
    fields = {"app": app, "cur": 6 << 20}
    if chs:
        fields["chs"] = chs
    set_footer(img, 0, **fields)
    set_footer(img, -512, **fields)
    views_match(img, "vpc")


@pytest.mark.parametrize("args", [
    ["-o", "help"],
    ["-o", "subformat=foo", "x.vhd", "1M"],
    ["-o", "subformat=", "x.vhd", "1M"],
    ["x.vhd", "3000G"],
    ["-o", "force_size=on", "x.vhd", "2041G"],
    ["-o", "force_size=maybe", "x.vhd", "1M"],
    ["-b", "base.raw", "-F", "raw", "x.vhd", "1M"],
    ["-o", "preallocation=metadata", "x.vhd", "1M"],
    ["-o", "cluster_size=64k", "x.vhd", "1M"],
], ids=lambda a: " ".join(a))
def test_create_errors_as_qemu(tmp_path, args):
    (tmp_path / "base.raw").write_bytes(bytes(1 << 20))
    same_as_qemu("create", "-f", "vpc", *args, cwd=tmp_path)


def test_resize_and_check_refused_as_qemu(tmp_path):
    img = tmp_path / "a.vhd"
    create(qimg, img, "", "4M")
    before = digest(img)
    same_as_qemu("resize", "-f", "vpc", img, "8M")
    same_as_qemu("check", "-f", "vpc", img)
    same_as_qemu("check", "-r", "all", "-f", "vpc", img)
    assert digest(img) == before


def hostile(tmp_path, name):
    """A dynamic image with data, damaged one way (name), footer checksums kept valid."""
    img = tmp_path / f"{name}.vhd"
    create(qimg, img, "", "8M")
    qemu_io(img, "vpc", "write -P 1 0 3M")
    data = bytearray(img.read_bytes())
    damage = {
        "truncated": lambda d: d[:100],
        "bad_magic": lambda d: d[:512] + b"xxsparse" + d[520:],
        "block_size": lambda d: put(d, 512 + 32, ">I", 1000),
        "table_small": lambda d: put(d, 512 + 28, ">I", 1),
        "table_huge": lambda d: put(d, 512 + 28, ">I", 0x7fffffff),
        "table_past_eof": lambda d: put(d, 512 + 28, ">I", 0x1fffffff),
        "table_offset": lambda d: put(d, 512 + 16, ">Q", 1 << 40),
        "header_offset": lambda d: put(d, 16, ">Q", 1 << 50),
        "entry_past_eof": lambda d: put(d, 1536 + 4, ">I", 0x100000),
    }[name]
    data = bytearray(damage(data))
    if len(data) >= 512 and name != "truncated":
        struct.pack_into(">I", data, 64, checksum(data[:512]))
    img.write_bytes(data)
    return img


def put(data, off, fmt, value):
    struct.pack_into(fmt, data, off, value)
    return data


@pytest.mark.parametrize("name", ["truncated", "bad_magic", "block_size", "table_small",
                                  "table_huge", "header_offset", "entry_past_eof"])
def test_hostile_images_refused_as_qemu(tmp_path, name):
    img = hostile(tmp_path, name)
    rc, _, err = same_as_qemu("info", "-f", "vpc", img)
    assert rc == 1 and "Could not open" in err


@pytest.mark.parametrize("name,msg", [
    ("table_past_eof", "block allocation table (offset 0x600, 2147483644 bytes) lies past "
                       "the end of the file"),
    ("table_offset", "block allocation table (offset 0x10000000000, 20 bytes) lies past the "
                     "end of the file"),
])
def test_tables_past_the_file_are_never_allocated(tmp_path, name, msg):
    """QEMU reads (allocates) the table first; Kestrel caps it by the file's size."""
    img = hostile(tmp_path, name)
    rc, _, err = kimg("info", "-f", "vpc", img)
    assert rc == 1 and err == f"kestrel-img: Could not open '{img}': {msg}\n"


def test_bad_footer_checksum_and_huge_disk(tmp_path):
    img = tmp_path / "sum.vhd"
    create(qimg, img, "", "4M")
    data = bytearray(img.read_bytes())
    data[64:68] = b"\1\2\3\4"
    img.write_bytes(data)
    rc, _, err = same_as_qemu("info", "-f", "vpc", img)
    assert "Incorrect header checksum" in err
    big = tmp_path / "big.vhd"
    create(qimg, big, "", "4M")
    set_footer(big, 0, app=b"win ", cur=3000 << 30)
    rc, _, err = same_as_qemu("info", "-f", "vpc", big)
    assert rc == 1 and "File too large" in err


@pytest.mark.parametrize("entry", ["overlaps_bat", "duplicate"])
def test_overlapping_blocks_open_read_only(tmp_path, entry):
    """Reads as qemu-img reads; a write would overwrite metadata or another block, so
    Kestrel refuses to open it for writing and leaves every byte as it was."""
    img = tmp_path / "o.vhd"
    create(qimg, img, "", "8M")
    qemu_io(img, "vpc", "write -P 1 0 3M")
    data = bytearray(img.read_bytes())
    first = struct.unpack_from(">I", data, 1536)[0]
    struct.pack_into(">I", data, 1536 + 4, 1 if entry == "overlaps_bat" else first)
    img.write_bytes(data)
    never_written(tmp_path, img, "vpc", "VHD block allocation table is corrupt")


def test_fixed_disk_longer_than_its_file_is_read_only(tmp_path):
    img = tmp_path / "f.vhd"
    create(qimg, img, "subformat=fixed,force_size=on", "4M")
    set_footer(img, -512, cur=8 << 20)
    never_written(tmp_path, img, "vpc", "fixed VHD is shorter than its disk size")


def test_measure_and_dd_as_qemu(tmp_path):
    measure_and_dd_as_qemu(tmp_path, "vpc")


def test_fixed_type_with_footer_at_the_start_is_read_only(tmp_path):
    """QEMU lays the disk out by where the footer is but reads by its type: a "fixed"
    footer at offset 0 makes the headers the disk's first sectors.  Read as QEMU
    reads it; never written (a write would overwrite the headers)."""
    img = tmp_path / "t.vhd"
    create(qimg, img, "", "4M")
    set_footer(img, 0, type=2)
    never_written(tmp_path, img, "vpc", "fixed VHD with its footer at the start")


def test_image_in_use_is_refused_as_qemu(tmp_path):
    img, src = tmp_path / "d.vhd", tmp_path / "src.raw"
    create(qimg, img, "", "4M")
    src.write_bytes(b"\x42" * (1 << 20))
    refused_while_held(img, "vpc", src)


@pytest.mark.guest
@pytest.mark.parametrize("opts", ["", "subformat=fixed"])
def test_guest_reads_a_vpc_disk_qemu_made(probe, tmp_path, opts):
    img = guest_round_trip(probe, tmp_path, "vpc", opts)
    same_as_qemu("info", "-f", "vpc", img)
