"""HTTP and operator conventions (CONTRACT §10): Date, HEAD, problem details, ETag /
If-None-Match, Link, W3C trace context, metrics exposition, the access log's route, start-up
failures as JSON lines, and the command line's version / help / check-config."""

import email.utils
import gzip
import json
import os
import re
import socket
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API_KEY, Server, ServerTestCase, _json_obj, free_port, parse_raw_response,  # noqa: E402
                     raw_request, server_for, unique_email)
from test_cli import base_env, project_version, run  # noqa: E402

LOOKUPS = "fav_product_cache_lookups_total"
TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def read_responses(sock: socket.socket, heads: list, timeout: float = 10) -> list:
    """Reads one response per entry of `heads` (True: the answer to a HEAD, whose headers say
    nothing about a body that must not be there) from a kept-alive socket, strictly by HTTP/1.1
    framing. Returns [(status, headers dict, body bytes)]; bytes a HEAD answer carried after its
    header make the next response unparsable, which is what the test catches."""
    buf = b""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < len(heads) and time.monotonic() < deadline:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").split("\r\n")
            if not re.match(r"^HTTP/1\.1 \d{3} ", head[0]):
                raise AssertionError(f"response {len(out) + 1} does not start with a status line: {buf[:120]!r}")
            headers = {}
            for line in head[1:]:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            status = int(head[0].split(" ")[1])
            n = 0 if heads[len(out)] or status in (204, 304) else int(headers.get("content-length", "0"))
            if len(buf) >= end + 4 + n:
                out.append((status, headers, buf[end + 4:end + 4 + n]))
                buf = buf[end + 4 + n:]
                continue
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    if len(out) < len(heads):
        raise AssertionError(f"only {len(out)} of {len(heads)} responses parsed; left over: {buf[:200]!r}")
    if buf:
        raise AssertionError(f"bytes after the last response: {buf[:200]!r}")
    return out


class HttpConventionsTest(ServerTestCase):
    # Short catalog back-off: the trace test lets every attempt of one lookup fail.
    server_env = {"PRODUCT_CATALOG_WARMUP": "false", "PRODUCT_CATALOG_BACKOFF_BASE_SECONDS": "0.05",
                  "PRODUCT_CATALOG_BACKOFF_CAP_SECONDS": "0.1"}

    @classmethod
    def prepare(cls):
        cls.alice = cls.server.new_customer("Alice")
        for pid in (1, 2, 3):
            r = cls.server.req("POST", f"/customers/{cls.alice.id}/favorites/{pid}", token=cls.alice.token)
            assert r.status == 201, r

    def get_routes(self):
        a = self.alice
        return [("/health", {}), ("/health/ready", {}), ("/openapi.json", {}), ("/docs", {}),
                ("/customers?per_page=2", {"api_key": API_KEY}), (f"/customers/{a.id}", {"token": a.token}),
                (f"/customers/{a.id}/favorites", {"token": a.token}),
                (f"/customers/{a.id}/favorites/1", {"token": a.token})]

    # -- Date ------------------------------------------------------------------------------

    def test_date_on_every_response(self):
        """§10: "Every response carries `Date`" (RFC 9110 IMF-fixdate, the server's clock)."""
        a = self.alice
        cases = [("GET", "/health", {}), ("GET", "/nope", {}), ("POST", "/health", {}),
                 ("GET", f"/customers/{a.id}", {}), ("DELETE", f"/customers/{a.id}/favorites/999", {"token": a.token}),
                 ("HEAD", "/health", {}), ("OPTIONS", "/customers", {"headers": {"Origin": "http://x.example"}}),
                 ("GET", "/metrics", {})]
        for method, path, kw in cases:
            with self.subTest(method=method, path=path):
                r = self.req(method, path, **kw)
                date = r.headers.get("date")
                self.assertIsNotNone(date, r.headers)
                self.assertRegex(date, r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
                self.assertLess(abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()), 120)
        r = raw_request(self.server.port, b"GET /health HTTP/1.1\r\n\r\n")  # 400: no Host
        self.assertEqual(r.status, 400, r)
        self.assertIn("date", r.headers)

    # -- HEAD ------------------------------------------------------------------------------

    def test_head_mirrors_get_on_every_get_route(self):
        """§10: "`HEAD` works on every `GET` route: the same status and headers, no body"."""
        volatile = {"date", "x-correlation-id"}
        for path, kw in self.get_routes():
            with self.subTest(path=path):
                g = self.req("GET", path, **kw)
                h = self.req("HEAD", path, **kw)
                self.assertEqual(h.status, g.status, (g, h))
                self.assertEqual(h.body, b"", h)
                gh = {k: v for k, v in g.headers._items if k not in volatile}
                hh = {k: v for k, v in h.headers._items if k not in volatile}
                self.assertEqual(hh, gh)
                self.assertEqual(h.headers.get("content-length"), str(len(g.body)), h.headers)
        # Errors too: the same status and headers as the GET would get.
        a = self.alice
        for path, kw in [(f"/customers/{a.id}", {}), (f"/customers/{a.id}/favorites/77", {"token": a.token}),
                         ("/customers", {})]:
            with self.subTest(path=path):
                g = self.req("GET", path, **kw)
                h = self.req("HEAD", path, **kw)
                self.assertEqual((h.status, h.body), (g.status, b""), h)
                self.assertEqual(h.headers.get("content-length"), str(len(g.body)))

    def test_head_listed_in_allow(self):
        """HEAD is a method of every GET route, so `Allow` lists it (405 and OPTIONS)."""
        r = self.req("POST", "/health")
        self.assertError(r, 405, "method_not_allowed")
        self.assertEqual({m.strip() for m in r.headers["allow"].split(",")}, {"GET", "HEAD"})
        r = self.req("PUT", f"/customers/{self.alice.id}")
        self.assertEqual({m.strip() for m in r.headers["allow"].split(",")}, {"GET", "HEAD", "PATCH", "DELETE"})
        r = self.req("OPTIONS", "/health")
        self.assertIn("HEAD", {m.strip() for m in r.headers["allow"].split(",")})
        r = self.req("HEAD", "/auth/sign-up")  # a POST-only route: 405, Allow without HEAD
        self.assertEqual(r.status, 405)
        self.assertEqual({m.strip() for m in r.headers["allow"].split(",")}, {"POST"})

    def test_no_head_answer_carries_a_body_on_a_kept_alive_connection(self):
        """§10: no answer to a HEAD carries a body, whatever its status (404 and 405 included):
        on one kept-alive connection, the response after each HEAD answer parses correctly."""
        a = self.alice
        reqs = [("HEAD", "/nope", ""), ("HEAD", "/auth/sign-up", ""), ("HEAD", f"/customers/{a.id}", ""),
                ("HEAD", "/health", ""), ("HEAD", f"/customers/{a.id}/favorites", f"Authorization: Bearer {a.token}\r\n"),
                ("GET", "/health", "")]
        data = b"".join(f"{m} {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode() for m, p, extra in reqs)
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(data)
            got = read_responses(s, [m == "HEAD" for m, _, _ in reqs])
        self.assertEqual([st for st, _, _ in got], [404, 405, 401, 200, 200, 200])
        self.assertEqual(got[-1][2], b'{"status":"healthy"}')
        for (st, headers, _), (m, p, _) in zip(got, reqs):
            if m == "HEAD" and st != 304:
                self.assertTrue(headers.get("content-length", "").isdigit(), (p, headers))

    # -- problem details -------------------------------------------------------------------

    def test_error_bodies_are_problem_details(self):
        """§10: error bodies keep `detail` (the code) and add `status` (a number) and `title` (a
        short English sentence); `application/problem+json` when `Accept` names it."""
        a = self.alice
        for accept, ctype in ((None, "application/json"), ("application/json", "application/json"),
                              ("application/problem+json", "application/problem+json"),
                              ("application/json, application/problem+json;q=0.9", "application/problem+json")):
            for method, path, kw, status, code in [
                    ("GET", "/nope", {}, 404, "not_found"), ("POST", "/health", {}, 405, "method_not_allowed"),
                    ("GET", f"/customers/{a.id}", {}, 401, "missing_token"),
                    ("GET", f"/customers/{a.id}/favorites?page=0", {"token": a.token}, 422, "invalid_pagination"),
                    ("POST", "/auth/sign-up", {"raw_body": "{"}, 422, "invalid_body")]:
                with self.subTest(accept=accept, path=path):
                    r = self.req(method, path, headers={"Accept": accept}, **kw)
                    self.assertError(r, status, code)
                    self.assertIsInstance(r.json["status"], int)
                    self.assertTrue(r.json["title"].endswith("."), r.json)
                    self.assertEqual(r.headers["content-type"].split(";")[0].strip(), ctype, r.headers)
        # The same title for the same code, a different one for another code.
        t1 = self.req("GET", "/nope").json["title"]
        t2 = self.req("GET", "/nope/again").json["title"]
        t3 = self.req("POST", "/health").json["title"]
        self.assertEqual(t1, t2)
        self.assertNotEqual(t1, t3)

    def test_connection_layer_errors_are_problem_details(self):
        """The same for answers of the connection layer (400: no Host)."""
        r = raw_request(self.server.port, b"GET /health HTTP/1.1\r\nAccept: application/problem+json\r\n\r\n")
        self.assertEqual((r.status, r.json["detail"], r.json["status"]), (400, "bad_request", 400), r)
        self.assertEqual(r.headers["content-type"].split(";")[0], "application/problem+json")

    # -- ETag, If-None-Match ---------------------------------------------------------------

    def conditional(self, path, token):
        r = self.req("GET", path, token=token)
        self.assertEqual(r.status, 200, r)
        tag = r.headers.get("etag")
        self.assertRegex(tag or "", r'^"[^"]+"$', r.headers)  # strong
        self.assertEqual(r.headers.get("cache-control"), "private, no-cache")
        return r, tag

    def assertNotModified(self, path, token, inm):
        r = self.req("GET", path, token=token, headers={"If-None-Match": inm})
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers.get("cache-control"), "private, no-cache")
        return r

    def test_etag_and_304_on_the_three_gets(self):
        """§10: the three GETs carry an `ETag` and `Cache-Control: private, no-cache`;
        `If-None-Match` naming the current tag answers 304 with no body."""
        c = self.server.new_customer("Etag")
        self.assertEqual(self.req("POST", f"/customers/{c.id}/favorites/4", token=c.token).status, 201)
        for path in (f"/customers/{c.id}", f"/customers/{c.id}/favorites", f"/customers/{c.id}/favorites/4"):
            with self.subTest(path=path):
                r, tag = self.conditional(path, c.token)
                self.assertEqual(self.conditional(path, c.token)[1], tag)  # stable while nothing changes
                n = self.assertNotModified(path, c.token, tag)
                self.assertEqual(n.headers.get("etag"), tag)
                self.assertNotModified(path, c.token, f'"nope", W/{tag}')  # weak comparison, lists
                self.assertNotModified(path, c.token, "*")
                r = self.req("GET", path, token=c.token, headers={"If-None-Match": '"something-else"'})
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers.get("etag"), tag)

    def test_any_change_to_the_body_changes_the_tag(self):
        """§10: "Any change to what the body shows changes the tag"."""
        c = self.server.new_customer("Before")
        me, lst = f"/customers/{c.id}", f"/customers/{c.id}/favorites"
        _, t_me = self.conditional(me, c.token)
        _, t_list = self.conditional(lst, c.token)
        self.assertEqual(self.req("PATCH", me, {"name": "After"}, token=c.token).status, 204)
        r, t_me2 = self.conditional(me, c.token)
        self.assertNotEqual(t_me2, t_me)
        self.assertEqual(self.req("GET", me, token=c.token, headers={"If-None-Match": t_me}).status, 200)
        self.assertEqual(self.req("POST", f"{lst}/5", token=c.token).status, 201)
        _, t_list2 = self.conditional(lst, c.token)
        self.assertNotEqual(t_list2, t_list)
        _, t_item = self.conditional(f"{lst}/5", c.token)
        self.assertEqual(self.req("DELETE", f"{lst}/5", token=c.token).status, 204)
        _, t_list3 = self.conditional(lst, c.token)
        self.assertNotEqual(t_list3, t_list2)
        self.assertEqual(self.req("GET", f"{lst}/5", token=c.token, headers={"If-None-Match": t_item}).status, 404)
        # Another page of the same list is another body.
        self.assertNotEqual(self.conditional(f"{lst}?per_page=1", c.token)[1], t_list3)

    def metric(self, name: str, labels: str = "") -> float:
        """One sample of a /metrics scrape (0 when absent); `labels` as written, e.g.
        'freshness="fresh"'."""
        key = f"{name}{{{labels}}} " if labels else f"{name} "
        for line in self.req("GET", "/metrics").body.decode().splitlines():
            if line.startswith(key):
                return float(line.split()[-1])
        return 0.0

    def stored_page(self, path, token):
        """Reads `path` (bounded) until it is answered from the read cache's stored bytes: the
        read cache counted a hit and the product cache was asked nothing (a page answered from
        its stored bytes is not rendered). On PostgreSQL the instance's own notification of a
        write may forget a first stored copy, hence the loop. Returns that answer."""
        fresh = 'freshness="fresh"'
        for _ in range(50):
            hits, lookups = self.metric("fav_read_cache_hits_total"), self.metric(LOOKUPS, fresh)
            r = self.req("GET", path, token=token)
            self.assertEqual(r.status, 200, r)
            if (self.metric("fav_read_cache_hits_total") > hits and self.metric(LOOKUPS, fresh) == lookups):
                return r
            time.sleep(0.05)
        self.fail(f"{path} was never answered from stored bytes")

    def test_a_stored_page_is_answered_as_stored_until_a_favoriting_changes_it(self):
        """§10: "`If-None-Match` naming the current tag answers 304 with no body. Any change to what
        the body shows changes the tag." A page answered from the read cache (README, "Rendered
        pages") is the same bytes under the same strong tag, a 304 for that tag without being
        rendered, and a favoriting through this instance changes both at once."""
        c = self.server.new_customer("Stored")
        lst = f"/customers/{c.id}/favorites"
        self.assertEqual(self.req("POST", f"{lst}/19", token=c.token).status, 201)
        first = self.stored_page(lst, c.token)
        tag = first.headers.get("etag")
        self.assertRegex(tag or "", r'^"[^"]+"$')
        for _ in range(3):
            again = self.req("GET", lst, token=c.token)
            self.assertEqual((again.status, again.body, again.headers.get("etag")), (200, first.body, tag))
            self.assertEqual(again.headers.get("link"), first.headers.get("link"))
        lookups = self.metric(LOOKUPS, 'freshness="fresh"')
        n = self.assertNotModified(lst, c.token, tag)
        self.assertEqual(n.headers.get("etag"), tag)
        self.assertEqual(self.metric(LOOKUPS, 'freshness="fresh"'), lookups, "a 304 from memory rendered the page")
        head = self.req("HEAD", lst, token=c.token)
        self.assertEqual((head.status, head.body, head.headers.get("etag")), (200, b"", tag))
        self.assertEqual(head.headers.get("content-length"), str(len(first.body)))
        gz = self.req("GET", lst, token=c.token, headers={"Accept-Encoding": "gzip"})
        self.assertEqual(gz.headers.get("etag"), tag)
        self.assertEqual(gzip.decompress(gz.body) if gz.headers.get("content-encoding") == "gzip" else gz.body,
                         first.body)

        self.assertEqual(self.req("POST", f"{lst}/20", token=c.token).status, 201)
        r = self.req("GET", lst, token=c.token, headers={"If-None-Match": tag})
        self.assertEqual(r.status, 200, "the old tag still matched after a favoriting")
        self.assertNotEqual(r.headers.get("etag"), tag)
        self.assertEqual([i["id"] for i in r.json["data"]], [20, 19])
        second = self.stored_page(lst, c.token)
        self.assertEqual(second.body, r.body)
        self.assertNotEqual(second.headers.get("etag"), tag)
        self.assertNotModified(lst, c.token, second.headers.get("etag"))
        self.assertEqual(self.req("DELETE", f"{lst}/20", token=c.token).status, 204)
        r = self.req("GET", lst, token=c.token, headers={"If-None-Match": second.headers.get("etag")})
        self.assertEqual(r.status, 200)
        self.assertEqual([i["id"] for i in r.json["data"]], [19])

    # -- Link ------------------------------------------------------------------------------

    def links(self, r):
        out = {}
        for part in r.headers.get("link", "").split(","):
            m = re.match(r'^\s*<([^>]*)>;\s*rel="([a-z]+)"\s*$', part)
            self.assertIsNotNone(m, r.headers.get("link"))
            out[m.group(2)] = m.group(1)
        return out

    def test_link_header_on_paged_answers(self):
        """§10: paged answers carry an RFC 8288 `Link` header with `first`, `last`, and `prev` /
        `next` where those pages exist (same query, other `page`)."""
        a = self.alice  # 3 favorites
        base = f"/customers/{a.id}/favorites"
        r = self.req("GET", f"{base}?per_page=1&page=2", token=a.token)
        self.assertEqual(self.links(r), {"first": f"{base}?per_page=1&page=1", "prev": f"{base}?per_page=1&page=1",
                                         "next": f"{base}?per_page=1&page=3", "last": f"{base}?per_page=1&page=3"})
        r = self.req("GET", f"{base}?per_page=2", token=a.token)
        self.assertEqual(self.links(r), {"first": f"{base}?per_page=2&page=1", "next": f"{base}?per_page=2&page=2",
                                         "last": f"{base}?per_page=2&page=2"})
        r = self.req("GET", f"{base}?page=1", token=a.token)
        self.assertEqual(self.links(r), {"first": f"{base}?page=1", "last": f"{base}?page=1"})
        # Every link, followed, answers a page of the same query.
        tag = "Link" + uuid.uuid4().hex[:8]
        for i in range(3):
            self.assertEqual(self.server.sign_up(f"{tag} {i}", unique_email(), "password-1234").status, 201)
        r = self.req("GET", f"/customers?name={tag.lower()}&per_page=2&page=2", api_key=API_KEY)
        links = self.links(r)
        self.assertEqual(set(links), {"first", "prev", "last"})
        self.assertEqual(links["first"], f"/customers?name={tag.lower()}&per_page=2&page=1")
        for rel, want_page in (("first", 1), ("prev", 1), ("last", 2)):
            f = self.req("GET", links[rel], api_key=API_KEY)
            self.assertEqual(f.json["pagination"]["page"], want_page)
            self.assertEqual(f.json["pagination"]["total_items"], 3)
        # Percent-encoding survives: a filter with a space and an ampersand.
        r = self.req("GET", "/customers?name=a%20%26b&per_page=5", api_key=API_KEY)
        self.assertEqual(self.links(r)["first"], "/customers?name=a%20%26b&per_page=5&page=1")

    # -- trace context ---------------------------------------------------------------------

    def request_logs(self, cid):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            lines = [o for o in self.server.log_objects() if o.get("correlation_id") == cid]
            if any(o.get("message") == "request" for o in lines):
                return lines
            time.sleep(0.05)
        self.fail(f"no access-log line for {cid}")

    def test_valid_traceparent_is_continued_in_logs_and_to_the_catalog(self):
        """§10: a valid incoming `traceparent` is continued: its trace id is in every log line of
        the request, and catalog calls carry a `traceparent` with that trace id and a new parent id."""
        c = self.server.new_customer("Trace")
        trace, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        cid = "trace-" + uuid.uuid4().hex[:8]
        self.stub.reset()
        self.stub.faults(fail_count=1, fail_status=500, only_ids=[6])  # one retry: two catalog calls
        r = self.req("POST", f"/customers/{c.id}/favorites/6", token=c.token,
                     headers={"traceparent": f"00-{trace}-{parent}-01", "x-correlation-id": cid})
        self.assertEqual(r.status, 201, r)
        lines = self.request_logs(cid)
        for o in lines:
            self.assertEqual(o.get("trace_id"), trace, o)
        sent = [x["traceparent"] for x in self.stub.recent() if x["path"] == "/products/6"]
        self.assertEqual(len(sent), 2, sent)  # the failed attempt and its retry, each its own parent id
        parents = set()
        for tp in sent:
            m = TRACEPARENT_RE.match(tp)
            self.assertIsNotNone(m, tp)
            self.assertEqual(m.group(1), trace)
            self.assertEqual(m.group(3), "01")  # the caller's trace flags (sampled) passed on
            self.assertNotEqual(m.group(2), parent)
            self.assertNotEqual(m.group(2), "0" * 16)
            parents.add(m.group(2))
        self.assertEqual(len(parents), 2, sent)
        # Every attempt failing: the catalog's warning line carries the trace id too.
        cid = "trace-" + uuid.uuid4().hex[:8]
        self.stub.reset()
        self.stub.faults(fail_count=100, fail_status=500, only_ids=[8])
        try:
            r = self.req("POST", f"/customers/{c.id}/favorites/8", token=c.token,
                         headers={"traceparent": f"00-{trace}-{parent}-01", "x-correlation-id": cid})
        finally:
            self.stub.reset()
        self.assertError(r, 503, "catalog_unavailable")
        lines = self.request_logs(cid)
        self.assertTrue(any(o.get("message") != "request" for o in lines), lines)  # the catalog's warning
        for o in lines:
            self.assertEqual(o.get("trace_id"), trace, o)

    def test_absent_or_invalid_traceparent_starts_a_trace(self):
        """§10: without a (valid) `traceparent` the service starts a trace: a fresh trace id."""
        c = self.server.new_customer("Fresh")
        invalid = [None, "garbage", "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "00-" + "a" * 32 + "-" + "0" * 16 + "-01",
                   "ff-" + "a" * 32 + "-" + "b" * 16 + "-01", "00-" + "A" * 32 + "-" + "b" * 16 + "-01",
                   "00-" + "a" * 31 + "-" + "b" * 16 + "-01"]
        seen = set()
        for i, tp in enumerate(invalid):
            with self.subTest(traceparent=tp):
                self.stub.reset()
                cid = f"fresh-{i}-" + uuid.uuid4().hex[:8]
                r = self.req("POST", f"/customers/{c.id}/favorites/{10 + i}", token=c.token,
                             headers={"traceparent": tp, "x-correlation-id": cid})
                self.assertEqual(r.status, 201, r)
                lines = self.request_logs(cid)
                ids = {o.get("trace_id") for o in lines}
                self.assertEqual(len(ids), 1, lines)
                trace = ids.pop()
                self.assertRegex(trace or "", r"^[0-9a-f]{32}$")
                self.assertNotEqual(trace, "0" * 32)
                if tp:
                    self.assertNotIn(trace, tp)
                seen.add(trace)
                sent = [x["traceparent"] for x in self.stub.recent() if x["path"] == f"/products/{10 + i}"]
                self.assertTrue(sent, self.stub.calls())
                self.assertEqual(TRACEPARENT_RE.match(sent[0]).group(1), trace)
        self.assertEqual(len(seen), len(invalid))  # fresh each time

    def test_cors_allows_traceparent(self):
        """§10: "`traceparent` is allowed in CORS requests"."""
        r = self.req("OPTIONS", "/customers", headers={"Origin": "http://app.example",
                                                       "Access-Control-Request-Method": "GET",
                                                       "Access-Control-Request-Headers": "traceparent"})
        self.assertEqual(r.status, 204)
        allowed = {h.strip().lower() for h in r.headers.get("access-control-allow-headers", "").split(",")}
        self.assertIn("traceparent", allowed)

    # -- access log ------------------------------------------------------------------------

    def test_access_log_has_the_route_template(self):
        """The access line records `route` (the template) beside the raw path."""
        a = self.alice
        cid = "route-" + uuid.uuid4().hex[:8]
        self.req("GET", f"/customers/{a.id}/favorites/2?x=1", token=a.token, headers={"x-correlation-id": cid})
        line = next(o for o in self.request_logs(cid) if o.get("message") == "request")
        self.assertEqual(line.get("route"), "/customers/{id}/favorites/{product_id}", line)
        self.assertEqual(line.get("path"), f"/customers/{a.id}/favorites/2", line)
        cid = "route-" + uuid.uuid4().hex[:8]
        self.req("GET", "/no/such/thing", headers={"x-correlation-id": cid})
        line = next(o for o in self.request_logs(cid) if o.get("message") == "request")
        self.assertEqual(line.get("route"), "", line)  # no template matched
        self.assertEqual(line.get("path"), "/no/such/thing", line)

    # -- metrics ---------------------------------------------------------------------------

    def parse_metrics(self, text):
        """A strict reading of the Prometheus text format: {family: {"help", "type", "samples"}}."""
        fams = {}
        sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? '
                               r'(-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name, _, help_ = line[7:].partition(" ")
                fams.setdefault(name, {"samples": []})["help"] = help_
            elif line.startswith("# TYPE "):
                name, _, typ = line[7:].partition(" ")
                self.assertIn(typ, ("counter", "gauge", "histogram", "summary", "untyped"), line)
                fams.setdefault(name, {"samples": []})["type"] = typ
            else:
                m = sample_re.match(line)
                self.assertIsNotNone(m, f"not a sample line: {line!r}")
                name = m.group(1)
                fam = name
                for suffix in ("_bucket", "_sum", "_count"):
                    if name.endswith(suffix) and name[: -len(suffix)] in fams:
                        fam = name[: -len(suffix)]
                self.assertIn(fam, fams, f"sample before its HELP/TYPE: {line!r}")
                labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
                fams[fam]["samples"].append((name, labels, float(m.group(3))))
        return fams

    def test_metrics_exposition(self):
        """§10: readable bucket bounds reaching at least 10 s, the standard process
        series, fav_build_info{version}, a real HELP on every series, route templates only."""
        a = self.alice
        self.req("GET", f"/customers/{a.id}", token=a.token)
        self.req("GET", f"/customers/{uuid.uuid4()}", token=a.token)
        self.req("GET", "/no/such/" + uuid.uuid4().hex)
        r = self.req("GET", "/metrics")
        self.assertEqual(r.status, 200)
        text = r.body.decode()
        fams = self.parse_metrics(text)
        for name, fam in fams.items():
            self.assertTrue(fam.get("help") and fam["help"] != "Current value.", name)
            self.assertIn("type", fam, name)
        # Bucket bounds: shortest exact decimals, up to at least 10 s.
        les = {lab["le"] for n, lab, _ in fams["fav_http_request_duration_seconds"]["samples"] if n.endswith("_bucket")}
        for le in les:
            self.assertRegex(le, r"^(\+Inf|\d+(\.\d{1,4})?)$", le)
        self.assertIn("0.0005", les)
        self.assertTrue(any(le != "+Inf" and float(le) >= 10 for le in les), les)
        # process_* from /proc/self.
        pid = self.server.proc.pid
        value = {name: fam["samples"][0][2] for name, fam in fams.items() if fam["samples"]}
        with open(f"/proc/{pid}/status") as f:
            rss_kb = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))
        self.assertLess(abs(value["process_resident_memory_bytes"] - rss_kb * 1024), 64 * 1024 * 1024)
        self.assertGreater(value["process_open_fds"], 3)
        self.assertLessEqual(value["process_open_fds"], len(os.listdir(f"/proc/{pid}/fd")) + 16)
        self.assertGreaterEqual(value["process_cpu_seconds_total"], 0)
        self.assertEqual(fams["process_cpu_seconds_total"]["type"], "counter")
        started = value["process_start_time_seconds"]
        self.assertLess(started, time.time() + 5)
        self.assertGreater(started, time.time() - 3600)
        self.assertEqual(fams["fav_build_info"]["samples"], [("fav_build_info", {"version": project_version()}, 1.0)])
        # Route labels are templates: no customer id, no unknown path.
        routes = {lab.get("route") for fam in fams.values() for _, lab, _ in fam["samples"] if "route" in lab}
        self.assertIn("/customers/{id}", routes)
        for route in routes:
            self.assertNotRegex(route, r"[0-9a-f]{8}-[0-9a-f]{4}", routes)
            self.assertNotIn("no/such", route)


class HeadOnRefusalsTest(ServerTestCase):
    """§10: "`HEAD` works on every `GET` route: the same status and headers, no body" — also when
    the answer comes before any route runs: from the rate limiter (§8's 429) or from the
    connection layer (400 for a request without Host). Each is sent on a kept-alive socket with
    a request after it, so a body after a HEAD answer would make the next response unparsable."""

    with_stub = False
    # Two tokens, one every 100 s: the third request of the test is refused.
    server_env = {"RATE_LIMIT_BURST": "2", "RATE_LIMIT_PER_SECOND": "0.01"}

    def test_rate_limited_head_has_no_body(self):
        reqs = [("GET", "/nope"), ("GET", "/nope"), ("HEAD", "/nope"), ("GET", "/nope"), ("GET", "/health")]
        data = b"".join(f"{m} {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for m, p in reqs)
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(data)
            got = read_responses(s, [m == "HEAD" for m, _ in reqs])
        self.assertEqual([st for st, _, _ in got], [404, 404, 429, 429, 200])
        (_, head, head_body), (_, get, get_body) = got[2], got[3]
        self.assertEqual(head_body, b"")
        self.assertEqual(json.loads(get_body)["detail"], "rate_limited")
        # The same headers as the GET's 429: the length of the body it would carry, its type,
        # Retry-After and the RateLimit fields (values may move by a second between the two).
        self.assertEqual(head.get("content-length"), str(len(get_body)), head)
        for name in ("content-type", "retry-after", "ratelimit-limit", "ratelimit-remaining"):
            with self.subTest(header=name):
                self.assertIn(name, head)
                self.assertIn(name, get)
        self.assertEqual(head["content-type"], get["content-type"])
        self.assertEqual(got[4][2], b'{"status":"healthy"}')

    def test_bad_request_to_head_has_no_body(self):
        """A HEAD without Host is a 400 from the connection layer (RFC 9112 §3.2): no body
        follows its header, and nothing else comes on the connection."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(b"HEAD /health HTTP/1.1\r\n\r\n")
            (status, headers, body), = read_responses(s, [True])
            self.assertEqual((status, body), (400, b""))
            self.assertTrue(headers.get("content-length", "").isdigit(), headers)
            # Whatever else arrives before the server closes (or within 2 s) would be a body.
            rest = b""
            s.settimeout(2)
            try:
                while chunk := s.recv(65536):
                    rest += chunk
            except (socket.timeout, ConnectionResetError):
                pass
            self.assertEqual(rest, b"")
        # The same request as GET does carry the problem body, so the HEAD answer above is not
        # empty by accident.
        r = raw_request(self.server.port, b"GET /health HTTP/1.1\r\n\r\n")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.headers.get("content-length"), headers["content-length"])
        self.assertGreater(len(r.body), 0)


class StartupAndCliTest(unittest.TestCase):
    """Start-up failures are one JSON line each, naming the variable or
    the cause, without source paths; check-config reports every bad variable and warns about
    unknown ones that look like ours; `version`, `help` and `-V` exit 0."""

    def refused(self, env):
        s = server_for(self, env=env)
        s.launch()
        rc = s.wait_exit(20)
        if rc is None:
            self.fail(f"still running with {env}")
        self.assertNotEqual(rc, 0)
        return [l for l in s.out.lines + s.err.lines if l.strip()]

    def assertJsonLines(self, lines):
        objs = []
        for l in lines:
            o = _json_obj(l)
            self.assertIsNotNone(o, f"not a JSON line: {l!r}")
            self.assertNotRegex(l, r"/usr/include|\.hpp|\.ipp|boost/", l)
            objs.append(o)
        return objs

    def test_port_in_use_is_one_json_line_naming_the_cause(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen(1)
            port = busy.getsockname()[1]
            lines = self.refused({"API_PORT": str(port)})
        objs = self.assertJsonLines(lines)
        fatal = [o for o in objs if o.get("level") == "critical"]
        self.assertEqual(len(fatal), 1, lines)
        self.assertIn("in use", fatal[0].get("error", "").lower(), fatal[0])
        self.assertEqual(fatal[0].get("port"), port, fatal[0])

    def test_every_bad_variable_is_one_json_line(self):
        lines = self.refused({"API_PORT": "abc", "LOG_LEVEL": "loud", "DATABASE_POOL_SIZE": "0"})
        objs = self.assertJsonLines(lines)
        self.assertEqual(sorted(o.get("variable") for o in objs if o.get("level") == "critical"),
                         ["API_PORT", "DATABASE_POOL_SIZE", "LOG_LEVEL"], lines)
        for o in objs:
            if o.get("variable"):
                self.assertIn(o["variable"], o.get("error", ""), o)

    def test_unknown_variable_is_warned_at_start(self):
        s = server_for(self, env={"API_PROT": "9999"})
        s.start()
        warn = s.wait_log(lambda o: o.get("variable") == "API_PROT", 5)
        self.assertIsNotNone(warn, s.output_tail())
        self.assertEqual(warn.get("level"), "warning")
        self.assertEqual(warn.get("did_you_mean"), "API_PORT")
        self.assertEqual(s.stop(), 0)

    def test_check_config_reports_every_bad_variable(self):
        r = run(["check-config"], env=base_env(API_PORT="abc", LOG_LEVEL="loud", ENV="staging"), timeout=10)
        self.assertEqual(r.rc, 2, r)
        errs = r.err_lines()
        self.assertEqual(len(errs), 3, r)
        for name in ("API_PORT", "ENV", "LOG_LEVEL"):
            self.assertEqual(len([l for l in errs if name + "=" in l]), 1, r)

    def test_check_config_warns_about_lookalike_variables(self):
        r = run(["check-config"], env=base_env(API_PROT="9000", DATABASE_URLL="x", UNRELATED_THING="1"), timeout=10)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(len(r.out.strip().splitlines()), 1, r)
        warnings = r.err_lines()
        self.assertEqual(len(warnings), 2, r)
        self.assertTrue(any("API_PROT" in w and "API_PORT" in w for w in warnings), r)
        self.assertTrue(any("DATABASE_URLL" in w and "DATABASE_URL" in w for w in warnings), r)

    def test_version_help_and_dash_v(self):
        for args in (["version"], ["-V"], ["--version"]):
            with self.subTest(args=args):
                r = run(args, env=base_env(API_PORT="abc"))
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(r.out.strip(), project_version(), r)
        r = run(["help"], env=base_env(API_PORT="abc"))
        self.assertEqual(r.rc, 0, r)
        for sub in ("serve", "migrate", "check-config", "healthcheck", "version", "help"):
            self.assertRegex(r.out, rf"(?m)^\s+{re.escape(sub)}\s", r)


if __name__ == "__main__":
    unittest.main()
