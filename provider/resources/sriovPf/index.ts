// SriovPf: the VF count of one physical function, its autoprobe flag and MTU,
// made to survive reboots (systemd unit, udev rule or module option), and
// changed only when no running domain or active pool network would lose a VF.
import { BACKUP_DIR, CommandResult, execute, failedBeforeAnyChange, Log, loggerFor, previewOf, shScript } from "../../host";
import type { Ctx, ResourceSpec } from "../../resource";
import { InputError } from "../../validate";
import { executable, factsFrom, readFacts, usersOf } from "./apply";
import { Facts, foundPath, readArgv, modprobePath, PfFacts, renderFound, selectorProblem, udevRulePath, unitPath } from "./facts";
import { Desired, persistOps, persistPathFor, plan, refuseIfFailed } from "./plan";
import { FoundState, inputsSchema, selectorOf, SELECTORS, SriovPfInputs, SriovPfOutputs, VfInfo } from "./schema";
import { backupOf, putBackOps, takenOverPath } from "./takeover";
import { describeUsers } from "./usage";
import { importIds } from "../../names";

function log(host: string, pci: string): Log {
  return loggerFor("sriovPf", pci, host);
}

function who(pf: PfFacts, host: string): string {
  return `PF ${pf.pciAddress}${pf.netdevs[0] ? ` (${pf.netdevs[0].name}, ${pf.driver || "no driver"})` : ""} on ${host}`;
}

function desiredOf(i: SriovPfInputs): Desired {
  return { numVfs: i.numVfs, autoprobe: i.autoprobe, persist: i.persist, mtu: i.mtu, takeOver: i.takeOver };
}

function foundOf(pf: PfFacts): FoundState {
  return { numVfs: pf.numVfs, autoprobe: pf.autoprobe, mtu: pf.netdevs[0]?.mtu ?? 0 };
}

export function outputsOf(facts: Facts, persist: SriovPfInputs["persist"], found: FoundState, warnings: string[]): SriovPfOutputs {
  const pf = facts.pf!;
  const vfs: VfInfo[] = pf.vfs.map((v) => {
    const o: VfInfo = { index: v.index, pciAddress: v.pciAddress, netdev: v.netdev, driver: v.driver, mac: v.mac || pf.adminMacs[v.index] || "" };
    if (v.iommuGroup !== undefined) o.iommuGroup = v.iommuGroup;
    return o;
  });
  return {
    interface: pf.netdevs[0]?.name ?? "",
    pciAddress: pf.pciAddress,
    driver: pf.driver,
    totalVfs: pf.totalVfs ?? 0,
    numVfs: pf.numVfs,
    numaNode: pf.numaNode,
    persistPath: persistPathFor(persist, pf.pciAddress, pf.driver),
    vfs,
    warnings,
    found,
  };
}

/** The read that finds the PF the inputs select. */
function locateArgv(inputs: SriovPfInputs): string[] {
  const sel = selectorOf(inputs);
  return readArgv(sel.kind, sel.value);
}

/** The PF the inputs select, from `answer` (the host lock's read of locateArgv) or read now. */
async function locate(ctx: Ctx, inputs: SriovPfInputs, answer?: CommandResult): Promise<Facts> {
  const sel = selectorOf(inputs);
  const argv = locateArgv(inputs);
  const facts = factsFrom(ctx.host, argv, answer ?? (await ctx.host.run(argv, { allowFail: true })));
  const problem = selectorProblem(facts, sel.kind, sel.value, ctx.host.name);
  if (problem) throw new InputError([problem]);
  return facts;
}

/**
 * Makes the host's PF what `inputs` say: plan from fresh facts, refuse when
 * running domains or active pool networks would lose VFs (unless force), apply,
 * and report what the host has afterwards.
 */
async function converge(
  ctx: Ctx,
  inputs: SriovPfInputs,
  facts: Facts,
  opts: { found?: FoundState; recreate?: boolean; restoreMtu?: number },
): Promise<SriovPfOutputs> {
  const host = ctx.host;
  const pf = facts.pf!;
  const desired = desiredOf(inputs);
  const p = plan(facts, desired, { host: host.name, selector: selectorOf(inputs).kind, recreate: opts.recreate, restoreMtu: opts.restoreMtu });
  refuseIfFailed(p, host.name);
  const warnings = [...p.warnings];
  if (p.destroys.length && facts.tools.includes("virsh")) {
    const users = await usersOf(host, facts);
    const change = `changing ${who(pf, host.name)} from ${pf.numVfs} to ${inputs.numVfs} VFs removes its current VFs`;
    if (users.error && !inputs.force)
      throw new InputError([
        { property: "numVfs", reason: `${change}, and libvirt could not be asked who uses them: ${users.error}; start libvirt, or set force: true` },
      ]);
    const inUse = describeUsers(users);
    if (inUse && !inputs.force)
      throw new InputError([
        { property: "numVfs", reason: `${change}, and they are in use by ${inUse}; stop or detach them first, or set force: true` },
      ]);
    if (inUse) warnings.push(`force: ${change} while in use by ${inUse}`);
  }
  // A create records the PF as found before changing it, or starts from that record when run again (RECORD_DIR).
  const creating = opts.found === undefined;
  const found = opts.found ?? facts.found ?? foundOf(pf);
  const recording = creating && p.ops.length > 0 && !facts.found;
  if (recording) await host.writeFile(foundPath(pf.pciAddress), renderFound(found));
  const afterArgv = readArgv("pciAddress", pf.pciAddress);
  let readBack: CommandResult | undefined;
  try {
    // What it applied is read in the same round trip as the last operations.
    if (p.ops.length) readBack = await execute(host, executable(p.ops, who(pf, host.name)), log(host.name, pf.pciAddress), { readBack: afterArgv });
  } catch (e) {
    // Nothing changed: a record kept now could only go stale before the next create.
    if (recording && failedBeforeAnyChange(e))
      await host.removeFile(foundPath(pf.pciAddress)).catch(() => undefined);
    throw e;
  }
  const after = readBack ? factsFrom(host, afterArgv, readBack) : facts;
  const now = after.pf;
  if (!now) throw new InputError([{ property: "pciAddress", reason: `${pf.pciAddress} disappeared from ${host.name} while it was being configured` }]);
  if (now.numVfs !== inputs.numVfs || now.vfs.length !== inputs.numVfs)
    throw new InputError([
      {
        property: "numVfs",
        reason: `${who(now, host.name)} has ${now.numVfs} VFs (${now.vfs.length} VF devices) after setting ${inputs.numVfs}; something else changed them at the same time, or the kernel created fewer`,
      },
    ]);
  return outputsOf(after, inputs.persist, found, warnings);
}

/** The read restore starts from: the PF at its PCI address, its modprobe file found by its driver even when it is gone. */
function restoreArgv(outs: SriovPfOutputs): string[] {
  return readArgv("pciAddress", outs.pciAddress, { driverHint: outs.driver });
}

/** Puts the PF back as it was found and removes this resource's persistence. */
async function restore(ctx: Ctx, applied: SriovPfInputs, outs: SriovPfOutputs, answer?: CommandResult): Promise<void> {
  const host = ctx.host;
  const argv = restoreArgv(outs);
  const facts = factsFrom(host, argv, answer ?? (await host.run(argv, { allowFail: true })));
  const found = outs.found ?? { numVfs: 0, autoprobe: true, mtu: 0 };
  const desired: Desired = { numVfs: found.numVfs, autoprobe: found.autoprobe, persist: "none" };
  const restoreMtu = applied.mtu !== undefined ? found.mtu : undefined;
  // Hand-made files this resource took over go back once its own persistence is gone;
  // whether they can is decided first, so a refusal changes nothing.
  const taken = facts.takenOver ?? [];
  const now = taken.length ? await host.readFiles(taken.flatMap((e) => [e.path, backupOf(e.path)])) : {};
  const putBack = putBackOps(taken, now, now, { host: host.name, tools: facts.tools });
  if (putBack.failures.length) throw new InputError(putBack.failures);
  if (!facts.pf) {
    // The device is gone (card removed): only the files this resource wrote remain to undo.
    const p = plan(facts, desired, { host: host.name, pciAddress: outs.pciAddress, driver: outs.driver });
    refuseIfFailed(p, host.name);
    await execute(host, executable(p.ops, `PF ${outs.pciAddress} on ${host.name}`), log(host.name, outs.pciAddress));
  } else {
    await converge(ctx, { ...applied, ...desired, mtu: undefined, pciAddress: outs.pciAddress, interface: undefined, macAddress: undefined }, facts, {
      found,
      restoreMtu,
    });
  }
  await execute(host, putBack.ops, log(host.name, outs.pciAddress));
  // Every version of these files was rendered here: once they are gone, so are the copies kept of them,
  // and the records of the PF as found and of what was taken over.
  const ours = [
    unitPath(outs.pciAddress),
    udevRulePath(outs.pciAddress),
    ...(outs.driver ? [modprobePath(outs.driver)] : []),
    takenOverPath(outs.pciAddress),
  ];
  await host.run(
    shScript('r="$1"; t="$2"; b="$3"; shift 3; rm -f -- "$r" "$t"; for f in "$@"; do [ -e "$f" ] || rm -f -- "$b$f"; done', foundPath(outs.pciAddress), takenOverPath(outs.pciAddress), BACKUP_DIR, ...ours),
    { what: "remove the backup copies of this resource's files and the record of the PF as found" },
  );
}

function observedInputs(facts: Facts, applied: SriovPfInputs): SriovPfInputs {
  const pf = facts.pf!;
  const net = pf.netdevs[0];
  const observed: SriovPfInputs = { ...applied, numVfs: pf.numVfs, autoprobe: pf.autoprobe };
  // A renamed interface or changed MAC shows as drift of the selector the program uses.
  if (applied.interface !== undefined && net) observed.interface = net.name;
  if (applied.macAddress !== undefined && net?.mac) observed.macAddress = net.mac;
  if (applied.mtu !== undefined && net) observed.mtu = net.mtu;
  if (applied.persist !== "none") {
    let drift: boolean;
    try {
      drift = persistOps(facts, pf.pciAddress, pf.driver, desiredOf(applied), { host: "" }).length > 0;
    } catch {
      drift = true;
    }
    // The files no longer say what was applied (edited, removed, unit disabled).
    if (drift) observed.persist = "none";
  }
  return observed;
}

export const spec: ResourceSpec<SriovPfInputs, SriovPfOutputs> = {
  kind: "sriovPf",
  schema: inputsSchema,

  replaceOn(olds, news) {
    // Another device by the same kind of selector is another PF. Moving from
    // one kind to another (name → PCI address) is an update: it usually
    // names the same device, and update checks.
    return SELECTORS.filter((k) => olds[k] !== undefined && news[k] !== undefined && olds[k] !== news[k]);
  },

  id(_inputs, outs) {
    return importIds.pf(outs.pciAddress);
  },

  async create(ctx, inputs) {
    // The PF is read in the round trip that takes the host lock.
    return ctx.host.withLock(async (first) => converge(ctx, inputs, await locate(ctx, inputs, first), {}), { first: locateArgv(inputs) });
  },

  async read(ctx, applied, outs) {
    const facts = await readFacts(ctx.host, "pciAddress", outs.pciAddress, outs.driver);
    if (!facts.pf || facts.pf.totalVfs === undefined) return undefined;
    const found = outs.found ?? foundOf(facts.pf);
    return { outs: outputsOf(facts, applied.persist, found, outs.warnings ?? []), observed: observedInputs(facts, applied) };
  },

  async update(ctx, olds, news, outs) {
    return ctx.host.withLock(async (first) => {
      const facts = await locate(ctx, news, first);
      if (facts.pf!.pciAddress !== outs.pciAddress) {
        // The new selector names another device: undo the old one, set up the new.
        await restore(ctx, olds, outs);
        return converge(ctx, news, await locate(ctx, news), {});
      }
      // An MTU no longer managed goes back to the one found.
      const restoreMtu = olds.mtu !== undefined && news.mtu === undefined ? outs.found?.mtu : undefined;
      return converge(ctx, news, facts, { found: outs.found, recreate: olds.autoprobe !== news.autoprobe, restoreMtu });
    }, { first: locateArgv(news) });
  },

  async plan(ctx, inputs, applied) {
    // What preview shows: the same operations create/update would run now.
    // (An MTU no longer managed is put back by update to the one found, which only the state knows.)
    const facts = await locate(ctx, inputs);
    const p = plan(facts, desiredOf(inputs), {
      host: ctx.host.name,
      selector: selectorOf(inputs).kind,
      recreate: applied !== undefined && applied.autoprobe !== inputs.autoprobe,
    });
    // A refusal shows as `refused: …` lines, as every resource's does; create and update raise it.
    return previewOf(p);
  },

  async delete(ctx, applied, outs) {
    await ctx.host.withLock((first) => restore(ctx, applied, outs, first), { first: restoreArgv(outs) });
  },
};
