#!/usr/bin/env bash
# Build (once per machine) the Kestrel Linux test guest: a minimal kernel from
# Debian's linux-source-6.1 plus a busybox-static initramfs. See README.md.
#
#   dir=$(tests/guest/linux/build.sh)
#   # -> $dir/bzImage  $dir/vmlinux (PVH ELF)  $dir/initramfs.cpio
#
# The only thing written to stdout is that directory; progress and errors go
# to stderr. The result is cached outside the clone, in
# ${KESTREL_CACHE:-/var/cache/kestrel}/linux-<hash>/, keyed on everything that
# determines it (this script, kestrel.config, init and the two packages'
# versions), because the kernel build takes minutes and every clone and test
# run on the machine can share it.
set -euo pipefail

# Keep stdout clean for the one-line result: everything else goes to stderr.
exec 3>&1 1>&2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src_pkg='linux-source-6.1'
src_tar=/usr/src/linux-source-6.1.tar.xz
bb_pkg='busybox-static'

log() { printf 'linux-guest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Version of an installed Debian package; the versions are part of the cache
# key so a package upgrade rebuilds the guest.
pkg_version() {
	local st
	st=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null) ||
		die "package $1 is not installed (apt-get install $1)"
	[[ $st == ii* ]] || die "package $1 is not installed (apt-get install $1)"
	printf '%s\n' "${st#*|}"
}

for tool in dpkg-query sha256sum flock tar xz lz4 make cc flex bison bc readelf; do
	command -v "$tool" >/dev/null || die "missing tool: $tool"
done

src_ver=$(pkg_version "$src_pkg")
bb_ver=$(pkg_version "$bb_pkg")
[[ -r $src_tar ]] || die "$src_tar not found (package $src_pkg)"

# Locate busybox through the package (the path differs with/without usrmerge)
# and insist that it is static: the initramfs carries no libraries.
busybox=$(dpkg-query -L "$bb_pkg" | grep -E '/bin/busybox$' | head -n1) ||
	die "no bin/busybox in package $bb_pkg"
[[ -x $busybox ]] || die "$busybox is not executable"
# (Captured first: `readelf | grep -q` can SIGPIPE readelf, and pipefail
# would then turn a match into a failure.)
phdrs=$(LC_ALL=C readelf -l "$busybox") || die "cannot read $busybox"
if grep -q 'INTERP' <<<"$phdrs"; then
	die "$busybox is dynamically linked; need the static one from $bb_pkg"
fi

# Cache key. 16 hex digits of sha256 keep the path readable; collisions
# between recipe versions on one machine are not a realistic concern.
hash=$({
	for f in build.sh kestrel.config init; do
		printf '%s ' "$f"
		sha256sum <"$here/$f"
	done
	printf '%s %s\n%s %s\n' "$src_pkg" "$src_ver" "$bb_pkg" "$bb_ver"
} | sha256sum | cut -c1-16)

cache_root=${KESTREL_CACHE:-/var/cache/kestrel}
out=$cache_root/linux-$hash

if [[ -f $out/.done ]]; then
	echo "$out" >&3
	exit 0
fi

mkdir -p "$cache_root" || die "cannot create cache directory $cache_root (set KESTREL_CACHE)"
[[ -w $cache_root ]] || die "cache directory $cache_root is not writable (set KESTREL_CACHE)"

# Serialize concurrent builds of the same recipe (parallel test runs): the
# second one waits, then finds .done and returns.
exec 9>"$cache_root/.linux-$hash.lock"
if ! flock -n 9; then
	log "another build of linux-$hash is running; waiting for it"
	flock 9
fi
if [[ -f $out/.done ]]; then
	echo "$out" >&3
	exit 0
fi

# Build in a temporary directory on the same filesystem as the cache, so the
# final step is a single atomic rename: a directory named linux-<hash> is
# either complete or absent (a leftover without .done is from an older,
# interrupted version of this logic and is replaced).
work=$(mktemp -d "$cache_root/.linux-$hash.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/out
src=$work/src
mkdir -p "$stage" "$src"
build_log=$stage/build.log
: >"$build_log"

# Run a build step with its output in build.log; on failure show the tail and
# keep a copy of the log next to the cache (the work dir is deleted on exit).
step() {
	local what=$1
	shift
	log "$what"
	printf '\n=== %s: %s\n' "$what" "$*" >>"$build_log"
	if ! "$@" >>"$build_log" 2>&1; then
		cp "$build_log" "$cache_root/linux-$hash.failed.log" || true
		log "FAILED: $what; last lines of the log:"
		tail -n 40 "$build_log" >&2
		die "$what failed (full log: $cache_root/linux-$hash.failed.log)"
	fi
}

kmake() {
	# Fixed user/host so the banner does not depend on who built it.
	make -C "$src" ARCH=x86_64 KBUILD_BUILD_USER=kestrel KBUILD_BUILD_HOST=kestrel "$@"
}

log "building linux-$hash ($src_pkg $src_ver, $bb_pkg $bb_ver) in $work"
log "this takes several minutes; log: $build_log"
start=$SECONDS

step "unpacking $src_tar" tar -xJf "$src_tar" -C "$src" --strip-components=1

# Kernel's own fragment idiom (what `make foo.config` does): merge onto
# tinyconfig, then let olddefconfig resolve dependencies and new defaults.
step "configuring (tinyconfig + kestrel.config)" kmake tinyconfig
# shellcheck disable=SC2016 # $1/$2 expand in the child shell, by design.
step "merging kestrel.config" \
	bash -c 'cd "$1" && scripts/kconfig/merge_config.sh -m .config "$2"' _ "$src" "$here/kestrel.config"
step "olddefconfig" kmake olddefconfig

# olddefconfig silently drops symbols whose dependencies are not met; a guest
# missing a driver would only show up as a confusing test failure later, so
# check every line of the fragment against the final .config.
verify_config() {
	local line sym bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			if ! grep -qxF -- "$line" "$src/.config"; then
				sym=${BASH_REMATCH[1]}
				log "config: wanted $line, got: $(grep -E "^(# )?${sym}[= ]" "$src/.config" || echo 'absent (dependency not met?)')"
				bad=1
			fi
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			sym=${BASH_REMATCH[1]}
			if grep -q "^$sym=" "$src/.config"; then
				log "config: wanted $sym off, got: $(grep "^$sym=" "$src/.config") (selected by another symbol?)"
				bad=1
			fi
		fi
	done <"$here/kestrel.config"
	return "$bad"
}
verify_config || die "the final kernel .config does not match kestrel.config (see above)"
log "kestrel.config: all $(grep -cE '^(CONFIG_|# CONFIG_.* is not set$)' "$here/kestrel.config") settings verified in .config"
cp "$src/.config" "$stage/kernel.config"

step "compiling the kernel (make -j$(nproc) bzImage)" kmake -j"$(nproc)" bzImage
cp "$src/arch/x86/boot/bzImage" "$stage/bzImage"
cp "$src/vmlinux" "$stage/vmlinux"
cp "$src/System.map" "$stage/System.map"

# The PVH entry is an ELF note (owner "Xen", type 0x12 = PHYS32_ENTRY); QEMU
# and Kestrel both need it to boot vmlinux directly.
notes=$(LC_ALL=C readelf -n "$stage/vmlinux") || die "cannot read vmlinux notes"
# binutils 2.40 prints: "  Xen   0x00000008<TAB>Unknown note type: (0x00000012)".
grep -qE '^[[:space:]]+Xen[[:space:]]+0x[0-9a-f]+[[:space:]].*(\(0x00000012\)|PHYS32_ENTRY)' <<<"$notes" ||
	die "vmlinux has no PVH (Xen PHYS32_ENTRY) ELF note"

# Initramfs: busybox, one symlink per applet (made here rather than by
# `busybox --install` at boot, which would run in the emulator on PVM hosts),
# /dev/console (the kernel opens it before /init runs) and our /init.
# Uncompressed: nothing to decompress under emulation.
step "building gen_init_cpio" cc -O2 -o "$work/gen_init_cpio" "$src/usr/gen_init_cpio.c"
{
	for d in /bin /sbin /usr /usr/bin /usr/sbin /dev /proc /sys /root /mnt; do
		echo "dir $d 0755 0 0"
	done
	echo "dir /tmp 1777 0 0"
	echo "nod /dev/console 0600 0 0 c 5 1"
	echo "file /bin/busybox $busybox 0755 0 0"
	echo "file /init $here/init 0755 0 0"
	"$busybox" --list-full | while read -r applet; do
		[[ $applet == bin/busybox ]] || echo "slink /$applet /bin/busybox 0777 0 0"
	done
} >"$work/initramfs.list"
cp "$work/initramfs.list" "$stage/initramfs.list"
# -t 0: fixed mtime for dirs/links/nodes so the archive does not vary per build.
# shellcheck disable=SC2016 # as above
step "building initramfs.cpio" \
	bash -c '"$1" -t 0 "$2" >"$3"' _ "$work/gen_init_cpio" "$work/initramfs.list" "$stage/initramfs.cpio"

{
	printf 'hash %s\n%s %s\n%s %s\nbusybox %s\nbuilt %s in %ss\n' \
		"$hash" "$src_pkg" "$src_ver" "$bb_pkg" "$bb_ver" "$busybox" \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$((SECONDS - start))"
} >"$stage/.done"

rm -rf "$out"
mv "$stage" "$out"
rm -f "$cache_root/linux-$hash.failed.log"
log "done in $((SECONDS - start))s: $out"
echo "$out" >&3
