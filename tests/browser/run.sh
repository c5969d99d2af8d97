#!/usr/bin/env bash
# Browser test of /docs: starts the catalog stub and the service on free loopback ports (fresh
# SQLite database), then runs docs.spec.mjs in Debian's headless Chromium through playwright-core.
# Usage: tests/browser/run.sh [--update-screenshot]
#   --update-screenshot  also writes the screenshot to docs/images/swagger-ui.png (for the README)
# Environment: FAV_BIN, STUB_BIN (default build/favorites-api, build/catalog-stub), STUB_PRODUCTS,
#   CHROMIUM (default /usr/bin/chromium), BROWSER_OUT (keeps the screenshot and logs there).
# Exit: 0 passed, 1 failed, 77 skipped (Chromium is not installed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
fav="$(abs "${FAV_BIN:-build/favorites-api}")"
stub="$(abs "${STUB_BIN:-build/catalog-stub}")"
products="$(abs "${STUB_PRODUCTS:-data/fakestore-products.json}")"
chromium="${CHROMIUM:-/usr/bin/chromium}"
update=0
for a in "$@"; do
  case "$a" in
    --update-screenshot) update=1 ;;
    *) echo "usage: $0 [--update-screenshot]" >&2; exit 1 ;;
  esac
done

if [ ! -x "$chromium" ]; then
  echo "SKIPPED: chromium not available ($chromium is missing; scripts/install-deps.sh test installs it)"
  exit 77
fi
for f in "$fav" "$stub" "$products"; do
  [ -e "$f" ] || { echo "FAIL: $f not found (build first, or set FAV_BIN / STUB_BIN / STUB_PRODUCTS)"; exit 1; }
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "FAIL: node and npm are needed (scripts/install-deps.sh installs them)"
  exit 1
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "FAIL: playwright-core needs Node.js 20 or newer, found $(node --version)"
  exit 1
fi

# Node dependencies: exactly the locked playwright-core, installed once into node_modules.
locked_ok() {
  (cd "$here" && node -e '
    const want = require("./package-lock.json").packages["node_modules/playwright-core"].version;
    process.exit(require("./node_modules/playwright-core/package.json").version === want ? 0 : 1);' 2>/dev/null)
}
if ! locked_ok; then
  echo "browser test: installing playwright-core (npm ci)"
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error) ||
    { echo "FAIL: npm ci in tests/browser failed"; exit 1; }
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/fav-browser.XXXXXX")"
out="${BROWSER_OUT:-$work/out}"
mkdir -p "$out"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
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
stub_port_of() { sed -n 's/^catalog-stub listening on port \([0-9][0-9]*\)$/\1/p' "$work/stub.log" | head -n1; }
stub_port="$(wait_for stub_port_of 10)" || { echo "FAIL: catalog stub did not start"; cat "$work/stub.log"; exit 1; }

api_key="browser-test-api-key-0123456789abcdef0123"
(
  cd "$work"
  exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" API_HOST=127.0.0.1 API_PORT=0 API_THREADS=2 LOG_LEVEL=info \
    API_KEY="$api_key" JWT_SECRET_KEY="browser-test-jwt-secret-0123456789abcdef01" \
    DATABASE_URL="sqlite:$work/favorites.db" PRODUCT_CATALOG_API_BASE_URL="http://127.0.0.1:$stub_port" \
    PRODUCT_CATALOG_WARMUP=false "$fav" serve
) >"$work/server.log" 2>"$work/server.err" &
server_pid=$!
pids+=("$server_pid")
# The port comes from the JSON log line {"message":"listening","port":N,...}.
api_port_of() {
  node -e '
    for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
      try { const o = JSON.parse(l); if (o.message === "listening" && Number.isInteger(o.port)) { console.log(o.port); break; } } catch {}
    }' "$work/server.log"
}
api_port="$(wait_for api_port_of 30)" || {
  echo "FAIL: favorites-api did not start"; tail -n 20 "$work/server.log" "$work/server.err"; exit 1; }
echo "browser test: stub on 127.0.0.1:$stub_port, service on 127.0.0.1:$api_port"

rc=0
BASE_URL="http://127.0.0.1:$api_port" API_KEY="$api_key" SCREENSHOT="$out/swagger-ui.png" CHROMIUM="$chromium" \
  timeout -k 5 200 node "$here/docs.spec.mjs" || rc=1

# The service must still stop cleanly (SIGTERM → exit 0) after the browser's keep-alive connections.
kill -TERM "$server_pid"
server_rc=0
for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then
  echo "FAIL: favorites-api still running 15 s after SIGTERM"
  kill -KILL "$server_pid" 2>/dev/null || true
fi
wait "$server_pid" || server_rc=$?
if [ "$server_rc" -ne 0 ]; then
  echo "FAIL: favorites-api exited with $server_rc on SIGTERM"
  rc=1
fi
if [ "$rc" -ne 0 ]; then
  echo "--- last server log lines:"
  tail -n 30 "$work/server.log" "$work/server.err"
  exit 1
fi

if [ "$update" = 1 ]; then
  mkdir -p "$root/docs/images"
  cp "$out/swagger-ui.png" "$root/docs/images/swagger-ui.png"
  echo "browser test: updated docs/images/swagger-ui.png"
fi
[ -n "${BROWSER_OUT:-}" ] && echo "browser test: screenshot in $out/swagger-ui.png"
exit 0
