"""Writers of the read-only formats dmg, cloop and bochs for the tests and the fuzz seeds.

qemu-img cannot create these formats, so the tests build them here from the layouts the
drivers document (src/block/dmg.c, cloop.c, bochs.c) and compare what kestrel-img and
qemu-img 7.2 read from the same file with the data put in.  No pytest here: the fuzz seed
script runs it too."""
import base64
import bz2
import random
import struct
import zlib

SECTOR = 512

# ---------------------------------------------------------------- cloop
CLOOP_PREAMBLE = (b"#!/bin/sh\n#V2.0 Format\n"
                  b"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n")


def cloop(data, block_size=65536):
    """A V2.0 cloop image of data (padded to whole blocks)."""
    data = data + bytes(-len(data) % block_size)
    n = len(data) // block_size
    blocks = [zlib.compress(data[i * block_size:(i + 1) * block_size], 9) for i in range(n)]
    offsets, pos = [], 128 + 8 + 8 * (n + 1)
    for b in blocks:
        offsets.append(pos)
        pos += len(b)
    offsets.append(pos)
    head = CLOOP_PREAMBLE.ljust(128, b"\0") + struct.pack(">II", block_size, n)
    return head + b"".join(struct.pack(">Q", o) for o in offsets) + b"".join(blocks)


# ---------------------------------------------------------------- bochs
def bochs(data, extent=32768, version=2, seed=1, junk=True):
    """A growing redolog of data (a multiple of 512): extents that hold only zero sectors
    are left out of the catalog, zero sectors of stored extents have a clear bitmap bit
    (and junk behind it when junk, which must read as zeroes), and the stored extents lie
    in shuffled order so that the catalog's indirection is exercised."""
    assert len(data) % SECTOR == 0
    spe = extent // SECTOR
    n = -(-len(data) // extent)
    bitmap = max(1, spe // 8)
    bitmap_blocks = -(-bitmap // SECTOR)
    used = [i for i in range(n) if any(data[i * extent:(i + 1) * extent])]
    order = used[:]
    random.Random(seed).shuffle(order)
    catalog = [0xFFFFFFFF] * n
    stored = []
    for slot, i in enumerate(order):
        catalog[i] = slot
        ext = data[i * extent:(i + 1) * extent].ljust(extent, b"\0")
        bits = bytearray(bitmap_blocks * SECTOR)
        body = bytearray(ext)
        for s in range(spe):
            if any(ext[s * SECTOR:(s + 1) * SECTOR]):
                bits[s // 8] |= 1 << (s % 8)
            elif junk:
                body[s * SECTOR:(s + 1) * SECTOR] = b"\xEE" * SECTOR
        stored.append(bytes(bits) + bytes(body))
    size = struct.pack("<Q", len(data))
    h = (b"Bochs Virtual HD Image".ljust(32, b"\0") + b"Redolog".ljust(16, b"\0")
         + b"Growing".ljust(16, b"\0")
         + struct.pack("<IIIII", 0x00020000 if version == 2 else 0x00010000, SECTOR, n,
                       bitmap, extent)
         + (struct.pack("<I", 0) if version == 2 else b"") + size)
    h = h.ljust(SECTOR, b"\0")
    return h + b"".join(struct.pack("<I", c) for c in catalog) + b"".join(stored)


# ---------------------------------------------------------------- dmg
UDZE, UDRW, UDIG, UDZO, UDBZ, ULFO, UDCM, UDLE = (0, 1, 2, 0x80000005, 0x80000006,
                                                  0x80000007, 0x7FFFFFFE, 0xFFFFFFFF)


def _pack(kind, raw):
    if kind == UDZO:
        return zlib.compress(raw, 9)
    if kind == UDBZ:
        return bz2.compress(raw, 9)
    if kind == UDRW:
        return raw
    if kind == ULFO:
        return b"bvx2" + bytes(60)    # an lzfse block magic: no decoder reads it anyway
    return b""


def mish(chunks, first_sector, data_offset):
    """One BLKXTable: chunks are (type, sectors, stored bytes) placed at data_offset on."""
    entries, sector, pos = [], 0, 0
    for kind, sectors, stored in chunks:
        entries.append(struct.pack(">IIQQQQ", kind, 0, sector, sectors, pos, len(stored)))
        sector += sectors
        pos += len(stored)
    entries.append(struct.pack(">IIQQQQ", UDLE, 0, sector, 0, pos, 0))
    head = struct.pack(">4sIQQQII", b"mish", 1, first_sector, sector, data_offset, 0, 0)
    head = head.ljust(200, b"\0") + struct.pack(">I", len(entries))
    return head + b"".join(entries)


def dmg(partitions, xml=True, extra_data=True):
    """A UDIF image: partitions is a list of chunk lists [(type, raw bytes)], each raw a
    multiple of 512 (zero chunks: bytes(n) whose length counts).  Returns (image, disk)
    where disk is what a reader must see.  xml: the blkx tables as base64 <data> in the
    plist (with a non-mish "plst" <data> before them, which readers skip); else in a
    binary resource fork."""
    fork, tables, disk, first = b"", [], b"", 0
    for part in partitions:
        chunks, start = [], len(fork)
        for kind, raw in part:
            stored = _pack(kind, raw)
            chunks.append((kind, len(raw) // SECTOR, stored))
            fork += stored
            disk += bytes(len(raw)) if kind in (UDZE, UDIG) else raw
        # Chunk offsets are relative to the table's data offset (within the data fork).
        tables.append(mish(chunks, first, start))
        first += sum(c[1] for c in chunks)
    sectors = len(disk) // SECTOR
    if xml:
        items = "".join(
            f"\t\t\t<dict>\n\t\t\t\t<key>Name</key>\n\t\t\t\t<string>part {i}</string>\n"
            f"\t\t\t\t<key>Data</key>\n\t\t\t\t<data>\n"
            + "\n".join(base64.encodebytes(t).decode().split()) + "\n\t\t\t\t</data>\n"
            "\t\t\t</dict>\n" for i, t in enumerate(tables))
        plst = base64.b64encode(bytes(64)).decode() if extra_data else ""
        meta = (f"\t\t<key>plst</key>\n\t\t<array><dict><key>Data</key>"
                f"<data>{plst}</data></dict></array>\n") if extra_data else ""
        info = ('<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n'
                "\t<key>resource-fork</key>\n\t<dict>\n" + meta
                + "\t\t<key>blkx</key>\n\t\t<array>\n" + items + "\t\t</array>\n"
                "\t</dict>\n</dict>\n</plist>\n").encode()
        rsrc_off = rsrc_len = 0
        xml_off, xml_len = len(fork), len(info)
    else:
        body = b"".join(struct.pack(">I", len(t)) + t for t in tables)
        info = struct.pack(">IIII", 256, 256 + len(body), len(body), 0).ljust(256, b"\0") + body
        rsrc_off, rsrc_len = len(fork), len(info)
        xml_off = xml_len = 0
    koly = bytearray(512)
    struct.pack_into(">4sIII", koly, 0, b"koly", 4, 512, 1)
    struct.pack_into(">QQQQQ", koly, 0x10, 0, 0, len(fork), rsrc_off, rsrc_len)
    struct.pack_into(">QQ", koly, 0xD8, xml_off, xml_len)
    struct.pack_into(">Q", koly, 0x1EC, sectors)
    return fork + info + bytes(koly), disk


def pattern(size, seed=7):
    """Mixed data: random sectors, text-like runs and zero runs (so chunks compress)."""
    r = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        kind = r.randrange(3)
        n = r.randrange(1, 33) * SECTOR
        if kind == 0:
            out += r.randbytes(n)
        elif kind == 1:
            out += (b"kestrel %d " % r.randrange(1000)) * (n // 10) + bytes(n % 10)
        else:
            out += bytes(n)
    return bytes(out[:size])
