// What one host has, as read by provider/scripts/discover.sh: PFs, VFs and
// their attributes, the files that make VFs persistent, libvirt networks and
// domains. Pure parsing; reading is in index.ts.
import { DomainDef, parseDomain } from "../libvirt/domain";
import { NetworkDef, parseNetwork } from "../libvirt/network";
import { parseIpLinks, VfAttributes, vfAttributes } from "../resources/virtualFunction/facts";

export interface VfFound {
  index: number;
  pciAddress: string;
  iommuGroup?: number;
  /** "" when no driver is bound. */
  driver: string;
  netdev?: string;
  /** What the PF holds for this VF (ip link … vf N); undefined when the driver reports nothing. */
  attributes?: VfAttributes;
}

export interface PfFound {
  pciAddress: string;
  driver: string;
  totalVfs: number;
  numVfs: number;
  autoprobe: boolean;
  numaNode?: number;
  netdevs: { name: string; mac: string; mtu?: number }[];
  vfs: VfFound[];
}

export interface NetworkFound {
  def: NetworkDef;
  active: boolean;
  autostart: boolean;
}

export interface DomainFound {
  def: DomainDef;
  state: string;
}

export interface Inventory {
  hostname: string;
  cmdline: string;
  cpuVendor: string;
  iommuUnits: number;
  iommuGroups: number;
  /** Files that may make VFs persistent (rc.local, modprobe.d, udev rules, units), by path. */
  files: Record<string, string>;
  /** Unit names linked into multi-user.target.wants (ours only). */
  wanted: string[];
  pfs: PfFound[];
  networks: NetworkFound[];
  domains: DomainFound[];
}

const num = (s: string | undefined): number | undefined => (s !== undefined && /^-?[0-9]+$/.test(s) ? Number(s) : undefined);
const val = (s: string | undefined): string => (s === undefined || s === "-" ? "" : s);
const unb64 = (s: string | undefined): string => Buffer.from(s ?? "", "base64").toString("utf8");

/** Parses discover.sh's output; throws when it was cut short. */
export function parseInventory(stdout: string): Inventory {
  const inv: Inventory = {
    hostname: "",
    cmdline: "",
    cpuVendor: "",
    iommuUnits: 0,
    iommuGroups: 0,
    files: {},
    wanted: [],
    pfs: [],
    networks: [],
    domains: [],
  };
  const byPci = new Map<string, PfFound>();
  let links = "";
  let ended = false;
  for (const line of stdout.split("\n")) {
    if (!line) continue;
    const [tag, ...c] = line.split("\t");
    switch (tag) {
      case "hostname":
        inv.hostname = val(c[0]);
        break;
      case "cmdline":
        inv.cmdline = val(c[0]);
        break;
      case "vendor":
        inv.cpuVendor = val(c[0]);
        break;
      case "iommu":
        inv.iommuUnits = num(c[0]) ?? 0;
        inv.iommuGroups = num(c[1]) ?? 0;
        break;
      case "file":
        inv.files[c[0]] = unb64(c[1]);
        break;
      case "wanted":
        inv.wanted.push(c[0]);
        break;
      case "pf": {
        const pf: PfFound = {
          pciAddress: c[0],
          driver: val(c[1]),
          totalVfs: num(c[2]) ?? 0,
          numVfs: num(c[3]) ?? 0,
          autoprobe: c[4] !== "0",
          numaNode: num(c[5]),
          netdevs: [],
          vfs: [],
        };
        if (pf.numaNode !== undefined && pf.numaNode < 0) delete pf.numaNode;
        inv.pfs.push(pf);
        byPci.set(pf.pciAddress, pf);
        break;
      }
      case "pfnet":
        byPci.get(c[0])?.netdevs.push({ name: c[1], mac: val(c[2]).toLowerCase(), mtu: num(c[3]) });
        break;
      case "vf": {
        const vf: VfFound = { index: Number(c[1]), pciAddress: c[2], iommuGroup: num(c[3]), driver: val(c[4]) };
        if (val(c[5])) vf.netdev = c[5];
        byPci.get(c[0])?.vfs.push(vf);
        break;
      }
      case "links":
        links = unb64(c[0]);
        break;
      case "net":
        inv.networks.push({ def: parseNetwork(unb64(c[3])), active: c[1] === "yes", autostart: c[2] === "yes" });
        break;
      case "domain":
        inv.domains.push({ def: parseDomain(unb64(c[2])), state: val(c[1]) });
        break;
      case "end":
        ended = true;
        break;
    }
  }
  if (!ended) throw new Error("the host's inventory was cut short (no end line)");
  const parsed = parseIpLinks(links);
  for (const pf of inv.pfs) {
    const link = parsed.find((l) => pf.netdevs.some((n) => n.name === l.ifname));
    for (const e of link?.vfinfo_list ?? []) {
      const vf = pf.vfs.find((v) => v.index === e.vf);
      if (vf) vf.attributes = vfAttributes(e);
    }
  }
  return inv;
}
