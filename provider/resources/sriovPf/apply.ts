// Runs a plan's operations on a host: consecutive commands go in one round
// trip (stopping at the first failure), files are written atomically. A
// failure reports what was applied and what was not.
import { commandLine, HostCommandError, HostError, PartialApplyError, RemoteHost } from "../../host";
import { Facts, readArgv } from "./facts";
import { parseFacts } from "./facts";
import { Selector } from "./schema";
import { explainVfWriteFailure, Op, vfWriteArgv } from "./plan";
import { findUsers, LibvirtObjects, parseUsageOutput, USAGE_SCRIPT, Users } from "./usage";

export async function readFacts(host: RemoteHost, kind: Selector, value: string, driverHint?: string): Promise<Facts> {
  const r = await host.run(readArgv(kind, value, { driverHint }), { what: "read the PCI devices' SR-IOV state" });
  try {
    return parseFacts(r.stdout);
  } catch (e) {
    throw new HostError(host.name, `${(e as Error).message}\n${r.stderr.trim()}`);
  }
}

export async function libvirtObjects(host: RemoteHost, uri = "qemu:///system"): Promise<LibvirtObjects> {
  const r = await host.run(["sh", "-c", USAGE_SCRIPT, "sh", uri], { what: "list running libvirt domains and active networks" });
  return parseUsageOutput(r.stdout);
}

export async function usersOf(host: RemoteHost, facts: Facts): Promise<Users & { error?: string }> {
  const pf = facts.pf!;
  const objs = await libvirtObjects(host);
  if (objs.error) return { domains: [], networks: [], error: objs.error };
  return findUsers(pf.vfs, pf.netdevs.map((n) => n.name), objs);
}

/** How an operation reads in an error or a log line. */
export function opLine(op: Op): string {
  return op.description;
}

export async function execute(host: RemoteHost, ops: Op[], who: string, log: (line: string) => void = () => undefined): Promise<void> {
  const applied: string[] = [];
  let i = 0;
  const rest = (from: number) => ops.slice(from).map(opLine);
  while (i < ops.length) {
    const op = ops[i];
    if (op.kind !== "run") {
      try {
        log(op.description);
        if (op.kind === "write") await host.writeFile(op.path, op.content);
        else await host.removeFile(op.path);
      } catch (e) {
        throw new PartialApplyError(host.name, applied, rest(i), e as Error);
      }
      applied.push(op.description);
      i++;
      continue;
    }
    let j = i;
    while (j < ops.length && ops[j].kind === "run") j++;
    const group = ops.slice(i, j) as Extract<Op, { kind: "run" }>[];
    for (const g of group) log(g.description);
    const results = await host.batch(
      group.map((g) => g.argv),
      { stopOnError: true },
    );
    const bad = results.findIndex((r) => r.code !== 0);
    if (bad < 0) {
      applied.push(...group.map(opLine));
      i = j;
      continue;
    }
    applied.push(...group.slice(0, bad).map(opLine));
    const failed = group[bad];
    const r = results[bad];
    let cause: Error;
    if (failed.vfWrite) {
      const w = failed.vfWrite;
      let message = explainVfWriteFailure(w, who, r.stderr);
      // The old VFs were removed to write the new count: try to put them back.
      if (w.previous > 0) {
        const back = await host.run(vfWriteArgv(w.pciAddress, w.previous), { allowFail: true });
        if (back.code === 0) {
          applied.push(`put back the ${w.previous} VFs ${w.pciAddress} had before`);
          await host.run(["udevadm", "settle", "--timeout=60"], { allowFail: true });
        } else message += `\nputting back the ${w.previous} VFs it had before failed too: ${back.stderr.trim()}`;
      }
      cause = new HostError(host.name, message);
    } else {
      cause = new HostCommandError(host.name, commandLine(failed.argv), r.code, r.stdout, r.stderr, failed.description);
    }
    throw new PartialApplyError(host.name, applied, rest(i + bad), cause);
  }
}
