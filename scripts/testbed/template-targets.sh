#!/usr/bin/env bash
# Fake distribution roots for template-prep tests, laid over running ssh-hosts.sh hosts.
#   scripts/testbed/template-targets.sh up SSH_DIR INDEX FLAVOR      FLAVOR: centos7 | debian12 | alpine
# Builds SSH_DIR/root<INDEX>/{etc,var,tmp,root,home,standins} and bind-mounts them over /etc, /var,
# /tmp, /root, /home and /usr/local/sbin inside host <INDEX>'s own mount namespace (ssh-hosts.sh
# starts each sshd in one), so every SSH session of that host sees a CentOS 7 look-alike whose files
# the test reads on the real filesystem afterwards. SSH_DIR must not be under /tmp (it is replaced).
# CentOS tools do not exist here: root<INDEX>/standins holds STAND-INS for yum, rpm, firewall-cmd,
# systemctl, apt-get and dpkg-query that keep state under .state/ and append every call to .state/calls.log.
# Needs root and nsenter. The mounts vanish with the sshd (ssh-hosts.sh down).
set -euo pipefail
cmd=${1:?usage: template-targets.sh up SSH_DIR INDEX FLAVOR}; dir=${2:?SSH_DIR}; i=${3:?INDEX}; flavor=${4:-centos7}
[ "$cmd" = up ] || { echo "usage: template-targets.sh up SSH_DIR INDEX FLAVOR" >&2; exit 2; }
root="$dir/root$i"; pid=$(cat "$dir/h$i/sshd.pid")
rm -rf "$root"; mkdir -p "$root"

# /etc: the real one (users, sudoers, PAM made by ssh-hosts.sh) plus the distribution's files.
cp -a /etc "$root/etc"
cp "$dir/h$i/hosts" "$root/etc/hosts"
rm -f "$root/etc/resolv.conf"; echo "nameserver 127.0.0.1" > "$root/etc/resolv.conf"
rm -f "$root/etc/os-release"
case "$flavor" in
  centos7) printf '%s\n' 'NAME="CentOS Linux"' 'VERSION="7 (Core)"' 'ID="centos"' 'ID_LIKE="rhel fedora"' 'VERSION_ID="7"' \
             'PRETTY_NAME="CentOS Linux 7 (Core)"' > "$root/etc/os-release" ;;
  debian12) printf '%s\n' 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' 'NAME="Debian GNU/Linux"' 'VERSION_ID="12"' 'ID=debian' > "$root/etc/os-release" ;;
  alpine) printf '%s\n' 'NAME="Alpine Linux"' 'ID=alpine' 'VERSION_ID=3.20.3' 'PRETTY_NAME="Alpine Linux v3.20"' > "$root/etc/os-release" ;;
  *) echo "template-targets.sh: unknown flavor $flavor" >&2; exit 2 ;;
esac
mkdir -p "$root/etc/sysconfig/network-scripts" "$root/etc/udev/rules.d" "$root/etc/ssh"
echo "# Created by anaconda" > "$root/etc/sysconfig/network"
cat > "$root/etc/sysconfig/network-scripts/ifcfg-eth0" <<'F'
TYPE=Ethernet
BOOTPROTO=dhcp
NAME=eth0
UUID=5fb06bd0-0bb0-7ffb-45f1-d6edd65f3e03
DEVICE=eth0
ONBOOT=no
HWADDR=00:15:5d:01:02:03
NM_CONTROLLED=yes
F
printf '%s\n' 'DEVICE=ens3' 'HWADDR=00:15:5d:0a:0b:0c' 'ONBOOT=no' > "$root/etc/sysconfig/network-scripts/ifcfg-ens3"
printf '%s\n' 'DEVICE=lo' 'IPADDR=127.0.0.1' 'ONBOOT=yes' 'NAME=loopback' > "$root/etc/sysconfig/network-scripts/ifcfg-lo"
echo 'SUBSYSTEM=="net", ATTR{address}=="00:15:5d:01:02:03", NAME="eth0"' > "$root/etc/udev/rules.d/70-persistent-net.rules"
for k in rsa ecdsa ed25519; do echo "template $k key" > "$root/etc/ssh/ssh_host_${k}_key"; echo "template $k pub" > "$root/etc/ssh/ssh_host_${k}_key.pub"; done
echo 4c4c4544004d3510804bb2c04f4e3232 > "$root/etc/machine-id"

# /var: logs (current and rotated), leases, yum cache, random seed; /var/run and /var/lock stay /run's.
mkdir -p "$root/var/log/audit" "$root/var/lib/dhclient" "$root/var/lib/NetworkManager" "$root/var/lib/systemd" \
  "$root/var/lib/dbus" "$root/var/cache/yum/x86_64/7/base/packages" "$root/var/tmp" "$root/var/lib/sudo"
ln -s /run "$root/var/run"; ln -s /run/lock "$root/var/lock"
for f in messages secure cron yum.log boot.log audit/audit.log; do echo "template $f line" > "$root/var/log/$f"; done
echo old > "$root/var/log/messages-20260101"; echo old > "$root/var/log/secure-20260101"; echo old > "$root/var/log/audit/audit.log.1"
: > "$root/var/log/wtmp"; : > "$root/var/log/lastlog"
echo 'lease { fixed-address 10.0.0.5; }' > "$root/var/lib/dhclient/dhclient--eth0.lease"
echo 'lease' > "$root/var/lib/NetworkManager/internal-eth0.lease"
echo seed > "$root/var/lib/random-seed"; echo seed > "$root/var/lib/systemd/random-seed"
echo 4c4c4544004d3510804bb2c04f4e3232 > "$root/var/lib/dbus/machine-id"
echo rpm > "$root/var/cache/yum/x86_64/7/base/packages/bash-4.2.46.rpm"; echo xml > "$root/var/cache/yum/x86_64/7/base/repomd.xml"
echo tmp > "$root/var/tmp/leftover"
mkdir -p "$root/var/lib/dhcp" "$root/var/cache/apt/archives/partial"
echo lease > "$root/var/lib/dhcp/dhclient.eth0.leases"; echo deb > "$root/var/cache/apt/archives/bash_5.2.15-2_amd64.deb"

mkdir -p "$root/tmp/.X11-unix" "$root/tmp/systemd-private-abc-chronyd.service-x" "$root/root" "$root/home"
echo junk > "$root/tmp/ks-script-abc"; chmod 1777 "$root/tmp"; chmod 700 "$root/root"
echo 'yum -y update' > "$root/root/.bash_history"
for u in labctl-np labctl-pw; do
  mkdir -p "$root/home/$u"; echo 'sudo -i' > "$root/home/$u/.bash_history"; chown -R "$u:$u" "$root/home/$u"
done

# STAND-INS for CentOS's tools: record the call, keep state, answer like the real tool.
s="$root/standins"; mkdir -p "$s/.state"
echo 'kernel-3.10.0-1160.119.1.el7' > "$s/.state/updates-pending"
printf '%s\n' bash-4.2.46 openssh-server-7.4p1 firewalld-0.6.3 > "$s/.state/rpmdb"
: > "$s/.state/firewall-permanent"; : > "$s/.state/firewall-runtime"; : > "$s/.state/enabled"; : > "$s/.state/calls.log"
cat > "$s/yum" <<'F'
#!/bin/bash
# STAND-IN for yum (test target): records calls, keeps an rpm list and a pending-updates flag.
st=/usr/local/sbin/.state; echo "yum $*" >> $st/calls.log
args=" $* "
case "$args" in
  *" clean all "*) find /var/cache/yum -mindepth 1 -delete; echo "Cleaning repos: base updates" ;;
  *" check-update "*) if [ -s $st/updates-pending ]; then cat $st/updates-pending; exit 100; fi; exit 0 ;;
  *" update "*) mkdir -p /var/cache/yum/x86_64/7/updates/packages; cp $st/updates-pending /var/cache/yum/x86_64/7/updates/packages/ 2>/dev/null; : > $st/updates-pending; echo "Complete!" ;;
  *" install "*) pkg=${*: -1}; grep -qx "$pkg" $st/rpmdb || echo "$pkg" >> $st/rpmdb
     mkdir -p /var/cache/yum/x86_64/7/base/packages; echo rpm > "/var/cache/yum/x86_64/7/base/packages/$pkg.rpm"; echo "Complete!" ;;
  *) echo "yum stand-in: unsupported: $*" >&2; exit 1 ;;
esac
F
cat > "$s/rpm" <<'F'
#!/bin/bash
# STAND-IN for rpm -q (test target).
st=/usr/local/sbin/.state; echo "rpm $*" >> $st/calls.log
[ "$1" = -q ] || { echo "rpm stand-in: unsupported: $*" >&2; exit 1; }
if grep -qx "$2" $st/rpmdb; then echo "$2-0.29.el7.x86_64"; else echo "package $2 is not installed"; exit 1; fi
F
cat > "$s/firewall-cmd" <<'F'
#!/bin/bash
# STAND-IN for firewall-cmd (test target): runtime and permanent port lists; --reload copies permanent to runtime.
st=/usr/local/sbin/.state; echo "firewall-cmd $*" >> $st/calls.log
set_file=$st/firewall-runtime; action=""; port=""
for a in "$@"; do
  case "$a" in
    --permanent) set_file=$st/firewall-permanent ;;
    --zone=*) ;;
    --add-port=*) action=add; port=${a#--add-port=} ;;
    --query-port=*) action=query; port=${a#--query-port=} ;;
    --reload) cp $st/firewall-permanent $st/firewall-runtime; echo success; exit 0 ;;
    --state) echo running; exit 0 ;;
    *) echo "firewall-cmd stand-in: unsupported: $a" >&2; exit 2 ;;
  esac
done
case "$action" in
  add) grep -qx "$port" "$set_file" || echo "$port" >> "$set_file"; echo success ;;
  query) if grep -qx "$port" "$set_file"; then echo yes; else echo no; exit 1; fi ;;
  *) echo "firewall-cmd stand-in: nothing to do" >&2; exit 2 ;;
esac
F
cat > "$s/systemctl" <<'F'
#!/bin/bash
# STAND-IN for systemctl (test target): is-enabled / enable [--now] / start / poweroff.
st=/usr/local/sbin/.state; echo "systemctl $*" >> $st/calls.log
verb=$1; shift; units=()
for a in "$@"; do case "$a" in --quiet|--now) ;; *) units+=("$a") ;; esac; done
case "$verb" in
  is-enabled) for u in "${units[@]}"; do grep -qx "$u" $st/enabled || { [[ " $* " == *" --quiet "* ]] || echo disabled; exit 1; }; done
              [[ " $* " == *" --quiet "* ]] || echo enabled ;;
  enable) for u in "${units[@]}"; do grep -qx "$u" $st/enabled || echo "$u" >> $st/enabled; done ;;
  start|poweroff) ;;
  *) echo "systemctl stand-in: unsupported: $verb" >&2; exit 1 ;;
esac
F
cat > "$s/apt-get" <<'F'
#!/bin/bash
# STAND-IN for apt-get (test target): pending upgrades flag, installed list, archive cache.
st=/usr/local/sbin/.state; echo "apt-get $*" >> $st/calls.log
args=" $* "
case "$args" in
  *" -s "*) if [ -s $st/updates-pending ]; then echo "Inst linux-image-amd64 [6.1.0-1] (6.1.0-2 Debian:12)"; fi ;;
  *" update "*) echo "Reading package lists..." ;;
  *" upgrade "*) : > $st/updates-pending; echo upgraded > /var/cache/apt/archives/linux-image-amd64_6.1.0-2_amd64.deb ;;
  *" install "*) pkg=${*: -1}; grep -qx "$pkg" $st/rpmdb || echo "$pkg" >> $st/rpmdb; echo deb > "/var/cache/apt/archives/${pkg}_6.1_amd64.deb" ;;
  *" clean "*) rm -f /var/cache/apt/archives/*.deb ;;
  *) echo "apt-get stand-in: unsupported: $*" >&2; exit 100 ;;
esac
F
cat > "$s/dpkg-query" <<'F'
#!/bin/bash
# STAND-IN for dpkg-query -W -f='${Status}' PKG (test target).
st=/usr/local/sbin/.state; echo "dpkg-query $*" >> $st/calls.log
pkg=${*: -1}
if grep -qx "$pkg" $st/rpmdb; then printf 'install ok installed'; else echo "dpkg-query: no packages found matching $pkg" >&2; exit 1; fi
F
chmod 755 "$s" "$s/yum" "$s/rpm" "$s/firewall-cmd" "$s/systemctl" "$s/apt-get" "$s/dpkg-query"

# The marker lets tests confirm, over SSH, that a session sees this root and not the real machine.
echo "$root" > "$root/etc/labctl-template-target"
nsenter -t "$pid" -m sh -c "
  mount --bind '$root/etc' /etc && mount --bind '$root/var' /var && mount --bind '$root/tmp' /tmp &&
  mount --bind '$root/root' /root && mount --bind '$root/home' /home && mount --bind '$s' /usr/local/sbin"
seen=$(nsenter -t "$pid" -m cat /etc/labctl-template-target 2>/dev/null || true)
[ "$seen" = "$root" ] || { echo "template-targets.sh: host $i (sshd $pid) does not see $root after mounting" >&2; exit 1; }
echo "template-targets: host $i is a $flavor look-alike at $root"
