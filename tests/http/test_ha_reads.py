"""PostgreSQL with several instances and standbys: what a write answers, and reads through a
failover (CONTRACT §9 last line, §11 "Reads through a failover").

- "A write's answer never comes from a cache: 409 `product_already_in_favorites` and 422
  `product_not_in_favorites` reflect the database at the time of the write, so an add through one
  instance right after a remove through another succeeds." Two instances on one database, each
  with its read cache on: 200 rounds of read (cached) through one, remove through the other, add
  through the first at once — every add 201.
- "`DATABASE_READ_URL` (optional; standbys, multi-host allowed) serves `GET /customers/{id}`,
  `GET /customers/{id}/favorites`, `GET /customers/{id}/favorites/{product_id}` and the token
  checks they need while the primary cannot be reached, so those reads keep answering 200 through
  a failover." A throwaway primary (scripts/pg-test-cluster.sh) and a real streaming standby of it
  (pg_basebackup -R, on its own loopback port); the primary is stopped (immediate) and the reads
  are answered by the standby, while an instance without DATABASE_READ_URL answers 503.

- One invalidation path: an instance skips the NOTIFY echo of its own write (already published
  in-process when the write returned), so the product row it just wrote stays in its read cache,
  while another instance hears the write.

Runs when FAV_TEST_BACKEND=postgresql (the first test needs FAV_TEST_PG_URL; the second its own
clusters, made with the PostgreSQL binaries scripts/pg-test-cluster.sh finds).
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, Stub, _psql, backend  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_SCRIPT = os.path.join(ROOT, "scripts", "pg-test-cluster.sh")
ROUNDS = 200


def wait_feed(server: Server, state: str, timeout: float = 15.0):
    """Waits until /health/ready reports the change feed `state` ("ok" or "down")."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = server.req("GET", "/health/ready")
        if isinstance(last.json, dict) and last.json.get("checks", {}).get("change_feed") == state:
            return
        time.sleep(0.02)
    raise AssertionError(f"change feed not {state} within {timeout}s: {last}")


def two_instances(test: unittest.TestCase, env: dict):
    """A catalog stub and two instances on one database, both feeds live; stopped (exit code 0
    checked) and removed when `test` ends."""
    stub = Stub.start()
    test.addCleanup(stub.stop)
    a = Server(stub, env=env)
    test.addCleanup(a.cleanup)
    a.start()
    test.addCleanup(lambda: test.assertEqual(a.stop(), 0, a.output_tail()))
    b = Server(stub, env=env, database=a.database_url)
    test.addCleanup(lambda: shutil.rmtree(b.workdir, ignore_errors=True))
    b.start()
    test.addCleanup(lambda: test.assertEqual(b.stop(), 0, b.output_tail()))
    for s in (a, b):
        wait_feed(s, "ok")
    return stub, a, b


@unittest.skipUnless(backend() == "postgresql", "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql)")
class WriteAnswersAcrossInstancesTest(unittest.TestCase):
    def test_an_add_right_after_a_remove_through_another_instance_is_201(self):
        env = {"PRODUCT_CATALOG_WARMUP": "false", "LOG_LEVEL": "warning"}
        stub, a, b = two_instances(self, env)
        c = a.new_customer("Two instances")
        item = f"/customers/{c.id}/favorites/3"
        r = a.req("POST", item, token=c.token)
        self.assertEqual(r.status, 201, r)
        for i in range(ROUNDS):
            reader, other = (a, b) if i % 2 == 0 else (b, a)
            # The reader's read cache holds the favorite...
            r = reader.req("GET", item, token=c.token)
            self.assertEqual(r.status, 200, r)
            # ...the other instance removes it, and the reader adds it again at once, before
            # the other's notification can have reached it.
            r = other.req("DELETE", item, token=c.token)
            self.assertEqual(r.status, 204, r)
            r = reader.req("POST", item, token=c.token)
            self.assertEqual(r.status, 201, f"round {i} of {ROUNDS}: {r} (and the add was not made)")
        rows = a.sql(f"SELECT count(*) FROM customer_favorite_products WHERE customer_id = '{c.id}'::uuid")
        self.assertEqual(rows, [["1"]])
        # And the other way round for the remove: added through one, removed through the other.
        for i in range(20):
            first, second = (a, b) if i % 2 == 0 else (b, a)
            self.assertEqual(second.req("GET", item, token=c.token).status, 200)
            self.assertEqual(second.req("DELETE", item, token=c.token).status, 204)
            self.assertEqual(first.req("POST", item, token=c.token).status, 201)


def metric(server: Server, name: str) -> float:
    """An unlabelled series of `server`'s /metrics (0 when absent)."""
    r = server.req("GET", "/metrics")
    for line in r.body.decode("utf-8").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def wait_metric(server: Server, name: str, at_least: float, timeout: float = 10.0) -> float:
    """Waits (bounded) until `name` reaches `at_least`; its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = metric(server, name)
        if v >= at_least or time.monotonic() > deadline:
            return v
        time.sleep(0.02)


@unittest.skipUnless(backend() == "postgresql", "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql)")
class OwnEchoesTest(unittest.TestCase):
    """CONTRACT §9 with one invalidation path: an instance answers its own write's effect at once
    (it publishes the write in-process when it returns), so the NOTIFY echo of that write, which
    names the instance as its sender, is skipped; another instance still hears it. Here every list
    read refreshes the product (both product TTLs 0: always expired, so fetched first and written
    to products_cache), and the next read is still answered from memory: the echo of the product
    row this instance just wrote did not evict it."""

    def test_an_instance_skips_its_own_echo_and_keeps_the_row_it_wrote(self):
        env = {"PRODUCT_CATALOG_WARMUP": "false", "LOG_LEVEL": "warning",
               "PRODUCT_CACHE_SOFT_TTL_MINUTES": "0", "PRODUCT_CACHE_HARD_TTL_MINUTES": "0"}
        stub, a, b = two_instances(self, env)
        c = a.new_customer("Echoes")
        listing = f"/customers/{c.id}/favorites"
        echoes = metric(a, "fav_change_feed_echoes_total")
        heard = metric(b, "fav_change_feed_notifications_total")
        # The product row written (p:3) and the favorite (f:<id>): two notifications.
        self.assertEqual(a.req("POST", f"{listing}/3", token=c.token).status, 201)
        self.assertGreaterEqual(wait_metric(a, "fav_change_feed_echoes_total", echoes + 2), echoes + 2)
        # A read that refetches the expired product and writes its row (p:3 once more).
        r = a.req("GET", listing, token=c.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([i["id"] for i in r.json["data"]], [3])
        self.assertGreaterEqual(wait_metric(a, "fav_change_feed_echoes_total", echoes + 3), echoes + 3,
                                "the echo of the read's product write never came")
        hits, misses = metric(a, "fav_read_cache_hits_total"), metric(a, "fav_read_cache_misses_total")
        r = a.req("GET", listing, token=c.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([i["id"] for i in r.json["data"]], [3])
        self.assertEqual(metric(a, "fav_read_cache_misses_total") - misses, 0,
                         "the page was read from the database: its own echo evicted the product row")
        self.assertEqual(metric(a, "fav_read_cache_hits_total") - hits, 1)
        # Nothing came from another instance to `a`; `b` heard each of `a`'s writes.
        self.assertEqual(metric(a, "fav_change_feed_notifications_total"), 0)
        self.assertGreaterEqual(wait_metric(b, "fav_change_feed_notifications_total", heard + 3), heard + 3)


def _stored_answer_counts(server: Server):
    """(read-cache hits, fresh product lookups): a page answered from its stored bytes moves the
    first and not the second (it is not rendered)."""
    return (metric(server, "fav_read_cache_hits_total"),
            metric(server, 'fav_product_cache_lookups_total{freshness="fresh"}'))


@unittest.skipUnless(backend() == "postgresql", "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql)")
class StoredPagesAcrossInstancesTest(unittest.TestCase):
    def test_a_favoriting_through_another_instance_changes_the_stored_page(self):
        """§9: "A write acknowledged by one instance is seen by reads on any instance within 1
        second"; §10: "Any change to what the body shows changes the tag." A favorites page that
        instance A answers from its stored bytes (README, "Rendered pages") changes, body and tag,
        once a favoriting through instance B has reached A by NOTIFY."""
        env = {"PRODUCT_CATALOG_WARMUP": "false", "LOG_LEVEL": "warning"}
        stub, a, b = two_instances(self, env)
        c = a.new_customer("Stored pages")
        lst = f"/customers/{c.id}/favorites"
        self.assertEqual(a.req("POST", f"{lst}/2", token=c.token).status, 201)
        stored = None
        for _ in range(50):  # until A answers from stored bytes (its own NOTIFY may forget a first copy)
            hits, lookups = _stored_answer_counts(a)
            r = a.req("GET", lst, token=c.token)
            self.assertEqual(r.status, 200, r)
            now_hits, now_lookups = _stored_answer_counts(a)
            if now_hits > hits and now_lookups == lookups:
                stored = r
                break
            time.sleep(0.05)
        self.assertIsNotNone(stored, "A never answered the page from its stored bytes")
        tag = stored.headers.get("etag")
        self.assertEqual(a.req("GET", lst, token=c.token, headers={"If-None-Match": tag}).status, 304)

        self.assertEqual(b.req("POST", f"{lst}/5", token=c.token).status, 201)
        deadline = time.monotonic() + 1.0 + 2.0  # the contract's 1 s, and slack for a loaded machine
        while True:
            r = a.req("GET", lst, token=c.token, headers={"If-None-Match": tag})
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(r.status, 200, "A kept answering 304 for the page from before B's favoriting")
        self.assertNotEqual(r.headers.get("etag"), tag)
        self.assertEqual([i["id"] for i in r.json["data"]], [5, 2])
        self.assertEqual(b.req("GET", lst, token=c.token).json["data"], r.json["data"])


def _pg_bin() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in p.split("/")[4].split(".")])
    return os.environ.get("PG_BIN") or (found[-1] if found else "")


def _as_owner(args, cwd):
    """Runs a PostgreSQL tool as the clusters' owner (`postgres` when we are root, as
    pg-test-cluster.sh does)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    r = subprocess.run(prefix + args, cwd=cwd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def _with_port(url: str, port: int) -> str:
    parts = urllib.parse.urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit((parts.scheme, f"{userinfo}@127.0.0.1:{port}", parts.path, parts.query,
                                    parts.fragment))


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(backend() == "postgresql", "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql)")
class ReadsThroughAFailoverTest(unittest.TestCase):
    """A primary and a real streaming standby of it, both private to this test."""

    @classmethod
    def setUpClass(cls):
        if not _pg_bin():
            raise unittest.SkipTest("no PostgreSQL binaries (set PG_BIN)")
        cls.dir = tempfile.mkdtemp(prefix="fav-ha-", dir="/tmp")
        cls.standby_dir = os.path.join(cls.dir, "standby")
        cls.standby_started = False
        try:
            cls.primary_url = subprocess.run([CLUSTER_SCRIPT, "start", cls.dir], capture_output=True, text=True,
                                             check=True, timeout=180).stdout.strip()
            port = urllib.parse.urlsplit(cls.primary_url).port
            pg = _pg_bin()
            # A base backup through the primary's unix socket (trusted for the owner), written
            # with -R: standby.signal and primary_conninfo, so it starts streaming from it.
            _as_owner([f"{pg}/pg_basebackup", "-h", cls.dir, "-p", str(port), "-U", "postgres", "-D",
                       cls.standby_dir, "-R", "-X", "stream", "-c", "fast"], cls.dir)
            standby_port = _free_port()
            with open(os.path.join(cls.standby_dir, "postgresql.conf"), "a", encoding="utf-8") as conf:
                conf.write(f"port = {standby_port}\nunix_socket_directories = '{cls.standby_dir}'\nhot_standby = on\n")
            _as_owner([f"{pg}/pg_ctl", "-D", cls.standby_dir, "-l", os.path.join(cls.dir, "standby.log"), "-w", "-t",
                       "60", "start"], cls.dir)
            cls.standby_started = True
            cls.standby_url = _with_port(cls.primary_url, standby_port)
            cls.stub = Stub.start()
        except BaseException:
            cls._stop_clusters()
            raise

    @classmethod
    def _stop_clusters(cls):
        if cls.standby_started:
            try:
                _as_owner([f"{_pg_bin()}/pg_ctl", "-D", cls.standby_dir, "-m", "immediate", "-w", "stop"], cls.dir)
            except RuntimeError:
                pass
        subprocess.run([CLUSTER_SCRIPT, "stop", cls.dir], capture_output=True, timeout=120)
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls.stub.stop()
        cls._stop_clusters()

    def wait_replayed(self, timeout: float = 30.0):
        """Waits until the standby has replayed everything the primary wrote so far."""
        target = _psql(self.primary_url, "SELECT pg_current_wal_lsn()").strip()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = _psql(self.standby_url, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn").strip()
            if done == "t":
                return
            time.sleep(0.05)
        self.fail(f"the standby did not replay {target} within {timeout}s")

    def test_reads_are_answered_by_the_standby_while_the_primary_is_down(self):
        env = {"PRODUCT_CATALOG_WARMUP": "false", "LOG_LEVEL": "warning"}
        # Started pointed at the standby too: the read store is never migrated.
        with_reads = Server(self.stub, env={**env, "DATABASE_READ_URL": self.standby_url},
                            database=self.primary_url)
        without = Server(self.stub, env=env, database=self.primary_url)
        servers = [with_reads, without]
        primary_down = False
        try:
            with_reads.start()
            without.start()
            for s in servers:
                wait_feed(s, "ok")
            c = with_reads.new_customer("Failover Reader")
            for pid in (1, 2):
                self.assertEqual(with_reads.req("POST", f"/customers/{c.id}/favorites/{pid}", token=c.token).status,
                                 201)
            revoked = with_reads.sign_in(c.email, c.password)
            self.assertEqual(with_reads.req("POST", "/auth/sign-out", token=revoked).status, 204)
            me = f"/customers/{c.id}"
            before = {p: with_reads.req("GET", p, token=c.token) for p in
                      (me, me + "/favorites", me + "/favorites/1")}
            for p, r in before.items():
                self.assertEqual(r.status, 200, (p, r))
            self.wait_replayed()

            subprocess.run([CLUSTER_SCRIPT, "pause", self.dir, "immediate"], check=True, capture_output=True,
                           timeout=120)
            primary_down = True
            # Caches are bypassed from here on (the feed is down): every answer below is read.
            for s in servers:
                wait_feed(s, "down")

            # "...keep answering 200 through a failover": the same bodies, from the standby.
            took = []
            for _ in range(5):
                for p, r in before.items():
                    started = time.monotonic()
                    got = with_reads.req("GET", p, token=c.token)
                    took.append(time.monotonic() - started)
                    self.assertEqual(got.status, 200, (p, got))
                    self.assertEqual(got.json, r.json, p)
            print(f"[ha] {len(took)} GETs through the standby with the primary stopped: "
                  f"median {sorted(took)[len(took) // 2] * 1000:.1f} ms, max {max(took) * 1000:.1f} ms", flush=True)
            self.assertEqual([i["id"] for i in with_reads.req("GET", me + "/favorites", token=c.token).json["data"]],
                             [2, 1])
            r = with_reads.req("GET", me + "/favorites/3", token=c.token)
            self.assertEqual((r.status, r.detail), (404, "product_not_in_favorites"), r)
            # The token checks are the standby's too: a revocation replicated before the outage holds.
            for p in before:
                r = with_reads.req("GET", p, token=revoked)
                self.assertEqual((r.status, r.detail), (401, "invalid_token"), (p, r))
            # Writes and everything else still need the primary.
            r = with_reads.req("POST", me + "/favorites/3", token=c.token)
            self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)
            self.assertIn("retry-after", r.headers)
            self.assertEqual(with_reads.req("GET", "/health/ready").status, 503)
            # Without DATABASE_READ_URL the same read answers 503: the standby made the difference.
            r = without.req("GET", me + "/favorites", token=c.token)
            self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)

            subprocess.run([CLUSTER_SCRIPT, "resume", self.dir], check=True, capture_output=True, timeout=120)
            primary_down = False
            deadline = time.monotonic() + 30
            while True:
                r = with_reads.req("POST", me + "/favorites/3", token=c.token)
                if r.status == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertEqual(r.status, 201, r)
        finally:
            if primary_down:
                subprocess.run([CLUSTER_SCRIPT, "resume", self.dir], capture_output=True, timeout=120)
            for s in servers:
                if s.proc is not None:
                    self.assertEqual(s.stop(), 0, s.output_tail())
                shutil.rmtree(s.workdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
