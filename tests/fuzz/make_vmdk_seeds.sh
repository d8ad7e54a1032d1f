#!/bin/sh
# make_vmdk_seeds.sh KESTREL_IMG OUTDIR: small vmdk files as the vmdk fuzzer's
# seeds: sparse extents (plain, zeroed grains, a parent hint, streamOptimized
# with deflated grains) made by kestrel-img and, where installed, qemu-img,
# and a descriptor naming extents (which the fuzzer's open must refuse).
set -eu
K=$1
D=$2
rm -rf "$D"
mkdir -p "$D"
cd "$D"
head -c 65536 /dev/urandom >src.raw
seq -f 'kestrel vmdk seed %08g' 1 3000 >>src.raw
"$K" convert -O vmdk src.raw sparse
"$K" convert -O vmdk -o zeroed_grain=on src.raw zeroed
"$K" convert -O vmdk -o subformat=streamOptimized src.raw stream
"$K" create -q -f vmdk -b sparse -F vmdk child
printf '# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 16 FLAT "src.raw" 0\nRW 8 SPARSE "sparse"\n' >desc
if command -v qemu-img >/dev/null 2>&1; then
	qemu-img convert -O vmdk -o subformat=streamOptimized src.raw q-stream
	qemu-img convert -O vmdk -o zeroed_grain=on,adapter_type=lsilogic src.raw q-zeroed
	qemu-io -f vmdk -c 'write -z 0 64k' q-zeroed >/dev/null
fi
rm -f src.raw
