"""Interop checks shared by the block-table format tests (test_img_vpc.py,
test_img_vdi.py); no tests here.  Every check runs qemu-img 7.2 on the same file
and compares: what kestrel-img prints, reads and writes must be what qemu-img does."""
import hashlib
import subprocess
from pathlib import Path

from test_img_helpers import Writer, kimg, ok, qimg
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
