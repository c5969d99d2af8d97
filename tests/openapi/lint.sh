#!/usr/bin/env bash
# Lints openapi/openapi.json with the pinned Redocly CLI (package.json / package-lock.json here,
# installed with `npm ci` when node_modules is missing or differs from the lock). Fails on any
# error and on any warning: a warning to live with is switched off in redocly.yaml with its reason.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
command -v npm >/dev/null 2>&1 || { echo "FAIL: node and npm are needed (scripts/install-deps.sh installs them)"; exit 1; }
locked_ok() {
  (cd "$here" && node -e '
    const want = require("./package-lock.json").packages["node_modules/@redocly/cli"].version;
    process.exit(require("./node_modules/@redocly/cli/package.json").version === want ? 0 : 1);' 2>/dev/null)
}
if ! locked_ok; then
  echo "openapi lint: installing @redocly/cli (npm ci)"
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error) ||
    { echo "FAIL: npm ci in tests/openapi failed"; exit 1; }
fi
out="$(cd "$here" && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true timeout 300 \
  ./node_modules/.bin/redocly lint --config redocly.yaml "$root/openapi/openapi.json" 2>&1)" && rc=0 || rc=$?
echo "$out"
if [ "$rc" -ne 0 ]; then echo "FAIL: redocly lint exited $rc"; exit 1; fi
if grep -qE 'You have [0-9]+ warnings?' <<<"$out"; then echo "FAIL: redocly lint warnings (fix them, or switch the rule off in tests/openapi/redocly.yaml saying why)"; exit 1; fi
echo "OK: no errors, no warnings"
