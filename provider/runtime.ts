// Loaded by name inside the dynamic-provider process (see index.ts): maps a
// resource kind to its lifecycle. Resource modules are required lazily so
// one resource's handler loads only what it needs.
import { DynamicProvider, lifecycle, ResourceSpec } from "./resource";

export type Kind = "iommuKernelArgs" | "sriovPf" | "virtualFunction" | "vfPoolNetwork" | "domainVfInterface";

const specs: Record<Kind, () => ResourceSpec<any, any>> = {
  iommuKernelArgs: () => require("./resources/iommuKernelArgs").spec,
  sriovPf: () => require("./resources/sriovPf").spec,
  virtualFunction: () => require("./resources/virtualFunction").spec,
  vfPoolNetwork: () => require("./resources/vfPoolNetwork").spec,
  domainVfInterface: () => require("./resources/domainVfInterface").spec,
};

const cache = new Map<Kind, DynamicProvider>();

export function provider(kind: Kind): DynamicProvider {
  let p = cache.get(kind);
  if (!p) {
    const load = specs[kind];
    if (!load) throw new Error(`unknown resource kind ${kind}`);
    cache.set(kind, (p = lifecycle(load())));
  }
  return p;
}
