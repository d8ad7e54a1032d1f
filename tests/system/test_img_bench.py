"""kestrel-img bench through the request stream (block/aio_stream.c, issue #24):
-d requests in flight on workers or io_uring, qcow2 allocations in the order
the requests are sent.  The image a write run leaves must be the image
qemu-img bench leaves with the same options, byte for byte, and clean."""
import filecmp
import json
import subprocess

import pytest

from test_img_helpers import (kimg, needs_build, needs_qemu_img, ok, qemu_check_clean, qimg,
                              read_raw_via_qemu)

pytestmark = [needs_build, needs_qemu_img]

ENGINES = [[], ["-i", "io_uring"]]
CACHES = [[], ["-t", "none"]]


@pytest.mark.parametrize("engine", ENGINES, ids=["threads", "io_uring"])
@pytest.mark.parametrize("cache", CACHES, ids=["writeback", "none"])
@pytest.mark.parametrize("step", ["4k", "64k", "20k"])
def test_bench_writes_lay_out_as_qemu_img(tmp_path, engine, cache, step):
    """Allocating writes at depth 32: 16 per cluster (4k), one each (64k), or
    straddling clusters (20k); then rewrites of the same clusters.  qemu-img
    with io_uring lays clusters out in the order its coroutines happen to
    reach the allocation (it differs run to run): there the guest's view must
    match, and kestrel-img's clusters sit in guest order."""
    out = {}
    for name, tool in (("k", kimg), ("q", qimg)):
        img = tmp_path / f"{name}.qcow2"
        ok(qimg("create", "-q", "-f", "qcow2", img, "32M"))
        for _ in range(2):  # the second pass rewrites allocated clusters
            rc, o, err = tool("bench", "-w", "-f", "qcow2", "-d", "32", "-s", "4k", "-S", step,
                              "-c", "1500", "--pattern=0x5c", *cache, *engine, img)
            assert rc == 0, err
            assert "Sending 1500 write requests, 4096 bytes each, 32 in parallel" in o
        qemu_check_clean(img)
        out[name] = img
    if not engine:
        assert filecmp.cmp(out["k"], out["q"], shallow=False)
        return
    assert read_raw_via_qemu(out["k"], tmp_path) == read_raw_via_qemu(out["q"], tmp_path)
    p = subprocess.run(["qemu-img", "map", "--output=json", out["k"]], capture_output=True,
                       check=True)
    data = [e for e in json.loads(p.stdout) if e["data"]]
    assert all(b["offset"] - a["offset"] == b["start"] - a["start"]
               for a, b in zip(data, data[1:])), data


@pytest.mark.parametrize("engine", ENGINES, ids=["threads", "io_uring"])
@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_bench_reads_with_depth(tmp_path, engine, fmt):
    """Reads at depth 32 through the stream, O_DIRECT, over the whole image and
    round again (the offsets wrap at the end as qemu-img's do)."""
    img = tmp_path / f"r.{fmt}"
    ok(qimg("create", "-q", "-f", fmt, "-o", "preallocation=full", img, "4M"))
    rc, o, err = kimg("bench", "-f", fmt, "-d", "32", "-s", "4k", "-c", "3000", "-t", "none",
                      *engine, img)
    assert rc == 0, err
    assert "Sending 3000 read requests, 4096 bytes each, 32 in parallel" in o


def test_bench_write_error_stops_run(tmp_path):
    """A request past the end fails the run (EIO, as qemu-img's) before any
    request is sent: the image stays untouched."""
    img = tmp_path / "e.qcow2"
    ok(qimg("create", "-q", "-f", "qcow2", img, "1M"))
    rc, o, err = kimg("bench", "-w", "-d", "32", "-s", "4k", "-S", "8k", "-c", "100", "-o",
                      str((1 << 20) - 2048 - 8192 * 50), img)
    assert rc == 1 and "Failed request: Input/output error" in err
    qemu_check_clean(img)
    assert read_raw_via_qemu(img, tmp_path) == bytes(1 << 20)


@pytest.mark.parametrize("native", [["-n"], ["-i", "native"]], ids=["n", "i-native"])
@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_bench_native_writes_land_reads_change_nothing(tmp_path, native, fmt):
    """Linux AIO (-n / -i native, with -t none as it requires): writes at
    depth 32 leave what qemu-img's same run leaves (the guest's view; raw byte
    for byte), the image clean; a read run after it changes no byte."""
    out = {}
    for name, tool in (("k", kimg), ("q", qimg)):
        img = tmp_path / f"{name}.{fmt}"
        ok(qimg("create", "-q", "-f", fmt, img, "8M"))
        for _ in range(2):  # allocating writes, then rewrites
            rc, o, err = tool("bench", "-w", "-f", fmt, "-d", "32", "-s", "4k", "-S", "12k",
                              "-c", "500", "--pattern=0xa7", "-t", "none", *native, img)
            assert rc == 0, err
        if fmt == "qcow2":
            qemu_check_clean(img)
        out[name] = img
    k = read_raw_via_qemu(out["k"], tmp_path)
    assert k == read_raw_via_qemu(out["q"], tmp_path)
    assert k[:4096] == b"\xa7" * 4096 and k[4096:12288] == bytes(8192)
    if fmt == "raw":
        assert filecmp.cmp(out["k"], out["q"], shallow=False)
    before = out["k"].read_bytes()
    rc, o, err = kimg("bench", "-f", fmt, "-d", "32", "-c", "3000", "-t", "none", *native,
                      out["k"])
    assert rc == 0 and "Sending 3000 read requests" in o, err
    assert out["k"].read_bytes() == before
