// SriovHost: one hypervisor's whole SR-IOV set-up from one object, wired in
// the order the guides prescribe: kernel arguments → PFs (VF counts) → VF
// attributes → pool networks.
import * as pulumi from "@pulumi/pulumi";
import { childNames, nameSafe } from "../provider/names";
import { IommuKernelArgs, SriovPf, VfPoolNetwork, VirtualFunction } from "./resources";
import {
  ConnectionArgs,
  IommuKernelArgsInputs,
  PersistMethod,
  VfAttributes,
} from "./types";

/** The type token of the component. */
export const SRIOV_HOST_TYPE = "sriov:index:SriovHost";

/** VF attributes applied to every VF of a PF. No `mac`: one MAC on every VF would collide; the provider derives a stable MAC per VF. */
export type VfTemplate = Omit<VfAttributes, "mac">;

/** Attributes for one VF, overriding the PF's `vfTemplate` key by key. */
export interface VfOverride extends VfAttributes {
  /** VF index (0-based, below `numVfs`). */
  index: number;
}

/** One PF of a {@link SriovHost}. Give exactly one of `interface`, `pciAddress`, `macAddress`. */
export interface SriovHostPfArgs {
  /** PF interface name (plain string: it names the child resources and is what `poolNetworks[].pf` refers to). */
  interface?: string;
  /** PF PCI address, e.g. "0000:41:00.0" (stable across reboots; recommended for fleets). */
  pciAddress?: string;
  /** PF MAC address. */
  macAddress?: string;
  /** Number of VFs (plain number: one VirtualFunction resource is created per VF). */
  numVfs: number;
  /** `sriov_drivers_autoprobe`. Default true. */
  autoprobe?: pulumi.Input<boolean>;
  /** VF persistence across reboots. Default "systemd". */
  persist?: pulumi.Input<PersistMethod>;
  /** PF MTU (e.g. 9000). */
  mtu?: pulumi.Input<number>;
  /** Allow changing VFs that running domains use. Default false. */
  force?: pulumi.Input<boolean>;
  /** Hand-made persistence files this PF's SriovPf replaces with its own (see SriovPfInputs.takeOver). */
  takeOver?: pulumi.Input<pulumi.Input<string>[]>;
  /** Attributes applied to every VF of this PF (VLAN, spoof check, trust, rates, driver…). */
  vfTemplate?: VfTemplate;
  /** Per-VF overrides (MAC, VLAN, …), merged over `vfTemplate`. */
  vfs?: VfOverride[];
  /**
   * Create one VirtualFunction per VF (stable MACs, persisted attributes). Default true.
   * With false only the VF count is managed and `vfTemplate` / `vfs` must be absent.
   */
  manageVfs?: boolean;
}

/** A libvirt hostdev pool network over one of the host's PFs. */
export interface SriovHostPoolNetworkArgs {
  /** libvirt network name. */
  name: string;
  /** The PF, as given in `pfs` (its `interface`, `pciAddress` or `macAddress` value). */
  pf: string;
  /** VLAN tag for interfaces taken from the pool. */
  vlan?: pulumi.Input<number>;
  /** Start with libvirtd. Default true. */
  autostart?: pulumi.Input<boolean>;
  /** libvirt URI. Default "qemu:///system". */
  libvirtUri?: pulumi.Input<string>;
  /** Allow deleting the network while domains use it. Default false. */
  force?: pulumi.Input<boolean>;
}

export interface SriovHostArgs {
  /** SSH connection to the host; stored as a secret in every resource. */
  connection: pulumi.Input<ConnectionArgs>;
  /** IOMMU kernel arguments. Absent: the command line is not managed (e.g. set up by other tooling). */
  kernelArgs?: IommuKernelArgsInputs;
  /** The PFs to configure. */
  pfs: SriovHostPfArgs[];
  /** Pool networks over those PFs. */
  poolNetworks?: SriovHostPoolNetworkArgs[];
  /**
   * Adopt what the host already has: child resource name → that resource's
   * id, passed as the child's `import` option (`pulumi-sriov discover` prints
   * this map). Each adopted child's create changes nothing on the host and
   * fails if the host does not match its inputs.
   */
  imports?: Record<string, string>;
}

/** What a VF looks like in {@link SriovHostSummary}. */
export interface VfSummary {
  index: number;
  pciAddress?: string;
  iommuGroup?: number;
  mac?: string;
  vlan?: number;
  driver?: string;
  netdev?: string;
}

/** A plain, non-secret summary of one host's set-up (for stack outputs and reports). */
export interface SriovHostSummary {
  kernelArgs?: { args?: string[]; rebootRequired?: boolean; iommuEnabled?: boolean; iommuGroupCount?: number; warnings?: string[] };
  pfs: {
    interface?: string;
    pciAddress?: string;
    driver?: string;
    numVfs?: number;
    totalVfs?: number;
    numaNode?: number;
    vfs: VfSummary[];
  }[];
  poolNetworks: { name?: string; active?: boolean; autostart?: boolean; vfAddresses?: string[] }[];
}

/** The key a PF is referred to by: the selector value given. */
export function pfKey(pf: Pick<SriovHostPfArgs, "interface" | "pciAddress" | "macAddress">): string {
  return (pf.interface ?? pf.pciAddress ?? pf.macAddress ?? "") as string;
}

export { nameSafe };

/** The names of the resources a SriovHost called `name` creates, in order. */
export function sriovHostChildNames(name: string, args: Pick<SriovHostArgs, "kernelArgs" | "pfs" | "poolNetworks">): string[] {
  const names: string[] = args.kernelArgs ? [childNames.kernelArgs(name)] : [];
  for (const p of args.pfs ?? []) {
    names.push(childNames.pf(name, pfKey(p)));
    if (p.manageVfs !== false) for (let i = 0; i < p.numVfs; i++) names.push(childNames.vf(name, pfKey(p), i));
  }
  for (const n of args.poolNetworks ?? []) names.push(childNames.poolNetwork(name, n.name));
  return names;
}

/**
 * Checks a SriovHost's arguments before any resource is created; returns
 * every problem, each naming its property (empty when valid).
 */
export function validateSriovHostArgs(args: SriovHostArgs, name?: string): string[] {
  const errors: string[] = [];
  if (!args || typeof args !== "object") return ["arguments are required"];
  if (args.connection === undefined || args.connection === null) errors.push("connection: is required");
  if (!Array.isArray(args.pfs)) {
    errors.push("pfs: must be a list");
    return errors;
  }
  const keys = new Map<string, number>();
  args.pfs.forEach((pf, i) => {
    const at = `pfs[${i}]`;
    const given = (["interface", "pciAddress", "macAddress"] as const).filter((k) => pf[k] !== undefined);
    if (given.length !== 1) errors.push(`${at}: give exactly one of interface, pciAddress, macAddress (got ${given.length ? given.join(", ") : "none"})`);
    for (const k of given) if (typeof pf[k] !== "string" || pf[k] === "") errors.push(`${at}.${k}: must be a non-empty string`);
    const key = pfKey(pf);
    if (key) {
      if (keys.has(key)) errors.push(`${at}: ${key} is already pfs[${keys.get(key)}]`);
      else keys.set(key, i);
    }
    if (!Number.isInteger(pf.numVfs) || pf.numVfs < 0) errors.push(`${at}.numVfs: must be a whole number ≥ 0 (got ${JSON.stringify(pf.numVfs)})`);
    if (pf.vfTemplate && "mac" in (pf.vfTemplate as object)) errors.push(`${at}.vfTemplate.mac: a template MAC would repeat on every VF; set MACs per VF in vfs[]`);
    if (pf.manageVfs === false && (pf.vfTemplate || (pf.vfs && pf.vfs.length))) errors.push(`${at}: vfTemplate and vfs need manageVfs (default true)`);
    const seen = new Set<number>();
    (pf.vfs ?? []).forEach((o, j) => {
      if (!Number.isInteger(o?.index) || o.index < 0 || (Number.isInteger(pf.numVfs) && o.index >= pf.numVfs))
        errors.push(`${at}.vfs[${j}].index: must be a VF index 0…${Number(pf.numVfs) - 1} (got ${JSON.stringify(o?.index)})`);
      else if (seen.has(o.index)) errors.push(`${at}.vfs[${j}].index: VF ${o.index} is listed twice`);
      else seen.add(o.index);
    });
  });
  const names = new Set<string>();
  (args.poolNetworks ?? []).forEach((n, i) => {
    const at = `poolNetworks[${i}]`;
    if (typeof n?.name !== "string" || n.name === "") errors.push(`${at}.name: is required`);
    else if (names.has(n.name)) errors.push(`${at}.name: ${n.name} is used twice`);
    else names.add(n.name);
    if (typeof n?.pf !== "string" || !keys.has(n.pf))
      errors.push(`${at}.pf: must be one of this host's pfs (${[...keys.keys()].join(", ") || "none"}), got ${JSON.stringify(n?.pf)}`);
  });
  if (args.imports !== undefined) {
    if (!args.imports || typeof args.imports !== "object" || Array.isArray(args.imports)) errors.push("imports: must map resource names to ids");
    else {
      const children = name !== undefined && !errors.length ? new Set(sriovHostChildNames(name, args)) : undefined;
      for (const [child, id] of Object.entries(args.imports)) {
        if (typeof id !== "string" || id === "") errors.push(`imports.${child}: must be a non-empty id`);
        if (children && !children.has(child)) errors.push(`imports.${child}: this host has no resource of that name (it has ${[...children].join(", ")})`);
      }
    }
  }
  return errors;
}

/** Merges extra resources into a `dependsOn` option of any accepted form. */
export function combineDependsOn(
  base: pulumi.ResourceOptions["dependsOn"],
  extra: pulumi.Resource[],
): pulumi.Input<pulumi.Input<pulumi.Resource>[]> {
  if (base === undefined || base === null) return extra;
  if (Array.isArray(base)) return [...base, ...extra];
  if (pulumi.Resource.isInstance(base)) return [base, ...extra];
  // A Promise or Output of a resource or of a list of resources.
  return pulumi.output(base as pulumi.Input<any>).apply((b: any) => [...(Array.isArray(b) ? b : [b]), ...extra]) as any;
}

/**
 * One hypervisor's SR-IOV set-up: IOMMU kernel arguments, PFs with their VF
 * counts, one VirtualFunction per VF (template + per-VF overrides) and pool
 * networks, with explicit dependencies kernel args → PFs → VFs → networks.
 *
 * The component's own `dependsOn` is passed to every child, so a SriovHost
 * waits for (and is stopped by the failure of) whatever it depends on.
 */
export class SriovHost extends pulumi.ComponentResource {
  /** The kernel-arguments resource, when `kernelArgs` was given. */
  public readonly kernelArgs: IommuKernelArgs | undefined;
  /** The PF resources, in the order of `pfs`. */
  public readonly pfs: SriovPf[];
  /** The VirtualFunction resources per PF (same order as `pfs`), by VF index. */
  public readonly vfs: VirtualFunction[][];
  /** The pool networks, in the order of `poolNetworks`. */
  public readonly poolNetworks: VfPoolNetwork[];
  /** A plain summary (no connection details): VFs with PCI addresses, IOMMU groups and MACs; networks. */
  public readonly summary: pulumi.Output<SriovHostSummary>;

  constructor(name: string, args: SriovHostArgs, opts?: pulumi.ComponentResourceOptions) {
    const errors = validateSriovHostArgs(args, name);
    if (errors.length) throw new Error(`SriovHost ${name}: invalid arguments:\n  ${errors.join("\n  ")}`);
    super(SRIOV_HOST_TYPE, name, {}, opts);

    const connection = pulumi.secret(args.connection);
    const external = opts?.dependsOn;
    const child = (childName: string, deps: pulumi.Resource[]): pulumi.CustomResourceOptions => {
      const id = args.imports?.[childName];
      return { parent: this, dependsOn: combineDependsOn(external, deps), ...(id !== undefined ? { import: id } : {}) };
    };

    const kernelName = childNames.kernelArgs(name);
    this.kernelArgs = args.kernelArgs ? new IommuKernelArgs(kernelName, { ...args.kernelArgs, connection }, child(kernelName, [])) : undefined;
    const afterKernel = this.kernelArgs ? [this.kernelArgs] : [];

    this.pfs = [];
    this.vfs = [];
    const vlans: pulumi.Input<number | undefined>[][] = [];
    const byKey = new Map<string, { pf: SriovPf; vfs: VirtualFunction[] }>();
    for (const p of args.pfs) {
      const key = pfKey(p);
      const base = childNames.pf(name, key);
      const { vfTemplate, vfs: overrides, manageVfs, ...pfInputs } = p;
      const pf = new SriovPf(base, { ...pfInputs, connection }, child(base, afterKernel));
      const vfs: VirtualFunction[] = [];
      const pfVlans: pulumi.Input<number | undefined>[] = [];
      if (manageVfs !== false) {
        for (let i = 0; i < p.numVfs; i++) {
          const o = (overrides ?? []).find((x) => x.index === i);
          const { index: _i, ...attrs } = o ?? { index: i };
          const merged: VfAttributes = { ...(vfTemplate ?? {}), ...attrs };
          pfVlans.push(merged.vlan);
          vfs.push(
            new VirtualFunction(
              childNames.vf(name, key, i),
              { ...merged, pf: pf.interface, index: i, connection },
              child(childNames.vf(name, key, i), [pf]),
            ),
          );
        }
      }
      this.pfs.push(pf);
      this.vfs.push(vfs);
      vlans.push(pfVlans);
      byKey.set(key, { pf, vfs });
    }

    this.poolNetworks = (args.poolNetworks ?? []).map((n) => {
      const target = byKey.get(n.pf)!;
      const { pf: _pf, ...netInputs } = n;
      const netName = childNames.poolNetwork(name, n.name);
      return new VfPoolNetwork(netName, { ...netInputs, pf: target.pf.interface, connection }, child(netName, [target.pf, ...target.vfs]));
    });

    this.summary = summarize(this.kernelArgs, this.pfs, this.vfs, vlans, this.poolNetworks);
    this.registerOutputs({
      kernelArgs: this.kernelArgs,
      pfs: this.pfs,
      vfs: this.vfs,
      poolNetworks: this.poolNetworks,
      summary: this.summary,
    });
  }
}

function summarize(
  kernelArgs: IommuKernelArgs | undefined,
  pfs: SriovPf[],
  vfs: VirtualFunction[][],
  vlans: pulumi.Input<number | undefined>[][],
  networks: VfPoolNetwork[],
): pulumi.Output<SriovHostSummary> {
  const ka = kernelArgs
    ? pulumi.all([kernelArgs.args, kernelArgs.rebootRequired, kernelArgs.iommuEnabled, kernelArgs.iommuGroupCount, kernelArgs.warnings]).apply(
        ([args, rebootRequired, iommuEnabled, iommuGroupCount, warnings]) => ({ args, rebootRequired, iommuEnabled, iommuGroupCount, warnings }),
      )
    : undefined;
  const pfSummaries = pfs.map((pf, i) =>
    pulumi
      .all([
        pulumi.all([pf.interface, pf.pciAddress, pf.driver, pf.numVfs, pf.totalVfs, pf.numaNode, pf.vfs]),
        pulumi.all(
          vfs[i].map((vf, index) =>
            pulumi.all([vf.pciAddress, vf.iommuGroup, vf.mac, vlans[i][index], vf.driver, vf.netdev]).apply(
              ([pciAddress, iommuGroup, mac, vlan, driver, netdev]): VfSummary => ({ index, pciAddress, iommuGroup, mac, vlan, driver, netdev }),
            ),
          ),
        ),
      ])
      .apply(([[iface, pciAddress, driver, numVfs, totalVfs, numaNode, pfVfs], managed]) => {
        // Managed VFs report their own attributes; otherwise the PF's view.
        const fromPf: VfSummary[] = (pfVfs ?? []).map((v) => ({
          index: v.index,
          pciAddress: v.pciAddress,
          iommuGroup: v.iommuGroup,
          mac: v.mac,
          driver: v.driver,
          netdev: v.netdev,
        }));
        const merged: VfSummary[] = managed.length
          ? managed.map((m) => ({ ...fromPf.find((v) => v.index === m.index), ...dropUndefined(m), index: m.index }))
          : fromPf;
        return { interface: iface, pciAddress, driver, numVfs, totalVfs, numaNode, vfs: merged };
      }),
  );
  const netSummaries = networks.map((n) =>
    pulumi.all([n.name, n.active, n.autostart, n.vfAddresses]).apply(([name, active, autostart, vfAddresses]) => ({ name, active, autostart, vfAddresses })),
  );
  return pulumi.all([ka, pulumi.all(pfSummaries), pulumi.all(netSummaries)]).apply(([k, p, n]) => {
    const s: SriovHostSummary = { pfs: p as SriovHostSummary["pfs"], poolNetworks: n };
    if (k) s.kernelArgs = k;
    return s;
  });
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
