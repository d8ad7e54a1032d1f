#!/usr/bin/env bash
# Installs the Debian 12 packages Kestrel needs to build, test and benchmark.
# Idempotent: apt-get runs only when a package is missing.
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config acpica-tools libcmocka-dev libjson-c-dev
	# the gdbstub's tests drive real gdb (tests/system/test_gdb.py)
	gdb
	zlib1g-dev libzstd-dev liburing-dev libbz2-dev
	# NBD disks (src/block/nbd.c; optional: without it the nbd protocols stay unknown)
	libnbd-dev
	# http(s)/ftp(s) disks (src/block/curl.c; optional like libnbd)
	libcurl4-openssl-dev
	# files on SSH servers over SFTP (src/block/ssh.c; optional like libnbd); sshd for its tests
	libssh-dev openssh-server
	# iSCSI disks (libiscsi, optional) against tgt's tgtd; iscsi-ls/iscsi-inq for the tests
	libiscsi-dev libiscsi-bin tgt
	# NFS disks (libnfs, optional) against nfs-ganesha's userspace server (VFS backend)
	libnfs-dev nfs-ganesha nfs-ganesha-vfs rpcbind
	# GlusterFS disks (libgfapi, optional) against a one-brick glusterd volume
	libglusterfs-dev glusterfs-server
	# Ceph RBD disks (librbd, optional) against a one-mon, one-OSD cluster
	librbd-dev ceph-mon ceph-osd ceph-common
	# NBD over TLS: certificates (certtool) and gnutls for the server side
	gnutls-bin libgnutls28-dev
	# luks images: AES-XTS/CBC, SHA-*, PBKDF2 (src/block/crypto)
	nettle-dev
	# LUKS2 argon2i/argon2id keyslots (optional: refused by name without it)
	libargon2-dev
	# the VNC server (optional: -vnc says it is not built in without it), PNG screendumps,
	# real VNC clients for tests/system/test_vnc.py (vncsnapshot; gvnccapture is in
	# gvncviewer) and python3-cryptography for the test client's VNC DES challenge
	libvncserver-dev libpng-dev vncsnapshot gvncviewer python3-cryptography
	# the local window (-display sdl / -sdl; optional: says SDL is not built in without it),
	# and for tests/system/test_sdl.py an X server (Xvfb), xwd (x11-apps) and xdotool
	libsdl2-dev xvfb x11-apps xdotool
	# user-mode networking (libslirp; its pkg-config file needs glib's)
	libslirp-dev libglib2.0-dev
	# tests and reference peer
	python3 python3-pytest qemu-system-x86 qemu-utils seabios ipxe-qemu time strace
	# QEMU's network block drivers (curl, iscsi, ssh, ...): the peer for the protocol tests
	qemu-block-extra openssl
	# qemu-nbd bitmap exports read back (tests/system/test_img_bitmap.py)
	libnbd-bin
	# a second NBD server beside qemu-nbd (tests/system/test_nbd.py)
	nbdkit
	# luks interop (tests/system/test_img_luks.py): cryptsetup formats and checks files
	cryptsetup-bin
	# network tests: namespaces, bridges, TAPs and ping
	iproute2 iputils-ping nftables
	# libvirt 9.0 managing Kestrel (tests/system/test_libvirt.py, bench/libvirt); the sysv
	# flavour, so installing it never replaces the host's init
	libvirt-daemon-system libvirt-daemon-system-sysv libvirt-clients virtinst
	# fuzz targets (tests/fuzz): clang with libFuzzer and the sanitizer runtimes
	clang libclang-rt-14-dev
	# Linux test guest recipe (tests/guest/linux)
	linux-source-6.1 busybox-static bc flex bison libelf-dev libssl-dev lz4 cpio xz-utils
	# firmware boot tests (tests/system/test_firmware.py): GRUB disks and ISOs
	grub-pc-bin grub-common xorriso mtools dosfstools
	# -kernel with -bios: QEMU's linuxboot_dma.bin option ROM
	qemu-system-data
	# real cloop and bochs images for tests/system/test_img_readonly_formats.py
	cloop-utils bximage
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
