#!/usr/bin/env bash
# PowerShell round trips for create+start+IPs on one simulated Hyper-V host (real pwsh; needs root, pwsh and a build).
set -euo pipefail
cd "$(dirname "$0")/../.."
node bench/hyperv/run.mjs "$@"
