# Everything `pulumi-sriov discover` reports about one host, in one run, as
# tab-separated tagged lines ending with "end" (parsed by parseInventory in
# provider/discover/inventory.ts). Long values (files, XML, JSON) are base64.
# Every value is a positional argument:
#   $1 root prefix for /sys, /proc and /etc ("" on hosts; a fake tree in tests)
#   $2 libvirt URI
R="$1"; uri="$2"
S="$R/sys/bus/pci/devices"
out() { printf '%s' "$1"; shift; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; }
rd() { if [ -r "$1" ] && v=$(cat "$1" 2>/dev/null) && [ -n "$v" ]; then printf '%s' "$v"; else printf -; fi; }
lnk() { if [ -L "$1" ]; then v=$(readlink "$1"); printf '%s' "${v##*/}"; else printf -; fi; }
b64() { base64 | tr -d '\n'; }
file() { [ -f "$R$1" ] && out file "$1" "$(b64 <"$R$1")"; }
count() { n=0; for e in "$1"/*; do [ -e "$e" ] && n=$((n+1)); done; printf '%s' "$n"; }

out hostname "$(rd "$R/proc/sys/kernel/hostname")"
out cmdline "$(rd "$R/proc/cmdline")"
v=$(grep -m1 '^vendor_id' "$R/proc/cpuinfo" 2>/dev/null); out vendor "${v##*: }"
out iommu "$(count "$R/sys/class/iommu")" "$(count "$R/sys/kernel/iommu_groups")"
# Every file that may make VFs persistent: rc.local, modprobe options, udev
# rules and systemd units that mention VFs, our own included. (The kernel
# command line's sources are IommuKernelArgs' own probe.)
file /etc/rc.local
for f in "$R"/etc/modprobe.d/*.conf; do grep -qE 'max_vfs|num_vfs|sriov' "$f" 2>/dev/null && file "${f#"$R"}"; done
for f in "$R"/etc/udev/rules.d/*.rules "$R"/etc/systemd/system/*.service; do
  grep -qE 'sriov_numvfs|pulumi-sriov' "$f" 2>/dev/null && file "${f#"$R"}"
done
for f in "$R"/etc/systemd/system/multi-user.target.wants/pulumi-sriov-*; do [ -L "$f" ] && out wanted "${f##*/}"; done
for d in "$S"/*; do
  [ -e "$d/sriov_totalvfs" ] || continue
  p=${d##*/}
  out pf "$p" "$(lnk "$d/driver")" "$(rd "$d/sriov_totalvfs")" "$(rd "$d/sriov_numvfs")" "$(rd "$d/sriov_drivers_autoprobe")" "$(rd "$d/numa_node")"
  for n in "$d"/net/*; do [ -e "$n" ] && out pfnet "$p" "${n##*/}" "$(rd "$n/address")" "$(rd "$n/mtu")"; done
  i=0
  while [ -L "$d/virtfn$i" ]; do
    v="$d/virtfn$i"; vn=-
    for n in "$v"/net/*; do [ -e "$n" ] && vn=${n##*/} && break; done
    out vf "$p" "$i" "$(lnk "$v")" "$(lnk "$v/iommu_group")" "$(lnk "$v/driver")" "$vn"
    i=$((i+1))
  done
done
if command -v ip >/dev/null 2>&1; then out links "$(ip -j -d link show 2>/dev/null | b64)"; fi
if command -v virsh >/dev/null 2>&1; then
  export LC_ALL=C
  for n in $(virsh -q -c "$uri" net-list --all --name 2>/dev/null); do
    info=$(virsh -q -c "$uri" net-info "$n" 2>/dev/null)
    a=$(printf '%s\n' "$info" | sed -n 's/^Active: *//p'); s=$(printf '%s\n' "$info" | sed -n 's/^Autostart: *//p')
    out net "$n" "$a" "$s" "$(virsh -q -c "$uri" net-dumpxml --inactive "$n" 2>/dev/null | b64)"
  done
  for n in $(virsh -q -c "$uri" list --all --name 2>/dev/null); do
    out domain "$n" "$(virsh -q -c "$uri" domstate "$n" 2>/dev/null)" "$(virsh -q -c "$uri" dumpxml "$n" 2>/dev/null | b64)"
  done
fi
out end
