#!/usr/bin/env bash
# The README's first command: the whole fleet on embedded defaults, offline. Installs
# redis-server when missing, then runs the demo (private Redis, fake Chatwoot, ingress, every
# worker role) and prints the drafts. Pass --stay-up to keep it running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-redis.sh
exec cargo run --quiet -p copydesk-tests --bin copydesk-demo -- "$@"
