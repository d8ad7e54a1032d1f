#!/bin/sh
# make_image_seeds.sh FORMAT KESTREL_IMG OUTDIR: small images of one format
# (vpc, vdi) in every layout its create options give, with data written, as
# the format's fuzzer seeds.  Made by kestrel-img, and by qemu-img too where
# it is installed, so that the fuzzer also starts from qemu-img's layouts.
set -eu
[ $# -eq 3 ] || { echo "usage: make_image_seeds.sh FORMAT KESTREL_IMG OUTDIR" >&2; exit 2; }
F=$1 K=$2
rm -rf "$3" && mkdir -p "$3" && cd "$3"
head -c 8192 /dev/urandom >src.raw
for i in 1 2 3; do seq -f "kestrel $F seed %08g" 1 200 >>src.raw; done
truncate -s 2M src.raw
printf 'tail' >>src.raw
case $F in
vpc) OPTS="subformat=dynamic subformat=fixed force_size=on subformat=fixed,force_size=on" ;;
vdi) OPTS="static=off static=on" ;;
*) echo "make_image_seeds.sh: unknown format $F" >&2; exit 1 ;;
esac
for o in $OPTS; do
	"$K" convert -f raw -O "$F" -o "$o" src.raw "k-$o"
	if command -v qemu-img >/dev/null 2>&1; then
		qemu-img convert -f raw -O "$F" -o "$o" src.raw "q-$o"
	fi
done
"$K" create -q -f "$F" empty 1M
rm src.raw
