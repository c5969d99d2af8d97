#!/usr/bin/env python3
"""Checks and unit-tests the Prometheus rules (ctest deploy.prometheus_rules).

1. `promtool check rules favorites-api.rules.yml`: the rules parse and the queries are valid;
   `promtool check config prometheus.yml` (the compose `scaled` profile's Prometheus).
2. Every alert of the rules file is covered by the test files (favorites-api.rules.test.yml, and
   favorites-api.rules.slow.test.yml for the three-day windows) both ways: at least one case
   where it fires and one where it stays quiet (an empty `exp_alerts`).
3. `promtool test rules` on the test files, with each expected alert's annotations filled in from
   the rules file (its `{{ $labels.x }}` templates rendered with the expected labels), so the
   runbook text is written once and a changed template still has to match what fires.

Exit 0 when all pass; promtool comes with Debian's `prometheus` package (scripts/install-deps.sh test).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
RULES = os.path.join(HERE, "favorites-api.rules.yml")
TESTS = [os.path.join(HERE, f) for f in ("favorites-api.rules.test.yml", "favorites-api.rules.slow.test.yml")]


def render(template: str, labels: dict) -> str:
    def sub(m):
        name = m.group(1)
        if name not in labels:
            raise SystemExit(f"FAIL: annotation template uses $labels.{name}, which the test's alert lacks")
        return str(labels[name])
    out = re.sub(r"\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", sub, template)
    if "{{" in out:
        raise SystemExit(f"FAIL: annotation template not renderable from labels alone: {template!r}")
    return out


def main() -> int:
    promtool = shutil.which("promtool")
    if not promtool:
        print("FAIL: promtool not found (Debian's prometheus package; scripts/install-deps.sh test)")
        return 1
    rc = subprocess.run([promtool, "check", "rules", RULES]).returncode
    if rc != 0:
        print("FAIL: promtool check rules")
        return 1
    # The compose profile's configuration (it loads the same rules).
    rc = subprocess.run([promtool, "check", "config", os.path.join(HERE, "prometheus.yml")]).returncode
    if rc != 0:
        print("FAIL: promtool check config prometheus.yml")
        return 1

    rules = yaml.safe_load(open(RULES, encoding="utf-8"))
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    specs = {path: yaml.safe_load(open(path, encoding="utf-8")) for path in TESTS}

    fires, quiet = {a: [] for a in alerts}, {a: [] for a in alerts}
    for case in [c for spec in specs.values() for c in spec["tests"]]:
        for t in case.get("alert_rule_test", []):
            name = t["alertname"]
            if name not in alerts:
                print(f"FAIL: test '{case['name']}' names unknown alert {name}")
                return 1
            (fires if t.get("exp_alerts") else quiet)[name].append(case["name"])
            for exp in t.get("exp_alerts") or []:
                rule = alerts[name]
                labels = dict(exp["exp_labels"])
                labels.update({k: v for k, v in (rule.get("labels") or {}).items() if k not in labels})
                exp["exp_annotations"] = {k: render(v, labels) for k, v in (rule.get("annotations") or {}).items()}
    missing = [f"{a} never fires" for a in alerts if not fires[a]] + \
              [f"{a} never shown quiet" for a in alerts if not quiet[a]]
    for a in alerts:
        print(f"  {a}: fires in {fires[a]}; quiet in {quiet[a]}")
    if missing:
        print("FAIL: alerts not covered both ways: " + "; ".join(missing))
        return 1
    for a, r in alerts.items():
        if not (r.get("annotations") or {}).get("runbook"):
            print(f"FAIL: {a} has no runbook annotation")
            return 1

    with tempfile.TemporaryDirectory(prefix="fav-rules-") as tmp:
        shutil.copy(RULES, os.path.join(tmp, os.path.basename(RULES)))
        paths = []
        for path, spec in specs.items():
            paths.append(os.path.join(tmp, os.path.basename(path)))
            with open(paths[-1], "w", encoding="utf-8") as f:
                yaml.safe_dump(spec, f, sort_keys=False, width=1000)
        rc = subprocess.run([promtool, "test", "rules", *paths]).returncode
    if rc != 0:
        print("FAIL: promtool test rules")
        return 1
    print(f"OK: {len(alerts)} alerts, each shown firing and quiet; promtool test rules passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
