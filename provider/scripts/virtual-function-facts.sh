# What the host says about one VF, in three sections parsed by
# provider/resources/virtualFunction/facts.ts: key=value facts, then "@@ip"
# and `ip -j -d link show` ending with "@@ip-exit=<rc>", then "@@unit" and
# our unit file when it exists.
# Few processes (each costs a fork and exec: over 0.1 s on a slow host):
# sysfs is read with the `read` builtin, names with parameter expansion,
# symlinks with `cd -P`. Positional args:
#   $1 PF name   $2 PF PCI address from state ("" when creating: resolve the name)
#   $3 VF index  $4 a root for /sys, /proc, /dev and /etc ("" on hosts; a fake tree in tests)
#   $5 "nosystemd" to leave out systemd's state of the unit (a read-back after
#      a change needs none, and systemctl is the slowest process here)
# Word splitting of $a, $r and $drv is on purpose: they are space-separated
# lists of sysfs paths, which contain no spaces.
# shellcheck disable=SC2086,SC2046
name="$1"; pfpci="$2"; idx="$3"; R="$4"; nosystemd="$5"
rd() { v=; if [ -e "$1" ]; then read -r v < "$1" 2>/dev/null || :; fi; }
# Resolves symlinks to directories (all of sysfs's links read here) with the
# `cd -P` builtin, no process; missing ones resolve to "/" (basename "").
links() { r=; for l; do if [ -e "$l" ] && cd -P -- "$l" 2>/dev/null; then r="$r $PWD"; else r="$r /"; fi; done; cd /; }
namepci=
if [ -e "$R/sys/class/net/$name/device" ]; then links "$R/sys/class/net/$name/device"; namepci=${r##*/}; fi
echo "pf_name_pci=$namepci"
[ -n "$pfpci" ] || pfpci=$namepci
[ -d "$R/sys/bus/pci/drivers/vfio-pci" ] && echo vfio_loaded=1
rd "$R/etc/machine-id"; [ -n "$v" ] || rd "$R/proc/sys/kernel/hostname"
echo "machine_id=$v"
unit=
if [ -n "$pfpci" ]; then
  unit="pulumi-sriov-vf-$pfpci-$idx.service"
  echo "unit_name=$unit"
  # Enabled means the install link exists: systemd's own UnitFileState can be
  # stale after a unit was written or removed without a daemon-reload.
  [ -L "$R/etc/systemd/system/multi-user.target.wants/$unit" ] && echo unit_wanted=1
  [ "$nosystemd" = nosystemd ] || systemctl show -p ActiveState -p NeedDaemonReload -- "$unit" 2>/dev/null
fi
p="$R/sys/bus/pci/devices/$pfpci"
if [ -n "$pfpci" ] && [ -e "$p" ]; then
  echo "pf_pci=$pfpci"
  nd=; for n in "$p"/net/*; do [ -e "$n" ] && nd=${n##*/}; break; done
  echo "pf_netdev=$nd"
  rd "$p/sriov_numvfs"; echo "pf_numvfs=$v"
  rd "$p/sriov_totalvfs"; echo "pf_totalvfs=$v"
  rd "$p/sriov_drivers_autoprobe"; echo "pf_autoprobe=$v"
  if [ -n "$nd" ]; then
    rd "$R/sys/class/net/$nd/operstate"; echo "pf_operstate=$v"
    rd "$R/sys/class/net/$nd/carrier"; echo "pf_carrier=$v"
    rd "$R/sys/class/net/$nd/speed"; echo "pf_speed=$v"
  fi
  links "$p/driver" "$p/virtfn$idx"; set -- $r
  d=${1##*/}; echo "pf_driver=$d"
  if [ -e "$p/virtfn$idx" ]; then
    vf=${2##*/}; vd="$R/sys/bus/pci/devices/$vf"
    echo "vf_pci=$vf"
    rd "$vd/driver_override"; echo "vf_override=$v"
    vnd=; for n in "$vd"/net/*; do [ -e "$n" ] && vnd=${n##*/}; break; done
    echo "vf_netdev=$vnd"
    if [ -n "$vnd" ]; then rd "$vd/net/$vnd/address"; echo "vf_netdev_mac=$v"; fi
    rd "$vd/numa_node"; echo "vf_numa=$v"
    devs=; drv=
    for g in "$vd"/iommu_group/devices/*; do [ -e "$g" ] && { devs="$devs ${g##*/}"; drv="$drv $g/driver"; }; done
    links "$vd/driver" "$vd/iommu_group" $drv; set -- $r
    d=${1##*/}; echo "vf_driver=$d"
    g=${2##*/}; [ "$2" = / ] && g=; echo "vf_group=$g"
    shift 2
    for dev in $devs; do d=${1##*/}; shift; echo "group_device=$dev $d"; done
    if [ -n "$g" ] && [ -e "$R/dev/vfio/$g" ]; then
      # shellcheck disable=SC2044 # /proc/<pid>/fd paths contain no spaces
      for f in $(find "$R"/proc/[0-9]*/fd -maxdepth 1 -lname "/dev/vfio/$g" -printf '%h\n' 2>/dev/null); do
        pid=${f#"$R"/proc/}; pid=${pid%/fd}; rd "$R/proc/$pid/comm"; echo "vfio_user=$pid $v"
      done
    fi
  fi
fi
echo "@@ip"
ip -j -d link show; rc=$?
echo; echo "@@ip-exit=$rc"
if [ -n "$unit" ] && [ -e "$R/etc/systemd/system/$unit" ]; then
  echo "@@unit"
  # read, not cat: one process less (a missing last newline reads as there)
  while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done <"$R/etc/systemd/system/$unit"
fi
exit 0
