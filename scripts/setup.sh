#!/usr/bin/env bash
# Install what labctl's build, demo and tests need on a fresh Debian 12 machine. Safe to re-run:
# packages already present are not fetched again. Debian packages need root; without root only the
# npm part runs (tests that need the missing parts then skip and say why).
#   ./scripts/setup.sh            # Debian packages + npm packages + build, labctl on PATH
#   ./scripts/setup.sh --minimal  # only what the CLI needs to run (no Samba, kernel, test beds, PowerShell)
#   SETUP_APT=0 ./scripts/setup.sh  # npm + build only
# labctl goes on PATH as a link to the built binary: /usr/local/bin/labctl as root, else
# ~/.local/bin/labctl (LABCTL_BIN_DIR=DIR chooses). An existing labctl that is not such a link is
# left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
MINIMAL=0
for arg in "$@"; do
  case "$arg" in
    --minimal) MINIMAL=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

# One list for every real part the tests and the demo start (see design.md, "Testing with real parts").
DEBIAN_PACKAGES=(
  # Ansible inventories and SSH test hosts
  ansible-core openssh-server openssh-client sudo iproute2 procps
  # Template prep: the emitted bash script must pass shellcheck
  shellcheck
  # KVM/libvirt provider, demo golden image, isolated network
  qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients dnsmasq-base dnsmasq-utils
  netcat-openbsd  # remote libvirt over qemu+ssh://...?socket=: the ssh transport runs `nc -U SOCKET` on the host
  busybox-static dropbear-bin e2fsprogs cpio linux-image-amd64 syslinux syslinux-common mtools fdisk dosfstools ovmf python3
  libxml2-utils  # xmllint, for virt-xml-validate of generated domain XML
  # NoCloud seeds: xorriso reads labctl's ISO 9660 images; cloud-init's own code (unpacked below,
  # never installed as a service) needs these Python modules
  xorriso python3-yaml python3-jinja2 python3-jsonschema python3-configobj python3-jsonpatch python3-netifaces python3-requests
  # VHD oracle
  libvhdi-utils fuse3
  mount  # losetup: loop devices stand in for the volumes of a XenServer LVM SR
  zsh fish  # labctl completion: the scripts are tested under the real shells
  # Samba AD DC for Kerberos delegation tests
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules winbind python3-samba krb5-user ldb-tools ldap-utils smbclient openssl
)

# What the CLI itself runs: virsh (libvirt), qemu-img (disks, flatten checks), ssh (labctl ssh,
# qemu+ssh://), nc (the qemu+ssh transport). Everything else serves the tests, the demo or Samba.
MINIMAL_PACKAGES=(libvirt-clients qemu-utils openssh-client netcat-openbsd)
if [ "$MINIMAL" = 1 ]; then DEBIAN_PACKAGES=("${MINIMAL_PACKAGES[@]}"); fi

if [ "${SETUP_APT:-1}" = 1 ] && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
    # Keep package scripts from starting services (samba's nmbd, sshd on :22, libvirtd): the tests
    # start their own instances, bound to loopback or to namespaces they create.
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1; fi
    trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -o DPkg::Lock::Timeout=600 -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: Debian packages already installed"
  fi
elif [ "${SETUP_APT:-1}" = 1 ]; then
  echo "setup: not root, skipping Debian packages (${DEBIAN_PACKAGES[*]})"
fi

# cloud-init's own code reads labctl's seeds in the tests (schema, NoCloud datasource, network
# renderers). Unpacked from Debian's package into .tools, not installed: an installed cloud-init
# would run at this machine's next boot.
CLOUD_INIT_DIR=.tools/cloud-init
if [ "$MINIMAL" = 1 ]; then
  echo "setup: --minimal, skipping cloud-init's code (tests only)"
elif [ -f "$CLOUD_INIT_DIR/usr/lib/python3/dist-packages/cloudinit/__init__.py" ]; then
  echo "setup: cloud-init's code already unpacked ($CLOUD_INIT_DIR)"
elif command -v apt-get >/dev/null && [ "${SETUP_APT:-1}" = 1 ]; then
  echo "setup: cloud-init (Debian package, unpacked into $CLOUD_INIT_DIR)"
  work=$(mktemp -d)
  (cd "$work" && apt-get download -o DPkg::Lock::Timeout=600 cloud-init >/dev/null)
  mkdir -p "$CLOUD_INIT_DIR"
  dpkg-deb -x "$work"/cloud-init_*.deb "$CLOUD_INIT_DIR"
  rm -rf "$work"
  chmod -R a+rX .tools
else
  echo "setup: apt-get not available, skipping cloud-init (seed tests that need it will skip)"
fi

# PowerShell for the Hyper-V scripts' tests (run under a real engine against the simulator module in
# packages/hyperv/simulator). Not a Debian or npm package: NuGet serves it as a .NET tool. The exact
# version is pinned; without dotnet the tests that need pwsh skip and say so.
PWSH_VERSION=7.6.9
PWSH_DIR=.tools/pwsh
if [ "$MINIMAL" = 1 ]; then
  echo "setup: --minimal, skipping PowerShell (tests only; a Hyper-V host runs its own)"
elif [ -x "$PWSH_DIR/pwsh" ] && "$PWSH_DIR/pwsh" -NoProfile -NonInteractive -Command '$PSVersionTable.PSVersion.ToString()' 2>/dev/null | grep -qx "$PWSH_VERSION"; then
  echo "setup: PowerShell $PWSH_VERSION already installed ($PWSH_DIR/pwsh)"
elif command -v dotnet >/dev/null; then
  echo "setup: PowerShell $PWSH_VERSION from NuGet (dotnet tool) into $PWSH_DIR"
  rm -rf "$PWSH_DIR"
  DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet tool install --tool-path "$PWSH_DIR" PowerShell --version "$PWSH_VERSION" >/dev/null
  # The sshd testbed runs pwsh as an unprivileged test user.
  chmod -R a+rX .tools
else
  echo "setup: dotnet not found, skipping PowerShell (tests that need pwsh will skip)"
fi

echo "setup: npm packages"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
echo "setup: build"
npx turbo run build --output-logs=errors-only

# labctl on PATH, as the README types it.
scripts/link-bin.sh
