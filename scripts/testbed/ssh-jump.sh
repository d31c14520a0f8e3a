#!/usr/bin/env bash
# A bastion and a host behind it, each an OpenSSH server in a network namespace of its own:
#   scripts/testbed/ssh-jump.sh up DIR [BASE_PORT=22300]
#   scripts/testbed/ssh-jump.sh down DIR
# host ns --veth-- bastion ns (10.252.X.2, sshd h1) --veth-- target ns (10.253.X.2, sshd h2)
# The bastion does not route (no forwarding), so the target is reachable only through an SSH
# connection to the bastion (ProxyJump); this namespace has an unreachable route for the target's
# subnet, so nothing is sent elsewhere. X comes from this run's PID. The sshd hosts are
# scripts/testbed/ssh-hosts.sh's (users, keys, DIR/known_hosts); DIR/jump.env gives the addresses:
# JUMP_BASTION_ADDR, JUMP_BASTION_PORT, JUMP_TARGET_ADDR, JUMP_TARGET_PORT, JUMP_HOST_ADDR.
set -euo pipefail
cmd=${1:?usage: ssh-jump.sh up|down DIR [BASE_PORT]}; dir=${2:?DIR}; base=${3:-22300}
here=$(cd "$(dirname "$0")" && pwd)

down() {
  "$here/ssh-hosts.sh" down "$dir" || true
  if [ -f "$dir/jump.env" ]; then
    # shellcheck disable=SC1091
    . "$dir/jump.env"
    ip netns del "$JUMP_NS_BASTION" 2>/dev/null || true
    ip netns del "$JUMP_NS_TARGET" 2>/dev/null || true
    ip link del "$JUMP_VETH" 2>/dev/null || true
    ip route del unreachable "${JUMP_TARGET_GATEWAY%.*}.0/30" 2>/dev/null || true
  fi
}
if [ "$cmd" = down ]; then down; exit 0; fi
[ "$cmd" = up ] || { echo "usage: ssh-jump.sh up|down DIR [BASE_PORT]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "ssh-jump.sh: needs root (namespaces)" >&2; exit 1; }

x=$(( $$ % 250 + 1 ))
tag=$(( $$ % 100000 ))
nsb="labctl-jump-b-$tag"; nst="labctl-jump-t-$tag"; veth="ljh$tag"
mkdir -p "$dir"
cat > "$dir/jump.env" <<ENV
JUMP_NS_BASTION=$nsb
JUMP_NS_TARGET=$nst
JUMP_VETH=$veth
JUMP_HOST_ADDR=10.252.$x.1
JUMP_BASTION_ADDR=10.252.$x.2
JUMP_BASTION_PORT=$((base + 1))
JUMP_TARGET_ADDR=10.253.$x.2
JUMP_TARGET_PORT=$((base + 2))
JUMP_TARGET_GATEWAY=10.253.$x.1
ENV
for ns in "$nsb" "$nst"; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link del "$veth" 2>/dev/null || true
ip link add "$veth" type veth peer name vb netns "$nsb"
ip addr add "10.252.$x.1/30" dev "$veth"; ip link set "$veth" up
ip -n "$nsb" addr add "10.252.$x.2/30" dev vb; ip -n "$nsb" link set vb up
ip -n "$nsb" link add bt type veth peer name tb netns "$nst"
ip -n "$nsb" addr add "10.253.$x.1/30" dev bt; ip -n "$nsb" link set bt up
ip -n "$nst" addr add "10.253.$x.2/30" dev tb; ip -n "$nst" link set tb up
ip netns exec "$nsb" sysctl -qw net.ipv4.ip_forward=0
# From here the target's subnet is unreachable, not routed out of the machine: a direct attempt
# fails at once and no packet leaves for the default gateway.
ip route replace unreachable "10.253.$x.0/30"
SSH_HOSTS_NETNS_1=$nsb SSH_HOSTS_ADDR_1="10.252.$x.2" SSH_HOSTS_NETNS_2=$nst SSH_HOSTS_ADDR_2="10.253.$x.2" \
  "$here/ssh-hosts.sh" up "$dir" 2 "$base"
