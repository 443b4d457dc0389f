// What the running host says about its IOMMU: whether it is active, how many
// groups, and what an operator should know before passing devices through
// (firmware switch off, faults, root ports without ACS, NICs sharing a group).
import { argKey, hasEffect, splitCmdline } from "./cmdline";
import { Facts, IommuGroupDevice } from "./facts";

export interface RootPort {
  address: string;
  name: string;
  acs: boolean;
  /** ACSCtl flags that are enabled ("+"). */
  acsEnabled: string[];
}

/** Root ports from `lspci -vvv -D -d ::0604` and their Access Control Services. */
export function parseRootPorts(lspci: string): RootPort[] {
  const out: RootPort[] = [];
  for (const block of lspci.split(/\n(?=\S)/)) {
    const head = /^([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s+(.*)$/m.exec(block);
    if (!head || !/Express \(v\d\) Root Port|Express Root Port/.test(block)) continue;
    const ctl = /ACSCtl:\s*(.*)/.exec(block);
    out.push({
      address: head[1],
      name: head[2].replace(/^PCI bridge:\s*/, "").replace(/\s*\(prog-if.*$/, ""),
      acs: /Access Control Services/.test(block),
      acsEnabled: ctl ? [...ctl[1].matchAll(/(\w+)\+/g)].map((m) => m[1]) : [],
    });
  }
  return out;
}

/** The ACS controls Linux needs before it isolates devices below a port (REQ_ACS_FLAGS). */
const REQUIRED_ACS = ["SrcValid", "ReqRedir", "CmpltRedir", "UpstreamFwd"];

export function acsWarnings(ports: readonly RootPort[]): string[] {
  const w: string[] = [];
  const none = ports.filter((p) => !p.acs);
  if (none.length)
    w.push(
      `root port${none.length > 1 ? "s" : ""} without ACS (Access Control Services): ${none.map((p) => p.address).join(", ")}; devices behind ${none.length > 1 ? "them" : "it"} may share IOMMU groups (pcie_acs_override=downstream needs a kernel with the ACS override patch)`,
    );
  const off = ports.filter((p) => p.acs && REQUIRED_ACS.some((f) => !p.acsEnabled.includes(f)));
  for (const p of off)
    w.push(
      `root port ${p.address} has ACS but does not enable ${REQUIRED_ACS.filter((f) => !p.acsEnabled.includes(f)).join(", ")} (ACSCtl); devices behind it are not isolated`,
    );
  return w;
}

/** NICs that share an IOMMU group with other (non-bridge) devices. */
export function groupWarnings(devs: readonly IommuGroupDevice[]): string[] {
  const groups = new Map<string, IommuGroupDevice[]>();
  for (const d of devs) groups.set(d.group, [...(groups.get(d.group) ?? []), d]);
  const w: string[] = [];
  const sorted = [...groups].sort((a, b) => Number(a[0]) - Number(b[0]));
  for (const [g, list] of sorted) {
    const nics = list.filter((d) => d.pciClass.startsWith("0x02"));
    const others = list.filter((d) => !d.pciClass.startsWith("0x0604") && !nics.includes(d));
    const shared = nics.length > 1 || others.length > 0;
    if (nics.length && shared)
      w.push(
        `IOMMU group ${g}: NIC ${nics[0].device} shares the group with ${[...nics.slice(1), ...others]
          .map((d) => `${d.device} (class ${d.pciClass})`)
          .join(", ")}; devices in one group can only be passed through together`,
      );
  }
  return w;
}

export interface Health {
  iommuEnabled: boolean;
  iommuGroupCount: number;
  warnings: string[];
}

/** IOMMU state and warnings, given the arguments this resource wants and whether a reboot is pending. */
export function health(f: Facts, wanted: readonly string[], rebootRequired: boolean): Health {
  const groups = new Set(f.iommuGroups.map((d) => d.group));
  const enabled = f.iommuClassDevices.length > 0 || groups.size > 0;
  const w: string[] = [];
  const running = splitCmdline(f.cmdline);

  if (f.cpuVendor === "intel" && !f.acpiTables.includes("DMAR"))
    w.push('no ACPI DMAR table: VT-d is off or missing in the firmware; enable "VT-d" (Intel Virtualization Technology for Directed I/O) in the BIOS/UEFI setup');
  if (f.cpuVendor === "amd" && !f.acpiTables.includes("IVRS"))
    w.push('no ACPI IVRS table: the AMD IOMMU is off or missing in the firmware; enable "IOMMU" (AMD-Vi) in the BIOS/UEFI setup');

  const vendorArg = wanted.find((a) => ["intel_iommu", "amd_iommu"].includes(argKey(a)));
  if (!enabled) {
    const log = f.kernelLog.some((l) => /DMAR|AMD-Vi/.test(l));
    if (rebootRequired) w.push("the IOMMU is not active yet: the host must reboot with the new kernel arguments");
    else if (vendorArg && hasEffect(running, vendorArg))
      w.push(
        `the IOMMU is not active although the kernel booted with ${vendorArg}: /sys/class/iommu is empty${log ? "" : " and the kernel log has no DMAR / AMD-Vi lines"}; check the firmware setting`,
      );
  }

  const faults = f.kernelLog.filter((l) => /DMAR: \[DMA (Read|Write)|DMAR:.*fault|handling fault status|IO_PAGE_FAULT|AMD-Vi: Event logged/i.test(l));
  if (faults.length) w.push(`${faults.length} IOMMU fault line(s) in the kernel log since boot, e.g. ${faults[0].trim()}`);
  const fw = f.kernelLog.find((l) => /DMAR.*\[Firmware Bug\]|AMD-Vi.*\[Firmware Bug\]/.test(l));
  if (fw) w.push(`the firmware's IOMMU tables have a known bug: ${fw.trim()}`);

  // Arguments the running kernel does not understand (e.g. pcie_acs_override without the patch).
  const unknownLine = f.kernelLog.find((l) => /Unknown kernel command line parameters/.test(l));
  if (unknownLine) {
    const m = /parameters "([^"]*)"/.exec(unknownLine);
    const unknown = m ? splitCmdline(m[1]) : [];
    for (const a of wanted)
      if (unknown.some((u) => argKey(u) === argKey(a)))
        w.push(`the running kernel does not know ${a}${argKey(a) === "pcie_acs_override" ? " (it needs a kernel with the ACS override patch)" : ""}`);
  }

  w.push(...acsWarnings(parseRootPorts(f.lspciBridges)));
  w.push(...groupWarnings(f.iommuGroups));
  return { iommuEnabled: enabled, iommuGroupCount: groups.size, warnings: w };
}
