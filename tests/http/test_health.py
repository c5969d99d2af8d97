"""Health, readiness and the operational endpoints (CONTRACT §3 "Health and docs")."""

import gzip
import os
import re
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, mint_jwt  # noqa: E402


class HealthTest(ServerTestCase):
    with_stub = False  # health must not depend on the catalog at all

    def test_health(self):
        """`GET /health` → 200 `{"status": "healthy"}` (process is up)."""
        r = self.req("GET", "/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, {"status": "healthy"})
        self.assertJsonContentType(r)

    def test_health_is_public(self):
        """Health needs no credentials and ignores bad ones."""
        for headers in ({"Authorization": "Bearer garbage"}, {"Cookie": "access_token=garbage"},
                        {"x-aiqfome-api-key": "wrong"}):
            with self.subTest(headers=headers):
                self.assertEqual(self.req("GET", "/health", headers=headers).status, 200)

    def test_ready(self):
        """Beyond: `GET /health/ready` → 200 when the database answers."""
        r = self.req("GET", "/health/ready")
        self.assertEqual(r.status, 200, r)
        self.assertIsInstance(r.json, dict, r)
        self.assertJsonContentType(r)

    def test_ready_is_public(self):
        r = self.req("GET", "/health/ready", token=mint_jwt({"sub": "x", "exp": 1}))
        self.assertEqual(r.status, 200, r)

    def test_ready_independent_of_catalog(self):
        """Readiness is about the database; the catalog (down here: nothing on port 9) is
        not a readiness check, since the service degrades gracefully without it (§4)."""
        self.assertEqual(self.req("GET", "/health/ready").status, 200)


class DocsAndMetricsTest(ServerTestCase):
    """`GET /docs` → Swagger UI, working with no internet access. `GET /openapi.json` →
    the OpenAPI 3 document: every path ... in this file. `GET /metrics` → Prometheus."""

    with_stub = False

    # Every route of CONTRACT §3, with its methods.
    ROUTES = {
        "/health": {"get"},
        "/health/ready": {"get"},
        "/auth/sign-up": {"post"},
        "/auth/sign-in": {"post"},
        "/auth/sign-out": {"post"},
        "/auth/refresh": {"post"},
        "/customers": {"get"},
        "/customers/{}": {"get", "patch", "delete"},
        "/customers/{}/favorites": {"get"},
        "/customers/{}/favorites/{}": {"get", "post", "delete"},
    }

    def test_openapi_document_lists_every_route(self):
        r = self.req("GET", "/openapi.json")
        self.assertEqual(r.status, 200, r)
        doc = r.json
        self.assertIsInstance(doc, dict)
        self.assertTrue(str(doc.get("openapi", "")).startswith("3."), doc.get("openapi"))
        # Parameter names are the document's choice: compare templates with {} placeholders.
        paths = {re.sub(r"\{[^}]*\}", "{}", p): {m.lower() for m in ops} for p, ops in doc["paths"].items()}
        for path, methods in self.ROUTES.items():
            with self.subTest(path=path):
                self.assertIn(path, paths)
                self.assertLessEqual(methods, paths[path])

    def test_openapi_mentions_every_error_code(self):
        text = self.req("GET", "/openapi.json").body.decode()
        for code in ["not_found", "method_not_allowed", "invalid_body", "payload_too_large",
                     "invalid_pagination", "invalid_filter", "invalid_product_id", "invalid_email",
                     "invalid_name", "invalid_password", "email_already_exists", "invalid_credentials",
                     "missing_token", "invalid_token", "token_expired", "invalid_refresh_token",
                     "forbidden", "missing_api_key", "invalid_api_key", "product_not_found",
                     "product_already_in_favorites", "product_not_in_favorites", "catalog_unavailable"]:
            with self.subTest(code=code):
                self.assertIn(code, text)

    def test_docs_is_self_contained_html(self):
        r = self.req("GET", "/docs")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/html"), r.headers)
        html = r.body.decode("utf-8", "replace")
        # No internet access: scripts and styles must come from the service itself.
        external = re.findall(r'(?:src|href)\s*=\s*["\'](?:https?:)?//[^"\']+', html)
        self.assertEqual(external, [])
        # ...and the assets it references are served; one of them points the UI at the document.
        texts = [html]
        for ref in re.findall(r'(?:src|href)\s*=\s*["\']([^"\'#]+)["\']', html):
            if ref.startswith("data:"):
                continue
            path = urllib.parse.urljoin("/docs", ref)
            with self.subTest(asset=path):
                asset = self.req("GET", path, headers={"Accept-Encoding": "gzip"})
                self.assertEqual(asset.status, 200)
                body = gzip.decompress(asset.body) if asset.headers.get("content-encoding") == "gzip" else asset.body
                texts.append(body.decode("utf-8", "replace"))
        self.assertTrue(any("openapi.json" in t for t in texts))

    def test_metrics_prometheus_text(self):
        self.req("GET", "/health")
        r = self.req("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        text = r.body.decode()
        self.assertRegex(text, r"(?m)^# TYPE \w+ (counter|histogram|gauge)")
        self.assertRegex(text, r"(?m)^# TYPE \w+ histogram")  # the latency histogram


if __name__ == "__main__":
    unittest.main()
