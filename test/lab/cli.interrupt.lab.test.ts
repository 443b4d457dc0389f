// The Pulumi CLI cut off in the middle of an update (SIGINT, as Ctrl-C sends,
// and kill -9 of the CLI and the provider it started), and `pulumi up
// --target` of one host of a two-host fleet, on the lab host.
import { expect } from "chai";
import * as fs from "fs";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { fleetProject, hostState, HostState, LAB_PFS, labHosts, PROJECT } from "../support/cliLab";
import type { CliProject } from "../../lab/pulumiCli";

/** Our child processes named `comm`, and theirs (the CLI's plugins). */
function childProcesses(parent: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const e of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) out.push({ pid: Number(e), comm });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** kill -9 of the CLI this process started and of every process the CLI started. */
function killCli(): number[] {
  const clis = childProcesses(process.pid).filter((p) => p.comm === "pulumi");
  expect(clis, "one pulumi process running").to.have.length(1);
  const plugins = childProcesses(clis[0].pid);
  const pids = [clis[0].pid, ...plugins.map((p) => p.pid)];
  for (const pid of pids) process.kill(pid, "SIGKILL");
  return pids;
}

/** Runs `pulumi up` and, once the CLI reports `name` creating, interrupts it `afterMs` later. */
async function interruptedUp(cli: CliProject, name: string, afterMs: number, how: "SIGINT" | "SIGKILL"): Promise<{ error: Error; output: string }> {
  const abort = new AbortController();
  let output = "";
  let armed = false;
  const up = cli.stack.up({
    color: "never",
    signal: abort.signal,
    onOutput: (s) => {
      output += s;
      if (!armed && new RegExp(` ${name.replace(/\./g, "\\.")} creating`).test(output)) {
        armed = true;
        setTimeout(() => (how === "SIGINT" ? abort.abort() : killCli()), afterMs);
      }
    },
  });
  const error = await up.then(
    () => undefined,
    (e: Error) => e,
  );
  expect(armed, `the CLI reported ${name} creating:\n${output}`).to.equal(true);
  expect(error, "the interrupted up fails").to.be.instanceOf(Error);
  return { error: error!, output };
}

/** No temp file left, GRUB's config parses, one unit per PF, the kernel arguments once. */
async function expectNothingHalfWritten(vm: LabVm, s: HostState): Promise<void> {
  expect(s.temps, "temp files left").to.deep.equal([]);
  const units = (await vm.run("ls /etc/systemd/system | grep -c '^pulumi-sriov-pf-' ; true")).trim();
  expect(Number(units)).to.be.at.most(1);
  const dropIn = (await vm.run("cat /etc/default/grub.d/zz-pulumi-sriov.cfg 2>/dev/null; true")).trim();
  expect((dropIn.match(/iommu=pt/g) ?? []).length, dropIn).to.be.at.most(1);
}

/** refresh, up and a no-op up converge with nothing half-written; destroy then leaves the host as found. */
async function convergeThenDestroy(vm: LabVm, cli: CliProject, found: HostState, clearPendingCreates: boolean): Promise<void> {
  const refresh = await cli.stack.refresh({ ...cli.out, clearPendingCreates });
  expect(refresh.summary.result).to.equal("succeeded");
  const up = await cli.stack.up(cli.out);
  expect(up.summary.result).to.equal("succeeded");
  await cli.stack.up({ ...cli.out, expectNoChanges: true });
  await expectNothingHalfWritten(vm, await hostState(vm));
  expect((await vm.run(`cat /sys/bus/pci/devices/${LAB_PFS[0]}/sriov_numvfs`)).trim()).to.equal("4");
  await cli.stack.destroy(cli.out);
  expect(await hostState(vm)).to.deep.equal(found);
}

describe("pulumi up interrupted on the lab host, then refresh and up", function () {
  this.timeout(2400000);
  let vm: LabVm;
  let found: HostState;
  const projects: CliProject[] = [];

  before(async function () {
    this.timeout(900000);
    vm = await sharedLab();
    found = await hostState(vm);
  });

  after(async function () {
    this.timeout(900000);
    for (const cli of projects) {
      const state = await cli.stack.exportStack().catch(() => undefined);
      if ((state?.deployment.resources ?? []).length) {
        await cli.cli(["cancel", "--yes"]);
        await cli.stack.refresh({ ...cli.out, clearPendingCreates: true }).catch(() => undefined);
        await cli.stack.destroy(cli.out).catch(() => undefined);
      }
      fs.rmSync(cli.dir, { recursive: true, force: true });
    }
  });

  it("SIGINT during the kernel-arguments create: the CLI lets it finish, stops, and the next up completes the rest", async () => {
    const [host] = labHosts(vm);
    host.kernelArgs = { ...host.kernelArgs, reboot: "never" };
    const cli = await fleetProject(vm, "cli-sigint", { [`${PROJECT}:hosts`]: [host] });
    projects.push(cli);
    const { error, output } = await interruptedUp(cli, "lab-kernel-args", 500, "SIGINT");
    expect(output + error.message).to.match(/cancel/i);
    const cut = await hostState(vm);
    await expectNothingHalfWritten(vm, cut);

    await convergeThenDestroy(vm, cli, found, false);
  });

  it("kill -9 of the CLI during the PF's create: refresh clears the pending create, up converges, destroy restores the host", async () => {
    const [host] = labHosts(vm, { kernelArgs: false });
    const cli = await fleetProject(vm, "cli-kill", { [`${PROJECT}:hosts`]: [host] });
    projects.push(cli);
    await interruptedUp(cli, "lab-0000-01-00.0", 2500, "SIGKILL");
    await expectNothingHalfWritten(vm, await hostState(vm));
    const state = JSON.parse(await cli.cliOk(["stack", "export"]));
    const pending = (state.deployment.pending_operations ?? []).map((o: any) => `${o.type} ${o.resource.urn.split("::").pop()}`);
    expect(pending).to.deep.equal(["creating lab-0000-01-00.0"]);

    // The CLI asks for exactly this: the stack lock the killed CLI held, then the pending create.
    const blocked = await cli.stack.up(cli.out).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(blocked, "up right after the kill fails").to.be.instanceOf(Error);
    expect(blocked!.message).to.match(/locked|pending|interrupted/i);
    console.log(`      the CLI said: ${blocked!.message.split("\n").find((l) => /locked|pending|interrupted/i.test(l))?.trim()}`);
    if (/locked/i.test(blocked!.message)) expect((await cli.cli(["cancel", "--yes"])).code).to.equal(0);
    // The create cut off half-way recorded what it found, so destroy still puts the original back.
    await convergeThenDestroy(vm, cli, found, true);
  });
});

describe("pulumi up --target of one host of a two-host fleet", function () {
  this.timeout(1800000);
  let cli: CliProject | undefined;

  after(async function () {
    this.timeout(600000);
    if (!cli) return;
    await cli.stack.destroy(cli.out).catch(() => undefined);
    fs.rmSync(cli.dir, { recursive: true, force: true });
  });

  it("touches only the targeted host; the untargeted one is neither changed on the host nor in state", async () => {
    const vm = await sharedLab();
    const found = await hostState(vm);
    // Two "hosts" on the one lab guest: one PF each.
    const [a] = labHosts(vm, { name: "hva", pf: LAB_PFS[0], kernelArgs: false });
    const [b] = labHosts(vm, { name: "hvb", pf: LAB_PFS[1], kernelArgs: false });
    cli = await fleetProject(vm, "cli-target", { [`${PROJECT}:hosts`]: [a, b] });
    const urn = (type: string, name: string) => `urn:pulumi:lab::${PROJECT}::${type}::${name}`;
    const targets = [urn("sriov:index:SriovHost", "hva"), urn("sriov:index:SriovHost$pulumi-nodejs:dynamic/sriov:SriovPf", "hva-0000-01-00.0")];
    const up = await cli.stack.up({ ...cli.out, target: targets });
    expect(up.summary.result).to.equal("succeeded");
    const numVfs = (await hostState(vm)).numVfs;
    expect(numVfs).to.equal(`${LAB_PFS[0]}=2\n${LAB_PFS[1]}=0`);
    const state = JSON.parse(await cli.cliOk(["stack", "export"]));
    const names = state.deployment.resources.map((r: any) => r.urn.split("::").pop());
    expect(names).to.include("hva-0000-01-00.0");
    expect(names.filter((n: string) => n.startsWith("hvb"))).to.deep.equal([]);

    // The whole fleet then creates the other host only.
    const all = await cli.stack.up(cli.out);
    expect(all.summary.resourceChanges).to.include({ create: 2 });
    expect((await hostState(vm)).numVfs).to.equal(`${LAB_PFS[0]}=2\n${LAB_PFS[1]}=2`);
    await cli.stack.destroy(cli.out);
    cli.dir && expect(await hostState(vm)).to.deep.equal(found);
  });
});
