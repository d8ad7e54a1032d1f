#!/usr/bin/env python3
"""Crash campaign over the kestrel-img operations that change an image.

Each operation runs on a copy of a prepared image set and is crashed:
  - at write/flush points it picks: KESTREL_CRASH_AFTER_WRITES=N
    (src/block/crashpoint.c) ends kestrel-img with _exit() before its
    (N+1)th write, flush, truncate or fallocate, as kill -9 there would;
    every point when there are at most `trials` of them, else an even spread;
  - and by real kill -9 at random moments (`kills` trials).
After each crash `qemu-img check` and `kestrel-img check` run on every image
the operation writes: they must agree (exit status, corruptions, leaks,
check errors), and what a reader sees (qemu-img convert, the reference
reader) must be the data from before the operation or, where the operation
changes it, from after.  Outcome per trial: clean, leaks only, corrupt,
data-lost (the checkers are content but the data is wrong) or disagree.

tests/system/test_img_crash.py runs a bounded smoke version of every
operation; `make crash-campaign` runs this file as a script with more
trials and prints the table for the closing note.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / os.environ.get("KESTREL_BUILD", "build")
KIMG = BUILD / "src" / "block" / "kestrel-img"
CRASH_EXIT = 86		# BLOCK_CRASH_EXIT in src/block/block_int.h
OUTCOMES = ("clean", "leaks only", "corrupt", "data-lost", "disagree")
MIB = 1 << 20
SIZE = 8 * MIB


SANITIZER_REPORT = re.compile(r"ERROR: (Leak|Address)Sanitizer|runtime error: ")


def run(argv, env=None, timeout=120):
    p = subprocess.run([str(a) for a in argv], capture_output=True, env=env, timeout=timeout)
    err = p.stderr.decode(errors="replace")
    # Under the sanitizer build (make test runs the img tests there) a report fails.
    if SANITIZER_REPORT.search(err):
        raise RuntimeError(f"{argv[0]}: sanitizer report\n{err}")
    return p.returncode, p.stdout, err


def must(argv):
    rc, out, err = run(argv)
    if rc != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {rc}\n{err}")
    return out


def qio(img, *cmds):
    argv = ["qemu-io", "-f", "qcow2"]
    for c in cmds:
        argv += ["-c", c]
    must(argv + [img])


def view(img, snapshot=None, fmt="qcow2"):
    """The guest-visible bytes, read by qemu-img (the reference reader)."""
    with tempfile.NamedTemporaryFile(dir=Path(img).parent, suffix=".raw") as t:
        argv = ["qemu-img", "convert", "-f", fmt, "-O", "raw"]
        if snapshot:
            argv += ["-l", f"snapshot.name={snapshot}"]
        must(argv + [img, t.name])
        return Path(t.name).read_bytes()


def random_raw(path, size, seed, regions=30):
    """Random, compressible and zero regions; returns the bytes."""
    rnd = random.Random(seed)
    data = bytearray(size)
    for _ in range(regions):
        off = rnd.randrange(0, size - 1)
        n = min(rnd.randrange(512, 400000), size - off)
        if rnd.random() < 0.6:
            data[off:off + n] = rnd.randbytes(n)
        else:
            data[off:off + n] = (b"kestrel!" * (n // 8 + 1))[:n]
    Path(path).write_bytes(bytes(data))
    return bytes(data)


def qcow2_from(raw, img, opts="cluster_size=65536"):
    must(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw, img])


def snapshots(img):
    """Snapshot names the image lists, as qemu-img reads the table."""
    rc, out, _ = run(["qemu-img", "snapshot", "-l", img])
    if rc != 0:
        return None
    lines = out.decode().splitlines()[2:]
    return [l.split()[1] for l in lines if l.split()]


def check(tool, img):
    """(exit status, corruptions, leaks, check errors) of one checker."""
    argv = [KIMG if tool == "kestrel" else "qemu-img", "check", "--output=json", img]
    rc, out, err = run(argv)
    try:
        j = json.loads(out)
    except ValueError:
        return (rc, None, None, None), err
    return (rc, j.get("corruptions", 0), j.get("leaks", 0), j.get("check-errors", 0)), \
        out.decode() + err


def verdict(images):
    """Outcome of the checks over all images, and a note when it is not clean."""
    worst, notes = "clean", []
    for img in images:
        q, qtext = check("qemu", img)
        k, ktext = check("kestrel", img)
        if q != k:
            return "disagree", f"{img.name}: qemu-img {q} kestrel-img {k}\n{qtext}\n{ktext}"
        if q[0] == 3 and q[1] == 0 and q[3] == 0:
            if worst == "clean":
                worst = "leaks only"
        elif q[0] != 0 or q[1]:
            return "corrupt", f"{img.name}: {q}\n{qtext}"
    return worst, "\n".join(notes)


def blocks_each_either(got, a, b, grain=512):
    """Whether every grain-sized block of got is that block of a or of b."""
    if len(got) != len(a) or len(a) != len(b):
        return False
    for off in range(0, len(got), 65536):
        g = got[off:off + 65536]
        if g == a[off:off + 65536] or g == b[off:off + 65536]:
            continue
        for o in range(off, min(off + 65536, len(got)), grain):
            g = got[o:o + grain]
            if g != a[o:o + grain] and g != b[o:o + grain]:
                return False
    return True


class Scenario:
    """An operation: the image set it starts from, its command, and what must hold after."""
    name = ""
    kills = True

    def prepare(self, d):
        """Builds the images in d; stores what verify needs on self."""
        raise NotImplementedError

    def argv(self, d):
        raise NotImplementedError

    def written(self, d):
        """The images the operation writes (and the checkers look at)."""
        return [d / "img.qcow2"]

    def verify(self, d):
        """None when the data is right, else what is wrong."""
        raise NotImplementedError


class SnapshotBase(Scenario):
    """An image with data (plain, compressed, zero clusters) and snapshots A and B."""

    def __init__(self, opts="cluster_size=65536", size=SIZE):
        self.opts, self.size = opts, size
        if opts != "cluster_size=65536":
            self.name += f" ({opts})"

    def prepare(self, d):
        img = d / "img.qcow2"
        m = self.size // 8
        cl = int(self.opts.split("cluster_size=")[1].split(",")[0])
        random_raw(d / "a.raw", self.size, 1)
        qcow2_from(d / "a.raw", img, self.opts)
        # Compressed writes need an unallocated cluster: discard makes one.
        qio(img, f"discard {6 * m} {cl}", f"write -c -P 0x5a {6 * m} {cl}",
            f"write -z {5 * m} {m // 4}")
        must(["qemu-img", "snapshot", "-c", "A", img])
        qio(img, f"write -P 0x21 {m} {m}", f"write -z 0 {m // 8}", f"discard {7 * m} {cl}",
            f"write -c -P 0x33 {7 * m} {cl}")
        must(["qemu-img", "snapshot", "-c", "B", img])
        qio(img, f"write -P 0x31 {2 * m} {3 * m}", f"write -P 0x32 {7 * m + 512} 512")
        self.views = {s: view(img, s) for s in ("A", "B")}
        self.active = view(img)

    def snapshots_intact(self, img, extra=None):
        names = snapshots(img)
        if names is None:
            return "snapshot -l fails"
        want = dict(self.views)
        if extra:
            want.update(extra)
        for n in names:
            if n not in want:
                return f"unexpected snapshot {n}"
            if view(img, n) != want[n]:
                return f"snapshot {n} reads wrong"
        return None


class SnapshotCreate(SnapshotBase):
    name = "snapshot -c"

    def argv(self, d):
        return [KIMG, "snapshot", "-c", "C", d / "img.qcow2"]

    def verify(self, d):
        img = d / "img.qcow2"
        if view(img) != self.active:
            return "active view changed"
        names = snapshots(img) or []
        if "A" not in names or "B" not in names:
            return f"snapshots lost: {names}"
        return self.snapshots_intact(img, {"C": self.active})


class SnapshotDelete(SnapshotBase):
    name = "snapshot -d"

    def argv(self, d):
        return [KIMG, "snapshot", "-d", "A", d / "img.qcow2"]

    def verify(self, d):
        img = d / "img.qcow2"
        if view(img) != self.active:
            return "active view changed"
        if "B" not in (snapshots(img) or []):
            return "snapshot B lost"
        return self.snapshots_intact(img)


class SnapshotApply(SnapshotBase):
    name = "snapshot -a"

    def argv(self, d):
        return [KIMG, "snapshot", "-a", "A", d / "img.qcow2"]

    def verify(self, d):
        img = d / "img.qcow2"
        if view(img) not in (self.active, self.views["A"]):
            return "active view is neither before nor after"
        if sorted(snapshots(img) or []) != ["A", "B"]:
            return "snapshots lost"
        return self.snapshots_intact(img)


# Snapshot variants: many small tables and a refcount table that must grow
# inside the transaction (512-byte clusters, 64-bit refcounts), and v2.
SNAPSHOT_VARIANTS = [("cluster_size=65536", SIZE),
                     ("cluster_size=512,refcount_bits=64", 1 * MIB),
                     ("compat=0.10,cluster_size=4096", 2 * MIB)]


def snapshot_scenarios(variants=SNAPSHOT_VARIANTS):
    return [cls(opts, size) for opts, size in variants
            for cls in (SnapshotCreate, SnapshotDelete, SnapshotApply)]


class Convert(Scenario):
    name = "convert"

    def __init__(self, compress=False):
        self.compress = compress
        if compress:
            self.name = "convert -c"

    def prepare(self, d):
        self.data = random_raw(d / "src.raw", SIZE, 2, regions=60)
        must(["qemu-img", "create", "-q", "-f", "qcow2", d / "img.qcow2", str(SIZE)])
        qio(d / "img.qcow2", "write -P 0x77 0 1M")
        self.old = view(d / "img.qcow2")

    def argv(self, d):
        return [KIMG, "convert", "-n", "-t", "writeback", "-O", "qcow2",
                *(["-c"] if self.compress else []), d / "src.raw", d / "img.qcow2"]

    def verify(self, d):
        if not blocks_each_either(view(d / "img.qcow2"), self.data, self.old):
            return "a block is neither the source nor what was there"
        return None


class Commit(Scenario):
    name = "commit"

    def prepare(self, d):
        random_raw(d / "b.raw", SIZE, 3)
        qcow2_from(d / "b.raw", d / "base.qcow2")
        must(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
              d / "top.qcow2"])
        qio(d / "top.qcow2", "write -P 0x44 1M 2M", "write -z 4M 1M", "write -P 0x45 6M 300k",
            "write -c -P 0x46 7M 64k")
        self.base = view(d / "base.qcow2")
        self.top = view(d / "top.qcow2")

    def argv(self, d):
        return [KIMG, "commit", "-t", "writeback", d / "top.qcow2"]

    def written(self, d):
        return [d / "base.qcow2", d / "top.qcow2"]

    def verify(self, d):
        if view(d / "top.qcow2") != self.top:
            return "the overlay's view changed"
        if not blocks_each_either(view(d / "base.qcow2"), self.base, self.top):
            return "base holds data from neither side"
        return None


class Rebase(Scenario):
    name = "rebase"

    def prepare(self, d):
        random_raw(d / "o.raw", SIZE, 4)
        random_raw(d / "n.raw", SIZE, 5)
        qcow2_from(d / "o.raw", d / "old.qcow2")
        qcow2_from(d / "n.raw", d / "new.qcow2")
        must(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "old.qcow2", "-F", "qcow2",
              d / "img.qcow2"])
        qio(d / "img.qcow2", "write -P 0x44 1M 1M", "write -z 3M 512k")
        self.top = view(d / "img.qcow2")

    def argv(self, d):
        return [KIMG, "rebase", "-t", "writeback", "-b", "new.qcow2", "-F", "qcow2",
                d / "img.qcow2"]

    def verify(self, d):
        if view(d / "img.qcow2") != self.top:
            return "the image's view changed"
        return None


class Resize(Scenario):
    def __init__(self, delta, extra=()):
        self.delta, self.extra = delta, list(extra)
        self.name = "resize " + " ".join(self.extra + [delta])

    def prepare(self, d):
        self.data = random_raw(d / "a.raw", SIZE, 6)
        qcow2_from(d / "a.raw", d / "img.qcow2", "cluster_size=4096")
        must(["qemu-img", "snapshot", "-c", "S", d / "img.qcow2"])
        qio(d / "img.qcow2", "write -P 0x61 0 64k")
        self.active = view(d / "img.qcow2")

    def argv(self, d):
        return [KIMG, "resize", *self.extra, d / "img.qcow2", self.delta]

    def verify(self, d):
        got = view(d / "img.qcow2")
        old = len(self.active)
        new = old + int(self.delta[:-1]) * MIB
        if len(got) not in (old, new):
            return f"size {len(got)} is neither {old} nor {new}"
        keep = min(old, new)
        if got[:keep] != self.active[:keep]:
            return "data below the smaller size changed"
        # Growing: the new part reads as zeroes.  Shrinking drops the tail
        # first (as QEMU does), so before the size changes it may read as zeroes.
        tail = got[keep:]
        if new > old and tail != bytes(len(tail)):
            return "the grown part does not read as zeroes"
        if new < old and tail and \
                not blocks_each_either(tail, self.active[keep:], bytes(len(tail))):
            return "the part to drop holds something else"
        snap = view(d / "img.qcow2", "S")	# qemu-img reads it at the current size
        n = min(len(snap), len(self.data))
        if snap[:n] != self.data[:n] or snap[n:] != bytes(len(snap) - n):
            return "the snapshot changed"
        return None


class Amend(Scenario):
    def __init__(self, opts, create="compat=1.1"):
        self.opts, self.create = opts, create
        self.name = f"amend {opts}"

    def prepare(self, d):
        random_raw(d / "a.raw", SIZE, 7)
        qcow2_from(d / "a.raw", d / "img.qcow2", self.create + ",cluster_size=4096")
        if "compat=1.1" in self.create:
            qio(d / "img.qcow2", "write -z 1M 256k", "write -z -u 2M 64k")
        qio(d / "img.qcow2", "write -c -P 0x55 3M 4k")
        self.active = view(d / "img.qcow2")

    def argv(self, d):
        return [KIMG, "amend", "-o", self.opts, d / "img.qcow2"]

    def verify(self, d):
        if view(d / "img.qcow2") != self.active:
            return "the image's view changed"
        return None


def scenarios():
    return [*snapshot_scenarios(), Convert(), Convert(True),
            Commit(), Rebase(), Resize("+8M"), Resize("-4M", ["--shrink"]),
            Resize("+4M", ["--preallocation=metadata"]),
            Amend("compat=0.10"), Amend("compat=1.1", "compat=0.10"),
            Amend("lazy_refcounts=on"), Amend("refcount_bits=8")]


class Result:
    def __init__(self, name):
        self.name = name
        self.points = 0		# write/flush points the operation has
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.injected = 0
        self.killed = 0
        self.failures = []	# (trial, outcome, note)

    def add(self, trial, outcome, note):
        self.counts[outcome] += 1
        if outcome not in ("clean", "leaks only"):
            self.failures.append((trial, outcome, note))


def trial_dir(base, work):
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work)
    return work


def judge(sc, work):
    outcome, note = verdict(sc.written(work))
    if outcome in ("corrupt", "disagree"):
        return outcome, note
    try:
        wrong = sc.verify(work)
    except RuntimeError as e:
        wrong = str(e)
    if wrong:
        return "data-lost", wrong
    return outcome, note


def points_to_try(n, trials):
    """All points, or the first and last few (where tables are set up and
    the header switches) and an even spread of the rest: `trials` of them."""
    if n <= trials:
        return list(range(n))
    ends = max(1, trials // 4)
    rest = list(range(ends, n - ends))
    k = trials - 2 * ends
    spread = {rest[i * (len(rest) - 1) // max(1, k - 1)] for i in range(k)} if k > 0 else set()
    return sorted(set(range(ends)) | set(range(n - ends, n)) | spread)


def run_scenario(sc, tmp, trials, kills, seed=0):
    """Crashes sc at up to `trials` write points and `kills` random moments."""
    res = Result(sc.name)
    base = Path(tmp) / "base"
    base.mkdir(parents=True)
    sc.prepare(base)
    # One full run: how many points there are, how long it takes, and a clean end.
    work = trial_dir(base, Path(tmp) / "full")
    env = dict(os.environ, KESTREL_CRASH_AFTER_WRITES="count")
    t0 = time.monotonic()
    rc, _, err = run(sc.argv(work), env=env)
    took = time.monotonic() - t0
    if rc != 0 or "crash points: " not in err:
        raise RuntimeError(f"{sc.name}: the uncrashed run failed: exit {rc}\n{err}")
    res.points = int(err.split("crash points: ")[1].split()[0])
    outcome, note = judge(sc, work)
    if outcome != "clean":
        res.failures.append(("uncrashed", outcome, note))
    for n in points_to_try(res.points, trials):
        work = trial_dir(base, Path(tmp) / "t")
        rc, _, err = run(sc.argv(work), env=dict(os.environ, KESTREL_CRASH_AFTER_WRITES=str(n)))
        if rc != CRASH_EXIT:
            res.failures.append((f"point {n}", "no crash", f"exit {rc}\n{err}"))
            continue
        res.injected += 1
        res.add(f"point {n}", *judge(sc, work))
    rnd = random.Random(seed)
    for i in range(kills if sc.kills else 0):
        work = trial_dir(base, Path(tmp) / "t")
        p = subprocess.Popen([str(a) for a in sc.argv(work)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0, took * 1.1))
        p.send_signal(signal.SIGKILL)
        p.wait()
        res.killed += 1
        res.add(f"kill -9 #{i}", *judge(sc, work))
    return res


def table(results):
    head = ["operation", "points", "trials", *OUTCOMES]
    rows = [[r.name, str(r.points), f"{r.injected}+{r.killed}",
             *[str(r.counts[o]) for o in OUTCOMES]] for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    out.append("points: write/flush/truncate points of one uncrashed run; trials: "
               "injected crashes (KESTREL_CRASH_AFTER_WRITES) + real kill -9")
    return "\n".join(out)


def scratch_dir():
    """tmpfs when there is one: the trials sync a lot and only crashes matter here."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200,
                    help="crash points per operation (all when there are fewer)")
    ap.add_argument("--kills", type=int, default=20, help="real kill -9 trials per operation")
    ap.add_argument("--only", help="operations whose name contains this")
    a = ap.parse_args()
    results, bad = [], 0
    for sc in scenarios():
        if a.only and a.only not in sc.name:
            continue
        with tempfile.TemporaryDirectory(dir=scratch_dir()) as tmp:
            r = run_scenario(sc, tmp, a.trials, a.kills)
        results.append(r)
        for trial, outcome, note in r.failures[:3]:
            print(f"{r.name}: {trial}: {outcome}: {note[:2000]}", file=sys.stderr)
        bad += len(r.failures)
        print(f"{r.name}: {r.injected} injected + {r.killed} kill -9 trials", file=sys.stderr)
    print(table(results))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
