// What the host layer needs from a transport: run one command string and
// hold a long-running one open. SSH is the real one (ssh.ts); tests of pure
// logic may use a local shell.

export interface ExecResult {
  /** null when the command did not finish (connection lost, killed). */
  code: number | null;
  signal?: string;
  stdout: Buffer;
  stderr: Buffer;
}

export interface OpenChannel {
  /** Resolves with the first line the command prints on stdout. */
  firstLine: Promise<string>;
  /** Resolves with what the command framed after its first line (see `framed`), once all of it arrived. */
  upTo(mark: string): Promise<Framed>;
  /** Resolves when the command ends for any reason. */
  closed: Promise<ExecResult>;
  /** Ends stdin and waits for the command to exit. */
  close(): Promise<void>;
}

export interface Transport {
  /** "user@host:port", used in every message. */
  readonly name: string;
  /** Whether commands must be wrapped in `sudo -n`. */
  readonly needsSudo: boolean;
  exec(command: string, stdin?: Buffer | string): Promise<ExecResult>;
  open(command: string): Promise<OpenChannel>;
}

export interface TransportStats {
  handshakes: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
}

/** A command's output and exit code, as framed by a longer-running command. */
export interface Framed {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Finds a framed result in a channel's output so far: after the first line
 * of stdout, output followed by "\n<mark> <exit code>\n" on stdout and
 * "\n<mark>\n" on stderr (as the host lock prints the read it runs).
 * undefined until all of it has arrived.
 */
export function framed(out: Buffer, err: Buffer, mark: string): Framed | undefined {
  const nl = out.indexOf(0x0a);
  if (nl < 0) return undefined;
  const head = Buffer.from(`\n${mark} `);
  const at = out.indexOf(head, nl);
  const end = at < 0 ? -1 : out.indexOf(0x0a, at + head.length);
  const errAt = err.indexOf(Buffer.from(`\n${mark}\n`));
  if (end < 0 || errAt < 0) return undefined;
  return { code: Number(out.subarray(at + head.length, end).toString()), stdout: out.subarray(nl + 1, at).toString(), stderr: err.subarray(0, errAt).toString() };
}
