// Runs a planned list of operations on a host. The plan (pure) decides what
// to do and describes each step for an operator; this module only executes,
// in order, stopping at the first failure and saying what was and was not
// applied.
import { commandLine, HostCommandError, PartialApplyError, RemoteHost } from "../host";
import type { CommandResult } from "../host";

export interface Operation {
  /** What the step does, for an operator ("start network pool0"). */
  description: string;
  argv: string[];
  /** Fed to the command's stdin (the XML for virsh net-define, attach-device…). */
  stdin?: string;
  /** The command as messages show it, when argv is a wrapper. */
  shown?: string;
  /** Turns a failure into an explanation (libvirt's message plus context); the command and exit code are added. */
  explain?: (r: CommandResult) => string;
}

export function describe(ops: readonly Operation[]): string[] {
  return ops.map((o) => o.description);
}

function failure(host: RemoteHost, op: Operation, r: CommandResult): HostCommandError {
  const what = op.explain ? op.explain(r) : op.description;
  return new HostCommandError(host.name, op.shown ?? commandLine(op.argv), r.code, r.stdout, r.stderr, what);
}

/**
 * Runs operations in order. Consecutive steps without stdin go in one round
 * trip (stopping at the first failure); a step with stdin runs on its own.
 * A failure after some steps succeeded is a PartialApplyError listing both.
 */
export async function execute(host: RemoteHost, ops: readonly Operation[]): Promise<void> {
  const done: string[] = [];
  let i = 0;
  while (i < ops.length) {
    let group: Operation[];
    let results: CommandResult[];
    if (ops[i].stdin !== undefined) {
      group = [ops[i]];
      results = [await host.run(ops[i].argv, { stdin: ops[i].stdin, allowFail: true })];
    } else {
      let j = i;
      while (j < ops.length && ops[j].stdin === undefined) j++;
      group = ops.slice(i, j);
      results = await host.batch(
        group.map((o) => o.argv),
        { stopOnError: true },
      );
    }
    for (let k = 0; k < group.length; k++) {
      const r = results[k];
      if (r.code === 0) {
        done.push(group[k].description);
        continue;
      }
      const err = failure(host, group[k], r);
      if (done.length === 0) throw err;
      throw new PartialApplyError(host.name, done, describe(ops.slice(i + k)), err);
    }
    i += group.length;
  }
}
