// The package as users get it, under the real CLI: `npm pack`, a scratch
// Pulumi project outside the repository that `npm install`s the tarball, a
// plain-JavaScript program there (its own @pulumi/pulumi, no TypeScript
// loader) run with `pulumi up` against the lab host, then `pulumi destroy`.
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { hostVf } from "../reliability/lab";
import { hostState, HostState, LAB_PFS } from "../support/cliLab";
import { offlineEnv, ROOT, runCli, toolsBin } from "../../lab/pulumiCli";

// Run as `node run.js up|up-no-changes|destroy` in the scratch project.
const RUNNER = `
"use strict";
const { LocalWorkspace, PulumiCommand } = require("@pulumi/pulumi/automation");
const pulumi = require("@pulumi/pulumi");
const sriov = require("pulumi-sriov");

const program = async () => {
  const config = new pulumi.Config();
  const connection = { host: "127.0.0.1", port: config.requireNumber("port"), hostKey: config.require("hostKey"), privateKey: config.requireSecret("privateKey") };
  const pf = new sriov.SriovPf("pf", { connection, pciAddress: "${LAB_PFS[1]}", numVfs: 2 });
  const vf = new sriov.VirtualFunction("vf1", { connection, pf: pf.interface, index: 1, vlan: 42, mac: "02:5a:00:00:02:01" }, { dependsOn: [pf] });
  return { pf: pf.interface, numVfs: pf.numVfs, vfMac: vf.mac };
};

(async () => {
  const op = process.argv[2];
  const pulumiCommand = await PulumiCommand.get({ root: process.env.PULUMI_ROOT, skipVersionCheck: true });
  const stack = await LocalWorkspace.selectStack({ stackName: "dev", projectName: "app", program }, { workDir: __dirname, pulumiCommand });
  const onOutput = (s) => process.stderr.write(s);
  const r = op === "destroy" ? await stack.destroy({ onOutput }) : await stack.up({ onOutput, expectNoChanges: op === "up-no-changes" });
  const outputs = op === "destroy" ? {} : Object.fromEntries(Object.entries(r.outputs).map(([k, v]) => [k, v.value]));
  process.stdout.write(JSON.stringify({ changes: r.summary.resourceChanges, outputs }));
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

describe("the packed package in a scratch project, through the Pulumi CLI", function () {
  this.timeout(1800000);
  let vm: LabVm;
  let found: HostState;
  let dir: string;
  let app: string;
  let env: Record<string, string>;

  const run = (op: string) => {
    const out = execFileSync(process.execPath, ["run.js", op], { cwd: app, env: { ...cleanEnv(), ...env, PULUMI_ROOT: path.dirname(toolsBin()) }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return JSON.parse(out) as { changes: Record<string, number>; outputs: Record<string, any> };
  };

  before(async function () {
    this.timeout(900000);
    if (!fs.existsSync(path.join(ROOT, "dist", "sdk", "index.js"))) throw new Error("dist/ is missing: npm run build first (npm test does)");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-sriov-scratch-"));
    const packed = JSON.parse(execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: ROOT, encoding: "utf8" }))[0];
    app = path.join(dir, "app");
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    // A user's install: the tarball and its dependencies from the registry (the local npm cache first).
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", path.join(dir, packed.filename)], { cwd: app, stdio: ["ignore", "ignore", "inherit"] });
    fs.writeFileSync(path.join(app, "Pulumi.yaml"), "name: app\nruntime: nodejs\n");
    fs.writeFileSync(path.join(app, "run.js"), RUNNER);
    vm = await sharedLab();
    found = await hostState(vm);
    env = offlineEnv(app);
    const c = vm.connection;
    const cli = async (args: string[], input?: string) => {
      const r = await runCli(args, app, env, undefined, input);
      if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")}: ${r.stderr}`);
    };
    await cli(["stack", "init", "dev"]);
    await cli(["config", "set", "port", String(c.port)]);
    await cli(["config", "set", "hostKey", c.hostKey]);
    await cli(["config", "set", "--secret", "privateKey"], c.privateKey);
  });

  after(async function () {
    this.timeout(600000);
    if (app && fs.existsSync(path.join(app, "state"))) {
      try {
        run("destroy");
      } catch {
        // the test already failed; leave what is left to the next run's tear-down
      }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("installs from the tarball with its own @pulumi/pulumi, not this repository's", () => {
    const installed = fs.realpathSync(path.join(app, "node_modules", "pulumi-sriov"));
    expect(installed.startsWith(app)).to.equal(true);
    expect(fs.existsSync(path.join(app, "node_modules", "@pulumi", "pulumi", "package.json"))).to.equal(true);
  });

  it("pulumi up creates the PF's VFs and the VF's settings on the lab host; a second up changes nothing", async () => {
    const up = run("up");
    expect(up.changes).to.deep.equal({ create: 3 });
    expect(up.outputs.numVfs).to.equal(2);
    expect(up.outputs.vfMac).to.equal("02:5a:00:00:02:01");
    expect(await hostVf(vm, up.outputs.pf, 1)).to.include({ mac: "02:5a:00:00:02:01", vlan: 42 });
    expect(run("up-no-changes").changes).to.deep.equal({ same: 3 });
  });

  it("pulumi destroy leaves the host as it was found", async () => {
    expect(run("destroy").changes).to.deep.equal({ delete: 3 });
    expect(await hostState(vm)).to.deep.equal(found);
  });
});

/** This process's environment without the test runner's TypeScript loader. */
function cleanEnv(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e.NODE_OPTIONS;
  return e;
}
