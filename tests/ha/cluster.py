"""A throwaway high-availability PostgreSQL on loopback: one etcd, three PostgreSQL nodes under
Patroni (synchronous_mode) and, on demand, PgBouncer; everything as the system user `postgres`
(when run as root) inside one folder, on free ports.

Every process started here writes its pid to ROOT/pids/<name>.pid; `python3 cluster.py kill ROOT`
(tests/ha/run.sh's trap) stops each of them by that pid, then any PostgreSQL server whose
postmaster.pid lies under ROOT, so nothing outlives a run even when the test itself was killed.
The settings are the ones README "High availability" documents as tested.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Optional

PG_BIN = os.environ.get("PG_BIN") or sorted(
    (os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")),
    key=lambda p: int(p.split("/")[-2]))[-1]
SCOPE = "favha"
APP_USER = "fav_test"
APP_DB = "favorites"
NODES = ("node1", "node2", "node3")

# Patroni's dynamic settings (README "High availability"): failover is decided within a second
# of a crash (loop_wait 1, primary_start_timeout 0: a crashed primary is not restarted in place
# but failed over at once), and a commit waits for one synchronous standby.
DCS_SETTINGS = {
    "ttl": 10,
    "loop_wait": 1,
    "retry_timeout": 3,
    "primary_start_timeout": 0,
    "maximum_lag_on_failover": 1048576,
    "synchronous_mode": True,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {
            "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
            "max_wal_senders": 10, "max_replication_slots": 10, "max_connections": 100,
            "synchronous_commit": "on", "wal_keep_size": "64MB",
        },
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _owner():
    """(uid, gid) the servers run as: `postgres` when we are root, else ourselves."""
    if os.getuid() != 0:
        return None
    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def _as_owner(argv: list) -> list:
    if _owner() is None:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + argv


def _chown(path: str):
    o = _owner()
    if o is not None:
        os.chown(path, *o)


def _http_json(url: str, timeout: float = 1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return None, None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


class Node:
    def __init__(self, root: str, name: str):
        self.name = name
        self.dir = os.path.join(root, name)
        self.data = os.path.join(self.dir, "data")
        self.pg_port = free_port()
        self.rest_port = free_port()
        self.config = os.path.join(self.dir, "patroni.yml")
        self.proc: Optional[subprocess.Popen] = None

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def postmaster_pid(self) -> Optional[int]:
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None


class Cluster:
    def __init__(self, root: str):
        self.root = root
        self.pids = os.path.join(root, "pids")
        os.makedirs(self.pids, exist_ok=True)
        _chown(root)
        self.password = os.urandom(12).hex()
        self.super_password = os.urandom(12).hex()
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.etcd: Optional[subprocess.Popen] = None
        self.nodes = {n: Node(root, n) for n in NODES}
        self.bouncer: Optional[subprocess.Popen] = None
        self.bouncer_port = None

    # -- processes ------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list, log: str, env=None) -> subprocess.Popen:
        out = open(log, "ab")
        p = subprocess.Popen(_as_owner(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             cwd=self.root, env=env or {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
                                                        "HOME": self.root, "LC_ALL": "C.UTF-8"},
                             start_new_session=True)
        out.close()
        with open(os.path.join(self.pids, name + ".pid"), "w") as f:
            f.write(str(p.pid))
        return p

    def start(self, timeout: float = 90):
        d = os.path.join(self.root, "etcd")
        os.makedirs(d)
        _chown(d)
        self.etcd = self._spawn("etcd", [
            "etcd", "--name", "ha", "--data-dir", os.path.join(d, "data"),
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-cluster", f"ha=http://127.0.0.1:{self.etcd_peer_port}",
            "--logger", "zap", "--log-level", "warn"], os.path.join(d, "log"))
        deadline = time.monotonic() + 20
        while _http_json(f"http://127.0.0.1:{self.etcd_port}/health")[0] != 200:
            if time.monotonic() > deadline or self.etcd.poll() is not None:
                raise RuntimeError("etcd did not start: " + self._tail(os.path.join(d, "log")))
            time.sleep(0.1)
        for node in self.nodes.values():
            os.makedirs(node.dir)
            _chown(node.dir)
            self._write_config(node)
        # The first node bootstraps; the others clone it once it leads.
        self.start_node("node1")
        self.wait_leader(timeout)
        for n in NODES[1:]:
            self.start_node(n)
        self.wait_healthy(timeout)
        leader = self.leader()
        self.psql(leader, f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{self.password}'")
        self.psql(leader, f"CREATE DATABASE {APP_DB} OWNER {APP_USER}")

    def _write_config(self, node: Node):
        cfg = {
            "scope": SCOPE, "name": node.name,
            "log": {"level": "INFO", "dir": node.dir, "file_num": 1},
            "restapi": {"listen": f"127.0.0.1:{node.rest_port}", "connect_address": f"127.0.0.1:{node.rest_port}"},
            "etcd3": {"host": f"127.0.0.1:{self.etcd_port}"},
            "bootstrap": {
                "dcs": DCS_SETTINGS,
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
                "pg_hba": ["local all all trust",
                           "host replication replicator 127.0.0.1/32 scram-sha-256",
                           "host all all 127.0.0.1/32 scram-sha-256"],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{node.pg_port}", "connect_address": f"127.0.0.1:{node.pg_port}",
                "data_dir": node.data, "bin_dir": PG_BIN, "pgpass": os.path.join(node.dir, "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": self.super_password},
                    "replication": {"username": "replicator", "password": self.super_password},
                    "rewind": {"username": "postgres", "password": self.super_password},
                },
                "parameters": {"unix_socket_directories": node.dir},
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }
        # JSON is YAML: no YAML writer needed.
        with open(node.config, "w") as f:
            json.dump(cfg, f, indent=1)
        _chown(node.config)

    def start_node(self, name: str):
        node = self.nodes[name]
        node.proc = self._spawn("patroni-" + name, ["patroni", node.config], os.path.join(node.dir, "patroni.out"))

    def stop_node(self, name: str, timeout: float = 30):
        """Stops Patroni (which stops its PostgreSQL) and waits for both."""
        node = self.nodes[name]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.terminate()
            try:
                node.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
        pid = node.postmaster_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while node.postmaster_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.05)

    def start_bouncer(self, target: str, pool_mode: str = "transaction") -> int:
        """PgBouncer in front of node `target` (PgBouncer 1.18 follows no failover itself)."""
        d = os.path.join(self.root, "pgbouncer")
        os.makedirs(d, exist_ok=True)
        _chown(d)
        self.bouncer_port = free_port()
        node = self.nodes[target]
        with open(os.path.join(d, "userlist.txt"), "w") as f:
            f.write(f'"{APP_USER}" "{self.password}"\n')
        with open(os.path.join(d, "pgbouncer.ini"), "w") as f:
            f.write(BOUNCER_INI.format(port=self.bouncer_port, pg_port=node.pg_port, dir=d, pool_mode=pool_mode))
        for fn in ("userlist.txt", "pgbouncer.ini"):
            _chown(os.path.join(d, fn))
        self.bouncer = self._spawn("pgbouncer", ["/usr/sbin/pgbouncer", os.path.join(d, "pgbouncer.ini")],
                                   os.path.join(d, "out"))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.bouncer_port), 0.2).close()
                return self.bouncer_port
            except OSError:
                if time.monotonic() > deadline or self.bouncer.poll() is not None:
                    raise RuntimeError("pgbouncer did not start: " + self._tail(os.path.join(d, "out")))
                time.sleep(0.05)

    def stop_bouncer(self):
        if self.bouncer is not None and self.bouncer.poll() is None:
            self.bouncer.terminate()
            self.bouncer.wait(10)

    def stop(self):
        self.stop_bouncer()
        for n in NODES:
            self.stop_node(n)
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.terminate()
            try:
                self.etcd.wait(10)
            except subprocess.TimeoutExpired:
                self.etcd.kill()
                self.etcd.wait()

    @staticmethod
    def _tail(path: str, n: int = 20) -> str:
        try:
            with open(path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    # -- state ----------------------------------------------------------------------------

    def members(self) -> list:
        """Patroni's view (GET /cluster of any node that answers): [{name, role, state, ...}]."""
        for node in self.nodes.values():
            status, body = _http_json(node.rest + "/cluster", 0.5)
            if status == 200 and isinstance(body, dict):
                return body.get("members", [])
        return []

    def leader(self) -> Optional[str]:
        for m in self.members():
            if m.get("role") == "leader" and m.get("state") == "running":
                return m["name"]
        return None

    def sync_standby(self) -> Optional[str]:
        for m in self.members():
            if m.get("role") == "sync_standby":
                return m["name"]
        return None

    def is_primary(self, name: str) -> bool:
        """Patroni's REST answer for this node: 200 on GET /primary once it leads and runs."""
        return _http_json(self.nodes[name].rest + "/primary", 0.3)[0] == 200

    def wait_leader(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            leader = self.leader()
            if leader is not None and self.is_primary(leader):
                return leader
            if time.monotonic() > deadline:
                raise RuntimeError(f"no leader within {timeout}s: {self.members()}")
            time.sleep(0.1)

    def wait_healthy(self, timeout: float = 90) -> str:
        """A running leader, a synchronous standby and the third node streaming."""
        deadline = time.monotonic() + timeout
        while True:
            ms = self.members()
            leader = [m for m in ms if m.get("role") == "leader" and m.get("state") == "running"]
            sync = [m for m in ms if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming")]
            repl = [m for m in ms if m.get("role") == "replica" and m.get("state") in ("running", "streaming")]
            if leader and sync and repl and self.is_primary(leader[0]["name"]):
                return leader[0]["name"]
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not healthy within {timeout}s: {ms}")
            time.sleep(0.2)

    # -- SQL and URLs ---------------------------------------------------------------------

    def psql(self, name: str, sql: str, db: str = "postgres", timeout: float = 20) -> str:
        node = self.nodes[name]
        r = subprocess.run(_as_owner([os.path.join(PG_BIN, "psql"), "-X", "-q", "-At", "-F", "|",
                                      "-v", "ON_ERROR_STOP=1", "-h", node.dir, "-p", str(node.pg_port),
                                      "-U", "postgres", "-d", db, "-c", sql]),
                           capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if r.returncode != 0:
            raise RuntimeError(f"psql on {name} failed: {r.stderr.strip()}")
        return r.stdout

    def url(self, names=None, db: str = APP_DB, params: str = "", port: Optional[int] = None) -> str:
        """A libpq URI for the application user over the given nodes, in that order."""
        if port is not None:
            hosts = f"127.0.0.1:{port}"
        else:
            hosts = ",".join(f"127.0.0.1:{self.nodes[n].pg_port}" for n in (names or NODES))
        return f"postgresql://{APP_USER}:{self.password}@{hosts}/{db}" + (f"?{params}" if params else "")

    def walsender_pid(self, primary: str, standby: str) -> Optional[int]:
        """The primary's WAL sender for `standby` (Patroni names the stream after the node)."""
        out = self.psql(primary, f"SELECT pid FROM pg_stat_replication WHERE application_name = '{standby}'").strip()
        return int(out) if out else None

    def switchover(self, leader: str, candidate: str):
        r = subprocess.run(["patronictl", "-c", self.nodes[leader].config, "switchover", "--leader", leader,
                            "--candidate", candidate, "--force"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"patronictl switchover failed: {r.stdout} {r.stderr}")


BOUNCER_INI = """\
[databases]
* = host=127.0.0.1 port={pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir = {dir}
auth_type = scram-sha-256
auth_file = {dir}/userlist.txt
pool_mode = {pool_mode}
max_client_conn = 400
default_pool_size = 20
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


def procs_under(root: str) -> list:
    """Pids of processes working inside ROOT (a PostgreSQL backend's working directory is its
    data directory; its command line does not name it)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cwd = os.readlink(f"/proc/{d}/cwd")
                if (cwd == root or cwd.startswith(root + "/")) and int(d) != os.getpid():
                    out.append(int(d))
            except OSError:
                pass
    return out


def kill_all(root: str):
    """Stops every process a run under ROOT started, by the pids it recorded (SIGTERM, then
    SIGKILL after 15 s), then any PostgreSQL server left with a postmaster.pid under ROOT. A pid
    is signalled only while its command line still names ROOT (no stranger after pid reuse)."""
    pids = []
    pid_dir = os.path.join(root, "pids")
    files = [os.path.join(pid_dir, f) for f in (os.listdir(pid_dir) if os.path.isdir(pid_dir) else [])]
    for n in NODES:
        files.append(os.path.join(root, n, "data", "postmaster.pid"))
    for path in files:
        try:
            with open(path) as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            continue
        if _alive(pid) and root in _cmdline(pid) or (_alive(pid) and path.endswith("postmaster.pid")
                                                     and "postgres" in _cmdline(pid)):
            pids.append(pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            print(f"cluster: pid {pid} did not stop on SIGTERM; killing it", file=sys.stderr)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Backends whose postmaster died first exit on their own within moments; any left is killed.
    deadline = time.monotonic() + 10
    while procs_under(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in procs_under(root):
        print(f"cluster: pid {pid} ({_cmdline(pid)}) still works in {root}; killing it", file=sys.stderr)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "kill":
        kill_all(sys.argv[2])
        shutil.rmtree(sys.argv[2], ignore_errors=True)
    else:
        print("usage: cluster.py kill ROOT", file=sys.stderr)
        sys.exit(2)
