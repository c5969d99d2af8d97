# shellcheck shell=bash
# Sourced (not run) by the tests that drive the real binary from a shell script
# (tests/client/run.sh, tests/browser/run.sh): the binaries' paths, a throwaway folder, the
# catalog stub and favorites-api on a fresh SQLite database, both on free loopback ports, and a
# cleanup (an EXIT trap) that stops every process started here by its pid.
#
# Before sourcing: `set -euo pipefail`, `root` (the repository) and `label` (names the folder and
# the messages). Environment: FAV_BIN, STUB_BIN (default build/favorites-api, build/catalog-stub),
# STUB_PRODUCTS.
# Gives: $fav $stub $products (absolute paths), $work (the folder), require_inputs, wait_for,
# start_stub (sets stub_port), start_service API_KEY JWT_SECRET (sets api_port and server_pid),
# stop_service (SIGTERM, then its exit code), service_tail, and cleanup_paths (more to remove).

abs() { case "$1" in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }
fav="$(abs "${FAV_BIN:-build/favorites-api}")"
stub="$(abs "${STUB_BIN:-build/catalog-stub}")"
products="$(abs "${STUB_PRODUCTS:-data/fakestore-products.json}")"

# The binaries, the product file, node and npm: a clear FAIL line and exit 1 when one is missing.
require_inputs() {
  local f
  for f in "$fav" "$stub" "$products"; do
    [ -e "$f" ] || { echo "FAIL: $f not found (build first, or set FAV_BIN / STUB_BIN / STUB_PRODUCTS)"; exit 1; }
  done
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "FAIL: node and npm are needed (scripts/install-deps.sh installs them)"
    exit 1
  fi
}

work="$(mktemp -d "${TMPDIR:-/tmp}/fav-$label.XXXXXX")"
pids=()
cleanup_paths=("$work")
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "${cleanup_paths[@]}"
}
trap cleanup EXIT

# Re-runs command $1 every 0.1 s until it prints something (printed), for at most $2 s.
wait_for() {
  local deadline=$((SECONDS + $2)) v
  while [ "$SECONDS" -le "$deadline" ]; do
    v="$($1)" && [ -n "$v" ] && { echo "$v"; return 0; }
    sleep 0.1
  done
  return 1
}

stub_port_of() { sed -n 's/^catalog-stub listening on port \([0-9][0-9]*\)$/\1/p' "$work/stub.log" 2>/dev/null | head -n1; }

start_stub() {
  "$stub" --host 127.0.0.1 --port 0 --products "$products" >"$work/stub.log" 2>&1 &
  pids+=($!)
  stub_port="$(wait_for stub_port_of 10)" || { echo "FAIL: catalog stub did not start"; cat "$work/stub.log"; exit 1; }
}

# The port comes from the JSON log line {"message":"listening","port":N,...}.
api_port_of() {
  node -e '
    for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
      try { const o = JSON.parse(l); if (o.message === "listening" && Number.isInteger(o.port)) { console.log(o.port); break; } } catch {}
    }' "$work/server.log"
}

# favorites-api on a fresh SQLite database in $work, with API key $1 and JWT secret $2.
start_service() {
  (
    cd "$work" || exit 1
    exec env -i PATH="$PATH" HOME="${HOME:-/tmp}" API_HOST=127.0.0.1 API_PORT=0 API_THREADS=2 LOG_LEVEL=info \
      API_KEY="$1" JWT_SECRET_KEY="$2" \
      DATABASE_URL="sqlite:$work/favorites.db" PRODUCT_CATALOG_API_BASE_URL="http://127.0.0.1:$stub_port" \
      PRODUCT_CATALOG_WARMUP=false "$fav" serve
  ) >"$work/server.log" 2>"$work/server.err" &
  server_pid=$!
  pids+=("$server_pid")
  api_port="$(wait_for api_port_of 30)" || {
    echo "FAIL: favorites-api did not start"; tail -n 20 "$work/server.log" "$work/server.err"; exit 1; }
}

service_tail() {
  echo "--- last server log lines:"
  tail -n 30 "$work/server.log" "$work/server.err"
}

# SIGTERM to the service; returns its exit code (SIGKILL and 1 when it is still running 15 s later).
stop_service() {
  local deadline=$((SECONDS + 15)) rc=0
  kill -TERM "$server_pid"
  while kill -0 "$server_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL: favorites-api still running 15 s after SIGTERM"
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" || rc=$?
  return "$rc"
}
