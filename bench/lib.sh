# Sourced by the bench scripts: stopping what they started, by process id.

# stop_pids PID...: SIGTERM to each, up to 10 s for each to exit, then SIGKILL.
stop_pids() {
  local pid i
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "$@"; do
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  return 0
}

# listening_port LOG: the port the catalog stub logged ("listening on port N"), waiting up to
# 10 s for the line; empty when it never came.
listening_port() {
  local port= _
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$1" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  echo "$port"
}
