// virsh as argument arrays, and reading what it prints. Every call names its
// connection URI (-c) so a fleet's hosts and session/system daemons never mix,
// and runs with LC_ALL=C so the "Key: value" output parses the same on every
// host.
import { randomBytes } from "crypto";
import type { CommandResult } from "../host";
import { commandLine, shScript } from "../host";

export function virsh(uri: string, ...args: string[]): string[] {
  return ["env", "LC_ALL=C", "virsh", "-q", "-c", uri, ...args];
}

/** One word for virsh's own command-line parser (quoted as a shell would: '…' with '\\'' for a quote). */
export function virshWord(arg: string): string {
  return /^[A-Za-z0-9_.+:\/=,@-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/**
 * Several virsh commands in one virsh process: one process on the host and
 * one connection to libvirt instead of one each. virsh runs every command
 * and exits with the last one's code, so each is followed by a random mark
 * (`echo` on stdout, `echo --err` on stderr); a command failed when its part
 * of stderr holds libvirt's "error:" lines. `split` gives one result per
 * command, each the whole run's result when virsh did not get as far
 * (not installed, no connection to libvirt).
 */
export function virshCommands(uri: string, commands: readonly (readonly string[])[]): { argv: string[]; split: (r: CommandResult) => CommandResult[] } {
  const mark = `pulumi-sriov-${randomBytes(8).toString("hex")}`;
  const script = commands.map((c) => `${c.map(virshWord).join(" ")}; echo ${mark}; echo --err ${mark}`).join("; ");
  const split = (r: CommandResult): CommandResult[] => {
    const outs = r.stdout.split(mark);
    const errs = r.stderr.split(`error: ${mark}\n`);
    if (outs.length !== commands.length + 1 || errs.length !== commands.length + 1) return commands.map(() => r);
    return commands.map((_, i) => {
      const failed = /^error: /m.test(errs[i]);
      return { code: failed ? 1 : 0, stdout: outs[i], stderr: errs[i] };
    });
  };
  return { argv: virsh(uri, script), split };
}

/** libvirt's own words from virsh's stderr, without the "error: " prefixes. */
export function libvirtMessage(r: Pick<CommandResult, "stderr" | "stdout">): string {
  const lines = (r.stderr || r.stdout)
    .split("\n")
    .map((l) => l.replace(/^error:\s*/, "").trim())
    // The XML reaches virsh as a private temp file; its name says nothing.
    .map((l) => l.replace(/^(Failed to \w+ (device|network|domain)) from \S+$/, "$1"))
    .filter(Boolean);
  return lines.join(": ") || "(no message)";
}

/** The object named does not exist (network or domain): "not found" for read and delete. */
export function isNotFound(r: Pick<CommandResult, "code" | "stderr">): boolean {
  return r.code !== 0 && /(Network|Domain) not found|no (network|domain) with matching (name|uuid)/i.test(r.stderr);
}

/** virsh itself is missing: exit 127 from env, or "not found" from the shell. */
export function isVirshMissing(r: Pick<CommandResult, "code" | "stderr">): boolean {
  return r.code === 127 || /virsh: (command )?not found|No such file or directory/.test(r.stderr);
}

/** Lines of "Key:   value" (net-info, dominfo) as a map. */
export function parseInfo(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    const m = /^([A-Za-z][A-Za-z0-9 ()_-]*):\s*(.*)$/.exec(line.trim());
    if (m) out[m[1].trim()] = m[2].trim();
  }
  return out;
}

/** Names printed one per line (net-list --name, list --name). */
export function parseNames(stdout: string): string[] {
  return stdout
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

/** "yes"/"no" fields of net-info and dominfo. */
export function infoFlag(info: Record<string, string>, key: string): boolean {
  return (info[key] ?? "").toLowerCase() === "yes";
}

/** Stands for the XML file in an argv given to `withXmlFile`. */
export const XML_FILE = "@xml-file@";

/**
 * virsh reads definitions from a file. The XML arrives on stdin (which over
 * SSH or sudo may be a socket that /dev/stdin cannot reopen), is kept in a
 * private temp file for the one command, and removed afterwards.
 */
export function withXmlFile(argv: readonly string[]): string[] {
  const script = [
    't=$(mktemp) || exit 1',
    "trap 'rm -f \"$t\"' EXIT",
    'cat >"$t" || exit 1',
    'for a do shift; if [ "$a" = ' + XML_FILE + ' ]; then set -- "$@" "$t"; else set -- "$@" "$a"; fi; done',
    '"$@"',
  ].join("\n");
  return shScript(script, ...argv);
}

/** How a command taking XML on stdin is shown in messages. */
export function shownWithXml(argv: readonly string[]): string {
  return commandLine(argv.map((a) => (a === XML_FILE ? "<xml>" : a)));
}
