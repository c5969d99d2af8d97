#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need; idempotent, and runs
# `apt-get update` only when something is missing. Usage: scripts/install-deps.sh [build|test|bench]
set -euo pipefail
want="${1:-build}"
pkgs=(build-essential cmake pkg-config ca-certificates
      libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
      libpq-dev libsqlite3-dev libsodium-dev libargon2-dev libssl-dev zlib1g-dev
      libspdlog-dev libfmt-dev libcli11-dev libgtest-dev)
# Node.js may come from elsewhere than Debian (its npm is bundled): only ask apt when absent.
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
command -v git >/dev/null 2>&1 || pkgs+=(git)
case "$want" in
  # clang, its sanitizer and libFuzzer runtimes and llvm-symbolizer: the sanitizer builds and
  # the fuzz targets of scripts/test-sanitizers.sh. pgbouncer: the transaction-pooling test of
  # tests/http/test_pg_availability.py. prometheus: promtool (rule unit tests, `check metrics`) and
  # the server the multi-instance test scrapes with; python3-yaml reads the rule files.
  test)  pkgs+=(postgresql postgresql-contrib curl chromium clang-format sqlite3 procps nginx-light
               clang libclang-rt-dev llvm pgbouncer prometheus python3-yaml) ;;
  bench) pkgs+=(postgresql postgresql-contrib curl wrk nginx-light gnuplot-nox) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  [ "$(id -u)" = 0 ] && sudo= || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's prometheus package enables and starts a server on :9090; the tests start their own
  # on a free loopback port, so one we just installed is stopped and left disabled.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1 &&
     [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
fi
