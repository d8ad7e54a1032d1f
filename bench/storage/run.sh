#!/usr/bin/env bash
# bench/storage: kestrel-img convert to/from each network protocol and the guest probe on
# it, vs qemu-img/QEMU 7.2 on the same server (see bench.py --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/storage/bench.py "$@"
