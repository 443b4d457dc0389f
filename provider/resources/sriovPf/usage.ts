// Who uses a PF's VFs right now: running libvirt domains and active pool
// networks. Gathered in one round trip; the XML is read here, purely.
import { XMLParser } from "fast-xml-parser";
import { VfFacts } from "./facts";

/** Lists running domains and active networks with their XML, base64 per item. */
export const USAGE_SCRIPT = [
  'uri="$1"',
  "b64() { base64 | tr -d '\\n'; }",
  'if ! doms=$(virsh -c "$uri" list --name 2>&1); then printf "err\\t%s\\n" "$(printf "%s" "$doms" | b64)"; exit 0; fi',
  'printf "%s\\n" "$doms" | while IFS= read -r d; do [ -n "$d" ] || continue; printf "dom\\t%s\\t%s\\n" "$(printf "%s" "$d" | b64)" "$(virsh -c "$uri" dumpxml --domain "$d" 2>/dev/null | b64)"; done',
  'if ! nets=$(virsh -c "$uri" net-list --name 2>&1); then printf "err\\t%s\\n" "$(printf "%s" "$nets" | b64)"; exit 0; fi',
  'printf "%s\\n" "$nets" | while IFS= read -r n; do [ -n "$n" ] || continue; printf "net\\t%s\\t%s\\n" "$(printf "%s" "$n" | b64)" "$(virsh -c "$uri" net-dumpxml --network "$n" 2>/dev/null | b64)"; done',
  "echo end",
].join("\n");

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

function parser() {
  return new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@",
    isArray: (name) => ["hostdev", "interface", "address", "pf"].includes(name),
  });
}

function arr(v: any): any[] {
  return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v];
}

/** A libvirt <address type='pci' domain= bus= slot= function=> as 0000:02:10.1 (hex or decimal attributes). */
export function pciOf(a: any): string | undefined {
  if (!a || (a["@type"] !== undefined && a["@type"] !== "pci")) return undefined;
  const n = (k: string) => {
    const v = a[`@${k}`];
    if (v === undefined) return k === "domain" ? 0 : NaN;
    return Number(String(v).trim());
  };
  const [dom, bus, slot, fn] = [n("domain"), n("bus"), n("slot"), n("function")];
  if ([dom, bus, slot, fn].some((x) => !Number.isInteger(x))) return undefined;
  const h = (x: number, w: number) => x.toString(16).padStart(w, "0");
  return `${h(dom, 4)}:${h(bus, 2)}:${h(slot, 2)}.${fn.toString(16)}`;
}

/** Which running domains and active networks use these VFs (or the PF as a pool). */
export function findUsers(vfs: VfFacts[], pfNetdevs: string[], objs: LibvirtObjects): Users {
  const p = parser();
  const vfPci = new Map(vfs.map((v) => [v.pciAddress, v]));
  const vfNet = new Map(vfs.filter((v) => v.netdev).map((v) => [v.netdev, v]));
  const users: Users = { domains: [], networks: [] };
  const pools = new Set<string>();
  for (const [name, xml] of Object.entries(objs.networks)) {
    let fwd: any;
    try {
      fwd = p.parse(xml)?.network?.forward;
    } catch {
      continue;
    }
    if (!fwd) continue;
    const via: string[] = [];
    for (const pf of arr(fwd.pf)) if (pfNetdevs.includes(pf["@dev"])) via.push(`PF ${pf["@dev"]}`);
    for (const a of arr(fwd.address)) {
      const pci = pciOf(a);
      if (pci && vfPci.has(pci)) via.push(`VF ${pci}`);
    }
    for (const i of arr(fwd.interface)) if (vfNet.has(i["@dev"])) via.push(`VF ${i["@dev"]}`);
    if (via.length) {
      pools.add(name);
      users.networks.push({ name, via: [...new Set(via)].join(", ") });
    }
  }
  for (const [name, xml] of Object.entries(objs.domains)) {
    let devices: any;
    try {
      devices = p.parse(xml)?.domain?.devices;
    } catch {
      continue;
    }
    if (!devices) continue;
    const via: string[] = [];
    for (const h of arr(devices.hostdev))
      for (const a of arr(h?.source?.address)) {
        const pci = pciOf(a);
        if (pci && vfPci.has(pci)) via.push(`VF ${pci}`);
      }
    for (const i of arr(devices.interface)) {
      const src = i?.source;
      if (!src) continue;
      for (const a of arr(src.address)) {
        const pci = pciOf(a);
        if (pci && vfPci.has(pci)) via.push(`VF ${pci}`);
      }
      if (src["@network"] !== undefined && pools.has(src["@network"])) via.push(`network ${src["@network"]}`);
      if (src["@dev"] !== undefined && vfNet.has(src["@dev"])) via.push(`VF ${src["@dev"]}`);
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
