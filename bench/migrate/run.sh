#!/usr/bin/env bash
# Benchmark: live migration of N running VMs (default 10) from one libvirt host to another, as
# `labctl evacuate h1` does it (two migrations at a time per source host, the state following each
# VM) against the scripted way, one `virsh migrate --live` per VM in a shell loop.
# Same work: the same N domains (labctl-made, 128 MiB, TCG, on one disk directory both hosts see),
# moved h1 -> h2 by each tool with the same virsh options (--live --persistent --undefinesource
# --unsafe); each tool then moves them back the same way, untimed, so every round starts with all N on
# h1. Rounds interleave the tools (ABAB...), on two private libvirt daemons (scripts/testbed/kvm-up.sh)
# in network namespaces labctl-bench-m1/m2 joined into one L2 segment. The load average is printed
# next to every number.
#   sudo bench/migrate/run.sh            # N=10 ROUNDS=4
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${BENCH_DIR:-/var/tmp/labctl-bench-migrate}; N=${N:-10}; rounds=${ROUNDS:-4}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work/shared"
guest=$work/guest; lab=$work/lab
"$root/scripts/guest/build-guest.sh" "$guest" >&2
bed() { # dir netns octet
  KVM_NETNS=$2 KVM_SUBNET=10.86.0.0/24 KVM_BRIDGE=labbmbr0 KVM_DHCP_START=100 KVM_GATEWAY_OCTET=$3 \
    KVM_MIGRATION_HOST=10.86.0.$3 KVM_DHCP=$([ "$3" = 1 ] && echo yes || echo no) \
    "$root/scripts/testbed/kvm-up.sh" "$1" | sed -n "s/^LIBVIRT_URI='\(.*\)'$/\1/p"
}
uri1=$(bed "$work/h1" labctl-bench-m1 1); uri2=$(bed "$work/h2" labctl-bench-m2 2)
trap 'for b in h1 h2; do "$root/scripts/testbed/kvm-down.sh" "$work/$b" >/dev/null 2>&1 || true; done' EXIT
"$root/scripts/testbed/kvm-join.sh" "$work/h1" "$work/h2"
labctl() { env -u LIBVIRT_DEFAULT_URI ip netns exec labctl-bench-m1 node "$root/packages/cli/bin/run.js" "$@" --lab-dir "$lab"; }
mkdir -p "$lab"
cat > "$lab/labctl.yaml" <<YAML
lab: bench-migrate
provider: libvirt
hosts:
  - { name: h1, uri: "$uri1", path: $work/shared }
  - { name: h2, uri: "$uri2", path: $work/shared }
defaults:
  memory: 128
  golden: $guest/golden.qcow2
  kernel: $guest/vmlinux
  initrd: $guest/initrd-boot.gz
  cmdline: console=ttyS0 quiet panic=-1
  network: { name: labnet, prefix: 24, gateway: 10.86.0.1 }
  ssh: { user: root, keyFile: $guest/id_ed25519 }
groups: { m: { count: $N, network: { addresses: 10.86.0.20-10.86.0.99 } } }
YAML
labctl create --host h1 --json > /dev/null
names=$(virsh -q -c "$uri1" list --name | sort)
loop() { # from to
  for n in $names; do virsh -q -c "$1" migrate --live --persistent --undefinesource --unsafe "$n" "$2" > /dev/null; done
}
now() { date +%s.%N; }
printf '| round | tool | %s live migrations h1 -> h2, s | load (1 min) |\n|---|---|---|---|\n' "$N"
for r in $(seq 1 "$rounds"); do
  for tool in $([ $((r % 2)) = 1 ] && echo "labctl virsh" || echo "virsh labctl"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(now)
    if [ "$tool" = labctl ]; then labctl evacuate h1 --unsafe --no-wait --json > /dev/null; else loop "$uri1" "$uri2"; fi
    t1=$(now)
    if [ "$tool" = labctl ]; then labctl evacuate h2 --unsafe --no-wait --json > /dev/null; else loop "$uri2" "$uri1"; fi
    [ "$(virsh -q -c "$uri1" list --name | grep -c .)" = "$N" ] || { echo "run.sh: not all VMs back on h1" >&2; exit 1; }
    printf '| %s | %s | %.1f | %s |\n' "$r" "$tool" "$(echo "$t1 - $t0" | bc)" "$load"
  done
done
labctl destroy --all --json > /dev/null
