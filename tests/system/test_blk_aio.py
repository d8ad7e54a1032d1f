"""virtio-blk request engines (aio=threads|io_uring|native) and detect-zeroes=,
driven by the guest probe: what the guest writes lands, reads back, and the
engine asked for is the one running."""
import os
import subprocess

import pytest

from conftest import KESTREL, kestrel, need_qemu, probe_lines, qemu
from test_virtio import SECTOR, drive, pattern, raw_image


def run_probe(probe, disk, fmt, extra, scenario):
    return kestrel("-m", "128m", "-nographic", *drive(disk, fmt, extra), "-kernel", probe,
                   "-append", f"probe={scenario}", timeout=60)


def qcow2_image(tmp_path, size="64M"):
    path = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True)
    return path


def as_raw(path, fmt, tmp_path):
    out = tmp_path / "check.raw"
    subprocess.run(["qemu-img", "convert", "-f", fmt, "-O", "raw", str(path), str(out)],
                   check=True)
    return open(out, "rb").read()


@pytest.mark.guest
@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
@pytest.mark.parametrize("cache,aio", [("none", "threads"), ("writeback", "threads"),
                                       ("none", "io_uring"), ("writeback", "io_uring"),
                                       ("none", "native")])
def test_engine_writes_land_and_read_back(probe, tmp_path, fmt, cache, aio):
    disk = raw_image(tmp_path) if fmt == "raw" else qcow2_image(tmp_path)
    extra = f",cache={cache},aio={aio}"
    # Twice over the same range: the second pass overwrites allocated qcow2
    # clusters, which io_uring serves straight from the file.
    for n in (3, 4):
        status, out, err = run_probe(probe, disk, fmt, extra,
                                     f"blk-write,pattern={n},sectors=1500,offset=77")
        assert status == 0, err
        assert "probe: blk: verified" in probe_lines(out), out
    data = as_raw(disk, fmt, tmp_path)
    assert data[77 * SECTOR:1577 * SECTOR] == pattern(4, 77 * SECTOR, 1500 * SECTOR)
    assert data[:77 * SECTOR] == bytes(77 * SECTOR)
    assert data[1577 * SECTOR:] == bytes(len(data) - 1577 * SECTOR)
    if fmt == "qcow2":
        check = subprocess.run(["qemu-img", "check", str(disk)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
    status, out, err = run_probe(probe, disk, fmt, extra,
                                 "blk-read,pattern=4,sectors=1500,offset=77")
    assert status == 0 and "probe: blk: verified" in out, err


def fd_kinds(pid):
    kinds = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            kinds.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return kinds


@pytest.mark.guest
@pytest.mark.parametrize("aio,uring,laio", [("io_uring", True, False), ("native", False, True),
                                            ("threads", False, False)])
def test_the_engine_asked_for_is_the_one_running(probe, tmp_path, session, aio, uring, laio):
    disk = raw_image(tmp_path)
    vm = session([str(KESTREL), "-nographic", *drive(disk, extra=f",cache=none,aio={aio}"),
                  "-kernel", probe, "-append", "probe=echo"])
    vm.expect(r"probe: echo: ready")
    assert ("anon_inode:[io_uring]" in fd_kinds(vm.proc.pid)) == uring
    # A Linux AIO context is a mapping named /[aio].
    with open(f"/proc/{vm.proc.pid}/maps") as f:
        assert ("/[aio]" in f.read()) == laio


NATIVE_NEEDS_DIRECT = ("aio=native was specified, but it requires cache.direct=on, which was "
                       "not specified.")


def test_aio_native_needs_cache_direct(probe, tmp_path):
    """QEMU's file-posix refusal, word for word, for -drive and -blockdev;
    with O_DIRECT (cache=none, cache.direct=on) the option is taken (the
    run then goes on to the guest, which needs KVM: not checked here)."""
    disk = raw_image(tmp_path)
    for cache in ("", ",cache=writeback", ",cache=unsafe"):
        status, out, err = kestrel("-nographic", *drive(disk, extra=f"{cache},aio=native"),
                                   "-kernel", probe)
        assert status == 1 and err.rstrip().endswith(": " + NATIVE_NEEDS_DIRECT), err
    status, out, err = kestrel("-nographic", "-blockdev",
                               f"driver=file,node-name=f0,filename={disk},aio=native",
                               "-kernel", probe)
    assert status == 1 and err.rstrip().endswith(": " + NATIVE_NEEDS_DIRECT), err
    for extra in (",cache=none,aio=native", ",cache=directsync,aio=native",
                  ",aio=threads", ",aio=io_uring"):
        status, out, err = kestrel("-nographic", *drive(disk, extra=extra), "-kernel", probe,
                                   timeout=20)
        assert "aio=" not in err, (extra, err)
    status, out, err = kestrel("-nographic", *drive(disk, extra=",aio=posix"), "-kernel", probe)
    assert status == 1 and "aio=" in err, err


def allocated(path):
    return os.stat(path).st_blocks * 512


@pytest.mark.guest
@pytest.mark.parametrize("aio", ["threads", "io_uring"])
@pytest.mark.parametrize("detect,hole", [("off", False), ("on", False), ("unmap", True)])
def test_detect_zeroes(probe, tmp_path, aio, detect, hole):
    disk = tmp_path / "full.raw"
    with open(disk, "wb") as f:
        f.write(b"\xa5" * (8 << 20))
    before = allocated(disk)
    status, out, err = run_probe(probe, disk, "raw",
                                 f",discard=unmap,detect-zeroes={detect},aio={aio}",
                                 "blk-write,zero=1,sectors=8192,offset=2048")
    assert status == 0 and "probe: blk: verified" in out, err + out
    data = open(disk, "rb").read()
    assert data[1 << 20:5 << 20] == bytes(4 << 20)
    assert data[:1 << 20] == b"\xa5" * (1 << 20) and data[5 << 20:] == b"\xa5" * (3 << 20)
    # unmap deallocates the zeroed 4 MiB; off and on leave the file allocated.
    if hole:
        assert allocated(disk) <= before - (4 << 20) + (64 << 10), (before, allocated(disk))
    else:
        assert allocated(disk) >= before - (64 << 10), (before, allocated(disk))


def test_detect_zeroes_unmap_needs_discard(probe, tmp_path):
    disk = raw_image(tmp_path)
    status, out, err = kestrel("-nographic", *drive(disk, extra=",detect-zeroes=unmap"),
                               "-kernel", probe)
    assert status == 1 and "discard operation to unmap" in err, err
    status, out, err = kestrel("-nographic", *drive(disk, extra=",detect-zeroes=maybe"),
                               "-kernel", probe)
    assert status == 1 and "detect-zeroes=" in err, err


BLOCKDEV_FORMS = {
    "named-file": lambda img, fmt: [
        "-blockdev", f"driver=file,node-name=f0,filename={img},cache.direct=on,aio=io_uring",
        "-blockdev", f"driver={fmt},node-name=d0,file=f0"],
    "inline-file": lambda img, fmt: [
        "-blockdev", f"driver={fmt},node-name=d0,file.driver=file,file.filename={img}"],
    "json": lambda img, fmt: [
        "-blockdev", '{"driver":"%s","node-name":"d0","file":{"driver":"file",'
                     '"filename":"%s","aio":"threads"}}' % (fmt, img)],
}


@pytest.mark.guest
@pytest.mark.parametrize("vmm", ["kestrel", "qemu"])
@pytest.mark.parametrize("form", sorted(BLOCKDEV_FORMS))
def test_blockdev_forms_on_both_vmms(probe, tmp_path, vmm, form):
    """The same -blockdev command line writes the same bytes through kestrel and QEMU."""
    if vmm == "qemu":
        need_qemu()
    disk = qcow2_image(tmp_path)
    args = ["-m", "128m", "-nographic", *BLOCKDEV_FORMS[form](disk, "qcow2"),
            "-device", "virtio-blk-pci,drive=d0", "-kernel", probe,
            "-append", "probe=blk-write,pattern=9,sectors=200,offset=5"]
    status, out, err = (kestrel if vmm == "kestrel" else qemu)(*args, timeout=60)
    assert status == 0 and "probe: blk: verified" in out, err + out
    data = as_raw(disk, "qcow2", tmp_path)
    assert data[5 * SECTOR:205 * SECTOR] == pattern(9, 5 * SECTOR, 200 * SECTOR)
    check = subprocess.run(["qemu-img", "check", str(disk)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def test_blockdev_errors_name_the_problem(probe, tmp_path):
    img = raw_image(tmp_path)
    cases = [
        (["-blockdev", f"driver=file,filename={img}"], "'node-name' must be specified"),
        (["-blockdev", "driver=qcow2,node-name=d0,file=f0"], "Cannot find device='f0'"),
        (["-blockdev", f"driver=file,node-name=f0,filename={img}", "-blockdev",
          f"driver=file,node-name=f0,filename={img}"], "Duplicate nodes with node-name='f0'"),
        (["-blockdev", "driver=throttle,node-name=d0,file=f0"],
         "Cannot find device='f0' nor node-name='f0'"),
        (["-blockdev", "driver=nosuch,node-name=d0,file=f0"], "Unknown driver 'nosuch'"),
        (["-blockdev", f"driver=file,node-name=f0,filename={img}", "-blockdev",
          "driver=qcow2,node-name=d0,file=f0", "-device", "virtio-blk-pci,drive=d0"],
         "not in qcow2 format"),
    ]
    for args, needle in cases:
        status, out, err = kestrel("-nographic", *args, "-kernel", probe)
        assert status == 1 and needle in err, (args, err)
