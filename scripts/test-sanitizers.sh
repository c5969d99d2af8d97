#!/usr/bin/env bash
# The sanitizer and fuzzing part of the test command (scripts/test.sh calls it with the
# PostgreSQL clusters already started; FAV_TEST_PG_URL etc. exported). Clang builds:
#   build-asan  ASan+UBSan, no recover, plus the libFuzzer targets: unit and store suites, every
#               HTTP module on SQLite, the fault module on PostgreSQL too; then each fuzz target
#   build-tsan  TSan: unit and store suites and the concurrency-heavy HTTP modules on SQLite
# Any sanitizer report fails the run (a report aborts the process; the HTTP harness also fails a
# server whose exit is not 0 and scans the fault module's output for reports).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"
fuzz_seconds="${FUZZ_SECONDS:-25}"
clang_env=(env CC=clang CXX=clang++)
# Suppressions: none. (A suppression must come with its reason written next to it.)
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0:strict_string_checks=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer || true)}"

phase() { echo "== $1 ($(date -u +%H:%M:%S))"; }

phase "ASan+UBSan build (with the fuzz targets)"
"${clang_env[@]}" cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1 -g" \
  -DFAV_SANITIZE=address,undefined -DFAV_FUZZ=ON -DFAV_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs" --target unit_tests store_tests favorites-api catalog-stub \
  fuzz_http_request fuzz_jwt fuzz_catalog_parse fuzz_params fuzz_config

phase "ASan+UBSan: unit, store, HTTP on SQLite, faults on PostgreSQL"
(cd build-asan && ctest --output-on-failure --timeout 900 -j"$jobs" -L '^(unit|store)$' -E fault_recovery &&
  ctest --output-on-failure --timeout 900 -j"$jobs" -R '^http\.sqlite\.|^http\.postgresql\.test_faults$' -E test_crash_ledger)

phase "fuzzing, ${fuzz_seconds} s per target"
FUZZ_BUILD=build-asan scripts/fuzz.sh "$fuzz_seconds"

phase "TSan build"
"${clang_env[@]}" cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="-O1 -g" \
  -DFAV_SANITIZE=thread -DFAV_WERROR=ON >/dev/null
cmake --build build-tsan -j"$jobs" --target unit_tests store_tests favorites-api catalog-stub

phase "TSan: unit, store, concurrency-heavy HTTP modules on SQLite"
(cd build-tsan && ctest --output-on-failure --timeout 900 -j"$jobs" -L '^(unit|store)$' -E fault_recovery &&
  ctest --output-on-failure --timeout 900 -j"$jobs" -R '^http\.sqlite\.(test_auth|test_favorites|test_faults)$')
phase "sanitizers done"
