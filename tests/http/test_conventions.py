"""Cross-cutting HTTP conventions (CONTRACT §1, §7): content type, 404/405, correlation id,
access log, CORS, gzip, body and header limits, invalid bodies, odd paths, pagination
errors, timestamps, a random-request burst and graceful shutdown."""

import datetime
import gzip
import json
import os
import random
import signal
import sys
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API_KEY, TIMESTAMP_RE, UUID_RE, Client, Server, ServerTestCase, Stub,  # noqa: E402
                     mint_jwt, raw_request, request_once, send_large_body, unique_email)


def parse_list(value: str) -> set:
    return {v.strip().upper() for v in (value or "").split(",") if v.strip()}


def parse_time(s: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


class ConventionsTest(ServerTestCase):
    server_env = {"PRODUCT_CATALOG_WARMUP": "false", "PRODUCT_CATALOG_BACKOFF_BASE_SECONDS": "0.05",
                  "PRODUCT_CATALOG_BACKOFF_CAP_SECONDS": "0.2"}

    @classmethod
    def prepare(cls):
        cls.alice = cls.server.new_customer("Alice")
        # Enough customers that GET /customers exceeds 500 bytes (gzip tests).
        for i in range(4):
            r = cls.server.sign_up(f"Filler {i}", unique_email("filler"), f"filler-password-{i}")
            assert r.status == 201, r

    def sign_up_body(self, **over):
        body = {"name": "Someone", "email": unique_email(), "password": "password-1234"}
        body.update(over)
        return body

    # -- content type, 404, 405 -------------------------------------------------------------

    def test_json_content_type_everywhere(self):
        """JSON in and out, `Content-Type: application/json; charset=utf-8`."""
        for method, path, kw in [("GET", "/health", {}), ("GET", "/nope", {}),
                                 ("GET", f"/customers/{self.alice.id}", {}),  # 401
                                 ("GET", f"/customers/{self.alice.id}", {"token": self.alice.token}),
                                 ("GET", "/customers", {"api_key": API_KEY}),
                                 ("PUT", "/auth/sign-up", {})]:
            with self.subTest(method=method, path=path):
                self.assertJsonContentType(self.req(method, path, **kw))
        r = self.req("POST", "/auth/sign-up", self.sign_up_body())
        self.assertEqual(r.status, 201, r)
        self.assertJsonContentType(r)

    def test_unknown_route_404_with_and_without_token(self):
        """Unknown routes: 404 `not_found`. Unknown paths stay 404 with or without a token."""
        paths = ["/nope", "/auth", "/auth/sign-up/extra", "/healthz", "/customers/a/b/c/d",
                 f"/customers/{self.alice.id}/nope", f"/customers/{self.alice.id}/favorites/1/extra",
                 f"/customers/{uuid.uuid4()}/nope", "/favorites"]
        for path in paths:
            for method in ("GET", "POST", "DELETE"):
                for token in (None, self.alice.token):
                    with self.subTest(method=method, path=path, token=bool(token)):
                        self.assertError(self.req(method, path, token=token), 404, "not_found")

    def test_method_not_allowed_with_allow_header(self):
        """Known route, wrong method: 405 `method_not_allowed` with an `Allow` header."""
        a = self.alice.id
        cases = [("PUT", "/auth/sign-up", {"POST"}), ("GET", "/auth/sign-in", {"POST"}),
                 ("GET", "/auth/sign-out", {"POST"}), ("GET", "/auth/refresh", {"POST"}),
                 ("DELETE", "/customers", {"GET"}), ("POST", "/customers", {"GET"}),
                 ("POST", "/health", {"GET"}), ("DELETE", "/health/ready", {"GET"}),
                 ("PUT", f"/customers/{a}", {"GET", "PATCH", "DELETE"}),
                 ("POST", f"/customers/{a}", {"GET", "PATCH", "DELETE"}),
                 ("POST", f"/customers/{a}/favorites", {"GET"}),
                 ("PATCH", f"/customers/{a}/favorites/1", {"GET", "POST", "DELETE"}),
                 ("PUT", f"/customers/{a}/favorites/1", {"GET", "POST", "DELETE"})]
        for method, path, allowed in cases:
            with self.subTest(method=method, path=path):
                r = self.req(method, path, token=self.alice.token, api_key=API_KEY)
                self.assertError(r, 405, "method_not_allowed")
                # HEAD/OPTIONS may be listed too (OPTIONS answers CORS preflights).
                self.assertEqual(parse_list(r.headers.get("allow")) - {"HEAD", "OPTIONS"}, allowed, r.headers)

    def test_method_not_allowed_before_authentication(self):
        """Assumption: the route table decides 405 before any auth policy runs (a wrong
        method matches no route, so no policy applies)."""
        r = self.req("PUT", f"/customers/{uuid.uuid4()}")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual(parse_list(r.headers.get("allow")) - {"HEAD", "OPTIONS"}, {"GET", "PATCH", "DELETE"})

    # -- correlation id and access log ------------------------------------------------------

    def test_correlation_id_echoed_when_valid(self):
        """Every response carries `x-correlation-id`: the incoming `x-correlation-id` (or
        `x-request-id`) if it is 1–64 chars of `[A-Za-z0-9._-]`."""
        for cid in ["a", "abc-123", "A.b_c-9", "x" * 64, "0" * 10, "..", "-_-"]:
            with self.subTest(cid=cid):
                r = self.req("GET", "/health", headers={"x-correlation-id": cid})
                self.assertEqual(r.headers.get("x-correlation-id"), cid)
        r = self.req("GET", "/health", headers={"x-request-id": "req-42.abc"})
        self.assertEqual(r.headers.get("x-correlation-id"), "req-42.abc")
        # Assumption: when both are sent, x-correlation-id (named first) wins.
        r = self.req("GET", "/health", headers={"x-correlation-id": "cid-1", "x-request-id": "rid-1"})
        self.assertEqual(r.headers.get("x-correlation-id"), "cid-1")

    def test_correlation_id_on_errors(self):
        for method, path in [("GET", "/nope"), ("GET", f"/customers/{self.alice.id}"), ("PUT", "/health")]:
            with self.subTest(path=path):
                r = self.req(method, path, headers={"x-correlation-id": "err-cid-1"})
                self.assertGreaterEqual(r.status, 400)
                self.assertEqual(r.headers.get("x-correlation-id"), "err-cid-1")

    def test_correlation_id_replaced_when_invalid(self):
        """...else a fresh UUID."""
        for cid in ["x" * 65, "has space", "semi;colon", "slash/", "", "caf\u00e9", "a" * 300, "{}"]:
            for header in ("x-correlation-id", "x-request-id"):
                with self.subTest(header=header, cid=cid):
                    r = self.req("GET", "/health", headers={header: cid})
                    got = r.headers.get("x-correlation-id")
                    self.assertIsNotNone(got)
                    self.assertRegex(got.lower(), UUID_RE)

    def test_fresh_correlation_ids_differ(self):
        ids = {self.req("GET", "/health").headers.get("x-correlation-id") for _ in range(5)}
        self.assertEqual(len(ids), 5)
        for i in ids:
            self.assertRegex(i.lower(), UUID_RE)

    def test_access_log_line(self):
        """Logs: one JSON object per line on stdout (time, level, message, correlation id,
        method, path, status, duration). The same id appears in every log line of that request."""
        for method, path, status in [("GET", "/health", 200), ("GET", "/nope", 404),
                                     ("GET", f"/customers/{self.alice.id}", 401)]:
            with self.subTest(path=path):
                cid = "log-" + uuid.uuid4().hex
                r = self.req(method, path + "?q=1", headers={"x-correlation-id": cid})
                self.assertEqual(r.status, status)
                line = self.server.wait_log(lambda o: o.get("correlation_id") == cid and "status" in o)
                self.assertIsNotNone(line, f"no access-log line with correlation_id {cid}")
                for key in ("time", "level", "message", "method", "path"):
                    self.assertIn(key, line)
                self.assertEqual(line["method"], method)
                self.assertEqual(line["path"].split("?")[0], path)
                self.assertEqual(int(line["status"]), status)
                durations = [v for k, v in line.items() if k.startswith("duration")]
                self.assertEqual(len(durations), 1, line)
                self.assertIsInstance(durations[0], (int, float))
                self.assertGreaterEqual(durations[0], 0)
                parse_time(line["time"])  # RFC 3339

    def test_catalog_failure_logs_are_json_on_stdout(self):
        """Logs: one JSON object per line on stdout. The same id appears in every log line of
        that request. (A failing catalog call is where a service is most tempted to log.)"""
        c = self.server.new_customer()
        self.stub.faults(fail_count=100, only_ids=[17])  # product 17: used by no other test here
        try:
            stderr_before = len(self.server.err.lines)
            cid = "catalog-fail-" + uuid.uuid4().hex[:8]
            r = self.req("POST", f"/customers/{c.id}/favorites/17", token=c.token,
                         headers={"x-correlation-id": cid})
            self.assertError(r, 503, "catalog_unavailable")
            self.assertIsNotNone(self.server.wait_log(lambda o: o.get("correlation_id") == cid and "status" in o))
            self.server.log_barrier()  # every stdout line written before a later request's is read
            self.assertEqual(self.server.err.lines[stderr_before:], [], "log lines outside stdout JSON")
            for line in self.server.log_lines():
                if "/products/17" in line:
                    self.assertEqual(json.loads(line).get("correlation_id"), cid, line)
        finally:
            self.stub.reset()

    def test_every_stdout_line_is_a_json_object(self):
        self.req("GET", "/health")
        lines = self.server.log_lines()
        self.assertGreater(len(lines), 0)
        for line in lines:
            obj = json.loads(line)
            self.assertIsInstance(obj, dict, line)
            for key in ("time", "level", "message"):
                self.assertIn(key, obj, line)

    # -- Date -------------------------------------------------------------------------------

    def test_date_on_every_response(self):
        """§10: "Every response carries `Date`" (RFC 9110 IMF-fixdate), errors the server
        answers itself included."""
        import email.utils
        answers = [self.req("GET", "/health"), self.req("GET", "/nope"),
                   self.req("GET", f"/customers/{self.alice.id}"),
                   raw_request(self.server.port, b"GET /health HTTP/1.1\r\n\r\n"),  # 400: no Host
                   raw_request(self.server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " +
                               b"a" * 20000 + b"\r\n\r\n")]  # 431
        for r in answers:
            with self.subTest(status=r.status):
                date = r.headers.get("date")
                self.assertIsNotNone(date, r)
                self.assertRegex(date, r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                                       r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                                       r"\d{2}:\d{2}:\d{2} GMT$")
                when = email.utils.parsedate_to_datetime(date)
                now = datetime.datetime.now(datetime.timezone.utc)
                self.assertLess(abs((now - when).total_seconds()), 60, date)

    def test_error_bodies_are_problem_details(self):
        """§10: "Error bodies keep `detail` (the code) and add `status` (the HTTP status, a
        number) and `title` (a short English sentence) [...]; the content type is
        `application/problem+json` when the request's `Accept` names it, else
        `application/json`." Handler errors and errors the server answers itself alike."""
        cases = [(lambda h: self.req("GET", "/nope", headers=h), 404, "not_found"),
                 (lambda h: self.req("GET", f"/customers/{self.alice.id}/favorites/x", headers=h,
                                     token=self.alice.token), 422, "invalid_product_id"),
                 (lambda h: self.req("GET", "/customers", headers=h), 401, "missing_api_key"),
                 (lambda h: raw_request(self.server.port, b"GET /health HTTP/1.1\r\n" +
                                        b"".join(f"{k}: {v}\r\n".encode() for k, v in h.items()) +
                                        b"\r\n"), 400, "bad_request")]  # no Host
        for make, status, code in cases:
            with self.subTest(code=code):
                plain = make({})
                self.assertError(plain, status, code)
                self.assertEqual(plain.json.get("status"), status, plain)
                self.assertIsInstance(plain.json.get("title"), str, plain)
                self.assertTrue(plain.json["title"].strip(), plain)
                self.assertJsonContentType(plain)
                asked = make({"Accept": "application/problem+json"})
                self.assertError(asked, status, code)
                self.assertEqual(asked.headers.get("content-type"), "application/problem+json", asked)
                refused = make({"Accept": "application/json, application/problem+json;q=0"})
                self.assertJsonContentType(refused)
        ok = self.req("GET", "/health", headers={"Accept": "application/problem+json"})
        self.assertEqual(ok.status, 200)
        self.assertJsonContentType(ok)  # only errors are problem details

    def test_cors_allows_traceparent_and_exposes_rate_limit_fields(self):
        """§10: "`traceparent` is allowed in CORS requests"; §8's RateLimit fields are readable
        by a browser client."""
        r = self.req("OPTIONS", "/auth/sign-in", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, traceparent"})
        self.assertEqual(r.status, 204, r)
        self.assertIn("TRACEPARENT", parse_list(r.headers.get("access-control-allow-headers")))
        r = self.req("GET", "/health", headers={"Origin": "https://app.example"})
        self.assertLessEqual({"RATELIMIT-LIMIT", "RATELIMIT-REMAINING", "RATELIMIT-RESET"},
                             parse_list(r.headers.get("access-control-expose-headers")))

    # -- CORS -------------------------------------------------------------------------------

    def test_cors_preflight(self):
        """CORS: origins from `CORS_ALLOW_ORIGINS` (default `*`), methods GET POST PATCH
        DELETE, headers Content-Type, Authorization, x-aiqfome-api-key, x-correlation-id;
        preflight `OPTIONS` answered with 204."""
        origin = "https://app.example"
        for path, method in [("/auth/sign-in", "POST"), ("/customers", "GET"),
                             (f"/customers/{self.alice.id}", "PATCH"),
                             (f"/customers/{self.alice.id}/favorites/1", "DELETE")]:
            with self.subTest(path=path):
                r = self.req("OPTIONS", path, headers={
                    "Origin": origin, "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "content-type, authorization, x-correlation-id"})
                self.assertEqual(r.status, 204, r)
                self.assertIn(r.headers.get("access-control-allow-origin"), ("*", origin))
                self.assertLessEqual({"GET", "POST", "PATCH", "DELETE"},
                                     parse_list(r.headers.get("access-control-allow-methods")))
                self.assertLessEqual({"CONTENT-TYPE", "AUTHORIZATION", "X-AIQFOME-API-KEY", "X-CORRELATION-ID"},
                                     parse_list(r.headers.get("access-control-allow-headers")))

    def test_cors_simple_request(self):
        for path, kw in [("/health", {}), ("/nope", {}), (f"/customers/{self.alice.id}", {})]:
            with self.subTest(path=path):
                r = self.req("GET", path, headers={"Origin": "https://app.example"}, **kw)
                self.assertIn(r.headers.get("access-control-allow-origin"), ("*", "https://app.example"))

    # -- gzip -------------------------------------------------------------------------------

    def test_gzip_large_response(self):
        """Responses of 500 bytes or more are gzip-compressed when the client sends
        `Accept-Encoding: gzip`."""
        plain = self.req("GET", "/customers?per_page=200", api_key=API_KEY)
        self.assertEqual(plain.status, 200)
        self.assertGreaterEqual(len(plain.body), 500)
        self.assertNotIn(plain.headers.get("content-encoding", "identity").lower(), ("gzip",))
        for accept in ("gzip", "gzip, deflate, br", "br, gzip"):
            with self.subTest(accept=accept):
                r = self.req("GET", "/customers?per_page=200", api_key=API_KEY,
                             headers={"Accept-Encoding": accept})
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers.get("content-encoding", "").lower(), "gzip", r.headers)
                self.assertEqual(json.loads(gzip.decompress(r.body)), plain.json)
                self.assertJsonContentType(r)

    def test_small_response_not_compressed(self):
        r = self.req("GET", "/health", headers={"Accept-Encoding": "gzip"})
        self.assertLess(len(r.body), 500)
        self.assertIsNone(r.headers.get("content-encoding"), r.headers)
        self.assertEqual(r.json, {"status": "healthy"})
        r = self.req("GET", "/customers?per_page=1", api_key=API_KEY, headers={"Accept-Encoding": "gzip"})
        self.assertLess(len(r.body), 500)
        self.assertIsNone(r.headers.get("content-encoding"), r.headers)

    # -- body and header limits, content type -----------------------------------------------

    def padded_sign_up(self, size: int) -> bytes:
        base = json.dumps(self.sign_up_body(name="")).encode()
        body = json.dumps(self.sign_up_body(name="n" * (size - len(base)))).encode()
        self.assertEqual(len(body), size)
        return body

    def test_body_size_limit_boundary(self):
        """A body over the size limit (default 64 KiB): 413 `payload_too_large`."""
        r = self.req("POST", "/auth/sign-up", raw_body=self.padded_sign_up(65536),
                     headers={"Content-Type": "application/json"})
        self.assertError(r, 422, "invalid_name")  # at the limit: read, then the name is too long
        r = self.req("POST", "/auth/sign-up", raw_body=self.padded_sign_up(65537),
                     headers={"Content-Type": "application/json"})
        self.assertError(r, 413, "payload_too_large")
        self.assertEqual(self.req("GET", "/health").status, 200)

    def test_one_megabyte_body(self):
        body = b'{"name":"' + b"x" * (1 << 20) + b'"}'
        head = (f"POST /auth/sign-up HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        r = send_large_body(self.server.port, head, body)
        self.assertIsNotNone(r, "no HTTP response to a 1 MB body")
        self.assertError(r, 413, "payload_too_large")
        self.assertEqual(request_once(self.server.port, "GET", "/health").status, 200)

    def test_chunked_body_over_limit(self):
        chunk = b"x" * 8192
        payload = b'{"name":"' + chunk * 9 + b'"}'  # 72 KiB
        body = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 8192]), payload[i:i + 8192])
                        for i in range(0, len(payload), 8192)) + b"0\r\n\r\n"
        head = (b"POST /auth/sign-up HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        r = send_large_body(self.server.port, head, body)
        self.assertIsNotNone(r, "no HTTP response to a 72 KiB chunked body")
        self.assertError(r, 413, "payload_too_large")

    def test_non_json_content_type_415(self):
        """A non-JSON content type on a JSON route: 415 (code `unsupported_media_type`,
        the name in core/errc.hpp; the contract gives only the status)."""
        body = json.dumps(self.sign_up_body())
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "application/xml", "text/json-ish"):
            with self.subTest(ctype=ctype):
                r = self.req("POST", "/auth/sign-up", raw_body=body, headers={"Content-Type": ctype})
                self.assertError(r, 415, "unsupported_media_type")
        r = self.req("PATCH", f"/customers/{self.alice.id}", raw_body='{"name":"X"}',
                     headers={"Content-Type": "text/plain"}, token=self.alice.token)
        self.assertError(r, 415, "unsupported_media_type")
        r = self.req("POST", "/auth/sign-in", raw_body='{"email":"a@b.co","password":"x"}',
                     headers={"Content-Type": "text/plain"})
        self.assertError(r, 415, "unsupported_media_type")

    def test_json_content_type_variants_accepted(self):
        for ctype in ("application/json", "application/json; charset=utf-8",
                      "application/json;charset=UTF-8", "Application/JSON"):
            with self.subTest(ctype=ctype):
                r = self.req("POST", "/auth/sign-up", raw_body=json.dumps(self.sign_up_body()),
                             headers={"Content-Type": ctype})
                self.assertEqual(r.status, 201, r)

    def test_missing_content_type_is_json(self):
        """Assumption (lead's decision): a JSON body without Content-Type is read as JSON."""
        r = self.req("POST", "/auth/sign-up", raw_body=json.dumps(self.sign_up_body()))
        self.assertEqual(r.status, 201, r)

    def test_oversized_headers_431(self):
        r = self.req("GET", "/health", headers={"X-Big": "a" * 20000})
        self.assertError(r, 431, "request_header_too_large")
        many = {f"X-H{i}": "b" * 100 for i in range(400)}
        r = self.req("GET", "/health", headers=many)
        self.assertError(r, 431, "request_header_too_large")
        self.assertEqual(request_once(self.server.port, "GET", "/health").status, 200)

    # -- invalid bodies -----------------------------------------------------------------------

    def test_malformed_json_422(self):
        """Malformed JSON, a JSON value of the wrong type, missing required fields: 422
        `invalid_body`."""
        for raw in ['{"name":', "{", "nul", '{"a":1,}', "{'a':1}", "", "[]", "null", '"str"', "42",
                    '{"name":"x"} trailing', "\ufeff{}"]:
            with self.subTest(raw=raw):
                r = self.req("POST", "/auth/sign-up", raw_body=raw, headers={"Content-Type": "application/json"})
                self.assertError(r, 422, "invalid_body")

    def test_wrong_types_name_the_fields(self):
        """...(with `errors` naming the fields)."""
        cases = [({"name": 1}, {"name"}), ({"email": ["a@b.co"]}, {"email"}),
                 ({"password": 12345678}, {"password"}), ({"name": None}, {"name"}),
                 ({"name": True, "password": {}}, {"name", "password"})]
        for over, fields in cases:
            with self.subTest(over=over):
                r = self.req("POST", "/auth/sign-up", self.sign_up_body(**over))
                self.assertError(r, 422, "invalid_body")
                self.assertEqual(self.error_fields(r), fields)

    def test_missing_fields_name_the_fields(self):
        for body, fields in [({}, {"name", "email", "password"}), ({"name": "x"}, {"email", "password"}),
                             ({"email": unique_email(), "password": "password-1"}, {"name"})]:
            with self.subTest(body=body):
                r = self.req("POST", "/auth/sign-up", body)
                self.assertError(r, 422, "invalid_body")
                self.assertEqual(self.error_fields(r), fields)
        r = self.req("POST", "/auth/sign-in", {"email": "a@b.co"})
        self.assertError(r, 422, "invalid_body")
        self.assertEqual(self.error_fields(r), {"password"})

    def test_extra_fields_ignored(self):
        """Assumption (lead's decision): unknown extra fields are ignored."""
        r = self.req("POST", "/auth/sign-up", self.sign_up_body(extra=1, id="forced", is_admin=True))
        self.assertEqual(r.status, 201, r)
        self.assertNotEqual(r.json["id"], "forced")

    def test_invalid_utf8_422(self):
        email = unique_email().encode()
        for bad in [b"\xff\xfe", b"\xc0\xaf", b"abc\xed\xa0\x80", b"\xe2\x82"]:
            with self.subTest(bad=bad):
                raw = b'{"name":"' + bad + b'","email":"' + email + b'","password":"password-1234"}'
                r = self.req("POST", "/auth/sign-up", raw_body=raw, headers={"Content-Type": "application/json"})
                self.assertError(r, 422, "invalid_body")
        raw = b'{"name":"ok","email":"' + email + b'","password":"pass\xffword-1234"}'
        r = self.req("POST", "/auth/sign-up", raw_body=raw, headers={"Content-Type": "application/json"})
        self.assertError(r, 422, "invalid_body")

    def test_lone_surrogate_escape_rejected(self):
        """Assumption: a JSON escape that is not a Unicode scalar (lone surrogate) is not
        valid text; it is rejected as the body or as the name, never stored."""
        r = self.req("POST", "/auth/sign-up", raw_body='{"name":"a\\ud800b","email":"%s","password":"password-1234"}'
                     % unique_email(), headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 422, r)
        self.assertIn(r.detail, ("invalid_body", "invalid_name"))

    # -- odd paths --------------------------------------------------------------------------

    def test_odd_paths_never_5xx(self):
        a = self.alice.id
        paths = ["//", "///health", "/customers/../health", "/%00", "/health%00", "/customers/%2e%2e/health",
                 "/" + "a" * 6000, "/health?x=%zz&&==&;", "/customers?page=%", "/customers/%ZZ",
                 f"/customers/{a}%00", f"/customers/{a}/favorites/%00", f"/customers/{a}/favorites/1%2F2",
                 "/auth/sign-in?", "/customers?name=%ff%fe", "/customers?created_from=%00",
                 "/customers/" + "%" * 50, "/./health", "/health/.", "/HEALTH"]
        for path in paths:
            for token in (None, self.alice.token):
                with self.subTest(path=path[:60], token=bool(token)):
                    r = self.req("GET", path, token=token, api_key=API_KEY)
                    self.assertLess(r.status, 500, r)
                    if r.status >= 400:
                        self.assertIsInstance(r.detail, str, r)
        # Raw request targets; those marked False break RFC 9112 and may also be answered by
        # closing the connection.
        raw_targets = [(b"/\xc3\xa9", True), (b"/\xff", True), (b"/customers/\xff/favorites", True),
                       (b"*", True), (b"http://127.0.0.1/health", True),
                       (b"/health#frag", False), (b"/health?a=\x7f", False), (b"/a\x00b", False)]
        for target, must_answer in raw_targets:
            with self.subTest(target=target):
                r = raw_request(self.server.port, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                b"Connection: close\r\n\r\n")
                if must_answer:
                    self.assertIsNotNone(r, "no HTTP response")
                if r is not None:
                    self.assertLess(r.status, 500, r)
                    if r.status >= 400:
                        self.assertIsInstance(r.detail, str, r)
        self.assertEqual(self.req("GET", "/health").status, 200)

    def test_malformed_request_line_400(self):
        for data in [b"GARBAGE\r\n\r\n", b"GET /health HTTP/1.1\r\nBad Header\r\n\r\n",
                     b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                     b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"]:
            with self.subTest(data=data):
                r = raw_request(self.server.port, data, timeout=5)
                if r is not None:  # closing the connection is also an acceptable answer here
                    self.assertGreaterEqual(r.status, 400, r)
                    self.assertLess(r.status, 500, r)
        self.assertEqual(self.req("GET", "/health").status, 200)

    # -- pagination ---------------------------------------------------------------------------

    BAD_PAGES = ["0", "-1", "abc", "1.5", "99999999999999999999", "", "1e2", "0x1", "%201", "1,2"]
    BAD_PER_PAGES = ["0", "201", "1.5", "-5", "abc", "", "99999999999999999999"]

    def test_invalid_pagination(self):
        """`page` ≥ 1 (default 1), `per_page` 1..`PAGINATION_PER_PAGE_LIMIT` (default 20,
        limit default 200); anything else, or not an integer: 422 `invalid_pagination`."""
        targets = [("/customers", {"api_key": API_KEY}),
                   (f"/customers/{self.alice.id}/favorites", {"token": self.alice.token})]
        for path, kw in targets:
            for v in self.BAD_PAGES:
                with self.subTest(path=path, page=v):
                    self.assertError(self.req("GET", f"{path}?page={v}", **kw), 422, "invalid_pagination")
            for v in self.BAD_PER_PAGES:
                with self.subTest(path=path, per_page=v):
                    self.assertError(self.req("GET", f"{path}?per_page={v}", **kw), 422, "invalid_pagination")

    def test_pagination_defaults_and_limits(self):
        r = self.req("GET", "/customers", api_key=API_KEY)
        self.assertEqual(r.status, 200)
        p = r.json["pagination"]
        self.assertEqual((p["page"], p["per_page"]), (1, 20))
        for key in ("total_pages", "total_items"):
            self.assertIsInstance(p[key], int)
        r = self.req("GET", "/customers?per_page=200&page=1", api_key=API_KEY)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["pagination"]["per_page"], 200)
        r = self.req("GET", "/customers?per_page=1&page=3", api_key=API_KEY)
        self.assertEqual((r.json["pagination"]["page"], r.json["pagination"]["per_page"]), (3, 1))

    # -- timestamps ---------------------------------------------------------------------------

    def test_timestamps_rfc3339_utc_millis(self):
        """Timestamps: RFC 3339 with offset, UTC (`2026-11-29T12:00:00.123Z`)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        r = self.req("GET", f"/customers/{self.alice.id}", token=self.alice.token)
        for key in ("created_at", "updated_at"):
            self.assertRegex(r.json[key], TIMESTAMP_RE)
            self.assertLess(abs((parse_time(r.json[key]) - now).total_seconds()), 600)
        for item in self.req("GET", "/customers", api_key=API_KEY).json["data"]:
            self.assertRegex(item["created_at"], TIMESTAMP_RE)
            self.assertRegex(item["updated_at"], TIMESTAMP_RE)
        r = self.req("POST", f"/customers/{self.alice.id}/favorites/1", token=self.alice.token)
        self.assertIn(r.status, (201, 409), r)
        r = self.req("GET", f"/customers/{self.alice.id}/favorites/1", token=self.alice.token)
        self.assertRegex(r.json["favorited_at"], TIMESTAMP_RE)
        self.assertLess(abs((parse_time(r.json["favorited_at"]) - now).total_seconds()), 600)

    # -- random burst -------------------------------------------------------------------------

    def test_random_requests_never_5xx(self):
        """~500 random requests from a fixed seed: no 5xx, errors are JSON, /health still 200."""
        rng = random.Random(20261129)
        bob = self.server.new_customer("Bob")
        ids = [bob.id, self.alice.id, str(uuid.uuid4()), "abc", "0", "..", "%00", "x" * 100, bob.id.upper(), "%20"]
        pids = ["1", "2", "20", "21", "0", "-1", "abc", "1.5", "9223372036854775807",
                "9223372036854775808", "99999999999999999999999", "%20", "1e3", "0001"]
        templates = ["/health", "/health/ready", "/auth/sign-up", "/auth/sign-in", "/auth/sign-out",
                     "/auth/refresh", "/customers", "/customers/{id}", "/customers/{id}/favorites",
                     "/customers/{id}/favorites/{pid}", "/nope", "/customers/{id}/nope", "/metrics"]
        queries = ["", "", "?page=2", "?per_page=1", "?page=0", "?per_page=abc", "?name=%25_",
                   "?email=%", "?created_from=garbage", "?created_to=2026-01-01T00:00:00Z", "?page=1&page=2"]
        methods = ["GET", "GET", "POST", "POST", "PATCH", "DELETE", "PUT", "OPTIONS", "HEAD"]
        values = ["", " ", "x", "a@b.co", unique_email(), "password-123", 0, -1, 1.5, None, True,
                  [], {}, ["x"], "é" * 300, "\u0000", "😀" * 10, 10 ** 30]
        fields = ["name", "email", "password", "refresh_token", "extra"]
        expired = mint_jwt({"sub": bob.id, "exp": 1})
        failures = []
        client = Client(self.server.port, timeout=15)
        for i in range(500):
            method = rng.choice(methods)
            template = rng.choice(templates)
            cid = rng.choice(ids)
            if method == "DELETE" and template == "/customers/{id}" and cid == bob.id:
                cid = str(uuid.uuid4())  # keep Bob alive so his token keeps reaching handlers
            path = template.replace("{id}", cid).replace("{pid}", rng.choice(pids)) + rng.choice(queries)
            headers = {}
            token = rng.choice([bob.token, bob.token, None, "garbage", expired, self.alice.token])
            if template == "/auth/sign-out" and token in (bob.token, self.alice.token):
                token = None  # a sign-out would revoke the token the rest of the burst uses
            if token:
                headers["Authorization"] = f"Bearer {token}"
            if rng.random() < 0.3:
                headers["x-aiqfome-api-key"] = rng.choice([API_KEY, "wrong", ""])
            if rng.random() < 0.2:
                headers["Accept-Encoding"] = "gzip"
            if rng.random() < 0.2:
                headers["x-correlation-id"] = rng.choice(["ok-id", "bad id", "x" * 80, ""])
            raw = None
            kind = rng.random()
            if method in ("POST", "PATCH", "PUT") and kind < 0.6:
                raw = json.dumps({f: rng.choice(values) for f in rng.sample(fields, rng.randint(0, 4))})
            elif method in ("POST", "PATCH", "PUT") and kind < 0.8:
                raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
            if raw is not None:
                headers["Content-Type"] = rng.choice(["application/json", "application/json",
                                                      "text/plain", "application/json; charset=latin1"])
            try:
                r = client.req(method, path, headers=headers, raw_body=raw)
            except Exception as e:  # noqa: BLE001 - a dropped connection is a finding too
                failures.append((i, method, path, repr(e)))
                client.close()
                client = Client(self.server.port, timeout=15)
                continue
            if r.status >= 500:
                failures.append((i, method, path, r.status, r.body[:200]))
            elif r.status >= 400 and method != "HEAD" and not isinstance(r.detail, str):
                failures.append((i, method, path, r.status, "error body without detail", r.body[:200]))
        client.close()
        self.assertEqual(failures, [])
        self.assertEqual(self.req("GET", "/health").status, 200)
        self.assertEqual(self.req("GET", f"/customers/{bob.id}", token=bob.token).status, 200)


class CorsRestrictedTest(ServerTestCase):
    """CORS: origins from `CORS_ALLOW_ORIGINS`."""

    with_stub = False
    server_env = {"CORS_ALLOW_ORIGINS": "https://a.example"}

    def test_allowed_origin_echoed(self):
        r = self.req("GET", "/health", headers={"Origin": "https://a.example"})
        self.assertEqual(r.headers.get("access-control-allow-origin"), "https://a.example")
        r = self.req("OPTIONS", "/customers", headers={"Origin": "https://a.example",
                                                       "Access-Control-Request-Method": "GET"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.headers.get("access-control-allow-origin"), "https://a.example")

    def test_other_origin_not_allowed(self):
        for origin in ("https://b.example", "https://a.example.evil", "http://a.example", "null"):
            with self.subTest(origin=origin):
                r = self.req("GET", "/health", headers={"Origin": origin})
                self.assertEqual(r.status, 200)
                self.assertIsNone(r.headers.get("access-control-allow-origin"), r.headers)
                r = self.req("OPTIONS", "/customers", headers={"Origin": origin,
                                                               "Access-Control-Request-Method": "GET"})
                self.assertLess(r.status, 500)
                self.assertIsNone(r.headers.get("access-control-allow-origin"), r.headers)


class GracefulShutdownTest(unittest.TestCase):
    """SIGTERM/SIGINT: stop accepting, finish in-flight requests and background refreshes
    (bounded by a drain timeout), close the database, exit 0."""

    def setUp(self):
        self.stub = Stub.start()
        self.server = Server(self.stub, env={"PRODUCT_CATALOG_WARMUP": "false"})
        self.server.start()

    def tearDown(self):
        self.server.kill9()
        self.stub.stop()
        self.server.cleanup()

    def test_in_flight_request_finishes(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig):
                if self.server.proc.poll() is not None:
                    self.stub.reset()
                    self.server.start()
                c = self.server.new_customer()
                pid = 3 if sig == signal.SIGTERM else 4
                self.stub.faults(latency_ms=1000)
                port = self.server.port
                with ThreadPoolExecutor(1) as ex:
                    fut = ex.submit(lambda: request_once(port, "POST", f"/customers/{c.id}/favorites/{pid}",
                                                             token=c.token))
                    # The add is now waiting on the (slow) catalog.
                    self.assertEqual(self.stub.wait_product_calls(pid, 1, 5), 1)
                    t0 = time.monotonic()
                    self.server.proc.send_signal(sig)
                    r = fut.result(timeout=20)
                self.assertEqual(r.status, 201, r)
                self.assertEqual(r.json["id"], pid)
                self.assertEqual(self.server.wait_exit(20), 0)
                self.assertLess(time.monotonic() - t0, 15)
                # The write that answered 201 is there after the restart.
                self.stub.faults(latency_ms=0)
                self.server.start()
                r = self.server.req("GET", f"/customers/{c.id}/favorites/{pid}", token=c.token)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.server.stop(sig), 0)

    def test_draining_answers_kept_alive_connection_with_close(self):
        """§9: "a draining instance answers with `Connection: close`, takes no new request on a
        kept-alive connection, and finishes those in flight" — a request arriving on a kept-alive
        connection just after SIGTERM is answered (not reset), with Connection: close. Several
        connections, SIGTERM sent right after their answers: the server must not close a
        connection whose previous answer it was still finishing when the signal came."""
        clients = [Client(self.server.port) for _ in range(8)]
        try:
            for c in clients:
                self.assertEqual(c.req("GET", "/health").status, 200)  # each connection stays open
            self.server.proc.send_signal(signal.SIGTERM)
            # Logged by the signal's handler right before it closes the listener and starts
            # draining; these connections stay open.
            self.assertIsNotNone(self.server.wait_log(lambda o: o.get("message") == "shutting down", 15),
                                 self.server.output_tail())
            for i, c in enumerate(clients):
                c._conn.request("GET", "/health")
                r = c._conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200, f"connection {i}")
                self.assertEqual((r.getheader("Connection") or "").lower(), "close", f"connection {i}")
            self.assertEqual(self.server.wait_exit(10), 0)
        finally:
            for c in clients:
                c.close()

    def test_idle_server_exits_promptly(self):
        idle = Client(self.server.port)
        idle.req("GET", "/health")  # leaves a keep-alive connection open
        try:
            t0 = time.monotonic()
            self.assertEqual(self.server.stop(signal.SIGTERM), 0)
            self.assertLess(time.monotonic() - t0, 5, "an idle keep-alive connection delayed shutdown")
        finally:
            idle.close()


if __name__ == "__main__":
    unittest.main()
