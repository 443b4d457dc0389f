// IommuKernelArgs: the IOMMU and other kernel arguments on the host's
// bootloader. This module holds the effects (reading the host, running the
// planned operations with rollback, rebooting); the decisions are in the
// pure modules next to it.
import { Connection } from "../../connection";
import {
  Argv,
  closeConnection,
  Command,
  commandLine,
  CommandResult,
  execute as runOps,
  HostCommandError,
  HostError,
  HostKeyError,
  keepingCopy,
  loggerFor,
  Operation,
  previewOf,
  RemoteHost,
  restoreFromBackup,
  shScript,
  undoReport,
} from "../../host";
import { loadScript } from "../../scripts";
import { Ctx, ResourceSpec } from "../../resource";
import { hasEffect, missingArgs, sameArg, splitCmdline } from "./cmdline";
import { detect, Detection } from "./detect";
import { Facts, factsArgv, parseFacts, parseProbeOutput, PENDING_RESTORE } from "./facts";
import { firstEntryArgs } from "./grub";
import { parseGrubbyInfo } from "./grubby";
import { health } from "./health";
import { activeOf, configuredNow, Op, plan, rebootRequired, refuseIfPlanError, verifyProblem } from "./plan";
import { describeReplaced, emptyRestore, Restore, restoreFrom } from "./restore";
import { Bootloader, desiredArgs, Inputs, inputsSchema, isVendorArg, Outputs } from "./schema";
import { importIds } from "../../names";

export type { Inputs, Outputs } from "./schema";

/** Lists the boot entries' options lines (verifying systemd-boot entries). */
const ENTRIES_SCRIPT = loadScript("iommu-kernel-args-entries");
const REBOOT_SCRIPT = loadScript("reboot-soon");

function log(host: RemoteHost, message: string): void {
  loggerFor("iommuKernelArgs", undefined, host.name)(message);
}

/** Reads everything the resource needs in one round trip (without the health probes when only planning). */
export async function readFacts(host: RemoteHost, opts: { health?: boolean } = {}): Promise<Facts> {
  return factsFrom(host, factsArgv(opts), await host.run(factsArgv(opts), { allowFail: true }));
}

/** The facts in the answer of `argv` (a factsArgv), as readFacts fails on it. */
function factsFrom(host: RemoteHost, argv: Argv, r: CommandResult): Facts {
  if (r.code !== 0) throw new HostCommandError(host.name, commandLine(argv), r.code, r.stdout, r.stderr, "read the boot configuration");
  const byName = parseProbeOutput(r.stdout, r.stderr);
  for (const name of ["cmdline", "files", "bootId"]) {
    const p = byName[name];
    if (!p) throw new HostError(host.name, `read ${name}: the facts script gave no result${r.stderr.trim() ? `\n${r.stderr.trim()}` : ""}`);
    if (p.code !== 0) throw new HostCommandError(host.name, `read ${name}`, p.code, p.stdout, p.stderr);
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

/** Reads back what a verify step checks; the problem, if any, fails the step. */
function verifyStep(host: RemoteHost, op: Extract<Op, { kind: "verify" }>): Command {
  const problems = (args: string[], where: string) => verifyProblem(op, args, where);
  const failed = (issue: string | undefined) => (issue ? `${op.description} failed: ${issue}` : undefined);
  if (op.check === "grubCfg")
    return {
      description: op.description,
      argv: shScript('[ ! -e "$1" ] || cat -- "$1"', op.path!),
      check: (r) => {
        const args = firstEntryArgs(r.stdout);
        return failed(args === undefined ? `${op.path} has no linux line after regeneration` : problems(args, `the first entry of ${op.path}`));
      },
    };
  if (op.check === "grubby")
    return {
      description: op.description,
      argv: ["grubby", "--info=ALL"],
      // A failing grubby reads as it always has: the command alone.
      explain: () => "",
      check: (r) =>
        failed(
          parseGrubbyInfo(r.stdout)
            .map((k) => problems(k.args, `the boot entry of ${k.kernel}`))
            .filter(Boolean)
            .join("; "),
        ),
    };
  return {
    description: op.description,
    argv: shScript(ENTRIES_SCRIPT, op.path!),
    check: (r) => {
      const found: string[] = [];
      let issue: string | undefined;
      for (const line of r.stdout.split("\n")) {
        const m = /^(.*\.conf):options\s+(.*)$/.exec(line);
        if (!m || !(op.versions ?? []).some((v) => m[1].includes(v))) continue;
        found.push(m[1]);
        issue ??= problems(splitCmdline(m[2]), m[1]);
      }
      // Unified kernel images carry their command line inside; there is nothing to read back then.
      if (!found.length) log(host, `no Type #1 boot entries under ${op.path}/loader/entries to check (unified kernel images?)`);
      return failed(issue);
    },
  };
}

/**
 * The plan's operations as the shared executor runs them. Every change has
 * an undo for when a later step fails: files come back from the copies
 * written before them, a rewritten grub.cfg from the copy kept before its
 * regeneration, and commands that regenerated boot entries run again (or
 * their inverse) once the files are back.
 */
export function executable(host: RemoteHost, ops: readonly Op[]): Operation[] {
  const kept = new Set<string>();
  return ops.map((op): Operation => {
    switch (op.kind) {
      case "write":
        return { kind: "write", path: op.path, content: op.content, description: op.description, undo: restoreFromBackup(op.path, op.previous !== null) };
      case "remove":
        return { kind: "remove", path: op.path, description: op.description, undo: restoreFromBackup(op.path, true) };
      case "verify":
        return verifyStep(host, op);
      case "run": {
        const step: Command = { description: op.description, argv: op.argv };
        if (op.rewrites && !kept.has(op.rewrites)) {
          kept.add(op.rewrites);
          step.argv = keepingCopy(op.rewrites, op.argv);
          step.shown = commandLine(op.argv);
          step.undo = { ...restoreFromBackup(op.rewrites, true), on: "any", afterRestores: true };
        } else if (op.rollback) {
          const argv = op.rollback === "rerun" ? op.argv : op.rollback;
          const what = `ran ${argv.join(" ")}`;
          step.undo = { description: what, argv, failed: what, on: "any", afterRestores: true };
        }
        return step;
      }
    }
  });
}

/**
 * Runs the operations in order. If one fails, files are put back as they
 * were, rewritten outputs (grub.cfg) restored, and commands that regenerated
 * boot entries run again (or their inverse), then the error is raised with
 * what was restored.
 */
export async function execute(host: RemoteHost, ops: readonly Op[]): Promise<void> {
  try {
    await runOps(host, executable(host, ops), loggerFor("iommuKernelArgs", undefined, host.name));
  } catch (e) {
    const u = undoReport(e);
    throw new RollbackError(host.name, u ? u.cause : (e as Error), u?.done ?? [], u?.failed ?? []);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Reboots the host and waits for it with the same connection settings (so
 * the same pinned host key), until the boot id changes or the timeout ends.
 */
export async function rebootAndWait(ctx: Ctx, bootId: string, timeoutSeconds: number): Promise<Facts> {
  const { host, connection } = ctx;
  log(host, "rebooting");
  await host.run(shScript(REBOOT_SCRIPT), { what: "reboot" });
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
  // The host is read in the round trip that takes the host lock.
  return host.withLock(async (first) => {
    let f = factsFrom(host, factsArgv(), first!);
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
  }, { first: factsArgv() });
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
    // A refusal shows as `refused: …` lines, as every resource's does; create and update raise it.
    const p = plan(f, det, wanted, emptyRestore(), []);
    const lines = previewOf(p);
    if (p.problems.length) return lines;
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
    await host.withLock(async (first) => {
      const f = factsFrom(host, factsArgv(), first!);
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
    }, { first: factsArgv() });
  },
};

// Exposed for tests and tooling: the same planning the resource runs.
export { plan, detect, sameArg };
export type { Connection };
