"""host_device and host_cdrom on a real block device (issue #20): a loop device the test
attaches to a sparse file (losetup; root needed) is opened by kestrel-img by its path and
with driver=host_device/host_cdrom, as qemu-img 7.2 opens it: the size from BLKGETSIZE64,
the drivers' checks of what they open, convert onto the device (which keeps its old
bytes, so zeroes are written), create on it (a size the device holds, its first sector
zeroed), and images made there pass qemu-img check."""
import json
import os
import shutil
import subprocess

import pytest

from test_img_helpers import KIMG, same_as_qemu_img as same

MiB = 1 << 20


def sh(*argv, check=True):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, f"{argv}: {p.stdout}{p.stderr}"
    return p


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    if os.geteuid() != 0 or not shutil.which("losetup"):
        pytest.skip("a loop device needs root and losetup (util-linux)")
    backing = tmp_path_factory.mktemp("loop") / "backing.img"
    with open(backing, "wb") as f:
        f.truncate(64 * MiB)
    p = sh("losetup", "-f", "--show", backing, check=False)
    if p.returncode != 0:
        pytest.skip(f"losetup -f --show {backing} failed here: {p.stderr.strip()}")
    dev = p.stdout.strip()
    yield dev
    sh("losetup", "-d", dev, check=False)


@pytest.fixture
def dev(loop):
    """The loop device full of 0xee bytes: what a used disk holds before an image lands."""
    with open(loop, "r+b") as f:
        for _ in range(64):
            f.write(b"\xee" * MiB)
    return loop


def src_image(tmp_path, size=16 * MiB):
    s = tmp_path / "src.raw"
    sh("qemu-img", "create", "-q", "-f", "raw", s, size)
    sh("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 3M", "-c", "write -P 0x11 9M 64k", s)
    return s


def device_bytes(dev, n):
    with open(dev, "rb") as f:
        return f.read(n)


def test_info_by_path_and_by_driver_matches_qemu_img(dev):
    for name in (dev, f"host_device:{dev}"):
        k = same("info", "--output=json", name)
        assert json.loads(k.stdout)["virtual-size"] == 64 * MiB
    for driver in ("host_device", "host_cdrom"):
        k = same("info", "--image-opts", f"driver={driver},filename={dev}")
        assert f"file format: {driver}" in k.stdout and "64 MiB" in k.stdout
    same("info", "--image-opts", f"driver=raw,file.driver=host_device,file.filename={dev}")


def test_each_file_driver_checks_what_it_opens(dev, tmp_path):
    plain = tmp_path / "plain.img"
    plain.write_bytes(b"\0" * 4096)
    same("info", "--image-opts", f"driver=file,filename={dev}")
    same("info", f"file:{dev}")
    for driver in ("host_device", "host_cdrom"):
        k = same("info", "--image-opts", f"driver={driver},filename={plain}")
        assert "to be either a character or block device" in k.stderr


def test_convert_onto_the_device_writes_the_zeroes_too(dev, tmp_path):
    src = src_image(tmp_path)
    sh(KIMG, "convert", "-O", "raw", src, dev)
    assert device_bytes(dev, 16 * MiB) == src.read_bytes()
    # Past the image the device keeps what it had: nothing claims to have made it.
    with open(dev, "rb") as f:
        f.seek(16 * MiB)
        assert f.read(4096) == b"\xee" * 4096
    # The 0xee bytes past the image are what compare finds, in both programs' words.
    k = same("compare", "-f", "raw", "-F", "raw", src, dev)
    assert k.returncode == 1 and "16777216" in k.stdout, k.stdout


def test_an_image_larger_than_the_device_is_refused(dev, tmp_path):
    big = tmp_path / "big.raw"
    sh("qemu-img", "create", "-q", "-f", "raw", big, "128M")
    k = same("convert", "-O", "raw", big, dev)
    assert "Cannot grow device files" in k.stderr
    k = same("create", "-q", "-f", "raw", dev, "128M")
    assert "Cannot grow device files" in k.stderr
    # Nothing was written: the old bytes are all there.
    assert device_bytes(dev, 4096) == b"\xee" * 4096


def test_create_zeroes_the_first_sector_and_qcow2_on_the_device_passes_qemu_img_check(dev,
                                                                                      tmp_path):
    sh(KIMG, "create", "-q", "-f", "qcow2", dev, "128M")
    sh("qemu-img", "check", dev)
    k = same("info", "--output=json", dev)
    assert json.loads(k.stdout)["format"] == "qcow2"
    src = src_image(tmp_path)
    sh(KIMG, "convert", "-n", "-O", "qcow2", src, dev)
    sh("qemu-img", "check", dev)
    sh("qemu-img", "compare", "-f", "raw", src, dev)
    same("map", "--output=json", dev)
    # raw created over it: the qcow2 header is gone, the device probes as raw again.
    sh(KIMG, "create", "-q", "-f", "raw", dev, "32M")
    assert device_bytes(dev, 512) == b"\0" * 512
    assert json.loads(same("info", "--output=json", dev).stdout)["format"] == "raw"


def test_qcow2_made_by_qemu_img_on_the_device_reads_in_kestrel_img(dev, tmp_path):
    src = src_image(tmp_path)
    sh("qemu-img", "convert", "-O", "qcow2", src, dev)
    sh(KIMG, "check", dev)
    sh(KIMG, "compare", "-f", "raw", src, dev)
    out = tmp_path / "out.raw"
    sh(KIMG, "convert", "-O", "raw", dev, out)
    assert out.read_bytes() == src.read_bytes()
