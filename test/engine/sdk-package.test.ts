// The SDK as users get it: `npm pack`, the tarball unpacked into a scratch
// program's node_modules, a plain-JavaScript program (no TypeScript loader)
// that constructs every class there, and the providers it serialized run
// through the real dynamic-provider process started in that program's
// directory, as the engine would start it.
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as engine from "../support/engine";

const ROOT = path.resolve(__dirname, "..", "..");

const PROGRAM = `
"use strict";
const fs = require("fs");
const pulumi = require("@pulumi/pulumi");
const sriov = require("pulumi-sriov");
(async () => {
  const regs = [];
  await pulumi.runtime.setMocks({
    newResource: (a) => { regs.push(a); return { id: a.custom ? a.name + "-id" : undefined, state: a.inputs }; },
    call: (a) => a.inputs,
  }, "app", "test", false);
  const connection = { host: "10.0.0.11", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\\nx\\n-----END OPENSSH PRIVATE KEY-----\\n", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApp" };
  const host = new sriov.SriovHost("hv", {
    connection,
    kernelArgs: { iommu: "intel" },
    pfs: [{ interface: "enp1s0", numVfs: 1, vfTemplate: { vlan: 100 } }],
    poolNetworks: [{ name: "pool", pf: "enp1s0" }],
  });
  new sriov.DomainVfInterface("nic", { connection, domain: "guest1", source: { network: "pool" } });
  await host.summary.apply(() => undefined);
  await require("@pulumi/pulumi/runtime/settings").waitForRPCs();
  const out = {};
  for (const r of regs.filter((r) => r.custom)) out[r.type] = r.inputs.__provider;
  fs.writeFileSync("providers.json", JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe("the packed SDK in a scratch program", function () {
  this.timeout(300000);
  let dir: string;
  let app: string;
  let files: string[];
  let providers: Record<string, string>;

  before(() => {
    if (!fs.existsSync(path.join(ROOT, "dist", "sdk", "index.js"))) throw new Error("dist/ is missing: npm run build first (npm test does)");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-sriov-pack-"));
    // Pack what is built (scripts would rebuild; `npm test` has just built).
    const out = execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const info = JSON.parse(out)[0];
    files = info.files.map((f: { path: string }) => f.path);
    app = path.join(dir, "app");
    const pkgDir = path.join(app, "node_modules", "pulumi-sriov");
    fs.mkdirSync(pkgDir, { recursive: true });
    execFileSync("tar", ["-xzf", path.join(dir, info.filename), "-C", pkgDir, "--strip-components=1"]);
    // The package's dependencies as an install would provide them (no network here).
    for (const entry of fs.readdirSync(path.join(ROOT, "node_modules"))) {
      if (entry === "pulumi-sriov" || entry.startsWith(".")) continue;
      fs.symlinkSync(path.join(ROOT, "node_modules", entry), path.join(app, "node_modules", entry));
    }
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    fs.writeFileSync(path.join(app, "index.js"), PROGRAM);
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // plain node, as `pulumi up` runs a JavaScript program
    execFileSync(process.execPath, ["index.js"], { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] });
    providers = JSON.parse(fs.readFileSync(path.join(app, "providers.json"), "utf8"));
  });

  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("ships the compiled SDK and providers, and nothing else", () => {
    for (const f of ["package.json", "dist/sdk/index.js", "dist/sdk/index.d.ts", "dist/provider/index.js", "dist/provider/runtime.js"]) expect(files, f).to.include(f);
    for (const kind of ["iommuKernelArgs", "sriovPf", "virtualFunction", "vfPoolNetwork", "domainVfInterface"])
      expect(files, kind).to.include(`dist/provider/resources/${kind}/index.js`);
    expect(files.filter((f) => /^(test|examples|provider|sdk)\//.test(f) || /\.ts$/.test(f) && !f.endsWith(".d.ts"))).to.deep.equal([]);
    expect(files.filter((f) => /\.test\./.test(f))).to.deep.equal([]);
  });

  it("a plain JavaScript program registers every class with a serialized provider", () => {
    expect(Object.keys(providers).sort()).to.deep.equal([
      "pulumi-nodejs:dynamic/sriov:DomainVfInterface",
      "pulumi-nodejs:dynamic/sriov:IommuKernelArgs",
      "pulumi-nodejs:dynamic/sriov:SriovPf",
      "pulumi-nodejs:dynamic/sriov:VfPoolNetwork",
      "pulumi-nodejs:dynamic/sriov:VirtualFunction",
    ]);
    for (const text of Object.values(providers)) expect(text).to.include('require("pulumi-sriov/dist/provider/runtime")');
  });

  it("the provider process started in the program's directory checks each class's inputs", async () => {
    const proc = await engine.ProviderProcess.start({ cwd: app, project: "app", stack: "test" });
    try {
      // Nothing listens on port 1: check's look at the host (hostChanges) fails at once.
      const connection = engine.secret({ host: "127.0.0.1", port: 1, dialErrorLimit: 1, password: "pw" });
      const cases: [string, Record<string, any>, Record<string, any>, string][] = [
        ["IommuKernelArgs", { iommu: "amd", extraArgs: ["pci=realloc"] }, { iommu: "arm" }, "iommu"],
        ["SriovPf", { pciAddress: "0000:41:00.0", numVfs: 8 }, { pciAddress: "0000:41:00.0", numVfs: -2 }, "numVfs"],
        ["VirtualFunction", { pf: "enp1s0", index: 3, vlan: 4095, trust: true }, { pf: "enp1s0", index: 3, vlan: 4096 }, "vlan"],
        ["VfPoolNetwork", { name: "pool", pf: "enp1s0" }, { name: "pool", pf: "enp1s0", autostart: "yes" }, "autostart"],
        ["DomainVfInterface", { domain: "guest1", source: { pciAddress: "0000:41:10.1" } }, { domain: "guest 1", source: { network: "pool" } }, "domain"],
      ];
      for (const [cls, valid, bad, prop] of cases) {
        const text = providers[`pulumi-nodejs:dynamic/sriov:${cls}`];
        const type = `pulumi-nodejs:dynamic/sriov:${cls}`;
        const ok = await proc.check(text, `${cls}-ok`, {}, { ...valid, connection }, { type, preview: true });
        expect(ok.failures, `${cls} ${JSON.stringify(ok.failures)}`).to.deep.equal([]);
        const no = await proc.check(text, `${cls}-bad`, {}, { ...bad, connection }, { type, preview: true });
        expect(no.failures.map((f) => f.property), cls).to.include(prop);
      }
    } finally {
      await proc.stop();
    }
  });
});
