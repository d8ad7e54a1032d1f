"""Interop checks shared by the block-table format tests (test_img_vpc.py,
test_img_vdi.py); no tests here.  Every check runs qemu-img 7.2 on the same file
and compares: what kestrel-img prints, reads and writes must be what qemu-img does."""
import hashlib
import subprocess
from pathlib import Path

from test_img_helpers import Writer, kimg, make_raw, ok, qimg
from test_img_lock import Holder, without_pid


def same_as_qemu(*args, cwd=None):
    """Runs one command under both tools: exit status, stdout and stderr the same."""
    k = kimg(*args, cwd=cwd)
    q = qimg(*args, cwd=cwd)
    assert k[0] == q[0], (args, k, q)
    assert k[1] == q[1], (args, k[1], q[1])
    assert k[2].replace("kestrel-img:", "qemu-img:") == q[2], (args, k[2], q[2])
    return k


def views_match(path, fmt):
    """info and map, human and JSON, and the raw content read the same."""
    for cmd in (["info"], ["info", "--output=json"], ["map"], ["map", "--output=json"]):
        rc = same_as_qemu(*cmd, "-f", fmt, path)[0]
    # An image both refuse (a fixed VHD of 0 bytes is its footer alone) has no content.
    if rc == 0:
        assert raw_via(kimg, path, fmt) == raw_via(qimg, path, fmt)


def raw_via(tool, path, fmt):
    out = Path(str(path) + f".{tool.__name__}.raw")
    ok(tool("convert", "-f", fmt, "-O", "raw", path, out))
    data = out.read_bytes()
    out.unlink()
    return data


def qemu_io(path, fmt, *cmds):
    argv = ["qemu-io", "-f", fmt]
    for c in cmds:
        argv += ["-c", c]
    subprocess.run([*argv, str(path)], check=True, capture_output=True)


def qemu_compares(raw, path, fmt):
    """qemu-img compare (the image against the raw source) finds them identical."""
    rc, out, err = qimg("compare", "-f", "raw", "-F", fmt, raw, path)
    assert rc == 0 and "Images are identical." in out, (out, err)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()



def random_writes(tmp, path, fmt, size, block, seed):
    """Random writes (up to 3 MiB, across block boundaries), zeroes and discards
    through Kestrel's block layer (block-io); qemu-img then reads what the model says
    was written."""
    w = Writer(tmp, size, seed)
    w.random_ops(60, min(block, 1 << 20), compressed=False)
    w.apply(path, fmt)
    model = Path(tmp) / f"model{seed}.raw"
    model.write_bytes(bytes(w.model))
    qemu_compares(model, path, fmt)
    return model


def refused_while_held(img, fmt, src):
    """While qemu-io holds img, convert -n into it fails as qemu-img's does (same
    words, plus the holder's pid) and leaves every byte as it was."""
    before = digest(img)
    h = Holder(["qemu-io", "-f", fmt], img)
    try:
        rc, _, err = kimg("convert", "-n", "-O", fmt, src, img)
        qrc, _, qerr = qimg("convert", "-n", "-O", fmt, src, img)
    finally:
        h.close()
    assert rc == qrc == 1
    assert without_pid(err, h.proc.pid) == qerr.replace("qemu-img:", "kestrel-img:")
    assert digest(img) == before


def guest_round_trip(probe, tmp_path, fmt, opts):
    """The guest probe reads, over virtio-blk, a disk qemu-img converted to fmt (the
    pattern test_virtio.py's tests use), then writes to it; qemu-img reads the write."""
    from test_virtio import SECTOR, drive, pattern, run_probe
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate(64 << 20)
        f.seek(77 * SECTOR)
        f.write(pattern(4, 77 * SECTOR, 1500 * SECTOR))
    img = tmp_path / f"disk.{fmt}"
    ok(qimg("convert", "-f", "raw", "-O", fmt, *(["-o", opts] if opts else []), raw, img))
    status, out, err = run_probe(*drive(img, fmt), "-kernel", probe,
                                 scenario="blk-read,pattern=4,sectors=1500,offset=77")
    assert status == 0 and "probe: blk: verified" in out, err
    status, out, err = run_probe(*drive(img, fmt), "-kernel", probe,
                                 scenario="blk-write,pattern=8,sectors=64,offset=4096")
    assert status == 0 and "probe: blk: verified" in out, err
    data = raw_via(qimg, img, fmt)
    assert data[4096 * SECTOR:4160 * SECTOR] == pattern(8, 4096 * SECTOR, 64 * SECTOR)
    return img


def converted_like_qemu(tmp_path, fmt, opts):
    """kestrel-img convert -O fmt of a mixed raw file: qemu-img compare finds it
    identical to the source, with the same blocks at the same places and the same
    disk size as qemu-img's own convert; each tool reads the other's image."""
    src = tmp_path / "src.raw"
    make_raw(src, 13 * (1 << 20) + 3584, seed=5)
    k, q = tmp_path / f"k.{fmt}", tmp_path / f"q.{fmt}"
    extra = ["-o", opts] if opts else []
    ok(kimg("convert", "-f", "raw", "-O", fmt, *extra, src, k))
    ok(qimg("convert", "-f", "raw", "-O", fmt, *extra, src, q))
    qemu_compares(src, k, fmt)
    for cmd in (["map", "--output=json"], ["info"]):
        assert ok(qimg(*cmd, "-f", fmt, k)).replace(k.name, q.name) == \
            ok(qimg(*cmd, "-f", fmt, q))
    assert raw_via(kimg, q, fmt) == raw_via(qimg, k, fmt)
    return k


def measure_and_dd_as_qemu(tmp_path, fmt):
    """measure is refused in qemu-img's words (the format has no bdrv_measure); dd -O
    fmt writes the image qemu-img dd writes."""
    src = tmp_path / "r.raw"
    make_raw(src, 3 << 20, seed=9)
    same_as_qemu("measure", "-O", fmt, "--size", "10M")
    same_as_qemu("measure", "-O", fmt, src)
    k, q = tmp_path / f"dd-k.{fmt}", tmp_path / f"dd-q.{fmt}"
    ok(kimg("dd", "-O", fmt, f"if={src}", f"of={k}"))
    ok(qimg("dd", "-O", fmt, f"if={src}", f"of={q}"))
    qemu_compares(src, k, fmt)
    assert ok(qimg("map", "--output=json", "-f", fmt, k)) == \
        ok(qimg("map", "--output=json", "-f", fmt, q))


def never_written(tmp_path, img, fmt, reason):
    """Kestrel reads img as qemu-img does, but refuses to open it for writing (reason
    in the message, "it can only be opened read-only") and leaves every byte."""
    views_match(img, fmt)
    before = digest(img)
    src = tmp_path / "zero.raw"
    src.write_bytes(bytes(1 << 20))
    rc, _, err = kimg("convert", "-n", "-f", "raw", "-O", fmt, src, img)
    assert rc == 1 and reason in err and "it can only be opened read-only" in err, err
    assert digest(img) == before
