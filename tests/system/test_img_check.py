"""kestrel-img check against qemu-img check on deliberately damaged images:
the same findings, the same JSON and exit codes, and `-r` repairs that
qemu-img then agrees with."""
import re
import struct
from pathlib import Path

import pytest

from test_img_helpers import (Writer, header_field, kimg, needs_build, needs_qemu_img, ok, poke,
                              qemu_check_clean, qimg, read_raw_via_qemu, run)

pytestmark = [needs_build, needs_qemu_img]


class Qcow2:
    """Just enough of the qcow2 layout to damage an image on purpose."""

    def __init__(self, path):
        self.path = path
        self.cluster_bits = header_field(path, 20, "I")
        self.cs = 1 << self.cluster_bits
        self.l1_off = header_field(path, 40, "Q")
        self.rt_off = header_field(path, 48, "Q")
        self.version = header_field(path, 4, "I")
        self.order = header_field(path, 96, "I") if self.version >= 3 else 4
        assert self.order == 4, "these helpers know 16-bit refcounts"
        self.per_block = self.cs * 8 // 16

    def _u64(self, off):
        with open(self.path, "rb") as f:
            f.seek(off)
            return struct.unpack(">Q", f.read(8))[0]

    def refblock(self, cluster):
        return self._u64(self.rt_off + 8 * (cluster // self.per_block)) & ~0x1ff

    def refcount_addr(self, cluster):
        return self.refblock(cluster) + 2 * (cluster % self.per_block)

    def get_refcount(self, cluster):
        with open(self.path, "rb") as f:
            f.seek(self.refcount_addr(cluster))
            return struct.unpack(">H", f.read(2))[0]

    def set_refcount(self, cluster, value):
        poke(self.path, self.refcount_addr(cluster), struct.pack(">H", value))

    def l1_entry(self, i):
        return self._u64(self.l1_off + 8 * i)

    def l2_entry_addr(self, l1_index, l2_index):
        return (self.l1_entry(l1_index) & 0x00fffffffffffe00) + 8 * l2_index

    def l2_entry(self, l1_index, l2_index):
        return self._u64(self.l2_entry_addr(l1_index, l2_index))

    def set_l2_entry(self, l1_index, l2_index, value):
        poke(self.path, self.l2_entry_addr(l1_index, l2_index), struct.pack(">Q", value))


def make_image(tmp_path, name="d.qcow2", extra=()):
    img = tmp_path / name
    ok(kimg("create", "-q", "-f", "qcow2", *extra, img, "16M"))
    w = Writer(tmp_path, 16 << 20, seed=5)
    for off in range(0, 4 << 20, 64 << 10):
        w.write(off, 64 << 10)
    w.write(9 << 20, 300 << 10)
    w.apply(img)
    qemu_check_clean(img)
    return img, w


def messages(err):
    """The per-cluster lines of a check report, without the summary."""
    return sorted(line for line in err.splitlines()
                  if re.match(r"(ERROR|Leaked|Repairing|Rebuilding)", line))


def same_check(img):
    """kestrel-img and qemu-img check agree: exit code, JSON and messages."""
    k = kimg("check", "--output=json", img)
    q = qimg("check", "--output=json", img)
    assert k[0] == q[0], (k, q)
    assert k[1] == q[1], (k[1], q[1])
    assert messages(k[2]) == messages(q[2])
    kh = kimg("check", img)
    qh = qimg("check", img)
    assert kh[1] == qh[1]
    return q[0]


def repaired_by_kestrel(img, tmp_path, mode, want):
    before = read_raw_via_qemu(img, tmp_path) if mode == "leaks" else None
    rc, out, err = kimg("check", "-r", mode, img)
    assert rc == 0, (rc, out, err)
    assert "Double checking the fixed image now" in out
    qemu_check_clean(img)
    if before is not None:
        assert read_raw_via_qemu(img, tmp_path) == before
    if want is not None:
        assert read_raw_via_qemu(img, tmp_path) == want


def test_leaked_clusters(tmp_path):
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    q.set_refcount(q.l1_off >> q.cluster_bits, 2)     # references too many
    q.set_refcount(q.rt_off >> q.cluster_bits, 3)
    end = img.stat().st_size // q.cs
    q.set_refcount(end + 2, 1)                        # past the end: not looked at
    assert same_check(img) == 3
    repaired_by_kestrel(img, tmp_path, "leaks", bytes(w.model))


def test_repaired_leak_gives_space_back_as_qemu(tmp_path):
    # QEMU's repair discards a cluster whose refcount it brings to 0
    # (QCOW2_DISCARD_ALWAYS): the file keeps its size, the space goes back.
    blocks = {}
    for tool in (qimg, kimg):
        img, w = make_image(tmp_path, name=f"{tool.__name__}.qcow2")
        q = Qcow2(img)
        q.set_l2_entry(0, 3, 0)                       # guest cluster 3: data now leaked
        rc, out, err = tool("check", "-r", "leaks", img)
        assert rc == 0 and "Repairing cluster" in err, (rc, out, err)
        blocks[tool.__name__] = (img.stat().st_size, img.stat().st_blocks)
        qemu_check_clean(img)
        w.model[3 * q.cs:4 * q.cs] = bytes(q.cs)
        assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)
    assert blocks["kimg"] == blocks["qimg"]


def test_refcount_too_low(tmp_path):
    img, w = make_image(tmp_path)
    ok(qimg("snapshot", "-c", "s", img))          # shared clusters: refcount 2
    q = Qcow2(img)
    q.l1_off = header_field(img, 40, "Q")
    data_cluster = (q.l2_entry(0, 5) & 0x00fffffffffffe00) >> q.cluster_bits
    assert q.get_refcount(data_cluster) == 2
    q.set_refcount(data_cluster, 1)
    assert same_check(img) == 2
    rc, out, err = kimg("check", "-r", "leaks", img)
    assert rc == 2
    repaired_by_kestrel(img, tmp_path, "all", bytes(w.model))


def test_refcount_zero_for_used_cluster(tmp_path):
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    data_cluster = (q.l2_entry(0, 7) & 0x00fffffffffffe00) >> q.cluster_bits
    q.set_refcount(data_cluster, 0)
    assert same_check(img) == 2
    repaired_by_kestrel(img, tmp_path, "all", bytes(w.model))


def test_copied_flag_missing(tmp_path):
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    e = q.l2_entry(0, 2)
    q.set_l2_entry(0, 2, e & ~(1 << 63))
    assert same_check(img) == 2
    repaired_by_kestrel(img, tmp_path, "all", bytes(w.model))


def test_copied_flag_on_shared_cluster(tmp_path):
    img, w = make_image(tmp_path)
    ok(qimg("snapshot", "-c", "s", img))
    q = Qcow2(img)
    q.l1_off = header_field(img, 40, "Q")
    e = q.l2_entry(0, 4)
    q.set_l2_entry(0, 4, e | (1 << 63))
    assert same_check(img) == 2
    repaired_by_kestrel(img, tmp_path, "all", bytes(w.model))


def test_unaligned_l2_entry(tmp_path):
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    e = q.l2_entry(0, 9)
    q.set_l2_entry(0, 9, e | 0x200)
    k = kimg("check", "--output=json", img)
    qq = qimg("check", "--output=json", img)
    assert k[0] == qq[0] == 2
    assert messages(k[2]) == messages(qq[2])


def test_refcount_block_broken(tmp_path):
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    # The refcount table entry points into the middle of a cluster.
    poke(img, q.rt_off, struct.pack(">Q", q.refblock(0) + 512))
    k = kimg("check", "--output=json", img)
    qq = qimg("check", "--output=json", img)
    assert k[0] == qq[0] != 0
    rc, out, err = kimg("check", "-r", "all", img)
    assert rc == 0, (out, err)
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)


def test_dirty_lazy_refcounts_image(tmp_path):
    img, w = make_image(tmp_path, extra=("-o", "lazy_refcounts=on"))
    q = Qcow2(img)
    # What a crash leaves: the dirty bit, refcounts behind the tables.
    header_field(img, 72, "Q", 1)
    data_cluster = (q.l2_entry(0, 1) & 0x00fffffffffffe00) >> q.cluster_bits
    q.set_refcount(data_cluster, 0)
    assert ok(kimg("info", "--output=json", img)) == ok(qimg("info", "--output=json", img))
    assert same_check(img) == 2
    # Opening it for writing repairs it first, as QEMU does.
    w.write(100, 100)
    w.apply(img)
    qemu_check_clean(img)
    assert header_field(img, 72, "Q") & 1 == 0
    assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)


def test_corrupt_bit_honoured(tmp_path):
    img, w = make_image(tmp_path)
    header_field(img, 72, "Q", 2)
    before = img.read_bytes()
    rc, out, err = kimg("resize", img, "32M")
    assert rc == 1 and "corrupt" in err
    rc, out, err = run([__import__("test_img_helpers").BLOCK_IO, img], input=b"f\n")
    assert rc != 0 and "corrupt" in err
    assert img.read_bytes() == before
    # Reading is still allowed, and check -r all clears the bit.
    assert ok(kimg("info", "--output=json", img)) == ok(qimg("info", "--output=json", img))
    ok(kimg("check", "-r", "all", img))
    assert header_field(img, 72, "Q") & 2 == 0
    qemu_check_clean(img)


def test_check_exit_codes(tmp_path):
    img, _ = make_image(tmp_path)
    assert kimg("check", img)[0] == 0
    raw = tmp_path / "r.raw"
    ok(kimg("create", "-q", "-f", "raw", raw, "1M"))
    rc, out, err = kimg("check", "-f", "raw", raw)
    assert rc == qimg("check", "-f", "raw", raw)[0] == 63
    assert "does not support checks" in err
    assert kimg("check", tmp_path / "missing")[0] == 1
    assert kimg("check", "-r", "bogus", img)[0] == 1


def _sanitized(binary):
    """Valgrind cannot run an ASan/UBSan build."""
    data = binary.read_bytes()
    return b"__asan_init" in data or b"__ubsan_handle" in data


def test_dirty_lazy_refcounts_reopened(tmp_path):
    """A lazy_refcounts image whose VM was killed opens for writing every time
    (issue #16, defect 3: the repair read an uninitialised check result and
    refused such images at random). qemu-img check calls it clean; each open
    repairs it, and valgrind sees no uninitialised read on the way."""
    import shutil
    from test_img_helpers import BLOCK_IO
    img, w = make_image(tmp_path, extra=("-o", "lazy_refcounts=on"))
    valgrind = shutil.which("valgrind")
    use_vg = valgrind is not None and not _sanitized(BLOCK_IO)
    for i in range(8):
        header_field(img, 72, "Q", 1)                 # dirty, as a kill leaves it
        assert qimg("check", img)[0] == 0
        argv = [BLOCK_IO, img]
        if use_vg and i < 2:
            argv = [valgrind, "-q", "--error-exitcode=99", "--track-origins=yes", *argv]
        rc, out, err = run(argv, input=b"f\n", timeout=120)
        assert rc == 0, (rc, out, err)
        assert header_field(img, 72, "Q") & 1 == 0
        qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == bytes(w.model)


def test_truncated_image(tmp_path):
    """Data clusters and an L2 table past the end of the file (issue #16,
    defect 6: kestrel-img called this clean): the same findings as qemu-img,
    and check -r all says it could not repair them, as qemu-img does."""
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    l2 = q.l1_entry(0) & 0x00fffffffffffe00
    data = q.l2_entry(0, 40) & 0x00fffffffffffe00
    assert data > l2
    with open(img, "r+b") as f:
        f.truncate(data + q.cs // 2)
    assert same_check(img) == 2
    k, qq = tmp_path / "k.qcow2", tmp_path / "q.qcow2"
    __import__("shutil").copy(img, k)
    __import__("shutil").copy(img, qq)
    assert kimg("check", "-r", "all", k)[0] == qimg("check", "-r", "all", qq)[0] == 2
    # Past the L2 table as well: every reference through it goes nowhere.
    with open(img, "r+b") as f:
        f.truncate(l2 + q.cs)
    assert same_check(img) == 2
    q.set_l2_entry(0, 0, 0)
    with open(img, "r+b") as f:
        f.truncate(l2 + 8)
    # qemu-img calls an L2 table the end of the file cuts clean (it reads as
    # zeroes); kestrel-img reports it, and -r all extends the file over it.
    rc, out, err = kimg("check", img)
    assert rc == 2 and "L2 table at offset %#x is cut by the end of the file" % l2 in err
    ok(kimg("check", "-r", "all", img))
    qemu_check_clean(img)


def test_l2_table_past_eof(tmp_path):
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    poke(img, q.l1_off, struct.pack(">Q", (1 << 63) | (img.stat().st_size + 4 * q.cs)))
    assert same_check(img) == 2


def test_reserved_bits(tmp_path):
    """L1 and L2 entries with reserved bits set (qcow2 spec: "must be zero")."""
    img, w = make_image(tmp_path)
    q = Qcow2(img)
    q.set_l2_entry(0, 3, q.l2_entry(0, 3) | (1 << 57))
    q.set_l2_entry(0, 4, q.l2_entry(0, 4) | 0x10)
    assert same_check(img) == 2
    poke(img, q.l1_off, struct.pack(">Q", q.l1_entry(0) | 0x2))
    assert same_check(img) == 2
    k = kimg("check", img)
    assert "ERROR found l2 entry with reserved bits set" in k[2]
    assert "ERROR found L1 entry with reserved bits set" in k[2]


def test_unaligned_preallocated_cluster_repaired(tmp_path):
    """-r all turns a preallocated zero cluster at an unaligned offset into a
    plain zero cluster, as qemu-img does (fix_l2_entry_by_zero)."""
    img, w = make_image(tmp_path)
    ok(qimg("resize", "--preallocation=metadata", img, "20M"))
    q = Qcow2(img)
    q.l1_off = header_field(img, 40, "Q")
    index = (17 << 20) // q.cs
    e = q.l2_entry(0, index)
    assert e & 0x00fffffffffffe00, hex(e)
    q.set_l2_entry(0, index, e | 1 | 0x200)       # zero flag, offset off by 512
    assert same_check(img) == 2
    rc, out, err = kimg("check", "-r", "all", img)
    assert rc == 0 and "Repairing offset=" in err and "Preallocated cluster" in err, err
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path)[:16 << 20] == bytes(w.model)


@pytest.mark.parametrize("other_leak", [False, True])
def test_repair_clears_counts_past_the_end(tmp_path, other_leak):
    """A crash between a refcount update and the write that grows the file
    leaves counts past its end, where neither check looks.  check -r leaks
    clears them (also when nothing else is wrong), so writes that later grow
    the file over them do not turn them into leaks; the report stays
    qemu-img's (test_img_crash's test_kill_writer found this)."""
    img = tmp_path / "a.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", img, "8M"))
    ok(run(["qemu-io", "-c", "write -P 5 0 64k", img]))
    q = Qcow2(img)
    end = img.stat().st_size // q.cs
    assert q.refblock(end) and q.get_refcount(end) == 0
    q.set_refcount(end, 1)             # the crash: counted, the file not yet grown
    q.set_refcount(end + 3, 1)
    if other_leak:
        # The file grown over the first: a leak both see and report.
        with open(img, "r+b") as f:
            f.truncate((end + 1) * q.cs)
    assert qimg("check", img)[0] == (3 if other_leak else 0)
    k = kimg("check", "-r", "leaks", img)
    assert k[0] == 0, k
    assert (f"Repairing cluster {end} " in k[2]) == other_leak
    assert f"cluster {end + 3} " not in k[2]
    assert q.get_refcount(end) == q.get_refcount(end + 3) == 0
    ok(run(["qemu-io", "-c", "write -P 6 2M 64k", img]))
    qemu_check_clean(img)
def test_rebuild_recount_reports_what_stays_broken(tmp_path):
    # After a rebuild QEMU counts the references again (calculate_refcounts)
    # and prints once more what no repair fixes (here reserved bits), before
    # it lets the old structure go ("Repairing cluster ..." lines).
    errs = {}
    for tool in (qimg, kimg):
        img, w = make_image(tmp_path, name=f"{tool.__name__}.qcow2")
        q = Qcow2(img)
        q.set_l2_entry(0, 4, q.l2_entry(0, 4) | 0x10)           # reserved bits: stays
        data_cluster = (q.l2_entry(0, 6) & 0x00fffffffffffe00) >> q.cluster_bits
        q.set_refcount(data_cluster, 0)                          # in use, counted 0: rebuild
        rc, out, err = tool("check", "-r", "all", img)
        assert "Rebuilding refcount structure" in err, err
        errs[tool.__name__] = (rc, err.splitlines())
    assert errs["kimg"] == errs["qimg"]
    after = errs["kimg"][1][errs["kimg"][1].index("Rebuilding refcount structure"):]
    assert any("reserved bits" in line for line in after)


def test_rebuild_not_written_over_l2_table_past_eof(tmp_path):
    # The file ends before an L2 table the L1 table still names: the new
    # refcount table must not land there (it would read as that table's
    # entries, refcount blocks mapped as guest data).  QEMU's overlap check
    # refuses that write and marks the image corrupt; so does kestrel-img.
    import hostile_qcow2
    got = {}
    for tool in (qimg, kimg):
        d = tmp_path / tool.__name__
        (_, img, _), = hostile_qcow2.generate(str(d), ["trunc-l2"])
        rc, out, err = tool("check", "-r", "all", img)
        tail = [line.split(": ", 1)[1] if line.startswith(("qemu-img:", "kestrel-img:")) else line
                for line in err.splitlines()[-3:]]
        got[tool.__name__] = (rc, tail, header_field(img, 72, "Q") & 2)
    assert got["kimg"] == got["qimg"]
    assert got["kimg"][0] == 1 and got["kimg"][2] == 2
    assert "overlaps with active L2 table" in got["kimg"][1][0]


def test_refblock_outside_image_grown_then_rebuild_refused_as_qemu(tmp_path):
    """check -r all on an image cut short (hostile corpus: trunc-l2): the
    refcount block past the end gets the file grown over it ("Repairing
    refcount block 0 is outside image"); the rebuild that follows would put
    the new refcount table on the active L2 table, so it is refused as QEMU's
    overlap check refuses it: the image marked corrupt, the check failed.
    Same lines and exit status as qemu-img; the same data afterwards."""
    import shutil
    import img_matrix
    src = Path(img_matrix.build_fixture("h-trunc-l2", str(tmp_path))) / "trunc-l2.qcow2"
    out = {}
    for name, tool in (("q", qimg), ("k", kimg)):
        img = tmp_path / f"{name}.qcow2"
        shutil.copy(src, img)
        rc, o, e = tool("check", "-r", "all", img)
        out[name] = (rc, o, e.replace("kestrel-img:", "qemu-img:").replace(str(img), "IMG"))
    assert out["k"] == out["q"]
    assert "Repairing refcount block 0 is outside image" in out["k"][2]
    assert "ERROR writing reftable" in out["k"][2]
    assert (tmp_path / "k.qcow2").stat().st_size == (tmp_path / "q.qcow2").stat().st_size
    assert qimg("info", "--output=json", tmp_path / "k.qcow2")[1].count('"corrupt": true') == 1
