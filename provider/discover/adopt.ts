// What a host found by discover means as pulumi-sriov inputs: the settings
// that, applied to that host, change nothing. Where the host's set-up cannot
// be said exactly, the safer reading wins (keep what the host does, manage
// less) and a note says what was left out. Pure.
import { argKey } from "../resources/iommuKernelArgs/cmdline";
import { modprobePath, udevRulePath, unitPath } from "../resources/sriovPf/facts";
import { ZERO_MAC } from "../resources/virtualFunction/mac";
import { unitName as vfUnitName } from "../resources/virtualFunction/schema";
import type { Inventory, PfFound, VfFound } from "./inventory";

export type Persist = "systemd" | "udev" | "modprobe" | "none";

/** One way the host makes a PF's VFs come back at boot. */
export interface Mechanism {
  kind: "systemd" | "udev" | "modprobe" | "rc.local";
  path: string;
  /** Written by pulumi-sriov (SriovPf). */
  ours: boolean;
}

export interface AdoptedVf {
  index: number;
  mac?: string;
  vlan?: number;
  qos?: number;
  spoofCheck?: boolean;
  trust?: boolean;
  maxTxRate?: number;
  driver?: "default" | "vfio-pci";
  persist: boolean;
}

export interface AdoptedPf {
  pciAddress: string;
  /** For the reader: the PF's interface and driver. */
  interface?: string;
  driver: string;
  numVfs: number;
  autoprobe?: boolean;
  persist: Persist;
  mechanisms: Mechanism[];
  vfs: AdoptedVf[];
}

export interface AdoptedKernelArgs {
  iommu: "intel" | "amd" | "none";
  passthrough: boolean;
  extraArgs?: string[];
}

export interface AdoptedNetwork {
  name: string;
  /** The PF's PCI address (the fleet configuration names PFs by it). */
  pf: string;
  vlan?: number;
  autostart: boolean;
  /** Domains that use the network, with the VF each holds when running. */
  users: { domain: string; state: string; pciAddress?: string }[];
}

export interface Note {
  /** What the note is about: "kernelArgs", a PF's PCI address, "network <name>". */
  about: string;
  text: string;
}

export interface Adoption {
  kernelArgs: AdoptedKernelArgs | false;
  pfs: AdoptedPf[];
  poolNetworks: AdoptedNetwork[];
  notes: Note[];
}

/** Kernel arguments from the seeds that an SR-IOV host needs; other keys stay the operator's. */
const SRIOV_ARG_KEYS = new Set(["pcie_acs_override", "vfio_pci.ids", "vfio_iommu_type1.allow_unsafe_interrupts", "hugepages", "hugepagesz", "default_hugepagesz"]);
const SRIOV_PCI_VALUES = new Set(["pci=realloc", "pci=assign-busses", "pci=nomsi"]);

/** The kernel arguments the boot configuration gives now, as IommuKernelArgs inputs. */
export function adoptKernelArgs(configured: readonly string[], notes: Note[]): AdoptedKernelArgs | false {
  const has = (a: string) => configured.includes(a);
  const iommu = has("intel_iommu=on") ? "intel" : has("amd_iommu=on") ? "amd" : undefined;
  if (!iommu) {
    notes.push({ about: "kernelArgs", text: "the boot configuration turns on no IOMMU (no intel_iommu=on or amd_iommu=on): kernel arguments are left unmanaged" });
    return false;
  }
  const extraArgs = configured.filter((a) => SRIOV_ARG_KEYS.has(argKey(a)) || SRIOV_PCI_VALUES.has(a));
  const out: AdoptedKernelArgs = { iommu, passthrough: has("iommu=pt") };
  if (extraArgs.length) out.extraArgs = extraArgs;
  return out;
}

/** Whether a hand-written file acts on this PF: it names its PCI address, one of its interfaces, or (modprobe) its driver. */
function mentions(text: string, pf: PfFound): boolean {
  if (text.includes(pf.pciAddress)) return true;
  return pf.netdevs.some((n) => new RegExp(`(^|[^A-Za-z0-9_.-])${n.name.replace(/[.]/g, "\\.")}([^A-Za-z0-9_.-]|$)`, "m").test(text));
}

/** Every way the host brings this PF's VFs back at boot. */
export function mechanismsOf(inv: Inventory, pf: PfFound): Mechanism[] {
  const found: Mechanism[] = [];
  const ours = new Map<string, Mechanism["kind"]>([
    [unitPath(pf.pciAddress), "systemd"],
    [udevRulePath(pf.pciAddress), "udev"],
  ]);
  if (pf.driver) ours.set(modprobePath(pf.driver), "modprobe");
  for (const [path, text] of Object.entries(inv.files)) {
    const own = ours.get(path);
    if (own) {
      if (own !== "modprobe" || text.includes(pf.pciAddress)) found.push({ kind: own, path, ours: true });
      continue;
    }
    if (/\/pulumi-sriov-[^/]*$/.test(path)) continue; // ours, for another PF or VF
    if (path.startsWith("/etc/modprobe.d/")) {
      const option = new RegExp(`^\\s*options\\s+${pf.driver || "\\S+"}\\s.*\\bmax_vfs=`, "m");
      if (pf.driver && option.test(text)) found.push({ kind: "modprobe", path, ours: false });
    } else if (/sriov_numvfs/.test(text) && (mentions(text, pf) || (pf.driver !== "" && text.includes(`"${pf.driver}"`)))) {
      const kind = path === "/etc/rc.local" ? "rc.local" : path.endsWith(".rules") ? "udev" : "systemd";
      found.push({ kind, path, ours: false });
    }
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

function adoptVf(inv: Inventory, pf: PfFound, vf: VfFound, notes: Note[]): AdoptedVf {
  const at = `${pf.pciAddress} VF ${vf.index}`;
  const unit = vfUnitName(pf.pciAddress, vf.index);
  const out: AdoptedVf = { index: vf.index, persist: inv.files[`/etc/systemd/system/${unit}`] !== undefined && inv.wanted.includes(unit) };
  const a = vf.attributes;
  if (!a) {
    notes.push({ about: at, text: `${pf.driver || "the PF's driver"} reports no attributes for this VF: only its driver is managed` });
  } else {
    // A zero MAC leaves the MAC to the VF; leaving mac out would make one up.
    out.mac = a.mac || ZERO_MAC;
    if (a.vlan !== 0 || a.qos !== 0) out.vlan = a.vlan;
    if (a.qos !== 0) out.qos = a.qos;
    if (a.spoofCheck !== undefined) out.spoofCheck = a.spoofCheck;
    if (a.trust !== undefined) out.trust = a.trust;
    if (a.maxTxRate) out.maxTxRate = a.maxTxRate;
    if (a.vlanProtocol !== "802.1Q") notes.push({ about: at, text: `VLAN protocol ${a.vlanProtocol} is not managed here; set vlanProtocol if it should be` });
    if (a.minTxRate) notes.push({ about: at, text: `min_tx_rate ${a.minTxRate} is not managed here; set minTxRate if it should be` });
  }
  if (vf.driver === "vfio-pci") out.driver = "vfio-pci";
  else if (vf.driver === "" && pf.autoprobe) notes.push({ about: at, text: "no driver is bound: driver is left unmanaged" });
  if (!out.persist && a && (out.mac !== ZERO_MAC || out.vlan !== undefined))
    notes.push({ about: at, text: "these attributes are not made persistent by pulumi-sriov (persist: false); set persist: true to have them survive reboots" });
  return out;
}

function adoptPf(inv: Inventory, pf: PfFound, notes: Note[]): AdoptedPf {
  const mechanisms = mechanismsOf(inv, pf);
  const ours = mechanisms.filter((m) => m.ours);
  const theirs = mechanisms.filter((m) => !m.ours);
  let persist: Persist = ours.length === 1 ? ours[0].kind as Persist : "none";
  if (ours.length > 1) notes.push({ about: pf.pciAddress, text: `pulumi-sriov files of more than one kind (${ours.map((m) => m.path).join(", ")}): persist is set to none; pick one` });
  for (const m of theirs)
    notes.push({
      about: pf.pciAddress,
      text: `${m.path} (${m.kind}, not written by pulumi-sriov) brings the VFs back at boot; it is kept, so persist is "${persist}"`,
    });
  if (theirs.length > 1) notes.push({ about: pf.pciAddress, text: `${theirs.length} mechanisms set this PF's VF count at boot: they may disagree` });
  if (theirs.length && persist === "none")
    notes.push({
      about: pf.pciAddress,
      text: `to have pulumi-sriov own persistence, set persist: "systemd" and takeOver: ${JSON.stringify(theirs.map((m) => m.path))} (preview then shows the replacement; delete puts the file back)`,
    });
  if (persist === "none" && !theirs.length && pf.numVfs > 0)
    notes.push({ about: pf.pciAddress, text: `nothing brings these ${pf.numVfs} VFs back after a reboot; persist: "systemd" would` });
  const out: AdoptedPf = {
    pciAddress: pf.pciAddress,
    driver: pf.driver,
    numVfs: pf.numVfs,
    persist,
    mechanisms,
    vfs: [...pf.vfs].sort((a, b) => a.index - b.index).map((vf) => adoptVf(inv, pf, vf, notes)),
  };
  if (pf.netdevs[0]) out.interface = pf.netdevs[0].name;
  if (!pf.autoprobe) out.autoprobe = false;
  return out;
}

/** The pool networks (hostdev forward over one PF) and who uses them; other networks are not ours to manage. */
function adoptNetworks(inv: Inventory, pfs: readonly AdoptedPf[], notes: Note[]): AdoptedNetwork[] {
  const out: AdoptedNetwork[] = [];
  for (const n of inv.networks) {
    const f = n.def.forward;
    if (f?.mode !== "hostdev") continue;
    const about = `network ${n.def.name}`;
    const pf = f.pfs.length === 1 ? pfs.find((p) => p.interface === f.pfs[0]) : undefined;
    if (!pf) {
      notes.push({
        about,
        text: f.pfs.length ? `its PF ${f.pfs.join(", ")} is not an SR-IOV PF on this host: left unmanaged` : "it lists VFs by address, not a PF: left unmanaged (VfPoolNetwork with vfs can take it)",
      });
      continue;
    }
    const tags = n.def.vlan?.tags ?? [];
    if (n.def.vlan?.trunk || tags.length > 1) {
      notes.push({ about, text: "it trunks several VLANs: left unmanaged" });
      continue;
    }
    const users = inv.domains.flatMap((d) =>
      d.def.interfaces
        .filter((i) => i.network === n.def.name || (i.type === "hostdev" && i.pciAddress && pf.vfs.some((v) => pfVfPci(inv, pf, v.index) === i.pciAddress)))
        .map((i) => ({ domain: d.def.name, state: d.state, ...(i.pciAddress ? { pciAddress: i.pciAddress } : {}) })),
    );
    if (!n.active) notes.push({ about, text: "the network is defined but not active: up will start it" });
    const net: AdoptedNetwork = { name: n.def.name, pf: pf.pciAddress, autostart: n.autostart, users };
    if (tags.length === 1) net.vlan = tags[0].id;
    out.push(net);
  }
  return out;
}

function pfVfPci(inv: Inventory, pf: AdoptedPf, index: number): string | undefined {
  return inv.pfs.find((p) => p.pciAddress === pf.pciAddress)?.vfs.find((v) => v.index === index)?.pciAddress;
}

/**
 * The adoption of a host: PFs that have VFs or pulumi-sriov files (a PF with
 * neither is left out: it would only be managed at 0 VFs).
 */
export function adopt(inv: Inventory, configuredArgs: readonly string[] | undefined): Adoption {
  const notes: Note[] = [];
  const kernelArgs = configuredArgs === undefined ? false : adoptKernelArgs(configuredArgs, notes);
  const pfs = inv.pfs.filter((p) => p.numVfs > 0 || mechanismsOf(inv, p).length > 0).map((p) => adoptPf(inv, p, notes));
  return { kernelArgs, pfs, poolNetworks: adoptNetworks(inv, pfs, notes), notes };
}
