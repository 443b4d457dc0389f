// A network path with a chosen round-trip time between SSH clients on this
// machine and the lab guest, so that the cost of round trips shows.
//
//   client ──veth──▶ forwarder in a private network namespace ──veth──▶
//   forwarder in this process ──loopback──▶ QEMU's port forward ──▶ guest sshd
//
// The namespace and the veth pair are created here (addresses 10.213.<k>.0/24
// of our own choosing) and removed by close() or at process exit. The delay
// is added with `tc netem` on both ends of the veth when the kernel has it
// (a byte crosses the veth twice each way, so each egress qdisc gets a
// quarter of the round-trip time); kernels built without netem
// (CONFIG_NET_SCH_NETEM unset, as on the machine the results were taken on)
// get the same delay from the namespace forwarder's delay line instead: half
// the round-trip time per direction on every chunk, in order, and on the
// upstream connect. measureRtt() checks the result with a one-byte echo over
// the same path.
//
// Several endpoints (addresses in the namespace) can lead to the same
// target: to the provider they are different hosts (each its own pooled SSH
// connection), which is how the fleet figure is measured on one guest.
import { spawn, spawnSync, ChildProcess } from "child_process";
import * as net from "net";
import * as path from "path";
import * as readline from "readline";
import { pidAlive } from "../../lab/process";

export interface Endpoint {
  host: string;
  port: number;
}

/** Runs `cmd args` (in namespace `ns` when given); throws with stderr unless `allowFail`. */
function sh(cmd: "ip" | "tc", args: string[], opts: { ns?: string; allowFail?: boolean } = {}): string {
  const [file, argv] = opts.ns ? ["ip", ["netns", "exec", opts.ns, cmd, ...args]] : [cmd, args];
  const r = spawnSync(file, argv, { encoding: "utf8" });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`netpath: ${file} ${argv.join(" ")} failed (exit ${r.status}): ${(r.stderr || "").trim()}`);
  }
  return r.stdout ?? "";
}
const ip = (args: string[], opts: { ns?: string; allowFail?: boolean } = {}) => sh("ip", args, opts);

const NS_PREFIX = "sriov-bench-";
const live = new Set<NetPath>();
let exitHookInstalled = false;


/** Removes namespaces this benchmark left behind when its process was killed outright. */
function sweepStale(): void {
  const out = ip(["netns", "list"], { allowFail: true });
  for (const line of out.split("\n")) {
    const name = line.split(" ")[0];
    const m = new RegExp(`^${NS_PREFIX}(\\d+)$`).exec(name);
    if (m && !pidAlive(Number(m[1]))) ip(["netns", "del", name], { allowFail: true });
  }
}

function freeSubnet(): number {
  const routes = ip(["-4", "route", "show", "table", "all"], { allowFail: true }) + ip(["-4", "addr"], { allowFail: true });
  for (let k = 200 + (process.pid % 50); k < 200 + (process.pid % 50) + 50; k++) {
    const third = k % 256;
    if (!routes.includes(`10.213.${third}.`)) return third;
  }
  throw new Error("netpath: no free 10.213.x.0/24 subnet");
}

export class NetPath {
  readonly ns: string;
  readonly rootDev: string;
  readonly nsDev: string;
  readonly rootAddr: string;
  /** Addresses in the namespace the client connects to, one per endpoint, all leading to the target. */
  readonly endpoints: Endpoint[] = [];
  private echoEndpoint!: Endpoint;
  alsoEndpoint?: Endpoint;
  private forwarder?: ChildProcess;
  private servers: net.Server[] = [];
  private sockets = new Set<net.Socket>();
  private closed = false;
  private lines?: readline.Interface;
  private replies: ((line: string) => void)[] = [];
  rttMs = 0;
  /** How the delay is added: "netem" (tc qdiscs on the veth) or "forwarder" (the namespace forwarder's delay line). */
  delayMode: "netem" | "forwarder" = "forwarder";

  private constructor(private readonly subnet: number) {
    this.ns = `${NS_PREFIX}${process.pid}`;
    this.rootDev = `sbr${process.pid}`;
    this.nsDev = `sbn${process.pid}`;
    this.rootAddr = `10.213.${subnet}.1`;
  }

  /** Creates the namespace path with `count` endpoints leading to `target` (e.g. the lab's 127.0.0.1:<port>). */
  /**
   * `also`: one more endpoint, leading to a second target (e.g. an OpenSSH
   * server on this machine, to measure the protocol's round trips without
   * the emulated guest's CPU in the way): `alsoEndpoint`.
   */
  static async create(target: Endpoint, count = 1, also?: Endpoint): Promise<NetPath> {
    if (process.getuid?.() !== 0) throw new Error("netpath: needs root (ip netns, tc)");
    if (count < 1 || count > 32) throw new Error("netpath: 1–32 endpoints");
    sweepStale();
    const p = new NetPath(freeSubnet());
    live.add(p);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const x of live) x.closeSync();
      });
    }
    try {
      await p.setup(target, count, also);
    } catch (e) {
      p.closeSync();
      throw e;
    }
    return p;
  }

  private nsAddr(i: number): string {
    return `10.213.${this.subnet}.${10 + i}`;
  }

  private async setup(target: Endpoint, count: number, also?: Endpoint): Promise<void> {
    ip(["netns", "add", this.ns]);
    ip(["link", "add", this.rootDev, "type", "veth", "peer", "name", this.nsDev]);
    ip(["link", "set", this.nsDev, "netns", this.ns]);
    ip(["addr", "add", `${this.rootAddr}/24`, "dev", this.rootDev]);
    ip(["link", "set", this.rootDev, "up"]);
    ip(["link", "set", "lo", "up"], { ns: this.ns });
    for (let i = 0; i <= count + 1; i++) ip(["addr", "add", `${this.nsAddr(i)}/24`, "dev", this.nsDev], { ns: this.ns });
    ip(["link", "set", this.nsDev, "up"], { ns: this.ns });

    // This process's side: the root-namespace address → the target(s), and a one-byte echo for measuring.
    const forwardTo = (to: Endpoint) => (c: net.Socket) => {
      const up = net.connect(to);
      for (const s of [c, up]) {
        s.setNoDelay(true);
        this.track(s);
        s.on("error", () => {
          c.destroy();
          up.destroy();
        });
        s.on("close", () => {
          c.destroy();
          up.destroy();
        });
      }
      c.pipe(up);
      up.pipe(c);
    };
    const fwdPort = await this.listen(forwardTo(target));
    const echoPort = await this.listen((c) => {
      c.setNoDelay(true);
      this.track(c);
      c.on("error", () => c.destroy());
      c.pipe(c);
    });

    // The namespace side: endpoint i listens on its own address; then the echo, then `also`.
    const specs = [];
    for (let i = 0; i < count; i++) specs.push(`${this.nsAddr(i)}:0=${this.rootAddr}:${fwdPort}`);
    specs.push(`${this.nsAddr(count)}:0=${this.rootAddr}:${echoPort}`);
    if (also) specs.push(`${this.nsAddr(count + 1)}:0=${this.rootAddr}:${await this.listen(forwardTo(also))}`);
    const script = path.join(__dirname, "forward.js");
    const child = spawn("ip", ["netns", "exec", this.ns, process.execPath, script, ...specs], { stdio: ["pipe", "pipe", "pipe"] });
    this.forwarder = child;
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    this.lines = readline.createInterface({ input: child.stdout! });
    this.lines.on("line", (l) => this.replies.shift()?.(l));
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code) => reject(new Error(`netpath: forwarder exited (${code}): ${stderr.trim()}`))),
    );
    exited.catch(() => undefined);
    const first = await Promise.race([this.nextLine(), exited]);
    let ports: number[];
    try {
      ports = JSON.parse(first);
    } catch {
      throw new Error(`netpath: forwarder said ${JSON.stringify(first)}`);
    }
    // netem where the kernel has it.
    const probe = spawnSync("tc", ["qdisc", "add", "dev", this.rootDev, "root", "netem", "delay", "0ms"], { encoding: "utf8" });
    if (probe.status === 0) {
      sh("tc", ["qdisc", "del", "dev", this.rootDev, "root"]);
      this.delayMode = "netem";
    }
    for (let i = 0; i < count; i++) this.endpoints.push({ host: this.nsAddr(i), port: ports[i] });
    this.echoEndpoint = { host: this.nsAddr(count), port: ports[count] };
    if (also) this.alsoEndpoint = { host: this.nsAddr(count + 1), port: ports[count + 1] };
  }

  private nextLine(): Promise<string> {
    return new Promise((resolve) => this.replies.push(resolve));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on("close", () => this.sockets.delete(s));
  }

  private listen(onConn: (c: net.Socket) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = net.createServer(onConn);
      this.servers.push(server);
      server.once("error", reject);
      server.listen(0, this.rootAddr, () => resolve((server.address() as net.AddressInfo).port));
    });
  }

  /** Sets the round-trip time added to the path (0 removes the delay). */
  async setRtt(ms: number): Promise<void> {
    if (this.delayMode === "netem") {
      for (const [dev, ns] of [
        [this.rootDev, undefined],
        [this.nsDev, this.ns],
      ] as const) {
        if (ms === 0) sh("tc", ["qdisc", "del", "dev", dev, "root"], { ns, allowFail: true });
        else sh("tc", ["qdisc", "replace", "dev", dev, "root", "netem", "delay", `${ms / 4}ms`], { ns });
      }
    } else {
      const reply = this.nextLine();
      this.forwarder!.stdin!.write(`delay ${ms / 2}\n`);
      const line = await reply;
      if (line !== `ok ${ms / 2}`) throw new Error(`netpath: forwarder answered ${JSON.stringify(line)} to a delay change`);
    }
    this.rttMs = ms;
  }

  /** What adds the delay, for reports. */
  describe(): string {
    return this.delayMode === "netem"
      ? "tc netem on both ends of a veth pair into a private network namespace"
      : "veth pair into a private network namespace; delay added by the namespace-side TCP forwarder " +
          "(this kernel has no sch_netem), half the round trip per direction on every chunk and on connect";
  }

  /** Median round-trip time of a one-byte echo over the path, in ms. */
  async measureRtt(samples = 15): Promise<number> {
    const sock = net.connect(this.echoEndpoint);
    sock.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", () => resolve());
      sock.once("error", reject);
    });
    const times: number[] = [];
    let got: (() => void) | undefined;
    sock.on("data", () => got?.());
    const failed = new Promise<never>((_, reject) => sock.once("error", reject));
    failed.catch(() => undefined);
    try {
      for (let i = 0; i < samples; i++) {
        const t = process.hrtime.bigint();
        const back = new Promise<void>((resolve) => (got = resolve));
        sock.write("x");
        await Promise.race([back, failed]);
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    } finally {
      sock.destroy();
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  }

  /** Stops the forwarders and removes the namespace (its veth pair and qdiscs go with it). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(() => r(undefined)))));
    this.servers = [];
    const child = this.forwarder;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.stdin!.end();
      child.kill("SIGTERM");
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
    }
    this.closeSync();
  }

  private closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    for (const s of this.sockets) s.destroy();
    for (const s of this.servers) s.close();
    const pid = this.forwarder?.pid;
    if (pid && this.forwarder!.exitCode === null) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone */
      }
    }
    // The root end of the veth goes with its peer; the qdiscs with their devices.
    ip(["netns", "del", this.ns], { allowFail: true });
    ip(["link", "del", this.rootDev], { allowFail: true });
  }
}
