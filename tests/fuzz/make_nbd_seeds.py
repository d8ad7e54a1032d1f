#!/usr/bin/env python3
"""Seeds for fuzz_nbd_server: whole client sessions (one settings byte, then what a
client sends): the handshakes of libnbd and qemu's client, every option, every
command, and a few broken ones.  Usage: make_nbd_seeds.py OUTDIR"""
import struct
import sys
from pathlib import Path

OPT = b"IHAVEOPT"


def opt(o, data=b""):
    return OPT + struct.pack(">II", o, len(data)) + data


def name(n=b""):
    return struct.pack(">I", len(n)) + n


def go(n=b"", infos=(1, 2, 3)):
    return opt(7, name(n) + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos))


def cmd(t, off, length, flags=0, data=b""):
    return struct.pack(">IHHQQI", 0x25609513, flags, t, 7, off, length) + data


def meta(o, queries):
    return opt(o, name() + struct.pack(">I", len(queries)) + b"".join(
        name(q) for q in queries))


HELLO = struct.pack(">I", 3)
START = HELLO + opt(8) + meta(10, [b"base:allocation"]) + go()
SEEDS = {
    "list": HELLO + opt(3) + opt(6, name() + struct.pack(">H", 0)) + opt(2),
    "meta_list": HELLO + opt(8) + meta(9, []) + meta(9, [b"base:"]) + opt(2),
    "export_name": HELLO + opt(1) + cmd(0, 0, 4096) + cmd(2, 0, 0),
    "rw": START + cmd(1, 4096, 8, 1, b"ABCDEFGH") + cmd(0, 0, 8192) + cmd(3, 0, 0) +
    cmd(2, 0, 0),
    "zero_trim": START + cmd(6, 0, 65536, 2) + cmd(4, 65536, 65536, 1) + cmd(5, 0, 4096) +
    cmd(7, 0, 1 << 20) + cmd(7, 0, 1 << 20, 8) + cmd(2, 0, 0),
    "df_read": START + cmd(0, 0, 65536, 4) + cmd(0, (1 << 20) - 1, 2),
    "simple": HELLO + go() + cmd(0, 0, 512) + cmd(1, 0, 512, 0, bytes(512)) + cmd(99, 0, 0),
    "bad": HELLO + opt(0x77, b"x" * 5) + go(b"nope") + opt(7, b"\xff\xff\xff\xff") +
    opt(10, b""),
    "big_write": START + cmd(1, 0, 0xffffffff),
}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for n, body in SEEDS.items():
        for setting in (0, 1, 2 | 8):
            (out / f"{n}-{setting}").write_bytes(bytes([setting]) + body)


if __name__ == "__main__":
    main()
