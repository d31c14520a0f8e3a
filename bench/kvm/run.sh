#!/usr/bin/env bash
# Benchmark: wall time from the command to "all N VMs answer `ssh ... hostname`", for
#   labctl     `labctl create --count N` (lab file: golden.vhd, direct kernel boot, concurrency N, TCG;
#              each VM's NoCloud seed and host key made by labctl and pinned before boot, DHCP)
#   labctl-static  the same with static addresses (network.addresses): known before boot, no lease
#   virt-clone a shell loop, one VM after the other: qemu-img overlay on golden.vhd, `virt-clone
#              --preserve-data` of a template domain, `virsh start` (the usual scripted way)
#   vagrant    `vagrant up --parallel` with vagrant-libvirt, box made from the same guest (golden.qcow2:
#              vagrant-libvirt boxes must be qcow2), same kernel, initrd, memory and CPUs
# all in the same run, on the same private libvirt (scripts/testbed/kvm-up.sh) inside network namespace
# labctl-bench: every packet stays in it. The same SSH checker (leases from `virsh domifaddr --source
# lease`, then `ssh hostname`, all VMs in parallel) ends every measurement, so the tools are compared on
# the same finish line. Also: per-VM provisioning overhead (disk + define, no start) as the marginal cost
# of a VM ((time for N - time for 1) / (N - 1)), and peak memory (RSS sum of every process in the netns,
# daemons excluded, sampled every 0.5 s; and the peak RSS of the tool's own processes).
#   sudo bench/kvm/run.sh                 # N=10 ROUNDS=2
#   sudo N=10 ROUNDS=3 TOOLS="labctl virt-clone vagrant" bench/kvm/run.sh
# Installs vagrant, vagrant-libvirt and virtinst if missing (Debian packages; bench only). Results:
# $BENCH_DIR/results.tsv and a Markdown table on stdout (copied by hand into bench/RESULTS.md).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${BENCH_DIR:-/var/tmp/labctl-bench}; N=${N:-10}; rounds=${ROUNDS:-2}
tools=${TOOLS:-labctl labctl-static virt-clone vagrant}
export KVM_NETNS=${KVM_NETNS:-labctl-bench} KVM_NETWORK=${KVM_NETWORK:-labnet}
# DHCP hands out .100-.250; .20-.99 are free for labctl-static.
export KVM_DHCP_START=${KVM_DHCP_START:-100}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
missing=()
for p in vagrant vagrant-libvirt virtinst; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null ||
    echo "run.sh: could not install ${missing[*]}; those tools are skipped" >&2
fi
mkdir -p "$work"; work=$(cd "$work" && pwd)
guest=$work/guest; testbed=$work/testbed
"$root/scripts/guest/build-guest.sh" "$guest" >&2
"$root/scripts/testbed/kvm-up.sh" "$testbed" >/dev/null
set -a; . "$testbed/kvm.env"; set +a
V=(virsh -q -c "$LIBVIRT_URI")
in_ns() { ip netns exec "$KVM_NETNS" "$@"; }
labctl_bin=${LABCTL_BIN:-$root/packages/cli/bin/run.js}   # e.g. a copy of a known-good build
labctl() { in_ns node "$labctl_bin" "$@"; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }
cmdline='console=ttyS0 quiet panic=-1'
results=$work/results.tsv
[ -f "$results" ] || printf 'tool\tround\tseconds_to_all_ssh\tssh_ok\tpeak_rss_vms_and_tool_mib\tpeak_rss_tool_mib\n' > "$results"

# ---- peak memory sampler: RSS of every process in the netns except the daemons, and of the tool ----
sampler_start() {
  : > "$work/mem.peak"
  ( peak_all=0; peak_tool=0
    while :; do
      read -r all tool < <(ps -o rss=,comm= -p "$(ip netns pids "$KVM_NETNS" | paste -sd, -)" 2>/dev/null |
        awk '$2 !~ /^(libvirtd|virtlogd|dnsmasq|sleep|ps|ip)$/ {a += $1; if ($2 !~ /^qemu/) t += $1} END {printf "%d %d\n", a/1024, t/1024}')
      [ "${all:-0}" -gt "$peak_all" ] && peak_all=$all
      [ "${tool:-0}" -gt "$peak_tool" ] && peak_tool=$tool
      echo "$peak_all $peak_tool" > "$work/mem.peak"
      sleep 0.5
    done ) &
  sampler=$!
}
sampler_stop() { kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null; cat "$work/mem.peak"; }

# ---- the common finish line: every domain has a lease and answers ssh hostname ----
# NAME reads the address from the DHCP lease; NAME=IP (addresses known before boot) uses IP as given.
wait_ssh() { # NAME or NAME=IP ...
  local pair dir=$work/ssh-ok; rm -rf "$dir"; mkdir -p "$dir"
  for pair in "$@"; do
    ( d=${pair%%=*} given=; [ "$pair" != "$d" ] && given=${pair#*=}
      deadline=$(( $(date +%s) + 300 ))
      while [ "$(date +%s)" -lt "$deadline" ]; do
        ip=${given:-$("${V[@]}" domifaddr "$d" --source lease 2>/dev/null | awk '/ipv4/ {sub(/\/.*/, "", $4); print $4; exit}')}
        if [ -n "$ip" ] && out=$(in_ns ssh -i "$guest/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
            -o LogLevel=ERROR -o ConnectTimeout=3 -o BatchMode=yes "root@$ip" hostname 2>/dev/null) && [ -n "$out" ]; then
          touch "$dir/$d"; break
        fi
        sleep 0.5
      done ) &
  done
  wait
  ls "$dir" | wc -l
}
record() { # tool round t0 t1 ok
  local mem; mem=$(sampler_stop)
  printf '%s\t%s\t%.1f\t%s/%s\t%s\t%s\n' "$1" "$2" "$(secs "$3" "$4")" "$5" "$N" "${mem% *}" "${mem#* }" | tee -a "$results"
}

# ---- labctl ----
lab=$work/lab-labctl; mkdir -p "$lab"
cat > "$lab/labctl.yaml" <<EOF
lab: bench
provider: libvirt
uri: "$LIBVIRT_URI"
concurrency: $N
libvirt:
  accelerator: tcg
defaults:
  golden: $guest/golden.vhd
  kernel: $guest/vmlinux
  initrd: $guest/initrd-boot.gz
  cmdline: $cmdline
  network: $KVM_NETWORK
  memory: 128
  cpus: 1
  ssh: { user: root, keyFile: $guest/id_ed25519 }
groups:
  lc: { name: "lc-{nn}" }
EOF
labctl_names() { for i in $(seq 1 "$1"); do printf 'lc-%02d ' "$i"; done; }
run_labctl() {
  sampler_start; local t0 t1 ok
  t0=$(now)
  labctl create --count "$N" --lab-dir "$lab" > "$work/labctl-create.log" 2>&1 || echo "labctl create failed: see $work/labctl-create.log" >&2
  # shellcheck disable=SC2046
  ok=$(wait_ssh $(labctl_names "$N")); t1=$(now)
  record labctl "$1" "$t0" "$t1" "$ok"
  labctl destroy --all --yes --lab-dir "$lab" >/dev/null 2>&1
}

# ---- labctl with static addresses ----
prefix=${KVM_SUBNET:-10.78.0.0/24}; prefix=${prefix%.0/24}
static_lab=$work/lab-labctl-static; mkdir -p "$static_lab"
sed -e 's/^lab: bench$/lab: bench-static/' \
  -e "s|^  lc: { name: \"lc-{nn}\" }$|  ls: { name: \"ls-{nn}\", network: { name: $KVM_NETWORK, addresses: $prefix.20-$prefix.99, gateway: $prefix.1 } }|" \
  "$lab/labctl.yaml" > "$static_lab/labctl.yaml"
run_labctl_static() {
  sampler_start; local t0 t1 ok i pairs=()
  for i in $(seq 1 "$N"); do pairs+=("$(printf 'ls-%02d' "$i")=$prefix.$((19 + i))"); done
  t0=$(now)
  labctl create --count "$N" --lab-dir "$static_lab" > "$work/labctl-static-create.log" 2>&1 || echo "labctl create (static) failed: see $work/labctl-static-create.log" >&2
  ok=$(wait_ssh "${pairs[@]}"); t1=$(now)
  record labctl-static "$1" "$t0" "$t1" "$ok"
  labctl destroy --all --yes --lab-dir "$static_lab" >/dev/null 2>&1
}

# ---- virt-clone loop ----
loopdir=$work/loop; mkdir -p "$loopdir"
template_xml() { # name disk
  cat <<EOF
<domain type='qemu'>
  <name>$1</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>$guest/vmlinux</kernel><initrd>$guest/initrd-boot.gz</initrd>
    <cmdline>$cmdline</cmdline></os>
  <features><acpi/><apic/></features>
  <on_reboot>destroy</on_reboot>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='$2'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><source network='$KVM_NETWORK'/><model type='virtio'/><rom enabled='no'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}
if ! "${V[@]}" dominfo bench-tpl >/dev/null 2>&1; then
  qemu-img create -q -f qcow2 -b "$guest/golden.vhd" -F vpc "$loopdir/tpl.qcow2"
  template_xml bench-tpl "$loopdir/tpl.qcow2" > "$loopdir/tpl.xml"
  "${V[@]}" define "$loopdir/tpl.xml" >/dev/null
fi
loop_provision() { # i: disk + define (the part before start)
  local name; name=$(printf 'vc-%02d' "$1")
  qemu-img create -q -f qcow2 -b "$guest/golden.vhd" -F vpc "$loopdir/$name.qcow2" &&
    in_ns virt-clone -q --connect "$LIBVIRT_URI" --original bench-tpl --name "$name" --file "$loopdir/$name.qcow2" --preserve-data \
      --mac "$(printf '52:54:00:be:00:%02x' "$1")" >/dev/null
}
loop_cleanup() {
  for d in $("${V[@]}" list --all --name | grep '^vc-'); do "${V[@]}" destroy "$d" >/dev/null 2>&1; "${V[@]}" undefine "$d" >/dev/null 2>&1; done
  rm -f "$loopdir"/vc-*.qcow2
}
run_loop() {
  sampler_start; local t0 t1 ok i names=()
  t0=$(now)
  for i in $(seq 1 "$N"); do
    loop_provision "$i" && "${V[@]}" start "$(printf 'vc-%02d' "$i")" >/dev/null; names+=("$(printf 'vc-%02d' "$i")")
  done
  ok=$(wait_ssh "${names[@]}"); t1=$(now)
  record virt-clone "$1" "$t0" "$t1" "$ok"
  loop_cleanup
}

# ---- vagrant-libvirt ----
vd=$work/vagrant; mkdir -p "$vd/box" "$vd/proj"
export VAGRANT_HOME=$vd/home VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_BOX_UPDATE_CHECK_DISABLE=1 VAGRANT_DEFAULT_PROVIDER=libvirt
vagrant_ready=0
if command -v vagrant >/dev/null && [[ " $tools " == *" vagrant "* ]]; then
  "${V[@]}" pool-info default >/dev/null 2>&1 || {
    mkdir -p "$work/pool"; "${V[@]}" pool-define-as default dir --target "$work/pool" >/dev/null && "${V[@]}" pool-start default >/dev/null; }
  if ! [ -d "$VAGRANT_HOME/boxes/labtiny" ]; then
    cp "$guest/golden.qcow2" "$vd/box/box.img"; chmod 644 "$vd/box/box.img"
    echo '{"provider":"libvirt","format":"qcow2","virtual_size":1}' > "$vd/box/metadata.json"
    (cd "$vd/box" && tar czf ../labtiny.box metadata.json box.img)
    in_ns vagrant box add --force --name labtiny "$vd/labtiny.box" >/dev/null
  fi
  cat > "$vd/proj/Vagrantfile" <<VF
Vagrant.configure("2") do |config|
  config.vm.box = "labtiny"
  config.ssh.username = "root"
  config.ssh.private_key_path = "$guest/id_ed25519"
  config.ssh.insert_key = false
  config.ssh.shell = "sh"
  config.vm.guest = :linux
  config.vm.synced_folder ".", "/vagrant", disabled: true
  (1..$N).each do |i|
    config.vm.define "vg#{i}" do |m|
      m.vm.provider :libvirt do |lv|
        lv.uri = "$LIBVIRT_URI"
        lv.driver = "qemu"
        lv.memory = 128
        lv.cpus = 1
        lv.kernel = "$guest/vmlinux"
        lv.initrd = "$guest/initrd-boot.gz"
        lv.cmd_line = "$cmdline"
        lv.graphics_type = "none"
        lv.video_type = "none"
        lv.management_network_address = "10.79.0.0/24"
        lv.management_network_mode = "none"
      end
    end
  end
end
VF
  vagrant_ready=1
fi
run_vagrant() {
  sampler_start; local t0 t1 ok i names=()
  t0=$(now)
  (cd "$vd/proj" && in_ns vagrant up --parallel > "$work/vagrant-up.log" 2>&1) || echo "vagrant up failed: see $work/vagrant-up.log" >&2
  for i in $(seq 1 "$N"); do names+=("proj_vg$i"); done
  ok=$(wait_ssh "${names[@]}"); t1=$(now)
  record vagrant "$1" "$t0" "$t1" "$ok"
  (cd "$vd/proj" && in_ns vagrant destroy -f >/dev/null 2>&1)
}

# ---- warm-up, untimed: the first VM a fresh libvirtd starts pays for its qemu capability probe and
# a cold page cache of the guest files; without this, whichever tool runs first in round 1 pays it.
labctl create --count 1 --lab-dir "$lab" >/dev/null 2>&1 || echo "warm-up create failed" >&2
labctl destroy --all --yes --lab-dir "$lab" >/dev/null 2>&1

# ---- rounds ----
for round in $(seq 1 "$rounds"); do
  for tool in $tools; do
    case $tool in
      labctl) run_labctl "$round" ;;
      labctl-static) run_labctl_static "$round" ;;
      virt-clone) command -v virt-clone >/dev/null && run_loop "$round" ;;
      vagrant) [ "$vagrant_ready" = 1 ] && run_vagrant "$round" ;;
    esac
  done
done

# ---- per-VM provisioning overhead: disk + define, no start; marginal cost per VM ----
overhead() { # label command-for-count
  local t1a t1b tNa tNb
  t1a=$(now); $2 1; t1b=$(now); $3
  tNa=$(now); $2 "$N"; tNb=$(now); $3
  printf 'overhead\t%s\t1 VM %.2f s\t%s VMs %.2f s\tper extra VM %.0f ms\n' "$1" "$(secs "$t1a" "$t1b")" "$N" "$(secs "$tNa" "$tNb")" \
    "$(echo "($(secs "$tNa" "$tNb") - $(secs "$t1a" "$t1b")) * 1000 / ($N - 1)" | bc -l)" | tee -a "$results"
}
labctl_define() { labctl create --count "$1" --no-start --lab-dir "$lab" >/dev/null 2>&1; }
labctl_undefine() { labctl destroy --all --yes --lab-dir "$lab" >/dev/null 2>&1; }
loop_define() { local i; for i in $(seq 1 "$1"); do loop_provision "$i"; done; }
virsh_define() { # the leanest scripted way: qemu-img + virsh define
  local i name
  for i in $(seq 1 "$1"); do
    name=$(printf 'vd-%02d' "$i")
    qemu-img create -q -f qcow2 -b "$guest/golden.vhd" -F vpc "$loopdir/$name.qcow2" &&
      template_xml "$name" "$loopdir/$name.qcow2" > "$loopdir/$name.xml" && "${V[@]}" define "$loopdir/$name.xml" >/dev/null
  done
}
virsh_undefine() {
  for d in $("${V[@]}" list --all --name | grep '^vd-'); do "${V[@]}" undefine "$d" >/dev/null 2>&1; done
  rm -f "$loopdir"/vd-*
}
overhead labctl labctl_define labctl_undefine
command -v virt-clone >/dev/null && overhead virt-clone loop_define loop_cleanup
overhead "qemu-img+virsh define" virsh_define virsh_undefine

if [ "${KEEP:-0}" != 1 ]; then
  "${V[@]}" destroy bench-tpl >/dev/null 2>&1; "${V[@]}" undefine bench-tpl >/dev/null 2>&1
  "${V[@]}" net-destroy vagrant-libvirt >/dev/null 2>&1; "${V[@]}" net-undefine vagrant-libvirt >/dev/null 2>&1
  for v in $("${V[@]}" vol-list default 2>/dev/null | awk '{print $1}'); do "${V[@]}" vol-delete "$v" --pool default >/dev/null 2>&1; done
  "${V[@]}" pool-destroy default >/dev/null 2>&1; "${V[@]}" pool-undefine default >/dev/null 2>&1
  "$root/scripts/testbed/kvm-down.sh" "$testbed" >&2
fi
echo "results: $results"
