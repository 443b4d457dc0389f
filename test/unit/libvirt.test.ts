// The libvirt XML layer: the ordered element model, PCI addresses, typed
// network and domain views (round trips on fixtures and generated values),
// virsh output parsing, and the operation executor against a local shell.
import { expect } from "chai";
import * as fc from "fast-check";
import * as fs from "fs";
import * as path from "path";
import { buildXml, el, parseXml, XmlError } from "../../provider/libvirt/xml";
import { pciElement, pciFromElement, pciParts, pciString } from "../../provider/libvirt/pci";
import {
  NetworkDef,
  networkElement,
  networkFromElement,
  parseNetwork,
  poolDifferences,
  poolNetwork,
  renderNetwork,
} from "../../provider/libvirt/network";
import { DomainInterface, interfaceElement, interfaceFromElement, parseDomain, parseInterface, renderInterface } from "../../provider/libvirt/domain";
import { infoFlag, isNotFound, isVirshMissing, libvirtMessage, parseInfo, parseNames, virsh, virshCommands, virshWord, withXmlFile, XML_FILE } from "../../provider/libvirt/virsh";
import { Command as Operation, execute, failedBeforeAnyChange } from "../../provider/host";
import { parsePort, renderPort } from "../../provider/libvirt/port";
import { HostCommandError, PartialApplyError, RemoteHost } from "../../provider/host";
import type { OpenChannel, Transport } from "../../provider/host/transport";
import { localShell } from "../support/localShell";

const FIXTURES = path.join(__dirname, "..", "fixtures", "libvirt");
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), "utf8");
const fixtures = () => fs.readdirSync(FIXTURES).filter((f) => f.endsWith(".xml"));

describe("libvirt XML element model", () => {
  it("parse → build → parse is the identity on every fixture", () => {
    expect(fixtures().length).to.be.greaterThan(5);
    for (const f of fixtures()) {
      const once = parseXml(fixture(f));
      const twice = parseXml(buildXml(once));
      expect(twice, f).to.deep.equal(once);
    }
  });

  it("keeps element order, attributes and text", () => {
    const e = parseXml("<a x='1'><b/><c y=\"2\">t</c><b z='3'/></a>");
    expect(e).to.deep.equal({
      name: "a",
      attrs: { x: "1" },
      children: [
        { name: "b", attrs: {}, children: [] },
        { name: "c", attrs: { y: "2" }, children: [], text: "t" },
        { name: "b", attrs: { z: "3" }, children: [] },
      ],
    });
  });

  it("escapes every attribute value and text so any string survives (property)", () => {
    // XML 1.0 cannot carry most control characters; libvirt names never contain them.
    const xmlChar = fc.string({ unit: fc.constantFrom(..."ab <>&\"'=/;:-_.é€\u00a0".split("")), maxLength: 30 });
    fc.assert(
      fc.property(xmlChar, xmlChar, (attr, text) => {
        const trimmed = text.trim();
        const e = el("network", { note: attr }, [el("name", {}, [], trimmed || "n")]);
        const back = parseXml(buildXml(e));
        expect(back.attrs.note).to.equal(attr);
        expect(back.children[0].text).to.equal(trimmed || "n");
      }),
      { numRuns: 300 },
    );
  });

  it("cannot be tricked into adding elements through values", () => {
    const hostile = "x'/><forward mode='nat'/><name>evil";
    const xml = renderNetwork(poolNetwork({ name: hostile, pf: "eth0" }));
    const back = parseNetwork(xml);
    expect(back.name).to.equal(hostile);
    expect(back.forward?.mode).to.equal("hostdev");
    expect(parseXml(xml).children.filter((c) => c.name === "forward")).to.have.length(1);
  });

  it("rejects text that is not one well-formed document", () => {
    expect(() => parseXml("<a><b></a>")).to.throw(XmlError);
    expect(() => parseXml("")).to.throw(XmlError);
    expect(() => parseXml("<!-- only a comment -->")).to.throw(XmlError, /not well-formed/);
    expect(() => parseXml("<a/><b/>")).to.throw(XmlError, /one root element, found 2/);
  });
});

describe("PCI addresses", () => {
  it("converts between operator and libvirt forms", () => {
    expect(pciElement("0000:03:10.2").attrs).to.deep.equal({ type: "pci", domain: "0x0000", bus: "0x03", slot: "0x10", function: "0x2" });
    expect(pciFromElement(el("address", { type: "pci", domain: "0", bus: "3", slot: "16", function: "0" }))).to.equal("0000:03:10.0");
    expect(pciFromElement(el("address", { type: "pci", domain: "0x0", bus: "0x00", slot: "0x07", function: "0x0" }))).to.equal("0000:00:07.0");
    expect(pciFromElement(el("address", { type: "drive", controller: "0" }))).to.equal(undefined);
    expect(() => pciFromElement(el("address", { type: "pci", domain: "0", bus: "0x100", slot: "0", function: "0" }))).to.throw(/bus/);
  });

  it("round-trips every address (property)", () => {
    fc.assert(
      fc.property(
        fc.record({ domain: fc.integer({ min: 0, max: 0xffff }), bus: fc.integer({ min: 0, max: 0xff }), slot: fc.integer({ min: 0, max: 0x1f }), function: fc.integer({ min: 0, max: 7 }) }),
        (p) => {
          const s = pciString(p);
          expect(pciParts(s)).to.deep.equal(p);
          expect(pciFromElement(parseXml(buildXml(pciElement(s))))).to.equal(s);
        },
      ),
    );
  });
});

describe("network XML", () => {
  it("reads the seed's pool network, live and persistent", () => {
    const live = parseNetwork(fixture("network-pf-live.xml"));
    expect(live.connections).to.equal(1);
    expect(live.uuid).to.equal("a6b49429-d353-d7ad-3185-4451cc786437");
    expect(live.forward).to.deep.include({ mode: "hostdev", managed: true, pfs: ["eth3"] });
    expect(live.forward?.addresses).to.have.length(7);
    expect(live.forward?.addresses[0]).to.equal("0000:02:10.1");
    const config = parseNetwork(fixture("network-pf-config.xml"));
    expect(config.connections).to.equal(undefined);
    expect(config.forward?.addresses).to.deep.equal([]);
  });

  it("reads a VF list with a VLAN, hex and decimal addresses alike", () => {
    const n = parseNetwork(fixture("network-vfs-vlan.xml"));
    expect(n.forward?.addresses).to.deep.equal(["0000:03:10.2", "0000:03:10.0"]);
    expect(n.forward?.driver).to.equal("vfio");
    expect(n.vlan).to.deep.equal({ tags: [{ id: 42 }] });
  });

  it("typed round trip on every network fixture: parse → build → parse", () => {
    for (const f of fixtures().filter((x) => x.startsWith("network-"))) {
      const once = parseNetwork(fixture(f));
      expect(parseNetwork(renderNetwork(once)), f).to.deep.equal(once);
    }
  });

  it("renders the pool definition of the seed (golden)", () => {
    expect(renderNetwork(poolNetwork({ name: "passthrough", pf: "eth3" }))).to.equal(
      ["<network>", "  <name>passthrough</name>", '  <forward mode="hostdev" managed="yes">', '    <pf dev="eth3"/>', "  </forward>", "</network>", ""].join("\n"),
    );
    expect(renderNetwork(poolNetwork({ name: "p", vfs: ["0000:03:10.2"], vlan: 42 }, "4e7a5c3e-9a0b-4b47-8f00-0d2f8e1c6b11"))).to.equal(
      [
        "<network>",
        "  <name>p</name>",
        "  <uuid>4e7a5c3e-9a0b-4b47-8f00-0d2f8e1c6b11</uuid>",
        '  <forward mode="hostdev" managed="yes">',
        '    <address type="pci" domain="0x0000" bus="0x03" slot="0x10" function="0x2"/>',
        "  </forward>",
        "  <vlan>",
        '    <tag id="42"/>',
        "  </vlan>",
        "</network>",
        "",
      ].join("\n"),
    );
  });

  it("typed round trip of generated pool networks (property)", () => {
    const pci = fc
      .record({ domain: fc.constant(0), bus: fc.integer({ min: 0, max: 255 }), slot: fc.integer({ min: 0, max: 31 }), function: fc.integer({ min: 0, max: 7 }) })
      .map(pciString);
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,20}$/),
        fc.oneof(fc.record({ pf: fc.stringMatching(/^[a-z][a-z0-9]{0,14}$/) }), fc.record({ vfs: fc.uniqueArray(pci, { minLength: 1, maxLength: 8 }) })),
        fc.option(fc.integer({ min: 0, max: 4095 }), { nil: undefined }),
        (name, src, vlan) => {
          const def: NetworkDef = poolNetwork({ name, ...src, vlan });
          const back = networkFromElement(parseXml(buildXml(networkElement(def))));
          expect(back).to.deep.equal(def);
          expect(poolDifferences(back, { name, ...src, vlan })).to.deep.equal([]);
        },
      ),
    );
  });

  it("compares pools by meaning: VF order and a PF's derived VF list do not matter", () => {
    const live = parseNetwork(fixture("network-pf-live.xml"));
    expect(poolDifferences(live, { name: "passthrough", pf: "eth3" })).to.deep.equal([]);
    const vfs = parseNetwork(fixture("network-vfs-vlan.xml"));
    expect(poolDifferences(vfs, { name: "sriov-vlan42", vfs: ["0000:03:10.0", "0000:03:10.2"], vlan: 42 })).to.deep.equal([]);
  });

  it("names each difference for an operator", () => {
    const live = parseNetwork(fixture("network-pf-live.xml"));
    expect(poolDifferences(live, { name: "passthrough", pf: "eth4", vlan: 7 })).to.deep.equal(["pf is eth3, want eth4", "vlan is none, want 7"]);
    const vfs = parseNetwork(fixture("network-vfs-vlan.xml"));
    expect(poolDifferences(vfs, { name: "x", vfs: ["0000:03:10.2"] })).to.deep.equal([
      "VFs are [0000:03:10.0, 0000:03:10.2], want [0000:03:10.2]",
      "vlan is 42, want none",
    ]);
    expect(poolDifferences(vfs, { name: "x", pf: "eth3", vlan: 42 })[0]).to.match(/^pool is VFs \[.*\], want pf eth3$/);
    const nat = parseNetwork(fixture("network-nat.xml"));
    expect(poolDifferences(nat, { name: "default", pf: "eth3" })).to.include("forward mode is nat, want hostdev");
  });

  it("fails clearly on XML that is not a network", () => {
    expect(() => parseNetwork("<domain><name>x</name></domain>")).to.throw(XmlError, /expected <network>/);
    expect(() => parseNetwork("<network/>")).to.throw(XmlError, /no <name>/);
  });
});

describe("domain XML", () => {
  it("reads interfaces: pool, hostdev VF, bridge", () => {
    const d = parseDomain(fixture("domain-config.xml"));
    expect(d.name).to.equal("guest1");
    expect(d.type).to.equal("qemu");
    expect(d.interfaces).to.have.length(3);
    expect(d.interfaces[0]).to.deep.equal({ type: "network", mac: "52:54:00:aa:00:01", network: "passthrough", vlan: { tags: [{ id: 42 }] } });
    // MACs are compared lower-case; the guest-side <address> is not the VF.
    expect(d.interfaces[1]).to.deep.equal({ type: "hostdev", managed: true, mac: "52:54:00:aa:00:02", pciAddress: "0000:03:10.2", driver: "vfio" });
    expect(d.interfaces[2].type).to.equal("bridge");
  });

  it("reads the seed's hostdev interface with VLAN and 802.1Qbh port profile", () => {
    const i = parseInterface(fixture("interface-hostdev-seed.xml"));
    expect(i).to.deep.equal({
      type: "hostdev",
      managed: true,
      mac: "52:54:00:6d:90:02",
      pciAddress: "0000:00:07.0",
      vlan: { tags: [{ id: 42 }] },
      virtualport: { type: "802.1Qbh", parameters: { profileid: "finance" } },
    });
    expect(parseInterface(fixture("interface-network-seed.xml"))).to.deep.equal({ type: "network", network: "sriov", vlan: { tags: [{ id: 403 }] } });
  });

  it("typed round trip of every interface in the fixtures", () => {
    const all: DomainInterface[] = [
      ...parseDomain(fixture("domain-config.xml")).interfaces,
      parseInterface(fixture("interface-hostdev-seed.xml")),
      parseInterface(fixture("interface-network-seed.xml")),
    ];
    for (const i of all) expect(parseInterface(renderInterface(i))).to.deep.equal(i);
  });

  it("typed round trip of generated interfaces (property)", () => {
    const mac = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }).map((b) => b.map((x) => x.toString(16).padStart(2, "0")).join(":"));
    const iface: fc.Arbitrary<DomainInterface> = fc.record(
      {
        type: fc.constantFrom("network", "hostdev"),
        managed: fc.boolean(),
        mac,
        network: fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,20}$/),
        pciAddress: fc.record({ domain: fc.constant(0), bus: fc.integer({ min: 0, max: 255 }), slot: fc.integer({ min: 0, max: 31 }), function: fc.integer({ min: 0, max: 7 }) }).map(pciString),
        vlan: fc.record({ tags: fc.array(fc.record({ id: fc.integer({ min: 0, max: 4095 }) }), { minLength: 1, maxLength: 3 }) }),
        virtualport: fc.record({ type: fc.constant("802.1Qbh"), parameters: fc.record({ profileid: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,39}$/) }) }),
        alias: fc.stringMatching(/^(hostdev|net)[0-9]$/),
      },
      { requiredKeys: ["type"] },
    );
    fc.assert(
      fc.property(iface, (i) => {
        expect(interfaceFromElement(parseXml(buildXml(interfaceElement(i))))).to.deep.equal(i);
      }),
    );
  });

  it("renders the attach XML of seed 001 (golden)", () => {
    const xml = renderInterface({ type: "hostdev", managed: true, mac: "52:54:00:6d:90:02", pciAddress: "0000:03:10.2", vlan: { tags: [{ id: 42 }] } });
    expect(xml).to.equal(
      [
        '<interface type="hostdev" managed="yes">',
        '  <mac address="52:54:00:6d:90:02"/>',
        "  <source>",
        '    <address type="pci" domain="0x0000" bus="0x03" slot="0x10" function="0x2"/>',
        "  </source>",
        "  <vlan>",
        '    <tag id="42"/>',
        "  </vlan>",
        "</interface>",
        "",
      ].join("\n"),
    );
  });
});

describe("network port XML", () => {
  it("reads the lab's port: owner domain, MAC, VLAN and the VF it is plugged into", () => {
    const p = parsePort(fixture("lab-networkport.xml"));
    expect(p).to.deep.equal({
      uuid: p.uuid,
      owner: { name: "tiny", uuid: p.owner!.uuid },
      mac: "52:54:00:5b:00:01",
      vlan: { tags: [{ id: 42 }] },
      plug: { type: "hostdev-pci", managed: true, pciAddress: "0000:02:10.0" },
    });
    expect(parsePort(renderPort(p))).to.deep.equal(p);
  });

  it("reads the lab's running guest: a pool interface shows as hostdev with its VF and no network", () => {
    const live = parseDomain(fixture("lab-domain-live.xml"));
    const pool = live.interfaces.find((i) => i.mac === "52:54:00:5b:00:01")!;
    expect(pool).to.deep.equal({ type: "hostdev", managed: true, mac: "52:54:00:5b:00:01", pciAddress: "0000:02:10.0", vlan: { tags: [{ id: 42 }] }, alias: "hostdev1", driver: "vfio" });
    const config = parseDomain(fixture("lab-domain-config.xml")).interfaces.find((i) => i.mac === "52:54:00:5b:00:01");
    expect(config).to.deep.equal({ type: "network", mac: "52:54:00:5b:00:01", network: "p0", vlan: { tags: [{ id: 42 }] } });
    expect(live.id).to.equal(1);
    const net = parseNetwork(fixture("lab-network-pf-live.xml"));
    expect(net.connections).to.equal(1);
    expect(net.forward?.addresses).to.deep.equal(["0000:02:10.0", "0000:02:10.2", "0000:02:10.4", "0000:02:10.6"]);
  });
});

describe("virsh helpers", () => {
  it("builds argv with the URI and a fixed locale", () => {
    expect(virsh("qemu:///system", "net-start", "pool 0")).to.deep.equal(["env", "LC_ALL=C", "virsh", "-q", "-c", "qemu:///system", "net-start", "pool 0"]);
  });

  it("quotes words for virsh's own parser as a shell would, leaving plain names bare", () => {
    expect(virshWord("pool0")).to.equal("pool0");
    expect(virshWord("--inactive")).to.equal("--inactive");
    expect(virshWord("a b")).to.equal("'a b'");
    expect(virshWord(`it's; net-destroy x #`)).to.equal(`'it'\\''s; net-destroy x #'`);
    expect(virshWord("")).to.equal("''");
  });

  it("runs several commands in one virsh and gives each its own result", () => {
    const c = virshCommands("qemu:///system", [["net-info", "a"], ["net-info", "b"]]);
    expect(c.argv.slice(0, 6)).to.deep.equal(virsh("qemu:///system"));
    const mark = /echo (pulumi-sriov-[0-9a-f]{16});/.exec(c.argv[6])![1];
    expect(c.argv[6]).to.equal(`net-info a; echo ${mark}; echo --err ${mark}; net-info b; echo ${mark}; echo --err ${mark}`);
    // As virsh 9.0 prints it: echo adds no newline, echo --err prefixes "error: ".
    const notFound = "error: failed to get network 'a'\nerror: Network not found: no network with matching name 'a'\n";
    const r = { code: 0, stdout: `${mark}Name: b\n${mark}`, stderr: `${notFound}error: ${mark}\nerror: ${mark}\n` };
    const [a, b] = c.split(r);
    expect(a).to.deep.equal({ code: 1, stdout: "", stderr: notFound });
    expect(isNotFound(a)).to.equal(true);
    expect(b).to.deep.equal({ code: 0, stdout: "Name: b\n", stderr: "" });
    // virsh that never got to the commands: each result is the whole run's.
    const none = { code: 1, stdout: "", stderr: "error: failed to connect to the hypervisor\n" };
    expect(c.split(none)).to.deep.equal([none, none]);
  });

  it("parses net-info and dominfo", () => {
    const info = parseInfo("Name:           pool0\nUUID:           4e7a5c3e-9a0b-4b47-8f00-0d2f8e1c6b11\nActive:         yes\nPersistent:     yes\nAutostart:      no\n");
    expect(info.UUID).to.equal("4e7a5c3e-9a0b-4b47-8f00-0d2f8e1c6b11");
    expect(infoFlag(info, "Active")).to.equal(true);
    expect(infoFlag(info, "Autostart")).to.equal(false);
    expect(infoFlag(info, "Missing")).to.equal(false);
    const dom = parseInfo("Id:             3\nName:           guest1\nState:          running\nCPU time:       1.2s\nPersistent:     yes\n");
    expect(dom.Id).to.equal("3");
    expect(dom["CPU time"]).to.equal("1.2s");
    expect(parseNames("a\n\n b \n")).to.deep.equal(["a", "b"]);
  });

  it("tells not-found and a missing virsh apart from other failures", () => {
    expect(isNotFound({ code: 1, stderr: "error: failed to get network 'x'\nerror: Network not found: no network with matching name 'x'\n" })).to.equal(true);
    expect(isNotFound({ code: 1, stderr: "error: failed to get domain 'g'\nerror: Domain not found: no domain with matching name 'g'\n" })).to.equal(true);
    expect(isNotFound({ code: 1, stderr: "error: failed to connect to the hypervisor\n" })).to.equal(false);
    expect(isNotFound({ code: 0, stderr: "" })).to.equal(false);
    expect(isVirshMissing({ code: 127, stderr: "env: 'virsh': No such file or directory" })).to.equal(true);
    expect(libvirtMessage({ stdout: "", stderr: "error: Failed to start network p\nerror: internal error: No Vf's present on SRIOV PF eth9\n" })).to.equal(
      "Failed to start network p: internal error: No Vf's present on SRIOV PF eth9",
    );
  });
});

/** A transport that runs commands in a local shell: the executor and RemoteHost.batch for real. */
function localTransport(log: string[]): Transport {
  const exec = (command: string, stdin?: Buffer | string) => {
    log.push(command);
    return localShell(command, stdin);
  };
  return {
    name: "root@local:22",
    needsSudo: false,
    exec,
    open: async (): Promise<OpenChannel> => {
      throw new Error("not used");
    },
  };
}

describe("operation executor", () => {
  const op = (description: string, argv: string[], stdin?: string): Operation => ({ description, argv, stdin });

  it("runs steps in order, batching those without stdin into one round trip", async () => {
    const dir = fs.mkdtempSync("/tmp/libvirt-exec-");
    const log: string[] = [];
    const host = new RemoteHost(localTransport(log));
    const f = path.join(dir, "out");
    await execute(host, [
      op("one", ["sh", "-c", 'echo 1 >> "$0"', f]),
      op("two", ["sh", "-c", 'echo 2 >> "$0"', f]),
      { ...op("xml", withXmlFile(["sh", "-c", 'cat "$1" >> "$0"', f, XML_FILE]), "<x/>\n"), shown: "append <xml>" },
      op("three", ["sh", "-c", 'echo 3 >> "$0"', f]),
    ]);
    expect(fs.readFileSync(f, "utf8")).to.equal("1\n2\n<x/>\n3\n");
    expect(log).to.have.length(3);
    fs.rmSync(dir, { recursive: true });
  });

  it("stops at the first failure, naming the command, exit code, stderr, and what was and was not applied", async () => {
    const host = new RemoteHost(localTransport([]));
    let err: any;
    try {
      await execute(host, [
        op("define network p", ["true"]),
        { description: "start network p", argv: ["sh", "-c", "echo 'error: No Vfs present' >&2; exit 1"], explain: (r) => `start network p: ${r.stderr.trim()}` },
        op("mark network p to autostart", ["sh", "-c", "echo never >&2"]),
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PartialApplyError);
    expect(err.applied).to.deep.equal(["define network p"]);
    expect(err.notApplied).to.deep.equal(["start network p", "mark network p to autostart"]);
    expect(err.message).to.include("root@local:22").and.include("exited 1").and.include("No Vfs present").and.include("start network p:");
    expect(err.cause).to.be.instanceOf(HostCommandError);
  });

  it("a first-step failure is a plain host command error", async () => {
    const host = new RemoteHost(localTransport([]));
    let err: any;
    try {
      await execute(host, [op("attach", ["sh", "-c", "exit 3"], "<interface/>")]);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(HostCommandError);
    expect(err.exitCode).to.equal(3);
    expect(failedBeforeAnyChange(err), "nothing was applied").to.equal(true);
  });

  it("runs a failed step's undo and then lists it as applied", async () => {
    const dir = fs.mkdtempSync("/tmp/libvirt-exec-");
    const f = path.join(dir, "count");
    fs.writeFileSync(f, "4\n");
    const host = new RemoteHost(localTransport([]));
    let err: any;
    try {
      await execute(host, [
        {
          description: "set the count to 2",
          argv: ["sh", "-c", 'echo 0 > "$0"; exit 1', f],
          undo: { description: "put back count 4", argv: ["sh", "-c", 'echo 4 > "$0"', f], failed: "putting back count 4 failed too" },
        },
      ]);
    } catch (e) {
      err = e;
    }
    expect(fs.readFileSync(f, "utf8")).to.equal("4\n");
    expect(err).to.be.instanceOf(PartialApplyError);
    expect(err.applied).to.deep.equal(["put back count 4"]);
    expect(err.notApplied).to.deep.equal(["set the count to 2"]);
    expect(failedBeforeAnyChange(err)).to.equal(false);
    fs.rmSync(dir, { recursive: true });
  });
});
