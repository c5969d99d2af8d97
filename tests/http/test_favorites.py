"""Favorites and the product cache (CONTRACT §3 "Favorites", §4, §5 durability), against
the fault-injecting catalog stub. Catalog calls are counted by the stub per product id."""

import itertools
import os
import signal
import sys
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TIMESTAMP_RE, Server, ServerTestCase, Stub, load_stub_products,  # noqa: E402
                     request_once)

TIMEOUT_S, RETRIES, BACKOFF_CAP_S = 0.5, 2, 0.2
FAST_CATALOG = {
    "PRODUCT_CATALOG_WARMUP": "false",  # counts below start from an empty cache
    "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": str(TIMEOUT_S),
    "PRODUCT_CATALOG_API_MAX_RETRIES": str(RETRIES),
    "PRODUCT_CATALOG_BACKOFF_BASE_SECONDS": "0.05",
    "PRODUCT_CATALOG_BACKOFF_CAP_SECONDS": str(BACKOFF_CAP_S),
}
# The longest a request may wait on a catalog that never answers: every attempt times out,
# with the capped backoff between attempts, plus slack for a loaded machine.
WORST_CATALOG_WAIT_S = TIMEOUT_S * (RETRIES + 1) + BACKOFF_CAP_S * RETRIES + 1.5

PRODUCTS = load_stub_products()
_product_ids = itertools.count(1000)  # ids of products made through the stub admin API


def expected_item(p: dict) -> dict:
    """A favorite item as the contract maps a fakestore product."""
    return {"id": p["id"], "title": p["title"], "image_url": p["image"], "price": p["price"],
            "review": {"rate": p["rating"]["rate"], "count": p["rating"]["count"]}}


class FavoritesBase(ServerTestCase):
    server_env = FAST_CATALOG

    def setUp(self):
        self.stub.reset()

    def new_product(self, title=None, price=12.5) -> int:
        """A product that only the stub knows (never seen by the service before)."""
        pid = next(_product_ids)
        self.stub.product(pid, title=title or f"Product {pid}", price=price)
        return pid

    def add(self, c, pid, **kw):
        return self.req("POST", f"/customers/{c.id}/favorites/{pid}", token=c.token, **kw)

    def get_one(self, c, pid):
        return self.req("GET", f"/customers/{c.id}/favorites/{pid}", token=c.token)

    def remove(self, c, pid):
        return self.req("DELETE", f"/customers/{c.id}/favorites/{pid}", token=c.token)

    def listing(self, c, **params):
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return self.req("GET", f"/customers/{c.id}/favorites" + ("?" + query if query else ""), token=c.token)

    def items_by_id(self, c) -> dict:
        r = self.listing(c, per_page=200)
        self.assertEqual(r.status, 200, r)
        return {i["id"]: i for i in r.json["data"]}

    def customers(self, n):
        with ThreadPoolExecutor(min(n, 8)) as ex:
            return list(ex.map(lambda i: self.server.new_customer(f"Fan {i}"), range(n)))

    def assertItem(self, item: dict, expected: dict):
        self.assertEqual({k: item.get(k) for k in expected}, expected)
        self.assertRegex(item.get("favorited_at") or "", TIMESTAMP_RE)
        self.assertLessEqual(set(item), set(expected) | {"favorited_at", "unavailable"})
        self.assertFalse(item.get("unavailable", False), item)


class FavoritesTest(FavoritesBase):
    """§3 Favorites and the catalog paths that do not need short TTLs."""

    @classmethod
    def prepare(cls):
        cls.alice = cls.server.new_customer("Alice")
        cls.bob = cls.server.new_customer("Bob")

    # -- add ----------------------------------------------------------------------------------

    def test_add_201_with_item_and_location(self):
        """`POST /customers/{id}/favorites/{product_id}` (token) → 201 with the favorite item
        as body and a `Location` header."""
        c = self.server.new_customer()
        r = self.add(c, 1)
        self.assertEqual(r.status, 201, r)
        self.assertJsonContentType(r)
        self.assertItem(r.json, expected_item(PRODUCTS[1]))
        self.assertEqual(r.headers.get("location"), f"/customers/{c.id}/favorites/1")
        # price: "a JSON number with two decimals of meaning" (109.95, not 109.9500000001).
        self.assertRegex(r.body.decode(), r'"price":\s*109\.95[,}\s]')
        self.assertEqual(self.get_one(c, 1).json, r.json)
        self.assertEqual(self.listing(c).json["data"], [r.json])

    def test_add_maps_every_catalog_field(self):
        c = self.server.new_customer()
        for pid in (5, 6, 9):
            with self.subTest(pid=pid):
                r = self.add(c, pid)
                self.assertEqual(r.status, 201, r)
                self.assertItem(r.json, expected_item(PRODUCTS[pid]))

    def test_add_twice_409(self):
        """Already a favorite → 409 `product_already_in_favorites`."""
        c = self.server.new_customer()
        self.assertEqual(self.add(c, 2).status, 201)
        self.assertError(self.add(c, 2), 409, "product_already_in_favorites")
        self.assertEqual(len(self.listing(c).json["data"]), 1)

    def test_concurrent_duplicate_adds(self):
        """...also under concurrent duplicate requests (exactly one 201); concurrent requests
        for the same product share one call (single-flight)."""
        c = self.server.new_customer()
        pid = self.new_product()
        # Under the class's 0.5 s attempt timeout (a longer latency times every attempt out).
        # A request that starts late can read the cache just before the first answer is saved
        # and ask after its flight has landed: the client shares that answer for its linger.
        self.stub.faults(latency_ms=200)
        port = self.server.port
        with ThreadPoolExecutor(20) as ex:
            results = list(ex.map(lambda _: request_once(port, "POST", f"/customers/{c.id}/favorites/{pid}",
                                                              token=c.token), range(20)))
        self.assertEqual(sorted(r.status for r in results), [201] + [409] * 19, [r.body for r in results])
        self.assertEqual({r.detail for r in results if r.status == 409}, {"product_already_in_favorites"})
        self.assertEqual(self.stub.product_calls(pid), 1)
        self.assertEqual(len(self.listing(c).json["data"]), 1)

    def test_unknown_product_404_each_style(self):
        """A 404, an empty body or the body `null` means "no such product" and is not retried:
        404 `product_not_found`."""
        c = self.server.new_customer()
        for i, style in enumerate(("empty", "404", "null")):
            with self.subTest(style=style):
                pid = 50_000 + i
                self.stub.faults(not_found_style=style)
                self.assertError(self.add(c, pid), 404, "product_not_found")
                self.assertEqual(self.stub.product_calls(pid), 1)
                self.assertError(self.get_one(c, pid), 404, "product_not_in_favorites")
        self.assertEqual(self.listing(c).json["data"], [])

    def test_malformed_product_id_422(self):
        """A malformed product id in a path (not a positive integer ≤ 2^63−1): 422
        `invalid_product_id`."""
        c = self.alice
        for pid in ["0", "-1", "abc", "1.5", "9223372036854775808", "18446744073709551616",
                    "99999999999999999999999", "1e3", "0x10", "%201", "1%20", "-0", "%00"]:
            for method in ("POST", "GET", "DELETE"):
                with self.subTest(pid=pid, method=method):
                    r = self.req(method, f"/customers/{c.id}/favorites/{pid}", token=c.token)
                    self.assertError(r, 422, "invalid_product_id")
        self.assertEqual(self.stub.calls()["total"], 0)

    def test_malformed_product_id_on_others_customer_is_403(self):
        """403 is checked before other parameters are looked at."""
        r = self.req("POST", f"/customers/{self.bob.id}/favorites/abc", token=self.alice.token)
        self.assertError(r, 403, "forbidden")

    def test_max_int64_is_valid_but_unknown(self):
        c = self.alice
        pid = "9223372036854775807"
        self.assertError(self.add(c, pid), 404, "product_not_found")
        self.assertError(self.get_one(c, pid), 404, "product_not_in_favorites")
        self.assertError(self.remove(c, pid), 422, "product_not_in_favorites")

    # -- list, get, delete --------------------------------------------------------------------

    def test_list_newest_first_and_paged(self):
        """`GET /customers/{id}/favorites` → paged list of favorite items, newest favorite
        first (`favorited_at DESC, product_id DESC`)."""
        c = self.server.new_customer()
        added = [self.new_product(price=float(i) + 0.5) for i in range(25)]
        for pid in added:
            self.assertEqual(self.add(c, pid).status, 201)
        expected = list(reversed(added))  # later (or equal-time, higher-id) favorites first
        seen = []
        for page, size in [(1, 10), (2, 10), (3, 5)]:
            r = self.listing(c, page=page, per_page=10)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["pagination"], {"page": page, "per_page": 10, "total_pages": 3, "total_items": 25})
            self.assertEqual(len(r.json["data"]), size)
            seen += r.json["data"]
        self.assertEqual([i["id"] for i in seen], expected)
        keys = [(i["favorited_at"], i["id"]) for i in seen]
        self.assertEqual(keys, sorted(keys, reverse=True))
        r = self.listing(c, page=4, per_page=10)
        self.assertEqual((r.status, r.json["data"]), (200, []))
        r = self.listing(c)
        self.assertEqual(r.json["pagination"], {"page": 1, "per_page": 20, "total_pages": 2, "total_items": 25})
        self.assertEqual([i["id"] for i in r.json["data"]], expected[:20])

    def test_empty_list(self):
        c = self.server.new_customer()
        r = self.listing(c)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"data": [], "pagination": {"page": 1, "per_page": 20, "total_pages": 0,
                                                              "total_items": 0}})

    def test_get_one(self):
        """Beyond: `GET /customers/{id}/favorites/{product_id}` (token) → 200 the item, or 404
        `product_not_in_favorites`."""
        c = self.server.new_customer()
        self.assertEqual(self.add(c, 3).status, 201)
        r = self.get_one(c, 3)
        self.assertEqual(r.status, 200, r)
        self.assertItem(r.json, expected_item(PRODUCTS[3]))
        self.assertError(self.get_one(c, 4), 404, "product_not_in_favorites")
        self.assertError(self.get_one(c, 123456), 404, "product_not_in_favorites")

    def test_delete(self):
        """`DELETE /customers/{id}/favorites/{product_id}` (token) → 204; not a favorite →
        422 `product_not_in_favorites` (the reference's code; keep it)."""
        c = self.server.new_customer()
        pid = self.new_product()
        other = self.new_product()
        self.assertEqual(self.add(c, pid).status, 201)
        self.assertEqual(self.add(c, other).status, 201)
        r = self.remove(c, pid)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertError(self.remove(c, pid), 422, "product_not_in_favorites")
        self.assertError(self.get_one(c, pid), 404, "product_not_in_favorites")
        self.assertEqual([i["id"] for i in self.listing(c).json["data"]], [other])
        self.assertEqual(self.add(c, pid).status, 201)
        self.assertError(self.remove(c, 424242), 422, "product_not_in_favorites")

    def test_a_write_is_seen_by_the_next_read_at_once_with_the_read_cache_on(self):
        """§9: "A write acknowledged by one instance is seen ... by reads on the same instance at
        once." With READ_CACHE_BYTES at its default (on), pages and the customer's record that
        were answered from memory change with the very next request after a write."""
        c = self.server.new_customer()
        pid, other = self.new_product(), self.new_product()
        self.assertEqual(self.add(c, other).status, 201)
        # On PostgreSQL the cache is trusted only while the change feed is up, and this instance's
        # own notification of the add may forget a first cached copy: read (bounded) until both
        # reads are answered from memory before counting.
        for _ in range(50):
            hits = metric_value(self, "fav_read_cache_hits_total")
            self.listing(c)
            self.req("GET", f"/customers/{c.id}", token=c.token)
            if metric_value(self, "fav_read_cache_hits_total") - hits >= 2:
                break
            time.sleep(0.05)
        hits = metric_value(self, "fav_read_cache_hits_total")
        for _ in range(3):  # answered from memory
            self.assertEqual([i["id"] for i in self.listing(c).json["data"]], [other])
            self.assertEqual(self.req("GET", f"/customers/{c.id}", token=c.token).json["name"], "Test Customer")
        self.assertGreaterEqual(metric_value(self, "fav_read_cache_hits_total") - hits, 6, "the read cache is not on")
        self.assertEqual(self.add(c, pid).status, 201)
        r = self.listing(c)
        self.assertEqual([i["id"] for i in r.json["data"]], [pid, other])
        self.assertEqual(r.json["pagination"]["total_items"], 2)
        self.assertEqual(self.remove(c, other).status, 204)
        self.assertEqual([i["id"] for i in self.listing(c).json["data"]], [pid])
        self.assertEqual([i["id"] for i in self.listing(c).json["data"]], [pid])
        r = self.req("PATCH", f"/customers/{c.id}", body={"name": "Renamed Fan"}, token=c.token)
        self.assertIn(r.status, (200, 204), r)
        self.assertEqual(self.req("GET", f"/customers/{c.id}", token=c.token).json["name"], "Renamed Fan")
        self.assertEqual(self.req("DELETE", f"/customers/{c.id}", token=c.token).status, 204)
        self.assertError(self.listing(c), 401, "invalid_token")

    def test_favorites_are_per_customer(self):
        a, b = self.customers(2)
        self.assertEqual(self.add(a, 8).status, 201)
        self.assertEqual(self.listing(b).json["data"], [])
        self.assertEqual(self.add(b, 8).status, 201)  # another customer may favorite it too
        self.assertEqual(self.remove(a, 8).status, 204)
        self.assertEqual([i["id"] for i in self.listing(b).json["data"]], [8])

    def test_other_customer_403(self):
        b = self.bob
        for method, path in [("POST", f"/customers/{b.id}/favorites/1"), ("GET", f"/customers/{b.id}/favorites"),
                             ("GET", f"/customers/{b.id}/favorites/1"), ("DELETE", f"/customers/{b.id}/favorites/1")]:
            with self.subTest(method=method):
                self.assertError(self.req(method, path, token=self.alice.token), 403, "forbidden")

    def test_without_token_401(self):
        a = self.alice
        for method, path in [("POST", f"/customers/{a.id}/favorites/1"), ("GET", f"/customers/{a.id}/favorites"),
                             ("GET", f"/customers/{a.id}/favorites/1"), ("DELETE", f"/customers/{a.id}/favorites/1")]:
            with self.subTest(method=method):
                self.assertError(self.req(method, path), 401, "missing_token")
                self.assertError(self.req(method, path, token="garbage"), 401, "invalid_token")

    # -- catalog and cache --------------------------------------------------------------------

    def test_fresh_cache_makes_no_calls(self):
        """Age ≤ soft TTL: served as is."""
        a, b = self.customers(2)
        pid = self.new_product()
        self.assertEqual(self.add(a, pid).status, 201)
        self.assertEqual(self.stub.product_calls(pid), 1)
        before = self.stub.calls()["total"]
        for _ in range(3):
            self.assertEqual(self.listing(a).status, 200)
            self.assertEqual(self.get_one(a, pid).status, 200)
        self.assertEqual(self.add(b, pid).status, 201)
        self.assertEqual(self.stub.calls()["total"], before)

    def test_catalog_5xx_retried(self):
        """Timeouts, resets, 429 and 5xx are retried up to `PRODUCT_CATALOG_API_MAX_RETRIES` times."""
        c = self.server.new_customer()
        for status in (500, 502, 503):
            with self.subTest(status=status):
                pid = self.new_product()
                self.stub.faults(fail_count=2, fail_status=status, only_ids=[pid])
                r = self.add(c, pid)
                self.assertEqual(r.status, 201, r)
                self.assertEqual(self.stub.product_calls(pid), 3)

    def test_reset_and_timeout_retried(self):
        c = self.server.new_customer()
        for fault in ("reset_count", "hang_count"):
            with self.subTest(fault=fault):
                pid = self.new_product()
                self.stub.faults(**{fault: 1}, only_ids=[pid])
                t0 = time.monotonic()
                r = self.add(c, pid)
                self.assertEqual(r.status, 201, r)
                self.assertEqual(self.stub.product_calls(pid), 2)
                self.assertLess(time.monotonic() - t0, WORST_CATALOG_WAIT_S)

    def test_rate_limit_never_retried_early(self):
        """...429 ... honour `Retry-After`. Here Retry-After (1 s) is longer than the backoff
        cap (0.2 s): the service may wait it out (201 after ≥ 1 s) or give up at once with
        503 and a Retry-After of its own — but it must not call again sooner."""
        c = self.server.new_customer()
        pid = self.new_product()
        self.stub.faults(rate_limit_count=1, retry_after_s=1, only_ids=[pid])
        t0 = time.monotonic()
        r = self.add(c, pid)
        elapsed = time.monotonic() - t0
        calls = self.stub.product_calls(pid)
        if calls == 1:
            self.assertError(r, 503, "catalog_unavailable")
            self.assertGreaterEqual(int(r.headers.get("retry-after", "0")), 1)
        else:
            self.assertEqual((r.status, calls), (201, 2), r)
            self.assertGreaterEqual(elapsed, 0.95, "the retry came before Retry-After: 1")

    def test_retries_exhausted_503(self):
        """Catalog unreachable and no cached copy → 503 `catalog_unavailable` with `Retry-After`."""
        c = self.server.new_customer()
        for fault in ({"fail_count": 100}, {"reset_count": 100}, {"hang_count": 100}):
            with self.subTest(fault=fault):
                pid = self.new_product()
                self.stub.faults(**fault, only_ids=[pid])
                t0 = time.monotonic()
                r = self.add(c, pid)
                elapsed = time.monotonic() - t0
                self.assertError(r, 503, "catalog_unavailable")
                self.assertRegex(r.headers.get("retry-after", ""), r"^\d+$")
                calls = self.stub.product_calls(pid)
                if "reset_count" in fault:
                    # Assumption: a reset on a kept-alive (pooled) connection may be replayed
                    # once on a fresh one without counting as a retry, as HTTP clients do for
                    # idempotent requests on a connection the server may have closed.
                    self.assertIn(calls, (RETRIES + 1, RETRIES + 2))
                else:
                    self.assertEqual(calls, RETRIES + 1)
                self.assertLess(elapsed, WORST_CATALOG_WAIT_S)
                # A write that failed left nothing half-done.
                self.assertError(self.get_one(c, pid), 404, "product_not_in_favorites")
        self.stub.reset()
        self.assertEqual(self.listing(c).json["data"], [])

    def test_catalog_not_listening_503(self):
        """A catalog that refuses connections is "unreachable" too (separate server)."""
        server = Server(None, env=FAST_CATALOG)  # base URL → 127.0.0.1:9, nothing listens
        server.start()
        try:
            c = server.new_customer()
            t0 = time.monotonic()
            r = server.req("POST", f"/customers/{c.id}/favorites/1", token=c.token)
            self.assertError(r, 503, "catalog_unavailable")
            self.assertLess(time.monotonic() - t0, WORST_CATALOG_WAIT_S)
            self.assertEqual(server.req("GET", f"/customers/{c.id}/favorites", token=c.token).status, 200)
            self.assertEqual(server.stop(), 0)
        finally:
            server.kill9()
            server.cleanup()

    def test_listing_never_fails_when_catalog_down(self):
        """Listing favorites never fails because of the catalog — items that cannot be fetched
        and were never cached are listed with their `id`, null fields and `"unavailable": true`.
        (A favorite whose product was never cached is written into the database directly,
        as a database the reference created could hold.)"""
        c = self.server.new_customer()
        self.assertEqual(self.add(c, 10).status, 201)
        uncached = 19  # no other test here touches product 19, and warm-up is off
        cid = self.server.uuid_sql(c.id)
        self.server.sql("INSERT INTO customer_favorite_products (customer_id, product_id, favorited_at) "
                        f"SELECT customer_id, {uncached}, favorited_at FROM customer_favorite_products "
                        f"WHERE customer_id = {cid} AND product_id = 10")
        self.stub.faults(reset_count=1_000_000)
        t0 = time.monotonic()
        r = self.listing(c)
        self.assertEqual(r.status, 200, r)
        self.assertLess(time.monotonic() - t0, WORST_CATALOG_WAIT_S)
        items = {i["id"]: i for i in r.json["data"]}
        self.assertEqual(list(items), [uncached, 10])  # same favorited_at: product_id DESC
        self.assertEqual(items[uncached]["unavailable"], True)
        for key in ("title", "image_url", "price", "review"):
            self.assertIsNone(items[uncached][key], key)
        self.assertItem(items[10], expected_item(PRODUCTS[10]))
        # Once the catalog answers again the item is complete.
        self.stub.faults(reset_count=0)
        item = self.items_by_id(c)[uncached]
        self.assertItem(item, expected_item(PRODUCTS[uncached]))

    def test_single_flight_across_customers(self):
        """20 customers favoriting one uncached product at once → one catalog call."""
        fans = self.customers(20)
        pid = self.new_product()
        self.stub.faults(latency_ms=300)
        port = self.server.port
        with ThreadPoolExecutor(20) as ex:
            results = list(ex.map(lambda c: request_once(port, "POST", f"/customers/{c.id}/favorites/{pid}",
                                                              token=c.token), fans))
        self.assertEqual([r.status for r in results], [201] * 20, [r.body for r in results])
        self.assertEqual(self.stub.product_calls(pid), 1)


def metric_value(test, name: str) -> float:
    """The value of an unlabelled counter in one /metrics scrape (0 when absent)."""
    r = test.req("GET", "/metrics")
    test.assertEqual(r.status, 200, r)
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


class FavoritesCacheTtlSmokeTest(FavoritesBase):
    """§4 freshness end to end, once: the cached copy is made older than the soft TTL in the
    database (Server.age_cached_product), not by waiting. Every rule
    (fresh / stale / expired / stale-if-error / gone past the hard TTL / one refresh at a time)
    is proven with plain numbers by the product-cache unit tests (tests/unit/test_catalog.cpp,
    product_cache_test.*); this only checks the service is wired to them."""

    server_env = {**FAST_CATALOG, "PRODUCT_CACHE_SOFT_TTL_MINUTES": "5",
                  "PRODUCT_CACHE_HARD_TTL_MINUTES": "30", "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": "3",
                  "READ_CACHE_BYTES": "0"}  # the age is set behind the service's back

    def test_stale_served_and_refreshed_once_in_background(self):
        """Soft < age ≤ hard TTL: served as is and refreshed in the background (at most one
        refresh per product at a time)."""
        a = self.server.new_customer()
        pid = self.new_product(title="Old title")
        self.assertEqual(self.add(a, pid).status, 201)
        self.stub.product(pid, title="New title")
        self.stub.faults(latency_ms=1000)  # every listing below is answered while the refresh runs
        refreshes = metric_value(self, "fav_product_cache_background_refreshes_total")
        self.server.age_cached_product(pid, 10)  # soft (5 min) < age ≤ hard (30 min)
        port = self.server.port
        t1 = time.monotonic()
        with ThreadPoolExecutor(20) as ex:
            results = list(ex.map(lambda _: request_once(port, "GET", f"/customers/{a.id}/favorites", token=a.token),
                                  range(20)))
        self.assertLess(time.monotonic() - t1, 0.9, "stale listings waited for the refresh")
        for r in results:
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json["data"][0]["title"], "Old title")  # served as is
        # One refresh started for the 20 stale reads (counted by the service, so single-flight in
        # the client cannot hide a second one), and it lands.
        self.assertEqual(metric_value(self, "fav_product_cache_background_refreshes_total") - refreshes, 1)
        self.assertEqual(self.stub.wait_product_calls(pid, 2, timeout=5), 2)
        deadline = time.monotonic() + 5
        while self.items_by_id(a)[pid]["title"] != "New title" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.items_by_id(a)[pid]["title"], "New title")


class CatalogConcurrencyTest(FavoritesBase):
    """At most `PRODUCT_CATALOG_API_MAX_CONCURRENCY` calls are in flight."""

    server_env = {**FAST_CATALOG, "PRODUCT_CATALOG_API_MAX_CONCURRENCY": "1",
                  "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": "3"}

    def test_calls_are_capped(self):
        c = self.server.new_customer()
        pids = [self.new_product() for _ in range(3)]
        self.stub.faults(latency_ms=300)
        port = self.server.port
        t0 = time.monotonic()
        with ThreadPoolExecutor(3) as ex:
            results = list(ex.map(lambda p: request_once(port, "POST", f"/customers/{c.id}/favorites/{p}",
                                                              token=c.token), pids))
        self.assertEqual([r.status for r in results], [201] * 3, results)
        self.assertGreaterEqual(time.monotonic() - t0, 0.85, "three 300 ms calls overlapped")


class RetryAfterTest(FavoritesBase):
    """Retry-After within the backoff cap is waited out (honour `Retry-After`)."""

    server_env = {**FAST_CATALOG, "PRODUCT_CATALOG_BACKOFF_CAP_SECONDS": "2"}

    def test_retry_after_waited(self):
        c = self.server.new_customer()
        for status_fault in ({"rate_limit_count": 1}, {"fail_count": 1, "fail_status": 503}):
            with self.subTest(fault=status_fault):
                pid = self.new_product()
                self.stub.faults(**status_fault, retry_after_s=1, only_ids=[pid])
                t0 = time.monotonic()
                r = self.add(c, pid)
                elapsed = time.monotonic() - t0
                self.assertEqual(r.status, 201, r)
                self.assertEqual(self.stub.product_calls(pid), 2)
                if "rate_limit_count" in status_fault:
                    self.assertGreaterEqual(elapsed, 0.95, "the retry came before Retry-After: 1")
                self.assertLess(elapsed, 3)


class WarmupTest(FavoritesBase):
    """Lead's design (not in the contract): at start the service fetches `GET /products` once
    to warm the cache, so favoriting a catalog product then needs no call."""

    server_env = {k: v for k, v in FAST_CATALOG.items() if k != "PRODUCT_CATALOG_WARMUP"}

    def setUp(self):
        pass  # keep the stub's counters from start-up

    def test_warm_cache(self):
        deadline = time.monotonic() + 5
        while self.stub.calls()["list"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.stub.calls()["list"], 1)
        # Wait for the warm-up to be stored (the service counts it), not for some time to pass.
        while metric_value(self, "fav_product_cache_warmups_total") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(metric_value(self, "fav_product_cache_warmups_total"), 1)
        c = self.server.new_customer()
        r = self.add(c, 11)
        self.assertEqual(r.status, 201, r)
        self.assertItem(r.json, expected_item(PRODUCTS[11]))
        self.assertEqual(self.stub.product_calls(11), 0)


class FavoritingRoundTripsTest(FavoritesBase):
    """A favoriting's exchanges with PostgreSQL, counted by `fav_db_round_trips_total` (README,
    "Running several instances"), with the token cache warm: "already a favorite?" and the product's cached row in
    one round trip, then one write that stores the row fetched from the catalog with the favorite
    (at most two); a product this instance holds fresh in memory takes only the insert (one); a
    removal is one statement. The answers stay the database's: "A write's answer never comes from
    a cache: 409 `product_already_in_favorites` and 422 `product_not_in_favorites` reflect the
    database at the time of the write" (CONTRACT §9)."""

    # One connection: every statement is prepared once on it (the warm-up below), so a count is
    # the request's own and never a lazy prepare's.
    server_env = {**FAST_CATALOG, "DATABASE_POOL_SIZE": "1"}

    def setUp(self):
        super().setUp()
        if os.environ.get("FAV_TEST_BACKEND") != "postgresql":
            self.skipTest("round trips are counted on PostgreSQL")

    def metric(self, name: str) -> float:
        r = self.req("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        for line in r.body.decode("utf-8").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        self.fail(f"/metrics has no {name}")

    def trips(self, call):
        """The response to `call()` and the round trips it took (/metrics itself sends none)."""
        before = self.metric("fav_db_round_trips_total")
        r = call()
        return r, self.metric("fav_db_round_trips_total") - before

    def wait_echoes(self, at_least: float):
        """Until the change feed has heard `at_least` echoes of this instance's own writes (they
        come back through LISTEN and are skipped), bounded."""
        deadline = time.monotonic() + 10
        while self.metric("fav_change_feed_echoes_total") < at_least:
            self.assertLess(time.monotonic(), deadline, "the change feed did not deliver the notifications")
            time.sleep(0.02)

    def test_round_trips_per_favoriting_and_removal(self):
        a, b, c = self.customers(3)
        # Warm-up: each token checked once (the token cache then answers), every statement prepared.
        warm = self.new_product()
        for who in (a, b, c):
            self.assertEqual(self.add(who, warm).status, 201)
            self.assertEqual(self.remove(who, warm).status, 204)
        self.wait_echoes(self.metric("fav_change_feed_echoes_total"))

        pid = self.new_product(title="Counted", price=7.25)
        seen = self.metric("fav_change_feed_echoes_total")
        r, n = self.trips(lambda: self.add(a, pid))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json["title"], "Counted")
        self.assertEqual(self.stub.product_calls(pid), 1)
        self.assertLessEqual(n, 2, "a favoriting of a product not cached took more than two round trips")
        # Its own notifications ("product refreshed", "favorites changed") come back and are
        # skipped: the instance keeps the row it wrote, so the next favoriting is the insert alone.
        self.wait_echoes(seen + 2)
        r, n = self.trips(lambda: self.add(b, pid))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(n, 1, "a favoriting of the product this instance just wrote took more than one round trip")

        # Now held fresh in memory: the insert alone, its answer still the database's.
        r, n = self.trips(lambda: self.add(c, pid))
        self.assertEqual((r.status, r.json["title"], r.json["price"]), (201, "Counted", 7.25), r)
        self.assertEqual(n, 1, "a favoriting of a product held fresh took more than one round trip")
        r, n = self.trips(lambda: self.add(c, pid))
        self.assertError(r, 409, "product_already_in_favorites")
        self.assertEqual(n, 1, "a duplicate favoriting of a product held fresh took more than one round trip")
        self.assertEqual(self.stub.product_calls(pid), 1, "the catalog was asked again")

        r, n = self.trips(lambda: self.remove(c, pid))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(n, 1, "a removal took more than one round trip")
        r, n = self.trips(lambda: self.remove(c, pid))
        self.assertError(r, 422, "product_not_in_favorites")
        self.assertEqual(n, 1, "a removal of a missing favorite took more than one round trip")

        # Already a favorite, product not held (forgotten: as after another instance's refresh):
        # 409 from the first round trip, without asking the catalog.
        other = self.new_product()
        self.assertEqual(self.add(a, other).status, 201)
        self.stub.reset()
        r, n = self.trips(lambda: self.add(a, other))
        self.assertError(r, 409, "product_already_in_favorites")
        self.assertLessEqual(n, 2)
        self.assertEqual(self.stub.product_calls(other), 0)


class DurabilityTest(unittest.TestCase):
    """A write that answered 2xx is durable: after a crash or `kill -9` and restart it is there."""

    def setUp(self):
        self.stub = Stub.start()
        self.server = Server(self.stub, env=FAST_CATALOG)
        self.server.start()

    def tearDown(self):
        try:
            rc = self.server.stop(signal.SIGTERM)
            self.assertEqual(rc, 0, "exit code on SIGTERM; output:\n" + self.server.output_tail())
        finally:
            self.server.kill9()
            self.stub.stop()
            self.server.cleanup()

    def crash_and_restart(self):
        self.server.kill9()
        self.server.start()

    def test_writes_survive_kill9(self):
        s = self.server
        c = s.new_customer("Durable")
        self.assertEqual(s.req("POST", f"/customers/{c.id}/favorites/12", token=c.token).status, 201)
        self.assertEqual(s.req("POST", f"/customers/{c.id}/favorites/13", token=c.token).status, 201)
        self.crash_and_restart()
        r = s.req("GET", f"/customers/{c.id}/favorites", token=c.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([i["id"] for i in r.json["data"]], [13, 12])

        self.assertEqual(s.req("DELETE", f"/customers/{c.id}/favorites/13", token=c.token).status, 204)
        self.assertEqual(s.req("PATCH", f"/customers/{c.id}", {"name": "Renamed"}, token=c.token).status, 204)
        self.crash_and_restart()
        self.assertEqual([i["id"] for i in s.req("GET", f"/customers/{c.id}/favorites", token=c.token).json["data"]],
                         [12])
        self.assertEqual(s.req("GET", f"/customers/{c.id}", token=c.token).json["name"], "Renamed")

    def test_concurrent_writes_survive_kill9(self):
        """...also writes answered together (on SQLite one group commit makes a batch of them
        durable at once): every 201 is there after `kill -9`."""
        s = self.server
        c = s.new_customer("Batch")
        ids = list(range(1, 21))
        with ThreadPoolExecutor(20) as ex:
            statuses = list(ex.map(
                lambda p: s.req("POST", f"/customers/{c.id}/favorites/{p}", token=c.token).status, ids))
        self.assertEqual(statuses, [201] * 20)
        self.crash_and_restart()
        r = s.req("GET", f"/customers/{c.id}/favorites?per_page=50", token=c.token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(sorted(i["id"] for i in r.json["data"]), ids)

    def test_sign_up_survives_kill9(self):
        s = self.server
        email, password = "durable-signup-%d@example.com" % time.time_ns(), "password-durable"
        r = s.sign_up("New", email, password)
        self.assertEqual(r.status, 201)
        self.crash_and_restart()
        token = s.sign_in(email, password)
        self.assertEqual(s.req("GET", f"/customers/{r.json['id']}", token=token).status, 200)

    def test_sign_out_survives_kill9(self):
        s = self.server
        c = s.new_customer()
        self.assertEqual(s.req("POST", "/auth/sign-out", token=c.token).status, 204)
        self.crash_and_restart()
        r = s.req("GET", f"/customers/{c.id}", token=c.token)
        self.assertEqual((r.status, r.detail), (401, "invalid_token"))

    def test_cache_survives_restart(self):
        """The cache is a table: after a restart a cached product is served while the catalog
        is down."""
        s = self.server
        c = s.new_customer()
        self.assertEqual(s.req("POST", f"/customers/{c.id}/favorites/14", token=c.token).status, 201)
        self.crash_and_restart()
        self.stub.faults(reset_count=1_000_000)
        item = s.req("GET", f"/customers/{c.id}/favorites", token=c.token).json["data"][0]
        self.assertEqual(item["title"], PRODUCTS[14]["title"])
        other = s.new_customer()
        self.assertEqual(s.req("POST", f"/customers/{other.id}/favorites/14", token=other.token).status, 201)


if __name__ == "__main__":
    unittest.main()
