#!/usr/bin/env python3
"""bench/libvirt: Kestrel vs QEMU 7.2 as libvirt's <emulator> (issue #27).

Rows, median of --runs, the two binaries alternating who goes first:

  probe    libvirtd's capability probe of the binary: the binary's ctime is
           touched (libvirt re-probes a binary whose ctime changed) and
           `virsh domcapabilities --emulatorbin BIN --virttype kvm` timed; on a
           host without KVM virsh ends with "KVM is not supported" for both,
           after the probe has run
  start    `virsh start` of a defined domain (the guest probe kernel, 64 MiB,
           virtio balloon, serial pty) until virsh returns with it running
  destroy  `virsh destroy` until the domain is shut off

start and destroy need /dev/kvm: "skipped: no /dev/kvm" otherwise.  libvirtd is
started as tests/system/libvirt_env.py starts it (its own network namespace) and
stopped at the end if this script started it."""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
import libvirt_env  # noqa: E402

QEMU_BIN = "/usr/bin/qemu-system-x86_64"


def timed(*args):
    t = time.monotonic()
    rc, out, err = libvirt_env.virsh(*args)
    return time.monotonic() - t, rc, err


def probe_time(binary):
    libvirt_env.reprobe(binary)
    secs, rc, err = timed("domcapabilities", "--emulatorbin", binary, "--arch", "x86_64",
                          "--virttype", "kvm")
    if "probing" in err or libvirt_env.cached_caps(binary) is None:
        raise SystemExit(f"libvirt could not probe {binary}: {err.strip()}")
    return secs


def domain_xml(binary, name, kernel):
    return f"""<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory>
<vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel></os>
<devices><emulator>{binary}</emulator><serial type='pty'/><memballoon model='virtio'/>
</devices></domain>
"""


def life_times(binary, name, kernel, tmp):
    xml = Path(tmp) / f"{name}.xml"
    xml.write_text(domain_xml(binary, name, kernel))
    rc, _, err = libvirt_env.virsh("define", xml)
    if rc != 0:
        raise SystemExit(f"virsh define for {binary}: {err.strip()}")
    try:
        start, rc, err = timed("start", name)
        if rc != 0:
            raise SystemExit(f"virsh start for {binary}: {err.strip()}")
        destroy, rc, err = timed("destroy", name)
        if rc != 0:
            raise SystemExit(f"virsh destroy for {binary}: {err.strip()}")
        return start, destroy
    finally:
        libvirt_env.virsh("destroy", name)
        libvirt_env.virsh("undefine", name)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="Kestrel's build directory")
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    why = libvirt_env.available()
    if why:
        raise SystemExit(f"bench/libvirt: {why}")
    kestrel = str((ROOT / a.build / "src" / "kestrel").resolve())
    kernel = ROOT / a.build / "tests" / "guest" / "probe" / "probe.elf"
    binaries = {"kestrel": kestrel, "qemu": QEMU_BIN}
    lv = libvirt_env.Libvirt()
    rows = {"probe": {}, "start": {}, "destroy": {}}
    try:
        for name, b in binaries.items():
            probe_time(b)  # warm-up: the first probe also loads libvirtd's caches
        for i in range(a.runs):
            order = list(binaries.items()) if i % 2 == 0 else list(binaries.items())[::-1]
            for name, b in order:
                rows["probe"].setdefault(name, []).append(probe_time(b))
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
            with tempfile.TemporaryDirectory(prefix="kestrel-bench-libvirt-") as tmp:
                for i in range(a.runs):
                    order = list(binaries.items()) if i % 2 == 0 else list(binaries.items())[::-1]
                    for name, b in order:
                        s, d = life_times(b, f"bench-{name}", kernel, tmp)
                        rows["start"].setdefault(name, []).append(s)
                        rows["destroy"].setdefault(name, []).append(d)
    finally:
        lv.stop()
    print(f"bench/libvirt: libvirt 9.0, median of {a.runs} (seconds; ratio = qemu / kestrel, "
          "above 1.00 Kestrel is faster)")
    print(f"{'row':<9} {'kestrel':>9} {'qemu':>9} {'ratio':>7}")
    for row, res in rows.items():
        if not res:
            print(f"{row:<9} skipped: no /dev/kvm")
            continue
        k, q = statistics.median(res["kestrel"]), statistics.median(res["qemu"])
        print(f"{row:<9} {k:>9.3f} {q:>9.3f} {q / k:>7.2f}")


if __name__ == "__main__":
    main()
