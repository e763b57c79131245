#!/usr/bin/env bash
# The gates CI runs before the tests: formatting, clippy, rustdoc, licenses/bans/sources,
# unused dependencies and import circles. Each failure names what to fix.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-cargo-tools.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# Every public item of `shared` is documented (#![deny(missing_docs)]) and no doc link dangles.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
# deny.toml says what is allowed and why.
cargo deny --log-level error check --hide-inclusion-graph licenses bans sources
# A dependency no code uses is a build cost and an audit cost.
cargo machete
# No module imports from a sibling that imports it back.
python3 scripts/check-import-circles.py shared workers ingress
