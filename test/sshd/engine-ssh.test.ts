// The engine harness with a small provider that writes files on a real sshd
// through the host layer, loaded by package name inside the provider process.
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { ProviderProcess, secret, serializeProvider } from "../support/engine";
import { TestSshd } from "../support/sshd";

const remoteFile: pulumi.dynamic.ResourceProvider = {
  async create(inputs: any) {
    const { hostFor } = require("pulumi-sriov/dist/provider/host");
    const host = hostFor(inputs.connection);
    await host.withLock(() => host.writeFile(inputs.path, inputs.content));
    return { id: inputs.path, outs: inputs };
  },
  async read(id: string, props: any) {
    const { hostFor } = require("pulumi-sriov/dist/provider/host");
    const files = await hostFor(props.connection).readFiles([id]);
    return files[id] === null ? { id: "", props: {} } : { id, props: { ...props, content: files[id] } };
  },
  async update(id: string, _olds: any, news: any) {
    const { hostFor } = require("pulumi-sriov/dist/provider/host");
    await hostFor(news.connection).writeFile(id, news.content);
    return { outs: news };
  },
  async delete(id: string, props: any) {
    const { hostFor } = require("pulumi-sriov/dist/provider/host");
    await hostFor(props.connection).removeFile(id);
  },
};

describe("engine harness with an SSH provider", function () {
  this.timeout(120_000);
  let sshd: TestSshd;
  let proc: ProviderProcess;
  let dir: string;
  let provider: string;

  before(async () => {
    sshd = await TestSshd.start();
    proc = await ProviderProcess.start();
    provider = await serializeProvider(remoteFile);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sriov-engine-ssh-"));
  });
  after(async () => {
    await proc?.stop();
    await sshd?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const connection = () =>
    secret({ host: sshd.host, port: sshd.port, user: "root", privateKey: sshd.users.root.privateKey, hostKey: sshd.hostKey, dialErrorLimit: 3, perDialTimeout: 10 });

  it("creates, reads, updates and deletes files over one SSH connection, 10 at once", async () => {
    const before = await sshd.connectionCount();
    const names = Array.from({ length: 10 }, (_, i) => `f${i}`);
    const created = await Promise.all(
      names.map((n) => proc.create(provider, n, { connection: connection(), path: path.join(dir, n), content: `hello ${n}\n` })),
    );
    for (const n of names) expect(fs.readFileSync(path.join(dir, n), "utf8")).to.equal(`hello ${n}\n`);

    fs.writeFileSync(path.join(dir, "f3"), "edited by hand\n");
    const read = await proc.read(provider, created[3].id, "f3", created[3].outs);
    expect(read.props.content).to.equal("edited by hand\n");

    await proc.update(provider, created[3].id, "f3", read.props, { ...created[3].outs, connection: connection(), content: "repaired\n" });
    expect(fs.readFileSync(path.join(dir, "f3"), "utf8")).to.equal("repaired\n");

    await Promise.all(created.map((c, i) => proc.delete(provider, c.id, names[i], c.outs)));
    expect(fs.readdirSync(dir)).to.deep.equal([]);
    expect((await sshd.connectionCount()) - before, "SSH handshakes for 32 operations in one provider process").to.equal(1);
  });

  it("reports a host error through the engine with host and command", async () => {
    try {
      await proc.create(provider, "bad", { connection: connection(), path: "/proc/version/not-a-dir/x", content: "x" });
      expect.fail("should have thrown");
    } catch (e: any) {
      expect(e.message).to.include(`root@127.0.0.1:${sshd.port}`).and.include("write /proc/version/not-a-dir/x");
    }
  });
});
