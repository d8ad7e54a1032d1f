"""Hostile and broken images: every command gives a clear error and a
non-zero exit, never a crash, and never writes to the image."""
import hashlib
import struct

import pytest

from test_img_helpers import (BLOCK_IO, SANITIZER_REPORT, Writer, header_field, kimg,
                              needs_build, ok, poke, qimg, run)

pytestmark = [needs_build]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def base_image(tmp_path, name="bad.qcow2", opts="cluster_size=65536"):
    img = tmp_path / name
    ok(kimg("create", "-q", "-f", "qcow2", "-o", opts, img, "8M"))
    w = Writer(tmp_path, 8 << 20, seed=1)
    w.random_ops(60, 65536)
    w.apply(img)
    return img


def l1_bytes(off, n):
    return struct.pack(">Q", off)


# Each damage function returns a substring the error must contain.
def truncated_header(img):
    with open(img, "r+b") as f:
        f.truncate(50)
    return "truncated"


def truncated_tables(img):
    with open(img, "r+b") as f:
        f.truncate(3 * 65536)   # header, refcount table and block; L1 gone
    return "past the end"


def huge_cluster_bits(img):
    header_field(img, 20, "I", 40)
    return "cluster size"


def tiny_cluster_bits(img):
    header_field(img, 20, "I", 3)
    return "cluster size"


def huge_l1_size(img):
    header_field(img, 36, "I", 0xffffffff)
    return "L1 table too large"


def l1_too_small(img):
    header_field(img, 36, "I", 0)
    return "L1 table is too small"


def absurd_virtual_size(img):
    header_field(img, 24, "Q", 1 << 63)
    return "too big"


def l1_past_eof(img):
    header_field(img, 40, "Q", 1 << 40)
    return "L1 table is past the end of the file"


def l1_unaligned(img):
    header_field(img, 40, "Q", header_field(img, 40, "Q") + 8)
    return "Invalid L1 table offset"


def reftable_past_eof(img):
    header_field(img, 48, "Q", 1 << 40)
    return "past the end of the file"


def reftable_huge(img):
    header_field(img, 56, "I", 0x7fffffff)
    return "too large"


def reftable_empty(img):
    header_field(img, 56, "I", 0)
    return "reference count table"


def header_length_huge(img):
    header_field(img, 100, "I", 1 << 20)
    return "exceeds cluster size"


def header_length_short(img):
    header_field(img, 100, "I", 64)
    return "too short"


def unknown_incompat_bit(img):
    header_field(img, 72, "Q", 1 << 63)
    return "Unknown incompatible feature: 8000000000000000"


def extl2_small_clusters(img):
    # Extended L2 entries are supported, but not with 512-byte clusters (16-byte subclusters).
    header_field(img, 72, "Q", 1 << 4)
    header_field(img, 20, "I", 9)
    return "Unsupported subcluster size: 16"


def bad_version(img):
    header_field(img, 4, "I", 7)
    return "Unsupported qcow2 version 7"


def too_many_snapshots(img):
    header_field(img, 60, "I", 1 << 20)
    return "Snapshot table too large"


def snapshots_unaligned(img):
    header_field(img, 60, "I", 3)
    header_field(img, 64, "Q", (1 << 40) + 8)
    return "Snapshot table offset invalid"


def backing_name_too_long(img):
    header_field(img, 8, "Q", 512)
    header_field(img, 16, "I", 5000)
    return "Backing file name too long"


def refcount_order_huge(img):
    header_field(img, 96, "I", 9)
    return "may not exceed 64 bits"


def encrypted(img):
    header_field(img, 32, "I", 2)
    return "ncrypt"


def compression_bit_mismatch(img):
    poke(img, 104, b"\x01")
    return "compression"


DAMAGE = [truncated_header, truncated_tables, huge_cluster_bits, tiny_cluster_bits,
          huge_l1_size, l1_too_small, absurd_virtual_size, l1_past_eof, l1_unaligned,
          reftable_past_eof, reftable_huge, reftable_empty, header_length_huge,
          header_length_short, unknown_incompat_bit, extl2_small_clusters, bad_version,
          too_many_snapshots, snapshots_unaligned, backing_name_too_long, refcount_order_huge,
          encrypted, compression_bit_mismatch]

COMMANDS = [
    ["info"], ["info", "--output=json"], ["check"], ["check", "-r", "all"], ["map"],
    ["convert", "-O", "raw", "{img}", "{out}"], ["compare", "{img}", "{img}"],
    ["snapshot", "-l"], ["snapshot", "-c", "x"], ["resize", "{img}", "16M"],
    ["amend", "-o", "lazy_refcounts=on"], ["bench", "-c", "10"], ["commit"],
    ["rebase", "-u", "-b", ""], ["measure", "-O", "qcow2"], ["dd", "if={img}", "of={out}"],
]


# Damage that check opens anyway, as qemu-img check does (tables past the end
# of the file read as zeroes, a missing refcount table counts as empty): check
# reports it instead of refusing, and check -r all may write.
CHECK_OPENS = {truncated_tables, l1_past_eof, reftable_past_eof, reftable_empty}


def argv_for(cmd, img, out):
    if any("{img}" in a for a in cmd):
        return [a.format(img=img, out=out) for a in cmd]
    return cmd + [str(img)]


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__ for d in DAMAGE])
def test_bad_header(tmp_path, damage):
    img = base_image(tmp_path)
    expect = damage(img)
    before = digest(img)
    for cmd in COMMANDS:
        if damage in CHECK_OPENS and cmd[0] == "check":
            continue
        rc, out, err = kimg("-f" if False else cmd[0], *argv_for(cmd, img, tmp_path / "o")[1:],
                            timeout=60)
        assert 0 < rc < 128, f"{cmd}: exit {rc}\n{out}\n{err}"
        assert err.strip(), f"{cmd}: no message"
        assert "kestrel-img:" in err
        assert digest(img) == before, f"{cmd} wrote to the image"
    rc, out, err = kimg("info", img)
    assert expect.lower() in err.lower(), err
    rc, out, err = run([BLOCK_IO, img], input=b"f\n")
    assert rc != 0 and digest(img) == before
    if damage in CHECK_OPENS:
        check_reports_and_repairs(img, tmp_path)


def check_reports_and_repairs(img, tmp_path):
    """check finds the damage as qemu-img does; -r all leaves an image qemu-img
    calls clean wherever qemu-img's own repair does."""
    import shutil
    # qemu-img calls an image whose L1 table the end of the file cuts clean (it
    # reads as zeroes: the disk's data is gone); kestrel-img reports it.
    assert kimg("check", img)[0] == 2
    assert qimg("check", img)[0] in (0, 2)
    kcopy, qcopy = tmp_path / "k.qcow2", tmp_path / "q.qcow2"
    shutil.copy(img, kcopy)
    shutil.copy(img, qcopy)
    rc, out, err = kimg("check", "-r", "all", kcopy)
    assert rc < 128 and not SANITIZER_REPORT.search(err)
    qimg("check", "-r", "all", qcopy)
    if qimg("check", qcopy)[0] == 0:
        assert qimg("check", kcopy)[0] == 0, qimg("check", kcopy)


def test_snapshot_table_past_eof_opens(tmp_path):
    """A snapshot table past the end of the file opens as qemu-img opens it:
    its entries read as zeroes.  check reports them incomplete, -r all
    rewrites the table, and snapshot -c moves it (nothing to free past the
    end); qemu-img calls each result clean."""
    import shutil
    img = base_image(tmp_path)
    header_field(img, 60, "I", 3)
    header_field(img, 64, "Q", 1 << 40)
    k, q = kimg("snapshot", "-l", img), qimg("snapshot", "-l", img)
    assert k[0] == q[0] == 0 and k[1] == q[1] and k[1].count("1970-01-01") == 3
    assert kimg("check", img)[0] == qimg("check", img)[0] == 2
    for cmd in (["check", "-r", "all"], ["snapshot", "-c", "x"]):
        copy = tmp_path / "c.qcow2"
        shutil.copy(img, copy)
        ok(kimg(*cmd, copy))
        assert qimg("check", copy)[0] == 0, (cmd, qimg("check", copy))


def unreadable_snapshot_table(img, how):
    if how == "extra":
        ok(kimg("snapshot", "-c", "s", img))
        poke(img, header_field(img, 64, "Q") + 36, struct.pack(">I", 1 << 20))
    elif how == "count":
        header_field(img, 60, "I", 1 << 20)
    else:
        header_field(img, 60, "I", 2)
        header_field(img, 64, "Q", 65536 + 8)


@pytest.mark.parametrize("how", ["extra", "count", "offset"])
def test_check_stops_at_unreadable_snapshot_table(tmp_path, how):
    """A snapshot table check cannot read (extra data over the limit, too
    many entries, an unaligned offset): check says why and stops with exit 1,
    in qemu-img's words; open (info) refuses with qemu-img's words and hint."""
    img = base_image(tmp_path)
    unreadable_snapshot_table(img, how)
    before = digest(img)
    cmds = [["check"], ["check", "--output=json"], ["info"]]
    if how != "extra":      # -r all cuts the extra data (see test_img_qcow2_compat.py)
        cmds.append(["check", "-r", "all"])
    import shutil
    for cmd in cmds:
        qcopy = tmp_path / "q.qcow2"    # qemu-img's -r all may write: its own copy
        shutil.copy(img, qcopy)
        k, q = kimg(*cmd, img), qimg(*cmd, qcopy)
        kerr = k[2].replace("kestrel-img", "qemu-img").replace(str(img), str(qcopy))
        if cmd == ["check", "-r", "all"] and how == "count":
            # qemu-img's -r all drops the snapshots past 65536 and reads on;
            # kestrel-img does not repair that, and says so as check does.
            assert k[0] == q[0] == 1 and "ERROR snapshot table too large" in kerr
            continue
        qerr = q[2]
        if how == "count":      # the hint qemu-img gives is to what kestrel-img does not do
            qerr = "".join(l for l in qerr.splitlines(True) if "overhanging" not in l)
        assert (k[0], k[1], kerr) == (q[0], q[1], qerr), cmd
        assert k[0] == 1 and "ERROR" in kerr or cmd == ["info"], (cmd, k)
    assert digest(img) == before


def test_snapshot_l1_checked_where_used(tmp_path):
    """A snapshot L1 table with a bad offset or size does not stop the image
    from opening (qemu-img opens it too); apply, delete and convert -l refuse
    it with qemu-img's words, and leave the image as it was."""
    for field, value, words in ((0, lambda v: v + 8, "Snapshot L1 table offset invalid"),
                                (8, lambda v: 1 << 30, "Snapshot L1 table too large")):
        img = base_image(tmp_path)
        ok(kimg("snapshot", "-c", "s", img))
        entry = header_field(img, 64, "Q") + field
        fmt = ">Q" if field == 0 else ">I"
        with open(img, "rb") as f:
            f.seek(entry)
            old = struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
        poke(img, entry, struct.pack(fmt, value(old)))
        before = digest(img)
        ok(kimg("info", img))
        ok(kimg("map", "--output=json", img))
        for cmd in (["snapshot", "-a", "s", img], ["snapshot", "-d", "s", img],
                    ["convert", "-l", "s", "-O", "raw", img, tmp_path / "o.raw"]):
            rc, out, err = kimg(*cmd)
            assert rc == 1 and words in err, (cmd, rc, err)
            assert qimg(*cmd)[0] == 1
        assert digest(img) == before


def test_refcount_loop_refused_for_writing(tmp_path):
    img = base_image(tmp_path)
    rt = header_field(img, 48, "Q")
    # The refcount table's first entry points at the refcount table itself.
    poke(img, rt, struct.pack(">Q", rt))
    before = digest(img)
    rc, out, err = run([BLOCK_IO, img], input=b"f\n")
    assert rc != 0 and "refcount" in err.lower()
    for cmd in (["resize", str(img), "16M"], ["snapshot", "-c", "x", str(img)],
                ["amend", "-o", "lazy_refcounts=on", str(img)]):
        rc, out, err = kimg(*cmd)
        assert 0 < rc < 128 and err
    assert digest(img) == before
    # Reading and checking still work; check sees the damage as qemu-img does.
    ok(kimg("info", img))
    # qemu-img calls an image whose L1 table the end of the file cuts clean (it
    # reads as zeroes: the disk's data is gone); kestrel-img reports it.
    assert kimg("check", img)[0] == 2
    assert qimg("check", img)[0] in (0, 2)
    ok(kimg("check", "-r", "all", img))
    assert qimg("check", img)[0] == 0


def test_l2_table_on_metadata_refused(tmp_path):
    img = base_image(tmp_path)
    l1 = header_field(img, 40, "Q")
    rt = header_field(img, 48, "Q")
    poke(img, l1, struct.pack(">Q", (1 << 63) | rt))   # an L2 table on the refcount table
    before = digest(img)
    rc, out, err = kimg("convert", "-O", "raw", img, tmp_path / "o.raw")
    assert rc < 128
    rc, out, err = run([BLOCK_IO, img], input=b"f\n")
    assert rc != 0 and "overlaps" in err
    assert kimg("resize", img, "16M")[0] == 1
    assert digest(img) == before


def test_convert_read_error_keeps_every_chunk_before_it(tmp_path):
    # Compressed clusters of 64 KiB; the one at 6 MiB does not inflate.  The
    # chunks before it (2 MiB each, read by parallel workers) are written,
    # none after it, whichever worker fails first: the same file every run.
    src = tmp_path / "src.raw"
    data = bytes((i * 7 + i // 65536) & 0xFF for i in range(8 << 20))
    src.write_bytes(data)
    img = tmp_path / "c.qcow2"
    ok(kimg("convert", "-c", "-O", "qcow2", src, img))
    l1 = header_field(img, 40, "Q")
    with open(img, "rb") as f:
        f.seek(l1)
        l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
        f.seek(l2 + 8 * 96)
        e = struct.unpack(">Q", f.read(8))[0]
    assert e & (1 << 62), hex(e)
    poke(img, e & ((1 << 54) - 1), bytes((i * 97 + 13) & 0xFF for i in range(512)))
    for _ in range(5):
        out = tmp_path / "o.raw"
        out.unlink(missing_ok=True)
        rc, _, err = kimg("convert", "-O", "raw", img, out)
        assert rc == 1 and "error while reading at byte 6291456" in err, err
        got = out.read_bytes()
        assert got[:6 << 20] == data[:6 << 20]
        assert got[6 << 20:] == bytes(2 << 20)


def test_backing_loops(tmp_path):
    a, b, c = (tmp_path / n for n in ("a.qcow2", "b.qcow2", "c.qcow2"))
    ok(kimg("create", "-q", "-f", "qcow2", a, "1M"))
    ok(kimg("create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b))
    ok(kimg("create", "-q", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", c))
    ok(kimg("rebase", "-u", "-b", "c.qcow2", "-F", "qcow2", a))      # a -> c -> b -> a
    before = [digest(p) for p in (a, b, c)]
    for cmd in (["info", "--backing-chain", str(c)], ["convert", "-O", "raw", str(c),
                str(tmp_path / "o")], ["map", str(b)], ["commit", str(c)],
                ["compare", str(a), str(b)], ["rebase", "-b", "", str(c)]):
        rc, out, err = kimg(*cmd, timeout=30)
        assert 0 < rc < 128 and "loop" in err.lower(), (cmd, rc, err)
    assert [digest(p) for p in (a, b, c)] == before
    # A self-loop as well.
    ok(kimg("rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", a))
    rc, out, err = kimg("convert", "-O", "raw", a, tmp_path / "o")
    assert rc == 1 and "loop" in err.lower()


def test_garbage_files(tmp_path):
    import random
    rnd = random.Random(9)
    for i in range(30):
        f = tmp_path / f"g{i}"
        data = bytearray(rnd.randbytes(rnd.choice([0, 10, 72, 104, 512, 70000])))
        if len(data) >= 8 and i % 2:
            data[0:8] = b"QFI\xfb\x00\x00\x00\x03"
        f.write_bytes(bytes(data))
        before = digest(f)
        for cmd in (["info", "-f", "qcow2"], ["check", "-f", "qcow2"], ["map", "-f", "qcow2"]):
            rc, out, err = kimg(*cmd, f, timeout=30)
            assert rc < 128, (cmd, rc, err)
        assert digest(f) == before


def test_missing_and_wrong_arguments():
    for argv in (["info"], ["info", "/nonexistent"], ["create", "-f", "qcow2", "x"],
                 ["create", "-f", "vmdk", "-o", "subformat=bar", "x", "1M"],
                 ["convert", "/nonexistent", "x"],
                 ["resize"], ["frobnicate"], ["info", "--output=xml", "/dev/null"],
                 ["create", "-f", "qcow2", "-o", "cluster_size=3000", "/tmp/k.q", "1M"],
                 ["create", "-f", "qcow2", "-o", "refcount_bits=3", "/tmp/k.q", "1M"],
                 ["create", "-f", "qcow2", "-o", "nosuch=1", "/tmp/k.q", "1M"],
                 ["create", "-f", "qcow2", "/tmp/k.q", "12foo"]):
        rc, out, err = kimg(*argv)
        assert 0 < rc < 128, argv
        assert err.startswith("kestrel-img:"), (argv, err)
