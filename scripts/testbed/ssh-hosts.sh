#!/usr/bin/env bash
# Real OpenSSH test hosts on loopback, for tests of SSH, Ansible and template preparation.
#   scripts/testbed/ssh-hosts.sh up DIR [N=2] [BASE_PORT=22100]
#   scripts/testbed/ssh-hosts.sh down DIR
# Host i listens on 127.0.0.1:(BASE_PORT+i) in its own UTS+mount namespace (hostname h<i>, private
# /etc/hosts and resolv.conf -> 127.0.0.1, so nothing it looks up leaves loopback). Each host has
# its own ed25519+rsa host keys. Users (created once, removed by `down`):
#   labctl-np  sudo without password      labctl-pw  sudo with password "LabPw-123"
# Written into DIR: client/id_ed25519 (authorized for both users), client/wrong_ed25519,
# known_hosts (every host's keys, "[127.0.0.1]:PORT keytype base64"), h<i>/{sshd_config,sshd.log,port},
# hosts.env (SSH_HOSTS_PORTS="p1 p2 ..."). Needs root (users, namespaces); prints one line when ready.
# SSH_HOSTS_NETNS_<i>=NS and SSH_HOSTS_ADDR_<i>=ADDR run host i in network namespace NS (made by the
# caller, e.g. scripts/testbed/ssh-jump.sh), listening on ADDR instead of 127.0.0.1.
set -euo pipefail
cmd=${1:?usage: ssh-hosts.sh up|down DIR [N] [BASE_PORT]}; dir=${2:?DIR}; n=${3:-2}; base=${4:-22100}
USERS=(labctl-np labctl-pw)

down() {
  for f in "$dir"/h*/launch.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); kill -TERM "$pid" 2>/dev/null || true; pkill -TERM -P "$pid" 2>/dev/null || true; rm -f "$f"
  done
  for f in "$dir"/h*/sshd.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; rm -f "$f"; done
  # Users are shared by every DIR: remove them only when no other ssh-hosts run is up.
  if ! pgrep -f 'sshd -D -f .*/h[0-9]+/sshd_config' >/dev/null 2>&1; then
    for u in "${USERS[@]}"; do id "$u" >/dev/null 2>&1 && userdel -r "$u" >/dev/null 2>&1 || true; done
    rm -f /etc/sudoers.d/labctl-test
  fi
}
if [ "$cmd" = down ]; then down; exit 0; fi
[ "$cmd" = up ] || { echo "usage: ssh-hosts.sh up|down DIR [N] [BASE_PORT]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "ssh-hosts.sh: needs root (test users, namespaces)" >&2; exit 1; }

t0=$(date +%s%N)
mkdir -p "$dir/client" "$dir/authorized_keys" /run/sshd
# sshd reads AuthorizedKeysFile as the user: the path must be traversable and the files readable.
chmod 755 "$dir" "$dir/authorized_keys"
[ -f "$dir/client/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C labctl-test -f "$dir/client/id_ed25519"
[ -f "$dir/client/wrong_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C not-authorized -f "$dir/client/wrong_ed25519"
for u in "${USERS[@]}"; do
  id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash "$u"
  cp "$dir/client/id_ed25519.pub" "$dir/authorized_keys/$u"; chmod 644 "$dir/authorized_keys/$u"
done
usermod -p '*' labctl-np                # no password, but not locked ("!" is refused by sshd)
echo 'labctl-pw:LabPw-123' | chpasswd
printf 'labctl-np ALL=(ALL) NOPASSWD: ALL\nlabctl-pw ALL=(ALL) ALL\nDefaults:labctl-pw !lecture\n' > /etc/sudoers.d/labctl-test
chmod 440 /etc/sudoers.d/labctl-test; visudo -cq -f /etc/sudoers.d/labctl-test
echo "nameserver 127.0.0.1" > "$dir/resolv.conf"

ports=()
: > "$dir/known_hosts"
for i in $(seq 1 "$n"); do
  h="$dir/h$i"; port=$((base + i)); mkdir -p "$h"; ports+=("$port"); echo "$port" > "$h/port"
  ns_var="SSH_HOSTS_NETNS_$i"; addr_var="SSH_HOSTS_ADDR_$i"
  ns=${!ns_var:-}; addr=${!addr_var:-127.0.0.1}; echo "$addr" > "$h/addr"; echo "$ns" > "$h/netns"
  [ -f "$h/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "h$i" -f "$h/ssh_host_ed25519_key"
  [ -f "$h/ssh_host_rsa_key" ] || ssh-keygen -q -t rsa -b 2048 -N '' -C "h$i" -f "$h/ssh_host_rsa_key"
  cat > "$h/sshd_config" <<C
Port $port
ListenAddress $addr
HostKey $h/ssh_host_ed25519_key
HostKey $h/ssh_host_rsa_key
PidFile $h/sshd.pid
AuthorizedKeysFile $dir/authorized_keys/%u
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers ${USERS[*]}
UsePAM no
PrintMotd no
Subsystem sftp internal-sftp
C
  printf '127.0.0.1 localhost\n127.0.1.1 h%s\n' "$i" > "$h/hosts"
  in_ns=(); [ -n "$ns" ] && in_ns=(ip netns exec "$ns")
  ( exec "${in_ns[@]}" unshare --uts --mount --propagation private sh -c \
      "mount --bind '$h/hosts' /etc/hosts; mount --bind '$dir/resolv.conf' /etc/resolv.conf; hostname h$i; exec /usr/sbin/sshd -D -f '$h/sshd_config' -E '$h/sshd.log'" ) &
  echo $! > "$h/launch.pid"
  for k in ed25519 rsa; do echo "[$addr]:$port $(cut -d' ' -f1,2 "$h/ssh_host_${k}_key.pub")" >> "$dir/known_hosts"; done
done
for i in $(seq 1 "$n"); do
  port=$(cat "$dir/h$i/port"); addr=$(cat "$dir/h$i/addr"); ns=$(cat "$dir/h$i/netns")
  in_ns=(); [ -n "$ns" ] && in_ns=(ip netns exec "$ns")
  for _ in $(seq 1 200); do "${in_ns[@]}" bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null && break; sleep 0.05; done
  "${in_ns[@]}" bash -c "exec 3<>/dev/tcp/$addr/$port" 2>/dev/null || { echo "ssh-hosts.sh: sshd on $addr port $port did not come up; see $dir/h$i/sshd.log" >&2; exit 1; }
done
echo "SSH_HOSTS_PORTS=\"${ports[*]}\"" > "$dir/hosts.env"
echo "ssh-hosts: $n up on ports ${ports[*]} in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
