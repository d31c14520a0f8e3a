#!/usr/bin/env bash
# Delegation benchmark: 50-host full mesh (2,450 ordered pairs, 9,800 values) on one throwaway Samba AD DC.
#   sudo bench/delegation/run.sh            # needs root, the Samba packages of scripts/setup.sh, a built packages/delegation
# Env: BENCH_HOSTS (50), BENCH_SAMBA_TOOL_HOSTS (1: samba-tool is sampled, one process per value).
# Prints one JSON object; the DC lives in a temp dir and is purged afterwards. Loopback only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=$(mktemp -d /tmp/labctl-delegation-bench.XXXXXX)
trap '"$root/scripts/testbed/samba-ad.sh" purge "$dir" >/dev/null 2>&1 || true' EXIT
"$root/scripts/testbed/samba-ad.sh" up "$dir" >&2
set -a; . "$dir/ad.env"; set +a
node "$here/mesh.mjs"
