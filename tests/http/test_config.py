"""Configuration (CONTRACT §6, §5 storage selection)."""

import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API_KEY, Server, backend, free_port, jwt_part, unique_email,  # noqa: E402
                     _pg_admin_url, server_for)


class ConfigTest(unittest.TestCase):

    def server(self, env=None, dotenv=None, **kw) -> Server:
        return server_for(self, env=env, dotenv=dotenv, **kw)

    def started(self, env=None, dotenv=None, **kw) -> Server:
        return self.server(env, dotenv, **kw).start()

    def stop_ok(self, s: Server):
        rc = s.stop()
        self.assertEqual(rc, 0, "exit code on SIGTERM; output:\n" + s.output_tail())

    def refused(self, env=None, dotenv=None):
        """Starts with a bad configuration; returns the output lines after a non-zero exit."""
        s = self.server(env, dotenv)
        s.launch()
        rc = s.wait_exit(15)
        if rc is None:
            s.kill9()
            self.fail(f"the service kept running with {env} / {dotenv!r}")
        self.assertNotEqual(rc, 0)
        return [l for l in s.out.lines + s.err.lines if l.strip()]

    # -- bad values ---------------------------------------------------------------------------

    BAD = [("API_PORT", "abc"), ("API_PORT", "70000"), ("API_PORT", "-1"),
           ("PRODUCT_CACHE_SOFT_TTL_MINUTES", "x"), ("PRODUCT_CACHE_HARD_TTL_MINUTES", "-1"),
           ("PAGINATION_PER_PAGE_LIMIT", "0"), ("PAGINATION_PER_PAGE_LIMIT", "abc"),
           ("PAGINATION_PER_PAGE_LIMIT", "1.5"), ("PRODUCT_CATALOG_API_TIMEOUT_LIMIT", "abc"),
           ("PRODUCT_CATALOG_API_TIMEOUT_LIMIT", "-1"), ("PRODUCT_CATALOG_API_MAX_RETRIES", "abc"),
           ("PRODUCT_CATALOG_API_MAX_RETRIES", "-1"), ("PRODUCT_CATALOG_API_MAX_CONCURRENCY", "0"),
           ("JWT_EXPIRE_DAYS", "abc"), ("JWT_EXPIRE_DAYS", "-1"), ("DATABASE_POOL_SIZE", "0"),
           ("ENV", "staging"), ("LOG_LEVEL", "loud"), ("PRODUCT_CATALOG_API_BASE_URL", "not a url"),
           ("PRODUCT_CATALOG_API_BASE_URL", "ftp://example.com"), ("DATABASE_URL", "mysql://x/y")]

    def test_bad_values_stop_the_start(self):
        """A bad value stops the start with one clear line naming the variable."""
        for name, value in self.BAD:
            with self.subTest(name=name, value=value):
                lines = self.refused({name: value})
                naming = [l for l in lines if name in l]
                self.assertEqual(len(naming), 1, lines)
                self.assertLessEqual(len(lines), 3, lines)  # no stack dump or log flood

    def test_bad_value_in_dotenv(self):
        lines = self.refused(dotenv="PAGINATION_PER_PAGE_LIMIT=zero\n")
        self.assertTrue(any("PAGINATION_PER_PAGE_LIMIT" in l for l in lines), lines)

    # -- .env ---------------------------------------------------------------------------------

    def per_page_status(self, s: Server, n: int, token=None, cid=None):
        path = f"/customers/{cid}/favorites" if cid else "/customers"
        return s.req("GET", f"{path}?per_page={n}", api_key=API_KEY, token=token).status

    def test_dotenv_read(self):
        """Environment variables, optionally from a `.env` file in the working directory.
        `PAGINATION_PER_PAGE_LIMIT` is respected on every paged route."""
        s = self.started(dotenv="PAGINATION_PER_PAGE_LIMIT=5\n")
        self.assertEqual(self.per_page_status(s, 5), 200)
        self.assertEqual(self.per_page_status(s, 6), 422)
        c = s.new_customer()
        self.assertEqual(self.per_page_status(s, 5, c.token, c.id), 200)
        self.assertEqual(self.per_page_status(s, 6, c.token, c.id), 422)
        self.stop_ok(s)

    def test_real_environment_wins(self):
        """(real environment wins)"""
        s = self.started(env={"PAGINATION_PER_PAGE_LIMIT": "10"}, dotenv="PAGINATION_PER_PAGE_LIMIT=5\n")
        self.assertEqual(self.per_page_status(s, 6), 200)
        self.assertEqual(self.per_page_status(s, 10), 200)
        self.assertEqual(self.per_page_status(s, 11), 422)
        self.stop_ok(s)

    def test_dotenv_syntax(self):
        """The reference reads `.env` with python-dotenv: comments, blank lines, `export` and
        quoted values."""
        dotenv = ("# settings for the test\n\n"
                  "export PAGINATION_PER_PAGE_LIMIT=\"7\"\n"
                  "API_KEY='dotenv-api-key-0123456789abcdef0123'\n"
                  "JWT_EXPIRE_DAYS=1 # one day\n")
        s = self.started(env={"API_KEY": None}, dotenv=dotenv)
        r = s.req("GET", "/customers?per_page=7", api_key="dotenv-api-key-0123456789abcdef0123")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(s.req("GET", "/customers?per_page=8", api_key="dotenv-api-key-0123456789abcdef0123").status,
                         422)
        self.assertEqual(s.req("GET", "/customers", api_key=API_KEY).detail, "invalid_api_key")
        email = unique_email()
        s.sign_up("Dot", email, "password-1234")
        self.assertEqual(s.sign_in_response(email, "password-1234").json["expires_in"], 86400)
        self.stop_ok(s)

    # -- decimals -----------------------------------------------------------------------------

    def test_decimal_times(self):
        """Times accept decimals (`PRODUCT_CACHE_SOFT_TTL_MINUTES=0.05` is 3 seconds)."""
        s = self.started(env={"PRODUCT_CACHE_SOFT_TTL_MINUTES": "0.05", "PRODUCT_CACHE_HARD_TTL_MINUTES": "0.1",
                              "PRODUCT_CATALOG_API_TIMEOUT_LIMIT": "0.5", "JWT_EXPIRE_DAYS": "0.5"})
        c = s.new_customer()
        r = s.sign_in_response(c.email, c.password)
        self.assertEqual(r.json["expires_in"], 43200)
        claims = jwt_part(r.json["access_token"], 1)
        self.assertLessEqual(abs(claims["exp"] - claims["iat"] - 43200), 1)
        self.assertIn("Max-Age=43200", r.headers.get("set-cookie"))
        self.stop_ok(s)

    # -- ENV=prod -----------------------------------------------------------------------------

    def test_prod_refuses_weak_secrets(self):
        """With `ENV=prod` the service refuses to start while `API_KEY` or `JWT_SECRET_KEY` are
        unset, defaults, or shorter than 32 bytes."""
        short = "s" * 31
        for name in ("API_KEY", "JWT_SECRET_KEY"):
            # §8: "No example deployment ships a secret that ENV=prod accepts": every example
            # secret in the repository says change-me, and prod refuses those however long.
            for value in (None, "", short, "é" * 15, "local-example-secret-change-me-0123456789"):
                with self.subTest(name=name, value=value):
                    lines = self.refused({"ENV": "prod", name: value})
                    self.assertTrue(any(name in l for l in lines), lines)
                    if value:
                        self.assertFalse(any(value in l for l in lines), "the secret was printed")

    def test_prod_starts_with_strong_secrets(self):
        s = self.server(env={"ENV": "prod", "API_KEY": "k" * 32, "JWT_SECRET_KEY": "j" * 32})
        if s.database_url.startswith("postgresql"):
            # ENV=prod asks PostgreSQL for TLS unless the URL says otherwise; the test cluster
            # has no TLS.
            s.env_overrides["DATABASE_URL"] = s.database_url + ("&" if "?" in s.database_url else "?") + \
                "sslmode=disable"
        s.start()
        self.assertEqual(s.req("GET", "/customers", api_key="k" * 32).status, 200)
        self.stop_ok(s)

    def test_bad_hostile_load_settings_refused(self):
        """Every new §8 variable is validated at start, naming the variable."""
        for name, value in (("TRUSTED_PROXIES", "10.0.0.0/33"), ("TRUSTED_PROXIES", "proxy.local"),
                            ("RATE_LIMIT_BURST", "-1"), ("RATE_LIMIT_PER_SECOND", "0"),
                            ("API_MAX_CONNECTIONS", "0"), ("API_HEADER_TIMEOUT_SECONDS", "x")):
            with self.subTest(name=name, value=value):
                lines = self.refused({name: value})
                self.assertTrue(any(name in l for l in lines), lines)

    def test_dev_allows_short_secrets(self):
        s = self.started(env={"ENV": "dev", "API_KEY": "short", "JWT_SECRET_KEY": "short-secret"})
        self.assertEqual(s.req("GET", "/customers", api_key="short").status, 200)
        self.stop_ok(s)

    # -- port and storage ---------------------------------------------------------------------

    def test_api_port(self):
        port = free_port()
        s = self.started(env={"API_PORT": str(port)})
        self.assertEqual(s.port, port)
        self.assertEqual(s.req("GET", "/health").status, 200)
        self.stop_ok(s)

    @unittest.skipUnless(backend() == "sqlite", "SQLite storage")
    def test_default_sqlite_file(self):
        """Embedded default: SQLite, the file `./data/favorites.db` under the working
        directory, created with its folder on first start."""
        s = self.started(database=None)
        self.assertTrue(os.path.isfile(os.path.join(s.workdir, "data", "favorites.db")))
        s.new_customer()
        self.stop_ok(s)

    @unittest.skipUnless(backend() == "sqlite", "SQLite storage")
    def test_relative_sqlite_path(self):
        """`DATABASE_URL=sqlite:<path>` ... a relative path is resolved against the working
        directory; its folder is created if missing."""
        s = self.started(database="sqlite:rel/sub/fav.db")
        self.assertTrue(os.path.isfile(os.path.join(s.workdir, "rel", "sub", "fav.db")))
        c = s.new_customer()
        self.stop_ok(s)
        s.start()  # same file on restart
        self.assertEqual(s.req("GET", f"/customers/{c.id}", token=c.token).status, 200)
        self.stop_ok(s)

    @unittest.skipUnless(backend() == "postgresql", "PostgreSQL storage")
    def test_reference_database_variables(self):
        """...or by the reference's `DATABASE_DIALECT=postgresql` +
        `DATABASE_HOST/PORT/USER/PASSWORD/NAME`."""
        s = self.server()
        url = urllib.parse.urlsplit(_pg_admin_url())
        s.env_overrides.update({
            "DATABASE_URL": None, "DATABASE_DIALECT": "postgresql",
            "DATABASE_HOST": url.hostname or "localhost", "DATABASE_PORT": str(url.port or 5432),
            "DATABASE_USER": urllib.parse.unquote(url.username or ""),
            "DATABASE_PASSWORD": urllib.parse.unquote(url.password or ""),
            "DATABASE_NAME": urllib.parse.urlsplit(s.database_url).path.lstrip("/")})
        s.start()
        c = s.new_customer()
        self.assertEqual(s.sql(f"SELECT count(*) FROM customers WHERE email = '{c.email}'"), [["1"]])
        self.stop_ok(s)


if __name__ == "__main__":
    unittest.main()
