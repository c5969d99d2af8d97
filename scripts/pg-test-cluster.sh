#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the store and fault tests: listens only on 127.0.0.1 at a
# free port, keeps its unix socket, data and log inside DIR, and prints a libpq URI.
#
#   scripts/pg-test-cluster.sh start  DIR   create (or restart) the cluster; prints the URI
#   scripts/pg-test-cluster.sh url    DIR   prints the URI of an existing cluster
#   scripts/pg-test-cluster.sh pause  DIR [fast|immediate]   stops the server, keeps the data
#   scripts/pg-test-cluster.sh resume DIR   starts it again on the same port
#   scripts/pg-test-cluster.sh stop   DIR   stops the server and removes DIR
#
# Example: export FAV_TEST_PG_URL=$(scripts/pg-test-cluster.sh start /tmp/favpg)
# pause/resume are `pg_ctl -D DIR/data stop -m fast` / `pg_ctl -D DIR/data -l DIR/log start`,
# run as the cluster's owner. As root, the server runs as the system user `postgres`
# (created when missing); DIR must then be reachable by that user (e.g. under /tmp).
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac

pg_bin="${PG_BIN:-}"
if [ -z "$pg_bin" ]; then
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
fi
[ -x "$pg_bin/initdb" ] || { echo "pg-test-cluster: initdb not found (set PG_BIN)" >&2; exit 1; }

db_name=favorites_test
db_user=fav_test
data="$dir/data"

# Runs a command as the cluster owner: `postgres` when we are root, else ourselves.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

ensure_owner() {
  [ "$(id -u)" = 0 ] || return 0
  if ! id -u postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  chown postgres: "$dir"
  if ! runuser -u postgres -- test -w "$dir"; then
    echo "pg-test-cluster: user postgres cannot write $dir (a parent is not traversable)" >&2
    exit 1
  fi
}

running() { as_owner "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

start_server() {
  as_owner "$pg_bin/pg_ctl" -D "$data" -l "$dir/log" -w -t 30 start >/dev/null
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

print_url() {
  [ -f "$dir/url" ] || { echo "pg-test-cluster: no cluster in $dir" >&2; exit 1; }
  cat "$dir/url"
}

case "$cmd" in
  start)
    if [ -f "$data/PG_VERSION" ] && [ -f "$dir/url" ]; then
      # Idempotent: an existing cluster is (re)started and its URI printed again.
      running || start_server
      print_url
      exit 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    ensure_owner
    as_owner "$pg_bin/initdb" -D "$data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    # A free port: probe, then let the server's own bind decide (retry on a lost race).
    started=
    for _ in $(seq 1 20); do
      port=$((20000 + RANDOM % 30000))
      port_free "$port" || continue
      as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF
# pg-test-cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = on
max_connections = 200
EOF
      if start_server 2>/dev/null; then started=1; break; fi
      # Drop the settings block we appended and try another port.
      as_owner sed -i '/^# pg-test-cluster$/,$d' "$data/postgresql.conf"
    done
    [ -n "$started" ] || { echo "pg-test-cluster: could not start (see $dir/log)" >&2; exit 1; }
    password="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    as_owner "$pg_bin/psql" -q -X -h "$dir" -p "$port" -U postgres -d postgres \
      -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE $db_user LOGIN CREATEDB PASSWORD '$password'" \
      -c "CREATE DATABASE $db_name OWNER $db_user" >/dev/null
    url="postgresql://$db_user:$password@127.0.0.1:$port/$db_name"
    echo "$url" | as_owner tee "$dir/url" >/dev/null
    echo "$url"
    ;;
  url)
    print_url
    ;;
  pause)
    mode="${3:-fast}"
    [ -f "$data/PG_VERSION" ] || { echo "pg-test-cluster: no cluster in $dir" >&2; exit 1; }
    if running; then as_owner "$pg_bin/pg_ctl" -D "$data" -m "$mode" -w -t 30 stop >/dev/null; fi
    ;;
  resume)
    [ -f "$data/PG_VERSION" ] || { echo "pg-test-cluster: no cluster in $dir" >&2; exit 1; }
    running || start_server
    ;;
  stop)
    # A failed stop shows (non-zero, the folder kept for a look at its log).
    if [ -f "$data/PG_VERSION" ] && running; then
      if ! as_owner "$pg_bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null; then
        as_owner "$pg_bin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null || true
      fi
      if running; then
        echo "pg-test-cluster: the server in $dir is still running (see $dir/log)" >&2
        exit 1
      fi
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "pg-test-cluster: unknown command '$cmd' (start|url|pause|resume|stop)" >&2
    exit 2
    ;;
esac
