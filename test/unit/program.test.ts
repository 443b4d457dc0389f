// The fleet program and the lab stack: configuration parsing, waves, secrets
// and the resource graph under Pulumi's mocks.
import { expect } from "chai";
import * as fc from "fast-check";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  checkFleetSecrets,
  computeWaves,
  connectionFor,
  FleetConfigError,
  parseFleetConfig,
  resolveHost,
} from "../../examples/fleet/config";
import { deployFleet, fleetOutputs, readStackConfig, runFleet } from "../../examples/fleet/program";
import { labStackConfig, parseStackFile, projectName } from "../../examples/lab/stack-config";
import { installMocks, isSecretValue, MockRun, plainStrings, valueOf } from "../support/sdk-mocks";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const yaml: { load(text: string): any } = require("js-yaml");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const runtimeConfig = require("@pulumi/pulumi/runtime/config");

const ROOT = path.resolve(__dirname, "..", "..");
const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nFLEETKEYMATERIAL\n-----END OPENSSH PRIVATE KEY-----\n";
const HV03_PASSWORD = "hv03-only-password";

function host(name: string, extra: Record<string, any> = {}) {
  return {
    name,
    connection: { host: `10.0.0.${Number(name.replace(/\D/g, "")) || 1}` },
    pfs: [{ interface: "enp65s0f0", numVfs: 2 }],
    ...extra,
  };
}

function fleetRaw(n: number, waveSize?: number): any {
  return {
    ...(waveSize === undefined ? {} : { waveSize }),
    defaults: {
      connection: { user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFleet" },
      kernelArgs: { iommu: "intel", passthrough: true },
      pf: { persist: "systemd", vfTemplate: { spoofCheck: true } },
    },
    hosts: Array.from({ length: n }, (_, i) => host(`hv0${i + 1}`)),
  };
}

function problemsOf(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    if (e instanceof FleetConfigError) return e.problems;
    throw e;
  }
  throw new Error("expected a FleetConfigError");
}

describe("fleet configuration (pure)", () => {
  it("parses a fleet and applies defaults under host values", () => {
    const raw = fleetRaw(2, 1);
    raw.hosts[1].kernelArgs = { extraArgs: ["pci=realloc"], iommu: "amd" };
    raw.hosts[1].pfs[0].vfTemplate = { vlan: 100, spoofCheck: false };
    raw.hosts[1].connection.user = "ops";
    const fleet = parseFleetConfig(raw);
    const [a, b] = fleet.hosts.map((h) => resolveHost(h, fleet.defaults));
    expect(a.connection).to.deep.equal({ user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFleet", host: "10.0.0.1" });
    expect(a.kernelArgs).to.deep.equal({ iommu: "intel", passthrough: true });
    expect(a.pfs[0]).to.deep.equal({ persist: "systemd", interface: "enp65s0f0", numVfs: 2, vfTemplate: { spoofCheck: true } });
    expect(b.connection.user).to.equal("ops");
    expect(b.kernelArgs).to.deep.equal({ iommu: "amd", passthrough: true, extraArgs: ["pci=realloc"] });
    expect(b.pfs[0].vfTemplate).to.deep.equal({ spoofCheck: false, vlan: 100 });
  });

  it("kernelArgs: false leaves a host's command line unmanaged despite defaults", () => {
    const raw = fleetRaw(1);
    raw.hosts[0].kernelArgs = false;
    const fleet = parseFleetConfig(raw);
    expect(resolveHost(fleet.hosts[0], fleet.defaults).kernelArgs).to.equal(undefined);
  });

  it("reports every problem with its configuration path", () => {
    const raw = fleetRaw(3);
    raw.waveSize = 0;
    raw.hosts[0].pfs[0].numVF = 4; // typo
    raw.hosts[1].name = "bad name";
    raw.hosts[2].pfs[0].numVfs = "8";
    raw.hosts[2].kernelArgs = { reboot: "always" };
    const problems = problemsOf(() => parseFleetConfig(raw));
    expect(problems).to.include.members([
      "waveSize: must be at least 1",
      "hosts[0].pfs[0].numVF: is not a known setting",
      "hosts[1].name: must be a host name (letters, digits, _ . -; at most 63 characters)",
      "hosts[2].pfs[0].numVfs: must be a whole number",
    ]);
    expect(problems.some((p) => p.startsWith("hosts[2].kernelArgs"))).to.equal(true);
  });

  it("refuses secrets in plain configuration and says how to set them", () => {
    const raw = fleetRaw(2);
    raw.hosts[1].connection.password = "plain-text-password";
    raw.hosts[0].connection.proxy = { host: "bastion", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----" };
    raw.defaults.connection.privateKey = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const problems = problemsOf(() => parseFleetConfig(raw));
    expect(problems).to.include.members([
      "hosts[1].connection.password: secrets do not belong in plain configuration; set it with: pulumi config set --secret --path 'hostSecrets.hv02.password' <value>",
      "hosts[0].connection.proxy.privateKey: secrets do not belong in plain configuration; set it with: pulumi config set --secret --path 'hostSecrets.hv01.proxy.privateKey' <value>",
      "defaults.connection.privateKey: secrets do not belong in plain configuration; set it with: pulumi config set --secret sshPrivateKey <value>",
    ]);
    expect(problems).to.have.length(3);
    expect(problems.join("\n")).to.not.include("plain-text-password");
  });

  it("checks names, PF selectors, VF indexes and pool network references per host", () => {
    const raw = fleetRaw(2);
    raw.hosts[1].name = "hv01";
    raw.hosts[0].pfs[0] = { interface: "enp65s0f0", pciAddress: "0000:41:00.0", numVfs: 2, vfs: [{ index: 2, mac: "02:00:00:00:00:01" }] };
    raw.hosts[0].poolNetworks = [{ name: "pool", pf: "enp99s0" }];
    const problems = problemsOf(() => parseFleetConfig(raw));
    expect(problems).to.include("hosts[1].name: hv01 is already hosts[0]");
    expect(problems.some((p) => p.startsWith("hosts[0].pfs[0]: give exactly one of interface, pciAddress, macAddress"))).to.equal(true);
    expect(problems.some((p) => p.startsWith("hosts[0].pfs[0].vfs[0].index: must be a VF index 0…1 (got 2)"))).to.equal(true);
    expect(problems.some((p) => p.startsWith("hosts[0].poolNetworks[0].pf: must be one of this host's pfs"))).to.equal(true);
  });

  it("needs at least one host", () => {
    expect(problemsOf(() => parseFleetConfig({ hosts: [] }))).to.deep.equal(["hosts: must list at least one host"]);
    expect(problemsOf(() => parseFleetConfig({}))[0]).to.match(/^hosts: /);
  });

  it("merges secrets into connections: per-host over fleet-wide, never into other hosts", () => {
    const fleet = parseFleetConfig(fleetRaw(3));
    const secrets = checkFleetSecrets({ sshPrivateKey: KEY, hostSecrets: { hv03: { password: HV03_PASSWORD, privateKey: "-----BEGIN HV03 KEY-----" } } }, ["hv01", "hv02", "hv03"]);
    const [a, , c] = fleet.hosts.map((h) => connectionFor(resolveHost(h, fleet.defaults), secrets));
    expect(a).to.include({ host: "10.0.0.1", privateKey: KEY });
    expect(a).to.not.have.property("password");
    expect(c).to.include({ host: "10.0.0.3", privateKey: "-----BEGIN HV03 KEY-----", password: HV03_PASSWORD });
  });

  it("secret problems name keys, never values", () => {
    const problems = problemsOf(() => checkFleetSecrets({ hostSecrets: { hv09: { password: "leak-me" }, hv01: { passwd: "leak-me-too" } } }, ["hv01"]));
    expect(problems).to.include("hostSecrets.hv09: no host of that name (hosts: hv01)");
    expect(problems).to.include("hostSecrets.hv01.passwd: is not a known setting");
    expect(problems.join("\n")).to.not.include("leak-me");
  });

  describe("computeWaves", () => {
    it("splits in configuration order", () => {
      expect(computeWaves(["a", "b", "c", "d", "e"], 2)).to.deep.equal([["a", "b"], ["c", "d"], ["e"]]);
      expect(computeWaves(["a", "b", "c"])).to.deep.equal([["a", "b", "c"]]);
      expect(computeWaves(["a", "b"], 5)).to.deep.equal([["a", "b"]]);
    });
    it("refuses a wave size that is not a whole number ≥ 1", () => {
      for (const bad of [0, -1, 1.5, NaN]) expect(() => computeWaves(["a"], bad)).to.throw(/waveSize: must be a whole number ≥ 1/);
    });
    it("keeps every host exactly once, in order, in full waves but the last", () => {
      fc.assert(
        fc.property(fc.array(fc.integer(), { maxLength: 60 }), fc.integer({ min: 1, max: 20 }), (hosts, size) => {
          const waves = computeWaves(hosts, size);
          expect(waves.flat()).to.deep.equal(hosts);
          waves.forEach((w, i) => {
            expect(w.length).to.be.at.least(1);
            if (i < waves.length - 1) expect(w.length).to.equal(size);
            else expect(w.length).to.be.at.most(size);
          });
          expect(waves.length).to.equal(Math.ceil(hosts.length / size));
        }),
      );
    });
  });
});

describe("fleet program (mocks)", () => {
  let run: MockRun;
  beforeEach(async () => {
    run = await installMocks({ project: "sriov-fleet", stack: "test" });
  });

  const hostOf = (urn: string) => urn.split("::").pop()!.split("-")[0];

  it("wave n+1 depends on every resource of wave n, and only on wave n", async () => {
    const fleet = parseFleetConfig(fleetRaw(5, 2));
    const d = deployFleet(fleet, { sshPrivateKey: KEY });
    expect(d.waves).to.deep.equal([["hv01", "hv02"], ["hv03", "hv04"], ["hv05"]]);
    await run.settle();
    const custom = run.registrations.filter((r) => r.custom);
    const ofHosts = (names: string[]) => custom.filter((r) => names.includes(hostOf(r.urn))).map((r) => r.urn);
    expect(ofHosts(["hv01"])).to.have.length(4); // kernel args, PF, 2 VFs
    for (const [w, wave] of d.waves.entries()) {
      const previous = w > 0 ? ofHosts(d.waves[w - 1]) : [];
      const earlier = d.waves.slice(0, Math.max(0, w - 1)).flat();
      for (const r of custom.filter((x) => wave.includes(hostOf(x.urn)))) {
        expect(r.dependencies, `${r.name} waits for wave ${w}`).to.include.members(previous);
        const otherHosts = r.dependencies.map(hostOf).filter((h) => h !== hostOf(r.urn));
        for (const h of otherHosts) expect(d.waves[w - 1], `${r.name} depends on ${h}`).to.include(h);
        for (const h of earlier) expect(otherHosts).to.not.include(h);
      }
    }
    // The components themselves carry the dependency too.
    expect(run.byName("hv03").dependencies).to.include.members(ofHosts(["hv01", "hv02"]));
  });

  it("a failure in wave 1 stops the rollout: wave 2 is never registered", async () => {
    run = await installMocks({ project: "sriov-fleet", stack: "test", failOn: (name) => name === "hv02-enp65s0f0" });
    const failures: unknown[] = [];
    const onRejection = (e: unknown) => failures.push(e);
    process.on("unhandledRejection", onRejection);
    try {
      deployFleet(parseFleetConfig(fleetRaw(4, 2)), { sshPrivateKey: KEY });
      await run.settle();
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      process.off("unhandledRejection", onRejection);
    }
    const names = run.registrations.filter((r) => r.custom).map((r) => r.name);
    expect(names).to.include("hv02-enp65s0f0");
    expect(names.filter((n) => n.startsWith("hv02-enp65s0f0-vf")), "VFs of the failed PF").to.deep.equal([]);
    expect(names.filter((n) => n.startsWith("hv03") || n.startsWith("hv04")), "wave 2").to.deep.equal([]);
    // hv01 in the same wave is not affected.
    expect(names).to.include.members(["hv01-kernel-args", "hv01-enp65s0f0", "hv01-enp65s0f0-vf0", "hv01-enp65s0f0-vf1"]);
  });

  it("keeps connections secret everywhere and outputs only plain summaries", async () => {
    const raw = fleetRaw(3, 2);
    const secrets = { sshPrivateKey: KEY, hostSecrets: { hv03: { password: HV03_PASSWORD } } };
    const outs = fleetOutputs(deployFleet(parseFleetConfig(raw), secrets));
    const hosts = await valueOf(outs.hosts);
    await run.settle();
    const custom = run.registrations.filter((r) => r.custom);
    expect(custom).to.have.length(12);
    for (const r of custom) {
      expect(isSecretValue(r.inputs.connection), r.name).to.equal(true);
      expect(r.additionalSecretOutputs).to.include("connection");
      const conn = r.inputs.connection.value;
      expect(conn.privateKey, r.name).to.equal(KEY);
      expect(conn.password, r.name).to.equal(r.name.startsWith("hv03") ? HV03_PASSWORD : undefined);
    }
    for (const r of run.registrations)
      for (const s of [...plainStrings(r.inputs), ...plainStrings(r.outputs ?? {})]) {
        expect(s).to.not.include("FLEETKEYMATERIAL");
        expect(s).to.not.include(HV03_PASSWORD);
      }
    expect(await pulumi.isSecret(outs.hosts)).to.equal(false);
    expect(Object.keys(hosts)).to.deep.equal(["hv01", "hv02", "hv03"]);
    expect(JSON.stringify(hosts)).to.not.include("FLEETKEYMATERIAL").and.not.include(HV03_PASSWORD).and.not.include("10.0.0.");
    expect(hosts.hv01.pfs[0].vfs).to.have.length(2);
  });

  it("reads the fleet from stack configuration with secrets set as secrets", async () => {
    runtimeConfig.setAllConfig(
      {
        "sriov-fleet:waveSize": "1",
        "sriov-fleet:hosts": JSON.stringify(fleetRaw(2).hosts),
        "sriov-fleet:defaults": JSON.stringify(fleetRaw(2).defaults),
        "sriov-fleet:sshPrivateKey": KEY,
        "sriov-fleet:hostSecrets": JSON.stringify({ hv02: { password: HV03_PASSWORD } }),
      },
      ["sriov-fleet:sshPrivateKey", "sriov-fleet:hostSecrets"],
    );
    const outs = runFleet();
    expect(outs.waves).to.deep.equal([["hv01"], ["hv02"]]);
    await valueOf(outs.hosts);
    await run.settle();
    const pf2 = run.byName("hv02-enp65s0f0");
    expect(pf2.inputs.connection.value).to.include({ privateKey: KEY, password: HV03_PASSWORD, host: "10.0.0.2" });
    expect(pf2.dependencies).to.include(run.byName("hv01-enp65s0f0-vf1").urn);
  });

  it("refuses secret keys stored in plain text", () => {
    runtimeConfig.setAllConfig({ "sriov-fleet:hosts": JSON.stringify(fleetRaw(1).hosts), "sriov-fleet:sshPrivateKey": KEY }, []);
    expect(() => readStackConfig()).to.throw(/sshPrivateKey: is stored in plain text; set it with: pulumi config set --secret sshPrivateKey/);
    expect(run.registrations).to.have.length(0);
  });

  it("a hostSecrets entry for an unknown host fails the program without echoing secrets", async () => {
    runtimeConfig.setAllConfig(
      { "sriov-fleet:hosts": JSON.stringify(fleetRaw(1).hosts), "sriov-fleet:hostSecrets": JSON.stringify({ hv7: { password: "do-not-echo" } }) },
      ["sriov-fleet:hostSecrets"],
    );
    const { secrets } = readStackConfig();
    let message = "";
    try {
      await valueOf(secrets);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).to.include("hostSecrets.hv7: no host of that name (hosts: hv01)");
    expect(message).to.not.include("do-not-echo");
  });
});

describe("project and lab stack files", () => {
  const project = projectName(path.join(ROOT, "Pulumi.yaml"));
  const labFile = parseStackFile(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8"), project);

  it("Pulumi.yaml runs the fleet program with the Node.js runtime", () => {
    const doc = yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
    expect(doc.runtime.name).to.equal("nodejs");
    expect(fs.existsSync(path.join(ROOT, doc.main)), doc.main).to.equal(true);
    expect(doc.main).to.equal("examples/fleet/index.ts");
    // The program module exports a function, which Pulumi runs for the stack outputs.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    expect(require(path.join(ROOT, doc.main))).to.be.a("function");
  });

  it("Pulumi.lab.yaml is a valid fleet of one lab host, all in the project's namespace, without secrets", () => {
    expect(labFile.ignored).to.deep.equal([]);
    expect(labFile.encrypted).to.deep.equal([]);
    const fleet = parseFleetConfig(labFile.config);
    expect(fleet.hosts.map((h) => h.name)).to.deep.equal(["lab"]);
    expect(fleet.hosts[0].connection).to.include({ host: "127.0.0.1", user: "root" });
    expect(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8")).to.not.match(/PRIVATE KEY|password:/);
  });

  it("the lab stack declares kernel args (reboot ifNeeded) → 4 VFs on the first igb PF → VF attributes → pool network", async () => {
    const run = await installMocks({ project, stack: "lab" });
    const config = labStackConfig(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8"), project, { host: "127.0.0.1", port: 40022, user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILab" });
    runtimeConfig.setAllConfig(
      { ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])), [`${project}:sshPrivateKey`]: KEY },
      [`${project}:sshPrivateKey`],
    );
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const program = require(path.join(ROOT, "examples/fleet/index.ts"));
    const outs = await program();
    await valueOf(outs.hosts);
    await run.settle();
    const custom = run.registrations.filter((r) => r.custom);
    expect(custom.map((r) => r.type.split(":").pop())).to.have.members([
      "IommuKernelArgs",
      "SriovPf",
      "VirtualFunction",
      "VirtualFunction",
      "VirtualFunction",
      "VirtualFunction",
      "VfPoolNetwork",
    ]);
    const ka = run.byName("lab-kernel-args");
    expect(ka.inputs).to.include({ iommu: "intel", reboot: "ifNeeded" });
    expect(ka.inputs.connection.value).to.include({ host: "127.0.0.1", port: 40022, privateKey: KEY, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILab" });
    const pf = run.byName("lab-0000-01-00.0");
    expect(pf.inputs).to.include({ pciAddress: "0000:01:00.0", numVfs: 4 });
    expect(pf.dependencies).to.deep.equal([ka.urn]);
    const vfs = [0, 1, 2, 3].map((i) => run.byName(`lab-0000-01-00.0-vf${i}`));
    expect(vfs.map((v) => [v.inputs.mac, v.inputs.vlan, v.inputs.spoofCheck, v.inputs.trust])).to.deep.equal([
      ["02:5a:00:00:01:00", 100, true, false],
      ["02:5a:00:00:01:01", 100, true, false],
      ["02:5a:00:00:01:02", 200, true, true],
      ["02:5a:00:00:01:03", 200, false, false],
    ]);
    for (const v of vfs) expect(v.dependencies).to.deep.equal([pf.urn]);
    const net = run.byName("lab-net-sriov-lab");
    expect(net.inputs).to.include({ name: "sriov-lab" });
    expect(net.dependencies).to.have.members([pf.urn, ...vfs.map((v) => v.urn)]);
  });
});

describe("stack files", () => {
  it("keeps the project's keys, sets aside encrypted values and other namespaces", () => {
    const f = parseStackFile(
      ["config:", "  sriov-fleet:waveSize: 3", "  sriov-fleet:sshPrivateKey:", "    secure: v1:abc", "  aws:region: eu-west-1", "  sriov-fleet:hosts:", "    - { name: a }"].join("\n"),
      "sriov-fleet",
    );
    expect(f.config).to.deep.equal({ waveSize: 3, hosts: [{ name: "a" }] });
    expect(f.encrypted).to.deep.equal(["sshPrivateKey"]);
    expect(f.ignored).to.deep.equal(["aws:region"]);
  });

  it("points the lab stack at a running lab without changing the file's other settings", () => {
    const text = fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8");
    const f = parseStackFile(text, "sriov-fleet");
    const config = labStackConfig(text, "sriov-fleet", { host: "127.0.0.1", port: 41234, user: "root", hostKey: "ssh-ed25519 AAAAX" });
    expect(Object.keys(config).sort()).to.deep.equal(["sriov-fleet:hosts", "sriov-fleet:waveSize"]);
    const hosts = config["sriov-fleet:hosts"] as any[];
    expect(hosts[0].connection).to.deep.equal({ host: "127.0.0.1", port: 41234, user: "root", hostKey: "ssh-ed25519 AAAAX" });
    expect({ ...hosts[0], connection: undefined }).to.deep.equal({ ...(f.config.hosts as any[])[0], connection: undefined });
    expect(() => labStackConfig("config:\n  sriov-fleet:hosts: []\n", "sriov-fleet", { host: "h", port: 1, user: "u", hostKey: "k" })).to.throw(/exactly one host/);
  });
});

describe("examples/ci workflow", () => {
  const file = path.join(ROOT, "examples/ci/pulumi.yml");
  const wf = yaml.load(fs.readFileSync(file, "utf8"));
  const steps = (job: any): string[] => (job.steps ?? []).map((s: any) => `${s.run ?? ""} ${s.uses ?? ""}`);
  const jobs = Object.values(wf.jobs) as any[];

  it("previews with --diff on pull requests and applies on main only", () => {
    expect(wf.on).to.have.property("pull_request");
    expect(wf.on.push.branches).to.deep.equal(["main"]);
    const preview = jobs.find((j) => steps(j).some((s) => /pulumi preview\b.*--diff/.test(s)))!;
    const up = jobs.find((j) => steps(j).some((s) => /pulumi up\b/.test(s)))!;
    expect(preview, "a job running pulumi preview --diff").to.not.equal(undefined);
    expect(up, "a job running pulumi up").to.not.equal(undefined);
    expect(preview.if).to.match(/pull_request/);
    expect(up.if).to.match(/refs\/heads\/main/).and.match(/push/);
    expect(steps(preview).join("\n")).to.not.match(/pulumi up\b/);
  });

  it("takes credentials from the CI secret store only", () => {
    const text = fs.readFileSync(file, "utf8");
    expect(text).to.match(/\$\{\{\s*secrets\.PULUMI_ACCESS_TOKEN\s*\}\}/);
    expect(text).to.not.match(/BEGIN [A-Z ]*PRIVATE KEY/);
    for (const j of jobs) expect(JSON.stringify(j.env ?? {}) + JSON.stringify(j.steps)).to.not.match(/PULUMI_ACCESS_TOKEN["']?:\s*["']?[A-Za-z0-9]/);
  });
});
