"""kestrel-img writing into the hostile images of issue #16 defect 4 (tables
that point guest clusters at metadata): convert -n and commit must fail with
a clear error and exit 1, write nothing but the corrupt bit, and leave the
image marked corrupt, as qemu-img and qemu-io do where QEMU's overlap checks
catch the same write."""
import json
import re
import shutil
import struct

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


def test_hostile_corpus_block_pass(tmp_path):
    """The VM pass of test_hostile_vm.py without a vCPU: block-io writes the probe's
    pattern over each corpus image in 64 KiB requests, flushes and reads back.  Each
    image is refused at open, or a write fails, or every byte reads back; and no
    word the writer sent lands in the metadata."""
    hq = pytest.importorskip("hostile_qcow2")
    from test_virtio import pattern
    corpus = tmp_path / "corpus"
    images = hq.generate(str(corpus))
    bad, summary = [], {}
    for name, path, desc in images:
        img = corpus / "work.qcow2"       # beside its backing files
        shutil.copy(path, img)
        rc, out, _ = kimg("info", "--output=json", "-U", img)
        size = json.loads(out)["virtual-size"] if rc == 0 else 4 << 20
        n = min(size, 4 << 20) // 512 * 512
        if not n:
            continue
        data = tmp_path / "pattern"
        data.write_bytes(pattern(11, 0, n))
        chunks = range(0, n, ho.CS)
        req = "".join(f"w {o} {min(ho.CS, n - o)} {o}\n" for o in chunks) + "f\n" + \
            "".join(f"r {o} {min(ho.CS, n - o)} {o}\n" for o in chunks)
        before = img.read_bytes()
        rc, out, err = run([BLOCK_IO, "-f", "qcow2", "-d", data, img], input=req.encode(),
                           cwd=corpus)
        if img.stat().st_size > 64 << 20:     # written far out (at 2^40, say): sparse
            summary["file-grew"] = summary.get("file-grew", 0) + 1
            bad.append(f"{name} ({desc}): the file grew to {img.stat().st_size} bytes")
            continue
        after = img.read_bytes()
        # block-io exits 1 when the open fails, 3 on a mismatch, 2 on a failed request.
        failed = re.search(r"^block-io: .*: ([wfr]) ", err, re.M)
        if rc == 0:
            got = "verified"
        elif rc == 1:
            got = "refused-at-open" if after == before else "refused-but-changed"
        elif rc == 2 and failed and failed.group(1) == "w":
            got = "write-error"
        elif rc == 2 and failed and "qcow2: Marking image as corrupt" in err:
            # A request met damage QEMU also calls corruption (a zero flag in
            # a v2 image): refused loudly, the image marked, nothing read wrong.
            got = "refused-corrupt"
        else:
            got = f"exit {rc} ({failed.group(1) if failed else 'mismatch'})"
        words = set(struct.unpack(f"<{n // 8}Q", data.read_bytes()))
        for off, length in ho.metadata_ranges(after):
            s = off - off % 8
            if any(struct.unpack_from("<Q", after, o)[0] in words
                   for o in range(s, min(off + length, len(after) - 7), 8)):
                got += " data-in-metadata"
                break
        summary[got] = summary.get(got, 0) + 1
        if got not in ("verified", "refused-at-open", "write-error", "refused-corrupt"):
            bad.append(f"{name} ({desc}): {got}\n{err[-400:]}")
    print("hostile corpus block pass:", summary)
    assert not bad, "\n\n".join(bad)
