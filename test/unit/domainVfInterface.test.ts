// DomainVfInterface without a host: input checks, attach/detach planning by
// MAC from the domain's running and persistent XML, libvirt error messages,
// outputs and drift.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { UNKNOWN, validate } from "../../provider/validate";
import { inputsSchema, IfaceInputs } from "../../provider/resources/domainVfInterface/schema";
import {
  allOps,
  desiredInterface,
  DomainFacts,
  explainLibvirt,
  interfaceDifferences,
  observedInputs,
  outputsOf,
  planInterface,
  planInterfaceRemoval,
} from "../../provider/resources/domainVfInterface/plan";
import { DomainDef, DomainInterface, parseDomain, parseInterface } from "../../provider/libvirt/domain";
import { parseNetwork } from "../../provider/libvirt/network";
import { spec } from "../../provider/resources/domainVfInterface";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "..", "fixtures", "libvirt", name), "utf8");
const MAC = "52:54:00:12:34:56";

const inputs = (over: Partial<IfaceInputs> = {}): IfaceInputs =>
  JSON.parse(JSON.stringify({ domain: "tiny", source: { network: "pool0" }, config: true, libvirtUri: "qemu:///system", ...over }));

const dom = (interfaces: DomainInterface[]): DomainDef => ({ name: "tiny", interfaces });

/** A running persistent domain with `live` and `config` interfaces. */
const facts = (live: DomainInterface[], config: DomainInterface[], over: Partial<DomainFacts> = {}): DomainFacts => ({
  exists: true,
  running: true,
  persistent: true,
  live: dom(live),
  config: dom(config),
  poolVfs: POOL_VFS,
  ...over,
});

/** How libvirt shows a pool interface in a running guest: a hostdev with the VF it got, no network. */
const liveFromPool = (mac = MAC, vf = "0000:02:10.2"): DomainInterface => ({ type: "hostdev", managed: true, mac, pciAddress: vf, alias: "hostdev0", driver: "vfio" });
const POOL_VFS = ["0000:02:10.0", "0000:02:10.2", "0000:02:10.4", "0000:02:10.6"];
const configOnPool = (mac = MAC): DomainInterface => ({ type: "network", mac, network: "pool0" });

const steps = (p: Parameters<typeof allOps>[0]) => allOps(p).map((o) => o.description);
const commands = (p: Parameters<typeof allOps>[0]) => allOps(p).map((o) => o.shown);

describe("DomainVfInterface inputs", () => {
  const check = (raw: unknown) => validate(inputsSchema(), raw);

  it("applies defaults; live stays undefined (decided by the domain's state)", () => {
    expect(check({ domain: "tiny", source: { network: "pool0" } }).value).to.deep.equal({ domain: "tiny", source: { network: "pool0" }, config: true, libvirtUri: "qemu:///system" });
    expect(check({ domain: "tiny", source: { pciAddress: "02:10.2" }, mac: "52-54-00-AA-BB-CC" }).value).to.deep.include({
      source: { pciAddress: "0000:02:10.2" },
      mac: "52:54:00:aa:bb:cc",
    });
  });

  it("reports every bad property at once, each by name", () => {
    const r = check({ domain: "", source: { network: "a", pciAddress: "0000:02:10.2" }, mac: "01:00:5e:00:00:01", vlan: 4096, virtualport: { type: "802.1Qbg", profileId: "" }, live: "yes" });
    const props = r.failures.map((f) => f.property);
    expect(props).to.include.members(["domain", "source", "mac", "vlan", "virtualport.type", "virtualport.profileId", "live"]);
    expect(r.failures.find((f) => f.property === "mac")?.reason).to.match(/unicast/);
  });

  it("source is exactly one of network and pciAddress", () => {
    expect(check({ domain: "d", source: {} }).failures).to.deep.equal([{ property: "source", reason: "give either network (a pool network's name) or pciAddress (one VF), not both" }]);
    expect(check({ domain: "d", source: { pciAddress: "zz" } }).failures.map((f) => f.property)).to.deep.equal(["source.pciAddress"]);
  });

  it("vlan and virtualport exclude each other; live and config cannot both be false", () => {
    expect(check({ domain: "d", source: { network: "n" }, vlan: 5, virtualport: { type: "802.1Qbh", profileId: "finance" } }).failures.map((f) => f.property)).to.deep.equal(["vlan"]);
    expect(check({ domain: "d", source: { network: "n" }, live: false, config: false }).failures.map((f) => f.property)).to.deep.equal(["config"]);
    expect(check({ domain: "d", source: { network: "n" }, vlan: "x", virtualport: { type: "802.1Qbh", profileId: "finance" } }).failures).to.have.length(1);
  });

  it("lets unknown preview values through", () => {
    expect(check({ domain: UNKNOWN, source: { network: UNKNOWN }, mac: UNKNOWN }).failures).to.deep.equal([]);
    expect(check({ domain: "d", source: UNKNOWN }).failures).to.deep.equal([]);
  });
});

describe("DomainVfInterface plan", () => {
  it("a running guest: one attach to the guest and its configuration (seed 001, step 8)", () => {
    const plan = planInterface(facts([], []), inputs({ vlan: 42 }), MAC, "create");
    expect(plan.problems).to.deep.equal([]);
    expect(steps(plan)).to.deep.equal([`attach interface ${MAC} (network pool0) to domain tiny (running guest and its configuration)`]);
    expect(commands(plan)).to.deep.equal(["env LC_ALL=C virsh -q -c qemu:///system attach-device tiny '<xml>' --live --config"]);
    expect(parseInterface(plan.attach[0].stdin!)).to.deep.equal({ type: "network", network: "pool0", mac: MAC, vlan: { tags: [{ id: 42 }] } });
  });

  it("a VF by PCI address is an <interface type='hostdev' managed='yes'> with MAC, VLAN or port profile", () => {
    const w = inputs({ source: { pciAddress: "0000:02:10.4" }, virtualport: { type: "802.1Qbh", profileId: "finance" } });
    const plan = planInterface(facts([], []), w, MAC, "create");
    expect(parseInterface(plan.attach[0].stdin!)).to.deep.equal({
      type: "hostdev",
      managed: true,
      pciAddress: "0000:02:10.4",
      mac: MAC,
      virtualport: { type: "802.1Qbh", parameters: { profileid: "finance" } },
    });
  });

  it("a stopped guest: configuration only by default; live: true is refused", () => {
    const stopped = facts([], [], { running: false });
    expect(commands(planInterface(stopped, inputs(), MAC, "create"))).to.deep.equal(["env LC_ALL=C virsh -q -c qemu:///system attach-device tiny '<xml>' --config"]);
    expect(planInterface(stopped, inputs({ live: true }), MAC, "create").problems[0]).to.match(/live: true, but domain tiny is not running/);
  });

  it("live only, and a transient domain needs config: false", () => {
    expect(commands(planInterface(facts([], []), inputs({ config: false }), MAC, "create"))).to.deep.equal([
      "env LC_ALL=C virsh -q -c qemu:///system attach-device tiny '<xml>' --live",
    ]);
    expect(planInterface(facts([], [], { persistent: false, config: undefined }), inputs(), MAC, "create").problems[0]).to.match(/transient.*config: false/);
    expect(planInterface({ exists: false, running: false, persistent: false }, inputs(), MAC, "create").problems[0]).to.match(/domain tiny does not exist/);
  });

  it("already attached (as libvirt shows it live and in config): nothing to do", () => {
    const f = facts([liveFromPool()], [configOnPool()]);
    const plan = planInterface(f, inputs(), MAC, "create");
    expect(allOps(plan)).to.deep.equal([]);
    // The network's VLAN showing up live is not a difference when the program sets none.
    const withNetVlan = facts([{ ...liveFromPool(), vlan: { tags: [{ id: 9 }] } }], [configOnPool()]);
    expect(allOps(planInterface(withNetVlan, inputs(), MAC, "update"))).to.deep.equal([]);
  });

  it("repairs what is missing: only the scope that lacks it", () => {
    expect(commands(planInterface(facts([liveFromPool()], []), inputs(), MAC, "update"))).to.deep.equal([
      "env LC_ALL=C virsh -q -c qemu:///system attach-device tiny '<xml>' --config",
    ]);
    expect(commands(planInterface(facts([], [configOnPool()]), inputs(), MAC, "update"))).to.deep.equal([
      "env LC_ALL=C virsh -q -c qemu:///system attach-device tiny '<xml>' --live",
    ]);
  });

  it("live: false / config: false remove it from that scope", () => {
    const f = facts([liveFromPool()], [configOnPool()]);
    const liveOff = planInterface(f, inputs({ live: false }), MAC, "update");
    expect(steps(liveOff)).to.deep.equal([`detach interface ${MAC} (VF 0000:02:10.2) from domain tiny (running guest)`]);
    expect(liveOff.awaitLiveRemoval).to.equal(true);
    // Detach names the device the way libvirt shows it, matched by MAC.
    expect(parseInterface(liveOff.detach[0].stdin!)).to.deep.equal({ type: "hostdev", managed: true, mac: MAC, pciAddress: "0000:02:10.2" });
    const configOff = planInterface(f, inputs({ config: false }), MAC, "update");
    expect(commands(configOff)).to.deep.equal(["env LC_ALL=C virsh -q -c qemu:///system detach-device tiny '<xml>' --config"]);
    expect(configOff.awaitLiveRemoval).to.equal(false);
  });

  it("refuses a MAC the domain already uses for something else (create)", () => {
    const f = facts([], [{ type: "bridge", mac: MAC }]);
    expect(planInterface(f, inputs({ mac: MAC }), MAC, "create").problems[0]).to.equal(
      `domain tiny already has an interface with MAC ${MAC} (source is an interface of type bridge, want network pool0); choose another mac`,
    );
  });

  it("an interface that drifted (other VLAN in config) is detached and attached again in an update", () => {
    const f = facts([liveFromPool()], [{ ...configOnPool(), vlan: { tags: [{ id: 7 }] } }]);
    const plan = planInterface(f, inputs(), MAC, "update");
    expect(plan.detach.map((o) => o.shown)).to.deep.equal(["env LC_ALL=C virsh -q -c qemu:///system detach-device tiny '<xml>' --config"]);
    expect(plan.attach.map((o) => o.shown)).to.deep.equal(["env LC_ALL=C virsh -q -c qemu:///system attach-device tiny '<xml>' --config"]);
  });

  it("removal detaches from the guest and its configuration, waiting for the guest; nothing when gone", () => {
    const f = facts([liveFromPool()], [configOnPool()]);
    const plan = planInterfaceRemoval(f, inputs(), MAC);
    expect(commands(plan)).to.deep.equal([
      "env LC_ALL=C virsh -q -c qemu:///system detach-device tiny '<xml>' --live",
      "env LC_ALL=C virsh -q -c qemu:///system detach-device tiny '<xml>' --config",
    ]);
    expect(plan.awaitLiveRemoval).to.equal(true);
    expect(allOps(planInterfaceRemoval(facts([], []), inputs(), MAC))).to.deep.equal([]);
    expect(allOps(planInterfaceRemoval(facts([liveFromPool("52:54:00:00:00:01")], []), inputs(), MAC))).to.deep.equal([]);
  });
});

describe("DomainVfInterface differences and errors", () => {
  it("compares config fully, live by source and what the program sets", () => {
    const want = desiredInterface(inputs({ vlan: 42 }), MAC);
    expect(interfaceDifferences({ ...configOnPool(), vlan: { tags: [{ id: 42 }] } }, want, "config")).to.deep.equal([]);
    expect(interfaceDifferences(configOnPool(), want, "config")).to.deep.equal(["vlan is none, want 42"]);
    expect(interfaceDifferences({ ...liveFromPool(), vlan: { tags: [{ id: 42 }] } }, want, "live", POOL_VFS)).to.deep.equal([]);
    expect(interfaceDifferences(liveFromPool(), want, "live", POOL_VFS)).to.deep.equal(["vlan is none, want 42"]);
    // A running guest's pool interface is recognised by holding one of the pool's VFs.
    expect(interfaceDifferences({ ...liveFromPool("52:54:00:00:00:09", "0000:05:00.1"), vlan: { tags: [{ id: 42 }] } }, want, "live", POOL_VFS)).to.deep.equal([
      "source is VF 0000:05:00.1, want network pool0",
    ]);
    const vf = desiredInterface(inputs({ source: { pciAddress: "0000:02:10.2" } }), MAC);
    expect(interfaceDifferences(liveFromPool(), vf, "live")).to.deep.equal([]);
    expect(interfaceDifferences(configOnPool(), vf, "config")).to.deep.equal(["source is network pool0, want VF 0000:02:10.2"]);
  });

  it("libvirt's errors come back with the domain, the VF and a hint", () => {
    const r = (stderr: string) => ({ code: 1, stdout: "", stderr });
    expect(explainLibvirt("attach", "tiny", "VF 0000:02:10.2", r("error: Failed to attach device from /tmp/x\nerror: internal error: unable to execute QEMU command 'device_add': vfio 0000:02:10.2: group 12 is not viable\n"))).to.equal(
      "attach VF 0000:02:10.2 to domain tiny: Failed to attach device: internal error: unable to execute QEMU command 'device_add': vfio 0000:02:10.2: group 12 is not viable (every device in the VF's IOMMU group must be bound to vfio-pci or unbound before it can be assigned)",
    );
    expect(explainLibvirt("attach", "tiny", "network pool0", r("error: internal error: network 'pool0' requires exclusive access to interfaces, but none are available\n"))).to.match(
      /^attach network pool0 to domain tiny: .*none are available \(every VF of the pool network is in use by a guest\)$/,
    );
    expect(explainLibvirt("attach", "tiny", "VF 0000:02:10.2", r("error: Requested operation is not valid: PCI device 0000:02:10.2 is in use by driver QEMU, domain other\n"))).to.match(/in use by driver QEMU, domain other \(the VF is already in use by another guest/);
    expect(explainLibvirt("detach", "tiny", "VF 0000:02:10.2", r("error: operation failed: no matching device\n"))).to.equal("detach VF 0000:02:10.2 from domain tiny: operation failed: no matching device");
    // Seen on the lab's igb: what libvirt says when the NIC cannot do 802.1Qbh; the temp file's name is dropped.
    expect(explainLibvirt("attach", "tiny", "VF 0000:02:10.2", r("error: Failed to attach device from /tmp/tmp.7k6Ky0GqlK\nerror: internal error: sending of PortProfileRequest failed.\n"))).to.equal(
      "attach VF 0000:02:10.2 to domain tiny: Failed to attach device: internal error: sending of PortProfileRequest failed. (the PF's driver cannot apply 802.1Qbh port profiles: that needs a NIC and a switch that speak 802.1Qbh, such as Cisco VM-FEX)",
    );
  });
});

describe("DomainVfInterface outputs and refresh", () => {
  it("outputs: MAC, the VF the guest got, libvirt's alias", () => {
    expect(outputsOf(facts([liveFromPool()], [configOnPool()]), inputs(), MAC)).to.deep.equal({ mac: MAC, pciAddress: "0000:02:10.2", alias: "hostdev0" });
    expect(outputsOf(facts([], [configOnPool()], { running: false }), inputs(), MAC)).to.deep.equal({ mac: MAC, pciAddress: "", alias: "" });
    expect(outputsOf(facts([], [], { running: false }), inputs({ source: { pciAddress: "0000:02:10.4" } }), MAC).pciAddress).to.equal("0000:02:10.4");
  });

  it("reads the fixture domain by MAC", () => {
    const d = parseDomain(fixture("domain-config.xml"));
    const f: DomainFacts = { exists: true, running: false, persistent: true, live: d, config: d };
    const w = inputs({ source: { network: "passthrough" }, vlan: 42, mac: "52:54:00:aa:00:01" });
    expect(observedInputs(f, w, "52:54:00:aa:00:01")).to.deep.equal(w);
  });

  it("reads the lab's running guest (pool interface and VF by address) without drift", () => {
    const f: DomainFacts = {
      exists: true,
      running: true,
      persistent: true,
      live: parseDomain(fixture("lab-domain-live.xml")),
      config: parseDomain(fixture("lab-domain-config.xml")),
      poolVfs: parseNetwork(fixture("lab-network-pf-live.xml")).forward!.addresses,
    };
    const pool = inputs({ domain: "tiny", source: { network: "p0" }, mac: "52:54:00:5b:00:01", vlan: 42 });
    expect(observedInputs(f, pool, pool.mac!)).to.deep.equal(pool);
    expect(allOps(planInterface(f, pool, pool.mac!, "create"))).to.deep.equal([]);
    expect(outputsOf(f, pool, pool.mac!)).to.deep.equal({ mac: "52:54:00:5b:00:01", pciAddress: "0000:02:10.0", alias: "hostdev1" });
    const direct = inputs({ domain: "tiny", source: { pciAddress: "0000:02:10.2" }, mac: "52:54:00:5b:00:02", vlan: 100 });
    expect(observedInputs(f, direct, direct.mac!)).to.deep.equal(direct);
    expect(allOps(planInterface(f, direct, direct.mac!, "update"))).to.deep.equal([]);
    // Live only (config: false): still recognised as the pool interface.
    const liveOnly = { ...f, config: parseDomain(fixture("lab-domain-config.xml")), persistent: true };
    liveOnly.config = { ...liveOnly.config!, interfaces: [] };
    expect(observedInputs(liveOnly, { ...pool, config: false }, pool.mac!)).to.deep.equal({ ...pool, config: false });
  });

  it("in place: observed equals applied; gone: undefined", () => {
    const w = inputs();
    expect(observedInputs(facts([liveFromPool()], [configOnPool()]), w, MAC)).to.deep.equal(w);
    expect(observedInputs(facts([], []), w, MAC)).to.equal(undefined);
    expect(observedInputs({ exists: false, running: false, persistent: false }, w, MAC)).to.equal(undefined);
  });

  it("drift shows as inputs: missing live → live false; missing config → config false; changed VLAN", () => {
    const w = inputs();
    expect(observedInputs(facts([], [configOnPool()]), w, MAC)).to.deep.equal({ ...w, live: false });
    expect(observedInputs(facts([liveFromPool()], []), w, MAC)).to.deep.equal({ ...w, config: false });
    expect(observedInputs(facts([liveFromPool()], [{ ...configOnPool(), vlan: { tags: [{ id: 3 }] } }]), w, MAC)).to.deep.equal({ ...w, vlan: 3 });
    expect(spec.replaceOn(w, w)).to.include.members(["domain", "source", "mac", "vlan", "virtualport"]);
    expect(spec.replaceOn(w, w)).to.not.include.members(["live", "config"]);
  });
});
