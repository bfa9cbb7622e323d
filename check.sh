#!/usr/bin/env bash
# Every check and test of the repository, cheapest first. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")"
step() { printf '\n=== %s ===\n' "$*"; }

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "SDK docs (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc -p portico-sdk --all-features --no-deps --locked

step "tests"
cargo test --workspace --locked

step "MongoDB store (conformance, crash and outage cases against nx-27017)"
bash tests/mongo/run.sh

# The tests step built target/debug/portico; the later steps reuse it rather than rebuild.
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

step "admin API OpenAPI document (openapi-spec-validator)"
tests/openapi/validate.sh "$target_dir/debug/portico"

step "admin page in Chromium (Playwright)"
PORTICO_BIN="$target_dir/debug/portico" bash tests/browser/run.sh

step "interop (litmus, vdirsyncer + khard, tsdav)"
PORTICO_BIN="$target_dir/debug/portico" tests/interop/run.sh

step "fuzzing (cargo-fuzz, 30 s per target)"
bash fuzz/run.sh 30

step "all checks passed"
