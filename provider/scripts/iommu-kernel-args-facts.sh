# What IommuKernelArgs needs to know about a host, in one run (parsed by
# parseProbeOutput in provider/resources/iommuKernelArgs/facts.ts). The first
# line of stdout is a random boundary B; after each probe's output the script
# writes "\nB <probe> <exit code>\n" on stdout and "\nB <probe>\n" on stderr.
# Every value is a positional argument:
#   $1 "yes" to run the health probes too (IOMMU groups, kernel log, lspci)
#   $2 the record an unfinished create left
#   $3 /etc/default/grub   $4 its drop-in directory
#   $5 how many more files to read, then those files
#   then the tools to look for
# Few processes (each is a fork and an exec, slow on a busy host): probes run
# in this shell, files are read with the `read` builtin where exact bytes do
# not matter, and tools are found by walking PATH.
health="$1"; pending="$2"; grub="$3"; dropins="$4"; nfiles="$5"; shift 5
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
read -r B </proc/sys/kernel/random/uuid || exit 97
printf '%s\n' "$B"

# catl FILE: its lines (a missing last newline added), with no process.
catl() { while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done <"$1"; }
# tool NAME: its path in $w, like `command -v` for a program, with no process.
tool() {
  w=; o=$IFS; IFS=:
  for dir in $PATH; do
    [ -n "$dir" ] && [ -f "$dir/$1" ] && [ -x "$dir/$1" ] && { w="$dir/$1"; break; }
  done
  IFS=$o; [ -n "$w" ]
}
probe() {
  name="$1"; shift
  "$@" </dev/null
  printf '\n%s %s %s\n' "$B" "$name" "$?"
  printf '\n%s %s\n' "$B" "$name" >&2
}

p_hostname() { read -r h </proc/sys/kernel/hostname && printf '%s\n' "$h"; }
p_pending() { [ -f "$pending" ] && catl "$pending"; true; }
p_cmdline() { catl /proc/cmdline; }
p_bootId() { catl /proc/sys/kernel/random/boot_id; }
p_cpu() {
  while IFS= read -r l; do
    case "$l" in vendor_id*|"CPU implementer"*) printf '%s\n' "$l"; break ;; esac
  done </proc/cpuinfo
  true
}
p_os() {
  if [ -r /etc/os-release ]; then catl /etc/os-release; elif [ -r /usr/lib/os-release ]; then catl /usr/lib/os-release; fi
  true
}
p_efi() {
  if [ -d /sys/firmware/efi ]; then
    echo efi
    f=/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f
    [ -r "$f" ] && tail -c +5 "$f" | tr -d '\000'
  fi
  true
}
# p_tools and p_files get every argument: the first $nfiles are files, the rest tools.
p_tools() { shift "$nfiles"; for t in "$@"; do tool "$t" && printf '%s %s\n' "$t" "$w"; done; true; }
# Exact bytes: each file as "<path>\t<base64>" (one base64 per file that exists).
p_files() {
  i=0; for f in "$@"; do [ "$i" -lt "$nfiles" ] && set -- "$@" "$f"; i=$((i + 1)); done
  shift "$i"
  for f in "$grub" "$dropins"/*.cfg "$@"; do
    [ -f "$f" ] || continue
    printf '%s\t' "$f"; base64 -w0 <"$f" || return 1; echo
  done
}
p_dropins() { { tool grub-mkconfig || tool grub2-mkconfig; } && grep -q "default/grub.d" "$w" && echo yes; true; }
# One grep per grub.cfg for the three things we look for in it.
p_grubcfg() {
  nl='
'
  for f in /boot/grub/grub.cfg /boot/grub2/grub.cfg /boot/efi/EFI/*/grub.cfg /efi/EFI/*/grub.cfg; do
    [ -f "$f" ] || continue
    g=0; b=0; l=
    r=$(grep -E -e "BEGIN /etc/grub.d" -e blscfg -e "^[[:space:]]*(linux|linux16|linuxefi)[[:space:]]" "$f")$nl
    while [ -n "$r" ]; do
      x=${r%%"$nl"*}; r=${r#*"$nl"}
      case "$x" in *"BEGIN /etc/grub.d"*) g=1 ;; esac
      case "$x" in *blscfg*) b=1 ;; esac
      if [ -z "$l" ]; then
        case "${x#"${x%%[![:space:]]*}"}" in linux[[:space:]]*|linux16[[:space:]]*|linuxefi[[:space:]]*) l=$x ;; esac
      fi
    done
    printf '%s %s %s\t%s\n' "$g" "$b" "$f" "$l"
  done
  true
}
p_bls() { c=0; for e in /boot/loader/entries/*.conf; do [ -e "$e" ] && c=$((c + 1)); done; echo "$c"; }
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
p_iommuClass() { for e in /sys/class/iommu/*; do [ -e "$e" ] && printf '%s\n' "${e##*/}"; done; true; }
p_groups() {
  for g in /sys/kernel/iommu_groups/*/devices/*; do
    [ -e "$g" ] || continue
    grp=${g%/devices/*}; c=
    read -r c <"$g/class" 2>/dev/null
    echo "${grp##*/} ${g##*/} $c"
  done
  true
}
p_acpi() { for t in DMAR IVRS; do [ -e /sys/firmware/acpi/tables/$t ] && echo $t; done; true; }
p_kernelLog() {
  { dmesg 2>/dev/null || journalctl -k -b --no-pager -q 2>/dev/null; } | grep -E "DMAR|AMD-Vi|IOMMU|iommu|Unknown kernel command line|ACS" | tail -n 400
  true
}
p_lspci() { command -v lspci >/dev/null && lspci -vvv -D -d ::0604 2>/dev/null; true; }

probe hostname p_hostname
probe pending p_pending
probe cmdline p_cmdline
probe bootId p_bootId
probe cpu p_cpu
probe os p_os
probe efi p_efi
probe tools p_tools "$@"
probe files p_files "$@"
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
