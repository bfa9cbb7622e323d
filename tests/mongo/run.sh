#!/usr/bin/env bash
# Runs the MongoDB tests against nx-27017, a MongoDB wire-protocol server over SQLite: installs
# it in a venv if missing, starts it on a free loopback port with a temporary data directory,
# runs the tests, and stops it (by its PID). The tests:
#   - the MongoDB store tests (host, `store::mongo`, feature `mongo-tests`): conformance, the
#     crash and outage cases, `portico store copy` embedded -> MongoDB -> embedded;
#   - two `portico serve` processes on one database (host/tests/process.rs);
#   - SIGKILL during concurrent writes, restarted on the same database (host/tests/faults.rs);
#   - the whole end-to-end suite (`cargo test -p portico-tests`: gateway, admin, CardDAV) on a
#     MongoDB-backed host (PORTICO_TEST_STORE=mongodb, one database per test server).
# The end-to-end suite runs with store.transactions = "off" (log-first writes) on nx-27017:
# nx-27017 accepts transactions but runs each one as a savepoint on a single shared SQLite
# connection, so two concurrent transactions break each other ("no such savepoint"), and the
# suite has concurrent writers on purpose. Against a real server (PORTICO_TEST_MONGODB_URI set)
# it runs with "auto" unless PORTICO_TEST_STORE_TRANSACTIONS says otherwise.
#
#   bash tests/mongo/run.sh [extra `cargo test` arguments, e.g. -- --nocapture]
#
# Environment:
#   PORTICO_NX_VENV           the venv (default: ~/.cache/portico/venv-nx27017-0.8.1)
#   PORTICO_TEST_MONGODB_URI  if set, the shared tests use this server (e.g. a real mongod)
#                             instead of the nx-27017 started here; the outage test always
#                             runs its own nx-27017
#   PORTICO_TEST_STORE_TRANSACTIONS  store.transactions for the end-to-end suite (auto|on|off;
#                             default: off on nx-27017, auto on a server of your own)
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

if [ -n "${PORTICO_TEST_MONGODB_URI:-}" ]; then
    E2E_TRANSACTIONS=${PORTICO_TEST_STORE_TRANSACTIONS:-auto}
else
    E2E_TRANSACTIONS=${PORTICO_TEST_STORE_TRANSACTIONS:-off}
fi
export PORTICO_TEST_MONGODB_URI=${PORTICO_TEST_MONGODB_URI:-mongodb://127.0.0.1:$PORT}
export PORTICO_TEST_NX27017=$NX
cd "$ROOT"
status=0
cargo test -p portico-host --features mongo-tests "$@" store::mongo || status=$?
# Two `portico serve` processes on the same database; `portico store copy` through MongoDB.
cargo test -p portico-host --features mongo-tests --test process "$@" mongodb || status=$?
# SIGKILL at random moments during concurrent writes; restarts on the same database.
cargo test -p portico-host --features mongo-tests --test faults "$@" mongodb || status=$?
# The end-to-end suite on a MongoDB-backed host.
PORTICO_TEST_STORE=mongodb PORTICO_TEST_STORE_TRANSACTIONS=$E2E_TRANSACTIONS \
    cargo test -p portico-tests "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "mongo tests: failed; last lines of the nx-27017 log:" >&2
    tail -n 30 "$TMP/nx.log" >&2 || true
fi
exit "$status"
