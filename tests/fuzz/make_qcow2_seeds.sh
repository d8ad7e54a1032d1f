#!/bin/sh
# make_qcow2_seeds.sh KESTREL_IMG OUTDIR: small qcow2 images of many layouts
# (cluster sizes, v2/v3, zlib/zstd compression, refcount widths, lazy
# refcounts, a backing file name, snapshots, bitmaps, extended L2 entries with
# subclusters, an external data file name) as the qcow2 fuzzer's seeds.
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
# Subclusters: partly written clusters over a backing file, zeroed subclusters.
"$K" convert -O qcow2 -o cluster_size=16384,extended_l2=on src.raw extl2
"$K" create -q -f qcow2 -o cluster_size=16384,extended_l2=on -b c512 -F qcow2 extl2-top 256k
"$K" bench -q -w -f qcow2 -c 4 -o 1024 -s 1536 -S 20480 extl2-top >/dev/null
# An external data file: the fuzzer opens it without the file (info-style open).
"$K" convert -O qcow2 -o cluster_size=4096,data_file=seed.data src.raw datafile
rm -f seed.data
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img convert -O qcow2 -o cluster_size=512,refcount_bits=64 src.raw q-rc64
	qemu-img convert -c -O qcow2 -o cluster_size=1024,compat=0.10 src.raw q-v2-zlib
	qemu-img convert -c -O qcow2 -o cluster_size=2048,compression_type=zstd src.raw q-zstd
	qemu-img convert -O qcow2 -o cluster_size=4096 src.raw q-snap
	qemu-img snapshot -c one q-snap
	qemu-img snapshot -c two q-snap
	qemu-img create -q -f qcow2 -o cluster_size=1024 -b q-snap -F qcow2 q-top 128k
	qemu-img bitmap --add q-rc64 dirty0 2>/dev/null || true
	qemu-img create -q -f qcow2 -o cluster_size=16384,extended_l2=on q-extl2 256k
	qemu-io -c 'write -P 7 1k 3k' -c 'write -z 8k 4k' -c 'write -P 9 40k 512' q-extl2 >/dev/null
	qemu-img create -q -f qcow2 -o cluster_size=4096,data_file=q.data,data_file_raw=on \
		q-datafile 64k
	rm -f q.data
fi
rm src.raw
