"""High availability on PostgreSQL (CONTRACT §11, and §9's heartbeat), against the real binary.

- "Each host gets its own connect deadline, `DATABASE_CONNECT_TIMEOUT_SECONDS` (default 2,
  decimals allowed), so a host that accepts connections but never answers costs at most that
  before the next is tried."
- "A connection that finds itself on a read-only server (SQLSTATE 25006) is dropped and its
  request answers 503 `database_unavailable` [...] `/health/ready` is 503 while the pool cannot
  write."
- "While the database cannot be reached [...] requests that need it answer 503
  `database_unavailable` with `Retry-After` within 100 ms of arriving; one connection attempt at
  a time probes for its return (no connect storm)."
- "A commit that PostgreSQL reports as committed locally but possibly not replicated (its
  synchronous-replication wait was cancelled) is never answered 2xx; it answers 503
  `database_unavailable`."
- §9: "A listening connection that stops answering — its socket still open — counts as down
  within 1 second too: liveness is proven by a heartbeat, not by the socket closing."
- "With `DATABASE_POOL_MODE=transaction` [...] the service works through a transaction-pooling
  PgBouncer", the change feed listening on `DATABASE_LISTEN_URL`.

PostgreSQL only (FAV_TEST_BACKEND=postgresql). The outage and synchronous-replication tests stop
or reconfigure the fault cluster of scripts/test.sh (FAV_TEST_PG_FAULT_URL / _DIR); the PgBouncer
test needs the `pgbouncer` binary.
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import _psql, backend, free_port, start_server, start_stub, terminate, wait_until  # noqa: E402
from test_postgres_ops import FaultClusterCase, FreshDatabaseCase, fresh_database  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLUSTER_SCRIPT = os.path.join(ROOT, "scripts", "pg-test-cluster.sh")
PG = backend() == "postgresql" and bool(os.environ.get("FAV_TEST_PG_URL"))


def db_name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def fault_superuser() -> str:
    """The fault cluster's superuser, over its unix socket (scripts/pg-test-cluster.sh keeps it in
    the cluster's folder, with local trust): ALTER SYSTEM needs it."""
    port = urllib.parse.urlsplit(os.environ["FAV_TEST_PG_FAULT_URL"]).port
    return f"host={os.environ['FAV_TEST_PG_FAULT_DIR']} port={port} user=postgres dbname=postgres"


def gauge(server, name: str) -> float:
    r = server.req("GET", "/metrics")
    for line in r.body.decode("utf-8").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"/metrics has no {name}")


class HungHost:
    """A loopback TCP listener that completes the handshake (the kernel's backlog) and never
    answers: a PostgreSQL host hung with its sockets open."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


@unittest.skipUnless(PG, "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql and FAV_TEST_PG_URL)")
class SeveralHostsTest(unittest.TestCase):
    def test_a_hung_host_listed_first_costs_at_most_the_connect_deadline(self):
        url = fresh_database(os.environ["FAV_TEST_PG_URL"])
        hung = HungHost()
        parts = urllib.parse.urlsplit(url)
        user, _, hostport = parts.netloc.rpartition("@")
        # Both hosts, the hung one first, and no target_session_attrs: the service adds read-write.
        two = urllib.parse.urlunsplit((parts.scheme, f"{user}@127.0.0.1:{hung.port},{hostport}", parts.path,
                                       parts.query, ""))
        stub = start_stub()
        server = None
        try:
            started = time.monotonic()
            server = start_server(stub, {"PRODUCT_CATALOG_WARMUP": "false", "DATABASE_CONNECT_TIMEOUT_SECONDS": "0.5"},
                                  db=two)
            listening = time.monotonic() - started
            print(f"\n[figure] start with a hung host listed first (deadline 0.5 s): {listening:.2f} s",
                  file=sys.stderr)
            # The migrations' connect tried the hung host first, for its own deadline only.
            self.assertGreaterEqual(listening, 0.45)
            self.assertLess(listening, 0.5 + 5.0)
            c = server.new_customer()
            started = time.monotonic()
            self.assertEqual(server.req("POST", f"/customers/{c.id}/favorites/3", token=c.token).status, 201)
            print(f"[figure] first favorite write after it: {(time.monotonic() - started) * 1000:.0f} ms",
                  file=sys.stderr)
            self.assertEqual(server.req("GET", "/health/ready").status, 200)
            self.assertEqual(server.stop(), 0)
        finally:
            hung.close()
            if server:
                server.kill9()  # a no-op after a clean stop
                server.cleanup()
            stub.stop()


class ReadOnlyServerTest(FreshDatabaseCase):
    def test_a_read_only_server_answers_503_and_is_not_ready_until_writes_work_again(self):
        admin = os.environ["FAV_TEST_PG_URL"]
        server = self.start({"PRODUCT_CATALOG_WARMUP": "false"})
        name = db_name(self.url)
        c = server.new_customer()
        self.assertEqual(server.req("POST", f"/customers/{c.id}/favorites/3", token=c.token).status, 201)
        # As after a switchover: every new session is read-only, the old ones are gone.
        _psql(admin, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        _psql(admin, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
        r = server.req("POST", f"/customers/{c.id}/favorites/4", token=c.token)
        self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)
        self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
        ready = server.req("GET", "/health/ready")
        self.assertEqual(ready.status, 503, ready)
        r = server.req("DELETE", f"/customers/{c.id}/favorites/3", token=c.token)
        self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)

        # The "new primary": writable sessions again. The next connection finds it.
        _psql(admin, f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
        self.wait_ready(server, 10)
        self.assertEqual(server.req("POST", f"/customers/{c.id}/favorites/4", token=c.token).status, 201)
        self.assertNotIn('"status":500', server.all_output())
        self.assertEqual(server.stop(), 0)


@unittest.skipUnless(PG, "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql and FAV_TEST_PG_URL)")
class FeedHeartbeatTest(unittest.TestCase):
    def test_a_hung_listening_connection_counts_as_down_within_a_second(self):
        admin = os.environ["FAV_TEST_PG_URL"]
        url = fresh_database(admin)
        name = db_name(url)
        stub = start_stub()
        a = start_server(stub, {"PRODUCT_CATALOG_WARMUP": "false"}, db=url)
        b = None
        stopped_pid = None
        try:
            wait_until(lambda: gauge(a, "fav_change_feed_up") == 1, 10, "instance A's change feed")
            pids = _psql(admin, f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}' "
                                f"AND application_name = 'favorites_api_feed'").split()
            self.assertEqual(len(pids), 1, pids)
            b = start_server(stub, {"PRODUCT_CATALOG_WARMUP": "false"}, db=url)
            c = a.new_customer()
            path = f"/customers/{c.id}"
            self.assertEqual(a.req("GET", path, token=c.token).status, 200)  # A caches the token check
            # A's listening backend hangs with its socket open.
            stopped_pid = int(pids[0])
            os.kill(stopped_pid, signal.SIGSTOP)
            self.assertEqual(b.req("POST", "/auth/sign-out", token=c.token).status, 204)
            signed_out = time.monotonic()
            while True:
                r = a.req("GET", path, token=c.token)
                if r.status == 401:
                    break
                self.assertIn(r.status, (200, 503), r)
                if time.monotonic() - signed_out > 5:
                    self.fail("the sign-out never reached instance A")
                time.sleep(0.01)
            took = time.monotonic() - signed_out
            print(f"\n[figure] sign-out through B refused on A with A's feed hung: {took * 1000:.0f} ms",
                  file=sys.stderr)
            self.assertLess(took, 1.25, "contract §9: within 1 second")
            self.assertEqual(r.detail, "invalid_token")
            os.kill(stopped_pid, signal.SIGCONT)
            stopped_pid = None
            wait_until(lambda: gauge(a, "fav_change_feed_up") == 1, 15, "A's change feed back")
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)
        finally:
            if stopped_pid:
                os.kill(stopped_pid, signal.SIGCONT)
            for s in (a, b):
                if s:
                    s.kill9()  # a no-op after a clean stop
                    s.cleanup()
            stub.stop()


class OutageTest(FaultClusterCase):
    def test_a_stopped_database_answers_503_at_once_with_one_connect_at_a_time(self):
        server = self.start({"PRODUCT_CATALOG_WARMUP": "false", "AUTH_CACHE_TTL_SECONDS": "0"})
        c = server.new_customer()
        self.assertEqual(server.req("POST", f"/customers/{c.id}/favorites/3", token=c.token).status, 201)
        self.pause()
        r = server.req("POST", f"/customers/{c.id}/favorites/4", token=c.token)
        self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)
        connects_before = gauge(server, "fav_db_connect_attempts_total")
        self.assertEqual(gauge(server, "fav_db_unreachable"), 1)

        latencies, answers = [], []
        lock = threading.Lock()

        def one(i):
            client = server.client()
            path = f"/customers/{c.id}/favorites/{5 + i % 10}"
            t = time.monotonic()
            resp = client.req("POST", path, token=c.token)
            took = time.monotonic() - t
            with lock:
                latencies.append(took)
                answers.append((resp.status, resp.detail, resp.headers.get("retry-after")))

        started = time.monotonic()
        for _ in range(3):  # 3 waves of 40 concurrent adds
            threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
        elapsed = time.monotonic() - started
        connects = gauge(server, "fav_db_connect_attempts_total") - connects_before
        latencies.sort()
        print(f"\n[figure] stopped database, 120 adds in 3 waves of 40: median "
              f"{statistics.median(latencies) * 1000:.1f} ms, p90 {latencies[107] * 1000:.1f} ms, "
              f"max {latencies[-1] * 1000:.1f} ms; {connects:.0f} connect attempts in {elapsed:.2f} s",
              file=sys.stderr)
        self.assertEqual(len(answers), 120)
        for status, detail, retry in answers:
            self.assertEqual((status, detail), (503, "database_unavailable"))
            self.assertTrue(retry and retry.isdigit())
        self.assertLess(statistics.median(latencies), 0.1, "contract §11: within 100 ms")
        # One probe at a time, at most every 200 ms: no connect storm through the pool slots.
        self.assertLessEqual(connects, elapsed / 0.2 + 2)
        started = time.monotonic()
        self.assertEqual(server.req("GET", "/health/ready").status, 503)
        self.assertLess(time.monotonic() - started, 1.0)

        self.resume()
        self.wait_ready(server)
        self.assertEqual(gauge(server, "fav_db_unreachable"), 0)
        self.assertEqual(server.req("POST", f"/customers/{c.id}/favorites/4", token=c.token).status, 201)
        # Nothing answered 503 was applied later.
        r = server.req("GET", f"/customers/{c.id}/favorites", token=c.token)
        self.assertEqual(sorted(item["id"] for item in r.json["data"]), [3, 4])
        self.assertEqual(server.stop(), 0)

    def test_a_commit_not_confirmed_by_the_synchronous_standby_answers_503(self):
        admin = fault_superuser()
        server = self.start({"PRODUCT_CATALOG_WARMUP": "false", "DATABASE_STATEMENT_TIMEOUT_SECONDS": "1"})
        url = self.url
        waiting = False
        try:
            c = server.new_customer()
            path = f"/customers/{c.id}/favorites/3"
            # The product is cached now, so the add below writes only the favorite.
            self.assertEqual(server.req("POST", path, token=c.token).status, 201)
            self.assertEqual(server.req("DELETE", path, token=c.token).status, 204)
            # Every commit now waits for a standby that does not exist; the statement deadline
            # cancels the wait and PostgreSQL keeps the commit locally, with a warning.
            _psql(admin, "ALTER SYSTEM SET synchronous_standby_names = 'nonexistent'")
            _psql(admin, "SELECT pg_reload_conf()")
            waiting = True
            wait_until(lambda: _psql(admin, "SHOW synchronous_standby_names").strip() == "nonexistent", 10,
                       "the new setting")
            r = server.req("POST", path, token=c.token)
            self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)
            self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
            # "409 ... or 422 ... on the retry mean the earlier attempt took effect": while the
            # standby has still confirmed nothing, a retry cannot say so either (a failover now
            # would lose the local commit), so it answers 503 again, not 409.
            r = server.req("POST", path, token=c.token)
            self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)
            # Likewise a removal's 422 for a favorite that is not there: another product, never
            # added, answers 503 while its answer could not be replicated.
            r = server.req("DELETE", f"/customers/{c.id}/favorites/4", token=c.token)
            self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)
            _psql(admin, "ALTER SYSTEM RESET synchronous_standby_names")
            _psql(admin, "SELECT pg_reload_conf()")
            waiting = False
            wait_until(lambda: _psql(admin, "SHOW synchronous_standby_names").strip() == "", 10, "the reset")
            # The local commit stands: a retry says the earlier attempt took effect.
            rows = _psql(url, f"SELECT count(*) FROM customer_favorite_products WHERE customer_id = '{c.id}'")
            self.assertEqual(rows.strip(), "1")
            r = server.req("POST", path, token=c.token)
            self.assertEqual((r.status, r.detail), (409, "product_already_in_favorites"), r)
            self.assertEqual(server.stop(), 0)
        finally:
            if waiting:
                _psql(admin, "ALTER SYSTEM RESET synchronous_standby_names")
                _psql(admin, "SELECT pg_reload_conf()")


PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)


class PgBouncer:
    """A transaction-pooling PgBouncer on a free loopback port in front of `url`'s server
    (run as `postgres` when we are root: PgBouncer refuses to run as root)."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        self.dir = tempfile.mkdtemp(prefix="fav-pgbouncer-")
        self.port = free_port()
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        with open(os.path.join(self.dir, "users.txt"), "w", encoding="utf-8") as f:
            f.write(f'"{user}" "{password}"\n')
        with open(os.path.join(self.dir, "pgbouncer.ini"), "w", encoding="utf-8") as f:
            f.write(f"""[databases]
* = host={parts.hostname} port={parts.port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = plain
auth_file = {self.dir}/users.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 4
logfile = {self.dir}/pgbouncer.log
pidfile = {self.dir}/pgbouncer.pid
""")
        cmd = [PGBOUNCER, os.path.join(self.dir, "pgbouncer.ini")]
        if os.getuid() == 0:
            shutil.chown(self.dir, "postgres")
            for f in os.listdir(self.dir):
                shutil.chown(os.path.join(self.dir, f), "postgres")
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = urllib.parse.urlunsplit((parts.scheme, f"{parts.username}:{parts.password}@127.0.0.1:{self.port}",
                                            parts.path, "", ""))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("pgbouncer did not start")
                time.sleep(0.05)

    def stop(self):
        terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


@unittest.skipUnless(PG and PGBOUNCER, "needs FAV_TEST_BACKEND=postgresql and pgbouncer")
class TransactionPoolerTest(unittest.TestCase):
    def test_the_service_works_through_a_transaction_pooling_pgbouncer(self):
        direct = fresh_database(os.environ["FAV_TEST_PG_URL"])
        bouncer = PgBouncer(direct)
        stub = start_stub()
        env = {"PRODUCT_CATALOG_WARMUP": "false", "DATABASE_POOL_MODE": "transaction", "DATABASE_LISTEN_URL": direct}
        a = b = None
        try:
            a = start_server(stub, env, db=bouncer.url)
            b = start_server(stub, env, db=bouncer.url)
            for s in (a, b):
                wait_until(lambda: gauge(s, "fav_change_feed_up") == 1, 10, "the change feed")
            c = a.new_customer()
            base = f"/customers/{c.id}/favorites"
            # Many statements over the pooler's 4 server connections: no prepared statement may
            # be missing or already there.
            for pid in (1, 2, 3, 4, 5):
                self.assertEqual(a.req("POST", f"{base}/{pid}", token=c.token).status, 201)
                self.assertEqual(b.req("POST", f"{base}/{pid}", token=c.token).detail, "product_already_in_favorites")
            for s in (a, b):
                r = s.req("GET", base, token=c.token)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(sorted(item["id"] for item in r.json["data"]), [1, 2, 3, 4, 5])
                self.assertEqual(s.req("GET", f"{base}/3", token=c.token).status, 200)
            self.assertEqual(b.req("DELETE", f"{base}/2", token=c.token).status, 204)
            self.assertEqual(a.req("DELETE", f"{base}/2", token=c.token).detail, "product_not_in_favorites")
            self.assertEqual(a.req("PATCH", f"/customers/{c.id}", {"name": "Renamed"}, token=c.token).status, 204)
            self.assertEqual(b.req("GET", f"/customers/{c.id}", token=c.token).json["name"], "Renamed")
            # A sign-out through one instance reaches the other within a second (§9).
            self.assertEqual(b.req("GET", f"/customers/{c.id}", token=c.token).status, 200)
            self.assertEqual(a.req("POST", "/auth/sign-out", token=c.token).status, 204)
            signed_out = time.monotonic()
            wait_until(lambda: b.req("GET", f"/customers/{c.id}", token=c.token).status == 401, 1.0,
                       "the sign-out on the other instance")
            print(f"\n[figure] sign-out through PgBouncer reached the other instance in "
                  f"{(time.monotonic() - signed_out) * 1000:.0f} ms", file=sys.stderr)
            for s in (a, b):
                self.assertNotIn('"status":500', s.all_output())
            self.assertEqual(a.stop(), 0)
            self.assertEqual(b.stop(), 0)
        finally:
            for s in (a, b):
                if s:
                    s.kill9()  # a no-op after a clean stop
                    s.cleanup()
            stub.stop()
            bouncer.stop()


if __name__ == "__main__":
    unittest.main()
