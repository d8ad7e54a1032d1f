#!/usr/bin/env bash
# bench/mem: memory returned by balloon, free page reporting and KSM, Kestrel vs QEMU 7.2 (see bench.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/mem/bench.py "$@"
