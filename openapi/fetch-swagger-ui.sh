#!/usr/bin/env bash
# Fetches the pinned swagger-ui-dist release into a build directory, once, for embedding in the
# binary (openapi/docs.cmake). Usage: openapi/fetch-swagger-ui.sh <build-dir>
# Idempotent: does nothing (and needs no network) when the files are already there. Uses npm's
# configured registry and its cache; checks the tarball against the pinned integrity.
set -euo pipefail

version=5.35.0
integrity=sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
# The files /docs serves; the big text ones are also stored gzip-compressed (*.gz).
files=(swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js
       favicon-32x32.png favicon-16x16.png LICENSE NOTICE
       swagger-ui-bundle.js.LICENSE.txt swagger-ui-standalone-preset.js.LICENSE.txt)
gzipped=(swagger-ui.css swagger-ui-bundle.js swagger-ui-standalone-preset.js)

[ $# -eq 1 ] || { echo "usage: $0 <build-dir>" >&2; exit 2; }
mkdir -p "$1"
dest="$(cd "$1" && pwd)/swagger-ui-dist-$version"
fetched() {
  [ "$(cat "$dest/.complete" 2>/dev/null)" = "$version" ] || return 1
  local f
  for f in "${files[@]}"; do [ -f "$dest/$f" ] || return 1; done
  for f in "${gzipped[@]}"; do [ -f "$dest/$f.gz" ] || return 1; done
}
fetched && exit 0

for tool in npm node tar gzip; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "fetch-swagger-ui: '$tool' is needed to fetch swagger-ui-dist $version once (see scripts/install-deps.sh)" >&2; exit 1; }
done

work="$(mktemp -d "$dest.tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# --prefer-offline: a tarball already in npm's cache is used without asking the registry.
(cd "$work" && npm pack "swagger-ui-dist@$version" --prefer-offline --silent --no-audit --no-fund >/dev/null)
tgz="$work/swagger-ui-dist-$version.tgz"
actual="$(node -e 'const c=require("crypto"),f=require("fs");
  process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")"
if [ "$actual" != "$integrity" ]; then
  echo "fetch-swagger-ui: swagger-ui-dist-$version.tgz has integrity $actual, expected $integrity" >&2
  exit 1
fi

mkdir "$work/out"
tar -m -xzf "$tgz" -C "$work" "${files[@]/#/package/}"
for f in "${files[@]}"; do mv "$work/package/$f" "$work/out/$f"; done
# -n: no name or time stamp inside, so the bytes (and their ETag) are reproducible.
for f in "${gzipped[@]}"; do gzip -9 -n -c "$work/out/$f" >"$work/out/$f.gz"; done
echo "$version" >"$work/out/.complete"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "fetch-swagger-ui: swagger-ui-dist $version in $dest"
