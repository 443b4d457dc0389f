// Real OpenSSH servers on loopback for the host-layer tests.
//
// Each TestSshd runs /usr/sbin/sshd in the foreground (-D) as a child of the
// test process, with its own sshd_config, host key, PidFile, log (-E) and
// AuthorizedKeysFile directory inside a private temporary directory. Nothing
// under ~/.ssh or /etc/ssh is read or changed. Two system users are created
// idempotently for the non-root paths:
//
//   sriovtest-admin  NOPASSWD sudo (`sudo -n` works)
//   sriovtest-plain  sudo requires a password (`sudo -n` fails with
//                    "a password is required")
//
// Client keys are generated once per test process and shared by every
// TestSshd of that process, so one key works against a jump host and its
// target alike. The users' passwords are random, set by the first test
// process that needs them and shared with test processes running at the same
// time; the last one to exit disables password login again. Root logs in by
// key only (PermitRootLogin prohibit-password) through the fixture's own
// authorized_keys file. When the process exits, the servers and their
// connections are killed and the temporary directories removed; setpriv's
// parent-death signal takes the servers down even if the process is killed.
//
// Requires root, openssh-server, openssh-client (ssh-keygen), sudo, and
// useradd/chpasswd/usermod (passwd package).

import { execFile, spawn, spawnSync, ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { sleep } from "../../lab/process";

export interface SshdOptions {
  /** Port to listen on; 0 or absent picks a free one. */
  port?: number;
  /** PasswordAuthentication; default true. */
  passwordAuth?: boolean;
  /** MaxSessions (channels per connection); default 10, as OpenSSH. */
  maxSessions?: number;
  /** AllowTcpForwarding (needed by a jump host); default false. */
  allowTcpForwarding?: boolean;
  /** Host key algorithm; default "ed25519". */
  hostKeyType?: "ed25519" | "rsa";
  /**
   * Let bash source the users' startup files (~/.bashrc) for commands, as a
   * stock sshd does; default false. A developer's ~/.bashrc (pyenv, nvm…)
   * can add seconds per command under load, which would make timing
   * assertions depend on the machine.
   */
  shellStartupFiles?: boolean;
}

/** Key material shared by every account the fixture logs in as. */
export interface TestKeyUser {
  name: string;
  /** Unencrypted OpenSSH private key text. */
  privateKey: string;
  /** The same key, encrypted with `passphrase`. */
  encryptedPrivateKey: string;
  passphrase: string;
  /** Public key line "ssh-ed25519 AAAA… comment". */
  publicKey: string;
  /** Files holding the keys above (mode 0600), for the ssh CLI's -i. */
  privateKeyPath: string;
  encryptedPrivateKeyPath: string;
  home: string;
}

export interface TestUser extends TestKeyUser {
  /** Login password: random, shared by the test processes running at the same time. */
  password: string;
}

export interface TestUsers {
  /** Key login only; root's password is never touched. */
  root: TestKeyUser;
  /** Non-root, NOPASSWD sudo. */
  admin: TestUser;
  /** Non-root, sudo requires a password. */
  plain: TestUser;
}

export const ADMIN_USER = "sriovtest-admin";
export const PLAIN_USER = "sriovtest-plain";
const SSHD = "/usr/sbin/sshd";
const HOST = "127.0.0.1";

// ---------------------------------------------------------------------------
// small process helpers

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { encoding: "utf8", maxBuffer: 16 * 1024 * 1024, env: { PATH: sbinPath(), LC_ALL: "C" } },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === "string") {
          reject(new Error(`${cmd}: ${err.message}`));
          return;
        }
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function runOk(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

function sbinPath(): string {
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}


/** Map pid → ppid for every live, non-zombie process. */
function processTable(): Map<number, number> {
  const table = new Map<number, number>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid ..." — comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") continue;
    table.set(Number(entry), Number(fields[1]));
  }
  return table;
}

/** All live descendants of `root` (not `root` itself). */
function descendants(root: number): number[] {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of table) {
    const list = children.get(ppid) ?? [];
    list.push(pid);
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

async function waitGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!pids.some(alive)) return true;
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true once something on host:port sends an SSH banner. */
function bannerSeen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: HOST, port });
    let data = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(2000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("data", (chunk) => {
      data += chunk.toString("latin1");
      if (data.includes("\n")) done(data.startsWith("SSH-2.0-"));
    });
    sock.on("close", () => done(false));
  });
}

async function sshdVersion(): Promise<[number, number]> {
  const r = await run(SSHD, ["-V"]);
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(r.stderr + r.stdout);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

// ---------------------------------------------------------------------------
// test users, shared by every test process on the machine
//
// The users are system-wide, so their passwords are too: the first process
// to need them sets fresh random ones, later processes running at the same
// time reuse them (root-only state in /run/sriovtest), and the last one to
// exit disables password login again. A lock directory serialises this
// between processes.

const STATE_DIR = "/run/sriovtest";
const LOCK_DIR = path.join(STATE_DIR, "lock");
const HOLDERS_DIR = path.join(STATE_DIR, "holders");
const PASSWORDS_FILE = path.join(STATE_DIR, "passwords.json");

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Process start time (clock ticks since boot), to tell a pid from its reuse. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function ownerAlive(file: string): boolean {
  let owner: string;
  try {
    owner = fs.readFileSync(file, "utf8").trim();
  } catch {
    return false;
  }
  const [pid, start] = owner.split(" ");
  return start !== undefined && startTime(Number(pid)) === start;
}

const me = () => `${process.pid} ${startTime(process.pid)}`;

/** mkdtemp that records its owner, so a later run can sweep it if the owner was killed. */
async function ownedTempDir(prefix: string, mode: number): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  await fsp.chmod(dir, mode);
  await fsp.writeFile(path.join(dir, ".owner"), me(), { mode: 0o600 });
  return dir;
}

/** Remove fixture directories left behind by test processes that were killed. */
function sweepStaleDirs(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(os.tmpdir());
  } catch {
    return;
  }
  for (const name of entries) {
    if (!/^sriovtest-(keys|sshd)-/.test(name)) continue;
    const dir = path.join(os.tmpdir(), name);
    try {
      const owner = path.join(dir, ".owner");
      const stale = fs.existsSync(owner)
        ? !ownerAlive(owner)
        : Date.now() - fs.statSync(dir).mtimeMs > 10 * 60 * 1000;
      if (stale) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // raced with its owner's own cleanup
    }
  }
}

function withMachineLock<T>(fn: () => T): T {
  fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + 60000;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const ownerFile = path.join(LOCK_DIR, "owner");
    let age = 0;
    try {
      age = Date.now() - fs.statSync(LOCK_DIR).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    // The owner writes its identity right after mkdir; a lock without a live
    // owner after a grace period was left by a killed process.
    if (!ownerAlive(ownerFile) && age > 2000) {
      fs.rmSync(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${LOCK_DIR}`);
    sleepSync(25);
  }
  try {
    fs.writeFileSync(path.join(LOCK_DIR, "owner"), me());
    return fn();
  } finally {
    fs.rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

function runSync(cmd: string, args: string[], input?: string): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    input,
    env: { PATH: sbinPath(), LC_ALL: "C" },
    timeout: 60000,
  });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function runSyncOk(cmd: string, args: string[], input?: string): string {
  const r = runSync(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Live processes (other than this one) currently using the test users. */
function otherHolders(): string[] {
  fs.mkdirSync(HOLDERS_DIR, { recursive: true, mode: 0o700 });
  const live: string[] = [];
  for (const name of fs.readdirSync(HOLDERS_DIR)) {
    const file = path.join(HOLDERS_DIR, name);
    if (name === String(process.pid)) continue;
    if (ownerAlive(file)) live.push(name);
    else fs.rmSync(file, { force: true });
  }
  return live;
}

function ensureUserSync(name: string): string {
  if (runSync("getent", ["passwd", name]).code !== 0) {
    runSyncOk("useradd", ["-m", "-U", "-s", "/bin/bash", "-c", "pulumi-sriov test user", name]);
  }
  const entry = runSyncOk("getent", ["passwd", name]).trim().split(":");
  if (entry[6] !== "/bin/bash") runSyncOk("usermod", ["-s", "/bin/bash", name]);
  fs.mkdirSync(entry[5], { recursive: true });
  return entry[5];
}

function installSudoRuleSync(file: string, content: string): void {
  try {
    if (fs.readFileSync(file, "utf8") === content) return;
  } catch {
    // not there yet
  }
  fs.mkdirSync("/etc/sudoers.d", { recursive: true, mode: 0o755 });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content, { mode: 0o440 });
  const check = runSync("visudo", ["-cf", tmp]);
  if (check.code !== 0) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`visudo rejected ${file}: ${check.stdout}${check.stderr}`);
  }
  fs.renameSync(tmp, file);
}

interface Passwords {
  admin: string;
  plain: string;
}

/** Create the users and sudo rules; return the passwords in force. */
function acquireUsers(): { homes: [string, string]; passwords: Passwords } {
  if (!fs.existsSync("/usr/bin/sudo") && runSync("sh", ["-c", "command -v sudo"]).code !== 0) {
    throw new Error("sudo is not installed (Debian package: sudo)");
  }
  return withMachineLock(() => {
    const homes: [string, string] = [ensureUserSync(ADMIN_USER), ensureUserSync(PLAIN_USER)];
    installSudoRuleSync(`/etc/sudoers.d/${ADMIN_USER}`, `${ADMIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n`);
    installSudoRuleSync(
      `/etc/sudoers.d/${PLAIN_USER}`,
      `Defaults:${PLAIN_USER} lecture=never\n${PLAIN_USER} ALL=(ALL:ALL) ALL\n`,
    );
    let passwords: Passwords | undefined;
    if (otherHolders().length > 0) {
      try {
        passwords = JSON.parse(fs.readFileSync(PASSWORDS_FILE, "utf8")) as Passwords;
      } catch {
        passwords = undefined;
      }
    }
    if (!passwords?.admin || !passwords.plain) {
      passwords = {
        admin: randomBytes(15).toString("base64url"),
        plain: randomBytes(15).toString("base64url"),
      };
      fs.writeFileSync(PASSWORDS_FILE, JSON.stringify(passwords), { mode: 0o600 });
      runSyncOk("chpasswd", [], `${ADMIN_USER}:${passwords.admin}\n${PLAIN_USER}:${passwords.plain}\n`);
    }
    fs.writeFileSync(path.join(HOLDERS_DIR, String(process.pid)), me(), { mode: 0o600 });
    return { homes, passwords };
  });
}

/** This process is done with the users; the last one out disables their passwords. */
function releaseUsers(): void {
  withMachineLock(() => {
    fs.rmSync(path.join(HOLDERS_DIR, String(process.pid)), { force: true });
    if (otherHolders().length > 0) return;
    // '*' disables password login without locking the account (key login
    // keeps working, which matters to nobody once no fixture runs).
    for (const name of [ADMIN_USER, PLAIN_USER]) runSync("usermod", ["-p", "*", name]);
    fs.rmSync(PASSWORDS_FILE, { force: true });
  });
}

// ---------------------------------------------------------------------------
// per-process keys

interface ProcessState {
  dir: string;
  users: TestUsers;
  version: [number, number];
}

let processState: Promise<ProcessState> | undefined;
let processStateSync: ProcessState | undefined;
let usersAcquired = false;
const live = new Set<TestSshd>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const sshd of live) sshd.killNow();
    if (usersAcquired) {
      try {
        releaseUsers();
      } catch {
        // best effort at exit
      }
    }
    if (processStateSync) fs.rmSync(processStateSync.dir, { recursive: true, force: true });
  });
}

async function makeKey(dir: string, name: string): Promise<TestKeyUser> {
  const keyPath = path.join(dir, `${name}_ed25519`);
  const encPath = path.join(dir, `${name}_ed25519_encrypted`);
  const passphrase = randomBytes(12).toString("base64url");
  await runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@sriovtest`, "-f", keyPath]);
  await fsp.copyFile(keyPath, encPath);
  await fsp.chmod(encPath, 0o600);
  await runOk("ssh-keygen", ["-q", "-p", "-P", "", "-N", passphrase, "-f", encPath]);
  return {
    name,
    privateKey: await fsp.readFile(keyPath, "utf8"),
    encryptedPrivateKey: await fsp.readFile(encPath, "utf8"),
    passphrase,
    publicKey: (await fsp.readFile(`${keyPath}.pub`, "utf8")).trim(),
    privateKeyPath: keyPath,
    encryptedPrivateKeyPath: encPath,
    home: "",
  };
}

async function setupProcess(): Promise<ProcessState> {
  if (process.getuid?.() !== 0) throw new Error("TestSshd needs root (it creates test users)");
  if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} not found (Debian package: openssh-server)`);
  installExitHook();
  sweepStaleDirs();
  const dir = await ownedTempDir("sriovtest-keys-", 0o700);
  processStateSync = { dir, version: [0, 0], users: undefined as unknown as TestUsers };
  const [rootKey, adminKey, plainKey, version] = await Promise.all([
    makeKey(dir, "root"),
    makeKey(dir, ADMIN_USER),
    makeKey(dir, PLAIN_USER),
    sshdVersion(),
  ]);
  rootKey.home = "/root";
  usersAcquired = true;
  const { homes, passwords } = acquireUsers();
  const state: ProcessState = {
    dir,
    version,
    users: {
      root: rootKey,
      admin: { ...adminKey, home: homes[0], password: passwords.admin },
      plain: { ...plainKey, home: homes[1], password: passwords.plain },
    },
  };
  processStateSync = state;
  return state;
}

function processSetup(): Promise<ProcessState> {
  if (!processState) {
    processState = setupProcess();
    processState.catch(() => {
      processState = undefined;
    });
  }
  return processState;
}

// ---------------------------------------------------------------------------

export class TestSshd {
  readonly host = HOST;
  port: number;
  hostKey = "";
  hostKeyFingerprint = "";
  readonly users: TestUsers;
  /** The private directory holding sshd_config, host keys, pid file and log. */
  readonly dir: string;
  readonly logPath: string;
  readonly configPath: string;
  readonly options: Required<SshdOptions>;

  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly version: [number, number];
  private stopped = false;

  private constructor(state: ProcessState, dir: string, options: Required<SshdOptions>) {
    this.users = state.users;
    this.version = state.version;
    this.dir = dir;
    this.options = options;
    this.port = options.port;
    this.logPath = path.join(dir, "sshd.log");
    this.configPath = path.join(dir, "sshd_config");
  }

  static async start(opts: SshdOptions = {}): Promise<TestSshd> {
    const options: Required<SshdOptions> = {
      port: opts.port ?? 0,
      passwordAuth: opts.passwordAuth ?? true,
      maxSessions: opts.maxSessions ?? 10,
      allowTcpForwarding: opts.allowTcpForwarding ?? false,
      hostKeyType: opts.hostKeyType ?? "ed25519",
      shellStartupFiles: opts.shellStartupFiles ?? false,
    };
    const state = await processSetup();
    await fsp.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    // Authorized keys are read with the target user's uid: the path must be
    // traversable and the files readable by the test users.
    const dir = await ownedTempDir("sriovtest-sshd-", 0o755);
    const sshd = new TestSshd(state, dir, options);
    live.add(sshd);
    try {
      const akDir = path.join(dir, "authorized_keys");
      await fsp.mkdir(akDir, { mode: 0o755 });
      await fsp.chmod(akDir, 0o755);
      for (const user of [state.users.root, state.users.admin, state.users.plain]) {
        await fsp.writeFile(path.join(akDir, user.name), `${user.publicKey}\n`, { mode: 0o644 });
      }
      await sshd.generateHostKey();
      await sshd.launch(options.port === 0);
    } catch (e) {
      await sshd.stop();
      throw e;
    }
    return sshd;
  }

  /** OpenSSH known_hosts line for this server. */
  knownHostsLine(): string {
    const name = this.port === 22 ? this.host : `[${this.host}]:${this.port}`;
    return `${name} ${this.hostKey}`;
  }

  /** PID of the listening sshd. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The sshd log so far (LogLevel VERBOSE). */
  async log(): Promise<string> {
    try {
      return await fsp.readFile(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  /** Successful authentications (one per SSH connection) since start(). */
  async connectionCount(): Promise<number> {
    const text = await this.log();
    return (text.match(/^.*\bAccepted (?:publickey|password|keyboard-interactive\S*|hostbased) for /gm) ?? [])
      .length;
  }

  /** Replace the host key and restart on the same port. Open connections are dropped. */
  async rotateHostKey(): Promise<void> {
    this.assertRunning();
    const previous = this.hostKey;
    await this.halt();
    await this.generateHostKey();
    if (this.hostKey === previous) throw new Error("ssh-keygen produced the same host key twice");
    await this.launch(false);
  }

  /** Kill every per-connection sshd (and what runs under it); the listener keeps accepting. */
  async killConnections(): Promise<void> {
    this.assertRunning();
    const pids = descendants(this.child!.pid!);
    signal(pids, "SIGKILL");
    if (!(await waitGone(pids, 5000))) {
      throw new Error(`connection processes still alive after SIGKILL: ${pids.filter(alive).join(" ")}`);
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.halt();
    live.delete(this);
    await fsp.rm(this.dir, { recursive: true, force: true });
  }

  /** Synchronous teardown for process exit. */
  killNow(): void {
    const pid = this.child?.pid;
    if (pid !== undefined && this.child!.exitCode === null && this.child!.signalCode === null) {
      signal([pid], "SIGSTOP");
      signal([...descendants(pid), pid], "SIGKILL");
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // -------------------------------------------------------------------------

  private assertRunning(): void {
    if (this.stopped || !this.child) throw new Error("sshd is not running");
  }

  private async generateHostKey(): Promise<void> {
    const type = this.options.hostKeyType;
    const keyPath = path.join(this.dir, `ssh_host_${type}_key`);
    await fsp.rm(keyPath, { force: true });
    await fsp.rm(`${keyPath}.pub`, { force: true });
    const bits = type === "rsa" ? ["-b", "3072"] : [];
    const args = ["-q", "-t", type, ...bits, "-N", "", "-C", "", "-f", keyPath];
    await runOk("ssh-keygen", args);
    const pub = (await fsp.readFile(`${keyPath}.pub`, "utf8")).trim().split(/\s+/);
    this.hostKey = `${pub[0]} ${pub[1]}`;
    const fp = (await runOk("ssh-keygen", ["-l", "-E", "sha256", "-f", `${keyPath}.pub`])).trim().split(/\s+/)[1];
    if (!fp?.startsWith("SHA256:")) throw new Error(`unexpected ssh-keygen -l output for ${keyPath}.pub`);
    this.hostKeyFingerprint = fp;
  }

  private writeConfig(): Promise<void> {
    const o = this.options;
    const keyPath = path.join(this.dir, `ssh_host_${o.hostKeyType}_key`);
    const lines = [
      `ListenAddress ${HOST}`,
      `Port ${this.port}`,
      `HostKey ${keyPath}`,
      `PidFile ${path.join(this.dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${path.join(this.dir, "authorized_keys")}/%u`,
      "StrictModes no",
      "UsePAM no",
      "PubkeyAuthentication yes",
      `PasswordAuthentication ${o.passwordAuth ? "yes" : "no"}`,
      "KbdInteractiveAuthentication no",
      "PermitEmptyPasswords no",
      "PermitRootLogin prohibit-password",
      `AllowUsers root ${ADMIN_USER} ${PLAIN_USER}`,
      `MaxSessions ${o.maxSessions}`,
      "MaxStartups 100:30:200",
      "MaxAuthTries 6",
      "LoginGraceTime 30",
      `AllowTcpForwarding ${o.allowTcpForwarding ? "yes" : "no"}`,
      "X11Forwarding no",
      "PermitTunnel no",
      "UseDNS no",
      "PrintMotd no",
      "PrintLastLog no",
      "LogLevel VERBOSE",
      "Subsystem sftp internal-sftp",
    ];
    // bash sources ~/.bashrc for commands run by sshd only when SHLVL < 2
    // after its own increment; starting from SHLVL=1 skips it.
    if (!o.shellStartupFiles) lines.push("SetEnv SHLVL=1");
    // OpenSSH 9.8 penalises sources that fail authentication; the tests fail
    // authentication on purpose from 127.0.0.1.
    const [major, minor] = this.version;
    if (major > 9 || (major === 9 && minor >= 8)) lines.push("PerSourcePenalties no");
    return fsp.writeFile(this.configPath, lines.join("\n") + "\n", { mode: 0o644 });
  }

  private async launch(pickPort: boolean): Promise<void> {
    const attempts = pickPort ? 5 : 1;
    let lastError: Error | undefined;
    for (let i = 0; i < attempts; i++) {
      if (pickPort) this.port = await freePort();
      await this.writeConfig();
      const test = await run(SSHD, ["-t", "-f", this.configPath]);
      if (test.code !== 0) throw new Error(`sshd -t rejected ${this.configPath}: ${test.stderr.trim()}`);
      try {
        await this.spawnAndWait();
        return;
      } catch (e) {
        lastError = e as Error;
        if (!/Address already in use|Cannot bind/.test(lastError.message)) throw lastError;
      }
    }
    throw lastError!;
  }

  private async spawnAndWait(): Promise<void> {
    const logStart = (await fsp.stat(this.logPath).catch(() => undefined))?.size ?? 0;
    const logFd = fs.openSync(this.logPath, "a", 0o644);
    // setpriv makes the listener die with this process even if it is killed
    // without running its exit handlers.
    const argv = [SSHD, "-D", "-f", this.configPath, "-E", this.logPath];
    const child = fs.existsSync("/usr/bin/setpriv")
      ? spawn("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", ...argv], {
          stdio: ["ignore", logFd, logFd],
          env: { PATH: sbinPath(), LC_ALL: "C" },
        })
      : spawn(SSHD, argv.slice(1), { stdio: ["ignore", logFd, logFd], env: { PATH: sbinPath(), LC_ALL: "C" } });
    fs.closeSync(logFd);
    child.unref();
    this.child = child;
    let exitInfo: string | undefined;
    this.exited = new Promise<void>((resolve) => {
      child.once("exit", (code, sig) => {
        exitInfo = sig ? `signal ${sig}` : `code ${code}`;
        resolve();
      });
      child.once("error", (err) => {
        exitInfo = err.message;
        resolve();
      });
    });

    const listening = `Server listening on ${HOST} port ${this.port}.`;
    const deadline = Date.now() + 15000;
    for (;;) {
      if (exitInfo !== undefined) {
        const tail = (await this.log()).slice(logStart).trim().split("\n").slice(-10).join("\n");
        throw new Error(`sshd exited (${exitInfo}) before listening on port ${this.port}:\n${tail}`);
      }
      const text = (await this.log()).slice(logStart);
      if (text.includes(listening) && (await bannerSeen(this.port))) return;
      if (Date.now() > deadline) {
        await this.halt();
        throw new Error(`sshd did not accept connections on ${HOST}:${this.port} within 15 s`);
      }
      await sleep(25);
    }
  }

  /** Stop the listener and every connection under it; wait until they are gone. */
  private async halt(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    if (child.exitCode === null && child.signalCode === null) {
      // Freeze the listener so it cannot fork while its tree is collected.
      signal([child.pid], "SIGSTOP");
      const conns = descendants(child.pid);
      signal([...conns, child.pid], "SIGKILL");
      await this.exited;
      await waitGone(conns, 5000);
    }
    this.child = undefined;
  }
}
