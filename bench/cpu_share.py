#!/usr/bin/env python3
"""Where the machine's CPU went during one measured run: the service, PostgreSQL, the load
generator, nginx, anything else, and idle, each as a share of all cores (100 % = every core busy).

    bench/cpu_share.py sample OUT.json &   # until SIGTERM; then writes OUT.json
    bench/cpu_share.py show OUT.json       # one line, for the log

Every 0.5 s it reads /proc/stat and each process's utime + stime (/proc/PID/stat, all its
threads); a process counts from its first sample to its last, so a load generator that exits
before the sampler stops still counts up to its last sample. Processes are grouped by name
(/proc/PID/comm). The scan is cheap: under 0.1 % of one core with 71 processes (0 ticks in 10 s).

Why: on a shared 2-core machine a ratio to a ceiling measured apart (nginx, pgbench) mixes what
the service costs with what it leaves the database and the generator; the shares say which.
"""
import json
import os
import signal
import sys
import time

GROUPS = (
    ("service", lambda c: c == "favorites-api"),
    ("postgres", lambda c: c.startswith("postgres")),
    ("generator", lambda c: c in ("wrk", "open-loop", "pgbench")),
    ("nginx", lambda c: c == "nginx"),
)


def group_of(comm):
    for name, match in GROUPS:
        if match(comm):
            return name
    return "other"


def machine():
    """(all ticks, idle ticks) of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]  # idle + iowait


def processes():
    """{pid: (group, ticks)} for every process readable now."""
    out = {}
    me = os.getpid()
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{p}/comm") as f:
                comm = f.read().strip()
        except (OSError, IndexError):
            continue  # gone between listdir and open
        out[int(p)] = (group_of(comm), int(rest[11]) + int(rest[12]))
    return out


def sample(path):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    total0, idle0 = machine()
    first = processes()
    last = dict(first)
    total1, idle1 = total0, idle0
    while not stop:
        time.sleep(0.5)
        total1, idle1 = machine()
        for pid, gt in processes().items():
            last[pid] = gt
            first.setdefault(pid, (gt[0], 0))  # born during the run: all its time is in it
    total = max(1, total1 - total0)
    used = {name: 0 for name, _ in GROUPS}
    used["other"] = 0
    for pid, (group, ticks) in last.items():
        used[group] += max(0, ticks - first[pid][1])
    shares = {k: round(100.0 * v / total, 1) for k, v in used.items()}
    shares["idle"] = round(100.0 * (idle1 - idle0) / total, 1)
    shares["seconds"] = round(total / os.sysconf("SC_CLK_TCK") / os.cpu_count(), 1)
    with open(path, "w") as f:
        json.dump(shares, f)


def show(path):
    with open(path) as f:
        s = json.load(f)
    print(" ".join(f"{k} {s[k]}%" for k in ("service", "postgres", "generator", "nginx", "other", "idle")))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "sample":
        sample(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "show":
        show(sys.argv[2])
    else:
        sys.exit(__doc__)
