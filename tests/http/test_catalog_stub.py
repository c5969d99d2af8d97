"""Black-box tests for tools/catalog_stub.cpp (the fakestore stand-in with fault injection).

Run from the repo root:  STUB_BIN=build/catalog-stub python3 -m unittest tests/http/test_catalog_stub.py -v
"""
import http.client
import json
import os
import subprocess
import time
import unittest

STUB_BIN = os.environ.get("STUB_BIN", "build/catalog-stub")
STUB_PRODUCTS = os.environ.get("STUB_PRODUCTS", "data/fakestore-products.json")


class CatalogStubTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(STUB_PRODUCTS, encoding="utf-8") as f:
            cls.products = json.load(f)
        cls.by_id = {p["id"]: p for p in cls.products}
        cls.proc = subprocess.Popen(
            [STUB_BIN, "--port", "0", "--products", os.path.abspath(STUB_PRODUCTS)],
            stdout=subprocess.PIPE, text=True)
        line = cls.proc.stdout.readline().strip()
        prefix = "catalog-stub listening on port "
        if not line.startswith(prefix):
            cls.proc.kill()
            raise RuntimeError(f"unexpected first line from stub: {line!r}")
        cls.port = int(line[len(prefix):])

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait()
        cls.proc.stdout.close()

    def setUp(self):
        self.assertEqual(self.call("POST", "/__admin/reset")[0], 200)

    # --- helpers -------------------------------------------------------------------
    def conn(self, timeout=5):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def call(self, method, path, body=None, timeout=5, conn=None):
        """One request; returns (status, headers, raw body bytes)."""
        c = conn or self.conn(timeout)
        try:
            data = json.dumps(body) if isinstance(body, (dict, list)) else body
            c.request(method, path, body=data)
            r = c.getresponse()
            return r.status, r.headers, r.read()
        finally:
            if conn is None:
                c.close()

    def get_json(self, path):
        status, headers, raw = self.call("GET", path)
        self.assertEqual(status, 200, raw)
        self.assertEqual(headers["Content-Type"], "application/json; charset=utf-8")
        return json.loads(raw)

    def faults(self, **kw):
        status, _, raw = self.call("POST", "/__admin/faults", kw)
        self.assertEqual(status, 200, raw)
        return json.loads(raw)

    # --- catalog -------------------------------------------------------------------
    def test_list_matches_file(self):
        self.assertEqual(self.get_json("/products"), self.products)

    def test_single_products_match_file(self):
        for p in self.products:
            self.assertEqual(self.get_json(f"/products/{p['id']}"), p)
        status, _, raw = self.call("GET", "/products/1")
        # Numbers as fakestore writes them, not Boost.JSON's 1.0995E2.
        self.assertIn(b'"price":109.95', raw)
        self.assertIn(b'"rate":3.9', raw)
        self.assertEqual(json.loads(raw)["price"], 109.95)

    def test_query_string_ignored(self):
        self.assertEqual(self.get_json("/products/2?x=1"), self.by_id[2])

    def test_not_found_styles(self):
        status, headers, raw = self.call("GET", "/products/9999")  # default: empty
        self.assertEqual((status, headers["Content-Length"], raw), (200, "0", b""))

        self.assertEqual(self.faults(not_found_style="404")["not_found_style"], "404")
        status, _, raw = self.call("GET", "/products/9999")
        self.assertEqual((status, json.loads(raw)), (404, {"message": "not found"}))

        self.faults(not_found_style="null")
        status, _, raw = self.call("GET", "/products/9999")
        self.assertEqual((status, raw), (200, b"null"))

        self.faults(not_found_style="empty")
        self.assertEqual(self.call("GET", "/products/9999")[2], b"")

    def test_non_integer_id_is_400(self):
        for bad in ("abc", "1.5", "1x", ""):
            self.assertEqual(self.call("GET", f"/products/{bad}")[0], 400, bad)

    def test_keep_alive(self):
        c = self.conn()
        try:
            status, _, _ = self.call("GET", "/products/1", conn=c)
            sock = c.sock
            self.assertIsNotNone(sock)
            for i in (2, 3, 9999, 4):  # including an empty-body not-found answer
                status, _, raw = self.call("GET", f"/products/{i}", conn=c)
                self.assertEqual(status, 200)
                if i != 9999:
                    self.assertEqual(json.loads(raw), self.by_id[i])
            self.assertIs(c.sock, sock, "connection was not reused")
        finally:
            c.close()

    # --- faults --------------------------------------------------------------------
    def test_latency(self):
        self.faults(latency_ms=300)
        t0 = time.monotonic()
        status, _, _ = self.call("GET", "/products/1")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.faults(latency_ms=0)
        t0 = time.monotonic()
        self.call("GET", "/products/1")
        self.assertLess(time.monotonic() - t0, 0.25)

    def test_fail_count_then_success(self):
        state = self.faults(fail_count=2, fail_status=503)
        self.assertEqual((state["fail_count"], state["fail_status"]), (2, 503))
        c = self.conn()
        try:  # failures keep the connection usable
            for _ in range(2):
                status, headers, raw = self.call("GET", "/products/1", conn=c)
                self.assertEqual(status, 503)
                self.assertEqual(headers["Content-Type"], "application/json; charset=utf-8")
                json.loads(raw)
            status, _, raw = self.call("GET", "/products/1", conn=c)
            self.assertEqual((status, json.loads(raw)), (200, self.by_id[1]))
        finally:
            c.close()
        self.assertEqual(self.faults()["fail_count"], 0)

    def test_rate_limit(self):
        self.faults(rate_limit_count=1, retry_after_s=2)
        status, headers, _ = self.call("GET", "/products")
        self.assertEqual((status, headers["Retry-After"]), (429, "2"))
        self.assertEqual(self.call("GET", "/products")[0], 200)

    def test_reset(self):
        self.faults(reset_count=1)
        with self.assertRaises(ConnectionResetError) as cm:
            self.call("GET", "/products/1")
        # a real RST (ECONNRESET), not an orderly close (http.client.RemoteDisconnected)
        self.assertIs(type(cm.exception), ConnectionResetError)
        self.assertEqual(self.call("GET", "/products/1")[0], 200)

    def test_hang(self):
        self.faults(hang_count=1)
        t0 = time.monotonic()
        with self.assertRaises(TimeoutError):
            self.call("GET", "/products/1", timeout=1)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        self.assertEqual(self.call("GET", "/products/1")[0], 200)

    def test_fault_order(self):
        # hang > reset > fail > rate limit, each counter consumed by its own request
        self.faults(reset_count=1, fail_count=1, fail_status=502, rate_limit_count=1)
        with self.assertRaises(ConnectionError):
            self.call("GET", "/products/5")
        self.assertEqual(self.call("GET", "/products/5")[0], 502)
        self.assertEqual(self.call("GET", "/products/5")[0], 429)
        self.assertEqual(self.call("GET", "/products/5")[0], 200)

    def test_only_ids(self):
        state = self.faults(fail_count=1, only_ids=[2])
        self.assertEqual(state["only_ids"], [2])
        self.assertEqual(self.call("GET", "/products")[0], 200)
        self.assertEqual(self.call("GET", "/products/1")[0], 200)
        self.assertEqual(self.call("GET", "/products/2")[0], 500)
        self.assertEqual(self.call("GET", "/products/2")[0], 200)

    # --- overrides -----------------------------------------------------------------
    def test_overrides(self):
        self.assertEqual(self.call("POST", "/__admin/products/3", {"gone": True})[0], 200)
        self.assertEqual(self.call("GET", "/products/3")[2], b"")
        self.assertNotIn(3, [p["id"] for p in self.get_json("/products")])

        self.call("POST", "/__admin/products/4", {"title": "Renamed", "price": 12.5})
        p4 = self.get_json("/products/4")
        self.assertEqual((p4["title"], p4["price"]), ("Renamed", 12.5))
        self.assertEqual(p4["category"], self.by_id[4]["category"])

        status, _, _ = self.call("POST", "/__admin/products/1000", {"title": "New", "price": 1.1})
        self.assertEqual(status, 200)
        p = self.get_json("/products/1000")
        self.assertEqual((p["id"], p["title"], p["price"]), (1000, "New", 1.1))
        listed = {p["id"]: p for p in self.get_json("/products")}
        self.assertIn(1000, listed)
        self.assertEqual(listed[4]["title"], "Renamed")

        self.call("POST", "/__admin/products/3", {"gone": False})
        self.assertEqual(self.get_json("/products/3"), self.by_id[3])
        # a product not in the file needs both title and price
        self.assertEqual(self.call("POST", "/__admin/products/2000", {"title": "x"})[0], 400)

    # --- admin ---------------------------------------------------------------------
    def test_counters(self):
        self.faults(fail_count=1)
        self.call("GET", "/products/7")  # answered with a fault, still counted
        self.call("GET", "/products")
        self.call("GET", "/products/1")
        self.call("GET", "/products/1")
        self.call("GET", "/__admin/health")  # admin calls are not counted
        self.assertEqual(self.get_json("/__admin/calls"),
                         {"total": 4, "list": 1, "products": {"1": 2, "7": 1}})

    def test_admin_reset(self):
        self.faults(latency_ms=5, fail_count=3, not_found_style="404", only_ids=[1])
        self.call("POST", "/__admin/products/1", {"gone": True})
        self.call("GET", "/products/2")
        self.assertEqual(self.call("POST", "/__admin/reset")[0], 200)
        self.assertEqual(self.get_json("/__admin/calls"),
                         {"total": 0, "list": 0, "products": {}})
        self.assertEqual(self.faults(), {
            "latency_ms": 0, "hang_count": 0, "reset_count": 0, "fail_count": 0,
            "fail_status": 500, "rate_limit_count": 0, "retry_after_s": 1,
            "not_found_style": "empty", "only_ids": None,
            "flood_count": 0, "flood_style": "chunk_extension"})
        self.assertEqual(self.get_json("/products/1"), self.by_id[1])

    def test_admin_errors_and_health(self):
        self.assertEqual(self.get_json("/__admin/health"), {"status": "ok"})
        for body in ("{not json", "[1]", json.dumps({"fail_count": -1}),
                     json.dumps({"bogus": 1}), json.dumps({"not_found_style": "x"}),
                     json.dumps({"flood_style": "x"})):
            self.assertEqual(self.call("POST", "/__admin/faults", body)[0], 400, body)
        self.assertEqual(self.call("POST", "/__admin/products/1", "nope")[0], 400)
        self.assertEqual(self.call("POST", "/__admin/products/1", {"gone": "yes"})[0], 400)
        self.assertEqual(self.faults()["fail_count"], 0)  # rejected bodies changed nothing
        self.assertEqual(self.call("GET", "/nope")[0], 404)
        self.assertEqual(self.call("GET", "/__admin/nope")[0], 404)

    def test_zz_sigterm_exits_zero(self):  # runs last (alphabetical order)
        c = self.conn()
        c.request("GET", "/products/1")
        c.getresponse().read()  # leave an idle keep-alive connection open
        t0 = time.monotonic()
        self.proc.terminate()
        self.assertEqual(self.proc.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 2)
        c.close()


if __name__ == "__main__":
    unittest.main()
