#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: fuzz/run.sh [seconds per target, default 60].
#
# Uses cargo-fuzz (libFuzzer) on the stable toolchain with `--sanitizer none`: the project's
# code is safe Rust (`unsafe_code = "forbid"`), so a bug shows as a panic, an overflow (debug
# assertions and overflow checks are on) or a timeout, which libFuzzer catches without a
# sanitizer; AddressSanitizer would need a nightly `-Zsanitizer` flag this toolchain lacks.
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: inputs the fuzzer finds
# go to fuzz/.work/<target>/ (ignored by git). A crash, panic, timeout or out-of-memory input is
# saved under fuzz/artifacts/<target>/ and makes the script exit 1 after the other targets ran.
#
# Environment: FUZZ_TARGETS (default: all four), FUZZ_RSS_LIMIT_MB (default 2048),
# FUZZ_TIMEOUT_SECS (one input, default 10), CARGO_TARGET_DIR (default fuzz/target).
set -euo pipefail

secs="${1:-60}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [seconds per target]" >&2; exit 2 ;; esac

CARGO_FUZZ_VERSION=0.13.2
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
targets="${FUZZ_TARGETS:-vcard_parse dav_request href_decode sealed_open}"
rss="${FUZZ_RSS_LIMIT_MB:-2048}"
per_input="${FUZZ_TIMEOUT_SECS:-10}"
# Same flags for build and run, so the run step reuses the build.
flags=(--sanitizer none --release --debug-assertions)

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

start=$(date +%s)
echo "== building fuzz targets"
cargo fuzz build "${flags[@]}"
echo "== built in $(($(date +%s) - start)) s"

failed=()
for t in $targets; do
    work="fuzz/.work/$t"
    artifacts="fuzz/artifacts/$t"
    mkdir -p "$work" "$artifacts" "fuzz/corpus/$t"
    stamp="fuzz/.work/$t.stamp"
    touch "$stamp"
    echo "== $t: ${secs}s"
    # libFuzzer stops itself after max_total_time; the outer timeout is only a backstop.
    if ! timeout --kill-after=30 $((secs + 300)) \
        cargo fuzz run "${flags[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb="$rss" -timeout="$per_input" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 2>"fuzz/.work/$t.log"; then
        tail -n 40 "fuzz/.work/$t.log"
        found=$(find "$artifacts" -type f -newer "$stamp" 2>/dev/null || true)
        echo "!! $t failed; reproducer(s):"
        if [ -n "$found" ]; then
            for f in $found; do
                echo "   $f   (replay: cargo fuzz run ${flags[*]} $t $f)"
            done
        else
            echo "   none saved (see fuzz/.work/$t.log)"
        fi
        failed+=("$t")
    else
        grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "fuzz/.work/$t.log" || true
    fi
done

echo "== fuzzing took $(($(date +%s) - start)) s in all"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${secs}s per target, no crash in: $targets"
