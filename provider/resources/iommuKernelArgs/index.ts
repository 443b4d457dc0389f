// IommuKernelArgs: the IOMMU and other kernel arguments on the host's
// bootloader. This module holds the effects (reading the host, running the
// planned operations with rollback, rebooting); the decisions are in the
// pure modules next to it.
import { Connection } from "../../connection";
import { closeConnection, CommandResult, HostCommandError, HostError, HostKeyError, loggerFor, previewOf, RemoteHost, shScript } from "../../host";
import { Ctx, ResourceSpec } from "../../resource";
import { hasEffect, missingArgs, sameArg, splitCmdline } from "./cmdline";
import { detect, Detection } from "./detect";
import { Facts, parseFacts, PENDING_RESTORE, probes } from "./facts";
import { firstEntryArgs } from "./grub";
import { parseGrubbyInfo } from "./grubby";
import { health } from "./health";
import { activeOf, configuredNow, Op, plan, rebootRequired, refuseIfPlanError, verifyProblem } from "./plan";
import { describeReplaced, emptyRestore, Restore, restoreFrom } from "./restore";
import { Bootloader, desiredArgs, Inputs, inputsSchema, isVendorArg, Outputs } from "./schema";
import { importIds } from "../../names";

export type { Inputs, Outputs } from "./schema";

function log(host: RemoteHost, message: string): void {
  loggerFor("iommuKernelArgs", undefined, host.name)(message);
}

/** Reads everything the resource needs in one round trip (without the health probes when only planning). */
export async function readFacts(host: RemoteHost, opts: { health?: boolean } = {}): Promise<Facts> {
  const ps = probes(opts);
  const res = await host.batch(ps.map((p) => p.argv));
  const byName: Record<string, CommandResult> = {};
  ps.forEach((p, i) => (byName[p.name] = res[i]));
  for (const name of ["cmdline", "files", "bootId"]) {
    const r = byName[name];
    if (r.code !== 0) throw new HostCommandError(host.name, `read ${name}`, r.code, r.stdout, r.stderr);
  }
  return parseFacts(byName);
}

function wantedArgs(host: RemoteHost, inputs: Inputs, f: Facts): string[] {
  if (inputs.iommu === "auto" && !f.cpuVendor)
    throw new HostError(
      host.name,
      `iommu is "auto" but /proc/cpuinfo names no Intel or AMD CPU (${f.cpuVendorRaw ? `vendor: ${f.cpuVendorRaw}` : "no vendor_id line"}); set iommu to "intel", "amd" or "none"`,
    );
  return desiredArgs(inputs, f.cpuVendor);
}

async function verify(host: RemoteHost, op: Extract<Op, { kind: "verify" }>): Promise<void> {
  const problems = (args: string[], where: string) => verifyProblem(op, args, where);
  let issue: string | undefined;
  if (op.check === "grubCfg") {
    const text = (await host.readFiles([op.path!]))[op.path!];
    const args = text === null ? undefined : firstEntryArgs(text);
    issue = args === undefined ? `${op.path} has no linux line after regeneration` : problems(args, `the first entry of ${op.path}`);
  } else if (op.check === "grubby") {
    const r = await host.run(["grubby", "--info=ALL"]);
    issue = parseGrubbyInfo(r.stdout)
      .map((k) => problems(k.args, `the boot entry of ${k.kernel}`))
      .filter(Boolean)
      .join("; ");
  } else {
    const r = await host.run(shScript('for f in "$1"/loader/entries/*.conf; do [ -f "$f" ] && grep -H "^options" "$f"; done; true', op.path!));
    const found: string[] = [];
    for (const line of r.stdout.split("\n")) {
      const m = /^(.*\.conf):options\s+(.*)$/.exec(line);
      if (!m || !(op.versions ?? []).some((v) => m[1].includes(v))) continue;
      found.push(m[1]);
      issue ??= problems(splitCmdline(m[2]), m[1]);
    }
    // Unified kernel images carry their command line inside; there is nothing to read back then.
    if (!found.length) log(host, `no Type #1 boot entries under ${op.path}/loader/entries to check (unified kernel images?)`);
  }
  if (issue) throw new HostError(host.name, `${op.description} failed: ${issue}`);
}

/**
 * Runs the operations in order. If one fails, files are put back as they
 * were, rewritten outputs (grub.cfg) restored, and commands that regenerated
 * boot entries run again (or their inverse), then the error is raised with
 * what was restored.
 */
export async function execute(host: RemoteHost, ops: readonly Op[]): Promise<void> {
  const done: Op[] = [];
  const kept = new Map<string, string | null>();
  for (const op of ops) {
    try {
      log(host, op.description);
      if (op.kind === "write") await host.writeFile(op.path, op.content);
      else if (op.kind === "remove") await host.removeFile(op.path);
      else if (op.kind === "run") {
        if (op.rewrites && !kept.has(op.rewrites)) kept.set(op.rewrites, (await host.readFiles([op.rewrites]))[op.rewrites]);
        await host.run(op.argv, { what: op.description });
      } else await verify(host, op);
      done.push(op);
    } catch (e) {
      const restored = await rollback(host, done, op, kept);
      const err = e as Error;
      throw new RollbackError(host.name, err, restored.done, restored.failed);
    }
  }
}

class RollbackError extends Error {
  constructor(host: string, cause: Error, restored: string[], failed: string[]) {
    const head = cause.message.startsWith(host) ? cause.message : `${host}: ${cause.message}`;
    super(
      `${head}\n` +
        (failed.length
          ? `could not restore everything: ${failed.join("; ")}${restored.length ? `\nrestored: ${restored.join("; ")}` : ""}`
          : restored.length
            ? `the previous boot configuration was restored: ${restored.join("; ")}`
            : "nothing had been changed"),
    );
    this.name = cause.name === "HostCommandError" ? "RegenerationError" : "ApplyError";
  }
}

async function rollback(host: RemoteHost, done: readonly Op[], failed: Op, kept: Map<string, string | null>): Promise<{ done: string[]; failed: string[] }> {
  const ok: string[] = [];
  const bad: string[] = [];
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      ok.push(what);
    } catch (e) {
      bad.push(`${what}: ${(e as Error).message}`);
    }
  };
  for (const op of [...done].reverse()) {
    if (op.kind === "write") await attempt(op.previous === null ? `removed ${op.path}` : `restored ${op.path}`, () => host.restoreFile(op.path, op.previous));
    if (op.kind === "remove") await attempt(`restored ${op.path}`, () => host.restoreFile(op.path, op.previous));
  }
  for (const [path, content] of kept) {
    if (content === null) continue;
    await attempt(`restored ${path}`, async () => {
      const now = (await host.readFiles([path]))[path];
      if (now !== content) await host.writeFile(path, content);
    });
  }
  const reruns = [...done, failed].filter((op): op is Extract<Op, { kind: "run" }> => op.kind === "run" && op.rollback !== undefined);
  for (const op of reruns) {
    const argv = op.rollback === "rerun" ? op.argv : op.rollback!;
    await attempt(`ran ${argv.join(" ")}`, () => host.run(argv));
  }
  return { done: ok, failed: bad };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Reboots the host and waits for it with the same connection settings (so
 * the same pinned host key), until the boot id changes or the timeout ends.
 */
export async function rebootAndWait(ctx: Ctx, bootId: string, timeoutSeconds: number): Promise<Facts> {
  const { host, connection } = ctx;
  log(host, "rebooting");
  await host.run(shScript('nohup sh -c "sleep 2; systemctl reboot || /sbin/reboot" >/dev/null 2>&1 </dev/null &'), { what: "reboot" });
  await closeConnection(connection);
  const started = Date.now();
  const deadline = started + timeoutSeconds * 1000;
  await sleep(5000);
  let last = "";
  while (Date.now() < deadline) {
    try {
      const r = await host.run(["cat", "/proc/sys/kernel/random/boot_id"]);
      if (r.stdout.trim() !== bootId) {
        log(host, `back after ${Math.round((Date.now() - started) / 1000)} s`);
        return await readFacts(host);
      }
      last = "still running the old boot";
      await closeConnection(connection);
    } catch (e) {
      if (e instanceof HostKeyError) throw e; // a different machine answered: never wait that out
      last = (e as Error).message;
    }
    await sleep(3000);
  }
  throw new HostError(host.name, `did not come back within rebootTimeoutSeconds (${timeoutSeconds} s) after the reboot; last attempt: ${last}`);
}

function outputsOf(f: Facts, det: Detection, args: string[], configPath: string, restore: Restore): Outputs {
  const required = rebootRequired(f.cmdline, args);
  const h = health(f, args, required);
  return {
    hostname: f.hostname,
    args,
    bootloader: det.bootloader,
    bootloaderEvidence: det.evidence,
    configPath,
    regenerateCommand: det.mode === "grubby" ? "grubby --update-kernel=…" : det.regenerate.map((c) => c.join(" ")).join(" && "),
    activeCmdline: f.cmdline,
    rebootRequired: required,
    iommuEnabled: h.iommuEnabled,
    iommuGroupCount: h.iommuGroupCount,
    cpuVendor: f.cpuVendorRaw,
    warnings: h.warnings,
    replacedArgs: describeReplaced(restore),
    restore,
  };
}

/** Brings the host to the inputs, starting from what `prior` records we changed before. */
async function converge(ctx: Ctx, inputs: Inputs, prior: Restore, previousArgs: string[], creating = false): Promise<Outputs> {
  const { host } = ctx;
  return host.withLock(async () => {
    let f = await readFacts(host);
    const det = detect(f, inputs.bootloader, host.name);
    const wanted = wantedArgs(host, inputs, f);
    // A create run again starts from its own record of what it found (RECORD_DIR).
    const pending = creating ? f.pendingRestore : undefined;
    const p = plan(f, det, wanted, pending ?? prior, previousArgs);
    refuseIfPlanError(p, host.name);
    if (creating && p.ops.length && !pending) await host.writeFile(PENDING_RESTORE, JSON.stringify(p.restore) + "\n");
    await execute(host, p.ops);
    if (inputs.reboot === "ifNeeded" && rebootRequired(f.cmdline, wanted)) {
      f = await rebootAndWait(ctx, f.bootId, inputs.rebootTimeoutSeconds);
      const running = splitCmdline(f.cmdline);
      const missing = wanted.filter((w) => !hasEffect(running, w));
      if (missing.length)
        throw new HostError(
          host.name,
          `rebooted, but the kernel is not running with ${missing.join(" ")}: /proc/cmdline is "${f.cmdline}". ${p.configPath} has them; check that the firmware boots the entry ${det.grubCfg ? `from ${det.grubCfg}` : `that ${det.bootloader} writes`}`,
        );
    }
    return outputsOf(f, det, wanted, p.configPath, p.restore);
  });
}

/** Inputs as the host now has them: what of ours no longer takes effect is dropped. */
export function observedInputs(applied: Inputs, args: readonly string[], configured: readonly string[]): Inputs {
  const has = (a: string) => hasEffect(configured, a);
  const vendor = args.filter(isVendorArg);
  return {
    ...applied,
    iommu: applied.iommu !== "none" && vendor.length > 0 && !vendor.every(has) ? "none" : applied.iommu,
    passthrough: applied.passthrough && has("iommu=pt"),
    extraArgs: applied.extraArgs.filter(has),
  };
}

export const spec: ResourceSpec<Inputs, Outputs> = {
  kind: "iommuKernelArgs",
  schema: inputsSchema as () => any,
  replaceOn: () => ["bootloader"],
  deleteBeforeReplace: true,
  id: (_inputs, outs) => importIds.kernelArgs(outs.hostname),

  create: (ctx, inputs) => converge(ctx, inputs, emptyRestore(), [], true),

  // Preview: the operations apply would run. Without the state's record the
  // plan starts from the host as it is, which for a host this resource
  // already configured is nothing to do.
  async plan(ctx, inputs) {
    const { host } = ctx;
    const f = await readFacts(host, { health: false });
    const det = detect(f, inputs.bootloader, host.name);
    const wanted = wantedArgs(host, inputs, f);
    // A refusal is raised as it always was: preview shows it as not checked.
    const p = plan(f, det, wanted, emptyRestore(), []);
    refuseIfPlanError(p, host.name);
    const lines = previewOf(p);
    if (inputs.reboot === "ifNeeded" && rebootRequired(f.cmdline, wanted))
      lines.push(`reboot ${host.name} (the running kernel lacks ${missingArgs(splitCmdline(f.cmdline), wanted).join(" ")}) and check /proc/cmdline`);
    return lines;
  },

  async read(ctx, applied, outs) {
    const { host } = ctx;
    const f = await readFacts(host);
    const det = detect(f, (outs.bootloader as Bootloader | undefined) ?? applied.bootloader, host.name);
    const configured = configuredNow(f, det);
    const args = outs.args ?? [];
    if (args.length && !args.some((a) => hasEffect(configured, a))) return undefined;
    const restore = restoreFrom(outs.restore);
    return { outs: outputsOf(f, det, [...args], outs.configPath, restore), observed: observedInputs(applied, args, configured) };
  },

  update: (ctx, _olds, news, outs) => converge(ctx, news, restoreFrom(outs.restore), outs.args ?? []),

  async delete(ctx, applied, outs) {
    const { host } = ctx;
    await host.withLock(async () => {
      const f = await readFacts(host);
      const det = detect(f, (outs.bootloader as Bootloader | undefined) ?? applied.bootloader, host.name);
      const previous = outs.args ?? [];
      const p = plan(f, det, [], restoreFrom(outs.restore), previous);
      refuseIfPlanError(p, host.name);
      await execute(host, p.ops);
      if (f.pendingRestore) await host.run(["rm", "-f", "--", PENDING_RESTORE], { what: "remove the record create kept of what it found" });
      if (applied.reboot !== "ifNeeded") return;
      const gone = previous.filter((a) => !hasEffect(p.configured, a));
      if (!activeOf(f.cmdline, gone).length) return;
      const after = await rebootAndWait(ctx, f.bootId, applied.rebootTimeoutSeconds);
      const still = activeOf(after.cmdline, gone);
      if (still.length)
        throw new HostError(host.name, `rebooted, but the kernel still runs with ${still.join(" ")}: /proc/cmdline is "${after.cmdline}"`);
    });
  },
};

// Exposed for tests and tooling: the same planning the resource runs.
export { plan, detect, sameArg };
export type { Connection };
