// plan(facts, detection, wanted arguments, what we changed before) → the
// operations that bring the host's boot configuration there. Applying
// starts from the user's configuration as it was before our earlier changes
// (undo, then apply), so an update never stacks on itself and delete is the
// same plan with nothing wanted. The operation list is what is logged and
// what the executor runs.
import type { Plan as HostPlan } from "../../host";
import { planOf, refusal, refuseIfProblems } from "../../host";
import { hasEffect, sameArg, splitCmdline } from "./cmdline";
import { Detection } from "./detect";
import { Facts, KERNEL_CMDLINE, LIB_KERNEL_CMDLINE } from "./facts";
import { applyGrub, GRUB_DROPIN_DIR, GRUB_MAIN, grubCmdline, LINUX, LINUX_DEFAULT, undoGrub } from "./grub";
import { grubbyArgv, planKernels, undoKernels } from "./grubby";
import { applyPlain, undoPlain } from "./plainfile";
import { parseShellFile, wordTokens } from "./shellvars";
import { Edit, emptyRestore, KernelEdit, Restore } from "./restore";

export type Op =
  | { kind: "write"; path: string; content: string; previous: string | null; description: string }
  | { kind: "remove"; path: string; previous: string; description: string }
  | {
      kind: "run";
      argv: string[];
      description: string;
      /** A file the command rewrites: kept before it runs, put back if a later step fails. */
      rewrites?: string;
      /** How to undo once the files are restored: run it again, or run another command. */
      rollback?: "rerun" | string[];
    }
  | {
      kind: "verify";
      description: string;
      check: "grubCfg" | "grubby" | "loaderEntries";
      path?: string;
      /** loaderEntries: the kernel versions whose entries are checked. */
      versions?: string[];
      present: string[];
      absent: string[];
    };

/** The shared plan result, with the record of what it changes (to undo it later). */
export interface Plan extends HostPlan<Op> {
  restore: Restore;
  /** The file that carries the arguments. */
  configPath: string;
  /** The kernel arguments the boot configuration gives the default entry once the plan ran. */
  configured: string[];
}

export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlanError";
  }
}

function refused(reason: string): Plan {
  return { ...refusal<Op>(reason), restore: emptyRestore(), configPath: "", configured: [] };
}

/** Raises a plan's problems as the PlanError IommuKernelArgs has always raised. */
export function refuseIfPlanError(p: Plan, host: string): void {
  refuseIfProblems(p, host, (problems) => new PlanError(problems.join("\n")));
}

const isGrubFile = (p: string) => p === GRUB_MAIN || p.startsWith(GRUB_DROPIN_DIR + "/");

/** The kernel arguments a file assigns (GRUB variables, or a plain command-line file). */
function argsIn(path: string, text: string | null): string[] {
  if (text === null) return [];
  if (!isGrubFile(path)) return splitCmdline(text);
  try {
    return parseShellFile(text)
      .assignments.filter((a) => a.variable === LINUX || a.variable === LINUX_DEFAULT)
      .flatMap((a) => wordTokens(a.word).filter((t) => !t.reference).map((t) => t.text));
  } catch {
    return [];
  }
}

/** Multiset difference: what `b` has that `a` has not. */
function minus(b: readonly string[], a: readonly string[]): string[] {
  const rest = [...a];
  return b.filter((x) => {
    const i = rest.indexOf(x);
    if (i < 0) return true;
    rest.splice(i, 1);
    return false;
  });
}

/** " (adds …; removes …)": the arguments a file change adds and removes. */
function describeChange(path: string, before: string | null, after: string | null): string {
  const b = argsIn(path, before);
  const a = argsIn(path, after);
  const parts = [];
  const added = minus(a, b);
  const removed = minus(b, a);
  if (added.length) parts.push(`adds ${added.join(" ")}`);
  if (removed.length) parts.push(`removes ${removed.join(" ")}`);
  return parts.length ? ` (${parts.join("; ")})` : "";
}

/** Write / remove operations taking `current` to `target`. */
function fileOps(current: Record<string, string | null>, target: Record<string, string | null>, note: (path: string) => string | undefined = () => undefined): Op[] {
  const ops: Op[] = [];
  for (const path of [...new Set([...Object.keys(current), ...Object.keys(target)])].sort()) {
    const cur = current[path] ?? null;
    const want = target[path] ?? null;
    if (cur === want) continue;
    const why = note(path) ?? describeChange(path, cur, want);
    if (want === null) ops.push({ kind: "remove", path, previous: cur!, description: `remove ${path}${why}` });
    else ops.push({ kind: "write", path, content: want, previous: cur, description: `${cur === null ? "create" : "write"} ${path}${why}` });
  }
  return ops;
}

/** "intel_iommu=on iommu=pt, without hugepages=16" for verify steps. */
function expectation(present: readonly string[], absent: readonly string[]): string {
  const parts = [];
  if (present.length) parts.push(`with ${present.join(" ")}`);
  if (absent.length) parts.push(`without ${absent.join(" ")}`);
  return parts.join(", ") || "as configured";
}

/** Arguments we set before that the new configuration no longer has the effect of. */
function dropped(previous: readonly string[], configured: readonly string[]): string[] {
  return previous.filter((a) => !hasEffect(configured, a));
}

/**
 * Whether a generated entry boots the wanted arguments, the user's arguments
 * put back as written, and none of `absent`. (Only arguments we know the
 * text of: the files may hold references GRUB expands.)
 */
function entryBoots(entry: readonly string[], wanted: readonly string[], putBack: readonly string[], absent: readonly string[]): boolean {
  return wanted.every((w) => hasEffect(entry, w)) && minus(putBack, entry).length === 0 && !absent.some((x) => hasEffect(entry, x));
}

/** A seed for a new /etc/kernel/cmdline: what kernel-install uses when the file is missing. */
export function kernelCmdlineSeed(f: Facts): string {
  const lib = f.files[LIB_KERNEL_CMDLINE];
  if (lib != null) return lib.endsWith("\n") ? lib : lib + "\n";
  const args = splitCmdline(f.cmdline).filter((a) => !/^(BOOT_IMAGE|initrd)=/.test(a));
  return args.join(" ") + "\n";
}

function planGrub(f: Facts, det: Detection, wanted: readonly string[], prior: Restore, previous: readonly string[]): Plan {
  const current: Record<string, string | null> = {};
  for (const [p, t] of Object.entries(f.files)) if (isGrubFile(p)) current[p] = t;
  const base = undoGrub(
    current,
    prior.edits.filter((e) => isGrubFile(e.path)),
    prior.created.filter(isGrubFile),
  );
  const a = applyGrub({ files: base, readsDropins: f.grubReadsDropins }, wanted);
  const target = { ...base, ...a.changes };
  const ops = fileOps(current, target);
  // The files may already be right while grub.cfg is not: a run cut off
  // between writing them and regenerating.
  const entry = f.grubCfgs.find((c) => c.path === det.grubCfg)?.firstEntry;
  const putBack = prior.edits.flatMap((e) => e.removed).filter((r) => a.cmdline.includes(r));
  const stale = entry !== undefined && !entryBoots(entry, wanted, putBack, dropped(previous, a.cmdline));
  if (ops.length || stale) {
    const [regen, ...more] = det.regenerate;
    const why = ops.length ? "" : ` (its first entry boots "${entry!.join(" ")}", not what ${Object.keys(target).filter((p) => target[p] !== null).join(", ")} say)`;
    ops.push({ kind: "run", argv: regen, description: `regenerate ${det.grubCfg}${why}: ${regen.join(" ")}`, rewrites: det.grubCfg });
    for (const m of more) ops.push({ kind: "run", argv: m, description: `copy to the boot partitions: ${m.join(" ")}`, rollback: "rerun" });
    if (det.scriptCheck) ops.push({ kind: "run", argv: det.scriptCheck, description: `check ${det.grubCfg}: ${det.scriptCheck.join(" ")}` });
    const absent = dropped(previous, a.cmdline);
    ops.push({
      kind: "verify",
      check: "grubCfg",
      path: det.grubCfg,
      present: [...wanted],
      absent,
      description: `check that the first entry of ${det.grubCfg} boots ${expectation(wanted, absent)}`,
    });
  }
  return { ...planOf(ops), restore: { edits: a.edits, created: a.created, kernels: [] }, configPath: a.configPath, configured: a.cmdline };
}

/** /etc/kernel/cmdline: undo our earlier edit, then apply. `create` allows seeding a missing file. */
function planCmdlineFile(f: Facts, wanted: readonly string[], prior: Restore, create: boolean) {
  const cur = f.files[KERNEL_CMDLINE] ?? null;
  const priorEdit = prior.edits.find((e) => e.path === KERNEL_CMDLINE);
  const base = prior.created.includes(KERNEL_CMDLINE) ? null : cur !== null && priorEdit ? undoPlain(cur, priorEdit) : cur;
  let target: string | null;
  const edits: Edit[] = [];
  const created: string[] = [];
  if (base === null) {
    if (!create || wanted.length === 0) target = null;
    else {
      target = applyPlain(KERNEL_CMDLINE, kernelCmdlineSeed(f), wanted).text;
      created.push(KERNEL_CMDLINE);
    }
  } else {
    const r = applyPlain(KERNEL_CMDLINE, base, wanted);
    target = r.text;
    if (r.edit) edits.push(r.edit);
  }
  const configured = splitCmdline(target ?? (create ? kernelCmdlineSeed(f) : ""));
  const ops = fileOps({ [KERNEL_CMDLINE]: cur }, { [KERNEL_CMDLINE]: target }, () =>
    created.length ? ` (the running kernel's arguments, as kernel-install uses without the file, plus ${wanted.join(" ")})` : undefined,
  );
  return { ops, edits, created, configured };
}

function planKernelInstall(f: Facts, det: Detection, wanted: readonly string[], prior: Restore, previous: readonly string[]): Plan {
  const c = planCmdlineFile(f, wanted, prior, det.mode === "kernel-install");
  if (det.mode === "proxmox-cmdline" && f.files[KERNEL_CMDLINE] == null && wanted.length)
    return refused(`proxmox-boot-tool keeps the boot partitions but ${KERNEL_CMDLINE} is missing; it must hold the whole kernel command line (root=…)`);
  const ops = c.ops;
  if (ops.length) {
    for (const argv of det.regenerate)
      ops.push({ kind: "run", argv, description: `regenerate boot entries: ${argv.join(" ")}`, rollback: "rerun" });
    if (det.mode === "kernel-install" && f.bootPath) {
      const absent = dropped(previous, c.configured);
      ops.push({
        kind: "verify",
        check: "loaderEntries",
        path: f.bootPath,
        versions: f.kernels.map((k) => k.version),
        present: [...wanted],
        absent,
        description: `check that the boot entries under ${f.bootPath}/loader/entries boot ${expectation(wanted, absent)}`,
      });
    }
  }
  return { ...planOf(ops), restore: { edits: c.edits, created: c.created, kernels: [] }, configPath: KERNEL_CMDLINE, configured: c.configured };
}

function planGrubby(f: Facts, wanted: readonly string[], prior: Restore, previous: readonly string[]): Plan {
  const ops: Op[] = [];
  const restore = emptyRestore();
  // Future kernels: /etc/kernel/cmdline (if the system has one) and GRUB_CMDLINE_LINUX.
  if (f.files[KERNEL_CMDLINE] != null || prior.edits.some((e) => e.path === KERNEL_CMDLINE)) {
    const c = planCmdlineFile(f, wanted, prior, false);
    ops.push(...c.ops);
    restore.edits.push(...c.edits);
  }
  if (f.files[GRUB_MAIN] != null) {
    const current = { [GRUB_MAIN]: f.files[GRUB_MAIN] };
    const base = undoGrub(current, prior.edits.filter((e) => e.path === GRUB_MAIN), []);
    const a = applyGrub({ files: base, readsDropins: false }, wanted);
    ops.push(...fileOps(current, { ...base, ...a.changes }));
    restore.edits.push(...a.edits);
  }
  const base = undoKernels(f.grubby, prior.kernels);
  const k = planKernels(f.grubby, base, wanted);
  for (const { step, undo } of k.steps)
    ops.push({
      kind: "run",
      argv: grubbyArgv(step),
      description: `update the boot entry of ${step.kernel}: ${[...step.add.map((a) => `+${a}`), ...step.remove.map((r) => `-${r}`)].join(" ")}`,
      rollback: grubbyArgv(undo),
    });
  restore.kernels = k.edits as KernelEdit[];
  const configured = k.target[0]?.args ?? [];
  if (ops.length) {
    const absent = dropped(previous, configured);
    ops.push({ kind: "verify", check: "grubby", present: [...wanted], absent, description: `check that every boot entry (grubby --info=ALL) boots ${expectation(wanted, absent)}` });
  }
  return { ...planOf(ops), restore, configPath: f.files[KERNEL_CMDLINE] != null ? KERNEL_CMDLINE : GRUB_MAIN, configured };
}

/**
 * The operations that make the host's boot configuration carry `wanted`
 * (nothing wanted: put back what `prior` records), and the new record.
 * `previous` are the arguments set before, checked to be gone when dropped.
 */
export function plan(f: Facts, det: Detection, wanted: readonly string[], prior: Restore, previous: readonly string[] = []): Plan {
  const touched = det.mode === "grub" ? Object.keys(f.files).filter(isGrubFile) : [KERNEL_CMDLINE, GRUB_MAIN];
  const binary = f.binaryFiles.filter((p) => touched.includes(p) || isGrubFile(p));
  if (binary.length) return refused(`${binary.join(", ")} is not valid UTF-8 text; it is left alone, so edit the kernel arguments there by hand`);
  switch (det.mode) {
    case "grub":
      return planGrub(f, det, wanted, prior, previous);
    case "kernel-install":
    case "proxmox-cmdline":
      return planKernelInstall(f, det, wanted, prior, previous);
    case "grubby":
      return planGrubby(f, wanted, prior, previous);
  }
}

/** What is wrong with arguments a verify step read back (undefined: nothing). */
export function verifyProblem(op: Extract<Op, { kind: "verify" }>, args: readonly string[], where: string): string | undefined {
  const missing = op.present.filter((a) => !hasEffect(args, a));
  const stale = op.absent.filter((a) => hasEffect(args, a));
  if (!missing.length && !stale.length) return undefined;
  return `${where} boots with "${args.join(" ")}"${missing.length ? `, without ${missing.join(" ")}` : ""}${stale.length ? `, still with ${stale.join(" ")}` : ""}`;
}

/** Whether the running kernel lacks the effect of any wanted argument. */
export function rebootRequired(cmdline: string, wanted: readonly string[]): boolean {
  const running = splitCmdline(cmdline);
  return wanted.some((w) => !hasEffect(running, w));
}

/** Arguments of `list` that the running kernel has the effect of. */
export function activeOf(cmdline: string, list: readonly string[]): string[] {
  const running = splitCmdline(cmdline);
  return list.filter((a) => hasEffect(running, a) || running.some((r) => sameArg(r, a)));
}

/** The arguments the boot configuration gives the default entry as it is now. */
export function configuredNow(f: Facts, det: Detection): string[] {
  switch (det.mode) {
    case "grub": {
      const files: Record<string, string> = {};
      for (const [p, t] of Object.entries(f.files)) if (isGrubFile(p)) files[p] = t;
      return grubCmdline({ files, readsDropins: f.grubReadsDropins });
    }
    case "kernel-install":
      return splitCmdline(f.files[KERNEL_CMDLINE] ?? kernelCmdlineSeed(f));
    case "proxmox-cmdline":
      return splitCmdline(f.files[KERNEL_CMDLINE] ?? "");
    case "grubby":
      return f.grubby[0]?.args ?? [];
  }
}
