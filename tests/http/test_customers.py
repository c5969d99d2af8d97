"""Customers (CONTRACT §2 "Private API key" and "A customer may act only on itself",
§3 "Customers")."""

import datetime
import math
import os
import sys
import time
import unittest
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import API_KEY, ServerTestCase, TIMESTAMP_RE, mint_jwt, unique_email, wait_until  # noqa: E402

CUSTOMER_KEYS = {"id", "name", "email", "created_at", "updated_at"}


def q(**params) -> str:
    return "?" + urllib.parse.urlencode(params)


def parse_time(s: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def clock_past(stamp: str) -> None:
    """Waits until the clock reads past `stamp` by a whole millisecond (the timestamps'
    resolution), so a later write's time cannot equal it."""
    at = parse_time(stamp) + datetime.timedelta(milliseconds=1)
    wait_until(lambda: datetime.datetime.now(datetime.timezone.utc) > at, 5, f"the clock to pass {stamp}",
               step=0.001)


class CustomersListTest(ServerTestCase):
    """`GET /customers` (API key) → paged list of `{"id", "name", "email", "created_at",
    "updated_at"}` ordered by `created_at, id`. Filters `name`, `email` (case-insensitive
    substring), `created_from` / `created_to` (RFC 3339); a bad filter value: 422
    `invalid_filter`."""

    with_stub = False

    @classmethod
    def prepare(cls):
        # Five customers sharing a marker, created one after the other.
        cls.marker = uuid.uuid4().hex[:10]
        cls.group = []
        for i in range(5):
            email = f"g{i}-{cls.marker}@example.com"
            r = cls.server.sign_up(f"Group{i} {cls.marker.upper()}", email, "password-1234")
            assert r.status == 201, r
            cls.group.append(r.json["id"])

    def list(self, **params):
        return self.req("GET", "/customers" + q(**params), api_key=API_KEY)

    def test_missing_api_key(self):
        """Header `x-aiqfome-api-key` ... 401 `missing_api_key` / `invalid_api_key`."""
        self.assertError(self.req("GET", "/customers"), 401, "missing_api_key")
        c = self.server.new_customer()  # a customer token is not the API key
        self.assertError(self.req("GET", "/customers", token=c.token), 401, "missing_api_key")

    def test_invalid_api_key(self):
        for key in ["wrong", API_KEY[:-1], API_KEY + "x", API_KEY.upper(), " " + API_KEY + "x", "x" * 200]:
            with self.subTest(key=key):
                self.assertError(self.req("GET", "/customers", api_key=key), 401, "invalid_api_key")

    def test_api_key_checked_before_pagination(self):
        self.assertError(self.req("GET", "/customers?page=0"), 401, "missing_api_key")

    def test_items_have_exactly_the_public_fields(self):
        r = self.list(per_page=200)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"data", "pagination"})
        self.assertGreaterEqual(len(r.json["data"]), 5)
        for item in r.json["data"]:
            self.assertEqual(set(item), CUSTOMER_KEYS)  # never password_hash
            self.assertRegex(item["created_at"], TIMESTAMP_RE)
        self.assertNotIn(b"argon2", r.body)

    def test_ordered_by_created_at_then_id(self):
        r = self.list(per_page=200)
        items = r.json["data"]
        keys = [(parse_time(i["created_at"]), i["id"]) for i in items]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual([i["id"] for i in self.list(name=self.marker).json["data"]], self.group)

    def test_pagination_totals_and_no_overlap(self):
        """`total_pages = ceil(total_items / per_page)` (0 when empty)...pages never overlap or skip."""
        seen = []
        for page in (1, 2, 3):
            r = self.list(name=self.marker, per_page=2, page=page)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json["pagination"], {"page": page, "per_page": 2, "total_pages": 3, "total_items": 5})
            seen += [i["id"] for i in r.json["data"]]
        self.assertEqual(seen, self.group)
        r = self.list(name=self.marker, per_page=2, page=4)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["data"], [])
        self.assertEqual(r.json["pagination"]["total_items"], 5)
        # Whole table: totals agree with what the pages hold.
        total = self.list(per_page=1).json["pagination"]["total_items"]
        r = self.list(per_page=3)
        self.assertEqual(r.json["pagination"]["total_pages"], math.ceil(total / 3))

    def test_empty_result(self):
        r = self.list(name="no-such-name-" + uuid.uuid4().hex)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["data"], [])
        self.assertEqual(r.json["pagination"], {"page": 1, "per_page": 20, "total_pages": 0, "total_items": 0})

    def test_filter_name_case_insensitive_substring(self):
        r = self.list(name=self.marker.upper())
        self.assertEqual([i["id"] for i in r.json["data"]], self.group)
        r = self.list(name=f"roup3 {self.marker}".lower())
        self.assertEqual([i["id"] for i in r.json["data"]], [self.group[3]])

    def test_filter_email_case_insensitive_substring(self):
        r = self.list(email=f"G2-{self.marker}@EXAMPLE")
        self.assertEqual([i["id"] for i in r.json["data"]], [self.group[2]])
        r = self.list(email=self.marker)
        self.assertEqual(len(r.json["data"]), 5)

    def test_filters_combine(self):
        r = self.list(name=self.marker, email="g1-")
        self.assertEqual([i["id"] for i in r.json["data"]], [self.group[1]])

    def test_like_wildcards_are_literal(self):
        """`%` and `_` in a filter match themselves (a substring, not a LIKE pattern)."""
        m = uuid.uuid4().hex[:10]
        ids = {}
        for label, name, email in [("pct", f"100% {m}", f"a_{m}@example.com"),
                                   ("x", f"100x {m}", f"ab{m}@example.com"),
                                   ("bs", f"back\\slash {m}", f"c{m}@example.com")]:
            r = self.server.sign_up(name, email, "password-1234")
            self.assertEqual(r.status, 201)
            ids[label] = r.json["id"]
        self.assertEqual([i["id"] for i in self.list(name=f"% {m}").json["data"]], [ids["pct"]])
        self.assertEqual([i["id"] for i in self.list(email=f"_{m}").json["data"]], [ids["pct"]])
        self.assertEqual([i["id"] for i in self.list(name=f"0_ {m}").json["data"]], [])
        self.assertEqual([i["id"] for i in self.list(name=f"\\slash {m}").json["data"]], [ids["bs"]])
        self.assertEqual(self.list(name="%").status, 200)

    def test_created_range_inclusive(self):
        items = self.list(name=self.marker).json["data"]
        c1, c3 = items[1]["created_at"], items[3]["created_at"]
        r = self.list(name=self.marker, created_from=c1, created_to=c3)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([i["id"] for i in r.json["data"]], self.group[1:4])
        r = self.list(name=self.marker, created_from=c3)
        self.assertEqual([i["id"] for i in r.json["data"]], self.group[3:])
        r = self.list(name=self.marker, created_to=c1)
        self.assertEqual([i["id"] for i in r.json["data"]], self.group[:2])
        # The same instant written with another offset.
        t1 = parse_time(c1).astimezone(datetime.timezone(datetime.timedelta(hours=-3)))
        r = self.list(name=self.marker, created_from=t1.isoformat(timespec="milliseconds"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual([i["id"] for i in r.json["data"]], self.group[1:])
        # Empty window.
        r = self.list(name=self.marker, created_from=c3, created_to=c1)
        self.assertEqual(r.json["pagination"]["total_items"], 0)

    def test_bad_filter_422(self):
        for params in [{"created_from": "yesterday"}, {"created_to": "2026-13-01T00:00:00Z"},
                       {"created_from": "2026-01-01T00:00:00"},  # RFC 3339 needs the offset
                       {"created_to": "1700000000"}, {"created_from": "2026-02-30T00:00:00Z"}]:
            with self.subTest(params=params):
                self.assertError(self.list(**params), 422, "invalid_filter")

    def test_bad_pagination_422(self):
        for params in [{"page": "0"}, {"per_page": "201"}, {"page": "x", "name": self.marker}]:
            with self.subTest(params=params):
                self.assertError(self.list(**params), 422, "invalid_pagination")


class CustomerSelfTest(ServerTestCase):
    """`GET/PATCH/DELETE /customers/{id}` (token); a customer may act only on itself."""

    with_stub = True
    server_env = {"PRODUCT_CATALOG_WARMUP": "false"}

    @classmethod
    def prepare(cls):
        cls.alice = cls.server.new_customer("Alice")
        cls.bob = cls.server.new_customer("Bob")

    def get(self, c, cid=None):
        return self.req("GET", f"/customers/{cid or c.id}", token=c.token)

    def patch(self, c, body, cid=None):
        return self.req("PATCH", f"/customers/{cid or c.id}", body, token=c.token)

    # -- GET ----------------------------------------------------------------------------------

    def test_get_own(self):
        """`GET /customers/{id}` (token) → 200 the customer object above."""
        r = self.get(self.alice)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), CUSTOMER_KEYS)
        self.assertEqual(r.json["id"], self.alice.id)
        self.assertEqual(r.json["email"], self.alice.email)

    def test_other_or_malformed_id_403(self):
        """any `/customers/{id}...` route where `{id}` is not exactly the token's `sub` —
        malformed ids included — answers 403 `forbidden` (without revealing whether `{id}` exists)."""
        ids = [self.bob.id, str(uuid.uuid4()), "abc", "123", self.alice.id.upper(), self.alice.id + "0",
               self.alice.id[:-1], "00000000-0000-0000-0000-000000000000", "%20" + self.alice.id]
        for cid in ids:
            for method, suffix, body in [("GET", "", None), ("PATCH", "", {"name": "Evil"}), ("DELETE", "", None),
                                         ("GET", "/favorites", None), ("POST", "/favorites/1", None),
                                         ("GET", "/favorites/1", None), ("DELETE", "/favorites/1", None)]:
                with self.subTest(cid=cid, method=method, suffix=suffix):
                    r = self.req(method, f"/customers/{cid}{suffix}", body, token=self.alice.token)
                    self.assertError(r, 403, "forbidden")
        self.assertEqual(self.get(self.bob).json["name"], "Bob")

    def test_auth_before_403(self):
        """(checked after authentication...)"""
        for cid in (self.bob.id, str(uuid.uuid4()), "abc"):
            with self.subTest(cid=cid):
                self.assertError(self.req("GET", f"/customers/{cid}"), 401, "missing_token")
                self.assertError(self.req("GET", f"/customers/{cid}", token="garbage"), 401, "invalid_token")
                self.assertError(self.req("PATCH", f"/customers/{cid}", {"name": 1}), 401, "missing_token")

    def test_unknown_subpath_404(self):
        for token in (None, self.alice.token):
            with self.subTest(token=bool(token)):
                self.assertError(self.req("GET", f"/customers/{self.alice.id}/nope", token=token), 404, "not_found")

    # -- PATCH --------------------------------------------------------------------------------

    def test_patch_name(self):
        """`PATCH /customers/{id}` (token) body with optional `name`, `email` → 204."""
        c = self.server.new_customer("Before")
        before = self.get(c).json
        clock_past(before["updated_at"])
        r = self.patch(c, {"name": "  After  "})
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        after = self.get(c).json
        self.assertEqual(after["name"], "After")
        self.assertEqual(after["created_at"], before["created_at"])
        self.assertGreater(parse_time(after["updated_at"]), parse_time(before["updated_at"]))

    def test_patch_same_values_keeps_updated_at(self):
        """`updated_at` changes only when a value does."""
        c = self.server.new_customer("Same")
        before = self.get(c).json
        clock_past(before["updated_at"])  # a rewrite of updated_at would now show
        for body in [{"name": "Same"}, {"email": c.email}, {"name": " Same ", "email": c.email.upper()}, {}]:
            with self.subTest(body=body):
                self.assertEqual(self.patch(c, body).status, 204)
                self.assertEqual(self.get(c).json, before)

    def test_patch_email(self):
        c = self.server.new_customer()
        new = unique_email("moved")
        self.assertEqual(self.patch(c, {"email": "  " + new.upper() + " "}).status, 204)
        self.assertEqual(self.get(c).json["email"], new)
        self.assertEqual(self.server.sign_in(new, c.password).count("."), 2)
        self.assertError(self.req("POST", "/auth/sign-in", {"email": c.email, "password": c.password}),
                         401, "invalid_credentials")
        # The old address is free again.
        self.assertEqual(self.server.sign_up("Reuser", c.email, "password-1234").status, 201)

    def test_patch_invalid_values_400(self):
        """Invalid email: 400 `invalid_email`; invalid name (empty or blank included): 400
        `invalid_name` (the reference answers 400 here, 422 at sign-up: keep both)."""
        for body, code in [({"email": "nope"}, "invalid_email"), ({"email": ""}, "invalid_email"),
                           ({"email": "a b@example.com"}, "invalid_email"),
                           ({"email": "a" * 250 + "@example.com"}, "invalid_email"),
                           ({"name": ""}, "invalid_name"), ({"name": "   "}, "invalid_name"),
                           ({"name": "n" * 256}, "invalid_name")]:
            with self.subTest(body=body):
                self.assertError(self.patch(self.alice, body), 400, code)
        self.assertEqual(self.get(self.alice).json["name"], "Alice")

    def test_patch_email_taken_409(self):
        """Email taken by another customer: 409 `email_already_exists`."""
        self.assertError(self.patch(self.alice, {"email": self.bob.email}), 409, "email_already_exists")
        self.assertError(self.patch(self.alice, {"email": self.bob.email.upper()}), 409, "email_already_exists")
        self.assertEqual(self.get(self.alice).json["email"], self.alice.email)

    def test_patch_own_email_other_case_204(self):
        self.assertEqual(self.patch(self.alice, {"email": self.alice.email.upper()}).status, 204)
        self.assertEqual(self.get(self.alice).json["email"], self.alice.email)

    def test_patch_wrong_types_422(self):
        for body, fields in [({"name": 5}, {"name"}), ({"email": ["x"]}, {"email"}),
                             ({"name": True, "email": 1}, {"name", "email"})]:
            with self.subTest(body=body):
                r = self.patch(self.alice, body)
                self.assertError(r, 422, "invalid_body")
                self.assertEqual(self.error_fields(r), fields)
        for raw in ["{", "[]", "null", "5"]:
            with self.subTest(raw=raw):
                r = self.req("PATCH", f"/customers/{self.alice.id}", raw_body=raw, token=self.alice.token,
                             headers={"Content-Type": "application/json"})
                self.assertError(r, 422, "invalid_body")

    def test_patch_others_403_before_body(self):
        """(checked after authentication, before the body or other parameters are looked at)"""
        for raw in ["{", '{"name": 5}', '{"email": "bad"}', ""]:
            with self.subTest(raw=raw):
                r = self.req("PATCH", f"/customers/{self.bob.id}", raw_body=raw, token=self.alice.token,
                             headers={"Content-Type": "application/json"})
                self.assertError(r, 403, "forbidden")
        r = self.req("PATCH", f"/customers/{self.bob.id}", raw_body="x", token=self.alice.token,
                     headers={"Content-Type": "text/plain"})
        self.assertError(r, 403, "forbidden")

    # -- DELETE -------------------------------------------------------------------------------

    def test_delete(self):
        """`DELETE /customers/{id}` (token) → 204; the customer's favorites go with it; its
        tokens stop working (401 `invalid_token`)."""
        c = self.server.new_customer("Leaving")
        second_token = self.server.sign_in(c.email, c.password)
        refresh = self.server.sign_in_response(c.email, c.password).json["refresh_token"]
        self.assertEqual(self.req("POST", f"/customers/{c.id}/favorites/7", token=c.token).status, 201)
        self.assertEqual(self.fav_rows(c.id), 1)

        r = self.req("DELETE", f"/customers/{c.id}", token=c.token)
        self.assertEqual(r.status, 204, r)
        for token in (c.token, second_token, mint_jwt({"sub": c.id, "exp": int(time.time()) + 600})):
            self.assertError(self.req("GET", f"/customers/{c.id}", token=token), 401, "invalid_token")
            self.assertError(self.req("GET", f"/customers/{c.id}/favorites", token=token), 401, "invalid_token")
        self.assertError(self.req("DELETE", f"/customers/{c.id}", token=c.token), 401, "invalid_token")
        self.assertError(self.req("POST", "/auth/sign-in", {"email": c.email, "password": c.password}),
                         401, "invalid_credentials")
        self.assertError(self.req("POST", "/auth/refresh", {"refresh_token": refresh}), 401, "invalid_refresh_token")
        self.assertEqual(self.fav_rows(c.id), 0)
        self.assertEqual(self.server.sql(f"SELECT count(*) FROM customers WHERE id = {self.server.uuid_sql(c.id)}"),
                         [["0"]])
        ids = [i["id"] for i in self.req("GET", "/customers?per_page=200", api_key=API_KEY).json["data"]]
        self.assertNotIn(c.id, ids)
        # The email can sign up again, as a new customer without the old favorites.
        r = self.server.sign_up("Back", c.email, c.password)
        self.assertEqual(r.status, 201, r)
        self.assertNotEqual(r.json["id"], c.id)
        token = self.server.sign_in(c.email, c.password)
        favs = self.req("GET", f"/customers/{r.json['id']}/favorites", token=token)
        self.assertEqual(favs.json["data"], [])

    def fav_rows(self, cid: str) -> int:
        rows = self.server.sql("SELECT count(*) FROM customer_favorite_products WHERE customer_id = "
                               + self.server.uuid_sql(cid))
        return int(rows[0][0])

    def test_delete_other_403(self):
        self.assertError(self.req("DELETE", f"/customers/{self.bob.id}", token=self.alice.token), 403, "forbidden")
        self.assertEqual(self.get(self.bob).status, 200)

    def test_delete_without_token_401(self):
        self.assertError(self.req("DELETE", f"/customers/{self.bob.id}"), 401, "missing_token")


if __name__ == "__main__":
    unittest.main()
