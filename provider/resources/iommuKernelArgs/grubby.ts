// grub2-bls (RHEL, Fedora, CentOS): each kernel's boot entry carries its own
// arguments, changed with grubby. Parsing `grubby --info=ALL` and planning
// per-kernel --args / --remove-args so that only owned keys change.
import { conflicts, missingArgs, sameArg, splitCmdline } from "./cmdline";
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
  add: string[];
  remove: string[];
}

export function grubbyArgv(s: GrubbyStep): string[] {
  const argv = ["grubby", `--update-kernel=${s.kernel}`];
  if (s.add.length) argv.push(`--args=${s.add.join(" ")}`);
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
 * the grubby steps from their `current` arguments to that.
 */
export function planKernels(
  current: readonly KernelEntry[],
  base: readonly KernelEntry[],
  wanted: readonly string[],
): { steps: GrubbyStep[]; edits: KernelEdit[]; target: KernelEntry[] } {
  const steps: GrubbyStep[] = [];
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
    const add = want.filter((a) => !cur.some((c) => sameArg(c, a)));
    const remove = cur.filter((c) => !want.some((a) => sameArg(a, c)));
    if (add.length || remove.length) steps.push({ kernel: b.kernel, add, remove });
  }
  return { steps, edits, target };
}
