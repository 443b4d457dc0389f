// Pure planning: from what the host reports (facts) and what is wanted, the
// list of operations that gets there, or the reasons it cannot before any
// change is made. The same list is what apply runs, so its descriptions are
// written for an operator reading them.
import type { Argv, Plan as HostPlan } from "../../host";
import { shScript } from "../../host/quote";
import { reloadUnlessLoaded } from "../../host/systemd";
import type { HostFacts, VfAttributes } from "./facts";
import { defaultMac, ZERO_MAC } from "./mac";
import { DriverMode, RESET, unitName, unitPath, VfInputs, VfOutputs, VlanProtocol } from "./schema";
import { renderUnit } from "./unit";
import { loadScript } from "../../scripts";

const START_UNIT = loadScript("start-unit");

/** Everything a VF should be: its inputs with the MAC and VLAN resolved. */
export type Resolved = Omit<VfInputs, "pf" | "index" | "mac" | "vlan"> & { mac: string; vlan: number };

/** The MAC this resource applied last: the input, or the derived one reported in outputs. */
export function ownMac(applied: VfInputs, outs: VfOutputs): string {
  return applied.mac ?? outs.mac;
}

/** What delete returns a VF to. */
export const RESET_STATE: Resolved = { ...RESET, persist: false };

/** The input property an `ip link set … vf` operation applies, for refusal errors. */
export type Attribute = "mac" | "vlan" | "vlanProtocol" | "spoofCheck" | "trust" | "linkState" | "minTxRate" | "maxTxRate";

export type Operation =
  | { kind: "run"; description: string; argv: Argv; attribute?: Attribute; value?: string; joins?: { prefix: Argv; words: string[] } }
  | { kind: "write"; description: string; path: string; content: string }
  | { kind: "remove"; description: string; path: string };

/** The shared plan result; problems are reasons the change cannot be made (nothing is run). */
export type Plan = HostPlan<Operation>;

/** Drivers bound to other devices of an IOMMU group that still let vfio-pci use the group. */
const VFIO_GROUP_COMPANIONS = new Set(["", "vfio-pci", "pci-stub", "pcieport"]);

/** What PF drivers are known to refuse, so it fails before anything changes. */
const REFUSES: Record<string, { minTxRate?: string; linkState?: string; qinq?: string; rateNeedsLink?: boolean }> = {
  igb: {
    minTxRate: "igb has no minimum TX rate for VFs",
    linkState: "igb cannot set a VF's link state",
    qinq: "igb tags VFs with 802.1Q only",
    rateNeedsLink: true,
  },
  ixgbe: { minTxRate: "ixgbe has no minimum TX rate for VFs", qinq: "ixgbe tags VFs with 802.1Q only", rateNeedsLink: true },
  i40e: { minTxRate: "i40e has no minimum TX rate for VFs" },
};

export function vfName(facts: HostFacts, index: number): string {
  return `VF ${index} of ${facts.pf?.netdev || "?"} (${facts.pf?.pciAddress || "?"})`;
}

function ipSet(pf: string, index: number, ...args: string[]): Argv {
  return ["ip", "link", "set", "dev", pf, "vf", String(index), ...args];
}

function sysfsWrite(value: string, path: string): Argv {
  return shScript('printf "%s\\n" "$1" > "$2"', value, path);
}

export function vlanWords(vlan: number, qos: number, proto: VlanProtocol, currentProto: VlanProtocol = "802.1Q"): string[] {
  const w = ["vlan", String(vlan)];
  if (vlan !== 0 || qos !== 0) w.push("qos", String(qos));
  // The protocol is named only when it is, or was, 802.1ad: drivers without
  // 802.1ad support may reject the attribute altogether.
  if (proto !== "802.1Q" || currentProto !== "802.1Q") w.push("proto", proto);
  return w;
}

/** The wanted state: inputs with defaults, the MAC derived when left out, and MAC problems. */
export function resolve(inputs: VfInputs, facts: HostFacts): { desired: Resolved; problems: string[] } {
  const problems: string[] = [];
  const taken = new Map(facts.otherVfMacs.filter((o) => o.mac !== ZERO_MAC).map((o) => [o.mac, o]));
  let mac: string;
  if (inputs.mac !== undefined) {
    mac = inputs.mac;
    const other = taken.get(mac);
    if (other && mac !== ZERO_MAC) problems.push(`mac ${mac} is already the MAC of VF ${other.index} of ${other.pf}; VF MACs must be unique on a host`);
  } else {
    mac = defaultMac(facts.machineId, facts.pf?.pciAddress ?? "", inputs.index, new Set(taken.keys()));
  }
  return {
    desired: {
      mac,
      vlan: inputs.vlan ?? 0,
      qos: inputs.qos,
      vlanProtocol: inputs.vlanProtocol,
      spoofCheck: inputs.spoofCheck,
      trust: inputs.trust,
      linkState: inputs.linkState,
      minTxRate: inputs.minTxRate,
      maxTxRate: inputs.maxTxRate,
      driver: inputs.driver,
      persist: inputs.persist,
    },
    problems,
  };
}

/** The attributes as the host has them, with defaults where the driver reports nothing. */
function current(a: VfAttributes) {
  return {
    mac: a.mac,
    vlan: a.vlan,
    qos: a.qos,
    vlanProtocol: a.vlanProtocol,
    spoofCheck: a.spoofCheck ?? RESET.spoofCheck,
    trust: a.trust ?? RESET.trust,
    linkState: a.linkState ?? RESET.linkState,
    minTxRate: a.minTxRate ?? 0,
    maxTxRate: a.maxTxRate ?? 0,
  };
}

export function driverMode(facts: HostFacts): DriverMode {
  return facts.vf?.driver === "vfio-pci" ? "vfio-pci" : "default";
}

function inUse(facts: HostFacts): string {
  return (facts.vf?.vfioUsers ?? []).map((u) => `${u.command || "process"} (pid ${u.pid})`).join(", ");
}

export interface PlanOptions {
  /** The `pf` input, for messages when it is not found. */
  pfName: string;
  /** Deleting: a PF or VF already gone is fine, and only the unit is cleaned up. */
  removing?: boolean;
  /** The administrative MAC this resource set before (clearing removes only that one). */
  ownMac?: string;
}

/**
 * Operations taking the VF from `facts` to `d`. A MAC of all zeros means the
 * MAC is the VF driver's or guest's choice: a MAC this resource set before is
 * cleared, any other is left alone (the kernel does not say whether a MAC was
 * set by the PF or chosen by the VF, so nothing else can be judged).
 */
export function plan(facts: HostFacts, index: number, d: Resolved, opts: PlanOptions = { pfName: "" }): Plan {
  const ops: Operation[] = [];
  const problems: string[] = [];
  const pf = facts.pf;
  const vf = facts.vf;
  const name = vfName(facts, index);

  if (!pf) {
    if (!opts.removing) problems.push(`PF ${opts.pfName}: no such network interface on the host`);
  } else if (!vf || !facts.attributes) {
    if (!opts.removing)
      problems.push(
        `${name} does not exist: the PF has ${pf.numVfs} VF${pf.numVfs === 1 ? "" : "s"} (sriov_numvfs; at most ${pf.totalVfs}); raise numVfs on its SriovPf`,
      );
  } else {
    const cur = current(facts.attributes);
    const drv = pf.driver || "unknown";
    const known = REFUSES[drv] ?? {};
    const refused = (attr: string, value: string, why: string) =>
      problems.push(`${attr} = ${value} is not supported by the ${drv} driver of PF ${pf.netdev} (${pf.pciAddress}): ${why}`);
    const at = (description: string, attribute: Attribute, value: string, ...args: string[]) =>
      ops.push({
        kind: "run",
        description: `${name}: ${description}`,
        argv: ipSet(pf.netdev, index, ...args),
        attribute,
        value,
        // The attributes go in one `ip link set … vf N` (one process, one netlink request).
        joins: { prefix: ipSet(pf.netdev, index), words: args },
      });

    if (cur.vlan !== d.vlan || cur.qos !== d.qos || cur.vlanProtocol !== d.vlanProtocol) {
      if (d.vlanProtocol === "802.1ad" && known.qinq) refused("vlanProtocol", "802.1ad", known.qinq);
      const words = vlanWords(d.vlan, d.qos, d.vlanProtocol, cur.vlanProtocol);
      const label = d.vlanProtocol !== cur.vlanProtocol && d.vlanProtocol === "802.1ad" ? "vlanProtocol" : "vlan";
      at(`set ${words.join(" ")}`, label, label === "vlanProtocol" ? `802.1ad (${words.join(" ")})` : words.slice(1).join(" "), ...words);
    }
    if (cur.linkState !== d.linkState) {
      if (known.linkState) refused("linkState", d.linkState, known.linkState);
      at(`set link state ${d.linkState}`, "linkState", d.linkState, "state", d.linkState);
    }
    if (cur.minTxRate !== d.minTxRate || cur.maxTxRate !== d.maxTxRate) {
      if (d.minTxRate !== 0 && known.minTxRate) refused("minTxRate", String(d.minTxRate), known.minTxRate);
      const why = known.rateNeedsLink ? linkProblem(facts) : undefined;
      const label = d.minTxRate !== cur.minTxRate && d.minTxRate !== 0 ? "minTxRate" : "maxTxRate";
      if (why && opts.removing) {
        // Nothing to undo: without a link these drivers apply no rate limit.
      } else {
        if (why) problems.push(`maxTxRate = ${d.maxTxRate}: the ${drv} driver sets VF rate limits only while the PF has a link, and ${why}`);
        else if (known.rateNeedsLink && pf.speed !== undefined && d.maxTxRate > pf.speed)
          problems.push(`maxTxRate = ${d.maxTxRate} exceeds the link speed of PF ${pf.netdev} (${pf.speed} Mbit/s)`);
        const value = label === "minTxRate" ? String(d.minTxRate) : String(d.maxTxRate);
        const words = ["min_tx_rate", String(d.minTxRate), "max_tx_rate", String(d.maxTxRate)];
        at(`set ${words.join(" ")} (Mbit/s)`, label, value, ...words);
      }
    }
    const clearMac = d.mac === ZERO_MAC && cur.mac !== ZERO_MAC && opts.ownMac !== undefined && cur.mac === opts.ownMac;
    if (clearMac) at(`clear the administrative MAC ${cur.mac}`, "mac", d.mac, "mac", d.mac);
    else if (d.mac !== ZERO_MAC && cur.mac !== d.mac) at(`set mac ${d.mac}`, "mac", d.mac, "mac", d.mac);
    if (cur.spoofCheck !== d.spoofCheck) at(`set spoof checking ${d.spoofCheck ? "on" : "off"}`, "spoofCheck", String(d.spoofCheck), "spoofchk", d.spoofCheck ? "on" : "off");
    if (cur.trust !== d.trust) at(`set trust ${d.trust ? "on" : "off"}`, "trust", String(d.trust), "trust", d.trust ? "on" : "off");

    problems.push(...driverOps(facts, index, d, ops, clearMac));
  }

  ops.push(...persistOps(facts, index, d));
  return { ops, problems, warnings: [] };
}

function linkProblem(facts: HostFacts): string | undefined {
  const pf = facts.pf!;
  if (pf.operstate !== "up" && pf.carrier !== true)
    return `${pf.netdev} is ${pf.operstate === "unknown" ? "not up" : pf.operstate}${pf.carrier === false ? " with no carrier" : ""} (bring it up, with a cable or peer connected)`;
  if (pf.carrier === false) return `${pf.netdev} has no carrier (connect it)`;
  return undefined;
}

/** Driver binding: vfio-pci through driver_override, or back to the default driver. */
function driverOps(facts: HostFacts, index: number, d: Resolved, ops: Operation[], clearMac: boolean): string[] {
  const problems: string[] = [];
  const vf = facts.vf!;
  const name = vfName(facts, index);
  const dev = `/sys/bus/pci/devices/${vf.pciAddress}`;
  const unbind = (from: string): Operation => ({
    kind: "run",
    description: `${name}: unbind ${vf.pciAddress} from ${from}`,
    argv: sysfsWrite(vf.pciAddress, `${dev}/driver/unbind`),
  });
  const probe = (what: string): Operation => ({
    kind: "run",
    description: `${name}: probe ${vf.pciAddress} (${what})`,
    argv: sysfsWrite(vf.pciAddress, "/sys/bus/pci/drivers_probe"),
  });

  if (d.driver === "vfio-pci") {
    if (vf.driver !== "vfio-pci") {
      if (vf.iommuGroup < 0) {
        problems.push(`driver = vfio-pci: ${name} has no IOMMU group, so the IOMMU is off (enable it with IommuKernelArgs and reboot)`);
      } else {
        const blockers = vf.groupDevices.filter((g) => g.pciAddress !== vf.pciAddress && !VFIO_GROUP_COMPANIONS.has(g.driver));
        if (blockers.length)
          problems.push(
            `driver = vfio-pci: IOMMU group ${vf.iommuGroup} of ${name} is not viable: every device in it must be bound to vfio-pci or unbound, but it holds ` +
              vf.groupDevices.map((g) => `${g.pciAddress} (${g.driver || "unbound"})`).join(", ") +
              " (the host still uses " +
              blockers.map((b) => `${b.pciAddress} through ${b.driver}`).join(", ") +
              "; ACS or another slot separates groups)",
          );
      }
      if (!facts.vfioPciLoaded) ops.push({ kind: "run", description: "load the vfio-pci module", argv: ["modprobe", "vfio-pci"] });
      // driver_override binds this one device; new_id would capture every VF with the same vendor:device.
      if (vf.driverOverride !== "vfio-pci")
        ops.push({ kind: "run", description: `${name}: set driver_override of ${vf.pciAddress} to vfio-pci`, argv: sysfsWrite("vfio-pci", `${dev}/driver_override`) });
      if (vf.driver) ops.push(unbind(vf.driver));
      ops.push(probe("binds vfio-pci"));
    } else if (vf.driverOverride !== "vfio-pci") {
      ops.push({ kind: "run", description: `${name}: set driver_override of ${vf.pciAddress} to vfio-pci`, argv: sysfsWrite("vfio-pci", `${dev}/driver_override`) });
    }
    return problems;
  }

  // Back to the default driver.
  const overridden = vf.driverOverride !== "";
  if (vf.driver === "vfio-pci" || overridden) {
    if (vf.driver === "vfio-pci" && vf.vfioUsers.length)
      problems.push(`driver = default: ${name} is bound to vfio-pci and in use by ${inUse(facts)}; detach it from the guest (or stop the guest) first`);
    if (overridden) ops.push({ kind: "run", description: `${name}: clear driver_override of ${vf.pciAddress}`, argv: sysfsWrite("", `${dev}/driver_override`) });
    if (vf.driver && (vf.driver === "vfio-pci" || vf.driver === vf.driverOverride)) ops.push(unbind(vf.driver));
    // With sriov_drivers_autoprobe off, unbound is the default.
    if (facts.pf!.autoprobe) ops.push(probe("binds its default driver"));
    return problems;
  }
  // A VF driver reads the administrative MAC when it binds (igbvf: "reload
  // the VF driver to make this change effective"), so its interface takes a
  // new MAC, or drops a cleared one, only after a rebind.
  if (vf.driver && vf.netdev && vf.netdevMac) {
    if (d.mac !== ZERO_MAC && vf.netdevMac !== d.mac) ops.push(unbind(vf.driver), probe(`${vf.netdev} takes mac ${d.mac}`));
    else if (clearMac) ops.push(unbind(vf.driver), probe(`${vf.netdev} picks its own MAC`));
  }
  return problems;
}

function persistOps(facts: HostFacts, index: number, d: Resolved): Operation[] {
  const ops: Operation[] = [];
  const pci = facts.pf?.pciAddress ?? (facts.unit.name ? facts.unit.name.replace(/^pulumi-sriov-vf-(.*)-\d+\.service$/, "$1") : "");
  if (!pci) return ops;
  const unit = unitName(pci, index);
  const path = unitPath(pci, index);
  if (d.persist) {
    if (!facts.pf) return ops;
    const content = renderUnit(pci, index, d);
    const changed = facts.unit.content !== content;
    if (changed) ops.push({ kind: "write", description: `write ${path}`, path, content });
    // A unit systemd holds already (an older file, or a run cut off after a
    // write) is read again; a new one systemd reads when it starts it.
    if (facts.unit.stale || (changed && facts.unit.content !== null)) ops.push(reloadUnlessLoaded(unit));
    const enable = facts.unit.enabled !== "enabled";
    // Started once now: the VF gets its settings from the same script that
    // SriovPf re-runs when it re-creates the VFs. Enabling and starting is one systemctl call.
    if (facts.unit.active !== "active")
      ops.push({
        kind: "run",
        description: enable ? `enable ${unit} (runs at boot) and start it` : `start ${unit}`,
        argv: shScript(START_UNIT, unit, enable ? "enable" : ""),
      });
    else if (enable) ops.push({ kind: "run", description: `enable ${unit} (runs at boot)`, argv: ["systemctl", "enable", "--no-reload", unit] });
  } else {
    const running = facts.unit.active === "active" || facts.unit.active === "failed" || facts.unit.active === "activating";
    // Not left active or failed after its file is gone; disabling and stopping is one systemctl call.
    if (facts.unit.enabled === "enabled" && running)
      ops.push({ kind: "run", description: `disable and stop ${unit}`, argv: ["systemctl", "disable", "--now", "--no-reload", unit] });
    else if (facts.unit.enabled === "enabled") ops.push({ kind: "run", description: `disable ${unit}`, argv: ["systemctl", "disable", "--no-reload", unit] });
    else if (running) ops.push({ kind: "run", description: `stop ${unit}`, argv: ["systemctl", "stop", unit] });
    if (facts.unit.content !== null) ops.push({ kind: "remove", description: `remove ${path}`, path });
  }
  return ops;
}

/** Differences left after applying: what the host reports against what was asked. */
export function verify(facts: HostFacts, index: number, d: Resolved): string[] {
  const out: string[] = [];
  const a = facts.attributes;
  const vf = facts.vf;
  if (!a || !vf) return [`${vfName(facts, index)} disappeared while it was being configured`];
  const drv = facts.pf?.driver || "its";
  const check = (what: string, got: unknown, want: unknown) => {
    if (got !== undefined && got !== want) out.push(`${what} is ${String(got)} (wanted ${String(want)}): the ${drv} driver did not keep it`);
  };
  if (d.mac !== ZERO_MAC) check("mac", a.mac, d.mac);
  check("vlan", a.vlan, d.vlan);
  check("qos", a.qos, d.qos);
  check("vlanProtocol", a.vlanProtocol, d.vlanProtocol);
  check("spoofCheck", a.spoofCheck, d.spoofCheck);
  check("trust", a.trust, d.trust);
  check("linkState", a.linkState, d.linkState);
  check("minTxRate", a.minTxRate, d.minTxRate);
  check("maxTxRate", a.maxTxRate, d.maxTxRate);
  if (d.driver === "vfio-pci" && vf.driver !== "vfio-pci") out.push(`driver is ${vf.driver || "none"} (wanted vfio-pci): vfio-pci did not bind`);
  if (d.driver === "default" && vf.driver === "vfio-pci") out.push("driver is still vfio-pci (wanted the default driver)");
  return out;
}

export function outputsOf(facts: HostFacts, index: number, persist: boolean): VfOutputs {
  const vf = facts.vf;
  const pf = facts.pf;
  return {
    pciAddress: vf?.pciAddress ?? "",
    iommuGroup: vf?.iommuGroup ?? -1,
    netdev: vf?.netdev ?? "",
    driver: vf?.driver ?? "",
    mac: facts.attributes?.mac ?? "",
    numaNode: vf?.numaNode ?? -1,
    pfPciAddress: pf?.pciAddress ?? "",
    pfInterface: pf?.netdev ?? "",
    persistPath: persist && pf ? unitPath(pf.pciAddress, index) : "",
  };
}

/**
 * The inputs as the host has them now, for drift: each attribute the driver
 * reports replaces the applied one. A derived MAC stays "left out" while the
 * host still has it.
 */
export function observedInputs(applied: VfInputs, outs: VfOutputs, facts: HostFacts): VfInputs {
  const a = facts.attributes!;
  const cur = current(a);
  const o: VfInputs = { ...applied };
  // All zeros leaves the MAC to the VF: whatever it has is not drift.
  if (applied.mac === ZERO_MAC) o.mac = ZERO_MAC;
  else if (applied.mac !== undefined || a.mac !== outs.mac) o.mac = a.mac;
  if (applied.vlan !== undefined || a.vlan !== 0 || a.qos !== 0) o.vlan = a.vlan;
  else delete o.vlan;
  o.qos = a.qos;
  o.vlanProtocol = a.vlanProtocol;
  if (a.spoofCheck !== undefined) o.spoofCheck = cur.spoofCheck;
  if (a.trust !== undefined) o.trust = cur.trust;
  if (a.linkState !== undefined) o.linkState = cur.linkState;
  if (a.minTxRate !== undefined) o.minTxRate = cur.minTxRate;
  if (a.maxTxRate !== undefined) o.maxTxRate = cur.maxTxRate;
  o.driver = driverMode(facts);
  if (applied.persist) {
    const d: Resolved = { ...resolveApplied(applied, outs), persist: true };
    o.persist = facts.unit.content === renderUnit(facts.pf!.pciAddress, applied.index, d) && facts.unit.enabled === "enabled";
  } else {
    o.persist = facts.unit.content !== null;
  }
  return o;
}

function resolveApplied(i: VfInputs, outs: VfOutputs): Resolved {
  return {
    mac: i.mac ?? outs.mac,
    vlan: i.vlan ?? 0,
    qos: i.qos,
    vlanProtocol: i.vlanProtocol,
    spoofCheck: i.spoofCheck,
    trust: i.trust,
    linkState: i.linkState,
    minTxRate: i.minTxRate,
    maxTxRate: i.maxTxRate,
    driver: i.driver,
    persist: i.persist,
  };
}
