#!/usr/bin/env bash
# Builds the lab guest disk: Debian bookworm on a partitioned disk booted by
# GRUB (i386-pc), so /etc/default/grub edits + update-grub take effect on the
# next boot. Invoked by image.ts, which chooses the work directory and makes
# the result visible only once this script has succeeded.
#
# Environment (all required):
#   LAB_WORK      empty work directory; the result is $LAB_WORK/disk.qcow2
#   LAB_MIRROR    Debian mirror URI (taken from the machine's apt sources)
#   LAB_SUITE     Debian suite (bookworm)
#   LAB_PACKAGES  space-separated packages installed with --no-install-recommends
#   LAB_DISK_GB   virtual disk size in GiB
#   LAB_CMDLINE   GRUB_CMDLINE_LINUX for the guest
#   LAB_AUTH_KEY  path of the client public key (root's authorized_keys)
#   LAB_HOST_KEY  path of the guest's ed25519 host private key (.pub next to it)
#   LAB_HOSTNAME  guest host name
set -euo pipefail

for v in LAB_WORK LAB_MIRROR LAB_SUITE LAB_PACKAGES LAB_DISK_GB LAB_CMDLINE LAB_AUTH_KEY LAB_HOST_KEY LAB_HOSTNAME; do
  [ -n "${!v:-}" ] || { echo "build-image: $v is not set" >&2; exit 2; }
done
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 LANG=C.UTF-8

START=$(date +%s)
# Progress goes to the caller (fd 3); everything else to the build log, whose
# tail is shown if the build fails.
LOG="$LAB_WORK/build.log"
exec 3>&1 >>"$LOG" 2>&1
step() {
  local m
  m="[lab-image +$(( $(date +%s) - START ))s] $*"
  echo "$m"; echo "$m" >&3
}

RAW="$LAB_WORK/disk.raw"
ROOT="$LAB_WORK/root"
PART_OFFSET=1048576
DISK_LOOP=""
PART_LOOP=""
MOUNTS=()

cleanup() {
  local rc=$?
  set +e
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
    umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null
  done
  [ -n "$PART_LOOP" ] && losetup -d "$PART_LOOP" 2>/dev/null
  [ -n "$DISK_LOOP" ] && losetup -d "$DISK_LOOP" 2>/dev/null
  if [ $rc -ne 0 ]; then
    { echo "build-image: failed (exit $rc); last lines of $LOG:"; tail -n 40 "$LOG" | sed 's/^/  | /'; } >&3
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mnt() { mount "$@"; MOUNTS+=("${@: -1}"); }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH="$PATH" DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 HOME=/root "$@"; }

step "creating ${LAB_DISK_GB} GiB disk with one bootable partition"
truncate -s "${LAB_DISK_GB}G" "$RAW"
printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk --quiet "$RAW"
# An offset loop device for the partition: partition scanning (losetup -P)
# is not available everywhere, an offset always is.
DISK_LOOP=$(losetup --show -f "$RAW")
PART_SIZE=$(( $(stat -c %s "$RAW") - PART_OFFSET ))
PART_LOOP=$(losetup --show -f -o "$PART_OFFSET" --sizelimit "$PART_SIZE" "$RAW")
mkfs.ext4 -q -L labroot "$PART_LOOP"
ROOT_UUID=$(blkid -s UUID -o value "$PART_LOOP")
mkdir -p "$ROOT"
mnt "$PART_LOOP" "$ROOT"

step "debootstrap $LAB_SUITE (minbase)"
debootstrap --variant=minbase "$LAB_SUITE" "$ROOT" "$LAB_MIRROR" 2>&1 \
  | while IFS= read -r line; do
      echo "$line"
      case "$line" in "I: Retrieving Release"*|"I: Installing core"*|"I: Unpacking the base"*|"I: Configuring the base"*|"I: Base system installed"*) echo "  $line" >&3 ;; esac
    done
[ "${PIPESTATUS[0]}" -eq 0 ] && [ -x "$ROOT/usr/bin/apt-get" ] || { echo "build-image: debootstrap failed" >&2; exit 1; }

mnt -t proc proc "$ROOT/proc"
mnt -t sysfs sysfs "$ROOT/sys"
mnt --bind /dev "$ROOT/dev"
mnt -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts"
mnt -t tmpfs tmpfs "$ROOT/run"

# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
echo "$LAB_HOSTNAME" > "$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$LAB_HOSTNAME" > "$ROOT/etc/hosts"
printf 'UUID=%s\t/\text4\terrors=remount-ro\t0\t1\n' "$ROOT_UUID" > "$ROOT/etc/fstab"
# grub-pc must not try to install itself while being configured.
in_root debconf-set-selections <<'EOF'
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
EOF
mkdir -p "$ROOT/etc/default"
cat > "$ROOT/etc/default/grub" <<EOF
# Lab guest. Kernel-argument tests edit GRUB_CMDLINE_LINUX and run update-grub.
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$LAB_CMDLINE"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB_DISABLE_RECOVERY=true
EOF

step "installing packages: $LAB_PACKAGES"
in_root apt-get -q update >/dev/null
# shellcheck disable=SC2086
in_root apt-get install -y -q --no-install-recommends -o Dpkg::Progress-Fancy=0 -o Dpkg::Use-Pty=0 $LAB_PACKAGES 2>&1 \
  | while IFS= read -r line; do
      echo "$line"
      case "$line" in "Need to get"*|"After this operation"*|"Unpacking linux-image-"*|"Setting up libvirt-daemon-system "*|"Setting up qemu-system-x86 "*|"update-initramfs: Generating"*) echo "  $line" >&3 ;; esac
    done
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "build-image: apt-get install failed" >&2; exit 1; }
for p in $LAB_PACKAGES; do
  in_root dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' \
    || { echo "build-image: package $p is not installed" >&2; exit 1; }
done

step "configuring ssh, networking, libvirt"
# sshd: key-only root login, one pinned ed25519 host key, no DNS lookups.
rm -f "$ROOT"/etc/ssh/ssh_host_*
install -m 600 "$LAB_HOST_KEY" "$ROOT/etc/ssh/ssh_host_ed25519_key"
install -m 644 "$LAB_HOST_KEY.pub" "$ROOT/etc/ssh/ssh_host_ed25519_key.pub"
mkdir -p "$ROOT/etc/ssh/sshd_config.d"
cat > "$ROOT/etc/ssh/sshd_config.d/lab.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
EOF
install -d -m 700 "$ROOT/root/.ssh"
install -m 600 "$LAB_AUTH_KEY" "$ROOT/root/.ssh/authorized_keys"
in_root passwd -l root >/dev/null

# systemd-networkd: DHCP on the virtio management NIC only. The igb PFs are
# brought up without addresses and never hold up boot; VFs stay unmanaged.
mkdir -p "$ROOT/etc/systemd/network"
cat > "$ROOT/etc/systemd/network/10-mgmt.network" <<'EOF'
[Match]
Driver=virtio_net

[Network]
DHCP=ipv4
IPv6AcceptRA=no
LinkLocalAddressing=no
EOF
cat > "$ROOT/etc/systemd/network/20-igb-pf.network" <<'EOF'
[Match]
Driver=igb

[Link]
RequiredForOnline=no

[Network]
ConfigureWithoutCarrier=yes
LinkLocalAddressing=no
IPv6AcceptRA=no
KeepConfiguration=yes
EOF
mkdir -p "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat > "$ROOT/etc/systemd/system/systemd-networkd-wait-online.service.d/lab.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30
EOF
in_root systemctl enable systemd-networkd.service ssh.service libvirtd.service
# Nothing periodic or slow at boot under emulation.
in_root systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
  fstrim.timer dpkg-db-backup.timer logrotate.timer
# Reboots stay quick and predictable: domains are shut down (not saved) and
# not restarted by libvirt-guests; libvirt's own autostart still applies.
cat > "$ROOT/etc/default/libvirt-guests" <<'EOF'
ON_BOOT=ignore
ON_SHUTDOWN=shutdown
SHUTDOWN_TIMEOUT=30
EOF
# The NAT "default" network needs dnsmasq; the lab does not use it.
rm -f "$ROOT/etc/libvirt/qemu/networks/autostart/default.xml"
# A fixed machine id: every overlay boots as the same, already set-up machine.
in_root systemd-machine-id-setup >/dev/null
# Quieter, faster console on the serial log.
mkdir -p "$ROOT/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=persistent\nForwardToConsole=no\n' > "$ROOT/etc/systemd/journald.conf.d/lab.conf"

# Under emulation every process costs: update-grub skips the generators for
# what the lab has not (Xen, other systems, EFI).
chmod -x "$ROOT/etc/grub.d/20_linux_xen" "$ROOT/etc/grub.d/30_os-prober" "$ROOT/etc/grub.d/30_uefi-firmware"

step "installing GRUB (i386-pc) on the disk and generating grub.cfg"
# core.img finds /boot/grub by the root file system's UUID (load.cfg), so
# the offset loop device standing in for the partition is fine here.
in_root grub-install --target=i386-pc --modules="part_msdos ext2 search_fs_uuid" "$DISK_LOOP"
# grub-mkconfig skips root devices that are loop devices; point it at a
# by-uuid name for this one run. Inside the booted guest it sees /dev/vda1.
mkdir -p /dev/disk/by-uuid
LINK_CREATED=""
if [ ! -e "/dev/disk/by-uuid/$ROOT_UUID" ]; then
  ln -s "$PART_LOOP" "/dev/disk/by-uuid/$ROOT_UUID" && LINK_CREATED=1
fi
mkdir -p "$ROOT/etc/default/grub.d"
echo "GRUB_DEVICE=/dev/disk/by-uuid/$ROOT_UUID" > "$ROOT/etc/default/grub.d/zz-lab-build.cfg"
in_root update-grub
rm -f "$ROOT/etc/default/grub.d/zz-lab-build.cfg"
if [ -n "$LINK_CREATED" ]; then rm -f "/dev/disk/by-uuid/$ROOT_UUID"; fi
grep -q "root=UUID=$ROOT_UUID" "$ROOT/boot/grub/grub.cfg" \
  || { echo "build-image: grub.cfg does not boot root=UUID=$ROOT_UUID" >&2; exit 1; }
grep -q "$LAB_CMDLINE" "$ROOT/boot/grub/grub.cfg" \
  || { echo "build-image: grub.cfg lacks the kernel command line" >&2; exit 1; }
[ -e "$ROOT/boot/vmlinuz" ] || ln -s "$(cd "$ROOT/boot" && ls vmlinuz-* | sort -V | tail -1)" "$ROOT/boot/vmlinuz"
[ -e "$ROOT/boot/initrd.img" ] || ln -s "$(cd "$ROOT/boot" && ls initrd.img-* | sort -V | tail -1)" "$ROOT/boot/initrd.img"

step "cleaning up"
rm -f "$ROOT/usr/sbin/policy-rc.d"
in_root apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/tmp/* "$ROOT"/var/log/*.log "$ROOT"/var/cache/debconf/*-old
# Discard freed blocks (the loop device punches holes in the raw file) so
# deleted package archives do not end up in the image.
# Freed blocks are only trimmed once the deletion is committed: sync first.
sync -f "$ROOT/etc/hostname"
fstrim -v "$ROOT" || true
for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do umount "${MOUNTS[$i]}"; done
MOUNTS=()
fsck.ext4 -fy "$PART_LOOP" >/dev/null 2>&1 || true
losetup -d "$PART_LOOP"; PART_LOOP=""
losetup -d "$DISK_LOOP"; DISK_LOOP=""

step "converting to qcow2"
qemu-img convert -O qcow2 "$RAW" "$LAB_WORK/disk.qcow2"
rm -f "$RAW"
rmdir "$ROOT"
step "done: $(du -h --apparent-size "$LAB_WORK/disk.qcow2" | cut -f1) qcow2"
