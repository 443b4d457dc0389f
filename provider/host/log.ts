// The one diagnostics channel. Inside the dynamic provider process the
// engine's log (pulumi.log) is not wired to the engine; what the provider
// process prints is what `pulumi up` shows as diagnostics. So every progress
// line goes through here, in one format: `<kind> <id> on <host>: <line>`.

export type Log = (line: string) => void;

/** A log line's prefix: the resource kind, what it acts on (when known), the host. */
export function logLine(kind: string, id: string | undefined, host: string, line: string): string {
  return `${kind}${id ? ` ${id}` : ""} on ${host}: ${line}`;
}

/** A logger for one resource on one host. */
export function loggerFor(kind: string, id: string | undefined, host: string): Log {
  return (line) => console.log(logLine(kind, id, host, line));
}

/** Logs nothing (tests, reads). */
export const quiet: Log = () => undefined;
