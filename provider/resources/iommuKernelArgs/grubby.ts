// grub2-bls (RHEL, Fedora, CentOS): each kernel's boot entry carries its own
// arguments, changed with grubby. Parsing `grubby --info=ALL` and planning
// per-kernel --args / --remove-args so that only owned keys change.
import { argKey, conflicts, isMultiValued, missingArgs, sameArg, splitCmdline } from "./cmdline";
import { KernelEdit } from "./restore";

export interface KernelEntry {
  kernel: string;
  args: string[];
}

/** Parses `grubby --info=ALL`: blocks of key="value" lines, one per entry. */
export function parseGrubbyInfo(out: string): KernelEntry[] {
  const entries: KernelEntry[] = [];
  let cur: { kernel?: string; args?: string } = {};
  const flush = () => {
    if (cur.kernel) entries.push({ kernel: cur.kernel, args: splitCmdline(cur.args ?? "") });
    cur = {};
  };
  for (const line of out.split("\n")) {
    const m = /^(\w+)=(?:"(.*)"|(.*))$/.exec(line.trim());
    if (!m) continue;
    const [, key, quoted, plain] = m;
    const value = quoted ?? plain ?? "";
    if (key === "index") flush();
    if (key === "kernel") cur.kernel = value;
    if (key === "args") cur.args = value;
  }
  flush();
  // Non-Linux entries (e.g. memtest) have no kernel arguments to own.
  return entries.filter((e) => e.kernel.startsWith("/"));
}

export interface GrubbyStep {
  kernel: string;
  /** Arguments the entry gains. */
  add: string[];
  /** Arguments it loses. */
  remove: string[];
  /**
   * The user's other values of a multi-valued key being added: grubby --args
   * drops every argument with an added key first, so they are passed again.
   */
  repass: string[];
}

/** The grubby step taking one entry's arguments from `from` to `to` (undefined: nothing to do). */
export function stepBetween(kernel: string, from: readonly string[], to: readonly string[]): GrubbyStep | undefined {
  const add = to.filter((a) => !from.some((c) => sameArg(c, a)));
  const remove = from.filter((c) => !to.some((a) => sameArg(a, c)));
  if (!add.length && !remove.length) return undefined;
  const multi = new Set(add.map(argKey).filter(isMultiValued));
  const repass = to.filter((a) => multi.has(argKey(a)) && !add.includes(a));
  return { kernel, add, remove, repass };
}

/**
 * The grubby command for a step. grubby (grubby-bls) removes --remove-args
 * first (exact key=value, or every value of a bare key), then for each of
 * --args drops every argument with its key and appends --args at the end.
 */
export function grubbyArgv(s: GrubbyStep): string[] {
  const argv = ["grubby", `--update-kernel=${s.kernel}`];
  const args = [...s.repass, ...s.add];
  if (args.length) argv.push(`--args=${args.join(" ")}`);
  if (s.remove.length) argv.push(`--remove-args=${s.remove.join(" ")}`);
  return argv;
}

/** Each kernel's arguments as they were before the recorded edits. */
export function undoKernels(entries: readonly KernelEntry[], edits: readonly KernelEdit[]): KernelEntry[] {
  const allAdded = edits.flatMap((e) => e.added);
  const allRemoved = edits.flatMap((e) => e.removed);
  return entries.map((k) => {
    const rec = edits.find((e) => e.kernel === k.kernel);
    // A kernel installed since copied its arguments from one we had edited.
    const added = rec ? rec.added : allAdded;
    const removed = rec ? rec.removed : allRemoved;
    let args = [...k.args];
    for (const a of added) {
      const i = args.findIndex((x) => sameArg(x, a));
      if (i >= 0) args.splice(i, 1);
    }
    for (const r of removed) if (!args.some((x) => sameArg(x, r))) args.push(r);
    return { kernel: k.kernel, args };
  });
}

/**
 * From the kernels' original arguments (`base`) to what they should be, and
 * the grubby steps (each with its undo) from their `current` arguments to that.
 */
export function planKernels(
  current: readonly KernelEntry[],
  base: readonly KernelEntry[],
  wanted: readonly string[],
): { steps: { step: GrubbyStep; undo: GrubbyStep }[]; edits: KernelEdit[]; target: KernelEntry[] } {
  const steps: { step: GrubbyStep; undo: GrubbyStep }[] = [];
  const edits: KernelEdit[] = [];
  const target: KernelEntry[] = [];
  for (const b of base) {
    const removed = b.args.filter((a) => conflicts(a, wanted));
    const kept = b.args.filter((a) => !conflicts(a, wanted));
    const added = missingArgs(kept, wanted);
    const want = [...kept, ...added];
    target.push({ kernel: b.kernel, args: want });
    if (removed.length || added.length) edits.push({ kernel: b.kernel, added, removed });
    const cur = current.find((c) => c.kernel === b.kernel)?.args ?? [];
    const step = stepBetween(b.kernel, cur, want);
    if (step) steps.push({ step, undo: stepBetween(b.kernel, want, cur)! });
  }
  return { steps, edits, target };
}
