// The table of invalid inputs: each names the resource, the inputs (the
// `connection` is added by the test, pointing at a real sshd, unless the
// entry replaces fields of it) and exactly the properties check must name.
// Entries with several bad properties prove all errors of one input are
// reported together.

export type Kind = "iommuKernelArgs" | "sriovPf" | "virtualFunction" | "vfPoolNetwork" | "domainVfInterface";

export interface BadInput {
  kind: Kind;
  label: string;
  props: Record<string, unknown>;
  /** Fields merged into the (otherwise valid) connection; `null` removes a field; `false` removes the connection. */
  connection?: Record<string, unknown> | false;
  /** The properties the failures must name, exactly (order free, duplicates ignored). */
  expect: string[];
}

// Minimal valid inputs per resource: each entry changes only what it is about.
export const VALID: Record<Kind, Record<string, unknown>> = {
  iommuKernelArgs: { iommu: "intel" },
  sriovPf: { interface: "enp1s0", numVfs: 2 },
  virtualFunction: { pf: "enp1s0", index: 0 },
  vfPoolNetwork: { name: "pool0", pf: "enp1s0" },
  domainVfInterface: { domain: "vm1", source: { network: "pool0" } },
};

const CANARY = "/tmp/pulumi-sriov-canary";
const WITHOUT = Symbol("without");
const e = (kind: Kind, label: string, props: Record<string, unknown>, expect: string[], connection?: BadInput["connection"]): BadInput => ({
  kind,
  label,
  props: (props as any)[WITHOUT] ? { ...props } : { ...VALID[kind], ...props },
  expect,
  connection,
});
// The valid base without one key, plus extra properties (used as is by `e`).
const without = (kind: Kind, key: string, extra: Record<string, unknown>) => {
  const { [key]: _drop, ...rest } = { ...VALID[kind], ...extra };
  return Object.assign(rest, { [WITHOUT]: true });
};

export const BAD_INPUTS: BadInput[] = [
  // ---- connection (checked the same way for every resource) ---------------
  e("sriovPf", "connection with neither password, key nor agent (SSH_AUTH_SOCK unset)", {}, ["connection"], { privateKey: null }),
  e("virtualFunction", "connection host with a shell command", {}, ["connection.host"], { host: "10.0.0.1;reboot" }),
  e("vfPoolNetwork", "connection host with a newline", {}, ["connection.host"], { host: "10.0.0.1\nreboot" }),
  e("domainVfInterface", "connection port 0", {}, ["connection.port"], { port: 0 }),
  e("iommuKernelArgs", "connection port 65536", {}, ["connection.port"], { port: 65536 }),
  e("sriovPf", "connection port fractional", {}, ["connection.port"], { port: 22.5 }),
  e("virtualFunction", "connection user with a command substitution", {}, ["connection.user"], { user: "root$(id)" }),
  e("vfPoolNetwork", "connection privateKey given as a file path", {}, ["connection.privateKey"], { privateKey: "/root/.ssh/id_ed25519" }),
  e("domainVfInterface", "connection hostKey that is not a public key line", {}, ["connection.hostKey"], { hostKey: "SHA256:abcdef" }),
  e("iommuKernelArgs", "connection dialErrorLimit 0", {}, ["connection.dialErrorLimit"], { dialErrorLimit: 0 }),
  e("sriovPf", "connection perDialTimeout negative", {}, ["connection.perDialTimeout"], { perDialTimeout: -1 }),
  e("virtualFunction", "connection empty password (and no key)", {}, ["connection.password", "connection"], { privateKey: null, password: "" }),
  e("vfPoolNetwork", "connection with an unknown field", {}, ["connection.passwd"], { passwd: "x" }),
  e("domainVfInterface", "connection proxy without credentials", {}, ["connection.proxy"], { proxy: { host: "10.0.0.9" } }),
  e("iommuKernelArgs", "no connection at all", {}, ["connection"], false),
  e("sriovPf", "connection insecureSkipHostKeyCheck as a string", {}, ["connection.insecureSkipHostKeyCheck"], { insecureSkipHostKeyCheck: "yes" }),

  // ---- IommuKernelArgs -----------------------------------------------------
  e("iommuKernelArgs", "extraArgs with a shell separator", { extraArgs: ["hugepages=16;reboot"] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs with a newline", { extraArgs: ["hugepages=16\nGRUB_DISABLE_RECOVERY=false"] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs with a command substitution", { extraArgs: [`x=$(touch ${CANARY})`] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs with backquotes", { extraArgs: ["x=`reboot`"] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs with a double quote closing GRUB_CMDLINE_LINUX", { extraArgs: ['a" ; reboot ; "'] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs with two arguments in one string", { extraArgs: ["hugepages=16 iommu=off"] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs owning root=", { extraArgs: ["root=/dev/sdb1"] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs empty string", { extraArgs: [""] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs not a list", { extraArgs: "hugepages=16" }, ["extraArgs"]),
  e("iommuKernelArgs", "extraArgs iommu=off while passthrough sets iommu=pt", { extraArgs: ["iommu=off"] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "extraArgs intel_iommu=off while iommu is intel", { extraArgs: ["intel_iommu=off"] }, ["extraArgs[0]"]),
  e("iommuKernelArgs", "unknown bootloader", { bootloader: "lilo" }, ["bootloader"]),
  e("iommuKernelArgs", "unknown iommu vendor", { iommu: "arm-smmu" }, ["iommu"]),
  e("iommuKernelArgs", "reboot always", { reboot: "always" }, ["reboot"]),
  e("iommuKernelArgs", "rebootTimeoutSeconds too short", { rebootTimeoutSeconds: 5 }, ["rebootTimeoutSeconds"]),
  e("iommuKernelArgs", "rebootTimeoutSeconds fractional", { rebootTimeoutSeconds: 90.5 }, ["rebootTimeoutSeconds"]),
  e("iommuKernelArgs", "passthrough as a string", { passthrough: "yes" }, ["passthrough"]),
  e("iommuKernelArgs", "unknown property", { grubFile: "/etc/default/grub" }, ["grubFile"]),
  e("sriovPf", "two unknown properties", { numvfs: 4, iface: "enp1s0" }, ["numvfs", "iface"]),
  e(
    "iommuKernelArgs",
    "four bad properties at once",
    { bootloader: "lilo", extraArgs: ["ok=1", "`id`"], rebootTimeoutSeconds: 1, reboot: "now" },
    ["bootloader", "extraArgs[1]", "rebootTimeoutSeconds", "reboot"],
  ),

  // ---- SriovPf -------------------------------------------------------------
  e("sriovPf", "interface with a shell separator", { interface: "enp1s0;reboot" }, ["interface"]),
  e("sriovPf", "interface with a newline", { interface: "enp1s0\nreboot" }, ["interface"]),
  e("sriovPf", "interface with a path", { interface: "../../../etc/passwd" }, ["interface"]),
  e("sriovPf", "interface longer than 15 characters", { interface: "enp1s0f0np0vf12345" }, ["interface"]),
  e("sriovPf", "interface with a space", { interface: "enp1s0 up" }, ["interface"]),
  e("sriovPf", "numVfs negative", { numVfs: -1 }, ["numVfs"]),
  e("sriovPf", "numVfs fractional", { numVfs: 2.5 }, ["numVfs"]),
  e("sriovPf", "numVfs as a string", { numVfs: "4" }, ["numVfs"]),
  e("sriovPf", "numVfs beyond the 16-bit TotalVFs", { numVfs: 70000 }, ["numVfs"]),
  e("sriovPf", "numVfs missing", without("sriovPf", "numVfs", {}), ["numVfs"]),
  e("sriovPf", "interface and pciAddress both", { pciAddress: "0000:01:00.0" }, ["pciAddress"]),
  e("sriovPf", "interface, pciAddress and macAddress all", { pciAddress: "0000:01:00.0", macAddress: "52:54:00:5a:00:01" }, ["pciAddress", "macAddress"]),
  e("sriovPf", "no selector", without("sriovPf", "interface", {}), ["interface"]),
  e("sriovPf", "pciAddress without a function", without("sriovPf", "interface", { pciAddress: "0000:01:00" }), ["pciAddress"]),
  e("sriovPf", "pciAddress with function 8", without("sriovPf", "interface", { pciAddress: "0000:01:00.8" }), ["pciAddress"]),
  e("sriovPf", "pciAddress with a command substitution", without("sriovPf", "interface", { pciAddress: "0000:01:00.0$(reboot)" }), ["pciAddress"]),
  e("sriovPf", "macAddress malformed", without("sriovPf", "interface", { macAddress: "52:54:00:zz:00:01" }), ["macAddress"]),
  e("sriovPf", "persist unknown", { persist: "rc.local" }, ["persist"]),
  e("sriovPf", "mtu below 68", { mtu: 67 }, ["mtu"]),
  e("sriovPf", "mtu fractional", { mtu: 1500.5 }, ["mtu"]),
  e("sriovPf", "persist modprobe with autoprobe false and an mtu", { persist: "modprobe", autoprobe: false, mtu: 9000 }, ["autoprobe", "mtu"]),
  e("sriovPf", "force as a string", { force: "true" }, ["force"]),
  e(
    "sriovPf",
    "five bad properties at once",
    { interface: "en p1", macAddress: "zz", numVfs: -2.5, mtu: 10, persist: "cron" },
    ["interface", "macAddress", "numVfs", "mtu", "persist"],
  ),

  // ---- VirtualFunction -----------------------------------------------------
  e("virtualFunction", "pf with a command list", { pf: "enp1s0 && reboot" }, ["pf"]),
  e("virtualFunction", "pf with a command substitution", { pf: `$(touch ${CANARY})` }, ["pf"]),
  e("virtualFunction", "pf with a newline", { pf: "enp1s0\n" }, ["pf"]),
  e("virtualFunction", "index negative", { index: -1 }, ["index"]),
  e("virtualFunction", "index fractional", { index: 1.5 }, ["index"]),
  e("virtualFunction", "vlan 4096", { vlan: 4096 }, ["vlan"]),
  e("virtualFunction", "vlan negative", { vlan: -1 }, ["vlan"]),
  e("virtualFunction", "qos without vlan", { qos: 3 }, ["qos"]),
  e("virtualFunction", "qos 8", { vlan: 10, qos: 8 }, ["qos"]),
  e("virtualFunction", "multicast mac", { mac: "01:00:5e:00:00:01" }, ["mac"]),
  e("virtualFunction", "broadcast mac", { mac: "ff:ff:ff:ff:ff:ff" }, ["mac"]),
  e("virtualFunction", "mac with five octets", { mac: "52:54:00:12:34" }, ["mac"]),
  e("virtualFunction", "mac followed by a command", { mac: "52:54:00:12:34:56; reboot" }, ["mac"]),
  e("virtualFunction", "minTxRate above maxTxRate", { minTxRate: 200, maxTxRate: 100 }, ["minTxRate"]),
  e("virtualFunction", "maxTxRate negative", { maxTxRate: -5 }, ["maxTxRate"]),
  e("virtualFunction", "maxTxRate fractional", { maxTxRate: 99.9 }, ["maxTxRate"]),
  e("virtualFunction", "linkState up", { linkState: "up" }, ["linkState"]),
  e("virtualFunction", "vlanProtocol 802.1ad without a vlan", { vlanProtocol: "802.1ad" }, ["vlanProtocol"]),
  e("virtualFunction", "vlanProtocol unknown", { vlan: 5, vlanProtocol: "QinQ" }, ["vlanProtocol"]),
  e("virtualFunction", "driver igb_uio", { driver: "igb_uio" }, ["driver"]),
  e("virtualFunction", "spoofCheck as a string", { spoofCheck: "off" }, ["spoofCheck"]),
  e(
    "virtualFunction",
    "five bad properties at once",
    { pf: "a|b", index: -1, vlan: 4096, qos: 9, mac: "01:02:03:04:05:06" },
    ["pf", "index", "vlan", "qos", "mac"],
  ),
  e("virtualFunction", "qos without vlan and minTxRate above maxTxRate", { qos: 2, minTxRate: 50, maxTxRate: 10 }, ["qos", "minTxRate"]),

  // ---- VfPoolNetwork -------------------------------------------------------
  e("vfPoolNetwork", "name with a shell separator", { name: "pool0;virsh destroy vm1" }, ["name"]),
  e("vfPoolNetwork", "name with a newline", { name: "pool0\nx" }, ["name"]),
  e("vfPoolNetwork", "name with an XML tag", { name: "<network>" }, ["name"]),
  e("vfPoolNetwork", "name empty", { name: "" }, ["name"]),
  e("vfPoolNetwork", "pf and vfs both", { vfs: ["0000:01:10.0"] }, ["vfs"]),
  e("vfPoolNetwork", "neither pf nor vfs", without("vfPoolNetwork", "pf", {}), ["pf"]),
  e("vfPoolNetwork", "vfs with a malformed PCI address", without("vfPoolNetwork", "pf", { vfs: ["0000:01:10.0", "01:10"] }), ["vfs[1]"]),
  e("vfPoolNetwork", "vfs empty", without("vfPoolNetwork", "pf", { vfs: [] }), ["vfs"]),
  e("vfPoolNetwork", "vfs listing one twice", without("vfPoolNetwork", "pf", { vfs: ["0000:01:10.0", "01:10.0"] }), ["vfs"]),
  e("vfPoolNetwork", "vlan 4096", { vlan: 4096 }, ["vlan"]),
  e("vfPoolNetwork", "libvirtUri with a shell command", { libvirtUri: "qemu:///system; reboot" }, ["libvirtUri"]),
  e("vfPoolNetwork", "libvirtUri with a command substitution in the query", { libvirtUri: "qemu+ssh://h/system?command=$(id)" }, ["libvirtUri"]),
  e("vfPoolNetwork", "pf with a pipe", { pf: "enp1s0|cat" }, ["pf"]),
  e("vfPoolNetwork", "autostart as a number", { autostart: 1 }, ["autostart"]),
  e("vfPoolNetwork", "three bad properties at once", { name: "a b", vlan: 5000, libvirtUri: "system" }, ["name", "vlan", "libvirtUri"]),

  // ---- DomainVfInterface ---------------------------------------------------
  e("domainVfInterface", "domain with a shell separator", { domain: "vm1;reboot" }, ["domain"]),
  e("domainVfInterface", "domain empty", { domain: "" }, ["domain"]),
  e("domainVfInterface", "source with network and pciAddress", { source: { network: "pool0", pciAddress: "0000:01:10.0" } }, ["source"]),
  e("domainVfInterface", "source with neither", { source: {} }, ["source"]),
  e("domainVfInterface", "source.network with a command substitution", { source: { network: "pool$(id)" } }, ["source.network"]),
  e("domainVfInterface", "source.pciAddress malformed", { source: { pciAddress: "01:10.0x" } }, ["source.pciAddress"]),
  e("domainVfInterface", "multicast mac", { mac: "33:33:00:00:00:01" }, ["mac"]),
  e("domainVfInterface", "all-zero mac", { mac: "00:00:00:00:00:00" }, ["mac"]),
  e("domainVfInterface", "vlan 4096", { vlan: 4096 }, ["vlan"]),
  e("domainVfInterface", "vlan and virtualport both", { vlan: 10, virtualport: { type: "802.1Qbh", profileId: "prof1" } }, ["vlan"]),
  e("domainVfInterface", "virtualport of an unsupported type", { virtualport: { type: "802.1Qbg", profileId: "prof1" } }, ["virtualport.type"]),
  e("domainVfInterface", "virtualport profileId with a quote", { virtualport: { type: "802.1Qbh", profileId: "p'/><x" } }, ["virtualport.profileId"]),
  e("domainVfInterface", "live and config both false", { live: false, config: false }, ["config"]),
  e("domainVfInterface", "libvirtUri with backquotes", { libvirtUri: "xen:///`id`" }, ["libvirtUri"]),
  e("domainVfInterface", "unknown property (a typo of mac)", { macAddress: "52:54:00:12:34:56" }, ["macAddress"]),
  e("domainVfInterface", "unknown property inside virtualport", { virtualport: { type: "802.1Qbh", profileId: "prof1", instanceId: "x" } }, ["virtualport.instanceId"]),
  e(
    "domainVfInterface",
    "four bad properties at once",
    { domain: "vm 1", mac: "01:00:00:00:00:01", vlan: 9999, source: { network: "a;b" } },
    ["domain", "mac", "vlan", "source.network"],
  ),
];
