"""The command line (CLI11, src/main.cpp): `serve` (the default), `migrate`, `check-config`,
`healthcheck [--host H] [--port P]`, `--version`, `--help`. Each test runs the real binary with
a bounded timeout; servers, when needed, come from harness.Server on loopback."""

import http.server
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (API_KEY, JWT_SECRET, REPO_ROOT, Server, _json_obj, fav_bin,  # noqa: E402
                     free_port, unique_email)

RUN_TIMEOUT_S = 30
# A probe must give up on an instance that accepts but never answers (a container runtime's
# health check has its own, longer, timeout; Docker's default is 30 s).
HEALTHCHECK_MAX_S = 10
SUBCOMMANDS = ("serve", "migrate", "check-config", "healthcheck")
STRONG = {"API_KEY": API_KEY, "JWT_SECRET_KEY": JWT_SECRET}


def project_version() -> str:
    with open(os.path.join(REPO_ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        m = re.search(r"project\(\s*\w+\s+VERSION\s+([0-9][0-9.]*)", f.read())
    assert m, "no project(... VERSION x.y.z) in CMakeLists.txt"
    return m.group(1)


def base_env(**extra) -> dict:
    """A minimal environment (no inherited configuration), plus `extra` (None removes)."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "LLVM_PROFILE_FILE"):
        if k in os.environ:
            env[k] = os.environ[k]
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


class Run:
    """The outcome of one command-line run."""

    def __init__(self, args, proc: subprocess.CompletedProcess, seconds: float):
        self.args, self.rc, self.out, self.err, self.seconds = args, proc.returncode, proc.stdout, proc.stderr, seconds

    def err_lines(self):
        return [l for l in self.err.splitlines() if l.strip()]

    def __repr__(self):
        return f"Run({self.args}, rc={self.rc}, out={self.out[-600:]!r}, err={self.err[-600:]!r})"


def run(args, env=None, cwd=None, timeout=RUN_TIMEOUT_S) -> Run:
    """Runs favorites-api with `args`; fails the test (not hangs) when it outlives `timeout`."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([fav_bin(), *args], env=env if env is not None else base_env(), cwd=cwd,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"favorites-api {' '.join(args)} still running after {timeout}s "
                             f"(stdout {e.stdout!r}, stderr {e.stderr!r})") from None
    return Run(args, p, time.monotonic() - t0)


class ServeServer(Server):
    """harness.Server started with an explicit command line (e.g. `serve`)."""

    def __init__(self, *a, args=(), **kw):
        super().__init__(*a, **kw)
        self.args = list(args)

    def launch(self):
        real = fav_bin()
        if self.out is not None:
            self.previous_lines += self.out.lines
        # As harness.Server.launch, with the arguments added (its line reader reused as is).
        self.proc = subprocess.Popen([real, *self.args], cwd=self.workdir, env=self.environment(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = harness._LineReader(self.proc.stdout)
        self.err = harness._LineReader(self.proc.stderr)
        self.port = None


class FakeInstance:
    """A loopback HTTP server standing in for a running instance: answers every GET with
    `status` (or, when `silent`, accepts connections and never answers). Records the paths."""

    def __init__(self, status=200, silent=False):
        self.paths = []
        if silent:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.sock.listen(16)  # the kernel completes handshakes; nobody ever reads
            self.port = self.sock.getsockname()[1]
            self.httpd = None
            return
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.paths.append(self.path)
                body = b'{"status":"ready"}' if status == 200 else b'{"status":"unavailable"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        else:
            self.sock.close()


class CliTest(unittest.TestCase):

    def setUp(self):
        self.servers = []
        self.tmp = tempfile.mkdtemp(prefix="fav-cli-")

    def tearDown(self):
        for s in self.servers:
            s.kill9()
            s.cleanup()
        subprocess.run(["rm", "-rf", self.tmp], check=False)

    def server(self, env=None, args=None, stub=None) -> Server:
        s = ServeServer(stub, env=env, args=args) if args is not None else Server(stub, env=env)
        self.servers.append(s)
        return s

    def stop_ok(self, s: Server):
        self.assertEqual(s.stop(), 0, "exit code on SIGTERM; stderr tail: %r" % s.err.lines[-10:])

    # -- --version, --help, bad usage --------------------------------------------------------

    def test_version(self):
        """`--version` prints the project version (CMakeLists.txt) and exits 0, whatever the
        environment holds (it reads no configuration)."""
        for env in (base_env(), base_env(API_PORT="abc", ENV="staging")):
            r = run(["--version"], env=env, cwd=self.tmp)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.out.strip(), project_version(), r)
            self.assertEqual(r.err, "", r)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_help(self):
        """`--help` / `-h` list every subcommand and exit 0, configuration or not."""
        for flag in ("--help", "-h"):
            r = run([flag], env=base_env(API_PORT="abc"), cwd=self.tmp)
            self.assertEqual(r.rc, 0, r)
            for sub in SUBCOMMANDS:
                self.assertRegex(r.out, rf"(?m)^\s+{re.escape(sub)}\s", r)
            self.assertIn("--version", r.out)
        for sub in SUBCOMMANDS:
            r = run([sub, "--help"], env=base_env(API_PORT="abc"), cwd=self.tmp)
            self.assertEqual(r.rc, 0, r)
            self.assertIn(sub, r.out)
        r = run(["healthcheck", "--help"], cwd=self.tmp)
        self.assertIn("--host", r.out)
        self.assertIn("--port", r.out)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_bad_usage(self):
        """An unknown subcommand, option or value: non-zero, a message on stderr, nothing started."""
        for args in (["bogus"], ["--no-such-option"], ["serve", "extra"], ["healthcheck", "--port", "abc"],
                     ["migrate", "check-config"]):
            with self.subTest(args=args):
                r = run(args, cwd=self.tmp, timeout=10)
                self.assertNotEqual(r.rc, 0, r)
                self.assertNotEqual(r.err.strip(), "", r)
                self.assertNotIn('"listening"', r.out)
        self.assertEqual(os.listdir(self.tmp), [])

    # -- check-config -------------------------------------------------------------------------

    def test_check_config_ok(self):
        """A valid environment: exit 0, one line on stdout, no secret printed, nothing created
        (it validates; it neither opens the database nor creates ./data)."""
        for env in (base_env(), base_env(ENV="prod", **STRONG),
                    base_env(DATABASE_URL=f"postgresql://u:secret-pw@127.0.0.1:{free_port()}/db", **STRONG)):
            with self.subTest(env={k: v for k, v in env.items() if k not in ("PATH", "HOME")}):
                r = run(["check-config"], env=env, cwd=self.tmp, timeout=10)
                self.assertEqual(r.rc, 0, r)
                self.assertEqual(len(r.out.strip().splitlines()), 1, r)
                self.assertEqual(r.err, "", r)
                for secret in (API_KEY, JWT_SECRET, "secret-pw"):
                    self.assertNotIn(secret, r.out + r.err)
                self.assertEqual(os.listdir(self.tmp), [])

    BAD = [("API_PORT", "abc"), ("API_PORT", "70000"), ("ENV", "staging"), ("LOG_LEVEL", "loud"),
           ("PAGINATION_PER_PAGE_LIMIT", "0"), ("PRODUCT_CATALOG_API_TIMEOUT_LIMIT", "-1"),
           ("PRODUCT_CATALOG_API_MAX_RETRIES", "many"), ("PRODUCT_CATALOG_API_BASE_URL", "ftp://example.com"),
           ("PRODUCT_CACHE_SOFT_TTL_MINUTES", "soon"), ("JWT_EXPIRE_DAYS", "abc"), ("DATABASE_POOL_SIZE", "0"),
           ("DATABASE_URL", "mysql://x/y"), ("DATABASE_DIALECT", "oracle")]

    def test_check_config_names_the_bad_variable(self):
        """A bad value: non-zero, and the reason is one line on stderr naming the variable."""
        for name, value in self.BAD:
            with self.subTest(name=name, value=value):
                r = run(["check-config"], env=base_env(**{name: value}), cwd=self.tmp, timeout=10)
                self.assertNotEqual(r.rc, 0, r)
                self.assertEqual(len(r.err_lines()), 1, r)
                self.assertIn(name, r.err_lines()[0], r)
                self.assertEqual(r.out.strip(), "", r)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_check_config_prod_secrets(self):
        """ENV=prod with a weak or default secret: non-zero, one line naming it, the value hidden."""
        cases = [({"API_KEY": "short-key"}, "API_KEY", "short-key"),
                 ({"JWT_SECRET_KEY": "short-jwt-secret"}, "JWT_SECRET_KEY", "short-jwt-secret"),
                 ({"API_KEY": None}, "API_KEY", None),
                 ({"JWT_SECRET_KEY": None}, "JWT_SECRET_KEY", None)]
        for override, name, secret in cases:
            with self.subTest(name=name, secret=secret):
                r = run(["check-config"], env=base_env(ENV="prod", **{**STRONG, **override}), cwd=self.tmp,
                        timeout=10)
                self.assertNotEqual(r.rc, 0, r)
                self.assertEqual(len(r.err_lines()), 1, r)
                self.assertIn(name, r.err_lines()[0], r)
                if secret:
                    self.assertNotIn(secret, r.out + r.err)

    def test_check_config_reads_dotenv(self):
        """The `.env` of the working directory is checked too; the real environment wins."""
        with open(os.path.join(self.tmp, ".env"), "w", encoding="utf-8") as f:
            f.write("API_PORT=not-a-port\n")
        r = run(["check-config"], env=base_env(), cwd=self.tmp, timeout=10)
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(len(r.err_lines()), 1, r)
        self.assertIn("API_PORT", r.err)
        r = run(["check-config"], env=base_env(API_PORT="8080"), cwd=self.tmp, timeout=10)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(sorted(os.listdir(self.tmp)), [".env"])

    MALFORMED_DB_URLS = ["postgresq://u:Pw-{s}@h/db",              # a mistyped scheme
                         "postgresql://u:Pw-{s}@[::1/db",         # libpq quotes this one back
                         "postgresql://u:Pw-{s}@127.0.0.1/db?sslmode=bogus",
                         "postgresql://u:Pw-{s}@127.0.0.1/db?no_such_option=1",
                         "postgresql://u:Pw%2D{s}@127.0.0.1:99999/db"]

    def test_malformed_database_urls_are_refused_without_their_password(self):
        """CONTRACT §7: "no passwords (a database URL's included, even a malformed one) ... ever
        logged"; and what `serve` refuses, `check-config` refuses too (§6: "A bad value stops the
        start with one clear line naming the variable")."""
        for i, template in enumerate(self.MALFORMED_DB_URLS):
            secret = f"Sekr3t{i}x{os.getpid()}"
            url = template.format(s=secret)
            for args in (["check-config"], ["serve"], ["migrate"]):
                with self.subTest(url=template, command=args[0]):
                    env = base_env(DATABASE_URL=url, API_PORT="0", API_HOST="127.0.0.1", **STRONG)
                    r = run(args, env=env, cwd=self.tmp, timeout=20)
                    self.assertNotEqual(r.rc, 0, r)
                    self.assertIn("DATABASE_URL", r.out + r.err, r)
                    self.assertNotIn(secret, r.out + r.err, "the password was printed")
                    self.assertNotIn("configuration ok", r.out, r)
                    self.assertNotIn('"listening"', r.out, r)

    def test_check_config_prod_postgres_off_loopback(self):
        """§8 "Transport to the database": ENV=prod over TCP off loopback is checked with
        sslmode=verify-full added (the URL's own sslmode otherwise): still a valid configuration."""
        for url in ("postgresql://u:pw-x@db.example/db", "postgresql://u:pw-x@db.example/db?sslmode=disable"):
            r = run(["check-config"], env=base_env(ENV="prod", DATABASE_URL=url, **STRONG), cwd=self.tmp, timeout=10)
            self.assertEqual(r.rc, 0, r)
            self.assertNotIn("pw-x", r.out + r.err)

    # -- migrate ------------------------------------------------------------------------------

    def test_migrate_then_serve(self):
        """`migrate` applies the migrations and exits 0 without listening; running it again
        changes nothing; `serve` then starts on that database."""
        s = self.server()
        env = s.environment()
        r = run(["migrate"], env=env, cwd=s.workdir, timeout=60)
        self.assertEqual(r.rc, 0, r)
        self.assertNotIn('"listening"', r.out)
        logs = [o for o in map(_json_obj, r.out.splitlines()) if o]
        self.assertTrue(any(o.get("message") == "migrations applied" for o in logs), r)
        tables = {row[0] for row in s.sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'" if s.db_path else
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        self.assertLessEqual({"customers", "products_cache", "customer_favorite_products", "schema_migrations"},
                             tables)
        versions = s.sql("SELECT version FROM schema_migrations ORDER BY version")
        self.assertGreater(len(versions), 0)
        self.assertEqual(s.sql("SELECT count(*) FROM customers"), [["0"]])

        r = run(["migrate"], env=env, cwd=s.workdir, timeout=60)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(s.sql("SELECT version FROM schema_migrations ORDER BY version"), versions)

        s.start()
        self.assertEqual(s.req("POST", "/auth/sign-up", {"name": "After Migrate", "email": unique_email(),
                                                          "password": "password-1234"}).status, 201)
        self.stop_ok(s)
        self.assertEqual(s.sql("SELECT version FROM schema_migrations ORDER BY version"), versions)

    def test_migrate_relative_sqlite_path(self):
        """`migrate` with a relative sqlite path creates the file (and its folder) under the
        working directory."""
        r = run(["migrate"], env=base_env(DATABASE_URL="sqlite:db/fav.db"), cwd=self.tmp, timeout=60)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "db", "fav.db")), os.listdir(self.tmp))

    def test_migrate_unreachable_database(self):
        """`migrate` against a database that cannot be reached: non-zero, promptly, saying why."""
        url = f"postgresql://fav:pw@127.0.0.1:{free_port()}/favorites"
        r = run(["migrate"], env=base_env(DATABASE_URL=url), cwd=self.tmp, timeout=60)
        self.assertNotEqual(r.rc, 0, r)
        self.assertNotEqual((r.out + r.err).strip(), "", r)
        self.assertNotIn("pw@", r.out + r.err)  # the password of the URL is not logged

    def test_migrate_bad_config(self):
        r = run(["migrate"], env=base_env(DATABASE_POOL_SIZE="none"), cwd=self.tmp, timeout=10)
        self.assertNotEqual(r.rc, 0, r)
        self.assertEqual(len(r.err_lines()), 1, r)
        self.assertIn("DATABASE_POOL_SIZE", r.err)
        self.assertEqual(os.listdir(self.tmp), [])

    # -- serve ----------------------------------------------------------------------------------

    def test_serve_explicit(self):
        """`serve` is the service (as with no subcommand): it listens, answers, logs its version,
        and exits 0 on SIGTERM."""
        s = self.server(args=["serve"]).start()
        self.assertEqual(s.req("GET", "/health").status, 200)
        listening = next(o for o in s.log_objects() if o.get("message") == "listening")
        self.assertEqual(listening.get("version"), project_version())
        self.stop_ok(s)

    # -- healthcheck ----------------------------------------------------------------------------

    def test_healthcheck_running_instance(self):
        """Exit 0 against a running instance, by --port or by API_PORT; --host is honoured."""
        s = self.server().start()
        port = s.port
        for args, env in ((["healthcheck", "--port", str(port)], base_env()),
                          (["healthcheck", "--host", "127.0.0.1", "--port", str(port)], base_env()),
                          (["healthcheck"], base_env(API_PORT=port))):
            with self.subTest(args=args):
                r = run(args, env=env, cwd=self.tmp, timeout=HEALTHCHECK_MAX_S + 5)
                self.assertEqual(r.rc, 0, r)
        # The probes went to /health/ready. The access-log line is written after the answer, so
        # wait for the third one rather than read the log at once (a loaded machine lags).
        seen = []

        def third_probe(o):
            if o.get("message") == "request" and o.get("path") == "/health/ready":
                seen.append(o)
            return len(seen) == 3

        self.assertIsNotNone(s.wait_log(third_probe, timeout=10), seen)
        paths = [o.get("path") for o in s.log_objects() if o.get("message") == "request"]
        self.assertEqual(paths.count("/health/ready"), 3, paths)
        self.stop_ok(s)
        # The instance is gone: 1.
        r = run(["healthcheck", "--port", str(port)], cwd=self.tmp, timeout=HEALTHCHECK_MAX_S + 5)
        self.assertEqual(r.rc, 1, r)
        self.assertEqual(os.listdir(self.tmp), [])

    def test_healthcheck_status(self):
        """Exit 0 only when /health/ready answers 200; a 503 (database down) is 1."""
        for status, rc in ((200, 0), (503, 1), (500, 1), (404, 1)):
            with self.subTest(status=status):
                fake = FakeInstance(status)
                try:
                    r = run(["healthcheck", "--port", str(fake.port)], cwd=self.tmp, timeout=HEALTHCHECK_MAX_S + 5)
                finally:
                    fake.close()
                self.assertEqual(r.rc, rc, r)
                self.assertEqual(fake.paths, ["/health/ready"])

    def test_healthcheck_nothing_listening(self):
        r = run(["healthcheck", "--port", str(free_port())], cwd=self.tmp, timeout=HEALTHCHECK_MAX_S + 5)
        self.assertEqual(r.rc, 1, r)

    def test_healthcheck_gives_up_on_a_silent_instance(self):
        """An instance that accepts but never answers: 1 within a bound, not a hang."""
        fake = FakeInstance(silent=True)
        try:
            r = run(["healthcheck", "--port", str(fake.port)], cwd=self.tmp, timeout=HEALTHCHECK_MAX_S + 5)
        finally:
            fake.close()
        self.assertEqual(r.rc, 1, r)
        self.assertLessEqual(r.seconds, HEALTHCHECK_MAX_S, r)


if __name__ == "__main__":
    unittest.main()
