"""CONTRACT §8 "Cross-site writes" against the real binary, on both backends:

"A POST, PATCH or DELETE authenticated by the `access_token` cookie alone (no `Authorization`
header) whose `Origin` — or, without one, the origin of its `Referer` — is neither the service's
own origin (its scheme and `Host`, as the trusted proxy forwarded them) nor listed in
`CORS_ALLOW_ORIGINS` (`*` lists none here) answers 403 `cross_site_request` and changes nothing.
Requests with neither header (a non-browser client), with a Bearer token, or with the API key are
not affected."

Each refused write is followed by a read of the state it would have changed."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import API_KEY, ServerTestCase, start_server  # noqa: E402

EVIL = "https://evil.example"
LISTED = "https://app.example"
PRODUCT, OTHER_PRODUCT = 1, 2


class CrossSiteWritesTest(ServerTestCase):
    server_env = {"CORS_ALLOW_ORIGINS": f"{LISTED}, https://other.example"}

    def assertCrossSite(self, r, what):
        self.assertEqual((r.status, r.detail), (403, "cross_site_request"), f"{what}: {r!r}")

    def cookie(self, c, method, path, origin=None, referer=None, **kw):
        headers = dict(kw.pop("headers", {}) or {})
        if origin is not None:
            headers["Origin"] = origin
        if referer is not None:
            headers["Referer"] = referer
        return self.server.req(method, path, cookie_token=c.token, headers=headers, **kw)

    def favorites(self, c):
        r = self.server.req("GET", f"/customers/{c.id}/favorites", token=c.token)
        self.assertEqual(r.status, 200, r)
        return sorted(item["id"] for item in r.json["data"])

    def name_of(self, c):
        r = self.server.req("GET", f"/customers/{c.id}", token=c.token)
        self.assertEqual(r.status, 200, r)
        return r.json["name"]

    def own_origin(self):
        return f"http://127.0.0.1:{self.server.port}"

    def test_cookie_writes_from_a_foreign_origin_are_refused_and_change_nothing(self):
        c = self.server.new_customer("Alice")
        fav = f"/customers/{c.id}/favorites/{PRODUCT}"
        # Favoriting, the way a plain HTML form or fetch() of another site can send it.
        for body_type, body in ((None, None), ("application/x-www-form-urlencoded", "a=b"),
                                ("text/plain", '{"x": 1}'), ("multipart/form-data; boundary=x", "--x--")):
            headers = {"Content-Type": body_type} if body_type else {}
            r = self.cookie(c, "POST", fav, origin=EVIL, headers=headers, raw_body=body)
            self.assertCrossSite(r, f"favoriting with {body_type}")
        self.assertEqual(self.favorites(c), [], "a refused favoriting added a favorite")

        self.assertCrossSite(self.cookie(c, "PATCH", f"/customers/{c.id}", origin=EVIL,
                                         raw_body='{"name": "Mallory"}'), "PATCH without Content-Type")
        self.assertCrossSite(self.cookie(c, "PATCH", f"/customers/{c.id}", origin=EVIL, body={"name": "Mallory"}),
                             "PATCH with JSON")
        self.assertEqual(self.name_of(c), "Alice")

        # Removing a favorite and deleting the customer.
        self.assertEqual(self.server.req("POST", fav, token=c.token).status, 201)
        self.assertCrossSite(self.cookie(c, "DELETE", fav, origin=EVIL), "DELETE favorite")
        self.assertEqual(self.favorites(c), [PRODUCT], "a refused DELETE removed the favorite")
        self.assertCrossSite(self.cookie(c, "DELETE", f"/customers/{c.id}", origin=EVIL), "DELETE customer")
        self.assertEqual(self.name_of(c), "Alice", "a refused DELETE deleted the customer")

        # Sign-out with the cookie is a write too: the token keeps working.
        self.assertCrossSite(self.cookie(c, "POST", "/auth/sign-out", origin=EVIL), "sign-out")
        r = self.cookie(c, "GET", f"/customers/{c.id}")
        self.assertEqual(r.status, 200, "a refused sign-out revoked the token")

    def test_a_foreign_referer_without_origin_is_refused(self):
        c = self.server.new_customer("Bob")
        fav = f"/customers/{c.id}/favorites/{PRODUCT}"
        for referer in (f"{EVIL}/page?x=1", "https://127.0.0.1.evil.example/", "not a url"):
            self.assertCrossSite(self.cookie(c, "POST", fav, referer=referer), f"Referer {referer}")
        self.assertCrossSite(self.cookie(c, "DELETE", f"/customers/{c.id}", referer=f"{EVIL}/"), "DELETE customer")
        self.assertCrossSite(self.cookie(c, "POST", "/auth/sign-out", referer=f"{EVIL}/x"), "sign-out")
        self.assertEqual(self.favorites(c), [])
        self.assertEqual(self.name_of(c), "Bob")

    def test_origin_null_is_cross_site(self):
        c = self.server.new_customer()
        self.assertCrossSite(self.cookie(c, "POST", f"/customers/{c.id}/favorites/{PRODUCT}", origin="null"),
                             "Origin: null")
        self.assertEqual(self.favorites(c), [])

    def test_same_origin_and_listed_origins_are_served(self):
        c = self.server.new_customer()
        own = self.own_origin()
        r = self.cookie(c, "POST", f"/customers/{c.id}/favorites/{PRODUCT}", origin=own)
        self.assertEqual(r.status, 201, f"same origin: {r!r}")
        r = self.cookie(c, "POST", f"/customers/{c.id}/favorites/{OTHER_PRODUCT}", referer=f"{own}/docs")
        self.assertEqual(r.status, 201, f"same-origin Referer: {r!r}")
        r = self.cookie(c, "DELETE", f"/customers/{c.id}/favorites/{PRODUCT}", origin=LISTED)
        self.assertEqual(r.status, 204, f"listed CORS origin: {r!r}")
        r = self.cookie(c, "PATCH", f"/customers/{c.id}", origin=LISTED, body={"name": "Carol"})
        self.assertEqual(r.status, 204, f"listed CORS origin: {r!r}")
        self.assertEqual(self.name_of(c), "Carol")
        self.assertEqual(self.cookie(c, "POST", "/auth/sign-out", origin=own).status, 204)
        self.assertEqual(self.cookie(c, "GET", f"/customers/{c.id}").status, 401, "signed out")

    def test_bearer_api_key_and_header_less_clients_are_served(self):
        c = self.server.new_customer()
        # A Bearer token is never attached by another site's page.
        r = self.server.req("POST", f"/customers/{c.id}/favorites/{PRODUCT}", token=c.token,
                            headers={"Origin": EVIL})
        self.assertEqual(r.status, 201, r)
        # Neither Origin nor Referer: a non-browser client with the cookie.
        r = self.cookie(c, "POST", f"/customers/{c.id}/favorites/{OTHER_PRODUCT}")
        self.assertEqual(r.status, 201, r)
        # Reads are not writes.
        self.assertEqual(self.cookie(c, "GET", f"/customers/{c.id}/favorites", origin=EVIL).status, 200)
        # The API key's routes, and sign-in (no cookie authenticates it), from anywhere.
        r = self.server.req("GET", "/customers", api_key=API_KEY, headers={"Origin": EVIL})
        self.assertEqual(r.status, 200, r)
        r = self.server.req("POST", "/auth/sign-in", {"email": c.email, "password": c.password},
                            headers={"Origin": EVIL})
        self.assertEqual(r.status, 200, r)
        # Bearer sign-out from anywhere.
        r = self.server.req("POST", "/auth/sign-out", token=c.token, headers={"Origin": EVIL})
        self.assertEqual(r.status, 204, r)

    def test_forwarded_host_counts_only_from_a_trusted_proxy(self):
        """Here no proxy is trusted: X-Forwarded-Host cannot make a foreign origin our own."""
        c = self.server.new_customer()
        r = self.cookie(c, "POST", f"/customers/{c.id}/favorites/{PRODUCT}", origin=EVIL,
                        headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
        self.assertCrossSite(r, "forwarded host from an untrusted peer")
        self.assertEqual(self.favorites(c), [])


class CrossSiteBehindTrustedProxyTest(unittest.TestCase):
    """"its scheme and `Host`, as the trusted proxy forwarded them": with 127.0.0.1 trusted, the
    service's own origin is X-Forwarded-Proto :// X-Forwarded-Host."""

    def test_forwarded_origin_is_own(self):
        server = start_server(None, {"TRUSTED_PROXIES": "127.0.0.1/32"})
        try:
            c = server.new_customer("Dana")
            fwd = {"X-Forwarded-Host": "api.example", "X-Forwarded-Proto": "https", "X-Forwarded-For": "10.9.8.7"}

            def sign_out(origin):
                return server.req("POST", "/auth/sign-out", cookie_token=c.token, headers={**fwd, "Origin": origin})

            def patch(origin, name):
                return server.req("PATCH", f"/customers/{c.id}", body={"name": name}, cookie_token=c.token,
                                  headers={**fwd, "Origin": origin})

            r = patch("http://api.example", "Wrong scheme")
            self.assertEqual((r.status, r.detail), (403, "cross_site_request"), r)
            r = patch(f"http://127.0.0.1:{server.port}", "Not the forwarded host")
            self.assertEqual((r.status, r.detail), (403, "cross_site_request"), r)
            r = patch("https://api.example", "Dana B")
            self.assertEqual(r.status, 204, r)
            r = patch("https://API.example:443", "Dana C")  # the same origin, written otherwise
            self.assertEqual(r.status, 204, r)
            self.assertEqual(sign_out(EVIL).status, 403)
            self.assertEqual(server.req("GET", f"/customers/{c.id}", token=c.token).json["name"], "Dana C")
            self.assertEqual(sign_out("https://api.example").status, 204)
        finally:
            server.stop()
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
