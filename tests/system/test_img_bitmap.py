"""Persistent dirty bitmaps (qcow2 spec: "Bitmaps extension") through
kestrel-img and the block library, against qemu-img/qemu-io/qemu-nbd 7.2:

- `kestrel-img bitmap` prints what `qemu-img bitmap` prints and exits as it
  does, for every action and option error (only QEMU's internal node name
  "#blockNNN" and the disk-size line are normalised);
- bitmaps either tool makes, the other lists, changes and reads: the content
  is compared bit for bit by reading the image's own structures (a small
  parser below) and, where nbdinfo exists, through qemu-nbd's bitmap export;
- writes through kestrel's block layer mark the enabled bitmaps exactly as
  QEMU's writes do; images stay clean for qemu-img check;
- measure's "bitmaps size", convert --bitmaps and a crash at every write of
  a bitmap update leave what QEMU would (at worst leaks, bitmaps in use)."""
import os
import re
import shutil
import struct
import subprocess

import pytest

from test_img_helpers import (BLOCK_IO, KIMG, data_extents, kimg, needs_build, needs_qemu_img,
                              ok, qimg, run)

pytestmark = [needs_build, needs_qemu_img]

EXT_BITMAPS = 0x23852875


def bitmaps(path):
    """{name: (flags, granularity_bits, content bytes)} read from the image's own tables."""
    d = open(path, "rb").read()
    cs = 1 << struct.unpack(">I", d[20:24])[0]
    autoclear = struct.unpack(">Q", d[88:96])[0]
    off = struct.unpack(">I", d[100:104])[0]
    size = struct.unpack(">Q", d[24:32])[0]
    out = {}
    while off + 8 <= cs:
        typ, ln = struct.unpack(">II", d[off:off + 8])
        if typ == 0:
            break
        if typ == EXT_BITMAPS and autoclear & 1:
            nb, _, _, p = struct.unpack(">IIQQ", d[off + 8:off + 32])
            for _ in range(nb):
                toff, tsize, flags, _, gbits, nlen, extra = struct.unpack(">QIIBBHI", d[p:p + 24])
                name = d[p + 24 + extra:p + 24 + extra + nlen].decode()
                nbytes = (((size + (1 << gbits) - 1) >> gbits) + 7) // 8
                data = bytearray()
                for i in range(tsize):
                    e = struct.unpack(">Q", d[toff + 8 * i:toff + 8 * i + 8])[0]
                    at = e & 0x00fffffffffffe00
                    data += d[at:at + cs] if at else (b"\xff" if e & 1 else b"\0") * cs
                out[name] = (flags, gbits, bytes(data[:nbytes]))
                p += (24 + extra + nlen + 7) & ~7
        off += 8 + ((ln + 7) & ~7)
    return out


def norm(text, prog):
    text = text.replace(os.path.basename(str(prog)) + ":", "PROG:")
    text = text.replace(os.path.basename(str(prog)) + " ", "PROG ")
    text = re.sub(r"#block\d+", "#blockN", text)
    text = re.sub(r'"actual-size": \d+', '"actual-size": N', text)
    return re.sub(r"disk size: .*", "disk size: N", text)


def fresh(d):
    """The same starting images for both tools."""
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    ok(qimg("create", "-f", "qcow2", f"{d}/a.qcow2", "10M"))
    ok(qimg("create", "-f", "qcow2", f"{d}/b.qcow2", "20M"))
    ok(qimg("create", "-f", "qcow2", "-o", "compat=0.10", f"{d}/v2.qcow2", "10M"))
    ok(qimg("create", "-f", "raw", f"{d}/r.raw", "10M"))


SEQUENCE = [
    ["--add", "v2.qcow2", "x"],
    ["--add", "-f", "raw", "r.raw", "x"],
    ["--remove", "-f", "raw", "r.raw", "x"],
    ["--add", "-g", "256", "a.qcow2", "x"],
    ["--add", "-g", "3k", "a.qcow2", "x"],
    ["--add", "-g", "4G", "a.qcow2", "x"],
    ["--add", "-g", "4294967808", "a.qcow2", "x4"],
    ["--add", "-g", "abc", "a.qcow2", "x"],
    ["--add", "-g", "0", "a.qcow2", "x"],
    ["-g", "64k", "--remove", "a.qcow2", "x"],
    ["--add", "a.qcow2"],
    ["--add", "a.qcow2", "x", "y"],
    ["--add", "a.qcow2", ""],
    ["--merge", "y", "a.qcow2", "x"],
    ["--add", "a.qcow2", "x"],
    ["--add", "b.qcow2", "y"],
    ["--merge", "y", "-b", "b.qcow2", "a.qcow2", "x"],
    ["--merge", "nope", "-b", "b.qcow2", "a.qcow2", "x"],
    ["-F", "qcow2", "--merge", "x", "a.qcow2", "x"],
    ["-b", "b.qcow2", "--add", "a.qcow2", "z"],
    ["--enable", "a.qcow2", "nope"],
    ["--clear", "a.qcow2", "nope"],
    ["--disable", "--enable", "--clear", "a.qcow2", "x"],
    ["--bogus", "a.qcow2", "x"],
    ["-q", "a.qcow2", "x"],
    ["--merge"],
    ["a.qcow2"],
    [],
    ["--add", "nonexist.qcow2", "x"],
    ["--add", "--remove", "a.qcow2", "tmp"],
    ["--add", "--add", "a.qcow2", "twice"],
    ["--add", "-g", "2G", "a.qcow2", "big"],
    ["--add", "-g", "512", "a.qcow2", "small"],
    ["--add", "--disable", "a.qcow2", "dis"],
    ["--merge", "small", "--merge", "big", "a.qcow2", "x"],
    ["--remove", "a.qcow2", "big"],
    ["--disable", "a.qcow2", "x"],
]


def run_sequence(prog, d):
    fresh(d)
    lines = []
    for args in SEQUENCE:
        rc, out, err = run([prog, "bitmap", *args], cwd=d)
        lines.append(f"--- {args}\n{norm(out + err, prog)}rc={rc}")
    for cmd in (["info", "a.qcow2"], ["info", "--output=json", "a.qcow2"], ["check", "a.qcow2"]):
        rc, out, err = run([prog, *cmd], cwd=d)
        lines.append(f"--- {cmd}\n{norm(out + err, prog)}rc={rc}")
    return lines, bitmaps(os.path.join(d, "a.qcow2"))


def test_bitmap_command_matches_qemu_img(tmp_path):
    """Each action and error of `bitmap`, then info/check of the result, line by line."""
    kd, qd = tmp_path / "k", tmp_path / "q"
    kd.mkdir()
    qd.mkdir()
    k, kbm = run_sequence(KIMG, str(kd))
    q, qbm = run_sequence("qemu-img", str(qd))
    for kl, ql in zip(k, q):
        assert kl == ql
    assert kbm == qbm
    assert set(kbm) == {"x4", "x", "twice", "small", "dis"}


def write_both(tmp_path, gran, requests, qemu_io_cmds):
    """One image per tool, same bitmaps, same writes (block-io vs qemu-io)."""
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(1 << 20))
    imgs = {}
    for who in ("k", "q"):
        p = tmp_path / f"{who}.qcow2"
        ok(qimg("create", "-f", "qcow2", p, "10M"))
        for i, g in enumerate(gran):
            ok(qimg("bitmap", "--add", "-g", str(g), p, f"b{i}"))
        ok(qimg("bitmap", "--add", "--disable", p, "off"))
        imgs[who] = p
    ok(run([BLOCK_IO, "-f", "qcow2", "-d", data, imgs["k"]], input=requests.encode()))
    args = ["qemu-io", "-f", "qcow2"]
    for c in qemu_io_cmds:
        args += ["-c", c]
    ok(run(args + [imgs["q"]]))
    return imgs


def test_kestrel_writes_mark_bitmaps_as_qemu_does(tmp_path):
    """Writes, zero writes and discards through the block library, 4 granularities."""
    imgs = write_both(tmp_path, [512, 4096, 65536, 1 << 20],
                      "w 131072 4096 0\nw 3145728 200000 0\nz 9437184 65536\n"
                      "u 5242880 512\nw 10484736 1024 0\n",
                      ["write 131072 4096", "write 3145728 200000", "write -z 9437184 65536",
                       "discard 5242880 512", "write 10484736 1024"])
    k, q = bitmaps(imgs["k"]), bitmaps(imgs["q"])
    assert k == q
    assert any(k["b0"][2]) and not any(k["off"][2])
    qemu_check = qimg("check", imgs["k"])
    assert qemu_check[0] == 0, qemu_check


def test_read_write_open_keeps_bitmaps(tmp_path):
    """Regression: a read/write open used to clear autoclear bit 0, losing every bitmap."""
    p = tmp_path / "a.qcow2"
    ok(qimg("create", "-f", "qcow2", p, "1M"))
    ok(qimg("bitmap", "--add", p, "keep"))
    ok(run([BLOCK_IO, "-f", "qcow2", p], input=b"z 0 512\n"))
    assert "name: keep" in ok(qimg("info", p))
    assert bitmaps(p)["keep"][2][0] == 1
    ok(qimg("check", p))


def nbd_map(path, name):
    """The dirty ranges qemu-nbd exports for a bitmap (nbdinfo --map)."""
    out = ok(run(["nbdinfo", f"--map=qemu:dirty-bitmap:{name}", "--", "[", "qemu-nbd", "-r",
                  "-f", "qcow2", "-B", name, path, "]"], timeout=60))
    return [tuple(int(x) for x in line.split()[:2]) for line in out.splitlines()
            if line.split()[-1] == "dirty"]


@pytest.mark.skipif(shutil.which("nbdinfo") is None, reason="nbdinfo (libnbd-bin) missing")
def test_qemu_nbd_exports_kestrel_bitmaps(tmp_path):
    """qemu-nbd reads the bitmaps kestrel stored: same dirty ranges as QEMU's own."""
    imgs = write_both(tmp_path, [4096, 65536], "w 65536 8192 0\nw 2097152 70000 0\n",
                      ["write 65536 8192", "write 2097152 70000"])
    for name in ("b0", "b1"):
        k, q = nbd_map(str(imgs["k"]), name), nbd_map(str(imgs["q"]), name)
        assert k == q and k
    assert nbd_map(str(imgs["k"]), "off") == []


def test_merge_and_clear_on_qemu_made_bitmaps(tmp_path):
    """kestrel-img merges (other granularity, other file), clears and removes qemu's bitmaps."""
    contents = {}
    for prog in (KIMG, "qemu-img"):
        d = tmp_path / os.path.basename(str(prog))
        d.mkdir()
        a, b = d / "a.qcow2", d / "b.qcow2"
        for p in (a, b):
            ok(qimg("create", "-f", "qcow2", p, "4M"))
        ok(qimg("bitmap", "--add", "-g", "512", a, "fine"))
        ok(qimg("bitmap", "--add", "-g", "1M", a, "coarse"))
        ok(qimg("bitmap", "--add", "-g", "8k", b, "other"))
        ok(qimg("bitmap", "--add", a, "gone"))
        ok(run(["qemu-io", "-c", "write 1000 3000", "-c", "write 3M 1", a]))
        ok(run(["qemu-io", "-c", "write 1536k 100k", b]))
        ok(run([prog, "bitmap", "--add", "--merge", "fine", a, "m"]))
        ok(run([prog, "bitmap", "--merge", "other", "-b", b, "-F", "qcow2", a, "m"]))
        ok(run([prog, "bitmap", "--merge", "m", "--disable", a, "coarse"]))
        ok(run([prog, "bitmap", "--clear", a, "fine"]))
        ok(run([prog, "bitmap", "--remove", a, "gone"]))
        ok(qimg("check", a))
        contents[prog] = bitmaps(a)
    assert contents[KIMG] == contents["qemu-img"]
    assert any(contents[KIMG]["m"][2]) and not any(contents[KIMG]["fine"][2])


def set_flags(path, name, flags):
    """Marks a bitmap's directory entry (e.g. in use: a crashed writer's)."""
    d = bytearray(open(path, "rb").read())
    off = struct.unpack(">I", d[100:104])[0]
    while True:
        typ, ln = struct.unpack(">II", d[off:off + 8])
        if typ == EXT_BITMAPS:
            nb, _, _, p = struct.unpack(">IIQQ", d[off + 8:off + 32])
            break
        off += 8 + ((ln + 7) & ~7)
    for _ in range(nb):
        nlen, extra = struct.unpack(">HI", d[p + 18:p + 24])
        if d[p + 24 + extra:p + 24 + extra + nlen].decode() == name:
            d[p + 12:p + 16] = struct.pack(">I", flags)
        p += (24 + extra + nlen + 7) & ~7
    open(path, "wb").write(bytes(d))


INCONSISTENT = [
    ["bitmap", "--clear", "i.qcow2", "bad"],
    ["bitmap", "--enable", "i.qcow2", "bad"],
    ["bitmap", "--merge", "bad", "i.qcow2", "good"],
    ["bitmap", "--merge", "good", "i.qcow2", "bad"],
    ["convert", "--bitmaps", "-O", "qcow2", "i.qcow2", "o1.qcow2"],
    ["convert", "--bitmaps", "--skip-broken-bitmaps", "-O", "qcow2", "i.qcow2", "o2.qcow2"],
    ["info", "o2.qcow2"],
    ["resize", "i.qcow2", "20M"],
    ["info", "i.qcow2"],
    ["bitmap", "--remove", "i.qcow2", "bad"],
    ["check", "i.qcow2"],
    ["resize", "i.qcow2", "20M"],
    ["info", "i.qcow2"],
]


def test_inconsistent_bitmaps_as_qemu(tmp_path):
    """An in-use bitmap: refused for use, skipped or refused by convert, removable."""
    res = {}
    for prog in (KIMG, "qemu-img"):
        d = tmp_path / os.path.basename(str(prog))
        d.mkdir()
        ok(qimg("create", "-f", "qcow2", d / "i.qcow2", "10M"))
        ok(qimg("bitmap", "--add", d / "i.qcow2", "good"))
        ok(qimg("bitmap", "--add", d / "i.qcow2", "bad"))
        set_flags(d / "i.qcow2", "bad", 3)
        lines = []
        for cmd in INCONSISTENT:
            rc, out, err = run([prog, *cmd], cwd=d)
            lines.append(f"{cmd}\n{norm(out + err, prog)}rc={rc}")
        res[prog] = lines
        assert not (d / "o1.qcow2").exists()
    for k, q in zip(res[KIMG], res["qemu-img"]):
        assert k == q, f"kestrel-img:\n{k}\nqemu-img:\n{q}"


CONVERT = [
    ["--bitmaps", "-O", "qcow2", "a.qcow2", "o1.qcow2"],
    ["--bitmaps", "-O", "raw", "a.qcow2", "o.raw"],
    ["--bitmaps", "-O", "qcow2", "-o", "compat=0.10", "a.qcow2", "o2.qcow2"],
    ["--bitmaps", "-O", "qcow2", "r.raw", "o3.qcow2"],
    ["--bitmaps", "-O", "qcow2", "a.qcow2", "a.qcow2", "o4.qcow2"],
    ["--skip-broken-bitmaps", "-O", "qcow2", "a.qcow2", "o5.qcow2"],
    ["--bitmaps", "-n", "-O", "qcow2", "a.qcow2", "o1.qcow2"],
]


def test_convert_bitmaps_and_measure_as_qemu(tmp_path):
    """convert --bitmaps copies every bitmap with its content and state; measure sizes them."""
    res, copied = {}, {}
    for prog in (KIMG, "qemu-img"):
        d = tmp_path / os.path.basename(str(prog))
        d.mkdir()
        a = d / "a.qcow2"
        ok(qimg("create", "-f", "qcow2", a, "10M"))
        ok(qimg("create", "-f", "raw", d / "r.raw", "1M"))
        ok(qimg("bitmap", "--add", a, "b0"))
        ok(qimg("bitmap", "--add", "-g", "512", a, "b1-with-a-longer-name"))
        ok(qimg("bitmap", "--add", "--disable", a, "b2"))
        ok(run(["qemu-io", "-c", "write 100k 300k", "-c", "write 7M 1", a]))
        lines = []
        for cmd in CONVERT:
            rc, out, err = run([prog, "convert", *cmd], cwd=d)
            lines.append(f"{cmd}\n{norm(out + err, prog)}rc={rc}")
        for opts in ([], ["-o", "cluster_size=4k"], ["-o", "compat=0.10"], ["--output=json"]):
            rc, out, err = run([prog, "measure", "-O", "qcow2", *opts, "a.qcow2"], cwd=d)
            lines.append(f"measure {opts}\n{out}{norm(err, prog)}rc={rc}")
        res[prog] = lines
        ok(qimg("check", d / "o1.qcow2"))
        copied[prog] = bitmaps(d / "o1.qcow2")
        ok(run([prog, "convert", "--bitmaps", "-O", "qcow2", a, d / "o9.qcow2"]))
        assert bitmaps(d / "o9.qcow2") == bitmaps(a)
    assert copied[KIMG] == copied["qemu-img"]
    for k, q in zip(res[KIMG], res["qemu-img"]):
        assert k == q, f"kestrel-img:\n{k}\nqemu-img:\n{q}"
    assert "bitmaps size: 458752" in "".join(res[KIMG])


def test_resize_carries_bitmaps(tmp_path):
    """Grown and shrunk with bitmaps: the content follows the size as QEMU's does."""
    got = {}
    for prog in (KIMG, "qemu-img"):
        p = tmp_path / f"{os.path.basename(str(prog))}.qcow2"
        ok(qimg("create", "-f", "qcow2", p, "3M"))
        ok(qimg("bitmap", "--add", "-g", "4k", p, "g"))
        ok(run(["qemu-io", "-c", "write 0 16k", "-c", "write 2044k 4k", "-c", "write 3068k 4k",
                p]))
        ok(run([prog, "resize", p, "5M"]))
        ok(run([prog, "resize", "--shrink", p, "2M"]))
        ok(qimg("check", p))
        got[prog] = bitmaps(p)
    assert got[KIMG] == got["qemu-img"]


def test_crash_during_bitmap_update_leaves_image_usable(tmp_path):
    """A crash at each write of an add/merge: at worst leaks; bitmaps old, new or in use."""
    base = tmp_path / "base.qcow2"
    ok(qimg("create", "-f", "qcow2", base, "8M"))
    ok(qimg("bitmap", "--add", base, "old"))
    ok(run(["qemu-io", "-c", "write 1M 64k", base]))
    crashed = 0
    for n in range(60):
        p = tmp_path / "c.qcow2"
        shutil.copy(base, p)
        env = dict(os.environ, KESTREL_CRASH_AFTER_WRITES=str(n))
        r = subprocess.run([str(KIMG), "bitmap", "--add", "--merge", "old", str(p), "new"],
                           env=env, capture_output=True, timeout=60)
        rc, out, err = qimg("check", "--output=json", p)
        assert rc in (0, 3), (n, out, err)      # 3: leaked clusters only
        assert '"corruptions"' not in out or '"corruptions": 0' in out, (n, out)
        bms = bitmaps(p)
        old = bms.get("old")
        assert old is None or old[0] & 1 or any(old[2]), (n, bms)
        if r.returncode == 0:
            assert set(bms) == {"old", "new"} and bms["new"][2] == bms["old"][2]
            break
        crashed += 1
    assert crashed > 3 and r.returncode == 0


def edit_ext(path, field, fmt, value):
    """Rewrites one field of the bitmaps extension (offset within its data), or autoclear."""
    d = bytearray(open(path, "rb").read())
    if field == "autoclear":
        d[88:96] = struct.pack(">Q", value)
    else:
        off = struct.unpack(">I", d[100:104])[0]
        while struct.unpack(">I", d[off:off + 4])[0] != EXT_BITMAPS:
            off += 8 + ((struct.unpack(">I", d[off + 4:off + 8])[0] + 7) & ~7)
        at = off + 8 + field if field >= 0 else off + 4
        d[at:at + struct.calcsize(fmt)] = struct.pack(">" + fmt, value)
    open(path, "wb").write(bytes(d))


@pytest.mark.parametrize("field,fmt,value", [
    ("autoclear", "Q", 0),              # stale extension: a warning, no bitmaps
    (-1, "I", 16),                      # extension length
    (4, "I", 1),                        # reserved field
    (0, "I", 0),                        # no bitmaps
    (0, "I", 1 << 31),                  # too many
    (16, "Q", 65536 + 8),               # directory offset not aligned
    (8, "Q", 1 << 40),                  # directory too large
    (16, "Q", 1 << 30),                 # directory past the end: zeroes, refused
])
def test_extension_checks_at_open_as_qemu(tmp_path, field, fmt, value):
    """Every open checks the bitmaps extension with QEMU's messages (info, and bitmap --add)."""
    p = tmp_path / "e.qcow2"
    ok(qimg("create", "-f", "qcow2", p, "1M"))
    ok(qimg("bitmap", "--add", p, "b"))
    edit_ext(p, field, fmt, value)
    for cmd in (["info", "e.qcow2"], ["bitmap", "--add", "e.qcow2", "n"]):
        res = []
        for prog in (KIMG, "qemu-img"):
            c = tmp_path / os.path.basename(str(prog))
            c.mkdir(exist_ok=True)
            shutil.copy(p, c / "e.qcow2")
            rc, out, err = run([prog, *cmd], cwd=c)
            res.append((rc, norm(out + err, prog).replace(os.path.basename(str(prog)), "PROG")))
        assert res[0] == res[1]


@pytest.mark.parametrize("op", [["--clear"], ["--disable"], ["--remove"], ["--merge", "b1"]])
def test_bitmap_rewrite_leaves_allocation_as_qemu(tmp_path, op):
    """A rewritten bitmap directory/table frees the old clusters without
    punching them (QEMU's QCOW2_DISCARD_OTHER): the file's allocation matches
    qemu-img's, not only its refcounts."""
    base = tmp_path / "base.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", base, "4M"))
    run(["qemu-io", "-c", "write -P 1 0 1M", str(base)])
    for args in (["b0"], ["--disable", "b1"], ["-g", "128k", "b2"]):
        ok(qimg("bitmap", "--add", base, *args[:-1], args[-1]))
    sides = {}
    for name, tool in (("k", kimg), ("q", qimg)):
        img = tmp_path / f"{name}.qcow2"
        with open(base, "rb") as fi, open(img, "wb") as fo:
            fo.write(fi.read())
        subprocess.run(["fallocate", "--dig-holes", str(img)], check=True)
        ok(tool("bitmap", *op, img, "b0"))
        sides[name] = data_extents(img)
    assert sides["k"] == sides["q"]
