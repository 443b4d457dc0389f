// Operations on one host over a transport: commands from argument arrays,
// batches of commands in one round trip, atomic file writes, and the host
// lock. Resources talk to hosts only through this class.
import { AsyncLocalStorage } from "async_hooks";
import { createHash, randomBytes } from "crypto";
import { appendFileSync } from "fs";
import { HostCommandError, HostError } from "./errors";
import { commandLine, shScript } from "./quote";
import { ExecResult, Transport } from "./transport";

export type Argv = readonly string[];

export interface CommandResult {
  /** null when the command did not run (an earlier one failed in a stop-on-error batch). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Where the previous content of files we overwrite is kept on the host. */
export const BACKUP_DIR = "/var/lib/pulumi-sriov/backup";
/**
 * Where a create records what it found before changing anything, kept until
 * delete: a create cut off half-way, or whose answer was lost, is run again
 * and must still know what delete puts back.
 */
export const RECORD_DIR = "/var/lib/pulumi-sriov/found";
export const LOCK_FILE = "/run/lock/pulumi-sriov.lock";

const SUDO_PASSWORD = /sudo: (a password is required|a terminal is required|no tty present)/;

/**
 * PULUMI_SRIOV_TRACE names a local file that gets one JSON line per command
 * sent to a host ({ host, command }): what a run asked of each host, for an
 * operator's audit or a test. Secrets never reach command lines.
 */
function trace(host: string, command: string): void {
  const file = process.env.PULUMI_SRIOV_TRACE;
  if (file) appendFileSync(file, JSON.stringify({ host, command }) + "\n");
}

/** Content up to this size travels in the command line (one argument), so the write joins a batch. */
export const INLINE_WRITE_MAX = 16 * 1024;

// Few processes (each is a fork and exec, slow on a busy host): names by
// parameter expansion; an existing file's mode and owner come with the copy
// that becomes the temp file, whose content is then replaced. $5 is the
// content when it came in the command line; otherwise it comes on stdin and
// its hash ($3) proves it arrived whole.
const WRITE_FILE = [
  "set -e",
  'f="$1"; mode="$2"; sum="$3"; bak="$4"',
  'dir=${f%/*}; [ -n "$dir" ] || dir=/; [ -d "$dir" ] || mkdir -p -- "$dir"',
  't="$dir/.${f##*/}.tmp.$$"',
  "trap 'rm -f -- \"$t\"' EXIT",
  // A dropped connection must not kill the script before the EXIT trap removes
  // the temp file: writing to the closed channel fails instead of SIGPIPE, and
  // a hangup or termination exits through the trap.
  "trap '' PIPE; trap 'exit 129' HUP; trap 'exit 143' TERM",
  'if [ -e "$f" ]; then cp -p -- "$f" "$t"; else (umask 077; : >"$t"); fi',
  'if [ $# -ge 5 ]; then printf %s "$5" >"$t"; else cat >"$t"',
  // Hash from stdin: a checklist line would break on a file name holding a newline.
  '  [ "$(sha256sum <"$t")" = "$sum  -" ] || { echo "content arrived incomplete; $f left unchanged" >&2; exit 90; }; fi',
  'if [ -e "$f" ]; then b=${bak%/*}; [ -d "$b" ] || mkdir -p -- "$b"; cp -p -- "$f" "$bak"; else chmod -- "$mode" "$t"; fi',
  'sync -- "$t" 2>/dev/null || sync',
  'mv -f -- "$t" "$f"',
  "trap - EXIT",
].join("\n");

/**
 * The command that writes `path` atomically (temp file, sync, rename), keeping
 * the previous file under BACKUP_DIR. Small text goes in the command line;
 * larger content (or content with NUL bytes) on stdin, checked by its hash.
 */
export function writeFileCommand(path: string, content: string, mode = "0644"): { argv: string[]; stdin?: string } {
  if (Buffer.byteLength(content) <= INLINE_WRITE_MAX && !content.includes("\0"))
    return { argv: shScript(WRITE_FILE, path, mode, "-", BACKUP_DIR + path, content) };
  const sum = createHash("sha256").update(content).digest("hex");
  return { argv: shScript(WRITE_FILE, path, mode, sum, BACKUP_DIR + path), stdin: content };
}

/** The command that removes `path` (absent is fine), keeping a copy under BACKUP_DIR. */
export function removeFileArgv(path: string): string[] {
  return shScript('if [ -e "$1" ]; then b=${2%/*}; [ -d "$b" ] || mkdir -p -- "$b"; cp -p -- "$1" "$2"; rm -f -- "$1"; fi', path, BACKUP_DIR + path);
}

export class RemoteHost {
  private localLock: Promise<void> = Promise.resolve();
  private readonly holder = new AsyncLocalStorage<boolean>();

  constructor(readonly transport: Transport) {}

  get name(): string {
    return this.transport.name;
  }

  /** Wraps a command for a non-root user. */
  private wrap(command: string): string {
    return this.transport.needsSudo ? commandLine(["sudo", "-n", "--", "sh", "-c", command]) : command;
  }

  private async exec(command: string, shown: string, stdin?: string): Promise<ExecResult> {
    trace(this.name, command);
    const r = await this.transport.exec(this.wrap(command), stdin);
    const stderr = r.stderr.toString();
    if (this.transport.needsSudo && r.code === 1 && SUDO_PASSWORD.test(stderr))
      throw new HostError(
        this.name,
        `sudo needs a password for this user; non-root users need passwordless sudo (a sudoers rule with NOPASSWD) to run ${JSON.stringify(shown)}`,
      );
    return r;
  }

  /** Runs one command; fails with a HostCommandError unless it exits 0 (or `allowFail`). */
  async run(argv: Argv, opts: { stdin?: string; allowFail?: boolean; what?: string } = {}): Promise<CommandResult> {
    const line = commandLine(argv);
    const r = await this.exec(line, line, opts.stdin);
    const res = { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
    if (!opts.allowFail && r.code !== 0) throw new HostCommandError(this.name, line, r.code, res.stdout, res.stderr, opts.what);
    return res;
  }

  /**
   * Runs several commands in one round trip, in order, each with its own exit
   * code and output. With `stopOnError`, commands after a failure do not run
   * (their code is null).
   */
  async batch(cmds: readonly Argv[], opts: { stopOnError?: boolean } = {}): Promise<CommandResult[]> {
    if (cmds.length === 0) return [];
    const mark = `@@${randomBytes(12).toString("hex")}`;
    const shown = cmds.map((c) => commandLine(c)).join("; ");
    const r = await this.exec(batchScript(cmds, mark, opts.stopOnError), shown);
    if (r.code !== 0) throw new HostCommandError(this.name, shown, r.code, r.stdout.toString(), r.stderr.toString(), "batch");
    return parseBatch(r.stdout, r.stderr, mark, cmds.length, this.name);
  }

  /** Reads files in one round trip; a missing file reads as null. */
  async readFiles(paths: readonly string[]): Promise<Record<string, string | null>> {
    const res = await this.batch(paths.map((p) => shScript('if [ -e "$1" ]; then cat -- "$1"; else exit 44; fi', p)));
    const out: Record<string, string | null> = {};
    paths.forEach((p, i) => {
      const r = res[i];
      if (r.code === 44) out[p] = null;
      else if (r.code !== 0) throw new HostCommandError(this.name, commandLine(["cat", p]), r.code, r.stdout, r.stderr);
      else out[p] = r.stdout;
    });
    return out;
  }

  /**
   * Writes a file atomically: content goes to a temp file beside it, is
   * checked against its hash (a dropped connection cannot leave a partial
   * file), keeps the old file's mode and owner, and is renamed into place.
   * The old content is copied under BACKUP_DIR first.
   */
  async writeFile(path: string, content: string, opts: { mode?: string } = {}): Promise<void> {
    const w = writeFileCommand(path, content, opts.mode);
    const r = await this.exec(commandLine(w.argv), `write ${path}`, w.stdin);
    if (r.code !== 0) throw new HostCommandError(this.name, `write ${path}`, r.code, r.stdout.toString(), r.stderr.toString());
  }

  /** Removes a file, keeping a backup; absent is fine. */
  async removeFile(path: string): Promise<void> {
    await this.run(removeFileArgv(path), { what: `remove ${path}` });
  }

  /** Puts a file back as it was: previous content, or absent. */
  async restoreFile(path: string, previous: string | null): Promise<void> {
    if (previous === null) await this.removeFile(path);
    else await this.writeFile(path, previous);
  }

  /**
   * Serialises changes to this host: across concurrent calls in this process
   * (a queue) and across processes (flock on the host, held by a command that
   * stays open until `fn` settles; a dropped connection releases it).
   * `first`, a read, runs on the host as soon as the lock is held, in the same
   * round trip that takes it; `fn` gets its result (whatever its exit code).
   */
  async withLock<T>(fn: (first: CommandResult | undefined) => Promise<T>, opts: { first?: Argv; timeoutSeconds?: number } = {}): Promise<T> {
    // This call chain already holds it.
    if (this.holder.getStore()) return fn(opts.first ? await this.run(opts.first, { allowFail: true }) : undefined);
    const prev = this.localLock;
    let release!: () => void;
    this.localLock = new Promise<void>((r) => (release = r));
    await prev;
    try {
      const mark = `@@${randomBytes(12).toString("hex")}`;
      // The read runs with its own stdin closed: the lock's stdin is what holds it.
      const body = 'echo locked; if [ $# -gt 1 ]; then m=$1; shift; "$@" </dev/null; r=$?; printf \'\\n%s %s\\n\' "$m" "$r"; printf \'\\n%s\\n\' "$m" >&2; fi; exec cat >/dev/null';
      const cmd = commandLine([
        "flock",
        "-w",
        String(opts.timeoutSeconds ?? 600),
        LOCK_FILE,
        "sh",
        "-c",
        body,
        "sh",
        ...(opts.first ? [mark, ...opts.first] : []),
      ]);
      trace(this.name, cmd);
      // exec: the lock holds two processes on the host (flock and the cat it waits on), no shell.
      const ch = await this.transport.open(this.wrap(`[ -d /run/lock ] || mkdir -p /run/lock; exec ${cmd}`));
      let first: CommandResult | undefined;
      try {
        const line = await ch.firstLine;
        if (line.trim() !== "locked") throw new HostError(this.name, `unexpected reply taking the host lock: ${line}`);
        if (opts.first) first = await ch.upTo(mark);
      } catch (e) {
        await ch.close().catch(() => undefined);
        if (e instanceof HostError) throw e;
        const r = (e as { result?: ExecResult }).result;
        throw new HostCommandError(this.name, cmd, r?.code ?? null, "", r?.stderr.toString() ?? "", "cannot take the host lock");
      }
      try {
        return await this.holder.run(true, () => fn(first));
      } finally {
        await ch.close().catch(() => undefined);
      }
    } finally {
      release();
    }
  }
}

/**
 * The shell script of a batch: each command's output goes straight to the
 * channel, followed on stdout and stderr by a line with a boundary no output
 * can contain: no temp files and no helper processes, only the commands.
 */
function batchScript(cmds: readonly Argv[], mark: string, stopOnError = false): string {
  const lines: string[] = ["failed="];
  cmds.forEach((argv, i) => {
    const run = `(${commandLine(argv)}) </dev/null; r=$?`;
    const tail = `printf '\\n%s %s %s\\n' ${mark} ${i} "$r"; printf '\\n%s %s\\n' ${mark} ${i} >&2`;
    if (stopOnError) lines.push(`if [ -z "$failed" ]; then ${run}; [ "$r" = 0 ] || failed=1; else r=-; fi; ${tail}`);
    else lines.push(`${run}; ${tail}`);
  });
  return lines.join("\n");
}

/**
 * Reads as one command, to go where one command goes (withLock's `first`,
 * execute's `readBack`), and how to split its result into one per read.
 */
export function batchArgv(cmds: readonly Argv[]): { argv: string[]; split(r: CommandResult, host: string): CommandResult[] } {
  const mark = `@@${randomBytes(12).toString("hex")}`;
  return {
    argv: ["sh", "-c", batchScript(cmds, mark)],
    split(r, host) {
      const shown = cmds.map((c) => commandLine(c)).join("; ");
      if (r.code !== 0) throw new HostCommandError(host, shown, r.code, r.stdout, r.stderr, "batch");
      return parseBatch(Buffer.from(r.stdout), Buffer.from(r.stderr), mark, cmds.length, host);
    },
  };
}

/**
 * Splits a batch's stdout and stderr at the boundary lines: each command's
 * output is followed by "\n<mark> <i> <exit code or ->\n" on stdout and
 * "\n<mark> <i>\n" on stderr.
 */
export function parseBatch(out: Buffer, err: Buffer, mark: string, n: number, host: string): CommandResult[] {
  const res: CommandResult[] = [];
  let o = 0;
  let e = 0;
  for (let i = 0; i < n; i++) {
    const head = Buffer.from(`\n${mark} ${i} `);
    const at = out.indexOf(head, o);
    const errHead = Buffer.from(`\n${mark} ${i}\n`);
    const errAt = err.indexOf(errHead, e);
    const nl = at < 0 ? -1 : out.indexOf(0x0a, at + head.length);
    if (at < 0 || nl < 0 || errAt < 0) throw new HostError(host, `batch output ended early at command ${i + 1} of ${n}`);
    const rc = out.subarray(at + head.length, nl).toString();
    res.push({ code: rc === "-" ? null : Number(rc), stdout: out.subarray(o, at).toString(), stderr: err.subarray(e, errAt).toString() });
    o = nl + 1;
    e = errAt + errHead.length;
  }
  return res;
}
