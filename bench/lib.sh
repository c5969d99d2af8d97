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
