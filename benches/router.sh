#!/usr/bin/env bash
# Installs the load tool and the reference proxy, then runs the router benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk nginx-light
fi
cargo bench --bench router
