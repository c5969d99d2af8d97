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
  # tests/http/test_pg_availability.py and the high-availability test (tests/ha/run.sh, with
  # patroni, etcd-server and etcd-client). prometheus: promtool (rule unit tests, `check metrics`)
  # and the server the multi-instance test scrapes with; python3-yaml reads the rule files.
  test)  pkgs+=(postgresql postgresql-contrib curl chromium clang-format sqlite3 procps nginx-light
               clang libclang-rt-dev llvm patroni etcd-server etcd-client pgbouncer prometheus python3-yaml) ;;
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
  # The tests start their own etcd, Patroni, PgBouncer and Prometheus on free ports: the system
  # services these packages would start on install (etcd on 2379, PgBouncer on 6432, Prometheus
  # on 9090) must not run. A
  # policy-rc.d answering 101 is Debian's way to say so (invoke-rc.d and deb-systemd-invoke
  # honour it); one that is already there (as in containers) is left alone.
  daemons=()
  for p in "${missing[@]}"; do
    case "$p" in patroni|etcd-server|pgbouncer|prometheus) daemons+=("$p") ;; esac
  done
  policy=
  if [ "${#daemons[@]}" -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# scripts/install-deps.sh: no service starts while it installs\nexit 101\n' |
      $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "${#daemons[@]}" -gt 0 ] && [ -d /run/systemd/system ]; then
    # Not at boot either: no test needs a system-wide etcd, Patroni, PgBouncer or Prometheus.
    for d in "${daemons[@]}"; do
      unit="${d%-server}"
      $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
fi
