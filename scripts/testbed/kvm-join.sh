#!/usr/bin/env bash
# Joins the bridges of two test beds (scripts/testbed/kvm-up.sh) into one L2 segment with a veth
# pair, so guests keep their addresses when they move between the two libvirt hosts.
#   scripts/testbed/kvm-join.sh STATE_DIR_A STATE_DIR_B
# The pair is named after the second bed's netns and lives only in the two namespaces: deleting
# either namespace (kvm-down.sh) removes it. Safe to repeat. Needs root.
set -euo pipefail
a=${1:?usage: kvm-join.sh STATE_DIR_A STATE_DIR_B}; b=${2:?usage: kvm-join.sh STATE_DIR_A STATE_DIR_B}
env_of() { sed -n "s/^$2=//p" "$1/kvm.env"; }
netns_a=$(env_of "$a" KVM_NETNS); bridge_a=$(env_of "$a" KVM_BRIDGE)
netns_b=$(env_of "$b" KVM_NETNS); bridge_b=$(env_of "$b" KVM_BRIDGE)
[ -n "$netns_a" ] && [ -n "$netns_b" ] || { echo "kvm-join.sh: both beds must be up (kvm.env)" >&2; exit 1; }
if ! ip -n "$netns_a" link show lj0 >/dev/null 2>&1; then
  ip link add lj0 netns "$netns_a" type veth peer name lj1 netns "$netns_b"
fi
ip -n "$netns_a" link set lj0 master "$bridge_a" up
ip -n "$netns_b" link set lj1 master "$bridge_b" up
echo "kvm-join: $netns_a/$bridge_a <-> $netns_b/$bridge_b" >&2
