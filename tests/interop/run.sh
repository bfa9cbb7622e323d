#!/usr/bin/env bash
# Portico's interop suite: a live Portico driven by third-party clients (litmus, vdirsyncer +
# khard, tsdav). Prints PASS/FAIL/SKIP lines and ends with `N passed, M failed`; exits non-zero
# on any failure. See tests/interop/README.md.
#
#   tests/interop/run.sh                  # build portico (debug), install missing clients, run all
#   tests/interop/run.sh --only tsdav     # one client (litmus, vdirsyncer, tsdav, vdirsyncer-mongo;
#                                         # comma-separated; `tests/interop/run` is the same script)
#   PORTICO_BIN=path/to/portico tests/interop/run.sh   # use a built binary, skip the build
#   INTEROP_NO_INSTALL=1 ...              # never call install.sh; fail if a client is missing
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PYTHONDONTWRITEBYTECODE=1

missing() {
  local m=()
  for t in litmus vdirsyncer khard node python3; do
    command -v "$t" >/dev/null 2>&1 || m+=("$t")
  done
  [ -f "$here/tsdav/node_modules/tsdav/package.json" ] || m+=("tsdav(npm)")
  echo "${m[*]:-}"
}

if [ -n "$(missing)" ]; then
  if [ -z "${INTEROP_NO_INSTALL:-}" ] && [ "$(id -u)" = 0 ]; then
    echo "# interop: installing missing clients: $(missing)"
    "$here/install.sh"
  fi
  if [ -n "$(missing)" ]; then
    echo "FAIL interop: missing $(missing); run tests/interop/install.sh (as root)"
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

if [ -z "${PORTICO_BIN:-}" ]; then
  (cd "$root" && cargo build --locked -p portico-host --bin portico)
  target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
  PORTICO_BIN="$target_dir/debug/portico"
fi

# The whole suite is bounded; each client also has its own limit in run.py.
exec timeout --kill-after=10 900 python3 "$here/run.py" --bin "$PORTICO_BIN" "$@"
