#!/usr/bin/env bash
# Installs the Debian packages the tests and the lab need, with progress shown.
# QEMU comes from bookworm-backports (bookworm's 7.2 has no igb device); the
# backports suite is added with the same mirror URI as the existing sources.
set -euo pipefail

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; else
      echo "system-deps: must run as root (or with sudo) to install: $*" >&2; exit 1; fi
  else SUDO=""; fi
}

missing=()
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v sfdisk >/dev/null || [ -x /sbin/sfdisk ] || [ -x /usr/sbin/sfdisk ] || missing+=(fdisk)
command -v mkfs.ext4 >/dev/null || [ -x /sbin/mkfs.ext4 ] || [ -x /usr/sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v ip >/dev/null || [ -x /sbin/ip ] || missing+=(iproute2)
command -v tc >/dev/null || [ -x /sbin/tc ] || missing+=(iproute2)
command -v ssh-agent >/dev/null || missing+=(openssh-client)
command -v sudo >/dev/null || missing+=(sudo)
command -v flock >/dev/null || missing+=(util-linux)
command -v shellcheck >/dev/null || missing+=(shellcheck)

qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 -device help 2>/dev/null | grep -q '"igb"'
}

if [ ${#missing[@]} -eq 0 ] && qemu_ok; then
  echo "system-deps: all present"
  exit 0
fi
need_root "${missing[*]} qemu-system-x86"
export DEBIAN_FRONTEND=noninteractive

if ! qemu_ok; then
  # Derive the backports source from the machine's own Debian mirror.
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
      uri=$(awk '$1=="deb" && $3 ~ /^bookworm/ {print $2; exit}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { echo "system-deps: cannot find the Debian mirror in /etc/apt sources" >&2; exit 1; }
    echo "system-deps: adding bookworm-backports from $uri"
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
      | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
  fi
fi
echo "system-deps: apt-get update"
$SUDO apt-get update -o Dpkg::Progress-Fancy=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "system-deps: installing ${missing[*]}"
  $SUDO apt-get install -y --no-install-recommends -o Dpkg::Progress-Fancy=0 "${missing[@]}"
fi
if ! qemu_ok; then
  echo "system-deps: installing qemu-system-x86 from bookworm-backports"
  $SUDO apt-get install -y --no-install-recommends -o Dpkg::Progress-Fancy=0 -t bookworm-backports qemu-system-x86 qemu-utils
fi
qemu_ok || { echo "system-deps: qemu-system-x86_64 has no igb device after install" >&2; exit 1; }
echo "system-deps: done"
