#!/usr/bin/env bash
# bench/run.sh - Portico vs Radicale 3, Xandikos and nginx (raw-HTTP ceiling), one run, one machine.
#
#   bench/run.sh [--quick] [--n "1000 10000 100000"] [--peers "radicale xandikos nginx"]
#                [--many-orgs 1000x100|none] [--out DIR] [--peer-max-min M] [--no-build]
#                [--tag NAME] [--no-import]
# peers: radicale, xandikos (loaded by PUT), nginx (serves Portico's captured bytes), and
#        radicale-preload (Radicale with the contacts written straight into its storage by the
#        shared run_peer.sh, for read figures when loading by PUT does not finish in time)
#
# See bench/README.md. Everything listens on 127.0.0.1 only; every server this script starts
# is stopped by its PID; every client loop is bounded (harness --seed-max-s, `timeout`).
# env: CARGO_TARGET_DIR (default <repo>/target), BENCH_HARNESS (default <repo>/../shared/bench),
#      BENCH_WORK (scratch: venv, data dirs; default ${TMPDIR:-/tmp}/portico-bench),
#      BENCH_ARGS (extra carddav_bench.py args for every run), BASE_PORT (default 18100),
#      PORTICO_SRC (source tree to build; default this repo), BENCH_PORTICO_COMMIT (recorded commit),
#      PEER_MAX_MIN (bound on loading one peer by PUT, default 10), RUN_MAX_MIN (bound per run, 30)
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
HARNESS="$(cd "${BENCH_HARNESS:-$REPO/../shared/bench}" 2>/dev/null && pwd)" || {
  echo "run.sh: the shared harness is missing (set BENCH_HARNESS to the folder holding carddav_bench.py)" >&2; exit 2; }
export BENCH_HARNESS="$HARNESS"
WORK="${BENCH_WORK:-${TMPDIR:-/tmp}/portico-bench}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$TARGET/release/portico"
SYNC_CLIENT="$TARGET/release/sync-client"   # the native initial-sync client (bench/sync-client)
PY="${PYTHON:-python3}"

QUICK=0; NS=""; PEERS=""; PEERS_SET=0; MANY=""; OUT=""; BUILD=1; TAG=""; IMPORT=1
SRC="${PORTICO_SRC:-$REPO}"   # the source tree built and measured (default: this repo)
PEER_MAX_MIN="${PEER_MAX_MIN:-10}"      # bound on loading one peer by PUT
RUN_MAX_MIN="${RUN_MAX_MIN:-30}"        # bound on one harness run after loading
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1;;
    --n) NS="$2"; shift;;
    --peers) PEERS="$2"; PEERS_SET=1; shift;;
    --many-orgs) MANY="$2"; shift;;
    --out) OUT="$2"; shift;;
    --peer-max-min) PEER_MAX_MIN="$2"; shift;;
    --no-build) BUILD=0;;
    --tag) TAG="-$2"; shift;;
    --no-import) IMPORT=0;;
    -h|--help) sed -n '2,18p' "$0"; exit 0;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  NS="${NS:-1000}"; [ $PEERS_SET = 1 ] || PEERS="nginx"; MANY="${MANY:-50x100}"; OUT="${OUT:-$WORK/results-quick}"
  HARGS=(--quick)
else
  NS="${NS:-1000 10000}"; [ $PEERS_SET = 1 ] || PEERS="radicale xandikos nginx"; MANY="${MANY:-1000x100}"; OUT="${OUT:-$HERE/results}"
  HARGS=()
fi
# shellcheck disable=SC2206
HARGS+=(${BENCH_ARGS:-})
mkdir -p "$OUT" "$WORK/data"
OUT="$(cd "$OUT" && pwd)"
PORT="${BASE_PORT:-18100}"
TOKEN="bench-$("$PY" -c 'import secrets; print(secrets.token_hex(12))')"
STARTED=()   # PIDs this script started and has not stopped yet

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
load_now() { cut -d' ' -f1-3 /proc/loadavg; }
next_port() { PORT=$((PORT + 1)); }
wait_port() {  # port seconds
  local i
  for i in $(seq $(($2 * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
stop_pid() {  # pid: TERM, wait up to 40 s, then KILL; only PIDs this script started
  local pid="$1" i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 400); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  local keep=() p
  for p in "${STARTED[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
  STARTED=("${keep[@]}")
}
cleanup() {
  local p
  for p in "${STARTED[@]}"; do stop_pid "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ build + peers' venv
if [ "$BUILD" = 1 ]; then
  log "cargo build --release -p portico-host --bin portico (source $SRC, target dir $TARGET)"
  (cd "$SRC" && CARGO_TARGET_DIR="$TARGET" cargo build --release -p portico-host --bin portico) || exit 1
  log "cargo build --release -p portico-bench-client (this repo, target dir $TARGET)"
  (cd "$REPO" && CARGO_TARGET_DIR="$TARGET" cargo build --release -p portico-bench-client) || exit 1
fi
[ -x "$BIN" ] || { echo "run.sh: $BIN missing (build first or drop --no-build)" >&2; exit 1; }
export PEERS_VENV="$WORK/venv"
case " $PEERS " in *" radicale "*|*" xandikos "*)
  if [ ! -x "$PEERS_VENV/bin/radicale" ] || [ ! -x "$PEERS_VENV/bin/xandikos" ]; then
    log "creating the peers' venv in $PEERS_VENV (Radicale 3, Xandikos from PyPI)"
    "$PY" -m venv "$PEERS_VENV" && "$PEERS_VENV/bin/pip" install -q "${RADICALE_SPEC:-radicale>=3,<4}" "${XANDIKOS_SPEC:-xandikos}" || exit 1
  fi;;
esac
case " $PEERS " in *" nginx "*) command -v nginx >/dev/null || {
  log "nginx missing: apt-get install nginx"; DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >&2 || exit 1; };; esac

peer_versions() {
  local v=""
  [ -x "$PEERS_VENV/bin/python" ] && v="$("$PEERS_VENV/bin/python" -c 'import importlib.metadata as m
out=[]
for p in ("radicale","xandikos","dulwich"):
    try: out.append(p+" "+m.version(p))
    except Exception: pass
print(", ".join(out))' 2>/dev/null)"
  command -v nginx >/dev/null && v="$v, nginx $(nginx -v 2>&1 | sed 's#.*/##')"
  command -v wrk >/dev/null && v="$v, wrk (GET phase)"
  echo "$v"
}
"$PY" - "$OUT/env.json" "$SRC" "$HARNESS" "$(peer_versions)" "${BENCH_PORTICO_COMMIT:-}" <<'EOF'
import json, os, platform, subprocess, sys, time
out, repo, harness, peers, commit = sys.argv[1:6]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")), "0")
def git(*a):
    try: return subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True).stdout.strip()
    except OSError: return "?"
dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
import hashlib
h = hashlib.sha256(open(os.path.join(harness, "carddav_bench.py"), "rb").read()).hexdigest()[:12]
sys.path.insert(0, harness); import carddav_bench
json.dump({"date": time.strftime("%Y-%m-%d %H:%M %z"), "cpu": cpu, "cpus": os.cpu_count(),
           "mem": f"{int(mem) / 1048576:.0f} GiB", "kernel": platform.platform(),
           "portico_commit": commit or (git("rev-parse", "--short", "HEAD") + dirty),
           "harness": f"carddav_bench.py {carddav_bench.HARNESS_VERSION} (sha256 {h})", "peers": peers,
           "python": platform.python_version()}, open(out, "w"), indent=1)
EOF

# ------------------------------------------------------------------ sequence bookkeeping
SEQ=""
seq_add() {  # role label file [key=json ...]
  "$PY" - "$SEQ" "$@" <<'EOF'
import json, os, sys
path, role, label, f, *kv = sys.argv[1:]
s = json.load(open(path))
e = {"role": role, "label": label, "file": f or None, "load": open("/proc/loadavg").read().split()[:3]}
e["load"] = " ".join(e["load"])
for item in kv:
    k, v = item.split("=", 1)
    try: e[k] = json.loads(v)
    except ValueError: e[k] = v
s["runs"].append(e)
json.dump(s, open(path, "w"), indent=1)
EOF
}

seq_update() {  # key=json ... : adds fields to the last entry
  "$PY" - "$SEQ" "$@" <<'EOF2'
import json, sys
path, *kv = sys.argv[1:]
s = json.load(open(path))
for item in kv:
    k, v = item.split("=", 1)
    try: s["runs"][-1][k] = json.loads(v)
    except ValueError: s["runs"][-1][k] = v
json.dump(s, open(path, "w"), indent=1)
EOF2
}

# ------------------------------------------------------------------ Portico
PORTICO_PID=""; PORTICO_SINCE=""
start_portico() {  # datadir port
  mkdir -p "$1"
  PORTICO_SINCE="$(date +%s.%N)"; echo "$PORTICO_SINCE" > "$1/.since"
  "$BIN" serve --data-dir "$1" --listen "127.0.0.1:$2" --set secrets.create_key_file=true \
      --set "admin.token=$TOKEN" --set log.filter=warn > "$1/server.log" 2>&1 &
  PORTICO_PID=$!; STARTED+=("$PORTICO_PID")
  wait_port "$2" 60 || { log "portico did not open port $2 (see $1/server.log)"; tail -5 "$1/server.log" >&2; return 1; }
}
harness() {  # out-json label url user password pid n max_s extra...
  local out="$1" label="$2" url="$3" user="$4" pw="$5" pid="$6" n="$7" max_s="$8"; shift 8
  local auth=(); [ -n "$user" ] && auth=(--user "$user" "--password=$pw")
  timeout --signal=TERM "$max_s" "$PY" "$HARNESS/carddav_bench.py" run --url "$url" "${auth[@]}" --n "$n" \
      --label "$label" --server-pid "$pid" --out "$out" "${HARGS[@]}" "$@" > "${out%.json}.log" 2>&1
  local rc=$?
  grep -v '^  \(initial\|incremental\|GET\|PUT\) rep\|^  \(GET\|PUT\) c=' "${out%.json}.log" | tail -n 4 >&2
  [ $rc = 124 ] && log "$label: stopped by the time bound ($max_s s)"
  return $rc
}

native() {  # out-json url user password pid max_s [--static]: the initial sync again, by the native client
  local out="${1%.json}-native.json" url="$2" user="$3" pw="$4" pid="$5" max_s="$6"; shift 6
  [ -x "$SYNC_CLIENT" ] || return 0
  local auth=(); [ -n "$user" ] && auth=(--user "$user" "--password=$pw")
  timeout --signal=TERM "$max_s" "$SYNC_CLIENT" --url "$url" "${auth[@]}" --reps 3 --server-pid "$pid" \
      --json "$out" "$@" > "${out%.json}.log" 2>&1 || { log "native client failed (see ${out%.json}.log)"; return 0; }
  grep '^initial rep' "${out%.json}.log" | tail -n 1 | sed 's/^/  native /' >&2
}

SNAP=""; BOOK=""; BUSER=""; BPASS=""
portico_seed() {  # n idx: fresh store, org + CardDAV through the admin API, PUT-load with the harness
  local n="$1" i="$2" d="$WORK/data/portico-seed-$n"
  rm -rf "$d"; next_port
  start_portico "$d" "$PORT" || return 1
  local line; line="$("$PY" "$HERE/portico_admin.py" setup --admin "http://127.0.0.1:$PORT" --token "$TOKEN" --org bench)" || return 1
  BOOK="$(sed -E 's/.*URL=([^ ]*).*/\1/' <<<"$line")"; BUSER="$(sed -E 's/.*USER=([^ ]*).*/\1/' <<<"$line")"
  BPASS="$(sed -E 's/.*PASSWORD=([^ ]*).*/\1/' <<<"$line")"
  local f; f="$(printf 'N%s%s-%02d-portico-seed.json' "$n" "$TAG" "$i")"
  log "#$i portico: load $n contacts by PUT"
  seq_add portico-seed "portico seed" "$f"
  harness "$OUT/$f" "portico (PUT load)" "$BOOK" "$BUSER" "$BPASS" "$PORTICO_PID" "$n" \
      $((RUN_MAX_MIN * 60 + 300)) --phases seed --seed-max-s $((RUN_MAX_MIN * 60))
  stop_pid "$PORTICO_PID"
  SNAP="$d"   # the seeded store: every round starts from a fresh copy of it
}
portico_round() {  # n idx name [capture-www]
  local n="$1" i="$2" name="$3" www="${4:-}" d="$WORK/data/portico-round"
  rm -rf "$d"; cp -a "$SNAP" "$d"; rm -f "$d/server.log" "$d/.since"; next_port
  local url="http://127.0.0.1:$PORT/${BOOK#http://127.0.0.1:*/}"
  # cold start: the poller runs before the server is launched, so its own start-up is not counted
  "$PY" "$HERE/portico_admin.py" ready --url "$url" --user "$BUSER" "--password=$BPASS" \
      --since-file "$d/.since" --timeout 120 > "$WORK/ready.out" &
  local rp=$!; STARTED+=("$rp"); sleep 0.5
  start_portico "$d" "$PORT" || { stop_pid "$rp"; return 1; }
  wait "$rp"; stop_pid "$rp"
  local cold; cold="$(cat "$WORK/ready.out")"
  if [ -n "$www" ]; then
    log "   capturing Portico's answers for nginx"
    local cap; cap="$("$PY" "$HERE/portico_admin.py" capture --url "$url" --user "$BUSER" "--password=$BPASS" --www "$www")" || return 1
    echo "$cap" > "$www/capture.json"
  fi
  local f; f="$(printf 'N%s%s-%02d-portico-%s.json' "$n" "$TAG" "$i" "$name")"
  log "#$i portico round $name (cold start ${cold}s)"
  seq_add portico "portico $name" "$f" "cold_start_s=${cold:-null}" 'cold_method="poller started before launch"'
  harness "$OUT/$f" "portico $name" "$url" "$BUSER" "$BPASS" "$PORTICO_PID" "$n" $((RUN_MAX_MIN * 60)) \
      --phases initial,incremental,get,put
  native "$OUT/$f" "$url" "$BUSER" "$BPASS" "$PORTICO_PID" $((RUN_MAX_MIN * 60))
  stop_pid "$PORTICO_PID"
  LAST_URL_PATH="/${BOOK#http://127.0.0.1:*/}"
}
portico_import() {  # n idx: fresh store, admin bulk import, then the read/write phases
  local n="$1" i="$2" d="$WORK/data/portico-import-$n"
  rm -rf "$d"; next_port
  start_portico "$d" "$PORT" || return 1
  local f; f="$(printf 'N%s%s-%02d-portico-import.json' "$n" "$TAG" "$i")"
  log "#$i portico: admin bulk import of $n contacts"
  local line; line="$(timeout $((RUN_MAX_MIN * 60)) "$PY" "$HERE/portico_admin.py" setup --admin "http://127.0.0.1:$PORT" \
      --token "$TOKEN" --org bench --import-n "$n" --server-pid "$PORTICO_PID" --out "$OUT/${f%.json}-load.json")"
  if [ -z "$line" ]; then
    seq_add portico-import "portico import" "" "note=bulk import failed or timed out"
    stop_pid "$PORTICO_PID"; return 1
  fi
  local url user pw
  url="$(sed -E 's/.*URL=([^ ]*).*/\1/' <<<"$line")"; user="$(sed -E 's/.*USER=([^ ]*).*/\1/' <<<"$line")"
  pw="$(sed -E 's/.*PASSWORD=([^ ]*).*/\1/' <<<"$line")"
  seq_add portico-import "portico import" "$f" "import=$(cat "$OUT/${f%.json}-load.json")"
  harness "$OUT/$f" "portico (import load)" "$url" "$user" "$pw" "$PORTICO_PID" "$n" $((RUN_MAX_MIN * 60)) \
      --phases initial,incremental,get,put
  native "$OUT/$f" "$url" "$user" "$pw" "$PORTICO_PID" $((RUN_MAX_MIN * 60))
  stop_pid "$PORTICO_PID"
  rm -rf "$d"
}

# ------------------------------------------------------------------ peers
run_peer() {  # peer n idx
  local peer="$1" n="$2" i="$3" d="$WORK/data/$1-$2" kind="$1" pre=""
  [ "$peer" = radicale-preload ] && { kind=radicale; pre="$n"; }
  "$HARNESS/peers/run_peer.sh" stop "$d" 2>/dev/null; rm -rf "$d"; next_port
  [ -n "$pre" ] && log "   writing $n contacts straight into Radicale's storage (BENCH_PRELOAD_N)"
  local line; line="$(BENCH_PRELOAD_N="$pre" "$HARNESS/peers/run_peer.sh" "$kind" "$PORT" "$d")" || { log "start $peer failed"; return 1; }
  local url user pw pid
  url="$(sed -E 's/.*URL=([^ ]*).*/\1/' <<<"$line")"; user="$(sed -E 's/.*USER=([^ ]*).*/\1/' <<<"$line")"
  pw="$(sed -E 's/.*PASSWORD=([^ ]*).*/\1/' <<<"$line")"; pid="$(sed -E 's/.*PID=([^ ]*).*/\1/' <<<"$line")"
  local f; f="$(printf 'N%s%s-%02d-%s.json' "$n" "$TAG" "$i" "$peer")"
  log "#$i $peer ($(cat "$d/version.txt")): load $n contacts by PUT (bound ${PEER_MAX_MIN} min), then the workloads"
  seq_add peer "$peer" "$f" "version=$("$PY" -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read().strip()))' "$d/version.txt")"
  local smax=$((PEER_MAX_MIN * 60))
  harness "$OUT/$f" "$peer" "$url" "$user" "$pw" "$pid" "$n" $((smax + RUN_MAX_MIN * 60)) \
      --create --seed-max-s "$smax"
  [ $? = 124 ] && seq_update "note=stopped after $((PEER_MAX_MIN + RUN_MAX_MIN)) min (time bound)"
  native "$OUT/$f" "$url" "$user" "$pw" "$pid" $((RUN_MAX_MIN * 60))
  seq_update "datadir_kib=$(du -sk "$d" | cut -f1)"
  "$HARNESS/peers/run_peer.sh" stop "$d"
  rm -rf "$d"
}
run_nginx() {  # n idx www url-path
  local n="$1" i="$2" www="$3" path="$4" d="$WORK/data/nginx-$n"
  mkdir -p "$d/tmp"; next_port
  sed -e "s#@PORT@#$PORT#g" -e "s#@DATADIR@#$d#g" -e "s#root $d/www;#root $www;#" \
      "$HARNESS/peers/nginx-static.conf.in" > "$d/nginx.conf"
  nginx -c "$d/nginx.conf" -e "$d/nginx-error.log" > "$d/server.log" 2>&1 &
  local pid=$!; STARTED+=("$pid")
  wait_port "$PORT" 30 || { log "nginx did not start"; stop_pid "$pid"; return 1; }
  local f; f="$(printf 'N%s%s-%02d-nginx.json' "$n" "$TAG" "$i")"
  log "#$i nginx serving Portico's captured bytes"
  seq_add peer "nginx (Portico's bytes)" "$f" "static=true" "capture=$(cat "$www/capture.json")"
  harness "$OUT/$f" "nginx (Portico's bytes)" "http://127.0.0.1:$PORT$path" "" "" "$pid" "$n" $((RUN_MAX_MIN * 60)) --static
  native "$OUT/$f" "http://127.0.0.1:$PORT$path" "" "" "$pid" $((RUN_MAX_MIN * 60)) --static
  stop_pid "$pid"
  rm -rf "$d"
}

# ------------------------------------------------------------------ the run
log "results in $OUT; load $(load_now)"
for n in $NS; do
  SEQ="$OUT/sequence-N$(printf '%06d' "$n")$TAG.json"
  printf '{"n": %s, "tag": "%s", "date": "%s", "quick": %s, "runs": []}\n' "$n" "${TAG#-}" "$(date '+%Y-%m-%d %H:%M %z')" \
      "$([ $QUICK = 1 ] && echo true || echo false)" > "$SEQ"
  rm -f "$OUT"/N"$n$TAG"-[0-9]*.json "$OUT"/N"$n$TAG"-[0-9]*.log
  idx=1
  portico_seed "$n" $idx || { log "portico seeding failed for N=$n"; continue; }
  idx=$((idx + 1))
  rounds=(a b c d e f g h)
  plist=($PEERS); r=0
  # Portico rounds flank every peer; the round right before nginx captures the bytes nginx serves
  cap_www() { if [ "${plist[$1]:-}" = nginx ]; then www="$WORK/data/www-$n"; rm -rf "$www"; mkdir -p "$www"; echo "$www"; fi; }
  www="$(cap_www 0)"
  portico_round "$n" $idx "${rounds[$r]}" "$www"; idx=$((idx + 1)); r=$((r + 1))
  for k in "${!plist[@]}"; do
    peer="${plist[$k]}"
    if [ "$peer" = nginx ]; then
      run_nginx "$n" $idx "$www" "$LAST_URL_PATH"; idx=$((idx + 1)); rm -rf "$www"
    else
      run_peer "$peer" "$n" $idx; idx=$((idx + 1))
    fi
    www="$(cap_www $((k + 1)))"
    portico_round "$n" $idx "${rounds[$r]}" "$www"; idx=$((idx + 1)); r=$((r + 1))
  done
  [ $IMPORT = 1 ] && { portico_import "$n" $idx; idx=$((idx + 1)); }
  rm -rf "$SNAP"
  "$PY" "$HERE/report.py" "$OUT" > "$OUT/summary.md"
done

if [ "$MANY" != none ] && [ -n "$MANY" ]; then
  orgs="${MANY%x*}"; per="${MANY#*x}"
  d="$WORK/data/portico-many"; rm -rf "$d"; next_port
  if start_portico "$d" "$PORT"; then
    log "many organizations: $orgs orgs x $per contacts"
    ld="$(load_now)"
    timeout $((RUN_MAX_MIN * 60 + 60)) "$PY" "$HERE/many_orgs.py" --admin "http://127.0.0.1:$PORT" --token "$TOKEN" \
        --orgs "$orgs" --contacts "$per" --server-pid "$PORTICO_PID" --max-s $((RUN_MAX_MIN * 60)) \
        --out "$OUT/many-orgs.json" > "$OUT/many-orgs.log" 2>&1 || log "many-orgs: errors (see $OUT/many-orgs.log)"
    [ -f "$OUT/many-orgs.json" ] && "$PY" - "$OUT/many-orgs.json" "$ld" "$(du -sk "$d" | cut -f1)" <<'EOF'
import json, sys
p, ld, kib = sys.argv[1:4]
r = json.load(open(p)); r["load"] = ld; r["datadir_kib"] = int(kib)
json.dump(r, open(p, "w"), indent=1)
EOF
    stop_pid "$PORTICO_PID"
  fi
  rm -rf "$d"
fi
"$PY" "$HERE/report.py" "$OUT" > "$OUT/summary.md"
log "done; load $(load_now)"
cat "$OUT/summary.md"
