"""The throttle filter (driver=throttle over a node, limits from -object
throttle-group) in kestrel-img, side by side with qemu-img 7.2: the time a
copy takes is the time the limits say, and the option errors are QEMU's.

Timings are bounded: each throttled run is about two seconds."""
import os
import time

import pytest

from test_img_helpers import KIMG, both_tools, needs_build, needs_qemu_img, run, \
    same_as_qemu_img

pytestmark = [needs_build, needs_qemu_img]

MIB = 1024 * 1024


@pytest.fixture
def data(tmp_path):
    """A 4 MiB raw file of random data (no zero blocks a copy could skip)."""
    p = tmp_path / "src.raw"
    p.write_bytes(os.urandom(4 * MIB))
    return p


def throttled(path, group="g"):
    return ('json:{"driver":"throttle","throttle-group":"%s","file":{"driver":"raw",'
            '"file":{"driver":"file","filename":"%s"}}}' % (group, path))


def timed(tool, *args):
    t0 = time.monotonic()
    rc, out, err = run([tool, *args], timeout=60)
    assert rc == 0, err
    return time.monotonic() - t0


@pytest.mark.parametrize("tool", ["kestrel-img", "qemu-img"])
def test_convert_takes_the_time_the_limit_says(tool, data, tmp_path):
    """4 MiB at 1 MiB/s: qemu-img copies 2 MiB pieces, the first within the
    bucket's slack, so about 2 s; unthrottled well under a second."""
    exe = KIMG if tool == "kestrel-img" else "qemu-img"
    out = tmp_path / "out.raw"
    slow = timed(exe, "convert", "-O", "raw", "--object",
                 f"throttle-group,id=g,x-bps-total={MIB}", throttled(data), out)
    assert out.read_bytes() == data.read_bytes()
    out.unlink()
    fast = timed(exe, "convert", "-O", "raw", "--object", "throttle-group,id=g",
                 throttled(data), out)
    assert out.read_bytes() == data.read_bytes()
    assert 1.7 < slow < 3.5, slow
    assert fast < 1.0, fast
    # limits.* spells the same limit.
    out.unlink()
    again = timed(exe, "convert", "-O", "raw", "--object",
                  f"throttle-group,id=g,limits.bps-read={MIB}", throttled(data), out)
    assert 1.7 < again < 3.5, again


def test_kestrel_and_qemu_take_the_same_time(data, tmp_path):
    """The same json: spec and limit through both tools: times within 20%."""
    obj = f"throttle-group,id=g,x-bps-total={2 * MIB}"
    k = timed(KIMG, "convert", "-O", "raw", "--object", obj, throttled(data), tmp_path / "k")
    q = timed("qemu-img", "convert", "-O", "raw", "--object", obj, throttled(data),
              tmp_path / "q")
    assert abs(k - q) < 0.2 * q + 0.15, (k, q)


def test_bench_iops(data):
    """kestrel-img bench: 200 reads at 100 iops, ten within the slack: ~1.9 s."""
    opts = f"driver=throttle,throttle-group=g,file.driver=file,file.filename={data}"
    t = timed(KIMG, "bench", "-c", "200", "-d", "1", "-s", "4k", "--object",
              "throttle-group,id=g,x-iops-total=100", "--image-opts", opts)
    assert 1.6 < t < 3.0, t
    # iops-size=512 makes each 4 KiB read eight operations: 8x slower, so fewer.
    t = timed(KIMG, "bench", "-c", "25", "-d", "1", "-s", "4k", "--object",
              "throttle-group,id=g,x-iops-total=100,x-iops-size=512", "--image-opts", opts)
    assert 1.5 < t < 3.0, t
    # A write limit does not slow reads.
    t = timed(KIMG, "bench", "-c", "200", "-d", "1", "-s", "4k", "--object",
              "throttle-group,id=g,x-iops-write=10", "--image-opts", opts)
    assert t < 1.0, t


@pytest.mark.parametrize("tool", ["kestrel-img", "qemu-img"])
def test_writes_through_the_filter(tool, data, tmp_path):
    """convert -n onto a throttled target: the data lands, and the write limit holds."""
    exe = KIMG if tool == "kestrel-img" else "qemu-img"
    dst = tmp_path / "dst.raw"
    dst.write_bytes(bytes(4 * MIB))
    t = timed(exe, "convert", "-n", "--target-image-opts", "--object",
              f"throttle-group,id=g,x-bps-write={MIB}", data,
              f"driver=throttle,throttle-group=g,file.driver=raw,file.file.driver=file,"
              f"file.file.filename={dst}")
    assert dst.read_bytes() == data.read_bytes()
    assert 1.7 < t < 3.5, t


def test_info_matches_qemu(data):
    q, k = both_tools("info", "--output=json", "--object", "throttle-group,id=g",
                      throttled(data))
    assert q.returncode == k.returncode == 0, (q.stderr, k.stderr)
    import json
    qj, kj = json.loads(q.stdout), json.loads(k.stdout)
    for key in ("format", "virtual-size", "dirty-flag"):
        assert kj.get(key) == qj.get(key), key


@pytest.mark.parametrize("obj", [
    "throttle-group,id=g,x-iops-total=-1",
    "throttle-group,id=g,limits.iops-total=-1",
    "throttle-group,id=g,x-bps-total=100,x-bps-read=10",
    "throttle-group,id=g,limits.iops-total=5,limits.iops-write=1",
    "throttle-group,id=g,x-iops-size=10",
    "throttle-group,id=g,x-bps-total-max=10",
    "throttle-group,id=g,x-bps-total=100,x-bps-total-max=10",
    "throttle-group,id=g,x-bps-total-max-length=0",
    "throttle-group,id=g,x-bps-total-max-length=5,x-bps-total=10",
    "throttle-group,id=g,x-bps-total=1000000000000001",
    "throttle-group,id=g,x-bps-total-max-length=4294967296",
    "throttle-group,id=g,limits.bps-total-max-length=4294967296",
    "throttle-group,id=g,limits.iops-total-max-length=-1",
    "throttle-group,id=g,x-foo=1",
    "throttle-group,id=g,limits.foo=1",
    "throttle-group,x-bps-total=1",
    "throttle-group,id=1g",
    "throttle-group,id=g,x-bps-total=abc",
    "throttle-group,id=g,limits.bps-total=1k",
])
def test_group_errors_as_qemu(obj, data):
    k = same_as_qemu_img("info", "--object", obj, throttled(data))
    assert k.returncode == 1


@pytest.mark.parametrize("name", [
    # no group option, an unknown group, no file
    'json:{"driver":"throttle","file":{"driver":"file","filename":"%s"}}',
    'json:{"driver":"throttle","throttle-group":"nope","file":{"driver":"file","filename":"%s"}}',
    'json:{"driver":"throttle","throttle-group":"g"}',
    'json:{"driver":"throttle","throttle-group":"g","foo":1,"file":{"driver":"file","filename":"%s"}}',
    'json:{"driver":"raw","throttle-group":"g","file":{"driver":"file","filename":"%s"}}',
])
def test_node_errors_as_qemu(name, data):
    name = name.replace("%s", str(data))
    q, k = both_tools("info", "--object", "throttle-group,id=g", name)
    assert q.returncode == k.returncode == 1
    assert k.stderr.replace("kestrel-img:", "qemu-img:") == q.stderr


def test_duplicate_group_id(data):
    k = same_as_qemu_img("info", "--object", "throttle-group,id=g", "--object",
                         "throttle-group,id=g", throttled(data))
    assert k.returncode == 1
