"""CONTRACT §8 "Sign-in guard" against the real binary, on both backends:

"Failed sign-ins are counted per email and client address (`SIGN_IN_MAX_FAILURES`, default 10)
and per email from all addresses (`SIGN_IN_MAX_FAILURES_PER_EMAIL`, default 100) over
`SIGN_IN_FAILURE_WINDOW_MINUTES` (default 15, decimals allowed). Past either count every sign-in
for that email from that scope — right password included — answers 429 `too_many_attempts` with
`Retry-After` until the window has passed, without computing a hash. Answers given while locked
are not counted. A successful sign-in clears its email-and-address count. The counts live in the
database, so they hold across instances and restarts."

Client addresses: the loopback network is 127.0.0.0/8, so a request sent from 127.0.0.2 comes
from another client address than one sent from 127.0.0.3 (still loopback only)."""

import collections
import http.client
import json
import os
import statistics
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, ServerTestCase, start_server, unique_email  # noqa: E402

MAX_PER_ADDRESS, MAX_PER_EMAIL = 3, 5
GUARD_ENV = {"SIGN_IN_MAX_FAILURES": str(MAX_PER_ADDRESS), "SIGN_IN_MAX_FAILURES_PER_EMAIL": str(MAX_PER_EMAIL),
             "PASSWORD_HASH_WORKERS": "2"}
WINDOW_S = 15 * 60


def sign_in_from(server: Server, source: str, email: str, password: str):
    """POST /auth/sign-in from loopback address `source`: (status, detail, Retry-After)."""
    server.secrets.add(password)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", "/auth/sign-in", json.dumps({"email": email, "password": password}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        detail = None
        try:
            detail = json.loads(body).get("detail")
        except (ValueError, AttributeError):
            pass
        return r.status, detail, r.getheader("Retry-After")
    finally:
        conn.close()


class SignInGuardTest(ServerTestCase):
    with_stub = False
    server_env = GUARD_ENV

    def customer(self):
        c = self.server.new_customer()
        return c.email, c.password

    def assertLocked(self, answer, msg=None):
        status, detail, retry_after = answer
        self.assertEqual((status, detail), (429, "too_many_attempts"), msg)
        self.assertIsNotNone(retry_after, "429 without Retry-After")
        self.assertTrue(1 <= int(retry_after) <= WINDOW_S, retry_after)

    def fail_times(self, source, email, n):
        for i in range(n):
            self.assertEqual(sign_in_from(self.server, source, email, "wrong-password")[:2],
                             (401, "invalid_credentials"), f"failure {i + 1}")

    def test_limit_reached_locks_even_the_right_password(self):
        email, password = self.customer()
        self.fail_times("127.0.0.2", email, MAX_PER_ADDRESS)
        self.assertLocked(sign_in_from(self.server, "127.0.0.2", email, "wrong-password"))
        self.assertLocked(sign_in_from(self.server, "127.0.0.2", email, password), "right password while locked")
        # Another address is another scope (its own count is 0, the email's is 3 < 5).
        self.assertEqual(sign_in_from(self.server, "127.0.0.3", email, password)[0], 200)

    def test_unknown_emails_lock_the_same_way(self):
        """Same answers for unknown emails: the guard does not reveal which emails exist."""
        email = unique_email()
        self.fail_times("127.0.0.2", email, MAX_PER_ADDRESS)
        self.assertLocked(sign_in_from(self.server, "127.0.0.2", email, "whatever-password"))

    def test_per_email_count_spans_addresses(self):
        email, password = self.customer()
        for i in range(MAX_PER_EMAIL):  # one failure from each of five addresses
            self.fail_times(f"127.0.0.{10 + i}", email, 1)
        self.assertLocked(sign_in_from(self.server, "127.0.0.30", email, password), "fresh address, email locked")

    def test_locked_answers_are_not_counted_and_compute_no_hash(self):
        """"without computing a hash": a locked sign-in answers without the argon2id cost
        (64 MiB, three passes); timed generously against wrong-password answers."""
        email, _ = self.customer()
        wrong = []
        for _ in range(MAX_PER_ADDRESS):
            t = time.monotonic()
            self.assertEqual(sign_in_from(self.server, "127.0.0.4", email, "wrong-password")[0], 401)
            wrong.append(time.monotonic() - t)
        locked = []
        for _ in range(5):
            t = time.monotonic()
            self.assertLocked(sign_in_from(self.server, "127.0.0.4", email, "wrong-password"))
            locked.append(time.monotonic() - t)
        self.assertLess(statistics.median(locked), 0.5 * statistics.median(wrong),
                        f"locked {locked} vs hashed {wrong}")
        # Five locked answers were not counted: the per-email count is still 3 < 5, so another
        # address may still sign in (it would be locked at 8).
        self.assertEqual(sign_in_from(self.server, "127.0.0.5", email, "wrong-password")[0], 401)

    def test_success_clears_the_email_and_address_count(self):
        email, password = self.customer()
        self.fail_times("127.0.0.6", email, MAX_PER_ADDRESS - 1)
        self.assertEqual(sign_in_from(self.server, "127.0.0.6", email, password)[0], 200)
        self.fail_times("127.0.0.6", email, MAX_PER_ADDRESS - 1)  # 4 in all: locked without the clearing
        self.assertEqual(sign_in_from(self.server, "127.0.0.6", email, password)[0], 200)


class SignInGuardConcurrencyTest(ServerTestCase):
    """"Past either count every sign-in for that email from that scope ... answers 429": counted
    before it is checked, so guesses sent all at once cannot pass the limit either."""
    with_stub = False
    LIMIT, GUESSES = 10, 60
    # Room for every guess in the hash queue, so a 503 cannot hide how many were checked.
    server_env = {"SIGN_IN_MAX_FAILURES": str(LIMIT), "PASSWORD_HASH_WORKERS": "2",
                  "PASSWORD_HASH_QUEUE_LIMIT": "200", "PASSWORD_HASH_QUEUE_PER_CLIENT": "200"}

    def test_concurrent_wrong_guesses_stop_at_the_limit(self):
        c = self.server.new_customer()
        start = threading.Barrier(self.GUESSES)
        answers = []
        lock = threading.Lock()

        def guess(i):
            start.wait(timeout=30)
            a = sign_in_from(self.server, "127.0.0.40", c.email, f"wrong-guess-{i:04d}")
            with lock:
                answers.append(a[:2])

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(self.GUESSES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        counts = collections.Counter(answers)
        # A 401 is an answer of the hash check: exactly the limit reached it, the rest were locked.
        self.assertEqual(counts[(401, "invalid_credentials")], self.LIMIT, counts)
        self.assertEqual(counts[(429, "too_many_attempts")], self.GUESSES - self.LIMIT, counts)
        # "Answers given while locked are not counted": the email's count from every address is
        # the limit, not the number of guesses.
        rows = self.server.sql(f"SELECT failures FROM sign_in_failures WHERE email = '{c.email}' AND scope = '*'")
        self.assertEqual(rows, [[str(self.LIMIT)]])
        status, detail, _ = sign_in_from(self.server, "127.0.0.40", c.email, c.password)
        self.assertEqual((status, detail), (429, "too_many_attempts"), "right password while locked")
        self.assertEqual(sign_in_from(self.server, "127.0.0.41", c.email, c.password)[0], 200, "another address")


class SignInInputTest(ServerTestCase):
    """§8 "Sign-in input": "An email or password that sign-up would refuse (too long, not an
    address) answers sign-in at once with 401 `invalid_credentials` (or 422), never 5xx." """
    with_stub = False
    server_env = GUARD_ENV

    def test_inputs_sign_up_would_refuse_answer_401_and_store_nothing(self):
        c = self.server.new_customer()
        long_local = "a" * 290 + "@example.com"  # 302 characters: over varchar(255)
        cases = [
            (long_local, "some-password"),
            ("b" * 65400, "some-password"),  # near the body limit, not an address
            ("x" * 65380 + "@example.com", "some-password"),
            ("not-an-address", "some-password"),
            (c.email, "short"),          # under 8 characters
            (c.email, "p" * 129),        # over 128
            (c.email, "p" * 60000),
            (c.email.upper(), "q" * 300),
        ]
        for email, password in cases:
            for source in ("127.0.0.50", "127.0.0.51"):
                status, detail, _ = sign_in_from(self.server, source, email, password)
                self.assertIn(status, (401, 422), f"{len(email)}-char email, {len(password)}-char password")
                if status == 401:
                    self.assertEqual(detail, "invalid_credentials")
        # Refused before the guard: nothing was counted, no oversized key was stored.
        rows = self.server.sql("SELECT count(*) FROM sign_in_failures WHERE length(email) > 255")
        self.assertEqual(rows, [["0"]])
        rows = self.server.sql(f"SELECT coalesce(sum(failures), 0) FROM sign_in_failures WHERE email = '{c.email}'")
        self.assertEqual(rows, [["0"]], "refused input was counted as a failure")
        self.assertEqual(sign_in_from(self.server, "127.0.0.50", c.email, c.password)[0], 200)
        self.assertFalse([l for l in self.server.log_lines() if '"status":5' in l.replace(" ", "")],
                         "a 5xx answer")


class SignInGuardPersistenceTest(unittest.TestCase):
    """"The counts live in the database, so they hold across instances and restarts.\""""

    def test_counts_survive_a_restart(self):
        server = start_server(None, GUARD_ENV)
        try:
            c = server.new_customer()
            for _ in range(MAX_PER_ADDRESS):
                self.assertEqual(sign_in_from(server, "127.0.0.7", c.email, "wrong-password")[0], 401)
            self.assertEqual(server.stop(), 0)
            server.start()
            status, detail, _ = sign_in_from(server, "127.0.0.7", c.email, c.password)
            self.assertEqual((status, detail), (429, "too_many_attempts"))
        finally:
            server.stop()
            server.cleanup()

    def test_two_instances_on_one_database_share_the_counts(self):
        a = start_server(None, GUARD_ENV)
        b = None
        try:
            b = start_server(None, GUARD_ENV, db=a.database_url)
            c = a.new_customer()
            self.assertEqual(sign_in_from(a, "127.0.0.8", c.email, "wrong-password")[0], 401)
            self.assertEqual(sign_in_from(b, "127.0.0.8", c.email, "wrong-password")[0], 401)
            self.assertEqual(sign_in_from(a, "127.0.0.8", c.email, "wrong-password")[0], 401)
            for server in (a, b):
                status, detail, _ = sign_in_from(server, "127.0.0.8", c.email, c.password)
                self.assertEqual((status, detail), (429, "too_many_attempts"))
        finally:
            if b:
                b.stop()
            a.stop()
            if b:
                b.cleanup()
            a.cleanup()


if __name__ == "__main__":
    unittest.main()
