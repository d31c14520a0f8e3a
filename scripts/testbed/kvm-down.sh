#!/usr/bin/env bash
# Stop what scripts/testbed/kvm-up.sh STATE_DIR started; safe to repeat, and after a partial up.
#   scripts/testbed/kvm-down.sh STATE_DIR
# - VMs still running under this private libvirtd are powered off (virsh destroy), because their
#   qemu processes would otherwise outlive the daemon and keep the netns alive. Their definitions
#   and disks are left alone (they belong to whoever made them, e.g. `labctl destroy`).
# - The network is stopped, and undefined if kvm-up.sh defined it; its leases are dropped.
# - libvirtd and virtlogd are stopped by the pids in their pid files (checked by process name).
# - The netns is deleted if kvm-up.sh created it.
# Env: KVM_NETNS, KVM_NETWORK as for kvm-up.sh (kvm.env in STATE_DIR wins when present).
set -uo pipefail
state=${1:?usage: kvm-down.sh STATE_DIR}
[ -d "$state" ] || exit 0
state=$(cd "$state" && pwd)
netns=${KVM_NETNS:-labctl-kvm}; network=${KVM_NETWORK:-labnet}
if [ -f "$state/kvm.env" ]; then
  netns=$(sed -n 's/^KVM_NETNS=//p' "$state/kvm.env"); network=$(sed -n 's/^KVM_NETWORK=//p' "$state/kvm.env")
fi
uri="qemu:///system?socket=$state/run/libvirt-sock"
exec 9>"$state/.up.lock"; flock 9

pid_of() { # pidfile name -> the pid, when it is a running process called name
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
}
stop() { # pid...: TERM, wait up to 5 s, then KILL
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "$@"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  done
  return 0
}

if pid_of "$state/libvirtd.pid" libvirtd >/dev/null; then
  for domain in $(virsh -q -c "$uri" list --name 2>/dev/null); do
    virsh -q -c "$uri" destroy "$domain" >/dev/null 2>&1 && echo "kvm-down: powered off VM $domain (still defined)"
  done
  virsh -q -c "$uri" net-destroy "$network" >/dev/null 2>&1
  [ -f "$state/network.created" ] && virsh -q -c "$uri" net-undefine "$network" >/dev/null 2>&1
fi
# Whatever the daemon left behind or could not stop: its qemu and dnsmasq processes, by pid file.
leftovers=()
for f in "$state"/run/qemu/*.pid; do
  [ -f "$f" ] && pid=$(pid_of "$f" qemu-system-x86) && leftovers+=("$pid")
done
for f in "$state"/run/network/*.pid; do
  [ -f "$f" ] && pid=$(pid_of "$f" dnsmasq) && leftovers+=("$pid")
done
[ ${#leftovers[@]} -gt 0 ] && stop "${leftovers[@]}"
daemons=()
pid=$(pid_of "$state/libvirtd.pid" libvirtd) && daemons+=("$pid")
pid=$(pid_of "$state/virtlogd.pid" virtlogd) && daemons+=("$pid")
[ ${#daemons[@]} -gt 0 ] && stop "${daemons[@]}"
rm -f "$state/libvirtd.pid" "$state/virtlogd.pid" "$state/network.created" "$state/kvm.env"
rm -rf "$state/lib/dnsmasq" "$state/run"
if [ -f "$state/netns.created" ]; then
  ip netns del "$netns" 2>/dev/null
  rm -f "$state/netns.created"
fi
echo "kvm-down: $state stopped (netns $netns, network $network)"
