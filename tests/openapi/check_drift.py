"""Contract test against drift: every (method, route, status, error code) that the HTTP suites
observed (tests/http/harness.py writes them to FAV_CONTRACT_RECORD_DIR) must be documented for
that operation in openapi/openapi.json. ctest runs it after the HTTP suites
(contract.openapi_drift); it can also be run by hand after them:

    FAV_CONTRACT_RECORD_DIR=build/contract-observed python3 tests/openapi/check_drift.py

Rules (each is also stated in the document's info.description):
- a path that matches no documented path template is not an operation: unknown routes answer
  404 not_found (contract §1); tests/unit/test_openapi.cpp holds the route table to the document;
- HEAD is checked against the GET operation (contract §10: "the same status and headers");
- the connection layer's own refusals (400 bad_request, 408 request_timeout, 431
  request_header_too_large, 501 not_implemented) come before any routing, on any method and path; the
  document states them once in its conventions, so they pass wherever they are seen, provided
  the document's info.description still names each of them;
- OPTIONS (CORS preflight, 204) and 405 on a known path with an undocumented method are global
  rules of contract §1, not operations;
- a documented status whose error schema lists `detail` codes must list the observed code; one
  with the generic Error schema accepts any code.
Exit: 0 documented, 1 drift (each missing tuple named), 77 nothing was recorded."""

import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load_document(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def resolve(doc, v, hops=0):
    while isinstance(v, dict) and "$ref" in v and hops < 10:
        ref = v["$ref"]
        assert ref.startswith("#/"), ref
        target = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        v, hops = target, hops + 1
    return v


def detail_codes(doc, schema):
    """The `detail` enum of an error schema (allOf parts included); None when there is none."""
    schema = resolve(doc, schema)
    if not isinstance(schema, dict):
        return None
    codes = set()
    found = False
    parts = [schema] + [resolve(doc, p) for p in schema.get("allOf", []) + schema.get("oneOf", [])
                        + schema.get("anyOf", [])]
    for part in parts:
        if not isinstance(part, dict):
            continue
        detail = resolve(doc, part.get("properties", {}).get("detail", {}))
        if isinstance(detail, dict) and "enum" in detail:
            codes.update(detail["enum"])
            found = True
    return codes if found else None


def documented_codes(doc, response):
    """Codes a documented response may carry: a set, or None for "any" (no enum)."""
    response = resolve(doc, response)
    content = response.get("content") or {}
    result = set()
    for media in content.values():
        codes = detail_codes(doc, media.get("schema", {}))
        if codes is None:
            return None
        result |= codes
    return result if content else None


def templates(doc):
    """[(template, compiled regex)], literal segments first so /health/ready beats /health/{x}."""
    out = []
    for t in doc["paths"]:
        rx = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"
        out.append((t, re.compile(rx)))
    out.sort(key=lambda tr: tr[0].count("{"))
    return out


def route_of(tmpls, path):
    for t, rx in tmpls:
        if rx.match(path):
            return t
    return None


def observations(directory):
    seen = {}
    for name in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        with open(name, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    o = json.loads(line)
                except ValueError:
                    continue  # a line cut by a killed suite
                key = (o["method"].upper(), o["path"], int(o["status"]), o.get("code"))
                seen.setdefault(key, os.path.basename(name))
    return seen


# Refusals of the connection layer (src/http/server.cpp), answered before a route is chosen.
CONNECTION_LAYER = {(400, "bad_request"), (408, "request_timeout"), (431, "request_header_too_large"),
                    (501, "not_implemented")}


def check(doc, seen):
    """The undocumented tuples: {(METHOD, template, status, code): (example path, file)}."""
    tmpls = templates(doc)
    conventions = doc.get("info", {}).get("description", "")
    missing = {}
    for (method, path, status, code), source in seen.items():
        if method == "OPTIONS":
            continue
        if (status, code) in CONNECTION_LAYER and f"{status} `{code}`" in conventions:
            continue
        route = route_of(tmpls, path)
        if route is None:
            continue
        item = doc["paths"][route]
        op = item.get(method.lower()) or (item.get("get") if method == "HEAD" else None)
        if op is None:
            if status == 405:
                continue
            missing[(method, route, status, code)] = (path, source, "no such operation")
            continue
        responses = op.get("responses", {})
        response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
        if response is None:
            missing[(method, route, status, code)] = (path, source, "status not documented")
            continue
        if code is None or method == "HEAD":
            continue
        codes = documented_codes(doc, response)
        if codes is not None and code not in codes:
            missing[(method, route, status, code)] = (path, source, f"code not among {sorted(codes)}")
    return missing


def main():
    directory = os.environ.get("FAV_CONTRACT_RECORD_DIR", os.path.join(ROOT, "build", "contract-observed"))
    doc = load_document(os.environ.get("FAV_OPENAPI", os.path.join(ROOT, "openapi", "openapi.json")))
    seen = observations(directory)
    if not seen:
        print(f"SKIPPED: nothing recorded in {directory} (run the HTTP suites first)")
        return 77
    missing = check(doc, seen)
    routes = {(m, route_of(templates(doc), p)) for (m, p, _s, _c) in seen}
    print(f"{len(seen)} distinct observations over {len(routes)} (method, route) pairs checked "
          f"against openapi/openapi.json")
    if not missing:
        print("OK: every observed (method, route, status, code) is documented")
        return 0
    print(f"FAIL: {len(missing)} observed answer(s) not documented in openapi/openapi.json:")
    for (method, route, status, code), (path, source, why) in sorted(missing.items(), key=str):
        print(f"  {method} {route} -> {status} {code or '(no code)'}: {why} (seen on {path} by {source})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
