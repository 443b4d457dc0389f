// SriovPf inputs and outputs. The schema is built on each call (module-level
// zod schemas do not survive provider serialization).
import { z } from "zod";
import { ifnameSchema, macSchema, pciAddressSchema } from "../../validate";
import { takeOverKind } from "./takeover";

export type Persist = "systemd" | "udev" | "modprobe" | "none";

export interface SriovPfInputs {
  /** The PF's network interface name. Exactly one of interface | pciAddress | macAddress. */
  interface?: string;
  /** The PF's PCI address (stable across reboots, unlike names). */
  pciAddress?: string;
  /** The PF's MAC address. */
  macAddress?: string;
  numVfs: number;
  /** sriov_drivers_autoprobe: whether new VFs get their default driver (igbvf…). */
  autoprobe: boolean;
  persist: Persist;
  mtu?: number;
  /** Change VFs even while running domains or active pool networks use them. */
  force: boolean;
  /** Hand-made persistence files (absolute paths) this resource replaces with its own; delete puts them back. */
  takeOver?: string[];
}

/** One virtual function as the host reports it (the SDK exports this type as is). */
export interface VfInfo {
  /** VF index on its PF (0-based). */
  index: number;
  /** VF PCI address. */
  pciAddress: string;
  /** IOMMU group number (what VFIO passes to a guest as a unit); absent when the IOMMU is off. */
  iommuGroup?: number;
  /** VF network interface name ("" while no driver with a network interface is bound, e.g. vfio-pci or autoprobe off). */
  netdev: string;
  /** Driver bound to the VF ("igbvf", "iavf", "vfio-pci", …; "" when unbound). */
  driver: string;
  /** VF MAC address: the VF netdev's address, else the address the PF assigned ("" when unknown). */
  mac: string;
}

/** The PF as this resource first found it; delete puts these back. */
export interface FoundState {
  numVfs: number;
  autoprobe: boolean;
  /** 0 when the PF had no network interface. */
  mtu: number;
}

export interface SriovPfOutputs {
  interface: string;
  pciAddress: string;
  driver: string;
  totalVfs: number;
  numVfs: number;
  /** -1 when the platform reports no NUMA affinity. */
  numaNode: number;
  /** The persistence file ("" for persist "none"). */
  persistPath: string;
  vfs: VfInfo[];
  /** Things an operator should know that did not stop the change (conflicting persistence, shared module options…). */
  warnings: string[];
  found: FoundState;
}

export const SELECTORS = ["interface", "pciAddress", "macAddress"] as const;
export type Selector = (typeof SELECTORS)[number];

export function selectorOf(i: Pick<SriovPfInputs, Selector>): { kind: Selector; value: string } {
  for (const k of SELECTORS) if (i[k] !== undefined) return { kind: k, value: i[k]! };
  throw new Error("SriovPf: no PF selector in inputs");
}

const plainPath = (p: string) => !p.split("/").some((c, i) => (i > 0 && c === "") || c === "." || c === "..");

export function inputsSchema() {
  const schema = z
    .object({
      interface: ifnameSchema().optional(),
      pciAddress: pciAddressSchema().optional(),
      // Any MAC: a PF's address is unicast, but refusing others here helps no one.
      macAddress: macSchema().optional(),
      numVfs: z
        .number({ message: "must be a whole number" })
        .min(0, "must be 0 or more")
        .max(65535, "must be at most 65535 (the PCIe TotalVFs field is 16 bits)")
        .refine((n) => Number.isInteger(n), "must be a whole number"),
      autoprobe: z.boolean().default(true),
      persist: z.enum(["systemd", "udev", "modprobe", "none"], "must be one of systemd, udev, modprobe, none").default("systemd"),
      mtu: z
        .number()
        .min(68, "must be 68–65535")
        .max(65535, "must be 68–65535")
        .refine((n) => Number.isInteger(n), "must be a whole number")
        .optional(),
      force: z.boolean().default(false),
      takeOver: z
        .array(
          z
            .string()
            .refine((p) => p.startsWith("/"), "must be an absolute path (starting with /)")
            .refine((p) => !/[\x00-\x1f\x7f]/.test(p), "must not contain control characters")
            .refine(plainPath, 'must be a plain path (no "//", "." or ".." parts)')
            .refine(
              // Said only of a path that is otherwise right, so each wrong path gets one message.
              (p) => !p.startsWith("/") || !plainPath(p) || takeOverKind(p) !== undefined,
              "must be a udev rule (/etc/udev/rules.d/*.rules), a systemd unit (/etc/systemd/system/*.service), a modprobe option file (/etc/modprobe.d/*.conf) or rc.local (/etc/rc.local, /etc/rc.d/rc.local)",
            ),
          "must be a list of file paths",
        )
        .optional(),
    })
    .strict()
    .superRefine((v, ctx) => {
      // v may hold invalid values here: only compare, never trust types.
      const given = SELECTORS.filter((k) => v[k] !== undefined);
      if (given.length === 0)
        ctx.addIssue({ code: "custom", path: ["interface"], message: "one of interface, pciAddress or macAddress is required to find the PF" });
      if (given.length > 1)
        for (const k of given.slice(1))
          ctx.addIssue({ code: "custom", path: [k], message: `give only one of interface, pciAddress, macAddress (${given[0]} is also set)` });
      if (v.persist === "modprobe") {
        // A module option only says how many VFs the driver creates as it
        // loads; nothing else of this resource would survive a reboot.
        if (v.autoprobe === false)
          ctx.addIssue({
            code: "custom",
            path: ["autoprobe"],
            message:
              'false cannot be kept across reboots with persist "modprobe" (the driver creates the VFs as it loads, before sriov_drivers_autoprobe can be cleared); use persist "systemd" or "udev"',
          });
        if (v.mtu !== undefined)
          ctx.addIssue({
            code: "custom",
            path: ["mtu"],
            message: 'is not kept across reboots with persist "modprobe"; use persist "systemd" or "udev", or set the MTU in the host\'s network configuration',
          });
      }
      if (Array.isArray(v.takeOver)) {
        if (v.takeOver.length && v.persist === "none")
          ctx.addIssue({
            code: "custom",
            path: ["takeOver"],
            message: 'needs persist "systemd", "udev" or "modprobe": a hand-made file is replaced with this resource\'s own persistence, and persist "none" has none',
          });
        const seen = new Set<unknown>();
        for (const p of v.takeOver) {
          if (seen.has(p)) ctx.addIssue({ code: "custom", path: ["takeOver"], message: `lists ${String(p)} twice` });
          seen.add(p);
        }
      }
      // Runs even when a field is invalid, so every bad property is reported at once.
    }, { when: () => true });
  // Typed as the parsed inputs; the raw input type stays for the SDK to be checked against.
  return schema as unknown as z.ZodType<SriovPfInputs, z.input<typeof schema>>;
}
