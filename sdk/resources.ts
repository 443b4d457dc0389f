// The five resource classes. Each is a `pulumi.dynamic.Resource` built on the
// matching provider object of ../provider; the provider is serialized into
// state by Pulumi and runs in the engine's dynamic-provider process.
//
// Output properties are `declare`d: a class field (even `x!: T`) compiled
// with ES2022 class-field semantics would be re-initialised to undefined after
// the base constructor has set it.
import * as pulumi from "@pulumi/pulumi";
import * as providers from "../provider";
import { IMPORT_ID } from "../provider/resource";
import {
  Bootloader,
  ConnectionArgs,
  DomainVfInterfaceArgs,
  IommuKernelArgsArgs,
  SriovPfArgs,
  VfInfo,
  VfPoolNetworkArgs,
  VirtualFunctionArgs,
} from "./types";

/** Module part of every type token: `pulumi-nodejs:dynamic/sriov:<Class>`. */
export const TYPE_MODULE = "sriov";

/** The type token the engine records for a class of this package, e.g. `pulumi-nodejs:dynamic/sriov:SriovPf`. */
export function typeToken(className: string): string {
  return `pulumi-nodejs:dynamic/${TYPE_MODULE}:${className}`;
}

/**
 * The property bag registered for a resource: the user's inputs, the
 * connection as a secret, every output key (undefined, so the engine fills it
 * in from the provider's result), and the `import` option's id as the
 * provider's `importId` input.
 */
function propsFor(args: { connection: unknown }, outputKeys: readonly string[], opts?: pulumi.CustomResourceOptions): pulumi.Inputs {
  if (!args || typeof args !== "object") throw new Error("resource arguments are required");
  if (args.connection === undefined || args.connection === null) throw new Error("connection is required");
  const props: pulumi.Inputs = { ...(args as object) };
  props.connection = pulumi.secret(args.connection as pulumi.Input<object>);
  for (const k of outputKeys) if (!(k in props)) props[k] = undefined;
  if (opts?.import !== undefined) props[IMPORT_ID] = opts.import;
  return props;
}

/**
 * Resource options with `connection` added to `additionalSecretOutputs`, and
 * without `import`: the engine's own import reads a resource with neither
 * inputs nor state, so a dynamic provider's code (kept in its inputs) could
 * not even be loaded. The provider adopts instead (see `importId` in
 * provider/resource.ts): a create that changes nothing and checks the id.
 */
function secretOptions(opts?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions {
  const { import: _import, ...rest } = opts ?? {};
  const extra = rest.additionalSecretOutputs ?? [];
  return { ...rest, additionalSecretOutputs: extra.includes("connection") ? [...extra] : [...extra, "connection"] };
}

/**
 * IOMMU and other kernel command-line arguments, written to the host's
 * bootloader configuration (GRUB, grub2-bls, systemd-boot, Proxmox) and
 * optionally activated by a verified reboot. Owns only the argument keys it
 * sets; delete restores exactly what it replaced.
 */
export class IommuKernelArgs extends pulumi.dynamic.Resource {
  /** The arguments this resource owns on the kernel command line. */
  declare public readonly args: pulumi.Output<string[]>;
  /** The bootloader that was configured (detected when the input was "auto"). */
  declare public readonly bootloader: pulumi.Output<Exclude<Bootloader, "auto">>;
  /** Why that bootloader: what was found on the host. */
  declare public readonly bootloaderEvidence: pulumi.Output<string[]>;
  /** The file holding the arguments (e.g. /etc/default/grub). */
  declare public readonly configPath: pulumi.Output<string>;
  /** The command that regenerates the boot configuration (e.g. update-grub). */
  declare public readonly regenerateCommand: pulumi.Output<string>;
  /** The host's name as it reports it. */
  declare public readonly hostname: pulumi.Output<string>;
  /** CPU vendor, which "auto" picks the IOMMU flag from. */
  declare public readonly cpuVendor: pulumi.Output<string>;
  /** Arguments of the user's that this resource replaced (e.g. intel_iommu=off); delete puts them back. */
  declare public readonly replacedArgs: pulumi.Output<string[]>;
  /** /proc/cmdline of the running kernel. */
  declare public readonly activeCmdline: pulumi.Output<string>;
  /** True when the running kernel does not have the arguments yet (a reboot is pending). */
  declare public readonly rebootRequired: pulumi.Output<boolean>;
  /** Whether an IOMMU is active in the running kernel. */
  declare public readonly iommuEnabled: pulumi.Output<boolean>;
  /** Number of IOMMU groups in the running kernel. */
  declare public readonly iommuGroupCount: pulumi.Output<number>;
  /** Problems found on the host: IOMMU off in firmware, DMAR faults, root ports without ACS, shared groups. */
  declare public readonly warnings: pulumi.Output<string[]>;
  /** The SSH connection (secret). */
  declare public readonly connection: pulumi.Output<pulumi.Unwrap<ConnectionArgs>>;

  static readonly outputKeys = [
    "args",
    "bootloader",
    "bootloaderEvidence",
    "configPath",
    "regenerateCommand",
    "hostname",
    "cpuVendor",
    "replacedArgs",
    "activeCmdline",
    "rebootRequired",
    "iommuEnabled",
    "iommuGroupCount",
    "warnings",
  ] as const;

  constructor(name: string, args: IommuKernelArgsArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.iommuKernelArgs, name, propsFor(args, IommuKernelArgs.outputKeys, opts), secretOptions(opts), TYPE_MODULE, "IommuKernelArgs");
  }
}

/**
 * A physical function (PF) with its virtual functions: `sriov_numvfs`, driver
 * autoprobe, PF MTU, and persistence across reboots (VFs exist before libvirtd
 * and networking start).
 */
export class SriovPf extends pulumi.dynamic.Resource {
  /** PF interface name. */
  declare public readonly interface: pulumi.Output<string>;
  /** PF PCI address. */
  declare public readonly pciAddress: pulumi.Output<string>;
  /** Driver bound to the PF (igb, ixgbe, i40e, ice, mlx5_core, bnxt_en, …). */
  declare public readonly driver: pulumi.Output<string>;
  /** The most VFs this device supports (`sriov_totalvfs`). */
  declare public readonly totalVfs: pulumi.Output<number>;
  /** VFs that exist now. */
  declare public readonly numVfs: pulumi.Output<number>;
  /** NUMA node of the PF (-1 when the platform does not say); pin guests using its VFs to it. */
  declare public readonly numaNode: pulumi.Output<number>;
  /** The persistence file written (systemd unit, udev rule or modprobe.d file); empty with persist "none". */
  declare public readonly persistPath: pulumi.Output<string>;
  /** Every VF: index, PCI address, IOMMU group, netdev, driver, MAC. */
  declare public readonly vfs: pulumi.Output<VfInfo[]>;
  /** Things an operator should know that did not stop the change (conflicting persistence, shared module options…). */
  declare public readonly warnings: pulumi.Output<string[]>;
  /** The SSH connection (secret). */
  declare public readonly connection: pulumi.Output<pulumi.Unwrap<ConnectionArgs>>;

  static readonly outputKeys = [
    "interface",
    "pciAddress",
    "driver",
    "totalVfs",
    "numVfs",
    "numaNode",
    "persistPath",
    "vfs",
    "warnings",
  ] as const;

  constructor(name: string, args: SriovPfArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.sriovPf, name, propsFor(args, SriovPf.outputKeys, opts), secretOptions(opts), TYPE_MODULE, "SriovPf");
  }
}

/**
 * One VF's attributes (MAC, VLAN, QoS, spoof check, trust, link state, rates)
 * and driver binding (host driver or vfio-pci), persistent across reboots.
 * Delete resets the VF.
 */
export class VirtualFunction extends pulumi.dynamic.Resource {
  /** VF PCI address (what a guest's `<hostdev>` names). */
  declare public readonly pciAddress: pulumi.Output<string>;
  /** IOMMU group of the VF (-1 when the IOMMU is off). */
  declare public readonly iommuGroup: pulumi.Output<number>;
  /** VF network interface on the host ("" while bound to vfio-pci or unbound). */
  declare public readonly netdev: pulumi.Output<string>;
  /** Driver bound to the VF. */
  declare public readonly driver: pulumi.Output<string>;
  /** The VF's MAC address (given or generated). */
  declare public readonly mac: pulumi.Output<string>;
  /** NUMA node of the VF (-1 when the platform does not say). */
  declare public readonly numaNode: pulumi.Output<number>;
  /** The PF's PCI address, resolved when applied (interface names can change). */
  declare public readonly pfPciAddress: pulumi.Output<string>;
  /** The PF's interface name when last seen. */
  declare public readonly pfInterface: pulumi.Output<string>;
  /** The systemd unit that re-applies this VF at boot ("" without persistence). */
  declare public readonly persistPath: pulumi.Output<string>;
  /** The SSH connection (secret). */
  declare public readonly connection: pulumi.Output<pulumi.Unwrap<ConnectionArgs>>;

  static readonly outputKeys = ["pciAddress", "iommuGroup", "netdev", "driver", "mac", "numaNode", "pfPciAddress", "pfInterface", "persistPath"] as const;

  constructor(name: string, args: VirtualFunctionArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.virtualFunction, name, propsFor(args, VirtualFunction.outputKeys, opts), secretOptions(opts), TYPE_MODULE, "VirtualFunction");
  }
}

/**
 * A libvirt network (`<forward mode='hostdev' managed='yes'>`) whose pool is a
 * PF's VFs or a list of VFs; guests attach to it by network name and libvirt
 * hands each a free VF.
 */
export class VfPoolNetwork extends pulumi.dynamic.Resource {
  /** Network name. */
  declare public readonly name: pulumi.Output<string>;
  /** libvirt's UUID of the network. */
  declare public readonly uuid: pulumi.Output<string>;
  /** The network's XML as libvirt reports it. */
  declare public readonly xml: pulumi.Output<string>;
  /** Whether the network is running. */
  declare public readonly active: pulumi.Output<boolean>;
  /** Whether the network starts with libvirtd. */
  declare public readonly autostart: pulumi.Output<boolean>;
  /** Guest interfaces currently using the network. */
  declare public readonly connections: pulumi.Output<number>;
  /** PCI addresses of the VFs in the pool. */
  declare public readonly vfAddresses: pulumi.Output<string[]>;
  /** The SSH connection (secret). */
  declare public readonly connection: pulumi.Output<pulumi.Unwrap<ConnectionArgs>>;

  static readonly outputKeys = ["name", "uuid", "xml", "active", "autostart", "connections", "vfAddresses"] as const;

  constructor(name: string, args: VfPoolNetworkArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.vfPoolNetwork, name, propsFor(args, VfPoolNetwork.outputKeys, opts), secretOptions(opts), TYPE_MODULE, "VfPoolNetwork");
  }
}

/**
 * A guest's network interface backed by a VF: from a pool network
 * (`<interface type='network'>`) or one VF by PCI address
 * (`<interface type='hostdev'>`), attached live and/or to the persistent
 * configuration.
 */
export class DomainVfInterface extends pulumi.dynamic.Resource {
  /** The guest interface's MAC address. */
  declare public readonly mac: pulumi.Output<string>;
  /** PCI address of the VF the guest received. */
  declare public readonly pciAddress: pulumi.Output<string>;
  /** libvirt's device alias of the interface (e.g. "hostdev0"). */
  declare public readonly alias: pulumi.Output<string>;
  /** The SSH connection (secret). */
  declare public readonly connection: pulumi.Output<pulumi.Unwrap<ConnectionArgs>>;

  static readonly outputKeys = ["mac", "pciAddress", "alias"] as const;

  constructor(name: string, args: DomainVfInterfaceArgs, opts?: pulumi.CustomResourceOptions) {
    super(providers.domainVfInterface, name, propsFor(args, DomainVfInterface.outputKeys, opts), secretOptions(opts), TYPE_MODULE, "DomainVfInterface");
  }
}
