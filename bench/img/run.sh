#!/usr/bin/env bash
# bench/img: kestrel-img vs qemu-img 7.2, side by side (see bench.py --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/img/bench.py "$@"
