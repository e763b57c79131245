#!/usr/bin/env bash
# The README's test command: installs what the tests need, then runs every test.
# Tests start their own redis-server on free ports; they never touch one they did not start.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-redis.sh
# promtool and prometheus: the deploy checks and tests/observability.
bash scripts/ensure-prometheus.sh
bash scripts/check-deploy.sh
bash scripts/ensure-browser.sh
cargo test --workspace --no-fail-fast "$@"
