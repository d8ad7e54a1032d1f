#!/bin/sh
# make_img_seeds.sh KESTREL_IMG FORMAT OUTDIR: small images of one format
# (qed, parallels) in several layouts as its fuzzer's seeds, made by
# kestrel-img and, where installed, by qemu-img (layouts Kestrel never writes:
# zero clusters, the old parallels magic is patched in below).
set -eu
K=$1
F=$2
D=$3
rm -rf "$D"
mkdir -p "$D"
cd "$D"
head -c 16384 /dev/urandom >src.raw
for i in 1 2 3; do seq -f "kestrel $F seed %08g" 1 300 >>src.raw; done
case $F in
qed)
	"$K" convert -O qed -o cluster_size=4k src.raw c4k
	"$K" convert -O qed -o cluster_size=4k,table_size=2 src.raw t2
	"$K" create -q -f qed -o cluster_size=4k -b c4k -F qed top 64k
	"$K" create -q -f qed -o cluster_size=4k -b src.raw -F raw rawtop 64k
	if command -v qemu-io >/dev/null; then
		qemu-io -c 'write -z 0 8k' -c 'write -P 3 12k 1k' -f qed top >/dev/null
	fi
	;;
parallels)
	"$K" convert -O parallels -o cluster_size=4k src.raw c4k
	"$K" convert -O parallels -o cluster_size=512 src.raw c512
	cp c4k old
	printf 'WithoutFreeSpace' | dd of=old conv=notrunc 2>/dev/null
	;;
esac
rm -f src.raw
