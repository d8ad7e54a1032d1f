#!/usr/bin/env python3
"""bench/boot: Kestrel vs QEMU 7.2 (-M pc and -M microvm) booting the same guest
probe, in one run.  Reports, per VMM (median of --runs runs):

  first line  wall time from process start to the probe's first serial line
  power-off   wall time from process start to process exit (guest powered off)
  peak RSS    the VMM process's maximum resident set size (-m 128m guest)
  exits       KVM_RUN returns to userspace for the whole boot (one run under strace)

and the ratios of each QEMU configuration to Kestrel."""
import argparse
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QEMU = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host,-arch-capabilities"]


def configs(build, probe, append):
    kestrel = str(ROOT / build / "src" / "kestrel")
    common = ["-m", "128m", "-smp", "2", "-nographic", "-no-reboot", "-kernel", probe,
              "-append", append]
    return {
        "kestrel": [kestrel, *common],
        "qemu -M pc": [*QEMU, "-M", "pc", *common],
        "qemu -M microvm": [*QEMU, "-M", "microvm", *common],
    }


def one_run(argv, first_line=b"probe: start"):
    """Returns (seconds to first line, seconds to exit, peak RSS in KiB, output).

    Peak RSS comes from GNU time: wait4() on a child forked from Python would
    report Python's own pre-exec footprint."""
    rss_file = tempfile.NamedTemporaryFile("r", suffix=".rss")
    start = time.monotonic()
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *argv],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out, t_first = b"", None
    while True:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        if not ready:
            proc.kill()
            raise RuntimeError(f"{argv[0]}: no output for 60 s")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if t_first is None and first_line in out + chunk:
            t_first = time.monotonic() - start
        if not chunk:
            break
        out += chunk
    status = proc.wait()
    t_exit = time.monotonic() - start
    if status != 0 or b"probe: PASS" not in out:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{out.decode(errors='replace')}")
    rss_kib = int(rss_file.read().split()[-1])
    rss_file.close()
    return t_first, t_exit, rss_kib, out


def count_exits(argv):
    """Counts KVM_RUN ioctls that returned, i.e. exits to the VMM, with strace."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=ioctl", "-e", "signal=none",
                        "-o", log.name, *argv], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=120)
        text = log.read()
    return len(re.findall(r"KVM_RUN, 0\) += ", text)) + len(re.findall(r"KVM_RUN resumed>", text))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--append", default="probe=hello")
    args = ap.parse_args()
    probe = str(ROOT / args.build / "tests" / "guest" / "probe" / "probe.elf")
    have_strace = shutil.which("strace") is not None

    print(f"bench/boot: guest probe ({args.append}), -m 128m -smp 2, median of {args.runs} runs")
    print(f"host: {os.uname().release}, kvm_pvm={'yes' if os.path.exists('/sys/module/kvm_pvm') else 'no'}")
    results = {}
    for name, argv in configs(args.build, probe, args.append).items():
        runs = [one_run(argv) for _ in range(args.runs)]
        results[name] = {
            "first": statistics.median(r[0] for r in runs),
            "exit": statistics.median(r[1] for r in runs),
            "rss": statistics.median(r[2] for r in runs) / 1024,
            "exits": count_exits(argv) if have_strace else float("nan"),
        }

    print()
    print(f"{'VMM':<18}{'first line':>12}{'power-off':>12}{'peak RSS':>12}{'exits':>8}")
    for name, r in results.items():
        print(f"{name:<18}{r['first'] * 1000:>10.1f}ms{r['exit'] * 1000:>10.1f}ms"
              f"{r['rss']:>9.1f}MiB{r['exits']:>8}")
    k = results["kestrel"]
    print()
    print("ratios (QEMU / Kestrel; above 1 means Kestrel is better)")
    for name, r in results.items():
        if name == "kestrel":
            continue
        print(f"{name:<18}{r['first'] / k['first']:>11.1f}x{r['exit'] / k['exit']:>11.1f}x"
              f"{r['rss'] / k['rss']:>11.1f}x{r['exits'] / max(k['exits'], 1):>7.1f}x")
    print()
    print(f"kestrel RSS overhead with -m 128m: {k['rss']:.1f} MiB peak "
          f"(target < 8 MiB; the probe touches well under 1 MiB of guest RAM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
