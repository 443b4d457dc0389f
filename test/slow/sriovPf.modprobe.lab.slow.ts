// SriovPf's modprobe persistence on the lab host, and two provider processes
// at once sharing its one options file. Kept out of `npm test` because each
// update-initramfs run (six in all) takes minutes under TCG; run it with
// `npm run test:slow`.
import "../fixtures/sriovPf/protobuf-dedupe";
import { expect } from "chai";
import { stopwatch } from "../support/timings";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { PF_MACS } from "../../lab/vm";
import { deploymentFailure, Props, ResourceSpec, secret, Stack } from "../support/engine";
import { closeAllConnections } from "../../provider/host";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

describe("SriovPf modprobe persistence on the lab host", function () {
  this.timeout(90 * 60_000);
  let vm: LabVm;
  let connection: any;
  const pf = [{ name: "", pci: "" }, { name: "", pci: "" }];
  const { timings, timed, print: printTimings } = stopwatch();
  const numVfs = async (i: number) => Number((await vm.run(`cat /sys/bus/pci/devices/${pf[i].pci}/sriov_numvfs`)).trim());

  before(async function () {
    vm = await sharedLab();
    connection = vm.connection;
    const links = JSON.parse(await vm.run("ip -j link show"));
    for (const i of [0, 1]) {
      pf[i].name = links.find((l: any) => l.address === PF_MACS[i]).ifname;
      pf[i].pci = (await vm.run(`basename "$(readlink -f /sys/class/net/${pf[i].name}/device)"`)).trim();
    }
  });
  after(async function () {
    printTimings("SriovPf modprobe");
    await closeAllConnections();
    if (vm?.running) await vm.exec(`rm -f /etc/modprobe.d/pulumi-sriov-igb.conf; for p in ${pf[0].pci} ${pf[1].pci}; do echo 0 > /sys/bus/pci/devices/$p/sriov_numvfs; done; true`);
  });

  it("persist modprobe: one igb options file naming its ports, the other port warned about, the initramfs regenerated; a different count refused; delete removes it", async () => {
    const conf = "/etc/modprobe.d/pulumi-sriov-igb.conf";
    const inInitramfs = async () => (await vm.exec(`lsinitramfs /boot/initrd.img-$(uname -r) | grep -qx etc/modprobe.d/pulumi-sriov-igb.conf`)).code === 0;
    const mp = new Stack();
    const res = (name: string, props: Props): ResourceSpec => ({ name, provider: providers.sriovPf, props: { connection: secret(connection), persist: "modprobe", ...props } });
    const r = await timed("modprobe create (with update-initramfs)", () => mp.up([res("pf0", { interface: pf[0].name, numVfs: 2 })]));
    const o = r.outputs.pf0;
    expect(o).to.deep.include({ persistPath: conf, numVfs: 2 });
    expect(o.warnings).to.deep.equal([`options igb max_vfs=2 also gives ${pf[1].pci} (${pf[1].name}) 2 VFs whenever igb loads`]);
    const text = await vm.run(`cat ${conf}`);
    expect(text).to.include(`# ports: ${pf[0].pci}\n`).and.include("options igb max_vfs=2\n");
    expect(await inInitramfs()).to.equal(true);
    const e = await deploymentFailure(mp.up([res("pf0", { interface: pf[0].name, numVfs: 2 }), res("pf1", { interface: pf[1].name, numVfs: 3 })]));
    expect(e.message).to.include(`already gives every igb port max_vfs=2 for ${pf[0].pci}; a module option cannot differ per port`);
    expect(await numVfs(1)).to.equal(0);
    await timed("modprobe destroy (with update-initramfs)", () => mp.destroy());
    expect((await vm.exec(`test -e ${conf}`)).code).to.not.equal(0);
    expect(await numVfs(0)).to.equal(0);
    expect(await inInitramfs()).to.equal(false);
  });

  it("two provider processes at once write the modprobe file two SriovPf share: both ports listed, then both removed", async () => {
    const conf = "/etc/modprobe.d/pulumi-sriov-igb.conf";
    const a = new Stack();
    const b = new Stack();
    const spec = (i: number): ResourceSpec[] => [
      { name: `mp${i}`, provider: providers.sriovPf, props: { connection: secret(connection), interface: pf[i].name, numVfs: 2, persist: "modprobe" } },
    ];
    await timed("two processes at once (two update-initramfs in turn)", () => Promise.all([a.up(spec(0)), b.up(spec(1))]));
    const text = await vm.run(`cat ${conf}`);
    const ports = /# ports: (.*)\n/.exec(text)?.[1].split(" ").sort();
    expect(ports, text).to.deep.equal([pf[0].pci, pf[1].pci]);
    expect(text).to.include("options igb max_vfs=2\n");
    expect([await numVfs(0), await numVfs(1)]).to.deep.equal([2, 2]);
    expect((await vm.run("find /etc/modprobe.d -maxdepth 1 -name '.*.tmp.*'")).trim(), "temp files left").to.equal("");
    // One after the other: each runs update-initramfs, which under TCG can outlast the host lock's wait.
    await timed("two processes destroy", async () => {
      await a.destroy();
      await b.destroy();
    });
    expect((await vm.exec(`test -e ${conf}`)).code).to.not.equal(0);
    expect([await numVfs(0), await numVfs(1)]).to.deep.equal([0, 0]);
  });
});
