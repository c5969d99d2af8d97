"""Faults: a statement past its deadline, a customer deleted mid-request, and the drain at
shutdown (slow clients, in-flight requests, in-flight database work past the drain deadline).

Runs on both backends. Under the sanitizer build (scripts/test.sh runs this module against it)
every server exit is also checked for a sanitizer report."""
import os
import socket
import sqlite3
import subprocess
import threading
import time
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, ServerTestCase, Stub, _read_response, backend, wait_until  # noqa: E402

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")


class LockHolder:
    """Holds, from outside the service, a lock that every INSERT into `table` waits for."""

    def __init__(self, server: Server, table: str = "customer_favorite_products"):
        self.server = server
        self.table = table
        self._psql = None
        self._lite = None

    def __enter__(self):
        if self.server.db_path:
            self._lite = sqlite3.connect(self.server.db_path, timeout=10, isolation_level=None)
            self._lite.execute("BEGIN IMMEDIATE")  # the one write lock
        else:
            self._psql = subprocess.Popen(
                ["psql", self.server.database_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            self._psql.stdin.write(f"BEGIN;\nLOCK TABLE {self.table} IN SHARE ROW EXCLUSIVE MODE;\n"
                                   "SELECT 'locked';\n")
            self._psql.stdin.flush()
            line = self._psql.stdout.readline().strip()
            if line != "locked":
                self._psql.kill()
                self._psql.wait()
                raise AssertionError(f"psql could not take the lock: {line!r}")
        return self

    def release(self):
        if self._lite is not None:
            self._lite.execute("COMMIT")
            self._lite.close()
            self._lite = None
        if self._psql is not None:
            self._psql.stdin.write("COMMIT;\n\\q\n")
            self._psql.stdin.flush()
            try:
                self._psql.wait(30)
            except subprocess.TimeoutExpired:
                self._psql.kill()
                self._psql.wait()
            self._psql.stdout.close()
            self._psql.stdin.close()
            self._psql = None

    def __exit__(self, *exc):
        self.release()


def assert_no_sanitizer_report(tc: unittest.TestCase, server: Server):
    out = server.all_output()
    for mark in SANITIZER_MARKS:
        tc.assertNotIn(mark, out, "sanitizer report in the server's output:\n" + out[-4000:])


def favorites_of(server: Server, customer_id: str) -> list:
    return server.sql("SELECT product_id FROM customer_favorite_products WHERE customer_id = " +
                      server.uuid_sql(customer_id))


def open_served_connection(port: int) -> socket.socket:
    """A connection the server has accepted and served one request on, kept open: the positive
    signal that its session exists (a connection still in the listen queue would only be reset
    at shutdown)."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    r = _read_response(conn, 10)
    if r is None or r.status != 200:
        conn.close()
        raise AssertionError(f"GET /health on a fresh connection: {r}")
    return conn


def blocked_on_the_lock(server: Server, pid: int) -> bool:
    """The favoriting of `pid` has passed the catalog and its write now waits for the lock
    LockHolder holds: on PostgreSQL a backend waits on a Lock; on SQLite a worker stays busy."""
    if server.stub.product_calls(pid) < 1:
        return False
    if server.db_path:
        return server.metric("fav_db_pool_in_use") >= 1
    return server.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND wait_event_type = 'Lock'") != [["0"]]


class StatementDeadline(ServerTestCase):
    server_env = {"DATABASE_STATEMENT_TIMEOUT_SECONDS": "0.5", "PRODUCT_CATALOG_WARMUP": "false"}

    def test_a_blocked_write_answers_503_and_is_never_applied(self):
        # §5: "Every database statement has a deadline, DATABASE_STATEMENT_TIMEOUT_SECONDS ...;
        # past it the request answers 503 database_unavailable with Retry-After, and the
        # statement is cancelled in the database too: a write that answered 503 is never
        # applied later."
        c = self.server.new_customer()
        with LockHolder(self.server) as lock:
            started = time.monotonic()
            r = self.server.req("POST", f"/customers/{c.id}/favorites/3", token=c.token)
            took = time.monotonic() - started
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.detail, "database_unavailable")
            self.assertIn("Retry-After", r.headers)
            self.assertLess(took, 10, "the deadline (0.5 s) plus the cancel's grace, on a loaded machine")
            # Cancelled in the database too: before the lock goes, the service runs nothing
            # (and no backend of it still waits on the lock), so no late commit can come.
            wait_until(self.server.db_idle, 15, "the abandoned write to leave the database")
            lock.release()
        self.assertEqual(favorites_of(self.server, c.id), [])
        r = self.server.req("POST", f"/customers/{c.id}/favorites/3", token=c.token)
        self.assertEqual(r.status, 201, r)  # the service is fine once the lock is gone
        self.assertEqual(favorites_of(self.server, c.id), [["3"]])


class CustomerDeletedMidRequest(ServerTestCase):
    server_env = {"PRODUCT_CATALOG_WARMUP": "false"}

    def test_favoriting_while_the_customer_is_deleted_answers_401_invalid_token(self):
        # §5: "A request whose customer is deleted while it runs answers as a deleted customer's
        # token does (401 invalid_token), on both backends, never 500 or 409."
        c = self.server.new_customer()
        pid = 5
        self.stub.faults(latency_ms=1500, only_ids=[pid])
        try:
            before = self.stub.product_calls(pid)
            result = {}
            t = threading.Thread(target=lambda: result.setdefault(
                "r", self.server.client().req("POST", f"/customers/{c.id}/favorites/{pid}", token=c.token)))
            t.start()
            # The request is now inside the catalog call, past its token check.
            self.assertGreater(self.stub.wait_product_calls(pid, before + 1, 10), before)
            d = self.server.req("DELETE", f"/customers/{c.id}", token=c.token)
            self.assertEqual(d.status, 204, d)
            t.join(30)
            self.assertFalse(t.is_alive())
        finally:
            self.stub.faults(latency_ms=0, only_ids=[])
        r = result["r"]
        self.assertEqual((r.status, r.detail), (401, "invalid_token"), r)
        self.assertEqual(favorites_of(self.server, c.id), [])


class Drain(unittest.TestCase):
    """Each test starts its own server and stops it with SIGTERM."""

    def setUp(self):
        self.stub = Stub.start()
        self.server = None

    def tearDown(self):
        if self.server:
            self.server.kill9()
            self.server.cleanup()
        self.stub.stop()

    def start(self, **env):
        env.setdefault("PRODUCT_CATALOG_WARMUP", "false")
        self.server = Server(self.stub, env=env)
        self.server.start()
        return self.server

    def test_a_client_that_sent_one_byte_does_not_hold_the_shutdown(self):
        # §7: "SIGTERM/SIGINT: stop accepting, finish in-flight requests ... (bounded by a drain
        # timeout)": a connection that has not delivered a complete request is closed at once;
        # only requests being handled are awaited.
        s = self.start(API_DRAIN_TIMEOUT_SECONDS="20", API_REQUEST_TIMEOUT_SECONDS="60")
        slow = open_served_connection(s.port)
        try:
            slow.sendall(b"G")  # read by the session within the drain's grace for kept-alive connections
            started = time.monotonic()
            rc = s.stop()
            took = time.monotonic() - started
            self.assertEqual(rc, 0, s.output_tail())
            self.assertLess(took, 5, "the one-byte client held the drain")
            self.assertEqual(slow.recv(100), b"")  # closed without an answer
        finally:
            slow.close()
        assert_no_sanitizer_report(self, s)

    def test_a_request_being_handled_is_finished_while_a_slow_client_is_dropped(self):
        s = self.start(API_DRAIN_TIMEOUT_SECONDS="20")
        c = s.new_customer()
        self.stub.faults(latency_ms=1000, only_ids=[7])
        before = self.stub.product_calls(7)
        result = {}
        t = threading.Thread(target=lambda: result.setdefault(
            "r", s.client().req("POST", f"/customers/{c.id}/favorites/7", token=c.token)))
        t.start()
        self.assertGreater(self.stub.wait_product_calls(7, before + 1, 10), before)
        slow = open_served_connection(s.port)
        slow.sendall(b"GET /health HTTP/1.1\r\nHo")
        started = time.monotonic()
        s.proc.send_signal(15)
        t.join(30)
        rc = s.wait_exit(30)
        took = time.monotonic() - started
        slow.close()
        self.assertEqual(rc, 0, s.output_tail())
        self.assertEqual(result["r"].status, 201, result["r"])
        self.assertLess(took, 10)
        assert_no_sanitizer_report(self, s)

    def test_database_work_in_flight_past_the_drain_deadline_is_cancelled_cleanly(self):
        # The drain deadline passes while a request waits for the database: the process still
        # exits 0, with no sanitizer report (the ASan build caught a use-after-free here), and
        # the abandoned write is not applied later.
        s = self.start(API_DRAIN_TIMEOUT_SECONDS="0.5", DATABASE_STATEMENT_TIMEOUT_SECONDS="30")
        c = s.new_customer()
        with LockHolder(s) as lock:
            result = {}

            def post():
                try:
                    result["r"] = s.client().req("POST", f"/customers/{c.id}/favorites/9", token=c.token)
                except OSError as e:  # the connection is closed without an answer
                    result["error"] = e

            t = threading.Thread(target=post)
            t.start()
            wait_until(lambda: blocked_on_the_lock(s, 9), 15, "the request to block on the lock")
            started = time.monotonic()
            s.proc.send_signal(15)
            rc = s.wait_exit(30)
            took = time.monotonic() - started
            t.join(30)
            self.assertEqual(rc, 0, s.output_tail())
            self.assertLess(took, 15)
            # The process is gone; on PostgreSQL its statement must be gone too before the lock
            # goes, or it could still commit.
            wait_until(s.db_idle, 15, "the abandoned write to leave the database")
            lock.release()
        self.assertEqual(favorites_of(s, c.id), [])
        assert_no_sanitizer_report(self, s)


if __name__ == "__main__":
    unittest.main()
