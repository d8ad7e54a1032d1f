"""Image locks before anything is touched (issue #16): every kestrel-img command that
writes or creates an image, run while another process holds the image with QEMU's locks,
fails as qemu-img does and leaves every byte as it was."""
import hashlib
import re
import shutil
import subprocess

import pytest

from test_img_helpers import BLOCK_IO, Holder, kimg, needs_build, needs_qemu_img, ok, qimg

pytestmark = [needs_build, needs_qemu_img]

# (command, the image the holder keeps open).  d.qcow2 has a backing file, data and a
# snapshot, so that every command has real work it could do to it.
COMMANDS = [
    (["create", "-f", "qcow2", "d.qcow2", "16M"], "d.qcow2"),
    (["create", "-f", "raw", "d.qcow2", "16M"], "d.qcow2"),
    (["create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "d.qcow2"], "d.qcow2"),
    (["convert", "-O", "qcow2", "src.raw", "d.qcow2"], "d.qcow2"),
    (["convert", "-O", "raw", "src.raw", "d.qcow2"], "d.qcow2"),
    (["convert", "-n", "-O", "qcow2", "src.raw", "d.qcow2"], "d.qcow2"),
    (["dd", "-O", "qcow2", "if=src.raw", "of=d.qcow2"], "d.qcow2"),
    (["dd", "-O", "raw", "if=src.raw", "of=d.qcow2"], "d.qcow2"),
    (["resize", "d.qcow2", "32M"], "d.qcow2"),
    (["resize", "--shrink", "d.qcow2", "8M"], "d.qcow2"),
    (["amend", "-o", "lazy_refcounts=on", "d.qcow2"], "d.qcow2"),
    (["commit", "d.qcow2"], "d.qcow2"),
    (["commit", "d.qcow2"], "base.qcow2"),
    (["rebase", "-u", "-b", "", "d.qcow2"], "d.qcow2"),
    (["rebase", "-b", "", "d.qcow2"], "d.qcow2"),
    (["snapshot", "-c", "s2", "d.qcow2"], "d.qcow2"),
    (["snapshot", "-d", "s1", "d.qcow2"], "d.qcow2"),
    (["snapshot", "-a", "s1", "d.qcow2"], "d.qcow2"),
    (["check", "-r", "all", "d.qcow2"], "d.qcow2"),
    (["check", "-r", "leaks", "d.qcow2"], "d.qcow2"),
    (["bench", "-w", "-c", "10", "d.qcow2"], "d.qcow2"),
]

# How the other process holds it: qemu-io is QEMU's own block layer, so it takes the lock
# bytes exactly as a VM does (read-write: uses write and resize and shares neither;
# -r: reads and refuses to share write); block-io is Kestrel's, as kestrel's VM has it.
HOLDERS = {
    "qemu-io-rw": ["qemu-io", "-f", "qcow2"],
    "qemu-io-ro": ["qemu-io", "-r", "-f", "qcow2"],
    "kestrel-rw": [BLOCK_IO, "-f", "qcow2"],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    d = tmp_path_factory.mktemp("lock-template")
    ok(qimg("create", "-q", "-f", "qcow2", d / "base.qcow2", "16M"))
    ok(qimg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", d / "d.qcow2"))
    subprocess.run(["qemu-io", "-c", "write -P 0x55 0 64k", "-c", "write -P 0x66 1M 64k",
                    str(d / "d.qcow2")], check=True, capture_output=True)
    ok(qimg("snapshot", "-c", "s1", d / "d.qcow2"))
    subprocess.run(["qemu-io", "-c", "write -P 0x77 2M 64k", str(d / "d.qcow2")], check=True,
                   capture_output=True)
    (d / "src.raw").write_bytes(b"\x42" * (1 << 20))
    return d


def digest(d):
    return {name: hashlib.sha256((d / name).read_bytes()).hexdigest()
            for name in ("d.qcow2", "base.qcow2")}


def without_pid(err, pid):
    """kestrel-img's message is qemu-img's plus the holder's pid."""
    return err.replace(f" It is in use by process {pid}.", "")


@pytest.mark.parametrize("holder", sorted(HOLDERS))
@pytest.mark.parametrize("cmd,held", COMMANDS, ids=[" ".join(c[:2]) + f"@{h}"
                                                      for c, h in COMMANDS])
def test_writers_leave_an_image_in_use_untouched(tmp_path, template, holder, cmd, held):
    for f in template.iterdir():
        shutil.copy(f, tmp_path / f.name)
    before = digest(tmp_path)
    h = Holder(HOLDERS[holder], tmp_path / held)
    try:
        rc, out, err = kimg(*cmd, cwd=tmp_path)
        assert digest(tmp_path) == before, f"kestrel-img {cmd} changed an image in use"
        qrc, qout, qerr = qimg(*cmd, cwd=tmp_path)
        assert digest(tmp_path) == before, f"qemu-img {cmd} changed an image in use"
    finally:
        h.close()
    assert rc == qrc == 1, (cmd, err, qerr)
    assert f"It is in use by process {h.proc.pid}." in err, err
    if held == "d.qcow2":
        assert without_pid(err, h.proc.pid) == qerr.replace("qemu-img:", "kestrel-img:"), cmd
    # (commit opens the base after the chain, so a busy base is worded differently.)
    assert re.search(r'Failed to get (shared )?"(write|resize)" lock\n'
                     rf"Is another process using the image \[{re.escape(held)}\]\?", err)
    # Once the holder is gone the same command works (it was the lock, nothing else).
    rc, out, err = kimg(*cmd, cwd=tmp_path)
    assert rc == 0, (cmd, err)


@pytest.mark.parametrize("cmd", [
    ["bench", "-U", "-w", "-c", "10", "d.qcow2"],
    ["snapshot", "-U", "-c", "s2", "d.qcow2"],
    ["check", "-U", "-r", "all", "d.qcow2"],
    ["rebase", "-U", "-b", "", "d.qcow2"],
    ["convert", "-U", "-n", "-O", "qcow2", "src.raw", "d.qcow2"],
], ids=lambda c: " ".join(c[:2]))
def test_force_share_never_writes_an_image_in_use(tmp_path, template, cmd):
    """-U shares the image with its writers: it is for reading, never a way past the lock."""
    for f in template.iterdir():
        shutil.copy(f, tmp_path / f.name)
    before = digest(tmp_path)
    h = Holder(HOLDERS["qemu-io-rw"], tmp_path / "d.qcow2")
    try:
        rc, out, err = kimg(*cmd, cwd=tmp_path)
        qrc, qout, qerr = qimg(*cmd, cwd=tmp_path)
        assert digest(tmp_path) == before, cmd
    finally:
        h.close()
    assert rc == qrc == 1, (cmd, err, qerr)
    if cmd[0] == "bench":
        assert err.replace("kestrel-img:", "qemu-img:") == qerr
