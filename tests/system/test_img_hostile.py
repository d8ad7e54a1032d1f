"""kestrel-img and qemu-img 7.2 side by side on the hostile qcow2 corpus
(hostile_qcow2.py, several hundred images damaged in distinct ways): info,
check, check -r all (each tool on its own copy), convert -O raw and map on
every image.

kestrel-img must never crash (exit status below 128, no sanitizer report),
stay within 10x qemu-img's time (40x for a sanitizer build) and an absolute
limit, and its check must find at least what qemu-img's finds: at least as
many corruptions, and never "clean" where qemu-img reports an error. After check -r all, kestrel-img's
copy must be clean for qemu-img check wherever qemu-img's own repair left
its copy clean. Where both convert an image qemu-img calls free of
corruptions, they must read the same data.

kestrel-img check does not open backing files; where qemu-img check cannot
open an image for a reason in its backing chain (missing, a loop on which
qemu-img 7.2 hangs), the reference is qemu-img check with "backing": null.

The per-image table goes to build/hostile-qcow2-summary.txt; the totals per
kind of damage are printed (pytest -s shows them)."""
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter, defaultdict

import pytest

import hostile_qcow2
from test_img_helpers import BUILD, KIMG, SANITIZER_REPORT, needs_build, needs_qemu_img

pytestmark = [needs_build, needs_qemu_img]

K_LIMIT = 60        # seconds: no kestrel-img command may take longer, whatever qemu-img does
Q_LIMIT = 8         # qemu-img 7.2 hangs on backing loops: past this it counts as hung
SANITIZED = b"__asan_init" in KIMG.read_bytes() if KIMG.exists() else False
# kestrel-img may take 10x qemu-img's time (a sanitizer build 40x: the
# instrumentation alone costs 2-5x, and more on a loaded host)...
SLOWER = 40 if SANITIZED else 10
FLOOR = 5.0 if SANITIZED else 1.0   # ...or this, below which the times are noise
SUMMARY = BUILD / "hostile-qcow2-summary.txt"


def tool(argv, limit):
    """Runs one command: {rc, out, err, t}; rc is None when it ran past limit."""
    start = time.monotonic()
    try:
        p = subprocess.run([str(a) for a in argv], capture_output=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"rc": None, "out": "", "err": "", "t": time.monotonic() - start}
    return {"rc": p.returncode, "out": p.stdout.decode(errors="replace"),
            "err": p.stderr.decode(errors="replace"), "t": time.monotonic() - start}


def check_json(res):
    """The ImageCheck object, also with exit 1 (check errors); None when refused."""
    try:
        return json.loads(res["out"]) if res["rc"] is not None else None
    except ValueError:
        return None


def nb_snapshots(path):
    with open(path, "rb") as f:
        f.seek(60)
        return int.from_bytes(f.read(4), "big")


def no_backing(path):
    """The image as qemu-img opens it without its backing chain (as kestrel-img check does)."""
    return "json:" + json.dumps({"driver": "qcow2", "backing": None,
                                 "file": {"driver": "file", "filename": str(path)}})


class Image:
    """One corpus image through both tools; failures collects what went wrong."""

    def __init__(self, name, path, desc):
        self.name, self.path, self.desc = name, path, desc
        self.failures = []
        self.times = []

    def both(self, what, kargs, qargs=None):
        k = tool([KIMG, *kargs], K_LIMIT)
        q = tool(["qemu-img", *(qargs or kargs)], Q_LIMIT)
        if k["rc"] is None:
            self.failures.append(f"{what}: kestrel-img ran past {K_LIMIT} s")
        elif k["rc"] < 0 or k["rc"] >= 128:
            self.failures.append(f"{what}: kestrel-img exit {k['rc']}\n{k['err'][-2000:]}")
        if SANITIZER_REPORT.search(k["err"]):
            self.failures.append(f"{what}: sanitizer report\n{k['err'][-4000:]}")
        limit = max(SLOWER * q["t"], FLOOR) if q["rc"] is not None else K_LIMIT
        if k["t"] > limit:
            self.failures.append(f"{what}: kestrel-img took {k['t']:.2f} s, qemu-img "
                                 f"{q['t']:.2f} s")
        self.times.append((k["t"], q["t"] if q["rc"] is not None else None))
        return k, q

    def run(self):
        p = self.path
        self.info = self.both("info", ["info", "--output=json", p])
        self.map = self.both("map", ["map", "--output=json", p])
        self.check()
        self.repair()
        self.convert()
        return self

    def check(self):
        k, q = self.both("check", ["check", "--output=json", self.path])
        self.k, self.q, self.q_ref = check_json(k), check_json(q), "plain"
        self.k_rc, self.q_rc = k["rc"], q["rc"]
        if self.q is None:
            # Refused or hung on its backing chain? Then the image alone is the reference.
            nb = tool(["qemu-img", "check", "--output=json", no_backing(self.path)], Q_LIMIT)
            if check_json(nb) is not None:
                self.q, self.q_rc, self.q_ref = check_json(nb), nb["rc"], "no-backing"
        if self.q is None:
            return
        qc = self.q.get("corruptions", 0)
        q_finds = self.q_rc != 0
        if q_finds and self.k_rc == 0:
            self.failures.append(f"check: kestrel-img says clean, qemu-img exit {self.q_rc} "
                                 f"({self.q})\n{k['err'][-1000:]}")
        if self.k is None and q_finds:
            self.failures.append(f"check: kestrel-img refused (exit {self.k_rc}) what qemu-img "
                                 f"checks: {k['err'][-500:]}")
        if self.k is not None and self.k.get("corruptions", 0) < qc:
            self.failures.append(f"check: kestrel-img finds {self.k.get('corruptions', 0)} "
                                 f"corruptions, qemu-img {qc}\nkestrel-img:\n{k['err'][-3000:]}"
                                 f"\nqemu-img:\n{q['err'][-3000:]}")

    def repair(self):
        kcopy, qcopy = f"{self.path}.k-repaired", f"{self.path}.q-repaired"
        shutil.copyfile(self.path, kcopy)
        shutil.copyfile(self.path, qcopy)
        self.both("check -r all", ["check", "-r", "all", kcopy], ["check", "-r", "all", qcopy])
        q_after = tool(["qemu-img", "check", "--output=json", qcopy], Q_LIMIT)
        k_after = tool(["qemu-img", "check", "--output=json", kcopy], Q_LIMIT)
        if q_after["rc"] is None or check_json(q_after) is None:
            q_after = tool(["qemu-img", "check", "--output=json", no_backing(qcopy)], Q_LIMIT)
            k_after = tool(["qemu-img", "check", "--output=json", no_backing(kcopy)], Q_LIMIT)
        self.q_repaired, self.k_repaired = q_after["rc"], k_after["rc"]
        # qemu-img 7.2's repair of an image with persistent bitmaps drops its
        # snapshot table (the header it rewrites on opening has none): clean
        # by losing the snapshots is no standard to hold kestrel-img to.
        self.q_dropped = (self.q_repaired == 0 and
                          nb_snapshots(qcopy) < nb_snapshots(self.path) <= nb_snapshots(kcopy))
        if self.q_repaired == 0 and self.k_repaired != 0 and not self.q_dropped:
            self.failures.append(f"check -r all: qemu-img's repair leaves its copy clean, "
                                 f"kestrel-img's copy is not (qemu-img check exit "
                                 f"{self.k_repaired})\n{k_after['err'][-3000:]}")
        os.unlink(kcopy)
        os.unlink(qcopy)

    def convert(self):
        kout, qout = f"{self.path}.k.raw", f"{self.path}.q.raw"
        k, q = self.both("convert", ["convert", "-O", "raw", self.path, kout],
                         ["convert", "-O", "raw", self.path, qout])
        self.convert_rc = (k["rc"], q["rc"])
        self.same_data = None
        if k["rc"] == 0 and q["rc"] == 0:
            self.same_data = digest(kout) == digest(qout)
            clean = self.q is not None and not self.q.get("corruptions")
            if clean and not self.same_data:
                self.failures.append("convert: kestrel-img and qemu-img read different data "
                                     "from an image qemu-img check finds no corruption in")
        for f in (kout, qout):
            if os.path.exists(f):
                os.unlink(f)

    def row(self):
        def counts(j, rc):
            if j is None:
                return "refused" if rc is not None else "hung"
            return "c%d/l%d/e%d" % (j.get("corruptions", 0), j.get("leaks", 0),
                                    j.get("check-errors", 0))
        ratio = max((k / q for k, q in self.times if q), default=0.0)
        return (self.name, counts(self.q, self.q_rc) + ("*" if self.q_ref != "plain" else ""),
                counts(self.k, self.k_rc), self.outcome(),
                repair_word(self.q_repaired) + ("!" if self.q_dropped else ""),
                repair_word(self.k_repaired), {None: "-", True: "same", False: "differ"}
                [self.same_data], "%.1f" % ratio)

    def outcome(self):
        if self.q is None:
            if self.k is None:
                return "both-refuse"
            return "q-refuses" if self.k_rc == 0 else "q-refuses,k-finds"
        kc, qc = (self.k or {}).get("corruptions", 0), self.q.get("corruptions", 0)
        if self.q_rc == 0 and self.k_rc == 0:
            return "both-clean"
        if self.k is None:
            return "k-refuses"
        if self.q_rc == 0:
            return "k-finds-more"
        return "k-finds-more" if kc > qc else "same-count" if kc == qc else "k-finds-fewer"


def repair_word(rc):
    """qemu-img check's verdict on a repaired copy (1: check errors, or it cannot open it)."""
    return {0: "clean", None: "hung", 1: "error"}.get(rc, "dirty")


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_summary(images):
    rows = [im.row() for im in images]
    head = ("image", "qemu-img check", "kestrel-img check", "outcome", "q -r all",
            "k -r all", "convert", "k/q time")
    width = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, width)).rstrip()
    SUMMARY.write_text("\n".join([line(head)] + [line(r) for r in rows]) + "\n"
                       "\n* qemu-img could not open the image with its backing chain; "
                       "checked without it, as kestrel-img check does\n"
                       "! qemu-img's repair dropped the snapshot table\n")
    by_kind = defaultdict(Counter)
    for im in images:
        by_kind[im.name.split("-")[0]][im.outcome()] += 1
    kinds = sorted(by_kind)
    outcomes = sorted({o for c in by_kind.values() for o in c})
    table = ["kind       images  " + "  ".join(outcomes)]
    for kind in kinds:
        c = by_kind[kind]
        table.append(f"{kind:<10} {sum(c.values()):>6}  " +
                     "  ".join(f"{c.get(o, 0):>{len(o)}}" for o in outcomes))
    total = Counter(o for im in images for o in [im.outcome()])
    table.append(f"{'total':<10} {len(images):>6}  " +
                 "  ".join(f"{total.get(o, 0):>{len(o)}}" for o in outcomes))
    repairs = Counter((repair_word(im.q_repaired), repair_word(im.k_repaired)) for im in images)
    table.append("check -r all (qemu-img's copy, kestrel-img's copy), per qemu-img check: " +
                 ", ".join(f"{q}/{k} {n}" for (q, k), n in sorted(repairs.items())))
    converts = Counter({None: "-", True: "same", False: "differ"}[im.same_data]
                       for im in images)
    table.append("convert -O raw, both succeeded: " +
                 ", ".join(f"{k} {n}" for k, n in sorted(converts.items())))
    return "\n".join(table)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    return hostile_qcow2.generate(str(d)), d


def test_corpus_is_large_and_distinct(corpus):
    images, d = corpus
    assert len(images) >= 100
    assert len({n for n, _, _ in images}) == len(images)
    contents = {digest(p) for _, p, _ in images}
    assert len(contents) == len(images), "two damages produced the same image"


def test_bases_are_clean(tmp_path):
    """The undamaged layouts are valid: both tools call them clean."""
    for name, path, _ in hostile_qcow2.generate_bases(str(tmp_path)):
        q = tool(["qemu-img", "check", path], Q_LIMIT)
        k = tool([KIMG, "check", path], K_LIMIT)
        assert q["rc"] == 0 and k["rc"] == 0, (name, q["err"], k["err"])


def test_hostile_images(corpus):
    images, d = corpus
    # KESTREL_HOSTILE_STRIDE=N runs every Nth image only, for a quick look.
    images = images[::int(os.environ.get("KESTREL_HOSTILE_STRIDE", "1"))]
    jobs = max(2, min(8, 2 * (os.cpu_count() or 1)))
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        done = list(pool.map(lambda item: Image(*item).run(), images))
    totals = write_summary(done)
    print(f"\nhostile qcow2 corpus: {len(done)} images; per image: {SUMMARY}\n{totals}")
    failures = [f"{im.name} ({im.desc}): {f}" for im in done for f in im.failures]
    if failures:
        with open(SUMMARY, "a") as f:
            f.write("\nFAILURES\n" + "\n\n".join(failures) + "\n")
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:30])
