// The SSH host layer against real OpenSSH servers on loopback.
import { expect } from "chai";
import { execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Connection } from "../../provider/connection";
import { closeAllConnections, hostFor, resetSshStats, sshStats } from "../../provider/host";
import { parseBatch } from "../../provider/host/host";
import { TestSshd } from "../support/sshd";

function conn(sshd: TestSshd, extra: Partial<Connection> = {}): Connection {
  return {
    host: sshd.host,
    port: sshd.port,
    user: "root",
    privateKey: sshd.users.root.privateKey,
    hostKey: sshd.hostKey,
    dialErrorLimit: 2,
    perDialTimeout: 10,
    ...extra,
  };
}

// Tests that kill connections log in as the non-root sudo user, so that no
// login shell of root's is killed half-way through its start-up files.
function admin(sshd: TestSshd, extra: Partial<Connection> = {}): Connection {
  return conn(sshd, { user: "sriovtest-admin", privateKey: sshd.users.admin.privateKey, ...extra });
}

describe("SSH host layer (real sshd on loopback)", function () {
  this.timeout(120_000);
  let sshd: TestSshd;
  let workDir: string;

  before(async () => {
    sshd = await TestSshd.start();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), "sriov-host-"));
    fs.chmodSync(workDir, 0o777);
  });
  after(async () => {
    await closeAllConnections();
    await sshd?.stop();
    fs.rmSync(workDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await closeAllConnections();
    resetSshStats();
  });

  it("reuses one connection for many commands, 20 of them concurrent", async () => {
    const before = await sshd.connectionCount();
    const host = hostFor(conn(sshd));
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => host.run(["echo", `n${i}`])));
    expect(results.map((r) => r.stdout.trim())).to.deep.equal(Array.from({ length: 20 }, (_, i) => `n${i}`));
    await host.run(["true"]);
    expect(sshStats().total.handshakes).to.equal(1);
    expect(sshStats().total.commands).to.equal(21);
    expect((await sshd.connectionCount()) - before).to.equal(1);
  });

  it("delivers arguments with quotes, newlines, $() and ; unchanged", async () => {
    const host = hostFor(conn(sshd));
    const args = [`it's "quoted"`, "line1\nline2", "$(touch /tmp/sriov-pwned)", "a; rm -rf /nonexistent", "`id`", "*", ""];
    const r = await host.run(["python3", "-c", "import sys, json; print(json.dumps(sys.argv[1:]))", ...args]);
    expect(JSON.parse(r.stdout)).to.deep.equal(args);
    expect(fs.existsSync("/tmp/sriov-pwned")).to.equal(false);
  });

  it("batches commands into one round trip with separate exit codes and output", async () => {
    const host = hostFor(conn(sshd));
    await host.run(["true"]);
    const before = sshStats().total.commands;
    const r = await host.batch([["echo", "a"], ["sh", "-c", "echo err >&2; exit 3"], ["printf", "%s", "no newline"]]);
    expect(sshStats().total.commands - before).to.equal(1);
    expect(r).to.deep.equal([
      { code: 0, stdout: "a\n", stderr: "" },
      { code: 3, stdout: "", stderr: "err\n" },
      { code: 0, stdout: "no newline", stderr: "" },
    ]);
    const stopped = await host.batch([["true"], ["false"], ["echo", "never"]], { stopOnError: true });
    expect(stopped.map((x) => x.code)).to.deep.equal([0, 1, null]);
  });

  it("keeps each batched command's output exact: blank lines, marker-like text, large output, stdin closed, exit in a child shell", async () => {
    const host = hostFor(conn(sshd));
    const big = "x".repeat(200_000);
    const r = await host.batch([
      ["printf", "%s", "\n\n"],
      ["sh", "-c", 'printf "@@ 0 0\\n@@0\\n" ; printf "\\n@@ 1\\n" >&2'],
      ["python3", "-c", 'import sys; sys.stdout.write("x" * 200000); sys.stderr.write("e" * 70000)'],
      ["cat"],
      ["sh", "-c", "exit 7"],
      ["printf", "%s", "after"],
    ]);
    expect(r[0]).to.deep.equal({ code: 0, stdout: "\n\n", stderr: "" });
    expect(r[1]).to.deep.equal({ code: 0, stdout: "@@ 0 0\n@@0\n", stderr: "\n@@ 1\n" });
    expect(r[2].stdout).to.equal(big);
    expect(r[2].stderr).to.equal("e".repeat(70000));
    expect(r[3]).to.deep.equal({ code: 0, stdout: "", stderr: "" });
    expect(r[4].code).to.equal(7);
    expect(r[5]).to.deep.equal({ code: 0, stdout: "after", stderr: "" });
  });

  it("parses a batch's output only when every boundary is there", () => {
    const mark = "@@abc";
    const out = Buffer.from(`one\n${mark} 0 0\n\n${mark} 1 2\n`);
    const err = Buffer.from(`\n${mark} 0\noops\n${mark} 1\n`);
    expect(parseBatch(out, err, mark, 2, "h")).to.deep.equal([
      { code: 0, stdout: "one", stderr: "" },
      { code: 2, stdout: "", stderr: "oops" },
    ]);
    expect(() => parseBatch(out, Buffer.from(`\n${mark} 0\n`), mark, 2, "h")).to.throw(/ended early at command 2 of 2/);
  });

  it("reads several files in one round trip, missing ones as null", async () => {
    const host = hostFor(conn(sshd));
    fs.writeFileSync(path.join(workDir, "a"), "alpha\n");
    const r = await host.readFiles([path.join(workDir, "a"), path.join(workDir, "missing")]);
    expect(r).to.deep.equal({ [path.join(workDir, "a")]: "alpha\n", [path.join(workDir, "missing")]: null });
  });

  it("fails with the host, the quoted command, exit code and stderr", async () => {
    const host = hostFor(conn(sshd));
    try {
      await host.run(["ls", "/no such dir"]);
      expect.fail("should have thrown");
    } catch (e: any) {
      expect(e.name).to.equal("HostCommandError");
      expect(e.message).to.include(`root@127.0.0.1:${sshd.port}`).and.include(`ls '/no such dir'`).and.include("exited 2").and.include("No such file");
    }
  });

  it("writes files atomically, keeping mode and a backup, and restores them", async () => {
    const host = hostFor(conn(sshd));
    const f = path.join(workDir, "conf");
    await host.writeFile(f, "one\n");
    expect(fs.readFileSync(f, "utf8")).to.equal("one\n");
    expect(fs.statSync(f).mode & 0o777).to.equal(0o644);
    fs.chmodSync(f, 0o600);
    await host.writeFile(f, "two\n");
    expect(fs.readFileSync(f, "utf8")).to.equal("two\n");
    expect(fs.statSync(f).mode & 0o777).to.equal(0o600);
    expect(fs.readFileSync(`/var/lib/pulumi-sriov/backup${f}`, "utf8")).to.equal("one\n");
    await host.restoreFile(f, "one\n");
    expect(fs.readFileSync(f, "utf8")).to.equal("one\n");
    await host.restoreFile(f, null);
    expect(fs.existsSync(f)).to.equal(false);
    expect(fs.readdirSync(workDir).filter((n) => n.includes(".tmp."))).to.deep.equal([]);
  });

  it("never leaves a partial file when the connection dies during a write", async () => {
    const f = path.join(workDir, "big");
    const old = "old content\n";
    fs.writeFileSync(f, old);
    const big = "x".repeat(8 * 1024 * 1024) + "\n";
    let outcomes = { old: 0, new: 0 };
    for (let i = 0; i < 4; i++) {
      await closeAllConnections();
      const host = hostFor(admin(sshd));
      await host.run(["true"]);
      const write = host.writeFile(f, big).then(
        () => "done",
        (e) => e,
      );
      await new Promise((r) => setTimeout(r, 40 + i * 60));
      await sshd.killConnections();
      await write;
      const now = fs.readFileSync(f, "utf8");
      expect(now === old || now === big, `attempt ${i}: file is ${now.length} bytes, neither old nor new`).to.equal(true);
      if (now === old) outcomes.old++;
      else {
        outcomes.new++;
        fs.writeFileSync(f, old);
      }
    }
    expect(outcomes.old + outcomes.new).to.equal(4);
    expect(outcomes.old, "at least one write was interrupted").to.be.greaterThan(0);
  });

  it("reconnects on the next use after the connection was dropped", async () => {
    const host = hostFor(admin(sshd));
    await host.run(["true"]);
    await sshd.killConnections();
    await new Promise((r) => setTimeout(r, 200));
    const r = await host.run(["echo", "back"]);
    expect(r.stdout).to.equal("back\n");
    expect(sshStats().total.handshakes).to.equal(2);
  });

  it("serialises writers with the host lock, in one process and across connections", async () => {
    const counter = path.join(workDir, "counter");
    fs.writeFileSync(counter, "0");
    const a = hostFor(conn(sshd));
    const b = hostFor(admin(sshd));
    const bump = (h: typeof a) =>
      h.withLock(async () => {
        const n = Number((await h.readFiles([counter]))[counter]);
        await new Promise((r) => setTimeout(r, 20));
        await h.writeFile(counter, String(n + 1));
      });
    await Promise.all([...Array.from({ length: 6 }, () => bump(a)), ...Array.from({ length: 6 }, () => bump(b))]);
    expect(fs.readFileSync(counter, "utf8")).to.equal("12");
  });

  it("runs the read it is given as soon as the lock is held, in the round trip that takes it: no lost update, through sudo too", async () => {
    const counter = path.join(sshd.dir, "counter-first");
    fs.writeFileSync(counter, "0");
    fs.chmodSync(counter, 0o666);
    const a = hostFor(conn(sshd));
    const b = hostFor(admin(sshd));
    const read = ["sh", "-c", 'cat -- "$1"; echo "read $1" >&2; exit 5', "sh", counter];
    const bump = (h: typeof a) =>
      h.withLock(
        async (first) => {
          expect(first).to.deep.include({ code: 5, stderr: `read ${counter}\n` });
          await new Promise((r) => setTimeout(r, 20));
          await h.writeFile(counter, String(Number(first!.stdout) + 1));
        },
        { first: read },
      );
    await Promise.all([...Array.from({ length: 6 }, () => bump(a)), ...Array.from({ length: 6 }, () => bump(b))]);
    expect(fs.readFileSync(counter, "utf8")).to.equal("12");
    // Nested in a held lock, the read runs as a plain command.
    await a.withLock(() => a.withLock(async (first) => expect(first!.stdout).to.equal("12"), { first: read }));
    // The lock and its read are one command.
    resetSshStats();
    await a.withLock(async (first) => expect(first!.stdout).to.equal("12"), { first: read });
    expect(sshStats().total.commands).to.equal(1);
  });

  it("runs as a non-root user through sudo -n", async () => {
    const host = hostFor(admin(sshd));
    const r = await host.run(["id", "-u"]);
    expect(r.stdout.trim()).to.equal("0");
  });

  it("says clearly when sudo needs a password", async () => {
    const host = hostFor(conn(sshd, { user: "sriovtest-plain", privateKey: sshd.users.plain.privateKey }));
    try {
      await host.run(["id", "-u"]);
      expect.fail("should have thrown");
    } catch (e: any) {
      expect(e.message).to.match(/sudo needs a password/).and.include("NOPASSWD");
    }
  });

  it("authenticates by password, and a wrong one fails cleanly without echoing it", async () => {
    const u = sshd.users.admin;
    const ok = hostFor(conn(sshd, { user: u.name, privateKey: undefined, password: u.password }));
    expect((await ok.run(["whoami"])).stdout.trim()).to.equal("root");
    const wrong = "Wr0ng-Secret-Passw0rd";
    const bad = hostFor(conn(sshd, { user: u.name, privateKey: undefined, password: wrong }));
    try {
      await bad.run(["true"]);
      expect.fail("should have thrown");
    } catch (e: any) {
      expect(e.message).to.match(/authentication failed for user sriovtest-admin/);
      expect(e.message).not.to.include(wrong);
      expect(String(e.stack)).not.to.include(wrong);
    }
  });

  it("authenticates with a passphrase-protected key, and through an agent", async () => {
    const u = sshd.users.root;
    const enc = hostFor(conn(sshd, { privateKey: u.encryptedPrivateKey, privateKeyPassword: u.passphrase }));
    expect((await enc.run(["echo", "ok"])).stdout).to.equal("ok\n");

    const sock = path.join(workDir, "agent.sock");
    const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
    try {
      for (let i = 0; i < 50 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
      execFileSync("ssh-add", [u.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore" });
      const viaAgent = hostFor(conn(sshd, { privateKey: undefined, agentSocketPath: sock }));
      expect((await viaAgent.run(["echo", "agent"])).stdout).to.equal("agent\n");
    } finally {
      agent.kill();
    }
  });

  it("refuses an unknown host key unless pinned, with its fingerprint", async () => {
    const host = hostFor(conn(sshd, { hostKey: undefined }));
    try {
      await host.run(["true"]);
      expect.fail("should have thrown");
    } catch (e: any) {
      expect(e.name).to.equal("HostKeyError");
      expect(e.message).to.include(sshd.hostKeyFingerprint).and.match(/unknown host key/).and.include("connection.hostKey");
    }
    const skip = hostFor(conn(sshd, { hostKey: undefined, insecureSkipHostKeyCheck: true }));
    expect((await skip.run(["echo", "x"])).stdout).to.equal("x\n");
  });

  it("reaches a host through a jump host", async () => {
    const jump = await TestSshd.start({ allowTcpForwarding: true });
    try {
      const before = await sshd.connectionCount();
      const host = hostFor(conn(sshd, { proxy: conn(jump) }));
      const r = await Promise.all([host.run(["echo", "via"]), host.run(["echo", "jump"])]);
      expect(r.map((x) => x.stdout.trim())).to.deep.equal(["via", "jump"]);
      expect(await jump.connectionCount()).to.equal(1);
      expect((await sshd.connectionCount()) - before).to.equal(1);
    } finally {
      await closeAllConnections();
      await jump.stop();
    }
  });

  it("refuses a changed host key", async () => {
    const pinned = sshd.hostKey;
    await sshd.rotateHostKey();
    const host = hostFor(conn(sshd, { hostKey: pinned }));
    try {
      await host.run(["true"]);
      expect.fail("should have thrown");
    } catch (e: any) {
      expect(e.name).to.equal("HostKeyError");
      expect(e.message).to.include("mismatch").and.include(sshd.hostKeyFingerprint);
    }
  });
});
