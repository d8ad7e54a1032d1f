#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Build probe.elf without meson: build.sh [OUTDIR] (default: this folder).
# Keep the flags in step with meson.build next to this file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"
${CC:-gcc} \
	-ffreestanding -fno-pic -fno-pie -no-pie -nostdlib -static \
	-mno-red-zone -mgeneral-regs-only -fno-stack-protector \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
	-O2 -g -Wall -Wextra -Wno-unused-parameter \
	-Wl,--build-id=none -Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack \
	-T "$here/probe.ld" -o "$out/probe.elf" \
	"$here/entry.S" "$here/io.c" "$here/platform.c" "$here/scenarios.c"
