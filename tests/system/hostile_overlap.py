"""The hostile qcow2 images of issue #16 defect 4, for the system and guest
tests (no tests here): tables that point a guest cluster at metadata.

images(dirpath, kimg, block_io) -> [(name, path, description)], the shape
of hostile_qcow2.generate.  Each image is 16 MiB with 64 KiB clusters, guest
clusters 0 and 2 written (0xaa, 0xbb), so one L2 table maps them; TARGET
names the guest offset the damage sits under."""
import struct
import subprocess
from pathlib import Path

CS = 65536
COPIED = 1 << 63
COMPRESSED = 1 << 62
L1E_MASK = 0x00fffffffffffe00

# name -> guest offset whose cluster the damage sits under
TARGET = {"l2-on-refblock": CS, "l1-past-eof": 0, "l2-on-itself": CS, "compressed-max": CS}


def be64(buf, off):
    """The big-endian word at off; 0 where the buffer ends first (a hostile header)."""
    return struct.unpack(">Q", buf[off:off + 8])[0] if 0 <= off <= len(buf) - 8 else 0


def poke64(path, off, value):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(">Q", value))


def layout(path):
    """Where the tables are: l1, reftable, refblock, l2 and the file size."""
    b = Path(path).read_bytes()
    l1, rt = be64(b, 40), be64(b, 48)
    return {"l1": l1, "reftable": rt, "refblock": be64(b, rt) & ~0x1ff,
            "l2": be64(b, l1) & L1E_MASK, "size": len(b)}


def base(path, kimg, block_io):
    """16 MiB qcow2 made by kestrel-img, guest clusters 0 and 2 written by block-io."""
    subprocess.run([str(kimg), "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    data = Path(str(path) + ".data")
    data.write_bytes(b"\xaa" * CS + b"\xbb" * CS)
    subprocess.run([str(block_io), "-f", "qcow2", "-d", str(data), str(path)], check=True,
                   input=f"w 0 {CS} 0\nw {2 * CS} {CS} {CS}\nf\n".encode(),
                   capture_output=True)
    data.unlink()
    lay = layout(path)
    assert lay["l2"] and lay["refblock"] and lay["size"] > lay["l2"], lay
    return lay


def images(dirpath, kimg, block_io):
    dirpath = Path(dirpath)
    out = []

    def make(name, desc, damage):
        p = dirpath / f"{name}.qcow2"
        damage(p, base(p, kimg, block_io))
        out.append((name, p, desc))

    make("l2-on-refblock", "L2 entry of guest cluster 1 points at the refcount block",
         lambda p, l: poke64(p, l["l2"] + 8, l["refblock"] | COPIED))
    make("l1-past-eof", "L1 entry 0 points just past the end of the file",
         lambda p, l: poke64(p, l["l1"], ((l["size"] + CS - 1) & ~(CS - 1)) | COPIED))
    make("l2-on-itself", "L2 entry of guest cluster 1 points at its own L2 table",
         lambda p, l: poke64(p, l["l2"] + 8, l["l2"] | COPIED))
    # 64 KiB clusters: the sector count is 8 bits from bit 54; 0xff = 256 sectors.
    make("compressed-max", "compressed descriptor of 256 sectors starting at the L1 table",
         lambda p, l: poke64(p, l["l2"] + 8, COMPRESSED | (0xff << 54) | l["l1"]))
    return out


def metadata_ranges(image_bytes):
    """(offset, length) of the header cluster and of every table the header reaches
    inside the file: refcount table and blocks, L1 table, L2 tables.  Any header
    (a hostile one too) gives ranges clamped to the file."""
    b = image_bytes
    if len(b) < 72:
        return [(0, len(b))]
    bits = struct.unpack(">I", b[20:24])[0]
    cs = 1 << bits if 9 <= bits <= 21 else CS
    l1, l1_size = be64(b, 40), struct.unpack(">I", b[36:40])[0]
    rt, rt_clusters = be64(b, 48), struct.unpack(">I", b[56:60])[0]

    def inside(off, n):
        return off < len(b) and n > 0

    ranges = [(0, min(cs, len(b)))]
    if inside(rt, rt_clusters * cs):
        ranges.append((rt, min(rt_clusters * cs, len(b) - rt)))
        for i in range(min(rt_clusters * cs, len(b) - rt) // 8):
            off = be64(b, rt + 8 * i) & ~0x1ff
            if off and inside(off, cs):
                ranges.append((off, min(cs, len(b) - off)))
    if inside(l1, l1_size * 8):
        ranges.append((l1, min(l1_size * 8, len(b) - l1)))
        for i in range(min(l1_size * 8, len(b) - l1) // 8):
            off = be64(b, l1 + 8 * i) & L1E_MASK
            if off and inside(off, cs):
                ranges.append((off, min(cs, len(b) - off)))
    return ranges


def metadata_unchanged(before, after):
    """True when no metadata byte of before changed in after but the corrupt bit (bit 1)."""
    if len(after) < len(before) or after[79] != before[79] | 2:
        return False
    patched = bytearray(after)
    patched[79] = before[79]
    return all(before[o:o + n] == bytes(patched[o:o + n]) for o, n in metadata_ranges(before))


def same_but_corrupt_bit(before, after):
    """True when after differs from before only by the corrupt bit (qcow2 spec: bit 1)."""
    if len(before) != len(after) or after[79] != before[79] | 2:
        return False
    return before[:79] == after[:79] and before[80:] == after[80:]
