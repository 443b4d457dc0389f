// SriovPf on the lab host (two emulated igb PFs, 7 VFs each), driven through
// the real dynamic-provider process as `pulumi up` / `refresh` / `destroy`
// drive it. The steps build on each other, like a stack's history: create by
// name, change by PCI address, find by MAC, refusals, drift, libvirt users,
// a reboot, and delete. The suite leaves the guest as it found it.
import "../fixtures/sriovPf/protobuf-dedupe";
import { expect } from "chai";
import { stopwatch } from "../support/timings";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { PF_MACS } from "../../lab/vm";
import { deploymentFailure, DeploymentResult, Props, ResourceSpec, secret, Stack } from "../support/engine";
import { closeAllConnections, hostFor } from "../../provider/host";
import { connectionSchema } from "../../provider/connection";
import { spec as pfSpec } from "../../provider/resources/sriovPf";
import { inputsSchema as pfInputsSchema } from "../../provider/resources/sriovPf/schema";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

describe("SriovPf on the lab host", function () {
  this.timeout(40 * 60_000);
  let vm: LabVm;
  let connection: any;
  const pf = [{ name: "", pci: "" }, { name: "", pci: "" }];
  const { timings, timed, print: printTimings } = stopwatch();
  const stack = new Stack();
  const declared: Record<string, Props> = {};
  const POOLS = ["sriovpf-lab-pool0", "sriovpf-lab-pool1"];

  const unit = (pci: string) => `/etc/systemd/system/pulumi-sriov-pf-${pci}.service`;
  const rule = (pci: string) => `/etc/udev/rules.d/70-pulumi-sriov-${pci}.rules`;
  const sys = (pci: string, attr: string) => `/sys/bus/pci/devices/${pci}/${attr}`;
  /** A udev rule an operator wrote by hand, the way the seeds' guides do. */
  const HAND_RULE = "/etc/udev/rules.d/70-sriov.rules";

  /** `pulumi up` of the program declaring `declared` (after applying `change`). */
  function up(change: Record<string, Props | undefined> = {}): Promise<DeploymentResult> {
    for (const [k, v] of Object.entries(change)) {
      if (v === undefined) delete declared[k];
      else declared[k] = v;
    }
    const resources: ResourceSpec[] = Object.entries(declared).map(([name, props]) => ({
      name,
      provider: name.startsWith("vf") ? providers.virtualFunction : providers.sriovPf,
      props: { connection: secret(connection), ...props },
    }));
    return stack.up(resources);
  }


  const cat = async (path: string) => (await vm.run(`cat ${path}`)).trim();
  const numVfs = async (i: number) => Number(await cat(sys(pf[i].pci, "sriov_numvfs")));
  /** Our files, their hashes, VF counts, autoprobe flags and MTUs: what "nothing changed" compares. */
  async function hostSnapshot(): Promise<string> {
    return vm.run(
      `for p in ${pf[0].pci} ${pf[1].pci}; do echo $p $(cat /sys/bus/pci/devices/$p/sriov_numvfs /sys/bus/pci/devices/$p/sriov_drivers_autoprobe /sys/bus/pci/devices/$p/net/*/mtu); done; ` +
        `ls -l --time-style=+%s.%N /etc/systemd/system/pulumi-sriov-pf-* /etc/udev/rules.d/70-pulumi-sriov-* 2>/dev/null; md5sum /etc/systemd/system/pulumi-sriov-pf-* /etc/udev/rules.d/70-pulumi-sriov-* 2>/dev/null; ` +
        `dmesg | grep -c 'pulumi-sriov: writing' || true`,
    );
  }
  const opLines = (r: DeploymentResult) => r.logs.map((l) => l.message).filter((m) => m.includes("sriovPf "));
  const ops = (r: DeploymentResult) => Object.fromEntries(r.steps.map((st) => [st.name, st.op]));
  const VF_MAC = "02:5a:00:00:01:01";
  const vfMac = async (i: number, index: number) =>
    JSON.parse(await vm.run(`ip -j link show dev ${pf[i].name}`))[0].vfinfo_list.find((v: any) => v.vf === index).address as string;

  /** Cleans up by hand whatever a failed run may have left. */
  async function cleanByHand() {
    const nets = POOLS.map((n) => `virsh -c qemu:///system net-destroy ${n}; virsh -c qemu:///system net-undefine ${n};`).join(" ");
    const files = pf.flatMap((p) => [unit(p.pci), rule(p.pci), `/var/lib/pulumi-sriov/backup${unit(p.pci)}`, `/var/lib/pulumi-sriov/backup${rule(p.pci)}`]).join(" ");
    await vm.exec(
      `${nets} for p in ${pf[0].pci} ${pf[1].pci}; do systemctl disable --now pulumi-sriov-pf-$p.service; echo 0 > /sys/bus/pci/devices/$p/sriov_numvfs; echo 1 > /sys/bus/pci/devices/$p/sriov_drivers_autoprobe; done; ` +
        `systemctl disable --now 'pulumi-sriov-vf-${pf[1].pci}-*.service'; rm -f /etc/systemd/system/pulumi-sriov-vf-${pf[1].pci}-*.service; ` +
        `rm -f ${files} ${HAND_RULE} /var/lib/pulumi-sriov/backup${HAND_RULE} /etc/modprobe.d/pulumi-sriov-igb.conf /var/lib/pulumi-sriov/found/*; systemctl daemon-reload; udevadm control --reload; ` +
        `for n in ${pf[0].name} ${pf[1].name}; do ip link set dev $n mtu 1500; done; true`,
    );
  }

  before(async function () {
    vm = await timed("boot (shared lab)", () => sharedLab());
    connection = vm.connection;
    const links = JSON.parse(await vm.run("ip -j link show"));
    for (const i of [0, 1]) {
      pf[i].name = links.find((l: any) => l.address === PF_MACS[i]).ifname;
      pf[i].pci = (await vm.run(`basename "$(readlink -f /sys/class/net/${pf[i].name}/device)"`)).trim();
    }
    await cleanByHand();
  });

  after(async function () {
    printTimings("SriovPf");
    await closeAllConnections();
    if (vm?.running) await cleanByHand();
  });

  it("creates 4 VFs on PF 0 found by interface name, persisted by a systemd unit", async () => {
    const r = await timed("create 4 VFs by name", () => up({ pf0: { interface: pf[0].name, numVfs: 4 } }));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["create"]);
    const o = r.outputs.pf0;
    expect(o).to.deep.include({
      interface: pf[0].name,
      pciAddress: pf[0].pci,
      driver: "igb",
      totalVfs: 7,
      numVfs: 4,
      persistPath: unit(pf[0].pci),
    });
    expect(o.numaNode).to.be.a("number");
    expect(o.vfs).to.have.length(4);
    for (const [i, v] of o.vfs.entries()) {
      const vpci = (await vm.run(`basename "$(readlink -f ${sys(pf[0].pci, `virtfn${i}`)})"`)).trim();
      const group = Number((await vm.run(`basename "$(readlink -f /sys/bus/pci/devices/${vpci}/iommu_group)"`)).trim());
      expect(v).to.deep.include({ index: i, pciAddress: vpci, iommuGroup: group, driver: "igbvf" });
      expect(v.netdev).to.match(/^\S+$/);
      expect(v.mac).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(await cat(`/sys/class/net/${v.netdev}/address`)).to.equal(v.mac);
    }
    expect(await numVfs(0)).to.equal(4);
    expect(await vm.run(`systemctl is-enabled pulumi-sriov-pf-${pf[0].pci}.service; systemctl is-active pulumi-sriov-pf-${pf[0].pci}.service`)).to.equal(
      "enabled\nactive\n",
    );
    expect(await vm.run(`cat ${unit(pf[0].pci)}`)).to.include(`echo 4 > $$d/sriov_numvfs`);
  });

  it("a second up changes nothing, and a create on a host already configured runs no writes", async () => {
    const before = await hostSnapshot();
    const r = await timed("no-op up", () => up());
    expect(r.steps.map((s) => s.op)).to.deep.equal(["same"]);
    expect(r.calls.create + r.calls.update).to.equal(0);
    // A fresh stack (state lost) creating the same thing: the provider looks, and finds nothing to do.
    const fresh = await timed("create on a configured host", () =>
      new Stack().up([{ name: "pf0", provider: providers.sriovPf, props: { connection: secret(connection), interface: pf[0].name, numVfs: 4 } }]),
    );
    expect(fresh.steps.map((s) => s.op)).to.deep.equal(["create"]);
    expect(opLines(fresh)).to.deep.equal([]);
    expect(fresh.outputs.pf0.numVfs).to.equal(4);
    expect(await hostSnapshot()).to.equal(before);
  });

  it("changes to 2 VFs (autoprobe off) naming the PF by PCI address: 0 written first, unit rewritten", async () => {
    const r = await timed("change to 2 by PCI address", () => up({ pf0: { pciAddress: pf[0].pci, numVfs: 2, autoprobe: false } }));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["update"]);
    expect(r.steps[0].diff!.replaces).to.deep.equal([]);
    const ops = opLines(r);
    const removeAt = ops.findIndex((l) => l.includes("remove the 4 VFs"));
    const createAt = ops.findIndex((l) => l.includes("create 2 VFs"));
    expect(removeAt, ops.join("\n")).to.be.greaterThan(-1);
    expect(createAt).to.be.greaterThan(removeAt);
    const o = r.outputs.pf0;
    expect(o).to.deep.include({ interface: pf[0].name, pciAddress: pf[0].pci, numVfs: 2 });
    // Without autoprobe the VFs get no driver, hence no interface.
    expect(o.vfs.map((v: any) => [v.driver, v.netdev])).to.deep.equal([
      ["", ""],
      ["", ""],
    ]);
    expect(await numVfs(0)).to.equal(2);
    expect(await cat(sys(pf[0].pci, "sriov_drivers_autoprobe"))).to.equal("0");
    const u = await vm.run(`cat ${unit(pf[0].pci)}`);
    expect(u).to.include("echo 2 > $$d/sriov_numvfs").and.include("echo 0 > $$d/sriov_drivers_autoprobe");
  });

  it("a create the kernel refuses before anything changed reports the write and keeps no record of the PF", async () => {
    // sriov_numvfs made read-only by a bind mount: the VF write fails as a driver's refusal would.
    const f = sys(pf[1].pci, "sriov_numvfs");
    await vm.run(`echo 0 > /run/numvfs-ro; mount --bind /run/numvfs-ro ${f}; mount -o remount,ro,bind ${f}`);
    try {
      const before = await hostSnapshot();
      const e = await timed("refused VF write", () => deploymentFailure(up({ pf1: { macAddress: PF_MACS[1], numVfs: 3, persist: "udev" } })));
      // Nothing was applied, so the failure is the kernel's refusal alone (no applied/not-applied lists).
      expect(e.message).to.include(pf[1].pci).and.include("Read-only file system").and.not.include("applied on");
      // (The last line counts the write marks in the kernel log, which the attempt adds to.)
      const withoutMarks = (snap: string) => snap.trim().split("\n").slice(0, -1);
      expect(withoutMarks(await hostSnapshot())).to.deep.equal(withoutMarks(before));
      expect((await vm.exec(`ls /var/lib/pulumi-sriov/found/sriov-pf-${pf[1].pci}.json`)).code, "record of the PF as found").to.not.equal(0);
    } finally {
      await vm.run(`umount ${f}`);
      delete declared.pf1;
    }
  });

  it("finds PF 1 by MAC and gives it 3 VFs and MTU 9000, persisted by a udev rule", async () => {
    const r = await timed("create 3 VFs by MAC (udev)", () => up({ pf1: { macAddress: PF_MACS[1].toUpperCase(), numVfs: 3, persist: "udev", mtu: 9000 } }));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["same", "create"]);
    expect(r.outputs.pf1).to.deep.include({ interface: pf[1].name, pciAddress: pf[1].pci, numVfs: 3, persistPath: rule(pf[1].pci) });
    expect(r.outputs.pf1.vfs.map((v: any) => v.driver)).to.deep.equal(["igbvf", "igbvf", "igbvf"]);
    expect(await numVfs(1)).to.equal(3);
    expect(await cat(`/sys/class/net/${pf[1].name}/mtu`)).to.equal("9000");
    expect(await vm.run(`cat ${rule(pf[1].pci)}`)).to.include(
      `ACTION=="add", SUBSYSTEM=="net", KERNELS=="${pf[1].pci}", ATTR{device/sriov_drivers_autoprobe}="1", ATTR{device/sriov_numvfs}="3", ATTR{mtu}="9000"`,
    );
    expect((await vm.exec(`test -e ${unit(pf[1].pci)}`)).code).to.not.equal(0);
  });

  it("re-creating VFs re-applies the VirtualFunction settings of the PF's VFs (their units)", async () => {
    const v = await timed("VirtualFunction create", () => up({ vf1: { pf: pf[1].name, index: 1, mac: VF_MAC } }));
    expect(ops(v)).to.deep.equal({ pf0: "same", pf1: "same", vf1: "create" });
    expect(await vfMac(1, 1)).to.equal(VF_MAC);
    // A unit that is not running (stopped, or failed while its VF was missing) runs too.
    await vm.run(`systemctl stop pulumi-sriov-vf-${pf[1].pci}-1.service`);
    const r = await timed("change to 4 VFs with a VF unit", () => up({ pf1: { ...declared.pf1, numVfs: 4 } }));
    expect(ops(r)).to.deep.equal({ pf0: "same", pf1: "update", vf1: "same" });
    expect(opLines(r).some((l) => l.includes(`re-apply the settings of ${pf[1].pci}'s VFs (pulumi-sriov-vf-${pf[1].pci}-1.service)`)), opLines(r).join("\n")).to.equal(true);
    expect(await numVfs(1)).to.equal(4);
    // The kernel gave the new VF 1 no address; its unit put the declared one back.
    expect(await vfMac(1, 1)).to.equal(VF_MAC);
  });

  it("refuses 8 VFs on a 7-VF device with the numbers, and changes nothing", async () => {
    const before = await hostSnapshot();
    const e = await timed("refuse 8 VFs", () => deploymentFailure(up({ pf1: { ...declared.pf1, numVfs: 8 } })));
    declared.pf1.numVfs = 4;
    expect(e.message).to.include("numVfs: 8 VFs requested").and.include(`supports at most 7 (sriov_totalvfs 7)`).and.include(pf[1].pci);
    expect(await hostSnapshot()).to.equal(before);
  });

  it("refresh finds drift (a VF count changed by hand, a rule removed), and the next up repairs it", async () => {
    await vm.run(`echo 0 > ${sys(pf[0].pci, "sriov_numvfs")}; rm ${rule(pf[1].pci)}`);
    const rr = await timed("refresh with drift", () => stack.refresh());
    expect(ops(rr)).to.deep.include({ pf0: "refresh", pf1: "refresh" });
    expect(rr.outputs.pf0.numVfs).to.equal(0);
    expect(stack.state.get("pf0")!.inputs.numVfs).to.equal(0);
    expect(stack.state.get("pf1")!.inputs.persist).to.equal("none");
    const r = await timed("repair drift", () => up());
    expect(ops(r)).to.deep.include({ pf0: "update", pf1: "update" });
    expect(await numVfs(0)).to.equal(2);
    expect(await numVfs(1)).to.equal(4);
    expect(await vm.run(`cat ${rule(pf[1].pci)}`)).to.include(`ATTR{device/sriov_numvfs}="4"`);
    expect(opLines(r).filter((l) => l.includes(pf[1].pci)).join("\n")).to.not.include("VFs of"); // PF 1's VFs were left alone
    const again = await up();
    expect(ops(again)).to.deep.equal({ pf0: "same", pf1: "same", vf1: "same" });
  });

  it("refuses to re-create VFs an active pool network uses, naming it; nothing changes", async () => {
    for (const i of [0, 1]) {
      const xml = `<network><name>${POOLS[i]}</name><forward mode='hostdev' managed='yes'><pf dev='${pf[i].name}'/></forward></network>`;
      await vm.run(
        `printf '%s' "${xml}" > /tmp/${POOLS[i]}.xml && virsh -c qemu:///system net-define /tmp/${POOLS[i]}.xml && virsh -c qemu:///system net-autostart ${POOLS[i]} && virsh -c qemu:///system net-start ${POOLS[i]}`,
      );
    }
    const before = await hostSnapshot();
    const e = await timed("refuse: pool network in use", () => deploymentFailure(up({ pf0: { ...declared.pf0, numVfs: 3 } })));
    declared.pf0.numVfs = 2;
    expect(e.message)
      .to.include(`changing PF ${pf[0].pci} (${pf[0].name}, igb)`)
      .and.include(`from 2 to 3 VFs removes its current VFs, and they are in use by active pool networks ${POOLS[0]} (PF ${pf[0].name}`)
      .and.include("force: true");
    expect(await hostSnapshot()).to.equal(before);
  });

  it("after a reboot the VFs exist before libvirtd starts (systemd on PF 0, udev on PF 1): both pool networks autostarted", async () => {
    await timed("reboot", () => vm.reboot());
    expect(await numVfs(0)).to.equal(2);
    expect(await numVfs(1)).to.equal(4);
    expect(await cat(sys(pf[0].pci, "sriov_drivers_autoprobe"))).to.equal("0");
    expect(await cat(`/sys/class/net/${pf[1].name}/mtu`)).to.equal("9000");
    // libvirt autostarts a hostdev pool only if the PF has VFs at that moment.
    for (const n of POOLS) expect(await vm.run(`virsh -c qemu:///system net-info ${n}`)).to.match(/^Active:\s+yes$/m);
    const mono = async (u: string, p: string) => Number((await vm.run(`systemctl show -P ${p} ${u}`)).trim());
    const unitUp = await mono(`pulumi-sriov-pf-${pf[0].pci}.service`, "ActiveEnterTimestampMonotonic");
    const libvirtd = await mono("libvirtd.service", "ExecMainStartTimestampMonotonic");
    expect(unitUp).to.be.greaterThan(0);
    expect(unitUp, "the PF unit finished before libvirtd started").to.be.lessThan(libvirtd);
    timings["unit active → libvirtd start (ms)"] = Math.round((libvirtd - unitUp) / 1000);
    // udev: the kernel logs each VF device as it appears; compare with libvirtd's start.
    const vf0 = (await vm.run(`basename "$(readlink -f ${sys(pf[1].pci, "virtfn0")})"`)).trim();
    const line = (await vm.run(`dmesg | grep -m1 -F 'pci ${vf0}: [8086:10ca]'`)).trim();
    const t = Number(/^\[\s*([\d.]+)\]/.exec(line)![1]) * 1e6;
    expect(t, line).to.be.lessThan(libvirtd);
    timings["udev VF created → libvirtd start (ms)"] = Math.round((libvirtd - t) / 1000);
    // The state still matches: nothing to do.
    const r = await stack.refresh();
    expect(r.outputs.pf0.numVfs).to.equal(2);
    expect(ops(await up())).to.deep.equal({ pf0: "same", pf1: "same", vf1: "same" });
    // VirtualFunction's unit, ordered after the PF's, set VF 1's address again at boot.
    expect(await vfMac(1, 1)).to.equal(VF_MAC);
  });

  it("delete refuses while the pool networks are active, then leaves no files, 0 VFs and autoprobe restored", async () => {
    const e = await timed("refuse delete: pool active", () => deploymentFailure(stack.destroy()));
    expect(e.message).to.include(`from 4 to 0 VFs removes its current VFs, and they are in use by active pool networks ${POOLS[1]} (PF ${pf[1].name}`);
    expect(await numVfs(1)).to.equal(4);
    for (const n of POOLS) await vm.run(`virsh -c qemu:///system net-destroy ${n} && virsh -c qemu:///system net-undefine ${n}`);
    await timed("destroy", () => stack.destroy());
    expect(stack.state.size).to.equal(0);
    for (const i of [0, 1]) {
      expect(await numVfs(i)).to.equal(0);
      expect(await cat(sys(pf[i].pci, "sriov_drivers_autoprobe"))).to.equal("1");
      expect(await cat(`/sys/class/net/${pf[i].name}/mtu`)).to.equal("1500");
    }
    const left = await vm.run(
      `ls /etc/systemd/system /etc/udev/rules.d /etc/modprobe.d /etc/systemd/system/multi-user.target.wants; find /var/lib/pulumi-sriov -type f 2>/dev/null; true`,
    );
    expect(left).to.not.match(/pulumi-sriov-pf-|70-pulumi-sriov-|pulumi-sriov-igb/);
    expect((await vm.run(`systemctl is-enabled pulumi-sriov-pf-${pf[0].pci}.service || true`)).trim()).to.not.equal("enabled");
  });

  it("a hand-made udev rule for the PF: refused beside a unit, replaced when listed in takeOver (kept in the backup), put back byte for byte by delete", async () => {
    const text = `# VFs for ${pf[0].name}, set up by hand\nACTION=="add", SUBSYSTEM=="net", KERNEL=="${pf[0].name}", ATTR{device/sriov_numvfs}="2"\n`;
    await vm.run(`printf '%s' '${text.replace(/'/g, "'\\''")}' > ${HAND_RULE} && chmod 640 ${HAND_RULE}`);
    const asMade = await vm.run(`stat -c %a ${HAND_RULE}; base64 -w0 ${HAND_RULE}`);
    const own = new Stack();
    const props = { interface: pf[0].name, numVfs: 2, persist: "systemd" };
    const upOwn = (p: Props) => own.up([{ name: "pf0", provider: providers.sriovPf, props: { connection: secret(connection), ...p } }]);

    const e = await timed("refuse a unit beside a hand-made rule", () => deploymentFailure(upOwn(props)));
    expect(e.message).to.include(`takeOver: ${HAND_RULE} on `).and.include(`also sets VFs for PF ${pf[0].pci}`).and.include('list it in takeOver').and.include('persist "none"');
    expect(await vm.run(`stat -c %a ${HAND_RULE}; base64 -w0 ${HAND_RULE}`)).to.equal(asMade);
    expect(await vm.run(`ls ${unit(pf[0].pci)} 2>/dev/null || true`)).to.equal("");
    expect(await numVfs(0)).to.equal(0);

    const taking = { ...props, takeOver: [HAND_RULE] };
    const host = hostFor(connectionSchema().parse(connection));
    const preview = await pfSpec.plan!({ host, connection: connectionSchema().parse(connection) } as any, pfInputsSchema().parse(taking));
    expect(preview).to.include(`replace udev rule ${HAND_RULE} with pulumi-sriov's systemd unit`);

    const r = await timed("take over the hand-made rule", () => upOwn(taking));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["create"]);
    expect(opLines(r).some((l) => l.includes(`replace udev rule ${HAND_RULE} with pulumi-sriov's systemd unit`))).to.equal(true);
    expect(await vm.run(`ls ${HAND_RULE} 2>/dev/null || true`)).to.equal("");
    expect(await vm.run(`stat -c %a /var/lib/pulumi-sriov/backup${HAND_RULE}; base64 -w0 /var/lib/pulumi-sriov/backup${HAND_RULE}`)).to.equal(asMade);
    expect(await numVfs(0)).to.equal(2);
    expect(await vm.run(`systemctl is-enabled pulumi-sriov-pf-${pf[0].pci}.service`)).to.equal("enabled\n");

    const again = await timed("no-op up after the take-over", () => upOwn(taking));
    expect(again.steps.map((s) => s.op)).to.deep.equal(["same"]);

    await timed("destroy puts the rule back", () => own.destroy());
    expect(await vm.run(`stat -c %a ${HAND_RULE}; base64 -w0 ${HAND_RULE}`)).to.equal(asMade);
    expect(await vm.run(`ls ${unit(pf[0].pci)} /var/lib/pulumi-sriov/backup${HAND_RULE} /var/lib/pulumi-sriov/found/sriov-pf-${pf[0].pci}-taken-over.json 2>/dev/null || true`)).to.equal("");
    expect(await numVfs(0)).to.equal(0);
    await vm.run(`rm -f ${HAND_RULE}`);
  });
});
