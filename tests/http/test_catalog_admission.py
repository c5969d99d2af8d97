"""CONTRACT §8 "Catalog admission", against the real binary and the fault-injecting stub:

"A favoriting request never waits on the catalog, queueing for a slot included, longer than
`PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS` (default 10) in all; then 503 `catalog_unavailable`
with `Retry-After`. A product the catalog said does not exist is remembered as missing for
`PRODUCT_CACHE_MISSING_TTL_MINUTES` (default 5): favoriting it again meanwhile answers 404 with
no catalog call. After `PRODUCT_CATALOG_BREAKER_FAILURES` (default 5) consecutive failed lookups
(after their retries) the catalog counts as down for `PRODUCT_CATALOG_BREAKER_OPEN_SECONDS`
(default 30): lookups that need it answer 503 `catalog_unavailable` at once, with `Retry-After` =
the time left; cached copies keep serving; then one probe call decides whether it is back."

The rules themselves are unit-tested with an injected clock (tests/unit/test_catalog.cpp:
breaker.*, missing_products.*, product_cache_test.*); these check the service end to end."""

import itertools
import os
import sys
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, request_once  # noqa: E402

_ids = itertools.count(5000)
BASE_ENV = {"PRODUCT_CATALOG_WARMUP": "false", "PRODUCT_CATALOG_BACKOFF_BASE_SECONDS": "0.05",
            "PRODUCT_CATALOG_BACKOFF_CAP_SECONDS": "0.2"}


class AdmissionBase(ServerTestCase):
    def setUp(self):
        self.stub.reset()

    def new_product(self) -> int:
        pid = next(_ids)
        self.stub.product(pid, title=f"Product {pid}", price=10)
        return pid

    def add(self, c, pid):
        return request_once(self.server.port, "POST", f"/customers/{c.id}/favorites/{pid}", token=c.token)

    def wait_slots_held(self, before: int, slots: int = 2):
        """Waits until the stub has received `slots` calls more than `before` (its total count):
        with PRODUCT_CATALOG_API_MAX_CONCURRENCY=slots and a slow stub, every catalog slot is then
        held by the flood (the stub counts a call when it arrives, before its latency)."""
        deadline = time.monotonic() + 10
        while self.stub.calls()["total"] < before + slots:
            self.assertLess(time.monotonic(), deadline, "the flood never reached the catalog")
            time.sleep(0.02)


class MissingProductTest(AdmissionBase):
    server_env = {**BASE_ENV, "PRODUCT_CATALOG_BREAKER_FAILURES": "0"}

    def test_a_missing_product_is_not_asked_for_again(self):
        c = self.server.new_customer()
        pid = next(_ids)  # the stub does not know it: 404
        for _ in range(3):
            self.assertError(self.add(c, pid), 404, "product_not_found")
        self.assertEqual(self.stub.product_calls(pid), 1)


class BreakerTest(AdmissionBase):
    OPEN_S = 30
    server_env = {**BASE_ENV, "PRODUCT_CATALOG_BREAKER_FAILURES": "2",
                  "PRODUCT_CATALOG_BREAKER_OPEN_SECONDS": str(OPEN_S),
                  "PRODUCT_CATALOG_API_MAX_RETRIES": "1", "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": "1"}

    def test_open_breaker_answers_at_once_and_cached_copies_serve(self):
        c, d = self.server.new_customer(), self.server.new_customer()
        cached = self.new_product()
        self.assertEqual(self.add(c, cached).status, 201)  # now in the cache, fresh
        self.stub.faults(fail_count=1_000_000, fail_status=500)
        for _ in range(2):  # two failed lookups (after their retries) open it
            r = self.add(c, self.new_product())
            self.assertError(r, 503, "catalog_unavailable")
        calls = sum(self.stub.calls()["products"].values())
        t0 = time.monotonic()
        r = self.add(c, self.new_product())
        elapsed = time.monotonic() - t0
        self.assertError(r, 503, "catalog_unavailable")
        self.assertLess(elapsed, 0.5, "an open breaker must answer at once")
        self.assertTrue(1 <= int(r.headers.get("Retry-After")) <= self.OPEN_S, r.headers)
        self.assertEqual(sum(self.stub.calls()["products"].values()), calls, "the open breaker called the catalog")
        # Cached copies keep serving while it is open.
        self.assertEqual(self.add(d, cached).status, 201)
        r = request_once(self.server.port, "GET", f"/customers/{c.id}/favorites", token=c.token)
        self.assertEqual(r.status, 200, r)


class StarvationTest(AdmissionBase):
    """"a slow catalog plus many unknown ids never delays another customer's cached favoriting
    or listing, and no request waits past the deadline", scaled down: 60 unknown ids
    against a 3 s catalog with 2 slots and a 2 s deadline."""

    DEADLINE_S = 2.0
    server_env = {**BASE_ENV, "PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS": str(DEADLINE_S),
                  "PRODUCT_CATALOG_API_MAX_CONCURRENCY": "2", "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": "5",
                  "PRODUCT_CATALOG_API_MAX_RETRIES": "0", "API_THREADS": "2"}

    def test_unknown_ids_do_not_starve_other_customers(self):
        attacker, other = self.server.new_customer(), self.server.new_customer()
        others = [self.server.new_customer() for _ in range(3)]
        cached = self.new_product()
        self.assertEqual(self.add(other, cached).status, 201)
        self.stub.faults(latency_ms=3000)
        port = self.server.port
        before = self.stub.calls()["total"]

        def unknown(pid):
            t = time.monotonic()
            r = request_once(port, "POST", f"/customers/{attacker.id}/favorites/{pid}", token=attacker.token)
            return r, time.monotonic() - t

        with ThreadPoolExecutor(60) as ex:
            flood = [ex.submit(unknown, next(_ids)) for _ in range(60)]
            self.wait_slots_held(before)  # the rest of the flood queues behind the two slots
            waits = []
            for o in others:
                t = time.monotonic()
                self.assertEqual(self.add(o, cached).status, 201)  # a fresh cached product: no catalog call
                r = request_once(port, "GET", f"/customers/{other.id}/favorites", token=other.token)
                self.assertEqual(r.status, 200, r)
                waits.append(time.monotonic() - t)
            results = [f.result() for f in flood]
        self.assertLess(max(waits), 1.0, f"the other customer waited {waits}")
        for r, elapsed in results:
            self.assertIn(r.status, (404, 503), r)
            if r.status == 503:
                self.assertEqual(r.json["detail"], "catalog_unavailable")
                self.assertIsNotNone(r.headers.get("Retry-After"))
            self.assertLess(elapsed, self.DEADLINE_S + 1.5, "a request waited past the deadline")


class ExpiredListingDuringFloodTest(AdmissionBase):
    """The listing half of "a slow catalog plus many unknown ids never delays another customer's
    cached favoriting or listing" for a product whose cached copy is past the hard TTL:
    §4 "Age > hard TTL or absent: fetched before answering", and "when the catalog cannot be
    reached, a cached copy of any age" serves. With every catalog slot held by the flood the
    catalog cannot be reached in time, so the copy answers at once instead of after the deadline."""

    DEADLINE_S = 4.0
    server_env = {**BASE_ENV, "PRODUCT_CATALOG_REQUEST_DEADLINE_SECONDS": str(DEADLINE_S),
                  "PRODUCT_CATALOG_API_MAX_CONCURRENCY": "2", "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": "5",
                  "PRODUCT_CATALOG_API_MAX_RETRIES": "0", "PRODUCT_CATALOG_BREAKER_FAILURES": "0",
                  "PRODUCT_CACHE_SOFT_TTL_MINUTES": "5", "PRODUCT_CACHE_HARD_TTL_MINUTES": "10",
                  "READ_CACHE_BYTES": "0"}  # the copy's age is set behind the service's back

    def test_expired_copy_is_listed_without_waiting_behind_the_flood(self):
        attacker, other = self.server.new_customer(), self.server.new_customer()
        pid = self.new_product()
        self.assertEqual(self.add(other, pid).status, 201)
        self.server.age_cached_product(pid, 20)  # past the hard TTL (10 min), without waiting
        self.stub.product(pid, title="Renamed while flooded", price=11)
        self.stub.faults(latency_ms=3000)
        port = self.server.port
        before = self.stub.calls()["total"]

        def unknown(p):
            return request_once(port, "POST", f"/customers/{attacker.id}/favorites/{p}", token=attacker.token)

        with ThreadPoolExecutor(30) as ex:
            flood = [ex.submit(unknown, next(_ids)) for _ in range(30)]
            self.wait_slots_held(before)  # both catalog slots are held by the flood now
            t = time.monotonic()
            r = request_once(port, "GET", f"/customers/{other.id}/favorites", token=other.token)
            waited = time.monotonic() - t
            for f in flood:
                f.result()
        self.assertEqual(r.status, 200, r)
        self.assertLess(waited, 1.0, f"listing an expired product waited {waited:.2f} s behind the flood")
        [item] = r.json["data"]
        self.assertEqual(item["id"], pid)
        self.assertEqual(item["title"], f"Product {pid}", "the cached copy is served")

        # Flood over, catalog slow but free: the expired copy is fetched before answering again.
        self.stub.faults(latency_ms=500)
        r = request_once(port, "GET", f"/customers/{other.id}/favorites", token=other.token)
        self.assertEqual(r.status, 200, r)
        [item] = r.json["data"]
        self.assertEqual(item["title"], "Renamed while flooded", "a slot was free: the catalog is asked")


if __name__ == "__main__":
    unittest.main()
