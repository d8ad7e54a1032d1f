"""qcow2 block layer behaviour that scripts written for qemu-img 7.2 rely on
(issue 25, "Wrong behaviour"): each case runs the same steps once with
qemu-img and once with kestrel-img and compares what the images then hold,
read back by qemu-io / qemu-img (the reference reader)."""
import json
import shutil
import struct
import subprocess
import time

import pytest

from test_img_helpers import (KIMG, data_extents, header_field, kimg, needs_build, needs_qemu_img,
                              ok, poke, qimg, read_raw_via_kestrel, read_raw_via_qemu, run)

pytestmark = [needs_build, needs_qemu_img,
              pytest.mark.skipif(shutil.which("qemu-io") is None, reason="qemu-io is not installed")]

TOOLS = {"qemu": "qemu-img", "kestrel": KIMG}


def tool(which, *args, **kw):
    return run([TOOLS[which], *args], **kw)


def qio(path, *cmds, fmt="qcow2", cwd=None):
    """qemu-io commands on path; returns (exit status, output)."""
    argv = ["qemu-io", "-t", "unsafe", "-f", fmt]  # no sync per allocation: fast
    for c in cmds:
        argv += ["-c", c]
    rc, out, err = run([*argv, path], cwd=cwd)
    return rc, out + err


def qio_ok(path, *cmds, fmt="qcow2", cwd=None):
    rc, out = qio(path, *cmds, fmt=fmt, cwd=cwd)
    assert rc == 0 and "fail" not in out.lower(), out
    return out


def qmap(path):
    return json.loads(ok(qimg("map", "--output=json", path)))


def tool_dirs(tmp_path):
    """(which, its own fresh directory) for each tool: the runs share no file."""
    for which in TOOLS:
        d = tmp_path / which
        d.mkdir()
        yield which, d


def filled_base(d):
    """base.qcow2, 2M of 0x22, and the name of a top image beside it."""
    base = d / "base.qcow2"
    ok(qimg("create", "-f", "qcow2", base, "2M"))
    qio_ok(base, "write -P 0x22 0 2M")
    return base, d / "top.qcow2"


# --- resize: growing over a longer backing file reads zeroes (QEMU's zero-write truncate) ---

@pytest.mark.parametrize("which", ["qemu", "kestrel"])
def test_shrink_then_grow_over_backing_reads_zeroes(tmp_path, which):
    base, top = filled_base(tmp_path)
    ok(tool(which, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", top))
    qio_ok(top, "write -P 0x11 0 512k")
    ok(tool(which, "resize", "--shrink", top, "520K"))
    ok(tool(which, "resize", top, "567K"))
    ok(tool(which, "resize", top, "1700K"))
    # 512K..520K is still the backing file's; past the old end only zeroes.
    qio_ok(top, "read -P 0x11 0 512K", "read -P 0x22 512K 8K", "read -P 0 520K 1180K")


def test_grow_over_backing_same_layout_as_qemu(tmp_path):
    maps = {}
    for which, d in tool_dirs(tmp_path):
        base, top = filled_base(d)
        ok(tool(which, "create", "-f", "qcow2", "-b", base, "-F", "qcow2", top))
        qio_ok(top, "write -P 0x11 0 512k")
        ok(tool(which, "resize", "--shrink", top, "520K"))
        ok(tool(which, "resize", top, "1700K"))
        maps[which] = qmap(top)
    assert maps["kestrel"] == maps["qemu"]


def test_grow_v2_over_backing_refused_as_qemu(tmp_path):
    res = {}
    for which, d in tool_dirs(tmp_path):
        base, top = filled_base(d)
        ok(tool(which, "create", "-f", "qcow2", "-o", "compat=0.10", "-b", base, "-F", "qcow2",
                top))
        ok(tool(which, "resize", "--shrink", top, "520K"))
        rc, out, err = tool(which, "resize", top, "1700K")
        res[which] = (rc, err.split(": ", 1)[1], qmap(top))
    assert res["kestrel"] == res["qemu"]
    assert res["qemu"][0] == 1


# --- shrink: refcount blocks that count nothing any more are freed (qcow2_shrink_reftable) ---

def reftable(path):
    rt_off, rt_clusters = header_field(path, 48, "Q"), header_field(path, 56, "I")
    cs = 1 << header_field(path, 20, "I")
    with open(path, "rb") as f:
        f.seek(rt_off)
        raw = f.read(rt_clusters * cs)
    return [e for e in struct.unpack(f">{len(raw) // 8}Q", raw) if e]


@pytest.mark.parametrize("opts", ["cluster_size=512", "cluster_size=4096,refcount_bits=64"])
def test_shrink_frees_empty_refcount_blocks(tmp_path, opts):
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(tool(which, "create", "-f", "qcow2", "-o", opts, img, "16M"))
        qio_ok(img, "write -P 0x11 0 6M")
        ok(tool(which, "resize", "--shrink", img, "1M"))
        rc, out, err = qimg("check", "--output=json", img)
        assert rc == 0, out + err
        check = json.loads(out)
        got[which] = (reftable(img), img.stat().st_size, check["image-end-offset"])
        qio_ok(img, "read -P 0x11 0 1M")
    assert got["kestrel"] == got["qemu"]


# --- amend -o refcount_bits: the stored refcounts copied into the new width ---

def set_refcount16(path, cluster, value):
    rt_off = header_field(path, 48, "Q")
    cs = 1 << header_field(path, 20, "I")
    with open(path, "rb") as f:
        f.seek(rt_off)
        rb = struct.unpack(">Q", f.read(8))[0] & ~0x1ff
    poke(path, rb + 2 * cluster, struct.pack(">H", value))
    return cs


def amend_both(tmp_path, prepare, bits):
    res = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        prepare(img)
        rc, out, err = tool(which, "amend", "-o", f"refcount_bits={bits}", img)
        crc, cout, cerr = qimg("check", img)
        # Where the new structure lands may differ (QEMU's first fit can even
        # take a cluster whose refcount was 0 although it is in use).
        cout = "\n".join(l for l in cout.splitlines() if not l.startswith("Image end offset"))
        res[which] = (rc, err.split(": ", 1)[-1], crc, cout, header_field(img, 96, "I"))
    assert res["kestrel"] == res["qemu"]
    return res["qemu"]


@pytest.mark.parametrize("bits", [1, 2, 8, 32])
def test_amend_refcount_bits_narrower_or_refused_as_qemu(tmp_path, bits):
    def prepare(img):
        ok(qimg("create", "-f", "qcow2", "-o", "cluster_size=4096", img, "16M"))
        qio_ok(img, "write -P 0x11 0 1M", "write -c -P 0x22 2M 256k")
    rc, err, _, _, order = amend_both(tmp_path, prepare, bits)
    # Compressed clusters share host clusters: 1 and 2 bits cannot count them.
    assert (rc != 0) == (bits < 8), err
    assert (1 << order) == (16 if rc else bits)
    if rc == 0:
        qio_ok(tmp_path / "kestrel.qcow2", "read -P 0x11 0 1M", "read -P 0x22 2M 256k")


@pytest.mark.parametrize("value", [0, 3])
def test_amend_refcount_bits_copies_stored_refcounts(tmp_path, value):
    """A refcount below the references (corruption) or above (a leak) is
    copied, as qemu-img does; kestrel-img used to refuse with EIO/ERANGE."""
    def prepare(img):
        ok(qimg("create", "-f", "qcow2", img, "4M"))
        qio_ok(img, "write -P 0x11 0 64k")
        set_refcount16(img, 5, value)       # the first data cluster
    rc, err, crc, cout, order = amend_both(tmp_path, prepare, 2)
    assert rc == 0 and order == 1, err


# --- feature bits: unknown autoclear bits cleared by writers, names from the image's table ---

def set_feature(path, kind, bit, name=None):
    off = {"incompat": 72, "compat": 80, "autoclear": 88}[kind]
    header_field(path, off, "Q", header_field(path, off, "Q") | (1 << bit))
    if name is None:
        return
    pos = header_field(path, 100, "I")          # header_length: the extensions follow
    with open(path, "rb") as f:
        while True:
            f.seek(pos)
            t, ln = struct.unpack(">II", f.read(8))
            if t == 0:
                break
            pos += 8 + ((ln + 7) & ~7)
    typ = {"incompat": 0, "compat": 1, "autoclear": 2}[kind]
    entry = struct.pack(">BB", typ, bit) + name.encode().ljust(46, b"\0")
    poke(path, pos, struct.pack(">II", 0x6803f857, 48) + entry + struct.pack(">II", 0, 0))


AUTOCLEAR_CMDS = [["resize", "{img}", "2M"], ["check", "-r", "all", "{img}"], ["check", "{img}"],
                  ["info", "{img}"], ["snapshot", "-c", "s", "{img}"]]


@pytest.mark.parametrize("bit", [0, 5, 63])
@pytest.mark.parametrize("cmd", AUTOCLEAR_CMDS, ids=lambda c: "-".join(c[:-1] or c))
def test_autoclear_bits_as_qemu(tmp_path, bit, cmd):
    """Bit 0 (bitmaps) stays on an image without bitmaps; unknown bits are
    cleared by every command that opens the image for writing."""
    if bit == 0 and cmd[0] == "snapshot":
        pytest.skip("qemu-img 7.2 takes a bitmap directory at offset 0 and marks the image corrupt")
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(qimg("create", "-f", "qcow2", img, "1M"))
        set_feature(img, "autoclear", bit)
        rc, out, err = tool(which, *[a.format(img=img) for a in cmd])
        got[which] = (rc, header_field(img, 88, "Q"))
    assert got["kestrel"] == got["qemu"]


@pytest.mark.parametrize("output", ["human", "json"])
def test_unknown_incompatible_feature_named_from_table(tmp_path, output):
    img = tmp_path / "f.qcow2"
    ok(qimg("create", "-f", "qcow2", img, "1M"))
    set_feature(img, "compat", 7, "a compatible one")
    set_feature(img, "incompat", 12)
    set_feature(img, "incompat", 9, "my shiny feature")     # the last name table counts
    got = {}
    for which in TOOLS:
        rc, out, err = tool(which, "info", f"--output={output}", img)
        got[which] = (rc, out, err.split(": ", 1)[-1])
    assert got["kestrel"] == got["qemu"]
    assert "my shiny feature, Unknown incompatible feature: 1000" in got["qemu"][2]


# --- snapshot tables with short entries: opened as QEMU opens them, rewritten whole ---

def snapshot_extra_sizes(path):
    n, off = header_field(path, 60, "I"), header_field(path, 64, "Q")
    sizes = []
    with open(path, "rb") as f:
        for _ in range(n):
            f.seek(off)
            e = f.read(40)
            id_len, name_len = struct.unpack(">HH", e[12:16])
            extra = struct.unpack(">I", e[36:40])[0]
            sizes.append(extra)
            off = (off + 40 + extra + id_len + name_len + 7) & ~7
    return sizes


def set_snapshot_extra(path, extra):
    """Rewrites the snapshot table in place with `extra` bytes of extra data per entry."""
    n, off = header_field(path, 60, "I"), header_field(path, 64, "Q")
    entries, p = [], off
    with open(path, "rb") as f:
        for _ in range(n):
            f.seek(p)
            e = f.read(40)
            id_len, name_len = struct.unpack(">HH", e[12:16])
            old = struct.unpack(">I", e[36:40])[0]
            f.seek(p + 40 + old)
            names = f.read(id_len + name_len)
            entries.append(e[:36] + struct.pack(">I", extra) + bytes(extra) + names)
            p = (p + 40 + old + id_len + name_len + 7) & ~7
    buf = b""
    for e in entries:
        buf += e + bytes(-(len(buf) + len(e)) % 8)
    poke(path, off, buf)


SNAP_OPS = [["check", "-r", "all"], ["snapshot", "-c", "s3"], ["snapshot", "-d", "s1"],
            ["amend", "-o", "compat=1.1"], ["snapshot", "-l"]]


@pytest.mark.parametrize("compat", ["0.10", "1.1"])
@pytest.mark.parametrize("extra", [0, 8])
@pytest.mark.parametrize("op", SNAP_OPS, ids=lambda o: "-".join(o))
def test_short_snapshot_entries_as_qemu(tmp_path, compat, extra, op):
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(qimg("create", "-f", "qcow2", "-o", f"compat={compat}", img, "1M"))
        qio_ok(img, "write -P 0x11 0 64k")
        ok(qimg("snapshot", "-c", "s1", img))
        ok(qimg("snapshot", "-c", "s2", img))
        set_snapshot_extra(img, extra)
        rc, out, err = tool(which, *op, img)
        crc, cout, _ = qimg("check", img)
        got[which] = (rc, snapshot_extra_sizes(img), crc, cout.splitlines()[:1])
        if op[0] == "snapshot" and op[1] == "-l":
            got[which] += (len(out.splitlines()),)
    assert got["kestrel"] == got["qemu"]


@pytest.mark.parametrize("extra", [0, 8])
def test_short_snapshot_entries_repair_discards_old_table(tmp_path, extra):
    """check -r all writes the table anew; the old table's cluster becomes a
    hole, as QEMU's free of the old table discards it."""
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(qimg("create", "-f", "qcow2", img, "1M"))
        qio_ok(img, "write -P 0x11 0 64k")
        ok(qimg("snapshot", "-c", "s1", img))
        set_snapshot_extra(img, extra)
        old = header_field(img, 64, "Q")
        ok(tool(which, "check", "-r", "all", img))
        # Whole 4k blocks: QEMU's table ends after the last entry, kestrel's
        # after its padding to 8 bytes (the file's last bytes differ).
        got[which] = [(a, -(-b // 4096) * 4096) for a, b in data_extents(img)]
        assert not any(a <= old < b for a, b in got[which]), (which, old, got[which])
    assert got["kestrel"] == got["qemu"]


def test_too_much_extra_data_cut_as_qemu(tmp_path):
    """Extra data over QEMU's 1024-byte limit: check -r all cuts it, one line
    per entry with the size found, as qemu-img words it."""
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(qimg("create", "-f", "qcow2", img, "1M"))
        qio_ok(img, "write -P 0x11 0 64k")
        ok(qimg("snapshot", "-c", "s1", img))
        ok(qimg("snapshot", "-c", "s2", img))
        set_snapshot_extra(img, 2000)
        rc, out, err = tool(which, "check", "-r", "all", img)
        got[which] = (rc, out, err, snapshot_extra_sizes(img), qimg("check", img)[0])
    assert "entry 1 (2000 > 1024)" in got["qemu"][2]
    assert got["kestrel"] == got["qemu"]


# --- host layout: preallocation=metadata, rebase past the old backing file's end ---

@pytest.mark.parametrize("opts", ["", ",cluster_size=4096", ",compat=0.10"])
def test_prealloc_metadata_same_map_as_qemu(tmp_path, opts):
    maps = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(tool(which, "create", "-f", "qcow2", "-o", f"preallocation=metadata{opts}", img, "5M"))
        maps[which] = (qmap(img), img.stat().st_size)
    assert maps["kestrel"] == maps["qemu"]


def test_rebase_past_old_backing_end_writes_zero_clusters(tmp_path):
    got = {}
    for which, d in tool_dirs(tmp_path):
        old, new, top = d / "old.qcow2", d / "new.qcow2", d / "top.qcow2"
        ok(qimg("create", "-f", "qcow2", old, "500k"))
        qio_ok(old, "write -P 0x11 0 128k")
        ok(qimg("create", "-f", "qcow2", new, "1M"))
        qio_ok(new, "write -P 0x22 0 1M")
        ok(qimg("create", "-f", "qcow2", "-b", old, "-F", "qcow2", top, "1M"))
        ok(tool(which, "rebase", "-b", new, "-F", "qcow2", top))
        qio_ok(top, "read -P 0x11 0 128k", "read -P 0 128k 896k")
        got[which] = qmap(top)
    assert got["kestrel"] == got["qemu"]
    assert any(e["zero"] and e["depth"] == 0 for e in got["qemu"])


# --- check -r all on compressed descriptors with damaged sizes: bounded, repaired as qemu-img ---

def damage_compressed_sizes(path, seed):
    """Sets random sector counts in about half of the compressed L2 entries."""
    import random
    rnd = random.Random(seed)
    cb = header_field(path, 20, "I")
    l1_off, l1_n = header_field(path, 40, "Q"), header_field(path, 36, "I")
    shift, mask = 62 - (cb - 8), (1 << (cb - 8)) - 1
    with open(path, "r+b") as f:
        for j in range(l1_n):
            f.seek(l1_off + 8 * j)
            l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
            if not l2:
                continue
            f.seek(l2)
            table = list(struct.unpack(f">{(1 << cb) // 8}Q", f.read(1 << cb)))
            for i, e in enumerate(table):
                if e & (1 << 62) and rnd.random() < 0.5:
                    table[i] = (e & ~(mask << shift)) | (rnd.randint(0, mask) << shift)
            f.seek(l2)
            f.write(struct.pack(f">{len(table)}Q", *table))


@pytest.mark.parametrize("cluster_size", ["512", "65536", "2M"])
@pytest.mark.parametrize("seed", [1, 2])
def test_check_repair_corrupt_compressed_sizes(tmp_path, cluster_size, seed):
    src = tmp_path / "src.qcow2"
    ok(qimg("create", "-f", "qcow2", "-o", f"cluster_size={cluster_size}", src, "8M"))
    qio_ok(src, "write -c -P 0x11 0 2M", "write -P 0x33 2M 2M", "write -c -P 0x22 4M 4M")
    damage_compressed_sizes(src, seed)
    got, took = {}, {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        shutil.copy(src, img)
        t = time.monotonic()
        rc, out, err = tool(which, "check", "-r", "all", img, timeout=60)
        took[which] = time.monotonic() - t
        # Findings qemu-img prints before repairing (ERROR cluster ...) are
        # front-end wording, compared elsewhere; the damage lines must match.
        got[which] = (rc, [l for l in err.splitlines() if "exceeding the end" in l],
                      img.read_bytes())
    assert got["kestrel"][:2] == got["qemu"][:2]
    # With 512-byte clusters qemu-img rebuilds its refcount structure in
    # another place (a known difference, see the issue 25 notes).
    if cluster_size != "512":
        assert got["kestrel"][2] == got["qemu"][2], "the repaired images differ"
    assert took["kestrel"] < max(10 * took["qemu"], 5.0)


@pytest.mark.parametrize("mode", ["leaks", "all"])
def test_check_repair_discards_leaked_clusters_as_qemu(tmp_path, mode):
    # QEMU's compare_refcounts repairs with QCOW2_DISCARD_ALWAYS: a cluster
    # whose refcount a repair takes to 0 is discarded from the file.
    src = tmp_path / "src.qcow2"
    ok(qimg("create", "-f", "qcow2", src, "4M"))
    qio_ok(src, "write -P 0x11 0 192k")
    l1 = header_field(src, 40, "Q")
    l2 = struct.unpack_from(">Q", src.read_bytes(), l1)[0] & 0x00fffffffffffe00
    poke(src, l2 + 8, bytes(8))     # guest cluster 1 unmapped: its host cluster leaks
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        shutil.copy(src, img)
        rc, out, err = tool(which, "check", "-r", mode, img)
        got[which] = (rc, out, err, qimg("map", "-f", "raw", "--output=json", img),
                      img.read_bytes())
    assert "Repairing cluster" in got["qemu"][2]
    assert got["kestrel"] == got["qemu"]


# --- compressed descriptors counting more sectors than their stream (issue 25) ---

COMPRESSED = 1 << 62
CSIZE_SHIFT_4K = 62 - (12 - 8)      # qcow2 spec: x = 62 - (cluster_bits - 8)


def compressed_before_table(tmp_path):
    """4 KiB clusters: guest cluster 0 compressed, its host cluster followed
    by the L2 table of guest [2M, 4M).  Returns (image, L2 entry offset,
    compressed data offset, that L2 table's offset)."""
    img = tmp_path / "c.qcow2"
    ok(qimg("create", "-f", "qcow2", "-o", "cluster_size=4k", img, "4M"))
    qio_ok(img, "write -c -P 0x11 0 4k", "write -P 0x22 2M 4k")
    data = img.read_bytes()
    l1 = header_field(img, 40, "Q")
    l2a, l2b = (struct.unpack_from(">Q", data, l1 + 8 * i)[0] & 0x00fffffffffffe00
                for i in (0, 1))
    e = struct.unpack_from(">Q", data, l2a)[0]
    coff = e & ((1 << CSIZE_SHIFT_4K) - 1)
    # The layout the cases aim at: else they would test nothing.
    assert e & COMPRESSED and coff // 4096 + 1 == l2b // 4096, (hex(e), hex(l2b))
    return img, l2a, coff, l2b


def test_compressed_sector_count_past_its_stream_reads_as_qemu(tmp_path):
    # The largest sector count runs from the data over the L2 table after
    # it: the stream ends long before, and QEMU's decompressor stops once
    # the cluster is full, so qemu-img reads (and maps) the image.
    img, l2a, coff, _ = compressed_before_table(tmp_path)
    poke(img, l2a, struct.pack(">Q", COMPRESSED | (0xf << CSIZE_SHIFT_4K) | coff))
    data = read_raw_via_kestrel(img, tmp_path)
    assert data == read_raw_via_qemu(img, tmp_path)
    assert data[:4096] == b"\x11" * 4096 and data[2 << 20:(2 << 20) + 4096] == b"\x22" * 4096
    assert ok(kimg("map", "--output=json", img)) == ok(qimg("map", "--output=json", img))
    assert '"corrupt": false' in ok(qimg("info", "--output=json", img))


def test_compressed_stream_into_a_table_is_refused(tmp_path):
    # A deflate stream whose second stored block starts just before the L2
    # table: qemu-img inflates the table's bytes into guest data; kestrel-img
    # inflates no byte on metadata, so the stream ends short: a read error.
    img, l2a, _, l2b = compressed_before_table(tmp_path)
    start = l2b - 11
    stream = bytes([0x00, 1, 0, 0xfe, 0xff]) + b"X" + bytes([0x01, 0xff, 0x0f, 0x00, 0xf0])
    poke(img, start, stream)
    extra = (l2b + 4095 - 1) // 512 - start // 512     # sectors after the first
    poke(img, l2a, struct.pack(">Q", COMPRESSED | (extra << CSIZE_SHIFT_4K) | start))
    table = img.read_bytes()[l2b:l2b + 4095]
    assert read_raw_via_qemu(img, tmp_path)[:4096] == b"X" + table
    rc, _, err = kimg("convert", "-O", "raw", img, tmp_path / "k.raw")
    assert rc == 1 and "error while reading at byte 0: Input/output error" in err, err
    # Mapping reads no data: the entry is shown as compressed data, as qemu-img shows it.
    assert ok(kimg("map", "--output=json", img)) == ok(qimg("map", "--output=json", img))


# Over data in base too: QEMU's commit (a mirror job with unmap) frees base's clusters.
@pytest.mark.parametrize("base_data", [False, True])
def test_commit_zeroed_overlay_writes_zero_clusters(tmp_path, base_data):
    got = {}
    for which, d in tool_dirs(tmp_path):
        base, top = d / "base.qcow2", d / "top.qcow2"
        ok(qimg("create", "-f", "qcow2", base, "1M"))
        if base_data:
            qio_ok(base, "write -P 0x11 0 64k", "write -P 0x22 512k 4k")
        ok(qimg("create", "-f", "qcow2", "-b", base, "-F", "qcow2", top))
        qio_ok(top, "write -z 0 1M")
        ok(tool(which, "commit", top))
        rc, out, err = qimg("check", "--output=json", base)
        check = json.loads(out)
        got[which] = (rc, check.get("allocated-clusters"), check["image-end-offset"], qmap(base))
    assert got["kestrel"] == got["qemu"]


def test_zero_flag_in_v2_image_is_corruption(tmp_path):
    # QEMU's qcow2_get_host_offset: bit 0 is reserved before v3; map stops
    # there and leaves its JSON list open, as qemu-img does.
    img = tmp_path / "a.qcow2"
    ok(qimg("create", "-f", "qcow2", "-o", "compat=0.10", img, "4M"))
    qio_ok(img, "write -P 0x11 0 128k")
    l1 = header_field(img, 40, "Q")
    with open(img, "rb") as f:
        f.seek(l1)
        l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
        f.seek(l2 + 8)
        e = struct.unpack(">Q", f.read(8))[0]
    poke(img, l2 + 8, struct.pack(">Q", e | 1))
    got = {}
    for which in TOOLS:
        got[which] = tool(which, "map", "--output=json", img)
    assert got["kestrel"][0] == got["qemu"][0] == 1
    assert got["kestrel"][1] == got["qemu"][1]
    assert not got["kestrel"][1].rstrip().endswith("]")
    assert "Zero cluster entry found in pre-v3 image" in got["kestrel"][2]


def test_snapshot_delete_finds_by_name_only(tmp_path):
    img = tmp_path / "a.qcow2"
    ok(qimg("create", "-f", "qcow2", img, "1M"))
    ok(qimg("snapshot", "-c", "s1", img))
    rc, _, err = kimg("snapshot", "-d", "1", img)
    assert rc == 1
    assert "Could not delete snapshot '1': snapshot not found" in err
    assert "s1" in qimg("snapshot", "-l", img)[1]
    ok(kimg("snapshot", "-d", "s1", img))
    assert "s1" not in qimg("snapshot", "-l", img)[1]


def test_commit_cuts_the_emptied_overlay_like_qemu(tmp_path):
    # QEMU's make_completely_empty: header, refcount table and block, L1,
    # written whole; the file ends after them.
    got = {}
    for which, d in tool_dirs(tmp_path):
        base, top = d / "base.qcow2", d / "top.qcow2"
        ok(qimg("create", "-f", "qcow2", base, "4M"))
        ok(qimg("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top))
        qio_ok(top, "write -P 0x44 1M 64k", "write -P 0x55 2M 64k")
        ok(tool(which, "commit", top))
        st = top.stat()
        got[which] = (st.st_size, top.read_bytes())
    assert got["kestrel"] == got["qemu"]


@pytest.mark.parametrize("compat", ["0.10", "1.1"])
def test_rebase_from_no_backing_file_reads_zeroes(tmp_path, compat):
    got = {}
    for which, d in tool_dirs(tmp_path):
        new, top = d / "new.qcow2", d / "top.qcow2"
        ok(qimg("create", "-f", "qcow2", new, "1M"))
        qio_ok(new, "write -P 0x22 0 1M")
        ok(qimg("create", "-f", "qcow2", "-o", f"compat={compat}", top, "1M"))
        ok(tool(which, "rebase", "-b", new, "-F", "qcow2", top))
        got[which] = (qio(top, "read -P 0 0 1M")[1].count("fail"), qmap(top))
    assert got["kestrel"][0] == 0
    if compat == "1.1":
        assert got["kestrel"] == got["qemu"]
    # v2: qemu-img 7.2 leaves the clusters unallocated, so the new backing
    # file shows through (wrong data); kestrel-img writes the zeroes.


# --- amend compat=0.10: zero clusters of every tree (QEMU's qcow2_expand_zero_clusters) ---

def zero_flags(img):
    """(L1 offset, L2 index) of every L2 entry with the zero flag, in the
    active tree and every snapshot's (64 KiB clusters, one L1 entry)."""
    data = img.read_bytes()
    q = lambda off: struct.unpack(">Q", data[off:off + 8])[0]
    l1s = [q(40)]
    off = q(64)
    for _ in range(struct.unpack(">I", data[60:64])[0]):
        l1s.append(q(off))
        idl, nml = struct.unpack(">HH", data[off + 12:off + 16])
        extra = struct.unpack(">I", data[off + 36:off + 40])[0]
        off = (off + 40 + extra + idl + nml + 7) & ~7
    found = []
    for l1 in l1s:
        l2 = q(l1) & 0x00fffffffffffe00
        found += [(l1, i) for i in range(8192) if l2 and q(l2 + 8 * i) & 1]
    return found


def test_downgrade_unbacked_zero_cluster_unallocated_like_qemu(tmp_path):
    # Without a backing file a zero cluster without host space just becomes
    # unallocated: no cluster is spent on it (qemu-img's map and layout).
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(qimg("create", "-f", "qcow2", img, "4M"))
        qio_ok(img, "write -P 0x11 0 64k", "write -z 2M 64k")
        ok(tool(which, "amend", "-o", "compat=0.10", img))
        got[which] = (qmap(img), img.stat().st_size)
        assert not zero_flags(img)
    assert got["kestrel"] == got["qemu"]
    assert not [m for m in got["kestrel"][0] if m["start"] == 2 << 20 and m["present"]]


@pytest.mark.parametrize("backed", [False, True])
def test_downgrade_expands_snapshot_zero_clusters(tmp_path, backed):
    # Zero flags in a snapshot's L2 table have no v2 meaning: left there,
    # the snapshot cannot be read once applied.  And a preallocated zero
    # cluster shared with a snapshot keeps the snapshot's data (qemu-img
    # 7.2 writes zeroes over it).
    img, base = tmp_path / "a.qcow2", tmp_path / "base.qcow2"
    back = []
    if backed:
        ok(qimg("create", "-f", "qcow2", base, "4M"))
        qio_ok(base, "write -P 0x77 0 4M")
        back = ["-b", str(base), "-F", "qcow2"]
    ok(qimg("create", "-f", "qcow2", *back, img, "4M"))
    qio_ok(img, "write -P 0x11 0 64k", "write -z 1M 64k", "write -P 0x22 2M 64k")
    ok(qimg("snapshot", "-c", "s1", img))
    qio_ok(img, "write -z 0 64k", "write -z 3M 64k")
    ok(qimg("convert", "-O", "raw", img, tmp_path / "top.raw"))
    ok(qimg("convert", "-O", "raw", "-l", "s1", img, tmp_path / "s1.raw"))
    assert len({l1 for l1, _ in zero_flags(img)}) == 2    # both trees have some
    ok(kimg("amend", "-o", "compat=0.10", img))
    assert header_field(img, 4, "I") == 2 and not zero_flags(img)
    ok(qimg("check", img))
    ok(qimg("compare", "-f", "qcow2", "-F", "raw", img, tmp_path / "top.raw"))
    ok(qimg("convert", "-O", "raw", "-l", "s1", img, tmp_path / "s1-after.raw"))
    assert (tmp_path / "s1-after.raw").read_bytes() == (tmp_path / "s1.raw").read_bytes()
    ok(kimg("snapshot", "-a", "s1", img))
    ok(qimg("compare", "-f", "qcow2", "-F", "raw", img, tmp_path / "s1.raw"))
    ok(qimg("check", img))
# --- external data file: first block at create, partial writes zero the cluster in place ---

def test_data_file_layout_as_qemu(tmp_path):
    """QEMU's data file grows from empty through file-posix truncate, which
    writes its first 4 KiB (allocate_first_block); a partial write to a fresh
    cluster zeroes the cluster (handle_alloc_space), then writes only the data."""
    src = tmp_path / "s.raw"
    ok(qimg("create", "-q", "-f", "raw", src, "4M"))
    qio_ok(src, "write -P 0x33 3M 512", fmt="raw")
    maps = {}
    for which, d in tool_dirs(tmp_path):
        # The data file is created where its name says, then looked up beside the image.
        ok(tool(which, "create", "-q", "-f", "qcow2", "-o", "data_file=n.data", "n.qcow2", "4M",
                cwd=d))
        ok(tool(which, "convert", "-O", "qcow2", "-o", "data_file=o.data", src, "o.qcow2", cwd=d))
        qio_ok(d / "o.qcow2", "read -P 0x33 3M 512", "read -P 0 3146240 65024", cwd=d)
        maps[which] = [qmap(d / "n.data"), qmap(d / "o.data")]
    assert maps["kestrel"] == maps["qemu"]


def test_data_file_partial_write_zeroes_stale_bytes(tmp_path):
    """A fresh cluster of a data file may hold old bytes: the parts the write
    leaves alone must read as zeroes afterwards, not as the old bytes."""
    src, img = tmp_path / "s.raw", tmp_path / "o.qcow2"
    ok(qimg("create", "-q", "-f", "raw", src, "4M"))
    qio_ok(src, "write -P 0x33 3M 512", fmt="raw")
    ok(qimg("create", "-q", "-f", "qcow2", "-o", "data_file=o.data", img, "4M", cwd=tmp_path))
    qio_ok(tmp_path / "o.data", "write -P 0xee 0 4M", fmt="raw")
    ok(kimg("convert", "-n", "-O", "qcow2", src, img, cwd=tmp_path))
    qio_ok(img, "read -P 0x33 3M 512", "read -P 0 3146240 65024", "read -P 0 0 3M",
           cwd=tmp_path)


# --- check -r all: the rebuilt refcount structure where QEMU puts it, freed clusters punched ---

@pytest.mark.parametrize("damage", ["reftable-entry-0", "data-refcount-0"])
def test_check_rebuild_layout_as_qemu(tmp_path, damage):
    """QEMU's rebuild puts each new refcount block, then the table, in the
    first free clusters (an old block nothing references is free), and the
    leak repair after it discards the old structure's clusters."""
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.qcow2"
        ok(qimg("create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", img, "4M"))
        qio_ok(img, "write -P 0x11 0 8k", "write -P 0x22 1M 4k", "write -P 0x33 3M 4k")
        rt_off = header_field(img, 48, "Q")
        if damage == "reftable-entry-0":
            poke(img, rt_off, bytes(8))
        else:
            rb_off = header_field(img, rt_off, "Q")
            data = qmap(img)[0]["offset"] // 4096
            poke(img, rb_off + 2 * data, bytes(2))
        rc, out, err = tool(which, "check", "-r", "all", img)
        assert rc == 0, err
        qio_ok(img, "read -P 0x11 0 8k", "read -P 0x22 1M 4k", "read -P 0x33 3M 4k")
        got[which] = (out, err, header_field(img, 48, "Q"), header_field(img, 56, "I"),
                      img.stat().st_size, data_extents(img))
    assert got["kestrel"] == got["qemu"]


def test_resize_empty_raw_writes_first_block_as_qemu(tmp_path):
    """file-posix truncate from length 0 writes the first 4 KiB (allocate_first_block)."""
    got = {}
    for which in TOOLS:
        img = tmp_path / f"{which}.raw"
        ok(qimg("create", "-q", "-f", "raw", img, "0"))
        ok(tool(which, "resize", "-f", "raw", img, "1M"))
        got[which] = (qmap(img), data_extents(img))
    assert got["kestrel"] == got["qemu"]
# --- damaged L2 entries: what qemu-img says, and when (qcow2-cluster.c) ---

def _l2_entry_addr(img, guest, cluster=65536):
    """File offset of the L2 entry for guest offset `guest` (first L2 table)."""
    l1 = header_field(img, 40, "Q")
    with open(img, "rb") as f:
        f.seek(l1)
        l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    return l2 + 8 * (guest // cluster)


def _bend_entry(img, guest, fn):
    addr = _l2_entry_addr(img, guest)
    with open(img, "rb") as f:
        f.seek(addr)
        e = struct.unpack(">Q", f.read(8))[0]
    poke(img, addr, struct.pack(">Q", fn(e)))
    return e


def _corrupt_line(text):
    return [line for line in text.splitlines() if line.startswith("qcow2:")]


def test_unaligned_data_cluster_named_as_qemu(tmp_path):
    # A lookup (map, reads) names the L2 table and index; a write into the
    # cluster (handle_copied) names the guest offset.
    img = tmp_path / "a.qcow2"
    ok(qimg("create", "-f", "qcow2", img, "4M"))
    qio_ok(img, "write -P 0x11 0 192k")
    _bend_entry(img, 131072, lambda e: e + 512)
    for args in (("map", "--output=json"), ("bench", "-w", "-c", "1", "-o", "131072", "-s", "512")):
        got = {}
        for which in TOOLS:
            work = tmp_path / f"{which}.qcow2"
            shutil.copy(img, work)
            rc, out, err = tool(which, *args, str(work))
            got[which] = (rc, _corrupt_line(err))
        assert got["kestrel"] == got["qemu"], args
        assert got["kestrel"][0] == 1 and got["kestrel"][1], args


def test_convert_block_status_error_before_any_write(tmp_path):
    # qemu-img convert walks the whole source's block status before it
    # copies: an unreadable L2 entry past the first 2 MiB stops it with the
    # target created but not written, and says it was the block status.
    img = tmp_path / "a.qcow2"
    ok(qimg("create", "-f", "qcow2", img, "4M"))
    qio_ok(img, "write -P 0x11 0 64k", "write -P 0x22 3M 64k")
    _bend_entry(img, 3 << 20, lambda e: e + 512)
    got = {}
    for which in TOOLS:
        out = tmp_path / f"{which}.raw"
        rc, _, err = tool(which, "convert", "-O", "raw", str(img), str(out))
        lines = [line.split(": ", 1)[1] for line in err.splitlines() if line.startswith(("qemu-img", "kestrel-img"))]
        got[which] = (rc, lines, out.stat().st_size, out.read_bytes().count(0x11))
    assert got["kestrel"] == got["qemu"]
    assert got["kestrel"][1] == ["error while reading block status at offset 3145728: Input/output error"]
    assert got["kestrel"][3] == 0


def test_compressed_cluster_past_eof_mapped_not_read(tmp_path):
    # qemu-img map reports a compressed cluster whose bytes the file lost;
    # a read of it fails (nothing to decompress), with no corruption signal.
    img = tmp_path / "a.qcow2"
    ok(qimg("create", "-f", "qcow2", img, "4M"))
    qio_ok(img, "write -P 0x11 0 64k", "write -c -P 0x22 64k 64k")
    e = _bend_entry(img, 65536, lambda e: e)
    coff = e & ((1 << 54) - 1)          # 64 KiB clusters: offset bits 0..53
    with open(img, "r+b") as f:
        f.truncate(coff & ~511)
    for args in (("map", "--output=json"), ("convert", "-O", "raw")):
        got = {}
        for which in TOOLS:
            extra = [str(tmp_path / f"{which}.raw")] if args[0] == "convert" else []
            rc, out, err = tool(which, *args, str(img), *extra)
            got[which] = (rc, out, _corrupt_line(err), "error while reading at byte 65536" in err)
        assert got["kestrel"] == got["qemu"], args
        assert got["kestrel"][2] == []
    assert got["kestrel"][0] == 1 and got["kestrel"][3]
