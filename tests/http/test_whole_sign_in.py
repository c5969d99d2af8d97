"""CONTRACT §8 "Tokens, whole sign-ins", on both backends:

"Sign-out revokes the whole sign-in: the presented access token, every access token issued by
that sign-in's refresh chain, and its refresh tokens. Reusing a rotated refresh token revokes the
chain's access tokens too. Other sign-ins (other devices) keep working."

Every token is used before the revocation, so the instance's token cache holds it: the answer
must change at once on the same instance (AUTH_CACHE_TTL_SECONDS is left at its default)."""

import os
import sys
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase, unique_email  # noqa: E402


class WholeSignInTest(ServerTestCase):
    with_stub = False

    def sign_in(self, c):
        r = self.server.sign_in_response(c.email, c.password)
        self.assertEqual(r.status, 200, r)
        return r.json["access_token"], r.json["refresh_token"]

    def refresh(self, refresh_token):
        return self.req("POST", "/auth/refresh", {"refresh_token": refresh_token})

    def works(self, c, token):
        return self.req("GET", f"/customers/{c.id}", token=token).status == 200

    def chain(self, c, rotations=2):
        """A sign-in and its refresh chain: (access tokens oldest first, refresh tokens)."""
        access, refresh = self.sign_in(c)
        tokens, refreshes = [access], [refresh]
        for _ in range(rotations):
            r = self.refresh(refreshes[-1])
            self.assertEqual(r.status, 200, r)
            tokens.append(r.json["access_token"])
            refreshes.append(r.json["refresh_token"])
        for t in tokens:
            self.assertTrue(self.works(c, t))  # also puts them in the token cache
        return tokens, refreshes

    def test_sign_out_ends_the_whole_sign_in_and_no_other(self):
        c = self.server.new_customer()
        tokens, refreshes = self.chain(c)
        other_tokens, other_refreshes = self.chain(c, rotations=1)
        # Sign out with the newest token of the first sign-in.
        self.assertEqual(self.req("POST", "/auth/sign-out", token=tokens[-1]).status, 204)
        for i, t in enumerate(tokens):
            self.assertError(self.req("GET", f"/customers/{c.id}", token=t), 401, "invalid_token",
                             f"access token {i} of the signed-out chain")
        self.assertError(self.refresh(refreshes[-1]), 401, "invalid_refresh_token")
        # The other sign-in (another device) keeps working, access and refresh.
        for t in other_tokens:
            self.assertTrue(self.works(c, t))
        r = self.refresh(other_refreshes[-1])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(self.works(c, r.json["access_token"]))

    def test_sign_out_with_an_older_token_of_the_chain(self):
        c = self.server.new_customer()
        tokens, refreshes = self.chain(c)
        self.assertEqual(self.req("POST", "/auth/sign-out", token=tokens[0]).status, 204)
        for t in tokens:
            self.assertError(self.req("GET", f"/customers/{c.id}", token=t), 401, "invalid_token")
        self.assertError(self.refresh(refreshes[-1]), 401, "invalid_refresh_token")

    def test_refresh_reuse_revokes_the_chains_access_tokens(self):
        c = self.server.new_customer()
        tokens, refreshes = self.chain(c)
        other_tokens, _ = self.chain(c, rotations=0)
        # refreshes[0] was rotated: presenting it again is reuse.
        self.assertError(self.refresh(refreshes[0]), 401, "invalid_refresh_token")
        for i, t in enumerate(tokens):
            self.assertError(self.req("GET", f"/customers/{c.id}", token=t), 401, "invalid_token",
                             f"access token {i} of the reused chain (the newest included)")
        self.assertError(self.refresh(refreshes[-1]), 401, "invalid_refresh_token")
        self.assertTrue(self.works(c, other_tokens[0]))



class TokenRowsTest(ServerTestCase):
    """CONTRACT §8 "Token rows": "Refreshing adds no lasting row: however often a sign-in
    refreshes, the database holds a bounded number of rows for it, and reuse of any token it
    rotated is still detected. [...] A customer has at most `AUTH_MAX_SIGN_INS_PER_CUSTOMER`
    (default 50) live sign-ins; one more ends the oldest (its tokens answer 401 `invalid_token`)."
    """

    with_stub = False
    server_env = {"AUTH_MAX_SIGN_INS_PER_CUSTOMER": "5"}

    def refresh(self, refresh_token):
        return self.req("POST", "/auth/refresh", {"refresh_token": refresh_token})

    def fresh_customer(self):
        """A customer with no sign-in yet: (id, email, password)."""
        email, password = unique_email("rows"), f"pw-{uuid.uuid4().hex}"
        r = self.server.sign_up("Row Counter", email, password)
        self.assertEqual(r.status, 201, r)
        return r.json["id"], email, password

    def sign_in(self, email, password):
        r = self.server.sign_in_response(email, password)
        self.assertEqual(r.status, 200, r)
        return r.json["access_token"], r.json["refresh_token"]

    def rows(self, table, customer_id=None):
        where = f" WHERE customer_id = {self.server.uuid_sql(customer_id)}" if customer_id else ""
        return int(self.server.sql(f"SELECT count(*) FROM {table}{where}")[0][0])

    def test_200_refreshes_add_no_lasting_row_and_reuse_is_still_refused(self):
        cid, email, password = self.fresh_customer()
        access, first = self.sign_in(email, password)
        before_total = self.rows("sign_ins") + self.rows("refresh_tokens")
        self.assertEqual(self.rows("sign_ins", cid), 1)
        token, accesses = first, [access]
        for i in range(200):
            r = self.refresh(token)
            self.assertEqual(r.status, 200, f"refresh {i}: {r}")
            token = r.json["refresh_token"]
            accesses.append(r.json["access_token"])
        self.server.secrets.update([token] + accesses)
        self.assertEqual(self.rows("sign_ins", cid), 1, "one row per sign-in, however often it refreshes")
        self.assertEqual(self.rows("sign_ins") + self.rows("refresh_tokens"), before_total)
        self.assertEqual(self.req("GET", f"/customers/{cid}", token=accesses[-1]).status, 200)
        # Reuse of the first token, rotated 200 refreshes ago: refused, and the whole sign-in ends.
        self.assertError(self.refresh(first), 401, "invalid_refresh_token")
        self.assertError(self.refresh(token), 401, "invalid_refresh_token")
        for t in (accesses[0], accesses[100], accesses[-1]):
            self.assertError(self.req("GET", f"/customers/{cid}", token=t), 401, "invalid_token")
        self.assertEqual(self.rows("sign_ins", cid), 0)

    def test_a_forged_or_altered_refresh_token_is_refused_and_changes_nothing(self):
        cid, email, password = self.fresh_customer()
        access, token = self.sign_in(email, password)
        sid, generation, proof = token.split(".")
        self.assertEqual(generation, "0")
        flipped = proof[:-2] + ("A" if proof[-2] != "A" else "B") + proof[-1]
        for forged in (f"{sid}.1.{proof}", f"{sid}.0.{flipped}", f"{sid}.00.{proof}", f"{sid}.-1.{proof}",
                       f"{uuid.uuid4()}.0.{proof}", f"{sid}.0", sid):
            with self.subTest(forged=forged[-30:]):
                self.assertError(self.refresh(forged), 401, "invalid_refresh_token")
        # A forged "older generation" is not taken for reuse: the sign-in still works.
        self.assertEqual(self.req("GET", f"/customers/{cid}", token=access).status, 200)
        self.assertEqual(self.refresh(token).status, 200)

    def test_the_sixth_sign_in_with_a_cap_of_5_ends_the_first(self):
        cid, email, password = self.fresh_customer()
        pairs = [self.sign_in(email, password) for _ in range(5)]
        for access, _ in pairs:
            self.assertEqual(self.req("GET", f"/customers/{cid}", token=access).status, 200)  # cached too
        sixth = self.sign_in(email, password)
        self.assertError(self.req("GET", f"/customers/{cid}", token=pairs[0][0]), 401, "invalid_token")
        self.assertError(self.refresh(pairs[0][1]), 401, "invalid_refresh_token")
        for i, (access, refresh) in enumerate(pairs[1:] + [sixth], start=2):
            self.assertEqual(self.req("GET", f"/customers/{cid}", token=access).status, 200, f"sign-in {i}")
            self.assertEqual(self.refresh(refresh).status, 200, f"sign-in {i}")
        self.assertEqual(self.rows("sign_ins", cid), 5)

    def test_racing_sign_ins_never_pass_the_cap(self):
        cid, email, password = self.fresh_customer()
        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(lambda _: self.server.sign_in_response(email, password), range(12)))
        ok = [r for r in results if r.status == 200]
        # 503 server_busy: the hash queue's share of one address; 429 too_many_attempts: the
        # sign-in guard counts each attempt before it is checked (§8), so more concurrent attempts
        # than SIGN_IN_MAX_FAILURES (10) may be refused while the others are still in flight.
        self.assertTrue(all(r.status == 200 or (r.status, r.detail) in ((503, "server_busy"), (429, "too_many_attempts"))
                            for r in results), [r.status for r in results])
        self.assertGreaterEqual(len(ok), 6, [r.status for r in results])
        self.assertEqual(self.rows("sign_ins", cid), 5)
        live = sum(1 for r in ok if self.refresh(r.json["refresh_token"]).status == 200)
        self.assertEqual(live, 5)


class SignInSweepTest(ServerTestCase):
    """CONTRACT §8 "Token rows": "Rows whose tokens have all expired are deleted (at least
    daily)." Tokens here live about 9 s and the sweep runs every half second; the test waits for
    the sweep's log lines, not for time to pass."""

    with_stub = False
    server_env = {"JWT_EXPIRE_DAYS": "0.0001", "REFRESH_TOKEN_EXPIRE_DAYS": "0.0001",
                  "AUTH_SIGN_IN_SWEEP_INTERVAL_SECONDS": "0.5"}

    def test_the_sweep_deletes_expired_sign_ins(self):
        c = self.server.new_customer()
        for _ in range(2):
            self.server.sign_in(c.email, c.password)
        # Some may already be swept on a slow machine; the log lines below account for all three.
        self.assertGreaterEqual(int(self.server.sql("SELECT count(*) FROM sign_ins")[0][0]), 1)
        # Each sweep that deleted rows logs how many; the three may go in one sweep or several.
        seen = {"deleted": 0}

        def all_three_swept(o):
            if o.get("message") == "expired sign-ins deleted":
                seen["deleted"] += int(o.get("deleted", 0))
            return seen["deleted"] >= 3

        line = self.server.wait_log(all_three_swept, timeout=60)
        self.assertIsNotNone(line, self.server.output_tail())
        self.assertEqual(int(self.server.sql("SELECT count(*) FROM sign_ins")[0][0]), 0)


if __name__ == "__main__":
    unittest.main()
