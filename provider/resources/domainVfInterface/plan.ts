// Pure planning for DomainVfInterface: from the domain as libvirt has it
// (running and persistent definitions) and the interface wanted, the
// attach/detach steps. An interface is found again by its MAC.
import type { DomainDef, DomainInterface } from "../../libvirt/domain";
import { renderInterface } from "../../libvirt/domain";
import type { Command as Operation, Plan as HostPlan } from "../../host";
import { refusal } from "../../host";
import { libvirtMessage, shownWithXml, virsh, withXmlFile, XML_FILE } from "../../libvirt/virsh";
import type { CommandResult } from "../../host";
import { IfaceInputs, IfaceOutputs } from "./schema";

export interface DomainFacts {
  exists: boolean;
  /** Has a running (or paused) instance: live attach/detach apply. */
  running: boolean;
  persistent: boolean;
  /** dumpxml: the running definition (the persistent one when not running). */
  live?: DomainDef;
  /** dumpxml --inactive: the persistent definition. */
  config?: DomainDef;
  /** For a pool source: the VFs the network holds (live), to recognise a pool interface in the running XML. */
  poolVfs?: string[];
}

/** The shared plan result, with its operations in two phases (ops is detach then attach). */
export interface Plan extends HostPlan<Operation> {
  /** Detaches run first… */
  detach: Operation[];
  /** …then, once a live detach has completed in the guest, the attach. */
  attach: Operation[];
  /** A live detach is planned: hot-unplug completes only when the guest lets go, so wait for it. */
  awaitLiveRemoval?: boolean;
}

export function allOps(p: Plan): Operation[] {
  return [...p.ops];
}

function phased(detach: Operation[], attach: Operation[], awaitLiveRemoval: boolean): Plan {
  return { ops: [...detach, ...attach], problems: [], warnings: [], detach, attach, awaitLiveRemoval };
}

function refused(reason: string): Plan {
  return { ...refusal<Operation>(reason), detach: [], attach: [] };
}

/** The <interface> the program asks for. */
export function desiredInterface(w: IfaceInputs, mac: string): DomainInterface {
  const i: DomainInterface = w.source.network !== undefined ? { type: "network", network: w.source.network, mac } : { type: "hostdev", managed: true, pciAddress: w.source.pciAddress, mac };
  if (w.vlan !== undefined) i.vlan = { tags: [{ id: w.vlan }] };
  if (w.virtualport) i.virtualport = { type: w.virtualport.type, parameters: { profileid: w.virtualport.profileId } };
  return i;
}

export function findByMac(d: DomainDef | undefined, mac: string): DomainInterface | undefined {
  return d?.interfaces.find((i) => i.mac === mac.toLowerCase());
}

function vlanOf(i: DomainInterface): number | undefined | "other" {
  const v = i.vlan;
  if (!v || v.tags.length === 0) return undefined;
  if (v.trunk || v.tags.length !== 1) return "other";
  return v.tags[0].id;
}

/**
 * Whether a running guest's interface is the pool interface wanted: libvirt
 * shows it as a hostdev with the VF it got and no network, so it is
 * recognised by being one of the pool's VFs (or by the network name, should
 * libvirt show it).
 */
function fromPool(found: DomainInterface, network: string, poolVfs: readonly string[] | undefined): boolean {
  if (found.network !== undefined) return found.network === network;
  return found.type === "hostdev" && found.pciAddress !== undefined && (poolVfs === undefined || poolVfs.includes(found.pciAddress));
}

/**
 * Differences between an interface found in the domain and the one wanted.
 * In live XML a pool interface shows what it got (type hostdev, the VF's
 * address, the network's VLAN), so there only the source and what the
 * program sets itself are compared.
 */
export function interfaceDifferences(found: DomainInterface, want: DomainInterface, scope: "live" | "config", poolVfs?: readonly string[]): string[] {
  const d: string[] = [];
  if (want.network !== undefined) {
    const same = scope === "live" ? fromPool(found, want.network, poolVfs) : found.type === "network" && found.network === want.network;
    if (!same) d.push(`source is ${describeSource(found)}, want network ${want.network}`);
  } else if (found.type !== "hostdev" || found.pciAddress !== want.pciAddress || found.network !== undefined) {
    d.push(`source is ${describeSource(found)}, want VF ${want.pciAddress}`);
  }
  const fv = vlanOf(found);
  const wv = vlanOf(want);
  if (fv !== wv && (scope === "config" || wv !== undefined)) d.push(`vlan is ${fv ?? "none"}, want ${wv ?? "none"}`);
  const fp = found.virtualport ? `${found.virtualport.type}:${found.virtualport.parameters.profileid ?? ""}` : "none";
  const wp = want.virtualport ? `${want.virtualport.type}:${want.virtualport.parameters.profileid ?? ""}` : "none";
  if (fp !== wp && (scope === "config" || want.virtualport)) d.push(`virtualport is ${fp}, want ${wp}`);
  return d;
}

export function describeSource(i: Pick<DomainInterface, "network" | "pciAddress" | "type">): string {
  if (i.network !== undefined) return `network ${i.network}${i.pciAddress ? ` (VF ${i.pciAddress})` : ""}`;
  if (i.pciAddress !== undefined) return `VF ${i.pciAddress}`;
  return `an interface of type ${i.type || "(none)"}`;
}

const HINTS: [RegExp, string][] = [
  [/group \d+ is not viable|not viable/i, "every device in the VF's IOMMU group must be bound to vfio-pci or unbound before it can be assigned"],
  [/requires exclusive access to interfaces, but none are available|no (free|usable|available)/i, "every VF of the pool network is in use by a guest"],
  [/in use by|busy/i, "the VF is already in use by another guest or by the host"],
  [/PortProfileRequest|port profile|virtual ?port/i, "the PF's driver cannot apply 802.1Qbh port profiles: that needs a NIC and a switch that speak 802.1Qbh, such as Cisco VM-FEX"],
  [/IOMMU|iommu_group|VFIO|vfio/i, "PCI assignment needs the IOMMU on (intel_iommu=on / amd_iommu=on) and the vfio-pci module"],
  [/not active|not running/i, "the domain is not running: attach to its configuration only (live: false)"],
  [/transient/i, "the domain is transient (no persistent configuration): set config: false"],
];

/** libvirt's message for an attach/detach, with the domain and VF named and a hint when we know the cause. */
export function explainLibvirt(action: string, domain: string, vf: string, r: CommandResult): string {
  const msg = libvirtMessage(r);
  const hint = HINTS.find(([re]) => re.test(msg))?.[1];
  return `${action} ${vf} ${action.startsWith("attach") ? "to" : "from"} domain ${domain}: ${msg}${hint ? ` (${hint})` : ""}`;
}

function scopes(live: boolean, config: boolean): string[] {
  return [...(live ? ["--live"] : []), ...(config ? ["--config"] : [])];
}

function attachOp(w: IfaceInputs, iface: DomainInterface, live: boolean, config: boolean): Operation {
  const where = live && config ? "running guest and its configuration" : live ? "running guest" : "configuration";
  const vf = describeSource(iface);
  return {
    description: `attach interface ${iface.mac} (${vf}) to domain ${w.domain} (${where})`,
    argv: withXmlFile(virsh(w.libvirtUri, "attach-device", w.domain, XML_FILE, ...scopes(live, config))),
    shown: shownWithXml(virsh(w.libvirtUri, "attach-device", w.domain, XML_FILE, ...scopes(live, config))),
    stdin: renderInterface(iface),
    explain: (r) => explainLibvirt("attach", w.domain, vf, r),
  };
}

/** Detach exactly the element libvirt shows (its own type and source), matched by MAC. */
function detachOp(w: Pick<IfaceInputs, "domain" | "libvirtUri">, found: DomainInterface, scope: "live" | "config"): Operation {
  const vf = describeSource(found);
  const matchOn: DomainInterface = { type: found.type, mac: found.mac, network: found.network, pciAddress: found.pciAddress, managed: found.managed };
  return {
    description: `detach interface ${found.mac} (${vf}) from domain ${w.domain} (${scope === "live" ? "running guest" : "configuration"})`,
    argv: withXmlFile(virsh(w.libvirtUri, "detach-device", w.domain, XML_FILE, scope === "live" ? "--live" : "--config")),
    shown: shownWithXml(virsh(w.libvirtUri, "detach-device", w.domain, XML_FILE, scope === "live" ? "--live" : "--config")),
    stdin: renderInterface(matchOn),
    explain: (r) => explainLibvirt("detach", w.domain, vf, r),
  };
}

/** Where the interface should be: live defaults to "when the domain is running". */
export function wanted(f: DomainFacts, w: IfaceInputs): { live: boolean; config: boolean } {
  return { live: w.live ?? f.running, config: w.config };
}

export function planInterface(f: DomainFacts, w: IfaceInputs, mac: string, mode: "create" | "update"): Plan {
  if (!f.exists) return refused(`domain ${w.domain} does not exist (virsh -c ${w.libvirtUri} list --all)`);
  const want = wanted(f, w);
  if (want.live && !f.running) return refused(`live: true, but domain ${w.domain} is not running; start it, or set live: false to change only its configuration`);
  if (want.config && !f.persistent)
    return refused(`config: true, but domain ${w.domain} is transient (it has no persistent configuration); set config: false`);
  const desired = desiredInterface(w, mac);
  const liveFound = f.running ? findByMac(f.live, mac) : undefined;
  const configFound = f.persistent ? findByMac(f.config, mac) : undefined;

  // A MAC taken by something else is not ours to replace when creating.
  if (mode === "create" && w.mac !== undefined) {
    for (const [scope, found] of [["live", liveFound], ["config", configFound]] as const) {
      const d = found ? interfaceDifferences(found, desired, scope, f.poolVfs) : [];
      if (found && d.length)
        return refused(`domain ${w.domain} already has an interface with MAC ${mac} (${d.join("; ")}); choose another mac`);
    }
  }

  const detach: Operation[] = [];
  let awaitLiveRemoval = false;
  let attachLive = false;
  let attachConfig = false;
  if (want.live) {
    if (!liveFound) attachLive = true;
    else if (interfaceDifferences(liveFound, desired, "live", f.poolVfs).length) {
      detach.push(detachOp(w, liveFound, "live"));
      awaitLiveRemoval = true;
      attachLive = true;
    }
  } else if (liveFound && w.live === false) {
    detach.push(detachOp(w, liveFound, "live"));
    awaitLiveRemoval = true;
  }
  if (want.config) {
    if (!configFound) attachConfig = true;
    else if (interfaceDifferences(configFound, desired, "config").length) {
      detach.push(detachOp(w, configFound, "config"));
      attachConfig = true;
    }
  } else if (configFound) detach.push(detachOp(w, configFound, "config"));
  const attach = attachLive || attachConfig ? [attachOp(w, desired, attachLive, attachConfig)] : [];
  return phased(detach, attach, awaitLiveRemoval);
}

export function planInterfaceRemoval(f: DomainFacts, w: Pick<IfaceInputs, "domain" | "libvirtUri">, mac: string): Plan {
  const detach: Operation[] = [];
  const liveFound = f.running ? findByMac(f.live, mac) : undefined;
  const configFound = f.persistent ? findByMac(f.config, mac) : undefined;
  if (liveFound) detach.push(detachOp(w, liveFound, "live"));
  if (configFound) detach.push(detachOp(w, configFound, "config"));
  return phased(detach, [], !!liveFound);
}

export function outputsOf(f: DomainFacts, w: IfaceInputs, mac: string): IfaceOutputs {
  const live = f.running ? findByMac(f.live, mac) : undefined;
  return {
    mac,
    pciAddress: live?.pciAddress ?? w.source.pciAddress ?? "",
    alias: live?.alias ?? "",
  };
}

/** The interface's inputs as the domain has it, for refresh; undefined when it is nowhere. */
export function observedInputs(f: DomainFacts, applied: IfaceInputs, mac: string): IfaceInputs | undefined {
  if (!f.exists) return undefined;
  const liveFound = f.running ? findByMac(f.live, mac) : undefined;
  const configFound = f.persistent ? findByMac(f.config, mac) : undefined;
  if (!liveFound && !configFound) return undefined;
  const o: IfaceInputs = { ...applied };
  if (configFound) {
    if (configFound.network !== undefined) o.source = { network: configFound.network };
    else if (configFound.pciAddress !== undefined) o.source = { pciAddress: configFound.pciAddress };
  } else if (liveFound && !(applied.source.network !== undefined && fromPool(liveFound, applied.source.network, f.poolVfs))) {
    // Only in the running guest, and not from the pool: what it holds is a VF by address.
    if (liveFound.network !== undefined) o.source = { network: liveFound.network };
    else if (liveFound.pciAddress !== undefined) o.source = { pciAddress: liveFound.pciAddress };
  }
  if (configFound) {
    const v = vlanOf(configFound);
    if (typeof v === "number") o.vlan = v;
    else delete o.vlan;
    if (configFound.virtualport?.type === "802.1Qbh" && configFound.virtualport.parameters.profileid)
      o.virtualport = { type: "802.1Qbh", profileId: configFound.virtualport.parameters.profileid };
    else delete o.virtualport;
  }
  o.config = !!configFound;
  if (f.running) {
    const wantLive = applied.live ?? true;
    if (wantLive && !liveFound) o.live = false;
    else if (!wantLive && liveFound) o.live = true;
  }
  return o;
}
