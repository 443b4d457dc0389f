// Reliability: bad input. Every entry of the table goes through the real
// dynamic-provider process's Check, as `pulumi preview` / `up` send it, with
// the connection pointing at a real sshd on loopback. Each must be refused
// with exactly the properties at fault named (all of one input's errors in
// one answer), and the sshd must never see a connection: bad input is
// refused before any host is contacted. A valid input, by design, is
// planned on the host during check; that control proves the sshd counts
// what it should.
import { expect } from "chai";
import { BAD_INPUTS, BadInput, VALID } from "./badInputs";
import { addSecret, figures, record, recordLogs } from "./figures";
import { ProviderProcess, secret } from "../support/engine";
import { TestSshd } from "../support/sshd";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

/** Every TCP connection sshd saw (LogLevel VERBOSE logs each), authenticated or not. */
async function tcpConnections(sshd: TestSshd): Promise<number> {
  return ((await sshd.log()).match(/^.*\bConnection from 127\.0\.0\.1 port \d+/gm) ?? []).length;
}

function connectionFor(sshd: TestSshd, b: BadInput): Record<string, unknown> | undefined {
  if (b.connection === false) return undefined;
  const c: Record<string, unknown> = {
    host: sshd.host,
    port: sshd.port,
    user: "root",
    privateKey: sshd.users.root.privateKey,
    hostKey: sshd.hostKey,
    dialErrorLimit: 1,
  };
  for (const [k, v] of Object.entries(b.connection ?? {})) {
    if (v === null) delete c[k];
    else c[k] = v;
  }
  return c;
}

describe("reliability: bad input is refused by check, naming every bad property, before any host is contacted", function () {
  this.timeout(120_000);
  let sshd: TestSshd;
  let proc: ProviderProcess;
  /** TCP connections before the table (the fixture's own readiness probe). */
  let baseline = 0;

  before(async function () {
    this.timeout(180_000);
    sshd = await TestSshd.start();
    addSecret("root private key", sshd.users.root.privateKey);
    // No agent: a connection without password or key must be refused as such.
    proc = await ProviderProcess.start({ env: { SSH_AUTH_SOCK: "" } });
    baseline = await tcpConnections(sshd);
  });

  after(async () => {
    if (proc) recordLogs("bad-input provider process", proc.logs);
    await proc?.stop();
    await sshd?.stop();
  });

  it(`the table has at least 60 invalid inputs covering all five resources (${BAD_INPUTS.length})`, () => {
    expect(BAD_INPUTS.length).to.be.at.least(60);
    expect(new Set(BAD_INPUTS.map((b) => b.kind))).to.have.keys(Object.keys(VALID));
    expect(BAD_INPUTS.filter((b) => new Set(b.expect).size > 1).length, "inputs with several errors").to.be.at.least(6);
  });

  for (const b of BAD_INPUTS) {
    it(`${b.kind}: ${b.label} → ${b.expect.join(", ")}`, async () => {
      figures.inputsTried++;
      const conn = connectionFor(sshd, b);
      const news = { ...b.props, ...(conn ? { connection: secret(conn) } : {}) };
      const r = await proc.check(providers[b.kind], "bad", {}, news);
      record(`check failures of ${b.kind} "${b.label}"`, r.failures.map((f) => `${f.property}: ${f.reason}`).join("\n"));
      const named = [...new Set(r.failures.map((f) => f.property))].sort();
      expect(named, JSON.stringify(r.failures)).to.deep.equal([...new Set(b.expect)].sort());
      for (const f of r.failures) expect(f.reason, f.property).to.be.a("string").and.have.length.greaterThan(3);
      // A refused input is not planned: no host changes were asked for.
      expect(r.inputs).to.not.have.property("hostChanges");
      figures.inputsRejected++;
    });
  }

  it("no SSH connection was opened for any of them (the sshd saw none)", async () => {
    expect(await sshd.connectionCount()).to.equal(0);
    expect(await tcpConnections(sshd)).to.equal(baseline);
  });

  it("control: a valid input's check does connect, to plan on the host (so the count above can fail)", async () => {
    const conn = connectionFor(sshd, { kind: "sriovPf", label: "valid", props: {}, expect: [] })!;
    const r = await proc.check(providers.sriovPf, "good", {}, { ...VALID.sriovPf, connection: secret(conn) });
    expect(r.failures).to.deep.equal([]);
    expect(r.inputs.hostChanges, "planned on the host").to.be.an("array").that.is.not.empty;
    record("valid check hostChanges", r.inputs.hostChanges.join("\n"));
    expect(await sshd.connectionCount()).to.equal(1);
  });
});
