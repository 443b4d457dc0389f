// DomainVfInterface: gives a guest a VF (seed 001, procedures 17.8–17.10):
// attach-device --live/--config of an <interface type='network'> on a pool
// network or an <interface type='hostdev' managed='yes'> with the VF's
// address, with MAC, VLAN and 802.1Qbh port profile. Found again by MAC;
// detached on delete.
import { randomBytes } from "crypto";
import { HostError, PartialApplyError } from "../../host";
import type { CommandResult, RemoteHost } from "../../host";
import type { Ctx, ResourceSpec } from "../../resource";
import { describe, execute, loggerFor, previewOf, refuseIfProblems } from "../../host";
import { domainReads, readFacts } from "./facts";
import { describeSource, DomainFacts, findByMac, observedInputs, outputsOf, planInterface, planInterfaceRemoval } from "./plan";
import { IfaceInputs, IfaceOutputs, inputsSchema } from "./schema";
import { importIds } from "../../names";

/** How long a guest gets to let go of a hot-unplugged device (it must acknowledge the unplug). */
export const DETACH_TIMEOUT_MS = 180_000;
const POLL_MS = 2_000;

/** A locally administered MAC in QEMU's 52:54:00 range that the domain does not use yet. */
function newMac(f: DomainFacts): string {
  const used = new Set([...(f.live?.interfaces ?? []), ...(f.config?.interfaces ?? [])].map((i) => i.mac));
  for (;;) {
    const b = randomBytes(3);
    const mac = `52:54:00:${[...b].map((x) => x.toString(16).padStart(2, "0")).join(":")}`;
    if (!used.has(mac)) return mac;
  }
}

/** Hot-unplug completes when the guest acknowledges it; wait until the running XML no longer has the MAC. */
async function awaitRemoval(host: RemoteHost, w: Pick<IfaceInputs, "domain" | "libvirtUri">, mac: string, before: DomainFacts): Promise<void> {
  const deadline = Date.now() + DETACH_TIMEOUT_MS;
  const was = findByMac(before.live, mac);
  for (;;) {
    const f = await readFacts(host, w.libvirtUri, w.domain);
    if (!f.running || !findByMac(f.live, mac)) return;
    if (Date.now() > deadline)
      throw new HostError(
        host.name,
        `domain ${w.domain} has not released interface ${mac}${was ? ` (${describeSource(was)})` : ""} ${DETACH_TIMEOUT_MS / 1000} s after the detach request: ` +
          `PCI hot-unplug needs the guest OS to acknowledge it (is the guest booted, with ACPI/PCIe hotplug?); the device stays attached until it does`,
      );
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function converge(ctx: Ctx, w: IfaceInputs, knownMac: string | undefined, mode: "create" | "update"): Promise<IfaceOutputs> {
  const reads = domainReads(ctx.host, w.libvirtUri, w.domain, w.source.network);
  // The domain is read in the round trip that takes the host lock, and read back with the last operations.
  return ctx.host.withLock(async (first) => {
    const facts = reads.facts(first!);
    const mac = w.mac ?? knownMac ?? newMac(facts);
    const plan = planInterface(facts, w, mac, mode);
    refuseIfProblems(plan, ctx.host.name);
    if (plan.ops.length === 0) return outputsOf(facts, w, mac);
    // A live detach must finish in the guest before the same MAC is attached again.
    const log = loggerFor("domainVfInterface", w.domain, ctx.host.name);
    await execute(ctx.host, plan.detach, log);
    let after: CommandResult | undefined;
    try {
      if (plan.awaitLiveRemoval) await awaitRemoval(ctx.host, w, mac, facts);
      after = await execute(ctx.host, plan.attach, log, { readBack: reads.argv });
    } catch (e) {
      if (plan.detach.length === 0) throw e;
      throw new PartialApplyError(ctx.host.name, describe(plan.detach), describe(plan.attach), e as Error);
    }
    return outputsOf(reads.facts(after!), w, mac);
  }, { first: reads.argv });
}

export const spec: ResourceSpec<IfaceInputs, IfaceOutputs> = {
  kind: "domainVfInterface",
  schema: inputsSchema,
  // A different device (source, MAC, VLAN, port profile) means unplugging
  // one and plugging another: libvirt cannot change these in place.
  replaceOn: () => ["domain", "source", "mac", "vlan", "virtualport", "libvirtUri"],
  deleteBeforeReplace: true,
  id: (w, outs) => importIds.domainInterface(w.libvirtUri, w.domain, outs.mac),

  // What an up would run now (preview's host changes). Without a MAC in the
  // program, an existing interface cannot be found from inputs alone, so
  // only a first attach is described.
  async plan(ctx, w, applied) {
    if (w.mac === undefined && applied) return [];
    const facts = await readFacts(ctx.host, w.libvirtUri, w.domain, w.source.network);
    const plan = planInterface(facts, w, w.mac ?? "(generated MAC)", applied ? "update" : "create");
    return previewOf(plan);
  },

  create: (ctx, w) => converge(ctx, w, undefined, "create"),
  update: (ctx, _olds, w, outs) => converge(ctx, w, outs.mac, "update"),

  async read(ctx, applied, outs) {
    const facts = await readFacts(ctx.host, applied.libvirtUri, applied.domain, applied.source.network);
    const observed = observedInputs(facts, applied, outs.mac);
    if (!observed) return undefined;
    return { outs: outputsOf(facts, applied, outs.mac), observed };
  },

  async delete(ctx, applied, outs) {
    const reads = domainReads(ctx.host, applied.libvirtUri, applied.domain);
    await ctx.host.withLock(async (first) => {
      const facts = reads.facts(first!);
      if (!facts.exists) return;
      const plan = planInterfaceRemoval(facts, applied, outs.mac);
      await execute(ctx.host, plan.detach, loggerFor("domainVfInterface", applied.domain, ctx.host.name));
      if (plan.awaitLiveRemoval) await awaitRemoval(ctx.host, applied, outs.mac, facts);
    }, { first: reads.argv });
  },
};
