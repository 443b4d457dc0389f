// The fleet program run by the local engine (examples/lab/local-engine.ts)
// against the real dynamic-provider process, without a host: what a preview
// shows, that check errors come from the provider by property name, and that
// a failing wave stops the rollout.
import { expect } from "chai";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { runFleet } from "../examples/fleet/program";
import { formatPlan } from "../examples/lab/display";
import { DeploymentFailed, LocalStack, StepEvent } from "../examples/lab/local-engine";
import { parseStackFile, withLabConnection } from "../examples/lab/stack-config";

const ROOT = path.resolve(__dirname, "..");
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nENGINEKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedLabHostKeyForTestsOnly0000000000000";

function labConfig(port = 40022) {
  const file = parseStackFile(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8"), "sriov-fleet");
  return withLabConnection(file, { host: "127.0.0.1", port, user: "root", privateKey: KEY, hostKey: HOST_KEY });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function compiledPackagePresent(): void {
  const runtime = path.join(ROOT, "node_modules", "pulumi-sriov", "dist", "provider", "runtime.js");
  if (!fs.existsSync(runtime)) throw new Error(`${runtime} is missing: npm run build && node test/support/link-self.js (npm test does both)`);
}

describe("lab stack preview through the real provider process (no host)", function () {
  this.timeout(120000);
  before(compiledPackagePresent);

  it("plans 7 creates in dependency order, with no create or update calls, secrets masked", async () => {
    const { config, secretKeys } = labConfig();
    const events: StepEvent[] = [];
    const stack = new LocalStack({ project: "sriov-fleet", stack: "lab", config, secretKeys, cwd: ROOT, onEvent: (e) => events.push(e) });
    const d = await stack.preview(() => runFleet());
    expect(d.steps.map((s) => [s.op, s.name])).to.have.deep.members([
      ["create", "lab-kernel-args"],
      ["create", "lab-0000-01-00.0"],
      ["create", "lab-0000-01-00.0-vf0"],
      ["create", "lab-0000-01-00.0-vf1"],
      ["create", "lab-0000-01-00.0-vf2"],
      ["create", "lab-0000-01-00.0-vf3"],
      ["create", "lab-net-sriov-lab"],
    ]);
    // A dynamic provider is never asked to create or update during a preview.
    expect(d.calls).to.include({ check: 7, create: 0, update: 0, delete: 0 });
    // Dependency order: each resource starts only after what it depends on is done.
    const order = events.map((e) => `${e.phase}:${e.step.name}`);
    const at = (x: string) => order.indexOf(x);
    expect(at("done:lab-kernel-args")).to.be.below(at("start:lab-0000-01-00.0"));
    for (let i = 0; i < 4; i++) {
      expect(at("done:lab-0000-01-00.0")).to.be.below(at(`start:lab-0000-01-00.0-vf${i}`));
      expect(at(`done:lab-0000-01-00.0-vf${i}`)).to.be.below(at("start:lab-net-sriov-lab"));
    }
    const plan = formatPlan(d);
    // Each resource's block: its header, then its checked inputs (defaults applied), keys aligned.
    const block = (header: string) => {
      const lines = plan.split("\n");
      const start = lines.indexOf(header);
      expect(start, `plan has ${JSON.stringify(header)}\n${plan}`).to.be.at.least(0);
      const end = lines.indexOf("", start);
      return lines.slice(start + 1, end).map((l) => l.trim().replace(/\s+:/, ":"));
    };
    expect(block("  +  sriov:IommuKernelArgs lab-kernel-args: (create)")).to.include.members(['iommu: "intel"', "passthrough: true", 'reboot: "ifNeeded"', "connection: [secret]"]);
    expect(block("  +  sriov:SriovPf lab-0000-01-00.0: (create)")).to.include.members([
      "numVfs: 4",
      'pciAddress: "0000:01:00.0"',
      'persist: "systemd"',
      "autoprobe: true",
      "connection: [secret]",
    ]);
    expect(block("  +  sriov:VirtualFunction lab-0000-01-00.0-vf2: (create)")).to.include.members([
      'mac: "02:5a:00:00:01:02"',
      "trust: true",
      "spoofCheck: true",
      "vlan: 200",
      "index: 2",
      "pf: output<unknown>",
    ]);
    expect(block("  +  sriov:VfPoolNetwork lab-net-sriov-lab: (create)")).to.include.members(['name: "sriov-lab"', "pf: output<unknown>"]);
    expect(plan.split("\n").pop()).to.equal("Resources: + 7 to create");
    expect(plan.match(/connection\s*: \[secret\]/g)).to.have.length(7);
    const everything = plan + JSON.stringify(d.logs) + JSON.stringify(d.outputs);
    expect(everything).to.not.include("ENGINEKEYMATERIAL");
    expect(everything).to.not.include(HOST_KEY.slice(30));
  });

  it("a bad value fails the preview with the provider's check error naming the property, per resource", async () => {
    const { config, secretKeys } = labConfig();
    (config as any).hosts[0].pfs[0].vfs[0].vlan = 5000;
    (config as any).hosts[0].pfs[0].vfs[1].mac = "01:00:5e:00:00:01";
    const stack = new LocalStack({ project: "sriov-fleet", stack: "lab", config, secretKeys, cwd: ROOT });
    let failed: DeploymentFailed | undefined;
    try {
      await stack.preview(() => runFleet());
    } catch (e) {
      failed = e as DeploymentFailed;
    }
    expect(failed, "preview fails").to.be.instanceOf(DeploymentFailed);
    const text = failed!.message;
    expect(text).to.match(/VirtualFunction lab-0000-01-00\.0-vf0: invalid inputs:\n\s+vlan: must be 0–4095/);
    expect(text).to.match(/VirtualFunction lab-0000-01-00\.0-vf1: invalid inputs:[^]*mac: must be a unicast MAC/);
    expect(text).to.not.match(/vf2: invalid|vf3: invalid/);
    // The network depends on every VF, so it is never checked.
    expect(failed!.deployment.steps.map((s) => s.name)).to.not.include("lab-net-sriov-lab");
    expect(failed!.deployment.calls).to.include({ create: 0, update: 0 });
    expect(text).to.not.include("ENGINEKEYMATERIAL");
  });
});

describe("fleet rollout through the real provider process: a failing wave stops it", function () {
  this.timeout(180000);
  before(compiledPackagePresent);

  it("wave 1's provider error (naming the host) leaves wave 2 untouched", async () => {
    const port = await closedPort();
    const hosts = ["hv01", "hv02", "hv03"].map((name) => ({
      name,
      connection: { host: "127.0.0.1", port, dialErrorLimit: 1, perDialTimeout: 3, hostKey: HOST_KEY },
      pfs: [{ interface: "enp65s0f0", numVfs: 2, manageVfs: false }],
    }));
    const events: StepEvent[] = [];
    const stack = new LocalStack({
      project: "sriov-fleet",
      stack: "waves",
      config: { waveSize: 2, hosts, sshPrivateKey: KEY },
      secretKeys: ["sshPrivateKey"],
      cwd: ROOT,
      onEvent: (e) => events.push(e),
    });
    let failed: DeploymentFailed | undefined;
    try {
      await stack.up(() => runFleet());
    } catch (e) {
      failed = e as DeploymentFailed;
    }
    expect(failed, "up fails").to.be.instanceOf(DeploymentFailed);
    const touched = new Set(events.map((e) => e.step.name));
    expect([...touched].sort()).to.deep.equal(["hv01-enp65s0f0", "hv02-enp65s0f0"]);
    expect(events.filter((e) => e.phase === "failed").map((e) => e.step.name).sort()).to.deep.equal(["hv01-enp65s0f0", "hv02-enp65s0f0"]);
    // hv03 (wave 2) was never even checked.
    expect(failed!.deployment.calls.check).to.equal(2);
    expect(failed!.deployment.calls.create).to.equal(2);
    expect(failed!.message).to.include(`127.0.0.1:${port}`);
    expect(failed!.message).to.not.include("ENGINEKEYMATERIAL");
    expect(stack.state.size).to.equal(0);
  });
});

describe("plan rendering (what a reviewer reads)", () => {
  const { formatStep, showValue } = require("../examples/lab/display") as typeof import("../examples/lab/display");
  const secret = (value: unknown) => ({ "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value });
  const base = { urn: "urn:x", type: "pulumi-nodejs:dynamic/sriov:SriovPf", name: "hv01-pf", dependencies: [], millis: 0 };

  it("an update lists changed inputs old => new, added and removed ones, then the host changes", () => {
    const lines = formatStep({
      ...base,
      op: "update",
      oldInputs: { numVfs: 2, mtu: 1500, connection: secret({ password: "x" }), hostChanges: [] },
      inputs: { numVfs: 4, autoprobe: false, connection: secret({ password: "y" }), hostChanges: ["sriov_numvfs 2 → 0 → 4 on 0000:41:00.0", "write /etc/systemd/system/pulumi-sriov-vfs.service"] },
      changedKeys: ["autoprobe", "connection", "hostChanges", "mtu", "numVfs"],
      replaces: [],
    });
    expect(lines).to.deep.equal([
      "  ~  sriov:SriovPf hv01-pf: (update)",
      "      + autoprobe : false",
      "      ~ connection: [secret] => [secret]",
      "      - mtu       : 1500",
      "      ~ numVfs    : 2 => 4",
      "        host changes:",
      "          - sriov_numvfs 2 → 0 → 4 on 0000:41:00.0",
      "          - write /etc/systemd/system/pulumi-sriov-vfs.service",
    ]);
    expect(lines.join("\n")).to.not.match(/password|"x"|"y"/);
  });

  it("a replacement names the inputs that force it", () => {
    const lines = formatStep({
      ...base,
      op: "replace",
      oldInputs: { pciAddress: "0000:41:00.0", numVfs: 4 },
      inputs: { pciAddress: "0000:41:00.1", numVfs: 4 },
      changedKeys: ["pciAddress"],
      replaces: ["pciAddress"],
    });
    expect(lines[0]).to.equal("  +- sriov:SriovPf hv01-pf: (replace) [diff: ~pciAddress; replaced because of: pciAddress]");
    expect(lines[1]).to.equal('      ~ pciAddress: "0000:41:00.0" => "0000:41:00.1"  [forces replacement]');
  });

  it("shows secrets nested anywhere as [secret] and unknowns as output<unknown>", () => {
    expect(showValue({ a: secret("k"), b: ["04da6b54-80e4-46f7-96ec-b56ff0331ba9"] })).to.equal("{ a: [secret], b: [output<unknown>] }");
  });
});
