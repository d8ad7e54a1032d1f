#!/bin/sh
# bench/net: Kestrel vs QEMU 7.2 virtio-net over TAP (see bench.py); needs root.
exec /usr/bin/python3 "$(dirname "$0")/bench.py" "$@"
