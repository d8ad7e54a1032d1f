#!/usr/bin/env bash
# The demo VM: "kestrel -m 128m -smp 2 -name myos ... -nographic".
# With hardware virtualization it boots the Linux test guest to a busybox shell;
# under KVM's PVM mode (no vmx/svm) guest kernel code is emulated and Linux cannot
# finish booting, so it boots the guest probe's interactive console instead.
set -euo pipefail
cd "$(dirname "$0")/.."
kestrel=build/src/kestrel

if [ ! -e /dev/kvm ]; then
	echo "demo: this host has no /dev/kvm, so no virtual machine can run here." >&2
	if [ -d /sys/module/kvm_pvm ]; then
		echo "demo: kvm_pvm is loaded but did not bind: this kernel is itself a PVM guest." >&2
	else
		echo "demo: load kvm_intel or kvm_amd (and enable virtualization in the firmware)," >&2
		echo "demo: or kvm_pvm on a host without vmx/svm." >&2
	fi
	echo "demo: without KVM, kestrel-img works and kestrel still checks command lines; this host:" >&2
	"$kestrel" --check-host >&2 || true
	exit 1
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
	echo "demo: no permission to open /dev/kvm: run as root or join its group (kvm)." >&2
	exit 1
fi

if grep -qwE 'vmx|svm' /proc/cpuinfo; then
	echo "demo: this CPU has hardware virtualization: booting the Linux test guest" \
	     "to a busybox shell (Ctrl-a x quits)."
	dir=$(tests/guest/linux/build.sh)
	exec "$kestrel" -m 128m -smp 2 -name myos -kernel "$dir/bzImage" \
		-initrd "$dir/initramfs.cpio" \
		-append "console=ttyS0 kestrel.shell=1 panic=-1" -nographic
fi

why="no vmx/svm in /proc/cpuinfo"
[ -d /sys/module/kvm_pvm ] && why="KVM runs in PVM mode here ($why)"
echo "demo: $why: guest kernel code would be emulated and Linux cannot finish booting,"
echo "demo: so this boots the guest probe, which runs natively in guest user mode."
echo "demo: type a line and the guest echoes it; 'quit' powers the guest off, Ctrl-a x quits."
exec "$kestrel" -m 128m -smp 2 -name myos -kernel build/tests/guest/probe/probe.elf \
	-append "probe=echo" -nographic
