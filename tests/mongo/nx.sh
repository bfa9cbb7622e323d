#!/usr/bin/env bash
# nx-27017 (a MongoDB wire-protocol server over SQLite) for scripts that need a throwaway
# MongoDB-compatible store: the interop suite's two-process scenario, or a shell by hand.
# Same venv and version as tests/mongo/run.sh.
#
#   tests/mongo/nx.sh install        # installs it in the venv if missing; prints the binary path
#   tests/mongo/nx.sh start DIR      # starts it on a free loopback port with its data in DIR;
#                                    # prints the mongodb:// URI once it accepts connections
#   tests/mongo/nx.sh stop DIR       # stops the server started with DIR (by its recorded PID)
#
# Environment: PORTICO_NX_VENV (default ~/.cache/portico/venv-nx27017-0.8.1).
# Fails (non-zero) if the install or the start fails: no silent skips.
set -euo pipefail

NX_VERSION=0.8.1
VENV=${PORTICO_NX_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/portico/venv-nx27017-$NX_VERSION}
NX=$VENV/bin/nx-27017

install_nx() {
    if [ ! -x "$NX" ]; then
        echo "nx.sh: installing nx-27017==$NX_VERSION into $VENV" >&2
        mkdir -p "$(dirname "$VENV")"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "nx-27017==$NX_VERSION" >&2
    fi
    [ -x "$NX" ] || { echo "nx.sh: $NX missing after install" >&2; exit 1; }
}

case "${1:-}" in
install)
    install_nx
    echo "$NX"
    ;;
start)
    dir=${2:?usage: nx.sh start DIR}
    install_nx
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$NX" --host 127.0.0.1 -p "$port" --data-dir "$dir/data" \
        --log-file "$dir/nx.log" --pid-file "$dir/nx.pid" >"$dir/out.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/nx.shell-pid"
    for _ in $(seq 1 150); do # at most 30 s
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "nx.sh: nx-27017 exited during startup:" >&2
            cat "$dir/out.log" >&2 || true
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "mongodb://127.0.0.1:$port"
            exit 0
        fi
        sleep 0.2
    done
    echo "nx.sh: nx-27017 did not listen on 127.0.0.1:$port within 30 s" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
stop)
    dir=${2:?usage: nx.sh stop DIR}
    [ -f "$dir/nx.shell-pid" ] || { echo "nx.sh: no server recorded in $dir" >&2; exit 1; }
    pid=$(cat "$dir/nx.shell-pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$dir/nx.shell-pid"
    ;;
*)
    echo "usage: nx.sh install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
