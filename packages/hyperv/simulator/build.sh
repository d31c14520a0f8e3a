#!/usr/bin/env bash
# Compiles the simulator's .NET types (HyperVTypes.cs) into DLL with the pwsh scripts/setup.sh
# installed (Add-Type -OutputAssembly), once per testbed, so each simulated script run only loads it.
#   packages/hyperv/simulator/build.sh OUT.dll
set -euo pipefail
out=${1:?usage: build.sh OUT.dll}
here=$(cd "$(dirname "$0")" && pwd)
pwsh=${LABCTL_PWSH:-$here/../../../.tools/pwsh/pwsh}
[ -x "$pwsh" ] || pwsh=$(command -v pwsh) || { echo "build.sh: pwsh not found (./scripts/setup.sh installs it; needs dotnet)" >&2; exit 1; }
[ -f "$out" ] && [ "$out" -nt "$here/HyperVTypes.cs" ] && exit 0
LABCTL_SIM_CS="$here/HyperVTypes.cs" LABCTL_SIM_OUT="$out.$$.tmp" "$pwsh" -NoProfile -NonInteractive -Command \
  'Add-Type -Path $env:LABCTL_SIM_CS -OutputAssembly $env:LABCTL_SIM_OUT -OutputType Library' >/dev/null
mv -f "$out.$$.tmp" "$out"
chmod a+r "$out"
