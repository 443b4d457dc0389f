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
