// Inputs and outputs of VfPoolNetwork: a libvirt network with
// <forward mode='hostdev' managed='yes'> handing out the VFs of one PF, or an
// explicit list of VFs, to guests that ask for an interface on it.
import { z } from "zod";
import { ifnameSchema, libvirtUriSchema, patterns, pciAddressSchema, vlanSchema } from "../../validate";

export interface PoolInputs {
  /** libvirt network name. */
  name: string;
  /** Pool of all the VFs of this PF (netdev name)… */
  pf?: string;
  /** …or of exactly these VFs (PCI addresses). */
  vfs?: string[];
  autostart: boolean;
  /** VLAN tag on every VF the network hands out. */
  vlan?: number;
  libvirtUri: string;
  /** Delete (or redefine) even while guests hold VFs from the network, or adopt a differing network of the same name. */
  force: boolean;
}

export interface PoolOutputs {
  /** The network name (what guests' `source.network` refers to). */
  name: string;
  uuid: string;
  /** The network's XML as libvirt shows it (live when active). */
  xml: string;
  active: boolean;
  autostart: boolean;
  /** Guest interfaces connected now. */
  connections: number;
  /** The VFs in the pool, as libvirt lists them (for a PF: once the network runs). */
  vfAddresses: string[];
}

export function inputsSchema() {
  const schema = z
    .object({
      name: z.string().regex(patterns.libvirtName, "must be a libvirt network name (letters, digits, _ . + -, at most 64 characters)"),
      pf: ifnameSchema().optional(),
      vfs: z
        .array(pciAddressSchema())
        .min(1, "must list at least one VF")
        .refine((a) => new Set(a).size === a.length, "must not list a VF twice")
        .optional(),
      autostart: z.boolean({ message: "must be true or false" }).default(true),
      vlan: vlanSchema().optional(),
      libvirtUri: libvirtUriSchema(),
      force: z.boolean({ message: "must be true or false" }).default(false),
    })
    // Run even when other properties are bad, so every failure shows at once.
    .refine((v: any) => !(v?.pf !== undefined && v?.vfs !== undefined), { path: ["vfs"], message: "give either pf or vfs, not both", when: () => true })
    .refine((v: any) => !(v?.pf === undefined && v?.vfs === undefined), {
      path: ["pf"],
      message: "give either pf (all its VFs) or vfs (a list of VF PCI addresses)",
      when: () => true,
    });
  // Typed as the parsed inputs; the raw input type stays for the SDK to be checked against.
  return schema as unknown as z.ZodType<PoolInputs, z.input<typeof schema>>;
}
