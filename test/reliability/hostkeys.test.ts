// Reliability: host keys, through the resources as `pulumi preview` / `up`
// drive them in the real provider process, against a real sshd on loopback.
// The provider process gets a HOME of its own, so its ~/.ssh/known_hosts is
// exactly what each test writes. An unknown key is refused unless pinned
// (connection.hostKey) or known (known_hosts, plain or hashed); a changed key
// is refused against both; every refusal shows the presented key's SHA256
// fingerprint and how to pin it, and happens before authentication.
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { addSecret, figures, recordError, trackStack } from "./figures";
import { deploymentFailure, secret, Stack } from "../support/engine";
import { TestSshd } from "../support/sshd";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const KINDS = ["iommuKernelArgs", "sriovPf", "virtualFunction", "vfPoolNetwork", "domainVfInterface"] as const;
type Kind = (typeof KINDS)[number];
const PROPS: Record<Kind, Record<string, unknown>> = {
  iommuKernelArgs: { iommu: "intel" },
  sriovPf: { interface: "enp250s0", numVfs: 2 },
  virtualFunction: { pf: "enp250s0", index: 1 },
  vfPoolNetwork: { name: "keypool", pf: "enp250s0" },
  domainVfInterface: { domain: "keyvm", source: { network: "keypool" } },
};
const PLANS_IN_CHECK: Kind[] = ["iommuKernelArgs", "sriovPf", "virtualFunction", "vfPoolNetwork", "domainVfInterface"];


describe("reliability: host keys are verified by every resource", function () {
  this.timeout(10 * 60_000);
  let sshd: TestSshd;
  let home: string;
  let knownHosts: string;
  let oldKey = "";
  let oldFp = "";

  const conn = (extra: Record<string, unknown> = {}) => ({
    host: sshd.host,
    port: sshd.port,
    user: "root",
    privateKey: sshd.users.root.privateKey,
    dialErrorLimit: 2,
    ...extra,
  });
  const stack = () => trackStack("hostkeys", new Stack({ env: { HOME: home, SSH_AUTH_SOCK: "" } }));
  const up = (kind: Kind, c: Record<string, unknown>) => stack().up([{ name: kind, provider: providers[kind], props: { connection: secret(c), ...PROPS[kind] } }]);
  const preview = (kind: Kind, c: Record<string, unknown>) =>
    stack().preview([{ name: kind, provider: providers[kind], props: { connection: secret(c), ...PROPS[kind] } }]);

  /** The refusal as the user sees it: names the host, the presented fingerprint, and how to pin. */
  function expectRefusal(message: string, fp: string, kind: RegExp): void {
    expect(message).to.match(kind);
    expect(message).to.include(`127.0.0.1:${sshd.port}`);
    expect(message).to.include(fp);
    figures.hostKeyRefusals++;
  }

  before(async function () {
    this.timeout(120_000);
    sshd = await TestSshd.start();
    addSecret("root private key", sshd.users.root.privateKey);
    home = fs.mkdtempSync(path.join(os.tmpdir(), "sriov-hostkeys-home-"));
    fs.mkdirSync(path.join(home, ".ssh"), { mode: 0o700 });
    knownHosts = path.join(home, ".ssh", "known_hosts");
    fs.writeFileSync(knownHosts, "");
  });

  after(async () => {
    await sshd?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  describe("an unknown key", () => {
    for (const kind of KINDS) {
      it(`${kind}: refused by preview and up, with the fingerprint and how to pin it, before authenticating`, async () => {
        const accepted = await sshd.connectionCount();
        if (PLANS_IN_CHECK.includes(kind)) {
          const pv = await preview(kind, conn());
          const shown = (pv.outputs[kind].hostChanges as string[]).join("\n");
          expectRefusal(shown, sshd.hostKeyFingerprint, /unknown host key/);
        }
        const e = await deploymentFailure(up(kind, conn()));
        recordError(`host key unknown ${kind}`, e);
        expectRefusal(e.message, sshd.hostKeyFingerprint, /unknown host key/);
        expect(e.message).to.include(`connection.hostKey = "${sshd.hostKey}"`);
        expect(e.message).to.include(`ssh-keyscan -p ${sshd.port} 127.0.0.1`);
        expect(await sshd.connectionCount(), "no authentication happened").to.equal(accepted);
      });
    }

    it("pinned with connection.hostKey: accepted (the up fails later, on the host: there is no such PF)", async () => {
      const before = await sshd.connectionCount();
      const e = await deploymentFailure(up("sriovPf", conn({ hostKey: sshd.hostKey })));
      recordError("host key pinned", e);
      expect(e.message).to.not.match(/host key/i);
      expect(e.message).to.match(/enp250s0/);
      expect(await sshd.connectionCount()).to.be.greaterThan(before);
    });

    it("in known_hosts (plain, then hashed): accepted", async () => {
      fs.writeFileSync(knownHosts, sshd.knownHostsLine() + "\n");
      let e = await deploymentFailure(up("virtualFunction", conn()));
      expect(e.message).to.not.match(/host key/i);
      execFileSync("ssh-keygen", ["-q", "-H", "-f", knownHosts], { stdio: "ignore" });
      expect(fs.readFileSync(knownHosts, "utf8")).to.match(/^\|1\|/);
      e = await deploymentFailure(up("virtualFunction", conn()));
      recordError("host key hashed known_hosts", e);
      expect(e.message).to.not.match(/host key/i);
      expect(e.message).to.match(/enp250s0/);
    });

    it("a pin of another key is refused even when known_hosts has the right one", async () => {
      const other = execFileSync("ssh-keygen", ["-y", "-f", sshd.users.admin.privateKeyPath], { encoding: "utf8" }).trim();
      const e = await deploymentFailure(up("vfPoolNetwork", conn({ hostKey: other })));
      expectRefusal(e.message, sshd.hostKeyFingerprint, /host key mismatch/);
    });
  });

  describe("a changed key (the host was reinstalled, or someone is in the middle)", () => {
    before(async () => {
      oldKey = sshd.hostKey;
      oldFp = sshd.hostKeyFingerprint;
      fs.writeFileSync(knownHosts, sshd.knownHostsLine() + "\n");
      await sshd.rotateHostKey();
      expect(sshd.hostKeyFingerprint).to.not.equal(oldFp);
    });

    for (const kind of KINDS) {
      it(`${kind}: refused against the pinned key and against known_hosts, showing the new fingerprint`, async () => {
        const accepted = await sshd.connectionCount();
        const pinned = await deploymentFailure(up(kind, conn({ hostKey: oldKey })));
        recordError(`host key changed pinned ${kind}`, pinned);
        expectRefusal(pinned.message, sshd.hostKeyFingerprint, /host key mismatch/);
        expect(pinned.message).to.include(oldFp);
        const known = await deploymentFailure(up(kind, conn()));
        recordError(`host key changed known_hosts ${kind}`, known);
        expectRefusal(known.message, sshd.hostKeyFingerprint, /host key CHANGED/);
        expect(known.message).to.include(knownHosts);
        if (PLANS_IN_CHECK.includes(kind)) {
          const pv = await preview(kind, conn({ hostKey: oldKey }));
          expectRefusal((pv.outputs[kind].hostChanges as string[]).join("\n"), sshd.hostKeyFingerprint, /host key mismatch/);
        }
        expect(await sshd.connectionCount(), "no authentication happened").to.equal(accepted);
      });
    }

    it("insecureSkipHostKeyCheck: true is the only way past it without a new pin", async () => {
      const e = await deploymentFailure(up("sriovPf", conn({ hostKey: undefined, insecureSkipHostKeyCheck: true })));
      expect(e.message).to.not.match(/host key/i);
      const pinned = await deploymentFailure(up("sriovPf", conn({ hostKey: sshd.hostKey })));
      expect(pinned.message).to.not.match(/host key/i);
      expect(pinned.message).to.match(/enp250s0/);
    });
  });
});
