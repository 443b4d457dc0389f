// VirtualFunction: one VF's attributes (`ip link set <pf> vf <n> …`), its
// driver binding (default or vfio-pci through driver_override) and a systemd
// unit that re-applies both whenever the VF is re-created. Effects live here;
// facts, planning and rendering are pure modules beside it.
import type { Ctx, ResourceSpec } from "../../resource";
import { CommandResult, commandLine, execute, HostCommandError, HostError, Log, loggerFor, Operation, PartialApplyError, previewOf, refuseIfProblems, RemoteHost } from "../../host";
import { factsCommand, HostFacts, parseFacts } from "./facts";
import { observedInputs, Operation as VfOperation, outputsOf, ownMac, plan, Plan, RESET_STATE, resolve, verify, vfName } from "./plan";
import { inputsSchema, VfInputs, VfOutputs } from "./schema";
import { importIds } from "../../names";

/** Everything about the VF in one round trip. `storedPfPci` pins the PF found at create time. */
export async function readFacts(host: RemoteHost, pf: string, storedPfPci: string, index: number): Promise<HostFacts> {
  return factsFrom(host, pf, index, await host.run(factsCommand(pf, storedPfPci, index), { allowFail: true }));
}

/** The facts in the probe's answer, or what went wrong reading them. */
function factsFrom(host: RemoteHost, pf: string, index: number, r: CommandResult): HostFacts {
  const what = `probe of VF ${index} of ${pf} (sysfs, systemctl show, ip -j -d link show)`;
  if (r.code !== 0) throw new HostCommandError(host.name, what, r.code, r.stdout, r.stderr, "reading the VF");
  try {
    return parseFacts(index, r.stdout);
  } catch (e) {
    throw new HostCommandError(host.name, what, r.code, r.stdout, `${(e as Error).message}\n${r.stderr}`, "reading the VF");
  }
}

/** Why an attribute was refused, beyond what the kernel said. */
function refusal(op: Extract<VfOperation, { kind: "run" }>, facts: HostFacts, stderr: string): string {
  const pf = facts.pf!;
  let why = stderr.trim().split("\n").slice(-3).join("\n") || "no reason given";
  if ((op.attribute === "maxTxRate" || op.attribute === "minTxRate") && (pf.operstate !== "up" || pf.carrier === false))
    why += `\n(PF ${pf.netdev} is ${pf.operstate}${pf.carrier === false ? " with no carrier" : ""}; many drivers set VF rates only while the PF has a link)`;
  return `${op.attribute} = ${op.value} was refused by the ${pf.driver || "PF"} driver of PF ${pf.netdev} (${pf.pciAddress}); command ${JSON.stringify(commandLine(op.argv))}:\n${why}`;
}

/** The plan's operations as the executor runs them: an attribute the driver refuses is explained. */
export function executable(facts: HostFacts, ops: readonly VfOperation[]): Operation[] {
  return ops.map((o) =>
    o.kind !== "run" ? o : { kind: "run", description: o.description, argv: [...o.argv], joins: o.joins, refusal: o.attribute ? (r) => refusal(o, facts, r.stderr || r.stdout) : undefined },
  );
}

function log(host: RemoteHost, inputs: Pick<VfInputs, "pf" | "index">): Log {
  return loggerFor("virtualFunction", `${inputs.pf} vf ${inputs.index}`, host.name);
}

/** Refuses a plan with problems the way VirtualFunction always has: one line per problem. */
function refuseIfCannot(host: RemoteHost, facts: HostFacts, index: number, pf: string, p: Plan): void {
  const what = facts.pf ? vfName(facts, index) : `VF ${index} of ${pf}`;
  refuseIfProblems(p, host.name, (problems) => new HostError(host.name, `cannot configure ${what}:\n- ${problems.join("\n- ")}`));
}

/** Brings the VF to the inputs; runs no writes when it is there already. */
async function converge(ctx: Ctx, inputs: VfInputs, before?: { own: string; pfPci: string }): Promise<VfOutputs> {
  const host = ctx.host;
  // The VF is read in the round trip that takes the host lock.
  return host.withLock(async (first) => {
    const facts = factsFrom(host, inputs.pf, inputs.index, first!);
    const { desired, problems } = resolve(inputs, facts);
    // The name now leads to another device (NICs swapped, names reassigned):
    // changing it would leave the VF configured before as it is.
    if (before?.pfPci && facts.pf && facts.pf.pciAddress !== before.pfPci)
      problems.push(
        `pf ${inputs.pf} is now ${facts.pf.pciAddress}, but this VF was configured on the PF at ${before.pfPci}; point pf at that PF's current name, or replace this resource`,
      );
    const p = plan(facts, inputs.index, desired, { pfName: inputs.pf, ownMac: before?.own });
    p.problems.unshift(...problems);
    refuseIfCannot(host, facts, inputs.index, inputs.pf, p);
    if (p.ops.length === 0) return outputsOf(facts, inputs.index, desired.persist);
    // What it applied is read in the same round trip as the last operations;
    // outputs and verify need no systemd state.
    const readBack = factsCommand(inputs.pf, facts.pf!.pciAddress, inputs.index, "", { systemd: false });
    const after = factsFrom(host, inputs.pf, inputs.index, (await execute(host, executable(facts, p.ops), log(host, inputs), { readBack }))!);
    const left = verify(after, inputs.index, desired);
    if (left.length)
      throw new PartialApplyError(
        host.name,
        p.ops.map((o) => o.description),
        left,
        new HostError(host.name, `${vfName(after, inputs.index)} does not hold what was applied`),
      );
    return outputsOf(after, inputs.index, desired.persist);
  }, { first: factsCommand(inputs.pf, "", inputs.index) });
}

/** Preview's lines for a plan: what it refuses, or the operations it would run. */
export function previewLines(facts: HostFacts, inputs: VfInputs, own?: string): string[] {
  const { desired, problems } = resolve(inputs, facts);
  const p = plan(facts, inputs.index, desired, { pfName: inputs.pf, ownMac: own });
  p.problems.unshift(...problems);
  return previewOf(p);
}

export const spec: ResourceSpec<VfInputs, VfOutputs> = {
  kind: "virtualFunction",
  schema: inputsSchema,
  // Another PF or index is another VF: the old one is reset, the new one set.
  replaceOn: () => ["pf", "index"],
  deleteBeforeReplace: true,
  id: (inputs, outs) => importIds.vf(outs.pfPciAddress, inputs.index),

  create: (ctx, inputs) => converge(ctx, inputs),

  update: (ctx, olds, news, outs) => converge(ctx, news, { own: ownMac(olds, outs), pfPci: outs.pfPciAddress }),

  // What an up would run now (preview's host changes): the same plan converge
  // runs. Without the state only the MAC of the applied inputs is known as ours.
  async plan(ctx, inputs, applied) {
    const facts = await readFacts(ctx.host, inputs.pf, "", inputs.index);
    return previewLines(facts, inputs, applied?.mac);
  },

  async read(ctx, applied, outs) {
    const facts = await readFacts(ctx.host, applied.pf, outs.pfPciAddress, applied.index);
    if (!facts.pf || !facts.vf || !facts.attributes) return undefined;
    const observed = observedInputs(applied, outs, facts);
    return { outs: outputsOf(facts, applied.index, observed.persist), observed };
  },

  async delete(ctx, applied, outs) {
    const host = ctx.host;
    await host.withLock(async (first) => {
      const facts = factsFrom(host, applied.pf, applied.index, first!);
      const p = plan(facts, applied.index, RESET_STATE, { pfName: applied.pf, removing: true, ownMac: ownMac(applied, outs) });
      refuseIfCannot(host, facts, applied.index, applied.pf, p);
      await execute(host, executable(facts, p.ops), log(host, applied));
    }, { first: factsCommand(applied.pf, outs.pfPciAddress, applied.index) });
  },
};
