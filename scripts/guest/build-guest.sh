#!/usr/bin/env bash
# Build labctl's tiny demo/test guest from Debian packages only (linux-image-amd64, busybox-static,
# dropbear-bin, e2fsprogs, cpio, qemu-utils; syslinux + mtools + dosfstools + fdisk for the bootable
# disk). About 2 s; cached: re-running with unchanged inputs does nothing.
#   scripts/guest/build-guest.sh OUTDIR
# Env: KVER (kernel version under /lib/modules; default: the newest), FORCE=1 (rebuild anyway).
#
# Written into OUTDIR (golden images are mode 0444: nothing should ever write them):
#   vmlinux          the kernel as an uncompressed ELF (PVH entry): ~2 s to /init under TCG instead of
#                    ~5 s for the bzImage, whose xz decompression is slow without KVM
#   vmlinuz          Debian's bzImage (for loaders that want one)
#   initrd-boot.gz   1.8 MB initramfs: loads virtio + ext4, mounts the root disk (default /dev/vda,
#                    kernel arg labctl.root=DEV) and switch_roots into it
#   initrd-full.gz   the whole guest as an initramfs (no disk at all)
#   golden.vhd       the root filesystem (ext4, 64 MiB) as a dynamic VHD (qemu-img vpc, force_size=on,
#                    so the virtual size stays exact); golden.vhdx and golden.qcow2: the same in those formats
#   bootdisk.vhd     self-contained bootable disk like a real Hyper-V golden VHD: MBR + syslinux and the
#                    kernel on a FAT partition, the same root on partition 2; no direct kernel boot needed
#   id_ed25519{,.pub}  SSH key pair; the public key is root's only authorized key in the guest (generated
#                    once, kept across rebuilds)
#   guest.env        KEY=VALUE facts for scripts and tests (paths, kernel version, default cmdline)
#
# Guest behaviour (busybox init, /etc/rc):
# - Identity from labctl's NoCloud seed: a disk (vdb..vdd) with an ISO 9660 filesystem labelled cidata.
#   The guest reads the seed's plain files as labctl's firstboot-seed step does on CentOS: hostname
#   (labctl-hostname), SSH host key (labctl-ssh-host-ed25519-key, converted with dropbearconvert), root's
#   authorized keys and the network (labctl-network: static address or DHCP). Keys and authorized keys
#   are applied once per instance-id (labctl-instance-id, remembered in /etc/labctl-instance-id).
#   Without a seed: the host name from cloud-init's SMBIOS serial `ds=nocloud;h=NAME;i=ID` (libvirt
#   `<sysinfo type='smbios'><system><entry name='serial'>...` plus `<os><smbios mode='sysinfo'/>`),
#   else labvm; a host key made at first boot; DHCP.
# - Network: eth0 (virtio-net) by DHCP with busybox udhcpc, which sends the hostname (option 12), so the
#   DHCP server's lease shows the VM's name. Retries forever, once a second.
# - SSH: dropbear on port 22, public-key login only (root). Host key: the seed's, else one ed25519 key made at first boot
#   with dropbearkey and stored in /etc/dropbear on the VM's own disk, so every VM (every overlay of the
#   golden image) has its own key, stable for the VM's whole life, across reboots; the golden image holds
#   no host key. (With initrd-full.gz and no disk the key is new at every boot.) Record it once, then
#   connect with StrictHostKeyChecking=yes.
# - Serial console (ttyS0) lines for harnesses: `LABCTL-HOSTKEY <name> ssh-ed25519 AAAA...` (the host key,
#   for pinning it out of band), `LABCTL-LEASE eth0 <ip>`, `LABCTL-READY <name> uptime=<s>` (DHCP started,
#   dropbear listening), `LABCTL-BOOTFAIL` (root disk not mountable).
# - ACPI power button (virsh shutdown; the domain needs <features><acpi/>) powers the guest off; `sudo` is a shim that just runs the command
#   (Vagrant uses sudo even as root). No Python: Ansible works with `-m raw` only.
# Needs root (or fakeroot, used automatically) so that guest files are owned by root.
set -euo pipefail
out=${1:?usage: build-guest.sh OUTDIR}
if [ "$(id -u)" != 0 ] && [ -z "${FAKEROOTKEY:-}" ]; then
  command -v fakeroot >/dev/null || { echo "build-guest.sh: needs root or fakeroot (guest files must be owned by root)" >&2; exit 1; }
  exec fakeroot -- "$0" "$@"
fi
script=$(readlink -f "$0")
kver=${KVER:-$(ls /lib/modules | sort -V | tail -1)}
moddir=/lib/modules/$kver
mkdir -p "$out"; out=$(cd "$out" && pwd)

# Modules in load order (dependencies first). Root-disk modules are also used by initrd-boot.gz.
DISK_MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk crc16 crc32c_generic mbcache jbd2 ext4"
GUEST_MODULES="$DISK_MODULES failover net_failover virtio_net virtio-rng button evdev cdrom isofs"
OUTPUTS=(vmlinux vmlinuz initrd-boot.gz initrd-full.gz golden.vhd golden.vhdx golden.qcow2 bootdisk.vhd id_ed25519 id_ed25519.pub guest.env)
CMDLINE='console=ttyS0 quiet panic=-1'

exec 9>"$out/.build.lock"; flock 9   # concurrent builds into the same OUTDIR wait for each other
[ -f "$out/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C labctl-guest -f "$out/id_ed25519"

module_file() { # module name -> path of its .ko (.ko.xz/.ko.zst) under $moddir
  local rel; rel=$(grep -E "/$1\.ko(\.xz|\.zst)?:" "$moddir/modules.dep" | head -1 | cut -d: -f1)
  [ -n "$rel" ] || { echo "build-guest.sh: kernel module $1 not found in $moddir" >&2; exit 1; }
  echo "$moddir/$rel"
}
dropbear_libs() { for bin in /usr/sbin/dropbear /usr/bin/dropbearkey /usr/bin/dropbearconvert; do ldd "$bin"; done | grep -o '/[^ ]*' | sort -u; }
inputs_hash() {
  local files=("$script" "/boot/vmlinuz-$kver" /bin/busybox /usr/sbin/dropbear /usr/bin/dropbearkey /usr/bin/dropbearconvert "$out/id_ed25519.pub"
    /usr/lib/syslinux/mbr/mbr.bin)
  for m in $GUEST_MODULES; do files+=("$(module_file "$m")"); done
  for lib in $(dropbear_libs); do files+=("$(readlink -f "$lib")"); done
  { echo "$kver"; sha256sum "${files[@]}" 2>/dev/null | cut -d' ' -f1; qemu-img --version | head -1; } | sha256sum | cut -d' ' -f1
}
hash=$(inputs_hash)
up_to_date=1
[ "${FORCE:-0}" = 1 ] && up_to_date=0
[ "$(cat "$out/.stamp" 2>/dev/null)" = "$hash" ] || up_to_date=0
for f in "${OUTPUTS[@]}"; do [ -s "$out/$f" ] || up_to_date=0; done
if [ "$up_to_date" = 1 ]; then echo "build-guest: $out is up to date"; exit 0; fi

t0=$(date +%s%N)
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
cp "/boot/vmlinuz-$kver" vmlinuz
# Debian's bzImage carries the kernel ELF as an xz stream; CONFIG_PVH=y lets QEMU boot that ELF directly.
python3 - vmlinuz vmlinux <<'PY'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
start = data.find(b'\xfd7zXZ\x00')
assert start > 0, 'no xz payload in the bzImage'
open(sys.argv[2], 'wb').write(lzma.LZMADecompressor().decompress(data[start:]))
PY

# ---- the guest root filesystem ----
R=$work/rootfs
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/dropbear,etc/acpi/PWRF,proc,sys,dev,run,tmp,root/.ssh,lib/modules,var/log,mnt}
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do [ -e "$R/bin/$applet" ] || ln -s busybox "$R/bin/$applet"; done
cp /usr/sbin/dropbear "$R/usr/sbin/"; cp /usr/bin/dropbearkey /usr/bin/dropbearconvert "$R/usr/bin/"
for lib in $(dropbear_libs); do
  mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
done
for m in $GUEST_MODULES; do
  f=$(module_file "$m")
  case $f in
    *.xz) xz -dc "$f" > "$R/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" > "$R/lib/modules/$m.ko" ;;
    *) cp "$f" "$R/lib/modules/$m.ko" ;;
  esac
done
echo "$GUEST_MODULES" > "$R/lib/modules/order"
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:*:0:0:99999:7:::' > "$R/etc/shadow"
echo 'root:x:0:' > "$R/etc/group"
echo '/bin/sh' > "$R/etc/shells"
printf '127.0.0.1 localhost\n' > "$R/etc/hosts"
printf 'ID=labtiny\nNAME="labctl tiny guest"\nPRETTY_NAME="labctl tiny guest (busybox + dropbear)"\n' > "$R/etc/os-release"
cat > "$R/bin/sudo" <<'EOF'
#!/bin/sh
# sudo shim: everything already runs as root; skip sudo's options and run the command.
while [ $# -gt 0 ]; do case $1 in -u|-g|-p|-C) shift 2 ;; --) shift; break ;; -*) shift ;; *) break ;; esac; done
exec "$@"
EOF
cp "$out/id_ed25519.pub" "$R/root/.ssh/authorized_keys"
chmod 700 "$R/root" "$R/root/.ssh"; chmod 600 "$R/root/.ssh/authorized_keys"; chmod 755 "$R/bin/sudo"
chmod 700 "$R/etc/dropbear"

cat > "$R/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# udhcpc hook: put the lease on the interface and tell the console.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    echo "LABCTL-LEASE $interface $ip" > /dev/console ;;
esac
exit 0
EOF
printf '#!/bin/sh\nexec poweroff\n' > "$R/etc/acpi/PWRF/00000080"
chmod 755 "$R/etc/udhcpc.script" "$R/etc/acpi/PWRF/00000080"

cat > "$R/etc/rc" <<'EOF'
#!/bin/sh
# Boot: runs as busybox init's sysinit, from the root disk or as the whole initramfs.
mount -t proc proc /proc 2>/dev/null; mount -t sysfs sys /sys 2>/dev/null
mount -t devtmpfs dev /dev 2>/dev/null; mkdir -p /dev/pts; mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko 2>/dev/null; done
name=labvm
key=/etc/dropbear/dropbear_ed25519_host_key
# Without a seed: cloud-init's NoCloud serial (ds=nocloud;h=NAME;i=ID) names the VM.
serial=$(cat /sys/class/dmi/id/product_serial 2>/dev/null)
case "$serial" in
  ds=nocloud*) for part in $(echo "$serial" | tr ';' ' '); do case $part in h=*) name=${part#h=} ;; esac; done ;;
esac
# labctl's NoCloud seed: a disk with an ISO 9660 filesystem holding labctl-hostname.
mkdir -p /run/seed
seeded=0
for dev in /dev/vdb /dev/vdc /dev/vdd; do
  [ -b "$dev" ] || continue
  mount -t iso9660 -o ro "$dev" /run/seed 2>/dev/null || continue
  if [ -f /run/seed/labctl-hostname ]; then seeded=1; break; fi
  umount /run/seed
done
mode=dhcp; addr=; prefix=; gw=
if [ "$seeded" = 1 ]; then
  read -r name < /run/seed/labctl-hostname
  read -r iid < /run/seed/labctl-instance-id
  # Keys once per instance-id: a reboot of the same VM changes nothing.
  if [ "$(cat /etc/labctl-instance-id 2>/dev/null)" != "$iid" ]; then
    if [ -f /run/seed/labctl-ssh-host-ed25519-key ]; then
      rm -f $key $key.new
      dropbearconvert openssh dropbear /run/seed/labctl-ssh-host-ed25519-key $key.new >/dev/null 2>&1 && mv $key.new $key
    fi
    if [ -s /run/seed/labctl-authorized-keys ]; then
      cp /run/seed/labctl-authorized-keys /root/.ssh/authorized_keys.new && chmod 600 /root/.ssh/authorized_keys.new &&
        mv /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys
    fi
    echo "$iid" > /etc/labctl-instance-id
    sync
    echo "LABCTL-SEED applied $iid" > /dev/console
  fi
  # KEY=VALUE lines, read without eval; labctl wrote addresses only.
  while IFS='=' read -r k v; do
    case $k in MODE) mode=$v ;; ADDRESS) addr=$v ;; PREFIX) prefix=$v ;; GATEWAY) gw=$v ;; esac
  done < /run/seed/labctl-network
fi
hostname "$name"
ip link set lo up
ip link set eth0 up
if [ "$mode" = static ] && [ -n "$addr" ]; then
  ip addr add "$addr/${prefix:-24}" dev eth0
  [ -n "$gw" ] && ip route replace default via "$gw" dev eth0
  echo "LABCTL-STATIC eth0 $addr" > /dev/console
else
  udhcpc -i eth0 -x hostname:"$name" -s /etc/udhcpc.script -b -t 0 -T 1 -A 1 >/dev/null 2>&1
fi
# Without a seed: one host key per VM, made at first boot on the VM's own disk and kept from then on.
# A key that does not load (VM killed before it reached the disk) is made again; sync so it sticks.
pub=$(dropbearkey -y -f $key 2>/dev/null | grep '^ssh-' | cut -d' ' -f1,2)
if [ -z "$pub" ]; then
  rm -f $key $key.new
  dropbearkey -t ed25519 -f $key.new >/dev/null 2>&1 && mv $key.new $key && sync
  pub=$(dropbearkey -y -f $key 2>/dev/null | grep '^ssh-' | cut -d' ' -f1,2)
fi
echo "LABCTL-HOSTKEY $name $pub" > /dev/console
dropbear -r $key -s -p 22
acpid 2>/dev/null
echo "LABCTL-READY $name uptime=$(cut -d' ' -f1 /proc/uptime)" > /dev/console
EOF
chmod 755 "$R/etc/rc"
cat > "$R/etc/inittab" <<'EOF'
::sysinit:/etc/rc
::respawn:/bin/sh -c 'exec sleep 100000'
::ctrlaltdel:/bin/poweroff
::shutdown:/bin/sync
EOF
ln -s bin/busybox "$R/init"
ln -s ../bin/busybox "$R/sbin/init"
(cd "$R" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$work/initrd-full.gz")

# ---- golden disk: the same root as ext4, in three formats ----
truncate -s 64M golden.raw
mkfs.ext4 -q -F -L labroot -d "$R" golden.raw
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on golden.raw golden.vhd
qemu-img convert -f raw -O vhdx golden.raw golden.vhdx
qemu-img convert -f raw -O qcow2 golden.raw golden.qcow2

# ---- initrd-boot.gz: mount the root disk, switch_root ----
B=$work/bootfs
mkdir -p "$B"/{bin,proc,sys,dev,newroot,lib/modules}
cp /bin/busybox "$B/bin/"
for m in $DISK_MODULES; do cp "$R/lib/modules/$m.ko" "$B/lib/modules/"; done
echo "$DISK_MODULES" > "$B/lib/modules/order"
cat > "$B/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko; done
root=/dev/vda
for arg in $(cat /proc/cmdline); do case $arg in labctl.root=*) root=${arg#labctl.root=} ;; esac; done
for i in $(seq 1 50); do [ -b $root ] && break; sleep 0.1; done
mount -t ext4 $root /newroot || { echo "LABCTL-BOOTFAIL cannot mount $root" > /dev/console; exec sh; }
umount /proc /sys; mount --move /dev /newroot/dev 2>/dev/null || umount /dev
exec switch_root /newroot /sbin/init
EOF
chmod 755 "$B/init"
(cd "$B" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1 > "$work/initrd-boot.gz")

# ---- bootdisk.vhd: MBR + syslinux on FAT (partition 1) + the ext4 root (partition 2) ----
mkfs.fat -C -F 16 -n LABBOOT boot.fat 32768 >/dev/null
syslinux --install boot.fat
printf 'DEFAULT labctl\nPROMPT 0\nTIMEOUT 0\nLABEL labctl\n  KERNEL vmlinuz\n  INITRD initrd.gz\n  APPEND %s labctl.root=/dev/vda2\n' "$CMDLINE" > syslinux.cfg
mcopy -i boot.fat vmlinuz ::vmlinuz
mcopy -i boot.fat initrd-boot.gz ::initrd.gz
mcopy -i boot.fat syslinux.cfg ::syslinux.cfg
truncate -s $((1 + 32 + 64 + 1))M bootdisk.raw
printf 'label: dos\nstart=2048, size=%s, type=6, bootable\nstart=%s, size=%s, type=83\n' \
  $((32 * 2048)) $((33 * 2048)) $((64 * 2048)) | sfdisk -q bootdisk.raw
dd if=/usr/lib/syslinux/mbr/mbr.bin of=bootdisk.raw conv=notrunc bs=440 count=1 status=none
dd if=boot.fat of=bootdisk.raw bs=1M seek=1 conv=notrunc status=none
dd if=golden.raw of=bootdisk.raw bs=1M seek=33 conv=notrunc status=none
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on bootdisk.raw bootdisk.vhd

cat > guest.env <<EOF
GUEST_DIR=$out
GUEST_KERNEL=$out/vmlinux
GUEST_INITRD=$out/initrd-boot.gz
GUEST_GOLDEN_VHD=$out/golden.vhd
GUEST_BOOTDISK_VHD=$out/bootdisk.vhd
GUEST_SSH_KEY=$out/id_ed25519
GUEST_CMDLINE='$CMDLINE'
GUEST_KERNEL_VERSION=$kver
EOF
chmod 0444 golden.vhd golden.vhdx golden.qcow2 bootdisk.vhd
# Replace outputs by rename (new inodes): overlays of an older build keep pointing at paths, so
# rebuild only when inputs really changed (the stamp below).
for f in vmlinux vmlinuz initrd-boot.gz initrd-full.gz golden.vhd golden.vhdx golden.qcow2 bootdisk.vhd guest.env; do
  mv -f "$f" "$out/$f"
done
echo "$hash" > "$out/.stamp"
echo "build-guest: built $out (kernel $kver) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
