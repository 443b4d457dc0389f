// Input and output types of the pulumi-sriov resources, as a Pulumi program
// sees them. Names and meanings are those of ../provider (see DESIGN.md);
// every input accepts a plain value, a Promise or a pulumi.Output.
import * as pulumi from "@pulumi/pulumi";

// ---------------------------------------------------------------------------
// Connection

/**
 * How to reach a hypervisor over SSH. Same field names and meaning as
 * `@pulumi/command`'s `remote.Connection`, so an existing connection object
 * can be reused. The whole connection is stored as a secret in state.
 */
export interface ConnectionArgs {
  /** Host name or IP address of the hypervisor. Changing it replaces every resource on that host. */
  host: pulumi.Input<string>;
  /** SSH port. Default 22. */
  port?: pulumi.Input<number>;
  /** Login user. Default "root"; any other user runs commands through `sudo -n` (passwordless sudo needed). */
  user?: pulumi.Input<string>;
  /** Password authentication. Set it with `pulumi config set --secret`. */
  password?: pulumi.Input<string>;
  /** Private key text (PEM or OpenSSH format, not a file path). Set it with `pulumi config set --secret`. */
  privateKey?: pulumi.Input<string>;
  /** Passphrase of an encrypted `privateKey`. */
  privateKeyPassword?: pulumi.Input<string>;
  /** Path of an ssh-agent socket; `SSH_AUTH_SOCK` is used when no other authentication is given. */
  agentSocketPath?: pulumi.Input<string>;
  /**
   * The host's public key to pin, as a known_hosts key line ("ssh-ed25519 AAAA…").
   * Without it the key is checked against OpenSSH `known_hosts`; an unknown or
   * changed key fails with the key's fingerprint and how to pin it.
   */
  hostKey?: pulumi.Input<string>;
  /** How many times to try connecting before failing. Default 10. */
  dialErrorLimit?: pulumi.Input<number>;
  /** Seconds allowed per connection attempt. Default 15. */
  perDialTimeout?: pulumi.Input<number>;
  /** One jump host to connect through (same fields, without a further proxy). */
  proxy?: pulumi.Input<ProxyConnectionArgs>;
  /**
   * Accept any host key without verification. Never the default; only for
   * throw-away lab hosts.
   */
  insecureSkipHostKeyCheck?: pulumi.Input<boolean>;
}

/** A jump host: the fields of {@link ConnectionArgs} without `proxy`. */
export type ProxyConnectionArgs = Omit<ConnectionArgs, "proxy">;

/** Fields every resource takes. */
export interface HostResourceArgs {
  /** SSH connection to the hypervisor. Stored as a secret; never shown in outputs or logs. */
  connection: pulumi.Input<ConnectionArgs>;
}

// ---------------------------------------------------------------------------
// IommuKernelArgs

export type IommuMode = "auto" | "intel" | "amd" | "none";
export type Bootloader = "auto" | "grub" | "grub2-bls" | "systemd-boot" | "proxmox";
export type RebootPolicy = "never" | "ifNeeded";

/** Kernel command-line arguments for the IOMMU (the first step of every SR-IOV guide). */
export interface IommuKernelArgsInputs {
  /**
   * Which IOMMU to switch on: "intel" (`intel_iommu=on`), "amd" (`amd_iommu=on`),
   * "none" (leave the vendor flag alone), or "auto" (from the CPU vendor). Default "auto".
   */
  iommu?: pulumi.Input<IommuMode>;
  /** Add `iommu=pt` (pass-through for host devices; better host performance). Default true. */
  passthrough?: pulumi.Input<boolean>;
  /**
   * Further kernel arguments this resource owns, e.g. `pcie_acs_override=downstream`,
   * `pci=assign-busses`, `pci=realloc`, `vfio-pci.ids=8086:10ca`, `hugepages=16`.
   * Tokens only: no whitespace, quotes or shell metacharacters.
   */
  extraArgs?: pulumi.Input<pulumi.Input<string>[]>;
  /** Bootloader to configure; "auto" detects it and reports the evidence. Default "auto". */
  bootloader?: pulumi.Input<Bootloader>;
  /**
   * "ifNeeded" reboots the host when the running kernel lacks the arguments,
   * waits for SSH and verifies /proc/cmdline. "never" only reports
   * `rebootRequired`. Default "never".
   */
  reboot?: pulumi.Input<RebootPolicy>;
  /** How long to wait for the host to come back after a reboot, in seconds. */
  rebootTimeoutSeconds?: pulumi.Input<number>;
}
export interface IommuKernelArgsArgs extends HostResourceArgs, IommuKernelArgsInputs {}

// ---------------------------------------------------------------------------
// SriovPf

export type PersistMethod = "systemd" | "udev" | "modprobe" | "none";

/** Which physical function (PF) to use. Give exactly one of the three. */
export interface PfSelector {
  /** PF network interface name, e.g. "enp65s0f0". Names can change across reboots; prefer `pciAddress` on fleets. */
  interface?: pulumi.Input<string>;
  /** PF PCI address, e.g. "0000:41:00.0" (stable across reboots). */
  pciAddress?: pulumi.Input<string>;
  /** PF permanent MAC address. */
  macAddress?: pulumi.Input<string>;
}

export interface SriovPfInputs extends PfSelector {
  /** Number of virtual functions to create (0 … the device's `totalVfs`). A different non-zero count goes through 0 first, as the kernel requires. */
  numVfs: pulumi.Input<number>;
  /** `sriov_drivers_autoprobe`: bind new VFs to their host driver automatically. Default true. */
  autoprobe?: pulumi.Input<boolean>;
  /**
   * How VFs survive a reboot: "systemd" (a unit ordered before libvirtd and
   * networking; default), "udev" (a rule), "modprobe" (`max_vfs=` driver
   * option, for drivers that have one) or "none".
   */
  persist?: pulumi.Input<PersistMethod>;
  /** MTU to set on the PF (e.g. 9000 for jumbo frames); VFs cannot exceed it. */
  mtu?: pulumi.Input<number>;
  /** Allow reducing or re-creating VFs that running domains or active pool networks use. Default false. */
  force?: pulumi.Input<boolean>;
  /**
   * Hand-made persistence this resource replaces with its own, by absolute
   * path: a udev rule (/etc/udev/rules.d/*.rules), systemd unit
   * (/etc/systemd/system/*.service), modprobe option file (/etc/modprobe.d/*.conf)
   * or rc.local (only its lines writing this PF's sriov_numvfs are removed).
   * The preview shows "replace udev rule … with pulumi-sriov's systemd unit";
   * the original is kept in the host's backup and delete puts it back exactly.
   * A file that also sets this PF's VFs and is not listed here makes the plan
   * refuse (unless persist is "none"): never two mechanisms at once.
   */
  takeOver?: pulumi.Input<pulumi.Input<string>[]>;
}
export interface SriovPfArgs extends HostResourceArgs, SriovPfInputs {}

/** One virtual function as the host reports it. */
export type { VfInfo } from "../provider/resources/sriovPf/schema";

// ---------------------------------------------------------------------------
// VirtualFunction

export type VlanProtocol = "802.1Q" | "802.1ad";
export type LinkState = "auto" | "enable" | "disable";
export type VfDriver = "default" | "vfio-pci";

/** Attributes of one VF (`ip link set <pf> vf <n> …`) and its driver binding. */
export interface VfAttributes {
  /** VF MAC address. Absent: a deterministic, locally administered MAC derived from host, PF and index. */
  mac?: pulumi.Input<string>;
  /** VLAN tag the VF's traffic gets (0–4095; 0 = untagged). */
  vlan?: pulumi.Input<number>;
  /** 802.1p priority (0–7) for the VLAN tag; needs `vlan`. */
  qos?: pulumi.Input<number>;
  /** VLAN protocol: "802.1Q" or "802.1ad" (QinQ; not every driver has it). */
  vlanProtocol?: pulumi.Input<VlanProtocol>;
  /** MAC anti-spoofing on the VF. */
  spoofCheck?: pulumi.Input<boolean>;
  /** Trusted VF (may change its MAC, enter promiscuous / all-multicast mode). */
  trust?: pulumi.Input<boolean>;
  /** VF link state: "auto" (follows the PF), "enable", "disable". */
  linkState?: pulumi.Input<LinkState>;
  /** Guaranteed minimum transmit rate, Mbit/s (0 = none). */
  minTxRate?: pulumi.Input<number>;
  /** Transmit rate limit, Mbit/s (0 = none). Needs the PF up with a link. */
  maxTxRate?: pulumi.Input<number>;
  /** "vfio-pci" binds the VF for device assignment (driver_override, IOMMU group checked); "default" keeps the host driver. */
  driver?: pulumi.Input<VfDriver>;
  /** Re-apply attributes and binding after reboots and VF re-creation. Default true. */
  persist?: pulumi.Input<boolean>;
}

export interface VirtualFunctionInputs extends VfAttributes {
  /** PF interface name, usually `sriovPf.interface` (which also orders this VF after its PF). */
  pf: pulumi.Input<string>;
  /** VF index on the PF (0-based, below the PF's `numVfs`). */
  index: pulumi.Input<number>;
}
export interface VirtualFunctionArgs extends HostResourceArgs, VirtualFunctionInputs {}

// ---------------------------------------------------------------------------
// VfPoolNetwork

export interface VfPoolNetworkInputs {
  /** libvirt network name. Changing it replaces the network. */
  name: pulumi.Input<string>;
  /** PF interface whose VFs form the pool (`<pf dev='…'/>`). Give `pf` or `vfs`. */
  pf?: pulumi.Input<string>;
  /** Explicit VF PCI addresses for the pool (`<address …/>` list). Give `pf` or `vfs`. */
  vfs?: pulumi.Input<pulumi.Input<string>[]>;
  /** Start the network when libvirtd starts. Default true. */
  autostart?: pulumi.Input<boolean>;
  /** VLAN tag for every interface taken from the pool. */
  vlan?: pulumi.Input<number>;
  /** libvirt connection URI on the host. Default "qemu:///system". */
  libvirtUri?: pulumi.Input<string>;
  /** Allow deleting or replacing the network while domains use it. Default false (refused, naming the domains). */
  force?: pulumi.Input<boolean>;
}
export interface VfPoolNetworkArgs extends HostResourceArgs, VfPoolNetworkInputs {}

// ---------------------------------------------------------------------------
// DomainVfInterface

/** Where a guest's interface comes from: a pool network, or one VF by PCI address. */
export type DomainVfSource = { network: pulumi.Input<string> } | { pciAddress: pulumi.Input<string> };

export interface Virtualport {
  /** Port profile type; "802.1Qbh" (Cisco VM-FEX style) is supported. */
  type: pulumi.Input<"802.1Qbh">;
  /** Port profile id on the switch. */
  profileId: pulumi.Input<string>;
}

export interface DomainVfInterfaceInputs {
  /** libvirt domain (guest) name. */
  domain: pulumi.Input<string>;
  /** `{ network }` (a VfPoolNetwork name) or `{ pciAddress }` (one VF, `<interface type='hostdev'>`). */
  source: pulumi.Input<DomainVfSource>;
  /** Guest MAC address; also how the interface is found again in the domain XML. */
  mac?: pulumi.Input<string>;
  /** VLAN tag for this interface. */
  vlan?: pulumi.Input<number>;
  /** `<virtualport>` element. */
  virtualport?: pulumi.Input<Virtualport>;
  /** Attach to the running domain. Default: when the domain is running. */
  live?: pulumi.Input<boolean>;
  /** Attach to the persistent configuration. Default true. */
  config?: pulumi.Input<boolean>;
  /** libvirt connection URI on the host. Default "qemu:///system". */
  libvirtUri?: pulumi.Input<string>;
}
export interface DomainVfInterfaceArgs extends HostResourceArgs, DomainVfInterfaceInputs {}
