// What the resource needs to know about a host, read in one round trip: one
// run of provider/scripts/iommu-kernel-args-facts.sh, whose probes'
// results `parseProbeOutput` separates and `parseFacts` turns into Facts
// without touching the host (so it is testable with recorded output).
import { RECORD_DIR, type Argv, type CommandResult } from "../../host/host";
import { shScript } from "../../host/quote";
import { loadScript } from "../../scripts";
import { firstEntryArgs, GRUB_DROPIN_DIR, GRUB_MAIN } from "./grub";
import { KernelEntry, parseGrubbyInfo } from "./grubby";
import { Restore, restoreFrom } from "./restore";

export const KERNEL_CMDLINE = "/etc/kernel/cmdline";
export const LIB_KERNEL_CMDLINE = "/usr/lib/kernel/cmdline";
export const PROXMOX_BOOT_UUIDS = "/etc/kernel/proxmox-boot-uuids";

/** Tools looked for on the host. */
export const TOOLS = [
  "update-grub",
  "grub-mkconfig",
  "grub2-mkconfig",
  "grub-script-check",
  "grub2-script-check",
  "grubby",
  "bootctl",
  "kernel-install",
  "proxmox-boot-tool",
  "lspci",
] as const;

export interface GrubCfg {
  path: string;
  /** Written by grub-mkconfig (not a stub that loads another file). */
  generated: boolean;
  /** Loads Boot Loader Specification entries (blscfg). */
  bls: boolean;
  /** The first `linux` line's kernel arguments (what the default entry boots); absent without one. */
  firstEntry?: string[];
}

export interface IommuGroupDevice {
  group: string;
  device: string;
  /** PCI class, e.g. 0x020000. */
  pciClass: string;
}

export interface Facts {
  hostname: string;
  cmdline: string;
  bootId: string;
  cpuVendor: "intel" | "amd" | undefined;
  cpuVendorRaw: string;
  osPrettyName: string;
  efi: boolean;
  /** systemd-boot's LoaderInfo EFI variable, when it booted this kernel. */
  loaderInfo: string;
  tools: Record<string, string>;
  /** /etc/default/grub, its drop-ins, /etc/kernel/cmdline…, by path (present files only). */
  files: Record<string, string>;
  /** The record an unfinished create left (see PENDING_RESTORE). */
  pendingRestore?: Restore;
  /** Files that are not valid UTF-8 (never edited). */
  binaryFiles: string[];
  grubReadsDropins: boolean;
  grubCfgs: GrubCfg[];
  blsEntries: number;
  grubby: KernelEntry[];
  proxmoxStatus: string;
  kernels: { version: string; image: string }[];
  bootPath: string;
  iommuClassDevices: string[];
  iommuGroups: IommuGroupDevice[];
  acpiTables: string[];
  kernelLog: string[];
  lspciBridges: string;
}

const HEALTH_PROBES = ["iommuClass", "groups", "acpi", "kernelLog", "lspci"];

/** The probes iommu-kernel-args-facts.sh runs, in order; planning alone leaves out the health probes. */
export const PROBES = [
  "hostname",
  "pending",
  "cmdline",
  "bootId",
  "cpu",
  "os",
  "efi",
  "tools",
  "files",
  "dropins",
  "grubcfg",
  "bls",
  "grubby",
  "proxmox",
  "kernels",
  "bootPath",
  ...HEALTH_PROBES,
] as const;

/** Create's record of what it replaces in the boot configuration, kept until delete. */
export const PENDING_RESTORE = `${RECORD_DIR}/iommu-kernel-args.json`;

const FACTS_SCRIPT = loadScript("iommu-kernel-args-facts");

/** The one command that reads every fact (without the health probes when only planning). */
export function factsArgv(opts: { health?: boolean } = {}): Argv {
  const more = [KERNEL_CMDLINE, LIB_KERNEL_CMDLINE, PROXMOX_BOOT_UUIDS];
  return shScript(FACTS_SCRIPT, opts.health === false ? "no" : "yes", PENDING_RESTORE, GRUB_MAIN, GRUB_DROPIN_DIR, String(more.length), ...more, ...TOOLS);
}

/**
 * Each probe's result, by probe. stdout starts with the script's boundary
 * line; every probe's output is followed by "\n<boundary> <probe> <code>\n"
 * on stdout and "\n<boundary> <probe>\n" on stderr.
 */
export function parseProbeOutput(stdout: string, stderr = ""): Record<string, CommandResult> {
  const nl = stdout.indexOf("\n");
  const mark = stdout.slice(0, Math.max(nl, 0));
  if (!/^[0-9a-f-]{16,}$/.test(mark)) return {};
  const errs = new Map(sections(stderr, mark).map((s) => [s.label, s.body]));
  const byName: Record<string, CommandResult> = {};
  for (const { label, body } of sections(stdout.slice(nl + 1), mark)) {
    const [name, code] = label.split(" ");
    byName[name] = { code: Number(code), stdout: body, stderr: errs.get(name) ?? "" };
  }
  return byName;
}

/** Framed text as (label, body) pairs: each body is the text before "\n<mark> <label>\n". */
function sections(text: string, mark: string): { label: string; body: string }[] {
  const parts = text.split(`\n${mark} `);
  const out: { label: string; body: string }[] = [];
  let body = parts[0];
  for (const part of parts.slice(1)) {
    const eol = part.indexOf("\n");
    out.push({ label: eol < 0 ? part : part.slice(0, eol), body });
    body = eol < 0 ? "" : part.slice(eol + 1);
  }
  return out;
}

function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(?:"(.*)"|'(.*)'|(.*))$/.exec(line.trim());
    if (m) out[m[1]] = m[2] ?? m[3] ?? m[4] ?? "";
  }
  return out;
}

function lines(s: string): string[] {
  return s.split("\n").map((l) => l.trim()).filter(Boolean);
}

/** Decodes the framed file listing; files that are not UTF-8 are reported, not returned. */
export function parseFiles(out: string): { files: Record<string, string>; binary: string[] } {
  const files: Record<string, string> = {};
  const binary: string[] = [];
  for (const line of out.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab < 0) continue;
    const path = line.slice(0, tab);
    const bytes = Buffer.from(line.slice(tab + 1), "base64");
    const text = bytes.toString("utf8");
    if (!Buffer.from(text, "utf8").equals(bytes)) binary.push(path);
    else files[path] = text;
  }
  return { files, binary };
}

/** The pending record (JSON), or undefined when absent or not one. */
function parsePending(json: string): Restore | undefined {
  if (!json) return undefined;
  try {
    const v = JSON.parse(json);
    if (Array.isArray(v?.edits) && Array.isArray(v?.created)) return restoreFrom(v);
  } catch {
    /* not JSON: create records anew */
  }
  return undefined;
}

export function parseFacts(results: Record<string, CommandResult>): Facts {
  const out = (name: string) => results[name]?.stdout ?? "";
  const cpuLine = out("cpu").trim();
  const cpuVendorRaw = cpuLine.replace(/^[^:]*:\s*/, "");
  const cpuVendor = /GenuineIntel/.test(cpuVendorRaw) ? "intel" : /AuthenticAMD|HygonGenuine/.test(cpuVendorRaw) ? "amd" : undefined;
  const os = parseOsRelease(out("os"));
  const efiLines = out("efi").split("\n");
  const tools: Record<string, string> = {};
  for (const l of lines(out("tools"))) {
    const [t, p] = l.split(" ");
    if (t && p) tools[t] = p;
  }
  const { files, binary } = parseFiles(out("files"));
  const pendingRestore = parsePending(out("pending").trim());
  return {
    ...(pendingRestore ? { pendingRestore } : {}),
    hostname: out("hostname").trim(),
    cmdline: out("cmdline").trim(),
    bootId: out("bootId").trim(),
    cpuVendor,
    cpuVendorRaw,
    osPrettyName: os.PRETTY_NAME ?? os.NAME ?? "",
    efi: efiLines[0] === "efi",
    loaderInfo: efiLines.slice(1).join("").trim(),
    tools,
    files,
    binaryFiles: binary,
    grubReadsDropins: out("dropins").trim() === "yes",
    grubCfgs: lines(out("grubcfg")).map((l) => {
      const tab = l.indexOf("\t");
      const [head, linux] = tab < 0 ? [l, ""] : [l.slice(0, tab), l.slice(tab + 1)];
      const [g, b, ...p] = head.split(" ");
      const cfg: GrubCfg = { path: p.join(" "), generated: g === "1", bls: b === "1" };
      const entry = firstEntryArgs(linux);
      if (entry) cfg.firstEntry = entry;
      return cfg;
    }),
    blsEntries: Number(out("bls").trim()) || 0,
    grubby: parseGrubbyInfo(out("grubby")),
    proxmoxStatus: out("proxmox"),
    kernels: lines(out("kernels")).map((l) => {
      const [version, image] = l.split(" ");
      return { version, image };
    }),
    bootPath: out("bootPath").trim(),
    iommuClassDevices: lines(out("iommuClass")),
    iommuGroups: lines(out("groups")).map((l) => {
      const [group, device, pciClass] = l.split(" ");
      return { group, device, pciClass: pciClass ?? "" };
    }),
    acpiTables: lines(out("acpi")),
    kernelLog: out("kernelLog").split("\n").filter((l) => l.trim()),
    lspciBridges: out("lspci"),
  };
}
