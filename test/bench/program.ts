// What the benchmark configures on a host: IOMMU kernel arguments (no
// reboot), one PF with 4 VFs, each VF's MAC / VLAN / spoof check / trust,
// and a hostdev pool network over the PF — the lab program's resources
// (examples/lab/program.ts), with the same dependencies: kernel arguments →
// PF → VFs → network.
import { secret } from "../support/engine";
import type { BenchResource } from "./deploy";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

export interface BenchConnection {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  hostKey: string;
}

export interface VfAttrs {
  mac: string;
  vlan: number;
  spoofCheck: boolean;
  trust: boolean;
}

export const NUM_VFS = 4;

/** Attributes of VF `index` on PF number `pf` (0 or 1): the lab program's values, MACs distinct per PF. */
export function vfAttrs(pf: number, index: number): VfAttrs {
  return {
    mac: `02:5a:00:00:0${pf + 1}:0${index}`,
    vlan: index < 2 ? 100 : 200,
    spoofCheck: index !== 3,
    trust: index === 2,
  };
}

export interface HostProgram {
  /** Prefix of resource names (one per host in a fleet). */
  prefix: string;
  connection: BenchConnection;
  /** Which lab PF: 0 (0000:01:00.0) or 1 (0000:02:00.0). */
  pf: number;
  pfPciAddress: string;
  networkName: string;
  /** Include IommuKernelArgs (host-wide: once per host). */
  kernelArgs: boolean;
}

export function hostResources(h: HostProgram): BenchResource[] {
  const connection = secret(h.connection);
  const n = (s: string) => `${h.prefix}${s}`;
  const out: BenchResource[] = [];
  if (h.kernelArgs)
    out.push({
      name: n("kernel-args"),
      kind: "IommuKernelArgs",
      provider: providers.iommuKernelArgs,
      deps: [],
      props: () => ({ connection, iommu: "intel", passthrough: true, reboot: "never" }),
    });
  out.push({
    name: n("pf"),
    kind: "SriovPf",
    provider: providers.sriovPf,
    deps: h.kernelArgs ? [n("kernel-args")] : [],
    props: () => ({ connection, pciAddress: h.pfPciAddress, numVfs: NUM_VFS, persist: "systemd" }),
  });
  for (let i = 0; i < NUM_VFS; i++)
    out.push({
      name: n(`vf${i}`),
      kind: "VirtualFunction",
      provider: providers.virtualFunction,
      deps: [n("pf")],
      props: (o) => ({ connection, pf: o[n("pf")].interface, index: i, ...vfAttrs(h.pf, i) }),
    });
  out.push({
    name: n("net"),
    kind: "VfPoolNetwork",
    provider: providers.vfPoolNetwork,
    deps: [n("pf"), ...Array.from({ length: NUM_VFS }, (_, i) => n(`vf${i}`))],
    props: (o) => ({ connection, name: h.networkName, pf: o[n("pf")].interface }),
  });
  return out;
}

export const LAB_PF_PCI = ["0000:01:00.0", "0000:02:00.0"] as const;
