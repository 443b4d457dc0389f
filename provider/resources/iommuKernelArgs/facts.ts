// What the resource needs to know about a host, read in one round trip: the
// probes are argument vectors for one `host.batch`, and `parseFacts` turns
// their output into Facts without touching the host (so it is testable with
// recorded output).
import { RECORD_DIR, type Argv, type CommandResult } from "../../host/host";
import { shScript } from "../../host/quote";
import { KernelEntry, parseGrubbyInfo } from "./grubby";
import { firstEntryArgs } from "./grub";
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

const PATH_FIX = 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; ';

const FILES_SCRIPT =
  PATH_FIX +
  'for f in /etc/default/grub /etc/default/grub.d/*.cfg "$@"; do [ -f "$f" ] || continue; printf "%s\\t" "$f"; base64 -w0 < "$f" || exit 1; echo; done';

const HEALTH_PROBES = ["iommuClass", "groups", "acpi", "kernelLog", "lspci"];

/** Create's record of what it replaces in the boot configuration, kept until delete. */
export const PENDING_RESTORE = `${RECORD_DIR}/iommu-kernel-args.json`;

/** The probes, by name; each an argv for one batch. Planning alone can leave out the health probes. */
export function probes(opts: { health?: boolean } = {}): { name: string; argv: Argv }[] {
  const all: { name: string; argv: Argv }[] = [
    { name: "hostname", argv: ["uname", "-n"] },
    { name: "pending", argv: shScript('[ -f "$1" ] && base64 -w0 < "$1"; true', PENDING_RESTORE) },
    { name: "cmdline", argv: ["cat", "/proc/cmdline"] },
    { name: "bootId", argv: ["cat", "/proc/sys/kernel/random/boot_id"] },
    { name: "cpu", argv: shScript("grep -m1 -E '^(vendor_id|CPU implementer)' /proc/cpuinfo; true") },
    { name: "os", argv: shScript("cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; true") },
    {
      name: "efi",
      argv: shScript(
        'if [ -d /sys/firmware/efi ]; then echo efi; f=/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f; [ -r "$f" ] && tail -c +5 "$f" | tr -d "\\000"; fi; true',
      ),
    },
    { name: "tools", argv: shScript(PATH_FIX + 'for t in "$@"; do p=$(command -v "$t" 2>/dev/null) && echo "$t $p"; done; true', ...TOOLS) },
    { name: "files", argv: shScript(FILES_SCRIPT, KERNEL_CMDLINE, LIB_KERNEL_CMDLINE, PROXMOX_BOOT_UUIDS) },
    {
      name: "dropins",
      argv: shScript(PATH_FIX + 'm=$(command -v grub-mkconfig || command -v grub2-mkconfig) && grep -q "default/grub.d" "$m" && echo yes; true'),
    },
    {
      name: "grubcfg",
      argv: shScript(
        'for f in /boot/grub/grub.cfg /boot/grub2/grub.cfg /boot/efi/EFI/*/grub.cfg /efi/EFI/*/grub.cfg; do [ -f "$f" ] || continue; g=0; b=0; grep -q "BEGIN /etc/grub.d" "$f" && g=1; grep -q "blscfg" "$f" && b=1; l=$(grep -m1 -E "^[[:space:]]*(linux|linux16|linuxefi)[[:space:]]" "$f"); printf "%s %s %s\\t%s\\n" "$g" "$b" "$f" "$l"; done; true',
      ),
    },
    { name: "bls", argv: shScript("ls /boot/loader/entries/*.conf 2>/dev/null | wc -l") },
    { name: "grubby", argv: shScript(PATH_FIX + "command -v grubby >/dev/null && grubby --info=ALL 2>/dev/null; true") },
    { name: "proxmox", argv: shScript(PATH_FIX + "command -v proxmox-boot-tool >/dev/null && proxmox-boot-tool status 2>&1; true") },
    {
      name: "kernels",
      argv: shScript(
        'm=/usr/lib/modules; [ -d $m ] || m=/lib/modules; for d in $m/*; do v=${d##*/}; if [ -f "$d/vmlinuz" ]; then echo "$v $d/vmlinuz"; elif [ -f "/boot/vmlinuz-$v" ]; then echo "$v /boot/vmlinuz-$v"; fi; done; true',
      ),
    },
    { name: "bootPath", argv: shScript(PATH_FIX + "command -v bootctl >/dev/null && [ -d /sys/firmware/efi ] && bootctl --print-boot-path 2>/dev/null; true") },
    { name: "iommuClass", argv: shScript("ls /sys/class/iommu 2>/dev/null; true") },
    {
      name: "groups",
      argv: shScript(
        'for d in /sys/kernel/iommu_groups/*/devices/*; do [ -e "$d" ] || continue; g=${d%/devices/*}; echo "${g##*/} ${d##*/} $(cat "$d/class" 2>/dev/null)"; done; true',
      ),
    },
    { name: "acpi", argv: shScript("for t in DMAR IVRS; do [ -e /sys/firmware/acpi/tables/$t ] && echo $t; done; true") },
    {
      name: "kernelLog",
      argv: shScript(
        '(dmesg 2>/dev/null || journalctl -k -b --no-pager -q 2>/dev/null) | grep -E "DMAR|AMD-Vi|IOMMU|iommu|Unknown kernel command line|ACS" | tail -n 400; true',
      ),
    },
    { name: "lspci", argv: shScript(PATH_FIX + "command -v lspci >/dev/null && lspci -vvv -D -d ::0604 2>/dev/null; true") },
  ];
  return opts.health === false ? all.filter((p) => !HEALTH_PROBES.includes(p.name)) : all;
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

/** The pending record (base64 JSON), or undefined when absent or not one. */
function parsePending(b64: string): Restore | undefined {
  if (!b64) return undefined;
  try {
    const v = JSON.parse(Buffer.from(b64, "base64").toString("utf8"));
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
