// Inputs and outputs of IommuKernelArgs, and the arguments they ask for.
import { z } from "zod";
import { argKey, isMultiValued, isReservedKey, SAFE_ARG } from "./cmdline";
import { Restore } from "./restore";

export type IommuVendor = "intel" | "amd";
export type Bootloader = "grub" | "grub2-bls" | "systemd-boot" | "proxmox";

export interface Inputs {
  iommu: "auto" | IommuVendor | "none";
  passthrough: boolean;
  extraArgs: string[];
  bootloader: "auto" | Bootloader;
  reboot: "never" | "ifNeeded";
  rebootTimeoutSeconds: number;
}

export interface Outputs {
  /** Host name, as the host reports it (part of the id). */
  hostname: string;
  /** The kernel arguments this resource sets. */
  args: string[];
  bootloader: Bootloader;
  /** Why that bootloader: what was found on the host. */
  bootloaderEvidence: string[];
  /** The file that carries the arguments. */
  configPath: string;
  /** What regenerates the boot configuration. */
  regenerateCommand: string;
  /** /proc/cmdline. */
  activeCmdline: string;
  /** The arguments are configured but the running kernel did not boot with them. */
  rebootRequired: boolean;
  iommuEnabled: boolean;
  iommuGroupCount: number;
  cpuVendor: string;
  warnings: string[];
  /** User arguments this resource replaced (put back on delete). */
  replacedArgs: string[];
  /** The exact changes, so that delete restores what was there. */
  restore: Restore;
}

const VENDOR_KEYS = ["intel_iommu", "amd_iommu"];

export function inputsSchema() {
  const arg = z
    .string()
    .regex(SAFE_ARG, "must be one kernel argument like key or key=value (letters, digits and _ . , : / + @ % = -; no spaces, quotes or shell characters)")
    .refine((a) => !isReservedKey(argKey(a)), { message: "sets a key that makes the host boot (root, init, ro, …); this resource will not own it" });
  return z
    .object({
      iommu: z.enum(["auto", "intel", "amd", "none"], { message: 'must be "auto", "intel", "amd" or "none"' }).default("auto"),
      passthrough: z.boolean({ message: "must be true or false" }).default(true),
      extraArgs: z.array(arg, { message: "must be a list of kernel arguments" }).default([]),
      bootloader: z
        .enum(["auto", "grub", "grub2-bls", "systemd-boot", "proxmox"], { message: 'must be "auto", "grub", "grub2-bls", "systemd-boot" or "proxmox"' })
        .default("auto"),
      reboot: z.enum(["never", "ifNeeded"], { message: 'must be "never" or "ifNeeded"' }).default("never"),
      rebootTimeoutSeconds: z
        .number({ message: "must be a number of seconds" })
        .int("must be a whole number of seconds")
        .min(30, "must be at least 30 seconds")
        .max(7200, "must be at most 7200 seconds (2 hours)")
        .default(600),
    })
    .strict()
    .superRefine((v, ctx) => {
      const owner = new Map<string, string>();
      if (v.iommu !== "none") for (const k of v.iommu === "auto" ? VENDOR_KEYS : [`${v.iommu}_iommu`]) owner.set(k, `iommu (${v.iommu})`);
      if (v.passthrough) owner.set("iommu", "passthrough (iommu=pt)");
      v.extraArgs.forEach((a, i) => {
        const key = argKey(a);
        const by = owner.get(key);
        if (by && !isMultiValued(key))
          ctx.addIssue({
            code: "custom",
            path: ["extraArgs", i],
            message: by.startsWith("extraArgs")
              ? `sets ${key} again (already ${by}); a key can have one value`
              : `sets ${key}, which ${by} already sets${key === "iommu" ? "; set passthrough: false to choose iommu= yourself" : '; set iommu: "none" to choose it yourself'}`,
          });
        else owner.set(key, `extraArgs[${i}]`);
      });
    });
}

/** The arguments the inputs ask for, in order, once the CPU vendor is known. */
export function desiredArgs(inputs: Pick<Inputs, "iommu" | "passthrough" | "extraArgs">, cpuVendor: IommuVendor | undefined): string[] {
  const out: string[] = [];
  const vendor = inputs.iommu === "auto" ? cpuVendor : inputs.iommu === "none" ? undefined : inputs.iommu;
  if (inputs.iommu === "auto" && !cpuVendor) throw new Error("cannot tell the CPU vendor");
  if (vendor === "intel") out.push("intel_iommu=on");
  if (vendor === "amd") out.push("amd_iommu=on");
  if (inputs.passthrough) out.push("iommu=pt");
  for (const a of inputs.extraArgs) if (!out.includes(a)) out.push(a);
  return out;
}

/** Whether an argument is the vendor IOMMU switch (intel_iommu= / amd_iommu=). */
export function isVendorArg(a: string): boolean {
  return VENDOR_KEYS.includes(argKey(a));
}
