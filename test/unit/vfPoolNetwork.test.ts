// VfPoolNetwork without a host: input checks, the plan from host facts to
// virsh steps (and its refusals), outputs and drift as refresh reports them.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { validate, UNKNOWN } from "../../provider/validate";
import { inputsSchema, PoolInputs } from "../../provider/resources/vfPoolNetwork/schema";
import { observedInputs, outputsOf, planPool, planPoolRemoval, PoolFacts } from "../../provider/resources/vfPoolNetwork/plan";
import { parseNetwork, poolNetwork, renderNetwork } from "../../provider/libvirt/network";
import { spec } from "../../provider/resources/vfPoolNetwork";
import { lifecycle } from "../../provider/resource";

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, "..", "fixtures", "libvirt", name), "utf8");

/** Inputs as check leaves them (no undefined keys). */
const inputs = (over: Partial<PoolInputs> = {}): PoolInputs =>
  JSON.parse(JSON.stringify({ name: "pool0", pf: "enp1s0", autostart: true, libvirtUri: "qemu:///system", force: false, ...over }));

/** Facts of a network that matches `w` exactly, running and autostarted. */
function matching(w: PoolInputs, over: Partial<PoolFacts> = {}): PoolFacts {
  const def = poolNetwork(w, "11111111-2222-3333-4444-555555555555");
  const live = { ...def, connections: 0, forward: { ...def.forward!, addresses: w.pf ? ["0000:02:10.0", "0000:02:10.2"] : def.forward!.addresses } };
  return {
    exists: true,
    active: true,
    persistent: true,
    autostart: w.autostart,
    uuid: def.uuid,
    config: def,
    live,
    liveXml: renderNetwork(live),
    pfNumVfs: 4,
    ...over,
  };
}

const steps = (p: { ops: { description: string }[] }) => p.ops.map((o) => o.description);
const commands = (p: { ops: { argv: string[]; shown?: string }[] }) => p.ops.map((o) => o.shown ?? o.argv.join(" "));

describe("VfPoolNetwork inputs", () => {
  const check = (raw: unknown) => validate(inputsSchema(), raw);

  it("applies defaults", () => {
    expect(check({ name: "pool0", pf: "enp1s0" }).value).to.deep.equal({ name: "pool0", pf: "enp1s0", autostart: true, libvirtUri: "qemu:///system", force: false });
  });

  it("normalizes VF addresses", () => {
    expect(check({ name: "p", vfs: ["02:10.0", "0000:02:10.2"] }).value?.vfs).to.deep.equal(["0000:02:10.0", "0000:02:10.2"]);
  });

  it("reports every bad property at once, each by name", () => {
    const r = check({ name: "bad name!", vfs: ["nope", "0000:02:10.0", "0000:02:10.0"], vlan: 5000, autostart: "yes", libvirtUri: "not a uri" });
    const props = r.failures.map((f) => f.property);
    expect(props).to.include.members(["name", "vfs[0]", "vlan", "autostart", "libvirtUri"]);
    expect(r.failures.find((f) => f.property === "vlan")?.reason).to.match(/0–4095/);
  });

  it("needs exactly one of pf and vfs", () => {
    expect(check({ name: "p" }).failures).to.deep.include({ property: "pf", reason: "give either pf (all its VFs) or vfs (a list of VF PCI addresses)" });
    expect(check({ name: "p", pf: "eth0", vfs: ["0000:02:10.0"] }).failures.map((f) => f.property)).to.deep.equal(["vfs"]);
    expect(check({ name: "p", vfs: [] }).failures[0]).to.deep.include({ property: "vfs" });
    expect(check({ name: "p", vfs: ["0000:02:10.0", "02:10.0"] }).failures[0].reason).to.match(/twice/);
  });

  it("lets unknown preview values through", () => {
    const r = check({ name: "p", pf: UNKNOWN, vlan: UNKNOWN });
    expect(r.failures).to.deep.equal([]);
    expect(r.hasUnknowns).to.equal(true);
    expect(check({ name: UNKNOWN, vfs: [UNKNOWN, "0000:02:10.0"] }).failures).to.deep.equal([]);
  });

  it("check through the shared lifecycle names connection and resource properties together", async () => {
    const p = lifecycle(spec);
    const r = await p.check({}, { name: "p", vlan: -1 });
    expect(r.failures.map((f) => f.property)).to.include.members(["connection", "vlan", "pf"]);
  });
});

describe("VfPoolNetwork plan", () => {
  it("a fresh host: define, start, autostart (seed 001, procedure 17.10)", () => {
    const w = inputs();
    const plan = planPool({ exists: false, active: false, persistent: false, autostart: false, pfNumVfs: 4 }, w, "create");
    expect(plan.problems).to.deep.equal([]);
    expect(steps(plan)).to.deep.equal([
      "define network pool0 (pool of all VFs of enp1s0)",
      "start network pool0",
      "mark network pool0 to start when libvirtd starts",
    ]);
    expect(commands(plan)).to.deep.equal([
      "env LC_ALL=C virsh -q -c qemu:///system net-define '<xml>'",
      "env LC_ALL=C virsh -q -c qemu:///system net-start pool0",
      "env LC_ALL=C virsh -q -c qemu:///system net-autostart pool0",
    ]);
    // The XML given to net-define is the pool definition, built by the XML library.
    expect(parseNetwork(plan.ops[0].stdin!)).to.deep.equal(poolNetwork(w));
  });

  it("autostart false: defined and started, nothing marked", () => {
    const plan = planPool({ exists: false, active: false, persistent: false, autostart: false, pfNumVfs: 4 }, inputs({ autostart: false }), "create");
    expect(steps(plan)).to.deep.equal(["define network pool0 (pool of all VFs of enp1s0)", "start network pool0"]);
  });

  it("an already configured host: no steps at all (create and update)", () => {
    for (const w of [inputs(), inputs({ pf: undefined, vfs: ["0000:02:10.2", "0000:02:10.0"], vlan: 42, autostart: false })]) {
      expect(planPool(matching(w), w, "create").ops).to.deep.equal([]);
      expect(planPool(matching(w), w, "update").ops).to.deep.equal([]);
    }
  });

  it("repairs drift: inactive → start; autostart off → on; transient → define", () => {
    const w = inputs();
    expect(steps(planPool(matching(w, { active: false }), w, "update"))).to.deep.equal(["start network pool0"]);
    expect(steps(planPool(matching(w, { autostart: false }), w, "update"))).to.deep.equal(["mark network pool0 to start when libvirtd starts"]);
    expect(steps(planPool(matching(w, { persistent: false, config: undefined }), w, "update"))).to.deep.equal(["define network pool0 (pool of all VFs of enp1s0)"]);
    expect(commands(planPool(matching(inputs({ autostart: false }), { autostart: true }), inputs({ autostart: false }), "update"))).to.deep.equal([
      "env LC_ALL=C virsh -q -c qemu:///system net-autostart pool0 --disable",
    ]);
  });

  it("refuses to take over a differing network of the same name on create, unless force", () => {
    const theirs = inputs({ pf: "enp2s0", vlan: 9 });
    const w = inputs();
    const plan = planPool(matching(theirs), w, "create");
    expect(plan.ops).to.deep.equal([]);
    expect(plan.problems[0]).to.equal(
      "network pool0 already exists with another definition (pf is enp2s0, want enp1s0; vlan is 9, want none); choose another name, or set force: true to redefine it",
    );
    const forced = planPool(matching(theirs), { ...w, force: true }, "create");
    expect(steps(forced)).to.deep.equal(["define network pool0 (pool of all VFs of enp1s0)", "stop network pool0 (to apply the new definition)", "start network pool0"]);
    // Redefinition keeps libvirt's UUID so it updates the network instead of clashing with it.
    expect(parseNetwork(forced.ops[0].stdin!).uuid).to.equal("11111111-2222-3333-4444-555555555555");
  });

  it("refuses to restart a network guests use, naming them, unless force", () => {
    const theirs = inputs({ vlan: 9 });
    const facts = matching(theirs);
    facts.live!.connections = 2;
    facts.users = [
      { domain: "web1", macs: ["52:54:00:00:00:01"] },
      { domain: "db1", macs: ["52:54:00:00:00:02"] },
    ];
    const plan = planPool(facts, inputs(), "update");
    expect(plan.problems[0]).to.match(/must restart to apply vlan is 9, want none, but it is in use \(2 guest interface\(s\) connected: web1 \(52:54:00:00:00:01\), db1 \(52:54:00:00:00:02\)\)/);
    expect(steps(planPool(facts, inputs({ force: true }), "update"))).to.include("stop network pool0 (to apply the new definition)");
  });

  it("refuses a pool whose PF has no VFs, or VFs that are not there, before writing anything", () => {
    const none = { exists: false, active: false, persistent: false, autostart: false };
    expect(planPool({ ...none, pfNumVfs: 0 }, inputs(), "create").problems[0]).to.match(/pf: enp1s0 has no VFs \(sriov_numvfs is 0\)/);
    expect(planPool({ ...none, pfNumVfs: null }, inputs(), "create").problems[0]).to.match(/pf: enp1s0 is not an SR-IOV network interface/);
    expect(planPool({ ...none, missingVfs: ["0000:09:00.0"] }, inputs({ pf: undefined, vfs: ["0000:09:00.0"] }), "create").problems[0]).to.equal(
      "vfs: not VFs on this host: 0000:09:00.0",
    );
  });

  it("start failures explain a PF without VFs", () => {
    const w = inputs();
    const f = matching(w, { active: false, pfNumVfs: 0 });
    const start = planPool(f, w, "update").ops.find((o) => o.description.startsWith("start"))!;
    expect(start.explain!({ code: 1, stdout: "", stderr: "error: Failed to start network pool0\nerror: internal error: No Vf's present on SRIOV PF enp1s0\n" })).to.equal(
      "start network pool0: Failed to start network pool0: internal error: No Vf's present on SRIOV PF enp1s0 (enp1s0 has no VFs: create them first, persisted so they exist before libvirtd starts)",
    );
  });
});

describe("VfPoolNetwork removal", () => {
  const w = { name: "pool0", libvirtUri: "qemu:///system", force: false };

  it("stops then undefines; nothing when it is already gone", () => {
    expect(steps(planPoolRemoval(matching(inputs()), w))).to.deep.equal(["stop network pool0", "undefine network pool0"]);
    expect(commands(planPoolRemoval(matching(inputs()), w))).to.deep.equal([
      "env LC_ALL=C virsh -q -c qemu:///system net-destroy pool0",
      "env LC_ALL=C virsh -q -c qemu:///system net-undefine pool0",
    ]);
    expect(planPoolRemoval({ exists: false, active: false, persistent: false, autostart: false }, w)).to.deep.equal({ ops: [], problems: [], warnings: [] });
    expect(steps(planPoolRemoval(matching(inputs(), { active: false }), w))).to.deep.equal(["undefine network pool0"]);
    expect(steps(planPoolRemoval(matching(inputs(), { persistent: false }), w))).to.deep.equal(["stop network pool0"]);
  });

  it("refuses while guests are connected, naming them; force deletes anyway", () => {
    const f = matching(inputs());
    f.live!.connections = 1;
    f.users = [{ domain: "tiny", macs: ["52:54:00:12:34:56"] }];
    const plan = planPoolRemoval(f, w);
    expect(plan.ops).to.deep.equal([]);
    expect(plan.problems[0]).to.equal(
      "network pool0 is in use (1 guest interface(s) connected: tiny (52:54:00:12:34:56)); detach those interfaces or stop the guests first, or set force: true to delete it anyway",
    );
    expect(steps(planPoolRemoval(f, { ...w, force: true }))).to.deep.equal(["stop network pool0", "undefine network pool0"]);
  });
});

describe("VfPoolNetwork outputs and refresh", () => {
  it("outputs come from the live network", () => {
    const live = parseNetwork(fixture("network-pf-live.xml"));
    const f: PoolFacts = { exists: true, active: true, persistent: true, autostart: true, uuid: live.uuid, live, liveXml: fixture("network-pf-live.xml"), config: parseNetwork(fixture("network-pf-config.xml")) };
    const o = outputsOf(f, "passthrough");
    expect(o).to.deep.include({ name: "passthrough", uuid: "a6b49429-d353-d7ad-3185-4451cc786437", active: true, autostart: true, connections: 1 });
    expect(o.vfAddresses).to.have.length(7);
    expect(o.xml).to.contain("connections='1'");
    expect(Object.values(o).every((v) => v !== undefined)).to.equal(true);
  });

  it("a matching network observes as the applied inputs (no drift)", () => {
    for (const w of [inputs(), inputs({ pf: undefined, vfs: ["0000:02:10.2", "0000:02:10.0"], vlan: 7 })]) expect(observedInputs(matching(w), w)).to.deep.equal(w);
  });

  it("definition drift shows as the inputs it amounts to (which then plan a replacement)", () => {
    const w = inputs();
    const f = matching(inputs({ pf: "enp2s0", vlan: 5 }));
    expect(observedInputs(f, w)).to.deep.equal({ ...w, pf: "enp2s0", vlan: 5 });
    expect(spec.replaceOn(w, w)).to.include.members(["pf", "vfs", "vlan", "name", "libvirtUri"]);
    expect(spec.replaceOn(w, w)).not.to.include("autostart");
  });

  it("what inputs cannot express is listed as drift, so the next update repairs it", () => {
    const w = inputs();
    const o = observedInputs(matching(w, { active: false, autostart: false }), w);
    expect(o.autostart).to.equal(false);
    expect(o.drift).to.deep.equal(["network is not active"]);
    const nat = parseNetwork(fixture("network-nat.xml"));
    expect(observedInputs({ exists: true, active: true, persistent: true, autostart: true, config: nat, live: nat }, w).drift).to.include("forward mode is nat");
  });

  it("the drift marker is not an input: parsing state drops it", () => {
    const r = validate(inputsSchema(), { ...inputs(), drift: ["network is not active"] });
    expect(r.value).to.not.have.property("drift");
  });
});
