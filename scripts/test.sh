#!/usr/bin/env bash
# Command 2: install what is missing, build with warnings as errors, check formatting, start a
# throwaway PostgreSQL on loopback, and run every test (units, the store suite and the HTTP
# suites on SQLite and on PostgreSQL, three instances behind nginx, the browser test). Ends with
# ctest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
jobs="$(nproc)"

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAV_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

# Formatting is part of the build's hygiene: any drift from .clang-format fails the run.
clang-format --dry-run -Werror $(git ls-files 'src/*.cpp' 'src/*.hpp' 'tools/*.cpp' 'tests/*.cpp')

# Two throwaway clusters on loopback: one shared by the suites, one that the fault tests stop
# and start again without disturbing the others.
pg_dir="$(mktemp -d /tmp/fav-pg.XXXXXX)"
fault_dir="$(mktemp -d /tmp/fav-pgfault.XXXXXX)"
chmod 755 "$pg_dir" "$fault_dir"
trap 'for d in "$pg_dir" "$fault_dir"; do scripts/pg-test-cluster.sh stop "$d" >/dev/null 2>&1 || true; done' EXIT
FAV_TEST_PG_URL="$(scripts/pg-test-cluster.sh start "$pg_dir")"
FAV_TEST_PG_FAULT_URL="$(scripts/pg-test-cluster.sh start "$fault_dir")"
export FAV_TEST_PG_URL FAV_TEST_PG_FAULT_URL FAV_TEST_PG_FAULT_DIR="$fault_dir"

cd build
ctest --output-on-failure --timeout 900 -j"$jobs" "$@"
