// Adoption through the `import` option (the `importId` input): the shared
// lifecycle with a resource whose host is a fixed plan, so each rule shows:
// an adopting create changes nothing, refuses a host that differs and an id
// that names something else, and a resource already in the state no longer
// adopts.
import { expect } from "chai";
import { z } from "zod";
import { IMPORT_ID, ImportError, lifecycle, ResourceSpec } from "../../provider/resource";

interface In {
  name: string;
}
interface Out {
  made: string;
}

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOaJ5vN6kWc2m6yM0b6q6cQ2s3m1JmQx3qk6bZ0w2r7f";
const connection = { host: "192.0.2.1", hostKey: HOST_KEY, password: "not-used" };

function fakeResource(hostChanges: string[]) {
  const creates: In[] = [];
  const spec: ResourceSpec<In, Out> = {
    kind: "fake",
    schema: () => z.object({ name: z.string() }).strict() as z.ZodType<In>,
    replaceOn: () => [],
    id: (i) => `fake/${i.name}`,
    create: async (_ctx, i) => {
      creates.push(i);
      return { made: i.name };
    },
    read: async () => undefined,
    update: async (_c, _o, _n, outs) => outs,
    delete: async () => undefined,
    plan: async () => hostChanges,
  };
  return { provider: lifecycle(spec), creates };
}

describe("import: adopting what a host has", () => {
  it("a host that matches: check keeps the id, create adopts it and stores no importId in applied", async () => {
    const { provider, creates } = fakeResource(["warning: something to know"]);
    const checked = await provider.check({}, { name: "a", connection, [IMPORT_ID]: "fake/a" });
    expect(checked.failures).to.deep.equal([]);
    expect(checked.inputs[IMPORT_ID]).to.equal("fake/a");
    const made = await provider.create(checked.inputs);
    expect(made.id).to.equal("fake/a");
    expect(made.outs.applied).to.deep.equal({ name: "a" });
    expect(creates).to.have.length(1);
  });

  it("a host that differs: preview's check refuses, naming what would change", async () => {
    const { provider } = fakeResource(["set VF 0 vlan 100"]);
    const checked = await provider.check({}, { name: "a", connection, [IMPORT_ID]: "fake/a" });
    expect(checked.failures).to.have.length(1);
    expect(checked.failures[0].property).to.equal(IMPORT_ID);
    expect(checked.failures[0].reason).to.equal(
      "import of fake/a would change the host, so it is refused: set VF 0 vlan 100. " +
        "Make the inputs match the host (`pulumi-sriov discover` prints them), or leave out `import` to have create make these changes",
    );
  });

  it("create refuses too (the inputs may have been unknown at preview), before changing anything", async () => {
    const { provider, creates } = fakeResource(["set VF 0 vlan 100"]);
    const e = await provider.create({ name: "a", connection, [IMPORT_ID]: "fake/a" }).catch((x) => x);
    expect(e).to.be.instanceOf(ImportError);
    expect(e.message).to.match(/^import of fake\/a would change the host, so it is refused: set VF 0 vlan 100\./);
    expect(creates).to.deep.equal([]);
  });

  it("an id that names another resource is refused", async () => {
    const { provider } = fakeResource([]);
    const e = await provider.create({ name: "a", connection, [IMPORT_ID]: "fake/b" }).catch((x) => x);
    expect(e).to.be.instanceOf(ImportError);
    expect(e.message).to.equal("import of fake/b: these inputs describe fake/a on this host, not fake/b; the host was not changed");
  });

  it("a resource already in the state does not adopt again: the option is dropped, so a later change or replacement applies", async () => {
    const { provider } = fakeResource(["set VF 0 vlan 200"]);
    const olds = { name: "a", connection };
    const checked = await provider.check(olds, { name: "a", connection, [IMPORT_ID]: "fake/a" });
    expect(checked.failures).to.deep.equal([]);
    expect(checked.inputs).to.not.have.property(IMPORT_ID);
    const d = await provider.diff("fake/a", { made: "a", connection, applied: { name: "a" } }, { ...checked.inputs, [IMPORT_ID]: "fake/a" });
    expect(d.replaces).to.deep.equal([]);
  });

  it("an empty or non-string id is an input error", async () => {
    const { provider } = fakeResource([]);
    for (const bad of ["", 7]) {
      const checked = await provider.check({}, { name: "a", connection, [IMPORT_ID]: bad });
      expect(checked.failures.map((f) => f.property)).to.deep.equal([IMPORT_ID]);
    }
  });
});
