#!/usr/bin/env bash
# bench/profile.sh - instruction-level profile of Portico's initial sync and PUT path (callgrind).
#
#   bench/profile.sh [--n 2000] [--puts 200] [--out DIR] [--no-build]
#
# Loads N generated contacts by PUT into a fresh store (native run), restarts Portico under
# `valgrind --tool=callgrind --instr-atstart=no`, then switches instrumentation on around:
#   initial  PROPFIND Depth:1 (getetag, getcontenttype) + addressbook-multiget in batches of 100,
#            three times (what carddav_bench.py's initial phase does)
#   put      --puts updates with If-Match, one client (the harness's put phase at c=1)
#   create   --puts new cards with If-None-Match: * (the harness's seed phase; cards with
#            CATEGORIES join contact groups)
# and dumps one profile per workload. callgrind counts instructions, so the figures repeat
# whatever the load of the machine. Writes DIR/profile-{initial,put,create}.txt (callgrind_annotate,
# exclusive and inclusive tops; DIR defaults to bench/results) and leaves the raw profiles in
# $BENCH_WORK/callgrind.{initial,put,create}.out.
# (perf is the better tool where `perf stat -e instructions true` counts; on this machine it
# does not.) env as for run.sh: CARGO_TARGET_DIR, BENCH_HARNESS, BENCH_WORK, PORTICO_SRC, and
# PORTICO_BIN (a portico binary to profile instead of building one).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
export BENCH_HARNESS="$(cd "${BENCH_HARNESS:-$REPO/../shared/bench}" && pwd)" || exit 2
WORK="${BENCH_WORK:-${TMPDIR:-/tmp}/portico-bench}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
SRC="${PORTICO_SRC:-$REPO}"
BIN="${PORTICO_BIN:-$TARGET/release/portico}"   # PORTICO_BIN: profile another build (implies --no-build)
PY="${PYTHON:-python3}"
N=2000; PUTS=200; OUT="$HERE/results"; BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N="$2"; shift;; --puts) PUTS="$2"; shift;; --out) OUT="$2"; shift;;
    --no-build) BUILD=0;; *) echo "profile.sh: unknown argument $1" >&2; exit 2;;
  esac; shift
done
command -v valgrind >/dev/null || { echo "profile.sh: apt-get install valgrind" >&2; exit 1; }
[ -n "${PORTICO_BIN:-}" ] && BUILD=0
[ "$BUILD" = 1 ] && { (cd "$SRC" && CARGO_TARGET_DIR="$TARGET" cargo build --release -p portico-host --bin portico) || exit 1; }
mkdir -p "$OUT" "$WORK"; OUT="$(cd "$OUT" && pwd)"
D="$WORK/data/portico-profile"; rm -rf "$D"; mkdir -p "$D"
PORT="${BASE_PORT:-18090}"
TOKEN="bench-$("$PY" -c 'import secrets; print(secrets.token_hex(12))')"
PID=""
stop() { [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null && { kill -TERM "$PID"; for _ in $(seq 600); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done; kill -KILL "$PID" 2>/dev/null; }; wait "$PID" 2>/dev/null; PID=""; }
trap stop EXIT
wait_port() { for _ in $(seq $(($2 * 10))); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
serve() { "$@" serve --data-dir "$D" --listen "127.0.0.1:$PORT" --set secrets.create_key_file=true \
            --set "admin.token=$TOKEN" --set log.filter=warn >> "$D/server.log" 2>&1 & PID=$!; }

serve "$BIN"; wait_port "$PORT" 60 || exit 1
line="$("$PY" "$HERE/portico_admin.py" setup --admin "http://127.0.0.1:$PORT" --token "$TOKEN" --org bench)" || exit 1
URL="$(sed -E 's/.*URL=([^ ]*).*/\1/' <<<"$line")"; U="$(sed -E 's/.*USER=([^ ]*).*/\1/' <<<"$line")"
P="$(sed -E 's/.*PASSWORD=([^ ]*).*/\1/' <<<"$line")"
echo "loading $N contacts by PUT" >&2
timeout 1200 "$PY" "$BENCH_HARNESS/carddav_bench.py" run --url "$URL" --user "$U" --password="$P" --n "$N" \
    --phases seed --label profile-load > "$D/load.log" 2>&1 || { tail "$D/load.log"; exit 1; }
stop
echo "restarting under callgrind" >&2
serve valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$D/callgrind.out" "$BIN"
wait_port "$PORT" 300 || { tail "$D/server.log"; exit 1; }
"$PY" - "$URL" "$U" "$P" "$PID" "$PUTS" "$D" <<'EOF'
import os, subprocess, sys, time, urllib.parse
sys.path.insert(0, os.environ["BENCH_HARNESS"])
import carddav_bench as cb, gen_vcards
url, user, pw, pid, puts, d = sys.argv[1:7]
base = urllib.parse.urlsplit(url).path
conn = cb.Conn(url, cb.basic_auth(user, pw), 600)
def ctl(*a):
    subprocess.run(["callgrind_control", *a, pid], check=True, capture_output=True)
def members():
    st, h, body, dt = conn.request("PROPFIND", base, cb.PROPFIND_MEMBERS, {"Depth": "1", "Content-Type": cb.XML_CT})
    assert st == 207, st
    resps, _ = cb.parse_multistatus(body)
    return {r["href"]: cb.prop_text(r, cb.DAV, "getetag") for r in resps if r["href"].endswith(".vcf")}
members()  # warm-up (untimed, uninstrumented)
ctl("-i", "on")
t0 = time.perf_counter()
for rep in range(3):
    m = members()
    hrefs = list(m)
    for i in range(0, len(hrefs), 100):
        st, h, body, dt = conn.request("REPORT", base, cb.multiget_body(hrefs[i:i + 100]), {"Content-Type": cb.XML_CT})
        assert st == 207, st
print(f"initial x3 under callgrind: {time.perf_counter() - t0:.1f} s, {len(hrefs)} cards", file=sys.stderr)
ctl("--dump=initial")
ctl("-i", "off")
m = members()
names = {gen_vcards.contact_uid(i) + ".vcf": i for i in range(len(m))}
todo = [(h, names[h.rsplit("/", 1)[1]]) for h in sorted(m)[:int(puts)]]
ctl("-i", "on")
t0 = time.perf_counter()
for h, i in todo:
    uid, text = gen_vcards.make_vcard(i, 42, rev=1)
    st, rh, body, dt = conn.request("PUT", urllib.parse.urlsplit(urllib.parse.urljoin(url, h)).path, text,
                                    {"Content-Type": cb.VCARD_CT, "If-Match": m[h]})
    assert st in (200, 201, 204), (st, body[:200])
print(f"{len(todo)} PUTs under callgrind: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
ctl("--dump=put")
ctl("-i", "off")
# new cards (If-None-Match: *): half carry CATEGORIES, so most join a contact group whose card
# is rewritten (the seeding path)
n0 = len(m)
ctl("-i", "on")
t0 = time.perf_counter()
for i in range(n0, n0 + int(puts)):
    uid, text = gen_vcards.make_vcard(i, 42)
    st, rh, body, dt = conn.request("PUT", base + uid + ".vcf", text,
                                    {"Content-Type": cb.VCARD_CT, "If-None-Match": "*"})
    assert st in (201, 204), (st, body[:200])
print(f"{puts} new cards under callgrind: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
ctl("--dump=create")
ctl("-i", "off")
conn.close()
EOF
rc=$?
stop
[ $rc = 0 ] || exit $rc
for f in "$D"/callgrind.out*; do
  w="$(grep -m1 '^desc: Trigger:' "$f" | sed 's/.*[Dd]ump //; s/ .*//')"   # e.g. "initial"
  case "$w" in *initial*) name=initial;; *put*) name=put;; *create*) name=create;; *) continue;; esac
  # a dump taken while a thread sits in epoll_wait can carry a wrapped-around summary line;
  # the totals line (sum of all costs) is right, so use it
  t="$(grep -m1 '^totals:' "$f" | cut -d' ' -f2)"; [ -n "$t" ] && sed -i "s/^summary: .*/summary: $t/" "$f"
  cp "$f" "$WORK/callgrind.$name.out"   # raw profile (large): kept out of the results
  {
    echo "# callgrind, portico serve, workload '$name' (N=$N, puts=$PUTS); $(date '+%Y-%m-%d %H:%M %z')"
    echo "## exclusive (self) instructions"
    callgrind_annotate --threshold=99 "$f" 2>/dev/null | sed -n '1,60p'
    echo
    echo "## inclusive instructions"
    echo "(idle epoll_wait paths whose inclusive cost wrapped around are left out)"
    callgrind_annotate --inclusive=yes --threshold=99 "$f" 2>/dev/null | awk '{ c = $1; gsub(",", "", c) } !(c ~ /e\+/ || length(c) > 15)' | sed -n '1,70p'
  } > "$OUT/profile-$name.txt"
  echo "wrote $OUT/profile-$name.txt" >&2
done
