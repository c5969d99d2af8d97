"""CONTRACT §8 "Tokens, whole sign-ins", on both backends:

"Sign-out revokes the whole sign-in: the presented access token, every access token issued by
that sign-in's refresh chain, and its refresh tokens. Reusing a rotated refresh token revokes the
chain's access tokens too. Other sign-ins (other devices) keep working."

Every token is used before the revocation, so the instance's token cache holds it: the answer
must change at once on the same instance (AUTH_CACHE_TTL_SECONDS is left at its default)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerTestCase  # noqa: E402


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


if __name__ == "__main__":
    unittest.main()
