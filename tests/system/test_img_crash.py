"""Crash safety: a writer on the block library is killed with SIGKILL at
random points.  Afterwards qemu-img check finds at most leaked clusters
(and, with lazy_refcounts, what the dirty bit allows, repaired on the next
open), and every write that completed before an acknowledged flush is there."""
import os
import random
import signal
import subprocess
import time

import pytest

from test_img_helpers import (BLOCK_IO, Writer, kimg, needs_build, needs_qemu_img, ok, qimg,
                              read_raw_via_qemu)

pytestmark = [needs_build, needs_qemu_img]

SIZE = 16 << 20


def script(w, nops, cluster):
    """Requests with a flush every few dozen; returns the list of lines."""
    lines = []
    for i in range(nops):
        w.lines = []
        if i % 40 == 39:
            w.flush()
        else:
            w.random_ops(1, cluster)
        lines += w.lines
    w.lines = []
    return lines


def model_after(lines, data, n):
    """The disk after the first n requests, and what later requests may have touched."""
    model = bytearray(SIZE)
    touched = bytearray(SIZE)
    for i, line in enumerate(lines):
        parts = line.split()
        op = parts[0]
        if op == "f":
            continue
        off, length = int(parts[1]), int(parts[2])
        if i < n:
            if op in ("w", "c"):
                doff = int(parts[3])
                model[off:off + length] = data[doff:doff + length]
            else:
                model[off:off + length] = bytes(length)
        else:
            touched[off:off + length] = b"\x01" * length
    return model, touched


def kill_at_random(img, data_path, lines, rnd, cache):
    p = subprocess.Popen([str(BLOCK_IO), "-t", cache, "-d", str(data_path), str(img)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Feed everything up front; the writer runs at full speed.
    p.stdin.write(("\n".join(lines) + "\n").encode())
    p.stdin.close()
    flushes = sum(1 for l in lines if l == "f")
    target = rnd.randrange(1, max(2, flushes))
    acked = 0
    while True:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith(b"flushed"):
            acked = int(line.split()[1])
            target -= 1
            if target <= 0:
                time.sleep(rnd.random() * 0.004)
                break
    p.send_signal(signal.SIGKILL)
    rest = p.stdout.read()
    p.wait()
    # Anything acknowledged before the kill took effect counts too.
    for line in rest.splitlines():
        if line.startswith(b"flushed"):
            acked = int(line.split()[1])
    return acked


CONFIGS = [
    ("cluster_size=65536", 65536, "writeback"),
    ("cluster_size=4096", 4096, "writeback"),
    ("cluster_size=512,refcount_bits=8", 512, "writeback"),
    ("compat=0.10", 65536, "writeback"),
    ("lazy_refcounts=on", 65536, "writeback"),
    ("cluster_size=65536", 65536, "writethrough"),
    ("cluster_size=16384,refcount_bits=1", 16384, "writeback"),
]


@pytest.mark.parametrize("opts,cluster,cache", CONFIGS, ids=[f"{c[0]}-{c[2]}" for c in CONFIGS])
@pytest.mark.parametrize("seed", range(6))
def test_kill_writer(tmp_path, opts, cluster, cache, seed):
    rnd = random.Random(seed * 7919 + cluster)
    img = tmp_path / "crash.qcow2"
    ok(kimg("create", "-q", "-f", "qcow2", "-o", opts, img, str(SIZE)))
    w = Writer(tmp_path, SIZE, seed=seed)
    lines = script(w, 1200, cluster)
    acked = kill_at_random(img, w.data_path, lines, rnd, cache)

    rc, out, err = qimg("check", img)
    lazy = "lazy_refcounts=on" in opts
    if lazy:
        # The dirty bit says refcounts may be behind; the next writer repairs them.
        assert rc in (0, 2, 3), (rc, out, err)
        ok(kimg("check", "-r", "all", img))
        rc, out, err = qimg("check", img)
    assert rc in (0, 3), f"after kill: exit {rc}\n{out}\n{err}"
    # Leaks, also those past the end of the file qemu-img does not look at, go away.
    ok(kimg("check", "-r", "leaks", img))
    assert qimg("check", img)[0] == 0

    model, touched = model_after(lines, w.data, acked)
    got = read_raw_via_qemu(img, tmp_path)
    assert len(got) == SIZE
    for off in range(0, SIZE, 65536):
        g, m, t = got[off:off + 65536], model[off:off + 65536], touched[off:off + 65536]
        if g == m:
            continue
        for i in range(len(g)):
            assert t[i] or g[i] == m[i], \
                f"byte {off + i} written before flush {acked} is lost"
    # The image keeps working after the crash.
    w2 = Writer(tmp_path, SIZE, seed=seed + 100)
    w2.model = bytearray(got)
    w2.random_ops(50, cluster)
    w2.apply(img)
    assert qimg("check", img)[0] == 0
    assert read_raw_via_qemu(img, tmp_path) == bytes(w2.model)


@pytest.mark.parametrize("args", [[], ["-c"], ["-c", "-o", "compression_type=zstd"],
                                  ["-W", "-m", "4"]], ids=["plain", "zlib", "zstd", "W"])
@pytest.mark.parametrize("seed", range(3))
def test_kill_convert(tmp_path, args, seed):
    """kestrel-img itself killed while convert -n writes into a qcow2 image."""
    from test_img_helpers import KIMG, make_raw
    rnd = random.Random(seed * 31 + len(args))
    raw = tmp_path / "src.raw"
    data = make_raw(raw, 48 << 20, seed=seed, regions=120)
    img = tmp_path / "dst.qcow2"
    opts = [a for a in args if "=" in a]
    ok(kimg("create", "-q", "-f", "qcow2", *(["-o", opts[0]] if opts else []), img, str(48 << 20)))
    argv = [str(KIMG), "convert", "-n", "-t", "writeback", "-O", "qcow2",
            *[a for a in args if a not in ("-o",) and "=" not in a], str(raw), str(img)]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(rnd.uniform(0.0, 0.15))
    p.send_signal(signal.SIGKILL)
    p.wait()
    rc, out, err = qimg("check", img)
    assert rc in (0, 3), f"after kill: exit {rc}\n{out}\n{err}"
    ok(kimg("check", "-r", "leaks", img))
    assert qimg("check", img)[0] == 0
    # What was copied reads back as the source; what was not yet, as zeroes.
    got = read_raw_via_qemu(img, tmp_path)
    for off in range(0, len(data), 65536):
        g = got[off:off + 65536]
        assert g == data[off:off + 65536] or g == bytes(len(g)) or \
            all(x == y or x == 0 for x, y in zip(g, data[off:off + 65536])), \
            f"64 KiB block at {off} is neither the source nor unwritten"
    # Running the conversion again completes the copy.
    ok(kimg("convert", "-n", "-O", "qcow2", raw, img))
    assert read_raw_via_qemu(img, tmp_path) == data
