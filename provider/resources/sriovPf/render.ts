// The persistence files, rendered from what they must do. Every form names the
// PF by its PCI address: interface names can change across reboots.
import { systemdEscape, udevQuote } from "../../host/quote";

export interface PersistSettings {
  pciAddress: string;
  numVfs: number;
  autoprobe: boolean;
  mtu?: number;
}

const HEADER = "# Managed by pulumi-sriov (SriovPf); the next `pulumi up` reverts changes made here.";

/** The boot-time script of the systemd unit, as plain shell (before systemd's `$$` escaping). */
export function unitScript(s: PersistSettings): string[] {
  const d = `/sys/bus/pci/devices/${s.pciAddress}`;
  const lines = [
    "set -e",
    `d=${d}`,
    // The PF's driver binds while udev processes coldplug events; wait for it.
    "i=0",
    `while [ ! -e $d/driver ]; do i=$((i+1)); if [ $i -gt 600 ]; then echo "no driver is bound to ${s.pciAddress} after 60 s" >&2; exit 1; fi; sleep 0.1; done`,
    `echo ${s.autoprobe ? 1 : 0} > $d/sriov_drivers_autoprobe`,
    "n=$(cat $d/sriov_numvfs)",
    s.numVfs === 0
      ? `if [ "$n" != 0 ]; then echo 0 > $d/sriov_numvfs; fi`
      : // The kernel only accepts a new count when the current one is 0.
        `if [ "$n" != ${s.numVfs} ]; then if [ "$n" != 0 ]; then echo 0 > $d/sriov_numvfs; fi; echo ${s.numVfs} > $d/sriov_numvfs; fi`,
  ];
  if (s.mtu !== undefined) lines.push(`for n in $d/net/*; do if [ -e "$n/mtu" ]; then echo ${s.mtu} > "$n/mtu"; fi; done`);
  lines.push("udevadm settle --timeout=60 || true");
  return lines;
}

/** One single-quoted ExecStart= argument: systemd unescapes backslashes in quotes, so lines may hold neither. */
function systemdShell(lines: string[]): string {
  for (const l of lines)
    if (/['\\]/.test(l)) throw new Error(`unit script line must not contain quotes or backslashes: ${l}`);
  const body = lines.map(systemdEscape).join("; \\\n  ");
  return `/bin/sh -c '\\\n  ${body}'`;
}

export function renderUnit(s: PersistSettings): string {
  const what = `${s.numVfs} virtual function${s.numVfs === 1 ? "" : "s"} on PF ${s.pciAddress}`;
  return [
    HEADER,
    `# Sets SR-IOV ${what} at boot (sriov_drivers_autoprobe ${s.autoprobe ? 1 : 0}${s.mtu !== undefined ? `, PF MTU ${s.mtu}` : ""}),`,
    "# before libvirt and networking start, so autostarted pool networks find their VFs.",
    "[Unit]",
    `Description=pulumi-sriov: SR-IOV ${what}`,
    "DefaultDependencies=no",
    "After=systemd-udev-trigger.service systemd-modules-load.service",
    "Before=libvirtd.service virtqemud.service virtnetworkd.service network-pre.target shutdown.target",
    "Wants=network-pre.target",
    "Conflicts=shutdown.target",
    `ConditionPathExists=/sys/bus/pci/devices/${s.pciAddress}`,
    "",
    "[Service]",
    "Type=oneshot",
    "RemainAfterExit=yes",
    "TimeoutStartSec=180",
    `ExecStart=${systemdShell(unitScript(s))}`,
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

export function renderUdevRule(s: PersistSettings): string {
  const attrs = [
    `ATTR{device/sriov_drivers_autoprobe}=${udevQuote(s.autoprobe ? "1" : "0")}`,
    `ATTR{device/sriov_numvfs}=${udevQuote(String(s.numVfs))}`,
    ...(s.mtu !== undefined ? [`ATTR{mtu}=${udevQuote(String(s.mtu))}`] : []),
  ];
  return [
    HEADER,
    `# Sets ${s.numVfs} SR-IOV virtual function${s.numVfs === 1 ? "" : "s"} on the PF at PCI ${s.pciAddress} when its network`,
    "# interface appears at boot. KERNELS matches the PF's PCI device, never an interface name.",
    `ACTION=="add", SUBSYSTEM=="net", KERNELS==${udevQuote(s.pciAddress)}, ${attrs.join(", ")}`,
    "",
  ].join("\n");
}

export interface ModprobeSettings {
  driver: string;
  numVfs: number;
  /** PCI addresses of the PFs declared with persist "modprobe" for this driver. */
  ports: string[];
}

export function renderModprobe(m: ModprobeSettings): string {
  return [
    HEADER,
    `# The ${m.driver} driver creates max_vfs virtual functions on EVERY port it drives as`,
    "# it loads, not only on the ports listed here: a module option cannot name a port.",
    '# Ports declared with persist "modprobe":',
    `# ports: ${[...m.ports].sort().join(" ")}`,
    `options ${m.driver} max_vfs=${m.numVfs}`,
    "",
  ].join("\n");
}

/** Reads back a file written by renderModprobe (undefined when it is not one). */
export function parseModprobe(driver: string, text: string): ModprobeSettings | undefined {
  const ports = /^# ports:[ \t]*(.*)$/m.exec(text);
  const opt = new RegExp(`^options[ \\t]+${driver.replace(/[^A-Za-z0-9_]/g, "\\$&")}[ \\t]+max_vfs=(\\d+)[ \\t]*$`, "m").exec(text);
  if (!ports || !opt) return undefined;
  return { driver, numVfs: Number(opt[1]), ports: ports[1].split(/\s+/).filter(Boolean) };
}
