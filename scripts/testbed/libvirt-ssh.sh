#!/usr/bin/env bash
# An OpenSSH server in front of a test bed's libvirtd, so the libvirt provider can be tested through a
# remote URI (qemu+ssh:// and qemu+libssh://) exactly as it reaches a KVM host on another machine.
#   scripts/testbed/libvirt-ssh.sh up DIR NETNS PORT KVM_STATE_DIR
#   scripts/testbed/libvirt-ssh.sh down DIR
# sshd listens on 127.0.0.1:PORT inside network namespace NETNS (its own loopback: nothing is bound
# in the machine's network namespace), lets in root with DIR/client/id_ed25519 only, and serves the
# libvirt ssh transport, which runs `nc -U SOCKET` (netcat-openbsd) on the host for a ?socket= URI.
# Written into DIR: client/id_ed25519, host_ed25519_key(.pub), known_hosts ("[127.0.0.1]:PORT ..."),
# wrong_known_hosts (another key for the same host), sshd_config, sshd.log, sshd.pid, ssh.env with
#   LIBVIRT_SSH_URI     qemu+ssh://root@127.0.0.1:PORT/system?socket=...&keyfile=...&known_hosts=...
#   LIBVIRT_LIBSSH_URI  the same with qemu+libssh:// (which honours known_hosts=)
# Needs root (sshd, root login into the test bed's root-only libvirt socket).
set -euo pipefail
cmd=${1:?usage: libvirt-ssh.sh up DIR NETNS PORT KVM_STATE_DIR | down DIR}; dir=${2:?DIR}

pid_of() { # pidfile -> pid when it is a running sshd
  local pid; pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && echo "$pid"
}
if [ "$cmd" = down ]; then
  if pid=$(pid_of "$dir/sshd.pid"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/sshd.pid" "$dir/ssh.env"
  exit 0
fi
[ "$cmd" = up ] || { echo "usage: libvirt-ssh.sh up DIR NETNS PORT KVM_STATE_DIR | down DIR" >&2; exit 2; }
netns=${3:?NETNS}; port=${4:?PORT}; bed=${5:?KVM_STATE_DIR}
[ "$(id -u)" = 0 ] || { echo "libvirt-ssh.sh: needs root" >&2; exit 1; }
command -v nc >/dev/null || { echo "libvirt-ssh.sh: nc not found (netcat-openbsd); run scripts/setup.sh" >&2; exit 1; }
socket="$(cd "$bed" && pwd)/run/libvirt-sock"
[ -S "$socket" ] || { echo "libvirt-ssh.sh: no libvirtd socket at $socket; run scripts/testbed/kvm-up.sh first" >&2; exit 1; }

t0=$(date +%s%N)
mkdir -p "$dir/client" /run/sshd; dir=$(cd "$dir" && pwd)
[ -f "$dir/client/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C labctl-libvirt-test -f "$dir/client/id_ed25519"
[ -f "$dir/host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C libvirt-host -f "$dir/host_ed25519_key"
[ -f "$dir/other_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C not-the-host -f "$dir/other_ed25519_key"
cp "$dir/client/id_ed25519.pub" "$dir/authorized_keys"; chmod 600 "$dir/authorized_keys"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_ed25519_key.pub")" > "$dir/known_hosts"
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/other_ed25519_key.pub")" > "$dir/wrong_known_hosts"
cat > "$dir/sshd_config" <<C
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
UsePAM no
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
C
if ! pid_of "$dir/sshd.pid" >/dev/null; then
  ip netns exec "$netns" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
fi
for _ in $(seq 1 100); do
  ip netns exec "$netns" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.05
done
ip netns exec "$netns" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || { echo "libvirt-ssh.sh: sshd did not come up; see $dir/sshd.log" >&2; exit 1; }
query="socket=$socket&keyfile=$dir/client/id_ed25519&known_hosts=$dir/known_hosts"
{
  echo "LIBVIRT_SSH_URI='qemu+ssh://root@127.0.0.1:$port/system?$query'"
  echo "LIBVIRT_LIBSSH_URI='qemu+libssh://root@127.0.0.1:$port/system?$query'"
} > "$dir/ssh.env"
cat "$dir/ssh.env"
echo "libvirt-ssh: sshd pid $(cat "$dir/sshd.pid") on 127.0.0.1:$port in netns $netns in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >&2
