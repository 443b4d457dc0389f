# What IommuKernelArgs needs to know about a host, in one run: each probe's
# exit code, output and errors as one line "<probe> <code> <base64 stdout>
# <base64 stderr>" (parsed by readFacts in provider/resources/iommuKernelArgs).
# Every value is a positional argument:
#   $1 "yes" to run the health probes too (IOMMU groups, kernel log, lspci)
#   $2 the record an unfinished create left
#   $3 /etc/default/grub   $4 its drop-in directory
#   $5 how many more files to read, then those files
#   then the tools to look for
health="$1"; pending="$2"; grub="$3"; dropins="$4"; n="$5"; shift 5
files=
while [ "$n" -gt 0 ]; do files="$files $(printf '%s' "$1" | base64 -w0)"; shift; n=$((n - 1)); done
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
d=$(mktemp -d) || exit 97
trap 'rm -rf "$d"' EXIT

probe() {
  name="$1"; shift
  ("$@") </dev/null >"$d/o" 2>"$d/e"
  printf '%s %s %s %s\n' "$name" "$?" "$(base64 -w0 <"$d/o")" "$(base64 -w0 <"$d/e")"
}

p_pending() { [ -f "$pending" ] && base64 -w0 <"$pending"; true; }
p_cpu() { grep -m1 -E '^(vendor_id|CPU implementer)' /proc/cpuinfo; true; }
p_os() { cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; true; }
p_efi() {
  if [ -d /sys/firmware/efi ]; then
    echo efi
    f=/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f
    [ -r "$f" ] && tail -c +5 "$f" | tr -d '\000'
  fi
  true
}
p_tools() { for t in "$@"; do p=$(command -v "$t" 2>/dev/null) && echo "$t $p"; done; true; }
p_files() {
  for e in $files; do set -- "$@" "$(printf '%s' "$e" | base64 -d)"; done
  for f in "$grub" "$dropins"/*.cfg "$@"; do
    [ -f "$f" ] || continue
    printf '%s\t' "$f"; base64 -w0 <"$f" || exit 1; echo
  done
}
p_dropins() { m=$(command -v grub-mkconfig || command -v grub2-mkconfig) && grep -q "default/grub.d" "$m" && echo yes; true; }
p_grubcfg() {
  for f in /boot/grub/grub.cfg /boot/grub2/grub.cfg /boot/efi/EFI/*/grub.cfg /efi/EFI/*/grub.cfg; do
    [ -f "$f" ] || continue
    g=0; b=0
    grep -q "BEGIN /etc/grub.d" "$f" && g=1
    grep -q "blscfg" "$f" && b=1
    l=$(grep -m1 -E "^[[:space:]]*(linux|linux16|linuxefi)[[:space:]]" "$f")
    printf '%s %s %s\t%s\n' "$g" "$b" "$f" "$l"
  done
  true
}
# shellcheck disable=SC2012 # counting entries: ls is enough
p_bls() { ls /boot/loader/entries/*.conf 2>/dev/null | wc -l; }
p_grubby() { command -v grubby >/dev/null && grubby --info=ALL 2>/dev/null; true; }
p_proxmox() { command -v proxmox-boot-tool >/dev/null && proxmox-boot-tool status 2>&1; true; }
p_kernels() {
  m=/usr/lib/modules; [ -d $m ] || m=/lib/modules
  for k in "$m"/*; do
    v=${k##*/}
    if [ -f "$k/vmlinuz" ]; then echo "$v $k/vmlinuz"; elif [ -f "/boot/vmlinuz-$v" ]; then echo "$v /boot/vmlinuz-$v"; fi
  done
  true
}
p_bootPath() { command -v bootctl >/dev/null && [ -d /sys/firmware/efi ] && bootctl --print-boot-path 2>/dev/null; true; }
p_iommuClass() { ls /sys/class/iommu 2>/dev/null; true; }
p_groups() {
  for g in /sys/kernel/iommu_groups/*/devices/*; do
    [ -e "$g" ] || continue
    n=${g%/devices/*}
    echo "${n##*/} ${g##*/} $(cat "$g/class" 2>/dev/null)"
  done
  true
}
p_acpi() { for t in DMAR IVRS; do [ -e /sys/firmware/acpi/tables/$t ] && echo $t; done; true; }
p_kernelLog() {
  (dmesg 2>/dev/null || journalctl -k -b --no-pager -q 2>/dev/null) | grep -E "DMAR|AMD-Vi|IOMMU|iommu|Unknown kernel command line|ACS" | tail -n 400
  true
}
p_lspci() { command -v lspci >/dev/null && lspci -vvv -D -d ::0604 2>/dev/null; true; }

probe hostname uname -n
probe pending p_pending
probe cmdline cat /proc/cmdline
probe bootId cat /proc/sys/kernel/random/boot_id
probe cpu p_cpu
probe os p_os
probe efi p_efi
probe tools p_tools "$@"
probe files p_files
probe dropins p_dropins
probe grubcfg p_grubcfg
probe bls p_bls
probe grubby p_grubby
probe proxmox p_proxmox
probe kernels p_kernels
probe bootPath p_bootPath
if [ "$health" = yes ]; then
  probe iommuClass p_iommuClass
  probe groups p_groups
  probe acpi p_acpi
  probe kernelLog p_kernelLog
  probe lspci p_lspci
fi
