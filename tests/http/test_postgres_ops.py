"""PostgreSQL as the production store, end to end against the real binary.

- Compatibility: a database created by the reference service's own DDL (CONTRACT §5), holding a
  customer whose password hash the reference wrote and a favorite, is served as is: sign-in
  works, the favorite lists, a token in the reference's format is accepted.
- Failures: "PostgreSQL stopped → requests that need it answer 503 `database_unavailable`
  quickly (no hang past a bounded time), `/health/ready` says so, and when it comes back the
  pool reconnects by itself, with no restart of the service."

Runs when FAV_TEST_BACKEND=postgresql; the fault test also needs the dedicated cluster that
scripts/test.sh starts (FAV_TEST_PG_FAULT_URL / FAV_TEST_PG_FAULT_DIR), so that stopping it
disturbs no other suite.
"""
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import API_KEY, _pg_url_with_db, _psql, backend, start_server, start_stub, wait_until  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS = json.load(open(os.path.join(ROOT, "tests", "compat-vectors.json"), encoding="utf-8"))
CLUSTER_SCRIPT = os.path.join(ROOT, "scripts", "pg-test-cluster.sh")

# The reference's schema (CONTRACT §5), as its own DDL creates it.
REFERENCE_DDL = """
CREATE TABLE customers (id UUID PRIMARY KEY, name VARCHAR(255) NOT NULL,
  email VARCHAR(255) NOT NULL UNIQUE, password_hash VARCHAR(255) NOT NULL,
  created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE products_cache (id BIGINT PRIMARY KEY, title VARCHAR(255) NOT NULL, image_url TEXT NOT NULL,
  price DECIMAL(10,2) NOT NULL, review_rate DECIMAL(10,2), review_count INT,
  fetched_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE customer_favorite_products (
  customer_id UUID NOT NULL REFERENCES customers(id) ON DELETE CASCADE, product_id BIGINT NOT NULL,
  favorited_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  CONSTRAINT customer_favorite_products_pkey PRIMARY KEY (customer_id, product_id));
"""


def fresh_database(admin_url: str) -> str:
    name = f"fav_ops_{uuid.uuid4().hex[:12]}"
    _psql(admin_url, f'CREATE DATABASE "{name}"')
    return _pg_url_with_db(admin_url, name)


FAULT_CLUSTER = backend() == "postgresql" and bool(os.environ.get("FAV_TEST_PG_FAULT_URL")) and \
    bool(os.environ.get("FAV_TEST_PG_FAULT_DIR"))


@unittest.skipUnless(backend() == "postgresql" and os.environ.get("FAV_TEST_PG_URL"),
                     "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql and FAV_TEST_PG_URL)")
class FreshDatabaseCase(unittest.TestCase):
    """A stub and a service on a fresh database of the cluster `admin_env` names; both are
    stopped and removed after the test, whatever it did."""

    admin_env = "FAV_TEST_PG_URL"

    def start(self, env: dict):
        """Returns the started service; its database's URL is self.url."""
        self.url = fresh_database(os.environ[self.admin_env])
        self.stub = start_stub()
        self.addCleanup(self.stub.stop)
        server = start_server(self.stub, env, db=self.url)
        self.addCleanup(server.cleanup)
        self.addCleanup(server.kill9)  # a no-op after a clean stop
        return server

    @staticmethod
    def wait_ready(server, timeout: float = 30):
        wait_until(lambda: server.req("GET", "/health/ready").status == 200, timeout, "/health/ready 200")


@unittest.skipUnless(FAULT_CLUSTER, "needs FAV_TEST_BACKEND=postgresql and the fault cluster of scripts/test.sh")
class FaultClusterCase(FreshDatabaseCase):
    """FreshDatabaseCase on the fault cluster (scripts/test.sh starts it so that stopping it
    disturbs no other suite), with pause() / resume() of that cluster; a paused cluster is
    resumed after the test."""

    admin_env = "FAV_TEST_PG_FAULT_URL"

    def start(self, env: dict):
        self.paused = False
        server = super().start(env)
        self.addCleanup(lambda: self.paused and self.resume())
        return server

    def cluster(self, action: str):
        subprocess.run([CLUSTER_SCRIPT, action, os.environ["FAV_TEST_PG_FAULT_DIR"]], check=True,
                       capture_output=True, timeout=120)

    def pause(self):
        self.cluster("pause")
        self.paused = True

    def resume(self):
        self.cluster("resume")
        self.paused = False


@unittest.skipUnless(backend() == "postgresql", "PostgreSQL-only suite (FAV_TEST_BACKEND=postgresql)")
class ReferenceDatabaseTest(unittest.TestCase):
    def test_reference_database_is_served_as_is(self):
        url = fresh_database(os.environ["FAV_TEST_PG_URL"])
        jwt = VECTORS["jwt_hs256_seed_format"]
        vector = VECTORS["argon2id_seed_parameters"]["vectors"][0]
        cid = jwt["customer_id"]
        _psql(url, REFERENCE_DDL)
        _psql(url, "INSERT INTO customers (id, name, email, password_hash) VALUES "
                   f"('{cid}', 'Gabriel', 'gabriel.cenciati@aiqfome.com', '{vector['hash']}');"
                   "INSERT INTO products_cache (id, title, image_url, price, review_rate, review_count) VALUES "
                   "(5, 'Cached title', 'https://img/5.png', 695.00, 4.6, 400);"
                   f"INSERT INTO customer_favorite_products (customer_id, product_id) VALUES ('{cid}', 5);")
        stub = start_stub()
        server = start_server(stub, {"JWT_SECRET_KEY": jwt["secret"], "PRODUCT_CATALOG_WARMUP": "false"}, db=url)
        try:
            # The reference's argon2id (p=4) hash verifies.
            r = server.req("POST", "/auth/sign-in", {"email": "gabriel.cenciati@aiqfome.com",
                                                     "password": vector["password"]})
            self.assertEqual(r.status, 200, r)
            # A token in the reference's format (sub and exp only) is accepted.
            old_token = jwt["valid_until_2100"]
            r = server.req("GET", f"/customers/{cid}/favorites", token=old_token)
            self.assertEqual(r.status, 200, r)
            self.assertEqual([item["id"] for item in r.json["data"]], [5])
            self.assertEqual(server.req("GET", f"/customers/{cid}", token=old_token).json["email"],
                             "gabriel.cenciati@aiqfome.com")
            self.assertEqual(server.req("GET", f"/customers/{cid}", token=jwt["expired_2020"]).detail,
                             "token_expired")
            self.assertEqual(server.req("GET", f"/customers/{cid}", token=jwt["alg_none"]).detail,
                             "invalid_token")
            # Sign-out revokes a reference-format token too (it has no jti).
            self.assertEqual(server.req("POST", "/auth/sign-out", token=old_token).status, 204)
            self.assertEqual(server.req("GET", f"/customers/{cid}", token=old_token).detail, "invalid_token")
            # Nothing of the reference's data was dropped or rewritten.
            self.assertEqual(_psql(url, "SELECT password_hash FROM customers").strip(), vector["hash"])
            self.assertEqual(_psql(url, "SELECT count(*) FROM customer_favorite_products").strip(), "1")
            versions = _psql(url, "SELECT version FROM schema_migrations ORDER BY version").split()
            self.assertEqual(versions[:2], ["1", "2"])
            self.assertEqual(server.stop(), 0)
        finally:
            server.cleanup()
            stub.stop()


class DatabaseOutageTest(FaultClusterCase):
    def test_stopped_database_gives_503_then_recovers_without_restart(self):
        server = self.start({"PRODUCT_CATALOG_WARMUP": "false", "AUTH_CACHE_TTL_SECONDS": "0"})
        c = server.new_customer()
        self.assertEqual(server.req("POST", f"/customers/{c.id}/favorites/3", token=c.token).status, 201)

        self.pause()
        started = time.monotonic()
        r = server.req("GET", f"/customers/{c.id}/favorites", token=c.token)
        self.assertEqual((r.status, r.detail), (503, "database_unavailable"), r)
        self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
        self.assertLess(time.monotonic() - started, 8.0, "no hang past a bounded time")
        ready = server.req("GET", "/health/ready")
        self.assertEqual(ready.status, 503)
        self.assertEqual(ready.json["status"], "unavailable")
        self.assertEqual(server.req("GET", "/health").status, 200, "the process itself is up")
        r = server.req("GET", "/customers", headers={"x-aiqfome-api-key": API_KEY})
        self.assertEqual((r.status, r.detail), (503, "database_unavailable"))

        self.resume()
        self.wait_ready(server)
        r = server.req("GET", f"/customers/{c.id}/favorites", token=c.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([item["id"] for item in r.json["data"]], [3])
        self.assertEqual(server.req("POST", f"/customers/{c.id}/favorites/4", token=c.token).status, 201)
        self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
