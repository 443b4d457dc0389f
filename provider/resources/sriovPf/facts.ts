// What the host says about a PF, gathered in one round trip by one shell
// script (provider/scripts/sriov-pf-facts.sh), and parsed here without touching the host. The script takes its
// inputs as positional parameters (never spliced into its text); $3 is a
// root prefix so tests can run it against a fake /sys and /etc.
import { RECORD_DIR } from "../../host/host";
import { shScript } from "../../host/quote";
import { loadScript } from "../../scripts";
import { FoundState, Selector } from "./schema";
import { parseTakenOver, TakenOver } from "./takeover";

export const UNIT_DIR = "/etc/systemd/system";
export const UDEV_DIR = "/etc/udev/rules.d";
export const MODPROBE_DIR = "/etc/modprobe.d";

export function unitName(pci: string): string {
  return `pulumi-sriov-pf-${pci}.service`;
}
export function unitPath(pci: string): string {
  return `${UNIT_DIR}/${unitName(pci)}`;
}
export function udevRulePath(pci: string): string {
  return `${UDEV_DIR}/70-pulumi-sriov-${pci}.rules`;
}
/** Create's record of the PF as found (VF count, autoprobe, MTU), kept until delete. */
export function foundPath(pci: string): string {
  return `${RECORD_DIR}/sriov-pf-${pci}.json`;
}

export function modprobePath(driver: string): string {
  return `${MODPROBE_DIR}/pulumi-sriov-${driver}.conf`;
}

/** The read script (provider/scripts/sriov-pf-facts.sh; its header lists the arguments). */
export const READ_SCRIPT = loadScript("sriov-pf-facts");

/** `driverHint`: the PF's last known driver, to find its modprobe file when the device is gone. */
export function readArgv(kind: Selector, value: string, opts: { root?: string; driverHint?: string } = {}): string[] {
  return shScript(READ_SCRIPT, kind, value, opts.root ?? "", opts.driverHint ?? "", RECORD_DIR);
}

export interface PfCandidate {
  pciAddress: string;
  driver: string;
  netdevs: string[];
  macs: string[];
}

export interface NetdevFacts {
  name: string;
  mac: string;
  mtu: number;
  operstate: string;
}

export interface VfFacts {
  index: number;
  pciAddress: string;
  iommuGroup?: number;
  driver: string;
  netdev: string;
  mac: string;
}

export interface PfFacts {
  pciAddress: string;
  /** undefined: the device has no SR-IOV capability. */
  totalVfs?: number;
  numVfs: number;
  autoprobe: boolean;
  numaNode: number;
  /** "" when no driver is bound. */
  driver: string;
  /** Set when the device is itself a VF: its PF. */
  physfn?: string;
  netdevs: NetdevFacts[];
  vfs: VfFacts[];
  /** Addresses the PF assigned to its VFs (ip link "vf N link/ether …"). */
  adminMacs: Record<number, string>;
  driverHasMaxVfs: boolean;
}

export interface Facts {
  candidates: PfCandidate[];
  /** For the interface selector: the device behind the netdev ("-" when it has none), absent when no such netdev. */
  interfaceDevice?: string;
  pf?: PfFacts;
  /** Our persistence files for this PF that exist, by path. */
  files: Record<string, string>;
  unit?: { enabled: string; active: string };
  /** The PF as an earlier, unfinished create found it (see foundPath). */
  found?: FoundState;
  vfUnits: string[];
  tools: string[];
  /** Persistence this resource did not write that also sets this PF's VFs (udev rules, units, modprobe files, rc.local). */
  foreign: { path: string; mentions: string }[];
  /** The foreign files' content, by path. */
  foreignContent?: Record<string, string>;
  /** Foreign systemd units' `systemctl is-enabled` state, by path. */
  foreignEnabled?: Record<string, string>;
  /** Hand-made files an earlier apply took over (takeOver), kept until delete puts them back. */
  takenOver?: TakenOver[];
}

/** The found-state file's content, or undefined when it is not one (then create records anew). */
export function parseFound(text: string): FoundState | undefined {
  try {
    const v = JSON.parse(text);
    if (Number.isInteger(v?.numVfs) && v.numVfs >= 0 && typeof v.autoprobe === "boolean" && Number.isInteger(v.mtu) && v.mtu >= 0)
      return { numVfs: v.numVfs, autoprobe: v.autoprobe, mtu: v.mtu };
  } catch {
    /* not JSON */
  }
  return undefined;
}

export function renderFound(f: FoundState): string {
  return JSON.stringify({ numVfs: f.numVfs, autoprobe: f.autoprobe, mtu: f.mtu }) + "\n";
}

function num(s: string | undefined): number | undefined {
  if (s === undefined || s === "-" || s === "") return undefined;
  const n = Number(s.trim());
  return Number.isFinite(n) ? n : undefined;
}

const dash = (s: string | undefined) => (s === undefined || s === "-" ? "" : s);

const vfUnitIndex = (unit: string) => Number(/-(\d+)\.service$/.exec(unit)?.[1] ?? -1);

/** Parses the read script's output. Throws when it is cut short. */
export function parseFacts(stdout: string): Facts {
  const f: Facts = { candidates: [], files: {}, vfUnits: [], tools: [], foreign: [] };
  const pf: Partial<PfFacts> & { netdevs: NetdevFacts[]; vfs: VfFacts[]; adminMacs: Record<number, string> } = {
    netdevs: [],
    vfs: [],
    adminMacs: {},
  };
  let selected: string | undefined;
  let ended = false;
  const attrs: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    if (!line) continue;
    const [tag, ...c] = line.split("\t");
    switch (tag) {
      case "cand":
        f.candidates.push({ pciAddress: c[0], driver: dash(c[1]), netdevs: [], macs: [] });
        break;
      case "candnet": {
        const cand = f.candidates.find((x) => x.pciAddress === c[0]);
        if (cand) {
          cand.netdevs.push(c[1]);
          if (dash(c[2])) cand.macs.push(c[2].toLowerCase());
        }
        break;
      }
      case "ifdev":
        f.interfaceDevice = c[0];
        break;
      case "tool":
        f.tools.push(c[0]);
        break;
      case "sel":
        selected = c[0];
        break;
      case "pf.driver":
        pf.driver = dash(c[0]);
        break;
      case "pf.physfn":
        pf.physfn = dash(c[0]) || undefined;
        break;
      case "pf.net":
        pf.netdevs.push({ name: c[0], mac: dash(c[1]), mtu: num(c[2]) ?? 0, operstate: dash(c[3]) });
        break;
      case "vf": {
        const v: VfFacts = { index: Number(c[0]), pciAddress: dash(c[1]), driver: dash(c[3]), netdev: dash(c[4]), mac: dash(c[5]) };
        const g = num(c[2]);
        if (g !== undefined) v.iommuGroup = g;
        pf.vfs.push(v);
        break;
      }
      case "vfmac":
        pf.adminMacs[Number(c[0])] = c[1].toLowerCase();
        break;
      case "file":
        f.files[c[0]] = Buffer.from(c[1] ?? "", "base64").toString("utf8");
        break;
      case "unit":
        f.unit = { enabled: c[0] ?? "", active: c[1] ?? "" };
        break;
      case "found":
        f.found = parseFound(Buffer.from(c[0] ?? "", "base64").toString("utf8"));
        break;
      case "vfunit":
        f.vfUnits.push(c[0]);
        break;
      case "param":
        if (c[0] === "max_vfs") pf.driverHasMaxVfs = true;
        break;
      case "foreign":
        f.foreign.push({ path: c[0], mentions: (c[1] ?? "").trim() });
        break;
      case "foreignbody":
        (f.foreignContent ??= {})[c[0]] = Buffer.from(c[1] ?? "", "base64").toString("utf8");
        break;
      case "foreignunit":
        (f.foreignEnabled ??= {})[c[0]] = (c[1] ?? "").trim();
        break;
      case "takenover":
        f.takenOver = parseTakenOver(Buffer.from(c[0] ?? "", "base64").toString("utf8"));
        break;
      case "end":
        ended = true;
        break;
      default:
        if (tag.startsWith("pf.")) attrs[tag.slice(3)] = c[0];
    }
  }
  if (!ended) throw new Error("the host's answer about its PCI devices ended early");
  // The host lists folders in byte order; VF units are ordered by VF index (vf-…-2 before vf-…-10).
  f.vfUnits.sort((a, b) => vfUnitIndex(a) - vfUnitIndex(b) || (a < b ? -1 : a > b ? 1 : 0));
  if (selected) {
    f.pf = {
      pciAddress: selected,
      totalVfs: num(attrs.sriov_totalvfs),
      numVfs: num(attrs.sriov_numvfs) ?? 0,
      autoprobe: attrs.sriov_drivers_autoprobe !== "0",
      numaNode: num(attrs.numa_node) ?? -1,
      driver: pf.driver ?? "",
      physfn: pf.physfn,
      netdevs: pf.netdevs,
      vfs: pf.vfs,
      adminMacs: pf.adminMacs,
      driverHasMaxVfs: !!pf.driverHasMaxVfs,
    };
  }
  return f;
}

/** Why the selector found no usable PF, in an operator's words; undefined when it did. */
export function selectorProblem(facts: Facts, kind: Selector, value: string, host: string): { property: string; reason: string } | undefined {
  const r = selectorReason(facts, kind, value, host);
  if (!r) return undefined;
  const i = r.indexOf(": ");
  return { property: r.slice(0, i), reason: r.slice(i + 2) };
}

function selectorReason(facts: Facts, kind: Selector, value: string, host: string): string | undefined {
  const list = facts.candidates.length
    ? `SR-IOV capable devices on ${host}: ${facts.candidates
        .map((c) => `${c.pciAddress} (${[c.netdevs.join(", ") || "no interface", c.driver || "no driver", ...c.macs].join(", ")})`)
        .join("; ")}`
    : `${host} has no SR-IOV capable PCI device (none has sriov_totalvfs; check that SR-IOV is enabled in the BIOS and for the card)`;
  const pf = facts.pf;
  if (!pf) {
    if (kind === "interface") {
      if (facts.interfaceDevice === undefined) return `interface: no network interface named ${value} on ${host}. ${list}`;
      if (facts.interfaceDevice === "-") return `interface: ${value} on ${host} is not backed by a device (a bridge, bond or other virtual interface). ${list}`;
      return `interface: ${value} on ${host} is not a PCI device (its device is ${facts.interfaceDevice}). ${list}`;
    }
    if (kind === "pciAddress") return `pciAddress: no PCI device ${value} on ${host}. ${list}`;
    const hits = facts.candidates.filter((c) => c.macs.includes(value));
    if (hits.length > 1)
      return `macAddress: ${value} belongs to several PFs on ${host} (${hits.map((h) => h.pciAddress).join(", ")}; bonded ports share a MAC); use pciAddress instead`;
    return `macAddress: no SR-IOV PF on ${host} has MAC ${value}. ${list}`;
  }
  if (pf.physfn) return `${kind}: ${value} on ${host} is a virtual function of PF ${pf.physfn}, not a PF; use the PF (or the VirtualFunction resource for this VF)`;
  if (pf.totalVfs === undefined)
    return `${kind}: ${value} on ${host} (PCI ${pf.pciAddress}, driver ${pf.driver || "none"}) does not support SR-IOV: it has no sriov_totalvfs. ${list}`;
  return undefined;
}
