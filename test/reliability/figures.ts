// The reliability suite's figures and evidence. Every test file of the suite
// records what it tried here: bad inputs, injected faults and recoveries,
// and every piece of text a user could see (serialized state and outputs,
// error messages, provider process logs, serialized providers). After all
// each test file, a root hook (test/support/rootHooks.ts) scans that text for
// every password and private key the file used and fails the file if any
// secret was found; after the run, ONE line of figures sums them all.
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { dirname, join } from "path";
import { isSecret, LogEntry, Stack, StateEntry } from "../support/engine";

export const figures = {
  inputsTried: 0,
  inputsRejected: 0,
  injectionValues: 0,
  injectionRejected: 0,
  /** Values that reached a host's shell over SSH (planned during check, or sent past check). */
  injectionSentToHost: 0,
  /** Values a shell executed (canary files that appeared): must stay 0. */
  injectionExecuted: 0,
  faultsInjected: 0,
  faultsRecovered: 0,
  driftsMade: 0,
  driftsDetected: 0,
  driftsRepaired: 0,
  hostKeyRefusals: 0,
  secretsFound: 0,
  textsScanned: 0,
};

/** One piece of text a user can see, and where it came from. */
interface Evidence {
  where: string;
  text: string;
}

const evidence: Evidence[] = [];
const secrets = new Map<string, string>(); // text → what it is
const stacks: { name: string; stack: Stack }[] = [];

/** Text that must never be shown: a password, a private key, a passphrase. */
export function addSecret(what: string, value: string | undefined): void {
  if (!value) return;
  secrets.set(value, what);
  // A key leaking line by line (or one line of it) is still a leak.
  for (const line of value.split(/\r?\n/)) {
    const t = line.trim();
    if (t.length >= 20 && !/^-----/.test(t)) secrets.set(t, `${what} (a line of it)`);
  }
}

export function record(where: string, text: unknown): void {
  if (text === undefined || text === null) return;
  evidence.push({ where, text: typeof text === "string" ? text : serializeState(text) });
}

/** A provider process's logs (what `pulumi up` shows as diagnostics). */
export function recordLogs(where: string, logs: readonly LogEntry[]): void {
  record(`${where} logs`, logs.map((l) => `[${l.severity}] ${l.message}`).join("\n"));
}

/** An error as the user sees it, with any deployment logs it carries. */
export function recordError(where: string, e: unknown): void {
  const err = e as { message?: string; stack?: string; result?: { logs?: LogEntry[] } };
  record(`${where} error`, err?.message ?? String(e));
  if (err?.result?.logs) recordLogs(where, err.result.logs);
}

/** Stacks whose state is scanned at the end (it is what `pulumi stack export` would show). */
export function trackStack(name: string, stack: Stack): Stack {
  stacks.push({ name, stack });
  return stack;
}

/**
 * State as the engine persists it: secret values are stored encrypted, so
 * they are replaced by a marker here; everything else is stored as is.
 */
export function serializeState(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (isSecret(x) ? "[secret: stored encrypted]" : x));
}

export function stateText(entries: Iterable<StateEntry>): string {
  return serializeState([...entries]);
}

/** Scans every recorded text for every registered secret; returns the hits. */
export function scanForSecrets(): { where: string; what: string }[] {
  for (const { name, stack } of stacks) record(`stack ${name} state`, stateText(stack.state.values()));
  const hits: { where: string; what: string }[] = [];
  for (const e of evidence) {
    for (const [value, what] of secrets) if (value.length >= 4 && e.text.includes(value)) hits.push({ where: e.where, what });
  }
  figures.textsScanned = evidence.length;
  return hits;
}

export function figuresLine(f: typeof figures, secretStrings: number): string {
  return (
    `reliability figures: inputs tried ${f.inputsTried}, rejected ${f.inputsRejected}; ` +
    `injection values ${f.injectionValues} (rejected by check ${f.injectionRejected}, sent to a host ${f.injectionSentToHost}, executed ${f.injectionExecuted}); ` +
    `host-key refusals ${f.hostKeyRefusals}; ` +
    `faults injected ${f.faultsInjected}, recovered ${f.faultsRecovered}; ` +
    `drift made ${f.driftsMade}, detected ${f.driftsDetected}, repaired ${f.driftsRepaired}; ` +
    `secrets found ${f.secretsFound} (in ${f.textsScanned} texts, ${secretStrings} secret strings)`
  );
}

/**
 * After each test file (a root hook: once per file when files run in worker
 * processes, once at the end otherwise): scans what this process recorded for
 * secrets, adds its figures to the run's totals, and starts afresh. Fails the
 * file if a secret was found, or if text was recorded but no secret was
 * registered (the scan would prove nothing).
 */
export function finishFile(): void {
  const recorded = evidence.length > 0 || stacks.length > 0 || Object.values(figures).some((n) => n > 0);
  if (!recorded) return;
  const hits = scanForSecrets();
  figures.secretsFound = hits.length;
  const line = JSON.stringify({ ...figures, secretStrings: secrets.size });
  const unproven = secrets.size === 0 && evidence.length > 0;
  if (process.env[TOTALS_ENV]) appendFileSync(process.env[TOTALS_ENV]!, line + "\n");
  else process.stdout.write(`\n${figuresLine(figures, secrets.size)}\n`);
  evidence.length = 0;
  stacks.length = 0;
  secrets.clear();
  for (const k of Object.keys(figures) as (keyof typeof figures)[]) figures[k] = 0;
  if (hits.length) throw new Error(`secret text found where users can see it:\n${hits.map((h) => `- ${h.what} in ${h.where}`).join("\n")}`);
  if (unproven) throw new Error("no secrets were registered: the scan proved nothing");
}

const TOTALS_ENV = "PULUMI_SRIOV_RELIABILITY_TOTALS";

/** Before any test file: where each file's figures go (worker processes inherit it). */
export function startTotals(): void {
  const dir = mkdtempSync(join(tmpdir(), "pulumi-sriov-figures-"));
  process.env[TOTALS_ENV] = join(dir, "figures.jsonl");
}

/** After every test file: ONE line of figures for the whole run. */
export function printTotals(): void {
  const file = process.env[TOTALS_ENV];
  if (!file) return;
  delete process.env[TOTALS_ENV];
  const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
  rmSync(dirname(file), { recursive: true, force: true });
  if (lines.length === 0) return;
  const sum: Record<string, number> = {};
  for (const l of lines) for (const [k, v] of Object.entries(JSON.parse(l) as Record<string, number>)) sum[k] = (sum[k] ?? 0) + v;
  const { secretStrings, ...f } = sum;
  process.stdout.write(`\n${figuresLine(f as typeof figures, secretStrings)}\n`);
}
