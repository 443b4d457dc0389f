// Pure planning for VfPoolNetwork: from what the host has (facts) and what
// the program wants, the virsh steps to run. The same list is what an update
// shows and what it runs; a plan may instead refuse, saying why.
import type { Command as Operation, Plan as HostPlan } from "../../host";
import { planOf, refusal } from "../../host";
import { NetworkDef, poolDifferences, poolNetwork, poolOf, renderNetwork } from "../../libvirt/network";
import { describeUsers, NetworkUser } from "../../libvirt/users";
import { libvirtMessage, shownWithXml, virsh, withXmlFile, XML_FILE } from "../../libvirt/virsh";
import { PoolInputs, PoolOutputs } from "./schema";

export interface PoolFacts {
  exists: boolean;
  active: boolean;
  persistent: boolean;
  autostart: boolean;
  uuid?: string;
  /** The persistent definition (net-dumpxml --inactive). */
  config?: NetworkDef;
  /** The running definition (net-dumpxml) and its text. */
  live?: NetworkDef;
  liveXml?: string;
  /** For a PF pool: the PF's sriov_numvfs (null: no such SR-IOV netdev). */
  pfNumVfs?: number | null;
  /** For a VF list: listed addresses that are not VFs on this host. */
  missingVfs?: string[];
  /** Running guests on the network; looked up only when it has connections. */
  users?: NetworkUser[];
}

/** The shared plan result; every step here is a command. */
export type Plan = HostPlan<Operation>;

export function connections(f: PoolFacts): number {
  return f.active ? (f.live?.connections ?? 0) : 0;
}

function poolWords(w: PoolInputs): string {
  const what = w.pf ? `pool of all VFs of ${w.pf}` : `pool of VFs ${(w.vfs ?? []).join(", ")}`;
  return w.vlan === undefined ? what : `${what}, VLAN ${w.vlan}`;
}

function inUse(f: PoolFacts): string {
  const n = connections(f);
  const users = f.users ?? [];
  return users.length ? `${n} guest interface(s) connected: ${describeUsers(users)}` : `${n} guest interface(s) connected`;
}

function startHint(w: PoolInputs, f: PoolFacts): string {
  if (w.pf && f.pfNumVfs === 0)
    return ` (${w.pf} has no VFs: create them first, persisted so they exist before libvirtd starts)`;
  return "";
}

/** Problems with the PF/VFs that would make the network unusable, found before anything is written. */
export function sourceProblems(w: PoolInputs, f: PoolFacts): string[] {
  const out: string[] = [];
  if (w.pf !== undefined && f.pfNumVfs === null) out.push(`pf: ${w.pf} is not an SR-IOV network interface on this host (no /sys/class/net/${w.pf}/device/sriov_numvfs)`);
  if (w.pf !== undefined && f.pfNumVfs === 0)
    out.push(`pf: ${w.pf} has no VFs (sriov_numvfs is 0); create them first (SriovPf numVfs) so the pool has something to hand out`);
  if (f.missingVfs?.length) out.push(`vfs: not VFs on this host: ${f.missingVfs.join(", ")}`);
  return out;
}

/**
 * Steps that bring the network to what is wanted. `adopt` (create): an
 * existing network with another definition is refused unless force; in an
 * update it is ours and is redefined. Restarting a running network that
 * guests use is refused unless force.
 */
export function planPool(f: PoolFacts, w: PoolInputs, mode: "create" | "update"): Plan {
  const ops: Operation[] = [];
  const name = w.name;
  const uri = w.libvirtUri;
  const define: Operation = {
    description: `define network ${name} (${poolWords(w)})`,
    argv: withXmlFile(virsh(uri, "net-define", XML_FILE)),
    shown: shownWithXml(virsh(uri, "net-define", XML_FILE)),
    stdin: renderNetwork(poolNetwork(w, f.uuid)),
    explain: (r) => `define network ${name}: ${libvirtMessage(r)}`,
  };
  const start: Operation = {
    description: `start network ${name}`,
    argv: virsh(uri, "net-start", name),
    explain: (r) => `start network ${name}: ${libvirtMessage(r)}${startHint(w, f)}`,
  };
  const autostart: Operation = {
    description: w.autostart ? `mark network ${name} to start when libvirtd starts` : `stop network ${name} from starting with libvirtd`,
    argv: w.autostart ? virsh(uri, "net-autostart", name) : virsh(uri, "net-autostart", name, "--disable"),
  };
  const stop: Operation = { description: `stop network ${name} (to apply the new definition)`, argv: virsh(uri, "net-destroy", name) };

  const problems = sourceProblems(w, f);

  if (!f.exists) {
    if (problems.length) return refusal(problems.join("; "));
    ops.push(define, start);
    if (w.autostart) ops.push(autostart);
    return planOf(ops);
  }

  const configDiffs = f.config ? poolDifferences(f.config, w) : [];
  if (configDiffs.length && mode === "create" && !w.force)
    return refusal(`network ${name} already exists with another definition (${configDiffs.join("; ")}); choose another name, or set force: true to redefine it`);
  if (configDiffs.length || !f.persistent) {
    if (problems.length) return refusal(problems.join("; "));
    ops.push(define);
  }
  if (f.active) {
    const liveDiffs = f.live ? poolDifferences(f.live, w) : [];
    if (liveDiffs.length) {
      if (connections(f) > 0 && !w.force)
        return refusal(`network ${name} must restart to apply ${liveDiffs.join("; ")}, but it is in use (${inUse(f)}); stop or detach those guests, or set force: true`);
      ops.push(stop, start);
    }
  } else ops.push(start);
  if (f.autostart !== w.autostart) ops.push(autostart);
  return planOf(ops);
}

/** Steps that remove the network: stop it, then forget it. Refused while guests use it, unless force. */
export function planPoolRemoval(f: PoolFacts, w: Pick<PoolInputs, "name" | "libvirtUri" | "force">): Plan {
  if (!f.exists) return planOf([]);
  if (connections(f) > 0 && !w.force)
    return refusal(`network ${w.name} is in use (${inUse(f)}); detach those interfaces or stop the guests first, or set force: true to delete it anyway`);
  const ops: Operation[] = [];
  if (f.active) ops.push({ description: `stop network ${w.name}`, argv: virsh(w.libvirtUri, "net-destroy", w.name) });
  if (f.persistent) ops.push({ description: `undefine network ${w.name}`, argv: virsh(w.libvirtUri, "net-undefine", w.name) });
  return planOf(ops);
}

export function outputsOf(f: PoolFacts, name: string): PoolOutputs {
  const shown = f.live;
  return {
    name,
    uuid: f.uuid ?? shown?.uuid ?? "",
    xml: f.liveXml ?? "",
    active: f.active,
    autostart: f.autostart,
    connections: connections(f),
    vfAddresses: [...(shown?.forward?.addresses ?? [])],
  };
}

/**
 * The inputs as the host has them, for refresh: the persistent definition
 * read back into pf/vfs/vlan, plus autostart. What inputs cannot express
 * (not running, not persistent, another forward mode) goes in `drift`, which
 * makes the next update run and repair it.
 */
export function observedInputs(f: PoolFacts, applied: PoolInputs): PoolInputs & { drift?: string[] } {
  const observed: PoolInputs & { drift?: string[] } = { ...applied, autostart: f.autostart };
  const drift: string[] = [];
  const def = f.config ?? f.live;
  if (def) {
    const p = poolOf(def);
    delete observed.pf;
    delete observed.vfs;
    delete observed.vlan;
    if (p.pf !== undefined) observed.pf = p.pf;
    // Order does not matter to libvirt: keep the program's order when the set is the same.
    else observed.vfs = applied.vfs && [...applied.vfs].sort().join(",") === (p.vfs ?? []).join(",") ? applied.vfs : p.vfs;
    if (p.vlan !== undefined) observed.vlan = p.vlan;
    else if (p.tags.length) drift.push(`vlan is ${p.trunk ? "a trunk of " : ""}${p.tags.join(",")}`);
    if (p.mode !== "hostdev") drift.push(`forward mode is ${p.mode ?? "none"}`);
    if (!p.managed) drift.push("forward managed is no");
  }
  if (!f.active) drift.push("network is not active");
  if (!f.persistent) drift.push("network is not persistent (it would not survive a libvirtd restart)");
  if (drift.length) observed.drift = drift;
  return observed;
}
