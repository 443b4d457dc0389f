// The lab host with every resource class used directly (no component), in
// the order the guides prescribe: IOMMU kernel arguments (rebooting when
// needed) → 4 VFs on the first igb PF → each VF's MAC / VLAN / spoof check /
// trust → a hostdev pool network over the PF → optionally a guest interface
// from that pool.
import * as pulumi from "@pulumi/pulumi";
import { ConnectionArgs, DomainVfInterface, IommuKernelArgs, SriovPf, VfAttributes, VfPoolNetwork, VirtualFunction } from "../../sdk";

/** The lab's first igb PF (bus 1 behind its own PCIe root port; see lab/vm.ts). */
export const LAB_PF_PCI_ADDRESS = "0000:01:00.0";

/** Attributes of the lab's four VFs: every attribute igb supports, with different values per VF. */
export const LAB_VFS: VfAttributes[] = [
  { mac: "02:5a:00:00:01:00", vlan: 100, spoofCheck: true, trust: false },
  { mac: "02:5a:00:00:01:01", vlan: 100, spoofCheck: true, trust: false },
  { mac: "02:5a:00:00:01:02", vlan: 200, spoofCheck: true, trust: true },
  { mac: "02:5a:00:00:01:03", vlan: 200, spoofCheck: false, trust: false },
];

export interface LabProgramOptions {
  connection: pulumi.Input<ConnectionArgs>;
  /** A libvirt domain on the lab host to give an interface from the pool (optional). */
  domain?: string;
}

export function labProgram(opts: LabProgramOptions) {
  const { connection } = opts;
  const kernelArgs = new IommuKernelArgs("lab-kernel-args", {
    connection,
    iommu: "intel",
    passthrough: true,
    reboot: "ifNeeded",
    rebootTimeoutSeconds: 900,
  });
  const pf = new SriovPf("lab-pf", { connection, pciAddress: LAB_PF_PCI_ADDRESS, numVfs: LAB_VFS.length, persist: "systemd" }, { dependsOn: [kernelArgs] });
  const vfs = LAB_VFS.map((attrs, index) => new VirtualFunction(`lab-vf${index}`, { connection, pf: pf.interface, index, ...attrs }, { dependsOn: [pf] }));
  const network = new VfPoolNetwork("lab-net", { connection, name: "sriov-lab", pf: pf.interface }, { dependsOn: [pf, ...vfs] });
  const nic = opts.domain
    ? new DomainVfInterface("lab-nic", { connection, domain: opts.domain, source: { network: network.name }, mac: "52:54:00:5a:02:01" }, { dependsOn: [network] })
    : undefined;

  return {
    kernel: { args: kernelArgs.args, rebootRequired: kernelArgs.rebootRequired, iommuEnabled: kernelArgs.iommuEnabled, iommuGroupCount: kernelArgs.iommuGroupCount, warnings: kernelArgs.warnings },
    pf: { interface: pf.interface, pciAddress: pf.pciAddress, driver: pf.driver, numVfs: pf.numVfs, totalVfs: pf.totalVfs, numaNode: pf.numaNode, persistPath: pf.persistPath },
    vfs: vfs.map((vf, index) => ({ index, pciAddress: vf.pciAddress, iommuGroup: vf.iommuGroup, mac: vf.mac, vlan: LAB_VFS[index].vlan, driver: vf.driver, netdev: vf.netdev })),
    network: { name: network.name, active: network.active, autostart: network.autostart, vfAddresses: network.vfAddresses },
    ...(nic ? { nic: { mac: nic.mac, pciAddress: nic.pciAddress, alias: nic.alias } } : {}),
  };
}
