#!/usr/bin/env bash
# High availability on PostgreSQL, on loopback (README "High availability"): one etcd, three
# PostgreSQL nodes under Patroni (synchronous_mode) and PgBouncer, all as the user `postgres` in
# one temporary folder on free ports, then the scenarios of tests/ha/test_failover.py against the
# real binaries (build/favorites-api, build/catalog-stub). Prints the measured figures as
# "[ha] ..." lines. Needs `scripts/install-deps.sh test` (patroni, etcd-server, pgbouncer).
#
#   tests/ha/run.sh [unittest arguments, e.g. -k kill9]
#
# Every process the run starts is stopped by its pid at the end, whatever happens (the trap).
set -euo pipefail
cd "$(dirname "$0")/../.."
root_dir="$(pwd -P)"
for tool in patroni patronictl etcd /usr/sbin/pgbouncer; do
  command -v "$tool" >/dev/null || { echo "tests/ha/run.sh: $tool missing (scripts/install-deps.sh test)" >&2; exit 1; }
done
export FAV_BIN="${FAV_BIN:-$root_dir/build/favorites-api}" STUB_BIN="${STUB_BIN:-$root_dir/build/catalog-stub}"
export STUB_PRODUCTS="${STUB_PRODUCTS:-$root_dir/data/fakestore-products.json}"
FAV_HA_DIR="$(mktemp -d /tmp/fav-ha.XXXXXX)"
chmod 755 "$FAV_HA_DIR"
export FAV_HA_DIR
cleanup() {
  local rc=$?
  python3 "$root_dir/tests/ha/cluster.py" kill "$FAV_HA_DIR" || rc=1
  if pgrep -f -- "$FAV_HA_DIR" >/dev/null; then
    echo "tests/ha/run.sh: processes left behind in $FAV_HA_DIR:" >&2
    pgrep -af -- "$FAV_HA_DIR" >&2 || true
    rc=1
  fi
  # A server that died while the folder was being removed may have written one more file.
  rm -rf "$FAV_HA_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
started="$(date +%s)"
python3 -m unittest -v "$root_dir/tests/ha/test_failover.py" "$@"
echo "tests/ha/run.sh: $(($(date +%s) - started)) s"
