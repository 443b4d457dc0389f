// The only module that imports ssh2. One SSH connection per
// (host, port, user, proxy) per process, shared by all resources: sessions
// per connection are capped with a queue, keepalive is on, a dropped
// connection is re-dialled on next use, and host keys are always verified.
import { createHash } from "crypto";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { Connection, connectionKey, describeHost } from "../connection";
import { HostConnectError, HostKeyError, registerSecret } from "./errors";
import { fingerprint, verifyHostKey } from "./hostkeys";
import { ExecResult, framed, OpenChannel, Transport, TransportStats } from "./transport";

/**
 * Channels open at once per connection. OpenSSH's default MaxSessions is 10;
 * sshd frees a slot a little after the channel closes, so stay below it.
 */
export const MAX_SESSIONS = 8;

const totals: TransportStats = { handshakes: 0, commands: 0, bytesSent: 0, bytesReceived: 0 };
const perHost = new Map<string, TransportStats>();

/** Counters for this process: handshakes, command executions, bytes. */
export function sshStats(): { total: TransportStats; hosts: Record<string, TransportStats> } {
  return { total: { ...totals }, hosts: Object.fromEntries([...perHost].map(([k, v]) => [k, { ...v }])) };
}
export function resetSshStats(): void {
  Object.assign(totals, { handshakes: 0, commands: 0, bytesSent: 0, bytesReceived: 0 });
  perHost.clear();
}
function count(key: string, field: keyof TransportStats, n = 1): void {
  totals[field] += n;
  let s = perHost.get(key);
  if (!s) perHost.set(key, (s = { handshakes: 0, commands: 0, bytesSent: 0, bytesReceived: 0 }));
  s[field] += n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Semaphore {
  private waiters: (() => void)[] = [];
  private used = 0;
  constructor(private readonly limit: number) {}
  async acquire(): Promise<() => void> {
    if (this.used >= this.limit) await new Promise<void>((r) => this.waiters.push(r));
    this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      this.waiters.shift()?.();
    };
  }
}

const RETRYABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN|Timed out while waiting for handshake|Connection lost before handshake|socket hang up|Not connected|No response from server/i;

function authOptions(c: Connection): Partial<ConnectConfig> {
  const agent = c.agentSocketPath ?? (c.password || c.privateKey ? undefined : process.env.SSH_AUTH_SOCK);
  return {
    username: c.user,
    password: c.password,
    privateKey: c.privateKey,
    passphrase: c.privateKeyPassword,
    agent,
    tryKeyboard: !!c.password,
  };
}

/** Opens one authenticated, host-key-verified ssh2 client, with dial retries. */
async function dial(c: Connection, key: string, sock?: NodeJS.ReadableStream): Promise<Client> {
  const name = describeHost(c);
  let lastError: HostConnectError | undefined;
  for (let attempt = 1; attempt <= c.dialErrorLimit; attempt++) {
    // A proxied socket is single-use: no retries on it, the caller re-dials the proxy.
    try {
      return await dialOnce(c, key, name, attempt === 1 ? sock : undefined);
    } catch (e) {
      lastError = e as HostConnectError;
      if (!lastError.retryable || sock) throw lastError;
      if (attempt < c.dialErrorLimit) await sleep(Math.min(500 * attempt, 3000));
    }
  }
  throw new HostConnectError(name, `gave up after ${c.dialErrorLimit} dial attempts: ${lastError?.message.replace(`${name}: `, "")}`, false);
}

function dialOnce(c: Connection, key: string, name: string, sock?: NodeJS.ReadableStream): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let keyProblem: { reason: string; fp: string } | undefined;
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(e);
    };
    client.on("ready", () => {
      settled = true;
      count(key, "handshakes");
      resolve(client);
    });
    client.on("error", (err: Error & { level?: string }) => {
      if (keyProblem) return fail(new HostKeyError(name, keyProblem.reason, keyProblem.fp));
      const msg = err.message || String(err);
      if (err.level === "client-authentication")
        return fail(new HostConnectError(name, `authentication failed for user ${c.user} (tried: ${authMethods(c)})`, false));
      fail(new HostConnectError(name, `cannot connect: ${msg}`, RETRYABLE.test(msg)));
    });
    client.on("close", () => fail(new HostConnectError(name, "connection closed during handshake", true)));
    client.on("keyboard-interactive", (_n, _i, _l, prompts, finish) => finish(prompts.map(() => c.password ?? "")));
    try {
      client.connect({
        host: c.host,
        port: c.port,
        ...authOptions(c),
        sock: sock as any,
        readyTimeout: Math.round(c.perDialTimeout * 1000),
        keepaliveInterval: 15000,
        keepaliveCountMax: 4,
        hostVerifier: (keyBlob: Buffer) => {
          const problem = verifyHostKey(c, keyBlob);
          if (problem) keyProblem = { reason: problem, fp: fingerprint(keyBlob) };
          return !problem;
        },
      });
    } catch (e) {
      // ssh2 throws synchronously for unusable keys (wrong passphrase, bad format).
      fail(new HostConnectError(name, `cannot use the given credentials: ${(e as Error).message}`, false));
    }
  });
}

function authMethods(c: Connection): string {
  const m: string[] = [];
  if (c.privateKey) m.push("privateKey");
  if (c.password) m.push("password");
  if (c.agentSocketPath || (!c.password && !c.privateKey && process.env.SSH_AUTH_SOCK)) m.push("agent");
  return m.join(", ") || "none";
}

/** One pooled SSH connection. */
class SshTransport implements Transport {
  readonly name: string;
  readonly needsSudo: boolean;
  private client?: Promise<Client>;
  private proxy?: SshTransport;
  private readonly sessions = new Semaphore(MAX_SESSIONS);

  constructor(private readonly conn: Connection, private readonly key: string) {
    this.name = describeHost(conn);
    this.needsSudo = conn.user !== "root";
    if (conn.proxy) this.proxy = pooled(conn.proxy);
  }

  private connect(): Promise<Client> {
    if (!this.client) {
      const p = (async () => {
        let sock: NodeJS.ReadableStream | undefined;
        if (this.proxy) sock = await this.proxy.forward(this.conn.host, this.conn.port);
        const client = await dial(this.conn, this.key, sock);
        const drop = () => {
          if (this.client === p) this.client = undefined;
        };
        client.on("close", drop);
        client.on("error", drop);
        return client;
      })();
      this.client = p;
      p.catch(() => {
        if (this.client === p) this.client = undefined;
      });
    }
    return this.client;
  }

  /** A TCP stream to host:port through this connection (for jump hosts). */
  async forward(host: string, port: number): Promise<NodeJS.ReadableStream> {
    const client = await this.connect();
    return new Promise((resolve, reject) =>
      client.forwardOut("127.0.0.1", 0, host, port, (err, stream) =>
        err ? reject(new HostConnectError(this.name, `jump host cannot reach ${host}:${port}: ${err.message}`, true)) : resolve(stream),
      ),
    );
  }

  /**
   * Opens an exec channel. `collect` is attached inside ssh2's callback:
   * a fast command's exit status can arrive in the same packet batch as the
   * channel confirmation, before any later listener would be attached.
   */
  private async channel(command: string, onData?: (d: Buffer, stderr: boolean) => void): Promise<{ stream: ClientChannel; done: Promise<ExecResult> }> {
    const release = await this.sessions.acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        const client = await this.connect();
        try {
          const opened = await new Promise<{ stream: ClientChannel; done: Promise<ExecResult> }>((resolve, reject) =>
            client.exec(command, (err, s) => (err ? reject(err) : resolve({ stream: s, done: this.collect(s, release, onData) }))),
          );
          count(this.key, "commands");
          count(this.key, "bytesSent", Buffer.byteLength(command));
          return opened;
        } catch (err) {
          // A refused channel ran nothing, so it is safe to ask again.
          const msg = (err as Error).message;
          if (attempt >= 5 || !/open failed|Channel open failure/i.test(msg))
            throw new HostConnectError(this.name, `cannot start a command: ${msg}`, true);
          await sleep(100 * attempt);
        }
      }
    } catch (e) {
      release();
      throw e;
    }
  }

  private collect(stream: ClientChannel, release: () => void, onData?: (d: Buffer, stderr: boolean) => void): Promise<ExecResult> {
    return new Promise((resolve) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let code: number | null = null;
      let signal: string | undefined;
      stream.on("data", (d: Buffer) => {
        out.push(d);
        onData?.(d, false);
      });
      stream.stderr.on("data", (d: Buffer) => {
        err.push(d);
        onData?.(d, true);
      });
      stream.on("exit", (c: number | null, s?: string) => {
        code = typeof c === "number" ? c : null;
        signal = s ?? undefined;
      });
      stream.on("close", () => {
        release();
        const stdout = Buffer.concat(out);
        const stderr = Buffer.concat(err);
        count(this.key, "bytesReceived", stdout.length + stderr.length);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  async exec(command: string, stdin?: Buffer | string): Promise<ExecResult> {
    const { stream, done } = await this.channel(command);
    if (stdin !== undefined) count(this.key, "bytesSent", Buffer.byteLength(stdin));
    stream.end(stdin);
    return done;
  }

  async open(command: string): Promise<OpenChannel> {
    let out = Buffer.alloc(0);
    let err = Buffer.alloc(0);
    // Each waiter looks at the output so far whenever more arrives.
    const waiters = new Set<() => void>();
    const { stream, done: closed } = await this.channel(command, (d, isErr) => {
      if (isErr) err = Buffer.concat([err, d]);
      else out = Buffer.concat([out, d]);
      for (const w of [...waiters]) w();
    });
    const when = <T>(pick: () => T | undefined): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        const look = () => {
          const v = pick();
          if (v === undefined) return;
          waiters.delete(look);
          resolve(v);
        };
        waiters.add(look);
        look();
        closed.then((r) => {
          if (!waiters.delete(look)) return;
          reject(Object.assign(new Error("command ended before printing what was waited for"), { result: r }));
        });
      });
    const firstLine = when(() => {
      const nl = out.indexOf(0x0a);
      return nl < 0 ? undefined : out.subarray(0, nl).toString();
    });
    firstLine.catch(() => undefined);
    return {
      firstLine,
      upTo: (mark) => when(() => framed(out, err, mark)),
      closed,
      close: async () => {
        stream.end();
        await closed;
      },
    };
  }

  /** Closes the connection (the next use re-dials). */
  async end(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) (await c.catch(() => undefined))?.end();
  }
}

const pool = new Map<string, SshTransport>();

function pooled(c: Connection): SshTransport {
  const key = connectionKey(c);
  // Different credentials for the same endpoint are a different connection.
  const poolKey = key + "#" + createHash("sha256").update(JSON.stringify(c)).digest("hex");
  let t = pool.get(poolKey);
  if (!t) {
    registerSecret(c.password);
    registerSecret(c.privateKey);
    registerSecret(c.privateKeyPassword);
    pool.set(poolKey, (t = new SshTransport(c, key)));
  }
  return t;
}

/** The shared transport for a connection (dialled lazily, on first use). */
export function sshTransport(c: Connection): Transport {
  return pooled(c);
}

/** Closes every pooled connection (tests, and the end of a CLI run). */
export async function closeAllConnections(): Promise<void> {
  const all = [...pool.values()];
  pool.clear();
  await Promise.all(all.map((t) => t.end()));
}

/** Closes the pooled connection to one host, e.g. before waiting out a reboot. */
export async function closeConnection(c: Connection): Promise<void> {
  await pooled(c).end();
}
