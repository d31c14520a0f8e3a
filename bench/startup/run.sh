#!/usr/bin/env bash
# shellcheck disable=SC2016 # the node -e programs are JavaScript, not shell
# Start-up time of labctl commands, against node alone and virsh, and Ansible reading the lab through
# labctl's --script inventory (a Node start per run) against the labctl.lab inventory plugin (none).
#   bench/startup/run.sh [ROUNDS=15]
# Interleaved rounds (every command once per round, the order turning), wall time per run, median
# and spread per command, the load average before each round. Needs a built tree (scripts/setup.sh).
set -euo pipefail
rounds=${1:-15}
repo=$(cd "$(dirname "$0")/../.." && pwd)
labctl=("node" "$repo/packages/cli/bin/run.js")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
lab="$work/lab"; mkdir -p "$lab/.labctl"
# A lab of 50 running VMs with addresses and pinned keys (no hypervisor is asked by these commands).
node -e '
const vms = [];
for (let i = 1; i <= 50; i++) vms.push({ name: `web-${String(i).padStart(2, "0")}`, group: i % 2 ? "web" : "db",
  provider: "manual", state: "running", addresses: [`192.0.2.${i}`],
  ssh: { user: "root", hostKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"] } });
require("fs").writeFileSync(process.argv[1], JSON.stringify({ version: 1, lab: "bench", vms }));' "$lab/.labctl/state.json"
printf 'lab: bench\ngroups:\n  web: { vars: { http_port: 8080 } }\n  db: {}\n' > "$lab/labctl.yaml"
"${labctl[@]}" inventory --lab-dir "$lab" --script "$work/inventory.sh" >/dev/null
printf 'plugin: labctl.lab.labctl\nlab_dir: %s\n' "$lab" > "$work/lab.labctl.yml"
export ANSIBLE_COLLECTIONS_PATH="$repo/ansible/collections" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp"

names=(node-alone virsh-version labctl--version labctl-version labctl-inventory-list labctl-list-offline ansible-via-script ansible-via-plugin)
run_one() {
  case "$1" in
    node-alone) node -e 0 ;;
    virsh-version) if command -v virsh >/dev/null; then virsh --version; else return 0; fi ;;
    labctl--version) "${labctl[@]}" --version ;;
    labctl-version) "${labctl[@]}" version ;;
    labctl-inventory-list) "${labctl[@]}" inventory --list --lab-dir "$lab" ;;
    labctl-list-offline) "${labctl[@]}" list --offline --lab-dir "$lab" ;;
    ansible-via-script) ansible-inventory -i "$work/inventory.sh" --list ;;
    ansible-via-plugin) ansible-inventory -i "$work/lab.labctl.yml" --list ;;
  esac
}
# Warm the page cache once: the rounds measure start-up, not the first read from disk.
for name in "${names[@]}"; do run_one "$name" >/dev/null 2>&1; done
: > "$work/times"
for round in $(seq 1 "$rounds"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  n=${#names[@]}
  for k in $(seq 0 $((n - 1))); do
    name=${names[$(((k + round) % n))]}
    start=$(date +%s%N)
    run_one "$name" >/dev/null 2>&1
    end=$(date +%s%N)
    echo "$name $(((end - start) / 1000)) $load" >> "$work/times"
  done
done
node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" "));
const by = new Map();
for (const [name, us, load] of rows) { if (!by.has(name)) by.set(name, { t: [], load: [] }); by.get(name).t.push(Number(us) / 1e6); by.get(name).load.push(Number(load)); }
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
console.log(`| command | median s | min s | max s | load avg (min-max) |`);
console.log(`|---|---|---|---|---|`);
for (const [name, { t, load }] of by)
  console.log(`| ${name} | ${med(t).toFixed(3)} | ${Math.min(...t).toFixed(3)} | ${Math.max(...t).toFixed(3)} | ${Math.min(...load).toFixed(2)}-${Math.max(...load).toFixed(2)} |`);
' "$work/times"
echo "rounds: $rounds, interleaved; $(nproc) CPUs; node $(node --version)"
