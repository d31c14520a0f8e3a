#!/usr/bin/env bash
# Flatten benchmark (issue 7): a 2-level chain of a 2 GiB disk with 1 GiB allocated, flattened by
# labctl, against qemu-img convert of the same content from a single-level image (what qemu can
# read) and dd writing 2 GiB to the same disk, in the same run. Each timing includes the flush to
# disk (labctl and dd fdatasync; qemu-img is followed by sync) and starts from a cold page cache
# (drop_caches, root only; BENCH_DROP_CACHES=0 to skip). Median of RUNS (3). Peak memory from
# /usr/bin/time. labctl-lib is the same flatten called from a small node script (no CLI start-up).
# Usage: bench/vhd/bench.sh [WORKDIR]   (needs: qemu-img, built labctl)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${1:-$(mktemp -d /var/tmp/labctl-vhd-bench.XXXXXX)}
SIZE_MIB=${SIZE_MIB:-2048}
RUNS=${RUNS:-3}
FORMAT=${FORMAT:-vhd}
LABCTL="node $ROOT/packages/cli/bin/run.js"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT

cold() {
  sync
  if [ "${BENCH_DROP_CACHES:-1}" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}
# time_cmd NAME CMD...: prints "seconds maxrss_kib"
time_cmd() {
  local name=$1; shift
  cold
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$WORK/$name.rss" "$@" >/dev/null 2>"$WORK/$name.err" || { cat "$WORK/$name.err" >&2; exit 1; }
  sync
  end=$(date +%s.%N)
  echo "$(echo "$end - $start" | bc) $(tail -1 "$WORK/$name.rss")"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "bench: making inputs in $WORK (${SIZE_MIB} MiB, half data, $FORMAT)" >&2
(cd "$ROOT/packages/vhd" && node "$HERE/make-chain.mjs" "$WORK" "$SIZE_MIB" "$FORMAT") > "$WORK/inputs.json"
CHILD=$WORK/child.$FORMAT; SINGLE=$WORK/single.$FORMAT
QFMT=$([ "$FORMAT" = vhd ] && echo vpc || echo vhdx)
QOPT=$([ "$FORMAT" = vhd ] && echo "subformat=dynamic,force_size=on" || echo "subformat=dynamic,block_size=2M")

declare -A T M
for i in $(seq 1 "$RUNS"); do
  rm -f "$WORK"/out-*
  read -r t m < <(time_cmd labctl $LABCTL vhd flatten "$CHILD" -o "$WORK/out-labctl.$FORMAT"); T[labctl]+="$t "; M[labctl]+="$m "
  qemu-img compare -q -f "$QFMT" -F "$QFMT" "$SINGLE" "$WORK/out-labctl.$FORMAT" || { echo "bench: labctl output differs from the source" >&2; exit 1; }
  rm -f "$WORK/out-lib.$FORMAT"
  read -r t m < <(time_cmd labctl-lib node "$HERE/flatten-lib.mjs" "$CHILD" "$WORK/out-lib.$FORMAT"); T[labctl-lib]+="$t "; M[labctl-lib]+="$m "
  read -r t m < <(time_cmd labctl-raw $LABCTL vhd flatten "$CHILD" -o "$WORK/out-labctl.raw"); T[labctl-raw]+="$t "; M[labctl-raw]+="$m "
  read -r t m < <(time_cmd qemu qemu-img convert -f "$QFMT" -O "$QFMT" -o "$QOPT" "$SINGLE" "$WORK/out-qemu.$FORMAT"); T[qemu]+="$t "; M[qemu]+="$m "
  read -r t m < <(time_cmd qemu-raw qemu-img convert -f "$QFMT" -O raw "$SINGLE" "$WORK/out-qemu.raw"); T[qemu-raw]+="$t "; M[qemu-raw]+="$m "
  read -r t m < <(time_cmd dd dd if=/dev/zero of="$WORK/out-dd.raw" bs=4M count=$((SIZE_MIB / 4)) conv=fdatasync); T[dd]+="$t "; M[dd]+="$m "
done
DATA_MIB=$((SIZE_MIB / 2))
printf '| op | median s | runs s | MiB/s (of data) | peak RSS MiB |\n| --- | --- | --- | --- | --- |\n'
for k in labctl labctl-lib labctl-raw qemu qemu-raw dd; do
  med=$(echo "${T[$k]}" | tr ' ' '\n' | grep . | median)
  rss=$(echo "${M[$k]}" | tr ' ' '\n' | grep . | sort -n | tail -1)
  mib=$([ "$k" = dd ] && echo "$SIZE_MIB" || echo "$DATA_MIB")
  printf '| %s | %.2f | %s | %.0f | %.0f |\n' "$k" "$med" "$(echo "${T[$k]}" | xargs printf '%.2f ')" "$(echo "$mib / $med" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
done
