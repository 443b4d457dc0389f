// The one place where values become shell text. Everything that reaches a
// remote shell is an argument array passed through `commandLine`.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX shell quoting of one argument. */
export function quote(arg: string): string {
  if (arg === "") return "''";
  if (SAFE.test(arg)) return arg;
  return "'" + arg.replace(/'/g, `'"'"'`) + "'";
}

/** An argument array as one shell command line. */
export function commandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error("commandLine: empty argument list");
  return argv.map(quote).join(" ");
}

/**
 * A shell fragment run by `sh -c`, with its arguments passed as positional
 * parameters ($1, $2…) instead of being spliced into the script text.
 */
export function shScript(script: string, ...args: string[]): string[] {
  return ["sh", "-c", script, "sh", ...args];
}
