#!/usr/bin/env bash
# Command 2: install what is missing, build with warnings as errors, check formatting, start a
# throwaway PostgreSQL on loopback, and run every test (units, the store suite and the HTTP
# suites on SQLite and on PostgreSQL, three instances behind nginx, the browser test), then the
# sanitizer builds and the fuzz targets (scripts/test-sanitizers.sh; FAV_TEST_SANITIZERS=0 skips
# them for a quick local run). Arguments go to the first ctest run. Ends with how long each part
# took.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
jobs="$(nproc)"
started="$(date +%s)"

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAV_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

# Formatting is part of the build's hygiene: any drift from .clang-format fails the run.
clang-format --dry-run -Werror $(git ls-files 'src/*.cpp' 'src/*.hpp' 'tools/*.cpp' 'tests/*.cpp')

# Two throwaway clusters on loopback: one shared by the suites, one that the fault tests stop
# and start again without disturbing the others.
# A server left running by an earlier run (this script must never leave one) is reported.
if pgrep -f -- '-D /tmp/fav-pg' >/dev/null; then
  echo "test.sh: warning: PostgreSQL servers from another run are still up:" >&2
  pgrep -af -- '-D /tmp/fav-pg' >&2 || true
fi
pg_dir="$(mktemp -d /tmp/fav-pg.XXXXXX)"
fault_dir="$(mktemp -d /tmp/fav-pgfault.XXXXXX)"
chmod 755 "$pg_dir" "$fault_dir"
# The trap runs wherever the script has cd'ed to: absolute paths only. A cluster that does not
# stop, or a server still running on one of our folders afterwards, fails the run.
root="$(pwd -P)"
stop_clusters() {
  local rc=$? d
  for d in "$pg_dir" "$fault_dir"; do
    if ! "$root/scripts/pg-test-cluster.sh" stop "$d"; then
      echo "test.sh: could not stop the PostgreSQL cluster in $d" >&2
      rc=1
    fi
    if pgrep -f -- "-D $d/data" >/dev/null || [ -e "$d" ]; then
      echo "test.sh: a PostgreSQL server or folder is left behind in $d" >&2
      rc=1
    fi
  done
  exit "$rc"
}
trap stop_clusters EXIT
FAV_TEST_PG_URL="$(scripts/pg-test-cluster.sh start "$pg_dir")"
FAV_TEST_PG_FAULT_URL="$(scripts/pg-test-cluster.sh start "$fault_dir")"
export FAV_TEST_PG_URL FAV_TEST_PG_FAULT_URL FAV_TEST_PG_FAULT_DIR="$fault_dir"

built="$(date +%s)"
(cd build && ctest --output-on-failure --timeout 900 -j"$jobs" "$@")
tested="$(date +%s)"
if [ "${FAV_TEST_SANITIZERS:-1}" != 0 ]; then
  "$root/scripts/test-sanitizers.sh"
fi
done_at="$(date +%s)"
echo "test.sh: build $((built - started)) s, suites $((tested - built)) s, sanitizers and fuzzing" \
  "$((done_at - tested)) s; $(((done_at - started) / 60)) min in all"
