"""The VM read+write pass over hostile qcow2 images (issue #16): the guest
probe writes a pattern through virtio-blk, flushes and reads it back.  For
every image either Kestrel refuses the image at start, or the probe's write
fails with an I/O error the probe reports, or the data reads back intact;
and no byte the guest wrote lands inside the image's metadata.

Images: the four of defect 4 (hostile_overlap.py, each must be refused with
the image marked corrupt, as QEMU refuses three of them), and the whole
hostile corpus of hostile_qcow2.py (when that module is present).  The
probe invocation is test_virtio.py's, unchanged."""
import concurrent.futures
import json
import shutil
import struct

import pytest

import hostile_overlap as ho
from conftest import need_qemu, probe_lines, qemu
from test_img_helpers import BLOCK_IO, KIMG, kimg
from test_virtio import QEMU_BASE, SECTOR, drive, pattern, run_probe

PATTERN = 11
CORPUS_BYTES = 4 << 20      # the first 4 MiB of each image: the corpus images are that size
DEFECT4_BYTES = 3 * ho.CS   # guest clusters 0-2: the damage sits under cluster 0 or 1


def virtual_size(path):
    rc, out, _ = kimg("info", "--output=json", "-U", path)
    return json.loads(out)["virtual-size"] if rc == 0 else None


def data_in_metadata(image, length):
    """Offsets of pattern words (what the guest wrote) found in the image's metadata."""
    words = set(struct.unpack(f"<{length // 8}Q", pattern(PATTERN, 0, length)))
    hits = []
    for off, n in ho.metadata_ranges(image):
        start = off - off % 8
        for o in range(start, min(off + n, len(image) - 7), 8):
            if struct.unpack_from("<Q", image, o)[0] in words:
                hits.append(o)
                break
    return hits


def outcome(status, out):
    """What the guest saw: refused at start, write refused (IOERR), verified, or other."""
    lines = probe_lines(out)
    if not lines:
        return "refused-at-start" if status != 0 else "no-output"
    if "probe: blk: write status 1" in lines:
        return "write-ioerr"
    if "probe: blk: verified" in lines and "probe: PASS" in lines:
        return "verified"
    return "other"


def guest_pass(probe, img, length):
    """Runs the probe's write pass on img; returns (outcome, probe lines and stderr)."""
    before = img.read_bytes()
    scenario = f"blk-write,pattern={PATTERN},sectors={length // SECTOR},offset=0"
    status, out, err = run_probe(*drive(img, "qcow2"), "-kernel", probe, scenario=scenario)
    got = outcome(status, out)
    after = img.read_bytes()
    why = "\n".join(probe_lines(out)[-6:]) + "\n" + err[-2000:]
    if got == "refused-at-start" and after != before:
        return "refused-but-changed", why
    hits = data_in_metadata(after, length)
    if hits:
        return f"data-in-metadata at {[hex(h) for h in hits[:4]]}", why
    return got, why


@pytest.fixture(scope="module")
def defect4(tmp_path_factory):
    d = tmp_path_factory.mktemp("defect4")
    return {name: path for name, path, _ in ho.images(d, KIMG, BLOCK_IO)}


@pytest.mark.guest
@pytest.mark.parametrize("case", list(ho.TARGET))
def test_defect4_image_refuses_the_guest_write(probe, tmp_path, defect4, case):
    img = tmp_path / "disk.qcow2"
    shutil.copy(defect4[case], img)
    before = img.read_bytes()
    got, why = guest_pass(probe, img, DEFECT4_BYTES)
    assert got == "write-ioerr", f"{case}: {got}\n{why}"
    assert "qcow2: Marking image as corrupt" in why
    assert ho.metadata_unchanged(before, img.read_bytes())
    rc, out, _ = kimg("info", "-U", img)
    assert rc == 0 and "corrupt: true" in out


@pytest.mark.guest
@pytest.mark.qemu
@pytest.mark.parametrize("case", list(ho.TARGET))
def test_defect4_image_side_by_side_with_qemu(probe, tmp_path, defect4, case):
    """Where QEMU's overlap checks refuse the guest's write, Kestrel refuses it too."""
    need_qemu()
    q, k = tmp_path / "q.qcow2", tmp_path / "k.qcow2"
    shutil.copy(defect4[case], q)
    shutil.copy(defect4[case], k)
    scenario = f"probe=blk-write,pattern={PATTERN},sectors={DEFECT4_BYTES // SECTOR},offset=0"
    status, out, err = qemu(*QEMU_BASE, *drive(q, "qcow2"), "-kernel", probe, "-append",
                            scenario)
    qemu_got = outcome(status, out)
    kestrel_got, why = guest_pass(probe, k, DEFECT4_BYTES)
    assert kestrel_got == "write-ioerr", why
    if qemu_got == "write-ioerr":
        assert "Marking image as corrupt" in err, err


def corpus_one(probe, corpus, name, path):
    """One image of the corpus in its own VM: (outcome, details)."""
    # A copy beside the original: backing files (NAME.base*) resolve the same way.
    img = corpus / f"work-{name}.qcow2"
    shutil.copy(path, img)
    size = virtual_size(img)
    length = min(size if size is not None else CORPUS_BYTES, CORPUS_BYTES)
    length -= length % SECTOR
    if length == 0:
        return "no sector to write", ""
    try:
        return guest_pass(probe, img, length)
    finally:
        img.unlink()


@pytest.mark.guest
def test_hostile_corpus_vm_pass(probe, tmp_path):
    """Every image of the corpus, one VM each (four at a time), CORPUS_BYTES per image."""
    hq = pytest.importorskip("hostile_qcow2")
    corpus = tmp_path / "corpus"
    images = hq.generate(str(corpus))
    assert len(images) >= 100
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda im: corpus_one(probe, corpus, im[0], im[1]), images))
    bad, summary = [], {}
    for (name, _, desc), (got, why) in zip(images, results):
        summary[got] = summary.get(got, 0) + 1
        if got not in ("refused-at-start", "write-ioerr", "verified", "no sector to write"):
            bad.append(f"{name} ({desc}): {got}\n{why}")
    print("hostile corpus VM pass:", json.dumps(summary, sort_keys=True))
    assert not bad, "\n\n".join(bad)
