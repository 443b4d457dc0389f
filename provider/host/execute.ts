// The one executor: runs a plan's operations on a host, in order, and
// reports a failure the same way for every resource.
//
// - Consecutive commands without stdin go in one host.batch round trip that
//   stops at the first failure; a command with stdin runs on its own.
// - Files are written atomically or removed (with a backup); a small file's
//   content travels in its command, so the write joins the batch too.
// - A failure is the bare cause when nothing was applied and nothing undone,
//   otherwise a PartialApplyError listing what was and was not applied.
// - Undo steps run on a failure: the failed step's own (it may have half
//   applied), and those of applied steps that put back what they did, newest
//   first; regenerations (afterRestores) last, in plan order, once the files
//   they derive from are back. What they put back is listed as applied.
import { HostCommandError, HostError, PartialApplyError, Undone } from "./errors";
import type { Argv, CommandResult, RemoteHost } from "./host";
import { quiet, Log } from "./log";
import { BACKUP_DIR, removeFileArgv, writeFileCommand } from "./host";
import { commandLine, shScript } from "./quote";
import { loadScript } from "../scripts";

const RESTORE_FILE = loadScript("restore-file");
const KEEP_FILE = loadScript("keep-file");

/** Puts back what a failed step (with the steps it depends on) took away. */
export interface Undo {
  /** Listed as applied when it worked ("put back the 4 VFs … had before"). */
  description: string;
  argv: string[];
  /** Added to the failure when putting back failed too. */
  failed: string;
  /** Run after a successful undo; its own failure is ignored (e.g. waiting for udev). */
  settle?: Argv;
  /**
   * When it runs: this step failed ("failed", the default: it may have half
   * applied), a later step failed ("later": it was applied), or either ("any").
   */
  on?: "failed" | "later" | "any";
  /**
   * A step that derives output from files earlier steps changed (update-grub,
   * kernel-install): undone after the others, in plan order, by putting its
   * output back or running it again once those files are back.
   */
  afterRestores?: boolean;
}

/**
 * Puts a file back as it was before this run changed it, from the copy
 * host.writeFile / removeFile kept under BACKUP_DIR (atomically, mode and
 * owner kept); a file that did not exist is removed.
 */
export function restoreFromBackup(path: string, existed: boolean, description = `${existed ? "restored" : "removed"} ${path}`): Undo {
  return { description, argv: shScript(RESTORE_FILE, path, existed ? BACKUP_DIR + path : ""), failed: description, on: "later" };
}

/** Runs `argv` after copying `path` under BACKUP_DIR, so that restoreFromBackup can put it back. */
export function keepingCopy(path: string, argv: readonly string[]): string[] {
  return shScript(KEEP_FILE, path, BACKUP_DIR + path, ...argv);
}

/** A command step. */
export interface Command {
  /** A command (the default kind). */
  kind?: "run";
  /** What the step does, for an operator ("start network pool0"). */
  description: string;
  argv: string[];
  /** Fed to the command's stdin (the XML for virsh net-define, attach-device…). */
  stdin?: string;
  /** The command as messages show it, when argv is a wrapper. */
  shown?: string;
  /** Turns a failure into what the step was about; the command, exit code and stderr are added. */
  explain?: (r: CommandResult) => string;
  /** Turns a failure into the whole explanation (a driver's refusal); used instead of the command's output. */
  refusal?: (r: CommandResult) => string;
  /** Reads its output once it exited 0: a problem returned fails the step (the whole message, as a HostError). */
  check?: (r: CommandResult) => string | undefined;
  /** Run when this step fails, or when a later one does (see Undo.on). */
  undo?: Undo;
  /**
   * `argv` is `prefix` + `words`: consecutive steps with the same prefix run
   * as one command with all their words (`ip link set dev X vf 0 vlan 100 mac
   * …`: one process, one netlink request). If that fails they run again one
   * by one, so the failure names the step that was refused.
   */
  joins?: { prefix: readonly string[]; words: readonly string[] };
}

export type Operation =
  | Command
  | { kind: "write"; description: string; path: string; content: string; undo?: Undo }
  | { kind: "remove"; description: string; path: string; undo?: Undo };

/**
 * What a resource's plan decides: the operations an up would run, or why it
 * must not run (problems), plus what the operator should know (warnings).
 * A plan with problems runs nothing.
 */
export interface Plan<O extends { description: string } = Operation> {
  ops: O[];
  problems: string[];
  warnings: string[];
}

/** A plan that runs `ops`. */
export function planOf<O extends { description: string }>(ops: O[], warnings: string[] = []): Plan<O> {
  return { ops, problems: [], warnings };
}

/** A plan that refuses, for these reasons. */
export function refusal<O extends { description: string } = Operation>(...problems: string[]): Plan<O> {
  return { ops: [], problems, warnings: [] };
}

/** Preview's host-change lines for a plan: `refused: <reason>` per problem, else the operations, then warnings. */
export function previewOf(plan: Plan<{ description: string }>): string[] {
  if (plan.problems.length) return plan.problems.map((x) => `refused: ${x}`);
  return [...describe(plan.ops), ...plan.warnings.map((w) => `warning: ${w}`)];
}

/**
 * Throws the resource's refusal when the plan has problems. `toError` makes
 * the error the resource has always raised (HostError, InputError…); by
 * default a HostError on `hostName` with the problems joined by "; ".
 */
export function refuseIfProblems(plan: Plan<{ description: string }>, hostName: string, toError?: (problems: string[]) => Error): void {
  if (!plan.problems.length) return;
  throw toError ? toError(plan.problems) : new HostError(hostName, plan.problems.join("; "));
}

/** The descriptions of operations, as preview and errors list them. */
export function describe(ops: readonly { description: string }[]): string[] {
  return ops.map((o) => o.description);
}

// Errors execute threw before anything was applied (the host is as it was).
const untouched = new WeakSet<object>();

// What the undo steps did, for every step failure execute threw.
const undoReports = new WeakMap<object, Undone>();

/** What the undo steps did after the step failure `e` (also when it was thrown bare). */
export function undoReport(e: unknown): Undone | undefined {
  return typeof e === "object" && e !== null ? undoReports.get(e) : undefined;
}

/** Whether `e` is a step failure from execute that left the host unchanged. */
export function failedBeforeAnyChange(e: unknown): boolean {
  return typeof e === "object" && e !== null && untouched.has(e);
}

/** Command-line bytes of one batch (Linux takes at most 128 KiB in one argument). */
const BATCH_MAX = 96 * 1024;

/** A command as the executor runs it; a file step keeps its own failure message. */
type Run = Command & { file?: { verb: "write" | "remove"; path: string } };

/** Whether `b` can take `a`'s words into one command line (see Command.joins). */
function sameJoin(a: Run, b: Run): boolean {
  const p = a.joins?.prefix;
  const q = b.joins?.prefix;
  return !!p && !!q && !a.check && !a.undo && !b.check && !b.undo && p.length === q.length && p.every((w, i) => w === q[i]);
}

/** The group's steps as command lines: neighbours that share a prefix become one. */
function joinUnits(group: readonly Run[]): Run[][] {
  const units: Run[][] = [];
  for (const g of group) {
    const last = units[units.length - 1];
    if (last && sameJoin(last[last.length - 1], g)) last.push(g);
    else units.push([g]);
  }
  return units;
}

/**
 * Runs a group of steps in one round trip with neighbours joined, one result
 * per step. A joined command that fails runs again as its steps, so each gets
 * its own result; if they all go through alone, the rest of the group runs.
 */
async function runGroup(host: RemoteHost, group: readonly Run[]): Promise<CommandResult[]> {
  if (group.length === 0) return [];
  const units = joinUnits(group);
  const out = await host.batch(
    units.map((u) => (u.length === 1 ? u[0].argv : [...u[0].joins!.prefix, ...u.flatMap((g) => g.joins!.words)])),
    { stopOnError: true },
  );
  const results: CommandResult[] = [];
  for (let k = 0; k < units.length; k++) {
    const u = units[k];
    const r = out[k];
    if (u.length === 1 || r.code === 0 || r.code === null) {
      results.push(...u.map(() => r));
      continue;
    }
    const alone = await host.batch(u.map((g) => g.argv), { stopOnError: true });
    results.push(...alone);
    if (alone.every((x) => x.code === 0)) results.push(...(await runGroup(host, units.slice(k + 1).flat())));
    while (results.length < group.length) results.push({ code: null, stdout: "", stderr: "" });
    return results;
  }
  return results;
}

/** A step as a command: file steps become their write or remove command, with stdin for large content. */
function asRun(op: Operation): Run {
  if (op.kind === "write") {
    const w = writeFileCommand(op.path, op.content);
    return { description: op.description, argv: w.argv, stdin: w.stdin, undo: op.undo, file: { verb: "write", path: op.path } };
  }
  if (op.kind === "remove") return { description: op.description, argv: removeFileArgv(op.path), undo: op.undo, file: { verb: "remove", path: op.path } };
  return op;
}

function failure(host: RemoteHost, op: Run, r: CommandResult, note?: string): Error {
  const more = note ? `\n${note}` : "";
  // A file step fails as host.writeFile / removeFile do.
  if (op.file?.verb === "write") return new HostCommandError(host.name, `write ${op.file.path}`, r.code, r.stdout, r.stderr);
  if (op.file?.verb === "remove") return new HostCommandError(host.name, commandLine(op.argv), r.code, r.stdout, r.stderr, `remove ${op.file.path}`);
  if (op.refusal) return new HostError(host.name, op.refusal(r) + more);
  const what = (op.explain ? op.explain(r) : op.description) + more;
  return new HostCommandError(host.name, op.shown ?? commandLine(op.argv), r.code, r.stdout, r.stderr, what);
}

/** Runs one undo; returns what it put back, or a note for the message. */
async function runUndo(host: RemoteHost, undo: Undo): Promise<{ done?: string; note?: string }> {
  let back: CommandResult;
  try {
    back = await host.run(undo.argv, { allowFail: true });
  } catch (e) {
    return { note: `${undo.failed}: ${(e as Error).message}` };
  }
  if (back.code !== 0) return { note: `${undo.failed}: ${back.stderr.trim()}` };
  if (undo.settle) await host.run(undo.settle, { allowFail: true });
  return { done: undo.description };
}

/** The undos a failure of ops[failed] runs, in the order they run. */
function undosFor(ops: readonly Operation[], failed: number): Undo[] {
  const due: Undo[] = [];
  ops.forEach((op, i) => {
    const u = op.undo;
    if (!u || i > failed) return;
    const on = u.on ?? "failed";
    if (i === failed ? on !== "later" : on !== "failed") due.push(u);
  });
  return [...due.filter((u) => !u.afterRestores).reverse(), ...due.filter((u) => u.afterRestores)];
}

async function undoAll(host: RemoteHost, undos: readonly Undo[]): Promise<{ done: string[]; notes: string[] }> {
  const done: string[] = [];
  const notes: string[] = [];
  for (const u of undos) {
    const r = await runUndo(host, u);
    if (r.done) done.push(r.done);
    if (r.note) notes.push(r.note);
  }
  return { done, notes };
}

/**
 * Runs the operations. `readBack`, a read-only command, runs in the same
 * round trip as the last of them once all went through (its result is
 * returned, whatever its exit code): the resource's read of what it applied
 * costs no round trip of its own.
 */
export async function execute(host: RemoteHost, ops: readonly Operation[], log: Log = quiet, opts: { readBack?: Argv } = {}): Promise<CommandResult | undefined> {
  const applied: string[] = [];
  // Undoes what is due, then throws: the bare cause when nothing was applied or undone.
  const fail = async (i: number, cause: (note?: string) => Error): Promise<never> => {
    const undone = await undoAll(host, undosFor(ops, i));
    const note = undone.notes.length ? undone.notes.join("\n") : undefined;
    const err = cause(note);
    const all = [...applied, ...undone.done];
    const report: Undone = { done: undone.done, failed: undone.notes, cause: cause() };
    if (all.length === 0) {
      untouched.add(err);
      undoReports.set(err, report);
      throw err;
    }
    const partial = new PartialApplyError(host.name, all, describe(ops.slice(i)), err, report);
    undoReports.set(partial, report);
    throw partial;
  };
  const runs = ops.map(asRun);
  // The read-back rides along as a last step that is not an operation.
  if (opts.readBack) runs.push({ description: "", argv: [...opts.readBack] });
  let readBack: CommandResult | undefined;
  let i = 0;
  while (i < runs.length) {
    const op = runs[i];
    let group: Run[];
    let results: CommandResult[];
    if (op.stdin !== undefined) {
      group = [op];
      log(op.description);
      results = [await host.run(op.argv, { stdin: op.stdin, allowFail: true })];
    } else {
      // A checked step ends its round trip: what follows must not run if the check fails.
      // The batch is one command line on the host, which Linux caps at 128 KiB.
      let j = i;
      let size = commandLine(op.argv).length;
      const fits = (r: Run) => (size += commandLine(r.argv).length) <= BATCH_MAX;
      while (j < runs.length && runs[j].stdin === undefined && (j === i || (!runs[j - 1].check && fits(runs[j])))) j++;
      group = runs.slice(i, j);
      for (const g of group) if (g.description) log(g.description);
      results = await runGroup(host, group);
    }
    for (let k = 0; k < group.length; k++) {
      const r = results[k];
      if (i + k === ops.length) {
        readBack = r;
        continue;
      }
      const problem = r.code === 0 ? group[k].check?.(r) : undefined;
      if (r.code === 0 && problem === undefined) {
        applied.push(group[k].description);
        continue;
      }
      await fail(i + k, (note) => (problem !== undefined ? new HostError(host.name, problem + (note ? `\n${note}` : "")) : failure(host, group[k], r, note)));
    }
    i += group.length;
  }
  return readBack;
}
