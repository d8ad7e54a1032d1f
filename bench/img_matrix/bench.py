#!/usr/bin/env python3
"""bench/img_matrix: the total run time of the differential matrix
(tests/system/img_matrix.py, the cases of test_img_differential.py) with
kestrel-img and with qemu-img 7.2, per command and in all (goal: kestrel-img
at most 0.7x qemu-img's time, issue 25).

Each case runs on fresh copies of its input, one case at a time (no
parallelism to disturb the clock); only the commands under test are timed,
not the fixtures or copies.  With --runs N every case runs N times and the
best time of each tool counts.  "agree" rows count only the cases where both
tools give the same exit status and output, so that a command kestrel-img
refuses early cannot flatter it."""
import argparse
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "system"))
import img_matrix  # noqa: E402

COMMANDS = ("amend", "bench", "bitmap", "check", "commit", "compare", "convert", "create", "dd",
            "info", "map", "measure", "rebase", "resize", "snapshot")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1, help="runs per case (best counts)")
    ap.add_argument("--only", metavar="REGEX", help="cases whose id matches")
    ap.add_argument("-j", type=int, default=1, help="parallel cases (default 1)")
    a = ap.parse_args()
    if not img_matrix.KIMG.exists():
        sys.exit(f"{img_matrix.KIMG} is not built (make build)")
    cases = [c for c in img_matrix.CASES if not a.only or re.search(a.only, c.id)]
    best = {}
    t0 = time.monotonic()
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="img-matrix-bench-",
                                         dir=img_matrix.scratch_dir()) as root:
            results, _ = img_matrix.run_matrix(cases, root, a.j, files=False)
        for cid, r in results.items():
            q, k = best.get(cid, (r.q.t, r.k.t, r.differs))[:2]
            best[cid] = (min(q, r.q.t), min(k, r.k.t), r.differs)
    took = time.monotonic() - t0
    rows = defaultdict(lambda: [0, 0.0, 0.0, 0, 0.0, 0.0])
    for c in cases:
        q, k, differs = best[c.id]
        group = ("hostile (5 commands)" if c.fixture.startswith("h-") else
                 c.command if c.command in COMMANDS else "(top level)")
        for g in (group, "all"):
            row = rows[g]
            row[0] += 1
            row[1] += q
            row[2] += k
            if not differs:
                row[3] += 1
                row[4] += q
                row[5] += k
    print(f"{len(cases)} cases, {a.runs} run(s) each, {a.j} at a time; {took:.0f} s in all; "
          f"host: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
    print(f"| {'command':20s} | {'cases':>5s} | {'qemu-img s':>10s} | {'kestrel-img s':>13s} | "
          f"{'k/q':>5s} | {'agree':>5s} | {'q agree s':>9s} | {'k agree s':>9s} | {'k/q':>5s} |")
    print("|" + "|".join("-" * (w + 2) for w in (20, 5, 10, 13, 5, 5, 9, 9, 5)) + "|")
    order = sorted((g for g in rows if g != "all"), key=lambda g: -rows[g][1]) + ["all"]
    for g in order:
        n, q, k, na, qa, ka = rows[g]
        ratio = f"{k / q:5.2f}" if q else "    -"
        ratio_a = f"{ka / qa:5.2f}" if qa else "    -"
        print(f"| {g:20s} | {n:5d} | {q:10.2f} | {k:13.2f} | {ratio} | {na:5d} | {qa:9.2f} | "
              f"{ka:9.2f} | {ratio_a} |")
    print("\nk/q = kestrel-img time / qemu-img time (goal <= 0.70); agree: cases where both "
          "tools give the same exit status and output\n(the files left behind are not "
          "compared here; test_img_differential.py does).")


if __name__ == "__main__":
    main()
