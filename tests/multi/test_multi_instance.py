"""Several instances on one PostgreSQL behind a real load balancer (CONTRACT §9).

Starts PostgreSQL (the caller's FAV_TEST_PG_URL), three favorites-api instances on fixed
loopback ports and nginx (Debian nginx-light) in front of them, then checks:

- "Sign-outs, refresh-chain revocations, customer deletions and email changes made through one
  instance take effect on every other within 1 second" — measured and printed per instance, also
  right after an instance's listening connection was cut (it reconnects and flushes).
- "A write acknowledged by one instance is seen by reads on any instance within 1 second" with the
  read cache on: a favorites page the others answer from memory follows a removal and an addition.
- "killing one (`kill -9`) loses no acknowledged write" — mixed load through nginx while one
  instance is killed; every acknowledged favorite write is in the database; failures printed.
- "a rolling restart (SIGTERM to one at a time behind the balancer) fails no idempotent request"
  — no GET fails; failed non-idempotent requests are printed (target 0).
- "Instances may start together on an empty or old database (migrations under a lock)" — three
  started at the same moment on an empty database and on one the reference's DDL created.
- README "On call": Debian's prometheus, on a free loopback port, scrapes the three instances
  with the repository's rules (deploy/prometheus/favorites-api.rules.yml) while the load runs;
  then every recording rule and every query of every panel of deploy/grafana/favorites-api.json,
  asked through Prometheus's HTTP API, returns data.

Run it with scripts/multi-instance.sh, or through ctest (multi.postgresql.instances).
"""
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "http"))
from harness import (API_KEY, Server, _pg_url_with_db, _psql, free_port, start_servers, start_stub,  # noqa: E402
                     stop_servers, terminate, unique_email)
from test_postgres_ops import REFERENCE_DDL  # noqa: E402  (the reference service's own schema)

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ROOT = os.path.dirname(os.path.dirname(HERE))
RULES = os.path.join(ROOT, "deploy", "prometheus", "favorites-api.rules.yml")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "favorites-api.json")
PROM_JOB = "favorites-api"  # the job name of deploy/prometheus/prometheus.yml
PROPAGATION_BOUND_S = 1.0
PRODUCTS = list(range(1, 21))


def report(line: str):
    print(f"[multi] {line}", flush=True)


def fresh_database(ddl: str = "") -> str:
    admin = os.environ["FAV_TEST_PG_URL"]
    name = f"fav_multi_{uuid.uuid4().hex[:12]}"
    _psql(admin, f'CREATE DATABASE "{name}"')
    url = _pg_url_with_db(admin, name)
    if ddl:
        _psql(url, ddl)
    return url


def drop_database(url: str):
    name = url.rsplit("/", 1)[1].split("?")[0]
    try:
        _psql(os.environ["FAV_TEST_PG_URL"], f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except (RuntimeError, subprocess.TimeoutExpired):
        pass


def request(port, method, path, body=None, token=None, timeout=10.0):
    """One request on a fresh connection: (status, json or None)."""
    import json
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None
    finally:
        conn.close()


def start_instances(url, stub, ports, extra_env=None):
    """Launches one instance per port at the same moment, then waits for each to listen."""
    envs = [{"API_PORT": str(p), "PRODUCT_CATALOG_WARMUP": "false", "LOG_LEVEL": "warning", **(extra_env or {})}
            for p in ports]
    return start_servers(stub, envs, url, ready=lambda s: wait_ready(s, int(s.env_overrides["API_PORT"])))


def wait_ready(server, port, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"instance on {port} exited with {server.proc.returncode}:\n" +
                                 "\n".join(server.err.lines[-20:] + server.out.lines[-20:]))
        try:
            st, body = request(port, "GET", "/health/ready", timeout=2)
            if st == 200 and body["checks"].get("change_feed") == "ok":
                server.port = port
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"instance on {port} not ready within {timeout}s")


def served_customer_requests(port) -> int:
    """Requests on /customers routes this instance has answered (its fav_http_requests_total):
    the signal that the balancer sends it load. Health checks and scrapes are not counted."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("fav_http_requests_total{") and 'route="/customers' in line)


def wait_serving(port, n, timeout=30.0):
    """Waits until the instance on `port` has answered `n` customer requests since it started
    (its counters start at zero with the process)."""
    deadline = time.monotonic() + timeout
    while (count := served_customer_requests(port)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"instance on {port} answered {count} customer requests, not {n}, in {timeout}s")
        time.sleep(0.02)


class Nginx:
    def __init__(self, ports):
        self.prefix = tempfile.mkdtemp(prefix="fav-nginx-")
        os.makedirs(os.path.join(self.prefix, "tmp"))
        os.chmod(self.prefix, 0o755)
        self.port = free_port()
        with open(os.path.join(HERE, "nginx.conf.in"), encoding="utf-8") as f:
            conf = f.read()
        # max_fails=0: an instance is never marked down as a whole. A refused connect (an instance
        # restarting) is cheap on loopback and passes to the next upstream; with max_fails=1 a
        # loaded machine saw all three marked down at once and nginx answered 502 to everything.
        ups = "\n    ".join(f"server 127.0.0.1:{p} max_fails=0;" for p in ports)
        conf = conf.replace("@PREFIX@", self.prefix).replace("@PORT@", str(self.port)).replace("@UPSTREAMS@", ups)
        self.conf = os.path.join(self.prefix, "nginx.conf")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(conf)
        self.proc = subprocess.Popen([NGINX, "-p", self.prefix, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        last = None
        while time.monotonic() < deadline:
            try:
                last = request(self.port, "GET", "/health", timeout=2)
                if last[0] == 200:
                    return
            except OSError as e:
                last = e
            time.sleep(0.05)
        err = open(os.path.join(self.prefix, "error.log"), encoding="utf-8", errors="replace").read()[-2000:] \
            if os.path.exists(os.path.join(self.prefix, "error.log")) else ""
        rc = self.proc.poll()
        stderr = self.proc.stderr.read().decode(errors="replace") if rc is not None else ""
        self.stop()
        raise AssertionError(f"nginx did not start (exit {rc}: {stderr}): last answer {last}; error.log: {err}")

    def stop(self):
        terminate(self.proc, 10)
        shutil.rmtree(self.prefix, ignore_errors=True)


class Prometheus:
    """Debian's prometheus on a free loopback port with a throwaway data folder, scraping the
    instances every second and evaluating the repository's rules every second."""

    def __init__(self, ports):
        self.dir = tempfile.mkdtemp(prefix="fav-prometheus-")
        self.port = free_port()
        targets = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
        self.conf = os.path.join(self.dir, "prometheus.yml")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {RULES}\n"
                    f"scrape_configs:\n  - job_name: {PROM_JOB}\n    static_configs:\n"
                    f"      - targets: [{targets}]\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.conf}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise AssertionError(f"prometheus did not become ready: {tail}")

    def log_tail(self):
        self.log.flush()
        with open(os.path.join(self.dir, "prometheus.log"), encoding="utf-8", errors="replace") as f:
            return f.read()[-3000:]

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=30) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def stop(self):
        terminate(self.proc, 20)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def dashboard_queries():
    """(panel title, refId, expression) of every target of every panel, with the dashboard's
    variables set as Grafana would with "All" selected and a 1-minute rate interval."""
    with open(DASHBOARD, encoding="utf-8") as f:
        dash = json.load(f)
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "1m").replace("$job", ".+").replace("$instance", ".+")
            out.append((panel["title"], t["refId"], expr))
    return out


class Load:
    """Mixed load through nginx: each worker owns one customer and cycles through favorite,
    unfavorite, list, patch and (now and then) sign-in, remembering what was acknowledged."""

    def __init__(self, port, customers):
        self.port = port
        self.customers = customers  # (id, email, password, token)
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failed = {"GET": 0, "POST": 0, "DELETE": 0, "PATCH": 0}
        self.failures = []
        # customer id → product → True (acknowledged favorite) / False (acknowledged absent)
        self.state = {c[0]: {} for c in customers}
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in customers]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(60)

    def _one(self, conn, method, path, body, token):
        import json
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif method in ("POST", "PATCH"):
            data = b""
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        r.read()
        return r.status

    def _run(self, customer):
        cid, email, password, token = customer
        rnd = random.Random(cid)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        mine = self.state[cid]
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            op = i % 5
            pid = rnd.choice(PRODUCTS)
            if op == 0:
                method, path, body = "POST", f"/customers/{cid}/favorites/{pid}", None
            elif op == 1:
                method, path, body = "DELETE", f"/customers/{cid}/favorites/{pid}", None
            elif op in (2, 3):
                method, path, body = "GET", f"/customers/{cid}/favorites", None
            else:
                method, path, body = "PATCH", f"/customers/{cid}", {"name": f"n{i}"}
            if i % 200 == 0:
                method, path, body = "POST", "/auth/sign-in", {"email": email, "password": password}
            try:
                st = self._one(conn, method, path, body, token)
            except (OSError, http.client.HTTPException) as e:
                st = None
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                err = type(e).__name__
            expected = {"GET": (200,), "PATCH": (204,), "DELETE": (204, 422)}.get(method, (201, 409, 200))
            with self.lock:
                if st in expected:
                    self.ok += 1
                else:
                    self.failed[method] += 1
                    self.failures.append(f"{method} {path.split('/')[-1] if 'favorites/' in path else path[:20]}"
                                         f" -> {st if st is not None else err}")
            if "favorites/" in path:
                if st in (201, 409) and method == "POST":
                    mine[pid] = True
                elif st in (204, 422) and method == "DELETE":
                    mine[pid] = False
                else:
                    mine.pop(pid, None)  # outcome unknown: either is fine
        conn.close()

    def wait_ok(self, n, timeout=30.0):
        """Waits until `n` more requests than now have been acknowledged: the load is flowing."""
        with self.lock:
            target = self.ok + n
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                done = self.ok
            if done >= target:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"load acknowledged {n - (target - done)} of {n} requests in {timeout}s "
                                     f"({self.summary()}; failures: {self.failures[:10]})")
            time.sleep(0.02)

    def summary(self):
        return f"ok={self.ok} failed={self.failed}"

    def check_acknowledged(self, url):
        """Every acknowledged write is in the database; returns the number checked."""
        rows = _psql(url, "SELECT customer_id, product_id FROM customer_favorite_products")
        present = {tuple(line.split("|")) for line in rows.splitlines() if line}
        checked, wrong = 0, []
        for cid, products in self.state.items():
            for pid, fav in products.items():
                checked += 1
                if ((cid, str(pid)) in present) != fav:
                    wrong.append((cid, pid, fav))
        return checked, wrong


@unittest.skipUnless(os.environ.get("FAV_TEST_PG_URL"), "needs FAV_TEST_PG_URL (scripts/multi-instance.sh)")
class MultiInstanceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(NGINX):
            if os.environ.get("CI"):
                raise AssertionError("nginx not installed (scripts/install-deps.sh test installs nginx-light)")
            raise unittest.SkipTest("nginx not installed")
        if not os.path.exists(PROMETHEUS):
            raise AssertionError("prometheus not installed (scripts/install-deps.sh test installs it)")
        cls.stub = start_stub()
        cls.url = fresh_database()
        cls.ports = [free_port() for _ in range(3)]
        cls.servers, cls.nginx, cls.prometheus = [], None, None
        try:
            # Started at the same moment on an empty database: migrations run under the lock.
            cls.servers = start_instances(cls.url, cls.stub, cls.ports)
            cls.nginx = Nginx(cls.ports)
            cls.prometheus = Prometheus(cls.ports)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.prometheus:
            cls.prometheus.stop()
        if cls.nginx:
            cls.nginx.stop()
        stop_servers(cls.servers)
        cls.stub.stop()
        drop_database(cls.url)

    def new_customer(self, port):
        email, password = unique_email("multi"), f"pw-{uuid.uuid4().hex}"
        st, body = request(port, "POST", "/auth/sign-up", {"name": "Multi", "email": email, "password": password})
        self.assertEqual(st, 201, body)
        cid = body["id"]
        st, body = request(port, "POST", "/auth/sign-in", {"email": email, "password": password}, timeout=30)
        self.assertEqual(st, 200, body)
        return cid, email, password, body["access_token"]

    def warm(self, cid, token, ports):
        # Twice per instance: the second answer comes from the token cache.
        for p in ports:
            for _ in range(2):
                st, body = request(p, "GET", f"/customers/{cid}", token=token)
                self.assertEqual(st, 200, body)

    def wait_until(self, port, cid, token, pred):
        """Seconds until pred(status, body) holds on `port` (polled), or None after 5 s."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            st, body = request(port, "GET", f"/customers/{cid}", token=token)
            if pred(st, body):
                return time.monotonic() - t0
            time.sleep(0.005)
        return None

    def check_propagation(self, what, action, pred):
        a, others = self.ports[0], self.ports[1:]
        cid, email, password, token = self.new_customer(a)
        self.warm(cid, token, others)
        action(a, cid, token)
        for p in others:
            delay = self.wait_until(p, cid, token, pred)
            report(f"{what} through :{a} honoured by :{p} after "
                   f"{'never (5 s)' if delay is None else f'{delay * 1000:.1f} ms'}")
            self.assertIsNotNone(delay, f"{what} not honoured by :{p}")
            self.assertLessEqual(delay, PROPAGATION_BOUND_S, f"{what} took {delay:.3f}s on :{p}")

    def test_1_propagation(self):
        """'Sign-outs ... customer deletions and email changes made through one instance take
        effect on every other within 1 second'."""
        invalid = lambda st, body: st == 401 and body["detail"] == "invalid_token"  # noqa: E731
        self.check_propagation("sign-out", lambda p, cid, tok: request(p, "POST", "/auth/sign-out", token=tok),
                               invalid)
        self.check_propagation("deletion", lambda p, cid, tok: request(p, "DELETE", f"/customers/{cid}", token=tok),
                               invalid)
        new_email = unique_email("changed")
        self.check_propagation(
            "email change",
            lambda p, cid, tok: self.assertEqual(
                request(p, "PATCH", f"/customers/{cid}", {"email": new_email}, token=tok)[0], 204),
            lambda st, body: st == 200 and body["email"] == new_email)

    def test_1b_refresh_chain_revocation(self):
        """'refresh-chain revocations ... made through one instance take effect on every other
        within 1 second': a reused refresh token revokes its family through instance A; the
        family's newest refresh token is then refused by B and C."""
        a, others = self.ports[0], self.ports[1:]
        cid, email, password, _ = self.new_customer(a)
        st, body = request(a, "POST", "/auth/sign-in", {"email": email, "password": password}, timeout=30)
        self.assertEqual(st, 200, body)
        first = body["refresh_token"]
        st, body = request(a, "POST", "/auth/refresh", {"refresh_token": first})
        self.assertEqual(st, 200, body)
        newest = body["refresh_token"]
        st, body = request(a, "POST", "/auth/refresh", {"refresh_token": first})  # reuse
        self.assertEqual((st, body["detail"]), (401, "invalid_refresh_token"))
        t0 = time.monotonic()
        for p in others:
            st, body = request(p, "POST", "/auth/refresh", {"refresh_token": newest})
            delay = time.monotonic() - t0
            report(f"refresh-chain revocation through :{a} honoured by :{p} after {delay * 1000:.1f} ms")
            self.assertEqual((st, body["detail"]), (401, "invalid_refresh_token"))
            self.assertLessEqual(delay, PROPAGATION_BOUND_S)

    def metric(self, port, name):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def test_1c_cached_favorites_page_follows_other_instances(self):
        """'A write acknowledged by one instance is seen by reads on any instance within 1
        second', with the read cache on (READ_CACHE_BYTES at its default): a favorites page that
        the other instances answer from memory loses a favorite removed through one instance,
        and gains one added through it, within 1 s."""
        a, others = self.ports[0], self.ports[1:]
        cid, email, password, token = self.new_customer(a)
        path = f"/customers/{cid}/favorites"
        st, body = request(a, "POST", f"{path}/3", token=token)
        self.assertEqual(st, 201, body)
        for p in others:
            # Read until the page is answered from memory (the add's own notification may still
            # arrive and forget a first copy).
            hits = self.metric(p, "fav_read_cache_hits_total")
            for _ in range(50):
                st, body = request(p, "GET", path, token=token)
                self.assertEqual((st, [i["id"] for i in body["data"]]), (200, [3]))
                if self.metric(p, "fav_read_cache_hits_total") > hits:
                    break
            self.assertGreater(self.metric(p, "fav_read_cache_hits_total"), hits, f":{p} did not cache the page")

        def follow(what, expected):
            for p in others:
                t0 = time.monotonic()
                delay = None
                while time.monotonic() - t0 < 5:
                    st, body = request(p, "GET", path, token=token)
                    if st == 200 and [i["id"] for i in body["data"]] == expected:
                        delay = time.monotonic() - t0
                        break
                    time.sleep(0.005)
                report(f"favorite {what} through :{a} seen in the cached page of :{p} after "
                       f"{'never (5 s)' if delay is None else f'{delay * 1000:.1f} ms'}")
                self.assertIsNotNone(delay, f"favorite {what} not seen by :{p}")
                self.assertLessEqual(delay, PROPAGATION_BOUND_S)

        st, body = request(a, "DELETE", f"{path}/3", token=token)
        self.assertEqual(st, 204, body)
        follow("removal", [])
        for p in others:  # cached again, empty
            for _ in range(2):
                self.assertEqual(request(p, "GET", path, token=token)[1]["data"], [])
        st, body = request(a, "POST", f"{path}/4", token=token)
        self.assertEqual(st, 201, body)
        follow("addition", [4])

    def test_2_feed_loss(self):
        """'while an instance's listening connection is down it checks the database on every
        request until it is back, so the bound still holds'."""
        a, b = self.ports[0], self.ports[1]
        cid, email, password, token = self.new_customer(a)
        self.warm(cid, token, [b])
        # Cut every listening connection; the sign-out commits while they are down.
        cut = _psql(self.url, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'favorites_api_feed' AND datname = current_database()")
        self.assertEqual(cut.strip(), "3")
        self.assertEqual(request(a, "POST", "/auth/sign-out", token=token)[0], 204)
        delay = self.wait_until(b, cid, token, lambda st, body: st == 401)
        report(f"sign-out while the feed was cut honoured by :{b} after "
               f"{'never' if delay is None else f'{delay * 1000:.1f} ms'}")
        self.assertIsNotNone(delay)
        self.assertLessEqual(delay, PROPAGATION_BOUND_S)
        # And the feed comes back by itself (reconnect with back-off).
        for p in (a, b):
            deadline = time.monotonic() + 10
            while request(p, "GET", "/health/ready")[1]["checks"]["change_feed"] != "ok":
                self.assertLess(time.monotonic(), deadline, f"feed of :{p} did not come back")
                time.sleep(0.05)
        st, body = request(b, "GET", "/metrics")
        self.assertEqual(st, 200)

    def customers_for_load(self, n=6):
        return [self.new_customer(self.nginx.port) for _ in range(n)]

    def test_3_kill9_under_load(self):
        """'killing one (kill -9) loses no acknowledged write'."""
        victim = self.servers[1]
        before = served_customer_requests(self.ports[1])
        load = Load(self.nginx.port, self.customers_for_load()).start()
        wait_serving(self.ports[1], before + 100)  # the victim is taking load: the kill lands mid-request
        victim.kill9()
        load.wait_ok(500)  # the survivors carry the load after the kill
        load.stop()
        report(f"kill -9 of :{self.ports[1]} under load: {load.summary()}; failures: {load.failures[:10]}")
        checked, wrong = load.check_acknowledged(self.url)
        report(f"acknowledged favorite states checked in the database: {checked}, wrong: {len(wrong)}")
        self.assertEqual(wrong, [])
        self.assertGreater(load.ok, 0)
        self.assertEqual(load.failed["GET"], 0, load.failures)
        victim.launch()
        wait_ready(victim, self.ports[1])

    def test_4_rolling_restart(self):
        """'a rolling restart (SIGTERM to one at a time behind the balancer) fails no idempotent
        request: a draining instance answers with Connection: close ... and finishes those in flight'."""
        before = [served_customer_requests(p) for p in self.ports]
        load = Load(self.nginx.port, self.customers_for_load()).start()
        for p, n in zip(self.ports, before):
            wait_serving(p, n + 50)  # every instance is taking load
        for i, s in enumerate(self.servers):
            rc = s.stop(signal.SIGTERM)
            self.assertEqual(rc, 0)
            s.launch()
            wait_ready(s, self.ports[i])
            wait_serving(self.ports[i], 50)  # back in the rotation before the next one drains
        load.stop()
        non_idempotent = load.failed["POST"] + load.failed["PATCH"] + load.failed["DELETE"]
        report(f"rolling restart of 3 instances under load: {load.summary()}; "
               f"failed non-idempotent requests: {non_idempotent}; failures: {load.failures[:10]}")
        checked, wrong = load.check_acknowledged(self.url)
        self.assertEqual(wrong, [])
        self.assertEqual(load.failed["GET"], 0, load.failures)

    def test_5_prometheus_rules_and_dashboard(self):
        """README "On call": with Prometheus scraping the three instances while load runs, every
        recording rule of deploy/prometheus/favorites-api.rules.yml and every panel query of
        deploy/grafana/favorites-api.json returns data (a query answering nothing fails)."""
        prom = self.prometheus
        load = Load(self.nginx.port, self.customers_for_load()).start()
        try:
            # A signal, not a sleep: every instance scraped, and every rule group evaluated, after
            # the load had been running for a while (so rates over the load are there to see).
            first_scrape = time.time()
            t0 = time.monotonic()
            self.wait_for_prometheus(first_scrape, "during the load")
            report(f"prometheus: all three instances scraped and rules evaluated during the load after "
                   f"{time.monotonic() - t0:.1f} s")
        finally:
            load.stop()
        self.assertGreater(load.ok, 0, load.summary())
        # Twice more: the rules are then evaluated over at least two scrapes that saw the load
        # (rate() needs two), even when this test runs alone on a Prometheus just started.
        self.wait_for_prometheus(time.time(), "after the load")
        self.wait_for_prometheus(time.time(), "after the load, again")
        self.assertEqual(sorted(t["labels"]["instance"] for t in prom.api("targets")["activeTargets"]),
                         sorted(f"127.0.0.1:{p}" for p in self.ports))

        groups = prom.api("rules")["groups"]
        health = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") != "ok"]
        self.assertEqual(health, [], "rules that failed to evaluate")
        recording = [(r["name"], r["query"]) for g in groups for r in g["rules"] if r["type"] == "recording"]
        alerts = [r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"]
        self.assertGreaterEqual(len(recording), 20)
        empty = []
        for name, _ in recording:
            if not self.has_data(prom.query(name)):
                empty.append(name)
        panels = dashboard_queries()
        self.assertGreaterEqual(len(panels), 25)
        for title, ref, expr in panels:
            if not self.has_data(prom.query(expr)):
                empty.append(f"panel '{title}' {ref}: {expr}")
        report(f"prometheus: {len(recording)} recording rules, {len(panels)} panel queries, {len(alerts)} alerts "
               f"loaded; without data: {len(empty)}")
        self.assertEqual(empty, [], "queries that return no data")
        # Reported, not asserted: test_3 and test_4 restart instances on purpose.
        firing = {a["labels"]["alertname"] for a in prom.api("alerts")["alerts"] if a["state"] == "firing"}
        report(f"prometheus: alerts firing at the end: {sorted(firing) or 'none'}")

    @staticmethod
    def has_data(result):
        """At least one series with a number in it (NaN alone shows nothing on a panel)."""
        return any(not math.isnan(float(r["value"][1])) for r in result)

    def wait_for_prometheus(self, since, what, timeout=60):
        """Until each instance has been scraped, and each rule group evaluated, after `since`."""
        prom = self.prometheus
        deadline = time.monotonic() + timeout
        while True:
            targets = prom.api("targets")["activeTargets"]
            scraped = [t for t in targets if t["health"] == "up" and _rfc3339(t["lastScrape"]) > since]
            groups = prom.api("rules")["groups"]
            evaluated = [g for g in groups if g.get("lastEvaluation") and _rfc3339(g["lastEvaluation"]) > since]
            if len(scraped) == len(self.ports) and groups and len(evaluated) == len(groups):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus {what}: scraped {[(t['scrapeUrl'], t['health'], t['lastError']) for t in targets]}, "
                                     f"{len(evaluated)}/{len(groups)} groups evaluated; log: {prom.log_tail()}")
            time.sleep(0.2)


def _rfc3339(text):
    """Seconds since the epoch of Prometheus's RFC 3339 timestamps (nanoseconds, 'Z' or offset)."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        return 0.0
    base = datetime.datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float(m.group(2) or 0)


@unittest.skipUnless(os.environ.get("FAV_TEST_PG_URL"), "needs FAV_TEST_PG_URL (scripts/multi-instance.sh)")
class StartTogetherTest(unittest.TestCase):
    def test_reference_database(self):
        """'Instances may start together on an empty or old database (migrations under a lock)'
        — here one the reference's DDL created (the empty case is MultiInstanceTest's start)."""
        url = fresh_database(REFERENCE_DDL)
        ports = [free_port() for _ in range(3)]
        servers = []
        try:
            servers = start_instances(url, None, ports)
            for p in ports:
                self.assertEqual(request(p, "GET", "/health/ready")[0], 200)
            report("3 instances started together on a reference-created database: all ready")
        finally:
            stop_servers(servers)
            drop_database(url)


if __name__ == "__main__":
    unittest.main()
