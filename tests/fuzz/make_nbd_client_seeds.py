#!/usr/bin/env python3
"""Seeds for fuzz_nbd_client: server answers after fuzz_nbd_client's canned handshake
(mode byte 1/3), i.e. replies to libnbd's requests, which carry cookies 1, 2, 3...
in order (block status, then reads); and a few whole handshakes (mode 0/2).
Usage: make_nbd_client_seeds.py OUTDIR"""
import struct
import sys
from pathlib import Path

SIMPLE, CHUNK = 0x67446698, 0x668e33ef
DONE = 1


def simple(cookie, data=b"", error=0):
    return struct.pack(">IIQ", SIMPLE, error, cookie) + data


def chunk(cookie, typ, payload, flags=DONE):
    return struct.pack(">IHHQI", CHUNK, flags, typ, cookie, len(payload)) + payload


def offset_data(cookie, off, data, flags=DONE):
    return chunk(cookie, 1, struct.pack(">Q", off) + data, flags)


def status(cookie, extents, ctx=1):
    return chunk(cookie, 5, struct.pack(">I", ctx) + b"".join(
        struct.pack(">II", n, f) for n, f in extents))


def error(cookie, err=5, msg=b"boom"):
    return chunk(cookie, 32769, struct.pack(">IH", err, len(msg)) + msg)


MiB = 1 << 20
SEEDS = {
    # status: 64k data then holes; reads of 64k at 0, at 512k, 512 bytes at the end.
    "good": status(1, [(65536, 0), (MiB - 65536, 3)]) + offset_data(2, 0, b"\xaa" * 65536)
    + offset_data(3, MiB // 2, b"\0" * 65536) + offset_data(4, MiB - 512, b"\x55" * 512),
    "hole-reads": status(1, [(MiB, 3)]) + chunk(2, 2, struct.pack(">QI", 0, 65536))
    + chunk(3, 2, struct.pack(">QI", MiB // 2, 65536)) + chunk(4, 2, struct.pack(">QI", MiB - 512, 512)),
    "simple-reads": status(1, [(MiB, 0)]) + simple(2, b"\1" * 65536) + simple(3, b"\2" * 65536)
    + simple(4, b"\3" * 512),
    "errors": error(1) + error(2, 28, b"no space") + error(3, 1) + error(4),
    "short": status(1, [(MiB, 0)]) + offset_data(2, 0, b"\xaa" * 100),
    "oversized": status(1, [(MiB, 0)]) + offset_data(2, 0, b"\xaa" * 70000),
    "split": status(1, [(MiB, 0)]) + offset_data(2, 0, b"\xaa" * 32768, 0)
    + offset_data(2, 32768, b"\xbb" * 32768),
    "wrong-cookie": simple(99, b"\0" * 65536),
    "bad-ctx": status(1, [(MiB, 0)], ctx=7),
}
HANDSHAKES = {
    "oldstyle": b"NBDMAGIC" + struct.pack(">QQI", 0x00420281861253, MiB, 3) + b"\0" * 124,
    "no-export": b"NBDMAGIC" + b"IHAVEOPT" + struct.pack(">H", 3)
    + struct.pack(">QIII", 0x3e889045565a9, 8, 1, 0)
    + struct.pack(">QIII", 0x3e889045565a9, 10, 1, 0)
    + struct.pack(">QIII", 0x3e889045565a9, 7, 0x80000006, 4) + b"nope",
}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, body in SEEDS.items():
        (out / name).write_bytes(b"\x01" + body)
        (out / (name + "-probe")).write_bytes(b"\x03" + body)
    for name, body in HANDSHAKES.items():
        (out / name).write_bytes(b"\x00" + body)


if __name__ == "__main__":
    main()
