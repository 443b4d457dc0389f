// Looking at and resetting the lab host between measured runs, through the
// lab's own SSH client (not the measured path, not counted anywhere).
import { PF_MACS } from "../../lab/vm";
import type { LabHost } from "./lab";
import { LAB_PF_PCI } from "./program";

const GRUB_COPY = "/root/.bench-default-grub";

export interface LabPf {
  ifname: string;
  pciAddress: string;
}

/** The lab's two igb PFs, found by their MACs. */
export async function labPfs(vm: LabHost): Promise<LabPf[]> {
  const links = JSON.parse(await vm.run("ip -j link show")) as { ifname: string; address: string }[];
  return PF_MACS.map((mac, i) => {
    const l = links.find((x) => x.address === mac);
    if (!l) throw new Error(`lab: no interface with MAC ${mac}`);
    return { ifname: l.ifname, pciAddress: LAB_PF_PCI[i] };
  });
}

/** Keeps the pristine /etc/default/grub once, so every run starts from it. */
export async function rememberPristine(vm: LabHost): Promise<void> {
  await vm.run(`[ -e ${GRUB_COPY} ] || cp -p /etc/default/grub ${GRUB_COPY}`);
}

/**
 * What the benchmark changes on the host, as text to compare. `grubCfg`
 * includes /boot/grub/grub.cfg: the image's copy was generated at build
 * time, in a chroot, and the first update-grub in the guest writes a
 * different (then stable) one, so compare it only after a first
 * regeneration (normalizeGrubCfg).
 */
export async function fingerprint(vm: LabHost, opts: { grubCfg?: boolean } = {}): Promise<string> {
  const files = `/etc/default/grub /etc/default/grub.d/*${opts.grubCfg === false ? "" : " /boot/grub/grub.cfg"}`;
  return (
    await vm.run(
      [
        `sha256sum ${files} 2>/dev/null | awk '{print $2, $1}'`,
        "for d in " + LAB_PF_PCI.map((p) => `/sys/bus/pci/devices/${p}`).join(" ") + '; do echo "$d numvfs=$(cat $d/sriov_numvfs) autoprobe=$(cat $d/sriov_drivers_autoprobe)"; done',
        "ls /etc/systemd/system /etc/udev/rules.d /etc/modprobe.d | sed 's/^/  /'",
        "virsh -c qemu:///system net-list --all --name | sed '/^$/d; s/^/net /'",
        "ls /tmp/passthrough.xml 2>/dev/null || true",
      ].join("; "),
    )
  ).trim();
}

/** Regenerates grub.cfg once, so that later regenerations compare equal to the start. */
export async function normalizeGrubCfg(vm: LabHost): Promise<void> {
  await vm.run("update-grub >/dev/null 2>&1", { timeoutMs: 600000 });
}

/** Lines in `now` that are not in `before` and vice versa (empty when equal). */
export function fingerprintDiff(before: string, now: string): string[] {
  const a = before.split("\n");
  const b = now.split("\n");
  return [...a.filter((l) => !b.includes(l)).map((l) => `- ${l}`), ...b.filter((l) => !a.includes(l)).map((l) => `+ ${l}`)];
}

/**
 * Puts the host back by hand: pool networks named `networks`, the naive
 * udev rule and XML, VFs of both PFs, and the pristine /etc/default/grub
 * (regenerating grub.cfg only when it differed). With `providerLeftovers`,
 * also units the provider writes (after a failed destroy).
 */
export async function resetByHand(vm: LabHost, networks: string[], opts: { providerLeftovers?: boolean } = {}): Promise<void> {
  const lines = [
    ...networks.map((n) => `virsh -c qemu:///system net-destroy ${n} >/dev/null 2>&1; virsh -c qemu:///system net-undefine ${n} >/dev/null 2>&1`),
    "rm -f /tmp/passthrough.xml",
    "if [ -e /etc/udev/rules.d/70-sriov.rules ]; then rm -f /etc/udev/rules.d/70-sriov.rules; udevadm control --reload; fi",
  ];
  if (opts.providerLeftovers)
    lines.push(
      "for u in /etc/systemd/system/pulumi-sriov-*.service; do [ -e \"$u\" ] || continue; systemctl disable --now \"$(basename \"$u\")\" >/dev/null 2>&1; rm -f \"$u\"; done; systemctl daemon-reload",
    );
  lines.push(
    ...LAB_PF_PCI.map((p) => `echo 0 > /sys/bus/pci/devices/${p}/sriov_numvfs; echo 1 > /sys/bus/pci/devices/${p}/sriov_drivers_autoprobe`),
    `if ! cmp -s ${GRUB_COPY} /etc/default/grub; then cp -p ${GRUB_COPY} /etc/default/grub && update-grub >/dev/null 2>&1; fi`,
  );
  await vm.run(lines.join("\n"), { timeoutMs: 600000 });
}

/** Checks that the configuration is on the host (VF count, attributes, network); returns problems. */
export async function verifyConfigured(
  vm: LabHost,
  pf: LabPf,
  vfs: { mac: string; vlan: number; spoofCheck: boolean; trust: boolean }[],
  network: string,
  opts: { kernelArgs: boolean },
): Promise<string[]> {
  const problems: string[] = [];
  const link = JSON.parse(await vm.run(`ip -j -d link show dev ${pf.ifname}`))[0];
  const list = (link.vfinfo_list ?? []) as any[];
  if (list.length !== vfs.length) problems.push(`${pf.ifname}: ${list.length} VFs, want ${vfs.length}`);
  vfs.forEach((want, i) => {
    const e = list.find((v) => v.vf === i);
    if (!e) return;
    const vlan = e.vlan_list?.[0]?.vlan ?? 0;
    if (e.address !== want.mac) problems.push(`${pf.ifname} vf ${i}: mac ${e.address}, want ${want.mac}`);
    if (vlan !== want.vlan) problems.push(`${pf.ifname} vf ${i}: vlan ${vlan}, want ${want.vlan}`);
    if (e.spoofchk !== want.spoofCheck) problems.push(`${pf.ifname} vf ${i}: spoofchk ${e.spoofchk}`);
    if (e.trust !== want.trust) problems.push(`${pf.ifname} vf ${i}: trust ${e.trust}`);
  });
  const info = await vm.exec(`virsh -c qemu:///system net-info ${network}`);
  if (info.code !== 0) problems.push(`network ${network}: ${info.stderr.trim()}`);
  else {
    if (!/Active:\s+yes/.test(info.stdout)) problems.push(`network ${network} is not active`);
    if (!/Autostart:\s+yes/.test(info.stdout)) problems.push(`network ${network} does not autostart`);
  }
  if (opts.kernelArgs) {
    const r = await vm.exec("grep -c '^[[:space:]]*linux[[:space:]].*iommu=pt' /boot/grub/grub.cfg");
    if (r.stdout.trim() === "0" || r.code > 1) problems.push("/boot/grub/grub.cfg boots no kernel with iommu=pt");
  }
  return problems;
}
