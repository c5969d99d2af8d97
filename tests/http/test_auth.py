"""Authentication (CONTRACT §2 and §3 "Auth"): sign-up, sign-in, tokens, sign-out, refresh."""

import json
import os
import statistics
import sys
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (JWT_SECRET, UUID4_RE, Client, ServerTestCase, b64url, jwt_part, mint_jwt,  # noqa: E402
                     request_once, unique_email)

PASSWORD = "correct-horse-battery"


def parse_cookie(set_cookie: str):
    """(name, value, {attribute-lower: value-or-True})."""
    parts = [p.strip() for p in set_cookie.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), value.strip(), attrs


class AuthTest(ServerTestCase):
    with_stub = False

    # -- helpers ------------------------------------------------------------------------------

    def sign_up(self, name="Ann Example", email=None, password=PASSWORD):
        return self.server.sign_up(name, email if email is not None else unique_email(), password)

    def customer(self, **kw):
        return self.server.new_customer(**kw)

    def whoami(self, token=None, cookie=None, cid=None):
        sub = cid or jwt_part(token or cookie, 1)["sub"]
        return self.req("GET", f"/customers/{sub}", token=token, cookie_token=cookie)

    def access_cookie(self, r):
        cookies = [parse_cookie(c) for c in r.headers.get_all("set-cookie")]
        found = [c for c in cookies if c[0] == "access_token"]
        self.assertEqual(len(found), 1, r.headers)
        return found[0]

    # -- sign-up ------------------------------------------------------------------------------

    def test_sign_up_201_with_uuid(self):
        """`POST /auth/sign-up` body `{"name", "email", "password"}` → 201 `{"id": "<uuid>"}`."""
        r = self.sign_up()
        self.assertEqual(r.status, 201, r)
        self.assertEqual(set(r.json), {"id"})
        self.assertRegex(r.json["id"], UUID4_RE)
        self.assertJsonContentType(r)

    def test_email_trimmed_and_lowercased(self):
        """email: trimmed, lower-cased ... (email trimmed and lower-cased before lookup)."""
        local = uuid.uuid4().hex[:12]
        r = self.sign_up(email=f"  Foo.{local}@Example.COM ")
        self.assertEqual(r.status, 201, r)
        token = self.server.sign_in(f"foo.{local}@example.com", PASSWORD)
        me = self.whoami(token)
        self.assertEqual(me.json["email"], f"foo.{local}@example.com")
        self.assertEqual(self.server.sign_in(f"\tFOO.{local}@EXAMPLE.com  ", PASSWORD).count("."), 2)

    def test_invalid_email_422(self):
        """must match a sane address pattern, ≤ 255 chars, else 422 `invalid_email`."""
        too_long = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 59 + ".com"
        self.assertEqual(len(too_long), 256)
        for email in ["plainaddress", "no-at.example.com", "a b@example.com", "ab@exa mple.com",
                      "@example.com", "foo@", "foo@@example.com", "a@b@example.com", "", "   ",
                      too_long, "foo@example.com, bar@example.com", "foo @example.com"]:
            with self.subTest(email=email):
                self.assertError(self.sign_up(email=email), 422, "invalid_email")

    def test_email_of_255_chars_accepted(self):
        email = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"
        self.assertEqual(len(email), 255)
        email = uuid.uuid4().hex[:8] + email[8:]
        r = self.sign_up(email=email)
        self.assertEqual(r.status, 201, r)

    def test_email_wrong_type_is_invalid_body(self):
        """Contract §1: "a JSON value of the wrong type ... 422 `invalid_body`" (not invalid_email)."""
        for email in [123, None, ["a@b.co"], {"a": 1}, True]:
            with self.subTest(email=email):
                r = self.req("POST", "/auth/sign-up", {"name": "X", "email": email, "password": PASSWORD})
                self.assertError(r, 422, "invalid_body")
                self.assertEqual(self.error_fields(r), {"email"})

    def test_invalid_name_422(self):
        """name: trimmed, 1..255 chars, else 422 `invalid_name`."""
        for name in ["", " ", "   \t  ", "n" * 256, " " + "n" * 256 + " ", "é" * 256]:
            with self.subTest(name=name[:10], length=len(name)):
                self.assertError(self.sign_up(name=name), 422, "invalid_name")

    def test_name_limits_and_trim(self):
        for name, stored in [("n" * 255, "n" * 255), ("é" * 255, "é" * 255), ("  Bob  ", "Bob"),
                             ("  " + "m" * 255 + "  ", "m" * 255), ("X", "X"), ("José da Silva 😀", "José da Silva 😀")]:
            with self.subTest(name=name[:10], length=len(name)):
                email = unique_email()
                r = self.sign_up(name=name, email=email)
                self.assertEqual(r.status, 201, r)
                token = self.server.sign_in(email, PASSWORD)
                self.assertEqual(self.whoami(token).json["name"], stored)

    def test_password_length_in_code_points(self):
        """password: 8..128 characters (code points), else 422 `invalid_password`."""
        for password in ["", "p" * 7, "é" * 7, "😀" * 7, "p" * 129, "😀" * 129]:
            with self.subTest(length=len(password), bytes=len(password.encode())):
                self.assertError(self.sign_up(password=password), 422, "invalid_password")
        for password in ["p" * 8, "é" * 8, "😀" * 8, "p" * 128, "😀" * 128, " " * 8]:
            with self.subTest(length=len(password), bytes=len(password.encode())):
                email = unique_email()
                r = self.sign_up(email=email, password=password)
                self.assertEqual(r.status, 201, r)
                self.server.sign_in(email, password)  # not trimmed: the same string signs in

    def test_missing_and_wrong_type_fields(self):
        for body, fields in [({}, {"name", "email", "password"}),
                             ({"name": "X", "email": unique_email()}, {"password"}),
                             ({"name": 5, "email": unique_email(), "password": PASSWORD}, {"name"}),
                             ({"name": "X", "email": unique_email(), "password": 12345678}, {"password"})]:
            with self.subTest(body=body):
                r = self.req("POST", "/auth/sign-up", body)
                self.assertError(r, 422, "invalid_body")
                self.assertEqual(self.error_fields(r), fields)

    def test_duplicate_email_409(self):
        """Unique among customers (case-insensitively): 409 `email_already_exists`."""
        email = unique_email()
        self.assertEqual(self.sign_up(email=email).status, 201)
        self.assertError(self.sign_up(email=email), 409, "email_already_exists")
        self.assertError(self.sign_up(email=" " + email.upper() + " ", name="Other"), 409, "email_already_exists")

    def test_concurrent_duplicate_sign_ups(self):
        """...also when two sign-ups race (never a 500)."""
        email = unique_email()
        port = self.server.port

        def one(i):
            return request_once(port, "POST", "/auth/sign-up", {"name": f"Racer {i}", "email": email,
                                                             "password": PASSWORD})
        with ThreadPoolExecutor(10) as ex:
            results = list(ex.map(one, range(10)))
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [201] + [409] * 9, [r.body for r in results])
        for r in results:
            if r.status == 409:
                self.assertEqual(r.detail, "email_already_exists")

    # -- sign-in ------------------------------------------------------------------------------

    def test_sign_in_body_and_cookie(self):
        """→ 200 `{"access_token": "<jwt>", "token_type": "bearer", "expires_in": <seconds>}` and
        `Set-Cookie: access_token=<jwt>; HttpOnly; Secure; SameSite=Lax; Path=/;
        Max-Age=<JWT_EXPIRE_DAYS*86400>`. Sign-in also returns `refresh_token`."""
        email = unique_email()
        cid = self.sign_up(email=email).json["id"]
        r = self.server.sign_in_response(email, PASSWORD)
        self.assertEqual(r.status, 200, r)
        body = r.json
        self.assertEqual(body["token_type"], "bearer")
        self.assertEqual(body["expires_in"], 172800)
        self.assertIsInstance(body["access_token"], str)
        self.assertIsInstance(body["refresh_token"], str)
        self.assertGreaterEqual(len(body["refresh_token"]), 20)
        self.assertNotEqual(body["refresh_token"], body["access_token"])
        name, value, attrs = self.access_cookie(r)
        self.assertEqual(value, body["access_token"])
        self.assertIs(attrs.get("httponly"), True)
        self.assertIs(attrs.get("secure"), True)
        self.assertEqual(attrs.get("samesite", "").lower(), "lax")
        self.assertEqual(attrs.get("path"), "/")
        self.assertEqual(attrs.get("max-age"), "172800")
        self.assertEqual(jwt_part(body["access_token"], 1)["sub"], cid)

    def test_jwt_format(self):
        """JWT, HS256 ... claims `sub` and `exp` (now + `JWT_EXPIRE_DAYS`) ... also `iat` and `jti`."""
        c = self.customer()
        header, claims = jwt_part(c.token, 0), jwt_part(c.token, 1)
        self.assertEqual(header.get("alg"), "HS256")
        self.assertEqual(header.get("typ"), "JWT")
        self.assertEqual(claims["sub"], c.id)
        now = time.time()
        self.assertIsInstance(claims["exp"], int)
        self.assertIsInstance(claims["iat"], int)
        self.assertLess(abs(claims["iat"] - now), 60)
        self.assertLess(abs(claims["exp"] - (claims["iat"] + 172800)), 2)
        self.assertIsInstance(claims["jti"], str)
        self.assertTrue(claims["jti"])
        # Two sign-ins give different tokens (distinct jti).
        other = self.server.sign_in(c.email, c.password)
        self.assertNotEqual(jwt_part(other, 1)["jti"], claims["jti"])

    def test_wrong_password_and_unknown_email_401(self):
        """Wrong email or password: 401 `invalid_credentials`."""
        c = self.customer()
        for email, password in [(c.email, "wrong-password"), (unique_email(), c.password),
                                (c.email.upper(), "wrong-password"), (c.email, c.password.upper()),
                                (c.email, c.password + " ")]:
            with self.subTest(email=email, password=password):
                r = self.req("POST", "/auth/sign-in", {"email": email, "password": password})
                self.assertError(r, 401, "invalid_credentials")
                self.assertEqual(r.headers.get_all("set-cookie"), [])

    def test_sign_in_invalid_input_is_401_or_422(self):
        """A syntactically bad email at sign-in cannot match a customer: 401 or a validation
        422, never 5xx. Missing fields: 422 `invalid_body`."""
        r = self.req("POST", "/auth/sign-in", {"email": "not-an-email", "password": "x"})
        self.assertIn(r.status, (401, 422), r)
        r = self.req("POST", "/auth/sign-in", {"password": "x" * 10})
        self.assertError(r, 422, "invalid_body")
        self.assertEqual(self.error_fields(r), {"email"})
        r = self.req("POST", "/auth/sign-in", {"email": "a@b.co", "password": 12345678})
        self.assertError(r, 422, "invalid_body")
        self.assertEqual(self.error_fields(r), {"password"})

    def test_unknown_email_timing_similar(self):
        """...same code and similar timing for both, so emails cannot be enumerated.
        Lenient: the unknown-email median is at least half the wrong-password median."""
        c = self.customer()

        def timed(email):
            t0 = time.perf_counter()
            r = self.req("POST", "/auth/sign-in", {"email": email, "password": "wrong-password-x"})
            self.assertEqual(r.status, 401)
            return time.perf_counter() - t0
        wrong = [timed(c.email) for _ in range(4)]
        unknown = [timed(unique_email()) for _ in range(4)]
        self.assertGreaterEqual(statistics.median(unknown), 0.5 * statistics.median(wrong),
                                f"unknown-email {unknown} vs wrong-password {wrong}")

    def test_stored_hash_format(self):
        """Password stored as an argon2id PHC string (`$argon2id$v=19$m=65536,t=3,p=4$...`,
        the reference's parameters)."""
        c = self.customer()
        stored = self.server.sql(f"SELECT password_hash FROM customers WHERE email = '{c.email}'")
        self.assertRegex(stored[0][0], r"^\$argon2id\$v=19\$m=65536,t=3,p=4\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$")

    def test_reference_password_hash_verifies(self):
        """Password stored as an argon2id PHC string (`$argon2id$v=19$m=65536,t=3,p=4$...`);
        hashes written by the reference must verify. (Vectors from tests/compat-vectors.json,
        made with argon2-cffi; the row is written into the database directly.)"""
        c = self.customer()
        vectors = [("minhasenhasupersegura2025",
                    "$argon2id$v=19$m=65536,t=3,p=4$8BBNpHuMtkV+Zxeg4EKktg$ckhscWS66I3lfWEaTbhvG6ZnH5XQHXz22lr0yQQtNFc"),
                   ("pässwörd-ünïcode-✓",
                    "$argon2id$v=19$m=65536,t=3,p=4$7jxTPxRXSviq3Iz4BbSHQQ$9TjfBL5oMg1Oh3ZgWrldUlgrVoksBsiBfeS7r5rIplQ")]
        for password, phc in vectors:
            with self.subTest(password=password):
                email = unique_email("reference")
                new_id = str(uuid.uuid4())
                self.server.sql("INSERT INTO customers (id, name, email, password_hash, created_at, updated_at) "
                                f"SELECT {self.server.uuid_sql(new_id)}, 'Reference', '{email}', '{phc}', created_at, updated_at "
                                f"FROM customers WHERE email = '{c.email}'")
                token = self.server.sign_in(email, password)
                self.assertEqual(jwt_part(token, 1)["sub"], new_id)
                self.assertError(self.req("POST", "/auth/sign-in", {"email": email, "password": password + "x"}),
                                 401, "invalid_credentials")

    # -- using tokens -------------------------------------------------------------------------

    def test_token_by_cookie_and_bearer(self):
        """The token is read from the `access_token` cookie (reference) or from
        `Authorization: Bearer <token>`."""
        c = self.customer()
        self.assertEqual(self.whoami(token=c.token).status, 200)
        self.assertEqual(self.whoami(cookie=c.token).status, 200)
        r = self.req("GET", f"/customers/{c.id}", headers={"Cookie": f"theme=dark; access_token={c.token}; x=1"})
        self.assertEqual(r.status, 200)
        r = self.req("GET", f"/customers/{c.id}", headers={"Authorization": f"bearer {c.token}"})
        self.assertEqual(r.status, 200, "the auth scheme is case-insensitive (RFC 7235)")

    def test_missing_token_401(self):
        c = self.customer()
        self.assertError(self.req("GET", f"/customers/{c.id}"), 401, "missing_token")
        self.assertError(self.req("GET", f"/customers/{c.id}", headers={"Cookie": "other=1"}), 401, "missing_token")

    def test_invalid_tokens_401(self):
        """`invalid_token` (bad signature, wrong algorithm — `alg: none` and anything but
        HS256 are rejected —, malformed, revoked, or its customer no longer exists)."""
        c = self.customer()
        exp = int(time.time()) + 3600
        claims = {"sub": c.id, "exp": exp}
        h, p, s = c.token.split(".")
        other = self.customer()
        tampered = h + "." + jwt_part_b64({**jwt_part(c.token, 1), "sub": other.id}) + "." + s
        cases = {
            "garbage": "garbage",
            "three garbage parts": "a.b.c",
            "empty signature": h + "." + p + ".",
            "bad base64": h + "." + p + ".!!!!",
            "two parts": h + "." + p,
            "alg none": mint_jwt(claims, alg="none"),
            "alg none, signed anyway": mint_jwt(claims, header={"alg": "none", "typ": "JWT"}),
            "HS384": mint_jwt(claims, alg="HS384"),
            "HS512": mint_jwt(claims, alg="HS512"),
            "RS256 header": mint_jwt(claims, header={"alg": "RS256", "typ": "JWT"}),
            "other secret": mint_jwt(claims, secret="another-secret-0123456789abcdef0123456789"),
            "tampered sub": tampered,
            "unknown customer": mint_jwt({"sub": str(uuid.uuid4()), "exp": exp}),
            "sub not a uuid": mint_jwt({"sub": "abc", "exp": exp}),
            "no sub": mint_jwt({"exp": exp}),
            "no exp": mint_jwt({"sub": c.id}),
            "exp a string": mint_jwt({"sub": c.id, "exp": str(exp)}),
            "expired with bad signature": mint_jwt({"sub": c.id, "exp": 1000}, secret="x" * 40),
            "payload not json": h + "." + "bm90IGpzb24" + "." + s,
            "long garbage": "a" * 6000,
        }
        for label, token in cases.items():
            for where in ("bearer", "cookie"):
                with self.subTest(case=label, where=where):
                    kw = {"token": token} if where == "bearer" else {"cookie_token": token}
                    self.assertError(self.req("GET", f"/customers/{c.id}", **kw), 401, "invalid_token")

    def test_expired_token_401(self):
        """`token_expired`."""
        c = self.customer()
        for exp in (int(time.time()) - 5, 1577836800):
            with self.subTest(exp=exp):
                token = mint_jwt({"sub": c.id, "exp": exp, "iat": exp - 100, "jti": uuid.uuid4().hex})
                self.assertError(self.whoami(token=token), 401, "token_expired")
                self.assertError(self.whoami(cookie=token), 401, "token_expired")

    def test_reference_format_token_accepted(self):
        """...exactly what the reference issues, so tokens from either service verify in the
        other: header {"alg":"HS256","typ":"JWT"}, claims only `sub` and `exp`."""
        c = self.customer()
        token = mint_jwt({"sub": c.id, "exp": int(time.time()) + 3600})
        r = self.whoami(token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json["id"], c.id)
        self.assertEqual(self.whoami(cookie=token).status, 200)

    # -- sign-out -----------------------------------------------------------------------------

    def assertCookieExpired(self, r):
        name, value, attrs = self.access_cookie(r)
        expired = attrs.get("max-age") == "0"
        if "expires" in attrs:
            from email.utils import parsedate_to_datetime
            expired = expired or parsedate_to_datetime(attrs["expires"]).timestamp() < time.time()
        self.assertTrue(expired, r.headers.get_all("set-cookie"))
        self.assertEqual(attrs.get("path"), "/")

    def test_sign_out_without_token(self):
        """`POST /auth/sign-out` → 204 and a `Set-Cookie` that expires `access_token`, with or
        without a token."""
        r = self.req("POST", "/auth/sign-out")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertCookieExpired(r)

    def test_sign_out_revokes_token(self):
        """Beyond: the presented token is revoked — using it again gives 401 `invalid_token`."""
        for where in ("bearer", "cookie"):
            with self.subTest(where=where):
                c = self.customer()
                other_session = self.server.sign_in(c.email, c.password)
                kw = {"token": c.token} if where == "bearer" else {"cookie_token": c.token}
                r = self.req("POST", "/auth/sign-out", **kw)
                self.assertEqual(r.status, 204, r)
                self.assertCookieExpired(r)
                self.assertError(self.whoami(token=c.token), 401, "invalid_token")
                self.assertError(self.whoami(cookie=c.token, cid=c.id), 401, "invalid_token")
                self.assertEqual(self.whoami(token=other_session).status, 200)
                # Assumption: signing out again with the revoked token is still 204 ("with or
                # without a token"): a double click must not show an error.
                self.assertEqual(self.req("POST", "/auth/sign-out", **kw).status, 204)

    def test_sign_out_elsewhere_refuses_a_token_this_connection_verified(self):
        """Beyond: a connection verifies a token it is shown again only once (README, "Tokens on a
        kept-alive connection"), but revocation still holds on it: signed out on another
        connection, the token's next request on the first one is 401 `invalid_token`."""
        c = self.customer()
        kept = Client(self.server.port)
        try:
            # Verified once, then served from the connection's memo: reads and a write.
            for _ in range(2):
                self.assertEqual(kept.req("GET", f"/customers/{c.id}", token=c.token).status, 200)
                self.assertEqual(kept.req("PATCH", f"/customers/{c.id}", body={"name": "Kept Alive"},
                                          token=c.token).status, 204)
            sock = kept._conn.sock
            r = request_once(self.server.port, "POST", "/auth/sign-out", token=c.token)
            self.assertEqual(r.status, 204, r)
            self.assertError(kept.req("GET", f"/customers/{c.id}", token=c.token), 401, "invalid_token")
            self.assertIsNotNone(kept._conn, "the connection was closed: the memo was not exercised")
            self.assertIs(kept._conn.sock, sock, "a new connection was opened: the memo was not exercised")
            self.assertError(kept.req("PATCH", f"/customers/{c.id}", body={"name": "Signed Out"}, token=c.token),
                             401, "invalid_token")
            self.assertError(kept.req("GET", f"/customers/{c.id}/favorites", token=c.token), 401, "invalid_token")
            self.assertIs(kept._conn.sock, sock)
        finally:
            kept.close()

    # -- refresh ------------------------------------------------------------------------------

    def sign_in_pair(self, c):
        r = self.server.sign_in_response(c.email, c.password)
        self.assertEqual(r.status, 200, r)
        return r.json["access_token"], r.json["refresh_token"]

    def refresh(self, token):
        r = self.req("POST", "/auth/refresh", {"refresh_token": token})
        if r.status == 200:
            self.server.secrets.update([r.json["access_token"], r.json["refresh_token"]])
        return r

    def test_refresh_rotates(self):
        """`POST /auth/refresh` `{"refresh_token"}` → a new access token and a new refresh token."""
        c = self.customer()
        access, refresh = self.sign_in_pair(c)
        r = self.refresh(refresh)
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(r.json["access_token"], access)
        self.assertNotEqual(r.json["refresh_token"], refresh)
        self.assertEqual(r.json.get("token_type"), "bearer")
        self.assertEqual(r.json.get("expires_in"), 172800)
        self.assertEqual(jwt_part(r.json["access_token"], 1)["sub"], c.id)
        self.assertEqual(self.whoami(token=r.json["access_token"]).status, 200)
        r2 = self.refresh(r.json["refresh_token"])
        self.assertEqual(r2.status, 200, r2)

    def test_refresh_reuse_revokes_family(self):
        """Reusing a rotated refresh token revokes the whole family — the chain of rotations
        that one sign-in started; other sign-ins' tokens keep working — (401
        `invalid_refresh_token`)."""
        c = self.customer()
        _, r1 = self.sign_in_pair(c)
        _, separate = self.sign_in_pair(c)
        r2 = self.refresh(r1).json["refresh_token"]
        r3 = self.refresh(r2).json["refresh_token"]
        self.assertError(self.refresh(r1), 401, "invalid_refresh_token")  # reuse
        self.assertError(self.refresh(r3), 401, "invalid_refresh_token")  # the family is gone
        self.assertError(self.refresh(r2), 401, "invalid_refresh_token")
        r = self.refresh(separate)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.refresh(r.json["refresh_token"]).status, 200)

    def test_refresh_invalid_input(self):
        for token in ["garbage", "", "a" * 500, mint_jwt({"sub": str(uuid.uuid4()), "exp": 4102444800})]:
            with self.subTest(token=token[:20]):
                self.assertError(self.refresh(token), 401, "invalid_refresh_token")
        c = self.customer()
        self.assertError(self.refresh(c.token), 401, "invalid_refresh_token")  # an access token is not one
        for body in [{}, {"refresh_token": 5}, {"refresh_token": None}, {"token": "x"}]:
            with self.subTest(body=body):
                r = self.req("POST", "/auth/refresh", body)
                self.assertError(r, 422, "invalid_body")
                self.assertEqual(self.error_fields(r), {"refresh_token"})

    def test_sign_out_revokes_refresh_token(self):
        c = self.customer()
        access, refresh = self.sign_in_pair(c)
        _, other_refresh = self.sign_in_pair(c)
        self.assertEqual(self.req("POST", "/auth/sign-out", token=access).status, 204)
        self.assertError(self.refresh(refresh), 401, "invalid_refresh_token")
        self.assertEqual(self.refresh(other_refresh).status, 200)

    def test_sign_out_after_refresh_revokes_the_chain(self):
        c = self.customer()
        _, refresh = self.sign_in_pair(c)
        r = self.refresh(refresh)
        access2, refresh2 = r.json["access_token"], r.json["refresh_token"]
        self.assertEqual(self.req("POST", "/auth/sign-out", token=access2).status, 204)
        self.assertError(self.whoami(token=access2), 401, "invalid_token")
        self.assertError(self.refresh(refresh2), 401, "invalid_refresh_token")

    # -- logs (runs last: scans what every test above produced) -------------------------------

    def test_zz_no_secrets_in_logs(self):
        """Logs: ... no passwords, tokens or hashes ever logged."""
        password = "very-distinctive-password-" + uuid.uuid4().hex
        email = unique_email()
        self.sign_up(email=email, password=password)
        self.server.sign_in(email, password)
        self.req("POST", "/auth/sign-in", {"email": email, "password": password + "-wrong"})
        self.req("POST", "/auth/sign-up", {"name": "", "email": email, "password": password})  # 422
        text = "\n".join(self.server.log_lines() + self.server.err.lines)
        self.assertNotIn("$argon2id$", text)
        leaks = []
        for secret in self.server.secrets:
            if len(secret) >= 8 and not secret.isspace() and secret in text:
                leaks.append(secret[:16] + "...")
            if secret.count(".") == 2 and secret.rsplit(".", 1)[1] and secret.rsplit(".", 1)[1] in text:
                leaks.append("signature of " + secret[:16] + "...")
        self.assertEqual(leaks, [])
        self.assertNotIn(JWT_SECRET, text)


def jwt_part_b64(obj) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


class TokenExpiryTest(ServerTestCase):
    """A server whose tokens live ~1.7 s (`JWT_EXPIRE_DAYS` accepts decimals)."""

    with_stub = False
    server_env = {"JWT_EXPIRE_DAYS": "0.00002"}

    def test_issued_token_carries_the_configured_lifetime(self):
        c = self.server.new_customer()
        r = self.server.sign_in_response(c.email, c.password)
        self.assertIn(r.json["expires_in"], (1, 2))  # 0.00002 days = 1.728 s, rounded either way
        token = r.json["access_token"]
        self.assertEqual(self.req("GET", f"/customers/{c.id}", token=token).status, 200)
        # The token carries the configured lifetime; that a token past its `exp` is refused is a
        # rule of time, checked with an injected clock by the JWT unit tests and here, without
        # waiting, by AuthTest.test_expired_token_401's minted expired tokens.
        claims = jwt_part(token, 1)
        self.assertIn(claims["exp"] - claims["iat"], (1, 2), claims)
        self.assertLessEqual(abs(claims["iat"] - time.time()), 60, claims)
        # The refresh token outlives the access token.
        r = self.req("POST", "/auth/refresh", {"refresh_token": r.json["refresh_token"]})
        self.assertEqual(r.status, 200, r)


def gauge(case: ServerTestCase, name: str) -> float:
    """An unlabelled series of the service's /metrics."""
    r = case.req("GET", "/metrics")
    case.assertEqual(r.status, 200, r)
    for line in r.body.decode("utf-8").splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    case.fail(f"/metrics has no {name}")


class TokenCheckBeforeTheReadTest(ServerTestCase):
    """Who is calling is decided before the handler runs: on a token-cache miss,
    `GET /customers/{id}` and `GET /customers/{id}/favorites` make the token check (one round trip
    on PostgreSQL), then the handler's read (one more). The token cache is off here, so every
    request takes that path. What a client sees (CONTRACT §2, §5): a revoked token, a signed-out
    sign-in or a deleted customer gets 401 `invalid_token` even where the handler would have
    answered something else (a bad page: 422; another customer's id: 403), and a good token gets
    the data."""

    # One connection: after a first request every statement is prepared on it, so each round trip
    # counted is a statement's (a fresh connection's prepare would be one more).
    server_env = {"AUTH_CACHE_TTL_SECONDS": "0", "READ_CACHE_BYTES": "0", "PRODUCT_CATALOG_WARMUP": "false",
                  "DATABASE_POOL_SIZE": "1"}

    def round_trips(self) -> float:
        return gauge(self, "fav_db_round_trips_total")

    def reads(self, c, token=None, **kw):
        """The two read routes, GET and HEAD."""
        kw = kw or {"token": token or c.token}
        return [(m, p, self.req(m, p, **kw)) for m in ("GET", "HEAD")
                for p in (f"/customers/{c.id}", f"/customers/{c.id}/favorites")]

    def test_a_good_token_is_checked_then_read_in_two_round_trips(self):
        c = self.server.new_customer()
        self.assertEqual(self.req("POST", f"/customers/{c.id}/favorites/3", token=c.token).status, 201)
        pg = os.environ.get("FAV_TEST_BACKEND") == "postgresql"
        for path, check in ((f"/customers/{c.id}", lambda j: j["email"] == c.email),
                            (f"/customers/{c.id}/favorites", lambda j: [i["id"] for i in j["data"]] == [3])):
            with self.subTest(path=path):
                self.assertEqual(self.req("GET", path, token=c.token).status, 200)  # statements prepared
                for _ in range(3):
                    before = self.round_trips()
                    r = self.req("GET", path, token=c.token)
                    self.assertEqual(r.status, 200, r)
                    self.assertTrue(check(r.json), r.json)
                    # /metrics itself sends nothing; the product is in products_cache (fresh).
                    self.assertEqual(self.round_trips() - before, 2 if pg else 0,
                                     "not one round trip for the token check and one for the read")

    def test_a_signed_out_token_gets_401_before_anything_else(self):
        c = self.server.new_customer()
        other = self.server.new_customer()
        self.assertEqual(self.req("POST", "/auth/sign-out", token=c.token).status, 204)
        for method, path, r in self.reads(c):
            with self.subTest(method=method, path=path):
                self.assertEqual(r.status, 401, r)
                if method == "GET":
                    self.assertError(r, 401, "invalid_token")
        # The handler would answer 422 (bad page) or 403 (someone else's id) first: 401 still wins.
        self.assertError(self.req("GET", f"/customers/{c.id}/favorites?page=0", token=c.token), 401, "invalid_token")
        self.assertError(self.req("GET", f"/customers/{other.id}/favorites", token=c.token), 401, "invalid_token")
        self.assertError(self.req("GET", f"/customers/{other.id}", token=c.token), 401, "invalid_token")
        # A good token keeps those answers.
        self.assertError(self.req("GET", f"/customers/{other.id}/favorites?page=0", token=other.token),
                         422, "invalid_pagination")
        self.assertError(self.req("GET", f"/customers/{c.id}", token=other.token), 403, "forbidden")

    def test_a_deleted_customers_token_gets_401(self):
        c = self.server.new_customer()
        second = self.server.sign_in(c.email, c.password)
        self.assertEqual(self.req("DELETE", f"/customers/{c.id}", token=c.token).status, 204)
        for method, path, r in self.reads(c, token=second):
            with self.subTest(method=method, path=path):
                self.assertEqual(r.status, 401, r)
                if method == "GET":
                    self.assertError(r, 401, "invalid_token")


class TokenCacheFilledByTheCheckTest(ServerTestCase):
    """The answer of a read route's token check is remembered (AUTH_CACHE_TTL_SECONDS at its
    default), so the customer's next request needs no check; and a sign-out still evicts it
    (CONTRACT §9)."""

    server_env = {"READ_CACHE_BYTES": "0", "PRODUCT_CATALOG_WARMUP": "false"}

    def entries(self) -> float:
        return gauge(self, "fav_token_cache_entries")

    def test_the_read_fills_the_token_cache(self):
        for path in ("/customers/{}", "/customers/{}/favorites"):
            with self.subTest(path=path):
                c = self.server.new_customer()  # sign-up and sign-in check no token
                before = self.entries()
                self.assertEqual(self.req("GET", path.format(c.id), token=c.token).status, 200)
                self.assertEqual(self.entries(), before + 1, "the check's answer was not remembered")
                self.assertEqual(self.req("GET", path.format(c.id), token=c.token).status, 200)
                self.assertEqual(self.entries(), before + 1)
                self.assertEqual(self.req("POST", "/auth/sign-out", token=c.token).status, 204)
                self.assertError(self.req("GET", path.format(c.id), token=c.token), 401, "invalid_token")


class PasswordHashBoundTest(ServerTestCase):
    """Password hashing ... the number of hashes computed at once is bounded: excess
    sign-ins wait in a bounded queue, then get 503 `server_busy` with `Retry-After`.
    (PASSWORD_HASH_WORKERS / PASSWORD_HASH_QUEUE_LIMIT are the service's own knobs.)"""

    with_stub = False
    server_env = {"PASSWORD_HASH_WORKERS": "1", "PASSWORD_HASH_QUEUE_LIMIT": "1"}

    def test_excess_sign_ins_get_503(self):
        c = self.server.new_customer()
        port = self.server.port

        def one(_):
            return request_once(port, "POST", "/auth/sign-in", {"email": c.email, "password": c.password})
        with ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, range(8)))
        statuses = [r.status for r in results]
        self.assertIn(200, statuses)
        self.assertIn(503, statuses)
        self.assertEqual(set(statuses), {200, 503}, statuses)
        for r in results:
            if r.status == 503:
                self.assertEqual(r.detail, "server_busy")
                self.assertTrue(r.headers.get("retry-after", "").isdigit(), r.headers)
        # The service recovers once the burst is over.
        self.assertEqual(self.req("POST", "/auth/sign-in", {"email": c.email, "password": c.password}).status, 200)


if __name__ == "__main__":
    unittest.main()
