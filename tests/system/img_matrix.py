#!/usr/bin/env python3
"""The kestrel-img / qemu-img 7.2 differential matrix (issue 25).

Each case names a fixture (input images made by qemu-img and qemu-io, or the
hostile corpus generator, built once) and one or more kestrel-img commands.
A case runs twice, each side on its own fresh copy of the fixture in its own
directory: once with qemu-img, once with kestrel-img.  It differs when any
command's exit status, stdout or stderr differs line by line, or when any file
the two sides leave behind differs as qemu-img sees it (qemu-img compare, and
info, map and check --output=json of each side's file).

Normalisation is limited to what must differ between the two runs:
  - kestrel-img's own name, as "qemu-img" (a drop-in replacement is installed
    under that name; the binary is run here as kestrel-img);
  - each side's temporary directory, as "$TMP".
Three more, each confined to where it applies and justified where it is done
(TIMED cases: bench's "Run completed in N seconds"; snapshot dates in the
JSON of the resulting images; QEMU's generated node names, "#blockNNN").

Used by tests/system/test_img_differential.py (which holds the list of
differences still being fixed, PENDING) and bench/img_matrix; run directly:

    python3 tests/system/img_matrix.py --report [--only REGEX] [-j N]
        prints every difference, then the doc entries (docs/kestrel-img.1,
        DIFFERENCES FROM QEMU-IMG) and PENDING entries that would make the
        test pass, and the stale ones;
    python3 tests/system/img_matrix.py --prune
        deletes from test_img_differential.py's PENDING every entry whose
        case no longer differs (after merging a fix);
    python3 tests/system/img_matrix.py --show CASE-ID
        prints both sides' full output of one case.
"""
import argparse
import ast
import concurrent.futures
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUILD = ROOT / os.environ.get("KESTREL_BUILD", "build")
KIMG = BUILD / "src" / "block" / "kestrel-img"
DOC = ROOT / "docs" / "kestrel-img.1"
TEST_FILE = HERE / "test_img_differential.py"

Q_LIMIT = 20        # seconds: a qemu-img command past this counts as hung
K_LIMIT = 60        # seconds: kestrel-img's absolute limit, whatever qemu-img does

# ---------------------------------------------------------------------------
# Fixtures: input images, made by qemu-img/qemu-io (or the hostile corpus
# generator) so both sides start from the same bytes.  Steps are shell-like
# words: a tool (qemu-img, qemu-io), "mkdir DIR", or "hostile NAME" (the
# corpus image NAME.qcow2 and its backing files).

DATA = ["-c", "write -P 0x11 0 64k", "-c", "write -P 0x22 1M 64k",
        "-c", "write -P 0x33 3M 512"]


def io(fmt, img, *writes):
    return ["qemu-io", "-f", fmt, *(w for spec in writes for w in ("-c", spec)), img]


def data(fmt, img):
    return ["qemu-io", "-f", fmt, *DATA, img]


def qi(words):
    return ["qemu-img", *shlex.split(words)]


FIXTURES = {
    "empty": [],
    "raw": [qi("create -q -f raw a.raw 4M"), data("raw", "a.raw")],
    "qcow2": [qi("create -q -f qcow2 a.qcow2 4M"), data("qcow2", "a.qcow2"),
              io("qcow2", "a.qcow2", "write -z 2M 64k")],
    "qcow2-4k": [qi("create -q -f qcow2 -o cluster_size=4k a.qcow2 4M"), data("qcow2", "a.qcow2")],
    "v2": [qi("create -q -f qcow2 -o compat=0.10 a.qcow2 4M"), data("qcow2", "a.qcow2")],
    "lazy": [qi("create -q -f qcow2 -o lazy_refcounts=on a.qcow2 4M"), data("qcow2", "a.qcow2")],
    "comp": [qi("create -q -f raw s.raw 4M"), data("raw", "s.raw"),
             qi("convert -c -O qcow2 s.raw a.qcow2")],
    "zstd": [qi("create -q -f raw s.raw 4M"), data("raw", "s.raw"),
             qi("convert -c -O qcow2 -o compression_type=zstd s.raw a.qcow2")],
    "snap": [qi("create -q -f qcow2 a.qcow2 4M"), data("qcow2", "a.qcow2"),
             qi("snapshot -c s1 a.qcow2"), io("qcow2", "a.qcow2", "write -P 0x44 0 64k"),
             qi("snapshot -c s2 a.qcow2"), io("qcow2", "a.qcow2", "write -P 0x55 2M 128k")],
    "chain": [qi("create -q -f qcow2 base.qcow2 4M"), data("qcow2", "base.qcow2"),
              qi("create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2"),
              io("qcow2", "top.qcow2", "write -P 0x44 1M 64k", "write -P 0x55 2M 64k")],
    "chain-raw": [qi("create -q -f raw base.raw 4M"), data("raw", "base.raw"),
                  qi("create -q -f qcow2 -b base.raw -F raw top.qcow2"),
                  io("qcow2", "top.qcow2", "write -P 0x44 1M 64k")],
    "chain3": [qi("create -q -f qcow2 base.qcow2 4M"), data("qcow2", "base.qcow2"),
               qi("create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2"),
               io("qcow2", "mid.qcow2", "write -P 0x44 1M 64k"),
               qi("create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2"),
               io("qcow2", "top.qcow2", "write -P 0x55 2M 64k")],
    # Backing names relative to the overlay's directory, not the working one.
    "sub": [["mkdir", "sub"], qi("create -q -f qcow2 sub/base.qcow2 4M"),
            data("qcow2", "sub/base.qcow2"),
            qi("create -q -f qcow2 -b base.qcow2 -F qcow2 sub/mid.qcow2"),
            io("qcow2", "sub/mid.qcow2", "write -P 0x44 1M 64k"),
            qi("create -q -f qcow2 -b mid.qcow2 -F qcow2 sub/top.qcow2"),
            io("qcow2", "sub/top.qcow2", "write -P 0x55 2M 64k")],
    # An overlay that writes zeroes over all of its base.
    "zero-top": [qi("create -q -f qcow2 base.qcow2 4M"), data("qcow2", "base.qcow2"),
                 qi("create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2"),
                 io("qcow2", "top.qcow2", "write -z 0 4M")],
    # 2100 MiB + 512: not a multiple of the cluster size; data in the last sector.
    "odd": [qi("create -q -f qcow2 base.qcow2 2202009088"),
            io("qcow2", "base.qcow2", "write -P 0x11 2201944064 65024"),
            qi("create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2"),
            io("qcow2", "top.qcow2", "write -P 0x66 2201944064 512",
               "write -P 0x77 2202008576 512")],
    "two": [qi("create -q -f qcow2 a.qcow2 4M"), data("qcow2", "a.qcow2"),
            qi("create -q -f qcow2 b.qcow2 4M"), data("qcow2", "b.qcow2"),
            io("qcow2", "b.qcow2", "write -P 0x99 1M 512"),
            qi("create -q -f qcow2 c.qcow2 8M"), data("qcow2", "c.qcow2"),
            qi("create -q -f raw a.raw 4M"), data("raw", "a.raw")],
    "bitmaps": [qi("create -q -f qcow2 a.qcow2 4M"), data("qcow2", "a.qcow2"),
                qi("bitmap --add a.qcow2 b0"), qi("bitmap --add --disable a.qcow2 b1"),
                qi("bitmap --add -g 128k a.qcow2 b2")],
    "shrink": [qi("create -q -f qcow2 a.qcow2 1M"), io("qcow2", "a.qcow2", "write -P 0xaa 0 1M")],
    "extl2": [qi("create -q -f qcow2 -o extended_l2=on a.qcow2 4M"), data("qcow2", "a.qcow2")],
    "datafile": [qi("create -q -f qcow2 -o data_file=a.data a.qcow2 4M"),
                 data("qcow2", "a.qcow2")],
    "datafile-raw": [qi("create -q -f qcow2 -o data_file=a.data,data_file_raw=on a.qcow2 4M"),
                     data("qcow2", "a.qcow2")],
}

# Targets for convert -n, made beforehand as a script would.
for _src in ("raw", "qcow2"):
    for _out in ("raw", "qcow2"):
        FIXTURES[f"{_src}+{_out}"] = FIXTURES[_src] + [qi(f"create -q -f {_out} out.img 4M")]
# Other backing files for rebase: the base as raw, and an empty one.
FIXTURES["chain+bases"] = FIXTURES["chain"] + [qi("convert -O raw base.qcow2 b.raw"),
                                               qi("create -q -f qcow2 b2.qcow2 4M")]

# A sample of the hostile corpus (hostile_qcow2.py): every kind of damage,
# and the ones issue 25 names (compressed descriptors with corrupt sizes,
# short snapshot entries, unknown autoclear bits).  No backing loops: qemu-img
# 7.2 hangs on them.
HOSTILE = ["hdr-size-odd", "hdr-incompat-dirty", "hdr-incompat-corrupt", "hdr-autoclear-unknown",
           "hdr-nbsnap-no-table", "l1-unaligned", "l2-unaligned", "l2-dup-copied", "l2-zero-v2",
           "comp-max-sectors", "comp-512", "comp-2m", "comp-garbage", "rt-zero", "rc-data-0",
           "rc-data-2", "rc-order0-leak", "rb-zeroed", "trunc-l2", "grow-garbage", "snap-extra-0",
           "snap-nb-more", "snap-table-eof", "snap-dup-id", "ext-bitmap-inuse", "ext-unknown",
           "back-missing", "lazy-dirty-stale", "ov-l2-on-refblock", "ov-data-on-l1"]
for _h in HOSTILE:
    FIXTURES["h-" + _h] = [["hostile", _h]]


# ---------------------------------------------------------------------------
# Cases.

@dataclass
class Case:
    id: str
    fixture: str
    cmds: list                  # argv lists after the program name; "{d}" is the side's dir
    timed: bool = False         # output holds a wall-clock time (bench)

    @property
    def command(self):
        return self.cmds[0][0] if self.cmds and self.cmds[0] else ""


CASES = []


def case(cid, fixture, *cmds, timed=False):
    assert fixture in FIXTURES, fixture
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.=+_-]*", cid), cid
    CASES.append(Case(cid, fixture, [shlex.split(c) for c in cmds], timed))


def _general():
    case("noargs", "empty", "")
    for opt in ("--help", "-h", "--version", "-V"):
        case("top" + opt, "empty", opt)
    case("top-unknown-option", "empty", "--frobnicate")
    case("unknown-command", "empty", "frobnicate a.qcow2")
    for cmd in ("info", "check", "map", "create", "convert", "commit", "compare", "snapshot",
                "rebase", "resize", "amend", "measure", "dd", "bench", "bitmap"):
        case(f"{cmd}-noargs", "empty", cmd)
        case(f"{cmd}-help", "empty", f"{cmd} --help")
        case(f"{cmd}-badopt", "qcow2", f"{cmd} --frobnicate a.qcow2")
    for cmd in ("info", "check", "map", "snapshot -l", "commit", "amend -o lazy_refcounts=on",
                "resize", "compare a.qcow2", "convert -O raw", "rebase -u -b x"):
        name = cmd.split()[0]
        tail = " 1M" if cmd == "resize" else (" out.raw" if name == "convert" else "")
        case(f"{name}-missing-file", "qcow2", f"{cmd} nosuch.qcow2{tail}")
        case(f"{name}-fmt-mismatch", "raw", f"{cmd.replace('a.qcow2', 'a.raw')} -f qcow2 a.raw"
             f"{tail}")


IMAGES = {"raw": "a.raw", "qcow2": "a.qcow2", "qcow2-4k": "a.qcow2", "v2": "a.qcow2",
          "lazy": "a.qcow2", "comp": "a.qcow2", "zstd": "a.qcow2", "snap": "a.qcow2",
          "chain": "top.qcow2", "chain-raw": "top.qcow2", "chain3": "top.qcow2",
          "bitmaps": "a.qcow2", "extl2": "a.qcow2", "datafile": "a.qcow2",
          "datafile-raw": "a.qcow2", "sub": "sub/top.qcow2"}


def _info_check_map():
    for fx, img in IMAGES.items():
        case(f"info-{fx}", fx, f"info {img}")
        case(f"info-json-{fx}", fx, f"info --output=json {img}")
        case(f"check-{fx}", fx, f"check {img}")
        case(f"map-{fx}", fx, f"map {img}")
        case(f"map-json-{fx}", fx, f"map --output=json {img}")
    for fx in ("chain", "chain3", "chain-raw", "sub"):
        case(f"info-chain-{fx}", fx, f"info --backing-chain {IMAGES[fx]}")
        case(f"info-chain-json-{fx}", fx, f"info --backing-chain --output=json {IMAGES[fx]}")
    for fx in ("raw", "qcow2"):
        img = IMAGES[fx]
        fmt = "raw" if fx == "raw" else "qcow2"
        case(f"info-U-{fx}", fx, f"info -U {img}")
        case(f"info-f-{fx}", fx, f"info -f {fmt} {img}")
        case(f"info-file-prefix-{fx}", fx, f"info file:{img}")
        case(f"info-json-name-{fx}", fx,
             "info 'json:{\"driver\":\"%s\",\"file\":{\"driver\":\"file\",\"filename\":\"%s\"}}'"
             % (fmt, img))
        case(f"info-image-opts-{fx}", fx, f"info --image-opts driver={fmt},file.filename={img}")
        case(f"info-object-{fx}", fx, f"info --object secret,id=sec0,data=x {img}")
        case(f"check-json-{fx}", fx, f"check --output=json {img}")
        case(f"check-q-{fx}", fx, f"check -q {img}")
        case(f"check-r-leaks-{fx}", fx, f"check -r leaks {img}")
        case(f"check-r-all-{fx}", fx, f"check -r all {img}")
        case(f"check-image-opts-{fx}", fx,
             f"check --image-opts driver={fmt},file.filename={img}")
        case(f"map-image-opts-{fx}", fx, f"map --image-opts driver={fmt},file.filename={img}")
        case(f"check-badoutput-{fx}", fx, f"check --output=xml {img}")
        case(f"check-bad-r-{fx}", fx, f"check -r some {img}")
        case(f"check-T-{fx}", fx, f"check -T none {img}")
        case(f"info-badoutput-{fx}", fx, f"info --output=xml {img}")
        for start, length in (("0", "64k"), ("65536", "1M"), ("1000", "70000"),
                              ("1M", "1"), ("3M", "4M"), ("4M", "1")):
            case(f"map-range-{start}-{length}-{fx}", fx,
                 f"map --output=json --start-offset={start} --max-length={length} {img}")
        case(f"map-range-human-{fx}", fx, f"map --start-offset=1000 --max-length=70000 {img}")
        case(f"map-badoffset-{fx}", fx, f"map --start-offset=-1 {img}")
    case("map-chain-json-f", "chain", "map --output=json -f qcow2 top.qcow2")
    for name in ("null-co://", "blkdebug::a.qcow2", "nbd+unix:///x?socket=nosuch.sock"):
        tag = name.split(":")[0]
        case(f"info-name-{tag}", "qcow2", f"info '{name}'")
    case("check-r-leaks-json-qcow2", "qcow2", "check -r leaks --output=json a.qcow2")
    case("check-lazy-r-all", "lazy", "check -r all a.qcow2")


def _create():
    for fmt in ("raw", "qcow2"):
        case(f"create-{fmt}", "empty", f"create -f {fmt} n.img 4M")
        case(f"create-q-{fmt}", "empty", f"create -q -f {fmt} n.img 4M")
        sizes = ("1024.0", "0.5G", "1k", "1.5M", "512b", "1T", "17", "1x", "-1", "0",
                 "1e3", "16E", "0x100000")
        for size in sizes if fmt == "qcow2" else sizes[:2] + ("1x",):
            case(f"create-size-{size}-{fmt}", "empty", f"create -f {fmt} n.img {size}")
        case(f"create-nosize-{fmt}", "empty", f"create -f {fmt} n.img")
        case(f"create-size-opt-{fmt}", "empty", f"create -f {fmt} -o size=2M n.img")
        for p in ("off", "metadata", "falloc", "full", "bogus"):
            case(f"create-prealloc-{p}-{fmt}", "empty",
                 f"create -f {fmt} -o preallocation={p} n.img 1M")
        case(f"create-o-help-{fmt}", "empty", f"create -f {fmt} -o help")
        case(f"create-o-question-{fmt}", "empty", f"create -f {fmt} -o ? n.img 1M")
        case(f"create-o-unknown-{fmt}", "empty", f"create -f {fmt} -o frob=1 n.img 1M")
        case(f"create-exists-{fmt}", "raw", f"create -f {fmt} a.raw 1M")
        case(f"create-extent-size-hint-{fmt}", "empty",
             f"create -f {fmt} -o extent_size_hint=1M n.img 1M")
    case("create-noformat", "empty", "create n.img 1M")
    case("create-badformat", "empty", "create -f nosuch n.img 1M")
    for fmt in ("bochs", "cloop", "dmg"):
        case(f"create-f-{fmt}", "empty", f"create -f {fmt} n.img 1M")
    for opts in ("cluster_size=512", "cluster_size=4k", "cluster_size=2M", "cluster_size=3000",
                 "cluster_size=4M", "compat=0.10", "compat=1.1", "compat=v3", "compat=0.42",
                 "version=0.42", "lazy_refcounts=on", "lazy_refcounts=maybe",
                 "compat=0.10,lazy_refcounts=on", "refcount_bits=1", "refcount_bits=64",
                 "refcount_bits=3", "compression_type=zstd", "compression_type=lz4",
                 "compat=0.10,compression_type=zstd", "extended_l2=on",
                 "extended_l2=on,cluster_size=4k", "extended_l2=on,cluster_size=512",
                 "data_file=n.data", "data_file=n.data,data_file_raw=on",
                 "data_file_raw=on", "encrypt.format=luks", "cluster_size=64k,cluster_size=4k"):
        case("create-o-" + opts.replace(",", "+"), "empty",
             f"create -f qcow2 -o {opts} n.qcow2 4M")
    case("create-backing", "qcow2", "create -f qcow2 -b a.qcow2 -F qcow2 n.qcow2")
    case("create-backing-size", "qcow2", "create -f qcow2 -b a.qcow2 -F qcow2 n.qcow2 8M")
    case("create-backing-noF", "qcow2", "create -f qcow2 -b a.qcow2 n.qcow2")
    case("create-backing-missing", "empty", "create -f qcow2 -b nosuch.qcow2 -F qcow2 n.qcow2")
    case("create-backing-u", "empty", "create -f qcow2 -u -b nosuch.qcow2 -F qcow2 n.qcow2 4M")
    case("create-backing-abs", "qcow2", "create -f qcow2 -b {d}/a.qcow2 -F qcow2 n.qcow2")
    case("create-backing-raw", "raw", "create -f qcow2 -b a.raw -F raw n.qcow2")
    case("create-backing-o", "qcow2",
         "create -f qcow2 -o backing_file=a.qcow2,backing_fmt=qcow2 n.qcow2")
    case("create-backing-file-prefix", "qcow2", "create -f qcow2 -b file:a.qcow2 -F qcow2 n.qcow2")
    case("create-file-prefix", "empty", "create -f qcow2 file:n.qcow2 1M")
    case("create-object", "empty", "create -f qcow2 --object secret,id=s0,data=pw n.qcow2 1M")
    case("create-luks", "empty",
         "create -f luks --object secret,id=s0,data=pw -o key-secret=s0,iter-time=10 n.luks 1M")


def _convert():
    srcs = {"raw": "a.raw", "qcow2": "a.qcow2", "comp": "a.qcow2", "snap": "a.qcow2",
            "chain": "top.qcow2", "v2": "a.qcow2"}
    for fx, img in srcs.items():
        for out in ("raw", "qcow2"):
            case(f"convert-{fx}-to-{out}", fx, f"convert -O {out} {img} out.img")
    for fx in ("raw", "qcow2"):
        img = srcs[fx]
        for out in ("raw", "qcow2"):
            o = f"-O {out} {img} out.img"
            case(f"convert-S0-{fx}-{out}", fx, f"convert -S 0 {o}")
            case(f"convert-S64k-{fx}-{out}", fx, f"convert -S 64k {o}")
            case(f"convert-S1k-{fx}-{out}", fx, f"convert -S 1k {o}")
            case(f"convert-p-{fx}-{out}", fx, f"convert -p {o}")
            case(f"convert-q-{fx}-{out}", fx, f"convert -q {o}")
            case(f"convert-C-{fx}-{out}", fx, f"convert -C {o}")
            case(f"convert-m4-{fx}-{out}", fx, f"convert -m 4 {o}")
            case(f"convert-t-none-{fx}-{out}", fx, f"convert -t none -T none {o}")
            case(f"convert-n-{fx}-{out}", f"{fx}+{out}", f"convert -n {o}")
            case(f"convert-n-tiz-{fx}-{out}", f"{fx}+{out}", f"convert -n --target-is-zero {o}")
            case(f"convert-n-o-{fx}-{out}", f"{fx}+{out}", f"convert -n -o cluster_size=4k {o}")
        case(f"convert-c-{fx}", fx, f"convert -c -O qcow2 {img} out.qcow2")
        case(f"convert-c-zstd-{fx}", fx,
             f"convert -c -O qcow2 -o compression_type=zstd {img} out.qcow2")
        case(f"convert-c-raw-{fx}", fx, f"convert -c -O raw {img} out.raw")
        for opts in ("cluster_size=4k", "preallocation=metadata", "preallocation=full",
                     "preallocation=falloc", "compat=0.10", "refcount_bits=1",
                     "extended_l2=on", "data_file=out.data", "lazy_refcounts=on"):
            case(f"convert-o-{opts}-{fx}", fx, f"convert -O qcow2 -o {opts} {img} out.qcow2")
        case(f"convert-o-help-{fx}", fx, f"convert -O qcow2 -o help {img} out.qcow2")
        case(f"convert-B-{fx}", fx, f"convert -O qcow2 -B {img} -F {fx} {img} out.qcow2")
        case(f"convert-file-prefix-{fx}", fx, f"convert -O raw file:{img} out.raw")
        case(f"convert-image-opts-{fx}", fx,
             f"convert --image-opts driver={fx},file.filename={img} -O raw out.raw")
        case(f"convert-badfmt-{fx}", fx, f"convert -O nosuch {img} out.img")
        case(f"convert-to-self-{fx}", fx, f"convert -O {fx} {img} {img}")
    case("convert-concat", "two", "convert -O qcow2 a.qcow2 b.qcow2 a.raw out.qcow2")
    case("convert-concat-raw", "two", "convert -O raw a.raw a.qcow2 out.raw")
    case("convert-l-snap", "snap", "convert -O raw -l s1 a.qcow2 out.raw")
    case("convert-l-snapid", "snap", "convert -O raw -l snapshot.id=1 a.qcow2 out.raw")
    case("convert-l-nosnap", "snap", "convert -O raw -l nosuch a.qcow2 out.raw")
    case("convert-chain-B", "chain", "convert -O qcow2 -B base.qcow2 -F qcow2 top.qcow2 out.qcow2")
    case("convert-zstd-to-raw", "zstd", "convert -O raw a.qcow2 out.raw")
    case("convert-bitmaps", "bitmaps", "convert -O qcow2 --bitmaps a.qcow2 out.qcow2")
    case("convert-extl2", "extl2", "convert -O raw a.qcow2 out.raw")
    case("convert-datafile", "datafile", "convert -O raw a.qcow2 out.raw")
    case("convert-missing-out", "qcow2", "convert -O raw a.qcow2")


def _resize_snapshot():
    for fx, img in (("raw", "a.raw"), ("qcow2", "a.qcow2")):
        case(f"resize-grow-{fx}", fx, f"resize {img} +1M")
        case(f"resize-abs-{fx}", fx, f"resize {img} 8M")
        case(f"resize-shrink-refused-{fx}", fx, f"resize {img} 2M")
        case(f"resize-shrink-{fx}", fx, f"resize --shrink {img} 2M")
        case(f"resize-minus-{fx}", fx, f"resize --shrink {img} -- -1M")
        case(f"resize-q-{fx}", fx, f"resize -q {img} 5M")
        case(f"resize-badsize-{fx}", fx, f"resize {img} 1x")
        case(f"resize-odd-{fx}", fx, f"resize {img} 4194817")
        for p in ("off", "metadata", "falloc", "full"):
            case(f"resize-prealloc-{p}-{fx}", fx, f"resize --preallocation={p} {img} 8M")
        case(f"resize-f-{fx}", fx, f"resize -f {fx} {img} 6M")
    case("resize-shrink-grow", "shrink", "resize --shrink a.qcow2 520K", "resize a.qcow2 567K")
    case("resize-shrink-small", "qcow2", "resize --shrink a.qcow2 64k")
    case("resize-snap", "snap", "resize a.qcow2 8M")
    case("resize-v2", "v2", "resize a.qcow2 8M")
    case("resize-image-opts", "qcow2", "resize --image-opts driver=qcow2,file.filename=a.qcow2 8M")
    case("snapshot-l", "snap", "snapshot -l a.qcow2")
    case("snapshot-l-none", "qcow2", "snapshot -l a.qcow2")
    case("snapshot-l-raw", "raw", "snapshot -l a.raw")
    case("snapshot-c", "qcow2", "snapshot -c s9 a.qcow2")
    case("snapshot-c-dup", "snap", "snapshot -c s1 a.qcow2")
    case("snapshot-c-raw", "raw", "snapshot -c s1 a.raw")
    case("snapshot-d", "snap", "snapshot -d s1 a.qcow2")
    case("snapshot-d-id", "snap", "snapshot -d 2 a.qcow2")
    case("snapshot-d-missing", "snap", "snapshot -d nosuch a.qcow2")
    case("snapshot-a", "snap", "snapshot -a s1 a.qcow2")
    case("snapshot-a-missing", "snap", "snapshot -a nosuch a.qcow2")
    case("snapshot-two-ops", "snap", "snapshot -l -d s1 a.qcow2")
    case("snapshot-v2-c", "v2", "snapshot -c s1 a.qcow2")


def _commit_rebase_amend():
    case("commit", "chain", "commit top.qcow2")
    case("commit-d", "chain", "commit -d top.qcow2")
    case("commit-q", "chain", "commit -q top.qcow2")
    case("commit-p", "chain", "commit -p top.qcow2")
    case("commit-raw-base", "chain-raw", "commit top.qcow2")
    case("commit-nobacking", "qcow2", "commit a.qcow2")
    case("commit-chain3", "chain3", "commit top.qcow2")
    case("commit-b-base", "chain3", "commit -b base.qcow2 top.qcow2")
    case("commit-b-mid", "chain3", "commit -b mid.qcow2 top.qcow2")
    case("commit-b-abs", "chain3", "commit -b {d}/base.qcow2 top.qcow2")
    case("commit-b-rel", "sub", "commit -b base.qcow2 sub/top.qcow2")
    case("commit-b-subpath", "sub", "commit -b sub/base.qcow2 sub/top.qcow2")
    case("commit-b-abs-sub", "sub", "commit -b {d}/sub/base.qcow2 sub/top.qcow2")
    case("commit-b-notinchain", "chain3", "commit -b nosuch.qcow2 top.qcow2")
    case("commit-odd-size", "odd", "commit top.qcow2")
    case("commit-zero-top", "zero-top", "commit top.qcow2", "check base.qcow2")
    case("commit-t-none", "chain", "commit -t none top.qcow2")
    case("commit-r", "chain", "commit -r 1M top.qcow2")
    case("rebase-u", "chain", "rebase -u -b base2.qcow2 -F qcow2 top.qcow2")
    case("rebase-remove", "chain", "rebase -b '' top.qcow2")
    case("rebase-remove-u", "chain", "rebase -u -b '' top.qcow2")
    case("rebase-to-raw", "chain+bases", "rebase -b b.raw -F raw top.qcow2")
    case("rebase-changed", "chain+bases", "rebase -b b2.qcow2 -F qcow2 top.qcow2")
    case("rebase-p", "chain+bases", "rebase -p -b b2.qcow2 -F qcow2 top.qcow2")
    case("rebase-noF", "chain+bases", "rebase -b b2.qcow2 top.qcow2")
    case("rebase-missing-new", "chain", "rebase -b nosuch.qcow2 -F qcow2 top.qcow2")
    case("rebase-chain3-base", "chain3", "rebase -b base.qcow2 -F qcow2 top.qcow2")
    case("rebase-raw", "raw", "rebase -b x a.raw")
    case("rebase-nob", "chain", "rebase top.qcow2")
    for opts in ("compat=0.10", "compat=1.1", "lazy_refcounts=on", "lazy_refcounts=off",
                 "refcount_bits=1", "refcount_bits=64", "refcount_bits=3",
                 "size=8M", "size=2M", "cluster_size=4k", "compression_type=zstd",
                 "backing_file=x.qcow2", "frob=1", "extended_l2=on"):
        case("amend-" + opts.replace(",", "+"), "qcow2", f"amend -o {opts} a.qcow2")
    case("amend-v2-to-v3", "v2", "amend -o compat=1.1 a.qcow2")
    case("amend-v2-snap-to-v3", "snap", "amend -o compat=0.10 a.qcow2",
         "amend -o compat=1.1 a.qcow2")
    case("amend-snap-v2", "snap", "amend -o compat=0.10 a.qcow2")
    case("amend-snap-rc1", "snap", "amend -o refcount_bits=1 a.qcow2")
    case("amend-lazy-off", "lazy", "amend -o lazy_refcounts=off a.qcow2")
    case("amend-raw", "raw", "amend -o size=8M a.raw")
    case("amend-o-help", "qcow2", "amend -o help a.qcow2")
    case("amend-noopts", "qcow2", "amend a.qcow2")
    case("amend-p", "qcow2", "amend -p -o lazy_refcounts=on a.qcow2")
    case("amend-force", "qcow2", "amend --force -o compat=0.10 a.qcow2")


def _other():
    for fx, img in (("raw", "a.raw"), ("qcow2", "a.qcow2"), ("snap", "a.qcow2"),
                    ("bitmaps", "a.qcow2"), ("comp", "a.qcow2")):
        case(f"measure-{fx}", fx, f"measure -O qcow2 {img}")
        case(f"measure-json-{fx}", fx, f"measure --output=json -O qcow2 {img}")
        case(f"measure-raw-{fx}", fx, f"measure -O raw {img}")
    for opts in ("", "-o cluster_size=4k", "-o preallocation=full", "-o preallocation=metadata",
                 "-o extended_l2=on", "-o refcount_bits=1", "-o compat=0.10", "-o help"):
        tag = opts.replace("-o ", "").replace(",", "+") or "default"
        case(f"measure-size-{tag}", "empty", f"measure --size 1G -O qcow2 {opts}")
    case("measure-size-raw", "empty", "measure --size 1G -O raw")
    case("measure-size-json", "empty", "measure --output=json --size 1G")
    case("measure-size-and-file", "qcow2", "measure --size 1G a.qcow2")
    case("measure-none", "empty", "measure -O qcow2")
    case("measure-l", "snap", "measure -O qcow2 -l s1 a.qcow2")
    case("measure-badsize", "empty", "measure --size 1x -O qcow2")
    for a, b, tag in (("a.qcow2", "a.qcow2", "same"), ("a.qcow2", "b.qcow2", "differ"),
                      ("a.qcow2", "a.raw", "qcow2-raw"), ("a.qcow2", "c.qcow2", "sizes")):
        case(f"compare-{tag}", "two", f"compare {a} {b}")
        case(f"compare-s-{tag}", "two", f"compare -s {a} {b}")
        case(f"compare-q-{tag}", "two", f"compare -q {a} {b}")
    case("compare-fF", "two", "compare -f qcow2 -F raw a.qcow2 a.raw")
    case("compare-p", "two", "compare -p a.qcow2 b.qcow2")
    case("compare-missing", "two", "compare a.qcow2 nosuch.qcow2")
    case("compare-chain", "chain", "compare top.qcow2 base.qcow2")
    for fx, img in (("raw", "a.raw"), ("qcow2", "a.qcow2")):
        case(f"dd-{fx}", fx, f"dd if={img} of=out.raw")
        case(f"dd-bs-count-{fx}", fx, f"dd bs=64k count=3 if={img} of=out.raw")
        case(f"dd-skip-{fx}", fx, f"dd bs=512 skip=2048 count=100 if={img} of=out.raw")
        case(f"dd-O-qcow2-{fx}", fx, f"dd -O qcow2 if={img} of=out.qcow2")
        case(f"dd-bad-bs-{fx}", fx, f"dd bs=0 if={img} of=out.raw")
        case(f"dd-noof-{fx}", fx, f"dd if={img}")
        case(f"dd-unknown-{fx}", fx, f"dd conv=notrunc if={img} of=out.raw")
        # bench prints the seconds it ran, which differ from run to run.
        case(f"bench-{fx}", fx, f"bench -c 100 {img}", timed=True)
        case(f"bench-w-{fx}", fx, f"bench -w -c 100 -s 4k -S 64k {img}", timed=True)
        case(f"bench-q-{fx}", fx, f"bench -q -c 10 {img}", timed=True)
        case(f"bench-badcount-{fx}", fx, f"bench -c x {img}")
        # A request past the end fails (EIO) and nothing is written.  One
        # request: with more, which of qemu-img's land before it exits is a race.
        case(f"bench-w-past-end-{fx}", fx, f"bench -w -c 1 -s 4k -o 4190209 {img}", timed=True)
    case("bench-pattern", "qcow2", "bench -w --pattern=0xab -c 10 -d 2 a.qcow2", timed=True)
    case("bench-flush", "qcow2", "bench -w --flush-interval=4 -c 16 a.qcow2", timed=True)
    case("bench-offset", "qcow2", "bench -o 1M -c 10 a.qcow2", timed=True)
    # bitmap (qemu-img 7.2's persistent dirty bitmaps).
    for op in ("--add", "--add --disable", "--add -g 64k", "--remove", "--clear", "--enable",
               "--disable"):
        tag = op.replace("--", "").replace(" -g ", "-g").replace(" ", "-")
        case(f"bitmap-{tag}-new", "qcow2", f"bitmap {op} a.qcow2 b9")
        case(f"bitmap-{tag}-b0", "bitmaps", f"bitmap {op} a.qcow2 b0")
    case("bitmap-merge", "bitmaps", "bitmap --merge b1 a.qcow2 b0")
    case("bitmap-merge-b", "bitmaps", "bitmap --merge b0 -b a.qcow2 a.qcow2 b2")
    case("bitmap-add-info", "qcow2", "bitmap --add a.qcow2 b9", "info a.qcow2")
    case("bitmap-raw", "raw", "bitmap --add a.raw b0")
    case("bitmap-noop", "bitmaps", "bitmap a.qcow2 b0")
    case("bitmap-v2", "v2", "bitmap --add a.qcow2 b0")


def _hostile():
    for h in HOSTILE:
        fx, img = "h-" + h, h + ".qcow2"
        case(f"h-info-{h}", fx, f"info --output=json {img}")
        case(f"h-check-{h}", fx, f"check {img}")
        case(f"h-check-r-all-{h}", fx, f"check -r all {img}")
        case(f"h-map-{h}", fx, f"map --output=json {img}")
        case(f"h-convert-{h}", fx, f"convert -O raw {img} out.raw")


for _gen in (_general, _info_check_map, _create, _convert, _resize_snapshot,
             _commit_rebase_amend, _other, _hostile):
    _gen()
BY_ID = {c.id: c for c in CASES}
assert len(BY_ID) == len(CASES), "two cases with one id"


# ---------------------------------------------------------------------------
# Running.

def copy_sparse(src, dst):
    """Copies a file keeping its holes (SEEK_DATA/SEEK_HOLE), so that both
    sides see the fixture's allocation exactly (raw map, disk size)."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        fd = fi.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            fi.seek(start)
            fo.seek(start)
            left = end - start
            while left:
                chunk = fi.read(min(left, 1 << 20))
                fo.write(chunk)
                left -= len(chunk)
            pos = end
        fo.truncate(size)


def copy_tree(src, dst):
    os.makedirs(dst)
    for entry in sorted(os.listdir(src)):
        s, d = os.path.join(src, entry), os.path.join(dst, entry)
        if os.path.isdir(s):
            copy_tree(s, d)
        else:
            copy_sparse(s, d)


def build_fixture(name, root):
    d = os.path.join(root, "fx-" + name)
    os.makedirs(d)
    for step in FIXTURES[name]:
        if step[0] == "mkdir":
            os.makedirs(os.path.join(d, step[1]))
        elif step[0] == "hostile":
            sys.path.insert(0, str(HERE))
            import hostile_qcow2
            made = hostile_qcow2.generate(d, names={step[1]})
            assert made, step
        else:
            p = subprocess.run(step, cwd=d, capture_output=True, timeout=120,
                               stdin=subprocess.DEVNULL)
            if p.returncode:
                raise RuntimeError(f"fixture {name}: {step}: exit {p.returncode}\n"
                                   f"{p.stderr.decode(errors='replace')}")
    return d


@dataclass
class Side:
    runs: list = field(default_factory=list)     # (rc, stdout, stderr) per command
    t: float = 0.0                               # seconds, all commands together
    raw_err: str = ""                            # stderr before normalisation

    @property
    def hung(self):
        return any(rc is None for rc, _, _ in self.runs)

    @property
    def crashed(self):
        return any(rc is not None and (rc < 0 or rc >= 128) for rc, _, _ in self.runs)


KESTREL_NAME = re.compile(r"\bkestrel-img\b")
BENCH_TIME = re.compile(r"(Run completed in )\d+\.\d+( seconds)")
# qemu-img names an anonymous node "#block" + a counter + a random two-digit
# number (util/id.c id_generate), so the name differs from run to run:
# "#block153", then "#block172" for the same command.  It cannot match.
NODE_NAME = re.compile(r"#block\d+")


def normalise(text, side_dir, kestrel, timed=False):
    text = text.replace(side_dir, "$TMP")
    if kestrel:
        text = KESTREL_NAME.sub("qemu-img", text)
    if timed:
        # bench: how long the run took is measured, not computed; it cannot match.
        text = BENCH_TIME.sub(r"\1N\2", text)
    return NODE_NAME.sub("#blockN", text)


def run_side(prog, c, d, kestrel):
    side = Side()
    limit = K_LIMIT if kestrel else Q_LIMIT
    for argv in c.cmds:
        # A command's own steps (create of a -n target, info after bitmap)
        # run with the tool under test too: they are part of the case.
        argv = [a.replace("{d}", d) for a in argv]
        start = time.monotonic()
        try:
            p = subprocess.run([prog, *argv], cwd=d,
                               capture_output=True, timeout=limit, stdin=subprocess.DEVNULL)
            rc, out, err = p.returncode, p.stdout.decode(errors="replace"), \
                p.stderr.decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, out, err = None, "", f"(ran past {limit} s)"
        side.t += time.monotonic() - start
        side.raw_err += err
        side.runs.append((rc, normalise(out, d, kestrel, c.timed),
                          normalise(err, d, kestrel, c.timed)))
        if rc is None:
            break
    return side


def files_under(d):
    out = set()
    for base, _, names in os.walk(d):
        for n in names:
            out.add(os.path.relpath(os.path.join(base, n), d))
    return out


def extents(path):
    ext, pos = [], 0
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            pos = os.lseek(fd, start, os.SEEK_HOLE)
            ext.append((start, pos))
    return ext


def same_file(a, b):
    """Same size, same holes, same bytes in the data (a hole reads as zeroes)."""
    ext = extents(a)
    if os.path.getsize(a) != os.path.getsize(b) or ext != extents(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for start, end in ext:
            fa.seek(start)
            fb.seek(start)
            while start < end:
                n = min(end - start, 1 << 20)
                if fa.read(n) != fb.read(n):
                    return False
                start += n
    return True


SNAP_DATE = re.compile(r'("date-(?:sec|nsec)": )\d+')


def qemu_view(argv, d):
    try:
        p = subprocess.run(["qemu-img", *argv], cwd=d, capture_output=True, timeout=Q_LIMIT,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "(qemu-img ran past its limit)"
    text = normalise(p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace"),
                     d, False)
    # A snapshot's creation time is when each side ran: it cannot match.
    text = SNAP_DATE.sub(r"\1N", text)
    return f"exit {p.returncode}\n{text}"


def compare_files(kd, qd):
    """[(aspect, qemu-img side lines, kestrel-img side lines)] for every file
    the two sides leave differently, as qemu-img sees them."""
    diffs = []
    kf, qf = files_under(kd), files_under(qd)
    for rel in sorted(kf ^ qf):
        diffs.append((f"file {rel}", ["present"] if rel in qf else ["absent"],
                      ["present"] if rel in kf else ["absent"]))
    for rel in sorted(kf & qf):
        k, q = os.path.join(kd, rel), os.path.join(qd, rel)
        if same_file(k, q):
            continue
        for view in (["info", "--output=json", "-U"], ["map", "--output=json", "-U"],
                     ["check", "--output=json", "-U"]):
            qv, kv = qemu_view([*view, rel], qd), qemu_view([*view, rel], kd)
            if qv != kv:
                diffs.append((f"{rel}: qemu-img {view[0]}", qv.splitlines(), kv.splitlines()))
        try:
            p = subprocess.run(["qemu-img", "compare", "-U", q, k], capture_output=True,
                               timeout=Q_LIMIT, stdin=subprocess.DEVNULL)
            rc = p.returncode
            detail = p.stdout.decode(errors="replace").replace(qd, "$Q").replace(kd, "$K")
        except subprocess.TimeoutExpired:
            rc, detail = None, "ran past its limit"
        if rc != 0:
            diffs.append((f"{rel}: qemu-img compare (exit {rc})", ["same data"],
                          detail.splitlines() or ["different"]))
    return diffs


@dataclass
class Result:
    case: Case
    q: Side
    k: Side
    diffs: list                  # [(aspect, qemu-img lines, kestrel-img lines)]

    @property
    def differs(self):
        return bool(self.diffs)

    def explain(self, limit=60):
        lines = [f"case {self.case.id}: kestrel-img/qemu-img " +
                 " ; ".join(" ".join(shlex.quote(a) for a in c) for c in self.case.cmds)]
        for aspect, ql, kl in self.diffs:
            lines.append(f"  [{aspect}]")
            d = list(difflib.unified_diff(ql, kl, "qemu-img", "kestrel-img", n=1, lineterm=""))
            lines += ["    " + x for x in d[2:]]
        if len(lines) > limit:
            lines = lines[:limit] + [f"    ... {len(lines) - limit} more lines"]
        return "\n".join(lines)


def side_diffs(q, k):
    diffs = []
    for i in range(max(len(q.runs), len(k.runs))):
        qr = q.runs[i] if i < len(q.runs) else ("not run", "", "")
        kr = k.runs[i] if i < len(k.runs) else ("not run", "", "")
        tag = f"command {i + 1} " if max(len(q.runs), len(k.runs)) > 1 else ""
        if qr[0] != kr[0]:
            diffs.append((f"{tag}exit status", [str(qr[0])], [str(kr[0])]))
        if qr[1] != kr[1]:
            diffs.append((f"{tag}stdout", qr[1].splitlines(), kr[1].splitlines()))
        if qr[2] != kr[2]:
            diffs.append((f"{tag}stderr", qr[2].splitlines(), kr[2].splitlines()))
    return diffs


def run_case(c, fixture_dir, root, n, files=True):
    """Runs one case on both sides; files=False skips comparing the files left
    behind (bench/img_matrix times only the commands)."""
    base = os.path.join(root, f"c{n}")
    qd, kd = os.path.join(base, "q"), os.path.join(base, "k")
    copy_tree(fixture_dir, qd)
    copy_tree(fixture_dir, kd)
    q = run_side("qemu-img", c, qd, False)
    k = run_side(str(KIMG), c, kd, True)
    res = Result(c, q, k, side_diffs(q, k) + (compare_files(kd, qd) if files else []))
    shutil.rmtree(base, ignore_errors=True)
    return res


def scratch_dir():
    """Where the cases run: tmpfs when it has room (KESTREL_MATRIX_TMP overrides).
    Both tools flush at the end of a write command; on a busy disk each flush
    takes up to a second, which would be most of the matrix's time and none
    of what it compares.  (O_DIRECT, -t none, fails on tmpfs for both.)"""
    d = os.environ.get("KESTREL_MATRIX_TMP")
    if d:
        return d
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 1 << 30 and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    return None


def jobs_default():
    # Twice the CPUs: much of a case is waiting for a process to start or exit.
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def run_matrix(cases, root, jobs=None, progress=None, files=True):
    """Builds the fixtures the cases need, runs every case; {id: Result}."""
    root = os.path.realpath(root)
    jobs = jobs or jobs_default()
    names = sorted({c.fixture for c in cases})
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        fx = dict(zip(names, pool.map(lambda n: build_fixture(n, root), names)))
        futs = [pool.submit(run_case, c, fx[c.fixture], root, i, files)
                for i, c in enumerate(cases)]
        results = {}
        for f in concurrent.futures.as_completed(futs):
            r = f.result()
            results[r.case.id] = r
            if progress:
                progress(len(results), len(cases))
    return results, fx


def rerun(c, fixture_dir, root, n):
    return run_case(c, fixture_dir, os.path.realpath(root), n)


# ---------------------------------------------------------------------------
# The documented differences (docs/kestrel-img.1) and the pending ones.

SECTION = re.compile(r"^\.SH \"?DIFFERENCES FROM QEMU(?:\\-|-)IMG\"?\n(.*?)(?=^\.SH|\Z)",
                     re.M | re.S)


def roff_text(s):
    return s.replace("\\-", "-").replace("\\(em", "--").replace("\\fB", "").replace(
        "\\fR", "").replace("\\fI", "")


def documented(path=DOC):
    """{case id: reason} from the DIFFERENCES FROM QEMU-IMG section: each
    entry is ".TP", ".B case-id", then the reason."""
    m = SECTION.search(Path(path).read_text())
    if not m:
        return {}
    entries, cur = {}, None
    lines = m.group(1).split("\n")
    for i, line in enumerate(lines):
        if line == ".TP" and i + 1 < len(lines) and lines[i + 1].startswith(".B "):
            cur = roff_text(lines[i + 1][3:].strip().strip('"'))
            assert cur not in entries, f"{path}: {cur} listed twice"
            entries[cur] = ""
        elif cur and (line.startswith(".B ") and lines[i - 1] == ".TP"):
            continue
        elif line.startswith((".SS", ".PP", ".SH")):
            cur = None
        elif cur:
            entries[cur] = (entries[cur] + " " + roff_text(line)).strip()
    return entries


def varies(reason):
    """A documented difference that qemu-img itself shows only on some runs
    (its result depends on timing): its entry starts "Run to run:", and the
    case may agree."""
    return reason.startswith("Run to run:")


def doc_entry(r, reason="REASON: why this difference is intended"):
    return f".TP\n.B {r.case.id.replace('-', chr(92) + '-')}\n{reason}"


def pending():
    """PENDING from test_img_differential.py (read, not imported: no pytest needed)."""
    for node in ast.parse(TEST_FILE.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PENDING":
            return ast.literal_eval(node.value)
    raise LookupError(f"{TEST_FILE} has no PENDING")


PENDING_LINE = re.compile(r'^\s+"([^"]+)":\s*"[^"]*",')


def prune(stale):
    """Deletes the stale ids' lines from PENDING in test_img_differential.py."""
    text = TEST_FILE.read_text().split("\n")
    start = text.index("PENDING = {")
    end = text.index("}", start)
    keep = [ln for ln in text[start:end]
            if not (PENDING_LINE.match(ln) and PENDING_LINE.match(ln).group(1) in stale)]
    TEST_FILE.write_text("\n".join(text[:start] + keep + text[end:]))
    return len(text[start:end]) - len(keep)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", action="store_true", help="print differences and entries")
    ap.add_argument("--prune", action="store_true", help="delete stale PENDING entries")
    ap.add_argument("--show", metavar="CASE", help="print one case's full output")
    ap.add_argument("--only", metavar="REGEX", help="cases whose id matches")
    ap.add_argument("-j", type=int, default=None, help="parallel cases")
    ap.add_argument("--list", action="store_true", help="list the case ids")
    a = ap.parse_args()
    cases = CASES
    if a.only:
        cases = [c for c in cases if re.search(a.only, c.id)]
    if a.show:
        cases = [BY_ID[a.show]]
    if a.list:
        for c in cases:
            print(c.id, "|", " ; ".join(" ".join(x) for x in c.cmds))
        return 0
    with tempfile.TemporaryDirectory(prefix="img-matrix-", dir=scratch_dir()) as root:
        t = time.monotonic()
        results, _ = run_matrix(cases, root, a.j)
        took = time.monotonic() - t
    if a.show:
        r = results[a.show]
        for name, side in (("qemu-img", r.q), ("kestrel-img", r.k)):
            for i, (rc, out, err) in enumerate(side.runs):
                print(f"=== {name} command {i + 1}: exit {rc} ({side.t:.3f} s)\n"
                      f"--- stdout\n{out}--- stderr\n{err}")
        print(r.explain(limit=400) if r.differs else "no difference")
        return 0
    doc, pend = documented(), pending()
    differ = {i for i, r in results.items() if r.differs}
    ran = set(results)
    stale_p = sorted(i for i in (set(pend) & ran) - differ if pend[i][1:2] != "~")
    stale_d = sorted(i for i in (set(doc) & ran) - differ if not varies(doc[i]))
    new = sorted(differ - set(pend) - set(doc))
    if a.prune:
        n = prune(set(stale_p))
        print(f"deleted {n} stale PENDING entries from {TEST_FILE.name}")
        return 0
    for i in sorted(differ):
        tag = f"pending {pend[i]}" if i in pend else "documented" if i in doc else "NEW"
        print(f"--- {tag}\n{results[i].explain()}\n")
    print(f"{len(results)} cases in {took:.1f} s: {len(differ)} differ "
          f"({len(differ & set(pend))} pending, {len(differ & set(doc))} documented, "
          f"{len(new)} new); stale: {len(stale_p)} pending, {len(stale_d)} documented")
    if new:
        print("\n# New differences: a doc entry (docs/kestrel-img.1, DIFFERENCES FROM "
              "QEMU-IMG) if intended,\n# else a PENDING line (test_img_differential.py):")
        for i in new:
            print(doc_entry(results[i]))
        for i in new:
            print(f'    "{i}": "? {results[i].diffs[0][0]}",')
    if stale_p:
        print("\n# Stale PENDING entries (run --prune to delete them):")
        print("\n".join(f"    {i}" for i in stale_p))
    if stale_d:
        print("\n# Stale doc entries (delete from docs/kestrel-img.1):")
        print("\n".join(f"    {i}" for i in stale_d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
