#!/usr/bin/env bash
# Installs the pinned cargo-deny and cargo-machete from crates.io (built from source: no
# prebuilt download) when they are missing. Used by scripts/lint.sh; takes ~4 min on a fresh
# 2-core machine, nothing when they are present.
set -euo pipefail
CARGO_DENY_VERSION=0.20.2
CARGO_MACHETE_VERSION=0.9.2
have() { command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q "$2"; }
if ! have cargo-deny "$CARGO_DENY_VERSION"; then
  echo "cargo-deny $CARGO_DENY_VERSION not found: installing it from crates.io" >&2
  cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
fi
if ! have cargo-machete "$CARGO_MACHETE_VERSION"; then
  echo "cargo-machete $CARGO_MACHETE_VERSION not found: installing it from crates.io" >&2
  cargo install --locked --quiet cargo-machete --version "$CARGO_MACHETE_VERSION"
fi
