#!/usr/bin/env bash
# A recorded Hyper-V host run as a local process, for labctl's local transport (a host whose address
# is `local`): the same stand-in for powershell.exe as hyperv-hosts.sh uses behind sshd
# (packages/hyperv/src/testing/fake-powershell.mjs), here started directly by labctl.
#   scripts/testbed/hyperv-local.sh up DIR     # DIR/bin/powershell.exe and DIR/bin/pwsh; state in DIR/hv/local
#   scripts/testbed/hyperv-local.sh down DIR
# Put DIR/bin first on PATH and labctl finds the stand-in where Windows would find powershell.exe.
# Needs no root, no sshd. Prints one line when ready.
set -euo pipefail
cmd=${1:?usage: hyperv-local.sh up|down DIR}; dir=${2:?DIR}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$cmd" = down ]; then rm -rf "$dir/bin" "$dir/hv"; exit 0; fi
[ "$cmd" = up ] || { echo "usage: hyperv-local.sh up|down DIR" >&2; exit 2; }
node=$(command -v node)
fake="$here/../../packages/hyperv/src/testing/fake-powershell.mjs"
mkdir -p "$dir/bin" "$dir/hv/local"
for exe in powershell.exe pwsh; do
  printf '#!/bin/sh\nexec "%s" "%s" "%s" --argv0 %s "$@"\n' "$node" "$fake" "$dir/hv" "$exe" > "$dir/bin/$exe"
  chmod 755 "$dir/bin/$exe"
done
echo "hyperv-local: recorded Hyper-V host as a local process: PATH=$dir/bin:\$PATH (state in $dir/hv/local)"
