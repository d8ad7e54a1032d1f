#!/usr/bin/env python3
"""bench/mem: how much memory Kestrel and QEMU 7.2 (-M pc) hand back to the host,
and how fast, driven by the same guest probe (tests/guest/probe, scenarios
balloon and mem-hold), in one run.

  balloon      the probe touches all its RAM (--mem MiB), then QMP "balloon" to half:
               host RSS returned (MiB, and as a share of the ballooned amount) and
               the time from the command until 90% of the ballooned amount has left
               the VMM's RSS; then "balloon" back to full: time until the guest has
               its pages again (RSS back within 16 MiB).
  reporting    the probe touches all its RAM, then reports half of it free through
               virtio-balloon free page reporting (no balloon command): RSS returned
               and the time from the serial command "free N" to 90% of it gone.
  ksm          --ksm-guests identical probes (--ksm-mem MiB each) touch their RAM with
               KSM off; then KSM is turned on (pages_to_scan 20000, sleep 10 ms) and
               the combined PSS is followed until it stops falling: PSS before/after,
               the share saved, and the time to settle.  KSM settings are restored.

RSS is VmRSS of /proc/PID/status sampled every 20 ms.  Balloon and reporting rows are
the median of --runs runs per VMM (Kestrel and QEMU alternating); KSM runs once.  Ratios say how Kestrel
compares: for memory returned kestrel/QEMU (above 1: Kestrel returns more), for
times QEMU/kestrel (above 1: Kestrel is faster), for footprints QEMU/kestrel."""
import argparse
import os
import re
import select
import statistics
import socket
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QEMU = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-M", "pc",
        "-nodefaults"]
MIB = 1 << 20
KSM = Path("/sys/kernel/mm/ksm")


class Guest:
    def __init__(self, vmm, kestrel, probe, tmp, name, mem, scenario, extra=()):
        self.sock = Path(tmp) / f"{name}.qmp"
        common = ["-m", f"{mem}m", "-display", "none", "-serial", "stdio",
                  "-qmp", f"unix:{self.sock},server,nowait", "-kernel", probe,
                  "-append", f"probe={scenario}", *extra]
        argv = [kestrel, *common] if vmm == "kestrel" else [*QEMU, *common]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.out = b""
        self.q = None

    def expect(self, pattern, timeout=120):
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            m = regex.search(self.out)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                raise RuntimeError(f"no {pattern!r}; output:\n{self.out.decode(errors='replace')}")
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.5))
            if r:
                self.out += os.read(self.p.stdout.fileno(), 65536)

    def qmp(self, name, **args):
        if not self.q:
            deadline = time.monotonic() + 30
            while True:
                try:
                    self.q = socket.socket(socket.AF_UNIX)
                    self.q.connect(str(self.sock))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self.qf = self.q.makefile("rb")
            self.qf.readline()
            self.qmp("qmp_capabilities")
        msg = {"execute": name, **({"arguments": args} if args else {})}
        self.q.sendall(json.dumps(msg).encode())
        while True:
            r = json.loads(self.qf.readline())
            if "event" not in r:
                return r

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def rss(self):
        for line in open(f"/proc/{self.p.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def pss(self):
        for line in open(f"/proc/{self.p.pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        try:
            self.send("quit")
            self.p.wait(timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait()


def settle(fn, period=0.5, tol=2 * MIB, timeout=30):
    """Samples fn until two readings period apart differ by less than tol."""
    last = fn()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(period)
        v = fn()
        if abs(v - last) < tol:
            return v
        last = v
    return last


def wait_until(cond, timeout=60, step=0.02):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(step)
    return float("nan")


def bench_balloon(vmm, args, tmp):
    g = Guest(vmm, args.kestrel, args.probe, tmp, f"b-{vmm}", args.mem, "balloon",
              ["-device", "virtio-balloon-pci"])
    try:
        g.expect(r"balloon: ready")
        touched = settle(g.rss)
        half = args.mem // 2
        want = 0.9 * half * MIB
        t0 = time.monotonic()
        g.qmp("balloon", value=half * MIB)
        t_return = wait_until(lambda: touched - g.rss() >= want)
        g.expect(rf"actual {half * 256} pages")
        low = settle(g.rss)
        t1 = time.monotonic()
        g.qmp("balloon", value=args.mem * MIB)
        g.expect(r"actual 0 pages")
        t_back = wait_until(lambda: g.rss() >= touched - 16 * MIB)
        t_back = time.monotonic() - t1 if t_back == t_back else t_back
        return {"returned": (touched - low) / MIB, "share": (touched - low) / (half * MIB),
                "t_return": t_return, "t_back": t_back, "touched": touched / MIB}
    finally:
        g.stop()


def bench_reporting(vmm, args, tmp):
    g = Guest(vmm, args.kestrel, args.probe, tmp, f"r-{vmm}", args.mem, "balloon,report=1",
              ["-device", "virtio-balloon-pci,free-page-reporting=on"])
    try:
        g.expect(r"balloon: ready")
        touched = settle(g.rss)
        half = args.mem // 2
        g.send(f"free {half}")
        t = wait_until(lambda: touched - g.rss() >= 0.9 * half * MIB)
        freed = int(g.expect(r"reported (\d+) MiB free").group(1))
        low = settle(g.rss)
        return {"returned": (touched - low) / MIB, "share": (touched - low) / (freed * MIB),
                "t_return": t}
    finally:
        g.stop()


def ksm_write(name, value):
    (KSM / name).write_text(str(value))


def bench_ksm(vmm, args, tmp):
    gs = []
    saved = {k: (KSM / k).read_text().strip() for k in ("run", "pages_to_scan", "sleep_millisecs")}
    try:
        ksm_write("run", 2)     # unmerge everything: start from separate pages
        ksm_write("run", 0)
        for i in range(args.ksm_guests):
            g = Guest(vmm, args.kestrel, args.probe, tmp, f"k{i}-{vmm}", args.ksm_mem, "mem-hold")
            gs.append(g)
        for g in gs:
            g.expect(r"balloon: ready")
        before = settle(lambda: sum(g.pss() for g in gs))
        ksm_write("pages_to_scan", 20000)
        ksm_write("sleep_millisecs", 10)
        t0 = time.monotonic()
        ksm_write("run", 1)
        # ksmd needs a full scan to see pairs; then follow PSS until it stops falling.
        wait_until(lambda: sum(g.pss() for g in gs) < before - 16 * MIB, timeout=120, step=0.2)
        after = settle(lambda: sum(g.pss() for g in gs), period=2.0, tol=4 * MIB, timeout=180)
        t = time.monotonic() - t0 - 2.0     # less the final quiet period
        return {"before": before / MIB, "after": after / MIB, "saved": 1 - after / before,
                "t_settle": t}
    finally:
        for g in gs:
            g.stop()
        ksm_write("run", 2)
        for k in ("pages_to_scan", "sleep_millisecs", "run"):
            ksm_write(k, saved[k])


def ratio(k, q, higher_better):
    if not k or not q or k != k or q != q:
        return "n/a"
    return f"{(k / q if higher_better else q / k):.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kestrel", default=str(ROOT / "build/src/kestrel"))
    ap.add_argument("--probe", default=str(ROOT / "build/tests/guest/probe/probe.elf"))
    ap.add_argument("--mem", type=int, default=1024, help="guest MiB for balloon/reporting")
    ap.add_argument("--ksm-guests", type=int, default=4)
    ap.add_argument("--ksm-mem", type=int, default=512)
    ap.add_argument("--no-ksm", action="store_true", help="skip the KSM rows")
    ap.add_argument("--runs", type=int, default=3,
                    help="balloon and reporting runs per VMM, alternating (median shown)")
    args = ap.parse_args()
    res = {"kestrel": {}, "qemu": {}}
    runs = {"kestrel": {"balloon": [], "reporting": []}, "qemu": {"balloon": [], "reporting": []}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            for vmm in ("kestrel", "qemu"):
                runs[vmm]["balloon"].append(bench_balloon(vmm, args, tmp))
                runs[vmm]["reporting"].append(bench_reporting(vmm, args, tmp))
        for vmm in ("kestrel", "qemu"):
            for sect, rs in runs[vmm].items():
                res[vmm][sect] = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for vmm in ("kestrel", "qemu"):
            if not args.no_ksm and (KSM / "run").exists():
                res[vmm]["ksm"] = bench_ksm(vmm, args, tmp)
    k, q = res["kestrel"], res["qemu"]
    rows = [
        (f"balloon {args.mem}->{args.mem // 2} MiB: RSS returned (MiB)", "balloon", "returned", True, "{:.0f}"),
        ("balloon: returned / ballooned", "balloon", "share", True, "{:.2f}"),
        ("balloon: time to return 90% (s)", "balloon", "t_return", False, "{:.2f}"),
        ("balloon deflate: time to refill (s)", "balloon", "t_back", False, "{:.2f}"),
        (f"free page reporting {args.mem // 2} MiB: RSS returned (MiB)", "reporting", "returned", True, "{:.0f}"),
        ("reporting: returned / reported", "reporting", "share", True, "{:.2f}"),
        ("reporting: time to return 90% (s)", "reporting", "t_return", False, "{:.2f}"),
    ]
    if "ksm" in k:
        n = args.ksm_guests
        rows += [
            (f"KSM {n}x{args.ksm_mem} MiB: PSS before (MiB)", "ksm", "before", False, "{:.0f}"),
            (f"KSM {n}x{args.ksm_mem} MiB: PSS after (MiB)", "ksm", "after", False, "{:.0f}"),
            ("KSM: share of PSS saved", "ksm", "saved", True, "{:.2f}"),
            ("KSM: time to settle (s)", "ksm", "t_settle", False, "{:.1f}"),
        ]
    print(f"bench/mem: {args.runs} runs (median) for balloon/reporting, KSM once; "
          f"host {os.uname().release}, {os.cpu_count()} CPUs")
    print(f"{'metric':<48} {'kestrel':>9} {'qemu-7.2':>9} {'ratio':>6}")
    for label, sect, key, better, fmt in rows:
        kv, qv = k[sect][key], q[sect][key]
        print(f"{label:<48} {fmt.format(kv):>9} {fmt.format(qv):>9} {ratio(kv, qv, better):>6}")
    print("ratio: kestrel/QEMU for memory returned and share saved, QEMU/kestrel for times and "
          "PSS; above 1 favours Kestrel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
