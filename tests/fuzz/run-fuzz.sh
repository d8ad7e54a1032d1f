#!/bin/sh
# run-fuzz.sh FUZZER SECONDS [SEEDS]: one time-bounded fuzzing run, as CI runs
# every target (meson test --suite fuzz).  New inputs go to a scratch corpus
# that is removed afterwards, so the seed directory stays as built; a crash
# leaves its input in fuzz-artifacts/ next to the fuzzer, to replay by hand.
set -eu
exe=$1
secs=$2
seeds=${3:-}
art=$(dirname "$exe")/fuzz-artifacts
mkdir -p "$art"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/kestrel-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
set -- "$scratch"
[ -n "$seeds" ] && [ -d "$seeds" ] && set -- "$scratch" "$seeds"
# -close_fd_mask=3: the code under test prints its own error messages for
# every bad input; sanitizer reports and crash details still appear.
# -error_exitcode=1: libFuzzer's default, 77, is what meson reads as "skipped".
"$exe" -seed=1 -error_exitcode=1 -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=262144 \
	-close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$art/$(basename "$exe")-" "$@"
