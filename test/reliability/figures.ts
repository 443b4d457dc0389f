// The reliability suite's figures and evidence. Every test file of the suite
// records what it tried here: bad inputs, injected faults and recoveries,
// and every piece of text a user could see (serialized state and outputs,
// error messages, provider process logs, serialized providers). After all
// tests, a root hook scans that text for every password and private key the
// suite used, prints ONE line of figures, and fails the run if any secret
// was found.
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

export function figuresLine(): string {
  const f = figures;
  return (
    `reliability figures: inputs tried ${f.inputsTried}, rejected ${f.inputsRejected}; ` +
    `injection values ${f.injectionValues} (rejected by check ${f.injectionRejected}, sent to a host ${f.injectionSentToHost}, executed ${f.injectionExecuted}); ` +
    `host-key refusals ${f.hostKeyRefusals}; ` +
    `faults injected ${f.faultsInjected}, recovered ${f.faultsRecovered}; ` +
    `drift made ${f.driftsMade}, detected ${f.driftsDetected}, repaired ${f.driftsRepaired}; ` +
    `secrets found ${f.secretsFound} (in ${f.textsScanned} texts, ${secrets.size} secret strings)`
  );
}

let registered = false;
if (typeof after === "function" && !registered) {
  registered = true;
  after("reliability: scan for secrets, print the figures", function () {
    const hits = scanForSecrets();
    figures.secretsFound = hits.length;
    process.stdout.write(`\n${figuresLine()}\n`);
    if (hits.length)
      throw new Error(`secret text found where users can see it:\n${hits.map((h) => `- ${h.what} in ${h.where}`).join("\n")}`);
    if (secrets.size === 0 && evidence.length > 0) throw new Error("no secrets were registered: the scan proved nothing");
  });
}
