// The SDK as a Pulumi program uses it: resource classes and the SriovHost
// component under Pulumi's mocks (what the language SDK sends the engine:
// types, parents, dependencies, secrets), then each class's serialized
// provider evaluated and run through the real dynamic-provider process.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as sdk from "../../sdk";
import * as providers from "../../provider";
import * as engine from "../support/engine";
import { installMocks, isSecretValue, MockRun, plainStrings, Registration, valueOf } from "../support/sdk-mocks";

const PASSWORD = "hunter2-lab-password";
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAsecretkeymaterial\n-----END OPENSSH PRIVATE KEY-----\n";
// Loopback with dialErrorLimit 1: where check looks at the host (hostChanges), it fails at once.
const connection = { host: "127.0.0.1", user: "root", password: PASSWORD, privateKey: KEY, dialErrorLimit: 1 };

function noSecretText(regs: Registration[]) {
  for (const r of regs) {
    const strings = [...plainStrings(r.inputs), ...plainStrings(r.outputs ?? {})];
    for (const s of strings) {
      expect(s, `${r.name} holds secret text outside a secret`).to.not.include(PASSWORD);
      expect(s, `${r.name} holds secret text outside a secret`).to.not.include("secretkeymaterial");
    }
  }
}

describe("sdk resource classes (mocks)", () => {
  let run: MockRun;
  beforeEach(async () => {
    run = await installMocks();
  });

  const cases: { cls: string; make: () => pulumi.CustomResource; outputs: Record<string, unknown> }[] = [
    {
      cls: "IommuKernelArgs",
      make: () => new sdk.IommuKernelArgs("ka", { connection, iommu: "intel", reboot: "ifNeeded" }),
      outputs: { iommuEnabled: true, configPath: "/etc/default/grub", rebootRequired: false },
    },
    {
      cls: "SriovPf",
      make: () => new sdk.SriovPf("pf", { connection, interface: "enp1s0", numVfs: 4 }),
      outputs: { interface: "enp1s0", totalVfs: 7, numVfs: 4, driver: "igb" },
    },
    {
      cls: "VirtualFunction",
      make: () => new sdk.VirtualFunction("vf", { connection, pf: "enp1s0", index: 2, vlan: 100, trust: true }),
      outputs: { pciAddress: "0000:02:00.2", iommuGroup: 22, netdev: "enp2s0v2", pfInterface: "enp1s0" },
    },
    {
      cls: "VfPoolNetwork",
      make: () => new sdk.VfPoolNetwork("net", { connection, name: "sriov-pool", pf: "enp1s0" }),
      outputs: { name: "sriov-pool", active: true, autostart: true, connections: 0 },
    },
    {
      cls: "DomainVfInterface",
      make: () => new sdk.DomainVfInterface("nic", { connection, domain: "guest1", source: { network: "sriov-pool" }, mac: "52:54:00:12:34:56" }),
      outputs: { mac: "52:54:00:12:34:56", pciAddress: "0000:02:00.3", alias: "hostdev0" },
    },
  ];

  for (const c of cases) {
    it(`${c.cls}: type token, secret connection, declared outputs resolve`, async () => {
      const res = c.make() as any;
      for (const [k, v] of Object.entries(c.outputs)) expect(await valueOf(res[k]), `${c.cls}.${k}`).to.deep.equal(v);
      await run.settle();
      const [r] = run.registrations;
      expect(r.type).to.equal(`pulumi-nodejs:dynamic/sriov:${c.cls}`);
      expect(r.type).to.equal(sdk.typeToken(c.cls));
      expect(r.custom).to.equal(true);
      expect(isSecretValue(r.inputs.connection), "connection registered as a secret").to.equal(true);
      expect(r.inputs.connection.value).to.deep.equal(connection);
      expect(r.additionalSecretOutputs).to.include("connection");
      expect(await pulumi.isSecret(res.connection)).to.equal(true);
      // The serialized provider travels as __provider, as pulumi.dynamic.Resource does it.
      expect(r.inputs.__provider).to.be.a("string").and.to.include("pulumi-sriov/dist/provider/runtime");
      noSecretText(run.registrations);
    });
  }

  it("keeps the caller's additionalSecretOutputs and adds connection once", async () => {
    new sdk.SriovPf("pf", { connection, interface: "enp1s0", numVfs: 1 }, { additionalSecretOutputs: ["vfs"] });
    new sdk.SriovPf("pf2", { connection, interface: "enp2s0", numVfs: 1 }, { additionalSecretOutputs: ["connection"] });
    await run.settle();
    expect(run.byName("pf").additionalSecretOutputs).to.have.members(["vfs", "connection"]);
    expect(run.byName("pf2").additionalSecretOutputs).to.deep.equal(["connection"]);
  });

  it("wraps a connection given as Outputs, and one that is already secret", async () => {
    const pw = pulumi.secret(PASSWORD);
    new sdk.SriovPf("pf", { connection: { host: pulumi.output("10.0.0.12"), password: pw }, interface: "enp1s0", numVfs: 1 });
    new sdk.SriovPf("pf2", { connection: pulumi.secret(connection), interface: "enp1s0", numVfs: 1 });
    await run.settle();
    expect(isSecretValue(run.byName("pf").inputs.connection)).to.equal(true);
    expect(run.byName("pf").inputs.connection.value).to.deep.equal({ host: "10.0.0.12", password: PASSWORD });
    expect(isSecretValue(run.byName("pf2").inputs.connection)).to.equal(true);
    noSecretText(run.registrations);
  });

  it("refuses a missing connection before registering anything", () => {
    expect(() => new sdk.SriovPf("pf", { interface: "enp1s0", numVfs: 1 } as any)).to.throw(/connection is required/);
    expect(run.registrations).to.have.length(0);
  });

  it("passes unknown keys through to the provider's check (typos are reported there, by name)", async () => {
    new sdk.SriovPf("pf", { connection, interface: "enp1s0", numVfs: 1, numVF: 3 } as any);
    await run.settle();
    expect(run.byName("pf").inputs.numVF).to.equal(3);
  });
});

const hostArgs = (): sdk.SriovHostArgs => ({
  connection,
  kernelArgs: { iommu: "intel", extraArgs: ["pci=realloc"], reboot: "ifNeeded" },
  pfs: [
    {
      interface: "enp1s0",
      numVfs: 3,
      vfTemplate: { spoofCheck: true, trust: false, vlan: 100 },
      vfs: [{ index: 1, mac: "02:00:00:00:10:01", vlan: 200, trust: true }],
    },
    { pciAddress: "0000:03:00.0", numVfs: 2, persist: "udev" },
  ],
  poolNetworks: [
    { name: "pool-a", pf: "enp1s0" },
    { name: "pool-b", pf: "0000:03:00.0", vlan: 300 },
  ],
});

describe("SriovHost (mocks)", () => {
  let run: MockRun;
  beforeEach(async () => {
    run = await installMocks();
  });

  it("creates kernel args, PFs, one VF per index and pool networks, all parented to the component", async () => {
    const host = new sdk.SriovHost("hv01", hostArgs());
    await valueOf(host.summary);
    await run.settle();
    const comp = run.byName("hv01");
    expect(comp.type).to.equal("sriov:index:SriovHost");
    expect(comp.custom).to.equal(false);
    const children = run.registrations.filter((r) => r.custom);
    expect(children.map((r) => r.name)).to.have.members([
      "hv01-kernel-args",
      "hv01-enp1s0",
      "hv01-enp1s0-vf0",
      "hv01-enp1s0-vf1",
      "hv01-enp1s0-vf2",
      "hv01-0000-03-00.0",
      "hv01-0000-03-00.0-vf0",
      "hv01-0000-03-00.0-vf1",
      "hv01-net-pool-a",
      "hv01-net-pool-b",
    ]);
    for (const c of children) expect(c.parent, c.name).to.equal(comp.urn);
    expect(host.pfs).to.have.length(2);
    expect(host.vfs.map((v) => v.length)).to.deep.equal([3, 2]);
    expect(host.poolNetworks).to.have.length(2);
    expect(host.kernelArgs).to.be.instanceOf(sdk.IommuKernelArgs);
  });

  it("orders kernel args → PFs → VFs → pool networks with explicit dependencies", async () => {
    new sdk.SriovHost("hv01", hostArgs());
    await run.settle();
    const urn = (n: string) => run.byName(n).urn;
    const deps = (n: string) => run.byName(n).dependencies;
    expect(deps("hv01-kernel-args")).to.deep.equal([]);
    for (const pf of ["hv01-enp1s0", "hv01-0000-03-00.0"]) expect(deps(pf)).to.deep.equal([urn("hv01-kernel-args")]);
    for (const i of [0, 1, 2]) expect(deps(`hv01-enp1s0-vf${i}`)).to.have.members([urn("hv01-enp1s0")]);
    for (const i of [0, 1]) expect(deps(`hv01-0000-03-00.0-vf${i}`)).to.have.members([urn("hv01-0000-03-00.0")]);
    expect(deps("hv01-net-pool-a")).to.have.members([urn("hv01-enp1s0"), ...[0, 1, 2].map((i) => urn(`hv01-enp1s0-vf${i}`))]);
    expect(deps("hv01-net-pool-b")).to.have.members([urn("hv01-0000-03-00.0"), ...[0, 1].map((i) => urn(`hv01-0000-03-00.0-vf${i}`))]);
  });

  it("PFs depend on nothing when kernel arguments are not managed", async () => {
    const args = hostArgs();
    delete args.kernelArgs;
    new sdk.SriovHost("hv01", args);
    await run.settle();
    expect(run.byType("IommuKernelArgs")).to.have.length(0);
    expect(run.byName("hv01-enp1s0").dependencies).to.deep.equal([]);
  });

  it("applies the VF template to every VF and per-index overrides over it; VFs take the PF's interface output", async () => {
    new sdk.SriovHost("hv01", hostArgs());
    await run.settle();
    const vf = (n: string) => run.byName(n).inputs;
    expect(vf("hv01-enp1s0-vf0")).to.include({ pf: "enp1s0", index: 0, spoofCheck: true, trust: false, vlan: 100 });
    expect(vf("hv01-enp1s0-vf0")).to.not.have.property("mac");
    expect(vf("hv01-enp1s0-vf1")).to.include({ pf: "enp1s0", index: 1, spoofCheck: true, trust: true, vlan: 200, mac: "02:00:00:00:10:01" });
    expect(vf("hv01-enp1s0-vf2")).to.include({ index: 2, vlan: 100 });
    // The second PF was given by PCI address: its VFs get the interface the PF resource reports.
    expect(vf("hv01-0000-03-00.0-vf1")).to.include({ pf: "enp1s0", index: 1 });
    expect(run.byName("hv01-0000-03-00.0").inputs).to.include({ pciAddress: "0000:03:00.0", numVfs: 2, persist: "udev" });
    expect(run.byName("hv01-0000-03-00.0").inputs).to.not.have.any.keys("vfTemplate", "vfs", "manageVfs");
    expect(run.byName("hv01-net-pool-b").inputs).to.include({ name: "pool-b", pf: "enp1s0", vlan: 300 });
  });

  it("manageVfs: false manages the VF count only", async () => {
    new sdk.SriovHost("hv01", { connection, pfs: [{ interface: "enp1s0", numVfs: 4, manageVfs: false }] });
    await run.settle();
    expect(run.byType("VirtualFunction")).to.have.length(0);
    expect(run.byName("hv01-enp1s0").inputs.numVfs).to.equal(4);
  });

  it("passes the component's dependsOn to every child, so a host waits for another host's resources", async () => {
    const first = new sdk.SriovHost("hv01", hostArgs());
    new sdk.SriovHost("hv02", hostArgs(), { dependsOn: [first] });
    await run.settle();
    const firstChildren = run.registrations.filter((r) => r.custom && r.name.startsWith("hv01-")).map((r) => r.urn);
    expect(firstChildren).to.have.length(10);
    const second = run.registrations.filter((r) => r.custom && r.name.startsWith("hv02-"));
    expect(second).to.have.length(10);
    for (const r of second) expect(r.dependencies, r.name).to.include.members(firstChildren);
    // The first host does not wait for the second.
    for (const r of run.registrations.filter((x) => x.name.startsWith("hv01-")))
      expect(r.dependencies.some((d) => d.includes("hv02"))).to.equal(false);
  });

  it("accepts dependsOn as a single resource or an Output of a list", async () => {
    const first = new sdk.SriovHost("hv01", { connection, pfs: [{ interface: "enp1s0", numVfs: 1 }] });
    new sdk.SriovHost("hv02", { connection, pfs: [{ interface: "enp1s0", numVfs: 1 }] }, { dependsOn: first });
    new sdk.SriovHost("hv03", { connection, pfs: [{ interface: "enp1s0", numVfs: 1 }] }, { dependsOn: pulumi.output([first]) as any });
    await run.settle();
    const firstPf = run.byName("hv01-enp1s0").urn;
    expect(run.byName("hv02-enp1s0").dependencies).to.include(firstPf);
    expect(run.byName("hv03-enp1s0-vf0").dependencies).to.include(firstPf);
  });

  it("keeps the connection secret in every resource; the summary is plain and has no secret", async () => {
    const host = new sdk.SriovHost("hv01", hostArgs());
    const summary = await valueOf(host.summary);
    await run.settle();
    for (const r of run.registrations.filter((x) => x.custom)) {
      expect(isSecretValue(r.inputs.connection), r.name).to.equal(true);
      expect(r.additionalSecretOutputs, r.name).to.include("connection");
    }
    for (const c of [host.kernelArgs!, ...host.pfs, ...host.vfs.flat(), ...host.poolNetworks])
      expect(await pulumi.isSecret(c.connection)).to.equal(true);
    expect(await pulumi.isSecret(host.summary)).to.equal(false);
    expect(JSON.stringify(summary)).to.not.include(PASSWORD).and.not.include("secretkeymaterial").and.not.include("127.0.0.1");
    noSecretText(run.registrations);
    expect(summary.pfs[0].vfs.map((v) => [v.index, v.pciAddress, v.iommuGroup, v.mac, v.vlan])).to.deep.equal([
      [0, "0000:02:00.0", 20, "02:aa:00:00:00:00", 100],
      [1, "0000:02:00.1", 21, "02:00:00:00:10:01", 200],
      [2, "0000:02:00.2", 22, "02:aa:00:00:00:02", 100],
    ]);
    expect(summary.kernelArgs).to.include({ iommuEnabled: true, rebootRequired: false });
    expect(summary.poolNetworks.map((n) => n.name)).to.deep.equal(["pool-a", "pool-b"]);
    // The component registered its outputs (resource references and the summary).
    expect(run.byName("hv01").outputs).to.have.property("summary");
  });

  describe("argument errors name the property, before anything is registered", () => {
    const bad: [string, (a: sdk.SriovHostArgs) => void, RegExp][] = [
      ["two selectors", (a) => (a.pfs[0].pciAddress = "0000:01:00.0"), /pfs\[0\]: give exactly one of interface, pciAddress, macAddress \(got interface, pciAddress\)/],
      ["no selector", (a) => delete a.pfs[1].pciAddress, /pfs\[1\]: give exactly one of .* \(got none\)/],
      ["negative numVfs", (a) => (a.pfs[1].numVfs = -1), /pfs\[1\]\.numVfs: must be a whole number/],
      ["template mac", (a) => ((a.pfs[0].vfTemplate as any).mac = "02:00:00:00:00:01"), /pfs\[0\]\.vfTemplate\.mac/],
      ["override out of range", (a) => (a.pfs[0].vfs![0].index = 3), /pfs\[0\]\.vfs\[0\]\.index: must be a VF index 0…2 \(got 3\)/],
      ["duplicate override", (a) => a.pfs[0].vfs!.push({ index: 1 }), /pfs\[0\]\.vfs\[1\]\.index: VF 1 is listed twice/],
      ["duplicate PF", (a) => (a.pfs[1] = { interface: "enp1s0", numVfs: 1 }), /pfs\[1\]: enp1s0 is already pfs\[0\]/],
      ["unknown pool PF", (a) => (a.poolNetworks![0].pf = "eth9"), /poolNetworks\[0\]\.pf: must be one of this host's pfs \(enp1s0, 0000:03:00.0\), got "eth9"/],
      ["duplicate network", (a) => (a.poolNetworks![1].name = "pool-a"), /poolNetworks\[1\]\.name: pool-a is used twice/],
      ["template with manageVfs false", (a) => (a.pfs[0].manageVfs = false), /pfs\[0\]: vfTemplate and vfs need manageVfs/],
    ];
    for (const [what, mutate, message] of bad) {
      it(what, () => {
        const a = hostArgs();
        mutate(a);
        expect(() => new sdk.SriovHost("hv01", a)).to.throw(message);
        expect(run.registrations).to.have.length(0);
      });
    }

    it("reports every problem at once", () => {
      const a = hostArgs();
      a.pfs[1].numVfs = 1.5;
      a.poolNetworks![0].pf = "eth9";
      const errors = sdk.validateSriovHostArgs(a);
      expect(errors).to.have.length(2);
      expect(errors[0]).to.match(/^pfs\[1\]\.numVfs/);
      expect(errors[1]).to.match(/^poolNetworks\[0\]\.pf/);
    });
  });
});

// ---------------------------------------------------------------------------
// The serialized providers, for real.

const REPO = path.resolve(__dirname, "..", "..");
const classes = [
  { cls: "IommuKernelArgs", provider: providers.iommuKernelArgs, kind: "iommuKernelArgs" },
  { cls: "SriovPf", provider: providers.sriovPf, kind: "sriovPf" },
  { cls: "VirtualFunction", provider: providers.virtualFunction, kind: "virtualFunction" },
  { cls: "VfPoolNetwork", provider: providers.vfPoolNetwork, kind: "vfPoolNetwork" },
  { cls: "DomainVfInterface", provider: providers.domainVfInterface, kind: "domainVfInterface" },
] as const;

type ClassName = (typeof classes)[number]["cls"];

/** Inputs (without connection) that pass check, and bad ones with the properties check must name. */
const checkCases: Record<ClassName, { valid: Record<string, any>; bad: Record<string, any>; badProps: string[] }> = {
  IommuKernelArgs: {
    valid: { iommu: "intel", passthrough: true, extraArgs: ["pci=realloc", "hugepages=16"], bootloader: "grub", reboot: "ifNeeded", rebootTimeoutSeconds: 600 },
    bad: { iommu: "arm", extraArgs: ["a b;reboot"], reboot: "sometimes" },
    badProps: ["iommu", "extraArgs", "reboot"],
  },
  SriovPf: {
    valid: { interface: "enp1s0", numVfs: 4, autoprobe: true, persist: "systemd", mtu: 9000 },
    bad: { interface: "enp1s0", numVfs: -1, persist: "cron", mtu: "big" },
    badProps: ["numVfs", "persist", "mtu"],
  },
  VirtualFunction: {
    valid: { pf: "enp1s0", index: 0, mac: "02:00:00:00:00:01", vlan: 100, qos: 3, spoofCheck: true, trust: false },
    bad: { pf: "enp1s0", index: -1, mac: "01:00:5e:00:00:01", vlan: 5000 },
    badProps: ["index", "mac", "vlan"],
  },
  VfPoolNetwork: {
    valid: { name: "sriov-pool", pf: "enp1s0", autostart: true, vlan: 100 },
    bad: { name: "bad name!", pf: "enp1s0", vlan: 9999 },
    badProps: ["name", "vlan"],
  },
  DomainVfInterface: {
    valid: { domain: "guest1", source: { network: "sriov-pool" }, mac: "52:54:00:12:34:56", vlan: 100 },
    bad: { domain: "guest1", source: { pciAddress: "nope" }, mac: "zz", vlan: -3 },
    badProps: ["source", "mac", "vlan"],
  },
};

/** What the dynamic-provider process does with `__provider`: require-from-string, then `.handler()`. */
function evaluateSerialized(text: string, cwd: string): pulumi.dynamic.ResourceProvider {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const Module = require("module");
  const m = new Module("", null);
  m.filename = "";
  m.paths = Module._nodeModulePaths(cwd);
  m._compile(text, "");
  return m.exports.handler();
}

function namesProperty(failures: { property: string }[], prop: string): boolean {
  return failures.some((f) => f.property === prop || f.property.startsWith(`${prop}.`) || f.property.startsWith(`${prop}[`));
}

function compiledPackagePresent(): void {
  const runtime = path.join(REPO, "node_modules", "pulumi-sriov", "dist", "provider", "runtime.js");
  if (!fs.existsSync(runtime))
    throw new Error(`${runtime} is missing: build and link the package first (npm run build && node tools/link-self.js; npm test does both)`);
}

describe("serialized providers of the sdk classes", () => {
  const registered = new Map<string, string>();
  before(async () => {
    const run = await installMocks();
    new sdk.IommuKernelArgs("ka", { connection, iommu: "intel" });
    new sdk.SriovPf("pf", { connection, interface: "enp1s0", numVfs: 4 });
    new sdk.VirtualFunction("vf", { connection, pf: "enp1s0", index: 0 });
    new sdk.VfPoolNetwork("net", { connection, name: "sriov-pool", pf: "enp1s0" });
    new sdk.DomainVfInterface("nic", { connection, domain: "guest1", source: { network: "sriov-pool" } });
    await run.settle();
    for (const r of run.registrations) registered.set(r.type.split(":").pop()!, r.inputs.__provider);
  });

  for (const c of classes) {
    it(`${c.cls}: the class registers exactly what serializeFunction produces, small and self-contained`, async () => {
      // Exactly the closure pulumi.dynamic.Resource serializes: `() => provider`.
      const provider = c.provider;
      const sf = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
      expect(sf.containsSecrets).to.equal(false);
      const text = registered.get(c.cls)!;
      // Identical but for how this file's `() => provider` arrow was transpiled.
      const norm = (t: string) => t.replace(/\(\)\s*=>\s*provider;/, "() => provider;");
      expect(norm(text)).to.equal(norm(sf.text));
      expect(text.length).to.be.below(8000);
      expect(text).to.include(`"${c.kind}"`);
      expect(text).to.include('require("pulumi-sriov/dist/provider/runtime")');
      expect(text).to.not.match(/zod|ssh2|ZodObject/);
    });

    it(`${c.cls}: the serialized text evaluates to a provider whose check validates`, async () => {
      compiledPackagePresent();
      const p = evaluateSerialized(registered.get(c.cls)!, REPO);
      for (const m of ["check", "diff", "create", "read", "update", "delete"]) expect((p as any)[m], m).to.be.a("function");
      const cc = checkCases[c.cls];
      const ok = await p.check!({}, { ...cc.valid, connection });
      expect(ok.failures ?? [], JSON.stringify(ok.failures)).to.deep.equal([]);
      const bad = await p.check!({}, { ...cc.bad, connection });
      for (const prop of cc.badProps) expect(namesProperty(bad.failures ?? [], prop), `failure naming ${prop} in ${JSON.stringify(bad.failures)}`).to.equal(true);
    });
  }
});

describe("sdk classes through the real dynamic-provider process", function () {
  this.timeout(120000);
  let proc: engine.ProviderProcess;
  const registered = new Map<string, string>();

  before(async () => {
    compiledPackagePresent();
    const run = await installMocks();
    new sdk.IommuKernelArgs("ka", { connection, iommu: "intel" });
    new sdk.SriovPf("pf", { connection, interface: "enp1s0", numVfs: 4 });
    new sdk.VirtualFunction("vf", { connection, pf: "enp1s0", index: 0 });
    new sdk.VfPoolNetwork("net", { connection, name: "sriov-pool", pf: "enp1s0" });
    new sdk.DomainVfInterface("nic", { connection, domain: "guest1", source: { network: "sriov-pool" } });
    await run.settle();
    for (const r of run.registrations) registered.set(r.type.split(":").pop()!, r.inputs.__provider);
    proc = await engine.ProviderProcess.start({ cwd: REPO, project: "sriov-fleet", stack: "test" });
  });
  after(async () => {
    await proc?.stop();
  });

  for (const c of classes) {
    it(`${c.cls}: Check passes valid inputs (defaults applied, connection kept secret) with no host`, async () => {
      const cc = checkCases[c.cls];
      const r = await proc.check(registered.get(c.cls)!, `${c.kind}-ok`, {}, { ...cc.valid, connection: engine.secret(connection) }, { type: sdk.typeToken(c.cls) });
      expect(r.failures, JSON.stringify(r.failures)).to.deep.equal([]);
      expect(engine.isSecret(r.inputs.connection), "checked connection is secret in state").to.equal(true);
      expect(engine.unwrapSecrets(r.inputs.connection)).to.include({ host: "127.0.0.1", port: 22, user: "root", perDialTimeout: 15 });
      for (const [k, v] of Object.entries(cc.valid)) expect(r.inputs[k], k).to.deep.equal(v);
    });

    it(`${c.cls}: Check names every bad property at once`, async () => {
      const cc = checkCases[c.cls];
      const r = await proc.check(
        registered.get(c.cls)!,
        `${c.kind}-bad`,
        {},
        { ...cc.bad, connection: engine.secret({ host: "bad host!", port: 70000, password: PASSWORD }) },
        { type: sdk.typeToken(c.cls) },
      );
      for (const prop of [...cc.badProps, "connection.host", "connection.port"])
        expect(namesProperty(r.failures, prop), `failure naming ${prop} in ${JSON.stringify(r.failures)}`).to.equal(true);
      expect(JSON.stringify(r.failures)).to.not.include(PASSWORD);
    });

    it(`${c.cls}: Check in a preview passes values that are still unknown`, async () => {
      const cc = checkCases[c.cls];
      const inputs: Record<string, any> = { ...cc.valid, connection: engine.secret({ ...connection, host: engine.UNKNOWN }) };
      const firstKey = Object.keys(cc.valid)[0];
      inputs[firstKey] = engine.UNKNOWN;
      const r = await proc.check(registered.get(c.cls)!, `${c.kind}-preview`, {}, inputs, { type: sdk.typeToken(c.cls), preview: true });
      expect(r.failures, JSON.stringify(r.failures)).to.deep.equal([]);
    });
  }
});
