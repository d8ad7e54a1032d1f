#!/usr/bin/env bash
# bench/firmware: firmware boot time, Kestrel vs QEMU 7.2 (see bench.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/firmware/bench.py "$@"
