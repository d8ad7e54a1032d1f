"""A corpus of hostile qcow2 images, for kestrel-img/qemu-img side by side
(tests/system/test_img_hostile.py) and for the VM write pass.

    generate(dirpath) -> [(name, path, description), ...]

writes every image into dirpath (backing files beside them, named
NAME.base*) and returns one entry per hostile image. Nothing here runs a
tool: the images are built byte by byte from the qcow2 spec (QEMU's
docs/interop/qcow2.txt), so each damage lands exactly on the structure it
names. The undamaged bases are in BASES (generate_bases) and must be clean
for qemu-img check.

Damage kinds: header fields and feature bits, L1/L2/refcount table and
block entries (reserved bits, alignment, past the end of the file), every
metadata structure (and data, and compressed data) placed on every other
one, compressed descriptors, snapshot tables, backing chains, header
extensions, and truncation.
"""
import os
import struct
import zlib

QCOW2_MAGIC = 0x514649FB
COPIED = 1 << 63
COMPRESSED = 1 << 62
ZERO = 1
OFFSET_MASK = 0x00FFFFFFFFFFFE00

EXT_BACKING_FMT = 0xE2792ACA
EXT_FEATURES = 0x6803F857
EXT_BITMAPS = 0x23852875
EXT_CRYPTO = 0x0537BE77
EXT_DATA_FILE = 0x44415441


def _pad8(n):
    return (n + 7) & ~7


class Image:
    """A valid qcow2 image built in memory; every structure's offset is kept
    so that a damage function can find and break it."""

    def __init__(self, cluster_bits=12, size=4 << 20, version=3, refcount_order=4,
                 data=(0, 1, 2, 5, 6, 7, 600, 601, 1000), zero=(3,), zero_alloc=(4,),
                 compressed=(10, 11, 12), snapshots=0, bitmap=False, lazy=False,
                 backing=None, backing_fmt=None, feature_table=True, l1_extra=0):
        self.cb = cluster_bits
        self.cs = 1 << cluster_bits
        self.size = size
        self.version = version
        self.order = refcount_order
        self.lazy = lazy
        self.l2_entries = self.cs // 8
        cover = self.cs * self.l2_entries
        self.l1_size = (size + cover - 1) // cover + l1_extra
        self.csize_shift = 62 - (cluster_bits - 8)
        self.csize_mask = (1 << (cluster_bits - 8)) - 1
        self.next = 1                      # next free cluster
        self.blob = {}                     # cluster-aligned offset -> bytes
        self.backing = backing
        self.backing_fmt = backing_fmt
        self.feature_table = feature_table and version >= 3
        self.incompat = 0
        self.compat = 1 if lazy else 0
        self.autoclear = 0
        self.extra_exts = []               # (type, bytes) added before the end marker

        self.reftable = self._alloc(1)
        self.rt_clusters = 1
        self.l1 = self._alloc(self._clusters(self.l1_size * 8))
        self.l1e = [0] * self.l1_size
        self.l2 = {}                       # l1 index -> offset
        self.l2e = {}                      # l1 index -> list of entries
        self.data = {}                     # guest cluster -> host offset
        self.comp = {}                     # guest cluster -> (offset, length)
        self.model = bytearray(size)      # what the guest reads
        for g in data:
            self._map(g, self._alloc(1), self._pattern(g))
        for g in zero_alloc:
            if version >= 3:
                off = self._alloc(1)
                self._entry(g, off | ZERO)
        if version >= 3:
            for g in zero:
                self._entry(g, ZERO)
        self._compress(compressed)
        self.snaps = []                    # (l1 offset, l1 size, id, name)
        for i in range(snapshots):
            self._snapshot(i)
        self.snaptable = 0
        self.snap_size = 0
        if snapshots:
            table = self._snap_table()
            self.snaptable = self._alloc(self._clusters(len(table)))
            self.blob[self.snaptable] = table
            self.snap_size = len(table)
        self.bm = None
        if bitmap:
            self._bitmap()
        self._finish()

    # --- building ---------------------------------------------------------

    def _clusters(self, n):
        return max(1, (n + self.cs - 1) // self.cs)

    def _alloc(self, n):
        off = self.next * self.cs
        self.next += n
        return off

    def _pattern(self, g):
        unit = struct.pack(">QQ", g, 0x6B657374726C0000 | (g & 0xFFFF))
        return (unit * (self.cs // len(unit) + 1))[:self.cs]

    def _entry(self, g, value):
        i, j = divmod(g, self.l2_entries)
        if i not in self.l2:
            self.l2[i] = self._alloc(1)
            self.l2e[i] = [0] * self.l2_entries
        self.l2e[i][j] = value

    def _map(self, g, off, content):
        if g * self.cs >= self.size:
            return
        self._entry(g, off | COPIED)
        self.data[g] = off
        self.blob[off] = content
        self.model[g * self.cs:(g + 1) * self.cs] = content[:self.size - g * self.cs]

    def _compress(self, guest):
        """Compressed clusters packed back to back, as QEMU packs them (raw deflate)."""
        area, start = bytearray(), None
        for g in guest:
            if g * self.cs >= self.size:
                continue
            text = (b"kestrel hostile %d " % g) * (self.cs // 16)
            plain = text[:self.cs]
            c = zlib.compressobj(6, zlib.DEFLATED, -12)
            packed = c.compress(plain) + c.flush()
            if start is None:
                start = self._alloc(self._clusters(len(packed) * len(guest)))
            off = start + len(area)
            sectors = (off + len(packed) - 1) // 512 - off // 512
            self._entry(g, COMPRESSED | (sectors << self.csize_shift) | off)
            self.comp[g] = (off, len(packed))
            area += packed
            self.model[g * self.cs:(g + 1) * self.cs] = plain
        if start is not None:
            self.blob[start] = bytes(area)

    def _snapshot(self, i):
        """An internal snapshot sharing every L2 table with the active L1."""
        off = self._alloc(self._clusters(self.l1_size * 8))
        self.snaps.append([off, self.l1_size, str(i + 1).encode(), b"snap%d" % i])

    def _snap_table(self):
        out = bytearray()
        for off, l1_size, sid, name in self.snaps:
            extra = struct.pack(">QQ", 0, self.size) if self.version >= 3 else b""
            e = struct.pack(">QIHHIIQII", off, l1_size, len(sid), len(name), 1700000000, 0,
                            0, 0, len(extra)) + extra + sid + name
            out += e + bytes(_pad8(len(e)) - len(e))
        return bytes(out)

    def _bitmap(self):
        """One persistent dirty bitmap (qcow2 spec: "Bitmaps extension")."""
        gran = 16
        bits = (self.size + (1 << gran) - 1) >> gran
        entries = (bits + self.cs * 8 - 1) // (self.cs * 8)
        table = self._alloc(self._clusters(entries * 8))
        datac = self._alloc(1)
        self.blob[datac] = bytes([0x5A]) * self.cs
        self.blob[table] = struct.pack(">Q", datac) + bytes(8 * (entries - 1))
        name = b"hostile"
        d = struct.pack(">QIIBBHI", table, entries, 2, 1, gran, len(name), 0) + name
        d += bytes(_pad8(len(d)) - len(d))
        bdir = self._alloc(1)
        self.blob[bdir] = d
        self.bm = {"dir": bdir, "dir_size": len(d), "table": table, "data": datac}
        self.autoclear |= 1

    def _refcounts(self, nclusters):
        rc = [0] * nclusters

        def inc(off, length):
            for c in range(off // self.cs, (off + length - 1) // self.cs + 1):
                rc[c] += 1
        inc(0, self.cs)
        inc(self.reftable, self.rt_clusters * self.cs)
        for l1_off, l1_size in [(self.l1, self.l1_size)] + [(s[0], s[1]) for s in self.snaps]:
            inc(l1_off, l1_size * 8)
            for i, l2 in self.l2.items():
                inc(l2, self.cs)
                for e in self.l2e[i]:
                    if e & COMPRESSED:
                        off = e & ((1 << self.csize_shift) - 1)
                        sectors = ((e >> self.csize_shift) & self.csize_mask) + 1
                        inc(off & ~511, sectors * 512)
                    elif e & OFFSET_MASK:
                        inc(e & OFFSET_MASK, self.cs)
        if self.snaps:
            inc(self.snaptable, self.snap_size)
        if self.bm:
            inc(self.bm["dir"], self.bm["dir_size"])
            inc(self.bm["table"], self.cs)
            inc(self.bm["data"], self.cs)
        return rc

    def _finish(self):
        per_block = (self.cs * 8) >> self.order
        nblocks = 0
        while True:
            total = self.next + nblocks
            need = (total + per_block - 1) // per_block
            if need == nblocks:
                break
            nblocks = need
        assert nblocks <= self.cs // 8, "refcount table of one cluster is too small"
        self.refblocks = [self._alloc(1) for _ in range(nblocks)]
        rc = self._refcounts(self.next)
        for b in self.refblocks:
            rc[b // self.cs] += 1
        # COPIED exactly where the refcount is 1 (active L1 and its tables).
        for i, l2 in self.l2.items():
            self.l1e[i] = l2 | (COPIED if rc[l2 // self.cs] == 1 else 0)
            for j, e in enumerate(self.l2e[i]):
                if e & COMPRESSED or not e & OFFSET_MASK:
                    continue
                e &= ~COPIED
                self.l2e[i][j] = e | (COPIED if rc[(e & OFFSET_MASK) // self.cs] == 1 else 0)
        self.buf = bytearray(self.next * self.cs)
        for off, content in self.blob.items():
            self.buf[off:off + len(content)] = content
        self.buf[0:self.cs] = self._header()
        self.put(self.reftable, b"".join(struct.pack(">Q", b) for b in self.refblocks))
        self.put(self.l1, b"".join(struct.pack(">Q", e) for e in self.l1e))
        for i, l2 in self.l2.items():
            self.put(l2, b"".join(struct.pack(">Q", e) for e in self.l2e[i]))
        for off, l1_size, _, _ in self.snaps:
            self.put(off, b"".join(struct.pack(">Q", e & ~COPIED) for e in self.l1e))
        self.rc = rc
        for c, v in enumerate(rc):
            self.set_refcount(c, v)

    def _header(self):
        hl = 112 if self.version >= 3 else 72
        h = struct.pack(">IIQIIQIIQQIIQ", QCOW2_MAGIC, self.version, 0, 0, self.cb, self.size,
                        0, self.l1_size, self.l1, self.reftable, self.rt_clusters,
                        len(self.snaps), self.snaptable)
        if self.version >= 3:
            h += struct.pack(">QQQII", self.incompat, self.compat, self.autoclear, self.order,
                             hl) + bytes(8)
        exts = []
        if self.backing_fmt is not None:
            exts.append((EXT_BACKING_FMT, self.backing_fmt))
        if self.feature_table:
            names = [(0, 0, b"dirty bit"), (0, 1, b"corrupt bit"), (1, 0, b"lazy refcounts")]
            exts.append((EXT_FEATURES, b"".join(struct.pack(">BB46s", t, b, n)
                                                for t, b, n in names)))
        if self.bm:
            exts.append((EXT_BITMAPS, struct.pack(">IIQQ", 1, 0, self.bm["dir_size"],
                                                  self.bm["dir"])))
        exts += self.extra_exts
        for t, d in exts:
            h += struct.pack(">II", t, len(d)) + d + bytes(_pad8(len(d)) - len(d))
        h += bytes(8)
        if self.backing is not None:
            h = bytearray(h)
            struct.pack_into(">QI", h, 8, len(h), len(self.backing))
            h = bytes(h) + self.backing
        assert len(h) <= self.cs, "header does not fit its cluster"
        return h + bytes(self.cs - len(h))

    # --- access for damage functions ----------------------------------------

    def put(self, off, data):
        end = off + len(data)
        if end > len(self.buf):
            self.buf += bytes(end - len(self.buf))
        self.buf[off:end] = data

    def u64(self, off):
        return struct.unpack_from(">Q", self.buf, off)[0]

    def set_u64(self, off, v):
        self.put(off, struct.pack(">Q", v & (1 << 64) - 1))

    def set_u32(self, off, v):
        self.put(off, struct.pack(">I", v & 0xFFFFFFFF))

    def set_u16(self, off, v):
        self.put(off, struct.pack(">H", v & 0xFFFF))

    def l1_addr(self, i):
        return self.l1 + 8 * i

    def l2_addr(self, g):
        i, j = divmod(g, self.l2_entries)
        return self.l2[i] + 8 * j

    def set_l2(self, g, v):
        self.set_u64(self.l2_addr(g), v)

    def l2_get(self, g):
        return self.u64(self.l2_addr(g))

    def refcount_addr(self, cluster):
        """(byte offset, bit shift, width) of a cluster's refcount entry."""
        per_block = (self.cs * 8) >> self.order
        block = self.refblocks[cluster // per_block]
        bits = 1 << self.order
        bit = (cluster % per_block) * bits
        return block + bit // 8, bit % 8, bits

    def set_refcount(self, cluster, v):
        addr, shift, bits = self.refcount_addr(cluster)
        if bits >= 8:
            self.put(addr, (v & ((1 << bits) - 1)).to_bytes(bits // 8, "big"))
        else:
            mask = ((1 << bits) - 1) << shift
            self.buf[addr] = (self.buf[addr] & ~mask) | ((v << shift) & mask)

    def refcount(self, cluster):
        addr, shift, bits = self.refcount_addr(cluster)
        if bits >= 8:
            return int.from_bytes(self.buf[addr:addr + bits // 8], "big")
        return (self.buf[addr] >> shift) & ((1 << bits) - 1)

    def truncate(self, n):
        del self.buf[n:]

    def ext_offset(self, etype):
        """Offset of a header extension's type field, or None."""
        off = struct.unpack_from(">I", self.buf, 100)[0] if self.version >= 3 else 72
        while off + 8 <= self.cs:
            t, n = struct.unpack_from(">II", self.buf, off)
            if t == etype:
                return off
            if t == 0:
                return None
            off += 8 + _pad8(n)
        return None

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.buf)


# --- header fields (offsets from the qcow2 spec's header table) ----------------

H_VERSION, H_BACKING_OFF, H_BACKING_SIZE, H_CBITS, H_SIZE, H_CRYPT = 4, 8, 16, 20, 24, 32
H_L1_SIZE, H_L1_OFF, H_RT_OFF, H_RT_CLUSTERS, H_NB_SNAP, H_SNAP_OFF = 36, 40, 48, 56, 60, 64
H_INCOMPAT, H_COMPAT, H_AUTOCLEAR, H_ORDER, H_HDRLEN, H_COMPRESSION = 72, 80, 88, 96, 100, 104


def _hdr(off, fmt, v):
    def f(im):
        im.put(off, struct.pack(">" + fmt, v(im) if callable(v) else v))
    return f


def _eof(im):
    return len(im.buf)


def _align_up(im, n):
    return (n + im.cs - 1) // im.cs * im.cs


# Each damage: (name, description, base options, function(image, dirpath, name)).
DAMAGES = []


def damage(name, desc, **base):
    def reg(fn):
        DAMAGES.append((name, desc, base, fn))
        return fn
    return reg


def simple(name, desc, fn, **base):
    DAMAGES.append((name, desc, base, lambda im, d, n: fn(im)))


for _name, _desc, _fn in [
    ("hdr-magic", "wrong magic", _hdr(0, "I", 0x514649FA)),
    ("hdr-version-0", "version 0", _hdr(H_VERSION, "I", 0)),
    ("hdr-version-1", "version 1 (qcow)", _hdr(H_VERSION, "I", 1)),
    ("hdr-version-4", "version 4", _hdr(H_VERSION, "I", 4)),
    ("hdr-cbits-8", "cluster_bits 8 (256-byte clusters)", _hdr(H_CBITS, "I", 8)),
    ("hdr-cbits-22", "cluster_bits 22 (4 MiB clusters)", _hdr(H_CBITS, "I", 22)),
    ("hdr-cbits-255", "cluster_bits 255", _hdr(H_CBITS, "I", 255)),
    ("hdr-size-0", "virtual size 0 with data mapped", _hdr(H_SIZE, "Q", 0)),
    ("hdr-size-2^62", "virtual size 2^62", _hdr(H_SIZE, "Q", 1 << 62)),
    ("hdr-size-2^64-1", "virtual size 2^64-1", _hdr(H_SIZE, "Q", (1 << 64) - 1)),
    ("hdr-size-odd", "virtual size not a multiple of 512", _hdr(H_SIZE, "Q", (4 << 20) + 1)),
    ("hdr-size-beyond-l1", "virtual size larger than the L1 table covers",
     _hdr(H_SIZE, "Q", 64 << 20)),
    ("hdr-crypt-aes", "crypt_method 1 (AES)", _hdr(H_CRYPT, "I", 1)),
    ("hdr-crypt-luks", "crypt_method 2 (LUKS) without its extension", _hdr(H_CRYPT, "I", 2)),
    ("hdr-crypt-7", "crypt_method 7", _hdr(H_CRYPT, "I", 7)),
    ("hdr-l1size-0", "l1_size 0 with a non-zero virtual size", _hdr(H_L1_SIZE, "I", 0)),
    ("hdr-l1size-huge", "l1_size 2^28 (beyond QEMU's limit)", _hdr(H_L1_SIZE, "I", 1 << 28)),
    ("hdr-l1size-2^31", "l1_size 2^31", _hdr(H_L1_SIZE, "I", 1 << 31)),
    ("hdr-l1size-past-eof", "l1_size within limits but the table runs past the end",
     _hdr(H_L1_SIZE, "I", 1 << 20)),
    ("hdr-l1off-unaligned", "L1 table offset not cluster aligned",
     _hdr(H_L1_OFF, "Q", lambda im: im.l1 + 8)),
    ("hdr-l1off-eof", "L1 table just past the end of the file", _hdr(H_L1_OFF, "Q", _eof)),
    ("hdr-l1off-2^62", "L1 table offset 2^62", _hdr(H_L1_OFF, "Q", 1 << 62)),
    ("hdr-rtoff-unaligned", "refcount table offset not cluster aligned",
     _hdr(H_RT_OFF, "Q", lambda im: im.reftable + 512)),
    ("hdr-rtoff-eof", "refcount table past the end of the file", _hdr(H_RT_OFF, "Q", _eof)),
    ("hdr-rtclusters-0", "refcount_table_clusters 0", _hdr(H_RT_CLUSTERS, "I", 0)),
    ("hdr-rtclusters-huge", "refcount_table_clusters 2^24", _hdr(H_RT_CLUSTERS, "I", 1 << 24)),
    ("hdr-rtclusters-past-eof", "refcount table runs past the end of the file",
     _hdr(H_RT_CLUSTERS, "I", 64)),
    ("hdr-nbsnap-huge", "nb_snapshots 2^31", _hdr(H_NB_SNAP, "I", 1 << 31)),
    ("hdr-nbsnap-no-table", "nb_snapshots 1, snapshot table offset 0",
     _hdr(H_NB_SNAP, "I", 1)),
    ("hdr-incompat-dirty", "dirty bit set without lazy_refcounts", _hdr(H_INCOMPAT, "Q", 1)),
    ("hdr-incompat-corrupt", "corrupt bit set", _hdr(H_INCOMPAT, "Q", 2)),
    ("hdr-incompat-datafile", "external data file bit, no data file", _hdr(H_INCOMPAT, "Q", 4)),
    ("hdr-incompat-compression", "compression-type bit with type zlib",
     _hdr(H_INCOMPAT, "Q", 8)),
    ("hdr-incompat-extl2", "extended L2 bit", _hdr(H_INCOMPAT, "Q", 16)),
    ("hdr-incompat-bit5", "unknown incompatible bit 5", _hdr(H_INCOMPAT, "Q", 32)),
    ("hdr-incompat-bit63", "unknown incompatible bit 63", _hdr(H_INCOMPAT, "Q", 1 << 63)),
    ("hdr-compat-unknown", "every compatible bit set (unknown ones are ignored)",
     _hdr(H_COMPAT, "Q", (1 << 64) - 1)),
    ("hdr-autoclear-unknown", "unknown autoclear bits set", _hdr(H_AUTOCLEAR, "Q", 0xFFFC)),
    ("hdr-autoclear-raw", "data-file-raw autoclear bit without a data file",
     _hdr(H_AUTOCLEAR, "Q", 2)),
    ("hdr-order-7", "refcount_order 7 (128-bit)", _hdr(H_ORDER, "I", 7)),
    ("hdr-order-huge", "refcount_order 2^31", _hdr(H_ORDER, "I", 1 << 31)),
    ("hdr-hdrlen-small", "header_length 100 (< 104)", _hdr(H_HDRLEN, "I", 100)),
    ("hdr-hdrlen-cluster", "header_length larger than a cluster",
     _hdr(H_HDRLEN, "I", lambda im: im.cs + 8)),
    ("hdr-hdrlen-odd", "header_length 105", _hdr(H_HDRLEN, "I", 105)),
    ("hdr-compression-zstd-nobit", "compression_type zstd without the incompatible bit",
     _hdr(H_COMPRESSION, "B", 1)),
    ("hdr-backing-off-eoc", "backing name offset past the header cluster",
     lambda im: (_hdr(H_BACKING_OFF, "Q", im.cs * 2)(im), _hdr(H_BACKING_SIZE, "I", 8)(im))),
    ("hdr-backing-size-1024", "backing name 1024 bytes long",
     lambda im: (_hdr(H_BACKING_OFF, "Q", 200)(im), _hdr(H_BACKING_SIZE, "I", 1024)(im))),
    ("hdr-backing-on-header", "backing name overlapping the header fields",
     lambda im: (_hdr(H_BACKING_OFF, "Q", 8)(im), _hdr(H_BACKING_SIZE, "I", 16)(im))),
]:
    simple(_name, _desc, _fn)


def _compression_bogus(im):
    im.put(H_INCOMPAT, struct.pack(">Q", 8))
    im.put(H_COMPRESSION, b"\x07")


simple("hdr-compression-bogus", "compression-type bit with unknown type 7", _compression_bogus)
simple("hdr-v2-incompat", "version 2 header with garbage where v3 fields would be",
       lambda im: im.put(72, b"\xff" * 40), version=2, zero=(), zero_alloc=(),
       feature_table=False)


# --- L1 entries --------------------------------------------------------------

def _l1(i, fn):
    return lambda im: im.set_u64(im.l1_addr(i), fn(im, im.u64(im.l1_addr(i))))


for _name, _desc, _fn, _base in [
    ("l1-reserved-low", "L1 entry with reserved bit 1 set", _l1(0, lambda im, e: e | 2), {}),
    ("l1-reserved-high", "L1 entry with reserved bit 56 set",
     _l1(0, lambda im, e: e | (1 << 56)), {}),
    ("l1-reserved-62", "L1 entry with reserved bit 62 set", _l1(0, lambda im, e: e | (1 << 62)),
     {}),
    ("l1-unaligned", "L2 table offset not cluster aligned", _l1(0, lambda im, e: e + 512), {}),
    ("l1-eof", "L2 table just past the end of the file", _l1(0, lambda im, e: COPIED | _eof(im)),
     {}),
    ("l1-far", "L2 table at 2^48", _l1(0, lambda im, e: COPIED | 1 << 48), {}),
    ("l1-max", "L2 table at the largest offset an entry can hold",
     _l1(0, lambda im, e: COPIED | OFFSET_MASK), {}),
    ("l1-copied-missing", "L1 entry without COPIED for a table used once",
     _l1(0, lambda im, e: e & ~COPIED), {}),
    ("l1-copied-shared", "L1 entry with COPIED for a table a snapshot shares",
     _l1(0, lambda im, e: e | COPIED), {"snapshots": 1}),
    ("l1-beyond-size", "an L1 entry past the virtual size names an L2 table",
     _l1(2, lambda im, e: im.u64(im.l1_addr(0))), {"l1_extra": 1}),
    ("l1-all-ones", "L1 entry all ones", _l1(0, lambda im, e: (1 << 64) - 1), {}),
]:
    simple(_name, _desc, _fn, **_base)


# --- L2 entries --------------------------------------------------------------

def _l2(g, fn):
    return lambda im: im.set_l2(g, fn(im, im.l2_get(g)))


def _coff_mask(im):
    return (1 << im.csize_shift) - 1


for _name, _desc, _fn, _base in [
    ("l2-reserved-low", "L2 entry with reserved bit 3 set", _l2(0, lambda im, e: e | 8), {}),
    ("l2-reserved-high", "L2 entry with reserved bit 56 set",
     _l2(1, lambda im, e: e | (1 << 56)), {}),
    ("l2-reserved-zero", "zero-flagged unallocated entry with reserved bits",
     _l2(3, lambda im, e: e | 0x1F0), {}),
    ("l2-unaligned", "data cluster offset not cluster aligned", _l2(2, lambda im, e: e + 512),
     {}),
    ("l2-zeroalloc-unaligned", "preallocated zero cluster not cluster aligned",
     _l2(4, lambda im, e: e + 512), {}),
    ("l2-eof", "data cluster just past the end of the file",
     _l2(5, lambda im, e: COPIED | _eof(im)), {}),
    ("l2-eof-plus-1", "data cluster one cluster past the end of the file",
     _l2(5, lambda im, e: COPIED | (_eof(im) + im.cs)), {}),
    ("l2-far", "data cluster at 2^40", _l2(5, lambda im, e: COPIED | 1 << 40), {}),
    ("l2-max", "data cluster at the largest offset an entry can hold",
     _l2(5, lambda im, e: COPIED | OFFSET_MASK), {}),
    ("l2-zeroalloc-eof", "preallocated zero cluster past the end of the file",
     _l2(4, lambda im, e: COPIED | ZERO | (_eof(im) + 4 * im.cs)), {}),
    ("l2-dup-copied", "two L2 entries naming the same cluster, both COPIED",
     _l2(6, lambda im, e: im.l2_get(7)), {}),
    ("l2-copied-missing", "data entry without COPIED although used once",
     _l2(1, lambda im, e: e & ~COPIED), {}),
    ("l2-copied-shared", "COPIED on a data cluster a snapshot shares",
     _l2(1, lambda im, e: e | COPIED), {"snapshots": 1}),
    ("l2-all-ones", "L2 entry all ones", _l2(2, lambda im, e: (1 << 64) - 1), {}),
    ("l2-zero-v2", "zero flag in a version 2 image", _l2(2, lambda im, e: e | ZERO),
     {"version": 2, "zero": (), "zero_alloc": (), "feature_table": False}),
    ("comp-copied", "compressed descriptor with COPIED", _l2(10, lambda im, e: e | COPIED), {}),
    ("comp-max-sectors", "compressed descriptor with the largest sector count",
     _l2(10, lambda im, e: e | (im.csize_mask << im.csize_shift)), {}),
    ("comp-eof", "compressed data past the end of the file",
     _l2(11, lambda im, e: (e & ~_coff_mask(im)) | (_eof(im) + 1000)), {}),
    ("comp-far", "compressed data at the largest offset the descriptor holds",
     _l2(11, lambda im, e: e | _coff_mask(im)), {}),
    ("comp-on-header", "compressed data read from the header",
     _l2(12, lambda im, e: (e & ~_coff_mask(im)) | 16), {}),
    ("comp-zero-bit", "compressed descriptor with bit 0 set", _l2(10, lambda im, e: e | 1),
     {}),
    ("comp-512", "compressed descriptor in a 512-byte-cluster image, max sectors",
     _l2(10, lambda im, e: e | (im.csize_mask << im.csize_shift)),
     {"cluster_bits": 9, "size": 1 << 20, "data": (0, 1, 2, 70, 200)}),
    ("comp-2m", "compressed descriptor in a 2 MiB-cluster image, max sectors",
     _l2(1, lambda im, e: e | (im.csize_mask << im.csize_shift)),
     {"cluster_bits": 21, "size": 8 << 20, "data": (0,), "zero": (), "zero_alloc": (),
      "compressed": (1,)}),
]:
    simple(_name, _desc, _fn, **_base)


@damage("comp-garbage", "compressed cluster holding bytes that do not inflate")
def _comp_garbage(im, d, n):
    off, length = im.comp[10]
    im.put(off, bytes((i * 97 + 13) & 0xFF for i in range(length)))


@damage("l2-table-garbage", "an L2 table full of random entries")
def _l2_garbage(im, d, n):
    import random
    rnd = random.Random(5)
    im.put(im.l2[0], rnd.randbytes(im.cs))


# --- refcount table and blocks ---------------------------------------------------

# 1-bit refcounts: compressed clusters packed together would overflow them.
ORDER0 = {"refcount_order": 0, "compressed": ()}


def _rt(i, fn):
    return lambda im: im.set_u64(im.reftable + 8 * i, fn(im, im.u64(im.reftable + 8 * i)))


def _rc(cluster_of, v):
    def f(im):
        c = cluster_of(im)
        im.set_refcount(c, v(im, im.refcount(c)) if callable(v) else v)
    return f


for _name, _desc, _fn, _base in [
    ("rt-reserved", "refcount table entry with reserved bit 1 set",
     _rt(0, lambda im, e: e | 2), {}),
    ("rt-unaligned", "refcount block offset not cluster aligned",
     _rt(0, lambda im, e: e + 512), {}),
    ("rt-eof", "refcount block past the end of the file", _rt(0, lambda im, e: _eof(im)), {}),
    ("rt-far", "refcount block at 2^50", _rt(0, lambda im, e: 1 << 50), {}),
    ("rt-zero", "refcount table entry 0: every refcount reads 0", _rt(0, lambda im, e: 0), {}),
    ("rt-dup", "two refcount table entries naming the same block",
     _rt(1, lambda im, e: im.u64(im.reftable)), {}),
    ("rc-data-0", "a data cluster with refcount 0", _rc(lambda im: im.data[1] // im.cs, 0), {}),
    ("rc-data-2", "a data cluster with refcount 2 (leak)",
     _rc(lambda im: im.data[1] // im.cs, 2), {}),
    ("rc-data-low", "a shared data cluster with refcount 1",
     _rc(lambda im: im.data[1] // im.cs, 1), {"snapshots": 1}),
    ("rc-data-max", "a data cluster with the largest refcount",
     _rc(lambda im: im.data[1] // im.cs, 0xFFFF), {}),
    ("rc-l2-0", "an L2 table with refcount 0", _rc(lambda im: im.l2[0] // im.cs, 0), {}),
    ("rc-l1-0", "the L1 table with refcount 0", _rc(lambda im: im.l1 // im.cs, 0), {}),
    ("rc-header-0", "the header with refcount 0", _rc(lambda im: 0, 0), {}),
    ("rc-reftable-0", "the refcount table with refcount 0",
     _rc(lambda im: im.reftable // im.cs, 0), {}),
    ("rc-refblock-0", "a refcount block counting itself 0",
     _rc(lambda im: im.refblocks[0] // im.cs, 0), {}),
    ("rc-comp-0", "a cluster of compressed data with refcount 0",
     _rc(lambda im: im.comp[10][0] // im.cs, 0), {}),
    ("rc-snaptable-0", "the snapshot table with refcount 0",
     _rc(lambda im: im.snaptable // im.cs, 0), {"snapshots": 1}),
    ("rc-bitmap-0", "a bitmap data cluster with refcount 0",
     _rc(lambda im: im.bm["data"] // im.cs, 0), {"bitmap": True}),
    ("rc-free-1", "an unreferenced cluster inside the file with refcount 1",
     lambda im: (im.put(len(im.buf), bytes(im.cs)), im.set_refcount(len(im.buf) // im.cs - 1, 1)),
     {}),
    ("rc-past-eof", "refcounts set for clusters past the end of the file",
     lambda im: [im.set_refcount(len(im.buf) // im.cs + k, 1) for k in range(1, 4)], {}),
    ("rc-order0-leak", "1-bit refcounts: an unreferenced cluster counted",
     lambda im: (im.put(len(im.buf), bytes(im.cs)), im.set_refcount(len(im.buf) // im.cs - 1, 1)),
     ORDER0),
    ("rc-order0-data-0", "1-bit refcounts: a data cluster counted 0",
     _rc(lambda im: im.data[2] // im.cs, 0), ORDER0),
    ("rc-order6-data-0", "64-bit refcounts: a data cluster counted 0",
     _rc(lambda im: im.data[2] // im.cs, 0), {"refcount_order": 6}),
    ("rc-order6-huge", "64-bit refcounts: a data cluster counted 2^63",
     _rc(lambda im: im.data[2] // im.cs, 1 << 63), {"refcount_order": 6}),
    ("rc-order3-shared-overflow", "8-bit refcounts at 255 on a cluster shared by a snapshot",
     _rc(lambda im: im.data[2] // im.cs, 255), {"refcount_order": 3, "snapshots": 1}),
]:
    simple(_name, _desc, _fn, **_base)


@damage("rb-garbage", "a refcount block full of random counts")
def _rb_garbage(im, d, n):
    import random
    im.put(im.refblocks[0], random.Random(7).randbytes(im.cs))


@damage("rb-zeroed", "a refcount block of zeroes")
def _rb_zeroed(im, d, n):
    im.put(im.refblocks[0], bytes(im.cs))


@damage("rb-many-512", "512-byte clusters, many refcount blocks, the middle one zeroed",
        cluster_bits=9, size=2 << 20, refcount_order=6,
        data=tuple(range(0, 4096, 37)), compressed=(5, 6))
def _rb_many(im, d, n):
    assert len(im.refblocks) > 2
    im.put(im.refblocks[1], bytes(im.cs))


# --- truncation --------------------------------------------------------------

for _name, _desc, _fn, _base in [
    ("trunc-last-cluster", "the file loses its last cluster (a refcount block)",
     lambda im: im.truncate(len(im.buf) - im.cs), {}),
    ("trunc-half-cluster", "the file ends in the middle of its last cluster",
     lambda im: im.truncate(len(im.buf) - im.cs // 2), {}),
    ("trunc-data", "the file ends in the middle of the data clusters",
     lambda im: im.truncate(im.data[601] + 100), {}),
    ("trunc-l2", "the file ends before the second L2 table",
     lambda im: im.truncate(im.l2[max(im.l2)]), {}),
    ("trunc-compressed", "the file ends inside compressed data",
     lambda im: im.truncate(im.comp[11][0] + 10), {}),
    ("trunc-snaptable", "the file ends inside the snapshot table",
     lambda im: im.truncate(im.snaptable + 20), {"snapshots": 1}),
    ("trunc-header-only", "only the header cluster is left",
     lambda im: im.truncate(im.cs), {}),
    ("trunc-60", "only the first 60 bytes are left", lambda im: im.truncate(60), {}),
    ("trunc-l1", "the file ends in the middle of the L1 table",
     lambda im: im.truncate(im.l1 + 8), {"l1_extra": 3}),
    ("trunc-64k", "64 KiB clusters: the file loses its refcount block and last data",
     lambda im: im.truncate(im.data[7] + 4096),
     {"cluster_bits": 16, "size": 4 << 20, "data": (0, 1, 7, 40), "compressed": (50,)}),
    ("grow-garbage", "garbage appended past the last cluster",
     lambda im: im.put(len(im.buf), b"\xa5" * (3 * im.cs + 100)), {}),
]:
    simple(_name, _desc, _fn, **_base)


# --- snapshot tables -----------------------------------------------------------

def _sn(field_off, fmt, v, idx=0):
    def f(im):
        off = im.snaptable
        for _ in range(idx):
            id_len, name_len = struct.unpack_from(">HH", im.buf, off + 12)
            extra = struct.unpack_from(">I", im.buf, off + 36)[0]
            off += _pad8(40 + extra + id_len + name_len)
        val = v(im) if callable(v) else v
        im.put(off + field_off, struct.pack(">" + fmt, val))
    return f


for _name, _desc, _fn, _base in [
    ("snap-l1-unaligned", "snapshot L1 table not cluster aligned",
     _sn(0, "Q", lambda im: im.snaps[0][0] + 8), {}),
    ("snap-l1-eof", "snapshot L1 table past the end of the file", _sn(0, "Q", _eof), {}),
    ("snap-l1size-huge", "snapshot l1_size 2^30", _sn(8, "I", 1 << 30), {}),
    ("snap-l1size-past-eof", "snapshot L1 table runs past the end of the file",
     _sn(8, "I", 1 << 16), {}),
    ("snap-id-huge", "snapshot id length 65535, past the table", _sn(12, "H", 0xFFFF), {}),
    ("snap-name-huge", "snapshot name length 65535, past the table", _sn(14, "H", 0xFFFF), {}),
    ("snap-extra-huge", "snapshot extra data size 2^30", _sn(36, "I", 1 << 30), {}),
    ("snap-extra-0", "version 3 snapshot without its 16 bytes of extra data",
     _sn(36, "I", 0), {}),
    ("snap-nb-more", "nb_snapshots larger than the table", _hdr(H_NB_SNAP, "I", 5), {}),
    ("snap-dup-id", "two snapshots with the same id", _sn(40 + 16, "c", b"1", idx=1),
     {"snapshots": 2}),
    ("snap-table-unaligned", "snapshot table offset not cluster aligned",
     _hdr(H_SNAP_OFF, "Q", lambda im: im.snaptable + 8), {}),
    ("snap-table-eof", "snapshot table past the end of the file",
     _hdr(H_SNAP_OFF, "Q", _eof), {}),
    ("snap-l1e-eof", "a snapshot L1 entry names an L2 table past the end of the file",
     lambda im: im.set_u64(im.snaps[0][0], _eof(im)), {}),
    ("snap-l1e-reserved", "a snapshot L1 entry with reserved bits",
     lambda im: im.set_u64(im.snaps[0][0], im.u64(im.snaps[0][0]) | 0x1fe), {}),
    ("snap-l1e-unaligned", "a snapshot L1 entry not cluster aligned",
     lambda im: im.set_u64(im.snaps[0][0], im.u64(im.snaps[0][0]) + 512), {}),
    ("snap-l1size-0", "snapshot with an empty L1 table", _sn(8, "I", 0), {}),
    ("snap-disk-size-huge", "snapshot disk size 2^63", _sn(48, "Q", 1 << 63), {}),
    ("snap-vmstate-huge", "snapshot vm state size 2^62", _sn(40, "Q", 1 << 62), {}),
]:
    _base = dict({"snapshots": 1}, **_base)
    simple(_name, _desc, _fn, **_base)


# --- header extensions ---------------------------------------------------------

def _ext_field(etype, field_off, fmt, v):
    def f(im):
        off = im.ext_offset(etype)
        assert off is not None
        im.put(off + field_off, struct.pack(">" + fmt, v(im) if callable(v) else v))
    return f


for _name, _desc, _fn, _base in [
    ("ext-len-past-cluster", "feature table extension longer than the header cluster",
     _ext_field(EXT_FEATURES, 4, "I", lambda im: im.cs), {}),
    ("ext-len-huge", "extension length 2^32-1", _ext_field(EXT_FEATURES, 4, "I", 0xFFFFFFFF),
     {}),
    ("ext-features-odd", "feature table of 47 bytes", _ext_field(EXT_FEATURES, 4, "I", 47), {}),
    ("ext-bitmaps-dir-unaligned", "bitmap directory offset not cluster aligned",
     _ext_field(EXT_BITMAPS, 24, "Q", lambda im: im.bm["dir"] + 8), {"bitmap": True}),
    ("ext-bitmaps-dir-eof", "bitmap directory past the end of the file",
     _ext_field(EXT_BITMAPS, 24, "Q", _eof), {"bitmap": True}),
    ("ext-bitmaps-nb-huge", "bitmap count 2^31", _ext_field(EXT_BITMAPS, 8, "I", 1 << 31),
     {"bitmap": True}),
    ("ext-bitmaps-nb-0", "bitmap count 0 with a directory", _ext_field(EXT_BITMAPS, 8, "I", 0),
     {"bitmap": True}),
    ("ext-bitmaps-dirsize-huge", "bitmap directory size 2^40",
     _ext_field(EXT_BITMAPS, 16, "Q", 1 << 40), {"bitmap": True}),
    ("ext-bitmaps-short", "bitmaps extension of 8 bytes", _ext_field(EXT_BITMAPS, 4, "I", 8),
     {"bitmap": True}),
    ("ext-bitmaps-no-autoclear", "bitmaps extension without its autoclear bit",
     _hdr(H_AUTOCLEAR, "Q", 0), {"bitmap": True}),
    ("ext-bitmap-table-eof", "bitmap table past the end of the file",
     lambda im: im.set_u64(im.bm["dir"], _eof(im)), {"bitmap": True}),
    ("ext-bitmap-table-unaligned", "bitmap table not cluster aligned",
     lambda im: im.set_u64(im.bm["dir"], im.bm["table"] + 8), {"bitmap": True}),
    ("ext-bitmap-entry-eof", "bitmap data cluster past the end of the file",
     lambda im: im.set_u64(im.bm["table"], _eof(im) + im.cs), {"bitmap": True}),
    ("ext-bitmap-name-0", "bitmap with an empty name",
     lambda im: im.set_u16(im.bm["dir"] + 18, 0), {"bitmap": True}),
    ("ext-bitmap-gran-63", "bitmap granularity 2^63",
     lambda im: im.put(im.bm["dir"] + 17, b"\x3f"), {"bitmap": True}),
    ("ext-bitmap-inuse", "bitmap marked in use (a VM died with it)",
     lambda im: im.set_u32(im.bm["dir"] + 12, 3), {"bitmap": True}),
]:
    simple(_name, _desc, _fn, **_base)


@damage("ext-unknown", "an unknown extension (harmless)")
def _ext_unknown(im, d, n):
    pass


@damage("ext-many", "200 small unknown extensions")
def _ext_many(im, d, n):
    pass


@damage("ext-no-end", "extensions without the end marker, garbage to the end of the cluster")
def _ext_no_end(im, d, n):
    off = im.ext_offset(EXT_FEATURES)
    blen = struct.unpack_from(">I", im.buf, off + 4)[0]
    end = off + 8 + _pad8(blen)
    im.put(end, bytes((0x11 + i) & 0xFF for i in range(im.cs - end)))


@damage("ext-crypto-plain", "a crypto header extension on an unencrypted image")
def _ext_crypto(im, d, n):
    pass


@damage("ext-datafile-nobit", "a data file extension without the incompatible bit")
def _ext_datafile(im, d, n):
    pass


@damage("ext-backingfmt-empty", "an empty backing format extension with a backing file",
        backing=b"x.base.raw", backing_fmt=b"")
def _ext_bfmt_empty(im, d, n):
    _raw_backing(d, n, "x.base.raw", im.size)


EXTRA_EXTS = {
    "ext-unknown": [(0x12345678, b"hostile unknown extension")],
    "ext-many": [(0x1000 + i, b"") for i in range(200)],
    "ext-crypto-plain": [(EXT_CRYPTO, struct.pack(">QQ", 1 << 16, 4096))],
    "ext-datafile-nobit": [(EXT_DATA_FILE, b"/nonexistent/data-file")],
}


# --- backing chains --------------------------------------------------------------

def _raw_backing(d, n, name, size, content=b"\x42"):
    with open(os.path.join(d, name), "wb") as f:
        f.write(content * size)


def _qcow2_backing(d, name, backing=None, fmt=None, **kw):
    im = Image(backing=backing, backing_fmt=fmt, **kw)
    im.save(os.path.join(d, name))
    return im


@damage("back-missing", "backing file that does not exist", backing=b"nosuch.base.qcow2",
        backing_fmt=b"qcow2")
def _back_missing(im, d, n):
    pass


@damage("back-self", "the image is its own backing file", backing_fmt=b"qcow2")
def _back_self(im, d, n):
    im.backing = n.encode()
    im.buf[0:im.cs] = im._header()


@damage("back-loop", "a -> b -> a backing loop", backing_fmt=b"qcow2")
def _back_loop(im, d, n):
    im.backing = (n + ".base.qcow2").encode()
    im.buf[0:im.cs] = im._header()
    _qcow2_backing(d, n + ".base.qcow2", backing=n.encode(), fmt=b"qcow2")


@damage("back-raw-fmt-on-qcow2", "backing format says raw, the backing file is qcow2",
        backing_fmt=b"raw")
def _back_rawfmt(im, d, n):
    im.backing = (n + ".base.qcow2").encode()
    im.buf[0:im.cs] = im._header()
    _qcow2_backing(d, n + ".base.qcow2")


@damage("back-fmt-unknown", "backing format 'nosuchfmt'", backing_fmt=b"nosuchfmt")
def _back_fmt_unknown(im, d, n):
    im.backing = (n + ".base.raw").encode()
    im.buf[0:im.cs] = im._header()
    _raw_backing(d, n, n + ".base.raw", im.size)


@damage("back-fmt-long", "backing format extension of 200 bytes",
        backing_fmt=b"q" * 200)
def _back_fmt_long(im, d, n):
    im.backing = (n + ".base.raw").encode()
    im.buf[0:im.cs] = im._header()
    _raw_backing(d, n, n + ".base.raw", im.size)


@damage("back-raw-short", "raw backing file shorter than the image", backing_fmt=b"raw",
        data=(0, 1), compressed=())
def _back_raw_short(im, d, n):
    im.backing = (n + ".base.raw").encode()
    im.buf[0:im.cs] = im._header()
    _raw_backing(d, n, n + ".base.raw", 3 * im.cs + 7)


@damage("back-hostile", "backing file is itself truncated qcow2", backing_fmt=b"qcow2",
        data=(0,), compressed=())
def _back_hostile(im, d, n):
    im.backing = (n + ".base.qcow2").encode()
    im.buf[0:im.cs] = im._header()
    b = Image()
    b.truncate(b.data[601] + 10)
    b.save(os.path.join(d, n + ".base.qcow2"))


@damage("back-name-binary", "backing file name with control bytes and no terminator",
        backing=b"\x01\x02\xff\nname\x00tail", backing_fmt=b"raw")
def _back_binary(im, d, n):
    pass


@damage("back-size-0", "backing file offset set with name length 0")
def _back_size0(im, d, n):
    im.set_u64(H_BACKING_OFF, 300)
    im.set_u32(H_BACKING_SIZE, 0)


@damage("back-chain-12", "a chain of 12 qcow2 backing files", backing_fmt=b"qcow2",
        data=(0,), compressed=())
def _back_chain(im, d, n):
    prev = None
    for k in range(12):
        name = "%s.base%d.qcow2" % (n, k)
        _qcow2_backing(d, name, backing=prev, fmt=b"qcow2" if prev else None,
                       data=(k + 1,), compressed=())
        prev = name.encode()
    im.backing = prev
    im.buf[0:im.cs] = im._header()


@damage("back-bigger", "backing file larger than the image", backing_fmt=b"qcow2")
def _back_bigger(im, d, n):
    im.backing = (n + ".base.qcow2").encode()
    im.buf[0:im.cs] = im._header()
    _qcow2_backing(d, n + ".base.qcow2", size=64 << 20, data=(0, 2000), compressed=())


# --- every structure placed on every other one ------------------------------------

def _targets(im):
    """Cluster offsets of each structure a pointer can be bent onto."""
    t = {"header": 0, "reftable": im.reftable, "refblock": im.refblocks[0], "l1": im.l1,
         "l2": im.l2[0], "l2b": im.l2[max(im.l2)], "data": im.data[1],
         "compressed": im.comp[10][0] & ~(im.cs - 1)}
    if im.snaps:
        t.update(snaptable=im.snaptable, snapl1=im.snaps[0][0])
    if im.bm:
        t.update(bmdir=im.bm["dir"], bmtable=im.bm["table"], bmdata=im.bm["data"])
    return t


def _bend(kind, im, target):
    """Points the pointer to one structure (kind) at another's offset."""
    if kind == "reftable":
        im.set_u64(H_RT_OFF, target)
    elif kind == "refblock":
        im.set_u64(im.reftable, target)
    elif kind == "l1":
        im.set_u64(H_L1_OFF, target)
    elif kind == "l2":
        im.set_u64(im.l1_addr(0), COPIED | target)
    elif kind == "snaptable":
        im.set_u64(H_SNAP_OFF, target)
    elif kind == "snapl1":
        im.set_u64(im.snaptable, target)
    elif kind == "data":
        im.set_l2(0, COPIED | target)
    elif kind == "compressed":
        e = im.l2_get(10)
        im.set_l2(10, (e & ~_coff_mask(im)) | target)
    elif kind == "bmdir":
        im.set_u64(im.ext_offset(EXT_BITMAPS) + 8 + 16, target)
    elif kind == "bmtable":
        im.set_u64(im.bm["dir"], target)
    elif kind == "bmdata":
        im.set_u64(im.bm["table"], target)


OVERLAP_BASE = {"snapshots": 1, "bitmap": True}
MOVABLE = ["reftable", "refblock", "l1", "l2", "snaptable", "snapl1", "data", "compressed",
           "bmdir", "bmtable", "bmdata"]
TARGETS = ["header", "reftable", "refblock", "l1", "l2", "l2b", "snaptable", "snapl1", "data",
           "compressed", "bmdir", "bmtable", "bmdata"]


def _overlap_base(*structures):
    """Snapshots and bitmaps only where the pair needs them: qemu-img 7.2's
    check -r all drops the snapshot table of an image that has both."""
    return {"snapshots": int(any(x.startswith("snap") for x in structures)),
            "bitmap": any(x.startswith("bm") for x in structures)}


for _kind in MOVABLE:
    for _target in TARGETS:
        # The same pair as another damage: a block at offset 0 is no block (rt-zero).
        if _kind == _target or (_kind, _target) == ("refblock", "header"):
            continue

        def _ov(im, d, n, kind=_kind, target=_target):
            _bend(kind, im, _targets(im)[target])
        DAMAGES.append(("ov-%s-on-%s" % (_kind, _target),
                        "%s placed on the %s" % (_kind, _target),
                        _overlap_base(_kind, _target), _ov))


# --- whole-image variants --------------------------------------------------------

@damage("lazy-dirty", "lazy_refcounts image left dirty, refcounts right", lazy=True)
def _lazy_dirty(im, d, n):
    im.set_u64(H_INCOMPAT, 1)


@damage("lazy-dirty-stale", "lazy_refcounts image left dirty, a data refcount still 0",
        lazy=True)
def _lazy_dirty_stale(im, d, n):
    im.set_u64(H_INCOMPAT, 1)
    im.set_refcount(im.data[600] // im.cs, 0)


@damage("corrupt-and-damaged", "corrupt bit set on an image with a refcount 0 data cluster")
def _corrupt_damaged(im, d, n):
    im.set_u64(H_INCOMPAT, 2)
    im.set_refcount(im.data[1] // im.cs, 0)


# Bases checked to be clean: options for Image(), one per layout the damages use.
BASES = {
    "std": {},
    "snap": {"snapshots": 1},
    "snap2": {"snapshots": 2},
    "overlap": OVERLAP_BASE,
    "v2": {"version": 2, "zero": (), "zero_alloc": (), "feature_table": False},
    "c512": {"cluster_bits": 9, "size": 1 << 20, "data": (0, 1, 2, 70, 200)},
    "c64k": {"cluster_bits": 16, "size": 4 << 20, "data": (0, 1, 7, 40), "compressed": (50,)},
    "c2m": {"cluster_bits": 21, "size": 8 << 20, "data": (0,), "zero": (), "zero_alloc": (),
            "compressed": (1,)},
    "order0": ORDER0,
    "order3": {"refcount_order": 3, "snapshots": 1},
    "order6": {"refcount_order": 6},
    "many512": {"cluster_bits": 9, "size": 2 << 20, "refcount_order": 6,
                "data": tuple(range(0, 4096, 37)), "compressed": (5, 6)},
    "lazy": {"lazy": True},
}


def _build(base, name):
    kw = {k: v for k, v in base.items() if not k.startswith("_")}
    if name in EXTRA_EXTS:
        im = Image(**kw)
        im.extra_exts = EXTRA_EXTS[name]
        im.buf[0:im.cs] = im._header()
        return im
    return Image(**kw)


def generate_bases(dirpath):
    """The undamaged images: [(name, path, description)]."""
    out = []
    for name, kw in BASES.items():
        path = os.path.join(dirpath, "base-%s.qcow2" % name)
        Image(**kw).save(path)
        out.append((name, path, "clean base %s" % name))
    return out


def generate(dirpath, names=None):
    """Writes every hostile image (or those in names) into dirpath; returns
    [(name, path, description)]."""
    os.makedirs(dirpath, exist_ok=True)
    out, seen = [], set()
    for name, desc, base, fn in DAMAGES:
        assert name not in seen, name
        seen.add(name)
        if names is not None and name not in names:
            continue
        fname = name + ".qcow2"
        im = _build(base, name)
        fn(im, dirpath, fname)
        path = os.path.join(dirpath, fname)
        im.save(path)
        out.append((name, path, desc))
    return out


def model(name):
    """What the guest should read from the undamaged base of a damage (bytes)."""
    for n, desc, base, fn in DAMAGES:
        if n == name:
            return bytes(_build(base, name).model)
    raise KeyError(name)


if __name__ == "__main__":
    import sys
    for n, p, d in generate(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus"):
        print("%-32s %s" % (n, d))
