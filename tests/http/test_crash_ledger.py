"""Crash safety, measured with a ledger of acknowledged writes.

§5: "A write that answered 2xx is durable: after a crash or `kill -9` and restart it is there.
A write that failed left nothing half-done."

Writers on several connections favorite products and record every 2xx; the service is killed
with SIGKILL mid-load and restarted on the same database; every acknowledged write must be
there. On PostgreSQL a second run restarts the database server itself mid-load (on the fault
cluster that scripts/test.sh starts, FAV_TEST_PG_FAULT_DIR): the service must recover by itself
and lose nothing acknowledged. Writes whose answer never came, or that failed while the
database went away (the connection may have died mid-commit), are "in doubt": they may or may
not be there, and are counted in the output."""
import http.client
import os
import subprocess
import threading
import time
import sys
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import REPO_ROOT, Client, Server, Stub, _psql, backend, wait_until  # noqa: E402

WRITERS = 6
PRODUCTS = list(range(1, 21))  # the stub's catalog


class Ledger:
    """Per (customer, product): the state its last acknowledged write left (True: a favorite),
    and whether a later write is in doubt (no answer, or a 5xx while the database went away)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.state = {}        # key -> bool, from the last acknowledged write
        self.in_doubt = set()  # keys whose latest write has no trustworthy answer
        self.acks = 0
        self.refused = 0       # 503 answers
        self.failed = 0        # answers in doubt (none, or a 5xx)

    def record(self, key, want_present, status):
        with self.lock:
            if status in (201, 409, 204, 422):  # 409: already there; 422: already absent
                self.state[key] = want_present
                self.in_doubt.discard(key)
                self.acks += 1
            elif status is None or status >= 500:
                self.in_doubt.add(key)
                self.failed += 1
                if status == 503:
                    self.refused += 1

    def settled(self):
        """Keys with a known final state: acknowledged, nothing in doubt after."""
        with self.lock:
            return {k: v for k, v in self.state.items() if k not in self.in_doubt}


def writer(server_port_fn, customer, ledger: Ledger, stop: threading.Event, deadline: float):
    """Favorites and unfavorites this customer's products in turn until `stop` or the deadline;
    every answer goes to the ledger. Reconnects after a failure (the service may be down)."""
    client = None
    i = 0
    while not stop.is_set() and time.monotonic() < deadline:
        pid = PRODUCTS[i % len(PRODUCTS)]
        i += 1
        key = (customer.id, pid)
        want = not ledger.state.get(key, False)
        path = f"/customers/{customer.id}/favorites/{pid}"
        try:
            if client is None:
                client = Client(server_port_fn(), timeout=10)
            r = client.req("POST" if want else "DELETE", path, token=customer.token)
            ledger.record(key, want, r.status)
            if r.status == 503:
                time.sleep(0.05)
        except (OSError, http.client.HTTPException):
            ledger.record(key, want, None)
            if client is not None:
                client.close()
            client = None
            time.sleep(0.05)
    if client is not None:
        client.close()


def present(server: Server) -> set:
    query = "SELECT customer_id, product_id FROM customer_favorite_products"
    if server.db_path or server._pg_db:
        rows = server.sql(query)
    else:  # a database the test made itself (the fault cluster)
        rows = [line.split("|") for line in _psql(server.database_url, query).splitlines() if line]
    return {(r[0], int(r[1])) for r in rows}


class CrashLedger(unittest.TestCase):
    def setUp(self):
        self.stub = Stub.start()
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.kill9()
            s.cleanup()
        self.stub.stop()

    def start(self, **kw):
        s = Server(self.stub, env={"PRODUCT_CATALOG_WARMUP": "false", "API_THREADS": "2"}, **kw)
        self.servers.append(s)
        s.start()
        return s

    def run_load(self, s, customers, ledger, fault, seconds=30):
        stop = threading.Event()
        deadline = time.monotonic() + seconds
        threads = [threading.Thread(target=writer, args=(lambda: s.port, c, ledger, stop, deadline))
                   for c in customers]
        for t in threads:
            t.start()
        fault(stop)
        for t in threads:
            t.join(seconds + 30)
        stop.set()

    def check(self, s, ledger, label):
        there = present(s)
        settled = ledger.settled()
        lost = [k for k, v in settled.items() if v and k not in there]
        revived = [k for k, v in settled.items() if not v and k in there]
        doubt_there = len(ledger.in_doubt & there)
        print(f"\n[{label} on {s.backend}] acknowledged writes={ledger.acks} keys checked={len(settled)} "
              f"lost={len(lost)} undone deletes={len(revived)} in_doubt={len(ledger.in_doubt)} "
              f"(of which present={doubt_there}) 503 answers={ledger.refused}", flush=True)
        self.assertEqual(lost, [], f"acknowledged favorites lost after {label}")
        self.assertEqual(revived, [], f"acknowledged removals undone after {label}")
        self.assertGreater(len(settled), 0)

    def test_kill9_mid_load_loses_no_acknowledged_write(self):
        s = self.start()
        customers = [s.new_customer(f"Writer {i}") for i in range(WRITERS)]
        ledger = Ledger()

        def kill_mid_load(stop):
            # Let some writes land, then SIGKILL while the writers are still going.
            deadline = time.monotonic() + 20
            while ledger.acks < 60 and time.monotonic() < deadline:
                time.sleep(0.01)
            s.kill9()
            stop.set()

        self.run_load(s, customers, ledger, kill_mid_load, seconds=25)
        s.start()  # same working directory and database
        self.check(s, ledger, "kill -9")
        self.assertEqual(s.stop(), 0, s.output_tail())

    @unittest.skipUnless(backend() == "postgresql" and os.environ.get("FAV_TEST_PG_FAULT_DIR"),
                         "needs the PostgreSQL fault cluster (FAV_TEST_PG_FAULT_DIR)")
    def test_postgresql_restart_mid_load_recovers_and_loses_nothing(self):
        fault_dir = os.environ["FAV_TEST_PG_FAULT_DIR"]
        admin = os.environ["FAV_TEST_PG_FAULT_URL"]
        db = f"fav_ledger_{uuid.uuid4().hex[:12]}"
        _psql(admin, f'CREATE DATABASE "{db}"')
        parts = urllib.parse.urlsplit(admin)
        url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))
        script = os.path.join(REPO_ROOT, "scripts", "pg-test-cluster.sh")
        try:
            s = self.start(database=url)
            customers = [s.new_customer(f"Writer {i}") for i in range(WRITERS)]
            ledger = Ledger()
            recovered = {}

            def restart_database(stop):
                try:
                    wait_until(lambda: ledger.acks >= 60, 20, "60 acknowledged writes before the restart")
                    failed_before = ledger.failed
                    subprocess.run([script, "pause", fault_dir, "immediate"], check=True, timeout=60)
                    try:
                        # An outage the writers run into: a writer's worth of failed answers each.
                        wait_until(lambda: ledger.failed >= failed_before + WRITERS, 30,
                                   "the writers to run into the outage")
                    finally:
                        subprocess.run([script, "resume", fault_dir], check=True, timeout=60)
                    back = time.monotonic()
                    before = ledger.acks
                    while ledger.acks == before and time.monotonic() < back + 30:
                        time.sleep(0.01)
                    if ledger.acks > before:
                        recovered["seconds"] = time.monotonic() - back
                        # A little more load on the recovered service: 60 more acknowledged writes.
                        wait_until(lambda: ledger.acks >= before + 60, 30, "60 writes on the recovered service")
                finally:
                    stop.set()

            self.run_load(s, customers, ledger, restart_database, seconds=90)
            self.assertIsNotNone(recovered.get("seconds"),
                                 f"no write succeeded after the database came back: acknowledged="
                                 f"{ledger.acks} in_doubt={len(ledger.in_doubt)} 503s={ledger.refused}\n" +
                                 s.output_tail(25))
            print(f"\n[postgresql restart] first acknowledged write {recovered['seconds']:.2f} s after "
                  "the database came back", flush=True)
            self.check(s, ledger, "PostgreSQL restart")
            self.assertEqual(s.stop(), 0, s.output_tail())
        finally:
            subprocess.run([script, "resume", fault_dir], timeout=60)
            try:
                _psql(admin, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            except (RuntimeError, subprocess.TimeoutExpired):
                pass


if __name__ == "__main__":
    unittest.main()
