// Reliability: secrets. Password and key connections go through the whole
// engine flow (preview, up, refresh, destroy, as the engine drives the real
// provider process) against a real sshd on loopback, as a non-root user
// whose sudo needs no password, and through every way a connection can fail
// (wrong password, wrong key passphrase, a jump host). Everything a user
// could see is recorded: state as it would be stored, outputs, every error
// message, the provider process's logs, the serialized providers. The root
// hook of the suite scans it all for the password, key and passphrase text
// after every other test has run; this file also scans what it produced at
// once, so a leak is attributed to the step that made it.
import { expect } from "chai";
import { closeAllConnections } from "../../provider/host";
import { addSecret, record, recordError, recordLogs, serializeState, stateText, trackStack } from "./figures";
import { DeploymentError, deploymentFailure, isSecret, PROVIDER_KEY, ProviderProcess, secret, serializeProvider, Stack, StateEntry, unwrapSecrets } from "../support/engine";
import { TestSshd } from "../support/sshd";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const KINDS = ["iommuKernelArgs", "sriovPf", "virtualFunction", "vfPoolNetwork", "domainVfInterface"] as const;
/** Inputs that plan and fail harmlessly on a machine without SR-IOV NICs or libvirt (reads only). */
const PROPS: Record<(typeof KINDS)[number], Record<string, unknown>> = {
  iommuKernelArgs: { iommu: "intel", extraArgs: ["hugepages=16"] },
  sriovPf: { interface: "enp250s0", numVfs: 2 },
  virtualFunction: { pf: "enp250s0", index: 1, mac: "02:00:00:00:01:01", vlan: 7 },
  vfPoolNetwork: { name: "secretpool", pf: "enp250s0" },
  domainVfInterface: { domain: "secretvm", source: { network: "secretpool" }, mac: "52:54:00:00:01:01" },
};


describe("reliability: secrets never appear in state, outputs, errors or logs", function () {
  this.timeout(10 * 60_000);
  let sshd: TestSshd;
  let jump: TestSshd;
  const secretsHere: string[] = [];
  const texts: { where: string; text: string }[] = [];

  const keep = (where: string, text: string | undefined) => {
    if (text === undefined) return;
    texts.push({ where, text });
    record(where, text);
  };
  const keepError = (where: string, e: DeploymentError) => {
    recordError(where, e);
    texts.push({ where: `${where} error`, text: e.message });
    texts.push({ where: `${where} logs`, text: e.result.logs.map((l) => l.message).join("\n") });
  };
  const secretText = (s: string) => {
    secretsHere.push(s);
    for (const line of s.split("\n")) if (line.trim().length >= 20 && !line.startsWith("-----")) secretsHere.push(line.trim());
  };

  before(async function () {
    this.timeout(180_000);
    sshd = await TestSshd.start();
    jump = await TestSshd.start({ allowTcpForwarding: true });
    const u = sshd.users;
    for (const [what, v] of [
      ["admin password", u.admin.password],
      ["plain password", u.plain.password],
      ["admin private key", u.admin.privateKey],
      ["admin encrypted private key", u.admin.encryptedPrivateKey],
      ["admin key passphrase", u.admin.passphrase],
      ["root private key", u.root.privateKey],
      ["wrong password", "Wr0ng-pa55word-for-the-test"],
      ["wrong passphrase", "Wr0ng-passphrase-for-the-test"],
    ] as const) {
      addSecret(what, v);
      secretText(v);
    }
  });

  after(async () => {
    await closeAllConnections();
    await jump?.stop();
    await sshd?.stop();
  });

  afterEach(function () {
    // This file's own scan: attributed to the step that leaked.
    const hits: string[] = [];
    for (const t of texts.splice(0)) for (const s of secretsHere) if (t.text.includes(s)) hits.push(t.where);
    expect(hits, `secret text in ${this.currentTest?.title}`).to.deep.equal([]);
  });

  const passwordConn = () => ({ host: sshd.host, port: sshd.port, user: "sriovtest-admin", password: sshd.users.admin.password, hostKey: sshd.hostKey });

  it("the serialized providers (stored in state as __provider) capture no secret", async () => {
    for (const k of KINDS) {
      const text = await serializeProvider(providers[k]);
      keep(`serialized provider ${k}`, text);
      expect(text).to.include("pulumi-sriov/dist/provider/runtime");
    }
  });

  for (const k of KINDS) {
    it(`${k}: preview, up, refresh and destroy with a password (sudo user); the connection stays a secret`, async () => {
      const stack = trackStack(`secrets-${k}`, new Stack({ env: { SSH_AUTH_SOCK: "" } }));
      const res = [{ name: k, provider: providers[k], props: { connection: secret(passwordConn()), ...PROPS[k] } }];

      // Preview: check plans on the host with the password; what it shows is recorded.
      const pv = await stack.preview(res).catch((e: DeploymentError) => e);
      if (pv instanceof DeploymentError) keepError(`${k} preview`, pv);
      else {
        keep(`${k} preview outputs`, serializeState(pv.outputs));
        recordLogs(`${k} preview`, pv.logs);
        keep(`${k} preview logs`, pv.logs.map((l) => l.message).join("\n"));
        // The connection came back from check as a secret (the engine re-marks it).
        expect(isSecret(pv.outputs[k].connection), "connection is a secret in preview").to.equal(true);
      }

      // Up: this machine has no SR-IOV NIC and no libvirt, so create fails reading the host.
      const e = await deploymentFailure(stack.up(res));
      keepError(`${k} up`, e);
      expect(e.message).to.match(/127\.0\.0\.1|sriovtest-admin|enp250s0|secret|virsh|bootloader|grub|cpu/i);

      // A stored state with the password (as after an earlier successful up): refresh and destroy.
      const p = await ProviderProcess.start({ env: { SSH_AUTH_SOCK: "" } });
      try {
        const checked = await p.check(providers[k], k, {}, { connection: secret(passwordConn()), ...PROPS[k] });
        keep(`${k} check inputs`, serializeState(checked.inputs));
        expect(isSecret(checked.inputs.connection), "checked connection is a secret").to.equal(true);
        const entry: StateEntry = {
          urn: p.urn(k),
          name: k,
          id: `${k}-id`,
          inputs: checked.inputs,
          outputs: { ...checked.inputs, applied: { ...PROPS[k] }, [PROVIDER_KEY]: await serializeProvider(providers[k]) },
        };
        stack.state.set(k, entry);
        keep(`${k} stored state`, stateText(stack.state.values()));
        expect(stateText(stack.state.values())).to.include("[secret: stored encrypted]");
        for (const step of [() => p.read(providers[k], entry.id, k, entry.outputs, entry.inputs), () => p.delete(providers[k], entry.id, k, entry.outputs)]) {
          const r = await step().then(
            (v) => v,
            (err: Error) => err,
          );
          if (r instanceof Error) {
            recordError(`${k} refresh/destroy`, r);
            keep(`${k} refresh/destroy error`, r.message);
          } else {
            keep(`${k} refresh/destroy result`, serializeState(r ?? null));
            if (r && (r as any).props?.connection !== undefined) expect(isSecret((r as any).props.connection), "read keeps the connection secret").to.equal(true);
          }
        }
      } finally {
        await p.stop();
        recordLogs(`${k} refresh/destroy`, p.logs);
        keep(`${k} refresh/destroy logs`, p.logs.map((l) => l.message).join("\n"));
      }
      stack.state.clear();
    });
  }

  it("control: the scan finds the password where it really is (inside the secret envelope of stored state)", async () => {
    const p = await ProviderProcess.start({ env: { SSH_AUTH_SOCK: "" } });
    try {
      const checked = await p.check(providers.sriovPf, "pf", {}, { connection: secret({ ...passwordConn(), dialErrorLimit: 1 }), ...PROPS.sriovPf });
      // Unmasked (as the stack's encrypted secret holds it), the password is there and found…
      expect(secretsHere.filter((s) => JSON.stringify(unwrapSecrets(checked.inputs)).includes(s))).to.include(sshd.users.admin.password);
      // …and as stored (secrets encrypted) it is not.
      expect(secretsHere.filter((s) => serializeState(checked.inputs).includes(s))).to.deep.equal([]);
    } finally {
      await p.stop();
    }
  });

  it("a wrong password: the error names the user and methods, never the password", async () => {
    const stack = trackStack("secrets-wrong-password", new Stack({ env: { SSH_AUTH_SOCK: "" } }));
    const conn = { ...passwordConn(), password: "Wr0ng-pa55word-for-the-test", dialErrorLimit: 1 };
    const e = await deploymentFailure(stack.up([{ name: "pf", provider: providers.sriovPf, props: { connection: secret(conn), ...PROPS.sriovPf } }]));
    keepError("wrong password", e);
    expect(e.message).to.match(/authentication failed for user sriovtest-admin \(tried: password\)/);
  });

  it("a key with a wrong passphrase, and the right one: neither passphrase nor key text is shown", async () => {
    const stack = trackStack("secrets-passphrase", new Stack({ env: { SSH_AUTH_SOCK: "" } }));
    const base = { host: sshd.host, port: sshd.port, user: "sriovtest-admin", privateKey: sshd.users.admin.encryptedPrivateKey, hostKey: sshd.hostKey };
    const wrong = await deploymentFailure(
      stack.up([{ name: "vf", provider: providers.virtualFunction, props: { connection: secret({ ...base, privateKeyPassword: "Wr0ng-passphrase-for-the-test" }), ...PROPS.virtualFunction } }]),
    );
    keepError("wrong passphrase", wrong);
    expect(wrong.message).to.match(/cannot use the given credentials|authentication failed/);
    const right = await deploymentFailure(
      stack.up([{ name: "vf", provider: providers.virtualFunction, props: { connection: secret({ ...base, privateKeyPassword: sshd.users.admin.passphrase }), ...PROPS.virtualFunction } }]),
    );
    keepError("right passphrase", right);
    // Authenticated: it failed on the host (no such PF), not on the key.
    expect(right.message).to.not.match(/cannot use the given credentials|authentication failed/);
  });

  it("a password through a jump host with its own password: both stay secret", async () => {
    const stack = trackStack("secrets-jump", new Stack({ env: { SSH_AUTH_SOCK: "" } }));
    const conn = {
      ...passwordConn(),
      proxy: { host: jump.host, port: jump.port, user: "sriovtest-plain", password: jump.users.plain.password, hostKey: jump.hostKey },
    };
    const r = await stack.preview([{ name: "net", provider: providers.vfPoolNetwork, props: { connection: secret(conn), ...PROPS.vfPoolNetwork } }]);
    keep("jump preview outputs", serializeState(r.outputs));
    keep("jump preview logs", r.logs.map((l) => l.message).join("\n"));
    // The check reached the target through the jump host and planned there.
    expect(r.outputs.net.hostChanges.join("\n")).to.match(/virsh/);
    expect(await jump.connectionCount()).to.be.at.least(1);
    const e = await deploymentFailure(stack.up([{ name: "net", provider: providers.vfPoolNetwork, props: { connection: secret(conn), ...PROPS.vfPoolNetwork } }]));
    keepError("jump up", e);
  });
});
