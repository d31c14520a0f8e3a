#!/usr/bin/env bash
# A private libvirt for KVM tests and the demo: libvirtd + virtlogd started by hand inside a network
# namespace of their own, plus an isolated libvirt network (bridge + DHCP, no forward/NAT, DNS off).
#   scripts/testbed/kvm-up.sh STATE_DIR        (idempotent: re-running keeps what is up)
#   scripts/testbed/kvm-down.sh STATE_DIR      (stops exactly what this started; safe to repeat)
# Env: KVM_NETNS (default labctl-kvm), KVM_NETWORK (default labnet), KVM_BRIDGE (default labbr0),
#      KVM_SUBNET (a /24, default 10.78.0.0/24: gateway .1, DHCP .10-.250), KVM_DHCP_START (default 10:
#      the DHCP range starts there; addresses below it are free for static ones), KVM_GATEWAY_OCTET
#      (default 1: the bridge's address), KVM_DHCP (default yes; no: no DHCP server),
#      KVM_MIGRATION_HOST (the address live migrations to this bed go to).
# Prints, and writes to STATE_DIR/kvm.env, KEY=VALUE lines:
#   LIBVIRT_URI / LIBVIRT_DEFAULT_URI   qemu:///system?socket=STATE_DIR/run/libvirt-sock
#   KVM_NETNS KVM_NETWORK KVM_BRIDGE KVM_SUBNET KVM_GATEWAY KVM_STATE_DIR
# Use: `ip netns exec $KVM_NETNS labctl create --uri "$LIBVIRT_URI" --network "$KVM_NETWORK" ...`
# (anything that talks to the VMs — SSH, ansible, labctl's discovery — runs inside the netns; virsh
# works from anywhere through the socket path).
#
# Nothing outside STATE_DIR is changed except creating the netns and the empty mount points
# /run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt if missing. The daemons run in a
# private mount namespace (ip netns exec makes one) where STATE_DIR/{etc,run,lib,log,cache} are bound
# over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt, so:
# - the host's /etc/libvirt is never read or written (its autostarting NAT "default" network included);
# - several test beds (different STATE_DIR and KVM_NETNS) run side by side without sharing anything;
# - leases live in STATE_DIR/lib/dnsmasq, so a new test bed starts with no stale leases of old VMs.
# Pitfalls handled (see reference/kvm/README.md): no systemd here, so the daemons are started by hand;
# qemu.conf has security_driver "none" and dynamic_ownership 0, so libvirt never chowns a disk or its
# backing file (the golden image keeps its owner and mode); VMs run as root. `virsh domifaddr
# --source arp` is broken with libvirt 9.0 on this kernel: use --source lease (or `ip neigh` in the netns).
# Needs root and the Debian packages libvirt-daemon-system, libvirt-clients, qemu-system-x86, dnsmasq-base.
set -euo pipefail
state=${1:?usage: kvm-up.sh STATE_DIR}
netns=${KVM_NETNS:-labctl-kvm}; network=${KVM_NETWORK:-labnet}; bridge=${KVM_BRIDGE:-labbr0}
subnet=${KVM_SUBNET:-10.78.0.0/24}
[ "$(id -u)" = 0 ] || { echo "kvm-up.sh: needs root (network namespace, libvirtd)" >&2; exit 1; }
[[ $subnet =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.0/24$ ]] || { echo "kvm-up.sh: KVM_SUBNET must be a /24 like 10.78.0.0/24" >&2; exit 2; }
prefix=${BASH_REMATCH[1]}
for tool in libvirtd virtlogd virsh qemu-system-x86_64 dnsmasq; do
  command -v "$tool" >/dev/null || { echo "kvm-up.sh: $tool not found; run scripts/setup.sh" >&2; exit 1; }
done
t0=$(date +%s%N)
mkdir -p "$state"; state=$(cd "$state" && pwd)
mkdir -p "$state"/{etc,run,lib,log,cache} "$state/lib/dnsmasq"
chmod 755 "$state"
uri="qemu:///system?socket=$state/run/libvirt-sock"
# UNIX socket paths are limited to 107 bytes; libvirtd would fail with a less helpful error.
[ ${#state} -le 80 ] || { echo "kvm-up.sh: STATE_DIR path too long for libvirt's socket (${#state} > 80 characters): $state" >&2; exit 2; }
exec 9>"$state/.up.lock"; flock 9

alive() { # pidfile name -> true when the pid in it is a running process called name
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

netns_exists() { ip netns list | grep -qx "$netns\( (id: [0-9]*)\)\?"; }
# A namespace of this name with no process in it is what a killed run left behind (its bridge still
# holding the subnet, so the network would not start): it holds nothing anyone uses, start it afresh.
if netns_exists && [ -z "$(ip netns pids "$netns")" ]; then
  echo "kvm-up: network namespace $netns was left behind by an earlier run (no process in it): recreating it" >&2
  ip netns del "$netns"
fi
if ! netns_exists; then
  ip netns add "$netns"
  touch "$state/netns.created"
fi
ip netns exec "$netns" ip link set lo up

# Every test bed is a host of its own to libvirt: two beds on one machine migrate VMs between them
# (libvirt refuses a migration between daemons that report the same host UUID).
[ -s "$state/host-uuid" ] || cat /proc/sys/kernel/random/uuid > "$state/host-uuid"
host_uuid=$(cat "$state/host-uuid")
cat > "$state/etc/libvirtd.conf" <<EOF
# labctl test bed: local UNIX socket only, root only.
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:$state/libvirtd.log"
host_uuid = "$host_uuid"
EOF
cat > "$state/etc/virtlogd.conf" <<EOF
log_outputs = "3:file:$state/virtlogd.log"
EOF
cat > "$state/etc/qemu.conf" <<'EOF'
# labctl test bed: VMs run as root and libvirt never relabels or chowns disks, so the golden image
# (a backing file) keeps its owner and mode.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
EOF
# KVM_MIGRATION_HOST: the address other beds' QEMU sends a live migration to (this bed's bridge
# address on a segment joined by kvm-join.sh); otherwise QEMU would be told this machine's hostname.
if [ -n "${KVM_MIGRATION_HOST:-}" ]; then
  [[ $KVM_MIGRATION_HOST =~ ^[0-9.]+$ ]] || { echo "kvm-up.sh: KVM_MIGRATION_HOST must be an IPv4 address" >&2; exit 2; }
  echo "migration_host = \"$KVM_MIGRATION_HOST\"" >> "$state/etc/qemu.conf"
fi
# The daemons' private view: STATE_DIR's directories over libvirt's fixed paths.
binds=(etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt)
mounts=""
for b in "${binds[@]}"; do
  mkdir -p "${b#*:}"
  mounts+="mount --bind '$state/${b%%:*}' '${b#*:}' && "
done
start_daemon() { # name args...: inside the netns (whose own mount namespace keeps the binds private)
  local name=$1; shift
  # 9>&-: the daemons must not inherit (and hold forever) this script's lock.
  ip netns exec "$netns" sh -c "$mounts exec $name $*" 9>&-
}
if ! alive "$state/virtlogd.pid" virtlogd; then
  start_daemon virtlogd --daemon --config "$state/etc/virtlogd.conf" --pid-file "$state/virtlogd.pid"
fi
if ! alive "$state/libvirtd.pid" libvirtd; then
  start_daemon libvirtd --daemon --config "$state/etc/libvirtd.conf" --pid-file "$state/libvirtd.pid"
fi
virsh_() { virsh -q -c "$uri" "$@"; }
for _ in $(seq 1 300); do virsh_ version >/dev/null 2>&1 && break; sleep 0.1; done
virsh_ version >/dev/null || { echo "kvm-up.sh: libvirtd did not answer on $uri; see $state/libvirtd.log" >&2; exit 1; }

# no-ping: dnsmasq otherwise pings each address before its first offer and ten VMs booting at
# once queue behind those checks (measured: first creation of 10 VMs 51-57 s to all-SSH, 39-49 s without).
# KVM_GATEWAY_OCTET / KVM_DHCP=no: a second bed on the same L2 segment as a first one (joined by
# scripts/testbed/kvm-join.sh) takes another address of the subnet and leaves DHCP to the first.
gateway_octet=${KVM_GATEWAY_OCTET:-1}
[[ $gateway_octet =~ ^[0-9]{1,3}$ ]] || { echo "kvm-up.sh: KVM_GATEWAY_OCTET must be a number" >&2; exit 2; }
dhcp="
    <dhcp><range start='$prefix.${KVM_DHCP_START:-10}' end='$prefix.250'/></dhcp>"
[ "${KVM_DHCP:-yes}" = no ] && dhcp=""
if ! virsh_ net-info "$network" >/dev/null 2>&1; then
  cat > "$state/$network.xml" <<EOF
<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
  <name>$network</name>
  <bridge name='$bridge' stp='off' delay='0'/>
  <dns enable='no'/>
  <ip address='$prefix.$gateway_octet' netmask='255.255.255.0'>$dhcp
  </ip>
  <dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options>
</network>
EOF
  virsh_ net-define "$state/$network.xml" >/dev/null
  echo "$network" > "$state/network.created"
fi
[[ $(virsh_ net-info "$network") =~ Active:\ *yes ]] || virsh_ net-start "$network" >/dev/null

{
  echo "LIBVIRT_URI='$uri'"
  echo "LIBVIRT_DEFAULT_URI='$uri'"
  echo "KVM_NETNS=$netns"
  echo "KVM_NETWORK=$network"
  echo "KVM_BRIDGE=$bridge"
  echo "KVM_SUBNET=$subnet"
  echo "KVM_GATEWAY=$prefix.$gateway_octet"
  echo "KVM_STATE_DIR=$state"
} > "$state/kvm.env"
cat "$state/kvm.env"
echo "kvm-up: libvirtd pid $(cat "$state/libvirtd.pid") in netns $netns, network $network ($subnet) ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
