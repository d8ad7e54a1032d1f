#!/usr/bin/env python3
"""bench/storage: network storage (issue #20), Kestrel vs QEMU 7.2 on the same server.

Per protocol, its server is started by the protocol's own test module
(tests/system/test_<proto>.py, class Server: the interface in helper-storage.md)
and stopped at the end; a protocol whose module is missing, or whose available()
says no, gets a "skipped: <reason>" row.  Rows, the tools alternating who goes
first, after --warmup untimed runs each:

  to      kestrel-img / qemu-img convert -n -f raw -O raw SRC URL, into a new
          zero-filled target on the server (Server.blank) for every run
  from    convert -f raw -O raw URL OUT, a source on the server (made once, by
          qemu-img, or published by Server.put for read-only protocols) to a new
          local file every run
  guest   the guest probe (probe=blk-bench) through a virtio-blk disk on a 1 GiB
          image on the protocol, Kestrel vs QEMU 7.2 (bench/blk's runs and
          medians): 4K random and 1M sequential rates and the VMM's own CPU per
          request; "skipped: no /dev/kvm" on a host without one

SRC (--size MiB) is bench/img's mixed image: random data, text, written zeroes
and a hole in every 64 MiB stripe.  MiB/s = size / median wall time of --runs
runs; ratio = kestrel MiB/s / qemu MiB/s (above 1.00 kestrel-img is faster);
CPU = the median user+system seconds of the tool's process (getrusage of the
child; the server's CPU is not in it).  Every tool's first timed output is
checked against SRC with qemu-img compare.

The interface of tests/system/test_<proto>.py: class Server with name, Server(d)
(starts the server, its files in the directory d), blank(size) (the URL of a new
zero-filled writable target), url_for(name) (None where the protocol cannot
create), stop() (idempotent); module-level available() -> (bool, reason); a class
may have its own available().  Optional: env (the environment clients need, as
ssh's SSH_AUTH_SOCK), readonly = True (no "to" rows, no guest write rows), and
put(path) (the URL of a copy of a local image: how a read-only server gets one).

Protocols (--protocols): file (the baseline: local files), nbd (qemu-nbd as the
server), nbd-kestrel (kestrel-nbd as the server), ssh, http (read rows only),
iscsi, nfs, gluster, rbd."""
import argparse
import contextlib
import importlib
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "system"


def load(name, path):
    """bench/img and bench/blk are scripts, not a package: load them by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


img = load("bench_img", ROOT / "bench" / "img" / "bench.py")     # make_source, timed
blk = load("bench_blk", ROOT / "bench" / "blk" / "bench.py")     # the guest runs

# protocol: (test module, Server class in it)
PROTOCOLS = {
    "file": (None, None),
    "nbd": ("test_nbd", "Server"),
    "nbd-kestrel": ("test_nbd", "KestrelServer"),
    "ssh": ("test_ssh", "Server"),
    "http": ("test_http", "Server"),
    "iscsi": ("test_iscsi", "Server"),
    "nfs": ("test_nfs", "Server"),
    "gluster": ("test_gluster", "Server"),
    "rbd": ("test_rbd", "Server"),
}


# Options both tools get on a protocol's rows.  http: qemu-img 7.2's curl driver hangs
# after the last reply in about 1 of 3 converts with its default 8 parallel requests
# (measured: 6 of 20 runs, every reply sent and every connection closed, on
# tests/system/httprange.py; 0 of 20 with -m 1, kestrel-img 0 of 20 either way).
CONVERT_OPTS = {"http": ["-m", "1"]}


class FileServer:
    """The baseline: local files in d, the same interface as the protocol servers."""
    name = "file"

    def __init__(self, d):
        self.dir, self.files = d, 0

    def blank(self, size):
        self.files += 1
        path = self.dir / f"blank{self.files}.raw"
        with open(path, "wb") as f:
            f.truncate(size)
        return str(path)

    def url_for(self, name):
        return str(self.dir / name)

    def stop(self):
        pass


def server_class(proto):
    """(class, None) or (None, why it is skipped)."""
    modname, clsname = PROTOCOLS[proto]
    if modname is None:
        return FileServer, None
    if not (TESTS / f"{modname}.py").exists():
        return None, f"tests/system/{modname}.py not merged yet"
    try:
        mod = importlib.import_module(modname)
        cls = getattr(mod, clsname, None)
        check = getattr(cls, "available", None) or getattr(mod, "available", None)
        if cls is None or check is None:
            return None, f"{modname}.py has no {clsname} class or available() " \
                "(the interface: bench.py's docstring)"
        ok, why = check()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: B036 (pytest.skip at import is a BaseException)
        return None, f"{modname}: {type(e).__name__}: {str(e).strip()[:100]}"
    return (cls, None) if ok else (None, why)


@contextlib.contextmanager
def client_env(srv):
    """The server's client environment (ssh: SSH_AUTH_SOCK of its agent) for the tools
    and VMMs started meanwhile; os.environ as it was afterwards."""
    saved = dict(os.environ)
    os.environ.update(getattr(srv, "env", None) or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def sh(*argv):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600)
    if p.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {p.returncode}\n"
                           f"{p.stdout}{p.stderr}")
    return p.stdout


def on_server(srv, local, size):
    """A URL on the server holding the bytes of the local raw image."""
    if hasattr(srv, "put"):
        return srv.put(local)
    url = srv.blank(size)
    sh("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", local, url)
    return url


def convert_row(tools, srv, direction, src, size, work, args, vlog):
    """One row: {tool: (median wall s, median CPU s)}."""
    src_url = on_server(srv, src, size) if direction == "from" else None
    times = {t: [] for t in tools}
    cpu = {t: [] for t in tools}
    for run in range(-args.warmup, args.runs):
        order = list(tools.items())
        if run % 2:
            order.reverse()         # neither tool always runs first (bench/img)
        for tool, binary in order:
            opts = ["convert", *CONVERT_OPTS.get(srv.name, []), "-f", "raw", "-O", "raw"]
            if direction == "to":
                out = srv.blank(size)
                argv = [binary, *opts, "-n", src, out]
            else:
                out = work / f"out.{tool}.raw"
                out.unlink(missing_ok=True)
                argv = [binary, *opts, src_url, out]
            os.sync()
            # timeout(1) ends a hung run (a server that stops answering); its rusage
            # holds the tool's, as wait4 counts the children it reaped.
            wall, cpu_s = img.timed(["timeout", str(args.timeout), *map(str, argv)])
            if run >= 0:
                times[tool].append(wall)
                cpu[tool].append(cpu_s)
                vlog(f"    {srv.name} {direction} {tool:12s} run {run + 1}: {wall:.3f} s, "
                    f"cpu {cpu_s:.3f} s")
            if run == 0:
                sh("qemu-img", "compare", "-f", "raw", "-F", "raw", src, out)
            if direction == "from":
                out.unlink()
    return {t: (statistics.median(times[t]), statistics.median(cpu[t])) for t in tools}


def guest_rows(srv, args, raw, readonly):
    """bench/blk's runs on a 1 GiB image on the protocol: {(vmm): results} or a reason."""
    kestrel = ROOT / args.build / "src" / "kestrel"
    probe = ROOT / args.build / "tests" / "guest" / "probe" / "probe.elf"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no /dev/kvm"
    for path in (kestrel, probe):
        if not path.exists():
            return f"{path} not built"
    if not shutil.which(blk.QEMU[0]):
        return f"{blk.QEMU[0]} not installed"
    url = on_server(srv, raw, blk.IMAGE_BYTES)
    rows = blk.ROWS
    if readonly:
        blk.ROWS = [r for r in rows if "write" not in r[1]]
    try:
        # -drive file=...: a comma in the name is doubled (QEMU's option syntax).
        res = blk.bench_format(str(kestrel), str(probe), url.replace(",", ",,"), "raw",
                               "threads", not args.guest_full, 1, args.guest_runs,
                               lambda text: print(text, file=sys.stderr, flush=True)
                               if args.verbose else None)
        return res | {"readonly": readonly}
    finally:
        blk.ROWS = rows


def bench_protocol(proto, tools, src, raw, size, work, args, log, vlog):
    """[(direction, result or skip reason)] for one protocol."""
    cls, why = server_class(proto)
    if cls is None:
        return [("to/from", why)]
    d = work / proto
    d.mkdir()
    t = time.monotonic()
    try:
        srv = cls(d)
    except Exception as e:      # noqa: BLE001 (the server's log is in the message)
        return [("to/from", f"server did not start: {str(e).splitlines()[0][:120]}")]
    rows = []
    try:
        log(f"  {proto}: server up in {time.monotonic() - t:.1f} s")
        readonly = getattr(srv, "readonly", False)      # http: no "to" row
        with client_env(srv):
            for direction in ["from"] if readonly else ["to", "from"]:
                try:
                    rows.append((direction, convert_row(tools, srv, direction, src,
                                                        size << 20, work, args, vlog)))
                except RuntimeError as e:
                    log(f"  {proto} {direction}: {e}")
                    rows.append((direction, "FAILED: " + str(e).splitlines()[0][:100]))
                    continue
                k, q = rows[-1][1]["kestrel-img"], rows[-1][1]["qemu-img"]
                log(f"  {proto:12s}{direction:5s} kestrel-img {size / k[0]:8.1f} MiB/s  "
                    f"qemu-img {size / q[0]:8.1f} MiB/s  ratio {q[0] / k[0]:5.2f}")
            if args.guest:
                try:
                    rows.append(("guest", guest_rows(srv, args, raw, readonly)))
                except RuntimeError as e:
                    log(f"  {proto} guest: {e}")
                    rows.append(("guest", "FAILED: " + str(e).splitlines()[0][:100]))
    finally:
        srv.stop()
    return rows


def readonly_guest(r):
    return r.get("readonly", False)


def print_tables(results, size_mib):
    print()
    print(f"| {'protocol':12s} | {'dir':4s} | {'kestrel MiB/s':>13s} | {'qemu MiB/s':>10s} | "
          f"{'ratio':>5s} | {'kestrel CPU s':>13s} | {'qemu CPU s':>10s} |")
    print(f"|{'-' * 14}|{'-' * 6}|{'-' * 15}|{'-' * 12}|{'-' * 7}|{'-' * 15}|{'-' * 12}|")
    guests = []
    for proto, rows in results:
        for direction, r in rows:
            if direction == "guest":
                guests.append((proto, r))
            elif isinstance(r, str):
                why = r if r.startswith("FAILED") else f"skipped: {r}"
                print(f"| {proto:12s} | {direction:4s} | {why}")
            else:
                (kw, kc), (qw, qc) = r["kestrel-img"], r["qemu-img"]
                print(f"| {proto:12s} | {direction:4s} | {size_mib / kw:13.1f} | "
                      f"{size_mib / qw:10.1f} | {qw / kw:5.2f} | {kc:13.3f} | {qc:10.3f} |")
    if not guests:
        return
    print()
    print(f"| {'protocol':12s} | {'guest test':18s} | {'kestrel':>12s} | {'qemu':>12s} | "
          f"{'ratio':>5s} | {'kestrel VMM/req':>15s} | {'qemu VMM/req':>12s} |")
    print(f"|{'-' * 14}|{'-' * 20}|{'-' * 14}|{'-' * 14}|{'-' * 7}|{'-' * 17}|{'-' * 14}|")
    for proto, r in guests:
        if isinstance(r, str):
            why = r if r.startswith("FAILED") else f"skipped: {r}"
            print(f"| {proto:12s} | {'all':18s} | {why}")
            continue
        k, q = r["kestrel"], r["qemu"]
        for label, *_ in blk.ROWS:
            if readonly_guest(r) and "write" in label:
                continue            # a read-only protocol: no write rows
            kr = None if "error" in k else k["rows"].get(label)
            qr = None if "error" in q else q["rows"].get(label)
            cells = [blk.fmt_perf(label, x) if x else "FAIL" for x in (kr, qr)]
            if kr and qr:
                rat = blk.ratio(blk.perf_of(label, kr), blk.perf_of(label, qr))
                kv, qv = f"{kr['vmm_req']:.1f} us", f"{qr['vmm_req']:.1f} us"
            else:
                rat, kv, qv = "-", "-", "-"
            print(f"| {proto:12s} | {label:18s} | {cells[0]:>12s} | {cells[1]:>12s} | "
                  f"{rat:>5s} | {kv:>15s} | {qv:>12s} |")
        for name, res in (("kestrel", k), ("qemu", q)):
            if "error" in res:
                print(f"| {proto:12s} | {name} not measured: {res['error'].splitlines()[0]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("KESTREL_BUILD", "build"),
                    help="the build whose binaries are measured (default build; use a copy "
                    "that no edit is rebuilding)")
    ap.add_argument("--size", type=int, default=64, help="source image MiB (default 64)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per tool and row "
                    "(default 3; medians)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each tool before "
                    "a row's timed ones (default 1)")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS),
                    help="comma-separated (default: %(default)s)")
    ap.add_argument("--no-guest", dest="guest", action="store_false",
                    help="leave out the guest rows")
    ap.add_argument("--guest-runs", type=int, default=1,
                    help="guest runs per row and VMM (default 1: the guest rows of every "
                    "protocol in a few minutes)")
    ap.add_argument("--guest-full", action="store_true",
                    help="bench/blk's full request counts (default: its --quick counts)")
    ap.add_argument("--timeout", type=int, default=120,
                    help="seconds one convert may take before it counts as failed "
                    "(default 120)")
    ap.add_argument("--dir", help="work directory (default: a temporary one in /var/tmp)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run's time")
    args = ap.parse_args()
    # SIGTERM (timeout(1), a CI runner) stops the servers as ^C does: by the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    protos = [p for p in args.protocols.split(",") if p]
    for p in protos:
        if p not in PROTOCOLS:
            sys.exit(f"--protocols: unknown protocol {p!r} (known: {', '.join(PROTOCOLS)})")
    build = (ROOT / args.build).resolve()
    kimg = build / "src" / "block" / "kestrel-img"
    if not kimg.exists():
        sys.exit(f"{kimg} not built (ninja -C {args.build})")
    if not shutil.which("qemu-img"):
        sys.exit("qemu-img not found (apt-get install qemu-utils)")
    # The test modules find the binaries (and decide availability) by KESTREL_BUILD.
    os.environ["KESTREL_BUILD"] = str(build)
    sys.path.insert(0, str(TESTS))

    def log(text):
        print(text, flush=True)

    def vlog(text):
        if args.verbose:
            print(text, flush=True)

    size = args.size << 20
    work = Path(args.dir or tempfile.mkdtemp(prefix="kestrel-storage-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    tools = {"kestrel-img": str(kimg), "qemu-img": "qemu-img"}
    t0 = time.monotonic()
    results = []
    try:
        src = work / "src.raw"
        log(f"preparing a {args.size} MiB mixed source image in {work} ...")
        img.make_source(src, size)
        raw = None
        if args.guest and os.access("/dev/kvm", os.R_OK | os.W_OK):
            raw = blk.make_images(work)["raw"]      # the guest rows' 1 GiB image
        for proto in protos:
            results.append((proto, bench_protocol(proto, tools, src, raw, args.size, work,
                                                  args, log, vlog)))
        qemu_img = sh("qemu-img", "--version").splitlines()[0]
        print_tables(results, args.size)
        extra = "; ".join(f"{p}: {' '.join(o)}" for p, o in CONVERT_OPTS.items() if p in protos)
        print(f"\n{args.size} MiB source (bench/img's mixed image), convert -f raw -O raw"
              f"{f' ({extra}, see bench.py)' if extra else ''}; medians of "
              f"{args.runs} runs after {args.warmup} warm-up, tools alternating.\n"
              f"ratio = kestrel MiB/s / qemu MiB/s: above 1.00 Kestrel is faster.  CPU s: "
              f"user+sys of the tool\nprocess per run (the server's not included).  "
              f"kestrel-img: {kimg}\n{qemu_img}; {os.cpu_count()} CPUs; "
              f"total {time.monotonic() - t0:.0f} s.")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
