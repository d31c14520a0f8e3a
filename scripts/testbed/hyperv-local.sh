#!/usr/bin/env bash
# A simulated Hyper-V host run as a local process, for labctl's local transport (a host whose address
# is `local`): DIR/bin/powershell.exe and DIR/bin/pwsh run packages/hyperv/simulator/host.mjs, which
# hands labctl's exact command line and stdin to a real PowerShell 7 with the Hyper-V simulator
# module loaded. The same host as hyperv-hosts.sh puts behind sshd.
#   scripts/testbed/hyperv-local.sh up DIR     # state in DIR/hv/local
#   scripts/testbed/hyperv-local.sh down DIR
# Put DIR/bin first on PATH and labctl finds it where Windows would find powershell.exe.
# Needs pwsh (./scripts/setup.sh installs it from NuGet); no root, no sshd. Prints one line when ready.
set -euo pipefail
cmd=${1:?usage: hyperv-local.sh up|down DIR}; dir=${2:?DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$cmd" = down ]; then rm -rf "$dir/bin" "$dir/hv"; exit 0; fi
[ "$cmd" = up ] || { echo "usage: hyperv-local.sh up|down DIR" >&2; exit 2; }
node=$(command -v node)
sim="$here/../../packages/hyperv/simulator"
mkdir -p "$dir/bin" "$dir/hv/local"
"$sim/build.sh" "$dir/hv/hyperv-sim.dll"
for exe in powershell.exe pwsh; do
  printf '#!/bin/sh\nexec "%s" "%s" "%s" --argv0 %s "$@"\n' "$node" "$sim/host.mjs" "$dir/hv" "$exe" > "$dir/bin/$exe"
  chmod 755 "$dir/bin/$exe"
done
echo "hyperv-local: simulated Hyper-V host as a local process: PATH=$dir/bin:\$PATH (state in $dir/hv/local)"
