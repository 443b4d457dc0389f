// Structured host errors: each names the host and, for commands, the quoted
// command, its exit code and the tail of stderr. No secret text ever enters
// a message: `redact` scrubs known secrets as a last line of defence.

const secrets = new Set<string>();

/** Registers secret text (passwords, keys) that must never appear in messages. */
export function registerSecret(value: string | undefined): void {
  if (!value) return;
  secrets.add(value);
  // Keys are multi-line: scrub every substantial line on its own too.
  for (const line of value.split(/\r?\n/)) if (line.trim().length >= 16) secrets.add(line.trim());
}

export function redact(text: string): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join("[secret]");
  return out;
}

export function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

export class HostError extends Error {
  constructor(readonly host: string, message: string) {
    super(redact(`${host}: ${message}`));
    this.name = "HostError";
  }
}

/** Could not connect or authenticate. */
export class HostConnectError extends HostError {
  constructor(host: string, message: string, readonly retryable: boolean) {
    super(host, message);
    this.name = "HostConnectError";
  }
}

/** The host presented a key that is not the pinned or known one. */
export class HostKeyError extends HostConnectError {
  constructor(host: string, message: string, readonly fingerprint: string) {
    super(host, message, false);
    this.name = "HostKeyError";
  }
}

/** A command ran and failed. */
export class HostCommandError extends HostError {
  constructor(
    host: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
    what?: string,
  ) {
    const status = exitCode === null ? "was interrupted (connection lost)" : `exited ${exitCode}`;
    const err = tail(stderr || stdout);
    super(host, `${what ? what + ": " : ""}command ${JSON.stringify(command)} ${status}${err ? `\n${err}` : ""}`);
    this.name = "HostCommandError";
  }
}

/** What the executor's undo steps did after a step failed. */
export interface Undone {
  /** What they put back (also listed in `applied`). */
  done: string[];
  /** The ones that failed, each with why. */
  failed: string[];
  /** The step's own failure, without the undo notes. */
  cause: Error;
}

/** Lists what part of a multi-step change was applied before a step failed. */
export class PartialApplyError extends Error {
  constructor(readonly host: string, readonly applied: string[], readonly notApplied: string[], readonly cause: Error, readonly undone?: Undone) {
    super(
      redact(
        `${cause.message}\napplied on ${host}: ${applied.length ? applied.join("; ") : "nothing"}\nnot applied: ${notApplied.length ? notApplied.join("; ") : "nothing"}`,
      ),
    );
    this.name = "PartialApplyError";
  }
}
