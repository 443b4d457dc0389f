// Everything `npm run lab` prints goes through here: progress lines and
// headings on stdout, complaints on stderr, and the host summary from the
// stack's outputs.
import type { SriovHostSummary } from "../../sdk";

function cell(v: unknown): string {
  return v === undefined || v === null || v === "" ? "-" : String(v);
}

function table(rows: string[][], indentBy: string): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => indentBy + r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
}

/** A host's summary for the terminal: kernel arguments, PFs with their VFs, networks. */
export function formatHostSummary(name: string, s: SriovHostSummary): string {
  const lines = [`host ${name}`];
  if (s.kernelArgs) {
    const k = s.kernelArgs;
    lines.push(
      `  kernel arguments: ${(k.args ?? []).join(" ") || "-"}`,
      `    IOMMU ${k.iommuEnabled ? "enabled" : "NOT enabled"}, ${cell(k.iommuGroupCount)} IOMMU groups, reboot required: ${k.rebootRequired ? "yes" : "no"}`,
      ...(k.warnings ?? []).map((w) => `    warning: ${w}`),
    );
  }
  for (const pf of s.pfs) {
    lines.push(`  PF ${cell(pf.interface)} (${cell(pf.pciAddress)}, driver ${cell(pf.driver)}): ${cell(pf.numVfs)} of ${cell(pf.totalVfs)} VFs, NUMA node ${cell(pf.numaNode)}`);
    if (pf.vfs.length) {
      const rows = [["VF", "PCI address", "IOMMU group", "MAC", "VLAN", "driver", "netdev"]];
      for (const v of pf.vfs) rows.push([String(v.index), cell(v.pciAddress), cell(v.iommuGroup), cell(v.mac), cell(v.vlan), cell(v.driver), cell(v.netdev)]);
      lines.push(...table(rows, "    "));
    }
  }
  for (const n of s.poolNetworks)
    lines.push(
      `  network ${cell(n.name)}: ${n.active ? "active" : "inactive"}, ${n.autostart ? "autostart" : "no autostart"}, VFs ${(n.vfAddresses ?? []).join(" ") || "-"}`,
    );
  return lines.join("\n");
}

/** A progress line on the terminal. */
export const say = (s = "") => void process.stdout.write(s + "\n");

/** A section heading: a blank line, then `== <title>`. */
export const heading = (s: string) => say(`\n== ${s}`);

/** A problem with how the lab was started, on stderr. */
export const complain = (s: string) => void process.stderr.write(`lab: ${s}\n`);

/** Engine output passed through as it arrives. */
export const passThrough = (s: string) => void process.stdout.write(s);

/** The usage line, on stderr as it is printed with a complaint. */
export const usageLine = (s: string) => void process.stderr.write(`usage: ${s}\n`);
