#!/usr/bin/env bash
# Several instances behind a real load balancer, on loopback: a throwaway PostgreSQL, three
# favorites-api instances and nginx (keep-alive upstreams, idempotent retries), then the checks
# of tests/multi/test_multi_instance.py (propagation delay, kill -9 and rolling restart under
# load, starting together), with Debian's prometheus (free loopback port, throwaway folder)
# scraping the instances under the rules of deploy/prometheus: every recording rule and every
# query of deploy/grafana/favorites-api.json must return data. Prints the measured figures as
# "[multi] ..." lines.
#
#   scripts/multi-instance.sh            (after a build: build/favorites-api, build/catalog-stub)
#
# Uses FAV_TEST_PG_URL when set, else starts and removes its own cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
export FAV_BIN="${FAV_BIN:-$PWD/build/favorites-api}" STUB_BIN="${STUB_BIN:-$PWD/build/catalog-stub}"
export FAV_TEST_BACKEND=postgresql STUB_PRODUCTS="${STUB_PRODUCTS:-$PWD/data/fakestore-products.json}"
if [ -z "${FAV_TEST_PG_URL:-}" ]; then
  pg_dir="$(mktemp -d /tmp/fav-multi-pg.XXXXXX)"
  chmod 755 "$pg_dir"
  trap 'scripts/pg-test-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true' EXIT
  FAV_TEST_PG_URL="$(scripts/pg-test-cluster.sh start "$pg_dir")"
  export FAV_TEST_PG_URL
fi
python3 -m unittest -v tests/multi/test_multi_instance.py
