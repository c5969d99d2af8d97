"""Hostile load, the HTTP layer (CONTRACT §8): connection caps (global and per client) and
descriptor exhaustion, slow clients, framing and request smuggling, per-address rate limits
behind trusted proxies and the warning for an untrusted X-Forwarded-For,
bounded metric labels and safe development defaults. Every attack is bounded in count and
time and goes to loopback only."""

import os
import random
import select
import resource
import socket
import string
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API_KEY, Client, Server, ServerTestCase, _read_response, fav_bin,  # noqa: E402
                     parse_raw_response, read_all, request_once, send_all_read_all)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def metric_series(text: str) -> list:
    return [l for l in text.splitlines() if l and not l.startswith("#")]


class LimitedServer(Server):
    """A server started with RLIMIT_NOFILE set to `nofile` (soft and hard) for its process."""

    def __init__(self, *a, nofile: int, **kw):
        super().__init__(*a, **kw)
        self.nofile = nofile

    def launch(self):
        if self.out is not None:
            self.previous_lines += self.out.lines
        limit = self.nofile

        def lower():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        from harness import _LineReader  # the harness's own pipe reader
        self.proc = subprocess.Popen([fav_bin()], cwd=self.workdir, env=self.environment(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=lower)
        self.out = _LineReader(self.proc.stdout)
        self.err = _LineReader(self.proc.stderr)
        self.port = None


class FramingTest(ServerTestCase):
    """§8: "A Transfer-Encoding other than chunked: 501 not_implemented. Transfer-Encoding
    together with Content-Length, or several Content-Length values that differ: 400
    bad_request. Both close the connection." """

    with_stub = False
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"

    def metrics_requests_logged(self) -> int:
        return sum(1 for o in self.server.log_objects() if o.get("message") == "request" and o.get("path") == "/metrics")

    def assert_refused_alone(self, head: bytes, status: int, code: str):
        before = self.metrics_requests_logged()
        data = send_all_read_all(self.server.port, head + self.smuggled)
        r = parse_raw_response(data)
        self.assertIsNotNone(r, data)
        self.assertEqual(r.status, status, data)
        self.assertEqual(r.json.get("detail"), code)
        self.assertEqual(r.headers.get("connection", "").lower(), "close", data)
        # Exactly one answer on the connection: the smuggled request never ran.
        self.assertEqual(data.count(b"HTTP/1.1 "), 1, data)
        self.server.log_barrier()  # a (wrongly) served request's line would be read by now
        self.assertEqual(self.metrics_requests_logged(), before, "the smuggled GET /metrics ran")

    def test_transfer_encodings_other_than_chunked_501(self):
        for te in (b"gzip", b"identity", b"chunked, gzip", b"gzip, chunked", b"GZIP", b"chunked;q=1"):
            with self.subTest(te=te):
                self.assert_refused_alone(b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          b"Transfer-Encoding: " + te + b"\r\n\r\n", 501, "not_implemented")

    def test_two_transfer_encoding_fields_501(self):
        self.assert_refused_alone(b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, "not_implemented")

    def test_transfer_encoding_with_content_length_400(self):
        for head in (b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                     b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                     b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 0\r\n\r\n"):
            with self.subTest(head=head):
                self.assert_refused_alone(head, 400, "bad_request")

    def test_differing_content_lengths_400(self):
        self.assert_refused_alone(b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                  b"Content-Length: 3\r\n\r\n{}", 400, "bad_request")

    def test_chunked_still_works(self):
        body = b'{"email": "nobody@example.com", "password": "wrong-password"}'
        data = (b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        r = parse_raw_response(send_all_read_all(self.server.port, data))
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json["detail"], "invalid_credentials")


class SlowClientTest(ServerTestCase):
    """§8: "A request's headers must arrive within API_HEADER_TIMEOUT_SECONDS (default 10) of
    its first byte, and the whole request within API_REQUEST_TIMEOUT_SECONDS; else 408
    request_timeout and the connection closes." """

    with_stub = False
    server_env = {"API_HEADER_TIMEOUT_SECONDS": "1", "API_REQUEST_TIMEOUT_SECONDS": "3"}

    def trickle(self, head: bytes, drip: bytes, every: float, limit: float):
        """Sends `head`, then `drip` every `every` seconds, until the server answers or closes."""
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=limit)
        try:
            started = time.monotonic()
            s.sendall(head)
            while time.monotonic() - started < limit:
                s.settimeout(every)
                try:
                    chunk = s.recv(65536)
                    elapsed = time.monotonic() - started
                    return chunk + read_all(s, 5), elapsed
                except socket.timeout:
                    pass
                try:
                    s.sendall(drip)
                except (BrokenPipeError, ConnectionResetError):
                    return b"", time.monotonic() - started
            return b"", time.monotonic() - started
        finally:
            s.close()

    def test_slow_headers_408(self):
        # A header line a byte at a time: each byte resets no deadline.
        data, elapsed = self.trickle(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a", 0.2, 30)
        r = parse_raw_response(data)
        self.assertIsNotNone(r, data)
        self.assertEqual(r.status, 408)
        self.assertEqual(r.json["detail"], "request_timeout")
        self.assertEqual(r.headers.get("connection", "").lower(), "close")
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 15)  # 1 s deadline; generous for a loaded machine

    def test_slow_body_408(self):
        data, elapsed = self.trickle(b"POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 1000\r\n\r\n{", b" ", 0.2, 40)
        r = parse_raw_response(data)
        self.assertIsNotNone(r, data)
        self.assertEqual(r.status, 408)
        self.assertEqual(r.json["detail"], "request_timeout")
        self.assertGreaterEqual(elapsed, 2.9)  # the body may take API_REQUEST_TIMEOUT_SECONDS
        self.assertLess(elapsed, 20)

    def test_prompt_requests_unaffected(self):
        # Headers in two pieces well within the deadline, then served normally.
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\n")
            time.sleep(0.3)  # the stimulus: a pause well within the header deadline, which must be tolerated
            s.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
            r = parse_raw_response(read_all(s, 10))
        self.assertEqual(r.status, 200)


class RateLimitTest(ServerTestCase):
    """§8: "Every request except /health, /health/ready and /metrics takes a token from its
    client address's bucket ... An empty bucket: 429 rate_limited with Retry-After (whole
    seconds, ≥ 1); answers on limited routes carry the IETF RateLimit header fields." """

    with_stub = False
    # One token every 4 s: a burst of quick requests cannot be refilled meanwhile.
    server_env = {"RATE_LIMIT_BURST": "5", "RATE_LIMIT_PER_SECOND": "0.25"}

    def drain(self, headers=None, n=5):
        """n quick requests; the answers."""
        c = Client(self.server.port)
        try:
            return [c.req("GET", "/customers", api_key=API_KEY, headers=headers) for _ in range(n)]
        finally:
            c.close()

    def test_burst_then_429_with_retry_after(self):
        answers = self.drain(n=5)
        for i, r in enumerate(answers):
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.headers.get("ratelimit-limit"), "5")
            self.assertIn(r.headers.get("ratelimit-remaining"), {str(v) for v in range(0, 5)})
            self.assertTrue(r.headers.get("ratelimit-reset", "").isdigit(), r.headers)
        self.assertEqual(answers[-1].headers.get("ratelimit-remaining"), "0")
        refused = self.drain(n=1)[0]
        self.assertEqual(refused.status, 429, refused)
        self.assertEqual(refused.json["detail"], "rate_limited")
        retry = refused.headers.get("retry-after")
        self.assertTrue(retry and retry.isdigit() and int(retry) >= 1, refused.headers)
        self.assertEqual(refused.headers.get("ratelimit-remaining"), "0")
        # Exempt routes answer while the bucket is empty, and take no token.
        for path in ("/health", "/health/ready", "/metrics"):
            with self.subTest(path=path):
                r = request_once(self.server.port, "GET", path)
                self.assertEqual(r.status, 200, r)
                self.assertNotIn("ratelimit-limit", r.headers)
        # X-Forwarded-For from an untrusted peer changes nothing.
        r = self.drain(headers={"X-Forwarded-For": "198.51.100.7"}, n=1)[0]
        self.assertEqual(r.status, 429, r)
        # The refill itself is a rule of time, checked with an injected clock by the unit test
        # RateLimit.BurstThenRefusedThenRefilled; here, Retry-After never exceeds one token's
        # interval (a token every 4 s).
        self.assertLessEqual(int(retry), 4, refused.headers)


class TrustedProxyTest(ServerTestCase):
    """§8: "The client address is the peer's, or, when the peer is in TRUSTED_PROXIES, the
    rightmost address of X-Forwarded-For that is not itself trusted." """

    with_stub = False
    server_env = {"RATE_LIMIT_BURST": "3", "RATE_LIMIT_PER_SECOND": "0.1",
                  "TRUSTED_PROXIES": "127.0.0.0/8, ::1, 10.0.0.0/8"}

    def statuses(self, xff, n):
        c = Client(self.server.port)
        try:
            return [c.req("GET", "/nope", headers={"X-Forwarded-For": xff}).status for _ in range(n)]
        finally:
            c.close()

    def test_forwarded_for_honoured_from_trusted_peer(self):
        self.assertEqual(self.statuses("203.0.113.1", 3), [404, 404, 404])
        self.assertEqual(self.statuses("203.0.113.1", 1), [429])
        # Another client behind the same proxy has its own bucket...
        self.assertEqual(self.statuses("203.0.113.2", 3), [404, 404, 404])
        # ...and the rightmost untrusted hop is the client: a forged left part changes nothing.
        self.assertEqual(self.statuses("6.6.6.6, 203.0.113.1, 10.1.2.3", 1), [429])
        self.assertEqual(self.statuses("6.6.6.7, 203.0.113.2", 1), [429])


def connect_from(source: str, port: int) -> socket.socket:
    """A connection to the server from the loopback address `source` (127.0.0.0/8 is all local)."""
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def health_on(s: socket.socket):
    """GET /health on a kept-alive connection; the response, or None when the server closed it."""
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        return None
    return _read_response(s, 10)


class ConnectionsPerClientTest(ServerTestCase):
    """§8 fair shares: "at most API_MAX_CONNECTIONS_PER_CLIENT (default 256; addresses in
    TRUSTED_PROXIES exempt) open connections; past it a new connection from that address is
    closed at once while others are still accepted." """

    with_stub = False
    server_env = {"API_MAX_CONNECTIONS_PER_CLIENT": "5"}

    def test_one_address_at_its_cap_does_not_lock_out_another(self):
        held = []
        try:
            for _ in range(5):
                held.append(connect_from("127.0.0.2", self.server.port))
                r = health_on(held[-1])
                self.assertIsNotNone(r)
                self.assertEqual(r.status, 200)
            # The sixth from 127.0.0.2: closed at once, its request never answered.
            with connect_from("127.0.0.2", self.server.port) as extra:
                self.assertIsNone(health_on(extra))
            note = self.server.wait_log(lambda o: "per-client connection limit" in o.get("message", ""), 10)
            self.assertIsNotNone(note, self.server.output_tail())
            self.assertEqual(note["client"], "127.0.0.2")
            # Another address is still served, on new connections, while 127.0.0.2 holds its cap.
            for _ in range(3):
                with connect_from("127.0.0.3", self.server.port) as other:
                    r = health_on(other)
                    self.assertIsNotNone(r)
                    self.assertEqual(r.status, 200)
            # The held connections still work; one closing gives its slot back.
            self.assertEqual(health_on(held[0]).status, 200)
            held.pop(0).close()
            deadline = time.monotonic() + 10
            while True:
                with connect_from("127.0.0.2", self.server.port) as again:
                    r = health_on(again)
                if r is not None:
                    break
                self.assertLess(time.monotonic(), deadline, "a closed connection's slot never came back")
                time.sleep(0.05)
            self.assertEqual(r.status, 200)
        finally:
            for s in held:
                s.close()


class TrustedProxyConnectionsTest(ServerTestCase):
    """§8: "(default 256; addresses in TRUSTED_PROXIES exempt)": a balancer carries many clients."""

    with_stub = False
    server_env = {"API_MAX_CONNECTIONS_PER_CLIENT": "2", "TRUSTED_PROXIES": "127.0.0.4"}

    def test_trusted_proxy_is_not_capped(self):
        held = []
        try:
            for _ in range(6):
                held.append(connect_from("127.0.0.4", self.server.port))
                r = health_on(held[-1])
                self.assertIsNotNone(r, "a trusted proxy's connection was closed")
                self.assertEqual(r.status, 200)
        finally:
            for s in held:
                s.close()


class UntrustedForwardedForTest(ServerTestCase):
    """§8: "a request carrying X-Forwarded-For from a peer that is not [in TRUSTED_PROXIES] is
    logged as a warning naming that peer (at most once an hour per peer), so the
    misconfiguration is visible." """

    with_stub = False
    server_env = {"TRUSTED_PROXIES": "127.0.0.6"}

    def warnings(self) -> list:
        return [o for o in self.server.log_objects()
                if o.get("level") == "warning" and "X-Forwarded-For" in o.get("message", "")]

    def send(self, source: str, xff=True):
        with connect_from(source, self.server.port) as s:
            extra = b"X-Forwarded-For: 198.51.100.9\r\n" if xff else b""
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
            self.assertEqual(_read_response(s, 10).status, 200)

    def test_warned_once_per_peer(self):
        self.send("127.0.0.6")  # trusted: no warning
        self.send("127.0.0.7", xff=False)  # no header: no warning
        for _ in range(5):
            self.send("127.0.0.5")
        first = self.server.wait_log(lambda o: "X-Forwarded-For" in o.get("message", ""), 10)
        self.assertIsNotNone(first, self.server.output_tail())
        self.assertEqual(first["level"], "warning")
        self.assertEqual(first["peer"], "127.0.0.5")
        self.assertIn("TRUSTED_PROXIES", first["message"])
        # Another untrusted peer gets its own line; after it, no more from 127.0.0.5.
        self.send("127.0.0.8")
        self.assertIsNotNone(self.server.wait_log(lambda o: o.get("peer") == "127.0.0.8", 10))
        self.assertEqual([o["peer"] for o in self.warnings()], ["127.0.0.5", "127.0.0.8"])


class MetricLabelsTest(ServerTestCase):
    """§8: "Metric labels come only from the route table and fixed sets (a method outside GET
    HEAD POST PATCH DELETE OPTIONS counts as `other`, an unmatched path as route `unmatched`):
    what clients send never adds a series." """

    with_stub = False

    def series(self):
        r = request_once(self.server.port, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        return metric_series(r.body.decode())

    def random_requests(self, n):
        rnd = random.Random(9)
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as s:
            batch = b""
            for i in range(n):
                method = "".join(rnd.choice(string.ascii_uppercase + string.digits) for _ in range(9))
                path = "/" + "".join(rnd.choice(string.ascii_lowercase) for _ in range(12))
                if i % 2:
                    batch += f"{method} /health HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                else:
                    batch += f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            batch += b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            s.sendall(batch)
            data = read_all(s, 30)
        self.assertEqual(data.count(b"HTTP/1.1 "), n + 1)

    def test_random_methods_and_paths_add_no_series(self):
        # GET /metrics's own series are left out: a scrape is observed after its answer is
        # written, so they may appear one scrape late on a loaded machine (none of the random
        # requests below is a GET /metrics).
        names = lambda lines: sorted(l.rsplit(" ", 1)[0] for l in lines  # noqa: E731
                                     if 'route="/metrics"' not in l)
        self.random_requests(20)  # the `other` and `unmatched` series exist from here on
        # GET /metrics's own series: a request is observed after its answer is written, so the
        # first scrape's series may appear only in a later one. Wait (bounded) until two scrapes
        # in a row name the same series.
        before = self.series()
        for _ in range(20):
            again = self.series()
            if names(again) == names(before):
                break
            before = again
        self.assertEqual(names(self.series()), names(before))
        self.random_requests(400)
        after = self.series()
        self.assertEqual(names(after), names(before))
        text = "\n".join(after)
        self.assertIn('method="other"', text)
        self.assertIn('route="unmatched"', text)


class ConnectionCapTest(unittest.TestCase):
    """§8: "At most API_MAX_CONNECTIONS open client connections (default 10000, lowered to fit
    the process's descriptor limit ...). Past the cap a new connection is closed at once." """

    def test_cap_fits_the_descriptor_limit(self):
        s = LimitedServer(None, nofile=64)
        s.start()
        socks = []
        try:
            listening = s.wait_log(lambda o: o.get("message") == "listening", 1) or \
                next(o for o in s.log_objects() if o.get("message") == "listening")
            cap = listening["max_connections"]
            self.assertGreaterEqual(cap, 1)
            self.assertLess(cap, 64)
            first = Client(s.port)
            self.assertEqual(first.req("GET", "/health").status, 200)
            # Twice the limit: the excess is closed at once, the service does not spin.
            cpu0, t0 = cpu_seconds(s.proc.pid), time.monotonic()
            closed = 0
            for _ in range(128):
                c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
                socks.append(c)
            pending, deadline = set(socks), time.monotonic() + 10
            while pending and time.monotonic() < deadline:
                readable, _, _ = select.select(list(pending), [], [], 0.5)
                for c in readable:
                    pending.discard(c)
                    try:
                        closed += c.recv(1) == b""
                    except ConnectionResetError:
                        closed += 1
                if not readable and len(socks) - len(pending) >= 128 - cap:
                    break
            time.sleep(1)  # measurement window: CPU used while the excess connections are refused
            used = (cpu_seconds(s.proc.pid) - cpu0) / (time.monotonic() - t0)
            self.assertGreaterEqual(closed, 128 - cap, "past the cap a new connection is closed")
            self.assertLess(used, 0.5, f"CPU {used:.0%} of a core")
            # The connection it already had is still served.
            self.assertEqual(first.req("GET", "/health").status, 200)
            lines = [o for o in s.log_objects() if "connection limit" in o.get("message", "")]
            self.assertLessEqual(len(lines), 2, lines)
            for c in socks:
                c.close()
            socks = []
            first.close()
            self.assert_new_clients_served_again(s.port)
        finally:
            for c in socks:
                c.close()
            self.assertEqual(s.stop(), 0, s.output_tail())
            s.cleanup()

    def assert_new_clients_served_again(self, port):
        """A new client is answered again within 20 s (polled, bounded)."""
        deadline = time.monotonic() + 20
        while True:
            try:
                if request_once(port, "GET", "/health", timeout=5).status == 200:
                    return
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "new clients are served again")
            time.sleep(0.2)

    # UBSan's runtime checks a vptr it has not seen before with a pipe() (its "is this memory
    # readable" probe); with no descriptor left that fails and every valid virtual call on a new
    # type is reported as "object has invalid vptr" (reproduced with a ten-line program). So the
    # UBSan build cannot run this test; the release build and the TSan build do.
    @unittest.skipIf("undefined" in os.environ.get("FAV_TEST_SANITIZE", ""),
                     "UBSan's vptr check needs a free descriptor (false reports when there is none)")
    def test_descriptor_exhaustion_backs_off(self):
        """§8: "Running out of descriptors never makes the service spin or stop: it backs off
        accepting, keeps serving the connections it has, and recovers by itself." The limit
        is lowered under the running process, so the cap (fitted at start) is not what stops it."""
        s = Server(None)
        s.start()
        socks = []
        try:
            kept = Client(s.port)
            self.assertEqual(kept.req("GET", "/health").status, 200)
            open_fds = len(os.listdir(f"/proc/{s.proc.pid}/fd"))
            resource.prlimit(s.proc.pid, resource.RLIMIT_NOFILE, (open_fds + 8, open_fds + 8))
            for _ in range(60):  # more connections than descriptors left
                socks.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
            s.wait_log(lambda o: "accept failed" in o.get("message", ""), 10)
            cpu0, t0 = cpu_seconds(s.proc.pid), time.monotonic()
            time.sleep(3)  # measurement window: CPU used while out of descriptors
            used = (cpu_seconds(s.proc.pid) - cpu0) / (time.monotonic() - t0)
            self.assertLess(used, 0.2, f"CPU {used:.0%} of a core while out of descriptors")
            failed = [o for o in s.log_objects() if "accept failed" in o.get("message", "")]
            self.assertGreaterEqual(len(failed), 1)
            self.assertLessEqual(len(failed), 3, "the condition is logged a bounded number of times")
            # The connection it already had is still served.
            self.assertEqual(kept.req("GET", "/health").status, 200)
            for c in socks:
                c.close()
            socks = []
            self.assert_new_clients_served_again(s.port)
            kept.close()
        finally:
            for c in socks:
                c.close()
            self.assertEqual(s.stop(), 0, s.output_tail())
            s.cleanup()


class SafeDefaultsTest(unittest.TestCase):
    """§8: "With ENV=dev and a default JWT_SECRET_KEY or API_KEY, the service listens on
    127.0.0.1 unless API_HOST is set, and logs a warning naming the default secrets." """

    def listening_addresses(self, port: int) -> set:
        found = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                addr, p = cols[1].split(":")
                if int(p, 16) == port and cols[3] == "0A":  # LISTEN
                    found.add(addr)
        return found

    def test_no_configuration_listens_on_loopback_and_warns(self):
        s = Server(None, env={"API_HOST": None, "API_KEY": None, "JWT_SECRET_KEY": None, "ENV": None})
        s.start()
        try:
            self.assertEqual(self.listening_addresses(s.port), {"0100007F"})  # 127.0.0.1 only
            warning = next((o for o in s.log_objects() if o.get("level") == "warning" and
                            "default secrets" in o.get("message", "")), None)
            self.assertIsNotNone(warning, s.output_tail())
            self.assertIn("API_KEY", warning["defaults"])
            self.assertIn("JWT_SECRET_KEY", warning["defaults"])
            self.assertEqual(request_once(s.port, "GET", "/health").status, 200)
        finally:
            self.assertEqual(s.stop(), 0)
            s.cleanup()

    def test_real_secrets_no_warning(self):
        s = Server(None, env={"ENV": "dev"})
        s.start()
        try:
            self.assertFalse([o for o in s.log_objects() if "default secrets" in o.get("message", "")])
        finally:
            self.assertEqual(s.stop(), 0)
            s.cleanup()


if __name__ == "__main__":
    unittest.main()
