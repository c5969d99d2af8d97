#!/usr/bin/env bash
# The benchmark, in one command (see bench/README.md): installs the tools, builds, seeds SQLite
# and PostgreSQL, measures the service with wrk and, in the same run, its ceilings (nginx static,
# pgbench of the service's own SQL, SQLite's one-commit-per-pair rate, argon2id on all cores);
# writes bench/RESULTS.md + plot.png.
#
#   bench/run.sh                                  full run (~12 min on 2 cores)
#   DURATION=3 WARMUP=1 CUSTOMERS=1000 bench/run.sh   quick check (~3 min)
#
# Every process it starts is stopped on exit (trap); every step has a time bound.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD

: "${DURATION:=10}"            # seconds of each measured run
: "${WARMUP:=3}"               # seconds of the warm-up before each measured run
: "${CUSTOMERS:=10000}"
: "${FAVORITES:=10}"
: "${CONNECTIONS:=64}"         # connections of the main runs (the targets' column)
: "${SWEEP:=1 8 64 256}"       # connection counts for (a) and the nginx ceiling
: "${WRK_THREADS:=1}"          # load generator threads (wrk -t, pgbench -j)
: "${API_THREADS:=$(nproc)}"   # service I/O threads; nginx gets the same number of workers
: "${BACKENDS:=sqlite postgresql}"
: "${HASH_SECONDS:=$DURATION}"
: "${LOG_LEVEL:=warning}"      # the service's; info would log one line per request
: "${SKIP_DEPS:=0}" "${SKIP_BUILD:=0}"
: "${BUILD_DIR:=build}"
: "${FAV_BIN:=$BUILD_DIR/favorites-api}" "${STUB_BIN:=$BUILD_DIR/catalog-stub}" "${SEED_BIN:=$BUILD_DIR/bench-seed}"
: "${COMMIT_BIN:=$BUILD_DIR/sqlite-commit-bench}" "${OPEN_LOOP_BIN:=$BUILD_DIR/open-loop}"
: "${OPEN_LOOP_LOADS:=50 80}"  # fixed rates for the tails, in % of the measured maximum
POOL=${DATABASE_POOL_SIZE:-5}  # the service's pool (its default)
: "${PGBENCH_CLIENTS:=$POOL 16 $CONNECTIONS}"  # pgbench client counts; the ceiling is the best
PRODUCTS_FILE=data/fakestore-products.json
PASSWORD=bench-password-1

OUT=bench/out          # raw outputs (git-ignored)
RAW=$OUT/raw
RUN=$OUT/run           # databases, nginx prefix, PostgreSQL cluster
export BENCH_LUA=$ROOT/bench/lua BENCH_PASSWORD=$PASSWORD

say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ---- processes: every one is registered, and stopped on exit ----
PIDS=()
PG_DIR=
cleanup() {
  set +e
  stop_pids "${PIDS[@]}"
  if [ -n "$PG_DIR" ]; then scripts/pg-test-cluster.sh stop "$PG_DIR" >/dev/null 2>&1; fi
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
stop_pid() {  # stops one registered process (TERM, then KILL after 15 s)
  local pid=$1 i
  if kill -TERM "$pid" 2>/dev/null; then
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}
# bounded SECONDS CMD...: CMD with a time limit, registered so that an interrupt stops it too
# (timeout puts it in its own process group, out of reach of the terminal's Ctrl-C).
bounded() {
  local limit=$1 pid rc=0
  shift
  timeout -k 5 "$limit" "$@" &
  pid=$!
  PIDS+=("$pid")
  wait "$pid" || rc=$?
  forget_pid "$pid"
  return "$rc"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() {  # URL PID: until URL answers 2xx, while PID lives (30 s)
  local i
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Commands as run, with the database password hidden, for RESULTS.md.
log_cmd() { printf '%s\n' "$*" | sed -E 's#(postgres(ql)?://[^:/@]+:)[^@]*@#\1***@#g' >>"$OUT/commands.log"; }

# ---- 1. tools and binaries ----
[ "$SKIP_DEPS" = 1 ] || scripts/install-deps.sh bench
for t in wrk nginx gnuplot pgbench curl python3; do command -v "$t" >/dev/null || die "$t not found"; done
if [ "$SKIP_BUILD" != 1 ]; then
  [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake -S . -B "$BUILD_DIR" >/dev/null
  say "building favorites-api catalog-stub bench-seed sqlite-commit-bench open-loop"
  cmake --build "$BUILD_DIR" --target favorites-api catalog-stub bench-seed sqlite-commit-bench open-loop \
    -j "$(nproc)" >/dev/null
fi
for b in "$FAV_BIN" "$STUB_BIN" "$SEED_BIN" "$COMMIT_BIN" "$OPEN_LOOP_BIN"; do [ -x "$b" ] || die "$b is not built"; done
FAV_BIN=$(realpath "$FAV_BIN"); STUB_BIN=$(realpath "$STUB_BIN"); SEED_BIN=$(realpath "$SEED_BIN")
COMMIT_BIN=$(realpath "$COMMIT_BIN"); OPEN_LOOP_BIN=$(realpath "$OPEN_LOOP_BIN")
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)

rm -rf "$OUT"
mkdir -p "$RAW" "$RUN"
: >"$OUT/results.jsonl"
: >"$OUT/commands.log"
SECRET="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
API_KEY="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
record() { printf '%s\n' "$1" >>"$OUT/results.jsonl"; }

{
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_total_kib=$(awk '/MemTotal/{print $2}' /proc/meminfo)"
  echo "kernel=$(uname -r)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src 2>/dev/null || echo '+dirty')"
  echo "wrk=$(wrk --version 2>&1 | head -n1 | awk '{print $2}')"
  echo "nginx=$(nginx -v 2>&1 | sed 's#.*/##')"
  echo "pgbench=$(pgbench --version | awk '{print $3}')"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  for v in DURATION WARMUP CUSTOMERS FAVORITES CONNECTIONS SWEEP WRK_THREADS API_THREADS BACKENDS HASH_SECONDS LOG_LEVEL POOL PGBENCH_CLIENTS OPEN_LOOP_LOADS; do
    echo "$v=${!v}"
  done
} >"$OUT/machine.env"

# ---- measuring helpers ----
SVC_PID=
rss_sampler() {  # PID OUTFILE: appends VmRSS (KiB) every 0.1 s, without forking but sleep
  local pid=$1 out=$2 k v rest
  while kill -0 "$pid" 2>/dev/null; do
    while read -r k v rest; do
      if [ "$k" = VmRSS: ]; then echo "$v" >>"$out"; break; fi
    done <"/proc/$pid/status" 2>/dev/null || true
    sleep 0.1
  done
}
# Where the CPU went during a measured run (bench/cpu_share.py): one sampler at a time.
CPU_SAMPLER=
cpu_sampler_start() {
  python3 bench/cpu_share.py sample "$1" &
  CPU_SAMPLER=$!
  PIDS+=("$CPU_SAMPLER")
}
cpu_sampler_stop() {
  [ -n "$CPU_SAMPLER" ] || return 0
  kill -TERM "$CPU_SAMPLER" 2>/dev/null || true
  wait "$CPU_SAMPLER" 2>/dev/null || true
  forget_pid "$CPU_SAMPLER"
  CPU_SAMPLER=
}
cpu_json() { if [ -s "$1" ]; then cat "$1"; else echo null; fi; }
status_kib() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Until PID has used < 5% of a core over 0.5 s (at most 60 s): work left queued by a warm-up
# (e.g. sign-ins wrk abandoned) must not spill into the measured run.
wait_idle() {
  local pid=$1 a b i
  for i in $(seq 1 120); do
    a=$(cpu_ticks "$pid"); sleep 0.5; b=$(cpu_ticks "$pid")
    [ $((b - a)) -le 2 ] && return 0
  done
  say "warning: pid $pid still busy after 60 s"
}

PG_URL=
PG_PORT=
psql_super() {
  "$PG_BIN/psql" -X -q -At -h "$PG_DIR" -p "$PG_PORT" -U postgres -d favorites_test -v ON_ERROR_STOP=1 "$@"
}
pgss_reset() { psql_super -c "SELECT pg_stat_statements_reset()" >/dev/null; }
pgss_dump() {  # the service's statements and their calls since the last reset, as CSV
  psql_super -c "COPY (SELECT calls, query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                       WHERE r.rolname = 'fav_test' ORDER BY calls DESC) TO STDOUT WITH (FORMAT csv)" >"$1"
}

SEEDED_AT=0
DB_URL=
reset_favorites() {
  bounded 120 "$SEED_BIN" --database-url "$DB_URL" --reset-since "$SEEDED_AT" >/dev/null
}

# open_loop TAG RATE CONNECTIONS SCENARIO SECONDS WARMUP: one run of tools/open_loop.cpp against the
# service; its BENCH_RESULT line lands in $RAW/TAG.txt.
open_loop() {
  local port=${SVC_URL##*:}
  log_cmd "$OPEN_LOOP_BIN --port <service> --tokens $TOKENS --scenario $4 --rate $2 --duration $5 --warmup $6 --connections $3"
  bounded $(($5 + $6 + 70)) "$OPEN_LOOP_BIN" --port "$port" --tokens "$TOKENS" --scenario "$4" --rate "$2" \
    --duration "$5" --warmup "$6" --connections "$3" >"$RAW/$1.txt" 2>&1 || say "warning: open-loop $1 exited with $?"
}

# open_loop_max TARGET SCENARIO: open-loop's own closed-loop maximum (req/s) for a scenario wrk
# measured, once per target. open-loop spends more CPU per request than wrk (a Beast client on one
# thread), and on cores it shares with the service 80 % of wrk's maximum could be more than the two
# together sustain: the fixed rates are taken from the smaller of the two maxima.
open_loop_max() {
  local tag="$1-$2-openmax" res
  if [ ! -s "$RAW/$tag.txt" ]; then
    if [ -n "${SVC_PID:-}" ]; then wait_idle "$SVC_PID"; fi
    say "open-loop (closed) $tag"
    open_loop "$tag" 0 "$CONNECTIONS" "$2" "$DURATION" "$WARMUP"
  fi
  res=$(sed -n 's/^BENCH_RESULT //p' "$RAW/$tag.txt" | tail -n 1)
  [ -n "$res" ] || return 0
  python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(round(r["requests"] * 1e6 / max(1, r["duration_us"]), 1))' "$res"
}

# run_open_loop TARGET SCENARIO PERCENT: the tails at a fixed rate, PERCENT of the maximum measured
# at $CONNECTIONS (for (a) and (b) the smaller of wrk's and open-loop's own), every request timed
# from its scheduled send (no coordinated omission).
run_open_loop() {
  local target=$1 scenario=$2 pct=$3 tag="$1-$2-open$3" max own rate res
  max=$(python3 bench/report.py max-rps "$OUT" "$target" "$scenario" "$CONNECTIONS")
  if [ -z "$max" ] || [ "$max" = 0 ]; then say "warning: no maximum measured for $tag"; return 0; fi
  if [ "$scenario" != add_remove ]; then
    own=$(open_loop_max "$target" "$scenario")
    if [ -n "$own" ]; then max=$(python3 -c 'import sys; print(min(float(sys.argv[1]), float(sys.argv[2])))' "$max" "$own"); fi
  fi
  # A slot of add_remove is a pair: two requests.
  rate=$(python3 -c 'import sys; m, p, s = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
print(max(1, round(m * p / 100 / (2 if s == "add_remove" else 1), 1)))' "$max" "$pct" "$scenario")
  [ "$scenario" = add_remove ] && reset_favorites
  if [ -n "${SVC_PID:-}" ]; then wait_idle "$SVC_PID"; fi
  say "open-loop $tag at $rate slots/s"
  open_loop "$tag" "$rate" "$CONNECTIONS" "$scenario" "$DURATION" "$WARMUP"
  res=$(sed -n 's/^BENCH_RESULT //p' "$RAW/$tag.txt" | tail -n 1)
  [ -n "$res" ] || { say "warning: no result in $RAW/$tag.txt"; res=null; }
  record "{\"kind\":\"open_loop\",\"target\":\"$target\",\"scenario\":\"$scenario\",\"percent\":$pct,\"connections\":$CONNECTIONS,\"max_rps\":$max,\"raw\":\"$RAW/$tag.txt\",\"result\":$res}"
}

# run_wrk TARGET SCENARIO CONNECTIONS URL: warm-up, then the measured run; one record. add_remove
# runs through open-loop's closed loop instead of wrk: wrk's Lua pair pipelines the POST and the
# DELETE and reports a p99 of 0 for slow pairs.
run_wrk() {
  local target=$1 scenario=$2 conns=$3 url=$4
  local tag="$target-$scenario-c$conns" threads=$WRK_THREADS pid=${SVC_PID:-}
  [ "$threads" -gt "$conns" ] && threads=$conns
  local args=(-t"$threads" -c"$conns" --timeout 30s -s "bench/lua/$scenario.lua")
  [ "$scenario" = add_remove ] && reset_favorites
  if [ "$WARMUP" != 0 ]; then
    local warm=("${args[@]}")
    # Sign-ins wrk abandons at the end of the warm-up still cost a hash each (~0.2-0.5 s per
    # core): warm that path with as many connections as cores, not a queue of $conns.
    if [ "$scenario" = sign_in ]; then
      local wc=$(( conns < $(nproc) ? conns : $(nproc) ))
      warm=(-t1 -c"$wc" --timeout 30s -s "bench/lua/$scenario.lua")
    fi
    if [ "$scenario" = add_remove ]; then
      open_loop "$tag.warmup" 0 "$conns" "$scenario" "$WARMUP" 0
    else
      bounded $((WARMUP + 60)) wrk "${warm[@]}" -d"${WARMUP}s" "$url" >"$RAW/$tag.warmup.txt" 2>&1 ||
        say "warning: warm-up $tag failed"
    fi
  fi
  if [ -n "$pid" ]; then wait_idle "$pid"; fi
  [ "$scenario" = add_remove ] && reset_favorites
  case $target in postgresql*) pgss_reset ;; esac
  local trips_before= trips_after=
  [ -n "$pid" ] && trips_before=$(db_round_trips)
  local sampler=
  if [ -n "$pid" ]; then
    rss_sampler "$pid" "$RAW/$tag.rss" &
    sampler=$!
    PIDS+=("$sampler")
  fi
  cpu_sampler_start "$RAW/$tag.cpu.json"
  if [ "$scenario" = add_remove ]; then
    say "open-loop (closed) $tag"
    open_loop "$tag" 0 "$conns" "$scenario" "$DURATION" 0
  else
    log_cmd "BENCH_TOKENS=$TOKENS wrk ${args[*]} --latency -d${DURATION}s $url"
    say "wrk $tag"
    bounded $((DURATION + 60)) wrk "${args[@]}" --latency -d"${DURATION}s" "$url" >"$RAW/$tag.txt" 2>&1 ||
      say "warning: wrk $tag exited with $?"
  fi
  cpu_sampler_stop
  [ -n "$pid" ] && trips_after=$(db_round_trips)
  [ -n "$sampler" ] && stop_pid "$sampler"
  local rss=0
  [ -n "$pid" ] && rss=$(sort -n "$RAW/$tag.rss" 2>/dev/null | tail -n 1)
  local res
  res=$(sed -n 's/^BENCH_RESULT //p' "$RAW/$tag.txt" | tail -n 1)
  [ -n "$res" ] || { say "warning: no result in $RAW/$tag.txt"; res=null; }
  local sql=null
  if [[ $target == postgresql* ]]; then
    pgss_dump "$RAW/$tag.pgss.csv"
    sql="\"$RAW/$tag.pgss.csv\""
  fi
  record "{\"kind\":\"wrk\",\"target\":\"$target\",\"scenario\":\"$scenario\",\"connections\":$conns,\"rss_peak_kib\":${rss:-0},\"cpu\":$(cpu_json "$RAW/$tag.cpu.json"),\"pgss\":$sql,\"db_round_trips_before\":${trips_before:-null},\"db_round_trips_after\":${trips_after:-null},\"raw\":\"$RAW/$tag.txt\",\"wrk\":$res}"
}

# The service's fav_db_round_trips_total now, as a JSON number (empty when /metrics does not answer).
db_round_trips() {
  curl -sS --max-time 10 "$SVC_URL/metrics" 2>/dev/null |
    awk '$1 == "fav_db_round_trips_total" { printf "%.0f", $2 }'
}

# ---- 2. the password-hash ceiling: argon2id with the service's parameters on every core ----
say "hash micro-benchmark (${HASH_SECONDS}s, $(nproc) threads)"
log_cmd "$SEED_BIN --hash-bench $HASH_SECONDS --threads $(nproc)"
bounded $((HASH_SECONDS + 60)) "$SEED_BIN" --hash-bench "$HASH_SECONDS" --threads "$(nproc)" >"$RAW/hash-bench.json"
record "{\"kind\":\"hash\",\"result\":$(cat "$RAW/hash-bench.json")}"

# ---- 3. the catalog stub (products are cached warm; it only answers stale refreshes) ----
"$STUB_BIN" --host 127.0.0.1 --port 0 --products "$PRODUCTS_FILE" >"$RAW/catalog-stub.log" 2>&1 &
STUB_PID=$!
PIDS+=("$STUB_PID")
STUB_PORT=$(listening_port "$RAW/catalog-stub.log")
[ -n "$STUB_PORT" ] || die "catalog stub did not start (see $RAW/catalog-stub.log)"

# ---- 4. one backend: seed, start the service, check every scenario once, load it ----
# Every load generator here is one client address (127.0.0.1), so the per-client fair shares
# (connections, hash-queue places) are lifted: the sweep opens 256 connections, (d) 64 sign-ins.
TOKENS=
FAV_BODY=$RUN/favorites-body.json
start_service() {  # NAME DATABASE_URL [VAR=VALUE...]: the service, with any extra settings
  local port
  port=$(free_port)
  (cd "$RUN" && exec env API_PORT="$port" API_HOST=127.0.0.1 API_THREADS="$API_THREADS" \
    DATABASE_URL="$2" API_KEY="$API_KEY" JWT_SECRET_KEY="$SECRET" \
    PRODUCT_CATALOG_API_BASE_URL="http://127.0.0.1:$STUB_PORT" PRODUCT_CATALOG_WARMUP=false \
    API_MAX_CONNECTIONS_PER_CLIENT=100000 PASSWORD_HASH_QUEUE_PER_CLIENT=100000 \
    LOG_LEVEL="$LOG_LEVEL" "${@:3}" "$FAV_BIN") >"$RAW/service-$1.log" 2>&1 &
  SVC_PID=$!
  PIDS+=("$SVC_PID")
  SVC_URL="http://127.0.0.1:$port"
  wait_http "$SVC_URL/health" "$SVC_PID" || die "service did not start (see $RAW/service-$1.log)"
}

# One request of each scenario must answer as expected before any load.
check_scenarios() {
  local id token free email code
  read -r id token free email <"$TOKENS"
  code=$(curl -sS --max-time 60 -o "$FAV_BODY.$1" -w '%{http_code}' -H "Authorization: Bearer $token" "$SVC_URL/customers/$id/favorites")
  [ "$code" = 200 ] || die "(a) answered $code: $(cat "$FAV_BODY.$1")"
  code=$(curl -sS --max-time 60 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$SVC_URL/customers/$id")
  [ "$code" = 200 ] || die "(b) answered $code"
  code=$(curl -sS --max-time 60 -o "$RAW/check-c.txt" -w '%{http_code}' -X POST -H "Authorization: Bearer $token" "$SVC_URL/customers/$id/favorites/$free")
  [ "$code" = 201 ] || die "(c) POST answered $code: $(cat "$RAW/check-c.txt")"
  code=$(curl -sS --max-time 60 -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $token" "$SVC_URL/customers/$id/favorites/$free")
  [ "$code" = 204 ] || die "(c) DELETE answered $code"
}
# Apart: one argon2id hash takes 64 MiB, which would count in the peak RSS of (a)/(b)/(c).
check_sign_in() {
  local id token free email code
  read -r id token free email <"$TOKENS"
  code=$(curl -sS --max-time 60 -o "$RAW/check-d.txt" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}" "$SVC_URL/auth/sign-in")
  [ "$code" = 200 ] || die "(d) answered $code: $(cat "$RAW/check-d.txt")"
}

bench_backend() {  # sqlite | postgresql
  local backend=$1
  if [ "$backend" = sqlite ]; then
    DB_URL="sqlite:$ROOT/$RUN/sqlite/favorites.db"
  else
    PG_DIR=$ROOT/$RUN/pg
    say "starting a throwaway PostgreSQL cluster"
    PG_URL=$(timeout -k 5 120 scripts/pg-test-cluster.sh start "$PG_DIR")
    PG_PORT=$(printf '%s' "$PG_URL" | sed -E 's#.*:([0-9]+)/[^/]*$#\1#')
    # pg_stat_statements: the service's SQL mix per request, and the proof pgbench ran the same text.
    psql_super -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
    timeout -k 5 120 scripts/pg-test-cluster.sh pause "$PG_DIR"
    timeout -k 5 120 scripts/pg-test-cluster.sh resume "$PG_DIR"
    psql_super -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
    DB_URL=$PG_URL
  fi
  TOKENS=$ROOT/$RUN/tokens-$backend.txt
  export BENCH_TOKENS=$TOKENS
  say "seeding $backend: $CUSTOMERS customers x $FAVORITES favorites"
  log_cmd "$SEED_BIN --database-url $DB_URL --customers $CUSTOMERS --favorites $FAVORITES --secret <secret> --tokens-out $TOKENS --products $PRODUCTS_FILE"
  local seed
  bounded 600 "$SEED_BIN" --database-url "$DB_URL" --customers "$CUSTOMERS" --favorites "$FAVORITES" \
    --secret "$SECRET" --tokens-out "$TOKENS" --products "$PRODUCTS_FILE" >"$RAW/seed-$backend.json"
  seed=$(cat "$RAW/seed-$backend.json")
  record "{\"kind\":\"seed\",\"target\":\"$backend\",\"result\":$seed}"
  SEEDED_AT=$(printf '%s' "$seed" | sed -E 's/.*"seeded_at_us":([0-9]+).*/\1/')

  start_service "$backend" "$DB_URL"
  check_scenarios "$backend"
  log_cmd "(cd $RUN && API_PORT=<free> API_HOST=127.0.0.1 API_THREADS=$API_THREADS DATABASE_URL=$DB_URL API_KEY=<key> JWT_SECRET_KEY=<secret> PRODUCT_CATALOG_API_BASE_URL=http://127.0.0.1:<stub> PRODUCT_CATALOG_WARMUP=false API_MAX_CONNECTIONS_PER_CLIENT=100000 PASSWORD_HASH_QUEUE_PER_CLIENT=100000 LOG_LEVEL=$LOG_LEVEL $FAV_BIN)"

  local c
  run_wrk "$backend" health "$CONNECTIONS" "$SVC_URL"
  run_wrk "$backend" favorites "$CONNECTIONS" "$SVC_URL"
  run_wrk "$backend" customer "$CONNECTIONS" "$SVC_URL"
  run_wrk "$backend" add_remove "$CONNECTIONS" "$SVC_URL"
  for c in $SWEEP; do
    [ "$c" = "$CONNECTIONS" ] || run_wrk "$backend" favorites "$c" "$SVC_URL"
  done
  local scen pct
  for scen in favorites customer add_remove; do
    for pct in $OPEN_LOOP_LOADS; do run_open_loop "$backend" "$scen" "$pct"; done
  done
  # VmHWM is the process's lifetime peak: read before sign-in, whose argon2 hashes take 64 MiB
  # each, it is the peak over (a), (b), (c) (plus /health) — none of them frees memory early.
  record "{\"kind\":\"rss\",\"target\":\"$backend\",\"phase\":\"abc\",\"vmhwm_kib\":$(status_kib "$SVC_PID" VmHWM)}"
  check_sign_in
  run_wrk "$backend" sign_in "$CONNECTIONS" "$SVC_URL"
  record "{\"kind\":\"rss\",\"target\":\"$backend\",\"phase\":\"all\",\"vmhwm_kib\":$(status_kib "$SVC_PID" VmHWM)}"
  # The service's own counters (statuses by route, cache hits, pool use) for the whole run.
  curl -sS --max-time 10 "$SVC_URL/metrics" >"$RAW/metrics-$backend.txt" || true
  stop_pid "$SVC_PID"
  SVC_PID=

  # (a) again with the read cache off: what the cache buys, and what the uncached path reaches.
  start_service "$backend-nocache" "$DB_URL" READ_CACHE_BYTES=0
  log_cmd "(same service command with READ_CACHE_BYTES=0)"
  run_wrk "$backend-nocache" favorites "$CONNECTIONS" "$SVC_URL"
  stop_pid "$SVC_PID"
  SVC_PID=

  if [ "$backend" = postgresql ]; then
    # (a) with the token cache off too: every request sends the token check with its read, in one
    # round trip (pipeline mode); the service's fav_db_round_trips_total tells how many it made.
    start_service "$backend-nocheck" "$DB_URL" READ_CACHE_BYTES=0 AUTH_CACHE_TTL_SECONDS=0
    log_cmd "(same service command with READ_CACHE_BYTES=0 AUTH_CACHE_TTL_SECONDS=0)"
    run_wrk "$backend-nocheck" favorites "$CONNECTIONS" "$SVC_URL"
    curl -sS --max-time 10 "$SVC_URL/metrics" >"$RAW/metrics-$backend-nocheck.txt" || true
    stop_pid "$SVC_PID"
    SVC_PID=
  fi

  [ "$backend" = sqlite ] && run_commit_bench
  [ "$backend" = postgresql ] && run_pgbench
  return 0
}

# ---- 5a. the SQLite write ceiling: the (c) pair, one transaction (one fsync) per pair ----
run_commit_bench() {
  local db=$ROOT/$RUN/sqlite/favorites.db
  log_cmd "$COMMIT_BIN --database $db --seconds $DURATION --warmup $WARMUP"
  say "SQLite durable-commit ceiling (${DURATION}s, one connection, one transaction per pair)"
  if bounded $((DURATION + WARMUP + 60)) "$COMMIT_BIN" --database "$db" --seconds "$DURATION" --warmup "$WARMUP" \
    >"$RAW/sqlite-commit-bench.json"; then
    record "{\"kind\":\"sqlite_commit\",\"result\":$(cat "$RAW/sqlite-commit-bench.json")}"
  else
    say "warning: sqlite-commit-bench failed"
  fi
}

# ---- 5. the PostgreSQL ceiling: pgbench -M prepared running the service's own statements ----
miss_ppm() {  # SCENARIO: token-cache misses per request measured on the service, in ppm
  python3 bench/report.py miss-ppm "$OUT" "$1"
}
run_pgbench() {
  python3 bench/pgbench_sql.py src/store/pg_store.cpp bench/sql "$RUN/sql"
  cp "$RUN/sql/statements.json" "$OUT/statements.json"
  local products script scenario miss c
  products=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$PRODUCTS_FILE")
  for script in a_favorites b_customer c_add_remove; do
    case $script in
      a_favorites) scenario=favorites ;;
      b_customer) scenario=customer ;;
      c_add_remove) scenario=add_remove ;;
    esac
    miss=$(miss_ppm "$scenario")
    local vars=(-D repick=100 -D n=-1 -D cid=none -D free=1 -D customers="$CUSTOMERS" -D favorites="$FAVORITES"
      -D products="$products" -D per_page=20 -D offset=0 -D now="$SEEDED_AT"
      -D jti="$(python3 -c 'import uuid; print(uuid.uuid4())')" -D sik="sig:bench-not-revoked" -D miss_ppm="$miss"
      -D origin="0123456789abcdef/")  # the notification's sender, as an instance names itself
    for c in $(printf '%s\n' $PGBENCH_CLIENTS | sort -nu); do
      local tag="postgresql-pgbench-$script-c$c"
      local args=(-n -M prepared -j "$WRK_THREADS" -c "$c" -f "$RUN/sql/$script.sql" "${vars[@]}")
      [ "$script" = c_add_remove ] && reset_favorites
      # 64 SCRAM logins can take seconds on a busy machine and -T counts them, so the measured
      # run uses -t: transactions per client sized from the warm-up's rate to last ~DURATION s
      # (pgbench's tps excludes connection time). Without a warm-up rate: -T with a margin.
      bounded $((WARMUP + c / 10 + 60)) pgbench "${args[@]}" -T "$((WARMUP + c / 10 + 1))" "$PG_URL" \
        >"$RAW/$tag.warmup.txt" 2>&1 || say "warning: pgbench warm-up $tag failed"
      local warm_tps length
      warm_tps=$(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$RAW/$tag.warmup.txt" | head -n1)
      if [ "${warm_tps:-0}" -gt 0 ]; then
        length=(-t "$(( warm_tps * DURATION / c > 0 ? warm_tps * DURATION / c : 1 ))")
      else
        length=(-T "$((DURATION + c / 4 + 2))")
      fi
      [ "$script" = c_add_remove ] && reset_favorites
      pgss_reset
      log_cmd "pgbench ${args[*]} ${length[*]} $PG_URL"
      say "pgbench $tag"
      cpu_sampler_start "$RAW/$tag.cpu.json"
      bounded $((4 * DURATION + c / 4 + 60)) pgbench "${args[@]}" "${length[@]}" "$PG_URL" >"$RAW/$tag.txt" 2>&1 ||
        say "warning: pgbench $tag exited with $?"
      cpu_sampler_stop
      psql_super -c "COPY (SELECT calls, query FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
                           WHERE r.rolname = 'fav_test' ORDER BY calls DESC) TO STDOUT WITH (FORMAT csv)" \
        >"$RAW/$tag.pgss.csv"
      record "{\"kind\":\"pgbench\",\"script\":\"$script\",\"scenario\":\"$scenario\",\"connections\":$c,\"miss_ppm\":$miss,\"cpu\":$(cpu_json "$RAW/$tag.cpu.json"),\"raw\":\"$RAW/$tag.txt\",\"pgss\":\"$RAW/$tag.pgss.csv\"}"
    done
  done
  reset_favorites
}

# ---- 6. the HTTP ceiling: nginx serving (a)'s body as a static file ----
run_nginx() {
  local ng=$ROOT/$RUN/nginx port
  mkdir -p "$ng/www" "$ng/tmp"
  cp "$FAV_BODY.$1" "$ng/www/favorites.json"
  chmod -R a+rX "$ng"
  port=$(free_port)
  sed -e "s#@WORKERS@#$API_THREADS#; s#@PREFIX@#$ng#g; s#@PORT@#$port#" bench/nginx.conf.in >"$ng/nginx.conf"
  nginx -p "$ng" -e "$ng/error.log" -c "$ng/nginx.conf" -g 'daemon off;' >"$RAW/nginx.log" 2>&1 &
  local ng_pid=$!
  PIDS+=("$ng_pid")
  wait_http "http://127.0.0.1:$port/customers/x/favorites" "$ng_pid" || die "nginx did not start (see $ng/error.log)"
  log_cmd "nginx -p $ng -e $ng/error.log -c $ng/nginx.conf -g 'daemon off;'   # bench/nginx.conf.in, worker_processes $API_THREADS"
  local c
  for c in $SWEEP; do
    SVC_PID='' run_wrk nginx favorites "$c" "http://127.0.0.1:$port"
  done
  record "{\"kind\":\"nginx\",\"body_bytes\":$(stat -c %s "$ng/www/favorites.json"),\"body_from\":\"$1\"}"
  stop_pid "$ng_pid"
}

NGINX_DONE=0
for backend in $BACKENDS; do
  bench_backend "$backend"
  if [ "$NGINX_DONE" = 0 ]; then
    run_nginx "$backend"   # same body, same token file, same Lua script as (a)
    NGINX_DONE=1
  fi
done

# ---- 7. the report ----
say "writing bench/RESULTS.md and bench/plot.png"
python3 bench/report.py report "$OUT" bench/RESULTS.md bench/plot.png
say "done: bench/RESULTS.md"
