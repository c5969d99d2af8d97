"""Black-box harness: starts the real `favorites-api` and `catalog-stub` binaries on
loopback and talks HTTP to them (Python 3 standard library only).

Environment:
  FAV_BIN            server binary        (default build/favorites-api, relative to the repo root)
  STUB_BIN           catalog stub binary  (default build/catalog-stub)
  STUB_PRODUCTS      stub products file   (default data/fakestore-products.json)
  FAV_TEST_BACKEND   sqlite (default) | postgresql
  FAV_TEST_PG_URL    admin libpq URI for postgresql (its user may CREATE DATABASE)
  FAV_TEST_PG_APP_URL  optional: the servers connect through this URI instead (a pooler in front
                     of FAV_TEST_PG_URL's server; its database name is replaced by the test's),
                     listen for the change feed on FAV_TEST_PG_URL directly (DATABASE_LISTEN_URL)
                     and run with DATABASE_POOL_MODE=FAV_TEST_PG_POOL_MODE (default transaction)
  FAV_CONTRACT_RECORD_DIR  when set, every (method, path, status, error code) a Client observes
                     is appended to a file there; tests/contract/check_openapi_drift.py checks
                     them against openapi/openapi.json after the suites ran
"""

import base64
import datetime
import gzip
import hashlib
import hmac
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
from typing import Any, NamedTuple, Optional

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

API_KEY = "test-api-key-0123456789abcdef0123456789"
JWT_SECRET = "test-jwt-secret-0123456789abcdef012345"

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
# Contract §1: "RFC 3339 with offset, UTC (2026-11-29T12:00:00.123Z)".
TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30


def _repo_path(p: str) -> str:
    return p if os.path.isabs(p) else os.path.join(REPO_ROOT, p)


def fav_bin() -> str:
    return _repo_path(os.environ.get("FAV_BIN", "build/favorites-api"))


def stub_bin() -> str:
    return _repo_path(os.environ.get("STUB_BIN", "build/catalog-stub"))


def stub_products_path() -> str:
    return _repo_path(os.environ.get("STUB_PRODUCTS", "data/fakestore-products.json"))


def load_stub_products() -> dict:
    """The stub's catalog as {id: product}, straight from the products file."""
    with open(stub_products_path(), encoding="utf-8") as f:
        return {p["id"]: p for p in json.load(f)}


def backend() -> str:
    return os.environ.get("FAV_TEST_BACKEND", "sqlite")


# ---------------------------------------------------------------------------------------
# HTTP client


class Headers:
    """Case-insensitive response headers that keep repeated fields (Set-Cookie)."""

    def __init__(self, items):
        self._items = [(k.lower(), v) for k, v in items]

    def get(self, name: str, default=None):
        name = name.lower()
        for k, v in self._items:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list:
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __getitem__(self, name: str):
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __repr__(self):
        return f"Headers({self._items!r})"


class Response(NamedTuple):
    status: int
    headers: Headers
    body: bytes  # as received (still gzip-compressed when Content-Encoding says so)
    json: Any  # parsed body (decompressed first), or None when not JSON

    @property
    def detail(self):
        return self.json.get("detail") if isinstance(self.json, dict) else None

    def __repr__(self):
        return f"Response(status={self.status}, body={self.body[:300]!r})"


def _parse_json(headers: Headers, body: bytes):
    if headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except OSError:
            return None
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


class _Recorder:
    """Appends each distinct observed (method, path, status, code) to this process's file in
    FAV_CONTRACT_RECORD_DIR (one JSON object per line). Paths are recorded without their query;
    the drift check maps them to the document's route templates."""

    def __init__(self):
        self._seen = set()
        self._lock = threading.Lock()
        self._file = None

    def record(self, method: str, target: str, status: int, body_json):
        directory = os.environ.get("FAV_CONTRACT_RECORD_DIR")
        if not directory:
            return
        path = target.split("?", 1)[0]
        code = body_json.get("detail") if isinstance(body_json, dict) and status >= 400 else None
        key = (method, path, status, code)
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
            if self._file is None:
                os.makedirs(directory, exist_ok=True)
                suite = os.path.splitext(os.path.basename(os.environ.get("FAV_SUITE", "") or "suite"))[0]
                name = f"{backend()}-{suite}-{os.getpid()}.jsonl"
                self._file = open(os.path.join(directory, name), "a", encoding="utf-8")
            self._file.write(json.dumps({"method": method, "path": path, "status": status, "code": code}) + "\n")
            self._file.flush()


RECORDER = _Recorder()


_RETRYABLE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
              ConnectionAbortedError, http.client.CannotSendRequest)


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port (not thread-safe: one per thread)."""

    def __init__(self, port: int, timeout: float = 30, record: bool = True):
        self.port = port
        self.timeout = timeout
        self.record = record  # False for clients of other servers (the stub's admin API)
        self._conn: Optional[http.client.HTTPConnection] = None
        self._used = False

    def close(self):
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._used = False

    def req(self, method: str, path: str, body=None, headers=None, token=None,
            raw_body=None, cookie_token=None, api_key=None, timeout=None) -> Response:
        """Sends one request. `body` is JSON-encoded (with Content-Type application/json);
        `raw_body` (bytes/str) is sent as is; `token` goes in Authorization: Bearer,
        `cookie_token` in the access_token cookie. A header given as None is not sent.
        No Accept-Encoding is sent unless given."""
        hdrs = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        if raw_body is not None:
            data = raw_body.encode("utf-8") if isinstance(raw_body, str) else raw_body
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if cookie_token is not None:
            hdrs["Cookie"] = f"access_token={cookie_token}"
        if api_key is not None:
            hdrs["x-aiqfome-api-key"] = api_key
        for k, v in (headers or {}).items():
            for existing in [e for e in hdrs if e.lower() == k.lower()]:
                del hdrs[existing]
            if v is not None:
                hdrs[k] = v
        if data is None and method in ("POST", "PUT", "PATCH"):
            data = b""
        if data is not None and not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(data))

        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                self._used = False
            reused = self._used
            conn = self._conn
            if timeout is not None:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for k, v in hdrs.items():
                    conn.putheader(k, v)
                conn.endheaders(data)
                r = conn.getresponse()
                raw = r.read()
            except _RETRYABLE:
                self.close()
                # A kept-alive connection the server closed while idle: retry once on a new one.
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                self.close()
                raise
            self._used = True
            if timeout is not None:
                conn.timeout = self.timeout
                if conn.sock is not None:
                    conn.sock.settimeout(self.timeout)
            if r.will_close:
                self.close()
            headers_ = Headers(r.getheaders())
            parsed = _parse_json(headers_, raw)
            if self.record:
                RECORDER.record(method, path, r.status, parsed)
            return Response(r.status, headers_, raw, parsed)
        raise AssertionError("unreachable")


def request_once(port: int, method: str, path: str, body=None, **kw) -> Response:
    """One request on a fresh connection of its own, closed afterwards."""
    c = Client(port)
    try:
        return c.req(method, path, body=body, **kw)
    finally:
        c.close()


def parse_raw_response(data: bytes) -> Optional[Response]:
    """Parses the first HTTP/1.1 response in `data` (Content-Length or read-to-close)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    items = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        items.append((k.strip(), v.strip()))
    headers = Headers(items)
    n = headers.get("content-length")
    body = rest[: int(n)] if n is not None and n.isdigit() else rest
    return Response(int(parts[1]), headers, body, _parse_json(headers, body))


def raw_request(port: int, data: bytes, timeout: float = 10) -> Optional[Response]:
    """Sends raw bytes on a fresh connection and reads until the response is complete or
    the server closes. Returns None when the server closed without an HTTP response."""
    return parse_raw_response(_exchange(port, data, timeout, _response_complete))


def send_all_read_all(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Sends raw bytes on a fresh connection; everything the server sends until it closes."""
    return _exchange(port, data, timeout)


def _exchange(port: int, data: bytes, timeout: float, done=None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_all(s, timeout, done)


def _response_complete(buf: bytes) -> bool:
    r = parse_raw_response(buf)
    return r is not None and r.headers.get("content-length", "").isdigit() and \
        len(r.body) >= int(r.headers["content-length"])


def read_all(s: socket.socket, timeout: float, done=None) -> bytes:
    """What the server sends until it closes, `timeout` passes, or done(bytes so far) holds."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        buf += chunk
        if done is not None and done(buf):
            break
    return buf


def _read_response(s: socket.socket, timeout: float) -> Optional[Response]:
    return parse_raw_response(read_all(s, timeout, _response_complete))


def send_large_body(port: int, head: bytes, body: bytes, timeout: float = 15) -> Optional[Response]:
    """Sends `head` then `body` in chunks, stopping early once the server answers (a server
    may reply 413 after the header alone and close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head)
            for i in range(0, len(body), 16384):
                readable, _, _ = select.select([s], [], [], 0)
                if readable:
                    break
                s.sendall(body[i:i + 16384])
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _read_response(s, timeout)


# ---------------------------------------------------------------------------------------
# Processes


class _LineReader:
    """Drains a pipe forever in a background thread, keeping every line."""

    def __init__(self, pipe):
        self.lines: list = []
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe):
        for raw in iter(pipe.readline, b""):
            with self._cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._cv.notify_all()
        with self._cv:
            self._closed = True
            self._cv.notify_all()

    def wait_for(self, pred, timeout: float, start: int = 0):
        """The first line (from index `start`) satisfying pred, or None after timeout/EOF."""
        deadline = time.monotonic() + timeout
        i = start
        with self._cv:
            while True:
                while i < len(self.lines):
                    if pred(self.lines[i]):
                        return self.lines[i]
                    i += 1
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    return None
                self._cv.wait(remaining)

    def join(self, timeout=5):
        self._thread.join(timeout)


def terminate(proc, timeout: float = 10):
    """Stops a process the tests started by its pid: SIGTERM, then SIGKILL after `timeout`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stub:
    """The catalog stub plus its admin API."""

    def __init__(self, proc, port, out):
        self.proc, self.port, self._out = proc, port, out
        self.base_url = f"http://127.0.0.1:{port}"
        self._client = Client(port, record=False)
        self._lock = threading.Lock()

    @classmethod
    def start(cls, extra_args=()):
        path = stub_bin()
        if not os.path.exists(path):
            raise RuntimeError(f"catalog stub binary not found: {path} (set STUB_BIN)")
        proc = subprocess.Popen([path, "--port", "0", "--products", stub_products_path(), *extra_args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        out = _LineReader(proc.stdout)
        line = out.wait_for(lambda l: l.startswith("catalog-stub listening on port "), 10)
        if line is None:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"catalog stub did not start: {out.lines}")
        return cls(proc, int(line.rsplit(" ", 1)[1]), out)

    def stop(self):
        self._client.close()
        terminate(self.proc)
        self._out.join()
        self.proc.stdout.close()

    def _admin(self, method, path, body=None):
        with self._lock:
            r = self._client.req(method, path, body=body)
        if r.status != 200:
            raise AssertionError(f"stub admin {method} {path} {body} -> {r.status} {r.body!r}")
        return r.json

    def faults(self, **kw):
        """POST /__admin/faults: latency_ms, hang_count, reset_count, fail_count, fail_status,
        rate_limit_count, retry_after_s, not_found_style, only_ids, flood_count, flood_style."""
        return self._admin("POST", "/__admin/faults", kw)

    def product(self, pid: int, **kw):
        """POST /__admin/products/{id}: gone, title, price."""
        return self._admin("POST", f"/__admin/products/{pid}", kw)

    def reset(self):
        return self._admin("POST", "/__admin/reset", {})

    def calls(self) -> dict:
        return self._admin("GET", "/__admin/calls")

    def recent(self):
        """GET /__admin/recent: the last catalog requests (bounded), each {path, traceparent}."""
        return self._admin("GET", "/__admin/recent")["recent"]

    def product_calls(self, pid: int) -> int:
        return int(self.calls()["products"].get(str(pid), 0))

    def wait_product_calls(self, pid: int, at_least: int, timeout: float) -> int:
        """Polls until the stub saw `at_least` calls for pid (or timeout); returns the count."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.product_calls(pid)
            if n >= at_least or time.monotonic() >= deadline:
                return n
            time.sleep(0.02)


def _pg_admin_url() -> str:
    url = os.environ.get("FAV_TEST_PG_URL")
    if not url:
        raise RuntimeError("FAV_TEST_BACKEND=postgresql needs FAV_TEST_PG_URL")
    return url


def _pg_url_with_db(url: str, db: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, parts.fragment))


def _psql(url: str, sql: str) -> str:
    r = subprocess.run(["psql", url, "-X", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()}")
    return r.stdout


def wait_until(pred, timeout: float, what: str, step: float = 0.02):
    """Re-checks pred every `step` seconds until it holds (returns its value) or the deadline
    passes (AssertionError naming `what`): the one way a test waits for a signal."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


class Customer(NamedTuple):
    id: str
    email: str
    password: str
    token: str


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}@example.com"


class Server:
    """One favorites-api process with its own working directory and database.

    `env`: overrides of the base environment (a None value removes the variable).
    `dotenv`: text written to `.env` in the working directory before each start.
    A server can be stopped and started again (restart) on the same database."""

    def __init__(self, stub: Optional[Stub] = None, env: Optional[dict] = None,
                 dotenv: Optional[str] = None, database: str = "default"):
        self.stub = stub
        self.env_overrides = dict(env or {})
        self.workdir = tempfile.mkdtemp(prefix="fav-http-")
        if dotenv is not None:
            with open(os.path.join(self.workdir, ".env"), "w", encoding="utf-8") as f:
                f.write(dotenv)
        self.backend = backend()
        self._pg_db = None
        self._pg_direct_url = None  # the server's own database, not through the pooler
        self.db_path = None  # the SQLite file, when that is the backend
        if database != "default":
            self.database_url = database  # None → no DATABASE_URL at all
        elif self.backend == "postgresql":
            self._pg_db = f"fav_http_{uuid.uuid4().hex[:12]}"
            _psql(_pg_admin_url(), f'CREATE DATABASE "{self._pg_db}"')
            self.database_url = _pg_url_with_db(_pg_admin_url(), self._pg_db)
            if os.environ.get("FAV_TEST_PG_APP_URL"):
                self._pg_direct_url = self.database_url
                self.database_url = _pg_url_with_db(os.environ["FAV_TEST_PG_APP_URL"], self._pg_db)
        elif self.backend == "sqlite":
            self.db_path = os.path.join(self.workdir, "favorites.db")
            self.database_url = f"sqlite:{self.db_path}"
        else:
            raise RuntimeError(f"unknown FAV_TEST_BACKEND={self.backend}")
        self.proc = None
        self.port = None
        self.out: Optional[_LineReader] = None
        self.err: Optional[_LineReader] = None
        self.previous_lines: list = []  # stdout lines of earlier runs (before a restart)
        self.secrets: set = set()  # passwords and tokens the helpers saw, for log scans
        self._local = threading.local()
        self._clients = []
        self._clients_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------

    def environment(self) -> dict:
        env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
               "HOME": os.environ.get("HOME", "/tmp")}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "LLVM_PROFILE_FILE"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update({
            "API_PORT": "0",
            "API_HOST": "127.0.0.1",
            "API_KEY": API_KEY,
            "JWT_SECRET_KEY": JWT_SECRET,
            # Nothing listens on port 9 of loopback (discard): "catalog down" when no stub.
            "PRODUCT_CATALOG_API_BASE_URL": self.stub.base_url if self.stub else "http://127.0.0.1:9",
            "LOG_LEVEL": "info",
            "API_THREADS": "2",
            # Every test client is 127.0.0.1, one client for the hash queue's fair shares (§8):
            # suites that sign many customers up at once would hit its default of 4. The
            # fair-share suite (test_fair_shares.py) runs with the default.
            "PASSWORD_HASH_QUEUE_PER_CLIENT": "64",
        })
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        if self._pg_direct_url is not None:
            env["DATABASE_LISTEN_URL"] = self._pg_direct_url
            env["DATABASE_POOL_MODE"] = os.environ.get("FAV_TEST_PG_POOL_MODE", "transaction")
        for k, v in self.env_overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def launch(self):
        """Starts the process without waiting for it to listen."""
        path = fav_bin()
        if not os.path.exists(path):
            raise RuntimeError(f"server binary not found: {path} (build it, or set FAV_BIN)")
        if self.out is not None:
            self.previous_lines += self.out.lines
        self.proc = subprocess.Popen([path], cwd=self.workdir, env=self.environment(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out = _LineReader(self.proc.stdout)
        self.err = _LineReader(self.proc.stderr)
        self.port = None

    def start(self):
        """Starts the process and waits for its `listening` log line."""
        self.launch()
        return self.wait_listening()

    def wait_listening(self):
        """Waits for the launched process's `listening` log line and takes its port."""

        def is_listening(line):
            obj = _json_obj(line)
            return obj is not None and obj.get("message") == "listening" and isinstance(obj.get("port"), int)

        deadline = time.monotonic() + START_TIMEOUT_S
        line = None
        while line is None and time.monotonic() < deadline and self.proc.poll() is None:
            line = self.out.wait_for(is_listening, 0.2)
        if line is None:
            line = self.out.wait_for(is_listening, 0.5)
        if line is None:
            self.kill9()
            raise RuntimeError("server did not start; stdout:\n" + "\n".join(self.out.lines[-30:]) +
                               "\nstderr:\n" + "\n".join(self.err.lines[-30:]))
        self.port = _json_obj(line)["port"]
        return self

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> Optional[int]:
        """The exit code, or None if still running after timeout."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap()
        return rc

    def _reap(self):
        self.out.join()
        self.err.join()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()

    def stop(self, sig=signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Signals the process and waits for it; returns its exit code (kills it after timeout
        and raises)."""
        self.close_clients()
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait_exit(timeout)
        if rc is None:
            self.kill9()
            raise AssertionError(f"server did not exit within {timeout}s of signal {sig}")
        return rc

    def kill9(self):
        self.close_clients()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self._reap()

    def restart(self):
        """SIGKILL-safe restart on the same working directory and database."""
        if self.proc is not None and self.proc.poll() is None:
            rc = self.stop()
            if rc != 0:
                raise AssertionError(f"server exited with {rc} on SIGTERM")
        return self.start()

    def cleanup(self):
        """Removes the working directory and the PostgreSQL database (after stop)."""
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self._pg_db:
            try:
                _psql(_pg_admin_url(), f'DROP DATABASE IF EXISTS "{self._pg_db}" WITH (FORCE)')
            except (RuntimeError, subprocess.TimeoutExpired):
                pass

    # -- logs -----------------------------------------------------------------------------

    def log_lines(self) -> list:
        """Every stdout line of this server (earlier runs included)."""
        return self.previous_lines + (self.out.lines if self.out else [])

    def all_output(self) -> str:
        return "\n".join(self.log_lines() + (self.err.lines if self.err else []))

    def output_tail(self, n: int = 15) -> str:
        """The last stdout lines that are not access-log lines, then the stderr tail."""
        lines = [l for l in self.log_lines() if '"status"' not in l][-n:]
        return "\n".join(lines + ["-- stderr:"] + (self.err.lines[-n:] if self.err else []))

    def log_objects(self) -> list:
        return [o for o in (_json_obj(l) for l in self.log_lines()) if o is not None]

    def wait_log(self, pred, timeout: float = 5) -> Optional[dict]:
        """The first JSON log line (of the current run) satisfying pred(obj), or None."""
        line = self.out.wait_for(lambda l: (lambda o: o is not None and pred(o))(_json_obj(l)), timeout)
        return _json_obj(line) if line is not None else None

    def log_barrier(self, timeout: float = 15) -> None:
        """Sends a marker request and waits for its access-log line. Every line the service
        logged before it took the marker has then been read: the positive signal that stands for
        "let late lines arrive". A request's own access line is logged after its answer is sent,
        so it is covered once the server has closed that request's connection (read to EOF), or
        once the line itself was awaited; measured: 100 of 100 after EOF, 46 of 50 right after
        the answer on a connection the client closed."""
        cid = "barrier-" + uuid.uuid4().hex[:12]
        request_once(self.port, "GET", "/health", headers={"x-correlation-id": cid})
        if self.wait_log(lambda o: o.get("correlation_id") == cid and "status" in o, timeout) is None:
            raise AssertionError("the marker request's access-log line never came")

    def metric(self, name: str, default: Optional[float] = 0.0) -> Optional[float]:
        """The value of an unlabelled series in one /metrics scrape (`default` when absent)."""
        r = request_once(self.port, "GET", "/metrics")
        if r.status != 200:
            raise AssertionError(f"/metrics answered {r.status}")
        for line in r.body.decode("utf-8").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return default

    def db_idle(self) -> bool:
        """True when the service runs no statement and none waits for a connection (SQLite:
        its workers), and, on PostgreSQL, no backend of this database but the asking one is
        active or waiting: a write it gave up on can no longer commit."""
        running = self.proc is not None and self.proc.poll() is None
        if running and (self.metric("fav_db_pool_in_use") or self.metric("fav_db_pool_waiting")):
            return False
        if self._pg_db:
            return self.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid() AND state = 'active' "
                            "AND query NOT ILIKE 'LISTEN%'") == [["0"]]
        return True

    # -- HTTP -----------------------------------------------------------------------------

    def client(self) -> Client:
        """This thread's keep-alive client."""
        c = getattr(self._local, "client", None)
        if c is None or c.port != self.port:
            c = Client(self.port)
            self._local.client = c
            with self._clients_lock:
                self._clients.append(c)
        return c

    def close_clients(self):
        with self._clients_lock:
            for c in self._clients:
                c.close()

    def req(self, method, path, body=None, headers=None, token=None, raw_body=None, **kw) -> Response:
        return self.client().req(method, path, body=body, headers=headers, token=token,
                                 raw_body=raw_body, **kw)

    # -- customers ------------------------------------------------------------------------

    def sign_up(self, name: str, email: str, password: str) -> Response:
        self.secrets.add(password)
        return self.req("POST", "/auth/sign-up", {"name": name, "email": email, "password": password})

    def sign_in_response(self, email: str, password: str) -> Response:
        self.secrets.add(password)
        r = self.req("POST", "/auth/sign-in", {"email": email, "password": password})
        if isinstance(r.json, dict):
            for k in ("access_token", "refresh_token"):
                if isinstance(r.json.get(k), str):
                    self.secrets.add(r.json[k])
        return r

    def sign_in(self, email: str, password: str) -> str:
        r = self.sign_in_response(email, password)
        if r.status != 200:
            raise AssertionError(f"sign-in of {email} failed: {r.status} {r.body!r}")
        return r.json["access_token"]

    def new_customer(self, name: str = "Test Customer") -> Customer:
        email = unique_email()
        password = f"pw-{uuid.uuid4().hex}"
        r = self.sign_up(name, email, password)
        if r.status != 201:
            raise AssertionError(f"sign-up failed: {r.status} {r.body!r}")
        return Customer(r.json["id"], email, password, self.sign_in(email, password))

    # -- database -------------------------------------------------------------------------

    def uuid_sql(self, value: str) -> str:
        """A UUID literal for this backend's SQL (PostgreSQL has no implicit text→uuid cast
        in INSERT ... SELECT)."""
        return f"'{value}'::uuid" if self._pg_db else f"'{value}'"

    def sql(self, query: str) -> list:
        """Runs one SQL statement with the backend's CLI; rows as lists of strings."""
        if self.db_path:
            r = subprocess.run(["sqlite3", "-batch", "-separator", "|", "-cmd", ".timeout 10000",
                                self.db_path, query], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"sqlite3 failed: {r.stderr.strip()}")
            out = r.stdout
        elif self._pg_db:
            out = _psql(self._pg_direct_url or self.database_url, query)
        else:
            raise RuntimeError("no database to query")
        return [line.split("|") for line in out.splitlines() if line != ""]

    def age_cached_product(self, pid: int, minutes: float) -> None:
        """Makes the cached copy of product `pid` `minutes` old: the time knob for TTL tests,
        without sleeping. It edits products_cache behind the service's back, so the instance must
        run with READ_CACHE_BYTES=0 (the read cache learns only of writes made through an
        instance, its own or the change feed's, and would keep showing the younger copy)."""
        if self.db_path:
            at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
            # The SQLite backend stores RFC 3339 UTC with microseconds.
            self.sql(f"UPDATE products_cache SET fetched_at = '{at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}' "
                     f"WHERE id = {pid}")
        else:
            self.sql(f"UPDATE products_cache SET fetched_at = now() - interval '{minutes} minutes' WHERE id = {pid}")
        rows = self.sql(f"SELECT count(*) FROM products_cache WHERE id = {pid}")
        if rows != [["1"]]:
            raise AssertionError(f"product {pid} is not cached")


def start_servers(stub: Optional[Stub], envs: list, database: str, ready=None) -> list:
    """One Server per environment in `envs`, all on `database`, launched at the same moment, then
    each awaited (`ready(server)`, by default its `listening` line); should one fail, all are
    killed and removed. The instance starter of the multi-instance and HA tests."""
    servers = [Server(stub, env=env, database=database) for env in envs]
    try:
        for s in servers:
            s.launch()
        for s in servers:
            if ready:
                ready(s)
            else:
                s.wait_listening()
    except BaseException:
        for s in servers:
            s.kill9()
            s.cleanup()
        raise
    return servers


def server_for(tc: unittest.TestCase, stub: Optional[Stub] = None, **kw) -> Server:
    """A Server (not started yet) that is killed if still running, and removed, after test
    `tc`, whatever the test did."""
    s = Server(stub, **kw)
    tc.addCleanup(s.cleanup)
    tc.addCleanup(s.kill9)
    return s


def stop_servers(servers) -> None:
    """SIGTERM to each (SIGKILL if it does not exit in time), then its folder and database go."""
    for s in servers:
        try:
            s.stop()
        except AssertionError:
            s.kill9()
        s.cleanup()


def start_stub(extra_args=()) -> Stub:
    """A running catalog stub on a kernel-chosen port."""
    return Stub.start(extra_args)


def start_server(stub: Optional[Stub], env_overrides: Optional[dict] = None, db: str = "default",
                 dotenv: Optional[str] = None) -> Server:
    """A running server. `db`: "default" (a fresh database), None (no DATABASE_URL), a
    DATABASE_URL, or a SQLite file path (shared by servers started with it)."""
    if db not in ("default", None) and not db.startswith(("sqlite:", "postgresql:", "postgres:")):
        db = "sqlite:" + os.path.abspath(db)
    return Server(stub, env=env_overrides, dotenv=dotenv, database=db).start()


def _json_obj(line):
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# JWT


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_part(token: str, index: int) -> dict:
    """The decoded JSON header (0) or payload (1) of a JWT."""
    return json.loads(b64url_decode(token.split(".")[index]))


_HASHES = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def mint_jwt(claims: dict, secret: str = JWT_SECRET, alg: str = "HS256", header: Optional[dict] = None) -> str:
    """A compact JWS; alg "none" gives an empty signature."""
    header = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    if alg == "none":
        return signing_input + "."
    sig = hmac.new(secret.encode(), signing_input.encode(), _HASHES[alg]).digest()
    return signing_input + "." + b64url(sig)


# ---------------------------------------------------------------------------------------
# Test base


class ServerTestCase(unittest.TestCase):
    """Starts a stub and a server for the class; stops both at the end and asserts the
    server exits 0 on SIGTERM. Subclasses set `server_env` (and `with_stub`)."""

    server_env: dict = {}
    with_stub = True
    stub: Optional[Stub] = None
    server: Server

    @classmethod
    def setUpClass(cls):
        cls.stub = Stub.start() if cls.with_stub else None
        cls.server = None
        try:
            cls.server = Server(cls.stub, env=cls.server_env)
            cls.server.start()
            cls.prepare()
        except BaseException:
            if cls.server:
                cls.server.kill9()
                cls.server.cleanup()
            if cls.stub:
                cls.stub.stop()
            raise

    @classmethod
    def prepare(cls):
        """Per-class fixtures, run once the server listens (e.g. customers)."""

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.server.stop()
            if rc != 0:
                raise AssertionError(f"server exited with {rc} on SIGTERM; last output:\n" +
                                     cls.server.output_tail())
        finally:
            if cls.stub:
                cls.stub.stop()
            cls.server.cleanup()

    # -- shortcuts ------------------------------------------------------------------------

    def req(self, *a, **kw) -> Response:
        return self.server.req(*a, **kw)

    def assertError(self, r: Response, status: int, code: str, msg=None):
        """The response is `status` with body {"detail": code, "status": status, "title": "...", ...}
        (contract §10: error bodies keep `detail` and add `status` and `title`)."""
        self.assertEqual((r.status, r.detail), (status, code), msg or r)
        self.assertEqual(r.json.get("status"), status, msg or r)
        self.assertIsInstance(r.json.get("title"), str, msg or r)
        self.assertNotEqual(r.json["title"].strip(), "", msg or r)

    def assertJsonContentType(self, r: Response):
        self.assertEqual(r.headers.get("content-type", "").lower().replace(" ", ""),
                         "application/json;charset=utf-8", r.headers)

    def error_fields(self, r: Response) -> set:
        """The `field` names of a validation error's `errors` list."""
        errors = r.json.get("errors") if isinstance(r.json, dict) else None
        self.assertIsInstance(errors, list, f"no errors list in {r}")
        for e in errors:
            self.assertIsInstance(e.get("field"), str, r)
            self.assertIsInstance(e.get("code"), str, r)
        return {e["field"] for e in errors}
