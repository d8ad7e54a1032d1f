#!/usr/bin/env python3
"""bench/firmware: Kestrel vs QEMU 7.2 (-M pc) booting the same GRUB disk image
(tests/system/fwimages.py: SeaBIOS -> GRUB from -hda -> menu -> the guest probe
by Multiboot), in one run.  Reports, per VMM (median of --runs runs), the wall
time from process start to:

  banner      SeaBIOS's banner on the serial console
  grub menu   GRUB's menu ("GNU GRUB  version")
  probe       the probe, loaded by GRUB, printing "probe: PASS"

and the ratio QEMU / Kestrel for each (above 1: Kestrel is faster).

QEMU runs with -vga none -net none: the devices Kestrel lacks would otherwise
add their option ROMs' time.  On PVM hosts ring-0 code (SeaBIOS's 32-bit parts,
all of GRUB) runs in KVM's instruction emulator under either VMM, which
dominates both times."""
import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
import fwimages  # noqa: E402

QEMU = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host,-arch-capabilities"]
MARKS = [("banner", b"SeaBIOS (version"), ("grub menu", b"GNU GRUB"),
         ("probe", b"probe: PASS")]


def one_run(argv, timeout):
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out, seen = b"", {}
    try:
        while len(seen) < len(MARKS):
            left = start + timeout - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{argv[0]}: timed out; saw {sorted(seen)}")
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"{argv[0]}: exited early; saw {sorted(seen)}")
            out += chunk
            for name, mark in MARKS:
                if name not in seen and mark in out:
                    seen[name] = time.monotonic() - start
    finally:
        proc.kill()
        proc.wait()
    return seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--build", default=os.environ.get("KESTREL_BUILD", "build"))
    ap.add_argument("--timeout", type=float, default=240)
    args = ap.parse_args()
    missing = fwimages.tools_missing()
    if missing:
        sys.exit("bench/firmware: missing " + ", ".join(missing))
    probe = ROOT / args.build / "tests" / "guest" / "probe" / "probe.elf"
    kestrel = ROOT / args.build / "src" / "kestrel"
    with tempfile.TemporaryDirectory() as work:
        disk = fwimages.make_disk(work, probe)
        common = ["-m", "128m", "-nographic", "-hda", str(disk)]
        vmms = {
            "kestrel": [str(kestrel), *common],
            "qemu -M pc": [*QEMU, "-M", "pc", "-vga", "none", "-net", "none", *common],
        }
        results = {name: [] for name in vmms}
        # Alternate the VMMs so a slow patch of the host hits both alike.
        for _ in range(args.runs):
            for name, argv in vmms.items():
                results[name].append(one_run(argv, args.timeout))
    med = {name: {m: statistics.median(r[m] for r in runs) for m, _ in MARKS}
           for name, runs in results.items()}
    print(f"bench/firmware: GRUB disk via -hda, median of {args.runs} run(s), seconds "
          "from process start")
    print(f"{'':14}" + "".join(f"{m:>12}" for m, _ in MARKS))
    for name in vmms:
        print(f"{name:14}" + "".join(f"{med[name][m]:12.2f}" for m, _ in MARKS))
    q, k = med["qemu -M pc"], med["kestrel"]
    print(f"{'qemu/kestrel':14}" + "".join(f"{q[m] / k[m]:12.2f}" for m, _ in MARKS))


if __name__ == "__main__":
    main()
