#!/usr/bin/env python3
"""bench/img: kestrel-img vs qemu-img 7.2, the same work in one run.

Rows (median wall time of --runs runs each, tools alternating, warm page cache;
also the ratio of the best runs and of the CPU time used):

  convert raw->qcow2      a --size image of mixed data: random, compressible,
                          written zeroes and holes (1/4 each, in 64 MiB stripes)
  convert qcow2->raw      the qcow2 qemu-img made of it
  convert -c (zlib)       compressed qcow2 from the raw image
  convert -c (zstd)       the same with compression_type=zstd
  bench 4k randread       qemu-img bench on a fully allocated 1 GiB qcow2, a prime
  bench 4k randwrite      step of 4 KiB blocks so the offsets jump around
  bench 64k seqread
  bench 64k seqwrite
  convert raw->FMT        for every other format both tools write (vmdk, vhdx, vpc, vdi,
  convert FMT->raw        qed, parallels, luks): to it from the raw source, and back from
                          the image qemu-img made of it (--formats picks them)

ratio = qemu-img time / kestrel-img time: above 1.00 kestrel-img is faster.
Every converted image is checked against its source with qemu-img compare."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STRIPE = 64 << 20


def make_source(path, size):
    """Random, compressible, explicit zeroes and a hole in every 64 MiB stripe."""
    text = b"".join(b"kestrel-img benchmark line %08d: the quick brown fox\n" % i
                    for i in range(4096))
    part = STRIPE // 4
    with open(path, "wb") as f:
        f.truncate(size)
        for base in range(0, size, STRIPE):
            f.seek(base)
            f.write(os.urandom(min(part, size - base)))
            if base + part < size:
                n = min(part, size - base - part)
                f.write((text * (n // len(text) + 1))[:n])
            if base + 2 * part < size:
                f.write(bytes(min(part, size - base - 2 * part)))
            # The last quarter stays a hole.


def timed(argv):
    """Wall time and CPU time (user + system) of one run."""
    t = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.monotonic() - t
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {status}\n"
                           f"{err.decode(errors='replace')}")
    return dt, ru.ru_utime + ru.ru_stime


# Formats beyond qcow2: extra arguments for the tools (luks needs its secret).
SECRET = ["--object", "secret,id=sec0,data=kestrel-bench"]
FORMATS = {
    "vmdk": [], "vhdx": [], "vpc": [], "vdi": [], "qed": [], "parallels": [],
    "luks": ["-o", "key-secret=sec0,iter-time=100"],
}


def image_opts(path, fmt):
    """qemu-img's --image-opts text for path; luks gets its key."""
    extra = ",key-secret=sec0" if fmt == "luks" else ""
    return f"driver={fmt}{extra},file.filename={path}"


def compare(a, b, fmt_a, fmt_b):
    p = subprocess.run(["qemu-img", "compare"] + SECRET +
                       ["--image-opts", image_opts(a, fmt_a), image_opts(b, fmt_b)],
                       capture_output=True)
    if p.returncode:
        raise RuntimeError(f"{a} and {b} differ: {p.stdout.decode()}")


def creatable(kimg, work, fmt):
    """Whether kestrel-img can write fmt (a driver with create), asked of kestrel-img."""
    probe = work / f"probe.{fmt}"
    p = subprocess.run([str(kimg), "create", "-q"] + SECRET + ["-f", fmt] + FORMATS[fmt] +
                       [str(probe), "1M"], capture_output=True)
    probe.unlink(missing_ok=True)
    return p.returncode == 0


def format_rows(kimg, work, src, wanted):
    """convert raw->FMT and FMT->raw rows; the FMT source is qemu-img's image of src."""
    rows = []
    for fmt in filter(None, wanted.split(",")):
        if fmt not in FORMATS:
            sys.exit(f"--formats: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        if not creatable(kimg, work, fmt):
            print(f"  (no rows for {fmt}: kestrel-img cannot write it)", flush=True)
            continue
        src_f = work / f"src.{fmt}"
        subprocess.run(["qemu-img", "convert"] + SECRET + ["-f", "raw", "-O", fmt] +
                       FORMATS[fmt] + [src, src_f], check=True)
        rows.append((f"convert raw->{fmt}",
                     lambda t, o, fmt=fmt: [t, "convert"] + SECRET + ["-f", "raw", "-O", fmt] +
                     FORMATS[fmt] + [src, o], fmt, (src, "raw")))
        opts = image_opts(src_f, fmt)
        rows.append((f"convert {fmt}->raw",
                     lambda t, o, opts=opts: [t, "convert"] + SECRET +
                     ["--image-opts", opts, "-O", "raw", o], "raw", (src_f, fmt)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("KESTREL_BUILD", "build"))
    ap.add_argument("--size", default="4G", help="source image size (default 4G)")
    ap.add_argument("--runs", type=int, default=6, help="timed runs per tool (default 6, "
                    "even so that both tools run first equally often)")
    ap.add_argument("--dir", help="work directory (default: a temporary one in /var/tmp)")
    ap.add_argument("--requests", type=int, default=200000, help="requests per bench row")
    ap.add_argument("--only", help="comma-separated row name prefixes to run")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed runs of each tool before a row's timed runs (default 1)")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait after sync before each run (default 0)")
    ap.add_argument("--formats", default=",".join(FORMATS),
                    help="formats of the convert raw->FMT / FMT->raw rows (default: "
                    "%(default)s; '' for none); those kestrel-img cannot write are left out")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run's time")
    args = ap.parse_args()

    kimg = ROOT / args.build / "src" / "block" / "kestrel-img"
    if not kimg.exists():
        sys.exit(f"{kimg} not built (ninja -C {args.build})")
    if not shutil.which("qemu-img"):
        sys.exit("qemu-img not found (apt-get install qemu-utils)")
    units = {"G": 1 << 30, "M": 1 << 20}
    size = int(float(args.size[:-1]) * units[args.size[-1].upper()]) \
        if args.size[-1].upper() in units else int(args.size)
    work = Path(args.dir or tempfile.mkdtemp(prefix="kestrel-img-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    tools = {"kestrel-img": str(kimg), "qemu-img": "qemu-img"}
    try:
        src = work / "src.raw"
        print(f"preparing a {size >> 20} MiB mixed source image in {work} ...", flush=True)
        make_source(src, size)
        src_q = work / "src.qcow2"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, src_q],
                       check=True)
        alloc = work / "alloc.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                        "preallocation=full", alloc, "1G"], check=True)

        step4k = 4096 * 104729          # a prime number of blocks: scattered offsets
        rows = [
            ("convert raw->qcow2", lambda t, o: [t, "convert", "-f", "raw", "-O", "qcow2", src, o],
             "qcow2", (src, "raw")),
            ("convert qcow2->raw", lambda t, o: [t, "convert", "-f", "qcow2", "-O", "raw", src_q, o],
             "raw", (src_q, "qcow2")),
            ("convert -c (zlib)", lambda t, o: [t, "convert", "-c", "-f", "raw", "-O", "qcow2",
                                               src, o], "qcow2", (src, "raw")),
            ("convert -c (zstd)", lambda t, o: [t, "convert", "-c", "-f", "raw", "-O", "qcow2",
                                               "-o", "compression_type=zstd", src, o],
             "qcow2", (src, "raw")),
            ("bench 4k randread", lambda t, o: [t, "bench", "-f", "qcow2", "-t", "writeback",
                                               "-c", args.requests, "-d", "64", "-s", "4096",
                                               "-S", step4k, o], "bench", None),
            ("bench 4k randwrite", lambda t, o: [t, "bench", "-w", "-f", "qcow2", "-t",
                                                "writeback", "-c", args.requests, "-d", "64",
                                                "-s", "4096", "-S", step4k, o], "bench", None),
            ("bench 64k seqread", lambda t, o: [t, "bench", "-f", "qcow2", "-t", "writeback",
                                               "-c", args.requests // 4, "-d", "64", "-s",
                                               "65536", o], "bench", None),
            ("bench 64k seqwrite", lambda t, o: [t, "bench", "-w", "-f", "qcow2", "-t",
                                                "writeback", "-c", args.requests // 4, "-d",
                                                "64", "-s", "65536", o], "bench", None),
        ]
        rows += format_rows(kimg, work, src, args.formats)
        if args.only:
            wanted = args.only.split(",")
            rows = [r for r in rows if any(r[0].startswith(w) for w in wanted)]

        results = []
        for name, argv_of, kind, check in rows:
            times = {t: [] for t in tools}
            cpu = {t: [] for t in tools}
            for run in range(-args.warmup, args.runs):
                # Alternate who goes first, so that neither tool always runs in the
                # position the host's page cache reclaim happens to slow down.
                order = list(tools.items())
                if run % 2:
                    order.reverse()
                for tool, binary in order:
                    out = work / f"out.{tool}.{run + args.warmup}"
                    if out.exists():
                        out.unlink()
                    if kind == "bench":
                        # A fresh copy of the allocated image for every bench run.
                        shutil.copyfile(alloc, out)
                    # No dirty pages or journal work of the last run may slow this one.
                    os.sync()
                    time.sleep(args.settle)
                    argv = [str(a) for a in argv_of(binary, out)]
                    wall, cpu_s = timed(argv)
                    if run < 0:
                        out.unlink()
                        continue    # warming up
                    times[tool].append(wall)
                    cpu[tool].append(cpu_s)
                    if args.verbose:
                        print(f"    {tool:12s} run {run + 1}: {wall:.3f} s, cpu {cpu_s:.3f} s",
                              flush=True)
                    if check and run == 0:
                        compare(check[0], out, check[1], kind)
                    out.unlink()
            k = statistics.median(times["kestrel-img"])
            q = statistics.median(times["qemu-img"])
            kmin, qmin = min(times["kestrel-img"]), min(times["qemu-img"])
            kc, qc = statistics.median(cpu["kestrel-img"]), statistics.median(cpu["qemu-img"])
            results.append((name, k, q, kmin, qmin, kc, qc))
            print(f"  {name:22s} kestrel-img {k:8.3f} s   qemu-img {q:8.3f} s   "
                  f"ratio {q / k:5.2f}   best {qmin / kmin:5.2f}   cpu {qc / kc:5.2f}",
                  flush=True)

        print()
        print(f"| {'operation':22s} | {'kestrel-img (s)':>15s} | {'qemu-img (s)':>12s} | "
              f"{'ratio':>5s} | {'best-run ratio':>14s} | {'CPU-time ratio':>14s} |")
        print(f"|{'-' * 24}|{'-' * 17}|{'-' * 14}|{'-' * 7}|{'-' * 16}|{'-' * 16}|")
        for name, k, q, kmin, qmin, kc, qc in results:
            print(f"| {name:22s} | {k:15.3f} | {q:12.3f} | {q / k:5.2f} | {qmin / kmin:14.2f} "
                  f"| {qc / kc:14.2f} |")
        print(f"\nratio = qemu-img / kestrel-img, higher is better for kestrel-img.  Wall times "
              f"are medians of {args.runs} runs;\n'best-run' compares each tool's fastest run, "
              f"'CPU-time' the median user+system time.\n{size >> 20} MiB source in {work}, "
              f"{os.cpu_count()} CPUs.")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
