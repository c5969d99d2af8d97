#!/usr/bin/env bash
# Command 1: install what is missing, build, and run the service for local use — SQLite and the
# project's own catalog stub on 127.0.0.1:${STUB_PORT:-8081}, fully offline. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFAV_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)" --target favorites-api catalog-stub

stub_port="${STUB_PORT:-8081}"
build/catalog-stub --host 127.0.0.1 --port "$stub_port" --products data/fakestore-products.json &
stub_pid=$!
trap 'kill "$stub_pid" 2>/dev/null || true' EXIT
export PRODUCT_CATALOG_API_BASE_URL="${PRODUCT_CATALOG_API_BASE_URL:-http://127.0.0.1:$stub_port}"
export API_PORT="${API_PORT:-8080}"
build/favorites-api serve
