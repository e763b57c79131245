#!/usr/bin/env bash
# Installs Debian's prometheus package (the server and promtool) when either is missing: the
# rule tests, `promtool check metrics` and the Prometheus end-to-end test need them.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  exit 0
fi
echo "prometheus/promtool not found: installing Debian's prometheus package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends: the server and promtool, not the node exporter and its friends.
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package starts a system-wide server on :9090 where systemd runs; tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl stop prometheus || true
  $SUDO systemctl disable prometheus >/dev/null 2>&1 || true
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null
