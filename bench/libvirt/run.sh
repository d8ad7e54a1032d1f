#!/usr/bin/env bash
# bench/libvirt: libvirt 9.0's capability probe, virsh start and virsh destroy with Kestrel
# and QEMU 7.2 as <emulator> (see bench.py --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/libvirt/bench.py "$@"
