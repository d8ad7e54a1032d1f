"""VHDX (src/block/vhdx/) against qemu-img 7.2: images made by either tool read back
identically through the other, for every subformat and option; info and map print the
same; the metadata log is replayed as QEMU replays it (a crash left one, or a test wrote
one by hand with its CRC-32C); hostile files get a clear error and a non-zero exit."""
import os
import shutil
import struct
import subprocess
import time

import pytest

from test_img_helpers import (BLOCK_IO, KIMG, Holder, kimg, make_raw, needs_build,
                              needs_qemu_img, ok, qemu_check_clean, qimg, read_raw_via_kestrel,
                              read_raw_via_qemu)

pytestmark = [needs_build, needs_qemu_img]

MiB = 1 << 20
H1, H2, RT1 = 64 << 10, 128 << 10, 192 << 10


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    """CRC-32C written independently of src/util/crc32c.c, for hand-made structures."""
    c = 0xFFFFFFFF
    for b in data:
        c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def with_crc(buf, off=4):
    """buf (bytes) with its checksum field at off recomputed over the whole of it."""
    b = bytearray(buf)
    b[off:off + 4] = b"\0\0\0\0"
    b[off:off + 4] = struct.pack("<I", crc32c(bytes(b)))
    return bytes(b)


def read_at(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def write_at(path, off, data):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def current_header(path):
    """(offset, 4 KiB) of the header with the larger sequence number (both are valid here)."""
    h = [(off, read_at(path, off, 4096)) for off in (H1, H2)]
    return max(h, key=lambda x: struct.unpack_from("<Q", x[1], 8)[0])


def regions(path):
    """{'bat': (offset, length), 'meta': (offset, length)} from the first region table."""
    rt = read_at(path, RT1, 64 << 10)
    out = {}
    for i in range(struct.unpack_from("<I", rt, 8)[0]):
        guid, off, length = struct.unpack_from("<16sQI", rt, 16 + 32 * i)
        out["bat" if guid[:4] == bytes.fromhex("6677c22d") else "meta"] = (off, length)
    return out


def set_region(path, which, off=None, length=None):
    rt = bytearray(read_at(path, RT1, 64 << 10))
    for i in range(struct.unpack_from("<I", rt, 8)[0]):
        e = 16 + 32 * i
        is_bat = rt[e:e + 4] == bytes.fromhex("6677c22d")
        if is_bat == (which == "bat"):
            if off is not None:
                struct.pack_into("<Q", rt, e + 16, off)
            if length is not None:
                struct.pack_into("<I", rt, e + 24, length)
    write_at(path, RT1, with_crc(rt))


def kq(*args, cwd):
    """Runs one command with both tools; kestrel-img's text with qemu-img's name."""
    k = kimg(*args, cwd=cwd)
    q = qimg(*args, cwd=cwd)
    return k, (q[0], q[1], q[2].replace("qemu-img:", "kestrel-img:"))


# --- interop: every subformat and option, both directions -----------------------------

OPTIONS = [
    "", "subformat=fixed", "block_size=1M", "block_size=32M,log_size=3M",
    "block_state_zero=off", "subformat=fixed,block_state_zero=off",
    "subformat=fixed,block_size=2M,log_size=2M", "block_size=4M,block_state_zero=off",
    "log_size=1.5M,block_size=700K",
]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("vhdx-src")
    path = d / "src.raw"
    make_raw(path, 24 * MiB, seed=19)
    return path


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: o or "default")
@pytest.mark.interop
def test_kestrel_writes_what_qemu_reads(tmp_path, source, opts):
    img = tmp_path / "k.vhdx"
    extra = ["-o", opts] if opts else []
    ok(kimg("convert", "-O", "vhdx", *extra, source, img))
    qemu_check_clean(img)
    ok(qimg("compare", "-f", "raw", "-F", "vhdx", source, img))
    # Same layout as qemu-img's own (file size, region table, BAT).
    ref = tmp_path / "q.vhdx"
    ok(qimg("convert", "-O", "vhdx", *extra, source, ref))
    assert os.path.getsize(img) == os.path.getsize(ref)
    assert regions(img) == regions(ref)
    bat_off, bat_len = regions(img)["bat"]
    assert read_at(img, bat_off, bat_len) == read_at(ref, bat_off, bat_len)


@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: o or "default")
@pytest.mark.interop
def test_qemu_writes_what_kestrel_reads(tmp_path, source, opts):
    img = tmp_path / "q.vhdx"
    ok(qimg("convert", "-O", "vhdx", *(["-o", opts] if opts else []), source, img))
    # And qemu-io writes over some of it: blocks allocated later, at the end of the file.
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 17M 3M",
                    "-c", "write -z 0 64k", str(img)], check=True, capture_output=True)
    assert read_raw_via_kestrel(img, tmp_path) == read_raw_via_qemu(img, tmp_path)
    k, q = kq("info", "q.vhdx", cwd=tmp_path)
    assert k == q
    k, q = kq("info", "--output=json", "q.vhdx", cwd=tmp_path)
    assert k == q
    k, q = kq("map", "--output=json", "q.vhdx", cwd=tmp_path)
    assert k == q
    k, q = kq("map", "q.vhdx", cwd=tmp_path)
    assert k == q and k[0] == 1     # "File contains external, encrypted or compressed clusters."
    k, q = kq("check", "q.vhdx", cwd=tmp_path)
    assert k == q and k[0] == 0


def test_dd_writes_vhdx(tmp_path, source):
    ok(kimg("dd", "-O", "vhdx", "bs=1M", f"if={source}", f"of={tmp_path / 'd.vhdx'}"))
    qemu_check_clean(tmp_path / "d.vhdx")
    ok(qimg("compare", "-f", "raw", "-F", "vhdx", source, tmp_path / "d.vhdx"))


def test_kestrel_writes_into_a_qemu_image(tmp_path, source):
    """Writes into allocated, ZERO and NOT_PRESENT blocks of an image qemu-img made."""
    for opts in ("block_state_zero=on", "block_state_zero=off", "subformat=fixed"):
        img = tmp_path / "w.vhdx"
        ok(qimg("create", "-q", "-f", "vhdx", "-o", opts, img, "24M"))
        subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 1 8M 1M", str(img)],
                       check=True, capture_output=True)
        ok(kimg("convert", "-n", "-f", "raw", "-O", "vhdx", source, img))
        qemu_check_clean(img)
        ok(qimg("compare", "-f", "raw", "-F", "vhdx", source, img))


def test_create_messages_and_formatting_line(tmp_path):
    k, q = kq("create", "-f", "vhdx", "x.vhdx", "1M", "-o", "help", cwd=tmp_path)
    assert k == q
    for opts in ["", "subformat=foo", "block_size=3M", "block_size=512K", "block_size=300M",
                 "log_size=0", "log_size=5G", "block_state_zero=x", "preallocation=metadata",
                 "subformat=fixed,log_size=2M"]:
        k, q = kq("create", "-f", "vhdx", *(["-o", opts] if opts else []), "x.vhdx", "10M",
                  cwd=tmp_path)
        assert (k[0], k[1], k[2]) == (q[0], q[1], q[2]), opts
    k, q = kq("create", "-f", "vhdx", "x.vhdx", "65T", cwd=tmp_path)
    assert k == q and k[0] == 1
    k, q = kq("create", "-f", "vhdx", "-b", "b.raw", "-F", "raw", "x.vhdx", "1M", cwd=tmp_path)
    assert k[2] == q[2] and k[0] == q[0] == 1
    # preallocation (the file protocol's) leaves the same file as qemu-img's: vhdx's own
    # truncation decides the size and nothing is written ahead.
    for opts in ("preallocation=full", "subformat=fixed,preallocation=falloc"):
        ok(kimg("create", "-q", "-f", "vhdx", "-o", opts, tmp_path / "pk.vhdx", "20M"))
        ok(qimg("create", "-q", "-f", "vhdx", "-o", opts, tmp_path / "pq.vhdx", "20M"))
        sk, sq = os.stat(tmp_path / "pk.vhdx"), os.stat(tmp_path / "pq.vhdx")
        assert (sk.st_size, sk.st_blocks) == (sq.st_size, sq.st_blocks), opts
    # block_size=512K is rounded up to 1 MiB, as qemu-img does: the cluster size shows it.
    ok(kimg("create", "-q", "-f", "vhdx", "-o", "block_size=512K", tmp_path / "r.vhdx", "8M"))
    assert "cluster_size: 1048576" in ok(qimg("info", tmp_path / "r.vhdx"))


def test_refusals_match_qemu(tmp_path):
    ok(qimg("create", "-q", "-f", "vhdx", tmp_path / "r.vhdx", "8M"))
    for cmd in (["resize", "r.vhdx", "16M"], ["amend", "-o", "log_size=2M", "r.vhdx"],
                ["snapshot", "-c", "s", "r.vhdx"], ["measure", "-O", "vhdx", "--size", "1G"]):
        k, q = kq(*cmd, cwd=tmp_path)
        assert k == q and k[0] != 0, cmd


def test_headers_change_on_the_first_write_only(tmp_path):
    """Spec 2.2.2: a new DataWriteGuid before the first guest-visible write, through two
    header updates; an open that writes nothing leaves both headers as they were."""
    img = tmp_path / "g.vhdx"
    ok(qimg("create", "-q", "-f", "vhdx", img, "8M"))
    before = [read_at(img, off, 4096) for off in (H1, H2)]
    p = subprocess.run([str(BLOCK_IO), "-f", "vhdx", str(img)], input=b"", capture_output=True)
    assert p.returncode == 0, p.stderr
    assert [read_at(img, off, 4096) for off in (H1, H2)] == before
    old_seq = max(struct.unpack_from("<Q", h, 8)[0] for h in before)
    old_data_guid = current_header(img)[1][32:48]
    ok(kimg("convert", "-n", "-f", "raw", "-O", "vhdx", make_small_raw(tmp_path), img))
    _, hdr = current_header(img)
    assert struct.unpack_from("<Q", hdr, 8)[0] > old_seq + 1
    assert hdr[32:48] != old_data_guid
    for off in (H1, H2):    # both valid, and the log left empty
        h = read_at(img, off, 4096)
        assert h[:4] == b"head" and with_crc(h) == h and h[48:64] == bytes(16)
    qemu_check_clean(img)


def make_small_raw(tmp_path):
    path = tmp_path / "small.raw"
    path.write_bytes(b"\x11" * 4096 + bytes(8 * MiB - 4096))
    return path


# --- the log ------------------------------------------------------------------------

def crash_with_dirty_log(tmp_path):
    """Crashes kestrel-img between the flushed log entry and the BAT write it describes.

    The crash point is found, not assumed: the first N at which the image is left with a
    log GUID in its current header and an entry that qemu-img would replay."""
    data = tmp_path / "d.raw"
    data.write_bytes(os.urandom(MiB))
    img = tmp_path / "c.vhdx"
    for n in range(40):
        ok(qimg("create", "-q", "-f", "vhdx", img, "8M"))
        p = subprocess.run([str(a) for a in ("env", f"KESTREL_CRASH_AFTER_WRITES={n}",
                                             KIMG, "convert", "-n",
                                             "-f", "raw", "-O", "vhdx", data, img)],
                           capture_output=True)
        if p.returncode == 0:
            break
        assert p.returncode == 86, p.stderr
        _, hdr = current_header(img)
        # The GUID alone is not enough: the entry it names must be complete too.
        if hdr[48:64] != bytes(16) and qimg("info", img)[0] == 1:
            return img, data.read_bytes()
    pytest.fail("no crash point left a dirty log")


def test_dirty_log_from_a_crash_is_replayed_as_qemu_replays_it(tmp_path):
    img, data = crash_with_dirty_log(tmp_path)
    mine, theirs = tmp_path / "k.vhdx", tmp_path / "q.vhdx"
    shutil.copy(img, mine)
    shutil.copy(img, theirs)
    # Read-only, with a log to replay: refused as qemu-img refuses.
    k, q = kq("info", "c.vhdx", cwd=tmp_path)
    assert k[0] == q[0] == 1
    assert k[2] == q[2].replace("qemu-img check", "kestrel-img check")
    # check -r all replays it, and says so as qemu-img does.
    k = kimg("check", "-r", "all", "k.vhdx", cwd=tmp_path)
    q = qimg("check", "-r", "all", "q.vhdx", cwd=tmp_path)
    assert k[:2] == q[:2] and "1 corruptions" in k[1]
    assert read_raw_via_kestrel(mine, tmp_path) == read_raw_via_qemu(theirs, tmp_path)
    assert read_raw_via_qemu(mine, tmp_path)[:MiB] == data
    qemu_check_clean(mine)
    assert current_header(mine)[1][48:64] == bytes(16)     # log emptied


def test_dirty_log_is_replayed_by_a_writable_open(tmp_path):
    img, data = crash_with_dirty_log(tmp_path)
    # block-io opens read-write: the replay happens on open, before any request.
    p = subprocess.run([str(BLOCK_IO), "-f", "vhdx", str(img)], input=b"",
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert current_header(img)[1][48:64] == bytes(16)
    assert read_raw_via_qemu(img, tmp_path)[:MiB] == data


def hand_made_log(tmp_path, corrupt=None, mutate=None):
    """A qemu-made dynamic image plus a log entry, built here, that points block 1 at a
    payload block appended to the file: only a replay makes its data visible."""
    img = tmp_path / "h.vhdx"
    ok(qimg("create", "-q", "-f", "vhdx", "-o", "block_state_zero=off,block_size=1M",
            img, "4M"))
    end = os.path.getsize(img)
    payload = bytes((i * 7) & 0xFF for i in range(MiB))
    write_at(img, end, payload)
    bat_off = regions(img)["bat"][0]
    log_guid = bytes(range(1, 17))
    seq = 5
    # The BAT sector as it will be: entry 1 = FULLY_PRESENT at `end`.
    sector = bytearray(read_at(img, bat_off, 4096))
    struct.pack_into("<Q", sector, 8, end | 6)
    # Entry: header + one data descriptor (sector 0), then the data sector (spec 2.3.1).
    entry = bytearray(8192)
    struct.pack_into("<4sIIIQII16sQQ", entry, 0, b"loge", 0, 8192, 0, seq, 1, 0, log_guid,
                     end + MiB, end + MiB)
    struct.pack_into("<4s4s8sQQ", entry, 64, b"desc", bytes(sector[4092:4096]),
                     bytes(sector[:8]), bat_off, seq)
    struct.pack_into("<4sI", entry, 4096, b"data", seq >> 32)
    entry[4096 + 8:4096 + 4092] = sector[8:4092]
    struct.pack_into("<I", entry, 4096 + 4092, seq & 0xFFFFFFFF)
    if mutate:
        mutate(entry)
    entry = bytearray(with_crc(entry))
    if corrupt == "crc":
        entry[5000] ^= 1
    if corrupt == "seq":
        struct.pack_into("<Q", entry, 64 + 24, seq + 1)   # descriptor disagrees
        entry = bytearray(with_crc(entry))
    write_at(img, MiB, bytes(entry))
    # The current header names the log.
    off, hdr = current_header(img)
    hdr = bytearray(hdr)
    hdr[48:64] = log_guid
    write_at(img, off, with_crc(hdr))
    return img, payload


def test_hand_written_log_entry_is_replayed(tmp_path):
    img, payload = hand_made_log(tmp_path)
    theirs = tmp_path / "q.vhdx"
    shutil.copy(img, theirs)
    ok(kimg("check", "-r", "all", img))
    ok(qimg("check", "-r", "all", theirs))
    mine = read_raw_via_kestrel(img, tmp_path)
    assert mine[MiB:2 * MiB] == payload
    assert mine == read_raw_via_qemu(theirs, tmp_path)
    qemu_check_clean(img)


@pytest.mark.parametrize("corrupt", ["crc", "seq"])
def test_log_entry_with_bad_checksum_or_sequence_is_not_replayed(tmp_path, corrupt):
    img, payload = hand_made_log(tmp_path, corrupt)
    theirs = tmp_path / "q.vhdx"
    shutil.copy(img, theirs)
    before = img.read_bytes()
    # No valid entry: nothing to replay (spec 2.3.3), so even a read-only open works and
    # the disk is what it was before the entry.
    mine = read_raw_via_kestrel(img, tmp_path)
    assert mine[MiB:2 * MiB] == bytes(MiB)
    assert img.read_bytes() == before
    ok(kimg("check", "-r", "all", img))
    assert read_raw_via_kestrel(img, tmp_path) == mine
    if corrupt == "crc":
        assert mine == read_raw_via_qemu(theirs, tmp_path)
    else:
        # QEMU 7.2 fails the whole open on a descriptor that disagrees ("Invalid
        # argument"); the spec only makes the entry invalid, which is what Kestrel does.
        assert qimg("info", theirs)[0] == 1


def huge_descriptor_count(e):
    struct.pack_into("<I", e, 24, 0xFFFFFFFF)


def huge_zero_descriptor(e):
    struct.pack_into("<4sIQ", e, 64, b"zero", 0, 1 << 62)


def huge_last_file_offset(e):
    struct.pack_into("<Q", e, 56, 1 << 50)


def into_header_section(e):
    struct.pack_into("<Q", e, 64 + 16, 64 << 10)


HOSTILE_LOG = {
    # Not a valid entry (its descriptors cannot fit): nothing to replay.
    huge_descriptor_count: None,
    # Valid entries that would write where no entry may: the replay fails, nothing written.
    huge_zero_descriptor: "Could not replay the VHDX log: Invalid argument",
    huge_last_file_offset: "Could not replay the VHDX log: Invalid argument",
    into_header_section: "Could not replay the VHDX log: Invalid argument",
}


@pytest.mark.parametrize("mutate", list(HOSTILE_LOG), ids=lambda f: f.__name__)
def test_hostile_log_entries(tmp_path, mutate):
    img, _ = hand_made_log(tmp_path, mutate=mutate)
    size = os.path.getsize(img)
    t0 = time.monotonic()
    rc, out, err = kimg("check", "-r", "all", img, timeout=30)
    assert time.monotonic() - t0 < 20
    if HOSTILE_LOG[mutate] is None:
        assert rc == 0, err
        assert read_raw_via_kestrel(img, tmp_path) == bytes(4 * MiB)
    else:
        assert rc == 1 and HOSTILE_LOG[mutate] in err, err
    assert os.path.getsize(img) == size


@pytest.mark.parametrize("state", [0, 1, 2, 3, 4, 5, 6, 7])
def test_every_bat_state_reads_as_qemu_reads_it(tmp_path, state):
    """Spec 2.5.1: NOT_PRESENT/UNDEFINED/ZERO/UNMAPPED (and the 0.95 draft's 5) read as
    zeroes even with an offset left in the entry; PARTIALLY_PRESENT needs a parent, and 4 is
    no state: both fail the read, as in QEMU 7.2."""
    img = tmp_path / "s.vhdx"
    ok(qimg("create", "-q", "-f", "vhdx", "-o", "block_size=1M,block_state_zero=off", img,
            "4M"))
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 9 1M 1M", str(img)], check=True,
                   capture_output=True)
    bat_off = regions(img)["bat"][0]
    entry = struct.unpack("<Q", read_at(img, bat_off + 8, 8))[0]
    write_at(img, bat_off + 8, struct.pack("<Q", (entry & ~7) | state))
    k = kimg("convert", "-O", "raw", img, tmp_path / "k.raw")
    q = qimg("convert", "-O", "raw", img, tmp_path / "q.raw")
    assert k[0] == q[0], (k, q)
    if state in (4, 7):
        assert k[0] == 1 and "Input/output error" in k[2]
        return
    mine = (tmp_path / "k.raw").read_bytes()
    assert mine == (tmp_path / "q.raw").read_bytes()
    assert mine[MiB:2 * MiB] == (b"\x09" * MiB if state == 6 else bytes(MiB))


# --- hostile files --------------------------------------------------------------------

@pytest.fixture
def good(tmp_path):
    img = tmp_path / "b.vhdx"
    ok(qimg("create", "-q", "-f", "vhdx", "-o", "block_state_zero=off", img, "64M"))
    subprocess.run(["qemu-io", "-f", "vhdx", "-c", "write -P 3 0 1M", str(img)], check=True,
                   capture_output=True)
    return img


def bad_headers(img):
    for off in (H1, H2):
        write_at(img, off + 100, b"\xff")


def truncate_headers(img):
    os.truncate(img, (64 << 10) + 40)   # header 1 cut inside its fields, header 2 gone


def region_past_eof(img):
    set_region(img, "bat", off=1 << 40)


def meta_past_eof(img):
    set_region(img, "meta", length=1 << 30)


def region_bad_crc(img):
    write_at(img, RT1 + 200, b"\x01")


def absurd_disk_size(img):
    meta_off, _ = regions(img)["meta"]
    t = read_at(img, meta_off, 64 << 10)
    for i in range(struct.unpack_from("<H", t, 10)[0]):
        guid, off = struct.unpack_from("<16sI", t, 32 + 32 * i)
        if guid[:4] == bytes.fromhex("2442a52f"):
            write_at(img, meta_off + off, struct.pack("<Q", 60 << 40))


def meta_entry_out_of_range(img):
    meta_off, _ = regions(img)["meta"]
    write_at(img, meta_off + 32 + 16, struct.pack("<I", 0xFFFFFF00))


def bat_entry_past_eof(img):
    bat_off, _ = regions(img)["bat"]
    write_at(img, bat_off, struct.pack("<Q", (1 << 40) | 6))


def differencing(img):
    meta_off, _ = regions(img)["meta"]
    write_at(img, meta_off + (64 << 10) + 4, struct.pack("<I", 2))


def not_vhdx_signature(img):
    write_at(img, 0, b"vhdxfilX")


def bad_block_size(img):
    meta_off, _ = regions(img)["meta"]
    write_at(img, meta_off + (64 << 10), struct.pack("<I", 3 << 20))


HOSTILE = {
    bad_headers: "No valid VHDX header found",
    truncate_headers: "No valid VHDX header found",
    region_past_eof: "BAT region (offset 1099511627776, length 1048576) lies past the end",
    meta_past_eof: "metadata region (offset",
    region_bad_crc: "region table has a bad checksum",
    absurd_disk_size: "too small for the",
    meta_entry_out_of_range: "lies outside the metadata region",
    bat_entry_past_eof: "VHDX BAT entry 0 start offset 1099511627776 points after end of file",
    differencing: "differencing images (with a parent) are not supported",
    not_vhdx_signature: "",
    bad_block_size: "VHDX block size 3145728 is invalid",
}


@pytest.mark.parametrize("damage", list(HOSTILE), ids=lambda f: f.__name__)
def test_hostile_files_get_a_clear_error(tmp_path, good, damage):
    damage(good)
    before = good.read_bytes()
    for args in (["info", "-f", "vhdx"], ["convert", "-f", "vhdx", "-O", "raw"],
                 ["check", "-r", "all", "-f", "vhdx"]):
        extra = [tmp_path / "o.raw"] if args[0] == "convert" else []
        t0 = time.monotonic()
        rc, out, err = kimg(*args, good, *extra, timeout=30)
        assert time.monotonic() - t0 < 20
        assert HOSTILE[damage] in err, err
        assert good.read_bytes() == before     # an error never writes
        if args[0] == "check" and damage is bat_entry_past_eof:
            assert rc == 2      # check opens it to count it, as qemu-img check does
            continue
        assert rc == 1, (args, out, err)
        assert f"Could not open '{good}': " in err, err


def test_one_bad_header_falls_back_to_the_other(tmp_path, good):
    off, _ = current_header(good)
    write_at(good, off + 100, b"\xff")
    assert read_raw_via_kestrel(good, tmp_path) == read_raw_via_qemu(good, tmp_path)
    # And the next write rewrites the damaged one from the good one.
    subprocess.run([str(a) for a in (BLOCK_IO, "-f", "vhdx", good)], input=b"",
                   check=True, capture_output=True)
    qemu_check_clean(good)


def test_check_counts_bat_entries_past_eof_as_qemu(tmp_path, good):
    bat_entry_past_eof(good)
    k, q = kq("check", "b.vhdx", cwd=good.parent)
    assert k[0] == q[0]
    assert k[1] == q[1]


# --- locks and the guest ----------------------------------------------------------------

def test_image_in_use_is_refused(tmp_path, good):
    holder = Holder(["qemu-io", "-f", "vhdx"], good)
    try:
        before = good.read_bytes()
        rc, _, err = kimg("check", "-r", "all", good)
        assert rc == 1 and 'Failed to get "write" lock' in err, err
        rc, _, err = kimg("convert", "-n", "-O", "vhdx", "-f", "raw", "/dev/null", good)
        assert rc == 1 and "lock" in err
        assert good.read_bytes() == before
    finally:
        holder.close()


@pytest.mark.guest
def test_guest_reads_a_vhdx_made_by_qemu_img(probe, tmp_path):
    from test_virtio import SECTOR, drive, pattern, raw_image, run_probe
    disk = raw_image(tmp_path)
    with open(disk, "r+b") as f:
        f.seek(100 * SECTOR)
        f.write(pattern(7, 100 * SECTOR, 300 * SECTOR))
    img = tmp_path / "disk.vhdx"
    ok(qimg("convert", "-O", "vhdx", disk, img))
    assert read_raw_via_qemu(img, tmp_path) == disk.read_bytes()
    status, out, err = run_probe(*drive(img, "vhdx"), "-kernel", probe,
                                 scenario="blk-read,pattern=7,sectors=300,offset=100")
    assert status == 0 and "probe: blk: verified" in out, err
    status, out, err = run_probe(*drive(img, "vhdx"), "-kernel", probe,
                                 scenario="blk-write,pattern=8,sectors=64,offset=2048")
    assert status == 0 and "probe: blk: verified" in out, err
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path)[2048 * SECTOR:2112 * SECTOR] == \
        pattern(8, 2048 * SECTOR, 64 * SECTOR)
