// What the resource changed on a host, kept in state so that delete puts
// back exactly what was there.

/** One edited value: an assignment in a sourced shell file, or a whole plain file. */
export interface Edit {
  path: string;
  /** The shell variable whose assignment was edited; absent for a whole-file edit. */
  variable?: string;
  /** Which assignment of that variable in the file (0-based). */
  occurrence?: number;
  /** Raw text before and after (the assigned word, or the whole file). */
  before: string;
  after: string;
  /** Arguments the resource wrote here. */
  added: string[];
  /** The user's arguments it replaced here (put back on delete). */
  removed: string[];
}

/** Arguments changed on one kernel's boot entry by grubby. */
export interface KernelEdit {
  kernel: string;
  added: string[];
  removed: string[];
}

export interface Restore {
  edits: Edit[];
  /** Files that did not exist before and are removed on delete. */
  created: string[];
  kernels: KernelEdit[];
}

export function emptyRestore(): Restore {
  return { edits: [], created: [], kernels: [] };
}

/** The replaced arguments, for operators: "intel_iommu=off (/etc/default/grub GRUB_CMDLINE_LINUX_DEFAULT)". */
export function describeReplaced(r: Restore): string[] {
  const out: string[] = [];
  for (const e of r.edits) for (const a of e.removed) out.push(`${a} (${e.path}${e.variable ? ` ${e.variable}` : ""})`);
  for (const k of r.kernels) for (const a of k.removed) out.push(`${a} (grubby entry ${k.kernel})`);
  return out;
}

/** A Restore from state, tolerating older or partial shapes. */
export function restoreFrom(v: unknown): Restore {
  const r = (v ?? {}) as Partial<Restore>;
  return { edits: r.edits ?? [], created: r.created ?? [], kernels: r.kernels ?? [] };
}
