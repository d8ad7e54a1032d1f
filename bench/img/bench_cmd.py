#!/usr/bin/env python3
"""bench/img/bench_cmd.py: `kestrel-img bench` against `qemu-img bench`, same options.

Rows: read, rewrite (a preallocated image) and alloc (allocating writes to a
fresh image), for raw and qcow2, cache none (-t none, O_DIRECT) and the
default (writeback), with each aio engine: threads (the default), io_uring
(-i io_uring) and native (-n: Linux AIO; -t none only, as qemu-img demands).
Every run is `bench -d DEPTH -s 4k -c COUNT` (qemu-img's default step: the
requests walk the image in order).  Rounds interleave the tools and the rows,
the first tool alternating, so that a busy host slows both alike; the table
gives the median IOPS of the rounds (count / the "Run completed in" time).

ratio = kestrel-img IOPS / qemu-img IOPS: above 1.00 kestrel-img is faster.
A row a tool refuses says so instead of a number."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DONE = re.compile(rb"Run completed in (\d+\.\d+) seconds")


def run_bench(tool, args):
    """IOPS of one run, or None when the tool refused the options."""
    p = subprocess.run([tool, "bench"] + args, capture_output=True)
    m = DONE.search(p.stdout)
    if p.returncode or not m:
        return None, (p.stderr or p.stdout).decode(errors="replace").strip()
    return float(m.group(1)), ""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("KESTREL_BUILD", "build"))
    ap.add_argument("--kimg", help="kestrel-img binary (default: BUILD/src/block/kestrel-img)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (default 3; median)")
    ap.add_argument("--count", type=int, default=20000, help="requests per run")
    ap.add_argument("--depth", type=int, default=32, help="queue depth -d (default 32)")
    ap.add_argument("--size", type=int, default=256, help="image size in MiB (default 256)")
    ap.add_argument("--engines", default="threads,io_uring,native")
    ap.add_argument("--formats", default="qcow2,raw")
    ap.add_argument("--caches", default="none,default")
    ap.add_argument("--ops", default="read,rewrite,alloc")
    ap.add_argument("--dir", help="work directory (default: a temporary one in /var/tmp)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = ap.parse_args()

    kimg = Path(args.kimg) if args.kimg else ROOT / args.build / "src" / "block" / "kestrel-img"
    if not kimg.exists():
        sys.exit(f"{kimg} not built (ninja -C {args.build})")
    if not shutil.which("qemu-img"):
        sys.exit("qemu-img not found (apt-get install qemu-utils)")
    tools = {"kestrel-img": str(kimg), "qemu-img": "qemu-img"}
    work = Path(args.dir or tempfile.mkdtemp(prefix="kestrel-bench-cmd-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    size = f"{args.size}M"
    rows = []
    for fmt in args.formats.split(","):
        for cache in args.caches.split(","):
            for engine in args.engines.split(","):
                if engine == "native" and cache != "none":
                    continue    # Linux AIO needs O_DIRECT (qemu-img refuses it too)
                for op in args.ops.split(","):
                    rows.append((fmt, cache, engine, op))
    try:
        for fmt in args.formats.split(","):
            subprocess.run(["qemu-img", "create", "-q", "-f", fmt, "-o", "preallocation=full",
                            work / f"pre.{fmt}", size], check=True)
            subprocess.run(["qemu-img", "create", "-q", "-f", fmt, work / f"fresh.{fmt}", size],
                           check=True)
        iops = {(r, t): [] for r in rows for t in tools}
        refused = {}
        for rnd in range(args.rounds):
            for n, row in enumerate(rows):
                fmt, cache, engine, op = row
                order = list(tools.items())
                if (rnd + n) % 2:
                    order.reverse()
                for tool, binary in order:
                    img = work / f"pre.{fmt}"
                    if op == "alloc":
                        img = work / f"run.{fmt}"
                        shutil.copyfile(work / f"fresh.{fmt}", img)
                    argv = ["-f", fmt, "-d", str(args.depth), "-s", "4k", "-c", str(args.count)]
                    argv += ["-w"] if op != "read" else []
                    argv += ["-t", "none"] if cache == "none" else []
                    argv += {"threads": [], "io_uring": ["-i", "io_uring"],
                             "native": ["-i", "native"]}[engine]
                    os.sync()
                    secs, err = run_bench(binary, argv + [str(img)])
                    if secs is None:
                        refused[(row, tool)] = err.splitlines()[-1] if err else "failed"
                        continue
                    iops[(row, tool)].append(args.count / secs)
                    if args.verbose:
                        print(f"  round {rnd + 1} {fmt} {cache} {engine} {op} {tool}: "
                              f"{args.count / secs:9.0f} IOPS", flush=True)
                    if op == "alloc" and fmt == "qcow2":
                        p = subprocess.run(["qemu-img", "check", "-q", img],
                                           capture_output=True)
                        if p.returncode:
                            sys.exit(f"{tool} left {img} inconsistent:\n{p.stdout.decode()}")
        print(f"| {'format':6s} | {'cache':7s} | {'aio':8s} | {'workload':8s} | "
              f"{'kestrel-img IOPS':>16s} | {'qemu-img IOPS':>13s} | {'ratio':>5s} |")
        print(f"|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 10}|{'-' * 18}|{'-' * 15}|{'-' * 7}|")
        for row in rows:
            cells = []
            for tool in tools:
                v = iops[(row, tool)]
                cells.append(statistics.median(v) if v else None)
            k, q = cells
            ks = f"{k:16.0f}" if k else f"{'refused':>16s}"
            qs = f"{q:13.0f}" if q else f"{'refused':>13s}"
            ratio = f"{k / q:5.2f}" if k and q else f"{'-':>5s}"
            print(f"| {row[0]:6s} | {row[1]:7s} | {row[2]:8s} | {row[3]:8s} | {ks} | {qs} | "
                  f"{ratio} |")
        print(f"\nmedian of {args.rounds} rounds, {args.count} requests of 4 KiB at queue depth "
              f"{args.depth}, {args.size} MiB images, {os.cpu_count()} CPUs; ratio = "
              f"kestrel-img / qemu-img IOPS.")
        for (row, tool), err in sorted(refused.items()):
            print(f"  {tool} refused {' '.join(row)}: {err}")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
