#!/usr/bin/env python3
"""make_vhdx_seeds.py KESTREL_IMG OUTDIR: VHDX images of several layouts (dynamic, fixed,
block sizes, log sizes, ZERO/NOT_PRESENT blocks, data written, a dirty log left by a crash
point), made by kestrel-img and qemu-img where installed, each encoded as fuzz_vhdx.c reads
its input: the file's non-zero 4 KiB pages as [u32 KiB offset][u16 length][bytes]."""
import os
import shutil
import struct
import subprocess
import sys


def encode(path):
    out = bytearray()
    with open(path, "rb") as f:
        off = 0
        while True:
            page = f.read(4096)
            if not page:
                break
            if page.strip(b"\0"):
                out += struct.pack("<IH", off // 1024, len(page)) + page
            off += len(page)
    return bytes(out)


def main():
    kimg, outdir = sys.argv[1], sys.argv[2]
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    work = os.path.join(outdir, "work")
    os.makedirs(work)
    src = os.path.join(work, "src.raw")
    with open(src, "wb") as f:
        f.truncate(3 << 20)
        f.seek(4096)
        f.write(b"kestrel vhdx seed " * 200)
        f.seek(2 << 20)
        f.write(os.urandom(8192))
    images = {}
    for name, opts in [("dyn", "block_size=1M"), ("fixed", "subformat=fixed,block_size=1M"),
                       ("nozero", "block_state_zero=off,block_size=1M"),
                       ("log2", "log_size=2M,block_size=2M")]:
        img = os.path.join(work, name)
        subprocess.run([kimg, "convert", "-O", "vhdx", "-o", opts, src, img], check=True,
                       capture_output=True)
        images[name] = img
    # A dirty log: kestrel-img stopped between the log entry and the BAT write.
    dirty = os.path.join(work, "dirty")
    subprocess.run([kimg, "create", "-q", "-f", "vhdx", "-o", "block_size=1M", dirty, "4M"],
                   check=True)
    subprocess.run([kimg, "convert", "-n", "-f", "raw", "-O", "vhdx", src, dirty],
                   env=dict(os.environ, KESTREL_CRASH_AFTER_WRITES="8"), capture_output=True)
    images["dirty"] = dirty
    if shutil.which("qemu-img"):
        img = os.path.join(work, "qemu")
        subprocess.run(["qemu-img", "convert", "-O", "vhdx", "-o", "block_size=1M", src, img],
                       check=True, capture_output=True)
        images["qemu"] = img
    for name, img in images.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(encode(img))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
