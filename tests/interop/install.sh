#!/usr/bin/env bash
# Installs the interop suite's clients on a fresh Debian machine (run as root; idempotent, and
# quick when everything is there): litmus, vdirsyncer and khard from Debian, tsdav from npm at
# the version locked in tsdav/package-lock.json. Python needs no packages beyond the standard
# library (the scenario scripts use only it; vdirsyncer and khard bring their own from Debian).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DEBIAN_FRONTEND=noninteractive

need=()
for pkg in litmus vdirsyncer khard; do
  command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

want="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dependencies"]["tsdav"])' \
  "$here/tsdav/package.json")"
have="$(node -p 'require(process.argv[1]).version' "$here/tsdav/node_modules/tsdav/package.json" 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  (cd "$here/tsdav" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "# interop clients: litmus $(litmus --version 2>/dev/null | awk '{print $2}'), $(vdirsyncer --version), khard $(khard --version | awk '{print $NF}'), tsdav $(node -p 'require(process.argv[1]).version' "$here/tsdav/node_modules/tsdav/package.json"), node $(node --version)"
