#!/usr/bin/env bash
# Benchmark: snapshot save and revert of N stopped VMs (default 10), one command each, against the
# scripted way, one `virsh snapshot-create-as` / `virsh snapshot-revert` per VM in a shell loop.
# Same work: the same N domains (labctl-made, qcow2 overlays on golden.qcow2), one internal snapshot
# per VM per round for each tool (names l-R and v-R), then a revert to it. Rounds interleave the
# tools (ABAB...), on a private libvirt (scripts/testbed/kvm-up.sh) in network namespace
# labctl-bench-snap. The load average is printed next to every number. qemu-img writes internal
# snapshots through libvirt for both tools, with the same (libvirt's) durability.
#   sudo bench/snapshot/run.sh            # N=10 ROUNDS=4
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${BENCH_DIR:-/var/tmp/labctl-bench-snap}; N=${N:-10}; rounds=${ROUNDS:-4}
export KVM_NETNS=${KVM_NETNS:-labctl-bench-snap} KVM_SUBNET=${KVM_SUBNET:-10.87.0.0/24} KVM_BRIDGE=${KVM_BRIDGE:-labbsbr0}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
rm -rf "$work"; mkdir -p "$work"
guest=$work/guest; testbed=$work/testbed; lab=$work/lab
"$root/scripts/guest/build-guest.sh" "$guest" >&2
"$root/scripts/testbed/kvm-up.sh" "$testbed" >/dev/null
trap '"$root/scripts/testbed/kvm-down.sh" "$testbed" >/dev/null 2>&1 || true' EXIT
set -a; . "$testbed/kvm.env"; set +a
labctl() { ip netns exec "$KVM_NETNS" node "$root/packages/cli/bin/run.js" "$@" --lab-dir "$lab"; }
mkdir -p "$lab"
cat > "$lab/labctl.yaml" <<YAML
lab: bench-snap
defaults: { memory: 128, golden: $guest/golden.qcow2, kernel: $guest/vmlinux, initrd: $guest/initrd-boot.gz, network: labnet }
groups: { s: { count: $N } }
YAML
labctl create --no-start --json > /dev/null
names=$(virsh -q -c "$LIBVIRT_URI" list --all --name | sort)
now() { date +%s.%N; }
printf '| round | tool | save s | revert s | load (1 min) |\n|---|---|---|---|---|\n'
for r in $(seq 1 "$rounds"); do
  for tool in $([ $((r % 2)) = 1 ] && echo "labctl virsh" || echo "virsh labctl"); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(now)
    if [ "$tool" = labctl ]; then labctl snapshot save --all --name "l-$r" --json > /dev/null
    else for n in $names; do virsh -q -c "$LIBVIRT_URI" snapshot-create-as "$n" --name "v-$r" --atomic > /dev/null; done; fi
    t1=$(now)
    if [ "$tool" = labctl ]; then labctl snapshot revert --all --name "l-$r" --json > /dev/null
    else for n in $names; do virsh -q -c "$LIBVIRT_URI" snapshot-revert "$n" "v-$r" > /dev/null; done; fi
    t2=$(now)
    printf '| %s | %s | %.2f | %.2f | %s |\n' "$r" "$tool" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$load"
  done
done
labctl destroy --all --json > /dev/null
