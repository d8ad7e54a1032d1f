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
    "fdc": {"read": floppy_read(), "write": floppy_read(write=True)},
    "fw_cfg": {"dma": fw_cfg_dma()},
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
        ("deep", b'{"a":' * 70 + b'1' + b'}' * 70 + b'{"execute":"query-kvm"}'),
        ("unicode", b'{"execute":"human-monitor-command","arguments":{"command-line":'
                    b'"\\u00e9\\ud83d\\ude00 \xc3\xa9 \xff"}}'),
    ]},
    # Terminal bytes for readline, lines ended by CR as a raw terminal sends them.
    "hmp": {n: v for n, v in [
        ("info", b"info status\rinfo name\rinfo uuid\rinfo cpus\rinfo chardev\r"
                 b"info registers -a\rinfo mtree\rinfo qtree\rinfo version\r"),
        ("xp", b"xp /4xb 0x1000\rxp /2xw 0x1ffe\rxp /16i 0x1000\rx 0\r"),
        ("edit", b"inf\x1b[Do\x1b[C status\x01\x05\x7f\x7fus\r\x1b[A\r\x1b[B\x15help\r"),
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
