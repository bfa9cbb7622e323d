#!/usr/bin/env bash
# Validates the admin API's OpenAPI document (`portico openapi`, the same document the server
# serves at /admin/api/openapi.json) with openapi-spec-validator from PyPI, in a venv kept under
# the cargo target directory. Usage: tests/openapi/validate.sh PATH/TO/portico
set -euo pipefail
bin="${1:?usage: validate.sh PATH/TO/portico}"
venv="$(dirname "$bin")/../openapi-venv"
if [ ! -x "$venv/bin/openapi-spec-validator" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'openapi-spec-validator==0.7.*'
fi
doc="$(mktemp --suffix=.json)"
trap 'rm -f "$doc"' EXIT
"$bin" openapi > "$doc"
"$venv/bin/openapi-spec-validator" "$doc"
