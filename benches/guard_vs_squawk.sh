#!/usr/bin/env bash
# The migration guard side by side with squawk (squawk-cli from PyPI, pinned)
# on the SQL part of the labelled corpus: misses and false alarms of each.
# squawk lives in a venv under target/, so nothing is installed system-wide.
set -euo pipefail
cd "$(dirname "$0")/.."

SQUAWK_VERSION=2.70.0
venv=target/squawk-venv
if [ "$("$venv/bin/squawk" --version 2>/dev/null | awk '{print $2}')" != "$SQUAWK_VERSION" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "squawk-cli==$SQUAWK_VERSION"
fi
cargo build --quiet
python3 benches/guard_vs_squawk.py target/debug/bluegreen target/plugins/migration-guard.wasm "$venv/bin/squawk"
