// VfPoolNetwork and DomainVfInterface on the lab host, driven through the
// real dynamic-provider process as `pulumi up` drives it: SriovPf makes 4
// VFs on the second igb PF (persisted by its systemd unit, ordered before
// libvirtd), a pool network hands one to a tiny nested guest (direct kernel
// boot under TCG; it need not finish booting, it only has to run so libvirt
// assigns the VF), and everything is taken apart again.
import { expect } from "chai";
import { stopwatch } from "../support/timings";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { PF_MACS } from "../../lab/vm";
import { DeploymentError, ResourceSpec, secret, Stack } from "../support/engine";
import { closeAllConnections, hostFor } from "../../provider/host";
import { connectionSchema } from "../../provider/connection";
import { buildXml, el } from "../../provider/libvirt/xml";
import { parseNetwork } from "../../provider/libvirt/network";
import { parseDomain } from "../../provider/libvirt/domain";
import { readFacts as readPoolFacts } from "../../provider/resources/vfPoolNetwork/facts";
import { planPool } from "../../provider/resources/vfPoolNetwork/plan";
import { inputsSchema } from "../../provider/resources/vfPoolNetwork/schema";
import { spec as poolSpec } from "../../provider/resources/vfPoolNetwork";


// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const NUM_VFS = 4;
const NET = "vfpool-lab";
const DOMAIN = "tiny";
const MAC = "52:54:00:5b:00:01";
const MAC2 = "52:54:00:5b:00:02";
const VLAN = 42;
const IMAGES = "/var/lib/libvirt/images";

/** The nested guest: direct kernel boot, no disk, q35 with free root ports for hotplug. */
function tinyDomainXml(): string {
  const rootPort = (index: number) => el("controller", { type: "pci", index: String(index), model: "pcie-root-port" });
  return buildXml(
    el("domain", { type: "qemu", "xmlns:qemu": "http://libvirt.org/schemas/domain/qemu/1.0" }, [
      el("name", {}, [], DOMAIN),
      el("memory", { unit: "MiB" }, [], "192"),
      el("vcpu", {}, [], "1"),
      el("os", {}, [
        el("type", { arch: "x86_64", machine: "q35" }, [], "hvm"),
        el("kernel", {}, [], `${IMAGES}/tiny-vmlinuz`),
        el("initrd", {}, [], `${IMAGES}/tiny-initrd`),
        // rdinit=/bin/sh: the initramfs shell waits on the serial console forever, so the guest keeps running.
        el("cmdline", {}, [], "console=ttyS0 rdinit=/bin/sh"),
      ]),
      el("features", {}, [el("acpi")]),
      el("on_reboot", {}, [], "destroy"),
      el("devices", {}, [
        el("controller", { type: "pci", index: "0", model: "pcie-root" }),
        rootPort(1),
        rootPort(2),
        rootPort(3),
        rootPort(4),
        el("controller", { type: "usb", model: "none" }),
        el("serial", { type: "file" }, [el("source", { path: `/var/log/libvirt/qemu/${DOMAIN}-serial.log` })]),
        el("memballoon", { model: "none" }),
      ]),
      // Native PCIe hotplug on the root ports: a slot the guest never powered
      // on is unplugged at once, so detach does not wait for a guest that is
      // still booting under nested emulation.
      el("qemu:commandline", {}, [el("qemu:arg", { value: "-global" }), el("qemu:arg", { value: "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off" })]),
    ]),
  );
}

interface HostVf {
  index: number;
  pciAddress: string;
  mac: string;
  vlan: number;
  driver: string;
}

describe("VfPoolNetwork and DomainVfInterface on the lab host", function () {
  this.timeout(40 * 60_000);
  let vm: LabVm;
  let connection: any;
  let pf = "";
  let pfPci = "";
  const { timings, timed, print: printTimings } = stopwatch();
  const pfStack = new Stack();
  const netStack = new Stack();
  const ifStack = new Stack();

  const virsh = (args: string) => vm.run(`virsh -c qemu:///system ${args}`);

  /** The PF's VFs as the host reports them, independently of the provider's parsers. */
  async function hostVfs(): Promise<HostVf[]> {
    const link = JSON.parse(await vm.run(`ip -j -d link show dev ${pf}`))[0];
    const out: HostVf[] = [];
    for (const e of link.vfinfo_list ?? []) {
      const sys = (
        await vm.run(`v=$(readlink -f /sys/class/net/${pf}/device/virtfn${e.vf}); basename $v; if [ -e $v/driver ]; then basename "$(readlink -f $v/driver)"; else echo; fi`)
      ).split("\n");
      out.push({ index: e.vf, pciAddress: sys[0], mac: e.address, vlan: e.vlan_list?.[0]?.vlan ?? 0, driver: sys[1] });
    }
    return out;
  }

  const pfResource = (): ResourceSpec => ({
    name: "pf",
    provider: providers.sriovPf,
    props: { connection: secret(connection), macAddress: PF_MACS[1], numVfs: NUM_VFS, persist: "systemd" },
  });
  const netResource = (props: Record<string, unknown> = {}): ResourceSpec => ({
    name: "net",
    provider: providers.vfPoolNetwork,
    props: { connection: secret(connection), name: NET, pf, ...props },
  });
  const ifResource = (name: string, props: Record<string, unknown>): ResourceSpec => ({
    name,
    provider: providers.domainVfInterface,
    props: { connection: secret(connection), domain: DOMAIN, ...props },
  });

  async function startTiny(): Promise<void> {
    await virsh(`start ${DOMAIN}`);
    expect((await virsh(`domstate ${DOMAIN}`)).trim()).to.equal("running");
  }

  before(async function () {
    // Waiting for a free lab slot on a busy machine is not this suite's time.
    this.timeout(180 * 60_000);
    vm = await timed("boot", () => sharedLab());
    connection = vm.connection;
    await vm.run("systemctl is-active libvirtd || systemctl start libvirtd");
    // The nested guest boots the lab's own kernel; copies keep /boot's ownership untouched by libvirt's relabelling.
    await vm.run(`mkdir -p ${IMAGES}; cp -L /vmlinuz ${IMAGES}/tiny-vmlinuz; cp -L /initrd.img ${IMAGES}/tiny-initrd`);
    await vm.run(`virsh -c qemu:///system define /dev/stdin`, { input: tinyDomainXml() });
    const r = await timed("sriovPf-up", () => pfStack.up([pfResource()]));
    pf = r.outputs.pf.interface;
    pfPci = r.outputs.pf.pciAddress;
    expect(r.outputs.pf.numVfs).to.equal(NUM_VFS);
  });

  after(async function () {
    printTimings("VfPoolNetwork");
    if (vm?.running) {
      await vm.exec(
        `virsh -c qemu:///system destroy ${DOMAIN}; virsh -c qemu:///system undefine ${DOMAIN}; ` +
          `for n in ${NET} ${NET}-one; do virsh -c qemu:///system net-destroy $n; virsh -c qemu:///system net-undefine $n; done; true`,
      );
      try {
        await ifStack.destroy();
        await netStack.destroy();
        await pfStack.destroy();
      } catch (e) {
        process.stderr.write(`cleanup: ${(e as Error).message}\n`);
      }
      await vm.exec(`rm -f ${IMAGES}/tiny-vmlinuz ${IMAGES}/tiny-initrd /var/log/libvirt/qemu/${DOMAIN}-serial.log`);
    }
    await closeAllConnections();
  });

  it("creates the pool network on the PF: defined, active, autostarted, holding the PF's 4 VFs", async () => {
    const r = await timed("net-create", () => netStack.up([netResource()]));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["create"]);
    const o = r.outputs.net;
    expect(o).to.deep.include({ name: NET, active: true, autostart: true, connections: 0 });
    const vfs = await hostVfs();
    expect([...o.vfAddresses].sort()).to.deep.equal(vfs.map((v) => v.pciAddress).sort());
    expect(o.vfAddresses).to.have.length(NUM_VFS);
    expect(o.uuid).to.match(/^[0-9a-f-]{36}$/);
    // libvirt's own view, read with virsh.
    const info = await virsh(`net-info ${NET}`);
    expect(info).to.match(/Active:\s+yes/).and.match(/Persistent:\s+yes/).and.match(/Autostart:\s+yes/);
    const live = parseNetwork(await virsh(`net-dumpxml ${NET}`));
    expect(live.forward).to.deep.include({ mode: "hostdev", managed: true, pfs: [pf] });
    expect(live.uuid).to.equal(o.uuid);
  });

  it("is idempotent: a second up is 'same', and create's plan on the configured host has no steps", async () => {
    const r = await timed("net-noop-up", () => netStack.up([netResource()]));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["same"]);
    expect(r.calls.create + r.calls.update + r.calls.delete).to.equal(0);
    const host = hostFor(connectionSchema().parse(connection));
    const w = inputsSchema().parse({ name: NET, pf });
    const t = Date.now();
    const facts = await readPoolFacts(host, w);
    timings["net-observe"] = Date.now() - t;
    expect(planPool(facts, w, "create")).to.deep.equal({ ops: [], problems: [], warnings: [] });
    expect(await poolSpec.plan!({ host, connection: connectionSchema().parse(connection) }, w, w)).to.deep.equal([]);
  });

  it("preview of a VLAN change shows a replacement", async () => {
    const r = await netStack.preview([netResource({ vlan: 7 })]);
    expect(r.steps[0].op).to.equal("replace");
    expect(r.steps[0].diff?.replaces).to.deep.equal(["vlan"]);
    expect(r.calls.create + r.calls.delete + r.calls.update).to.equal(0);
    expect(parseNetwork(await virsh(`net-dumpxml ${NET}`)).vlan).to.equal(undefined);
  });

  it("refresh sees autostart switched off and the network stopped; the next up repairs both", async () => {
    await virsh(`net-autostart ${NET} --disable`);
    await virsh(`net-destroy ${NET}`);
    const host = hostFor(connectionSchema().parse(connection));
    expect(await poolSpec.plan!({ host, connection: connectionSchema().parse(connection) }, inputsSchema().parse({ name: NET, pf }), inputsSchema().parse({ name: NET, pf }))).to.deep.equal([
      `start network ${NET}`,
      `mark network ${NET} to start when libvirtd starts`,
    ]);
    const ref = await timed("net-refresh", () => netStack.refresh());
    expect(ref.outputs.net).to.deep.include({ active: false, autostart: false });
    const applied = netStack.state.get("net")!.outputs.applied;
    expect(applied).to.deep.include({ autostart: false, drift: ["network is not active"] });
    const r = await timed("net-repair", () => netStack.up([netResource()]));
    expect(r.steps[0].op).to.equal("update");
    expect(r.outputs.net).to.deep.include({ active: true, autostart: true });
    expect(await virsh(`net-info ${NET}`)).to.match(/Active:\s+yes/).and.match(/Autostart:\s+yes/);
    await netStack.refresh();
    expect((await netStack.up([netResource()])).steps[0].op).to.equal("same");
  });

  // Mocha runs a suite's own tests before its nested suites: the steps below
  // are one flat sequence, in the order an operator would go.
  let vf: HostVf;

  it("a running guest takes a VF from the pool: attached live and to the config with MAC and VLAN; the network counts one connection", async () => {
    await timed("domain-start", () => startTiny());
    const r = await timed("iface-create", () => ifStack.up([ifResource("nic", { source: { network: NET }, mac: MAC, vlan: VLAN })]));
    expect(r.steps[0].op).to.equal("create");
    const o = r.outputs.nic;
    expect(o.mac).to.equal(MAC);
    expect(o.pciAddress).to.match(/^0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);
    expect(o.alias).to.match(/\S/);
    // net-dumpxml shows connections='1'.
    const netXml = await virsh(`net-dumpxml ${NET}`);
    expect(netXml).to.match(/<network connections='1'/);
    // The VF carries the requested MAC and VLAN on the PF, and belongs to vfio-pci now.
    vf = (await hostVfs()).find((v) => v.pciAddress === o.pciAddress)!;
    expect(vf, `VF ${o.pciAddress} on ${pf}`).to.not.equal(undefined);
    expect(vf).to.deep.include({ mac: MAC, vlan: VLAN, driver: "vfio-pci" });
    const ipLine = (await vm.run(`ip -d link show ${pf}`)).split("\n").find((l) => l.includes(`vf ${vf.index} `))!;
    expect(ipLine).to.include(MAC).and.include(`vlan ${VLAN}`);
    // The guest has it live and in its persistent configuration.
    const live = parseDomain(await virsh(`dumpxml ${DOMAIN}`)).interfaces.find((i) => i.mac === MAC);
    const config = parseDomain(await virsh(`dumpxml --inactive ${DOMAIN}`)).interfaces.find((i) => i.mac === MAC);
    expect(live?.pciAddress).to.equal(o.pciAddress);
    expect(config).to.deep.include({ type: "network", network: NET, vlan: { tags: [{ id: VLAN }] } });
    // The network reports the connection too.
    const ref = await netStack.refresh();
    expect(ref.outputs.net.connections).to.equal(1);
  });

  it("a second up and a refresh change nothing", async () => {
    const ref = await timed("iface-refresh", () => ifStack.refresh());
    expect(ref.steps[0].op).to.equal("refresh");
    const r = await timed("iface-noop-up", () => ifStack.up([ifResource("nic", { source: { network: NET }, mac: MAC, vlan: VLAN })]));
    expect(r.steps[0].op).to.equal("same");
  });

  it("a VF by PCI address: hostdev interface with its own MAC and VLAN; one in use is refused with libvirt's reason", async () => {
    const free = (await hostVfs()).find((v) => v.driver === "igbvf" && v.pciAddress !== vf.pciAddress)!;
    const r = await timed("hostdev-create", () =>
      ifStack.up([
        ifResource("nic", { source: { network: NET }, mac: MAC, vlan: VLAN }),
        ifResource("direct", { source: { pciAddress: free.pciAddress }, mac: MAC2, vlan: 100 }),
      ]),
    );
    expect(r.outputs.direct).to.deep.include({ mac: MAC2, pciAddress: free.pciAddress });
    expect((await hostVfs()).find((v) => v.pciAddress === free.pciAddress)).to.deep.include({ mac: MAC2, vlan: 100, driver: "vfio-pci" });
    const cfg = parseDomain(await virsh(`dumpxml --inactive ${DOMAIN}`)).interfaces.find((i) => i.mac === MAC2);
    expect(cfg).to.deep.include({ type: "hostdev", managed: true, pciAddress: free.pciAddress });

    // The pool's VF is taken: libvirt refuses, and the error names the domain, the VF and libvirt's words.
    const busy = new Stack();
    const err = await busy.up([ifResource("busy", { source: { pciAddress: vf.pciAddress }, mac: "52:54:00:5b:00:03", config: false })]).then(
      () => undefined,
      (e) => e,
    );
    expect(err).to.be.instanceOf(DeploymentError);
    expect(err.message).to.include(`attach VF ${vf.pciAddress} to domain ${DOMAIN}:`).and.include("virsh").and.include(vm.connection.host);
    process.stderr.write(`busy VF error: ${err.message}\n`);

    // Removing it from the program detaches it; the VF goes back to igbvf.
    const d = await timed("hostdev-delete", () => ifStack.up([ifResource("nic", { source: { network: NET }, mac: MAC, vlan: VLAN })]));
    expect(d.steps.map((s) => s.op)).to.deep.equal(["same", "delete"]);
    expect((await hostVfs()).find((v) => v.pciAddress === free.pciAddress)?.driver).to.equal("igbvf");
    expect(parseDomain(await virsh(`dumpxml --inactive ${DOMAIN}`)).interfaces.find((i) => i.mac === MAC2)).to.equal(undefined);
  });

  it("an 802.1Qbh port profile igb cannot apply fails with libvirt's reason, leaving the guest as it was", async () => {
    const free = (await hostVfs()).find((v) => v.driver === "igbvf")!;
    const before = parseDomain(await virsh(`dumpxml --inactive ${DOMAIN}`)).interfaces;
    const s = new Stack();
    const err = await s
      .up([ifResource("qbh", { source: { pciAddress: free.pciAddress }, mac: "52:54:00:5b:00:04", virtualport: { type: "802.1Qbh", profileId: "finance" } })])
      .then(
        () => undefined,
        (e) => e,
      );
    expect(err).to.be.instanceOf(DeploymentError);
    expect(err.message).to.include(`attach VF ${free.pciAddress} to domain ${DOMAIN}:`);
    process.stderr.write(`802.1Qbh error: ${err.message}\n`);
    expect(parseDomain(await virsh(`dumpxml --inactive ${DOMAIN}`)).interfaces).to.deep.equal(before);
    expect((await hostVfs()).find((v) => v.pciAddress === free.pciAddress)?.driver).to.equal("igbvf");
  });

  it("a pool of explicit VFs hands out what it has, then says none are free", async () => {
    const free = (await hostVfs()).find((v) => v.driver === "igbvf")!;
    const small = new Stack();
    const guests = new Stack();
    const smallNet: ResourceSpec = { name: "small", provider: providers.vfPoolNetwork, props: { connection: secret(connection), name: `${NET}-one`, vfs: [free.pciAddress], autostart: false } };
    const r = await small.up([smallNet]);
    expect(r.outputs.small).to.deep.include({ active: true, autostart: false, vfAddresses: [free.pciAddress] });
    await guests.up([ifResource("one", { source: { network: `${NET}-one` }, mac: "52:54:00:5b:00:05", config: false })]);
    const err = await guests
      .up([
        ifResource("one", { source: { network: `${NET}-one` }, mac: "52:54:00:5b:00:05", config: false }),
        ifResource("two", { source: { network: `${NET}-one` }, mac: "52:54:00:5b:00:06", config: false }),
      ])
      .then(
        () => undefined,
        (e) => e,
      );
    expect(err).to.be.instanceOf(DeploymentError);
    expect(err.message).to.include(`attach network ${NET}-one to domain ${DOMAIN}:`).and.include("every VF of the pool network is in use");
    process.stderr.write(`empty pool error: ${err.message}\n`);
    await guests.destroy();
    await small.destroy();
    expect((await vm.exec(`virsh -c qemu:///system net-info ${NET}-one`)).code).to.not.equal(0);
    expect((await hostVfs()).find((v) => v.pciAddress === free.pciAddress)?.driver).to.equal("igbvf");
  });

  it("deleting the network while the guest holds a VF is refused, naming the guest", async () => {
    const err = await netStack.up([]).then(
      () => undefined,
      (e) => e,
    );
    expect(err).to.be.instanceOf(DeploymentError);
    expect(err.message).to.include(`network ${NET} is in use`).and.include(DOMAIN).and.include(MAC).and.include("force: true");
    expect(await virsh(`net-info ${NET}`)).to.match(/Active:\s+yes/);
    expect(netStack.state.has("net")).to.equal(true);
  });

  it("detaching gives the VF back to its host driver and the pool", async () => {
    const r = await timed("iface-delete", () => ifStack.destroy());
    expect(r.steps.map((s) => s.op)).to.deep.equal(["delete"]);
    const back = (await hostVfs()).find((v) => v.pciAddress === vf.pciAddress)!;
    expect(back.driver).to.equal("igbvf");
    expect(await virsh(`net-dumpxml ${NET}`)).to.not.match(/connections=/);
    expect(parseDomain(await virsh(`dumpxml ${DOMAIN}`)).interfaces).to.deep.equal([]);
    expect(parseDomain(await virsh(`dumpxml --inactive ${DOMAIN}`)).interfaces).to.deep.equal([]);
  });

  it("after a host reboot the network is active again with all its VFs", async () => {
    // The guest sits in an initramfs shell and ignores ACPI shutdown: stop it so libvirt-guests does not wait for it.
    await virsh(`destroy ${DOMAIN}`);
    await timed("reboot", () => vm.reboot());
    await closeAllConnections();
    expect(await virsh(`net-info ${NET}`)).to.match(/Active:\s+yes/).and.match(/Autostart:\s+yes/);
    const live = parseNetwork(await virsh(`net-dumpxml ${NET}`));
    expect(live.forward?.addresses).to.have.length(NUM_VFS);
    const ref = await timed("net-refresh-after-reboot", () => netStack.refresh());
    expect(ref.outputs.net).to.deep.include({ active: true, autostart: true, connections: 0 });
    expect(ref.outputs.net.vfAddresses).to.have.length(NUM_VFS);
    expect(netStack.state.get("net")!.outputs.applied).to.not.have.property("drift");
    expect((await netStack.up([netResource()])).steps[0].op).to.equal("same");
  });

  it("with force, the network is deleted even while a running guest holds a VF from it", async () => {
    await startTiny();
    await ifStack.up([ifResource("nic", { source: { network: NET }, mac: MAC, vlan: VLAN })]);
    expect(await virsh(`net-dumpxml ${NET}`)).to.match(/connections='1'/);
    const refused = await netStack.up([]).then(
      () => undefined,
      (e) => e,
    );
    expect(refused?.message).to.include(DOMAIN);
    await netStack.up([netResource({ force: true })]);
    const r = await timed("net-force-delete", () => netStack.up([]));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["delete"]);
    expect((await vm.exec(`virsh -c qemu:///system net-info ${NET}`)).code).to.not.equal(0);
    // Deleting what is already gone is fine: the guest's interface goes with the guest.
    await virsh(`destroy ${DOMAIN}`);
    await ifStack.destroy();
    expect(parseDomain(await virsh(`dumpxml --inactive ${DOMAIN}`)).interfaces).to.deep.equal([]);
  });
});
