#!/usr/bin/env python3
"""bench/blk: virtio-blk, Kestrel vs QEMU 7.2 (-M pc), driven by the same guest
probe (probe=blk-bench, polling from CPL3, no interrupts), in one run, for a
1 GiB raw image and a fully allocated qcow2 copy of it, cache=none and the same
aio= engine for both (--aio, default threads):

  4K randread qd1, 4K randread qd32, 4K randwrite qd1, 4K randwrite qd32,
  1M seqread qd1 (MB/s), 1M seqwrite qd1 (MB/s)

Per VMM, format and row (the median of --runs runs, the two VMMs alternating):

  IOPS|MB/s  as the probe measured it (TSC, first submission to last completion)
  CPU/req    host CPU of the VMM process (user+sys from GNU time) minus a
             baseline run with count=1 (median of --baseline-runs; the boot),
             divided by the request count.  The probe polls, so the vCPU thread
             is busy for the whole run: this includes about one CPU x run time.
  VMM/req    the same less guest-mode time (/proc/PID/stat guest_time, sampled
             every 20 ms, clock-tick resolution): the VMM's own work per request
             (exits, device emulation, I/O threads), without the polling guest.

Ratios: perf kestrel/QEMU, CPU and VMM QEMU/kestrel; above 1 means Kestrel is
better.  Random offsets span the whole image (span=1024) from the probe's
fixed-seed xorshift, so both VMMs see the same requests.  Before every run the
image is fdatasync'ed and dropped from the host page cache (posix_fadvise), so
a VMM that does not honour cache=none starts cold too; whether each VMM held
the image open with O_DIRECT is read from /proc/PID/fdinfo and reported."""
import argparse
import json
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QEMU = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-M", "pc"]
IMAGE_BYTES = 1 << 30
SPAN_MIB = IMAGE_BYTES >> 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
RUN_TIMEOUT = 300

# label, mode, bs, qd, count (full run), count (--quick)
ROWS = [
    ("4K randread qd1", "randread", 4096, 1, 20000, 2000),
    ("4K randread qd32", "randread", 4096, 32, 60000, 6000),
    ("4K randwrite qd1", "randwrite", 4096, 1, 20000, 2000),
    ("4K randwrite qd32", "randwrite", 4096, 32, 60000, 6000),
    ("1M seqread qd1", "seqread", 1 << 20, 1, 3000, 300),
    ("1M seqwrite qd1", "seqwrite", 1 << 20, 1, 3000, 300),
]
BENCH_RE = re.compile(rb"probe: blk-bench: mode (\S+) bs (\d+) qd (\d+) count (\d+) "
                      rb"time_us (\d+) iops (\d+) mbps (\d+\.\d)")
CAPACITY_RE = re.compile(rb"probe: blk: capacity (\d+) sectors")


def vmm_argv(vmm, kestrel, probe, image, fmt, spec, aio):
    common = ["-m", "256m", "-nographic", "-no-reboot", "-kernel", probe,
              "-append", f"probe=blk-bench,{spec}",
              "-drive", f"file={image},if=none,id=d0,format={fmt},cache=none,aio={aio}",
              "-device", "virtio-blk-pci,drive=d0"]
    return [kestrel, *common] if vmm == "kestrel" else [*QEMU, *common]


def drop_cache(path):
    """Writes back and evicts the image's host page cache (this file only).  A network
    URL (bench/storage) is no file here: its server's cache is the server's."""
    if not os.path.isfile(path):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def child_of(pid):
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(kids[0]) if kids else None
    except OSError:
        return None


def guest_ticks(pid):
    """guest_time (field 43) of the whole process, in clock ticks; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[43 - 3])


def image_odirect(pid, image):
    """Whether the process holds image open with O_DIRECT (None: no fd for it yet)."""
    found = None
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != image:
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd}").read_text()
        except OSError:
            continue
        flags = int(re.search(r"^flags:\s+([0-7]+)", info, re.M).group(1), 8)
        found = bool(found) or bool(flags & os.O_DIRECT)
    return found


def one_run(argv, image):
    """Runs the VMM under GNU time.  Returns a dict: cpu (user+sys s), guest (s),
    wall (s), capacity (sectors), odirect (whether the VMM held the image open
    with O_DIRECT: cache=none honoured; None if never seen), and the probe's
    numbers; raises on failure."""
    drop_cache(image)
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        start = time.monotonic()
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%U %S", "-o", tf.name, *argv],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        out, vmm_pid, guest, odirect = b"", None, 0, None
        while True:
            if time.monotonic() - start > RUN_TIMEOUT:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"timed out after {RUN_TIMEOUT} s:\n"
                                   f"{out[-2000:].decode(errors='replace')}")
            ready, _, _ = select.select([proc.stdout], [], [], 0.02)
            if vmm_pid is None:
                vmm_pid = child_of(proc.pid)
            if vmm_pid is not None:
                g = guest_ticks(vmm_pid)
                if g is not None:
                    guest = g
                if not odirect:
                    o = image_odirect(vmm_pid, image)
                    odirect = o if o is not None else odirect
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        status = proc.wait()
        wall = time.monotonic() - start
        times = tf.read().split()
    m = BENCH_RE.search(out)
    if status != 0 or b"probe: PASS" not in out or not m:
        raise RuntimeError(f"exit status {status}:\n{out[-2000:].decode(errors='replace')}")
    cap = CAPACITY_RE.search(out)
    return {
        "cpu": float(times[-2]) + float(times[-1]),
        "guest": guest / CLK_TCK,
        "wall": wall,
        "capacity": int(cap.group(1)) if cap else None,
        "odirect": odirect,
        "count": int(m.group(4)),
        "time_us": int(m.group(5)),
        "iops": int(m.group(6)),
        "mbps": float(m.group(7)),
    }


def make_images(workdir):
    """A 1 GiB raw image full of data (no zero blocks, so the qcow2 copy is fully
    allocated) and `qemu-img convert -O qcow2` of it, both in workdir."""
    raw, qcow2 = workdir / "disk.raw", workdir / "disk.qcow2"
    block = bytearray(os.urandom(1 << 20))
    with open(raw, "wb") as f:
        for i in range(IMAGE_BYTES >> 20):
            block[:8] = (i + 1).to_bytes(8, "little")
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow2)], check=True)
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(qcow2)],
                                     check=True, capture_output=True, text=True).stdout)
    if info["virtual-size"] != IMAGE_BYTES or info["actual-size"] < IMAGE_BYTES:
        raise RuntimeError(f"qcow2 not fully allocated: {info}")
    return {"raw": raw, "qcow2": qcow2}


def check_odirect(workdir):
    path = workdir / "odirect-check"
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR | os.O_DIRECT, 0o600))
    except OSError as e:
        raise SystemExit(f"bench/blk: {workdir} does not support O_DIRECT (cache=none): {e}; "
                         "pass --dir on a disk filesystem")
    finally:
        path.unlink(missing_ok=True)


def baseline(vmm, kestrel, probe, image, fmt, aio, baseline_runs):
    """count=1 runs (the boot): {"base": ..., "rows": {}, "odirect": set()} or {"error"}."""
    try:
        base = [one_run(vmm_argv(vmm, kestrel, probe, image, fmt,
                                 "mode=randread,bs=4096,qd=1,count=1,span=1", aio), image)
                for _ in range(baseline_runs)]
    except RuntimeError as e:
        return {"error": f"baseline run failed: {e}"}
    cap = base[0]["capacity"]
    if cap != IMAGE_BYTES // 512:
        return {"error": f"guest sees {cap} sectors, expected {IMAGE_BYTES // 512} "
                         f"(the VMM did not open the image as {fmt})"}
    return {"base": {"cpu": statistics.median(b["cpu"] for b in base),
                     "vmm": statistics.median(b["cpu"] - b["guest"] for b in base)},
            "rows": {}, "odirect": set()}


def median_run(runs):
    """Each measured quantity's median over the runs (the host's storage is noisy)."""
    return {key: statistics.median(r[key] for r in runs)
            for key in ("iops", "mbps", "cpu", "guest", "wall")} | {
        "odirect": runs[0]["odirect"]}


def bench_format(kestrel, probe, image, fmt, aio, quick, baseline_runs, runs, log):
    """Both VMMs on one image: per row, `runs` runs each, the VMMs alternating who goes
    first, so that neither always meets the host's caches in the same state."""
    results = {vmm: baseline(vmm, kestrel, probe, image, fmt, aio, baseline_runs)
               for vmm in ("qemu", "kestrel")}
    live = [vmm for vmm in ("qemu", "kestrel") if "error" not in results[vmm]]
    for label, mode, bs, qd, count, quick_count in ROWS:
        n = quick_count if quick else count
        spec = f"mode={mode},bs={bs},qd={qd},count={n},span={SPAN_MIB}"
        samples = {vmm: [] for vmm in live}
        for i in range(runs):
            for vmm in (live if i % 2 == 0 else live[::-1]):
                try:
                    samples[vmm].append(one_run(vmm_argv(vmm, kestrel, probe, image, fmt, spec,
                                                         aio), image))
                except RuntimeError as e:
                    print(f"bench/blk: {vmm} {fmt} {label} failed: {e}", file=sys.stderr)
        for vmm in live:
            res = results[vmm]
            if len(samples[vmm]) < runs:
                res["rows"][label] = None
                continue
            r = median_run(samples[vmm])
            b = res["base"]
            r["cpu_req"] = (r["cpu"] - b["cpu"]) / n * 1e6
            r["vmm_req"] = (r["cpu"] - r["guest"] - b["vmm"]) / n * 1e6
            res["rows"][label] = r
            res["odirect"].add(r["odirect"])
            log(f"  {vmm:<8}{fmt:<6}{label:<18} {r['iops']:>8.0f} IOPS {r['mbps']:>8.1f} MB/s "
                f"cpu {r['cpu']:.2f} s guest {r['guest']:.2f} s wall {r['wall']:.1f} s")
    return results


def fmt_perf(label, r):
    if r is None:
        return "FAIL"
    return f"{r['mbps']:.1f} MB/s" if label.startswith("1M") else f"{r['iops']:.0f} IOPS"


def perf_of(label, r):
    return r["mbps"] if label.startswith("1M") else r["iops"]


def ratio(a, b):
    return f"{a / b:.2f}x" if a > 0 and b > 0 else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kestrel", default=str(ROOT / "build" / "src" / "kestrel"))
    ap.add_argument("--probe", default=str(ROOT / "build" / "tests" / "guest" / "probe" /
                                           "probe.elf"))
    ap.add_argument("--quick", action="store_true", help="a short smoke run (1/10 counts)")
    ap.add_argument("--baseline-runs", type=int, default=None,
                    help="count=1 runs per VMM and format (default 3, --quick 1)")
    ap.add_argument("--dir", default=None,
                    help="scratch directory for the images (default: a new one in /var/tmp)")
    ap.add_argument("--formats", default="raw,qcow2")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs per row and VMM, alternating (default 3; medians)")
    ap.add_argument("--aio", default="threads", choices=["threads", "io_uring"],
                    help="aio= engine, the same for both VMMs (default threads)")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per run on stderr")
    args = ap.parse_args()
    baseline_runs = args.baseline_runs or (1 if args.quick else 3)
    formats = args.formats.split(",")
    for path in (args.kestrel, args.probe):
        if not os.path.exists(path):
            raise SystemExit(f"bench/blk: {path} not found (build first, or --kestrel/--probe)")

    def log(text):
        if args.verbose:
            print(text, file=sys.stderr, flush=True)

    qemu_version = subprocess.run([QEMU[0], "--version"], capture_output=True,
                                  text=True).stdout.splitlines()[0]
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-blk-",
                                     dir=args.dir or "/var/tmp") as tmp:
        workdir = Path(os.path.realpath(tmp))
        check_odirect(workdir)
        images = make_images(workdir)
        results = {}
        for fmt in formats:
            both = bench_format(args.kestrel, args.probe, str(images[fmt]), fmt, args.aio,
                                args.quick, baseline_runs, args.runs, log)
            for vmm in ("qemu", "kestrel"):
                results[fmt, vmm] = both[vmm]
    elapsed = time.monotonic() - t0

    print(f"bench/blk: guest probe blk-bench, 1 GiB image, span {SPAN_MIB} MiB, "
          f"cache=none,aio={args.aio}, -m 256m, one vCPU{' (--quick)' if args.quick else ''}")
    print(f"host: {os.uname().release}, kvm_pvm="
          f"{'yes' if os.path.exists('/sys/module/kvm_pvm') else 'no'}, {os.cpu_count()} CPUs")
    print(f"kestrel: {args.kestrel}")
    print(f"qemu:    {qemu_version} (-M pc)")
    print(f"probe:   {args.probe}")
    print("CPU/req: VMM process user+sys per request less a count=1 baseline (the boot); "
          "VMM/req: the same less guest-mode time")
    for fmt in formats:
        k, q = results[fmt, "kestrel"], results[fmt, "qemu"]
        print()
        print(f"{fmt:<18}{'kestrel':^34}{'qemu -M pc':^34}{'kestrel vs qemu':^21}")
        print(f"{'test':<18}{'IOPS|MB/s':>14}{'CPU/req':>10}{'VMM/req':>10}"
              f"{'IOPS|MB/s':>14}{'CPU/req':>10}{'VMM/req':>10}"
              f"{'perf':>7}{'CPU':>7}{'VMM':>7}")
        for label, *_ in ROWS:
            cells = []
            for res in (k, q):
                r = None if "error" in res else res["rows"].get(label)
                if "error" in res:
                    cells.append(f"{'n/a':>14}{'':>10}{'':>10}")
                elif r is None:
                    cells.append(f"{'FAIL':>14}{'':>10}{'':>10}")
                else:
                    cells.append(f"{fmt_perf(label, r):>14}{r['cpu_req']:>8.1f}us"
                                 f"{r['vmm_req']:>8.1f}us")
            kr = None if "error" in k else k["rows"].get(label)
            qr = None if "error" in q else q["rows"].get(label)
            if kr and qr:
                rat = (f"{ratio(perf_of(label, kr), perf_of(label, qr)):>7}"
                       f"{ratio(qr['cpu_req'], kr['cpu_req']):>7}"
                       f"{ratio(qr['vmm_req'], kr['vmm_req']):>7}")
            else:
                rat = f"{'-':>7}{'-':>7}{'-':>7}"
            print(f"{label:<18}{cells[0]}{cells[1]}{rat}")
        for name, res in (("kestrel", k), ("qemu", q)):
            if "error" in res:
                print(f"{name} {fmt}: not measured: {res['error'].splitlines()[0]}")
            else:
                od = res["odirect"]
                note = ("image opened with O_DIRECT" if od == {True} else
                        "image opened WITHOUT O_DIRECT: cache=none not honoured, "
                        "host page cache in use" if od == {False} else
                        f"O_DIRECT seen per run: {sorted(od, key=str)}")
                print(f"{name} {fmt}: baseline (count=1, median of {baseline_runs}) "
                      f"CPU {res['base']['cpu']:.2f} s, VMM {res['base']['vmm']:.2f} s; {note}")
    print()
    print("ratios: perf kestrel/qemu, CPU and VMM qemu/kestrel; above 1 means Kestrel is better")
    print(f"total bench time {elapsed:.0f} s")
    failed = any("error" in r or None in r["rows"].values() for r in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
