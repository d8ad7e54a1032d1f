#!/usr/bin/env bash
# bench/img_matrix: the differential matrix's run time, kestrel-img vs qemu-img 7.2 (bench.py --help).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/img_matrix/bench.py "$@"
