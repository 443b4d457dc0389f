// Text rendering of local deployments, in the shape of `pulumi preview --diff`
// and `pulumi up`: one block per resource with its inputs (create) or the
// changed inputs (update / replace), secrets masked, `__provider` hidden.
import * as engine from "../../test/support/engine";
import type { SriovHostSummary } from "../../sdk";
import type { Deployment, Op, Step, StepEvent } from "./local-engine";

const SIGN: Record<Op, string> = { create: "+", update: "~", replace: "+-", same: " ", delete: "-" };
const VERB: Record<Op, [string, string]> = {
  create: ["creating", "created"],
  update: ["updating", "updated"],
  replace: ["replacing", "replaced"],
  same: ["checking", "unchanged"],
  delete: ["deleting", "deleted"],
};

/** A value as the engine displays it: secrets as [secret], JSON otherwise. */
export function showValue(v: any): string {
  if (engine.isSecret(v)) return "[secret]";
  if (v === engine.UNKNOWN) return "output<unknown>";
  if (Array.isArray(v)) return v.length === 0 ? "[]" : `[${v.map(showValue).join(", ")}]`;
  if (v && typeof v === "object") {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
    return keys.length === 0 ? "{}" : `{ ${keys.map((k) => `${k}: ${showValue(v[k])}`).join(", ")} }`;
  }
  return JSON.stringify(v);
}

function shortType(type: string): string {
  return type.replace(/^pulumi-nodejs:dynamic\/sriov:/, "sriov:");
}

function properties(props: Record<string, any>, indent: string, mark = ""): string[] {
  const keys = Object.keys(props)
    .filter((k) => k !== engine.PROVIDER_KEY && props[k] !== undefined)
    .sort();
  const width = Math.max(0, ...keys.map((k) => k.length));
  return keys.map((k) => `${indent}${mark}${k.padEnd(width)}: ${showValue(props[k])}`);
}

/** The input the providers add in check: what applying would change on the host, one line per operation. */
export const HOST_CHANGES = "hostChanges";

function hostChangeLines(v: unknown, indentBy: string): string[] {
  if (!Array.isArray(v)) return [];
  if (v.length === 0) return [`${indentBy}host changes: none`];
  return [`${indentBy}host changes:`, ...v.map((c) => `${indentBy}  - ${engine.isSecret(c) ? "[secret]" : String(c)}`)];
}

/** One resource's block in `pulumi preview --diff` style, with the host changes listed last. */
export function formatStep(step: Step): string[] {
  const head = `  ${SIGN[step.op].padEnd(2)} ${shortType(step.type)} ${step.name}: (${step.op})`;
  const lines = [head];
  const { [HOST_CHANGES]: hostChanges, ...inputs } = step.inputs;
  switch (step.op) {
    case "create":
      lines.push(...properties(inputs, "        "), ...hostChangeLines(hostChanges, "        "));
      break;
    case "update":
    case "replace": {
      const keys = step.changedKeys.filter((k) => k !== HOST_CHANGES);
      if (step.op === "replace") lines[0] += ` [diff: ${keys.map((k) => `~${k}`).join(" ")}; replaced because of: ${step.replaces.join(", ")}]`;
      const olds = step.oldInputs ?? {};
      const width = Math.max(0, ...keys.map((k) => k.length));
      for (const k of keys) {
        const forced = step.replaces.includes(k) ? "  [forces replacement]" : "";
        if (!(k in olds) || olds[k] === undefined) lines.push(`      + ${k.padEnd(width)}: ${showValue(step.inputs[k])}${forced}`);
        else if (!(k in step.inputs) || step.inputs[k] === undefined) lines.push(`      - ${k.padEnd(width)}: ${showValue(olds[k])}${forced}`);
        else lines.push(`      ~ ${k.padEnd(width)}: ${showValue(olds[k])} => ${showValue(step.inputs[k])}${forced}`);
      }
      lines.push(...hostChangeLines(hostChanges, "        "));
      break;
    }
    case "delete":
      lines.push(...properties(step.oldInputs ?? {}, "        ", ""));
      break;
    case "same":
      break;
  }
  return lines;
}

/** Counts of steps by operation, like the engine's "Resources:" summary. */
export function summarizeSteps(steps: Step[], preview: boolean): string {
  const n = (op: Op) => steps.filter((s) => s.op === op).length;
  const parts: string[] = [];
  if (n("create")) parts.push(`+ ${n("create")} ${preview ? "to create" : "created"}`);
  if (n("update")) parts.push(`~ ${n("update")} ${preview ? "to update" : "updated"}`);
  if (n("replace")) parts.push(`+-${n("replace")} ${preview ? "to replace" : "replaced"}`);
  if (n("delete")) parts.push(`- ${n("delete")} ${preview ? "to delete" : "deleted"}`);
  if (n("same")) parts.push(`${n("same")} unchanged`);
  return `Resources: ${parts.join(", ") || "none"}`;
}

/** The whole plan: every resource that changes, then the summary line. */
export function formatPlan(d: Deployment): string {
  const lines: string[] = [];
  for (const s of d.steps) if (s.op !== "same") lines.push(...formatStep(s), "");
  lines.push(summarizeSteps(d.steps, d.preview));
  return lines.join("\n");
}

/** A progress line for a step event (as `pulumi up` prints while it works). */
export function formatEvent(e: StepEvent): string | undefined {
  const op = (e.step.op ?? "create") as Op;
  const label = `${shortType(e.step.type)} ${e.step.name}`;
  if (e.phase === "start") return undefined;
  if (e.phase === "failed") return `  ** ${label}: failed after ${((e.step.millis ?? 0) / 1000).toFixed(1)}s\n${indent(e.error?.message ?? "", "     ")}`;
  return `  ${SIGN[op].padEnd(2)} ${label} ${VERB[op][1]} (${((e.step.millis ?? 0) / 1000).toFixed(1)}s)`;
}

function indent(s: string, by: string): string {
  return s
    .split("\n")
    .map((l) => by + l)
    .join("\n");
}

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
