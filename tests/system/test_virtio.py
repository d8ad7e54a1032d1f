"""PCI, the virtio 1.x PCI transport and virtio-blk/rng/console, driven by the
guest probe's drivers under kestrel and, for the same scenarios, QEMU 7.2."""
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import KESTREL, QEMU, kestrel, need_qemu, probe_lines, qemu

SECTOR = 512
MASK = (1 << 64) - 1


def pattern(n, offset, length):
    """The probe's blk pattern (tests/guest/probe/README.md): the 64-bit LE word at disk
    byte X is ((X/8 + 1) * 0x9E3779B97F4A7C15 ^ n * 0xD1B54A32D192ED03) mod 2^64."""
    words = [(((w + 1) * 0x9E3779B97F4A7C15) ^ (n * 0xD1B54A32D192ED03)) & MASK
             for w in range(offset // 8, (offset + length) // 8)]
    return struct.pack(f"<{len(words)}Q", *words)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def raw_image(tmp_path, name="disk.raw", size=64 << 20):
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def drive(path, fmt="raw", extra=""):
    return ["-drive", f"file={path},format={fmt},if=none,id=d0{extra}",
            "-device", "virtio-blk-pci,drive=d0,serial=disk42"]


def run_probe(*args, scenario, timeout=60):
    return kestrel("-m", "128m", "-nographic", *args, "-append", f"probe={scenario}",
                   timeout=timeout)


@pytest.mark.guest
def test_probe_enumerates_the_virtio_devices(probe, tmp_path):
    disk = raw_image(tmp_path)
    status, out, err = kestrel("-nographic", *drive(disk), "-device", "virtio-rng-pci",
                               "-device", "virtio-serial-pci", "-kernel", probe, "-append",
                               "probe=virtio")
    lines = probe_lines(out)
    assert status == 0, err
    kinds = sorted(l.split()[3] for l in lines if l.startswith("probe: virtio: 00:"))
    assert kinds == ["blk", "console", "rng"]
    assert "probe: pci: 00:00.0 8086:1237 class 060000" in lines
    assert "probe: PASS" in lines


@pytest.mark.guest
def test_blk_write_reaches_a_raw_image(probe, tmp_path):
    disk = raw_image(tmp_path)
    status, out, err = run_probe(*drive(disk), "-kernel", probe,
                                 scenario="blk-write,pattern=7,sectors=300,offset=100")
    lines = probe_lines(out)
    assert status == 0, err
    assert "probe: blk: capacity 131072 sectors, serial disk42" in lines
    assert "probe: blk: flushed" in lines and "probe: blk: verified" in lines
    data = open(disk, "rb").read()
    assert data[100 * SECTOR:400 * SECTOR] == pattern(7, 100 * SECTOR, 300 * SECTOR)
    assert data[:100 * SECTOR] == bytes(100 * SECTOR)     # nothing else touched
    # And the guest reads back what the host put there.
    status, out, _ = run_probe(*drive(disk), "-kernel", probe,
                               scenario="blk-read,pattern=7,sectors=300,offset=100")
    assert status == 0 and "probe: blk: verified" in out


@pytest.mark.guest
def test_blk_qcow2_with_backing_file_passes_qemu_img_check(probe, tmp_path):
    base = raw_image(tmp_path, "base.raw", 32 << 20)
    with open(base, "r+b") as f:
        f.seek(1 << 20)
        f.write(b"backing data" * 100)
    top = tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(top)], check=True)
    status, out, err = run_probe(*drive(top, "qcow2"), "-kernel", probe,
                                 scenario="blk-write,pattern=8,sectors=64,offset=0")
    assert status == 0 and "probe: blk: verified" in out, err
    check = subprocess.run(["qemu-img", "check", str(top)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    flat = tmp_path / "flat.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(top), str(flat)], check=True)
    data = open(flat, "rb").read()
    assert data[:64 * SECTOR] == pattern(8, 0, 64 * SECTOR)
    assert data[1 << 20:(1 << 20) + 1200] == b"backing data" * 100


@pytest.mark.guest
def test_snapshot_on_leaves_the_image_untouched(probe, tmp_path):
    disk = raw_image(tmp_path)
    before = sha(disk)
    status, out, err = run_probe(*drive(disk, extra=",snapshot=on"), "-kernel", probe,
                                 scenario="blk-write,pattern=9")
    assert status == 0 and "probe: blk: verified" in out, err
    assert sha(disk) == before


@pytest.mark.guest
def test_readonly_drive_refuses_writes_with_ioerr(probe, tmp_path):
    disk = raw_image(tmp_path)
    before = sha(disk)
    status, out, err = run_probe(*drive(disk, extra=",readonly=on"), "-kernel", probe,
                                 scenario="blk-write,pattern=3,expect=ioerr")
    assert status == 0, err
    assert "probe: blk: write refused (ioerr)" in out
    assert sha(disk) == before


FORGED_VMDK = b'# Disk DescriptorFile\nversion=1\nRW 8 FLAT "/etc/hostname" 0\n'


def probed_drive(path):
    """A -drive without format=: the VMM probes it (raw here), so block 0 is restricted."""
    return ["-drive", f"file={path},if=none,id=d0",
            "-device", "virtio-blk-pci,drive=d0,serial=disk42"]


@pytest.mark.guest
@pytest.mark.parametrize("forge", ["vmdk", "qcow2"])
def test_forged_header_into_probed_raw_is_refused(probe, tmp_path, forge):
    """Issue #16: a guest must not turn its probed-raw disk into a VMDK whose extent is a
    host file (or into any other format): the write fails with IOERR, the disk is as it
    was, and the next probe still says raw."""
    disk = raw_image(tmp_path)
    before = sha(disk)
    status, out, err = run_probe(*probed_drive(disk), "-kernel", probe,
                                 scenario=f"blk-write,forge={forge},sectors=8,offset=0,"
                                          "expect=ioerr")
    assert status == 0, err
    assert "probing guessed raw" in err
    assert f"probe: blk: sector 0 forged as a {forge} header" in out
    assert "probe: blk: write refused (ioerr)" in out
    assert sha(disk) == before
    info = subprocess.run(["qemu-img", "info", str(disk)], capture_output=True, text=True)
    assert "file format: raw" in info.stdout, info.stdout + info.stderr
    # The same bytes one sector on are data, and with format=raw the guest may write them.
    status, out, err = run_probe(*probed_drive(disk), "-kernel", probe,
                                 scenario=f"blk-write,forge={forge},sectors=8,offset=1")
    assert status == 0 and "probe: blk: verified" in out, err
    status, out, err = run_probe(*drive(disk), "-kernel", probe,
                                 scenario=f"blk-write,forge={forge},sectors=8,offset=0")
    assert status == 0 and "probe: blk: verified" in out, err
    if forge == "vmdk":
        assert open(disk, "rb").read(len(FORGED_VMDK)) == FORGED_VMDK


@pytest.mark.guest
def test_second_vm_on_the_same_image_is_refused(probe, tmp_path, session):
    disk = raw_image(tmp_path)
    first = session([str(KESTREL), "-nographic", *drive(disk), "-kernel", probe,
                     "-append", "probe=echo"])
    first.expect(r"probe: echo: ready")
    status, out, err = kestrel("-nographic", *drive(disk), "-kernel", probe)
    assert status == 1
    assert str(disk) in err and "lock" in err.lower(), err
    assert str(first.proc.pid) in err or "another process" in err
    assert "probe:" not in out


@pytest.mark.guest
@pytest.mark.parametrize("cache", ["writeback", "none"])
def test_kill_9_after_flush_loses_nothing(probe, tmp_path, session, cache):
    disk = raw_image(tmp_path)
    vm = session([str(KESTREL), "-nographic", *drive(disk, extra=f",cache={cache}"),
                  "-kernel", probe, "-append", "probe=blk-write,pattern=5,sectors=256"])
    vm.expect(r"probe: blk: flushed")
    vm.proc.send_signal(signal.SIGKILL)
    vm.proc.wait()
    with open(disk, "rb") as f:
        assert f.read(256 * SECTOR) == pattern(5, 0, 256 * SECTOR)


@pytest.mark.guest
def test_rng_gives_random_bytes(probe):
    status, out, err = run_probe("-device", "virtio-rng-pci", "-kernel", probe, scenario="rng")
    assert status == 0, err
    line = [l for l in probe_lines(out) if l.startswith("probe: rng: ") and "bytes" not in l][0]
    assert len(line.split()[2]) == 128 and line.split()[2] != "0" * 128


def console_roundtrip(argv, path):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        s = socket.socket(socket.AF_UNIX)
        for _ in range(400):
            try:
                s.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.025)
        s.settimeout(60)
        got = b""
        while b"hello over virtio-console" not in got:
            chunk = s.recv(4096)
            assert chunk, "console closed"
            got += chunk
        s.sendall(b"hello from the host\n")
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.guest
def test_virtio_console_both_ways(probe, tmp_path):
    path = tmp_path / "vc.sock"
    status, out = console_roundtrip(
        [str(KESTREL), "-nographic", "-device", "virtio-serial-pci", "-chardev",
         f"socket,id=c0,path={path},server=on,wait=off", "-device", "virtconsole,chardev=c0",
         "-kernel", probe, "-append", "probe=console"], path)
    assert status == 0
    assert "probe: console: got hello from the host" in out


def test_bad_drive_options_are_named(probe, tmp_path):
    for args, needle in [
        (["-drive", "file=/nonexistent.img,format=raw"], "/nonexistent.img"),
        (["-drive", "file=x,format=nosuch"], "format= must be an image format Kestrel has"),
        (["-drive", "file=x,cache=sometimes"], "cache="),
        (["-device", "virtio-blk-pci,drive=nope"], "drive 'nope' not found"),
        (["-device", "virtio-rng-pci,addr=0x40"], "addr="),
        (["-device", "virtconsole,chardev=c0"], "virtio-serial"),
    ]:
        status, out, err = kestrel("-nographic", *args, "-kernel", probe)
        assert status == 1 and needle in err, (args, err)


# ---- the same scenarios under QEMU 7.2, the reference peer ----------------------

QEMU_BASE = ["-M", "pc", "-m", "128m", "-nographic", "-no-reboot"]


@pytest.mark.guest
@pytest.mark.qemu
def test_blk_write_under_qemu(probe, tmp_path):
    need_qemu()
    disk = raw_image(tmp_path)
    status, out, err = qemu(*QEMU_BASE, *drive(disk), "-kernel", probe, "-append",
                            "probe=blk-write,pattern=7,sectors=300,offset=100")
    assert status == 0 and "probe: blk: verified" in out, out + err
    assert open(disk, "rb").read()[100 * SECTOR:400 * SECTOR] == pattern(7, 100 * SECTOR,
                                                                        300 * SECTOR)


@pytest.mark.guest
@pytest.mark.qemu
def test_rng_and_readonly_under_qemu(probe, tmp_path):
    need_qemu()
    status, out, _ = qemu(*QEMU_BASE, "-device", "virtio-rng-pci", "-kernel", probe,
                          "-append", "probe=rng")
    assert status == 0 and "probe: PASS" in out
    disk = raw_image(tmp_path)
    status, out, _ = qemu(*QEMU_BASE, *drive(disk, extra=",readonly=on"), "-kernel", probe,
                          "-append", "probe=blk-write,pattern=3,expect=ioerr")
    assert status == 0 and "probe: blk: write refused (ioerr)" in out


@pytest.mark.guest
@pytest.mark.qemu
def test_forged_vmdk_into_probed_raw_under_qemu(probe, tmp_path):
    """The reference: QEMU 7.2 refuses the forged descriptor the same way (EPERM, IOERR)."""
    need_qemu()
    disk = raw_image(tmp_path)
    before = sha(disk)
    status, out, err = qemu(*QEMU_BASE, *probed_drive(disk), "-kernel", probe, "-append",
                            "probe=blk-write,forge=vmdk,sectors=8,offset=0,expect=ioerr")
    assert status == 0 and "probe: blk: write refused (ioerr)" in out, out + err
    assert sha(disk) == before


@pytest.mark.guest
@pytest.mark.qemu
def test_virtio_console_under_qemu(probe, tmp_path):
    need_qemu()
    path = tmp_path / "vc.sock"
    status, out = console_roundtrip(
        [*QEMU, *QEMU_BASE, "-device", "virtio-serial-pci", "-chardev",
         f"socket,id=c0,path={path},server=on,wait=on", "-device", "virtconsole,chardev=c0",
         "-kernel", probe, "-append", "probe=console"], path)
    assert status == 0
    assert "probe: console: got hello from the host" in out


@pytest.mark.guest
def test_blk_num_queues(probe, tmp_path):
    disk = raw_image(tmp_path)
    status, out, err = run_probe("-drive", f"file={disk},format=raw,if=none,id=d0",
                                 "-device", "virtio-blk-pci,drive=d0,num-queues=4",
                                 "-kernel", probe, scenario="blk-write,pattern=2")
    assert status == 0 and "probe: blk: verified" in out, err
    status, _, err = kestrel("-nographic", "-drive", f"file={disk},format=raw,if=none,id=d0",
                             "-device", "virtio-blk-pci,drive=d0,num-queues=9", "-kernel", probe)
    assert status == 1 and "num-queues" in err


@pytest.mark.guest
@pytest.mark.parametrize("aio", ["threads", "io_uring"])
def test_blk_bench_completes_with_polling(probe, tmp_path, aio):
    """blk-bench skips its kick whenever the device set VRING_USED_F_NO_NOTIFY, as
    virtio-blk does while it polls the ring after a round: a request made in the
    moment polling gives up and kicks come back on must still be served, or the
    probe waits for it forever.  Thousands of rounds at depth 1 and 8 cover that."""
    disk = raw_image(tmp_path)
    for mode, qd in (("randread", 1), ("randwrite", 1), ("randread", 8)):
        status, out, err = run_probe(
            "-drive", f"file={disk},format=raw,if=none,id=d0,aio={aio}",
            "-device", "virtio-blk-pci,drive=d0", "-kernel", probe,
            scenario=f"blk-bench,mode={mode},bs=4096,qd={qd},count=3000,span=32", timeout=120)
        assert status == 0, err
        assert re.search(rf"probe: blk-bench: mode {mode} bs 4096 qd {qd} count 3000 ", out), out
