// What the host says about one VF, gathered in one round trip and parsed by
// pure functions: a sysfs probe script (PF, VF, driver, IOMMU group, unit
// state) and `ip -j -d link show` (the attributes the PF holds per VF).
import type { Argv } from "../../host";
import { shScript } from "../../host/quote";
import type { LinkState, VlanProtocol } from "./schema";

/** A VF's attributes as the PF reports them; undefined where the driver reports nothing. */
export interface VfAttributes {
  mac: string;
  vlan: number;
  qos: number;
  vlanProtocol: VlanProtocol;
  spoofCheck?: boolean;
  trust?: boolean;
  linkState?: LinkState;
  minTxRate?: number;
  maxTxRate?: number;
}

export interface GroupDevice {
  pciAddress: string;
  /** "" when unbound. */
  driver: string;
}

export interface VfioUser {
  pid: number;
  command: string;
}

export interface PfFacts {
  pciAddress: string;
  /** PCI address behind the `pf` name, "" when no such interface. */
  namePciAddress: string;
  netdev: string;
  driver: string;
  operstate: string;
  /** undefined when unreadable (the interface is down). */
  carrier?: boolean;
  /** Mbit/s; undefined when unknown. */
  speed?: number;
  numVfs: number;
  totalVfs: number;
  /** sriov_drivers_autoprobe: whether new VFs get their default driver. */
  autoprobe: boolean;
}

export interface VfFacts {
  pciAddress: string;
  driver: string;
  driverOverride: string;
  netdev: string;
  /** The MAC the VF's own interface uses now ("" without one). */
  netdevMac: string;
  iommuGroup: number;
  numaNode: number;
  groupDevices: GroupDevice[];
  /** Processes holding the VF's /dev/vfio group open (a guest using it). */
  vfioUsers: VfioUser[];
}

export interface HostFacts {
  /** undefined when the PF is not found (by stored PCI address or by name). */
  pf?: PfFacts;
  /** undefined when the PF has no VF with this index. */
  vf?: VfFacts;
  attributes?: VfAttributes;
  /** Administrative MACs of every other VF on the host, with where they are. */
  otherVfMacs: { mac: string; pf: string; index: number }[];
  vfioPciLoaded: boolean;
  /** /etc/machine-id (or the host name): the host part of derived MACs. */
  machineId: string;
  /** Our unit for this VF: name "" when the PF is unknown; content null when absent. */
  unit: { name: string; content: string | null; enabled: string; active: string };
}

/** Separates the probe's key=value lines from the unit file that follows. */
export const UNIT_MARKER = "--- unit file ---";

// Positional args: $1 PF name, $2 PF PCI address from state ("" when
// creating: resolve the name), $3 VF index. Prints key=value lines, then the
// unit file (if any) after UNIT_MARKER.
const PROBE = String.raw`
name="$1"; pfpci="$2"; idx="$3"
rd() { cat -- "$1" 2>/dev/null | head -n 1; }
link() { if [ -e "$1" ]; then basename -- "$(readlink -f -- "$1")"; fi; }
namepci=""
[ -e "/sys/class/net/$name/device" ] && namepci=$(link "/sys/class/net/$name/device")
echo "pf_name_pci=$namepci"
[ -n "$pfpci" ] || pfpci="$namepci"
[ -d /sys/bus/pci/drivers/vfio-pci ] && echo "vfio_loaded=1"
mid=$(rd /etc/machine-id); [ -n "$mid" ] || mid=$(rd /proc/sys/kernel/hostname)
echo "machine_id=$mid"
unit=""
if [ -n "$pfpci" ]; then
  unit="pulumi-sriov-vf-$pfpci-$idx.service"
  echo "unit_name=$unit"
  echo "unit_enabled=$(systemctl is-enabled -- "$unit" 2>/dev/null | head -n 1)"
  echo "unit_active=$(systemctl is-active -- "$unit" 2>/dev/null | head -n 1)"
fi
p="/sys/bus/pci/devices/$pfpci"
if [ -n "$pfpci" ] && [ -e "$p" ]; then
  echo "pf_pci=$pfpci"
  nd=$(ls -- "$p/net" 2>/dev/null | head -n 1)
  echo "pf_netdev=$nd"
  echo "pf_driver=$(link "$p/driver")"
  echo "pf_numvfs=$(rd "$p/sriov_numvfs")"
  echo "pf_totalvfs=$(rd "$p/sriov_totalvfs")"
  echo "pf_autoprobe=$(rd "$p/sriov_drivers_autoprobe")"
  if [ -n "$nd" ]; then
    echo "pf_operstate=$(rd "/sys/class/net/$nd/operstate")"
    echo "pf_carrier=$(rd "/sys/class/net/$nd/carrier")"
    echo "pf_speed=$(rd "/sys/class/net/$nd/speed")"
  fi
  if [ -e "$p/virtfn$idx" ]; then
    vf=$(link "$p/virtfn$idx"); v="/sys/bus/pci/devices/$vf"
    echo "vf_pci=$vf"
    echo "vf_driver=$(link "$v/driver")"
    echo "vf_override=$(rd "$v/driver_override")"
    vnd=$(ls -- "$v/net" 2>/dev/null | head -n 1)
    echo "vf_netdev=$vnd"
    [ -n "$vnd" ] && echo "vf_netdev_mac=$(rd "$v/net/$vnd/address")"
    echo "vf_numa=$(rd "$v/numa_node")"
    g=$(link "$v/iommu_group")
    echo "vf_group=$g"
    if [ -n "$g" ]; then
      for d in "/sys/kernel/iommu_groups/$g/devices/"*; do
        [ -e "$d" ] && echo "group_device=$(basename -- "$d") $(link "$d/driver")"
      done
      if [ -e "/dev/vfio/$g" ]; then
        find /proc/[0-9]*/fd -maxdepth 1 -lname "/dev/vfio/$g" 2>/dev/null | cut -d/ -f3 | sort -u | while read -r pid; do
          echo "vfio_user=$pid $(rd "/proc/$pid/comm")"
        done
      fi
    fi
  fi
fi
if [ -n "$unit" ] && [ -e "/etc/systemd/system/$unit" ]; then
  echo "UNIT_MARKER"
  cat -- "/etc/systemd/system/$unit"
fi
exit 0
`.replace("UNIT_MARKER", UNIT_MARKER);

/** The commands of one facts round trip, in the order `parseFacts` expects. */
export function factsCommands(pf: string, storedPfPci: string, index: number): Argv[] {
  return [shScript(PROBE, pf, storedPfPci, String(index)), ["ip", "-j", "-d", "link", "show"]];
}

function num(s: string | undefined): number | undefined {
  if (s === undefined || s.trim() === "") return undefined;
  const n = Number(s.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** Parses the probe script's output. */
export function parseProbe(text: string): Omit<HostFacts, "attributes" | "otherVfMacs"> {
  const kv = new Map<string, string>();
  const groupDevices: GroupDevice[] = [];
  const vfioUsers: VfioUser[] = [];
  const marker = `\n${UNIT_MARKER}\n`;
  const at = ("\n" + text).indexOf(marker);
  const head = at < 0 ? text : text.slice(0, at);
  const unitContent = at < 0 ? null : text.slice(at + marker.length - 1);
  for (const line of head.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const k = line.slice(0, eq);
    const v = line.slice(eq + 1).trim();
    if (k === "group_device") {
      const [pci, driver = ""] = v.split(" ");
      groupDevices.push({ pciAddress: pci, driver });
    } else if (k === "vfio_user") {
      const sp = v.indexOf(" ");
      const pid = Number(sp < 0 ? v : v.slice(0, sp));
      if (Number.isInteger(pid)) vfioUsers.push({ pid, command: sp < 0 ? "" : v.slice(sp + 1) });
    } else kv.set(k, v);
  }
  const g = (k: string) => kv.get(k) ?? "";
  let pf: PfFacts | undefined;
  if (g("pf_pci")) {
    const carrier = g("pf_carrier");
    const speed = num(g("pf_speed"));
    pf = {
      pciAddress: g("pf_pci"),
      namePciAddress: g("pf_name_pci"),
      netdev: g("pf_netdev"),
      driver: g("pf_driver"),
      operstate: g("pf_operstate") || "unknown",
      carrier: carrier === "1" ? true : carrier === "0" ? false : undefined,
      // The kernel reports -1 (or nothing) without a link.
      speed: speed !== undefined && speed > 0 ? speed : undefined,
      numVfs: num(g("pf_numvfs")) ?? 0,
      totalVfs: num(g("pf_totalvfs")) ?? 0,
      autoprobe: g("pf_autoprobe") !== "0",
    };
  }
  let vf: VfFacts | undefined;
  if (pf && g("vf_pci")) {
    const override = g("vf_override");
    vf = {
      pciAddress: g("vf_pci"),
      driver: g("vf_driver"),
      driverOverride: override === "(null)" ? "" : override,
      netdev: g("vf_netdev"),
      netdevMac: g("vf_netdev_mac").toLowerCase(),
      iommuGroup: num(g("vf_group")) ?? -1,
      numaNode: num(g("vf_numa")) ?? -1,
      groupDevices,
      vfioUsers,
    };
  }
  return {
    pf,
    vf,
    vfioPciLoaded: g("vfio_loaded") === "1",
    machineId: g("machine_id"),
    unit: { name: g("unit_name"), content: unitContent, enabled: g("unit_enabled"), active: g("unit_active") },
  };
}

interface IpVf {
  vf: number;
  address?: string;
  vlan_list?: { vlan?: number; qos?: number; protocol?: string }[];
  vlan?: number;
  qos?: number;
  protocol?: string;
  rate?: { max_tx?: number; min_tx?: number };
  tx_rate?: number;
  spoofchk?: boolean;
  trust?: boolean;
  link_state?: string;
}

interface IpLink {
  ifname: string;
  vfinfo_list?: IpVf[];
}

/** Parses `ip -j -d link show` output. */
export function parseIpLinks(json: string): IpLink[] {
  const trimmed = json.trim();
  if (!trimmed) return [];
  const v = JSON.parse(trimmed);
  if (!Array.isArray(v)) throw new Error("ip -j link show: expected a JSON array");
  return v as IpLink[];
}

/** One VF's attributes from its PF's `vfinfo_list` entry. */
export function vfAttributes(entry: IpVf): VfAttributes {
  // iproute2 prints a vlan_list (kernel ≥ 4.9) or the single legacy vlan;
  // zero fields and the default 802.1Q protocol are left out.
  const vl = entry.vlan_list && entry.vlan_list.length ? entry.vlan_list[0] : entry;
  const proto = vl.protocol;
  const ls = entry.link_state;
  return {
    mac: (entry.address ?? "00:00:00:00:00:00").toLowerCase(),
    vlan: vl.vlan ?? 0,
    qos: vl.qos ?? 0,
    vlanProtocol: proto === "802.1ad" ? "802.1ad" : "802.1Q",
    spoofCheck: entry.spoofchk,
    trust: entry.trust,
    linkState: ls === "auto" || ls === "enable" || ls === "disable" ? ls : undefined,
    minTxRate: entry.rate ? entry.rate.min_tx ?? 0 : undefined,
    maxTxRate: entry.rate ? entry.rate.max_tx ?? 0 : entry.tx_rate,
  };
}

/** Finds the VF's attributes and every other VF's MAC in the host's links. */
export function vfInfo(links: IpLink[], pfNetdev: string, index: number): { attributes?: VfAttributes; otherVfMacs: HostFacts["otherVfMacs"] } {
  let attributes: VfAttributes | undefined;
  const otherVfMacs: HostFacts["otherVfMacs"] = [];
  for (const l of links) {
    for (const e of l.vfinfo_list ?? []) {
      if (l.ifname === pfNetdev && e.vf === index) attributes = vfAttributes(e);
      else if (e.address) otherVfMacs.push({ mac: e.address.toLowerCase(), pf: l.ifname, index: e.vf });
    }
  }
  return { attributes, otherVfMacs };
}

/** Assembles facts from the results of `factsCommands`. */
export function parseFacts(index: number, probe: string, ipJson: string): HostFacts {
  const p = parseProbe(probe);
  const links = parseIpLinks(ipJson);
  const { attributes, otherVfMacs } = vfInfo(links, p.pf && p.vf ? p.pf.netdev : "", p.pf && p.vf ? index : -1);
  return { ...p, attributes, otherVfMacs };
}
