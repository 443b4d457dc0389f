// pulumi-sriov: declarative SR-IOV for KVM/libvirt hypervisors.
//
//   import * as sriov from "pulumi-sriov";
//   const host = new sriov.SriovHost("hv01", { connection, kernelArgs: {}, pfs: [{ interface: "enp65s0f0", numVfs: 8 }] });
//
// Resource classes (each a pulumi.dynamic.Resource): IommuKernelArgs,
// SriovPf, VirtualFunction, VfPoolNetwork, DomainVfInterface; the component
// SriovHost; and their input/output types.
export { IommuKernelArgs, SriovPf, VirtualFunction, VfPoolNetwork, DomainVfInterface, typeToken, TYPE_MODULE } from "./resources";
export {
  SriovHost,
  SRIOV_HOST_TYPE,
  validateSriovHostArgs,
  combineDependsOn,
  pfKey,
  nameSafe,
} from "./host";
export type {
  SriovHostArgs,
  SriovHostPfArgs,
  SriovHostPoolNetworkArgs,
  SriovHostSummary,
  VfOverride,
  VfSummary,
  VfTemplate,
} from "./host";
export type {
  Bootloader,
  ConnectionArgs,
  DomainVfInterfaceArgs,
  DomainVfInterfaceInputs,
  DomainVfSource,
  HostResourceArgs,
  IommuKernelArgsArgs,
  IommuKernelArgsInputs,
  IommuMode,
  LinkState,
  PersistMethod,
  PfSelector,
  ProxyConnectionArgs,
  RebootPolicy,
  SriovPfArgs,
  SriovPfInputs,
  VfAttributes,
  VfDriver,
  VfInfo,
  VfPoolNetworkArgs,
  VfPoolNetworkInputs,
  VirtualFunctionArgs,
  VirtualFunctionInputs,
  Virtualport,
  VlanProtocol,
} from "./types";
