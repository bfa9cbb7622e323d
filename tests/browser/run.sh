#!/usr/bin/env bash
# Browser tests of the admin page: headless Debian Chromium driven by playwright-core.
#
#   PORTICO_BIN=target/debug/portico bash tests/browser/run.sh
#
# Installs what is missing (chromium through apt when run as root, the npm packages from
# package-lock.json), then runs admin.test.mjs. Screenshots land in tests/browser/artifacts/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "run.sh: installing chromium with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get update -q
    timeout 1800 apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
  else
    echo "run.sh: $chromium is missing: install Debian's chromium or set CHROMIUM" >&2
    exit 1
  fi
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "run.sh: node and npm are needed (Node 20 or newer)" >&2
  exit 1
fi

if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/axe-core" ]; then
  echo "run.sh: npm ci in tests/browser" >&2
  (cd "$here" && timeout 600 npm ci --no-audit --no-fund)
fi

bin="${PORTICO_BIN:-target/debug/portico}"
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "run.sh: no portico binary at $bin: build it (cargo build -p portico-host --bin portico) or set PORTICO_BIN" >&2
  exit 1
fi
export PORTICO_BIN="$bin" CHROMIUM="$chromium"

cd "$root"
timeout 900 node --test --test-reporter=spec tests/browser/admin.test.mjs
