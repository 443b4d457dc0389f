// What the host says about one VF, gathered in one round trip and parsed by
// pure functions: a sysfs probe script (PF, VF, driver, IOMMU group, unit
// state) and `ip -j -d link show` (the attributes the PF holds per VF).
import type { Argv } from "../../host";
import { shScript } from "../../host/quote";
import { loadScript } from "../../scripts";
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
  unit: {
    name: string;
    content: string | null;
    enabled: string;
    active: string;
    /** systemd holds another version of the unit than its file (changed or removed without a reload). */
    stale?: boolean;
  };
}

/** Lines that separate the probe's sections: key=value facts, `ip` JSON, the unit file. */
export const IP_MARKER = "@@ip";
export const IP_END = "@@ip-exit=";
export const UNIT_MARKER = "@@unit";

// The probe (provider/scripts/virtual-function-facts.sh; its header lists
// the arguments) prints the section markers above literally.
const PROBE = loadScript("virtual-function-facts");

/** The one command that reads everything `parseFacts` needs. */
export function factsCommand(pf: string, storedPfPci: string, index: number, root = "", opts: { systemd?: boolean } = {}): Argv {
  return shScript(PROBE, pf, storedPfPci, String(index), root, opts.systemd === false ? "nosystemd" : "");
}

/** Splits the probe's output into its sections. */
export function probeSections(text: string): { head: string; ip: string; ipExit: number; unit: string | null } {
  const ipAt = text.indexOf(`\n${IP_MARKER}\n`);
  if (ipAt < 0 && !text.startsWith(`${IP_MARKER}\n`)) throw new Error("probe output has no ip section (the script did not finish)");
  const head = ipAt < 0 ? "" : text.slice(0, ipAt + 1);
  const afterIp = text.slice(ipAt < 0 ? IP_MARKER.length + 1 : ipAt + IP_MARKER.length + 2);
  const endAt = afterIp.indexOf(`\n${IP_END}`);
  if (endAt < 0) throw new Error("probe output has an unterminated ip section");
  const ip = afterIp.slice(0, endAt);
  const rest = afterIp.slice(endAt + 1);
  const nl = rest.indexOf("\n");
  const ipExit = Number(rest.slice(IP_END.length, nl < 0 ? undefined : nl));
  const tail = nl < 0 ? "" : rest.slice(nl + 1);
  const unit = tail.startsWith(`${UNIT_MARKER}\n`) ? tail.slice(UNIT_MARKER.length + 1) : null;
  return { head, ip, ipExit, unit };
}

function num(s: string | undefined): number | undefined {
  if (s === undefined || s.trim() === "") return undefined;
  const n = Number(s.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** Parses the probe's key=value section (and the unit file, when present). */
export function parseProbe(head: string, unitContent: string | null = null): Omit<HostFacts, "attributes" | "otherVfMacs"> {
  const kv = new Map<string, string>();
  const groupDevices: GroupDevice[] = [];
  const vfioUsers: VfioUser[] = [];
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
      // A process holding the group twice is listed once.
      if (Number.isInteger(pid) && !vfioUsers.some((u) => u.pid === pid)) vfioUsers.push({ pid, command: sp < 0 ? "" : v.slice(sp + 1) });
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
    unit: {
      name: g("unit_name"),
      content: unitContent,
      enabled: g("unit_wanted") === "1" ? "enabled" : unitContent === null ? "" : "disabled",
      active: g("ActiveState"),
      stale: g("NeedDaemonReload") === "yes",
    },
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

/** Assembles facts from the probe's output. */
export function parseFacts(index: number, output: string): HostFacts {
  const sec = probeSections(output);
  if (sec.ipExit !== 0) throw new Error(`ip -j -d link show exited ${sec.ipExit}`);
  const p = parseProbe(sec.head, sec.unit);
  const links = parseIpLinks(sec.ip);
  const { attributes, otherVfMacs } = vfInfo(links, p.pf && p.vf ? p.pf.netdev : "", p.pf && p.vf ? index : -1);
  return { ...p, attributes, otherVfMacs };
}
