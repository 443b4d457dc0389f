// The fleet program under the real Pulumi CLI, with hosts that do not answer:
// what `pulumi preview --diff` shows a reviewer, that check errors come from
// the provider by property name, and that a failing wave stops the rollout.
// (The same CLI against the lab host: cli.lab.test.ts.)
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runFleet } from "../../examples/fleet/program";
import { SriovPf } from "../../sdk";
import { labStackConfig } from "../../examples/lab/stack-config";
import { closedPort } from "../support/cliLab";
import { CliProject, cliVersion, ROOT } from "../../lab/pulumiCli";

let KEY = "";
/** The secret part of KEY: no output, error or state may contain it. */
let KEY_BODY = "";
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedLabHostKeyForTestsOnly0000000000000";
const PROJECT = "sriov-fleet";

function labConfig(port: number): Record<string, any> {
  const config = labStackConfig(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8"), PROJECT, { host: "127.0.0.1", port, user: "root", hostKey: HOST_KEY });
  const host = (config[`${PROJECT}:hosts`] as any[])[0];
  host.connection = { ...host.connection, dialErrorLimit: 1, perDialTimeout: 2 };
  return config;
}

async function fleetProject(stack: string, config: Record<string, unknown>): Promise<CliProject> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pulumi-sriov-cli-${stack}-`));
  const p = await CliProject.open({ dir, project: PROJECT, stack, program: async () => runFleet() });
  p.writeConfig(config);
  await p.setSecret(`${PROJECT}:sshPrivateKey`, KEY);
  return p;
}

/** A real client key, so that previews get as far as dialling the host. */
function makeKey(): void {
  if (KEY) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-sriov-key-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cli-test", "-f", path.join(dir, "id")]);
  KEY = fs.readFileSync(path.join(dir, "id"), "utf8");
  KEY_BODY = KEY.split("\n")[2];
  fs.rmSync(dir, { recursive: true, force: true });
}

function compiledPackagePresent(): void {
  makeKey();
  const runtime = path.join(ROOT, "node_modules", "pulumi-sriov", "dist", "provider", "runtime.js");
  if (!fs.existsSync(runtime)) throw new Error(`${runtime} is missing: npm run build && node tools/link-self.js (npm test does both)`);
}

describe("the Pulumi CLI", () => {
  it("is built from the pinned Go modules, stamped with the release of the @pulumi/pulumi SDK in use", () => {
    const goMod = fs.readFileSync(path.join(ROOT, "lab", "tools", "go.mod"), "utf8");
    const pinned = /github\.com\/pulumi\/pulumi\/pkg\/v3 (v\S+)/.exec(goMod)![1];
    const sdk = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")).version;
    expect(cliVersion()).to.equal(pinned);
    expect(pinned).to.equal(`v${sdk}`);
  });
});

describe("pulumi preview of the lab stack when the host does not answer", function () {
  this.timeout(300000);
  const dirs: string[] = [];
  before(compiledPackagePresent);
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  it("plans the 7 resources with their inputs, the connection as [secret], and '(not checked)' host changes naming the host", async () => {
    const port = await closedPort();
    const p = await fleetProject("lab", labConfig(port));
    dirs.push(p.dir);
    const started = Date.now();
    const r = await p.stack.preview({ ...p.out, diff: true });
    const seconds = (Date.now() - started) / 1000;
    // The stack, the SriovHost component and its 7 resources.
    expect(r.changeSummary).to.deep.equal({ create: 9 });
    const text = r.stdout;
    for (const name of ["lab-kernel-args", "lab-0000-01-00.0", "lab-0000-01-00.0-vf0", "lab-0000-01-00.0-vf3", "lab-net-sriov-lab"]) expect(text).to.include(name);
    expect(text).to.match(/numVfs\s*: 4/);
    expect(text).to.match(/vlan\s*: 200/);
    expect(text).to.match(/connection\s*: \[secret\]/);
    expect(text).to.match(/hostChanges\s*: \[/);
    const notChecked = text.split("\n").filter((l) => l.includes("(not checked)"));
    // Every resource whose inputs are all known asks the host; the VFs and the network wait for the PF's name.
    expect(notChecked).to.have.length(2);
    for (const l of notChecked) expect(l).to.include(`root@127.0.0.1:${port}`);
    expect(text + r.stderr).to.not.include(KEY_BODY);
    // One dial of at most perDialTimeout per resource, in parallel where the graph allows.
    expect(seconds, "preview time (s)").to.be.below(120);
  });

  it("bad values fail the preview before any resource, named by their place in the configuration, in the resources' own words", async () => {
    const config = labConfig(await closedPort());
    const host = (config[`${PROJECT}:hosts`] as any[])[0];
    host.pfs[0].vfs[0].vlan = 5000;
    host.pfs[0].vfs[0].mac = "01:00:5e:00:00:01";
    const p = await fleetProject("bad", config);
    dirs.push(p.dir);
    const e = await p.stack.preview(p.out).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(e, "preview fails").to.be.instanceOf(Error);
    const text = e!.message;
    // The same texts VirtualFunction's check gives for these values.
    expect(text).to.include("hosts[0].pfs[0].vfs[0].vlan: must be 0–4095");
    expect(text).to.include("hosts[0].pfs[0].vfs[0].mac: must be a unicast MAC (the first octet's low bit is the multicast bit)");
    expect(text).to.not.match(/vfs\[[123]\]/);
    expect(text).to.not.include(KEY_BODY);
  });
});

describe("pulumi up of a fleet in waves: a failing wave stops the rollout", function () {
  this.timeout(300000);
  let dir: string | undefined;
  before(compiledPackagePresent);
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it("wave 1's provider error (naming the host) leaves wave 2 untouched, and the state holds nothing half-made", async () => {
    const port = await closedPort();
    const hosts = ["hv01", "hv02", "hv03"].map((name) => ({
      name,
      connection: { host: "127.0.0.1", port, dialErrorLimit: 1, perDialTimeout: 3, hostKey: HOST_KEY },
      pfs: [{ interface: "enp65s0f0", numVfs: 2, manageVfs: false }],
    }));
    const p = await fleetProject("waves", { [`${PROJECT}:waveSize`]: 2, [`${PROJECT}:hosts`]: hosts });
    dir = p.dir;
    const e = await p.stack.up(p.out).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(e, "up fails").to.be.instanceOf(Error);
    expect(e!.message).to.include(`127.0.0.1:${port}`);
    // Wave 1's two hosts start together; the engine stops at the first failure.
    expect(e!.message).to.match(/hv0[12]-enp65s0f0/);
    expect(e!.message).to.not.include("hv03-enp65s0f0");
    expect(e!.message).to.not.include(KEY_BODY);
    const state = await p.stack.exportStack();
    const custom = (state.deployment.resources ?? []).filter((r: any) => r.custom && !r.type.startsWith("pulumi:providers:"));
    expect(custom.map((r: any) => r.urn)).to.deep.equal([]);
  });
});

describe("the import resource option under the CLI", function () {
  this.timeout(120000);
  let dir: string | undefined;
  after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it("reaches the provider as its importId input (the engine's own import, which cannot load a dynamic provider, is not used)", async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-sriov-cli-import-"));
    const connection = { host: "127.0.0.1", port: await closedPort(), hostKey: HOST_KEY, password: "unused", dialErrorLimit: 1 };
    const p = await CliProject.open({
      dir,
      project: "import",
      stack: "dev",
      program: async () => {
        new SriovPf("pf", { connection, pciAddress: "0000:01:00.0", numVfs: 2 }, { import: "0000:01:00.0" });
      },
    });
    // The host cannot be reached, so preview cannot check it yet and says so; the adoption is shown.
    const preview = await p.stack.preview({ ...p.out, diff: true });
    expect(preview.stdout).to.include('importId');
    expect(preview.stdout).to.include('"0000:01:00.0"');
    expect(preview.stdout).to.not.include("= sriov:SriovPf"); // not the engine's import step
    const e = await p.stack.up(p.out).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(e, "up fails: the host cannot be reached to check the adoption").to.be.instanceOf(Error);
    expect(e!.message).to.not.include("code must be a string");
    expect(e!.message).to.match(/ECONNREFUSED|connect/);
  });
});
