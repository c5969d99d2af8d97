#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS each (default 25) over its seed corpus in
# tests/fuzz/corpus/<target>; a crash, a timeout, a leak or any sanitizer report fails the run.
# The targets come from the ASan+UBSan clang build that scripts/test.sh makes (build-asan).
#
#   scripts/fuzz.sh            25 s per target (what scripts/test.sh runs)
#   scripts/fuzz.sh 3600       a longer run: one hour per target
#   FUZZ_TARGETS="jwt" scripts/fuzz.sh 600
#
# New inputs go to a temporary folder (the seed corpus in the repo is read only); a failing
# input is kept in BUILD/fuzz-artifacts/ and reproduced with `BUILD/fuzz_<target> FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-25}"
build="${FUZZ_BUILD:-build-asan}"
targets="${FUZZ_TARGETS:-http_request jwt catalog_parse params config}"
work="$(mktemp -d /tmp/fav-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/fuzz-artifacts"
fail=0
for t in $targets; do
  bin="$build/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: $bin not built (cmake -DFAV_FUZZ=ON with clang)" >&2; exit 1; }
  mkdir -p "$work/$t"
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/$t-" "$work/$t" "tests/fuzz/corpus/$t" >"$work/$t.log" 2>&1; then
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")"
    echo "fuzz: $t ok (${runs:-?} inputs in ${secs} s)"
  else
    echo "fuzz: $t FAILED; the input is in $build/fuzz-artifacts/" >&2
    tail -n 60 "$work/$t.log" >&2
    fail=1
  fi
done
exit "$fail"
