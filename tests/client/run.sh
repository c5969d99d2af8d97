#!/usr/bin/env bash
# A typed client from the OpenAPI document, proven against the real binary (ctest
# client.typed_walkthrough):
#   1. openapi-typescript (pinned in package.json / package-lock.json here) generates
#      gen/schema.d.ts from openapi/openapi.json;
#   2. check-types.mjs fails on any documented body the generator typed any, unknown or {};
#   3. tsc --noEmit under strict type-checks walkthrough.ts (openapi-fetch over those types);
#   4. the compiled walk-through runs the README's walk-through against favorites-api (fresh
#      SQLite) and the catalog stub, both on free loopback ports, checking every body against
#      the document's schema for its status.
# Environment: FAV_BIN, STUB_BIN (default build/favorites-api, build/catalog-stub), STUB_PRODUCTS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
fav="$(abs "${FAV_BIN:-build/favorites-api}")"
stub="$(abs "${STUB_BIN:-build/catalog-stub}")"
products="$(abs "${STUB_PRODUCTS:-data/fakestore-products.json}")"
t0=$SECONDS

for f in "$fav" "$stub" "$products"; do
  [ -e "$f" ] || { echo "FAIL: $f not found (build first, or set FAV_BIN / STUB_BIN / STUB_PRODUCTS)"; exit 1; }
done
command -v npm >/dev/null 2>&1 || { echo "FAIL: node and npm are needed (scripts/install-deps.sh installs them)"; exit 1; }

# Node dependencies: exactly the locked versions, installed once into node_modules.
locked_ok() {
  (cd "$here" && node -e '
    const lock = require("./package-lock.json").packages;
    for (const p of ["openapi-typescript", "openapi-fetch", "typescript"])
      if (require(`./node_modules/${p}/package.json`).version !== lock[`node_modules/${p}`].version) process.exit(1);' 2>/dev/null)
}
if ! locked_ok; then
  echo "typed client: installing openapi-typescript, openapi-fetch, typescript (npm ci)"
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error) ||
    { echo "FAIL: npm ci in tests/client failed"; exit 1; }
fi

cd "$here"
rm -rf gen out
mkdir -p gen
./node_modules/.bin/openapi-typescript "$root/openapi/openapi.json" -o gen/schema.d.ts >/dev/null
node check-types.mjs gen/schema.d.ts
./node_modules/.bin/tsc --noEmit -p tsconfig.json || { echo "FAIL: tsc --noEmit (strict)"; exit 1; }
echo "OK: tsc --noEmit under strict"
./node_modules/.bin/tsc -p tsconfig.json
echo "typed client: generated, checked and compiled in $((SECONDS - t0)) s"

work="$(mktemp -d "${TMPDIR:-/tmp}/fav-client.XXXXXX")"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "$here/out"
}
trap cleanup EXIT

# Waits (≤ $2 s) until command $1 prints something; prints it.
wait_for() {
  local deadline=$((SECONDS + $2)) v
  while [ "$SECONDS" -le "$deadline" ]; do
    v="$($1)" && [ -n "$v" ] && { echo "$v"; return 0; }
    sleep 0.1
  done
  return 1
}

"$stub" --host 127.0.0.1 --port 0 --products "$products" >"$work/stub.log" 2>&1 &
pids+=($!)
stub_port_of() { sed -n 's/^catalog-stub listening on port \([0-9][0-9]*\)$/\1/p' "$work/stub.log" 2>/dev/null | head -n1; }
stub_port="$(wait_for stub_port_of 10)" || { echo "FAIL: catalog stub did not start"; cat "$work/stub.log"; exit 1; }
(
  cd "$work"
  exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" API_HOST=127.0.0.1 API_PORT=0 API_THREADS=2 LOG_LEVEL=info \
    API_KEY="client-test-api-key-0123456789abcdef0123" JWT_SECRET_KEY="client-test-jwt-secret-0123456789abcdef01" \
    DATABASE_URL="sqlite:$work/favorites.db" PRODUCT_CATALOG_API_BASE_URL="http://127.0.0.1:$stub_port" \
    PRODUCT_CATALOG_WARMUP=false "$fav" serve
) >"$work/server.log" 2>"$work/server.err" &
pids+=($!)
# The port comes from the JSON log line {"message":"listening","port":N,...}.
api_port_of() {
  node -e '
    for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
      try { const o = JSON.parse(l); if (o.message === "listening" && Number.isInteger(o.port)) { console.log(o.port); break; } } catch {}
    }' "$work/server.log"
}
api_port="$(wait_for api_port_of 30)" || {
  echo "FAIL: favorites-api did not start"; tail -n 20 "$work/server.log" "$work/server.err"; exit 1; }

if ! FAV_BASE_URL="http://127.0.0.1:$api_port" timeout -k 5 120 node out/walkthrough.js; then
  echo "--- last server log lines:"
  tail -n 30 "$work/server.log" "$work/server.err"
  exit 1
fi
echo "typed client: done in $((SECONDS - t0)) s"
