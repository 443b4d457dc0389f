# What the host says about SR-IOV capable PCI devices and one selected PF, as
# tab-separated tagged lines ending with "end" (parsed by parseFacts in
# provider/resources/sriovPf/facts.ts). Every value is a positional argument:
#   $1 selector kind (pciAddress, interface, macAddress)   $2 selector value
#   $3 root prefix for /sys and /etc ("" on hosts; a fake tree in tests)
#   $4 the PF's last known driver (finds its modprobe file when the device is gone)
#   $5 the provider's record directory
kind="$1"; val="$2"; R="$3"; hint="$4"; records="$5"
S="$R/sys/bus/pci/devices"; E="$R/etc"
out() { printf '%s' "$1"; shift; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; }
rd() { if [ -r "$1" ] && v=$(cat "$1" 2>/dev/null) && [ -n "$v" ]; then printf '%s' "$v"; else printf -; fi; }
lnk() { if [ -L "$1" ]; then basename "$(readlink "$1")"; else printf -; fi; }
names() { ls -1 "$1" 2>/dev/null; }
b64() { base64 | tr -d '\n'; }
matches=
for p in $(names "$S"); do
  d="$S/$p"
  [ -e "$d/sriov_totalvfs" ] || continue
  out cand "$p" "$(lnk "$d/driver")"
  for n in $(names "$d/net"); do
    m=$(rd "$d/net/$n/address"); out candnet "$p" "$n" "$m"
    [ "$m" = "$val" ] && matches="$matches $p"
  done
done
sel=; drv=-
# shellcheck disable=SC2086 # $matches is split on purpose: one word per matching PF
case "$kind" in
  pciAddress) [ -e "$S/$val" ] && sel="$val" ;;
  interface)
    if [ -e "$R/sys/class/net/$val" ]; then
      if [ -e "$R/sys/class/net/$val/device" ]; then sel=$(basename "$(readlink -f "$R/sys/class/net/$val/device")"); out ifdev "$sel"
      else out ifdev -; fi
    fi ;;
  macAddress) set -- $matches; [ $# -eq 1 ] && sel="$1" ;;
esac
for t in systemctl udevadm virsh ip modinfo update-initramfs dracut; do command -v "$t" >/dev/null 2>&1 && out tool "$t"; done
if [ -n "$sel" ] && [ -e "$S/$sel" ]; then
  d="$S/$sel"; out sel "$sel"
  for a in sriov_totalvfs sriov_numvfs sriov_drivers_autoprobe numa_node; do out "pf.$a" "$(rd "$d/$a")"; done
  drv=$(lnk "$d/driver"); out pf.driver "$drv"
  [ -L "$d/physfn" ] && out pf.physfn "$(lnk "$d/physfn")"
  pfnet=; pfnames=
  for n in $(names "$d/net"); do
    out pf.net "$n" "$(rd "$d/net/$n/address")" "$(rd "$d/net/$n/mtu")" "$(rd "$d/net/$n/operstate")"
    [ -n "$pfnet" ] || pfnet="$n"; pfnames="$pfnames $n"
  done
  i=0
  while [ -L "$d/virtfn$i" ]; do
    v="$d/virtfn$i"; vn=-; vm=-
    for n in $(names "$v/net"); do vn="$n"; vm=$(rd "$v/net/$n/address"); break; done
    out vf "$i" "$(lnk "$v")" "$(lnk "$v/iommu_group")" "$(lnk "$v/driver")" "$vn" "$vm"
    i=$((i+1))
  done
  if [ -n "$pfnet" ] && command -v ip >/dev/null 2>&1; then
    ip link show dev "$pfnet" 2>/dev/null | sed -n 's/^ *vf \([0-9][0-9]*\) .*link\/ether \([0-9a-fA-F:]*\).*/vfmac\t\1\t\2/p'
  fi
  # Persistence this resource did not write that also sets this PF's VF count.
  for dir in /etc/udev/rules.d /etc/systemd/system; do
    for b in $(names "$R$dir"); do
      f="$dir/$b"
      case "$b" in pulumi-sriov-*|70-pulumi-sriov-*) continue ;; *.rules|*.service) ;; *) continue ;; esac
      [ -f "$R$f" ] || continue
      grep -q sriov_numvfs "$R$f" 2>/dev/null || continue
      hit=
      grep -qF -- "$sel" "$R$f" && hit="$sel"
      for n in $pfnames; do grep -qw -- "$n" "$R$f" && hit="$hit $n"; done
      [ "$drv" != - ] && grep -qF -- "\"$drv\"" "$R$f" && hit="$hit $drv"
      [ -n "$hit" ] || continue
      out foreign "$f" "$hit"; out foreignbody "$f" "$(b64 <"$R$f")"
      case "$b" in *.service) command -v systemctl >/dev/null 2>&1 && out foreignunit "$f" "$(systemctl is-enabled "$b" 2>/dev/null)" ;; esac
    done
  done
  # rc.local: a shared script; only lines that write this PF's sriov_numvfs count.
  for f in /etc/rc.local /etc/rc.d/rc.local; do
    if [ ! -f "$R$f" ] || [ -L "$R$f" ]; then continue; fi
    hit=
    grep sriov_numvfs "$R$f" 2>/dev/null | grep -qF -- "$sel" && hit="$sel"
    for n in $pfnames; do grep sriov_numvfs "$R$f" 2>/dev/null | grep -qw -- "$n" && hit="$hit $n"; done
    [ -n "$hit" ] || continue
    out foreign "$f" "$hit"; out foreignbody "$f" "$(b64 <"$R$f")"
  done
  if [ "$drv" != - ]; then
    if command -v modinfo >/dev/null 2>&1; then
      modinfo -p "$drv" 2>/dev/null | grep -q '^max_vfs:' && out param max_vfs
    fi
    for b in $(names "$E/modprobe.d"); do
      f="/etc/modprobe.d/$b"
      case "$b" in *.conf) ;; *) continue ;; esac
      [ "$f" != "/etc/modprobe.d/pulumi-sriov-$drv.conf" ] || continue
      [ -f "$R$f" ] || continue
      grep -Eq "^[[:space:]]*options[[:space:]]+${drv}[[:space:]].*max_vfs" "$R$f" 2>/dev/null || continue
      out foreign "$f" "options $drv max_vfs"; out foreignbody "$f" "$(b64 <"$R$f")"
    done
  fi
fi
# Our own files: read even when the device is gone, so delete can remove them.
fp="$sel"; [ -z "$fp" ] && [ "$kind" = pciAddress ] && fp="$val"
if [ -n "$fp" ]; then
  [ "$drv" != - ] || drv="$hint"
  unit="/etc/systemd/system/pulumi-sriov-pf-$fp.service"; rule="/etc/udev/rules.d/70-pulumi-sriov-$fp.rules"; conf=
  [ -n "$drv" ] && [ "$drv" != - ] && conf="/etc/modprobe.d/pulumi-sriov-$drv.conf"
  for f in "$unit" "$rule" $conf; do [ -f "$R$f" ] && out file "$f" "$(b64 <"$R$f")"; done
  fs="$records/sriov-pf-$fp.json"; [ -f "$R$fs" ] && out found "$(b64 <"$R$fs")"
  tr="$records/sriov-pf-$fp-taken-over.json"; [ -f "$R$tr" ] && out takenover "$(b64 <"$R$tr")"
  if command -v systemctl >/dev/null 2>&1; then
    u="pulumi-sriov-pf-$fp.service"
    out unit "$(systemctl is-enabled "$u" 2>/dev/null)" "$(systemctl is-active "$u" 2>/dev/null)"
  fi
  for b in $(names "$E/systemd/system"); do
    case "$b" in "pulumi-sriov-vf-$fp-"*.service) out vfunit "$b" ;; esac
  done
fi
out end
