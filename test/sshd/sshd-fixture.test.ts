// The loopback OpenSSH fixture, checked with the system ssh client and ssh2:
// if these pass, the host-layer tests run against a server that behaves like
// a real hypervisor's sshd.

import { expect } from "chai";
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { TestSshd, TestKeyUser, ADMIN_USER, PLAIN_USER } from "../support/sshd";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

let scratch: string;

function knownHostsFile(...servers: TestSshd[]): string {
  const file = path.join(scratch, `known_hosts-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, servers.map((s) => s.knownHostsLine() + "\n").join(""));
  return file;
}

function strictOptions(user: TestKeyUser, knownHosts: string): string[] {
  return [
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "IdentityAgent=none",
    "-o", `IdentityFile=${user.privateKeyPath}`,
    "-o", "PasswordAuthentication=no",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `UserKnownHostsFile=${knownHosts}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=10",
  ];
}

function runCmd(cmd: string, args: string[], input?: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { encoding: "utf8", timeout: 30000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === "string") return reject(err);
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(input ?? "");
  });
}

/** `ssh` to one server with strict host key checking against `knownHosts`. */
function ssh(server: TestSshd, user: TestKeyUser, command: string, knownHosts?: string, input?: string) {
  const kh = knownHosts ?? knownHostsFile(server);
  return runCmd(
    "ssh",
    ["-F", "/dev/null", ...strictOptions(user, kh), "-p", String(server.port), `${user.name}@${server.host}`, command],
    input,
  );
}

function blobOf(keyLine: string): Buffer {
  return Buffer.from(keyLine.split(" ")[1], "base64");
}

/** ssh2 connection that accepts only the server's own host key. */
function connect(server: TestSshd, config: Partial<ConnectConfig>): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.on("ready", () => resolve(client));
    client.on("error", reject);
    client.connect({
      host: server.host,
      port: server.port,
      readyTimeout: 15000,
      hostVerifier: (key: Buffer) => key.equals(blobOf(server.hostKey)),
      ...config,
    });
  });
}

function exec(client: Client, command: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(err);
      let stdout = "";
      let stderr = "";
      let code = -1;
      stream.on("data", (d: Buffer) => (stdout += d.toString()));
      stream.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      stream.on("exit", (c: number | null) => (code = c ?? -1));
      stream.on("close", () => resolve({ code, stdout, stderr }));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.on("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.on("error", () => resolve(false));
  });
}

describe("TestSshd: real OpenSSH servers on loopback", function () {
  this.timeout(60000);
  let server: TestSshd;

  before(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), "sriovtest-client-"));
    server = await TestSshd.start();
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  });

  it("listens on 127.0.0.1 with a pinned ed25519 host key and its SHA256 fingerprint", async () => {
    expect(server.host).to.equal("127.0.0.1");
    expect(server.port).to.be.within(1, 65535);
    expect(server.hostKey).to.match(/^ssh-ed25519 AAAA[A-Za-z0-9+/=]+$/);
    const digest = createHash("sha256").update(blobOf(server.hostKey)).digest("base64").replace(/=+$/, "");
    expect(server.hostKeyFingerprint).to.equal(`SHA256:${digest}`);
    expect(server.knownHostsLine()).to.equal(`[127.0.0.1]:${server.port} ${server.hostKey}`);
    const config = fs.readFileSync(server.configPath, "utf8");
    expect(config).to.match(/^ListenAddress 127\.0\.0\.1$/m);
    expect(config).not.to.match(/^ListenAddress (?!127\.0\.0\.1$)/m);
    expect(fs.readFileSync(server.logPath, "utf8")).to.include(`Server listening on 127.0.0.1 port ${server.port}.`);
  });

  it("lets root log in by key with strict host key checking", async () => {
    const r = await ssh(server, server.users.root, "id -u");
    expect(r.stderr).to.equal("");
    expect(r).to.include({ code: 0, stdout: "0\n" });
  });

  it("refuses an unknown host key under StrictHostKeyChecking", async () => {
    const empty = path.join(scratch, "empty_known_hosts");
    fs.writeFileSync(empty, "");
    const r = await ssh(server, server.users.root, "true", empty);
    expect(r.code).to.equal(255);
    expect(r.stderr).to.match(/Host key verification failed/);
  });

  it("gives the admin user NOPASSWD sudo", async () => {
    const admin = server.users.admin;
    expect(admin.name).to.equal(ADMIN_USER);
    expect(admin.home).to.equal(`/home/${ADMIN_USER}`);
    const r = await ssh(server, admin, "id -un; pwd; sudo -n true && sudo -n id -u");
    expect(r.stderr).to.equal("");
    expect(r).to.include({ code: 0, stdout: `${ADMIN_USER}\n${admin.home}\n0\n` });
  });

  it("makes sudo -n fail for the plain user with 'a password is required', and sudo -S work with its password", async () => {
    const plain = server.users.plain;
    expect(plain.name).to.equal(PLAIN_USER);
    const denied = await ssh(server, plain, "id -un; sudo -n true");
    expect(denied.stdout).to.equal(`${PLAIN_USER}\n`);
    expect(denied.code).to.equal(1);
    expect(denied.stderr).to.include("a password is required");
    const allowed = await ssh(server, plain, "sudo -S -p '' id -u", undefined, `${plain.password}\n`);
    expect(allowed).to.include({ code: 0, stdout: "0\n" });
  });

  it("accepts password login for the test users and refuses a wrong password", async () => {
    for (const user of [server.users.admin, server.users.plain]) {
      expect(user.password).to.have.length.greaterThan(15);
      const client = await connect(server, { username: user.name, password: user.password });
      try {
        expect(await exec(client, "id -un")).to.include({ code: 0, stdout: `${user.name}\n` });
      } finally {
        client.end();
      }
    }
    let failure: Error | undefined;
    await connect(server, { username: ADMIN_USER, password: server.users.admin.password + "x" }).then(
      (c) => c.end(),
      (e: Error) => (failure = e),
    );
    expect(failure?.message).to.match(/All configured authentication methods failed/);
  });

  it("accepts the encrypted key with its passphrase (and it is the same key pair)", async () => {
    const admin = server.users.admin;
    expect(admin.encryptedPrivateKey).to.match(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(admin.privateKey).to.match(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(admin.encryptedPrivateKey).not.to.equal(admin.privateKey);
    const derived = await runCmd("ssh-keygen", ["-y", "-P", admin.passphrase, "-f", admin.encryptedPrivateKeyPath]);
    expect(derived.code).to.equal(0);
    expect(derived.stdout.trim().split(" ").slice(0, 2)).to.deep.equal(admin.publicKey.split(" ").slice(0, 2));
    const wrong = await runCmd("ssh-keygen", ["-y", "-P", "not-it", "-f", admin.encryptedPrivateKeyPath]);
    expect(wrong.code).not.to.equal(0);
    const client = await connect(server, {
      username: admin.name,
      privateKey: admin.encryptedPrivateKey,
      passphrase: admin.passphrase,
    });
    try {
      expect(await exec(client, "sudo -n id -u")).to.include({ code: 0, stdout: "0\n" });
    } finally {
      client.end();
    }
  });

  it("counts one connection per SSH handshake, not per command", async () => {
    const before = await server.connectionCount();
    await ssh(server, server.users.root, "true");
    expect(await server.connectionCount()).to.equal(before + 1);
    await ssh(server, server.users.admin, "true");
    expect(await server.connectionCount()).to.equal(before + 2);
    const client = await connect(server, { username: "root", privateKey: server.users.root.privateKey });
    try {
      const results = await Promise.all([1, 2, 3, 4, 5].map((i) => exec(client, `echo ${i}`)));
      expect(results.map((r) => r.stdout)).to.deep.equal(["1\n", "2\n", "3\n", "4\n", "5\n"]);
    } finally {
      client.end();
    }
    expect(await server.connectionCount()).to.equal(before + 3);
    // A refused login is not a connection.
    await connect(server, { username: ADMIN_USER, password: "wrong" }).then(
      (c) => c.end(),
      () => undefined,
    );
    expect(await server.connectionCount()).to.equal(before + 3);
  });

  it("killConnections drops a live connection and keeps the listener", async () => {
    const child = spawn(
      "ssh",
      ["-F", "/dev/null", ...strictOptions(server.users.root, knownHostsFile(server)), "-p", String(server.port),
        "root@127.0.0.1", "echo ready; sleep 60"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("ready")) resolve();
      });
      child.on("exit", () => reject(new Error("ssh exited before the command started")));
    });
    const t0 = Date.now();
    await server.killConnections();
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("still running"), 10000))]);
    if (code === "still running") child.kill("SIGKILL");
    expect(code).to.equal(255);
    expect(Date.now() - t0).to.be.below(10000);
    const again = await ssh(server, server.users.root, "echo alive");
    expect(again).to.include({ code: 0, stdout: "alive\n" });
  });

  it("killConnections closes an ssh2 connection mid-command", async () => {
    const client = await connect(server, { username: "root", privateKey: server.users.root.privateKey });
    const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
    client.on("error", () => undefined);
    client.exec("sleep 60", () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await server.killConnections();
    const outcome = await Promise.race([
      closed.then(() => "closed"),
      new Promise<string>((r) => setTimeout(() => r("open"), 10000)),
    ]);
    client.end();
    expect(outcome).to.equal("closed");
  });

  it("rotateHostKey restarts on the same port with a new key the old known_hosts refuses", async () => {
    const oldKnownHosts = knownHostsFile(server);
    const { port, hostKey, hostKeyFingerprint } = server;
    expect((await ssh(server, server.users.root, "true", oldKnownHosts)).code).to.equal(0);
    await server.rotateHostKey();
    expect(server.port).to.equal(port);
    expect(server.hostKey).not.to.equal(hostKey);
    expect(server.hostKeyFingerprint).not.to.equal(hostKeyFingerprint);
    const refused = await ssh(server, server.users.root, "true", oldKnownHosts);
    expect(refused.code).to.equal(255);
    expect(refused.stderr).to.include("REMOTE HOST IDENTIFICATION HAS CHANGED");
    expect(refused.stderr).to.include(server.hostKeyFingerprint);
    const accepted = await ssh(server, server.users.root, "echo ok");
    expect(accepted).to.include({ code: 0, stdout: "ok\n" });
  });

  it("shares the test users' passwords with a concurrent test process and survives its exit", async () => {
    const script =
      `require(${JSON.stringify(path.join(__dirname, "..", "support", "sshd"))}).TestSshd.start()` +
      `.then(async (s) => { console.log(JSON.stringify({ admin: s.users.admin.password, plain: s.users.plain.password })); await s.stop(); })` +
      `.catch((e) => { console.error(e); process.exit(1); })`;
    const r = await runCmd(process.execPath, ["--require", "tsx/cjs", "-e", script]);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({
      admin: server.users.admin.password,
      plain: server.users.plain.password,
    });
    // The other process has exited: password login must still work here.
    const client = await connect(server, { username: PLAIN_USER, password: server.users.plain.password });
    try {
      expect(await exec(client, "id -un")).to.include({ code: 0, stdout: `${PLAIN_USER}\n` });
    } finally {
      client.end();
    }
  });

  it("takes its servers down when the test process exits or is killed, and sweeps what a killed one left", async () => {
    const fixture = JSON.stringify(path.join(__dirname, "..", "support", "sshd"));
    const startInChild = (then: string) =>
      spawn(
        process.execPath,
        ["--require", "tsx/cjs", "-e",
          `require(${fixture}).TestSshd.start().then((s) => { console.log(JSON.stringify({ dir: s.dir, pid: s.pid, port: s.port })); ${then} })` +
          `.catch((e) => { console.error(e); process.exit(1); })`],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
    const firstLine = (child: ReturnType<typeof spawn>) =>
      new Promise<{ dir: string; pid: number; port: number }>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]));
        });
        child.on("exit", (code) => reject(new Error(`child exited ${code} before starting sshd`)));
      });
    const gone = async (pid: number) => {
      for (let i = 0; i < 100 && fs.existsSync(`/proc/${pid}`); i++) {
        if (/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      return !fs.existsSync(`/proc/${pid}`) || /\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"));
    };

    // Normal exit without stop(): the exit hook cleans up.
    const normal = startInChild("setTimeout(() => process.exit(0), 100);");
    const a = await firstLine(normal);
    expect(await portOpen(a.port)).to.equal(true);
    await new Promise((r) => normal.on("exit", r));
    expect(await gone(a.pid)).to.equal(true);
    expect(fs.existsSync(a.dir)).to.equal(false);

    // SIGKILL: no exit hook runs, the listener still dies with its parent.
    const killed = startInChild("setInterval(() => undefined, 1000);");
    const b = await firstLine(killed);
    expect(fs.existsSync(b.dir)).to.equal(true);
    killed.kill("SIGKILL");
    expect(await gone(b.pid)).to.equal(true);
    expect(await portOpen(b.port)).to.equal(false);
    expect(fs.existsSync(b.dir)).to.equal(true);
    // The next test process sweeps the directory of the killed one.
    const next = startInChild("s.stop().then(() => process.exit(0));");
    await firstLine(next);
    await new Promise((r) => next.on("exit", r));
    expect(fs.existsSync(b.dir)).to.equal(false);
    expect(fs.existsSync(server.dir)).to.equal(true);
  });

  describe("options", () => {
    it("shellStartupFiles: commands skip ~/.bashrc by default and source it when asked", async () => {
      // bash increments SHLVL; sshd starts it at 1 unless startup files are wanted.
      expect((await ssh(server, server.users.admin, "echo $SHLVL")).stdout).to.equal("2\n");
      const stock = await TestSshd.start({ shellStartupFiles: true });
      try {
        expect((await ssh(stock, stock.users.admin, "echo $SHLVL")).stdout).to.equal("1\n");
      } finally {
        await stock.stop();
      }
    });


    it("passwordAuth: false refuses passwords but keeps key login", async () => {
      const keyOnly = await TestSshd.start({ passwordAuth: false });
      try {
        let failure: Error | undefined;
        await connect(keyOnly, { username: ADMIN_USER, password: keyOnly.users.admin.password }).then(
          (c) => c.end(),
          (e: Error) => (failure = e),
        );
        expect(failure?.message).to.match(/All configured authentication methods failed/);
        expect((await ssh(keyOnly, keyOnly.users.admin, "true")).code).to.equal(0);
      } finally {
        await keyOnly.stop();
      }
    });

    it("maxSessions caps the channels of one connection", async () => {
      const capped = await TestSshd.start({ maxSessions: 2 });
      try {
        const client = await connect(capped, { username: "root", privateKey: capped.users.root.privateKey });
        try {
          const results = await Promise.allSettled([1, 2, 3].map(() => exec(client, "sleep 1; echo done")));
          const ok = results.filter((r) => r.status === "fulfilled");
          const refused = results.filter((r) => r.status === "rejected") as PromiseRejectedResult[];
          expect(ok).to.have.length(2);
          expect(refused).to.have.length(1);
          expect(String(refused[0].reason)).to.match(/open failed/i);
        } finally {
          client.end();
        }
      } finally {
        await capped.stop();
      }
    });

    it("hostKeyType: rsa serves an RSA host key", async () => {
      const rsa = await TestSshd.start({ hostKeyType: "rsa" });
      try {
        expect(rsa.hostKey).to.match(/^ssh-rsa AAAA/);
        expect(rsa.hostKeyFingerprint).to.match(/^SHA256:[A-Za-z0-9+/]{43}$/);
        const r = await ssh(rsa, rsa.users.root, "echo rsa");
        expect(r).to.include({ code: 0, stdout: "rsa\n" });
      } finally {
        await rsa.stop();
      }
    });

    it("honours an explicit port and fails clearly when it is taken", async () => {
      const first = await TestSshd.start();
      try {
        let failure: Error | undefined;
        await TestSshd.start({ port: first.port }).then(
          (s) => s.stop(),
          (e: Error) => (failure = e),
        );
        expect(failure?.message).to.match(/Address already in use|Cannot bind/);
      } finally {
        await first.stop();
      }
    });

    it("stop() kills the server and its connections and removes its directory", async () => {
      const s = await TestSshd.start();
      const client = await connect(s, { username: "root", privateKey: s.users.root.privateKey });
      const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
      client.on("error", () => undefined);
      const pid = s.pid!;
      await s.stop();
      await closed;
      expect(await portOpen(s.port)).to.equal(false);
      expect(fs.existsSync(`/proc/${pid}`) && !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))).to.equal(
        false,
      );
      expect(fs.existsSync(s.dir)).to.equal(false);
      await s.stop(); // idempotent
    });
  });

  describe("jump host", () => {
    let proxy: TestSshd;
    let target: TestSshd;
    let config: string;

    before(async () => {
      [proxy, target] = await Promise.all([TestSshd.start({ allowTcpForwarding: true }), TestSshd.start()]);
      const kh = knownHostsFile(proxy, target);
      const block = (alias: string, s: TestSshd) =>
        [
          `Host ${alias}`,
          `  HostName ${s.host}`,
          `  Port ${s.port}`,
          "  User root",
          `  IdentityFile ${s.users.root.privateKeyPath}`,
          "  IdentitiesOnly yes",
          "  IdentityAgent none",
          "  BatchMode yes",
          "  PasswordAuthentication no",
          "  StrictHostKeyChecking yes",
          `  UserKnownHostsFile ${kh}`,
          "  GlobalKnownHostsFile /dev/null",
          "  ConnectTimeout 10",
        ].join("\n");
      config = path.join(scratch, "ssh_config");
      fs.writeFileSync(config, `${block("proxy", proxy)}\n${block("target", target)}\n`);
    });

    after(async () => {
      await Promise.all([proxy?.stop(), target?.stop()]);
    });

    it("reaches the target through the proxy with ssh -J", async () => {
      const [p0, t0] = [await proxy.connectionCount(), await target.connectionCount()];
      const r = await runCmd("ssh", ["-F", config, "-J", "proxy", "target", "echo via-jump; echo $SSH_CONNECTION"]);
      expect(r.code, r.stderr).to.equal(0);
      const [first, conn] = r.stdout.split("\n");
      expect(first).to.equal("via-jump");
      // The target sees the connection arriving from loopback on its own port.
      expect(conn).to.match(new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${target.port}$`));
      expect(await proxy.connectionCount()).to.equal(p0 + 1);
      expect(await target.connectionCount()).to.equal(t0 + 1);
    });

    it("a server without AllowTcpForwarding cannot be a jump host", async () => {
      const r = await runCmd("ssh", ["-F", config, "-J", "target", "proxy", "true"]);
      expect(r.code).to.equal(255);
      expect(r.stderr).to.match(/administratively prohibited|open failed/);
    });

    it("ssh2 forwards through the proxy to the target (as the host layer does)", async () => {
      const jump = await connect(proxy, { username: "root", privateKey: proxy.users.root.privateKey });
      try {
        const sock = await new Promise<ClientChannel>((resolve, reject) =>
          jump.forwardOut("127.0.0.1", 0, target.host, target.port, (err, stream) =>
            err ? reject(err) : resolve(stream),
          ),
        );
        const inner = await connect(target, {
          sock,
          username: ADMIN_USER,
          password: target.users.admin.password,
        });
        try {
          expect(await exec(inner, "sudo -n id -u")).to.include({ code: 0, stdout: "0\n" });
        } finally {
          inner.end();
        }
      } finally {
        jump.end();
      }
    });
  });
});
