// Inputs and outputs of VirtualFunction. Attributes left out of a program
// mean the kernel's defaults (vlan 0, spoof check on, trust off, no rate
// limits, link state auto, default driver), so removing one from a program
// resets it on the host, and delete returns every attribute to them.
import { z } from "zod";
import { ifnameSchema, macSchema, vlanSchema } from "../../validate";

export type LinkState = "auto" | "enable" | "disable";
export type VlanProtocol = "802.1Q" | "802.1ad";
export type DriverMode = "default" | "vfio-pci";

export interface VfInputs {
  /** PF interface name (usually `sriovPf.interface`). */
  pf: string;
  index: number;
  /**
   * Administrative MAC; derived from host, PF and index when left out.
   * 00:00:00:00:00:00 leaves the VF without one (its driver or guest picks).
   */
  mac?: string;
  /** VLAN tag the NIC adds and strips; left out = untagged. 0 with a qos = priority tagging. */
  vlan?: number;
  qos: number;
  vlanProtocol: VlanProtocol;
  spoofCheck: boolean;
  trust: boolean;
  linkState: LinkState;
  /** Mbit/s; 0 = no limit. */
  minTxRate: number;
  maxTxRate: number;
  driver: DriverMode;
  persist: boolean;
}

export interface VfOutputs {
  /** The VF's PCI address. */
  pciAddress: string;
  /** -1 when the IOMMU is off. */
  iommuGroup: number;
  /** The VF's own interface; "" while bound to vfio-pci or unbound. */
  netdev: string;
  /** The driver bound now; "" when unbound. */
  driver: string;
  /** The administrative MAC the PF holds for the VF. */
  mac: string;
  /** -1 when the platform has no NUMA information. */
  numaNode: number;
  /** The PF's PCI address, resolved at apply time (interface names can change). */
  pfPciAddress: string;
  /** The PF's interface name when last seen. */
  pfInterface: string;
  /** The systemd unit re-applying this VF at boot; "" without persistence. */
  persistPath: string;
}

/** What the kernel gives a freshly created VF, and what delete returns it to. */
export const RESET = {
  mac: "00:00:00:00:00:00",
  vlan: 0,
  qos: 0,
  vlanProtocol: "802.1Q" as VlanProtocol,
  spoofCheck: true,
  trust: false,
  linkState: "auto" as LinkState,
  minTxRate: 0,
  maxTxRate: 0,
  driver: "default" as DriverMode,
};

function rateSchema() {
  return z.number().int("must be a whole number of Mbit/s").min(0, "must be 0 (no limit) or more").max(10_000_000, "must be at most 10000000 Mbit/s");
}

export function inputsSchema() {
  const schema = z
    .object({
      pf: ifnameSchema(),
      index: z.number().int("must be a whole number").min(0, "must be 0 or more").max(4095, "must be at most 4095"),
      // A unicast MAC, or all zeros for "no administrative MAC".
      mac: macSchema({ unicast: true, example: "02:00:00:12:34:56" }).optional(),
      vlan: vlanSchema().optional(),
      qos: z.number().int("must be a whole number").min(0, "must be 0–7").max(7, "must be 0–7").default(RESET.qos),
      vlanProtocol: z.enum(["802.1Q", "802.1ad"], { message: 'must be "802.1Q" or "802.1ad"' }).default(RESET.vlanProtocol),
      spoofCheck: z.boolean({ message: "must be true or false" }).default(RESET.spoofCheck),
      trust: z.boolean({ message: "must be true or false" }).default(RESET.trust),
      linkState: z.enum(["auto", "enable", "disable"], { message: 'must be "auto", "enable" or "disable"' }).default(RESET.linkState),
      minTxRate: rateSchema().default(RESET.minTxRate),
      maxTxRate: rateSchema().default(RESET.maxTxRate),
      driver: z.enum(["default", "vfio-pci"], { message: 'must be "default" or "vfio-pci"' }).default(RESET.driver),
      persist: z.boolean({ message: "must be true or false" }).default(true),
    })
    .strict()
    .superRefine((v, ctx) => {
      // zod runs this even when fields failed: judge only valid values, so
      // each bad property is reported once, for what is wrong with it.
      const ok = (n: unknown) => typeof n === "number" && Number.isInteger(n) && n >= 0;
      // A priority or an outer tag protocol only exists on a tagged VLAN.
      if (ok(v.qos) && v.qos !== 0 && v.qos <= 7 && v.vlan === undefined)
        ctx.addIssue({ code: "custom", path: ["qos"], message: "needs vlan (a priority travels in a VLAN tag; vlan 0 tags with the priority only)" });
      if (v.vlanProtocol === "802.1ad" && !v.vlan)
        ctx.addIssue({ code: "custom", path: ["vlanProtocol"], message: "needs a vlan of 1 or more (the protocol is that of the VLAN tag)" });
      if (ok(v.maxTxRate) && ok(v.minTxRate) && v.maxTxRate > 0 && v.minTxRate > v.maxTxRate)
        ctx.addIssue({ code: "custom", path: ["minTxRate"], message: `must not exceed maxTxRate (${v.maxTxRate})` });
    });
  // Typed as the parsed inputs; the raw input type stays for the SDK to be checked against.
  return schema as unknown as z.ZodType<VfInputs, z.input<typeof schema>>;
}

export function unitName(pfPci: string, index: number): string {
  return `pulumi-sriov-vf-${pfPci}-${index}.service`;
}

export function unitPath(pfPci: string, index: number): string {
  return `/etc/systemd/system/${unitName(pfPci, index)}`;
}

/** The PF unit SriovPf persists VF counts with; ours is ordered after it. */
export function pfUnitName(pfPci: string): string {
  return `pulumi-sriov-pf-${pfPci}.service`;
}
