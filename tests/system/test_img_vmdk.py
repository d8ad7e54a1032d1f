"""vmdk images (issue #19): every subformat and create option interoperates with qemu-img 7.2
in both directions (info, map, convert, compare, check as qemu-img prints them), hand-written
multi-extent descriptors read as QEMU reads them, and hostile files (forged descriptors naming
host files, devices, loops; damaged sparse headers) are refused by name, quickly."""
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from test_img_helpers import BLOCK_IO, Holder, kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

SUBFORMATS = ["monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
              "twoGbMaxExtentFlat", "streamOptimized"]
# Option combinations beyond subformat= (zeroed_grain only where QEMU allows it).
OPTIONS = ["", "adapter_type=lsilogic", "adapter_type=buslogic,hwversion=7",
           "adapter_type=legacyESX,toolsversion=1234", "compat6=on", "zeroed_grain=on"]
CASES = [(s, o) for s in SUBFORMATS for o in OPTIONS
         if not (o.startswith("zeroed") and "Flat" in s)]
# Two split extents and a bit: the 2 GiB boundary of twoGbMaxExtent* is crossed.
SPLIT_SIZE = (2 << 30) + (1 << 20)
# Whole grains: QEMU cannot write part of a streamOptimized grain.
WRITES = [(0x5a, 0, 131072), (0x33, 5 << 20, 65536), (0x77, (2 << 30) - 65536, 131072)]


def same(k, q):
    """kestrel-img's output is qemu-img's, program name aside."""
    assert k[0] == q[0], (k, q)
    assert k[1] == q[1], f"stdout differs:\n{k[1]}\n---\n{q[1]}"
    assert k[2].replace("kestrel-img:", "qemu-img:") == q[2], (k[2], q[2])


def qemu_io(path, *cmds, fmt="vmdk"):
    argv = ["qemu-io", "-f", fmt]
    for c in cmds:
        argv += ["-c", c]
    p = subprocess.run(argv + [str(path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "error" not in p.stdout.lower(), p.stdout + p.stderr


def size_for(sub):
    return SPLIT_SIZE if sub.startswith("twoGb") else 64 << 20


def opts(sub, extra):
    return f"subformat={sub}" + (f",{extra}" if extra else "")


def files_of(d):
    return sorted(p.name for p in Path(d).iterdir())


def descriptor_text(path):
    """The descriptor: the file itself, or the text at sector 1 of a sparse file."""
    data = Path(path).read_bytes()
    if data[:4] == b"KDMV":
        data = data[512:512 + 20 * 512]
    return data.split(b"\0")[0].decode()


def no_cid(text):
    return re.sub(r"(?m)^CID=[0-9a-f]+$", "CID=x", text)


@pytest.mark.parametrize("sub,extra", CASES)
@pytest.mark.interop
def test_qemu_made_image_reads_identically(tmp_path, sub, extra):
    img = tmp_path / "q.vmdk"
    ok(qimg("create", "-q", "-f", "vmdk", "-o", opts(sub, extra), img, str(size_for(sub))))
    qemu_io(img, *[f"write -P {p} {o} {n}" for p, o, n in WRITES if o + n <= size_for(sub)])
    for cmd in (["info"], ["info", "--output=json"], ["map"], ["map", "--output=json"]):
        same(kimg(*cmd, img.name, cwd=tmp_path), qimg(*cmd, img.name, cwd=tmp_path))
    ok(kimg("convert", "-O", "raw", img, tmp_path / "k.raw"))
    # qemu-img compare reads the vmdk with QEMU and the raw image Kestrel wrote.
    ok(qimg("compare", "-f", "vmdk", "-F", "raw", img, tmp_path / "k.raw"))
    ok(kimg("compare", "-f", "vmdk", "-F", "raw", img, tmp_path / "k.raw"))
    ok(kimg("check", img))


@pytest.mark.parametrize("sub,extra", CASES)
@pytest.mark.interop
def test_kestrel_created_image_is_qemus(tmp_path, sub, extra):
    """The same files, descriptor (the random CID aside) and sparse metadata as qemu-img's."""
    (tmp_path / "q").mkdir()
    (tmp_path / "k").mkdir()
    size = str(size_for(sub))
    q = qimg("create", "-f", "vmdk", "-o", opts(sub, extra), "x.vmdk", size, cwd=tmp_path / "q")
    k = kimg("create", "-f", "vmdk", "-o", opts(sub, extra), "x.vmdk", size, cwd=tmp_path / "k")
    same(k, q)
    assert files_of(tmp_path / "k") == files_of(tmp_path / "q")
    for name in files_of(tmp_path / "q"):
        kf, qf = tmp_path / "k" / name, tmp_path / "q" / name
        # (A descriptor file's length varies with the random CID's digits.)
        separate = sub.startswith("twoGb") or sub == "monolithicFlat"
        assert kf.stat().st_size == qf.stat().st_size or name == "x.vmdk" and separate
        if name == "x.vmdk":
            assert no_cid(descriptor_text(kf)) == no_cid(descriptor_text(qf))
        elif "Sparse" in sub:
            assert kf.read_bytes() == qf.read_bytes(), name
    img = tmp_path / "k" / "x.vmdk"
    ok(qimg("check", img))
    writes = [f"write -P {p} {o} {n}" for p, o, n in WRITES if o + n <= size_for(sub)]
    qemu_io(img, *writes)
    ok(qimg("check", img))
    ok(kimg("convert", "-O", "raw", img, tmp_path / "k.raw"))
    ok(qimg("compare", "-f", "vmdk", "-F", "raw", img, tmp_path / "k.raw"))


@pytest.mark.parametrize("sub", SUBFORMATS)
def test_convert_to_vmdk_passes_qemu_check_and_compare(tmp_path, sub):
    src = tmp_path / "src.raw"
    with open(src, "wb") as f:
        f.truncate(32 << 20)
        # Whole grains, a grain with two islands of data and a hole between, a tail.
        for off, data in [(0, b"\x11" * (3 << 20)), (10 << 20, b"\x22" * 4096),
                          ((10 << 20) + 40960, b"\x23" * 4096), ((32 << 20) - 1000, b"\x44" * 1000)]:
            f.seek(off)
            f.write(data)
    dst = tmp_path / "d.vmdk"
    ok(kimg("convert", "-O", "vmdk", "-o", f"subformat={sub}", src, dst))
    ok(qimg("check", dst))
    ok(qimg("compare", "-f", "raw", "-F", "vmdk", src, dst))
    ok(kimg("compare", "-f", "raw", "-F", "vmdk", src, dst))
    assert f'createType="{sub}"' in descriptor_text(dst)
    if sub != "streamOptimized":
        return
    # The grains are deflated: far smaller than the 3 MiB of repeated bytes.
    assert dst.stat().st_size < (1 << 20)
    info = ok(qimg("info", "--output=json", dst))
    assert '"compressed": true' in info


def test_zero_writes_use_zeroed_grains(tmp_path):
    """With zeroed_grain=on, whole zero grains become zeroed-grain entries (map: zero, not data)."""
    img = tmp_path / "z.vmdk"
    ok(qimg("create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", img, "4M"))
    qemu_io(img, "write -P 9 0 4M")
    src = tmp_path / "src.raw"
    with open(src, "wb") as f:
        f.truncate(4 << 20)
        f.seek(1 << 20)
        f.write(b"\x01" * 65536)
    ok(kimg("convert", "-n", "-O", "vmdk", src, img))
    ok(qimg("check", img))
    ok(qimg("compare", "-f", "raw", "-F", "vmdk", src, img))
    m = ok(qimg("map", "--output=json", img))
    assert '"start": 0, "length": 1048576, "depth": 0, "present": true, "zero": true, "data": false' in m
    # The file did not grow by 4 MiB of zero grains.
    assert img.stat().st_size < (5 << 20)


def test_backing_file_by_cid(tmp_path):
    base = tmp_path / "base.vmdk"
    ok(qimg("create", "-q", "-f", "vmdk", base, "16M"))
    qemu_io(base, "write -P 1 0 4M")
    out = ok(kimg("create", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "ov.vmdk",
                  cwd=tmp_path))
    assert out == ("Formatting 'ov.vmdk', fmt=vmdk size=16777216 backing_file=base.vmdk "
                   "backing_fmt=vmdk compat6=off hwversion=undefined\n")
    ov = tmp_path / "ov.vmdk"
    cid = re.search(r"CID=([0-9a-f]+)", descriptor_text(base)).group(1)
    assert f"parentCID={cid}\n" in descriptor_text(ov)
    assert 'parentFileNameHint="base.vmdk"' in descriptor_text(ov)
    qemu_io(ov, "write -P 2 1M 64k", "write -P 3 100k 1k")
    for cmd in (["info"], ["info", "--output=json"], ["map", "--output=json"]):
        same(kimg(*cmd, "ov.vmdk", cwd=tmp_path), qimg(*cmd, "ov.vmdk", cwd=tmp_path))
    ok(kimg("convert", "-O", "raw", ov, tmp_path / "k.raw"))
    ok(qimg("compare", "-F", "raw", ov, tmp_path / "k.raw"))
    # A parent changed since (its CID renewed): reads through it fail in both, alike.
    qemu_io(base, "write -P 4 0 512")
    same(kimg("convert", "-O", "raw", ov, tmp_path / "k2.raw"),
         qimg("convert", "-O", "raw", ov, tmp_path / "q2.raw"))
    assert kimg("convert", "-O", "raw", ov, tmp_path / "k2.raw")[0] == 1
    # Kestrel's own first write renews the CID too.
    before = descriptor_text(base)
    src = tmp_path / "one.raw"
    src.write_bytes(b"\x05" * 512)
    ok(kimg("convert", "-n", "-O", "vmdk", src, base))
    after = descriptor_text(base)
    assert no_cid(after) == no_cid(before) and after != before


@pytest.mark.parametrize("opt,kind", [
    ("adapter_type=foo", "o"), ("subformat=bar", "o"), ("hwversion=7,compat6=on", "o"),
    ("backing_file=base.vmdk,backing_fmt=raw", "o"), ("subformat=monolithicFlat,zeroed_grain=on", "o"),
    ("subformat=monolithicFlat,backing_file=base.vmdk,backing_fmt=vmdk", "o"),
    ("backing_file=r.raw,backing_fmt=raw", "o"), ("compat6=maybe", "o"),
])
def test_create_errors_as_qemu_img(tmp_path, opt, kind):
    ok(qimg("create", "-q", "-f", "vmdk", tmp_path / "base.vmdk", "1M"))
    ok(qimg("create", "-q", "-f", "raw", tmp_path / "r.raw", "1M"))
    k = kimg("create", "-f", "vmdk", "-o", opt, "e.vmdk", "1M", cwd=tmp_path)
    q = qimg("create", "-f", "vmdk", "-o", opt, "e.vmdk", "1M", cwd=tmp_path)
    same(k, q)
    assert k[0] == 1


def test_create_help_lists_qemus_options():
    same(kimg("create", "-f", "vmdk", "x", "1M", "-o", "help"),
         qimg("create", "-f", "vmdk", "x", "1M", "-o", "help"))


@pytest.mark.parametrize("cmd", [
    ["resize", "i.vmdk", "32M"], ["amend", "-o", "zeroed_grain=on", "i.vmdk"],
    ["snapshot", "-c", "s", "i.vmdk"], ["check", "-r", "all", "i.vmdk"],
    ["snapshot", "-l", "i.vmdk"], ["check", "i.vmdk"],
], ids=lambda c: " ".join(c[:2]))
def test_unsupported_operations_worded_as_qemu_img(tmp_path, cmd):
    ok(qimg("create", "-q", "-f", "vmdk", tmp_path / "i.vmdk", "16M"))
    before = (tmp_path / "i.vmdk").read_bytes()
    same(kimg(*cmd, cwd=tmp_path), qimg(*cmd, cwd=tmp_path))
    assert (tmp_path / "i.vmdk").read_bytes() == before


def test_check_finds_a_grain_past_eof_as_qemu_does(tmp_path):
    img = tmp_path / "g.vmdk"
    ok(qimg("create", "-q", "-f", "vmdk", img, "8M"))
    qemu_io(img, "write -P 1 0 1M")
    b = bytearray(img.read_bytes())
    gt = struct.unpack_from("<I", b, struct.unpack_from("<Q", b, 56)[0] * 512)[0] * 512
    struct.pack_into("<I", b, gt + 4, 0x100000)
    img.write_bytes(b)
    for extra in ([], ["--output=json"]):
        same(kimg("check", *extra, img), qimg("check", *extra, img))
    assert "points after EOF" in kimg("check", img)[2]


def desc(*extents, create_type="monolithicFlat", extra=""):
    return ("# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\n"
            f'createType="{create_type}"\n{extra}# Extent description\n' +
            "\n".join(extents) + "\n")


def test_hand_written_multi_extent_descriptor(tmp_path):
    """FLAT (with an offset), SPARSE and VMFS extents, and the lines QEMU 7.2 skips (ZERO,
    RDONLY, NOACCESS): both tools see the same disk."""
    with open(tmp_path / "f1.bin", "wb") as f:
        f.write(bytes(range(256)) * 4096)
    with open(tmp_path / "f2.bin", "wb") as f:
        f.truncate(2 << 20)
        f.seek(1 << 20)
        f.write(b"\xab" * 4096)
    ok(qimg("create", "-q", "-f", "vmdk", tmp_path / "sp.vmdk", "1M"))
    qemu_io(tmp_path / "sp.vmdk", "write -P 0xcd 4096 70000")
    (tmp_path / "d.vmdk").write_text(desc(
        'RW 1024 FLAT "f1.bin" 1024', 'RW 2048 SPARSE "sp.vmdk"', "RW 2048 ZERO",
        'RDONLY 2048 FLAT "f2.bin" 0', 'NOACCESS 2048 FLAT "f2.bin" 0',
        'RW 2048 VMFS "f2.bin"', create_type="twoGbMaxExtentFlat"))
    for cmd in (["info"], ["info", "--output=json"], ["map"], ["map", "--output=json"]):
        same(kimg(*cmd, "d.vmdk", cwd=tmp_path), qimg(*cmd, "d.vmdk", cwd=tmp_path))
    ok(kimg("convert", "-O", "raw", tmp_path / "d.vmdk", tmp_path / "k.raw"))
    ok(qimg("convert", "-O", "raw", tmp_path / "d.vmdk", tmp_path / "q.raw"))
    assert (tmp_path / "k.raw").read_bytes() == (tmp_path / "q.raw").read_bytes()
    data = (tmp_path / "k.raw").read_bytes()
    assert data[:512 * 1024] == (bytes(range(256)) * 4096)[512 * 1024:]
    assert data[512 * 1024 + 4096:512 * 1024 + 4096 + 70000] == b"\xcd" * 70000
    # Writes through it land in the right files (and qemu-img reads them there).
    src = tmp_path / "w.raw"
    src.write_bytes(b"\x99" * (512 * 1024 + 1024 * 1024 + 8192))
    ok(kimg("convert", "-n", "-O", "vmdk", src, tmp_path / "d.vmdk"))
    ok(qimg("convert", "-O", "raw", tmp_path / "d.vmdk", tmp_path / "q2.raw"))
    written = (tmp_path / "q2.raw").read_bytes()
    assert written[:len(src.read_bytes())] == src.read_bytes()
    assert written[len(src.read_bytes()):] == data[len(src.read_bytes()):]
    assert (tmp_path / "f1.bin").read_bytes()[:512 * 1024] == (bytes(range(256)) * 4096)[:512 * 1024]


# Forged descriptors: a guest able to write a raw disk that is later probed, or anyone
# handing over a "VMDK", must not get a host file or device read into the disk.
FORGED = {
    "absolute": ('RW 2 FLAT "/etc/hostname" 0', "'/etc/hostname' lies outside"),
    "dotdot": ('RW 2 FLAT "../outside.bin" 0', "'../outside.bin' lies outside"),
    "symlink": ('RW 2 FLAT "link.bin" 0', "'link.bin' lies outside"),
    "fifo": ('RW 2 FLAT "fifo.bin" 0', "'fifo.bin' is not a regular file"),
    "self": ('RW 2 FLAT "d.vmdk" 0', "'d.vmdk' is the descriptor itself"),
    "twice": ('RW 2048 FLAT "ok.bin" 0\nRW 2048 FLAT "ok.bin" 0', "'ok.bin' is used twice"),
    "loop": ('RW 2048 SPARSE "loop.vmdk"', "'loop.vmdk' contains the descriptor naming it"),
    "sparse-device": ('RW 2 SPARSE "/dev/zero"', "'/dev/zero' lies outside"),
}


def embedded(text):
    """A sparse file whose header says: my content is the descriptor at sector 1."""
    h = b"KDMV" + struct.pack("<IIQQQQIQQQ", 1, 3, 0, 128, 1, 20, 512, 0, 0, 0)
    return h.ljust(512, b"\0") + text.encode().ljust(20 * 512, b"\0")


@pytest.mark.parametrize("case", sorted(FORGED))
def test_forged_descriptor_is_refused_by_name(tmp_path, case):
    line, msg = FORGED[case]
    d = tmp_path / "dir"
    d.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"secret" * 100)
    (d / "ok.bin").write_bytes(b"\0" * (1 << 20))
    os.symlink("/etc/hostname", d / "link.bin")
    os.mkfifo(d / "fifo.bin")
    (d / "loop.vmdk").write_bytes(embedded(desc('RW 2048 SPARSE "loop.vmdk"',
                                                create_type="twoGbMaxExtentSparse")))
    (d / "d.vmdk").write_text(desc(line))
    for cmd in (["info"], ["convert", "-O", "raw"], ["map"]):
        argv = cmd + [d / "d.vmdk"] + ([tmp_path / "o.raw"] if cmd[0] == "convert" else [])
        rc, out, err = kimg(*argv, timeout=20)
        assert rc == 1, (case, out, err)
        assert msg in err and "refused" in err, err
    assert not (tmp_path / "o.raw").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_node_in_the_directory_is_refused(tmp_path):
    os.mknod(tmp_path / "null.bin", 0o600 | 0o020000, os.makedev(1, 3))
    (tmp_path / "d.vmdk").write_text(desc('RW 2 FLAT "null.bin" 0'))
    rc, out, err = kimg("info", tmp_path / "d.vmdk", timeout=20)
    assert rc == 1 and "'null.bin' is not a regular file" in err, err


def test_extent_in_a_subdirectory_is_fine(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.bin").write_bytes(b"\x42" * (1 << 20))
    (tmp_path / "d.vmdk").write_text(desc('RW 2048 FLAT "sub/e.bin" 0'))
    same(kimg("info", "d.vmdk", cwd=tmp_path), qimg("info", "d.vmdk", cwd=tmp_path))


def sparse_image(tmp_path, patch):
    """A qemu-img made 8 MiB image with data, its header or tables patched."""
    img = tmp_path / "b.vmdk"
    ok(qimg("create", "-q", "-f", "vmdk", img, "8M"))
    qemu_io(img, "write -P 1 0 1M")
    b = bytearray(img.read_bytes())
    patch(b)
    img.write_bytes(b)
    return img


BAD = {
    "truncated-header": (lambda b: b.__delitem__(slice(100, None)), "File truncated"),
    "gd-past-eof": (lambda b: struct.pack_into("<Q", b, 56, 1 << 30), "grain directory"),
    "rgd-past-eof": (lambda b: struct.pack_into("<Q", b, 48, 1 << 30), "redundant grain directory"),
    "absurd-capacity": (lambda b: struct.pack_into("<Q", b, 12, 1 << 62), "Invalid capacity"),
    "huge-capacity-l1": (lambda b: struct.pack_into("<Q", b, 12, 1 << 50), "L1 size too big"),
    "huge-gt-count": (lambda b: struct.pack_into("<I", b, 44, 1 << 30), "L2 table size too big"),
    "zero-gt-count": (lambda b: struct.pack_into("<I", b, 44, 0), "L1 entry size is invalid"),
    "huge-grain": (lambda b: struct.pack_into("<Q", b, 20, 1 << 40), "Invalid granularity"),
    "version-4": (lambda b: struct.pack_into("<I", b, 4, 4), "Unsupported VMDK version 4"),
    "version-3-rw": (lambda b: struct.pack_into("<I", b, 4, 3), "VMDK version 3 must be read only"),
    "footer-missing": (lambda b: struct.pack_into("<Q", b, 56, (1 << 64) - 1), "Invalid footer"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_damaged_sparse_header_is_refused(tmp_path, case):
    patch, msg = BAD[case]
    img = sparse_image(tmp_path, patch)
    before = img.read_bytes()
    cmd = ["convert", "-n", "-O", "vmdk", "-f", "raw", tmp_path / "z.raw", img]
    (tmp_path / "z.raw").write_bytes(b"\1" * 512)
    reads = [["info", img], ["convert", "-O", "raw", img, tmp_path / "o.raw"]]
    # Version 3 without compression opens read-only (VMware KB 2064959): only writers fail.
    for argv in ([] if case == "version-3-rw" else reads) + [cmd]:
        rc, out, err = kimg(*argv, timeout=20)
        assert rc == 1, (case, argv, out, err)
        assert f"Could not open '{img}'" in err and msg in err, err
    assert img.read_bytes() == before


def test_grain_table_past_eof_reads_fail_cleanly(tmp_path):
    def patch(b):
        gd = struct.unpack_from("<Q", b, 56)[0] * 512
        struct.pack_into("<I", b, gd, 0x7fffffff)
    img = sparse_image(tmp_path, patch)
    rc, out, err = kimg("convert", "-O", "raw", img, tmp_path / "o.raw", timeout=20)
    assert rc == 1 and "error while reading" in err, err
    rc, out, err = kimg("check", img, timeout=20)
    assert rc != 0 and "could not get cluster_offset for sector 0" in err, err


def test_vmdk_in_use_is_refused_as_qcow2(tmp_path):
    img = tmp_path / "l.vmdk"
    ok(qimg("create", "-q", "-f", "vmdk", img, "16M"))
    before = img.read_bytes()
    holder = Holder(["qemu-io", "-f", "vmdk"], img)
    try:
        (tmp_path / "s.raw").write_bytes(b"\1" * 4096)
        rc, out, err = kimg("convert", "-n", "-O", "vmdk", tmp_path / "s.raw", img)
        assert rc == 1 and 'Failed to get "write" lock' in err, err
        assert f"It is in use by process {holder.proc.pid}." in err
        assert img.read_bytes() == before
    finally:
        holder.close()


@pytest.mark.guest
def test_guest_reads_and_writes_a_qemu_made_vmdk(probe, tmp_path):
    from conftest import kestrel
    from test_virtio import SECTOR, pattern
    img = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(img), "32M"], check=True)
    status, out, err = kestrel("-m", "128m", "-nographic", "-drive",
                               f"file={img},format=vmdk,if=none,id=d0", "-device",
                               "virtio-blk-pci,drive=d0,serial=disk42", "-kernel", probe,
                               "-append", "probe=blk-write,pattern=8,sectors=64,offset=0",
                               timeout=60)
    assert status == 0 and "probe: blk: verified" in out, err
    check = subprocess.run(["qemu-img", "check", str(img)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    flat = tmp_path / "flat.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(img), str(flat)], check=True)
    assert open(flat, "rb").read()[:64 * SECTOR] == pattern(8, 0, 64 * SECTOR)


def test_measure_refused_and_dd_writes_vmdk(tmp_path):
    ok(qimg("create", "-q", "-f", "vmdk", tmp_path / "m.vmdk", "64M"))
    for args in (["--size", "1G"], [tmp_path / "m.vmdk"]):
        same(kimg("measure", "-O", "vmdk", *args), qimg("measure", "-O", "vmdk", *args))
    # measure of a vmdk source into qcow2 reads it through the driver.
    same(kimg("measure", "-O", "qcow2", tmp_path / "m.vmdk"),
         qimg("measure", "-O", "qcow2", tmp_path / "m.vmdk"))
    src = tmp_path / "s.raw"
    src.write_bytes(bytes(range(256)) * 16384)
    ok(kimg("dd", "-O", "vmdk", f"if={src}", f"of={tmp_path / 'k.vmdk'}", "bs=64k"))
    ok(qimg("check", tmp_path / "k.vmdk"))
    ok(qimg("compare", "-f", "raw", "-F", "vmdk", src, tmp_path / "k.vmdk"))


def test_cowd_extent_reads_as_qemu_reads_it(tmp_path):
    """VMDK3 ("COWD"): 4096-entry grain tables, granularity in sectors."""
    hdr = b"COWD" + struct.pack("<IIIIIII", 1, 3, 8192, 8, 4, 1, 8192)
    gt = struct.pack("<4096I", *([37, 0, 45] + [0] * 4093))
    img = tmp_path / "c.vmdk"
    cids = b"# Disk DescriptorFile\nversion=1\nCID=0000abcd\nparentCID=ffffffff\n"
    img.write_bytes((hdr.ljust(512, b"\0") + cids).ljust(4 * 512, b"\0") +
                    struct.pack("<I", 5).ljust(512, b"\0") + gt + b"\x61" * 4096 + b"\x62" * 4096)
    # Without CIDs where QEMU looks (sector 1) both refuse it, in the same words.
    (tmp_path / "n.vmdk").write_bytes(hdr.ljust(512, b"\0") + img.read_bytes()[2048:])
    same(kimg("info", "n.vmdk", cwd=tmp_path), qimg("info", "n.vmdk", cwd=tmp_path))
    for cmd in (["info"], ["map", "--output=json"]):
        same(kimg(*cmd, "c.vmdk", cwd=tmp_path), qimg(*cmd, "c.vmdk", cwd=tmp_path))
    ok(kimg("convert", "-O", "raw", img, tmp_path / "k.raw"))
    ok(qimg("convert", "-O", "raw", img, tmp_path / "q.raw"))
    data = (tmp_path / "k.raw").read_bytes()
    assert data == (tmp_path / "q.raw").read_bytes()
    assert data[:4096] == b"\x61" * 4096 and data[8192:12288] == b"\x62" * 4096


@pytest.mark.parametrize("sub", ["monolithicSparse", "streamOptimized"])
def test_write_where_no_grain_table_is_allocated(tmp_path, sub):
    """A directory entry without a table (VMware may leave them): the first write there
    appends a table (and its redundant copy) before the directories name it."""
    img = tmp_path / "t.vmdk"
    ok(qimg("create", "-q", "-f", "vmdk", "-o", f"subformat={sub}", img, "64M"))
    b = bytearray(img.read_bytes())
    for field in (48, 56):      # the redundant and the primary directory: entry 1 dropped
        struct.pack_into("<I", b, struct.unpack_from("<Q", b, field)[0] * 512 + 4, 0)
    img.write_bytes(b)
    src = tmp_path / "s.raw"
    with open(src, "wb") as f:
        f.truncate(64 << 20)
        f.seek((32 << 20) + 65536)
        f.write(b"\x3c" * 131072)
    ok(kimg("convert", "-n", "-O", "vmdk", src, img))
    ok(qimg("check", img))
    ok(qimg("compare", "-f", "raw", "-F", "vmdk", src, img))
    gd = struct.unpack_from("<Q", img.read_bytes(), 56)[0] * 512
    assert struct.unpack_from("<I", img.read_bytes(), gd + 4)[0] != 0
