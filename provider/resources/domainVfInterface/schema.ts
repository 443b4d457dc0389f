// Inputs and outputs of DomainVfInterface: one guest network interface backed
// by an SR-IOV VF, either taken from a pool network (<interface
// type='network'>) or one VF by PCI address (<interface type='hostdev'>).
import { z } from "zod";
import { libvirtUriSchema, patterns, macSchema, pciAddressSchema, vlanSchema } from "../../validate";

export type IfaceSource = { network: string; pciAddress?: undefined } | { pciAddress: string; network?: undefined };

export interface Virtualport {
  type: "802.1Qbh";
  profileId: string;
}

export interface IfaceInputs {
  domain: string;
  source: IfaceSource;
  /** Guest MAC; generated (52:54:00:…) when left out. Also how the interface is found again. */
  mac?: string;
  vlan?: number;
  virtualport?: Virtualport;
  /** Attach to the running guest; default: when it is running. */
  live?: boolean;
  /** Attach to the persistent configuration. */
  config: boolean;
  libvirtUri: string;
}

export interface IfaceOutputs {
  mac: string;
  /** The VF the guest holds ("" while it holds none, e.g. a pool interface of a stopped guest). */
  pciAddress: string;
  /** libvirt's device alias in the running guest ("" when not attached live). */
  alias: string;
}

export function inputsSchema() {
  const name = (what: string) => z.string().regex(patterns.libvirtName, `must be a libvirt ${what} name (letters, digits, _ . + -, at most 64 characters)`);
  const schema = z
    .object({
      domain: name("domain"),
      source: z
        .object({ network: name("network").optional(), pciAddress: pciAddressSchema().optional() })
        .strict()
        .refine((s: any) => typeof s !== "object" || s === null || (s.network === undefined) !== (s.pciAddress === undefined), {
          message: "give either network (a pool network's name) or pciAddress (one VF), not both",
          when: () => true,
        }),
      mac: macSchema({ unicast: true, allowZero: false }).optional(),
      vlan: vlanSchema().optional(),
      virtualport: z
        .object({
          type: z.literal("802.1Qbh", { message: 'must be "802.1Qbh"' }),
          profileId: z.string().regex(/^[A-Za-z0-9_.:-]{1,39}$/, "must be a port profile id (letters, digits, _ . : -, at most 39 characters)"),
        })
        .strict()
        .optional(),
      live: z.boolean({ message: "must be true or false" }).optional(),
      config: z.boolean({ message: "must be true or false" }).default(true),
      libvirtUri: libvirtUriSchema(),
    })
    .strict()
    // Judged only on values that are otherwise valid, so a bad vlan is reported once.
    .refine((v: any) => !(typeof v?.vlan === "number" && v?.virtualport && typeof v.virtualport === "object"), {
      path: ["vlan"],
      message: "give vlan or virtualport, not both (an 802.1Qbh port profile carries the VLAN)",
      when: () => true,
    })
    .refine((v: any) => !(v?.live === false && v?.config === false), {
      path: ["config"],
      message: "live and config cannot both be false: the interface would be attached nowhere",
      when: () => true,
    });
  // Typed as the parsed inputs; the raw input type stays for the SDK to be checked against.
  return schema as unknown as z.ZodType<IfaceInputs, z.input<typeof schema>>;
}
