#!/usr/bin/env python3
"""Writes a small seed corpus for each fuzz target: make_seeds.py OUTDIR [PVH_ELF...].

Seeds are valid inputs of each format, so the fuzzers start past the magic
numbers and header checks instead of having to discover them.  Extra files
named on the command line (the guest probe, a real vmlinux) join the PVH
corpus as they are.
"""
import os
import shutil
import struct
import sys



def crc32c(data):
    """CRC-32C (Castagnoli, reflected 0x82F63B78), as src/util/crc32c.c."""
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xffffffff


def vmstate_stream(sections):
    """A stream as src/core/vmstate.h describes it: (name, instance, version, fields)."""
    import struct
    out = b"KSTRLVM\0" + struct.pack(">I", 1)
    for name, inst, ver, fields in sections:
        payload = b"".join(bytes([len(f)]) + f.encode() + bytes([t]) + struct.pack(">I", len(d)) + d
                           for f, t, d in fields)
        out += (b"\x01" + bytes([len(name)]) + name.encode() + struct.pack(">III", inst, ver,
                len(payload)) + payload + struct.pack(">I", crc32c(payload)))
    return out + b"\x02"

def elf64_pvh(note=True, entry=0x1000C0, code=b"\x90" * 64, bss=0x1000):
    def nt(name, ntype, desc):
        name = name + b"\0"
        pad = lambda b: b + b"\0" * (-len(b) % 4)
        return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)

    notes = nt(b"GNU", 3, b"\1" * 8)
    if note:
        notes += nt(b"Xen", 18, struct.pack("<Q", entry))
    phoff, note_off, code_off = 64, 0x100, 0x200
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,
                       2, 62, 1, 0xFFFFFFFF81000000, phoff, 0, 0, 64, 56, 2, 64, 0, 0)
    ph_note = struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(notes), len(notes), 4)
    ph_load = struct.pack("<IIQQQQQQ", 1, 5, code_off, 0xFFFFFFFF81000000, 0x100000,
                          len(code), len(code) + bss, 16)
    img = bytearray(code_off + len(code))
    img[0:64] = ehdr
    img[phoff:phoff + 112] = ph_note + ph_load
    img[note_off:note_off + len(notes)] = notes
    img[code_off:] = code
    return bytes(img)


def bzimage(version=0x020F, setup_sects=4, init_size=0x200000, cmdline_size=2048, pm_len=0x400):
    setup_len = ((setup_sects or 4) + 1) * 512     # boot.rst: 0 means 4
    img = bytearray(setup_len + pm_len)
    img[0x1F1] = setup_sects
    struct.pack_into("<H", img, 0x1FE, 0xAA55)
    img[0x200:0x202] = b"\xeb\x66"
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, version)
    img[0x211] = 0x01
    struct.pack_into("<I", img, 0x214, 0x100000)
    struct.pack_into("<I", img, 0x22C, 0x37FFFFFF)
    struct.pack_into("<I", img, 0x238, cmdline_size)
    struct.pack_into("<I", img, 0x260, init_size)
    img[setup_len:] = bytes((i * 31 + 7) & 0xFF for i in range(pm_len))
    return bytes(img)


def serial_stream():
    """A Linux 8250 driver's start-up: divisor, 8N1, FIFOs, interrupts, output, loopback test."""
    W = lambda reg, v: bytes([reg, v])        # ops 0x00-0x5f write
    R = lambda reg: bytes([0x60 + reg, 0])    # ops 0x60-0xbf read
    s = W(3, 0x80) + W(0, 0x01) + W(1, 0x00) + W(3, 0x03) + W(2, 0x07) + W(4, 0x0B)
    s += W(1, 0x0F) + R(2) + R(5) + W(0, ord("h")) + W(0, ord("i")) + R(2)
    s += bytes([0xC0, 3]) + R(5) + R(0) + R(0) + R(0) + bytes([0xE0, 0]) + R(2) + R(5)
    s += W(4, 0x1F) + R(6) + W(0, 0x5A) + R(0) + W(4, 0x0B) + W(7, 0xA5) + R(7)
    s += bytes([0xC0, 0xFF]) + W(2, 0x03) + R(5)
    return s


def i8042_stream():
    """Linux's i8042 probe, atkbd and psmouse set-up (IntelliMouse knock), then keys and motion."""
    D = lambda v: bytes([0x00, v])      # data port write
    C = lambda v: bytes([0x40, v])      # command port write
    R = bytes([0x80, 0]) + bytes([0xA0, 0])  # read data, then status
    s = C(0xAA) + R + C(0x20) + R + C(0x60) + D(0x47) + C(0xA8) + C(0xA9) + R
    s += D(0xFF) + R + R + D(0xF2) + R + R + R + D(0xED) + D(0x02) + R + R
    for v in (0xFF, 0xF3, 200, 0xF3, 100, 0xF3, 80, 0xF2, 0xF4):
        s += C(0xD4) + D(v) + R + R
    s += bytes([0xC1, 0x1E, 0xC0, 0x1E, 0xC1, 0x9D, 0xC1, 0xC6, 0xE5, 0x85]) + R * 8
    s += C(0x60) + D(0x03) + D(0xF0) + D(0x01) + bytes([0xC1, 0xB7]) + R * 6 + C(0xD1) + D(0xDF)
    return s


def floppy_read(write=False):
    """SeaBIOS's floppy.c: reset, four sense-interrupt polls, specify, recalibrate,
    DMA channel 2 programmed for 18 sectors at 0x10000, then READ (or WRITE) DATA.
    Records are fuzz_fdc's: op, register, value."""
    def fifo(*b):
        return b"".join(bytes([0, 0, x]) for x in b)

    def dor(v):
        return bytes([2, 2, v])

    def dma(port, v):
        return bytes([4 | 8, port, v])

    def result(n):
        return bytes([1, 5, 0]) * n

    s = dor(0x08) + dor(0x0C) + (fifo(0x08) + result(2)) * 4
    s += fifo(0x03, 0xAF, 0x02) + dor(0x1C) + fifo(0x07, 0x00) + fifo(0x08) + result(2)
    s += dma(0x0A, 0x06) + dma(0x0C, 0) + dma(0x04, 0) + dma(0x04, 0) + dma(0x0C, 0)
    s += dma(0x05, 0xFF) + dma(0x05, 0x23) + dma(0x0B, 0x4A if write else 0x46)
    s += bytes([5 | 8, 0, 0x01]) + dma(0x0A, 0x02)
    s += fifo(0xC5 if write else 0xE6, 0x00, 0, 0, 1, 2, 18, 0x1B, 0xFF)
    s += bytes([1, 4, 0]) + result(7)
    return s


def fw_cfg_dma():
    """SeaBIOS's qemu_cfg_read_entry: select the file directory by port, read its
    count, then a DMA read of etc/table-loader (key 0x22) through a descriptor.
    Records are fuzz_fw_cfg's: op, sub, 32-bit value."""
    s = bytes([0x40, 0]) + struct.pack("<I", 0x19) + bytes([0x81, 1]) + b"\0" * 4
    s += bytes([0x04, 0x10]) + struct.pack(">I", 0x0022000A)
    return s


def virtio_devices():
    """fuzz_virtio_devices: a driver's start-up per device (virtio 1.2 §3.1.1: reset,
    ACKNOWLEDGE, DRIVER, features, FEATURES_OK, each queue's size and rings, DRIVER_OK),
    then kicks of queues holding valid requests and the host's side (record op 7).
    Records are fuzz_virtio.h's: op, size/write/queue, offset, value; the 16-byte
    header is device, options, flags, number of records; guest RAM follows."""
    qsize = 16

    def rec(op, sub, off, val):
        return struct.pack("<BBHI", op, sub, off, val & 0xFFFFFFFF)

    def cw(off, val, size):     # common configuration write
        return rec(0, {1: 0, 2: 1, 4: 2}[size] | 4, off, val)

    def cr(off, size):
        return rec(0, {1: 0, 2: 1, 4: 2}[size], off, 0)

    def kick(q):
        return rec(2, q << 3, 0, 0)

    class Ram:
        """Queue q's rings at 0x400 * q: descriptors, avail +0x100, used +0x200."""
        def __init__(self):
            self.b, self.desc, self.avail = bytearray(0x3000), {}, {}

        def put(self, gpa, data):
            if gpa + len(data) > len(self.b):
                self.b += bytes(gpa + len(data) - len(self.b))
            self.b[gpa:gpa + len(data)] = data

        def chain(self, q, bufs):
            """bufs: (gpa, data or length, writable) in order, made available on q."""
            base, head = 0x400 * q, self.desc.get(q, 0)
            for i, (gpa, data, writable) in enumerate(bufs):
                d = self.desc.get(q, 0)
                self.desc[q] = d + 1
                if not isinstance(data, int):
                    self.put(gpa, data)
                flags = (2 if writable else 0) | (1 if i + 1 < len(bufs) else 0)
                n = data if isinstance(data, int) else len(data)
                self.put(base + 16 * d, struct.pack("<QIHH", gpa, n, flags, d + 1))
            a = self.avail.get(q, 0)
            self.avail[q] = a + 1
            self.put(base + 0x100 + 4 + 2 * a, struct.pack("<H", head))
            self.put(base + 0x100 + 2, struct.pack("<H", a + 1))

    def startup(features, nq):
        s = cw(0x14, 0, 1) + cw(0x14, 1, 1) + cw(0x14, 3, 1)
        s += cw(0x00, 0, 4) + cr(0x04, 4) + cw(0x00, 1, 4) + cr(0x04, 4)
        s += cw(0x08, 0, 4) + cw(0x0C, features, 4) + cw(0x08, 1, 4) + cw(0x0C, features >> 32, 4)
        s += cw(0x14, 11, 1) + cr(0x14, 1)
        for q in range(nq):
            b = 0x400 * q
            s += cw(0x16, q, 2) + cw(0x18, qsize, 2) + cw(0x20, b, 4)
            s += cw(0x28, b + 0x100, 4) + cw(0x30, b + 0x200, 4) + cw(0x1C, 1, 2)
        return s + cw(0x14, 15, 1)

    def seed(dev, opts, records, ram):
        assert len(records) % 8 == 0 and len(records) // 8 < 256
        return bytes([dev, opts, 0, len(records) // 8]) + bytes(12) + records + bytes(ram.b)

    v1 = 1 << 32
    eth = bytes.fromhex("525400123456" "020000000009" "0800") + bytes(range(46))
    out = {}

    # virtio-net, one pair: mergeable receive buffers, a frame out, RX mode and MAC table
    # commands, then frames in (1000 bytes over three buffers, broadcast, a listed multicast).
    ram = Ram()
    for i in range(4):
        ram.chain(0, [(0x2000 + 0x200 * i, 0x200, True)])
    ram.chain(1, [(0x2800, bytes(12), False), (0x2810, eth, False)])
    ram.chain(2, [(0x2900, b"\0\0", False), (0x2902, b"\0", False), (0x2903, b"\xff", True)])
    table = struct.pack("<I", 1) + bytes.fromhex("020000000001")
    table += struct.pack("<I", 1) + bytes.fromhex("01005e000001")
    ram.chain(2, [(0x2910, b"\1\0", False), (0x2920, table, False), (0x2940, b"\xff", True)])
    feats = v1 | 1 << 5 | 1 << 15 | 1 << 16 | 1 << 17 | 1 << 18 | 1 << 23
    r = startup(feats, 3) + kick(1) + kick(2) + kick(0)
    r += rec(7, 0, 1000, 0xAB000000 | 40 << 16) + rec(7, 1, 60, 0) + rec(7, 2, 60, 1 << 16)
    out["net"] = seed(0, 0, r, ram)

    # virtio-net: a frame of 80000 bytes (one buffer twice), dropped, then a plain one;
    # the VLAN and ANNOUNCE classes, which are not offered, get an error.
    ram = Ram()
    ram.chain(1, [(0x2800, bytes(12), False), (0, 40000, False), (0, 40000, False)])
    ram.chain(1, [(0x2800, bytes(12), False), (0x2810, eth, False)])
    ram.chain(2, [(0x2900, b"\2\0", False), (0x2902, b"\1\0", False), (0x2904, b"\0", True)])
    ram.chain(2, [(0x2910, b"\3\0", False), (0x2912, b"\0", True)])
    r = startup(v1 | 1 << 5 | 1 << 17, 3) + kick(1) + kick(2)
    out["net-jumbo"] = seed(0, 0, r, ram)

    # virtio-net, three pairs, a back end with vnet headers: offloads, VQ_PAIRS_SET 2,
    # a frame out on pair 1 and one in on channel 1.
    ram = Ram()
    for q in (0, 2, 4):
        for i in range(2):
            ram.chain(q, [(0x2000 + 0x400 * q + 0x200 * i, 0x200, True)])
    ram.chain(3, [(0x3800, bytes([1, 0]) + bytes(10), False), (0x3810, eth, False)])
    ram.chain(6, [(0x3900, b"\4\0", False), (0x3902, b"\2\0", False), (0x3904, b"\xff", True)])
    feats |= 1 << 0 | 1 << 1 | 1 << 7 | 1 << 22
    r = startup(feats, 7) + kick(6) + kick(3) + rec(7, 1 << 2, 300, 0x01010000)
    out["net-mq-vnet"] = seed(0, 1 | 2 << 1, r, ram)

    # virtio-console: output, host input into the receive buffers, an emergency write.
    ram = Ram()
    ram.chain(0, [(0x2000, 64, True)])
    ram.chain(0, [(0x2040, 64, True)])
    ram.chain(1, [(0x2100, b"hello, world\n", False)])
    r = startup(v1, 2) + kick(1) + rec(7, 0, 100, 0x64636261) + kick(0)
    r += rec(1, 2 | 4, 0x2008, ord("!")) + rec(1, 1, 0x2000, 0)
    out["console"] = seed(1, 0, r, ram)

    # virtio-rng: two writable buffers.
    ram = Ram()
    ram.chain(0, [(0x2000, 64, True)])
    ram.chain(0, [(0x2040, 0x800, True)])
    out["rng"] = seed(2, 0, startup(v1, 1) + kick(0), ram)

    # virtio-balloon with deflate-on-oom and free page reporting: inflate ascending and
    # descending runs, deflate, statistics (twice), a reported range, "actual", a target.
    ram = Ram()
    ram.chain(0, [(0x2000, struct.pack("<4I", 8, 9, 10, 0x20), False)])
    ram.chain(0, [(0x2010, struct.pack("<3I", 0xF, 0xE, 0xD), False)])
    ram.chain(1, [(0x2100, struct.pack("<I", 8), False)])
    ram.chain(2, [(0x2200, struct.pack("<HQHQ", 0, 4096, 4, 1 << 20), False)])
    ram.chain(3, [(0xC000, 0x2000, True)])
    feats = v1 | 1 << 1 | 1 << 2 | 1 << 5
    r = startup(feats, 4) + kick(0) + kick(1) + kick(2) + kick(3)
    r += rec(1, 2 | 4, 0x2004, 4) + rec(1, 2, 0x2000, 0) + rec(7, 1, 0, 8) + rec(7, 2, 0, 0)
    ram.chain(2, [(0x2220, struct.pack("<HQ", 1, 7), False)])
    r += kick(2)
    out["balloon"] = seed(3, 1 | 2, r, ram)

    # virtio-balloon over 2 MiB host pages at 4 MiB: a page given in two halves
    # (freed once whole), then a whole page at once.
    ram = Ram()
    ram.chain(0, [(0x2000, struct.pack("<256I", *range(0x400, 0x500)), False)])
    ram.chain(0, [(0x2400, struct.pack("<256I", *range(0x500, 0x600)), False)])
    ram.chain(0, [(0x2800, struct.pack("<512I", *range(0x600, 0x800)), False)])
    r = startup(v1 | 1 << 1, 3) + kick(0) + rec(1, 2 | 4, 0x2004, 1024)
    out["balloon-huge"] = seed(3, 4, r, ram)
    return out


def vga_programs():
    """fuzz_vga records: op (low nibble: what, bit 4: write, top 2 bits: log2 size),
    a 3-byte address and a 4-byte value.  Mode 3 text, mode 0x12, VBE 1024x768x32."""
    def rec(op, where, val):
        return struct.pack("<B", op) + struct.pack("<I", where)[:3] + struct.pack("<I", val)

    def out(port, val):
        return rec(0x10, port - 0x3b0, val)

    def vbe(index, val):
        return rec(0x53, 0, index) + rec(0x53, 1, val)

    refresh = rec(0x0f, 0, 0)
    text = b"".join(out(0x3c4, i) + out(0x3c5, v) for i, v in enumerate([3, 0, 3, 0, 2]))
    text += b"".join(out(0x3ce, i) + out(0x3cf, v)
                     for i, v in enumerate([0, 0, 0, 0, 0, 0x10, 0x0e, 0x0f, 0xff]))
    text += out(0x3d4, 0x11) + out(0x3d5, 0)
    crtc = [0x5f, 0x4f, 0x50, 0x82, 0x55, 0x81, 0xbf, 0x1f, 0, 0x4f, 0x0d, 0x0e, 0, 0, 0, 0,
            0x9c, 0x8e, 0x8f, 0x28, 0x1f, 0x96, 0xb9, 0xa3, 0xff]
    text += b"".join(out(0x3d4, i) + out(0x3d5, v) for i, v in enumerate(crtc))
    text += out(0x3c0, 0x20) + b"".join(rec(0x14, 0x18000 + i, 0x41 + i) for i in range(64))
    planar = text.replace(out(0x3ce, 6) + out(0x3cf, 0x0e), out(0x3ce, 6) + out(0x3cf, 0x05))
    planar += out(0x3ce, 5) + out(0x3cf, 2) + b"".join(rec(0x14, i * 7, i) for i in range(64))
    lfb = vbe(1, 1024) + vbe(2, 768) + vbe(3, 32) + vbe(4, 0x41)
    lfb += b"".join(rec(0x97, i * 4096, 0xffffff) for i in range(32))
    return {"text": text + refresh + refresh, "planar": planar + refresh,
            "vbe": lfb + refresh + vbe(5, 3) + rec(0x14, 0x100, 0xff) + refresh}
def uhci_schedule(get_desc=True):
    """16 KiB of guest RAM for fuzz_uhci: every frame points at a QH at 0x1000
    holding a control transfer (SETUP GET_DESCRIPTOR, two INs, OUT status) and
    a second QH with an interrupt IN TD to the tablet; then a program that
    moves the pointer, presses a key and runs frames."""
    ram = bytearray(16 << 10)

    def put32(off, v):
        struct.pack_into("<I", ram, off, v)

    def token(pid, addr, ep, n):
        return pid | addr << 8 | ep << 15 | ((n - 1) & 0x7FF) << 21

    for i in range(1024):
        put32(4 * i, 0x1000 | 2)
    put32(0x1000, 0x1010 | 2)           # QH 1 -> QH 2
    put32(0x1004, 0x1100)               # element: the control TDs
    put32(0x1010, 1)
    put32(0x1014, 0x1200)               # element: the interrupt TD
    active = 1 << 23 | 3 << 27
    setup = bytes([0x80, 6, 0, 1, 0, 0, 18, 0]) if get_desc else bytes([0, 5, 3, 0, 0, 0, 0, 0])
    ram[0x2000:0x2008] = setup
    tds = [(0x2D, 8, 0x2000), (0x69, 8, 0x2100), (0x69, 8, 0x2200), (0xE1, 0, 0x2300)]
    for i, (pid, n, buf) in enumerate(tds):
        off = 0x1100 + 16 * i
        last = i == len(tds) - 1
        put32(off, 1 if last else (off + 16) | 4)
        put32(off + 4, active | (1 << 24 if last else 0))
        put32(off + 8, token(pid, 0, 0, n))
        put32(off + 12, buf)
    put32(0x1200, 1)
    put32(0x1204, active | 1 << 29)
    put32(0x1208, token(0x69, 0, 1, 8))
    put32(0x120C, 0x2400)
    prog = struct.pack("<HH", 2 | 7 << 2, 0)            # 8 frames
    prog += struct.pack("<HH", 1 | 100 << 2, 0x1234 | 0x100)  # pointer + key down
    prog += struct.pack("<HH", 2 | 3 << 2, 0)
    prog += struct.pack("<HH", 0 | 2 << 2 | 1 << 7, 0x0004)  # USBSTS: clear USBINT
    return bytes(ram) + prog


SEEDS = {
    "pvh": {"elf64": elf64_pvh(), "no-note": elf64_pvh(note=False),
            "empty-load": elf64_pvh(code=b"")},
    "bzimage": {"v2.15": bzimage(), "v2.06": bzimage(version=0x0206),
                "sects0": bzimage(setup_sects=0), "tiny-cmdline": bzimage(cmdline_size=8)},
    "opts": {n: v for n, v in [
        ("mem", b"\x01128M"), ("mem-key", b"\x01size=1.5G,slots=2"),
        ("smp", b"\x024,sockets=2,cores=2,threads=1,maxcpus=8"),
        ("unix", b"\x00unix:/tmp/s,,x,server,nowait"), ("unix2", b"\x03/tmp/a,server=on,wait=off"),
        ("mon", b"\x00mon:stdio"), ("file", b"\x00file:/tmp/com1.log"),
        ("name", b"\x04vm1,debug-threads=on"),
        ("device", b"\x05isa-debug-exit,iobase=0xf4,iosize=0x04"),
    ]},
    "size": {n: v for n, v in [
        ("mib", b"128"), ("g", b"1G"), ("frac", b"1.5G"), ("k", b"512k"), ("b", b"4096B"),
        ("t", b"16777215T"), ("big", b"18446744073709551615"), ("hex", b"0x501"),
    ]},
    "serial": {"linux-8250": serial_stream()},
    "i8042": {"linux-probe": i8042_stream()},
    "fdc": {"read": floppy_read(), "write": floppy_read(write=True)},
    "fw_cfg": {"dma": fw_cfg_dma()},
    "virtio_devices": virtio_devices(),
    "vga": vga_programs(),
    # Client bytes; a 00 00 pair splits the input into separate reads.
    "qmp": {n: v for n, v in [
        ("negotiate", b'{"execute": "qmp_capabilities"}\r\n{"execute": "query-status", "id": 1}'),
        ("split", b'{"execute": "qmp_capa\0\0bilities", "arguments": {"enable": ["oob"]}}'
                  b'{"exec-oob": "query-version"}'),
        ("commands", b'{"execute":"qmp_capabilities"}{"execute":"query-commands"}'
                     b'{"execute":"query-chardev"}{"execute":"query-cpus-fast"}'
                     b'{"execute":"stop"}{"execute":"cont","id":null}'
                     b'{"execute":"system_powerdown"}{"execute":"cont","id":[1,{"a":2.5}]}'
                     b'{"execute":"query-name"}{"execute":"query-uuid"}'),
        ("hmp", b'{"execute":"qmp_capabilities"}{"execute":"human-monitor-command",'
                b'"arguments":{"command-line":"xp /8xb 0x1000"}}'),
        ("errors", b'{"execute": 1}{"execute":"nope"}{"execute":"stop","arguments":{"x":1}}'
                   b'[1,2]{"execute":"balloon","arguments":{"value":"x"}}{\x01{"execute":"quit"}'),
        # Every callback of fuzz_control.h's populated machine (issue #26).
        ("devices", b'{"execute":"qmp_capabilities"}{"execute":"query-block"}'
                    b'{"execute":"query-blockstats"}{"execute":"query-pci"}'
                    b'{"execute":"query-rx-filter"}{"execute":"query-rx-filter",'
                    b'"arguments":{"name":"net0"}}{"execute":"query-balloon"}'
                    b'{"execute":"balloon","arguments":{"value":67108864}}'
                    b'{"execute":"balloon","arguments":{"value":999999999999}}'
                    b'{"execute":"qom-set","arguments":{"path":"/machine/peripheral/balloon0",'
                    b'"property":"guest-stats-polling-interval","value":2}}'
                    b'{"execute":"qom-get","arguments":{"path":"/machine/peripheral/balloon0",'
                    b'"property":"guest-stats"}}'
                    b'{"execute":"set_link","arguments":{"name":"net0","up":false}}'
                    b'{"execute":"device_del","arguments":{"id":"net0"}}'),
        ("deep", b'{"a":' * 70 + b'1' + b'}' * 70 + b'{"execute":"query-kvm"}'),
        ("unicode", b'{"execute":"human-monitor-command","arguments":{"command-line":'
                    b'"\\u00e9\\ud83d\\ude00 \xc3\xa9 \xff"}}'),
    ]},
    # gluster URLs (fuzz_gluster): every transport, IPv6, escapes and refusals.
    "gluster": {n: v for n, v in [
        ("tcp", b"gluster://127.0.0.1:24007/vol/dir/disk.qcow2"),
        ("default", b"gluster:///vol/disk.raw"),
        ("ipv6", b"gluster+tcp://[::1]/vol/a%20b#frag"),
        ("unix", b"gluster+unix:///vol/disk?socket=/run/glusterd.socket"),
        ("rdma", b"gluster+rdma://user@host:1/v//p"),
        ("bad", b"gluster+unix://h/v/p?socket=/s&x=1"),
    ]},
    # nfs:// URLs (first byte even) and driver=nfs option text (odd; 3: under "file.").
    "nfs_uri": {n: v for n, v in [
        ("url", b"\x00nfs://127.0.0.1/srv/export/disk.qcow2"),
        ("query", b"\x00nfs://host:2049/e/d.raw?uid=1000&gid=0x10;tcp-syncnt=3&readahead=65536"
                  b"&pagecache=010&debug=2#frag"),
        ("escapes", b"\x00user@[::1]:1/a%20b/c%2Fd?debug=1"),
        ("errors", b"\x00nfs://h/p?uid&gid=-1&foo=1"),
        ("opts", b"\x01server.type=inet,server.host=h,path=/e/d,user=1,group=2,"
                 b"tcp-syn-count=3,readahead-size=4096,page-cache-size=8,debug=0"),
        ("file-opts", b"\x03file.server.type=inet,file.server.host=h,file.path=/e/d"),
        ("filename", b"\x01filename=nfs://h/e/d?uid=1,path=/x"),
    ]},
    # json: pseudo-filenames (the text after "json:"), valid and QEMU's error cases.
    "json": {n: v for n, v in [
        ("qcow2", b'{"driver":"qcow2","file":{"driver":"file","filename":"x.qcow2","locking":false}}'),
        ("single", b"{'driver':'raw','file.filename':'r.raw','backing':null}"),
        ("null-co", b'{"driver":"null-co","size":1048576,"read-zeroes":true}'),
        ("numbers", b'[0,-0,1.5e3,-2E-2,9223372036854775808,-9223372036854775809,1e999]'),
        ("escapes", b'{"a":"\\\\\\"\\/\\b\\f\\n\\r\\t\\u0000\\ud83d\\ude00\\u00e9","b":"\xc3\xa9"}'),
        ("errors", b'{"a":01} {"b":1.}@ [1,,] {"c" 1} "\\q" \\ud800 tru %d'),
        ("deep", b'[' * 70 + b'{"a":1}' + b']' * 70),
    ]},
    # blkdebug config files; after a 0xff byte, (event, sector, length/iotype) triples.
    "blkdebug": {n: v for n, v in [
        ("inject", b'[inject-error]\nevent = "read_aio"\nerrno = "28"\nonce = "on"\n'
                   b'\xff\x09\x00\x08\x09\x00\x08'),
        ("states", b'# c\n[set-state]\nevent = "l2_load"\nstate = "1"\nnew_state = "2"\n'
                   b'[inject-error "x"]\n  event = "l2_load"\n  state = "2"\nsector = "3"\n'
                   b'iotype = "write"\n\xff\x04\x00\x00\x04\x03\x09'),
        ("errors", b'[inject-error]\nevent = read_aio\nfoo = "1"\n[bogus]\n'),
    ]},
    # iSCSI (fuzz_iscsi.c): byte 0 picks a URL (0), an option list (1, 5: under "file."),
    # or a geometry (2): block size, last LBA, transfer limit, then reads and writes.
    "iscsi": {n: v for n, v in [
        ("url", b"\0iscsi://127.0.0.1:3260/iqn.2026-12.org.kestrel:t1/1"),
        ("chap", b"\0iscsi://alice%secret@[::1]:3261/iqn.2026-12.org.x:y/16383"),
        ("bad", b"\0iscsi://u%p@h/iqn/99999"),
        ("opts", b"\1driver=iscsi,transport=tcp,portal=h:3260,target=iqn.x:y,lun=3,"
                 b"user=a,password-secret=s0,header-digest=crc32c,timeout=5,"
                 b"initiator-name=iqn.2000-01.org.x:i"),
        ("file", b"\5file.driver=iscsi,file.transport=tcp,file.portal=h,file.target=t\"q"),
        ("geom512", b"\2" + struct.pack(">IQI", 512, 2047, 8) +
                    b"\1\0\0\1\xf4\x10\0" b"\0\0\0\1\xf4\x10\0" b"\1\0\0\0\x01\0\x07"),
        ("geom4k", b"\2" + struct.pack(">IQI", 4096, 255, 0) +
                   b"\1\0\0\x0f\xff\x00\x02" b"\0\0\0\x0f\xfe\x00\x05"),
        ("hostile", b"\2" + struct.pack(">IQI", 0x10000, (1 << 64) - 1, 0xffffffff)),
    ]},
    # rbd: names (the first byte's bit 0 set: "rbd:" is put in front; bit 1: a format).
    "rbd_name": {n: v for n, v in [
        ("plain", b"\x01pool/image"),
        ("all", b"\x03pool/ns/img@snap:conf=/etc/ceph/ceph.conf:id=admin:rbd_cache=false"),
        ("escapes", b"\x01p\\/q/i\\:m\\@g:conf=/a\\:b:mon_host=[::1]\\:6789\\"),
        ("errors", b"\x01pool:conf"),
        ("noprefix", b"\x00rbd:p/i:a=b:c"),
        ("odd", b"\x03p/i@:=:\xff\x00\x7f\"\\"),
    ]},
    # Terminal bytes for readline, lines ended by CR as a raw terminal sends them.
    # A gdb 13 session as it starts (qSupported, no-ack, target XML, registers,
    # memory, breakpoints, steps) and the escapes, RLE and interrupts it may send.
    "vmstate": {n: v for n, v in [
        ("two-sections", vmstate_stream([
            ("serial", 0, 2, [("regs", 1, bytes(range(1, 9))), ("divisor", 2, b"\x00\x0c"),
                              ("count", 3, b"\x00\x00\x00\x03"), ("ticks", 4, b"\x00" * 7 + b"\x09"),
                              ("irq", 5, b"\x01"), ("buf", 6, b"abc" + b"\x00" * 13),
                              ("v2", 3, b"\x00\x00\x00\x07")]),
            ("rtc", 1, 1, [("regs", 1, bytes(8)), ("divisor", 2, b"\x00\x01"),
                           ("count", 3, bytes(4)), ("ticks", 4, bytes(8)), ("irq", 5, b"\x00"),
                           ("buf", 6, bytes(16))])])),
        ("empty", vmstate_stream([])),
    ]},
    "gdb_packet": {n: v for n, v in [
        ("session", b"+$qSupported:multiprocess+;swbreak+;xmlRegisters=i386#00+"
                    b"$QStartNoAckMode#b0$qXfer:features:read:target.xml:0,ffb#00"
                    b"$Hg0#df$qfThreadInfo#bb$qsThreadInfo#c8$?#3f$g#67$p10#00"
                    b"$m8000,40#00$m200000,8#00$Hg2#00$m8000,8#00$Z0,8010,1#00"
                    b"$Z1,8020,1#00$Z2,9000,4#00$Z4,9008,8#00$vCont;s:1#00$vCont;c#00"
                    b"$z0,8010,1#00$z2,9000,4#00$qRcmd,696e666f#00$D#44"),
        ("write", b"$X8000,4:}\x03}]*\x21#00$M8004,4:0*\x220#00$P10=0010000000000000#00"
                  b"$G" + b"0" * 1216 + b"#00$c8000#00$s#00\x03$k#6b"),
    ]},
    # Guest RAM holding a UHCI schedule, then register writes, input and frames.
    "uhci": {"get_descriptor": uhci_schedule(), "set_address": uhci_schedule(False)},
    # RFB 3.8 after the version: security None, shared, then SetPixelFormat,
    # SetEncodings (raw, tight, zrle, hextile, DesktopSize, QEMU ext key),
    # update requests, keys, pointer, cut text, QEMU extended key events.
    "vnc": {n: v for n, v in [
        ("session", b"\x01\x01"
                    b"\x00\x00\x00\x00\x20\x18\x00\x01\x00\xff\x00\xff\x00\xff\x10\x08\x00\x00\x00\x00"
                    b"\x02\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x10"
                    b"\x00\x00\x00\x05\xff\xff\xff\x21\xff\xff\xfe\xfe"
                    b"\x03\x00\x00\x00\x00\x00\x00\x40\x00\x30"
                    b"\x04\x01\x00\x00\x00\x00\x00\x61\x05\x01\x00\x10\x00\x10"
                    b"\x06\x00\x00\x00\x00\x00\x00\x03abc"
                    b"\xff\x00\x00\x01\x00\x00\x00\x61\x00\x00\x00\x1e"
                    b"\x03\x01\x00\x00\x00\x00\x00\x40\x00\x30"),
        ("hostile", b"\x01\x00\x06\x00\x00\x00\xff\xff\xff\xff" + b"x" * 64),
        ("bigenc", b"\x01\x01\x02\x00\xff\xff" + b"\x00\x00\x00\x07" * 300),
        ("badfmt", b"\x01\x01\x00\x00\x00\x00\x07\xc8\x00\x01\xff\xff\x00\x00\xff\xff\xc8\xc9\xff\x00\x00\x00"
                   b"\x03\x00\x00\x00\x00\x00\x00\x40\x00\x30"),
    ]},
    "hmp": {n: v for n, v in [
        ("info", b"info status\rinfo name\rinfo uuid\rinfo cpus\rinfo chardev\r"
                 b"info registers -a\rinfo mtree\rinfo qtree\rinfo version\r"),
        ("xp", b"xp /4xb 0x1000\rxp /2xw 0x1ffe\rxp /16i 0x1000\rx 0\r"),
        ("edit", b"inf\x1b[Do\x1b[C status\x01\x05\x7f\x7fus\r\x1b[A\r\x1b[B\x15help\r"),
        ("devices", b"info block\rinfo block -v\rinfo blockstats\rinfo pci\rinfo network\r"
                    b"info usernet\rinfo balloon\rballoon 64\rinfo balloon\rballoon 0\r"
                    b"set_link net0 off\rinfo network\rdevice_del net0\rcommit all\r"
                    b"commit virtio0\rinfo snapshots\r"),
        ("actions", b"stop\rinfo status\rc\rsystem_powerdown\rcont\rsystem_reset\r"
                    b"help info\rbogus\rquit\r"),
    ]},
}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    for target, seeds in SEEDS.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    for extra in sys.argv[2:]:
        shutil.copy(extra, os.path.join(out, "pvh", os.path.basename(extra)))


if __name__ == "__main__":
    main()
