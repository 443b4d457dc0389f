// One dynamic ResourceProvider per resource. Pulumi serializes these objects
// into state, so they stay thin: each method requires the compiled package by
// name at call time (module-level schemas or clients would be captured by
// value and break serialization).
import * as pulumi from "@pulumi/pulumi";
import type { Kind } from "./runtime";

/** The module path the provider process loads; resolvable wherever the package is installed. */
export const RUNTIME_MODULE = "pulumi-sriov/dist/provider/runtime";

function handlers(kind: Kind): pulumi.dynamic.ResourceProvider {
  return {
    check: (olds: any, news: any) => require("pulumi-sriov/dist/provider/runtime").provider(kind).check(olds, news),
    diff: (id: string, olds: any, news: any) => require("pulumi-sriov/dist/provider/runtime").provider(kind).diff(id, olds, news),
    create: (inputs: any) => require("pulumi-sriov/dist/provider/runtime").provider(kind).create(inputs),
    read: (id: string, props: any) => require("pulumi-sriov/dist/provider/runtime").provider(kind).read(id, props),
    update: (id: string, olds: any, news: any) => require("pulumi-sriov/dist/provider/runtime").provider(kind).update(id, olds, news),
    delete: (id: string, props: any) => require("pulumi-sriov/dist/provider/runtime").provider(kind).delete(id, props),
  };
}

export const iommuKernelArgs = handlers("iommuKernelArgs");
export const sriovPf = handlers("sriovPf");
export const virtualFunction = handlers("virtualFunction");
export const vfPoolNetwork = handlers("vfPoolNetwork");
export const domainVfInterface = handlers("domainVfInterface");
