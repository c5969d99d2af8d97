"""Checks the container files (Dockerfile, .dockerignore, docker-compose.yaml) as far as can be
done without a Docker engine:

- every file the Dockerfile COPYs exists and is let through by .dockerignore, and the build
  stage's context configures (cmake, -DFAV_TESTS=OFF) from those files alone;
- the build stage installs scripts/install-deps.sh's packages (plus nodejs/npm); the runtime
  packages exist in Debian (apt-cache), are not -dev packages, and provide every shared library
  the built binaries load (ldd + dpkg -S + apt-cache depends);
- the runtime stage: non-root USER, WORKDIR with a writable ./data, EXPOSE 8080, HEALTHCHECK
  ["favorites-api","healthcheck"], no ENTRYPOINT (compose runs catalog-stub from the same image);
- docker-compose.yaml is valid YAML (parsed by the `yaml` npm package, installed into a scratch
  directory) and consistent: services, ports, DATABASE_URL vs the postgres service, the catalog
  URL vs the stub's command, files the stub reads vs files the image holds; the binary accepts the
  resulting environment (`favorites-api check-config`) and the stub accepts its arguments.

Usage: python3 tests/containers/check_containers.py [-v]
Environment: FAV_BIN, STUB_BIN (built binaries, default build/...), FAV_CONTAINERS_SCRATCH (where
the `yaml` package and the configure check go; default build/containers-check).
"""

import ipaddress
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
YAML_VERSION = "2.9.1"  # the npm `yaml` package: a YAML 1.2 parser with no dependencies
# Packages of scripts/install-deps.sh that the image's build does not need (-DFAV_TESTS=OFF).
TEST_ONLY_BUILD_PACKAGES = {"libgtest-dev"}
# In every Debian base image (apt itself needs them).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}
RUNTIME_PACKAGES = {"libboost-json1.81.0", "libboost-url1.81.0", "libpq5", "libsqlite3-0", "libsodium23",
                    "libargon2-1", "libssl3", "zlib1g", "libspdlog1.10", "ca-certificates"}


def repo(*p) -> str:
    return os.path.join(ROOT, *p)


def env_path(var: str, default: str) -> str:
    p = os.environ.get(var, default)
    return p if os.path.isabs(p) else repo(p)


def sh(cmd, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


# ---------------------------------------------------------------------------------------
# Dockerfile


class Instruction:
    def __init__(self, line_no: int, keyword: str, args: str):
        self.line_no, self.keyword, self.args = line_no, keyword.upper(), args.strip()

    def flags_and_rest(self):
        """Leading --flag=value options, and what follows them."""
        flags, rest = {}, self.args
        while rest.startswith("--"):
            tok, _, rest = rest.partition(" ")
            k, _, v = tok[2:].partition("=")
            flags[k] = v
            rest = rest.lstrip()
        return flags, rest

    def __repr__(self):
        return f"line {self.line_no}: {self.keyword} {self.args[:80]}"


def parse_dockerfile(text: str) -> list:
    """Instructions with continuation lines joined and comment lines dropped."""
    out, buf, start = [], "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if not buf:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        kw, _, args = buf.strip().partition(" ")
        out.append(Instruction(start, kw, args))
        buf = ""
    if buf:
        raise ValueError("Dockerfile ends inside a continued line")
    return out


class Stage:
    def __init__(self, base: str, name: str):
        self.base, self.name, self.instructions = base, name, []

    def all(self, keyword):
        return [i for i in self.instructions if i.keyword == keyword]

    def workdir(self) -> str:
        w = "/"
        for i in self.all("WORKDIR"):
            w = i.args if i.args.startswith("/") else os.path.join(w, i.args)
        return w

    def env(self) -> dict:
        env = {}
        for i in self.all("ENV"):
            toks = shlex.split(i.args)
            if toks and "=" not in toks[0]:  # legacy `ENV KEY value`
                env[toks[0]] = i.args.split(None, 1)[1] if len(toks) > 1 else ""
                continue
            for t in toks:
                k, _, v = t.partition("=")
                env[k] = v
        return env

    def apt_packages(self) -> list:
        pkgs = []
        for i in self.all("RUN"):
            for m in re.finditer(r"apt-get\s+install\s+(.*?)(?:&&|;|\|\||$)", i.args):
                pkgs += [t for t in m.group(1).split() if not t.startswith("-")]
        return pkgs


def stages(instructions) -> list:
    out = []
    for i in instructions:
        if i.keyword == "FROM":
            toks = i.args.split()
            toks = [t for t in toks if not t.startswith("--platform")]
            name = toks[2] if len(toks) >= 3 and toks[1].lower() == "as" else ""
            out.append(Stage(toks[0], name))
        elif i.keyword in ("ARG",) and not out:
            continue
        else:
            if not out:
                raise ValueError(f"{i}: instruction before FROM")
            out[-1].instructions.append(i)
    return out


def copy_parts(i: Instruction):
    """(flags, sources, destination) of a COPY/ADD."""
    flags, rest = i.flags_and_rest()
    if rest.startswith("["):
        parts = json.loads(rest)
    else:
        parts = rest.split()
    return flags, parts[:-1], parts[-1]


def exec_form(args: str):
    """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, else None."""
    try:
        v = json.loads(args)
    except ValueError:
        return None
    return v if isinstance(v, list) and all(isinstance(x, str) for x in v) else None


# ---------------------------------------------------------------------------------------
# .dockerignore (the semantics of moby/patternmatcher: last matching pattern wins; a pattern
# matching a parent directory matches everything under it)


class DockerIgnore:
    def __init__(self, text: str):
        self.patterns = []
        for line in text.splitlines():
            p = line.strip()
            if not p or p.startswith("#"):
                continue
            negate = p.startswith("!")
            if negate:
                p = p[1:].strip()
            p = os.path.normpath(p).lstrip("/")
            self.patterns.append((negate, self._regex(p), p))

    @staticmethod
    def _regex(p: str):
        out, i = "^", 0
        while i < len(p):
            c = p[i]
            if p.startswith("**", i):
                i += 2
                if i < len(p) and p[i] == "/":
                    out += "(.*/)?"
                    i += 1
                else:
                    out += ".*"
                continue
            if c == "*":
                out += "[^/]*"
            elif c == "?":
                out += "[^/]"
            elif c == "[":
                j = p.find("]", i)
                out += p[i:j + 1] if j > i else re.escape(c)
                i = j if j > i else i
            else:
                out += re.escape(c)
            i += 1
        return re.compile(out + "$")

    def excluded(self, path: str) -> bool:
        path = os.path.normpath(path)
        parts = path.split("/")
        prefixes = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
        result = False
        for negate, rx, _ in self.patterns:
            if any(rx.match(pre) for pre in prefixes):
                result = not negate
        return result


# ---------------------------------------------------------------------------------------
# docker-compose.yaml


def scratch_dir() -> str:
    d = env_path("FAV_CONTAINERS_SCRATCH", "build/containers-check")
    os.makedirs(d, exist_ok=True)
    return d


def yaml_to_json(path: str):
    """Parses YAML with the npm `yaml` package (strict, unique keys); installs it once."""
    d = os.path.join(scratch_dir(), "node")
    os.makedirs(d, exist_ok=True)
    pkg = os.path.join(d, "node_modules", "yaml", "package.json")
    have = None
    if os.path.exists(pkg):
        with open(pkg, encoding="utf-8") as f:
            have = json.load(f).get("version")
    if have != YAML_VERSION:
        if not shutil.which("npm"):
            raise AssertionError("npm is needed to parse docker-compose.yaml (scripts/install-deps.sh installs it)")
        with open(os.path.join(d, "package.json"), "w", encoding="utf-8") as f:
            json.dump({"private": True, "dependencies": {"yaml": YAML_VERSION}}, f)
        r = sh(["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--no-package-lock",
                "--loglevel=error"], cwd=d, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"npm install yaml@{YAML_VERSION} failed: {r.stderr[-2000:]}")
    script = r"""
const YAML = require('yaml');
const text = require('fs').readFileSync(process.argv[1], 'utf8');
const doc = YAML.parseDocument(text, { strict: true, uniqueKeys: true, prettyErrors: true });
const problems = [...doc.errors, ...doc.warnings].map(String);
if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
process.stdout.write(JSON.stringify(doc.toJS({ maxAliasCount: 100 })));
"""
    r = sh(["node", "-e", script, path], cwd=d, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"{path} is not valid YAML:\n{r.stderr}")
    return json.loads(r.stdout)


_INTERP = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value, env: dict):
    """Compose's variable substitution (${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err},
    $VAR, $$) over every string of a parsed document."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3)
        v = env.get(name)
        if op in (":-", "-"):
            return arg if (v is None or (op == ":-" and v == "")) else v
        if op in (":?", "?"):
            if v is None or (op == ":?" and v == ""):
                raise AssertionError(f"compose needs {name}: {arg}")
            return v
        return v or ""
    return _INTERP.sub(sub, value)


def mapping(env) -> dict:
    """A compose `environment` (mapping or list of KEY=VALUE) as a dict."""
    if isinstance(env, dict):
        return {k: "" if v is None else str(v) for k, v in env.items()}
    out = {}
    for item in env or []:
        k, _, v = str(item).partition("=")
        out[k] = v
    return out


def command_list(cmd):
    return cmd if isinstance(cmd, list) else shlex.split(cmd) if isinstance(cmd, str) else None


def container_ports(ports) -> list:
    """Container ports of a compose `ports` list (short or long syntax)."""
    out = []
    for p in ports or []:
        if isinstance(p, dict):
            out.append(int(p["target"]))
            continue
        spec = str(p).split("/")[0]
        out.append(int(spec.rsplit(":", 1)[-1]))
    return out


def published_address(p) -> str:
    """The host address a compose `ports` entry publishes on ("" = every interface)."""
    if isinstance(p, dict):
        return str(p.get("host_ip", ""))
    spec = str(p).split("/")[0]
    if spec.startswith("["):  # [::1]:8080:8080
        return spec[1:spec.index("]")]
    parts = spec.split(":")
    return parts[0] if len(parts) == 3 else ""


# ---------------------------------------------------------------------------------------


def shared_libraries(binary: str) -> list:
    r = sh(["ldd", binary], timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"ldd {binary}: {r.stderr}")
    libs = []
    for line in r.stdout.splitlines():
        m = re.search(r"=>\s+(/\S+)", line)
        if m:
            libs.append(m.group(1))
        elif "not found" in line:
            raise AssertionError(f"{binary}: {line.strip()}")
    return libs


def owning_packages(paths) -> dict:
    """{library path: Debian package} through one `dpkg -S` (usrmerge: /lib and /usr/lib are the
    same files, registered under either name)."""
    candidates = {}
    for path in paths:
        real = os.path.realpath(path)
        for p in (path, real):
            for c in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
                candidates.setdefault(c, set()).add(path)
    r = sh(["dpkg", "-S", *sorted(candidates)], timeout=120)  # non-zero when some are unknown
    owners = {}
    for line in r.stdout.splitlines():
        pkgs, sep, file = line.partition(": ")
        if sep and file in candidates:
            for path in candidates[file]:
                owners.setdefault(path, pkgs.split(",")[0].split(":")[0].strip())
    return owners


def depends_closure(packages) -> set:
    r = sh(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
            "--no-breaks", "--no-replaces", "--no-enhances", *sorted(packages)], timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"apt-cache depends: {r.stderr}")
    return {line.split(":")[0].strip() for line in r.stdout.splitlines()
            if line and not line.startswith(" ") and not line.startswith("<")}


class ContainerFiles(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        with open(repo("Dockerfile"), encoding="utf-8") as f:
            cls.instructions = parse_dockerfile(f.read())
        cls.stages = stages(cls.instructions)
        cls.build = cls.stages[0]
        cls.runtime = cls.stages[-1]
        with open(repo(".dockerignore"), encoding="utf-8") as f:
            cls.ignore = DockerIgnore(f.read())

    # -- helpers ------------------------------------------------------------------------------

    def context_copies(self, stage):
        """(instruction, sources, destination) of the COPYs from the build context."""
        out = []
        for i in stage.all("COPY") + stage.all("ADD"):
            flags, srcs, dest = copy_parts(i)
            if "from" not in flags:
                out.append((i, srcs, dest))
        return out

    def repo_files_under(self, rel: str) -> list:
        """Files of the working tree under `rel` (tracked or not, minus .gitignore'd ones)."""
        r = sh(["git", "ls-files", "-co", "--exclude-standard", "--", rel], cwd=ROOT, timeout=30)
        if r.returncode == 0:
            return [f for f in r.stdout.splitlines() if os.path.isfile(repo(f))]
        found = []
        for dirpath, _, files in os.walk(repo(rel)):
            found += [os.path.relpath(os.path.join(dirpath, f), ROOT) for f in files]
        return found if os.path.isdir(repo(rel)) else [rel]

    def compose(self):
        if not hasattr(type(self), "_compose"):
            type(self)._compose = yaml_to_json(repo("docker-compose.yaml"))
        return type(self)._compose

    def roles(self):
        """(name, service) of the app, the database and the catalog stub."""
        services = self.compose()["services"]
        app = db = stub = None
        for name, s in services.items():
            cmd = command_list(s.get("command"))
            if cmd and cmd[0] == "catalog-stub":
                stub = (name, s)
            elif str(s.get("image", "")).startswith("postgres:"):
                db = (name, s)
            elif s.get("build") is not None and (not cmd or cmd[0] == "favorites-api"):
                app = (name, s)
        self.assertTrue(app and db and stub, f"services: {list(services)}")
        return app, db, stub

    def runtime_copy_destination(self, repo_file: str):
        """Where the runtime stage puts `repo_file` (a file COPYed from the context)."""
        for i, srcs, dest in self.context_copies(self.runtime):
            for s in srcs:
                if os.path.normpath(s) == os.path.normpath(repo_file):
                    return dest if not dest.endswith("/") else dest + os.path.basename(s)
        return None

    # -- Dockerfile -----------------------------------------------------------------------------

    def test_stages(self):
        self.assertGreaterEqual(len(self.stages), 2, "a multi-stage build")
        for s in self.stages:
            self.assertRegex(s.base, r"^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?$", s.base)
        self.assertTrue(self.build.name, "the build stage is named (COPY --from=<name>)")
        names = [s.name for s in self.stages]
        for s in self.stages:
            for i in s.all("COPY"):
                flags, _, _ = copy_parts(i)
                if "from" in flags:
                    self.assertIn(flags["from"], names[:self.stages.index(s)], i)

    def test_copied_files_exist_and_are_in_the_context(self):
        copies = self.context_copies(self.build) + self.context_copies(self.runtime)
        self.assertTrue(copies)
        for i, srcs, _ in copies:
            for src in srcs:
                with self.subTest(instruction=str(i), source=src):
                    self.assertFalse(any(c in src for c in "*?["), "no wildcards: each source must exist")
                    self.assertTrue(os.path.exists(repo(src)), f"{src} is not in the repository")
                    files = self.repo_files_under(src.rstrip("/")) if os.path.isdir(repo(src)) else [src]
                    self.assertTrue(files, f"{src} is empty")
                    shut_out = [f for f in files if self.ignore.excluded(f)]
                    self.assertEqual(shut_out, [], f".dockerignore keeps {src} out of the build context")

    def test_dockerignore_keeps_out_secrets_and_build_trees(self):
        for path in (".git/config", "build/favorites-api", "build-asan/x", ".env", "data/favorites.db",
                     "data/favorites.db-wal", "tests/browser/node_modules/playwright-core/package.json",
                     "src/.env", "bench/out/results.csv"):
            with self.subTest(path=path):
                self.assertTrue(self.ignore.excluded(path), f"{path} would be sent to the Docker daemon")

    def test_build_stage(self):
        with open(repo("scripts", "install-deps.sh"), encoding="utf-8") as f:
            m = re.search(r"^pkgs=\((.*?)\)", f.read(), re.S | re.M)
        self.assertIsNotNone(m, "no pkgs=(...) in scripts/install-deps.sh")
        wanted = set(m.group(1).split()) - TEST_ONLY_BUILD_PACKAGES
        have = set(self.build.apt_packages())
        self.assertEqual(wanted - have, set(), "build packages of scripts/install-deps.sh missing")
        self.assertLessEqual({"nodejs", "npm"}, have, "nodejs/npm fetch swagger-ui-dist at configure time")
        self.assertEqual(have - wanted - {"nodejs", "npm"}, set(), "packages beyond install-deps.sh's")
        runs = " ".join(i.args for i in self.build.all("RUN"))
        self.assertIn("-DFAV_TESTS=OFF", runs)
        # The runtime stage copies the two binaries from where this stage builds them.
        build_dir = re.search(r"cmake\s+-S\s+\S+\s+-B\s+(\S+)", runs).group(1)
        targets = re.search(r"--target\s+((?:[\w-]+\s*)+)", runs).group(1).split()
        for t in ("favorites-api", "catalog-stub"):
            self.assertIn(t, targets)
        produced = {os.path.normpath(os.path.join(self.build.workdir(), build_dir, t)) for t in targets}
        for i in self.runtime.all("COPY"):
            flags, srcs, dest = copy_parts(i)
            if flags.get("from") == self.build.name:
                for s in srcs:
                    self.assertIn(os.path.normpath(s), produced, i)
                self.assertIn(dest.rstrip("/"), ("/usr/local/bin", "/usr/bin"), "binaries on PATH")

    def test_build_context_configures(self):
        """The build stage's COPYs, laid out as in the image, are enough for the CMake configure
        (every listed source present). Configure only: no compile."""
        if not shutil.which("cmake"):
            self.skipTest("cmake not installed")
        work = tempfile.mkdtemp(prefix="configure-", dir=scratch_dir())
        try:
            src_root = os.path.join(work, "src")
            workdir = self.build.workdir()
            for i, srcs, dest in self.context_copies(self.build):
                target = os.path.join(src_root, os.path.relpath(os.path.join(workdir, dest), workdir))
                for s in srcs:
                    for f in self.repo_files_under(s.rstrip("/")):
                        if self.ignore.excluded(f):
                            continue
                        rel = os.path.relpath(f, s.rstrip("/")) if os.path.isdir(repo(s)) else os.path.basename(f)
                        out = os.path.join(target, rel) if (dest.endswith("/") or os.path.isdir(repo(s))) \
                            else target
                        os.makedirs(os.path.dirname(out), exist_ok=True)
                        shutil.copy2(repo(f), out)
            runs = " && ".join(i.args for i in self.build.all("RUN"))
            m = re.search(r"(cmake\s+-S\s+[^&;]*)", runs)
            args = shlex.split(m.group(1))
            build_dir = args[args.index("-B") + 1]
            # Swagger UI is fetched by an earlier layer; reuse this checkout's copy (offline).
            fav_build = os.path.dirname(env_path("FAV_BIN", "build/favorites-api"))
            for d in os.listdir(fav_build) if os.path.isdir(fav_build) else []:
                if d.startswith("swagger-ui-dist-") and os.path.exists(os.path.join(fav_build, d, ".complete")):
                    shutil.copytree(os.path.join(fav_build, d), os.path.join(src_root, build_dir, d))
            r = sh(args, cwd=src_root, timeout=600)
            self.assertEqual(r.returncode, 0, f"{' '.join(args)} in the image's layout failed:\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_runtime_packages(self):
        pkgs = self.runtime.apt_packages()
        self.assertEqual(set(pkgs), RUNTIME_PACKAGES)
        for p in pkgs:
            with self.subTest(package=p):
                self.assertFalse(p.endswith("-dev"), "no -dev package at runtime")
                r = sh(["apt-cache", "show", "--no-all-versions", p], timeout=60)
                self.assertEqual(r.returncode, 0, f"apt-cache show {p}: {r.stderr.strip()} "
                                 "(no such Debian package, or no package lists: apt-get update)")
                self.assertRegex(r.stdout, rf"(?m)^Package: {re.escape(p)}$")

    def test_runtime_packages_provide_every_shared_library(self):
        closure = depends_closure(set(self.runtime.apt_packages()) | BASE_IMAGE_PACKAGES)
        for var, default in (("FAV_BIN", "build/favorites-api"), ("STUB_BIN", "build/catalog-stub")):
            binary = env_path(var, default)
            if not os.path.exists(binary):
                self.fail(f"{binary} not found: build it, or set {var}")
            libs = shared_libraries(binary)
            owners = owning_packages(libs)
            for lib in libs:
                with self.subTest(binary=os.path.basename(binary), lib=lib):
                    pkg = owners.get(lib)
                    self.assertIsNotNone(pkg, f"no Debian package owns {lib}")
                    self.assertIn(pkg, closure, f"{lib} comes from {pkg}, which the runtime stage lacks")

    def test_runtime_stage(self):
        rt = self.runtime
        users = rt.all("USER")
        self.assertTrue(users, "the runtime stage sets USER")
        user = users[-1].args.split(":")[0]
        self.assertNotIn(user, ("root", "0"), "runs as a non-root user")
        workdir = rt.workdir()
        self.assertNotEqual(workdir, "/")
        runs = " ".join(i.args for i in rt.all("RUN"))
        data = os.path.join(workdir, "data")
        # ./data belongs to the user (created and chowned, or COPYed with --chown).
        self.assertRegex(runs, rf"mkdir -p {re.escape(data)}\b")
        uid = re.escape(user)
        self.assertRegex(runs, rf"chown (-R )?{uid}(:\S+)? {re.escape(data)}\b")
        if not user.isdigit():
            self.assertRegex(runs, rf"useradd .*\b{uid}\b")
        self.assertIn("8080", " ".join(i.args for i in rt.all("EXPOSE")).split())
        self.assertEqual(rt.env().get("API_PORT", "8080"), "8080")
        hc = rt.all("HEALTHCHECK")
        self.assertEqual(len(hc), 1)
        flags, rest = hc[0].flags_and_rest()
        self.assertTrue(rest.startswith("CMD "), hc[0])
        self.assertEqual(exec_form(rest[4:])[:2], ["favorites-api", "healthcheck"])
        self.assertIn("timeout", flags, "a bounded probe")
        self.assertEqual(rt.all("ENTRYPOINT"), [], "compose runs catalog-stub from this image")
        cmd = exec_form(rt.all("CMD")[-1].args)
        self.assertIsNotNone(cmd, "exec-form CMD: favorites-api is PID 1 and gets SIGTERM")
        self.assertEqual(cmd[0], "favorites-api")
        # USER comes after every RUN that needs root.
        order = [i.keyword for i in rt.instructions]
        self.assertGreater(len(order) - order[::-1].index("USER"), len(order) - order[::-1].index("RUN"))

    # -- docker-compose.yaml ----------------------------------------------------------------------

    def test_compose_structure(self):
        doc = self.compose()
        for k in doc:
            self.assertTrue(k in ("name", "services", "volumes", "networks", "configs", "secrets")
                            or k.startswith("x-"), f"unknown top-level key {k}")
        services = doc["services"]
        declared_volumes = set((doc.get("volumes") or {}).keys())
        for name, s in services.items():
            with self.subTest(service=name):
                self.assertRegex(name, r"^[a-z0-9][a-z0-9_.-]*$")
                self.assertTrue(s.get("image") or s.get("build"), "an image or a build")
                deps = s.get("depends_on") or {}
                for dep, cond in (deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)):
                    self.assertIn(dep, services, f"depends_on {dep}")
                    if (cond or {}).get("condition") == "service_healthy":
                        self.assertTrue(services[dep].get("healthcheck", {}).get("test"),
                                        f"{dep} has no healthcheck to wait for")
                for v in s.get("volumes") or []:
                    src = v.split(":")[0] if isinstance(v, str) else v.get("source")
                    if src and not src.startswith((".", "/", "~")):
                        self.assertIn(src, declared_volumes, f"volume {src} not declared")
                build = s.get("build")
                if build is not None:
                    ctx = build if isinstance(build, str) else build.get("context", ".")
                    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
                    self.assertEqual(os.path.realpath(repo(ctx)), ROOT)
                    self.assertTrue(os.path.isfile(os.path.join(repo(ctx), dockerfile)))

    def test_compose_app_service(self):
        (app_name, app), (db_name, db), (stub_name, stub) = self.roles()
        env = interpolate(mapping(app.get("environment")), {})
        for k in ("DATABASE_URL", "API_KEY", "JWT_SECRET_KEY", "PRODUCT_CATALOG_API_BASE_URL"):
            self.assertIn(k, env)
        self.assertIn(8080, container_ports(app.get("ports")))
        self.assertEqual(self.runtime.env().get("API_PORT"), "8080")

        # DATABASE_URL names the postgres service and its credentials.
        url = urllib.parse.urlsplit(env["DATABASE_URL"])
        self.assertIn(url.scheme, ("postgresql", "postgres"))
        self.assertEqual(url.hostname, db_name)
        db_env = interpolate(mapping(db.get("environment")), {})
        self.assertEqual(url.port or 5432, int(db_env.get("PGPORT", 5432)))
        self.assertEqual(urllib.parse.unquote(url.username or ""), db_env.get("POSTGRES_USER", "postgres"))
        self.assertEqual(urllib.parse.unquote(url.password or ""), db_env.get("POSTGRES_PASSWORD"))
        self.assertEqual(url.path.lstrip("/"), db_env.get("POSTGRES_DB", db_env.get("POSTGRES_USER", "postgres")))
        self.assertRegex(db["image"], r"^postgres:15([.-]|$)")
        deps = app.get("depends_on") or {}
        self.assertIn(db_name, deps)
        self.assertIn(stub_name, deps)

        # The catalog URL points at the stub's port, and the stub listens beyond its loopback.
        cmd = command_list(stub["command"])
        args = dict(zip(cmd[1::2], cmd[2::2]))
        catalog = urllib.parse.urlsplit(env["PRODUCT_CATALOG_API_BASE_URL"])
        self.assertEqual(catalog.scheme, "http")
        self.assertEqual(catalog.hostname, stub_name)
        self.assertEqual(catalog.port, int(args["--port"]))
        self.assertEqual(args["--host"], "0.0.0.0")

    def test_compose_stub_uses_the_image(self):
        (_, app), _, (stub_name, stub) = self.roles()
        self.assertEqual(stub.get("image"), app.get("image"), "the stub runs from the service's image")
        if stub.get("build") is not None:
            self.assertEqual(stub["build"], app["build"])
        cmd = command_list(stub["command"])
        self.assertEqual(cmd[:1], ["catalog-stub"])
        # The stub's binary and products file are in the image.
        binaries = []
        for i in self.runtime.all("COPY"):
            flags, srcs, dest = copy_parts(i)
            if "from" in flags:
                binaries += [os.path.basename(s) for s in srcs]
        self.assertIn("catalog-stub", binaries)
        products = dict(zip(cmd[1::2], cmd[2::2]))["--products"]
        self.assertTrue(products.startswith("/"), products)
        self.assertEqual(self.runtime_copy_destination("data/fakestore-products.json"), products,
                         "the Dockerfile puts data/fakestore-products.json where the stub reads it")
        # The image's HEALTHCHECK probes favorites-api: a service running something else
        # replaces or disables it.
        hc = stub.get("healthcheck") or {}
        self.assertTrue(hc.get("disable") is True or hc.get("test"), f"{stub_name} inherits the API's probe")

    def test_compose_environment_passes_check_config(self):
        """The binary accepts the service's environment as the image sets it (ENV=prod...)."""
        (_, app), _, _ = self.roles()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
        env.update(self.runtime.env())
        env.update(interpolate(mapping(app.get("environment")), {}))
        fav = env_path("FAV_BIN", "build/favorites-api")
        cwd = tempfile.mkdtemp(prefix="check-config-", dir=scratch_dir())
        try:
            r = sh([fav, "check-config"], env=env, cwd=cwd, timeout=30)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
        self.assertEqual(r.returncode, 0, f"check-config: {r.stdout}{r.stderr}")
        self.assertIn("backend=postgresql", r.stdout)

    def test_compose_secrets_refused_in_prod(self):
        """CONTRACT §8: "No example deployment ships a secret that ENV=prod accepts." """
        (_, app), _, _ = self.roles()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp"}
        env.update(self.runtime.env())
        env.update(interpolate(mapping(app.get("environment")), {}))
        env["ENV"] = "prod"
        fav = env_path("FAV_BIN", "build/favorites-api")
        cwd = tempfile.mkdtemp(prefix="check-config-", dir=scratch_dir())
        try:
            r = sh([fav, "check-config"], env=env, cwd=cwd, timeout=30)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
        self.assertNotEqual(r.returncode, 0, f"ENV=prod accepted the compose file's secrets: {r.stdout}")
        self.assertRegex(r.stdout + r.stderr, "API_KEY|JWT_SECRET_KEY")

    def test_compose_publishes_beyond_loopback_only_with_secrets_from_the_environment(self):
        """CONTRACT §8 "Safe defaults": no example deployment "publishes a port beyond loopback
        while its secrets are ones written in the repository"."""
        (_, app), _, _ = self.roles()
        raw = mapping(app.get("environment"))
        repo_secrets = []
        for name in ("API_KEY", "JWT_SECRET_KEY"):
            try:
                if interpolate(raw.get(name, ""), {}):
                    repo_secrets.append(name)  # a value with no environment at all: the file's own
            except AssertionError:
                pass  # ${VAR:?...}: required from the environment
        if not repo_secrets:
            return
        for name, service in self.compose()["services"].items():
            for p in service.get("ports") or []:
                host_ip = published_address(p)
                self.assertIn(host_ip, ("127.0.0.1", "::1", "[::1]", "localhost"),
                              f"{name} publishes {p!r} beyond loopback with the repository's {repo_secrets}")

    def test_postgres_examples_verify_the_server(self):
        """CONTRACT §8 "Transport to the database": production PostgreSQL verifies the server's
        certificate and name (sslmode=verify-full); sslmode=require authenticates no server, so no
        example names it. The compose stack's own database, on its private network, may say
        sslmode=disable."""
        files = ["docker-compose.yaml", "README.md", ".env.example"]
        for folder, _, names in sorted(os.walk(repo("deploy"))):
            files += [os.path.relpath(os.path.join(folder, n), repo(".")) for n in sorted(names)]
        for f in files:
            text = open(repo(f), encoding="utf-8").read()
            # The modes that encrypt (or not) without verifying who answers.
            for m in re.finditer(r"sslmode=(require|prefer|allow|verify-ca)\b", text):
                self.fail(f"{f}: {m.group(0)} does not authenticate the server; use sslmode=verify-full")
        services = self.compose()["services"]
        for name, service in services.items():
            url = interpolate(mapping(service.get("environment")), {}).get("DATABASE_URL", "")
            if "sslmode=disable" in url:
                self.assertIn(urllib.parse.urlsplit(url).hostname, services,
                              f"{name}: sslmode=disable for a database outside the compose network")

    def test_compose_stub_arguments_accepted(self):
        """catalog-stub starts with the compose command's options (loopback and port 0 here,
        the repository's products file for the image's)."""
        _, _, (_, stub) = self.roles()
        cmd = command_list(stub["command"])
        args = cmd[1:]
        for k, v in (("--host", "127.0.0.1"), ("--port", "0"), ("--products", repo("data", "fakestore-products.json"))):
            args[args.index(k) + 1] = v
        proc = subprocess.Popen([env_path("STUB_BIN", "build/catalog-stub"), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            # The first line: listening, or the reason it is not (bounded wait).
            ready, _, _ = select.select([proc.stdout], [], [], 10)
            line = proc.stdout.readline() if ready else "(nothing within 10 s)"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        self.assertRegex(line, r"^catalog-stub listening on port \d+", line)

    def test_compose_scaled_profile(self):
        """A scaled profile — three API replicas of the same image behind nginx, the
        nginx configuration in the repository (keep-alive upstreams, idempotent retries)."""
        services = self.compose()["services"]
        (app_name, app), (db_name, _), _ = self.roles()
        replicas = [(n, s) for n, s in services.items()
                    if "scaled" in (s.get("profiles") or []) and s.get("image") == app.get("image")]
        self.assertEqual(len(replicas), 1, "one replicated API service in the scaled profile")
        rep_name, rep = replicas[0]
        self.assertEqual((rep.get("deploy") or {}).get("replicas"), 3)
        self.assertEqual(mapping(rep.get("environment")), mapping(app.get("environment")),
                         "replicas run with the single instance's environment")
        self.assertIn(db_name, rep.get("depends_on") or {})
        self.assertFalse(rep.get("ports"), "replicas are reached through the balancer only")
        lbs = [(n, s) for n, s in services.items()
               if "scaled" in (s.get("profiles") or []) and str(s.get("image", "")).startswith("nginx:")]
        self.assertEqual(len(lbs), 1, "one nginx in the scaled profile")
        lb_name, lb = lbs[0]
        self.assertIn(rep_name, lb.get("depends_on") or {})
        # §8: behind the balancer the replicas take the client address from X-Forwarded-For only
        # when the balancer's address is in TRUSTED_PROXIES — so nginx needs a fixed address, on a
        # network it shares with the replicas, that the replicas' TRUSTED_PROXIES covers.
        lb_nets = lb.get("networks") or {}
        fixed = [(n, (c or {}).get("ipv4_address")) for n, c in lb_nets.items() if (c or {}).get("ipv4_address")]
        self.assertEqual(len(fixed), 1, f"nginx needs one fixed address: {lb_nets}")
        net_name, lb_addr = fixed[0]
        lb_ip = ipaddress.ip_address(interpolate(lb_addr, {}))
        rep_nets = rep.get("networks") or []
        self.assertIn(net_name, rep_nets if isinstance(rep_nets, list) else list(rep_nets))
        subnet = ((self.compose().get("networks") or {}).get(net_name) or {}).get("ipam", {}).get("config", [{}])[0]
        self.assertIn(lb_ip, ipaddress.ip_network(interpolate(subnet.get("subnet", "0.0.0.0/32"), {})))
        trusted = interpolate(mapping(rep.get("environment")).get("TRUSTED_PROXIES", ""), {})
        self.assertTrue(trusted, "the replicas trust no proxy: every client shares nginx's rate-limit bucket")
        self.assertTrue(any(lb_ip in ipaddress.ip_network(c.strip(), strict=False) for c in trusted.split(",")),
                        f"TRUSTED_PROXIES={trusted!r} does not cover nginx at {lb_ip}")
        mounts = [v.split(":") for v in lb.get("volumes") or [] if isinstance(v, str)]
        conf = [m for m in mounts if m[1] == "/etc/nginx/nginx.conf"]
        self.assertEqual(len(conf), 1, mounts)
        path = repo(conf[0][0])
        self.assertTrue(os.path.isfile(path), path)
        text = open(path, encoding="utf-8").read()
        self.assertRegex(text, rf"server\s+{re.escape(rep_name)}:8080\b")
        for needle in ("keepalive ", "proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                       "proxy_next_upstream error timeout;", "X-Forwarded-For"):
            self.assertIn(needle, text)
        directives = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        self.assertNotIn("non_idempotent", directives, "POST/PATCH/DELETE must never be sent twice")
        listen = re.search(r"listen\s+(\d+);", text)
        self.assertIn(int(listen.group(1)), container_ports(lb.get("ports")))
        # nginx itself accepts the file (the replica's name replaced by loopback).
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            self.skipTest("nginx not installed (scripts/install-deps.sh test installs nginx-light)")
        work = tempfile.mkdtemp(prefix="nginx-check-", dir=scratch_dir())
        try:
            local = text.replace(f"{rep_name}:8080", "127.0.0.1:8080")
            local = re.sub(r"listen\s+\d+;", "listen 127.0.0.1:18080;", local)
            local = local.replace("events {", f"pid {work}/nginx.pid;\nerror_log {work}/error.log;\nevents {{", 1)
            with open(os.path.join(work, "nginx.conf"), "w", encoding="utf-8") as f:
                f.write(local)
            r = sh([nginx, "-t", "-p", work, "-c", os.path.join(work, "nginx.conf")], timeout=30)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
