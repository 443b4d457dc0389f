// Reliability of the host layer itself, against a real sshd on loopback:
//
// - concurrency: read-modify-write of one file under the host lock from
//   many calls in one process (over two different SSH connections, one of
//   them a sudo user) and from two separate OS processes at once loses no
//   update;
// - faults: the connection dropped at every operation boundary of a locked
//   read-modify-write, and in the middle of a large file transfer, leaves
//   the file either old or new (never partial, no temp files), releases the
//   host lock, and never hangs.
import { expect } from "chai";
import { spawn } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { connectionSchema } from "../../provider/connection";
import { BACKUP_DIR, closeAllConnections, hostFor, RemoteHost } from "../../provider/host";
import { arm, disarm, installFaults } from "./faults";
import { addSecret, figures, record } from "./figures";
import { TestSshd } from "../support/sshd";

const REPO = path.resolve(__dirname, "..", "..");

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms (hung)`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

/** Waits until the file and its directory stop changing (orphaned remote commands finished). */
async function settle(file: string): Promise<void> {
  const state = () => {
    const d = path.dirname(file);
    return fs.readdirSync(d).sort().join("/") + "|" + (fs.existsSync(file) ? fs.readFileSync(file, "utf8").length + ":" + fs.statSync(file).mtimeMs : "-");
  };
  let last = state();
  for (let stable = 0; stable < 4; ) {
    await new Promise((r) => setTimeout(r, 250));
    const now = state();
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
}

/** One locked increment of the counter file: read, then atomic write of n+1. */
async function increment(host: RemoteHost, file: string): Promise<void> {
  await host.withLock(async () => {
    const now = (await host.readFiles([file]))[file];
    const n = now === null ? 0 : Number(now.trim());
    await host.writeFile(file, `${n + 1}\n`);
  });
}

describe("reliability: the host layer under concurrency and dropped connections", function () {
  this.timeout(10 * 60_000);
  let sshd: TestSshd;
  let dir: string;
  let rootConn: any;
  let adminConn: any;

  before(async function () {
    this.timeout(120_000);
    sshd = await TestSshd.start();
    addSecret("root private key", sshd.users.root.privateKey);
    addSecret("admin password", sshd.users.admin.password);
    rootConn = connectionSchema().parse({ host: sshd.host, port: sshd.port, user: "root", privateKey: sshd.users.root.privateKey, hostKey: sshd.hostKey });
    adminConn = connectionSchema().parse({ host: sshd.host, port: sshd.port, user: "sriovtest-admin", password: sshd.users.admin.password, hostKey: sshd.hostKey });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sriov-hostlayer-"));
    fs.chmodSync(dir, 0o755);
    installFaults();
  });

  after(async () => {
    disarm();
    await closeAllConnections();
    await sshd?.stop();
    if (dir) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(path.join(BACKUP_DIR, dir), { recursive: true, force: true });
    }
  });

  it("60 concurrent locked increments over two connections (root key, sudo password user) lose none", async () => {
    const file = path.join(dir, "counter-in-process");
    const hosts = [hostFor(rootConn), hostFor(adminConn)];
    await Promise.all(Array.from({ length: 60 }, (_, i) => increment(hosts[i % 2], file)));
    expect(fs.readFileSync(file, "utf8")).to.equal("60\n");
  });

  it("control: without the lock the same increments lose updates (so the test above can fail)", async () => {
    const file = path.join(dir, "counter-unlocked");
    const hosts = [hostFor(rootConn), hostFor(adminConn)];
    // Unlocked writes race each other: an update is lost either by being
    // overwritten or by a write that fails because the file moved under it.
    await Promise.allSettled(
      Array.from({ length: 30 }, async (_, i) => {
        const h = hosts[i % 2];
        const now = (await h.readFiles([file]))[file];
        await h.writeFile(file, `${(now === null ? 0 : Number(now.trim())) + 1}\n`);
      }),
    );
    const final = fs.existsSync(file) ? Number(fs.readFileSync(file, "utf8")) : 0;
    expect(final).to.be.lessThan(30);
  });

  it("two OS processes incrementing at once through the compiled host layer lose none", async () => {
    const file = path.join(dir, "counter-two-processes");
    const script = `
      const { hostFor, closeAllConnections } = require("pulumi-sriov/dist/provider/host");
      const { connectionSchema } = require("pulumi-sriov/dist/provider/connection");
      const conn = connectionSchema().parse(JSON.parse(process.env.CONN));
      const host = hostFor(conn);
      const file = process.env.FILE;
      async function inc() {
        await host.withLock(async () => {
          const now = (await host.readFiles([file]))[file];
          await host.writeFile(file, String((now === null ? 0 : Number(now.trim())) + 1) + "\\n");
        });
      }
      (async () => {
        await Promise.all(Array.from({ length: 25 }, inc));
        await closeAllConnections();
      })().then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); });
    `;
    const runOne = (conn: unknown) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, ["-e", script], {
          cwd: REPO,
          env: { PATH: process.env.PATH, CONN: JSON.stringify(conn), FILE: file },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let err = "";
        child.stderr.on("data", (d) => (err += d));
        child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`increment process exited ${code}: ${err}`))));
      });
    await withTimeout(Promise.all([runOne(rootConn), runOne(adminConn)]), 240_000, "two processes");
    expect(fs.readFileSync(file, "utf8")).to.equal("50\n");
  });

  it("the connection dropped at every boundary of a locked read-modify-write: old or new, lock released, no temp file, no hang", async () => {
    const file = path.join(dir, "faulted");
    const host = hostFor(rootConn);
    fs.writeFileSync(file, "0\n");
    for (const mode of ["after", "during"] as const) {
      for (let k = 1; ; k++) {
        const before = fs.readFileSync(file, "utf8");
        arm(k, mode, 5);
        const r = await withTimeout(increment(host, file).then(() => undefined, (e: Error) => e), 60_000, `fault ${mode} #${k}`);
        const f = disarm();
        if (!f.fired) {
          expect(r, "no fault: the call succeeds").to.equal(undefined);
          break;
        }
        figures.faultsInjected++;
        record(`host-layer fault ${mode} #${k}`, `${f.trace.join("\n")}\n${r instanceof Error ? r.message : "completed"}`);
        // A command whose connection dropped may still finish on the host (sshd
        // does not kill it): judge the file once the host has settled.
        await settle(file);
        const after = fs.readFileSync(file, "utf8");
        expect([before, `${Number(before) + 1}\n`], `after fault ${mode} #${k}: ${f.trace.join(" | ")}`).to.include(after);
        expect(fs.readdirSync(dir).filter((n) => n.startsWith(".faulted")), "temp files").to.deep.equal([]);
        // The lock is free again and the next call converges.
        await withTimeout(increment(host, file), 30_000, `the call after fault ${mode} #${k}`);
        expect(Number(fs.readFileSync(file, "utf8"))).to.equal(Number(after) + 1);
        figures.faultsRecovered++;
      }
    }
  });

  it("a 2 MB write cut off mid-transfer leaves the old file whole", async () => {
    const file = path.join(dir, "big");
    const host = hostFor(rootConn);
    const old = "old\n".repeat(1000);
    fs.writeFileSync(file, old);
    let cut = 0;
    for (const delay of [1, 5, 20, 50]) {
      const big = createHash("sha256").update(String(delay)).digest("hex").repeat(32 * 1024) + "\n";
      arm(1, "during", delay);
      const r = await withTimeout(host.writeFile(file, big).then(() => undefined, (e: Error) => e), 60_000, `cut write ${delay} ms`);
      const f = disarm();
      expect(f.fired).to.equal(true);
      figures.faultsInjected++;
      await settle(file);
      const now = fs.readFileSync(file, "utf8");
      expect(now === old || now === big, `after a cut at ${delay} ms the file is ${now.length} bytes`).to.equal(true);
      if (r instanceof Error) cut++;
      expect(fs.readdirSync(dir).filter((n) => n.startsWith(".big")), "temp files").to.deep.equal([]);
      await host.writeFile(file, old);
      figures.faultsRecovered++;
    }
    expect(cut, "at least one write was really cut off").to.be.greaterThan(0);
  });
});
