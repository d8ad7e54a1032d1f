"""Interop checks shared by the per-format tests (test_img_qed.py, test_img_parallels.py):
an image read by kestrel-img and by qemu-img 7.2 must give the same bytes and the same
info/map text; an image kestrel-img wrote must pass qemu-img check and compare; check
output on a damaged copy must be qemu-img's; bad input must fail cleanly."""
import hashlib
import shutil
import subprocess

from test_img_helpers import BLOCK_IO, kimg, ok, qimg


def qemu_io(path, *cmds):
    """Writes with QEMU's own block layer (qemu-io -c ...)."""
    argv = ["qemu-io"]
    for c in cmds:
        argv += ["-c", c]
    subprocess.run([*argv, str(path)], check=True, capture_output=True)


def same_text(k, q, name_k=None, name_q=None):
    """kestrel-img's (rc, out, err) equals qemu-img's, program names aside."""
    rk, ok_, ek = k
    rq, oq, eq = q
    if name_k:
        ok_, ek = ok_.replace(name_k, "IMG"), ek.replace(name_k, "IMG")
        oq, eq = oq.replace(name_q, "IMG"), eq.replace(name_q, "IMG")
    assert (rk, ok_, ek.replace("kestrel-img:", "qemu-img:")) == (rq, oq, eq), (k, q)


def reads_like_qemu(path, tmp, fmt):
    """convert -O raw bytes, info and map (human and JSON) equal qemu-img's."""
    k, q = tmp / "k.raw", tmp / "q.raw"
    ok(kimg("convert", "-O", "raw", path, k))
    ok(qimg("convert", "-O", "raw", path, q))
    assert k.read_bytes() == q.read_bytes()
    for cmd in (["info"], ["info", "--output=json"], ["map"], ["map", "--output=json"],
                ["info", "-f", fmt], ["info", "--backing-chain"]):
        same_text(kimg(*cmd, path), qimg(*cmd, path))
    return q.read_bytes()


def passes_qemu(path, src, fmt):
    """qemu-img check finds nothing and compare sees the source's content."""
    rc, out, err = qimg("check", path)
    assert rc == 0, out + err
    assert "No errors were found" in out
    ok(qimg("compare", "-f", "raw", "-F", fmt, src, path))


def block_io(path, fmt, data, script):
    """Writes through Kestrel's block layer (requests as block-io reads them)."""
    p = subprocess.run([BLOCK_IO, "-f", fmt, "-d", str(data), str(path)], input=script.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()


def checks_like_qemu(tmp, damaged, fmt, repair):
    """check [-r] of two copies of a damaged image: same text, exit status and result."""
    k, q = tmp / f"k.{fmt}", tmp / f"q.{fmt}"
    shutil.copy(damaged, k)
    shutil.copy(damaged, q)
    args = ["-r", repair] if repair else []
    rk = kimg("check", *args, k)
    rq = qimg("check", *args, q)
    same_text(rk, rq, k.name, q.name)
    assert hashlib.sha256(k.read_bytes()).digest() == hashlib.sha256(q.read_bytes()).digest()
    return rk


def refused(tmp, path, msg):
    """Bad input: a clear message, exit 1, no crash; the file is not changed."""
    before = path.read_bytes()
    for cmd in (["info"], ["convert", "-O", "raw", path, tmp / "out.raw"], ["check"],
                ["rebase", "-u", "-b", "", path]):
        argv = cmd if len(cmd) > 1 else [*cmd, path]
        rc, out, err = kimg(*argv)
        assert rc in (1, 2), (argv, rc, err)
        assert msg in err, (argv, err)
    assert path.read_bytes() == before


def refused_while_held(image, fmt, cmd):
    """qemu-io holds the image: kestrel-img's cmd fails on the lock and changes nothing."""
    from test_img_lock import Holder
    before = image.read_bytes()
    h = Holder(["qemu-io", "-f", fmt], image)
    try:
        rc, out, err = kimg(*cmd)
    finally:
        h.close()
    assert rc == 1 and 'Failed to get "write" lock' in err, err
    assert image.read_bytes() == before


def guest_reads(probe, tmp_path, fmt):
    """The guest probe reads a virtio-blk disk qemu-img converted to fmt: the same bytes."""
    from conftest import kestrel, probe_lines
    from test_virtio import SECTOR, drive, pattern
    raw = tmp_path / "p.raw"
    with open(raw, "wb") as f:
        f.truncate(64 << 20)
        f.seek(77 * SECTOR)
        f.write(pattern(4, 77 * SECTOR, 1500 * SECTOR))
    disk = tmp_path / f"disk.{fmt}"
    ok(qimg("convert", "-O", fmt, raw, disk))
    status, out, err = kestrel("-m", "128m", "-nographic", *drive(disk, fmt), "-kernel", probe,
                               "-append", "probe=blk-read,pattern=4,sectors=1500,offset=77",
                               timeout=60)
    assert status == 0 and "probe: blk: verified" in probe_lines(out), err
