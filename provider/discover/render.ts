// The three forms discover prints: a report for the operator, the fleet
// program's stack configuration, and a Pulumi program. Pure.
import * as yaml from "js-yaml";
import type { Adoption, AdoptedPf, AdoptedVf, Note } from "./adopt";
import { childNames, importIds } from "../names";
import { LIBVIRT_URI } from "./libvirtUri";
import type { Check, Discovery } from "./index";

export interface Target {
  /** Name for the host in the program and the configuration. */
  name: string;
  host: string;
  port: number;
  user: string;
  hostKey?: string;
}

function vfLine(vf: AdoptedVf, driver: string): string {
  const parts = [`mac ${vf.mac ?? "-"}`];
  if (vf.vlan !== undefined) parts.push(`vlan ${vf.vlan}${vf.qos ? ` qos ${vf.qos}` : ""}`);
  if (vf.spoofCheck !== undefined) parts.push(`spoofchk ${vf.spoofCheck ? "on" : "off"}`);
  if (vf.trust !== undefined) parts.push(`trust ${vf.trust ? "on" : "off"}`);
  if (vf.maxTxRate) parts.push(`max_tx_rate ${vf.maxTxRate}`);
  parts.push(`driver ${driver || "none"}`, vf.persist ? "persistent (pulumi-sriov unit)" : "not persistent");
  return parts.join(", ");
}

function checkLines(checks: readonly Check[]): string[] {
  const busy = checks.filter((c) => c.changes.length || c.error);
  if (!busy.length) return [`pulumi up of this set-up changes nothing on the host (checked for ${checks.length} resources)`];
  return [
    "pulumi up of this set-up would still change:",
    ...busy.flatMap((c) => (c.error ? [`  ${c.resource}: ${c.error}`] : c.changes.map((l) => `  ${c.resource}: ${l}`))),
  ];
}

/** The operator's report. */
export function renderReport(t: Target, d: Discovery): string {
  const inv = d.inventory;
  const a = d.adoption;
  const lines = [`host ${inv.hostname || t.host} (${t.user}@${t.host}:${t.port})`];
  lines.push(`  IOMMU: ${inv.iommuGroups ? `on, ${inv.iommuGroups} groups` : "off (no IOMMU groups)"}; CPU ${inv.cpuVendor || "unknown"}`);
  lines.push(`  kernel command line: ${inv.cmdline}`);
  lines.push(
    `  kernel arguments: ${a.kernelArgs ? `iommu ${a.kernelArgs.iommu}, passthrough ${a.kernelArgs.passthrough}${a.kernelArgs.extraArgs ? `, extra ${a.kernelArgs.extraArgs.join(" ")}` : ""}` : "not managed"}`,
  );
  for (const pf of inv.pfs) {
    const adopted = a.pfs.find((p) => p.pciAddress === pf.pciAddress);
    const net = pf.netdevs[0];
    lines.push(
      `  PF ${pf.pciAddress} ${net ? `${net.name} ${net.mac}` : "(no interface)"} driver ${pf.driver || "none"}: ${pf.numVfs} of ${pf.totalVfs} VFs` +
        (pf.numaNode !== undefined ? `, NUMA node ${pf.numaNode}` : ""),
    );
    if (!adopted) continue;
    const how = adopted.mechanisms.map((m) => `${m.path} (${m.ours ? "pulumi-sriov" : "by hand"}, ${m.kind})`);
    lines.push(`    persistence: ${how.length ? how.join("; ") : "none"}`);
    for (const vf of pf.vfs) {
      const v = adopted.vfs.find((x) => x.index === vf.index)!;
      lines.push(`    VF ${vf.index} ${vf.pciAddress}${vf.netdev ? ` ${vf.netdev}` : ""}${vf.iommuGroup !== undefined ? ` group ${vf.iommuGroup}` : ""}: ${vfLine(v, vf.driver)}`);
    }
  }
  for (const n of a.poolNetworks) {
    lines.push(`  pool network ${n.name} on PF ${n.pf}${n.vlan !== undefined ? `, vlan ${n.vlan}` : ""}, autostart ${n.autostart ? "yes" : "no"}`);
    for (const u of n.users) lines.push(`    used by ${u.domain} (${u.state})${u.pciAddress ? `: VF ${u.pciAddress}` : ""}`);
  }
  if (a.notes.length) lines.push("  notes:", ...a.notes.map((n) => `    ${n.about}: ${n.text}`));
  lines.push(...checkLines(d.checks).map((l) => `  ${l}`));
  return lines.join("\n") + "\n";
}

/** A PF as the fleet configuration and SriovHost take it. */
function pfConfig(pf: AdoptedPf): Record<string, unknown> {
  const out: Record<string, unknown> = { pciAddress: pf.pciAddress, numVfs: pf.numVfs, persist: pf.persist };
  if (pf.autoprobe === false) out.autoprobe = false;
  if (!pf.interface) out.manageVfs = false;
  else out.vfs = pf.vfs.map((v) => ({ ...v }));
  return out;
}

/**
 * The `imports` of a SriovHost called `name` for this host: each resource
 * it will create → the id of what the host already has, so `pulumi up`
 * adopts instead of creating.
 */
export function importsOf(name: string, d: Discovery): Record<string, string> {
  const a = d.adoption;
  const imports: Record<string, string> = {};
  if (a.kernelArgs) imports[childNames.kernelArgs(name)] = importIds.kernelArgs(d.inventory.hostname);
  for (const pf of a.pfs) {
    imports[childNames.pf(name, pf.pciAddress)] = importIds.pf(pf.pciAddress);
    if (pf.interface) for (const vf of pf.vfs) imports[childNames.vf(name, pf.pciAddress, vf.index)] = importIds.vf(pf.pciAddress, vf.index);
  }
  for (const n of a.poolNetworks) imports[childNames.poolNetwork(name, n.name)] = importIds.poolNetwork(LIBVIRT_URI, n.name);
  return imports;
}

/** Everything SriovHost takes for this host, but the connection. */
export function hostArgs(name: string, d: Discovery): Record<string, unknown> {
  const a = d.adoption;
  return {
    kernelArgs: a.kernelArgs ? { ...a.kernelArgs, reboot: "never" } : false,
    pfs: a.pfs.map(pfConfig),
    poolNetworks: a.poolNetworks.map(({ users: _u, ...n }) => n),
    imports: importsOf(name, d),
  };
}

function comments(notes: readonly Note[], checks: readonly Check[], prefix: string): string {
  const lines = [...notes.map((n) => `${n.about}: ${n.text}`), ...checkLines(checks)];
  return lines.map((l) => `${prefix}${l}`).join("\n") + "\n";
}

function plainConnection(t: Target): Record<string, unknown> {
  const c: Record<string, unknown> = { host: t.host, port: t.port, user: t.user };
  if (t.hostKey) c.hostKey = t.hostKey;
  return c;
}

/** The fleet program's stack configuration (examples/fleet) for this host. */
export function renderStackConfig(t: Target, d: Discovery, project = "sriov-fleet"): string {
  const host = { name: t.name, connection: plainConnection(t), ...hostArgs(t.name, d) };
  const body = yaml.dump({ config: { [`${project}:hosts`]: [host] } }, { lineWidth: 200, noRefs: true });
  return (
    `# pulumi-sriov discover: ${t.user}@${t.host}:${t.port} as found. The SSH key is a secret:\n` +
    `#   pulumi config set --secret sshPrivateKey < <key file>\n` +
    comments(d.adoption.notes, d.checks, "# ") +
    body
  );
}

/** A Pulumi program (TypeScript) with one SriovHost for this host. */
export function renderProgram(t: Target, d: Discovery): string {
  const { kernelArgs, ...rest } = hostArgs(t.name, d);
  const args = { connection: plainConnection(t), ...(kernelArgs ? { kernelArgs } : {}), ...rest };
  const json = JSON.stringify(args, null, 2)
    .replace(/"([A-Za-z_][A-Za-z0-9_]*)":/g, "$1:")
    .replace(/\n {2}connection: \{/, '\n  connection: {\n    privateKey: config.requireSecret("sshPrivateKey"),');
  return [
    `// pulumi-sriov discover: ${t.user}@${t.host}:${t.port} as found.`,
    comments(d.adoption.notes, d.checks, "// ").trimEnd(),
    'import * as pulumi from "@pulumi/pulumi";',
    'import { SriovHost } from "pulumi-sriov";',
    "",
    "const config = new pulumi.Config();",
    `export const ${t.name.replace(/[^A-Za-z0-9_]/g, "_")} = new SriovHost(${JSON.stringify(t.name)}, ${json}).summary;`,
    "",
  ].join("\n");
}
