// SriovPf's effects beside the shared executor: reading the PF, asking
// libvirt who uses its VFs, and explaining a refused VF write.
import { Argv, commandLine, CommandResult, HostCommandError, HostError, Operation, RemoteHost } from "../../host";
import { Facts, readArgv } from "./facts";
import { parseFacts } from "./facts";
import { Selector } from "./schema";
import { explainVfWriteFailure, Op, vfWriteArgv } from "./plan";
import { findUsers, LibvirtObjects, parseUsageOutput, USAGE_SCRIPT, Users } from "./usage";

export async function readFacts(host: RemoteHost, kind: Selector, value: string, driverHint?: string): Promise<Facts> {
  const argv = readArgv(kind, value, { driverHint });
  return factsFrom(host, argv, await host.run(argv, { allowFail: true }));
}

/** The facts in the answer of `argv` (a readArgv), as readFacts fails on it. */
export function factsFrom(host: RemoteHost, argv: Argv, r: CommandResult): Facts {
  if (r.code !== 0) throw new HostCommandError(host.name, commandLine(argv), r.code, r.stdout, r.stderr, "read the PCI devices' SR-IOV state");
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

/**
 * The plan's operations as the executor runs them. A refused VF write is
 * explained from the kernel log; the old VFs were removed to write the new
 * count, so the executor tries to put them back.
 */
export function executable(ops: readonly Op[], who: string): Operation[] {
  return ops.map((op) => {
    const w = op.kind === "run" ? op.vfWrite : undefined;
    if (op.kind !== "run" || !w) return op;
    return {
      kind: "run",
      description: op.description,
      argv: op.argv,
      refusal: (r) => explainVfWriteFailure(w, who, r.stderr),
      undo:
        w.previous > 0
          ? {
              description: `put back the ${w.previous} VFs ${w.pciAddress} had before`,
              argv: vfWriteArgv(w.pciAddress, w.previous),
              failed: `putting back the ${w.previous} VFs it had before failed too`,
              settle: ["udevadm", "settle", "--timeout=60"],
            }
          : undefined,
    };
  });
}
