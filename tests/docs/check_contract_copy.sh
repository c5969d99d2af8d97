#!/usr/bin/env bash
# docs/CONTRACT.md is the repository's copy of the shared contract (../shared/CONTRACT.md beside a
# checkout). The code's "contract §N" comments point at it, so it must say what the shared one says:
# this fails when they differ, and skips (77) when the shared folder is not there.
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=../shared/CONTRACT.md
[ -f "$shared" ] || { echo "no $shared beside this checkout: skipped"; exit 77; }
if ! diff <(tail -n +5 docs/CONTRACT.md) "$shared" >/dev/null; then
  echo "docs/CONTRACT.md differs from $shared: copy the shared contract in (keeping the 4-line header)" >&2
  diff <(tail -n +5 docs/CONTRACT.md) "$shared" | head -40 >&2
  exit 1
fi
echo "docs/CONTRACT.md matches $shared"
