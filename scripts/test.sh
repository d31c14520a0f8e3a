#!/usr/bin/env bash
# Set up and run every labctl test: lint, type checks, unit/integration tests with real parts
# (sshd, Samba AD, ansible-core, libvirt+qemu, qemu-img, libvhdi), end-to-end tests.
# Ends with one summary line "test: N passed, N failed, N skipped"; exits non-zero on any failure
# or when no test ran.
#   ./scripts/test.sh                 # everything (root recommended: network namespaces, Samba, libvirt)
#   SETUP=0 ./scripts/test.sh         # skip ./scripts/setup.sh
#   ./scripts/test.sh --filter=@labctl/vhd   # one package (turbo filter syntax)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${SETUP:-1}" = 1 ]; then ./scripts/setup.sh || { echo "test: setup failed"; exit 1; }; fi

failed_steps=()
step() { local name=$1; shift; echo "== $name"; "$@" || failed_steps+=("$name"); }

step lint npx biome lint --diagnostic-level=error .
step typecheck npx turbo run typecheck --output-logs=errors-only

report_dir=$(mktemp -d /tmp/labctl-test-report.XXXXXX)
export LABCTL_TEST_REPORT_DIR=$report_dir
# Packages run one at a time: several start VMs or servers, and the machine has 2 cores.
step tests npx turbo run test --concurrency=1 --continue --output-logs=full "$@"

node scripts/test-summary.mjs "$report_dir" "${failed_steps[*]:-}"
