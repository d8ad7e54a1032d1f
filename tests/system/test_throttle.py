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


# ---- the VMM: -drive limits, -object throttle-group, -blockdev driver=throttle ----
# Option errors come before /dev/kvm is opened, so they run on any host; the
# guest tests below see the limits act on a virtio-blk disk.

import shutil  # noqa: E402
import subprocess  # noqa: E402

from conftest import QEMU, kestrel, probe_lines  # noqa: E402

needs_qemu_system = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                       reason="qemu-system-x86_64 is not installed")


def qemu_error(*args):
    """QEMU's message for a bad option (it exits before any machine runs)."""
    p = subprocess.run(["qemu-system-x86_64", "-machine", "none", "-accel", "tcg", "-display",
                        "none", "-nodefaults", "-S", "-monitor", "none", *args],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, p.stderr
    return p.stderr.replace("qemu-system-x86_64: ", "", 1)


@needs_qemu_system
@pytest.mark.parametrize("limits", [
    "iops=abc", "iops=-1", "iops=1k", "bps=100,bps_rd=10", "iops_max=10", "iops=20,iops_max=10",
    "throttling.iops-total=20,throttling.iops-total-max=30,throttling.iops-total-max-length=0",
    "throttling.bps-write-max-length=5", "iops=1000000000000001", "throttling.iops-size=512",
    "throttling.bps-total=1,throttling.bps-read-max=5",
])
def test_vmm_drive_limit_errors_as_qemu(limits, data):
    spec = f"file={data},format=raw,if=none,{limits}"
    status, _, err = kestrel("-display", "none", "-drive", spec)
    assert status == 1
    assert err.replace("kestrel: ", "", 1) == qemu_error("-drive", spec)


@pytest.mark.parametrize("spec,needle", [
    # QEMU has no legacy spelling of the burst lengths: unknown there too.
    ("iops=10,iops_max=20,iops_max_length=2", "Invalid parameter 'iops_max_length'"),
    ("throttling.foo=1", "Invalid parameter 'throttling.foo'"),
])
def test_vmm_unknown_limit_names(spec, needle, data):
    status, _, err = kestrel("-display", "none", "-drive",
                             f"file={data},format=raw,if=none,{spec}")
    assert status == 1 and needle in err, err


@pytest.mark.parametrize("args,needle", [
    (["-object", "throttle-group,id=g,x-iops-total=-1"], "Property values cannot be negative"),
    (["-object", "throttle-group,id=g,x-bps-total=1,x-bps-read=1"],
     "bps/iops/max total values and read/write values cannot be used at the same time"),
    (["-object", "throttle-group,id=g,x-nope=1"], "Invalid parameter 'x-nope'"),
    (["-object", "throttle-group,x-iops-total=1"], "Parameter 'id' is missing"),
    (["-object", "throttle-group,id=g", "-object", "throttle-group,id=g"],
     "attempt to add duplicate property 'g' to object (type 'container')"),
    (["-blockdev", "driver=file,node-name=f,filename=DATA", "-blockdev",
      "driver=throttle,node-name=t,file=f,throttle-group=nope"],
     "Throttle group 'nope' does not exist"),
    (["-object", "throttle-group,id=g", "-blockdev", "driver=file,node-name=f,filename=DATA",
      "-blockdev", "driver=throttle,node-name=t,file=f"], "Please specify a throttle group"),
    (["-object", "throttle-group,id=g", "-blockdev",
      "driver=throttle,node-name=t,file=f,throttle-group=g"],
     "Cannot find device='f' nor node-name='f'"),
])
def test_vmm_group_and_node_errors(args, needle, data):
    args = [a.replace("DATA", str(data)) for a in args]
    status, _, err = kestrel("-display", "none", *args)
    assert status == 1 and needle in err, err


def test_vmm_accepts_limits_before_kvm(data, tmp_path):
    """Valid limits of every spelling pass the parser: the run stops at the
    missing kernel, which is read after the options and before any drive."""
    missing = tmp_path / "nope.elf"
    status, _, err = kestrel(
        "-display", "none", "-kernel", str(missing),
        "-object", "throttle-group,id=grp,x-iops-total=100,limits.iops-total-max=200",
        "-drive", f"file={data},format=raw,if=none,id=a,iops=100,iops_max=150,bps_rd=1048576,"
        "bps_wr=2097152,bps_rd_max=4194304,iops_size=4096,group=g2",
        "-drive", f"file={data},format=raw,if=none,id=b,readonly=on,throttling.iops-read=10,"
        "throttling.iops-read-max=20,throttling.iops-read-max-length=3,throttling.group=g2",
        "-blockdev", f"driver=file,node-name=f,filename={data},read-only=on",
        "-blockdev", "driver=throttle,node-name=t,file=f,throttle-group=grp")
    assert status == 1
    assert "nope.elf" in err and "Invalid parameter" not in err, err


# ---- guests: the limits seen from inside, and changed while the VM runs ----

def guest_write_seconds(vmm, probe, disk, limits, sectors=2048):
    """Wall time of the probe writing and verifying sectors on a virtio-blk disk."""
    import time
    argv = [*vmm, "-m", "128m", "-nographic", "-drive",
            f"file={disk},format=raw,if=none,id=d0{limits}", "-device",
            "virtio-blk-pci,drive=d0", "-kernel", probe, "-append",
            f"probe=blk-write,pattern=5,sectors={sectors}"]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert "probe: blk: verified" in p.stdout, p.stdout + p.stderr
    return took


@pytest.mark.guest
@pytest.mark.parametrize("vmm", ["kestrel", "qemu"])
def test_guest_sees_the_write_rate(vmm, probe, tmp_path):
    """1 MiB written at 256 KiB/s (bps_wr) takes about 4 s longer than unthrottled,
    on Kestrel as on QEMU 7.2; reads stay unthrottled."""
    from conftest import KESTREL
    exe = [str(KESTREL)] if vmm == "kestrel" else QEMU
    if vmm == "qemu" and shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    disk = tmp_path / "d.raw"
    disk.write_bytes(bytes(8 * MIB))
    free = guest_write_seconds(exe, probe, disk, "")
    slow = guest_write_seconds(exe, probe, disk, f",bps_wr={256 * 1024}")
    assert 3.0 < slow - free < 6.0, (free, slow)


@pytest.mark.guest
def test_hmp_block_set_io_throttle_changes_a_running_disk(probe, tmp_path):
    """A disk at 2 iops would take minutes; block_set_io_throttle with zeroes
    lifts the limit from the monitor and the guest finishes at once."""
    import socket
    import time
    from conftest import KESTREL
    disk = tmp_path / "d.raw"
    disk.write_bytes(bytes(8 * MIB))
    mon = tmp_path / "mon.sock"
    proc = subprocess.Popen([str(KESTREL), "-m", "128m", "-nographic", "-monitor",
                             f"unix:{mon},server=on,wait=off", "-drive",
                             f"file={disk},format=raw,if=none,id=d0,iops=2", "-device",
                             "virtio-blk-pci,drive=d0", "-kernel", probe, "-append",
                             "probe=blk-write,pattern=6,sectors=4096"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(100):
            if mon.exists():
                break
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(mon))
        s.settimeout(5)

        def hmp(line):
            s.sendall(line.encode() + b"\n")
            time.sleep(0.3)
            return s.recv(65536).decode(errors="replace")

        time.sleep(1.0)
        assert "I/O throttling:   bps=0 bps_rd=0 bps_wr=0" in hmp("info block")
        assert "iops=2 " in hmp("info block")
        hmp("block_set_io_throttle d0 0 0 0 0 0 0")
        assert "I/O throttling" not in hmp("info block")
        out, _ = proc.communicate(timeout=30)
        assert "probe: blk: verified" in out
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("tool", ["kestrel-img", "qemu-img"])
def test_group_shared_by_two_nodes(tool, data, tmp_path):
    """compare reads two throttle nodes: in one group they share 2 MiB/s (8 MiB,
    about 3 s); in two groups each has its own (well under 2 s)."""
    exe = KIMG if tool == "kestrel-img" else "qemu-img"
    other = tmp_path / "b.raw"
    other.write_bytes(data.read_bytes())
    rate = f"x-bps-total={2 * MIB}"
    shared = timed(exe, "compare", "--object", f"throttle-group,id=g,{rate}", throttled(data),
                   throttled(other))
    apart = timed(exe, "compare", "--object", f"throttle-group,id=g,{rate}", "--object",
                  f"throttle-group,id=h,{rate}", throttled(data), throttled(other, "h"))
    assert 2.4 < shared < 3.8, shared
    assert apart < 2.0 and apart < shared - 1.0, (apart, shared)
