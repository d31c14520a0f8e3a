#!/usr/bin/env bash
# Puts labctl on PATH: a link to the built binary (packages/cli/bin/run.js) in LABCTL_BIN_DIR,
# default /usr/local/bin as root, else ~/.local/bin. Re-running replaces only its own link; a
# labctl there that is not a link (installed otherwise, or the user's) is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${LABCTL_BIN_DIR:-}
if [ -z "$bin_dir" ]; then if [ "$(id -u)" = 0 ]; then bin_dir=/usr/local/bin; else bin_dir="$HOME/.local/bin"; fi; fi
target="$PWD/packages/cli/bin/run.js"
mkdir -p "$bin_dir"
if [ -e "$bin_dir/labctl" ] && [ ! -L "$bin_dir/labctl" ]; then
  echo "setup: $bin_dir/labctl exists and is not a link; left alone (run $target, or npx labctl)"
  exit 0
fi
ln -sfn "$target" "$bin_dir/labctl"
echo "setup: labctl -> $target in $bin_dir"
case ":$PATH:" in *":$bin_dir:"*) ;; *) echo "setup: add $bin_dir to PATH to type labctl" ;; esac
