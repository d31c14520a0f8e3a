#!/usr/bin/env bash
# PowerShell round trips for create+start+IPs on one recorded Hyper-V host (needs root and a build).
set -euo pipefail
cd "$(dirname "$0")/../.."
node bench/hyperv/run.mjs "$@"
