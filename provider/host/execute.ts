// The one executor: runs a plan's operations on a host, in order, and
// reports a failure the same way for every resource.
//
// - Consecutive commands without stdin go in one host.batch round trip that
//   stops at the first failure; a command with stdin runs on its own.
// - Files are written atomically (host.writeFile) or removed (with a backup).
// - A failure is the bare cause when nothing was applied and nothing undone,
//   otherwise a PartialApplyError listing what was and was not applied.
import { HostCommandError, HostError, PartialApplyError } from "./errors";
import type { Argv, CommandResult, RemoteHost } from "./host";
import { quiet, Log } from "./log";
import { commandLine } from "./quote";

/** Puts back what a failed step (with the steps it depends on) took away. */
export interface Undo {
  /** Listed as applied when it worked ("put back the 4 VFs … had before"). */
  description: string;
  argv: string[];
  /** Added to the failure when putting back failed too. */
  failed: string;
  /** Run after a successful undo; its own failure is ignored (e.g. waiting for udev). */
  settle?: Argv;
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
  /** Run when this step fails. */
  undo?: Undo;
}

export type Operation =
  | Command
  | { kind: "write"; description: string; path: string; content: string }
  | { kind: "remove"; description: string; path: string };

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

/** Whether `e` is a step failure from execute that left the host unchanged. */
export function failedBeforeAnyChange(e: unknown): boolean {
  return typeof e === "object" && e !== null && untouched.has(e);
}

type Run = Command;
const isFileStep = (op: Operation) => op.kind === "write" || op.kind === "remove";

function failure(host: RemoteHost, op: Run, r: CommandResult, note?: string): Error {
  const more = note ? `\n${note}` : "";
  if (op.refusal) return new HostError(host.name, op.refusal(r) + more);
  const what = (op.explain ? op.explain(r) : op.description) + more;
  return new HostCommandError(host.name, op.shown ?? commandLine(op.argv), r.code, r.stdout, r.stderr, what);
}

/** Runs the step's undo; returns what it added to the applied list, or a note for the message. */
async function runUndo(host: RemoteHost, undo: Undo): Promise<{ done?: string; note?: string }> {
  const back = await host.run(undo.argv, { allowFail: true });
  if (back.code !== 0) return { note: `${undo.failed}: ${back.stderr.trim()}` };
  if (undo.settle) await host.run(undo.settle, { allowFail: true });
  return { done: undo.description };
}

export async function execute(host: RemoteHost, ops: readonly Operation[], log: Log = quiet): Promise<void> {
  const applied: string[] = [];
  const fail = (i: number, cause: Error): never => {
    if (applied.length === 0) {
      untouched.add(cause);
      throw cause;
    }
    throw new PartialApplyError(host.name, applied, describe(ops.slice(i)), cause);
  };
  let i = 0;
  while (i < ops.length) {
    const op = ops[i];
    if (op.kind === "write" || op.kind === "remove") {
      log(op.description);
      try {
        if (op.kind === "write") await host.writeFile(op.path, op.content);
        else await host.removeFile(op.path);
      } catch (e) {
        fail(i, e as Error);
      }
      applied.push(op.description);
      i++;
      continue;
    }
    let group: Run[];
    let results: CommandResult[];
    if (op.stdin !== undefined) {
      group = [op];
      log(op.description);
      results = [await host.run(op.argv, { stdin: op.stdin, allowFail: true })];
    } else {
      let j = i;
      while (j < ops.length && !isFileStep(ops[j]) && (ops[j] as Run).stdin === undefined) j++;
      group = ops.slice(i, j) as Run[];
      for (const g of group) log(g.description);
      results = await host.batch(
        group.map((g) => g.argv),
        { stopOnError: true },
      );
    }
    for (let k = 0; k < group.length; k++) {
      const r = results[k];
      if (r.code === 0) {
        applied.push(group[k].description);
        continue;
      }
      const undo = group[k].undo;
      const undone = undo ? await runUndo(host, undo) : {};
      if (undone.done) applied.push(undone.done);
      fail(i + k, failure(host, group[k], r, undone.note));
    }
    i += group.length;
  }
}
