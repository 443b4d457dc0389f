// Who uses a PF's VFs right now: running libvirt domains and active pool
// networks. Gathered in one round trip; the XML is read here, purely, with
// the libvirt XML model (provider/libvirt).
import { pciFromElement } from "../../libvirt/pci";
import { child, children, parseXml, XmlElement } from "../../libvirt/xml";
import { loadScript } from "../../scripts";
import { VfFacts } from "./facts";

/** Lists running domains and active networks with their XML, base64 per item (provider/scripts/sriov-pf-usage.sh). */
export const USAGE_SCRIPT = loadScript("sriov-pf-usage");

export interface LibvirtObjects {
  /** virsh's complaint when it could not list (libvirtd down…). */
  error?: string;
  domains: Record<string, string>;
  networks: Record<string, string>;
}

export function parseUsageOutput(stdout: string): LibvirtObjects {
  const r: LibvirtObjects = { domains: {}, networks: {} };
  const dec = (s: string | undefined) => Buffer.from(s ?? "", "base64").toString("utf8");
  let ended = false;
  for (const line of stdout.split("\n")) {
    const [tag, a, b] = line.split("\t");
    if (tag === "err") r.error = dec(a).trim();
    else if (tag === "dom") r.domains[dec(a)] = dec(b);
    else if (tag === "net") r.networks[dec(a)] = dec(b);
    else if (tag === "end") ended = true;
  }
  if (!ended && !r.error) r.error = "the list of libvirt domains and networks ended early";
  return r;
}

export interface Users {
  domains: { name: string; via: string }[];
  networks: { name: string; via: string }[];
}

/** A PCI <address>, or undefined when it is none or out of range (then it names no VF of ours). */
function pciOf(e: XmlElement): string | undefined {
  try {
    return pciFromElement(e);
  } catch {
    return undefined;
  }
}

/** The root element when `xml` is a well-formed document with that root; else undefined (skipped). */
function root(xml: string, name: string): XmlElement | undefined {
  try {
    const r = parseXml(xml);
    return r.name === name ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Which running domains and active networks use these VFs (or the PF as a pool). */
export function findUsers(vfs: VfFacts[], pfNetdevs: string[], objs: LibvirtObjects): Users {
  const vfPci = new Map(vfs.map((v) => [v.pciAddress, v]));
  const vfNet = new Map(vfs.filter((v) => v.netdev).map((v) => [v.netdev, v]));
  const users: Users = { domains: [], networks: [] };
  const pools = new Set<string>();
  for (const [name, xml] of Object.entries(objs.networks)) {
    const fwd = child(root(xml, "network"), "forward");
    if (!fwd) continue;
    const via: string[] = [];
    for (const pf of children(fwd, "pf")) if (pfNetdevs.includes(pf.attrs.dev)) via.push(`PF ${pf.attrs.dev}`);
    for (const a of children(fwd, "address")) {
      const pci = pciOf(a);
      if (pci && vfPci.has(pci)) via.push(`VF ${pci}`);
    }
    for (const i of children(fwd, "interface")) if (vfNet.has(i.attrs.dev)) via.push(`VF ${i.attrs.dev}`);
    if (via.length) {
      pools.add(name);
      users.networks.push({ name, via: [...new Set(via)].join(", ") });
    }
  }
  for (const [name, xml] of Object.entries(objs.domains)) {
    const devices = child(root(xml, "domain"), "devices");
    if (!devices) continue;
    const via: string[] = [];
    for (const h of children(devices, "hostdev"))
      for (const a of children(child(h, "source"), "address")) {
        const pci = pciOf(a);
        if (pci && vfPci.has(pci)) via.push(`VF ${pci}`);
      }
    for (const i of children(devices, "interface")) {
      const src = child(i, "source");
      if (!src) continue;
      for (const a of children(src, "address")) {
        const pci = pciOf(a);
        if (pci && vfPci.has(pci)) via.push(`VF ${pci}`);
      }
      if (src.attrs.network !== undefined && pools.has(src.attrs.network)) via.push(`network ${src.attrs.network}`);
      if (src.attrs.dev !== undefined && vfNet.has(src.attrs.dev)) via.push(`VF ${src.attrs.dev}`);
    }
    if (via.length) users.domains.push({ name, via: [...new Set(via)].join(", ") });
  }
  return users;
}

export function describeUsers(u: Users): string {
  const parts: string[] = [];
  if (u.domains.length) parts.push(`running domains ${u.domains.map((d) => `${d.name} (${d.via})`).join(", ")}`);
  if (u.networks.length) parts.push(`active pool networks ${u.networks.map((n) => `${n.name} (${n.via})`).join(", ")}`);
  return parts.join("; ");
}
