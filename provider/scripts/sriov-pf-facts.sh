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
# Few processes (each is a fork and exec, slow on a busy host): files are
# read with the `read` builtin, sysfs links resolved with `cd -P`, folders
# listed with globs, and grep runs once over all candidate files.
# rd FILE: its first line in $v ("-" when unreadable or empty).
rd() { v=; if [ -r "$1" ]; then read -r v < "$1" 2>/dev/null || :; fi; [ -n "$v" ] || v=-; }
# lnk LINK: the name its target has, in $l ("-" when it is not a link).
lnk() { l=-; if [ -L "$1" ] && cd -P -- "$1" 2>/dev/null; then l=${PWD##*/}; cd /; fi; }
# names DIR: the entries of a folder, in $n (space-separated; sysfs and /etc names hold no spaces).
names() { n=; for e in "$1"/*; do [ -e "$e" ] || [ -L "$e" ] || continue; n="$n ${e##*/}"; done; }
# file TAG PATH [MORE…]: a "TAG<TAB>MORE…<TAB><base64 of PATH>" line; one process (base64) per file.
file() { _path="$2"; printf '%s' "$1"; shift 2; for _a in "$@"; do printf '\t%s' "$_a"; done; printf '\t'; base64 -w0 <"$_path"; printf '\n'; }
NL='
'
matches=
names "$S"
for p in $n; do
  d="$S/$p"
  [ -e "$d/sriov_totalvfs" ] || continue
  lnk "$d/driver"; out cand "$p" "$l"
  names "$d/net"
  for i in $n; do
    rd "$d/net/$i/address"; out candnet "$p" "$i" "$v"
    [ "$v" = "$val" ] && matches="$matches $p"
  done
done
sel=; drv=-
# shellcheck disable=SC2086 # $matches is split on purpose: one word per matching PF
case "$kind" in
  pciAddress) [ -e "$S/$val" ] && sel="$val" ;;
  interface)
    if [ -e "$R/sys/class/net/$val" ]; then
      if [ -e "$R/sys/class/net/$val/device" ] && cd -P -- "$R/sys/class/net/$val/device" 2>/dev/null; then sel=${PWD##*/}; cd /; out ifdev "$sel"
      else out ifdev -; fi
    fi ;;
  macAddress) set -- $matches; [ $# -eq 1 ] && sel="$1" ;;
esac
for t in systemctl udevadm virsh ip modinfo update-initramfs dracut; do command -v "$t" >/dev/null 2>&1 && out tool "$t"; done
if [ -n "$sel" ] && [ -e "$S/$sel" ]; then
  d="$S/$sel"; out sel "$sel"
  for a in sriov_totalvfs sriov_numvfs sriov_drivers_autoprobe numa_node; do rd "$d/$a"; out "pf.$a" "$v"; done
  lnk "$d/driver"; drv=$l; out pf.driver "$drv"
  [ -L "$d/physfn" ] && { lnk "$d/physfn"; out pf.physfn "$l"; }
  pfnet=; pfnames=
  names "$d/net"
  for i in $n; do
    rd "$d/net/$i/address"; a=$v; rd "$d/net/$i/mtu"; m=$v; rd "$d/net/$i/operstate"
    out pf.net "$i" "$a" "$m" "$v"
    [ -n "$pfnet" ] || pfnet="$i"; pfnames="$pfnames $i"
  done
  i=0
  while [ -L "$d/virtfn$i" ]; do
    f="$d/virtfn$i"; vn=-; vm=-
    names "$f/net"
    for x in $n; do vn="$x"; rd "$f/net/$x/address"; vm=$v; break; done
    lnk "$f"; vp=$l; lnk "$f/iommu_group"; vg=$l; lnk "$f/driver"
    out vf "$i" "$vp" "$vg" "$l" "$vn" "$vm"
    i=$((i+1))
  done
  if [ -n "$pfnet" ] && command -v ip >/dev/null 2>&1; then
    ip link show dev "$pfnet" 2>/dev/null | sed -n 's/^ *vf \([0-9][0-9]*\) .*link\/ether \([0-9a-fA-F:]*\).*/vfmac\t\1\t\2/p'
  fi
  # Persistence this resource did not write that also sets this PF's VF count.
  cands=
  for dir in /etc/udev/rules.d /etc/systemd/system; do
    names "$R$dir"
    for b in $n; do
      case "$b" in pulumi-sriov-*|70-pulumi-sriov-*) continue ;; *.rules|*.service) ;; *) continue ;; esac
      [ -f "$R$dir/$b" ] && cands="$cands $R$dir/$b"
    done
  done
  # One grep over every candidate; the few that mention sriov_numvfs are looked at closely.
  hits=
  # shellcheck disable=SC2086 # $cands is split on purpose: one word per file
  [ -z "$cands" ] || hits=$(grep -l sriov_numvfs -- $cands 2>/dev/null)
  for h in $hits; do
    f=${h#"$R"}; b=${f##*/}
    hit=
    grep -qF -- "$sel" "$R$f" && hit="$sel"
    for n in $pfnames; do grep -qw -- "$n" "$R$f" && hit="$hit $n"; done
    [ "$drv" != - ] && grep -qF -- "\"$drv\"" "$R$f" && hit="$hit $drv"
    [ -n "$hit" ] || continue
    out foreign "$f" "$hit"; file foreignbody "$R$f" "$f"
    case "$b" in *.service) command -v systemctl >/dev/null 2>&1 && out foreignunit "$f" "$(systemctl is-enabled "$b" 2>/dev/null)" ;; esac
  done
  # rc.local: a shared script; only lines that write this PF's sriov_numvfs count.
  for f in /etc/rc.local /etc/rc.d/rc.local; do
    if [ ! -f "$R$f" ] || [ -L "$R$f" ]; then continue; fi
    hit=
    grep sriov_numvfs "$R$f" 2>/dev/null | grep -qF -- "$sel" && hit="$sel"
    for n in $pfnames; do grep sriov_numvfs "$R$f" 2>/dev/null | grep -qw -- "$n" && hit="$hit $n"; done
    [ -n "$hit" ] || continue
    out foreign "$f" "$hit"; file foreignbody "$R$f" "$f"
  done
  if [ "$drv" != - ]; then
    if command -v modinfo >/dev/null 2>&1; then
      case "$NL$(modinfo -p "$drv" 2>/dev/null)" in *"${NL}max_vfs:"*) out param max_vfs ;; esac
    fi
    cands=; names "$E/modprobe.d"
    for b in $n; do
      case "$b" in *.conf) ;; *) continue ;; esac
      [ "$b" != "pulumi-sriov-$drv.conf" ] && [ -f "$E/modprobe.d/$b" ] && cands="$cands $E/modprobe.d/$b"
    done
    hits=
    # shellcheck disable=SC2086 # $cands is split on purpose: one word per file
    [ -z "$cands" ] || hits=$(grep -lE "^[[:space:]]*options[[:space:]]+${drv}[[:space:]].*max_vfs" -- $cands 2>/dev/null)
    for h in $hits; do
      f=${h#"$R"}
      out foreign "$f" "options $drv max_vfs"; file foreignbody "$h" "$f"
    done
  fi
fi
# Our own files: read even when the device is gone, so delete can remove them.
fp="$sel"; [ -z "$fp" ] && [ "$kind" = pciAddress ] && fp="$val"
if [ -n "$fp" ]; then
  [ "$drv" != - ] || drv="$hint"
  unit="/etc/systemd/system/pulumi-sriov-pf-$fp.service"; rule="/etc/udev/rules.d/70-pulumi-sriov-$fp.rules"; conf=
  [ -n "$drv" ] && [ "$drv" != - ] && conf="/etc/modprobe.d/pulumi-sriov-$drv.conf"
  for f in "$unit" "$rule" $conf; do [ -f "$R$f" ] && file file "$R$f" "$f"; done
  fs="$records/sriov-pf-$fp.json"; [ -f "$R$fs" ] && file found "$R$fs"
  tr="$records/sriov-pf-$fp-taken-over.json"; [ -f "$R$tr" ] && file takenover "$R$tr"
  if command -v systemctl >/dev/null 2>&1; then
    u="pulumi-sriov-pf-$fp.service"
    # Enabled means the install link exists (systemd's own UnitFileState can
    # be stale after a write without a reload); one systemctl for the rest.
    en=; [ -f "$R$unit" ] && en=disabled; [ -L "$E/systemd/system/multi-user.target.wants/$u" ] && en=enabled
    printf 'unit\t%s\t' "$en"; systemctl show -p ActiveState --value -- "$u" 2>/dev/null || echo
  fi
  for e in "$E/systemd/system/pulumi-sriov-vf-$fp-"*.service; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    out vfunit "${e##*/}"
  done
fi
out end
