#!/usr/bin/env bash
# Flatten benchmark: a 2-level chain of a 2 GiB disk (1 GiB of data in the base, 512 MiB of it
# overwritten by the child, see make-chain.mjs) flattened by labctl, against qemu-img convert of the
# same content from a single-level image (qemu cannot read the chain) and dd writing 2 GiB, in the
# same run. Fair by construction:
# - the same durability: every command starts with its data out of the page cache (drop_caches,
#   root only; BENCH_DROP_CACHES=0 to skip; the programs themselves are read back first) and its
#   time includes a `sync` after it (qemu-img's default cache mode never flushes what it wrote;
#   labctl and dd fdatasync anyway);
# - interleaved rounds: the order of the tools turns every round;
# - the machine's load average is printed next to every number.
# Besides time, what does not depend on a noisy disk: the bytes the process read from and wrote to
# storage (/proc/PID/io, io-of.py) against the output's data, and its peak RSS.
# Usage: bench/vhd/bench.sh [WORKDIR]   (needs: qemu-img, python3, a built labctl)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${1:-$(mktemp -d /var/tmp/labctl-vhd-bench.XXXXXX)}
SIZE_MIB=${SIZE_MIB:-2048}
RUNS=${RUNS:-4}
FORMAT=${FORMAT:-vhd}
LABCTL="node $ROOT/packages/cli/bin/run.js"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

# Cold data, warm programs: the page cache is dropped, then every tool's own files are read again
# (each prints its version), so the bytes counted are the disks', not node's or qemu-img's.
cold() {
  sync
  if [ "${BENCH_DROP_CACHES:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
  $LABCTL --version >/dev/null
  (cd "$ROOT/packages/vhd" && node -e "import('@labctl/vhd/flatten')") >/dev/null
  qemu-img --version >/dev/null
  dd --version >/dev/null
}
# run_one NAME CMD...: appends "seconds read_bytes write_bytes maxrss_kib load" to $WORK/NAME.runs
run_one() {
  local name=$1; shift
  rm -f "$WORK"/out-*
  cold
  local load start end
  load=$(cut -d' ' -f1 /proc/loadavg)
  start=$(date +%s.%N)
  python3 "$HERE/io-of.py" "$@" 3>"$WORK/$name.io" 2>"$WORK/$name.err" || { cat "$WORK/$name.err" >&2; exit 1; }
  sync
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) $(cat "$WORK/$name.io") $load" >> "$WORK/$name.runs"
}

echo "bench: making inputs in $WORK (${SIZE_MIB} MiB, $FORMAT)" >&2
(cd "$ROOT/packages/vhd" && node "$HERE/make-chain.mjs" "$WORK" "$SIZE_MIB" "$FORMAT") > "$WORK/inputs.json"
DATA=$(node -e "console.log(JSON.parse(require('fs').readFileSync(process.argv[1])).dataBytes)" "$WORK/inputs.json")
CHILD=$WORK/child.$FORMAT; SINGLE=$WORK/single.$FORMAT
QFMT=$([ "$FORMAT" = vhd ] && echo vpc || echo vhdx)
QOPT=$([ "$FORMAT" = vhd ] && echo "subformat=dynamic,force_size=on" || echo "subformat=dynamic,block_size=2M")
TOOLS=(labctl labctl-lib labctl-raw qemu qemu-raw dd)
tool() {
  case $1 in
    labctl) run_one labctl $LABCTL vhd flatten "$CHILD" -o "$WORK/out-labctl.$FORMAT"
      qemu-img compare -q -f "$QFMT" -F "$QFMT" "$SINGLE" "$WORK/out-labctl.$FORMAT" || { echo "bench: labctl output differs" >&2; exit 1; } ;;
    labctl-lib) run_one labctl-lib node "$HERE/flatten-lib.mjs" "$CHILD" "$WORK/out-lib.$FORMAT" ;;
    labctl-raw) run_one labctl-raw $LABCTL vhd flatten "$CHILD" -o "$WORK/out-labctl.raw" ;;
    qemu) run_one qemu qemu-img convert -f "$QFMT" -O "$QFMT" -o "$QOPT" "$SINGLE" "$WORK/out-qemu.$FORMAT" ;;
    qemu-raw) run_one qemu-raw qemu-img convert -f "$QFMT" -O raw "$SINGLE" "$WORK/out-qemu.raw" ;;
    dd) run_one dd dd if=/dev/zero of="$WORK/out-dd.raw" bs=4M count=$((SIZE_MIB / 4)) conv=fdatasync ;;
  esac
}
for i in $(seq 1 "$RUNS"); do
  # Turn the order every round, so no tool always runs first (or right after another's writeback).
  n=${#TOOLS[@]}
  for k in $(seq 0 $((n - 1))); do tool "${TOOLS[$(( (k + i - 1) % n ))]}"; done
done
printf 'Output data: %d MiB. Times include a sync after the command, from a cold cache.\n\n' $((DATA / 1048576))
printf '| op | median s | runs s (load) | read MiB | written MiB | read / data | written / data | peak RSS MiB |\n|---|---|---|---|---|---|---|---|\n'
node - "$WORK" "$DATA" "${TOOLS[@]}" <<'JS'
const [work, data, ...tools] = process.argv.slice(2);
const { readFileSync } = require('node:fs');
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];
const MiB = 1024 * 1024;
for (const tool of tools) {
  const runs = readFileSync(`${work}/${tool}.runs`, 'utf8').trim().split('\n').map((line) => line.split(' ').map(Number));
  const [t, r, w] = [0, 1, 2].map((i) => median(runs.map((run) => run[i])));
  const peak = Math.max(...runs.map((run) => run[3]));
  const ratio = (bytes) => (tool === 'dd' ? '-' : (bytes / Number(data)).toFixed(3));
  const list = runs.map((run) => `${run[0].toFixed(2)} (${run[4]})`).join(' ');
  console.log(`| ${tool} | ${t.toFixed(2)} | ${list} | ${(r / MiB).toFixed(0)} | ${(w / MiB).toFixed(0)} | ${ratio(r)} | ${ratio(w)} | ${(peak / 1024).toFixed(0)} |`);
}
JS
