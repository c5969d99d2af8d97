#!/usr/bin/env python3
"""Turns bench/out (written by bench/run.sh) into bench/RESULTS.md and the gnuplot PNG.

  report.py report OUT RESULTS.md PLOT.png
  report.py miss-ppm OUT SCENARIO    token-cache misses per request on PostgreSQL, in ppm
  report.py max-rps OUT TARGET SCENARIO CONNS   successful req/s of that run (the open-loop rates' base)

Throughput is successful responses per second (wrk counts answers >= 400 as errors; they are
not throughput). Every target is a ratio of two figures from the same run.
"""
import csv
import json
import os
import re
import subprocess
import sys

SCENARIOS = [
    ("favorites", "(a) GET /customers/{id}/favorites"),
    ("customer", "(b) GET /customers/{id}"),
    ("add_remove", "(c) POST + DELETE favorite (pair)"),
    ("sign_in", "(d) POST /auth/sign-in"),
    ("health", "(e) GET /health"),
]
PGBENCH_OF = {"favorites": "a_favorites", "customer": "b_customer", "add_remove": "c_add_remove"}
# HTTP requests per pgbench transaction of each script.
REQUESTS_PER_TX = {"a_favorites": 1, "b_customer": 1, "c_add_remove": 2}
PICK = "SELECT id::text AS cid FROM customers WHERE email ="
MIB = 1024


def load(out):
    recs = []
    with open(os.path.join(out, "results.jsonl")) as f:
        for line in f:
            if line.strip():
                recs.append(json.loads(line))
    env = {}
    with open(os.path.join(out, "machine.env")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            env[k] = v
    return recs, env


def main_conns(env):
    return int(env.get("CONNECTIONS", 64))


# ---- wrk ----
def wrk_rec(recs, target, scenario, conns):
    for r in recs:
        if r["kind"] == "wrk" and r["target"] == target and r["scenario"] == scenario and r["connections"] == conns:
            return r
    return None


def open_loop_rec(recs, target, scenario, pct):
    for r in recs:
        if (r["kind"] == "open_loop" and r["target"] == target and r["scenario"] == scenario
                and r["percent"] == pct and r.get("result")):
            return r
    return None


def open_loop_ms(r, key):
    """A latency of an open-loop run in ms (every scheduled request is timed, so no zeros)."""
    return r["result"][key] / 1000 if r else None


def ok_rps(r):
    if not r or not r.get("wrk"):
        return None
    w = r["wrk"]
    return (w["requests"] - w["status_errors"]) / (w["duration_us"] / 1e6)


def pct_ms(r, key):
    """A latency percentile in ms, or None when absent; wrk 4.1 sometimes reports a high
    percentile as 0 for a run of few, slow requests (its statistics overflow), which must never
    read as a pass."""
    if not r or not r.get("wrk"):
        return None
    v = r["wrk"][key]
    if v == 0 and r["wrk"]["max_us"] > 0:
        return None
    return v / 1000


def errors(r):
    w = r["wrk"]
    return w["status_errors"] + w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]


# ---- pgbench ----
def pgbench_parse(path):
    text = open(path).read() if os.path.exists(path) else ""
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    tx = re.search(r"number of transactions actually processed: (\d+)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    lat = re.search(r"latency average = ([\d.]+) ms", text)
    return {
        "tps": float(m.group(1)) if m else None,
        "transactions": int(tx.group(1)) if tx else None,
        "failed": int(failed.group(1)) if failed else 0,
        "latency_ms": float(lat.group(1)) if lat else None,
    }


def pgbench_recs(recs, script):
    out = []
    for r in recs:
        if r["kind"] == "pgbench" and r["script"] == script:
            out.append(dict(r, **pgbench_parse(r["raw"])))
    return sorted(out, key=lambda r: r["connections"])


def pgbench_ceiling(recs, script):
    """Best requests-equivalent per second over the client counts tried (what the DB can do)."""
    best = None
    for r in pgbench_recs(recs, script):
        if r["tps"] is not None:
            v = r["tps"] * REQUESTS_PER_TX[script]
            if best is None or v > best[0]:
                best = (v, r)
    return best


# ---- pg_stat_statements: which statement ran how often ----
def norm(sql):
    """Comparable text: pg_stat_statements may store a statement with its constants replaced
    by $n (when it first sees it at parse time), so parameters, quoted and numeric literals
    all become "?"."""
    sql = re.sub(r"'[^']*'", "?", sql)
    sql = re.sub(r"extract\(\s*\w+\s+FROM", "extract(? FROM", sql, flags=re.I)
    sql = re.sub(r"\$\d+", "?", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
    sql = re.sub(r"\b(true|false|null)\b", "?", sql, flags=re.I)
    return re.sub(r"\s+", " ", sql).strip().rstrip(";").strip()


def statement_names(out):
    path = os.path.join(out, "statements.json")
    if not os.path.exists(path):
        return {}
    return {norm(v): k for k, v in json.load(open(path)).items()}


def sql_mix(out, csv_path):
    """{statement name: calls} from a pg_stat_statements dump."""
    names = statement_names(out)
    mix = {}
    if not csv_path or not os.path.exists(csv_path):
        return mix
    with open(csv_path, newline="") as f:
        for calls, query in csv.reader(f):
            n = norm(query)
            if n.startswith(norm(PICK)):
                name = "(pgbench: pick a customer)"
            else:
                name = names.get(n, "other: " + n[:60])
            mix[name] = mix.get(name, 0) + int(calls)
    return mix


def miss_ppm(out, scenario):
    recs, env = load(out)
    r = wrk_rec(recs, "postgresql", scenario, main_conns(env))
    if not r or not r.get("wrk") or not r.get("pgss"):
        return 0
    calls = sql_mix(out, r["pgss"]).get("check_token", 0)
    return min(1_000_000, round(1e6 * calls / max(1, r["wrk"]["requests"])))


def round_trips_per_request(out, backend):
    """fav_db_round_trips_total ÷ the HTTP requests counted by the service (its /metrics dump), or None."""
    path = os.path.join(out, "raw", f"metrics-{backend}.txt")
    if not os.path.exists(path):
        return None
    trips, requests = None, 0
    pat = re.compile(r'^fav_http_requests_total\{method="GET",route="/customers/\{id\}/favorites",[^}]*\} (\d+)')
    for line in open(path):
        if line.startswith("fav_db_round_trips_total "):
            trips = float(line.split()[1])
        m = pat.match(line)
        if m:
            requests += int(m.group(1))
    return trips / requests if trips is not None and requests else None


def run_round_trips(r):
    """fav_db_round_trips_total over one measured run (its record's reading before and after), or
    None for a run recorded without them."""
    before, after = r.get("db_round_trips_before"), r.get("db_round_trips_after")
    if before is None or after is None:
        return None
    return after - before


def error_statuses(out, backend):
    """[((method, route, status), count)] for statuses >= 400 in the service's /metrics dump."""
    path = os.path.join(out, "raw", f"metrics-{backend}.txt")
    if not os.path.exists(path):
        return None
    pat = re.compile(r'^fav_http_requests_total\{method="([^"]*)",route="([^"]*)",status="(\d+)"\} (\d+)')
    found = []
    for line in open(path):
        m = pat.match(line)
        if m and int(m.group(3)) >= 400:
            found.append(((m.group(1), m.group(2), m.group(3)), int(m.group(4))))
    return found


# ---- formatting ----
def f0(v):
    return "n/a" if v is None else f"{v:,.0f}"


def ms(us):
    return "n/a" if us is None else f"{us / 1000:.2f}"


def cpu_cell(r, keys):
    """'a / b / c' of the run's CPU shares (bench/cpu_share.py), in % of all cores; n/a without."""
    c = (r or {}).get("cpu")
    if not c:
        return "n/a"
    return " / ".join(f"{c.get(k, 0):.0f}" for k in keys)


def ratio_row(name, num, den, target, op=">="):
    if num is None or den is None or den == 0:
        return f"| {name} | n/a | {op} {target} | n/a |"
    v = num / den
    ok = v >= target if op == ">=" else v <= target
    return f"| {name} | **{v:.2f}** ({f0(num)} / {f0(den)}) | {op} {target} | {'PASS' if ok else 'FAIL'} |"


def limit_row(name, value, unit, target):
    if value is None:
        return f"| {name} | n/a | <= {target} {unit} | n/a |"
    return f"| {name} | **{value:.2f} {unit}** | <= {target} {unit} | {'PASS' if value <= target else 'FAIL'} |"


def plot(out, recs, env, png):
    sweep = [int(c) for c in env.get("SWEEP", "").split()]
    data = os.path.join(out, "sweep.dat")
    series = [t for t in ("sqlite", "postgresql", "nginx") if any(wrk_rec(recs, t, "favorites", c) for c in sweep)]
    with open(data, "w") as f:
        for t in series:
            f.write(f"# {t}\n")
            for c in sweep:
                r = wrk_rec(recs, t, "favorites", c)
                if r and r.get("wrk"):
                    f.write(f"{c} {ok_rps(r):.1f} {r['wrk']['p99_us'] / 1000:.3f}\n")
            f.write("\n\n")
    titles = {"sqlite": "service, SQLite", "postgresql": "service, PostgreSQL", "nginx": "nginx static (ceiling)"}
    styles = {"sqlite": "lc rgb '#1f77b4' pt 7", "postgresql": "lc rgb '#2ca02c' pt 5", "nginx": "lc rgb '#d62728' pt 9 dt 2"}

    def plots(col):
        return ", ".join(f"'{data}' index {i} using 1:{col} with linespoints lw 2 {styles[t]} title '{titles[t]}'"
                         for i, t in enumerate(series))

    # Third panel: p99.9 of the fixed-rate runs against the load, one line per backend and scenario.
    loads = [int(x) for x in env.get("OPEN_LOOP_LOADS", "").split()]
    tails = os.path.join(out, "open_loop.dat")
    tail_series = []
    with open(tails, "w") as f:
        for t in ("sqlite", "postgresql"):
            for scen, label in SCENARIOS[:3]:
                pts = [(p, open_loop_rec(recs, t, scen, p)) for p in loads]
                pts = [(p, r) for p, r in pts if r]
                if not pts:
                    continue
                tail_series.append(f"{t} {label.split(' ')[0]}")
                f.write(f"# {t} {scen}\n")
                for p, r in pts:
                    f.write(f"{p} {r['result']['p999_us'] / 1000:.3f}\n")
                f.write("\n\n")
    tail_plot = ", ".join(f"'{tails}' index {i} using 1:2 with linespoints lw 2 title '{name}'"
                          for i, name in enumerate(tail_series))
    third = f"""set title 'p99.9 at a fixed rate (open loop, {main_conns(env)} connections)'
unset logscale x
set xrange [{min(loads, default=0) - 10}:{max(loads, default=100) + 10}]
set xtics ({', '.join(str(p) for p in loads)})
set xlabel 'load (% of the measured maximum)'
set ylabel 'p99.9 latency (ms)'
set logscale y 10
set yrange [*:*]
plot {tail_plot}
""" if tail_series else ""

    gp = f"""set terminal pngcairo size {2100 if tail_series else 1400},560 font 'DejaVu Sans,11' noenhanced
set output '{png}'
set multiplot layout 1,{3 if tail_series else 2} title "Favorites API ({env.get('nproc')} cores, wrk -t{env.get('WRK_THREADS')}, {env.get('date')})"
set logscale x 2
set xrange [0.8:320]
set xtics ({', '.join(str(c) for c in sweep)})
set xlabel 'connections'
set grid
set key top left
set title '(a) GET /customers/{{id}}/favorites: requests/s against connections'
set ylabel 'requests/s'
set yrange [0:*]
plot {plots(2)}
set title '(a): p99 against connections'
set ylabel 'p99 latency (ms)'
set logscale y 10
set yrange [*:*]
plot {plots(3)}
{third}unset multiplot
"""
    gp_path = os.path.join(out, "plot.gp")
    with open(gp_path, "w") as f:
        f.write(gp)
    subprocess.run(["gnuplot", gp_path], check=True, timeout=60)


def report(out, md_path, png):
    recs, env = load(out)
    conns = main_conns(env)
    backends = [b for b in env.get("BACKENDS", "").split() if any(r.get("target") == b for r in recs)]
    hash_rec = next((r["result"] for r in recs if r["kind"] == "hash"), None)
    hps = hash_rec["hashes_per_second"] if hash_rec else None
    nginx = next((r for r in recs if r["kind"] == "nginx"), None)
    rss = {(r["target"], r["phase"]): r["vmhwm_kib"] for r in recs if r["kind"] == "rss"}
    seeds = {r["target"]: r["result"] for r in recs if r["kind"] == "seed"}
    commit = next((r["result"] for r in recs if r["kind"] == "sqlite_commit"), None)
    # (c) counts both requests of a pair, so the ceiling does too.
    commit_rps = commit["pairs_per_second"] * 2 if commit else None

    L = []
    w = L.append
    w("# Favorites API — benchmark results")
    w("")
    w(f"Generated by `bench/run.sh` on {env.get('date')} (commit `{env.get('commit')}`). "
      "Every target is a ratio of two figures measured in this same run; absolute numbers drift "
      "from machine to machine and run to run. See `bench/README.md` for what each figure means.")
    w("")
    w("## Machine and parameters")
    w("")
    w(f"- CPU: {env.get('cpu')}, `nproc` = {env.get('nproc')}, memory {int(env.get('mem_total_kib', 0)) // MIB:,} MiB; "
      f"{env.get('os')}, kernel {env.get('kernel')}")
    w(f"- wrk {env.get('wrk')}, nginx {env.get('nginx')}, pgbench {env.get('pgbench')}")
    w(f"- {env.get('CUSTOMERS')} customers × {env.get('FAVORITES')} favorites, one token each; "
      f"measured runs of {env.get('DURATION')} s after a {env.get('WARMUP')} s warm-up; main runs at {conns} connections")
    w(f"- Cores are shared, not pinned: the load generator gets {env.get('WRK_THREADS')} thread "
      f"(`wrk -t{env.get('WRK_THREADS')}`, `pgbench -j{env.get('WRK_THREADS')}`); the service runs "
      f"`API_THREADS={env.get('API_THREADS')}` and nginx `worker_processes {env.get('API_THREADS')}`; "
      "PostgreSQL, the service and the load generator all run on the same cores, for the service and for its ceilings alike.")
    w(f"- Service: `LOG_LEVEL={env.get('LOG_LEVEL')}`, `DATABASE_POOL_SIZE={env.get('POOL')}` (default), other settings default.")
    w("")

    # ---- targets ----
    # The performance targets (bench/README.md), the uncached path's included.
    w(f"## Targets ({conns} connections)")
    w("")
    w("| ratio | measured | target | |")
    w("|---|---|---|---|")
    pg = "postgresql"

    def pg_ratio(label, target_name, scen, target):
        ceil = pgbench_ceiling(recs, PGBENCH_OF[scen])
        w(ratio_row(f"{label} on PostgreSQL{'' if target_name == pg else ', read cache off,'} ÷ pgbench of its SQL",
                    ok_rps(wrk_rec(recs, target_name, scen, conns)), ceil[0] if ceil else None, target))

    w(ratio_row("(a) on SQLite ÷ nginx static ceiling", ok_rps(wrk_rec(recs, "sqlite", "favorites", conns)),
                ok_rps(wrk_rec(recs, "nginx", "favorites", conns)), 0.6))
    pg_ratio("(a)", pg, "favorites", 1.5)
    pg_ratio("(b)", pg, "customer", 1.0)
    pg_ratio("(a)", pg + "-nocache", "favorites", 0.8)
    w(ratio_row("(c) on SQLite ÷ one-transaction-per-pair ceiling", ok_rps(wrk_rec(recs, "sqlite", "add_remove", conns)),
                commit_rps, 2))
    pg_ratio("(c)", pg, "add_remove", 1.0)
    for b in backends:
        r = wrk_rec(recs, b, "add_remove", conns)
        w(limit_row(f"p99 of (c) on {b}", pct_ms(r, "p99_us"), "ms", 20))
        w(limit_row(f"p99.9 of (c) on {b}", pct_ms(r, "p999_us"), "ms", 50))
    for b in backends:
        for scen, label in (("favorites", "(a)"), ("customer", "(b)")):
            r = wrk_rec(recs, b, scen, conns)
            w(limit_row(f"p99 of {label} on {b}", pct_ms(r, "p99_us"), "ms", 5))
    loads = [int(x) for x in env.get("OPEN_LOOP_LOADS", "").split()]
    if 80 in loads:
        for b in backends:
            for scen, label in (("favorites", "(a)"), ("customer", "(b)"), ("add_remove", "(c)")):
                r = open_loop_rec(recs, b, scen, 80)
                w(limit_row(f"p99.9 of {label} on {b} at 80 % of its maximum (fixed rate)", open_loop_ms(r, "p999_us"), "ms", 20))
    for b in backends:
        v = rss.get((b, "abc"))
        w(limit_row(f"peak RSS during (a)/(b)/(c) on {b} (VmHWM)", v / MIB if v else None, "MiB", 64))
    for b in backends:
        w(ratio_row(f"(d) on {b} ÷ argon2id hashes/s (all cores)", ok_rps(wrk_rec(recs, b, "sign_in", conns)), hps, 0.9))
    w("")
    w("The read cache (`READ_CACHE_BYTES`, on by default) answers (a) and (b) from memory; the row "
      "\"read cache off\" is (a) measured again on a service started with `READ_CACHE_BYTES=0`, "
      "against the same pgbench ceiling.")
    w("")

    # ---- per backend ----
    for b in backends:
        w(f"## Service on {b}")
        w("")
        if b in seeds:
            s = seeds[b]
            w(f"Seeded in {s['total_s']:.1f} s ({s['customers']} customers, {s['favorites']} favorites each, "
              f"{s['products']} products cached warm). VmHWM after (a)/(b)/(c) and the sweep: "
              f"{rss.get((b, 'abc'), 0) / MIB:.1f} MiB; after sign-in too: {rss.get((b, 'all'), 0) / MIB:.1f} MiB.")
            w("")
        cpu_keys = ("service", "postgres", "generator", "idle") if b == pg else ("service", "generator", "idle")
        w("| scenario | conns | req/s (2xx/3xx) | errors | p50 ms | p99 ms | p99.9 ms | max ms | peak RSS MiB (sampled) "
          f"| CPU % {' / '.join(cpu_keys)} |")
        w("|---|---|---|---|---|---|---|---|---|---|")
        for scen, label in SCENARIOS:
            r = wrk_rec(recs, b, scen, conns)
            if not r or not r.get("wrk"):
                continue
            x = r["wrk"]
            w(f"| {label} | {conns} | {f0(ok_rps(r))} | {errors(r)} | {ms(x['p50_us'])} | {ms(x['p99_us'])} | "
              f"{ms(x['p999_us'])} | {ms(x['max_us'])} | {r['rss_peak_kib'] / MIB:.1f} | {cpu_cell(r, cpu_keys)} |")
        for suffix, label in (("-nocache", "(a) with `READ_CACHE_BYTES=0`"),
                              ("-nocheck", "(a) with `READ_CACHE_BYTES=0 AUTH_CACHE_TTL_SECONDS=0`")):
            r = wrk_rec(recs, b + suffix, "favorites", conns)
            if r and r.get("wrk"):
                x = r["wrk"]
                w(f"| {label} | {conns} | {f0(ok_rps(r))} | {errors(r)} | {ms(x['p50_us'])} | "
                  f"{ms(x['p99_us'])} | {ms(x['p999_us'])} | {ms(x['max_us'])} | {r['rss_peak_kib'] / MIB:.1f} | "
                  f"{cpu_cell(r, cpu_keys)} |")
        w("")
        w("(c) is run by `open-loop` in a closed loop (each of the connections sends its POST, then its DELETE, "
          "then the next pair): it counts both requests and times the pair. "
          "(d) is bounded by argon2id: each sign-in waits in the hash queue, so its latency is mostly queueing. "
          "CPU %: where the machine's cores went during the measured run, as shares of all of them "
          "(`bench/cpu_share.py`; 100 = every core busy; the generator is wrk or open-loop).")
        w("")
        errs = error_statuses(out, b)
        if errs is not None:
            w("Answers >= 400 over the whole run, warm-ups included (the service's `/metrics`): "
              + (", ".join(f"`{m} {r}` {st}: {n}" for (m, r, st), n in errs) if errs else "none") + ".")
            w("")
        if b == pg:
            w("SQL the service sent per HTTP request over the measured run: its exchanges with PostgreSQL "
              "(the service's `fav_db_round_trips_total` read before and after the run ÷ requests; a pipeline "
              "counts once) and the statements (pg_stat_statements calls ÷ requests):")
            w("")
            w("| scenario | round trips per request | statements per request |")
            w("|---|---|---|")
            for target_name, scen, label in [(pg, s, l) for s, l in SCENARIOS[:3]] + [
                    (pg + "-nocache", "favorites", "(a) read cache off"),
                    (pg + "-nocheck", "favorites", "(a) read cache and token cache off")]:
                r = wrk_rec(recs, target_name, scen, conns)
                if not r or not r.get("wrk"):
                    continue
                mix = sql_mix(out, r.get("pgss"))
                n = max(1, r["wrk"]["requests"])
                trips = run_round_trips(r)
                w(f"| {label} | {'n/a' if trips is None else f'{trips / n:.3f}'} | " + ", ".join(f"`{k}` {v / n:.3f}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1])) + " |")
            w("")
            trips = round_trips_per_request(out, pg + "-nocheck")
            if trips is not None:
                w(f"With both caches off, each request sends `check_token` and `list_favorites` pipelined: the "
                  f"service's `fav_db_round_trips_total` ÷ its requests over that run (warm-up included) is **{trips:.3f}** "
                  "round trips per request.")
                w("")

    # ---- tails at a fixed rate ----
    if any(r["kind"] == "open_loop" for r in recs):
        w("## Tails at a fixed rate (open loop)")
        w("")
        w("`open-loop` (tools/open_loop.cpp) sends on a fixed schedule, at a share of the maximum measured above "
          f"with the same {conns} connections, and times every request from its *scheduled* send, so a stall "
          "counts for every request it delayed (no coordinated omission; wrk cannot do this). (c)'s slot is a pair. "
          "For (a) and (b) the maximum is the smaller of wrk's and open-loop's own closed-loop rate: open-loop "
          "spends more CPU per request than wrk on the cores it shares with the service.")
        w("")
        w("| backend | scenario | load | slots/s asked | measured | p50 ms | p99 ms | p99.9 ms | max ms | errors | dropped |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for b in backends:
            for scen, label in SCENARIOS[:3]:
                for pct in loads:
                    r = open_loop_rec(recs, b, scen, pct)
                    if not r:
                        continue
                    x = r["result"]
                    errs = x["status_errors"] + x["connect_errors"] + x["read_errors"] + x["write_errors"]
                    w(f"| {b} | {label} | {pct} % | {x['rate']:,.0f} | {x['measured']:,} | {ms(x['p50_us'])} | "
                      f"{ms(x['p99_us'])} | {ms(x['p999_us'])} | {ms(x['max_us'])} | {errs} | {x['missed']} |")
        w("")

    # ---- ceilings ----
    w("## Ceilings (same run)")
    w("")
    if hash_rec:
        w(f"- **argon2id** (`bench-seed --hash-bench`, `fav::auth::verify_password` = one hash with the service's "
          f"parameters `{hash_rec.get('phc_prefix')}`, {hash_rec['threads']} threads): "
          f"**{hash_rec['hashes_per_second']:.2f} hashes/s** ({hash_rec['hashes']} in {hash_rec['seconds']:.1f} s).")
    if commit:
        w(f"- **SQLite durable commits** (`sqlite-commit-bench`: (c)'s insert + delete of a favorite on the seeded "
          f"database, one connection opened like the service's — WAL, `synchronous=FULL` — one transaction, so one "
          f"fsync, per pair): **{commit['pairs_per_second']:,.1f} pairs/s** = {f0(commit_rps)} requests-equivalent/s "
          f"({commit['pairs']} pairs in {commit['seconds']:.1f} s; per pair p50 {ms(commit['p50_us'])} ms, "
          f"p99 {ms(commit['p99_us'])} ms, max {ms(commit['max_us'])} ms).")
    if nginx:
        w(f"- **nginx** static: (a)'s response body from the {nginx['body_from']} service "
          f"({nginx['body_bytes']} bytes) for the same requests (same Lua script, tokens and paths), "
          f"`worker_processes {env.get('API_THREADS')}`, `access_log off`, `keepalive_requests 1000000`.")
    w("")
    w("| nginx conns | req/s | p50 ms | p99 ms | p99.9 ms | CPU % nginx / wrk / idle |")
    w("|---|---|---|---|---|---|")
    for c in [int(x) for x in env.get("SWEEP", "").split()]:
        r = wrk_rec(recs, "nginx", "favorites", c)
        if r and r.get("wrk"):
            x = r["wrk"]
            w(f"| {c} | {f0(ok_rps(r))} | {ms(x['p50_us'])} | {ms(x['p99_us'])} | {ms(x['p999_us'])} | "
              f"{cpu_cell(r, ('nginx', 'generator', 'idle'))} |")
    w("")
    if any(r["kind"] == "pgbench" for r in recs):
        w("**pgbench** `-M prepared` running the service's own statements (copied at run time from "
          "`src/store/pg_store.cpp` by `bench/pgbench_sql.py` from the templates in `bench/sql/`), with the "
          "token check in the proportion the service itself ran it (token-cache misses measured above). "
          "The ceiling is the best of the client counts tried; (c) counts two requests per transaction.")
        w("")
        w("| script | clients | tps | requests-equivalent/s | failed | token-check ppm | statements per transaction "
          "| CPU % postgres / pgbench / idle |")
        w("|---|---|---|---|---|---|---|---|")
        for script in ("a_favorites", "b_customer", "c_add_remove"):
            for r in pgbench_recs(recs, script):
                mix = sql_mix(out, r.get("pgss"))
                n = max(1, r["transactions"] or 0)
                mix_s = ", ".join(f"`{k}` {v / n:.3f}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1]))
                tps = r["tps"]
                w(f"| {script} | {r['connections']} | {f0(tps)} | "
                  f"{f0(tps * REQUESTS_PER_TX[script]) if tps else 'n/a'} | {r['failed']} | {r['miss_ppm']} | {mix_s} | "
                  f"{cpu_cell(r, ('postgres', 'generator', 'idle'))} |")
        w("")

    # ---- sweep ----
    sweep = [int(x) for x in env.get("SWEEP", "").split()]
    w("## (a) against connections")
    w("")
    w(f"![req/s and p99 of (a) against connections, with the nginx ceiling]({os.path.basename(png)})")
    w("")
    targets = [t for t in backends + ["nginx"] if any(wrk_rec(recs, t, "favorites", c) for c in sweep)]
    w("| conns | " + " | ".join(f"{t} req/s | {t} p99 ms" for t in targets) + " |")
    w("|---|" + "---|---|" * len(targets))
    for c in sweep:
        cells = []
        for t in targets:
            r = wrk_rec(recs, t, "favorites", c)
            cells += [f0(ok_rps(r)), ms(r["wrk"]["p99_us"])] if r and r.get("wrk") else ["n/a", "n/a"]
        w(f"| {c} | " + " | ".join(cells) + " |")
    w("")

    # ---- commands ----
    w("## Commands (as run)")
    w("")
    w("```")
    with open(os.path.join(out, "commands.log")) as f:
        seen = set()
        for line in f:
            if line not in seen:
                seen.add(line)
                w(line.rstrip("\n").replace(os.getcwd() + "/", ""))
    w("```")
    w("")
    w("Raw outputs (wrk, pgbench, pg_stat_statements, logs) are in `bench/out/` (not committed).")
    w("")
    w("What each optimization bought, and what the profile still shows, is in `bench/optimizations.md`.")

    if os.path.dirname(png):
        os.makedirs(os.path.dirname(png), exist_ok=True)
    plot(out, recs, env, png)
    with open(md_path, "w") as f:
        f.write("\n".join(L) + "\n")


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "miss-ppm":
        print(miss_ppm(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 6 and sys.argv[1] == "max-rps":
        recs, _ = load(sys.argv[2])
        v = ok_rps(wrk_rec(recs, sys.argv[3], sys.argv[4], int(sys.argv[5])))
        print(f"{v:.1f}" if v else 0)
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
