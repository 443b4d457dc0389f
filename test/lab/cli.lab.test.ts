// The fleet program under the real Pulumi CLI against the lab host, as an
// operator runs it: preview, up, no-op up, refresh, drift repaired, secrets
// in state, destroy back to the host as found, and a host that does not
// answer beside one that does. Interruptions and --target: cli.interrupt.lab.test.ts.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { LAB_VFS } from "../../examples/lab/program";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { hostVf } from "../reliability/lab";
import { closedPort, fleetProject, hostState, LAB_PFS, labHosts, PROJECT } from "../support/cliLab";
import type { CliProject } from "../../lab/pulumiCli";

describe("the lab stack through the Pulumi CLI", function () {
  this.timeout(1800000);
  let vm: LabVm;
  let cli: CliProject;
  let found: Awaited<ReturnType<typeof hostState>>;
  let pf: string;

  before(async function () {
    this.timeout(900000);
    vm = await sharedLab();
    found = await hostState(vm);
    cli = await fleetProject(vm, "cli-lab", { [`${PROJECT}:hosts`]: labHosts(vm) });
  });

  after(async function () {
    this.timeout(900000);
    if (!cli) return;
    // Leave the shared guest as found even when a test failed half-way.
    const state = await cli.stack.exportStack();
    if ((state.deployment.resources ?? []).length) await cli.stack.destroy(cli.out).catch(() => undefined);
    fs.rmSync(cli.dir, { recursive: true, force: true });
  });

  it("pulumi preview --diff lists, per resource, what applying would change on the host", async () => {
    const r = await cli.stack.preview({ ...cli.out, diff: true });
    expect(r.changeSummary).to.deep.equal({ create: 9 });
    const text = r.stdout;
    expect(text).to.not.include("(not checked)  ");
    // The kernel arguments and the PF are checked against the host; the VFs and the network wait for the PF's name.
    const block = (name: string) => text.slice(text.indexOf(`::${name}]`), text.indexOf("+ pulumi-nodejs", text.indexOf(`::${name}]`)));
    expect(block("lab-kernel-args")).to.match(/hostChanges\s*: \[\s*\n\s*\[0\]: "(?!\(not checked\))/);
    expect(block("lab-0000-01-00.0")).to.match(/hostChanges\s*: \[\s*\n\s*\[0\]: "(?!\(not checked\))/);
    expect(block("lab-0000-01-00.0")).to.match(/4 VFs|numvfs|sriov_numvfs/i);
  });

  it("pulumi up applies it; a second up with --expect-no-changes and a refresh with --expect-no-changes pass", async () => {
    const up = await cli.stack.up(cli.out);
    expect(up.summary.result).to.equal("succeeded");
    expect(up.summary.resourceChanges).to.deep.equal({ create: 9 });
    pf = (await vm.run(`basename /sys/bus/pci/devices/${LAB_PFS[0]}/net/*`)).trim();
    expect((await vm.run(`cat /sys/bus/pci/devices/${LAB_PFS[0]}/sriov_numvfs`)).trim()).to.equal("4");
    for (let i = 0; i < 4; i++) expect(await hostVf(vm, pf, i), `vf${i}`).to.include({ mac: LAB_VFS[i].mac, vlan: LAB_VFS[i].vlan, spoofchk: LAB_VFS[i].spoofCheck, trust: LAB_VFS[i].trust });
    expect(await vm.run("virsh -q net-list --name")).to.include("sriov-lab");

    const again = await cli.stack.up({ ...cli.out, expectNoChanges: true });
    expect(again.summary.resourceChanges).to.deep.equal({ same: 9 });
    const refresh = await cli.stack.refresh({ ...cli.out, expectNoChanges: true });
    expect(refresh.summary.resourceChanges).to.deep.equal({ same: 9 });
  });

  it("state holds the connection as a secret: no key or passphrase text in the export or on disk; only --show-secrets reveals it", async () => {
    const key = (await vm.connection).privateKey;
    const body = key.split("\n")[2];
    const exported = await cli.cliOk(["stack", "export"]);
    expect(exported).to.not.include(body);
    expect(exported).to.not.include(cli.passphrase());
    const state = JSON.parse(exported);
    const pfState = state.deployment.resources.find((r: any) => r.urn.endsWith("::lab-0000-01-00.0"));
    expect(pfState.outputs.connection).to.have.property("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270");
    expect(pfState.outputs.connection).to.have.property("ciphertext");
    expect(pfState.inputs.connection).to.have.property("ciphertext");
    const files = fs.readdirSync(cli.dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.parentPath.includes("node_modules") && e.name !== "passphrase");
    expect(files.length).to.be.above(2);
    for (const f of files) {
      const text = fs.readFileSync(path.join(f.parentPath, f.name), "latin1");
      expect(text, f.name).to.not.include(body);
      expect(text, f.name).to.not.include(cli.passphrase());
    }
    expect(await cli.cliOk(["stack", "output", "--json"])).to.not.include(body);
    const revealed = await cli.cliOk(["stack", "export", "--show-secrets"]);
    expect(revealed).to.include(body);
  });

  it("drift: a VLAN and the VF count changed by hand show in refresh, preview shows the repair, up repairs it", async () => {
    // By hand as the guides do it: the pool network stopped first (the provider itself refuses
    // to re-create VFs under an active network), then the VF count and one VF's VLAN.
    await vm.run(`virsh -q net-destroy sriov-lab; d=/sys/bus/pci/devices/${LAB_PFS[0]}; echo 0 > $d/sriov_numvfs; echo 2 > $d/sriov_numvfs; ip link set dev ${pf} vf 0 vlan 300`);
    // Plain `pulumi refresh` needs no program.
    const refresh = await cli.cliOk(["refresh", "--yes", "--diff"]);
    expect(refresh, refresh).to.match(/numVfs\s*: 4 => 2/);
    expect(refresh, refresh).to.match(/vlan\s*: 100 => 300/);
    expect(refresh, refresh).to.match(/active\s*: true => false/);
    const preview = await cli.stack.preview({ ...cli.out, diff: true });
    expect(preview.stdout, preview.stdout).to.match(/numVfs\s*: 2 => 4/);
    expect(preview.stdout, preview.stdout).to.match(/vlan\s*: 300 => 100/);
    const up = await cli.stack.up(cli.out);
    expect(up.summary.result).to.equal("succeeded");
    expect((await vm.run(`cat /sys/bus/pci/devices/${LAB_PFS[0]}/sriov_numvfs`)).trim()).to.equal("4");
    for (let i = 0; i < 4; i++) expect(await hostVf(vm, pf, i), `vf${i}`).to.include({ mac: LAB_VFS[i].mac, vlan: LAB_VFS[i].vlan });
    expect(await vm.run("virsh -q net-list --name")).to.include("sriov-lab");
    await cli.stack.up({ ...cli.out, expectNoChanges: true });
  });

  it("pulumi destroy leaves the host as it was found: files byte for byte, VF counts, networks, no records", async () => {
    const r = await cli.stack.destroy(cli.out);
    expect(r.summary.resourceChanges).to.deep.equal({ delete: 9 });
    expect(await hostState(vm)).to.deep.equal(found);
  });
});

describe("pulumi preview with one host that answers and one that does not", function () {
  this.timeout(900000);
  let cli: CliProject | undefined;
  after(() => cli && fs.rmSync(cli.dir, { recursive: true, force: true }));

  it("finishes within the dead host's dial limits, says '(not checked)' for it, and previews the other normally", async () => {
    const vm = await sharedLab();
    const port = await closedPort();
    const [lab] = labHosts(vm, { pf: LAB_PFS[1], kernelArgs: false });
    const dead = { ...lab, name: "dead", connection: { ...lab.connection, port, dialErrorLimit: 2, perDialTimeout: 3 } };
    cli = await fleetProject(vm, "cli-dead", { [`${PROJECT}:hosts`]: [lab, dead] });
    const started = Date.now();
    const r = await cli.stack.preview({ ...cli.out, diff: true });
    const seconds = (Date.now() - started) / 1000;
    const lines = r.stdout.split("\n");
    const at = (name: string) => lines.findIndex((l) => l.endsWith(`::${name}]`));
    const changes = (name: string) => lines.slice(at(name), at(name) + 12).find((l) => /^\s+\[0\]: /.test(l)) ?? "";
    expect(changes("dead-0000-02-00.0")).to.include("(not checked)").and.include(`127.0.0.1:${port}`);
    expect(changes("lab-0000-02-00.0")).to.not.include("(not checked)");
    // Two dials of at most 3 s, plus the CLI's own start-up.
    expect(seconds, "preview seconds").to.be.below(60);
  });
});
