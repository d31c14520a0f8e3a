#!/usr/bin/env bash
# The README's first command: from a fresh Debian 12 machine to N running VMs, their IPs and an Ansible
# inventory, without touching the host's network.
#   sudo ./scripts/demo.sh [--count N] [--cleanup] [--no-setup]
#   sudo ./scripts/demo.sh --down            # remove what an earlier run left running
#   --count N    how many VMs (default 10)
#   --cleanup    at the end, destroy everything this made: VMs (labctl destroy --all), their overlays,
#                the libvirt network, the daemons and the network namespace (the cached guest stays)
#   --no-setup   skip ./scripts/setup.sh (Debian + npm packages, build), e.g. when it already ran
# Env: LABCTL_DEMO_DIR (default /var/tmp/labctl-demo), KVM_NETNS (default labctl-demo), KVM_NETWORK
#      (default labnet), KVM_SUBNET (default 10.78.0.0/24).
# Steps: setup.sh (idempotent) -> scripts/guest/build-guest.sh (tiny busybox+dropbear guest as a golden
# .vhd, cached) -> scripts/testbed/kvm-up.sh (libvirtd in its own netns with an isolated DHCP network) ->
# a lab file in $LABCTL_DEMO_DIR/lab/labctl.yaml -> `labctl create --count N` inside the netns ->
# `labctl list`, `labctl inventory`, and `ansible -m raw -a hostname` through that inventory with strict
# host-key checking. Everything runs inside the namespace: nothing leaves it. Needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
count=10; cleanup=0; setup=1; down_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --count) count=${2:?--count needs a number}; shift 2 ;;
    --count=*) count=${1#--count=}; shift ;;
    --cleanup) cleanup=1; shift ;;
    --no-setup) setup=0; shift ;;
    --down) down_only=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $count =~ ^[0-9]+$ ]] || { echo "demo.sh: --count needs a number, not '$count'" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "demo.sh: needs root (packages, network namespace, libvirtd); try: sudo $0 $*" >&2; exit 1; }
demo=${LABCTL_DEMO_DIR:-/var/tmp/labctl-demo}
export KVM_NETNS=${KVM_NETNS:-labctl-demo} KVM_NETWORK=${KVM_NETWORK:-labnet}
lab=$demo/lab; guest=$demo/guest; testbed=$demo/testbed
step() { printf '\n== %s\n' "$*"; }
labctl() { ip netns exec "$KVM_NETNS" node "$root/packages/cli/bin/run.js" "$@"; }

teardown() {
  if [ -f "$testbed/kvm.env" ] && [ -f "$lab/.labctl/state.json" ]; then
    step "labctl destroy --all"
    # shellcheck disable=SC1091
    (set -a; . "$testbed/kvm.env"; labctl destroy --all --yes --lab-dir "$lab") || echo "demo.sh: labctl destroy failed; kvm-down.sh still stops the VMs" >&2
  fi
  step "stopping libvirtd, the network and the namespace"
  "$root/scripts/testbed/kvm-down.sh" "$testbed"
  rm -rf "$lab" "$testbed"
  echo "Removed $lab and $testbed (the guest image cache $guest stays)."
}
if [ "$down_only" = 1 ]; then teardown; exit 0; fi

t0=$(date +%s)
if [ "$setup" = 1 ]; then
  step "scripts/setup.sh (Debian packages, npm packages, build)"
  "$root/scripts/setup.sh"
fi
[ -f "$root/packages/cli/dist/commands/create.js" ] || { echo "demo.sh: labctl is not built; run ./scripts/setup.sh" >&2; exit 1; }

step "building the demo guest (cached)"
"$root/scripts/guest/build-guest.sh" "$guest"

step "starting libvirtd in network namespace $KVM_NETNS"
"$root/scripts/testbed/kvm-up.sh" "$testbed"
set -a
# shellcheck disable=SC1091
. "$testbed/kvm.env"
set +a

mkdir -p "$lab"
cat > "$lab/labctl.yaml" <<EOF
# Written by scripts/demo.sh: the tiny demo guest on the demo's private libvirt.
lab: demo
provider: libvirt
uri: "$LIBVIRT_URI"
concurrency: 10
defaults:
  golden: $guest/golden.vhd
  kernel: $guest/vmlinux
  initrd: $guest/initrd-boot.gz
  cmdline: console=ttyS0 quiet panic=-1
  network: $KVM_NETWORK
  memory: 128
  cpus: 1
  ssh:
    user: root
    keyFile: $guest/id_ed25519
groups:
  demo:
    name: "demo-{nn}"
EOF
echo "Lab file: $lab/labctl.yaml"

step "labctl create --count $count"
t_create=$(date +%s)
status=0
labctl create --count "$count" --lab-dir "$lab" --inventory "$lab/hosts.ini" || status=$?
echo "create took $(( $(date +%s) - t_create )) s (exit status $status)"

step "labctl list"
labctl list --lab-dir "$lab"

step "labctl inventory (INI)"
labctl inventory --lab-dir "$lab"

if [ "$status" = 0 ] && [ "$count" -gt 0 ] && command -v ansible >/dev/null && [ -f "$lab/hosts.ini" ]; then
  step "ansible all -i hosts.ini -m raw -a hostname (strict host-key checking, keys recorded by labctl)"
  (cd "$lab" && ANSIBLE_HOST_KEY_CHECKING=True ip netns exec "$KVM_NETNS" ansible all -i hosts.ini -m raw -a hostname -o) || status=1
fi

if [ "$cleanup" = 1 ]; then
  teardown
else
  env_prefix=""
  [ -n "${LABCTL_DEMO_DIR:-}" ] && env_prefix+="LABCTL_DEMO_DIR=$demo "
  [ "$KVM_NETNS" != labctl-demo ] && env_prefix+="KVM_NETNS=$KVM_NETNS "
  step "try it, then clean up"
  cat <<EOF
The VMs are in network namespace $KVM_NETNS; run things that talk to them inside it:
  sudo ip netns exec $KVM_NETNS ssh -i $guest/id_ed25519 -o UserKnownHostsFile=$lab/known_hosts -o StrictHostKeyChecking=yes -o HostKeyAlias=<vm name> root@<address> hostname
  cd $lab && sudo ip netns exec $KVM_NETNS ansible all -i hosts.ini -m raw -a 'uptime'
  sudo env LIBVIRT_DEFAULT_URI='$LIBVIRT_URI' virsh list
Clean up everything (VMs, overlays, network, daemons, namespace):
  sudo $env_prefix./scripts/demo.sh --down
EOF
fi
echo "demo.sh: done in $(( $(date +%s) - t0 )) s"
exit "$status"
