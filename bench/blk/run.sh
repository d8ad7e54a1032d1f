#!/usr/bin/env bash
# bench/blk: virtio-blk benchmark, Kestrel vs QEMU 7.2 (see bench.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/blk/bench.py "$@"
