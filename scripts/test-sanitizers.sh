#!/usr/bin/env bash
# The sanitizer and fuzzing part of the test command: scripts/test.sh calls it after the normal
# suites, with its PostgreSQL clusters started (FAV_TEST_PG_URL, FAV_TEST_PG_FAULT_* exported).
# Two lean clang builds (-O1, line tables only, only the targets the runs need):
#   build-asan  ASan+UBSan, no recover, plus the libFuzzer targets: the unit and store suites,
#               every HTTP module on SQLite, and the fault module (statement timeout with a
#               blocked write, drain with in-flight PostgreSQL work, one-byte client during the
#               drain) on PostgreSQL too; then each fuzz target FUZZ_SECONDS (default 25) s
#   build-tsan  TSan: the unit and store suites and the concurrency-heavy HTTP modules on SQLite
# Any sanitizer report fails the run: a report aborts the process (no recover), and every report
# of every process the suites start (servers, stubs, `migrate`/`check-config` runs, test
# binaries) is also written to a reports folder that must be empty after each run.
# Prints how long each part took. FAV_SANITIZER_PARTS="asan fuzz tsan" picks parts.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd -P)"
jobs="$(nproc)"
fuzz_seconds="${FUZZ_SECONDS:-25}"
parts=" ${FAV_SANITIZER_PARTS:-asan fuzz tsan} "
: "${FAV_TEST_PG_URL:?run it from scripts/test.sh, or export the URLs of scripts/pg-test-cluster.sh clusters}"
clang_env=(env CC=clang CXX=clang++)
# Debug build type with its flags replaced: -O1 (ASan's advice for usable speed) and
# -gline-tables-only (file:line in every report for a fraction of full debug info's compile and
# link time).
clang_flags=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only")
# Suppressions: none. (A suppression must come with its reason written next to it.) Leak
# checking stays on; a stack-use-after-return check would need fake stacks that Asio's
# coroutine frames do not use (they live on the heap, where use-after-free is caught).
asan_base="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0:strict_string_checks=0"
ubsan_base="halt_on_error=1:print_stacktrace=1"
tsan_base="halt_on_error=1:second_deadlock_stack=1"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}"
reports="$(mktemp -d /tmp/fav-sanitizer-reports.XXXXXX)"

timings=()
phase_name=""
phase_start=0
phase() {
  local now
  now="$(date +%s)"
  [ -n "$phase_name" ] && timings+=("$(printf '%4d s  %s' $((now - phase_start)) "$phase_name")")
  phase_name="$1"
  phase_start="$now"
  [ -n "$1" ] && echo "== $1 ($(date -u +%H:%M:%S))"
  return 0
}
summary() {
  local rc=$?
  phase ""
  echo "== sanitizer and fuzzing parts took:"
  printf '%s\n' "${timings[@]}"
  rm -rf "$reports"
  exit "$rc"
}
trap summary EXIT

# Runs ctest in a build folder with every sanitizer writing its reports to $reports too; fails
# when ctest does or when any process left a report.
sanitized_ctest() {
  local dir="$1" sanitize="$2"
  shift 2
  local rc=0
  # FAV_TEST_SANITIZE tells the tests which sanitizers the binaries carry (a test that cannot run
  # under one says so and skips: see test_hostile's descriptor exhaustion test).
  (cd "$dir" && FAV_TEST_SANITIZE="$sanitize" \
    ASAN_OPTIONS="$asan_base:log_path=$reports/asan" UBSAN_OPTIONS="$ubsan_base:log_path=$reports/ubsan" \
      TSAN_OPTIONS="$tsan_base:log_path=$reports/tsan" ctest --output-on-failure --timeout 900 "$@") || rc=$?
  if compgen -G "$reports/*" >/dev/null; then
    echo "test-sanitizers: sanitizer reports:" >&2
    for f in "$reports"/*; do
      echo "---- $f" >&2
      head -n 120 "$f" >&2
    done
    rc=1
  fi
  return "$rc"
}

if [[ $parts == *" asan "* || $parts == *" fuzz "* ]]; then
  phase "ASan+UBSan build (with the fuzz targets)"
  "${clang_env[@]}" cmake -S . -B build-asan "${clang_flags[@]}" \
    -DFAV_SANITIZE=address,undefined -DFAV_FUZZ=ON -DFAV_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs" --target unit_tests store_tests favorites-api catalog-stub \
    fuzz_http_request fuzz_jwt fuzz_catalog_parse fuzz_params fuzz_config
fi

if [[ $parts == *" asan "* ]]; then
  phase "ASan+UBSan: unit and store suites (both backends)"
  sanitized_ctest build-asan address,undefined -j"$jobs" -L '^(unit|store)$' -E fault_recovery
  phase "ASan+UBSan: every HTTP module on SQLite, the fault module on PostgreSQL"
  sanitized_ctest build-asan address,undefined -j"$jobs" -R '^http\.sqlite\.|^http\.postgresql\.test_faults$'
fi

if [[ $parts == *" fuzz "* ]]; then
  phase "fuzzing, ${fuzz_seconds} s per target"
  ASAN_OPTIONS="$asan_base" UBSAN_OPTIONS="$ubsan_base" FUZZ_BUILD=build-asan "$root/scripts/fuzz.sh" "$fuzz_seconds"
fi

if [[ $parts == *" tsan "* ]]; then
  phase "TSan build"
  "${clang_env[@]}" cmake -S . -B build-tsan "${clang_flags[@]}" \
    -DFAV_SANITIZE=thread -DFAV_WERROR=ON >/dev/null
  cmake --build build-tsan -j"$jobs" --target unit_tests store_tests favorites-api catalog-stub
  phase "TSan: unit and store suites, the concurrency-heavy HTTP modules on SQLite"
  sanitized_ctest build-tsan thread -j"$jobs" -L '^(unit|store)$' -E fault_recovery
  sanitized_ctest build-tsan thread -j"$jobs" \
    -R '^http\.sqlite\.(test_favorites|test_faults|test_catalog_admission|test_sign_in_guard)$'
fi
echo "test-sanitizers: no sanitizer report, no fuzzer crash"
