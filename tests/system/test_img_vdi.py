"""vdi (VirtualBox) images (issue 19): dynamic and static, read, written, created and
checked as qemu-img 7.2 does; hostile headers and block maps refused by name.  Every
comparison runs qemu-img on the same file."""
import struct

import pytest

from img_blockmap_interop import (converted_like_qemu, digest, guest_round_trip,
                         measure_and_dd_as_qemu, never_written, qemu_io,
                         random_writes, raw_via, refused_while_held, same_as_qemu,
                         views_match)
from test_img_helpers import kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

OPTS = ["", "static=on", "static=off", "preallocation=off", "preallocation=falloc",
        "preallocation=full", "static=on,preallocation=full"]
SIZES = ["10M", "1000", "0"]
MIB = 1 << 20


def create(tool, path, opts, size):
    args = ["create", "-q", "-f", "vdi"] + (["-o", opts] if opts else [])
    ok(tool(*args, path, size))


def poke(path, off, fmt, value):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, value))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("opts", ["", "static=on"])
@pytest.mark.interop
def test_qemu_images_read_identically(tmp_path, opts, size):
    img = tmp_path / "q.vdi"
    create(qimg, img, opts, size)
    if size == "10M":
        qemu_io(img, "vdi", "write -P 0x11 0 3M", "write -P 0x22 5M 4k", "write -P 0x33 9M 512")
    views_match(img, "vdi")


@pytest.mark.parametrize("opts", OPTS)
@pytest.mark.interop
def test_kestrel_creates_what_qemu_creates(tmp_path, opts):
    """Same Formatting line, same header and block map, same file size and map."""
    k, q = tmp_path / "k.vdi", tmp_path / "q.vdi"
    args = ["create", "-f", "vdi"] + (["-o", opts] if opts else [])
    rc, out, _ = kimg(*args, k, "5000k")
    assert rc == 0 and out.replace("k.vdi", "q.vdi") == ok(qimg(*args, q, "5000k"))
    kb, qb = k.read_bytes(), q.read_bytes()
    # Only the two UUIDs (image, last snapshot) differ.
    assert kb[:0x188] == qb[:0x188] and kb[0x1a8:] == qb[0x1a8:]
    for cmd in (["info", "--output=json"], ["map", "--output=json"]):
        assert ok(kimg(*cmd, k)).replace("k.vdi", "q.vdi") == ok(qimg(*cmd, q))
    ok(qimg("check", k))


@pytest.mark.parametrize("opts", ["", "static=on"])
def test_convert_to_vdi_passes_qemu_check_and_compare(tmp_path, opts):
    ok(qimg("check", converted_like_qemu(tmp_path, "vdi", opts)))


@pytest.mark.parametrize("maker", ["qemu", "kestrel"])
@pytest.mark.parametrize("opts", ["", "static=on"])
def test_random_writes_read_back_in_qemu(tmp_path, maker, opts):
    img = tmp_path / "w.vdi"
    create(qimg if maker == "qemu" else kimg, img, opts, "12M")
    random_writes(tmp_path, img, "vdi", 12 * MIB, MIB, seed=13)
    ok(qimg("check", img))
    views_match(img, "vdi")


@pytest.mark.parametrize("args", [
    ["-o", "help"],
    ["-o", "preallocation=metadata", "x.vdi", "1M"],
    ["-o", "preallocation=bogus", "x.vdi", "1M"],
    ["-o", "static=maybe", "x.vdi", "1M"],
    ["x.vdi", "600T"],
    ["-b", "base.raw", "-F", "raw", "x.vdi", "1M"],
    ["-o", "subformat=fixed", "x.vdi", "1M"],
    ["-o", "cluster_size=2M", "x.vdi", "1M"],
], ids=lambda a: " ".join(a))
def test_create_errors_as_qemu(tmp_path, args):
    (tmp_path / "base.raw").write_bytes(bytes(MIB))
    same_as_qemu("create", "-f", "vdi", *args, cwd=tmp_path)


def test_resize_and_repair_refused_as_qemu(tmp_path):
    img = tmp_path / "a.vdi"
    create(qimg, img, "", "4M")
    before = digest(img)
    same_as_qemu("resize", img, "8M")
    same_as_qemu("check", "-r", "all", img)
    same_as_qemu("check", "-r", "leaks", img)
    assert digest(img) == before


def damaged(tmp_path, name):
    """An 8 MiB dynamic image with 3 blocks written, damaged one way (name)."""
    img = tmp_path / f"{name}.vdi"
    create(qimg, img, "", "8M")
    qemu_io(img, "vdi", "write -P 1 0 3M")
    change = {
        "signature": (0x40, "<I", 0x12345678), "version": (0x44, "<I", 0x00020003),
        "bmap_unaligned": (0x154, "<I", 0x201), "data_unaligned": (0x158, "<I", 0x401),
        "sector_size": (0x168, "<I", 4096), "block_size": (0x178, "<I", 4096),
        "disk_past_map": (0x170, "<Q", 9 * MIB), "link_uuid": (0x1a8, "<B", 1),
        "parent_uuid": (0x1b8, "<B", 1), "disk_huge": (0x170, "<Q", 1 << 60),
        "blocks_huge": (0x180, "<I", 0x7fffff00), "odd_size": (0x170, "<Q", 8 * MIB - 1000),
        "entry_range": (0x200 + 4 * 5, "<I", 100), "entry_dup": (0x200 + 4 * 5, "<I", 1),
        "count": (0x184, "<I", 7), "entry_dup_range": (0x200 + 4 * 6, "<I", 0x200000),
    }[name]
    poke(img, *change)
    if name == "entry_dup_range":
        poke(img, 0x200 + 4 * 5, "<I", 2)
    return img


@pytest.mark.parametrize("name", ["signature", "version", "bmap_unaligned", "data_unaligned",
                                  "sector_size", "block_size", "disk_past_map", "link_uuid",
                                  "parent_uuid", "disk_huge", "blocks_huge"])
def test_bad_headers_refused_as_qemu(tmp_path, name):
    img = damaged(tmp_path, name)
    rc, _, err = same_as_qemu("info", "-f", "vdi", img)
    assert rc == 1 and "Could not open" in err


@pytest.mark.parametrize("name", ["entry_range", "entry_dup", "count", "odd_size",
                                  "entry_dup_range"])
def test_damaged_maps_read_and_check_as_qemu(tmp_path, name):
    """qemu-img opens these and reports them in check; Kestrel reads and reports the
    same, with the same words and exit status."""
    img = damaged(tmp_path, name)
    views_match(img, "vdi")
    rc, _, err = same_as_qemu("check", img)
    assert (rc == 2 and "ERROR" in err) or name == "odd_size"
    same_as_qemu("check", "--output=json", img)


@pytest.mark.parametrize("name", ["entry_range", "entry_dup"])
def test_damaged_maps_are_never_written(tmp_path, name):
    """A write through a block pointing out of range or at another block's data would
    damage the image further: Kestrel opens it read-only only."""
    never_written(tmp_path, damaged(tmp_path, name), "vdi", "VDI block map is corrupt")


def test_allocation_never_reuses_a_slot_in_use(tmp_path):
    """Blocks 0 and 1 hold slots 0 and 1, but the header's blocks_allocated says 1 (in
    range, no duplicate: qemu-img opens it).  QEMU would put the next block on slot 1,
    under block 1's data; Kestrel takes a free slot."""
    img = tmp_path / "s.vdi"
    create(qimg, img, "", "8M")
    qemu_io(img, "vdi", "write -P 1 0 1M", "write -P 2 1M 1M")
    poke(img, 0x184, "<I", 1)
    src = tmp_path / "src.raw"
    src.write_bytes(b"\x01" * MIB + b"\x02" * MIB + b"\x03" * MIB + bytes(5 * MIB))
    ok(kimg("convert", "-n", "-f", "raw", "-O", "vdi", src, img))
    assert raw_via(qimg, img, "vdi") == src.read_bytes()


def test_truncated_header_and_map(tmp_path):
    img = tmp_path / "t.vdi"
    create(qimg, img, "", "8M")
    img.write_bytes(img.read_bytes()[:300])
    same_as_qemu("info", "-f", "vdi", img)
    big = damaged(tmp_path, "count")
    poke(big, 0x180, "<I", 0x1fffff00)
    poke(big, 0x170, "<Q", 1 << 40)
    rc, _, err = kimg("info", big)
    assert rc == 1 and err == (f"kestrel-img: Could not open '{big}': VDI block map (offset "
                               "0x200, 2147482624 bytes) lies past the end of the file\n")


def test_measure_and_dd_as_qemu(tmp_path):
    measure_and_dd_as_qemu(tmp_path, "vdi")


def test_image_in_use_is_refused_as_qemu(tmp_path):
    img, src = tmp_path / "d.vdi", tmp_path / "src.raw"
    create(qimg, img, "", "4M")
    src.write_bytes(b"\x42" * MIB)
    refused_while_held(img, "vdi", src)


@pytest.mark.guest
@pytest.mark.parametrize("opts", ["", "static=on"])
def test_guest_reads_a_vdi_disk_qemu_made(probe, tmp_path, opts):
    img = guest_round_trip(probe, tmp_path, "vdi", opts)
    ok(qimg("check", img))
