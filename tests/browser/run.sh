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
label=browser
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
# shellcheck source=../lib/service.sh
. "$root/tests/lib/service.sh"
require_inputs
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

out="${BROWSER_OUT:-$work/out}"
mkdir -p "$out"
start_stub
api_key="browser-test-api-key-0123456789abcdef0123"
start_service "$api_key" "browser-test-jwt-secret-0123456789abcdef01"
echo "browser test: stub on 127.0.0.1:$stub_port, service on 127.0.0.1:$api_port"

rc=0
BASE_URL="http://127.0.0.1:$api_port" API_KEY="$api_key" SCREENSHOT="$out/swagger-ui.png" CHROMIUM="$chromium" \
  timeout -k 5 200 node "$here/docs.spec.mjs" || rc=1

# The service must still stop cleanly (SIGTERM → exit 0) after the browser's keep-alive connections.
server_rc=0
stop_service || server_rc=$?
if [ "$server_rc" -ne 0 ]; then
  echo "FAIL: favorites-api exited with $server_rc on SIGTERM"
  rc=1
fi
if [ "$rc" -ne 0 ]; then
  service_tail
  exit 1
fi

if [ "$update" = 1 ]; then
  mkdir -p "$root/docs/images"
  cp "$out/swagger-ui.png" "$root/docs/images/swagger-ui.png"
  echo "browser test: updated docs/images/swagger-ui.png"
fi
[ -n "${BROWSER_OUT:-}" ] && echo "browser test: screenshot in $out/swagger-ui.png"
exit 0
