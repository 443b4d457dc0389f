// Typed view of libvirt network XML (formatnetwork): the parts a VF pool
// network uses. Unknown elements are ignored when reading; what we define is
// always built from a NetworkDef.
import { pciElement, pciFromElement } from "./pci";
import { buildXml, child, children, childText, el, parseXml, toYesNo, XmlElement, XmlError, yesNo } from "./xml";

export interface VlanTag {
  id: number;
  nativeMode?: "tagged" | "untagged";
}

export interface Vlan {
  trunk?: boolean;
  tags: VlanTag[];
}

export interface NetworkForward {
  /** "hostdev" for VF pools; "bridge", "nat", "passthrough"… for others. */
  mode: string;
  /** managed='yes': libvirt detaches VFs from their host driver on use and gives them back after. */
  managed?: boolean;
  /** <driver name='vfio'/>; libvirt's default when absent. */
  driver?: string;
  /** PF netdev names: libvirt builds the pool from all of the PF's VFs. */
  pfs: string[];
  /** VF PCI addresses ("0000:03:10.2"): the pool itself, or libvirt's expansion of the PF. */
  addresses: string[];
  /** <interface dev=…/> pools (macvtap modes); read only. */
  interfaces: string[];
}

export interface NetworkDef {
  name: string;
  uuid?: string;
  /** Live XML only: how many guest interfaces are connected. */
  connections?: number;
  forward?: NetworkForward;
  vlan?: Vlan;
}

export function vlanFromElement(e: XmlElement | undefined): Vlan | undefined {
  if (!e) return undefined;
  const tags = children(e, "tag").map((t) => {
    const id = Number(t.attrs.id);
    if (!Number.isInteger(id)) throw new XmlError(`<vlan><tag id=${JSON.stringify(t.attrs.id)}> is not a number`);
    const tag: VlanTag = { id };
    if (t.attrs.nativeMode === "tagged" || t.attrs.nativeMode === "untagged") tag.nativeMode = t.attrs.nativeMode;
    return tag;
  });
  const v: Vlan = { tags };
  const trunk = yesNo(e.attrs.trunk);
  if (trunk !== undefined) v.trunk = trunk;
  return v;
}

export function vlanElement(v: Vlan | undefined): XmlElement | undefined {
  if (!v || v.tags.length === 0) return undefined;
  return el(
    "vlan",
    { trunk: toYesNo(v.trunk) },
    v.tags.map((t) => el("tag", { id: String(t.id), nativeMode: t.nativeMode })),
  );
}

export function networkFromElement(root: XmlElement): NetworkDef {
  if (root.name !== "network") throw new XmlError(`expected <network>, found <${root.name}>`);
  const name = childText(root, "name");
  if (!name) throw new XmlError("<network> has no <name>");
  const def: NetworkDef = { name };
  const uuid = childText(root, "uuid");
  if (uuid) def.uuid = uuid;
  if (root.attrs.connections !== undefined) def.connections = Number(root.attrs.connections);
  const fwd = child(root, "forward");
  if (fwd) {
    const forward: NetworkForward = {
      mode: fwd.attrs.mode ?? "nat",
      pfs: children(fwd, "pf").map((p) => p.attrs.dev ?? ""),
      addresses: children(fwd, "address")
        .map(pciFromElement)
        .filter((a): a is string => !!a),
      interfaces: children(fwd, "interface").map((i) => i.attrs.dev ?? ""),
    };
    const managed = yesNo(fwd.attrs.managed);
    if (managed !== undefined) forward.managed = managed;
    const driver = child(fwd, "driver")?.attrs.name;
    if (driver) forward.driver = driver;
    def.forward = forward;
  }
  const vlan = vlanFromElement(child(root, "vlan"));
  if (vlan) def.vlan = vlan;
  return def;
}

export function networkElement(def: NetworkDef): XmlElement {
  const f = def.forward;
  return el("network", { connections: def.connections === undefined ? undefined : String(def.connections) }, [
    el("name", {}, [], def.name),
    def.uuid ? el("uuid", {}, [], def.uuid) : undefined,
    f
      ? el("forward", { mode: f.mode, managed: toYesNo(f.managed) }, [
          f.driver ? el("driver", { name: f.driver }) : undefined,
          ...f.pfs.map((dev) => el("pf", { dev })),
          ...f.addresses.map(pciElement),
          ...f.interfaces.map((dev) => el("interface", { dev })),
        ])
      : undefined,
    vlanElement(def.vlan),
  ]);
}

export function parseNetwork(xml: string): NetworkDef {
  return networkFromElement(parseXml(xml));
}

export function renderNetwork(def: NetworkDef): string {
  return buildXml(networkElement(def));
}

// ---- the pool networks this provider defines --------------------------------

export interface PoolSpec {
  name: string;
  /** Pool made of every VF of this PF… */
  pf?: string;
  /** …or of exactly these VFs. */
  vfs?: string[];
  /** VLAN tag the network puts on every VF it hands out. */
  vlan?: number;
}

/** The network definition for a VF pool (seed 001, procedure 17.10). */
export function poolNetwork(spec: PoolSpec, uuid?: string): NetworkDef {
  const def: NetworkDef = {
    name: spec.name,
    forward: {
      mode: "hostdev",
      managed: true,
      pfs: spec.pf ? [spec.pf] : [],
      addresses: spec.pf ? [] : [...(spec.vfs ?? [])],
      interfaces: [],
    },
  };
  if (uuid) def.uuid = uuid;
  if (spec.vlan !== undefined) def.vlan = { tags: [{ id: spec.vlan }] };
  return def;
}

/** What a network definition means for a pool: everything a difference of which matters. */
export function poolOf(def: NetworkDef): PoolSpec & { mode?: string; managed: boolean; trunk: boolean; tags: number[] } {
  const f = def.forward;
  const pfs = f?.pfs ?? [];
  const tags = (def.vlan?.tags ?? []).map((t) => t.id);
  const spec: PoolSpec & { mode?: string; managed: boolean; trunk: boolean; tags: number[] } = {
    name: def.name,
    mode: f?.mode,
    managed: f?.managed ?? false,
    trunk: def.vlan?.trunk ?? false,
    tags,
  };
  // With a PF, libvirt lists the PF's VFs as addresses once the network runs: derived, not configured.
  if (pfs.length) spec.pf = pfs.join(",");
  else spec.vfs = [...(f?.addresses ?? [])].sort();
  if (tags.length === 1 && !spec.trunk) spec.vlan = tags[0];
  return spec;
}

/**
 * Differences between a network definition found on a host and the pool we
 * want, each phrased for an operator; empty when they mean the same. VF order
 * does not matter; a PF's derived VF list is not compared.
 */
export function poolDifferences(found: NetworkDef, want: PoolSpec): string[] {
  const f = poolOf(found);
  const diffs: string[] = [];
  if (f.mode !== "hostdev") diffs.push(`forward mode is ${f.mode ?? "none (isolated)"}, want hostdev`);
  if (!f.managed) diffs.push("forward managed is no, want yes");
  if (want.pf !== undefined) {
    if (f.pf !== want.pf) diffs.push(f.pf ? `pf is ${f.pf}, want ${want.pf}` : `pool is VFs [${(f.vfs ?? []).join(", ")}], want pf ${want.pf}`);
  } else {
    const wantVfs = [...(want.vfs ?? [])].sort();
    if (f.pf) diffs.push(`pool is pf ${f.pf}, want VFs [${wantVfs.join(", ")}]`);
    else if ((f.vfs ?? []).join(",") !== wantVfs.join(",")) diffs.push(`VFs are [${(f.vfs ?? []).join(", ")}], want [${wantVfs.join(", ")}]`);
  }
  const wantTags = want.vlan === undefined ? [] : [want.vlan];
  if (f.trunk || f.tags.join(",") !== wantTags.join(","))
    diffs.push(`vlan is ${f.tags.length ? (f.trunk ? "trunk " : "") + f.tags.join(",") : "none"}, want ${want.vlan ?? "none"}`);
  return diffs;
}
