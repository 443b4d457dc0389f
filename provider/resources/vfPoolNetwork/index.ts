// VfPoolNetwork: a libvirt hostdev network handing out SR-IOV VFs (seed 001,
// procedure 17.10: net-define, net-start, net-autostart). Changes libvirt
// cannot apply to a running network (which VFs, VLAN, name, daemon) replace
// it; delete refuses while guests hold VFs from it unless force.
import type { Ctx, ResourceSpec } from "../../resource";
import { execute, loggerFor, previewOf, refuseIfProblems } from "../../host";
import { poolReads, readFacts } from "./facts";
import { observedInputs, outputsOf, planPool, planPoolRemoval } from "./plan";
import { PoolInputs, PoolOutputs, inputsSchema } from "./schema";
import { importIds } from "../../names";

async function converge(ctx: Ctx, w: PoolInputs, mode: "create" | "update"): Promise<PoolOutputs> {
  const reads = poolReads(ctx.host, w);
  // The network is read in the round trip that takes the host lock, and read back with the last operations.
  return ctx.host.withLock(async (first) => {
    let facts = await reads.facts(first!);
    let plan = planPool(facts, w, mode);
    // Restarting needs to know who would be cut off: look them up only then.
    if (plan.problems.length && facts.active && (facts.live?.connections ?? 0) > 0 && !facts.users) {
      facts = await readFacts(ctx.host, w, { users: true });
      plan = planPool(facts, w, mode);
    }
    refuseIfProblems(plan, ctx.host.name);
    if (plan.ops.length === 0) return outputsOf(facts, w.name);
    const after = await execute(ctx.host, plan.ops, loggerFor("vfPoolNetwork", w.name, ctx.host.name), { readBack: reads.argv });
    return outputsOf(await reads.facts(after!), w.name);
  }, { first: reads.argv });
}

export const spec: ResourceSpec<PoolInputs, PoolOutputs> = {
  kind: "vfPoolNetwork",
  schema: inputsSchema,
  // libvirt cannot change a running hostdev network's pool or VLAN (net-update
  // has no such section), and name/URI identify another network.
  replaceOn: () => ["name", "pf", "vfs", "vlan", "libvirtUri"],
  deleteBeforeReplace: true,
  id: (w) => importIds.poolNetwork(w.libvirtUri, w.name),

  // What an up would run now (preview's host changes): the same plan converge runs.
  async plan(ctx, w, applied) {
    const facts = await readFacts(ctx.host, w, { users: true });
    const plan = planPool(facts, w, applied ? "update" : "create");
    return previewOf(plan);
  },

  create: (ctx, w) => converge(ctx, w, "create"),
  update: (ctx, _olds, w) => converge(ctx, w, "update"),

  async read(ctx, applied) {
    const facts = await readFacts(ctx.host, applied);
    if (!facts.exists) return undefined;
    return { outs: outputsOf(facts, applied.name), observed: observedInputs(facts, applied) };
  },

  async delete(ctx, applied) {
    const reads = poolReads(ctx.host, applied);
    await ctx.host.withLock(async (first) => {
      const facts = await reads.facts(first!, { users: true });
      const plan = planPoolRemoval(facts, applied);
      refuseIfProblems(plan, ctx.host.name);
      await execute(ctx.host, plan.ops, loggerFor("vfPoolNetwork", applied.name, ctx.host.name));
    }, { first: reads.argv });
  },
};
