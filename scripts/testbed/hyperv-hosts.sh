#!/usr/bin/env bash
# Simulated Hyper-V hosts behind real sshd on loopback, for the Hyper-V provider's tests.
#   scripts/testbed/hyperv-hosts.sh up DIR [N=1] [BASE_PORT=22400]
#   scripts/testbed/hyperv-hosts.sh down DIR
# Starts N sshd hosts with scripts/testbed/ssh-hosts.sh (127.0.0.1:BASE_PORT+i, pinned host keys in
# DIR/known_hosts), then makes the simulated host's powershell.exe the forced command of user
# labctl-np (authorized_keys `command=`): packages/hyperv/simulator/host.mjs, which checks the command
# line and runs it, with its stdin, under a real PowerShell 7 with the Hyper-V simulator module; the
# host's state is DIR/hv/<port>. Needs root (ssh-hosts.sh creates the test users) and pwsh
# (./scripts/setup.sh). Prints one line when ready.
set -euo pipefail
cmd=${1:?usage: hyperv-hosts.sh up|down DIR [N] [BASE_PORT]}; dir=${2:?DIR}; n=${3:-1}; base=${4:-22400}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$cmd" = down ]; then exec "$here/ssh-hosts.sh" down "$dir"; fi
[ "$cmd" = up ] || { echo "usage: hyperv-hosts.sh up|down DIR [N] [BASE_PORT]" >&2; exit 2; }
# sshd inherits these descriptors: keep them off the caller's pipes, or a caller waiting for EOF hangs.
"$here/ssh-hosts.sh" up "$dir" "$n" "$base" >"$dir/ssh-hosts.log" 2>&1 </dev/null || { cat "$dir/ssh-hosts.log" >&2; exit 1; }
node=$(command -v node)
# The forced command runs as labctl-np: node must be reachable for that user (not under /root/.nvm).
runuser -u labctl-np -- test -x "$node" || { echo "hyperv-hosts.sh: $node is not executable for user labctl-np; install node system-wide" >&2; exit 1; }
sim=$(cd "$here/../../packages/hyperv/simulator" && pwd)
runuser -u labctl-np -- test -r "$sim/host.mjs" || { echo "hyperv-hosts.sh: $sim is not readable for user labctl-np" >&2; exit 1; }
mkdir -p "$dir/hv"; chmod 777 "$dir/hv"
"$sim/build.sh" "$dir/hv/hyperv-sim.dll"
for i in $(seq 1 "$n"); do
  port=$((base + i)); mkdir -p "$dir/hv/$port"; chmod 777 "$dir/hv/$port"
done
printf 'command="exec %s %s %s",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding %s\n' \
  "$node" "$sim/host.mjs" "$dir/hv" "$(cat "$dir/client/id_ed25519.pub")" > "$dir/authorized_keys/labctl-np"
echo "hyperv-hosts: $n simulated Hyper-V host(s) on 127.0.0.1 ports $(seq -s ' ' $((base + 1)) $((base + n)))"
