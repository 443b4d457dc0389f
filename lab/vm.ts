/**
 * LabVm: one QEMU guest with emulated SR-IOV NICs, reachable over SSH on a
 * loopback port.
 *
 * Machine: q35 under TCG (`-cpu max`), an emulated Intel IOMMU with interrupt
 * remapping, two `igb` NICs (82576, sriov_totalvfs 7) each behind its own
 * pcie-root-port and joined by a QEMU hub so both have a link, and a
 * virtio-net management NIC on user networking that forwards 127.0.0.1:<port>
 * to the guest's port 22. Each run boots a fresh copy-on-write overlay of
 * the cached base image, so tests start clean.
 *
 * The QEMU process is killed when stop() is called, when this process exits
 * (also on SIGINT/SIGTERM/SIGHUP), and by a small watchdog if this process
 * is killed outright.
 */
import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { ensureImage, ensureSystemDeps, LAB_DIR, LabImage } from "./image";
import { pidAlive, sleep } from "./process";

export const QEMU = process.env.LAB_QEMU ?? "qemu-system-x86_64";

/** MAC addresses of the two igb PFs, in PCI order (bus 1, bus 2). */
export const PF_MACS: readonly string[] = Object.freeze(["52:54:00:5a:00:01", "52:54:00:5a:00:02"]);
/** MAC address of the virtio management NIC. */
export const MGMT_MAC = "52:54:00:5a:00:10";

export interface LabVmOptions {
  /** Used in log lines and run directory names (default "lab"). */
  name?: string;
  /** Guest memory in MiB (default 2048, or LAB_MEMORY_MB). */
  memoryMb?: number;
  /** Guest vCPUs (default 1, or LAB_SMP): under TCG a second vCPU slows fork-heavy work (update-grub) about 2×. */
  smp?: number;
  /**
   * Keep the overlay disk across runs in `.lab/vms/<name>/` instead of a fresh
   * one per run (recreated when the base image changes).
   */
  persistentOverlay?: boolean;
  /** How long to wait for SSH after starting QEMU (default 600 s, or LAB_BOOT_TIMEOUT_S). */
  bootTimeoutMs?: number;
  /** Progress sink (default: stderr). */
  log?: (line: string) => void;
  /** Use this image instead of building/looking up the cached one. */
  image?: LabImage;
  /**
   * Forward SSH from this loopback port (default: a free one). A fixed port
   * keeps the connection, and so a stack's state, the same across runs.
   */
  sshPort?: number;
}

/** Same field names as @pulumi/command's remote `connection`. */
export interface LabConnection {
  host: string;
  port: number;
  user: string;
  /** Client private key text (OpenSSH format). */
  privateKey: string;
  /** The guest's host public key line, "ssh-ed25519 AAAA...". */
  hostKey: string;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command (the local ssh client) after this long (default 300 s). */
  timeoutMs?: number;
  /** Text written to the command's stdin. */
  input?: string;
}

const defaultLog = (line: string) => process.stderr.write(line.endsWith("\n") ? line : line + "\n");
const envNumber = (name: string): number | undefined => {
  const v = process.env[name];
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
};

// ---------------------------------------------------------------------------
// Process-wide bookkeeping: every QEMU we started is killed when we go away.

const live = new Set<LabVm>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", () => {
    for (const vm of [...live]) vm.killSync();
    for (const t of pendingTickets) fs.rmSync(t, { force: true });
  });
  const signals: [NodeJS.Signals, number][] = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];
  for (const [sig, code] of signals) {
    process.on(sig, () => {
      for (const vm of [...live]) vm.killSync();
      for (const t of pendingTickets) fs.rmSync(t, { force: true });
      // Keep the default meaning of the signal: terminate.
      process.exit(code);
    });
  }
}


// ---------------------------------------------------------------------------
// At most LAB_MAX_VMS (default 2) lab guests run at once on one machine:
// TCG guests are CPU-bound and time out when too many share the cores.

const SLOTS_DIR = path.join(os.tmpdir(), "pulumi-sriov-lab-slots");

const pendingTickets = new Set<string>();

/** Reads the pid in a slot or ticket file; 0 if unreadable. */
function ownerOf(file: string): number {
  try {
    return Number(fs.readFileSync(file, "utf8").trim()) || 0;
  } catch {
    return 0;
  }
}

/**
 * Takes one of LAB_MAX_VMS slot files, first come first served: waiters queue
 * with a ticket file, and only the oldest live waiters may take free slots.
 */
async function acquireSlot(name: string, log: (l: string) => void): Promise<string> {
  const max = envNumber("LAB_MAX_VMS") ?? 2;
  fs.mkdirSync(SLOTS_DIR, { recursive: true, mode: 0o1777 });
  const ticketName = `wait-${String(Date.now()).padStart(15, "0")}-${process.pid}-${runCounter}`;
  const ticket = path.join(SLOTS_DIR, ticketName);
  fs.writeFileSync(ticket, String(process.pid));
  pendingTickets.add(ticket);
  const started = Date.now();
  let announced = 0;
  try {
    for (;;) {
      const free: string[] = [];
      for (let i = 0; i < max; i++) {
        const slot = path.join(SLOTS_DIR, `slot-${i}`);
        if (fs.existsSync(slot)) {
          const owner = ownerOf(slot);
          if (owner && pidAlive(owner)) continue;
          fs.rmSync(slot, { force: true });
        }
        free.push(slot);
      }
      const waiters = fs.readdirSync(SLOTS_DIR).filter((f) => f.startsWith("wait-")).sort()
        .filter((f) => {
          if (f === ticketName) return true;
          const owner = ownerOf(path.join(SLOTS_DIR, f));
          if (owner && pidAlive(owner)) return true;
          fs.rmSync(path.join(SLOTS_DIR, f), { force: true });
          return false;
        });
      if (waiters.indexOf(ticketName) < free.length) {
        for (const slot of free) {
          try {
            fs.writeFileSync(slot, String(process.pid), { flag: "wx" });
            return slot;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
          }
        }
      }
      const waited = Date.now() - started;
      if (waited >= announced) {
        log(`lab[${name}]: ${max} lab VMs already running on this machine (LAB_MAX_VMS=${max}); ` +
          `waiting for a slot, ${waiters.indexOf(ticketName) + 1} in line` +
          (waited >= 1000 ? ` (${Math.round(waited / 1000)}s)` : ""));
        announced += 60000;
      }
      await sleep(2000);
    }
  } finally {
    fs.rmSync(ticket, { force: true });
    pendingTickets.delete(ticket);
  }
}

/** True when something on 127.0.0.1:port sends an SSH banner within timeoutMs. */
function sshBanner(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let got = "";
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (got.length >= 4) done(got.startsWith("SSH-"));
    });
    sock.on("error", () => done(false));
    sock.on("close", () => done(false));
  });
}

/** A loopback port nothing listens on (now). */
export async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

let runCounter = 0;

function sweepStaleRuns(runsDir: string): void {
  if (!fs.existsSync(runsDir)) return;
  for (const entry of fs.readdirSync(runsDir)) {
    const m = /-p(\d+)-\d+$/.exec(entry);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      fs.rmSync(path.join(runsDir, entry), { recursive: true, force: true });
    }
  }
}

export class LabVm {
  readonly name: string;
  readonly image: LabImage;
  readonly memoryMb: number;
  readonly smp: number;
  /** Directory of this run: overlay (unless persistent), serial log, known_hosts. */
  readonly runDir: string;
  readonly serialLogPath: string;
  readonly overlayPath: string;
  readonly knownHostsPath: string;
  /** The client private key, copied into the run directory (a rebuild may replace the image's). */
  readonly privateKeyPath: string;
  /** MACs of the two igb PFs. */
  readonly pfMacs: readonly string[] = PF_MACS;
  private readonly persistentOverlay: boolean;
  private readonly bootTimeoutMs: number;
  private readonly log: (line: string) => void;
  private readonly controlPath: string;
  private qemu?: ChildProcess;
  private qemuExit?: { code: number | null; signal: NodeJS.Signals | null };
  private qemuStderr = "";
  private slot?: string;
  private watchdog?: ChildProcess;
  private sshPort = 0;
  private readonly fixedPort?: number;
  private sshReady = false;
  private stopped = false;
  private bootStarted = Date.now();
  /** Seconds from QEMU start (or reboot) to a finished boot answering over SSH. */
  bootSeconds?: number;

  private constructor(opts: LabVmOptions, image: LabImage) {
    this.name = opts.name ?? "lab";
    if (!/^[A-Za-z0-9_.-]{1,40}$/.test(this.name)) throw new Error(`lab: bad VM name ${JSON.stringify(this.name)}`);
    this.image = image;
    this.memoryMb = opts.memoryMb ?? envNumber("LAB_MEMORY_MB") ?? 2048;
    this.smp = opts.smp ?? envNumber("LAB_SMP") ?? 1;
    this.persistentOverlay = opts.persistentOverlay ?? false;
    this.fixedPort = opts.sshPort;
    this.bootTimeoutMs = opts.bootTimeoutMs ?? (envNumber("LAB_BOOT_TIMEOUT_S") ?? 600) * 1000;
    this.log = opts.log ?? defaultLog;
    const runsDir = path.join(LAB_DIR, "runs");
    sweepStaleRuns(runsDir);
    this.runDir = path.join(runsDir, `${this.name}-p${process.pid}-${++runCounter}`);
    fs.mkdirSync(this.runDir, { recursive: true });
    this.serialLogPath = path.join(this.runDir, "serial.log");
    this.knownHostsPath = path.join(this.runDir, "known_hosts");
    this.privateKeyPath = path.join(this.runDir, "id_ed25519");
    fs.writeFileSync(this.privateKeyPath, image.privateKey, { mode: 0o600 });
    // Tells image pruning that this run still uses the image.
    fs.writeFileSync(path.join(this.runDir, "image-hash"), image.hash + "\n");
    this.overlayPath = this.persistentOverlay
      ? path.join(LAB_DIR, "vms", this.name, "overlay.qcow2")
      : path.join(this.runDir, "overlay.qcow2");
    // Unix socket paths are short (108 bytes): keep the control socket in /tmp.
    this.controlPath = path.join(os.tmpdir(), `lab-ssh-${process.pid}-${runCounter}.sock`);
  }

  /**
   * Builds the image if needed, boots a VM and waits until SSH answers.
   * Rejects (with the serial console's tail) if it does not come up.
   */
  static async start(opts: LabVmOptions = {}): Promise<LabVm> {
    const log = opts.log ?? defaultLog;
    ensureSystemDeps(log);
    const image = opts.image ?? await ensureImage({ log });
    const vm = new LabVm(opts, image);
    try {
      await vm.boot();
      await vm.waitForSsh();
    } catch (e) {
      // Keep the serial console of a failed boot for a closer look.
      try { fs.copyFileSync(vm.serialLogPath, path.join(LAB_DIR, `failed-boot-${vm.name}.serial.log`)); } catch { /* none */ }
      await vm.stop();
      throw e;
    }
    return vm;
  }

  /** Host-side pid of the QEMU process (undefined once stopped). */
  get pid(): number | undefined {
    return this.qemu && !this.qemuExit ? this.qemu.pid : undefined;
  }

  get port(): number {
    return this.sshPort;
  }

  get running(): boolean {
    return !!this.qemu && !this.qemuExit;
  }

  /** Connection details, with the same field names as @pulumi/command's remote connection. */
  get connection(): LabConnection {
    return {
      host: "127.0.0.1",
      port: this.sshPort,
      user: "root",
      privateKey: this.image.privateKey,
      hostKey: this.image.hostKey,
    };
  }

  /** Arguments for the system ssh client (everything before the remote command). */
  sshArgs(opts: { multiplex?: boolean; connectTimeoutS?: number } = {}): string[] {
    const o = (kv: string) => ["-o", kv];
    return [
      "-F", "/dev/null",
      "-i", this.privateKeyPath,
      "-p", String(this.sshPort),
      ...o("IdentitiesOnly=yes"),
      ...o("BatchMode=yes"),
      ...o("StrictHostKeyChecking=yes"),
      ...o(`UserKnownHostsFile=${this.knownHostsPath}`),
      ...o("GlobalKnownHostsFile=/dev/null"),
      ...o("UpdateHostKeys=no"),
      ...o(`ConnectTimeout=${opts.connectTimeoutS ?? 20}`),
      ...o("ServerAliveInterval=5"),
      ...o("ServerAliveCountMax=6"),
      ...o("LogLevel=ERROR"),
      ...(opts.multiplex === false
        ? o("ControlMaster=no")
        : [...o("ControlMaster=auto"), ...o(`ControlPath=${this.controlPath}`), ...o("ControlPersist=300")]),
      "root@127.0.0.1",
    ];
  }

  /** A command line a person can paste to log in. */
  sshCommandLine(): string {
    return [
      "ssh", "-i", this.privateKeyPath, "-p", String(this.sshPort),
      "-o", `UserKnownHostsFile=${this.knownHostsPath}`, "-o", "StrictHostKeyChecking=yes",
      "root@127.0.0.1",
    ].join(" ");
  }

  private qemuArgs(port: number): string[] {
    return [
      "-name", `pulumi-sriov-${this.name}`,
      "-machine", "q35,kernel-irqchip=split",
      "-accel", "tcg",
      "-cpu", process.env.LAB_CPU ?? "qemu64",
      "-smp", String(this.smp),
      "-m", String(this.memoryMb),
      "-nodefaults", "-no-user-config",
      "-display", "none", "-vga", "none",
      "-monitor", "none",
      "-serial", `file:${this.serialLogPath}`,
      // The IOMMU must come before the PCI devices it translates for.
      "-device", "intel-iommu,intremap=on,caching-mode=on",
      "-drive", `file=${this.overlayPath},if=none,id=disk0,format=qcow2,discard=unmap,` +
        `cache=${this.persistentOverlay ? "writeback" : "unsafe"}`,
      "-device", "virtio-blk-pci,drive=disk0,addr=0x04",
      "-netdev", `user,id=mgmt,hostfwd=tcp:127.0.0.1:${port}-:22`,
      "-device", `virtio-net-pci,netdev=mgmt,mac=${MGMT_MAC},addr=0x03`,
      // Two SR-IOV PFs, each on its own root port (bus 1 and bus 2), joined
      // by a hub so each has a link (max_tx_rate needs one).
      "-device", "pcie-root-port,id=rp1,chassis=1,slot=1,addr=0x10",
      "-device", "pcie-root-port,id=rp2,chassis=2,slot=2,addr=0x11",
      "-netdev", "hubport,id=pf0,hubid=0",
      "-netdev", "hubport,id=pf1,hubid=0",
      "-device", `igb,bus=rp1,netdev=pf0,mac=${PF_MACS[0]}`,
      "-device", `igb,bus=rp2,netdev=pf1,mac=${PF_MACS[1]}`,
    ];
  }

  private prepareOverlay(): void {
    const base = this.image.disk;
    if (this.persistentOverlay && fs.existsSync(this.overlayPath)) {
      const info = spawnSync("qemu-img", ["info", "--output=json", "-U", this.overlayPath], { encoding: "utf8" });
      let backing: string | undefined;
      try { backing = JSON.parse(info.stdout)["full-backing-filename"] ?? JSON.parse(info.stdout)["backing-filename"]; } catch { /* recreate */ }
      if (info.status === 0 && backing === base) return;
      this.log(`lab[${this.name}]: base image changed; recreating ${this.overlayPath}`);
      fs.rmSync(this.overlayPath, { force: true });
    }
    fs.mkdirSync(path.dirname(this.overlayPath), { recursive: true });
    const r = spawnSync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, this.overlayPath],
      { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`lab[${this.name}]: qemu-img create failed: ${r.stderr.trim()}`);
  }

  private async boot(): Promise<void> {
    installExitHandlers();
    if (!this.slot) this.slot = await acquireSlot(this.name, this.log);
    this.prepareOverlay();
    fs.writeFileSync(this.serialLogPath, "");
    for (let attempt = 1; ; attempt++) {
      const port = this.fixedPort ?? await freeLoopbackPort();
      this.sshPort = port;
      fs.writeFileSync(this.knownHostsPath, `[127.0.0.1]:${port} ${this.image.hostKey}\n`);
      this.qemuExit = undefined;
      this.qemuStderr = "";
      const child = spawn(QEMU, this.qemuArgs(port), { stdio: ["ignore", "ignore", "pipe"] });
      this.qemu = child;
      live.add(this);
      child.stderr!.on("data", (d: Buffer) => {
        this.qemuStderr = (this.qemuStderr + d.toString("utf8")).slice(-8192);
      });
      child.on("exit", (code, signal) => {
        this.qemuExit = { code, signal };
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      this.startWatchdog(child.pid!);
      this.log(`lab[${this.name}]: QEMU pid ${child.pid} started (ssh on 127.0.0.1:${port}, ` +
        `${this.smp} vCPU, ${this.memoryMb} MiB, serial log ${this.serialLogPath})`);
      // A port taken between probing and QEMU binding it makes QEMU exit at once.
      await sleep(500);
      if (this.qemuExit && /host forwarding|hostfwd/i.test(this.qemuStderr) && this.fixedPort !== undefined)
        throw this.bootFailure(`loopback port ${port} is taken (another lab, or another program, listens on it)`);
      if (this.qemuExit && /host forwarding|hostfwd/i.test(this.qemuStderr) && attempt < 5) {
        this.log(`lab[${this.name}]: port ${port} was taken; retrying`);
        continue;
      }
      if (this.qemuExit) throw this.bootFailure("QEMU exited at start");
      this.bootStarted = Date.now() - 500;
      this.stopped = false;
      return;
    }
  }

  /** A detached shell that kills QEMU if this process dies without cleaning up (SIGKILL). */
  private startWatchdog(qemuPid: number): void {
    const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${qemuPid} 2>/dev/null; do sleep 1; done; ` +
      `if kill -0 ${qemuPid} 2>/dev/null && tr '\\0' ' ' < /proc/${qemuPid}/cmdline | grep -qF -- '${this.serialLogPath}'; ` +
      `then kill -9 ${qemuPid}; fi`;
    const w = spawn("sh", ["-c", script], { detached: true, stdio: "ignore" });
    w.unref();
    this.watchdog = w;
  }

  private bootFailure(what: string): Error {
    const exit = this.qemuExit
      ? ` (QEMU ${this.qemuExit.signal ? `killed by ${this.qemuExit.signal}` : `exit ${this.qemuExit.code}`})`
      : "";
    const stderr = this.qemuStderr.trim() ? `\nQEMU stderr:\n${this.qemuStderr.trim()}` : "";
    const tail = this.serialTail(60);
    return new Error(`lab[${this.name}]: ${what}${exit}${stderr}\n` +
      `--- last lines of the serial console (${this.serialLogPath}) ---\n${tail}\n--- end of serial console ---`);
  }

  /** The last `lines` lines of the serial console log, control sequences removed. */
  serialTail(lines = 60): string {
    try {
      const text = fs.readFileSync(this.serialLogPath, "utf8");
      // eslint-disable-next-line no-control-regex
      const clean = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
      return clean.split("\n").slice(-lines).join("\n");
    } catch {
      return "(no serial log)";
    }
  }

  /**
   * Waits until the guest answers over SSH and its boot has finished
   * (`systemctl is-system-running --wait`), printing progress to stderr.
   * Resolves at once if that already happened since the last (re)boot.
   */
  async waitForSsh(timeoutMs: number = this.bootTimeoutMs): Promise<void> {
    if (this.sshReady) return;
    if (!this.qemu) throw new Error(`lab[${this.name}]: not started`);
    await this.waitForBoot("waiting for ssh", this.bootStarted, Date.now() + timeoutMs, undefined);
  }

  /**
   * Polls until SSH answers (from a boot other than `oldBootId`, if given) and
   * the boot finished. Progress: a dot per probe, elapsed seconds every ~10 s.
   */
  private async waitForBoot(what: string, since: number, deadline: number, oldBootId: string | undefined): Promise<void> {
    const out = process.stderr;
    const secs = () => Math.round((Date.now() - since) / 100) / 10;
    out.write(`lab[${this.name}]: ${what} on 127.0.0.1:${this.sshPort} `);
    let lastMark = Date.now();
    let sawDown = oldBootId === undefined;
    let lastError = "no SSH banner yet";
    const fail = (why: string) => {
      out.write("\n");
      return this.bootFailure(why);
    };
    for (;;) {
      if (this.qemuExit) throw fail(`QEMU exited (${what})`);
      if (Date.now() > deadline) {
        throw fail(`${what}: gave up after ${Math.round((Date.now() - since) / 1000)}s (last: ${lastError})`);
      }
      if (await sshBanner(this.sshPort, 3000)) {
        const r = await this.execRaw("cat /proc/sys/kernel/random/boot_id",
          { timeoutMs: 30000, multiplex: false, connectTimeoutS: 20 });
        if (r.code === 0 && r.stdout.trim() !== oldBootId) {
          const sshAt = secs();
          // Boot complete: libvirtd, networkd and friends are up, or failed.
          const s = await this.execRaw(
            "timeout 300 systemctl is-system-running --wait; systemctl --failed --no-legend --plain | awk '{print $1}'",
            { timeoutMs: 320000 });
          this.bootSeconds = secs();
          const [state, ...failed] = s.stdout.trim().split("\n").filter(Boolean);
          out.write(` ssh after ${sshAt}s, boot complete after ${this.bootSeconds}s (${state ?? "unknown"})\n`);
          if (failed.length) this.log(`lab[${this.name}]: failed units in the guest: ${failed.join(", ")}`);
          this.sshReady = true;
          return;
        }
        if (r.code === 0) {
          lastError = "still the old boot";
        } else {
          lastError = r.stderr.trim().split("\n").pop() || `ssh exit ${r.code}`;
          if (/host key|IDENTIFICATION|Permission denied/i.test(r.stderr)) throw fail(`ssh refused: ${r.stderr.trim()}`);
        }
      } else {
        lastError = "no SSH banner";
        if (!sawDown) {
          sawDown = true;
          out.write(`(ssh down after ${Math.round((Date.now() - since) / 1000)}s) `);
        }
      }
      if (Date.now() - lastMark >= 10000) {
        out.write(` ${Math.round((Date.now() - since) / 1000)}s `);
        lastMark = Date.now();
      } else {
        out.write(".");
      }
      await sleep(1000);
    }
  }

  private execRaw(command: string, opts: ExecOptions & { multiplex?: boolean; connectTimeoutS?: number } = {}):
    Promise<ExecResult> {
    return new Promise((resolve) => {
      const args = [...this.sshArgs({ multiplex: opts.multiplex, connectTimeoutS: opts.connectTimeoutS }), "--", command];
      const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, opts.timeoutMs ?? 300000);
      child.stdout.on("data", (d: Buffer) => stdout.push(d));
      child.stderr.on("data", (d: Buffer) => stderr.push(d));
      child.stdin.on("error", () => { /* remote closed stdin early */ });
      child.stdin.end(opts.input ?? "");
      let done = false;
      const finish = (code: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        let err = Buffer.concat(stderr).toString("utf8");
        if (timedOut) err += `\nlab: command timed out after ${(opts.timeoutMs ?? 300000) / 1000}s`;
        resolve({ code, stdout: Buffer.concat(stdout).toString("utf8"), stderr: err });
      };
      child.on("error", (e) => {
        stderr.push(Buffer.from(`lab: cannot run ssh: ${e.message}\n`));
        finish(255);
      });
      child.on("close", (code, signal) => finish(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 255)));
    });
  }

  /**
   * Runs `command` with the guest's root shell (over one multiplexed SSH
   * connection). Exit code 255 means ssh itself failed.
   */
  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (!this.running) throw new Error(`lab[${this.name}]: not running`);
    return this.execRaw(command, opts);
  }

  /** Like exec, but rejects on a non-zero exit; resolves to stdout. */
  async run(command: string, opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(command, opts);
    if (r.code !== 0) {
      throw new Error(`lab[${this.name}]: command failed (exit ${r.code}): ${JSON.stringify(command)}\n` +
        `stderr: ${r.stderr.trim()}\nstdout: ${r.stdout.trim()}`);
    }
    return r.stdout;
  }

  private closeMaster(): void {
    if (fs.existsSync(this.controlPath)) {
      spawnSync("ssh", ["-o", `ControlPath=${this.controlPath}`, "-O", "exit", "root@127.0.0.1"],
        { stdio: "ignore", timeout: 5000 });
    }
    fs.rmSync(this.controlPath, { force: true });
  }

  /**
   * Reboots the guest and waits until SSH answers from the new boot (its
   * boot_id changed) and that boot has finished. Rejects after `timeoutMs`
   * (default: the boot timeout).
   */
  async reboot(opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? this.bootTimeoutMs;
    const bootId = (await this.run("cat /proc/sys/kernel/random/boot_id")).trim();
    const started = Date.now();
    await this.run("nohup sh -c 'sleep 1; systemctl reboot' >/dev/null 2>&1 &");
    this.closeMaster();
    this.sshReady = false;
    await this.waitForBoot("rebooting", started, started + timeoutMs, bootId);
  }

  /** Kills QEMU, releases the run slot and removes the run directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const child = this.qemu;
    if (child && !this.qemuExit) {
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.kill("SIGTERM");
      const t = setTimeout(() => { if (!this.qemuExit) child.kill("SIGKILL"); }, 5000);
      await exited;
      clearTimeout(t);
    }
    this.cleanup();
  }

  /** Synchronous last-resort cleanup for process exit and signals. */
  killSync(): void {
    if (this.stopped) return;
    const pid = this.qemu?.pid;
    if (pid && !this.qemuExit) {
      try { process.kill(pid, "SIGKILL"); } catch { /* already gone */ }
    }
    this.cleanup();
  }

  private cleanup(): void {
    this.stopped = true;
    this.sshReady = false;
    live.delete(this);
    this.closeMaster();
    if (this.watchdog?.pid && this.watchdog.exitCode === null) {
      try { process.kill(this.watchdog.pid, "SIGKILL"); } catch { /* gone */ }
    }
    if (this.slot) {
      fs.rmSync(this.slot, { force: true });
      this.slot = undefined;
    }
    if (!process.env.LAB_KEEP_RUNS) fs.rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** Same as LabVm.start(). */
export function startLab(opts: LabVmOptions = {}): Promise<LabVm> {
  return LabVm.start(opts);
}
