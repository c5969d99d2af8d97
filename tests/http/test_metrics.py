"""GET /metrics (CONTRACT §3 "Health and docs", beyond): "Prometheus text format: requests by
route and status, latency histogram, catalog calls by outcome, cache hits by kind, DB pool use".
Each test scrapes before and after its own requests and checks that the series moved by exactly
the right amounts (the catalog warm-up is off, so nothing else moves them)."""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, ServerTestCase, backend, unique_email  # noqa: E402

RETRIES = 2
POOL_SIZE = 2
METRICS_ENV = {
    "PRODUCT_CATALOG_WARMUP": "false",  # no background catalog traffic: counters move only for us
    "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": "0.5",
    "PRODUCT_CATALOG_API_MAX_RETRIES": str(RETRIES),
    "PRODUCT_CATALOG_BACKOFF_BASE_SECONDS": "0.05",
    "PRODUCT_CATALOG_BACKOFF_CAP_SECONDS": "0.2",
    "PRODUCT_CACHE_SOFT_TTL_MINUTES": "5",
    "PRODUCT_CACHE_HARD_TTL_MINUTES": "30",
    "PASSWORD_HASH_WORKERS": "1",  # a burst of sign-ups then has to queue
    "DATABASE_POOL_SIZE": str(POOL_SIZE),
    # The time knob below (age_cached_product) edits products_cache behind the service's back;
    # the read cache learns only of writes made through an instance (its own, or the feed's).
    "READ_CACHE_BYTES": "0",
}
SETTLE_S = 3  # how long a counter may lag behind the response that caused it

# ---------------------------------------------------------------------------------------
# Prometheus text format (0.0.4) parsing

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(rf"^({_NAME})(?:\{{(.*)\}})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def _parse_labels(text: str) -> tuple:
    labels, pos = {}, 0
    while pos < len(text):
        m = _LABEL_RE.match(text, pos)
        if not m:
            raise ValueError(f"bad label set {{{text}}} at {pos}")
        name, value = m.group(1), m.group(2)
        if name in labels:
            raise ValueError(f"label {name} repeated in {{{text}}}")
        labels[name] = value.replace(r"\n", "\n").replace(r"\"", '"').replace("\\\\", "\\")
        pos = m.end()
        if m.group(3) == "" and pos < len(text):
            raise ValueError(f"junk after labels in {{{text}}}")
    return tuple(sorted(labels.items()))


def _value(text: str) -> float:
    return {"+Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}.get(text) or float(text)


class Scrape:
    """One /metrics exposition: samples keyed by (name, sorted label pairs), and declared types."""

    def __init__(self, text: str):
        self.text = text
        self.samples: dict = {}
        self.types: dict = {}
        self.helps: dict = {}
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] == "TYPE":
                    if parts[2] in self.types:
                        raise ValueError(f"line {n}: second TYPE for {parts[2]}")
                    self.types[parts[2]] = parts[3].strip() if len(parts) > 3 else ""
                elif len(parts) >= 3 and parts[1] == "HELP":
                    self.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            m = _SAMPLE_RE.match(line)
            if not m:
                raise ValueError(f"line {n}: not a sample: {line!r}")
            key = (m.group(1), _parse_labels(m.group(2) or ""))
            if key in self.samples:
                raise ValueError(f"line {n}: duplicate series {line!r}")
            self.samples[key] = _value(m.group(3))

    def get(self, name: str, **labels) -> float:
        """The sample's value; 0 for a series not exposed (yet) — a counter that never moved."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def series(self, name: str) -> dict:
        """{labels dict as sorted tuple: value} of every sample named `name`."""
        return {labels: v for (n, labels), v in self.samples.items() if n == name}

    def family_of(self, sample_name: str) -> str:
        for suffix in ("_bucket", "_count", "_sum"):
            base = sample_name[: -len(suffix)]
            if sample_name.endswith(suffix) and self.types.get(base) == "histogram":
                return base
        return sample_name


REQ = "fav_http_requests_total"
DUR = "fav_http_request_duration_seconds"
CATALOG = "fav_catalog_calls_total"
LOOKUPS = "fav_product_cache_lookups_total"
JOINS = "fav_catalog_singleflight_joins_total"
REFRESHES = "fav_product_cache_background_refreshes_total"
GAUGES = ("fav_db_pool_in_use", "fav_db_pool_waiting", "fav_password_hash_queue_depth")
# Values that only grow, read at scrape time: counters named `_total` (Prometheus's conventions),
# so that rate() and increase() handle a restart. The read cache's pair exists only while the
# read cache is on (MetricsReadCacheTest below).
MONOTONIC = ("fav_db_round_trips_total", "fav_change_feed_connects_total", "fav_change_feed_notifications_total")
READ_CACHE_COUNTERS = ("fav_read_cache_hits_total", "fav_read_cache_misses_total")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def assert_counters(test, s: Scrape, names):
    """Each name is one counter sample, and no gauge of its old name (without `_total`) is left."""
    for name in names:
        test.assertEqual(s.types.get(name), "counter", name)
        test.assertEqual(len(s.series(name)), 1, name)
        test.assertNotIn(name[: -len("_total")], s.types, f"{name} also exported under its old gauge name")
    # A gauge is a value that can go down: none may describe a running count.
    for family, kind in s.types.items():
        if kind == "gauge":
            test.assertNotIn("since the start", s.helps.get(family, ""), f"{family} is monotonic: a counter")


def assert_promtool_clean(test, text: str):
    """`promtool check metrics` (Debian's prometheus package) finds nothing to say."""
    if not os.path.exists(PROMTOOL):
        test.fail("promtool not installed (scripts/install-deps.sh test installs prometheus)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    test.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""), "promtool check metrics")


class MetricsTest(ServerTestCase):
    server_env = METRICS_ENV

    @classmethod
    def prepare(cls):
        cls.alice = cls.server.new_customer("Alice")
        cls.bob = cls.server.new_customer("Bob")
        cls._pids = iter(range(7000 + 1000 * (os.getpid() % 50), 10**9))

    def setUp(self):
        self.stub.reset()

    # -- helpers --------------------------------------------------------------------------

    def scrape(self, client=None) -> Scrape:
        r = (client or self.server.client()).req("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return Scrape(r.body.decode("utf-8"))

    def assertMoved(self, before: Scrape, expected: dict, timeout: float = SETTLE_S) -> Scrape:
        """Every (name, labels) in `expected` moved by exactly its delta since `before`. A counter
        may lag its response a little (it is recorded after the write): polls until each delta is
        reached, then checks none overshot. Returns the last scrape."""
        deadline = time.monotonic() + timeout
        while True:
            after = self.scrape()
            deltas = {k: after.get(k[0], **dict(k[1])) - before.get(k[0], **dict(k[1])) for k in expected}
            if all(deltas[k] >= v for k, v in expected.items()) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        for k, want in expected.items():
            self.assertEqual(deltas[k], want, f"{k[0]}{dict(k[1])} moved by {deltas[k]}, expected {want}")
        return after

    def new_product(self) -> int:
        pid = next(self._pids)
        self.stub.product(pid, title=f"Metrics product {pid}", price=10.5)
        return pid

    def add(self, c, pid):
        return self.req("POST", f"/customers/{c.id}/favorites/{pid}", token=c.token)

    def list_favorites(self, c):
        return self.req("GET", f"/customers/{c.id}/favorites", token=c.token)

    def age_cached_product(self, pid: int, minutes: float):
        self.server.age_cached_product(pid, minutes)

    @staticmethod
    def k(name, **labels):
        return (name, tuple(sorted(labels.items())))

    # -- the exposition -------------------------------------------------------------------

    def test_exposition_format(self):
        """Prometheus text format: typed families, counters `_total`, well-formed histograms."""
        self.req("GET", "/health")
        r = self.req("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        ctype = r.headers.get("content-type", "").replace(" ", "").lower()
        self.assertTrue(ctype.startswith("text/plain;version=0.0.4"), r.headers)
        self.assertEqual(r.headers.get("cache-control"), "no-store")
        s = Scrape(r.body.decode("utf-8"))
        for name, _ in s.samples:
            family = s.family_of(name)
            self.assertIn(family, s.types, f"sample {name} has no # TYPE")
            self.assertIn(family, s.helps, f"sample {name} has no # HELP")
            if s.types[family] == "counter":
                self.assertTrue(family.endswith("_total"), family)
            if s.types[family] in ("counter", "histogram", "gauge"):
                self.assertGreaterEqual(s.samples[(name, _)], 0, name)
        for family, kind in {REQ: "counter", DUR: "histogram", CATALOG: "counter", LOOKUPS: "counter",
                             JOINS: "counter", REFRESHES: "counter"}.items():
            self.assertEqual(s.types.get(family), kind, family)
        for g in GAUGES:
            self.assertEqual(s.types.get(g), "gauge", g)
            self.assertEqual(len(s.series(g)), 1, g)
        for outcome in ("ok", "not_found", "retry", "failure"):
            self.assertIn(self.k(CATALOG, outcome=outcome), s.samples)
        for freshness in ("fresh", "stale", "expired", "miss"):
            self.assertIn(self.k(LOOKUPS, freshness=freshness), s.samples)

        # Histograms: cumulative buckets ending in +Inf == _count, one _sum, per label set.
        groups = {}
        for labels, v in s.series(DUR + "_bucket").items():
            d = dict(labels)
            le = d.pop("le")
            groups.setdefault(tuple(sorted(d.items())), []).append((float(le), v))
        self.assertIn((("method", "GET"), ("route", "/health")), groups)
        for labels, buckets in groups.items():
            buckets.sort()
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values), f"buckets not cumulative for {labels}")
            self.assertEqual(buckets[-1][0], float("inf"), labels)
            self.assertEqual(values[-1], s.samples[(DUR + "_count", labels)], labels)
            self.assertIn((DUR + "_sum", labels), s.samples)

    def test_monotonic_values_are_counters(self):
        """Round trips and the change feed's connects and notifications only grow: counters."""
        assert_counters(self, self.scrape(), MONOTONIC)

    def test_promtool_check_metrics(self):
        """Prometheus's own linter accepts the exposition, after traffic on several routes."""
        self.req("GET", "/health")
        self.req("GET", "/no-such-path")
        self.list_favorites(self.alice)
        assert_promtool_clean(self, self.scrape().text)

    def test_scrape_counts_itself_once(self):
        """Each scrape is a request like any other, counted once under route /metrics."""
        c = Client(self.server.port)
        try:
            first = self.scrape(c)
            second = self.scrape(c)
        finally:
            c.close()
        key = dict(method="GET", route="/metrics", status="200")
        self.assertEqual(second.get(REQ, **key) - first.get(REQ, **key), 1)

    # -- requests by route template and status, latency histogram --------------------------

    def test_requests_by_route_template_and_status(self):
        """Requests are counted by method, route *template* and status; the histogram's _count
        moves with them."""
        a, b = self.alice, self.bob
        before = self.scrape()
        for _ in range(3):
            self.assertEqual(self.req("GET", f"/customers/{a.id}", token=a.token).status, 200)
        self.assertEqual(self.req("GET", f"/customers/{b.id}", token=b.token).status, 200)
        self.assertEqual(self.req("GET", f"/customers/{b.id}", token=a.token).status, 403)
        self.assertEqual(self.req("GET", f"/customers/{uuid.uuid4()}", token=a.token).status, 403)
        self.assertEqual(self.req("GET", f"/customers/{a.id}").status, 401)
        self.assertEqual(self.req("PATCH", f"/customers/{a.id}", {"name": "Alice"}, token=a.token).status, 204)
        route = "/customers/{id}"
        after = self.assertMoved(before, {
            self.k(REQ, method="GET", route=route, status="200"): 4,
            self.k(REQ, method="GET", route=route, status="403"): 2,
            self.k(REQ, method="GET", route=route, status="401"): 1,
            self.k(REQ, method="PATCH", route=route, status="204"): 1,
            self.k(DUR + "_count", method="GET", route=route): 7,
            self.k(DUR + "_bucket", method="GET", route=route, le="+Inf"): 7,
            self.k(DUR + "_count", method="PATCH", route=route): 1,
        })
        self.assertGreater(after.get(DUR + "_sum", method="GET", route=route),
                           before.get(DUR + "_sum", method="GET", route=route))
        # Never the concrete ids: the label set stays bounded.
        for (_, labels) in after.samples:
            for _, v in labels:
                self.assertNotIn(a.id, v)
                self.assertNotIn(b.id, v)

    def test_unknown_paths_share_one_label(self):
        """Unknown paths are counted (404) without putting the raw path in a label."""
        marker = uuid.uuid4().hex
        before = self.scrape()
        for i in range(3):
            self.assertEqual(self.req("GET", f"/no-such-{marker}/{i}").status, 404)
        after = self.scrape()
        self.assertNotIn(marker, after.text)

        def total_404(s):
            return sum(v for labels, v in s.series(REQ).items()
                       if dict(labels).get("status") == "404" and dict(labels).get("method") == "GET")
        deadline = time.monotonic() + SETTLE_S
        while total_404(after) - total_404(before) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
            after = self.scrape()
        self.assertEqual(total_404(after) - total_404(before), 3)

    # -- catalog calls, cache lookups, single-flight, background refreshes ------------------

    def test_catalog_calls_and_cache_lookups(self):
        """A first favorite is a cache miss and one catalog call (ok); the next lookups of that
        product are fresh hits with no call; an unknown product is a miss and one not_found."""
        a, b = self.alice, self.bob
        pid = self.new_product()
        before = self.scrape()
        self.assertEqual(self.add(a, pid).status, 201)
        mid = self.assertMoved(before, {
            self.k(CATALOG, outcome="ok"): 1,
            self.k(CATALOG, outcome="not_found"): 0,
            self.k(CATALOG, outcome="retry"): 0,
            self.k(CATALOG, outcome="failure"): 0,
            self.k(LOOKUPS, freshness="miss"): 1,
            self.k(LOOKUPS, freshness="fresh"): 0,
            self.k(REQ, method="POST", route="/customers/{id}/favorites/{product_id}", status="201"): 1,
        })
        self.assertEqual(self.add(b, pid).status, 201)  # cached a moment ago: fresh
        r = self.list_favorites(b)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([i["id"] for i in r.json["data"]], [pid])  # listing: one fresh lookup
        unknown = 990_000 + next(self._pids) % 9_000
        self.assertEqual(self.add(a, unknown).detail, "product_not_found")
        self.assertMoved(mid, {
            self.k(CATALOG, outcome="ok"): 0,
            self.k(CATALOG, outcome="not_found"): 1,
            self.k(LOOKUPS, freshness="fresh"): 2,
            self.k(LOOKUPS, freshness="miss"): 1,
            self.k(LOOKUPS, freshness="stale"): 0,
            self.k(LOOKUPS, freshness="expired"): 0,
        })
        self.assertEqual(self.stub.product_calls(pid), 1)

    def test_catalog_retries_and_failure(self):
        """A catalog that keeps failing: one `retry` per retry, then one `failure`; 503."""
        pid = self.new_product()
        self.stub.faults(fail_count=100, fail_status=500, only_ids=[pid])
        before = self.scrape()
        r = self.add(self.alice, pid)
        self.assertEqual((r.status, r.detail), (503, "catalog_unavailable"), r)
        self.assertMoved(before, {
            self.k(CATALOG, outcome="retry"): RETRIES,
            self.k(CATALOG, outcome="failure"): 1,
            self.k(CATALOG, outcome="ok"): 0,
            self.k(LOOKUPS, freshness="miss"): 1,
            self.k(REQ, method="POST", route="/customers/{id}/favorites/{product_id}", status="503"): 1,
        })
        self.assertEqual(self.stub.product_calls(pid), RETRIES + 1)

    def test_single_flight_joins(self):
        """N concurrent first favorites of one product: one catalog call, N−1 joins."""
        n = 5
        customers = [self.server.new_customer(f"Joiner {i}") for i in range(n)]
        pid = self.new_product()
        self.stub.faults(latency_ms=300, only_ids=[pid])  # under the 0.5 s timeout
        before = self.scrape()
        barrier = threading.Barrier(n)

        def one(c):
            client = Client(self.server.port)
            try:
                barrier.wait(10)
                return client.req("POST", f"/customers/{c.id}/favorites/{pid}", token=c.token).status
            finally:
                client.close()

        with ThreadPoolExecutor(n) as pool:
            statuses = list(pool.map(one, customers))
        self.assertEqual(statuses, [201] * n)
        self.assertMoved(before, {
            self.k(JOINS): n - 1,
            self.k(CATALOG, outcome="ok"): 1,
            self.k(LOOKUPS, freshness="miss"): n,
            self.k(REQ, method="POST", route="/customers/{id}/favorites/{product_id}", status="201"): n,
        })
        self.assertEqual(self.stub.product_calls(pid), 1)

    def test_stale_lookup_refreshes_in_background_and_expired_fetches(self):
        """soft < age ≤ hard: a stale hit and one background refresh (one catalog call);
        age > hard: an expired lookup fetched before answering, no background refresh."""
        c = self.server.new_customer("Stale")
        pid = self.new_product()
        self.assertEqual(self.add(c, pid).status, 201)
        self.assertEqual(self.stub.product_calls(pid), 1)

        self.age_cached_product(pid, 10)  # past the 5-minute soft TTL
        before = self.scrape()
        r = self.list_favorites(c)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.stub.wait_product_calls(pid, 2, SETTLE_S), 2)
        mid = self.assertMoved(before, {
            self.k(LOOKUPS, freshness="stale"): 1,
            self.k(LOOKUPS, freshness="fresh"): 0,
            self.k(REFRESHES): 1,
            self.k(CATALOG, outcome="ok"): 1,
        })

        self.age_cached_product(pid, 60)  # past the 30-minute hard TTL
        r = self.list_favorites(c)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.stub.product_calls(pid), 3)  # fetched before the answer
        self.assertMoved(mid, {
            self.k(LOOKUPS, freshness="expired"): 1,
            self.k(LOOKUPS, freshness="stale"): 0,
            self.k(REFRESHES): 0,
            self.k(CATALOG, outcome="ok"): 1,
        })

    # -- gauges ---------------------------------------------------------------------------

    def test_gauges_idle_at_zero(self):
        s = self.scrape()
        for g in GAUGES:
            self.assertEqual(s.get(g), 0, g)

    def test_password_hash_queue_depth(self):
        """With one hashing worker, a burst of sign-ups queues: the gauge shows it, then drains."""
        n = 6
        seen = []

        def sign_up(i):
            client = Client(self.server.port)
            try:
                body = {"name": f"Burst {i}", "email": unique_email("burst"), "password": "password-1234"}
                return client.req("POST", "/auth/sign-up", body).status
            finally:
                client.close()

        with ThreadPoolExecutor(n) as pool:
            futures = [pool.submit(sign_up, i) for i in range(n)]
            deadline = time.monotonic() + 60
            while not all(f.done() for f in futures) and time.monotonic() < deadline:
                seen.append(self.scrape().get("fav_password_hash_queue_depth"))
                time.sleep(0.01)
            statuses = [f.result(timeout=60) for f in futures]
        self.assertEqual(statuses, [201] * n)
        self.assertGreaterEqual(max(seen), 1, f"queue depth never above 0 during the burst: {seen[:50]}")
        self.assertLessEqual(max(seen), n)
        self.assertEqual(self.scrape().get("fav_password_hash_queue_depth"), 0)

    def test_db_pool_gauges(self):
        """While the database makes writes wait, connections in use reach the pool size and the
        excess requests show as waiting; both go back to 0 afterwards. (SQLite: every write goes
        through its one writer connection, so writes fill that one and the rest wait.)"""
        c = self.alice
        n = POOL_SIZE + 2
        in_use = 1 if backend() == "sqlite" else POOL_SIZE
        with self.database_write_lock():
            results = []

            def patch(i):
                client = Client(self.server.port)
                try:
                    results.append(client.req("PATCH", f"/customers/{c.id}", {"name": f"Alice {i}"},
                                              token=c.token).status)
                finally:
                    client.close()

            def watch(done, timeout=10):
                """Scrapes until done(in_use, waiting) (bounded); the highest pair seen."""
                best = (0, 0)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    s = self.scrape()
                    now = (s.get("fav_db_pool_in_use"), s.get("fav_db_pool_waiting"))
                    best = max(best, now)
                    if done(*now):
                        break
                    time.sleep(0.02)
                return best

            # First the writes that take every connection (SQLite: the writer, whose first batch
            # then waits on the lock), and only once they hold them the ones that must wait: sent
            # all at once, SQLite's group commit could take every write into its first batch.
            threads = [threading.Thread(target=patch, args=(i,)) for i in range(in_use)]
            for t in threads:
                t.start()
            best = watch(lambda used, waiting: used == in_use)
            more = [threading.Thread(target=patch, args=(i,)) for i in range(in_use, n)]
            for t in more:
                t.start()
            threads += more
            best = max(best, watch(lambda used, waiting: used == in_use and waiting >= 1))
        for t in threads:
            t.join(30)
        self.assertEqual(best[0], in_use, f"fav_db_pool_in_use peaked at {best[0]} (expected {in_use})")
        self.assertGreaterEqual(best[1], 1, "fav_db_pool_waiting never moved")
        self.assertEqual(len(results), n)
        deadline = time.monotonic() + SETTLE_S
        while True:
            s = self.scrape()
            if (s.get("fav_db_pool_in_use"), s.get("fav_db_pool_waiting")) == (0, 0) or \
                    time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        self.assertEqual((s.get("fav_db_pool_in_use"), s.get("fav_db_pool_waiting")), (0, 0))

    def database_write_lock(self):
        """A context manager holding the database's write lock from outside the service
        (sqlite3 / psql): the service's writes wait on it, holding their connection."""
        test = self

        class _Lock:
            def __enter__(self):
                if test.server.db_path:
                    cmd = ["sqlite3", "-batch", test.server.db_path]
                    script = ".timeout 10000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n"
                else:
                    cmd = ["psql", test.server.database_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
                    script = "BEGIN;\nLOCK TABLE customers IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n"
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, text=True)
                self.proc.stdin.write(script)
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()  # bounded: the lock is free at this point
                if line.strip() != "locked":
                    self.proc.kill()
                    raise RuntimeError(f"could not lock the database: {line!r}")
                return self

            def __exit__(self, *exc):
                try:
                    self.proc.stdin.write("COMMIT;\n")
                    self.proc.stdin.close()
                    self.proc.wait(10)
                except (BrokenPipeError, subprocess.TimeoutExpired):
                    self.proc.kill()
                    self.proc.wait()
                self.proc.stdout.close()
                return False

        return _Lock()


class MetricsReadCacheTest(ServerTestCase):
    """The read cache's hits and misses, with the read cache on (its default size)."""
    server_env = {"PRODUCT_CATALOG_WARMUP": "false"}

    def test_read_cache_hits_and_misses_are_counters(self):
        c = self.server.new_customer("Reader")
        for _ in range(3):
            r = self.req("GET", f"/customers/{c.id}/favorites", token=c.token)
            self.assertEqual(r.status, 200, r)
        r = self.server.client().req("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        s = Scrape(r.body.decode("utf-8"))
        assert_counters(self, s, MONOTONIC + READ_CACHE_COUNTERS)
        self.assertGreaterEqual(s.get("fav_read_cache_hits_total") + s.get("fav_read_cache_misses_total"), 3)
        assert_promtool_clean(self, s.text)


if __name__ == "__main__":
    unittest.main()
