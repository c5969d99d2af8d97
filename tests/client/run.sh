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
label=client
# shellcheck source=../lib/service.sh
. "$root/tests/lib/service.sh"
t0=$SECONDS
require_inputs

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

cleanup_paths+=("$here/out")
start_stub
start_service "client-test-api-key-0123456789abcdef0123" "client-test-jwt-secret-0123456789abcdef01"

if ! FAV_BASE_URL="http://127.0.0.1:$api_port" timeout -k 5 120 node out/walkthrough.js; then
  service_tail
  exit 1
fi
echo "typed client: done in $((SECONDS - t0)) s"
