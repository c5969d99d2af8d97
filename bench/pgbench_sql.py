#!/usr/bin/env python3
"""Expands bench/sql/*.pgbench into pgbench scripts holding exactly the service's SQL.

A template line "@name :a :b" is replaced by the text of `constexpr pg_statement name{...}` in
src/store/pg_store.cpp, with $1, $2, ... replaced by :a, :b (pgbench -M prepared turns them back
into parameters). Also writes statements.json (name -> text) so run.sh can map
pg_stat_statements rows back to statement names.

usage: pgbench_sql.py SRC/store/pg_store.cpp TEMPLATE_DIR OUT_DIR
"""
import json
import pathlib
import re
import sys

STATEMENT = re.compile(
    r'constexpr\s+pg_statement\s+(\w+)\s*\{\s*"(\w+)"\s*,\s*'
    r'(?:R"sql\((.*?)\)sql"|"((?:[^"\\]|\\.)*)")\s*\}', re.S)


def statements(source: str) -> dict:
    out = {}
    for m in STATEMENT.finditer(source):
        text = m.group(3) if m.group(3) is not None else bytes(m.group(4), "utf-8").decode("unicode_escape")
        out[m.group(2)] = text
    return out


def expand(template: str, stmts: dict, name: str) -> str:
    lines = []
    for line in template.splitlines():
        if not line.startswith("@"):
            lines.append(line)
            continue
        parts = line[1:].split()
        sql = stmts.get(parts[0])
        if sql is None:
            sys.exit(f"{name}: no statement '{parts[0]}' in pg_store.cpp")
        args = parts[1:]
        used = {int(n) for n in re.findall(r"\$(\d+)", sql)}
        if used and max(used) > len(args):
            sys.exit(f"{name}: {parts[0]} takes {max(used)} parameters, got {len(args)}")
        sql = re.sub(r"\$(\d+)", lambda m: args[int(m.group(1)) - 1], sql.strip())
        lines.append(sql + ";")
    return "\n".join(lines) + "\n"


def main() -> None:
    src, tdir, odir = map(pathlib.Path, sys.argv[1:4])
    stmts = statements(src.read_text())
    if not stmts:
        sys.exit(f"no pg_statement constants found in {src}")
    odir.mkdir(parents=True, exist_ok=True)
    for t in sorted(tdir.glob("*.pgbench")):
        (odir / (t.stem + ".sql")).write_text(expand(t.read_text(), stmts, t.name))
    (odir / "statements.json").write_text(json.dumps(stmts, indent=1))


if __name__ == "__main__":
    main()
