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

// systemd and udev read their own quoting, not the shell's: the unit files
// and rules this provider writes use the functions below, nothing else.

/**
 * Escapes systemd's specifiers and variables in an ExecStart= argument:
 * systemd expands `%x` and `$VAR` itself before the program sees them, so a
 * literal `%` or `$` is written doubled.
 */
export function systemdEscape(text: string): string {
  return text.replace(/%/g, "%%").replace(/\$/g, "$$$$");
}

/** One double-quoted ExecStart= argument that reaches the program unchanged (backslashes and quotes escaped, then specifiers). */
export function systemdQuote(arg: string): string {
  return `"${systemdEscape(arg.replace(/\\/g, "\\\\").replace(/"/g, '\\"'))}"`;
}

/**
 * One double-quoted udev rule value. udev has no escape for `"` and treats
 * `\` specially, so such values are refused rather than quoted.
 */
export function udevQuote(value: string): string {
  if (/["\\\n]/.test(value)) throw new Error(`udev rule value must not contain quotes, backslashes or newlines: ${value}`);
  return `"${value}"`;
}
