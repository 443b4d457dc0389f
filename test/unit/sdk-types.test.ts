// The SDK's input and output types against the providers' own types. The
// assertions are compile-time: `npm test` type-checks this file (tsc in
// pretest), so an input a provider accepts but the SDK does not offer (or a
// value type that differs) fails the build. The runtime part checks that each
// class registers every output key its provider returns.
import { expect } from "chai";
import type * as pulumi from "@pulumi/pulumi";
import * as sdk from "../../sdk";
import type { ConnectionArgs as ProviderConnection } from "../../provider/connection";
import type { Inputs as KernelInputs, Outputs as KernelOutputs } from "../../provider/resources/iommuKernelArgs/schema";
import type { SriovPfInputs, SriovPfOutputs } from "../../provider/resources/sriovPf/schema";
import type { VfInputs, VfOutputs } from "../../provider/resources/virtualFunction/schema";
import type { PoolInputs, PoolOutputs } from "../../provider/resources/vfPoolNetwork/schema";
import type { IfaceInputs, IfaceOutputs } from "../../provider/resources/domainVfInterface/schema";
import type { z } from "zod";
import type { inputsSchema as kernelSchema } from "../../provider/resources/iommuKernelArgs/schema";
import type { inputsSchema as pfSchema } from "../../provider/resources/sriovPf/schema";
import type { inputsSchema as vfSchema } from "../../provider/resources/virtualFunction/schema";
import type { inputsSchema as poolSchema } from "../../provider/resources/vfPoolNetwork/schema";
import type { inputsSchema as ifaceSchema } from "../../provider/resources/domainVfInterface/schema";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
/** Keys the provider takes that the SDK type lacks. */
type Missing<P, S> = Exclude<keyof P, keyof S>;
/** Keys whose (unwrapped) SDK value type is not assignable to the provider's. */
type Mismatched<P, S> = { [K in keyof P & keyof S]: NonNullable<pulumi.Unwrap<S[K]>> extends NonNullable<P[K]> ? never : K }[keyof P & keyof S];

type Plain<T> = pulumi.Unwrap<T>;

// Connection: the SDK's fields are exactly the provider's, in both directions.
export type _ConnKeys = Assert<Equal<keyof sdk.ConnectionArgs, keyof ProviderConnection>>;
export type _ConnToProvider = Assert<Plain<sdk.ConnectionArgs> extends ProviderConnection ? true : false>;
export type _ProviderToConn = Assert<ProviderConnection extends Plain<sdk.ConnectionArgs> ? true : false>;

// Every provider input is offered by the SDK, with a compatible type.
export type _Kernel = Assert<Equal<Missing<KernelInputs, sdk.IommuKernelArgsInputs> | Mismatched<KernelInputs, sdk.IommuKernelArgsInputs>, never>>;
export type _Pf = Assert<Equal<Missing<SriovPfInputs, sdk.SriovPfInputs> | Mismatched<SriovPfInputs, sdk.SriovPfInputs>, never>>;
export type _Vf = Assert<Equal<Missing<VfInputs, sdk.VirtualFunctionInputs> | Mismatched<VfInputs, sdk.VirtualFunctionInputs>, never>>;
export type _Pool = Assert<Equal<Missing<PoolInputs, sdk.VfPoolNetworkInputs> | Mismatched<PoolInputs, sdk.VfPoolNetworkInputs>, never>>;
export type _Iface = Assert<Equal<Missing<IfaceInputs, sdk.DomainVfInterfaceInputs>, never>>;

// And nothing the providers do not take.
export type _KernelExtra = Assert<Equal<Exclude<keyof sdk.IommuKernelArgsInputs, keyof KernelInputs>, never>>;
export type _PfExtra = Assert<Equal<Exclude<keyof sdk.SriovPfInputs, keyof SriovPfInputs>, never>>;
export type _VfExtra = Assert<Equal<Exclude<keyof sdk.VirtualFunctionInputs, keyof VfInputs>, never>>;
export type _PoolExtra = Assert<Equal<Exclude<keyof sdk.VfPoolNetworkInputs, keyof PoolInputs>, never>>;
export type _IfaceExtra = Assert<Equal<Exclude<keyof sdk.DomainVfInterfaceInputs, keyof IfaceInputs>, never>>;

// The SDK's inputs, unwrapped, are exactly what each provider's zod schema
// accepts before defaults: the same keys, the same optionality, the same value types.
// (DomainVfInterface's `source` is narrower in the SDK: exactly one of network | pciAddress,
// which the schema checks at run time; there it only has to be accepted.)
type Raw<S extends () => z.ZodType, Except extends PropertyKey = never> = Omit<z.input<ReturnType<S>>, Except>;
type OptionalKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? K : never }[keyof T];
type SameInputs<S extends () => z.ZodType, A, Except extends PropertyKey = never> =
  Equal<Required<Plain<Omit<A, Except>>>, Required<Raw<S, Except>>> extends true
    ? Equal<OptionalKeys<A>, OptionalKeys<z.input<ReturnType<S>>>> extends true
      ? Plain<A> extends z.input<ReturnType<S>> ? true : false
      : false
    : false;
export type _KernelSchema = Assert<SameInputs<typeof kernelSchema, sdk.IommuKernelArgsInputs>>;
export type _PfSchema = Assert<SameInputs<typeof pfSchema, sdk.SriovPfInputs>>;
export type _VfSchema = Assert<SameInputs<typeof vfSchema, sdk.VirtualFunctionInputs>>;
export type _PoolSchema = Assert<SameInputs<typeof poolSchema, sdk.VfPoolNetworkInputs>>;
export type _IfaceSchema = Assert<SameInputs<typeof ifaceSchema, sdk.DomainVfInterfaceInputs, "source">>;

// Outputs the classes declare exist in the providers' outputs, with the same types.
type OutputsOf<C> = { [K in keyof C as C[K] extends pulumi.Output<any> ? K : never]: C[K] extends pulumi.Output<infer T> ? T : never };
type Declared<C> = Exclude<keyof OutputsOf<C>, "urn" | "id" | "connection">;
type WrongOutputs<C, O> = { [K in Declared<C>]: K extends keyof O ? (Equal<OutputsOf<C>[K], O[K]> extends true ? never : K) : K }[Declared<C>];
export type _KernelOut = Assert<Equal<WrongOutputs<sdk.IommuKernelArgs, KernelOutputs>, never>>;
export type _PfOut = Assert<Equal<WrongOutputs<sdk.SriovPf, Omit<SriovPfOutputs, "found">>, never>>;
export type _VfOut = Assert<Equal<WrongOutputs<sdk.VirtualFunction, VfOutputs>, never>>;
export type _PoolOut = Assert<Equal<WrongOutputs<sdk.VfPoolNetwork, PoolOutputs>, never>>;
export type _IfaceOut = Assert<Equal<WrongOutputs<sdk.DomainVfInterface, IfaceOutputs>, never>>;

describe("sdk types match the providers", () => {
  it("each class registers the output keys it declares", () => {
    // Compile-time checks above; here the registered keys and the declared ones agree.
    const classes: [string, readonly string[]][] = [
      ["IommuKernelArgs", sdk.IommuKernelArgs.outputKeys],
      ["SriovPf", sdk.SriovPf.outputKeys],
      ["VirtualFunction", sdk.VirtualFunction.outputKeys],
      ["VfPoolNetwork", sdk.VfPoolNetwork.outputKeys],
      ["DomainVfInterface", sdk.DomainVfInterface.outputKeys],
    ];
    for (const [name, keys] of classes) {
      expect(new Set(keys).size, name).to.equal(keys.length);
      expect(keys, name).to.not.include("connection");
    }
  });
});
