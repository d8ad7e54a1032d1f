#!/bin/sh
# make_qcow2_seeds.sh KESTREL_IMG OUTDIR: small qcow2 images of many layouts
# (cluster sizes, v2/v3, zlib/zstd compression, refcount widths, lazy
# refcounts, a backing file name, snapshots, bitmaps) as the qcow2 fuzzer's seeds.
# Made by kestrel-img, and by qemu-img too where it is installed, so that the
# fuzzer also starts from layouts kestrel-img itself never writes.
set -eu
K=$1
D=$2
rm -rf "$D"
mkdir -p "$D"
cd "$D"
head -c 16384 /dev/urandom >src.raw
for i in 1 2 3 4 5 6; do seq -f 'kestrel qcow2 seed %08g' 1 300 >>src.raw; done
"$K" convert -O qcow2 -o cluster_size=512 src.raw c512
"$K" convert -O qcow2 -o cluster_size=4096,compat=0.10 src.raw v2
"$K" convert -c -O qcow2 -o cluster_size=1024 src.raw zlib1k
"$K" convert -c -O qcow2 -o cluster_size=512,compression_type=zstd src.raw zstd512
"$K" convert -O qcow2 -o cluster_size=2048,refcount_bits=1,lazy_refcounts=on src.raw rc1
"$K" create -q -f qcow2 -o cluster_size=512 -b c512 -F qcow2 top 256k
"$K" snapshot -c first c512
# Persistent bitmaps: one all dirty (written after it was added), one disabled, one coarse.
"$K" convert -O qcow2 -o cluster_size=512 src.raw bm
"$K" bitmap --add -g 512 bm all
"$K" bitmap --add --disable bm off
"$K" convert -n -f raw -O qcow2 src.raw bm
"$K" bitmap --add -g 64k bm coarse
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img convert -O qcow2 -o cluster_size=512,refcount_bits=64 src.raw q-rc64
	qemu-img convert -c -O qcow2 -o cluster_size=1024,compat=0.10 src.raw q-v2-zlib
	qemu-img convert -c -O qcow2 -o cluster_size=2048,compression_type=zstd src.raw q-zstd
	qemu-img convert -O qcow2 -o cluster_size=4096 src.raw q-snap
	qemu-img snapshot -c one q-snap
	qemu-img snapshot -c two q-snap
	qemu-img create -q -f qcow2 -o cluster_size=1024 -b q-snap -F qcow2 q-top 128k
	qemu-img bitmap --add q-rc64 dirty0 2>/dev/null || true
fi
rm src.raw
