#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Build probe.elf without meson: [CC=clang] build.sh OUTDIR
# Keep the flags in step with meson.build next to this file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
cc=${CC:-gcc}
# GCC-only; see meson.build.
nolib=-fno-tree-loop-distribute-patterns
$cc $nolib -E -x c /dev/null >/dev/null 2>&1 || nolib=
mkdir -p "$out"
$cc \
	-ffreestanding -fno-pic -fno-pie -no-pie -nostdlib -static \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector \
	-fno-asynchronous-unwind-tables $nolib \
	-O2 -g -Wall -Wextra -Wno-unused-parameter -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes \
	-Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack \
	-T "$here/probe.ld" -o "$out/probe.elf" \
	"$here/entry.S" "$here/io.c" "$here/platform.c" "$here/scenarios.c" \
	"$here/pci.c" "$here/virtio.c" "$here/blk.c" "$here/console.c" "$here/rng.c" "$here/net.c" \
	"$here/e1000.c" "$here/multiboot.c" \
	"$here/balloon.c" "$here/numa.c" "$here/cpl0.c"
