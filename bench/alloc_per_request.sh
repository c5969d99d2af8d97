#!/usr/bin/env bash
# Heap allocations per request (bench/README.md, "Allocations per request"): the service runs on
# SQLite with tools/alloc_count.cpp preloaded; each scenario is warmed up, then REQUESTS requests
# are sent on keep-alive connections and the shim's counters are read (SIGUSR2) before and after.
#
#   bench/alloc_per_request.sh                 10,000 requests per scenario, one token per connection
#   REQUESTS=2000 ROTATE=1 bench/alloc_per_request.sh   each request the next customer's token
#                                              (bench/run.sh's rotation: no token repeats on a connection)
#   SCENARIOS=customer HEAPTRACK=/tmp/h bench/alloc_per_request.sh   also record where they come from
#                                              (heaptrack attached after start-up; heaptrack_print /tmp/h.*)
#
# Prints one line per scenario and `ALLOC_RESULT {json}`. Loopback only; every process it starts is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROOT=$PWD

: "${REQUESTS:=10000}"     # measured requests per scenario (add_remove: pairs × 2)
: "${WARMUP_REQUESTS:=500}"
: "${CONNECTIONS:=8}"      # keep-alive connections, used in turn by one client
: "${ROTATE:=0}"           # 1: each request carries the next customer's token
: "${SCENARIOS:=favorites customer add_remove}"
: "${HEAPTRACK:=}"         # an output path: heaptrack records the run's allocation sites there
: "${API_THREADS:=2}"
: "${BUILD_DIR:=build}"
: "${SKIP_BUILD:=0}"
: "${FAV_BIN:=$BUILD_DIR/favorites-api}" "${STUB_BIN:=$BUILD_DIR/catalog-stub}" "${SEED_BIN:=$BUILD_DIR/bench-seed}"
: "${SHIM:=$BUILD_DIR/liballoc-count.so}"

say() { printf '[alloc %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

if [ "$SKIP_BUILD" != 1 ]; then
  cmake --build "$BUILD_DIR" --target favorites-api catalog-stub bench-seed alloc-count >/dev/null ||
    die "build failed"
fi
for b in "$FAV_BIN" "$STUB_BIN" "$SEED_BIN" "$SHIM"; do [ -e "$b" ] || die "$b is not built"; done
FAV_BIN=$(realpath "$FAV_BIN"); STUB_BIN=$(realpath "$STUB_BIN"); SEED_BIN=$(realpath "$SEED_BIN"); SHIM=$(realpath "$SHIM")

WORK=$(mktemp -d /tmp/fav-alloc.XXXXXX)
PIDS=()
cleanup() {
  set +e
  stop_pids "${PIDS[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT

"$STUB_BIN" --host 127.0.0.1 --port 0 --products data/fakestore-products.json >"$WORK/stub.log" 2>&1 &
PIDS+=($!)
STUB_PORT=$(listening_port "$WORK/stub.log")
[ -n "$STUB_PORT" ] || die "catalog stub did not start"

SECRET="alloc-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DB_URL="sqlite:$WORK/favorites.db"
timeout 300 "$SEED_BIN" --database-url "$DB_URL" --customers 100 --favorites 10 --secret "$SECRET" \
  --tokens-out "$WORK/tokens.txt" --products data/fakestore-products.json >/dev/null

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PRELOAD=$SHIM
[ -z "$HEAPTRACK" ] || PRELOAD=  # heaptrack brings its own malloc hooks: no counts then, only sites
(cd "$WORK" && exec env LD_PRELOAD="$PRELOAD" API_PORT="$PORT" API_HOST=127.0.0.1 API_THREADS="$API_THREADS" \
  DATABASE_URL="$DB_URL" API_KEY="alloc-key-$SECRET" JWT_SECRET_KEY="$SECRET" \
  PRODUCT_CATALOG_API_BASE_URL="http://127.0.0.1:$STUB_PORT" PRODUCT_CATALOG_WARMUP=false \
  API_MAX_CONNECTIONS_PER_CLIENT=100000 LOG_LEVEL=warning "$FAV_BIN") >"$WORK/service.log" 2>&1 &
SVC_PID=$!
PIDS+=("$SVC_PID")
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/health" 2>/dev/null && break
  kill -0 "$SVC_PID" 2>/dev/null || die "service did not start: $(tail -n 5 "$WORK/service.log")"
  sleep 0.1
done

if [ -n "$HEAPTRACK" ]; then
  heaptrack -o "$HEAPTRACK" -p "$SVC_PID" >"$WORK/heaptrack.log" 2>&1 &
  HT_PID=$!
  for _ in $(seq 1 300); do grep -q "heaptrack output will be written\|now writing" "$WORK/heaptrack.log" 2>/dev/null && break; sleep 0.1; done
  sleep 1  # the attach has no other signal; allocations before it are simply not recorded
fi

# The client: plain http.client on keep-alive connections; reads the shim's counters by signal.
timeout 900 python3 - "$PORT" "$WORK/tokens.txt" "$WORK/service.log" "$SVC_PID" <<EOF
import http.client, json, os, re, signal, sys, time
port, tokens_path, log_path, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
requests, warmup, conns, rotate = $REQUESTS, $WARMUP_REQUESTS, $CONNECTIONS, $ROTATE == 1
scenarios = "$SCENARIOS".split()
customers = [line.split() for line in open(tokens_path) if line.strip()]
kinds = ("malloc", "calloc", "realloc", "aligned", "free")

def counters():
    if "$HEAPTRACK":
        return {k: 0 for k in kinds}
    before = open(log_path).read().count("ALLOC_COUNT")
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [l for l in open(log_path).read().splitlines() if l.startswith("ALLOC_COUNT")]
        if len(lines) > before:
            return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}
        time.sleep(0.01)
    sys.exit("no ALLOC_COUNT line from the service")

clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(conns)]
turn = 0

def send(method, path, who, expect):
    global turn
    c = clients[turn % conns]
    turn += 1
    c.request(method, path, headers={"Authorization": "Bearer " + who[1]})
    r = c.getresponse()
    r.read()
    if r.status != expect:
        sys.exit(f"{method} {path}: {r.status}, expected {expect}")

def customer_for(i):
    # One token per connection (a client's own), or the next customer's on every request.
    return customers[i % len(customers)] if rotate else customers[(i % conns) % len(customers)]

def scenario(name, n):
    i = 0
    while i < n:
        who = customer_for(i)
        if name == "favorites":
            send("GET", f"/customers/{who[0]}/favorites", who, 200); i += 1
        elif name == "customer":
            send("GET", f"/customers/{who[0]}", who, 200); i += 1
        else:
            path = f"/customers/{who[0]}/favorites/{who[2]}"
            send("POST", path, who, 201)
            send("DELETE", path, who, 204)
            i += 2

results = {}
a = counters(); time.sleep(1.0); b = counters()
results["idle_per_second"] = b["malloc"] + b["calloc"] + b["realloc"] + b["aligned"] - (a["malloc"] + a["calloc"] + a["realloc"] + a["aligned"])
for name in scenarios:
    scenario(name, warmup)
    a = counters()
    t0 = time.monotonic()
    scenario(name, requests)
    elapsed = time.monotonic() - t0
    b = counters()
    d = {k: b[k] - a[k] for k in kinds}
    allocs = (d["malloc"] + d["calloc"] + d["realloc"] + d["aligned"]) / requests
    results[name] = {"allocs_per_request": round(allocs, 1), "frees_per_request": round(d["free"] / requests, 1),
                     "requests": requests, "seconds": round(elapsed, 2),
                     **{k + "_per_request": round(d[k] / requests, 1) for k in kinds}}
    print(f"{name:12s} {allocs:8.1f} allocations/request ({d['malloc']/requests:.1f} malloc, "
          f"{d['calloc']/requests:.1f} calloc, {d['realloc']/requests:.1f} realloc), "
          f"{d['free']/requests:.1f} frees/request over {requests} requests")
print(f"idle: {results['idle_per_second']} allocations/second")
results["rotate"] = rotate
results["connections"] = conns
print("ALLOC_RESULT " + json.dumps(results))
EOF
if [ -n "$HEAPTRACK" ]; then  # heaptrack writes its file when the service exits
  kill -TERM "$SVC_PID"
  timeout 120 tail --pid="$HT_PID" -f /dev/null || true
  say "heaptrack: $(grep -o 'heaptrack_print [^"]*' "$WORK/heaptrack.log" | head -n1)"
fi
