#!/bin/sh
# make_luks_seeds.sh KESTREL_IMG OUTDIR: small LUKS1 volumes as the luks
# fuzzer's seeds, all with fuzz_luks.c's passphrase and the lowest PBKDF2
# counts (iter-time=1 gives QEMU's minimum of 1000), one per cipher mode and
# IV generator, each with some data written.  cryptsetup's too, where it is
# installed, so that the fuzzer also starts from its layout.
set -eu
K=$1
D=$2
rm -rf "$D"
mkdir -p "$D"
cd "$D"
S="--object secret,id=s,data=kestrel-fuzz"
head -c 8192 /dev/urandom >src.raw
n=0
for o in "" "cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1" \
	"cipher-alg=aes-192,cipher-mode=cbc,ivgen-alg=plain" "cipher-mode=ecb,hash-alg=sha512" \
	"cipher-alg=aes-128,cipher-mode=ctr"; do
	n=$((n + 1))
	# shellcheck disable=SC2086
	"$K" convert $S -O luks -o "key-secret=s,iter-time=1${o:+,$o}" src.raw "k$n"
done
rm -f src.raw
if command -v cryptsetup >/dev/null 2>&1; then
	truncate -s 2200k cs1
	printf kestrel-fuzz | cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 \
		-c aes-cbc-essiv:sha256 -s 128 --key-file=- cs1 || rm -f cs1
fi
