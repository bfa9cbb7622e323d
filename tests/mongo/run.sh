#!/usr/bin/env bash
# Runs the MongoDB store tests (host, `store::mongo`, feature `mongo-tests`) against nx-27017, a
# MongoDB wire-protocol server over SQLite: installs it in a venv if missing, starts it on a
# free loopback port with a temporary data directory, runs the tests, and stops it (by its PID).
#
#   bash tests/mongo/run.sh [extra `cargo test` arguments, e.g. -- --nocapture]
#
# Environment:
#   PORTICO_NX_VENV           the venv (default: ~/.cache/portico/venv-nx27017-0.8.1)
#   PORTICO_TEST_MONGODB_URI  if set, the shared tests use this server (e.g. a real mongod)
#                             instead of the nx-27017 started here; the outage test always
#                             runs its own nx-27017
#   CARGO_TARGET_DIR          honoured as usual
# Fails (non-zero) if the venv, the install or the server cannot be set up: no silent skips.
set -euo pipefail

NX_VERSION=0.8.1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${PORTICO_NX_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/portico/venv-nx27017-$NX_VERSION}
NX=$VENV/bin/nx-27017

if [ ! -x "$NX" ]; then
    echo "mongo tests: installing nx-27017==$NX_VERSION into $VENV" >&2
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "nx-27017==$NX_VERSION"
fi
[ -x "$NX" ] || { echo "mongo tests: $NX missing after install" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-mongo.XXXXXX")
NX_PID=
cleanup() {
    if [ -n "$NX_PID" ]; then
        kill "$NX_PID" 2>/dev/null || true
        wait "$NX_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$NX" --host 127.0.0.1 -p "$PORT" --data-dir "$TMP/data" \
    --log-file "$TMP/nx.log" --pid-file "$TMP/nx.pid" >"$TMP/out.log" 2>&1 &
NX_PID=$!

# Wait (at most 30 s) until it accepts connections.
ready=
for _ in $(seq 1 150); do
    if ! kill -0 "$NX_PID" 2>/dev/null; then
        echo "mongo tests: nx-27017 exited during startup:" >&2
        cat "$TMP/out.log" >&2 || true
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.2
done
if [ -z "$ready" ]; then
    echo "mongo tests: nx-27017 did not listen on 127.0.0.1:$PORT within 30 s" >&2
    cat "$TMP/out.log" >&2 || true
    exit 1
fi
echo "mongo tests: nx-27017 (pid $NX_PID) on 127.0.0.1:$PORT" >&2

export PORTICO_TEST_MONGODB_URI=${PORTICO_TEST_MONGODB_URI:-mongodb://127.0.0.1:$PORT}
export PORTICO_TEST_NX27017=$NX
cd "$ROOT"
status=0
cargo test -p portico-host --features mongo-tests "$@" store::mongo || status=$?
# Two `portico serve` processes on the same database.
cargo test -p portico-host --features mongo-tests --test process "$@" two_processes || status=$?
if [ "$status" -ne 0 ]; then
    echo "mongo tests: failed; last lines of the nx-27017 log:" >&2
    tail -n 30 "$TMP/nx.log" >&2 || true
fi
exit "$status"
