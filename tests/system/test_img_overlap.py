"""kestrel-img writing into the hostile images of issue #16 defect 4 (tables
that point guest clusters at metadata): convert -n and commit must fail with
a clear error and exit 1, write nothing but the corrupt bit, and leave the
image marked corrupt, as qemu-img and qemu-io do where QEMU's overlap checks
catch the same write."""
import shutil

import pytest

import hostile_overlap as ho
from test_img_helpers import BLOCK_IO, KIMG, kimg, needs_build, ok, qimg, run

pytestmark = [needs_build]

CASES = list(ho.TARGET)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("overlap")
    return {name: path for name, path, _ in ho.images(d, KIMG, BLOCK_IO)}


def marked_corrupt_by_kestrel(path):
    out = ok(kimg("info", "-U", path))
    return "corrupt: true" in out


def marked_corrupt_by_qemu(path):
    rc, out, _ = qimg("info", "-U", path)
    return rc == 0 and "corrupt: true" in out


def source_raw(tmp_path):
    src = tmp_path / "src.raw"
    src.write_bytes(b"\x5c" * (16 << 20))
    return src


@pytest.mark.parametrize("case", CASES)
def test_convert_n_into_hostile_target(corpus, tmp_path, case):
    img = tmp_path / "k.qcow2"
    shutil.copy(corpus[case], img)
    before = img.read_bytes()
    rc, out, err = kimg("convert", "-n", "-O", "qcow2", source_raw(tmp_path), img)
    assert rc == 1, f"exit {rc}\n{out}\n{err}"
    assert "qcow2: Marking image as corrupt: " in err
    assert "error while writing at byte" in err and "Input/output error" in err
    # Like QEMU, the healthy cluster ahead of the hostile one took its data (a failed
    # write may land in part); no metadata byte changed.
    assert ho.metadata_unchanged(before, img.read_bytes())
    assert marked_corrupt_by_kestrel(img)
    rc, _, err = kimg("convert", "-n", "-O", "qcow2", source_raw(tmp_path), img)
    assert rc == 1 and "Image is corrupt; cannot be opened read/write" in err
    if shutil.which("qemu-img"):
        assert marked_corrupt_by_qemu(img)
        rc, out, _ = qimg("check", "--output=json", img)
        assert rc == 2 and '"corruptions": 0' not in out


@pytest.mark.skipif(shutil.which("qemu-io") is None, reason="qemu-io (qemu-utils) is not installed")
@pytest.mark.parametrize("case", CASES)
def test_same_write_as_qemu_io(corpus, tmp_path, case):
    """The write qemu-io refuses is refused here too, with the image marked the same way."""
    q, k = tmp_path / "q.qcow2", tmp_path / "k.qcow2"
    shutil.copy(corpus[case], q)
    shutil.copy(corpus[case], k)
    off = ho.TARGET[case]
    qrc, qout, qerr = run(["qemu-io", "-c", f"write -P 0x5c {off} 64k", "-c", "flush", q])
    qemu_refused = "write failed: Input/output error" in qout + qerr
    data = tmp_path / "pattern"
    data.write_bytes(b"\x5c" * ho.CS)
    krc, kout, kerr = run([BLOCK_IO, "-f", "qcow2", "-d", data, k],
                          input=f"w {off} {ho.CS} 0\nf\n".encode())
    assert krc != 0 and "Input/output error" in kerr, f"{krc}\n{kout}\n{kerr}"
    assert "flushed" not in kout
    assert marked_corrupt_by_kestrel(k)
    if qemu_refused:
        assert marked_corrupt_by_qemu(q)
        # Where both see the same overlap, they say the same thing.
        first = [ln for ln in qerr.splitlines() if ln.startswith("qcow2: Marking")]
        if first and "overlaps with" in first[0] and "overlaps with" in kerr:
            assert first[0] in kerr, f"QEMU: {first[0]}\nKestrel: {kerr}"


def test_commit_into_hostile_base(corpus, tmp_path):
    base, top = tmp_path / "base.qcow2", tmp_path / "top.qcow2"
    shutil.copy(corpus["l2-on-refblock"], base)
    ok(kimg("create", "-q", "-f", "qcow2", "-b", base.name, "-F", "qcow2", top))
    data = tmp_path / "pattern"
    data.write_bytes(b"\x77" * ho.CS)
    ok(run([BLOCK_IO, "-f", "qcow2", "-d", data, top], input=f"w {ho.CS} {ho.CS} 0\nf\n".encode()))
    before = base.read_bytes()
    rc, out, err = kimg("commit", top)
    assert rc == 1, f"exit {rc}\n{out}\n{err}"
    assert "Marking image as corrupt: Preventing invalid write on metadata (overlaps with " \
           "refcount block)" in err
    assert ho.same_but_corrupt_bit(before, base.read_bytes())
    assert marked_corrupt_by_kestrel(base)
    # The top image keeps what could not be committed.
    raw = tmp_path / "top.raw"
    ok(kimg("convert", "-U", "-O", "raw", top, raw))
    assert raw.read_bytes()[ho.CS:2 * ho.CS] == b"\x77" * ho.CS


def test_rebase_of_hostile_image(corpus, tmp_path):
    """rebase reads the hostile cluster: refused (qemu-img rebase follows it silently)."""
    img, nb = tmp_path / "h.qcow2", tmp_path / "nb.qcow2"
    shutil.copy(corpus["l2-on-refblock"], img)
    ok(kimg("create", "-q", "-f", "qcow2", nb, "16M"))
    before = img.read_bytes()
    rc, out, err = kimg("rebase", "-F", "qcow2", "-b", nb.name, img)
    assert rc == 1, f"exit {rc}\n{out}\n{err}"
    assert "Marking image as corrupt" in err
    assert ho.same_but_corrupt_bit(before, img.read_bytes())
