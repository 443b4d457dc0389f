// discover's pure half: the inventory script's output parsed, turned into
// inputs with the safe reading, and printed as stack configuration the fleet
// program accepts.
import { expect } from "chai";
import * as yaml from "js-yaml";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as ts from "typescript";
import { parseInventory } from "../../provider/discover/inventory";
import { adopt, adoptKernelArgs, Note } from "../../provider/discover/adopt";
import { renderProgram, renderReport, renderStackConfig } from "../../provider/discover/render";
import { parseFleetConfig } from "../../examples/fleet/config";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const line = (...c: string[]) => c.join("\t");

const HAND_RULE = 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="enp1s0", ATTR{device/sriov_numvfs}="2"\n';
const NET_XML = "<network><name>passthrough</name><forward mode='hostdev' managed='yes'><pf dev='enp1s0'/></forward></network>";
const DOMAIN_XML = "<domain type='qemu'><name>guest1</name><devices><interface type='network'><source network='passthrough'/></interface></devices></domain>";
const LINKS = JSON.stringify([
  {
    ifname: "enp1s0",
    vfinfo_list: [
      { vf: 0, address: "02:00:00:00:01:00", vlan_list: [{ vlan: 100 }], spoofchk: true, trust: false, link_state: "auto", rate: { max_tx: 0, min_tx: 0 } },
      { vf: 1, address: "00:00:00:00:00:00", vlan_list: [{}], spoofchk: true, trust: false, link_state: "auto", rate: { max_tx: 0, min_tx: 0 } },
    ],
  },
  { ifname: "enp2s0", vfinfo_list: [] },
]);

function inventoryText(extra: string[] = []): string {
  return [
    line("hostname", "hv01"),
    line("cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro intel_iommu=on iommu=pt"),
    line("vendor", "GenuineIntel"),
    line("iommu", "1", "12"),
    line("file", "/etc/udev/rules.d/70-sriov.rules", b64(HAND_RULE)),
    line("pf", "0000:01:00.0", "igb", "7", "2", "1", "0"),
    line("pfnet", "0000:01:00.0", "enp1s0", "52:54:00:5A:00:01", "1500"),
    line("vf", "0000:01:00.0", "0", "0000:01:10.0", "3", "igbvf", "enp1s0v0"),
    line("vf", "0000:01:00.0", "1", "0000:01:10.2", "4", "vfio-pci", "-"),
    line("pf", "0000:02:00.0", "igb", "7", "0", "1", "-1"),
    line("pfnet", "0000:02:00.0", "enp2s0", "52:54:00:5a:00:02", "1500"),
    line("links", b64(LINKS)),
    line("net", "passthrough", "yes", "yes", b64(NET_XML)),
    line("domain", "guest1", "running", b64(DOMAIN_XML)),
    ...extra,
    "end",
  ].join("\n");
}

describe("discover: inventory, adoption and output", () => {
  it("parses PFs, VFs with their ip link attributes, files, networks and domains", () => {
    const inv = parseInventory(inventoryText());
    expect(inv.hostname).to.equal("hv01");
    expect(inv.iommuGroups).to.equal(12);
    expect(inv.pfs.map((p) => [p.pciAddress, p.numVfs, p.numaNode])).to.deep.equal([
      ["0000:01:00.0", 2, 0],
      ["0000:02:00.0", 0, undefined],
    ]);
    expect(inv.pfs[0].netdevs[0].mac).to.equal("52:54:00:5a:00:01");
    expect(inv.pfs[0].vfs[0].attributes).to.include({ mac: "02:00:00:00:01:00", vlan: 100, spoofCheck: true, trust: false });
    expect(inv.pfs[0].vfs[1].driver).to.equal("vfio-pci");
    expect(inv.files["/etc/udev/rules.d/70-sriov.rules"]).to.equal(HAND_RULE);
    expect(inv.networks[0]).to.deep.include({ active: true, autostart: true });
    expect(inv.domains[0].def.name).to.equal("guest1");
  });

  it("refuses output that was cut short", () => {
    expect(() => parseInventory(inventoryText().replace(/\nend$/, ""))).to.throw(/cut short/);
  });

  it("keeps a hand-made udev rule and reads the PF as persist none, naming the rule", () => {
    const a = adopt(parseInventory(inventoryText()), ["intel_iommu=on", "iommu=pt"]);
    expect(a.pfs).to.have.length(1); // the PF with no VFs and no files is left out
    const pf = a.pfs[0];
    expect(pf).to.deep.include({ pciAddress: "0000:01:00.0", numVfs: 2, persist: "none", interface: "enp1s0" });
    expect(pf.mechanisms).to.deep.equal([{ kind: "udev", path: "/etc/udev/rules.d/70-sriov.rules", ours: false }]);
    expect(a.notes.map((n) => n.text).join("\n")).to.match(/70-sriov\.rules \(udev, not written by pulumi-sriov\)/);
    expect(pf.vfs[0]).to.deep.equal({ index: 0, mac: "02:00:00:00:01:00", vlan: 100, spoofCheck: true, trust: false, persist: false });
    // A zero MAC stays zero: leaving it out would make the resource derive one.
    expect(pf.vfs[1]).to.deep.include({ index: 1, mac: "00:00:00:00:00:00", driver: "vfio-pci", persist: false });
    expect(a.poolNetworks).to.deep.equal([{ name: "passthrough", pf: "0000:01:00.0", autostart: true, users: [{ domain: "guest1", state: "running" }] }]);
  });

  it("reads pulumi-sriov's own unit as persist systemd, and a VF unit that is installed as persist true", () => {
    const inv = parseInventory(
      inventoryText([
        line("file", "/etc/systemd/system/pulumi-sriov-pf-0000:01:00.0.service", b64("[Unit]\nDescription=x sriov_numvfs\n")),
        line("file", "/etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-0.service", b64("[Unit]\n")),
        line("wanted", "pulumi-sriov-vf-0000:01:00.0-0.service"),
      ]).replace(/^file\t\/etc\/udev.*\n/m, ""),
    );
    const pf = adopt(inv, undefined).pfs[0];
    expect(pf.persist).to.equal("systemd");
    expect(pf.vfs[0].persist).to.equal(true);
    expect(pf.vfs[1].persist).to.equal(false);
  });

  it("takes the IOMMU and SR-IOV kernel arguments and leaves the rest to the operator", () => {
    const notes: Note[] = [];
    expect(adoptKernelArgs(["root=/dev/sda1", "quiet", "amd_iommu=on", "pci=realloc", "vfio-pci.ids=8086:10ca"], notes)).to.deep.equal({
      iommu: "amd",
      passthrough: false,
      extraArgs: ["pci=realloc", "vfio-pci.ids=8086:10ca"],
    });
    expect(adoptKernelArgs(["root=/dev/sda1", "quiet"], notes)).to.equal(false);
    expect(notes[0].text).to.match(/no IOMMU/);
  });

  it("prints stack configuration the fleet program accepts, and a program and a report", () => {
    const d = { inventory: parseInventory(inventoryText()), adoption: adopt(parseInventory(inventoryText()), ["intel_iommu=on", "iommu=pt"]), checks: [] };
    const target = { name: "hv01", host: "10.0.0.11", port: 22, user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5YAz6RyEiPeiJ2d1LZZ8gcXtH75YJw4WOrWmlelwNo" };
    const text = renderStackConfig(target, d);
    expect(text).to.match(/^# .*70-sriov\.rules/m);
    const config = (yaml.load(text) as any).config;
    const fleet = parseFleetConfig({ hosts: config["sriov-fleet:hosts"] });
    expect(fleet.hosts[0].pfs[0]).to.deep.include({ pciAddress: "0000:01:00.0", numVfs: 2, persist: "none" });
    expect(fleet.hosts[0].kernelArgs).to.deep.include({ iommu: "intel", passthrough: true, reboot: "never" });
    // Import ids keyed by the names SriovHost gives its resources (the fleet parser checks the names exist).
    expect(fleet.hosts[0].imports).to.deep.include({
      "hv01-kernel-args": `iommu-kernel-args@${d.inventory.hostname}`,
      "hv01-0000-01-00.0": "0000:01:00.0",
      "hv01-0000-01-00.0-vf0": "0000:01:00.0/vf0",
      "hv01-0000-01-00.0-vf1": "0000:01:00.0/vf1",
    });
    expect(() => parseFleetConfig({ hosts: [{ ...config["sriov-fleet:hosts"][0], imports: { "hv01-typo": "x" } }] })).to.throw(/imports\.hv01-typo: this host has no resource of that name/);
    const program = renderProgram(target, d);
    expect(program).to.include('new SriovHost("hv01"').and.include('privateKey: config.requireSecret("sshPrivateKey")').and.include('"hv01-0000-01-00.0-vf1": "0000:01:00.0/vf1"');
    expect(renderReport(target, d)).to.match(/PF 0000:01:00\.0 enp1s0 52:54:00:5a:00:01 driver igb: 2 of 7 VFs/);
  });

  it("prints a program that type-checks against the SDK (SriovHost and its imports)", function () {
    this.timeout(60000);
    const d = { inventory: parseInventory(inventoryText()), adoption: adopt(parseInventory(inventoryText()), ["intel_iommu=on", "iommu=pt"]), checks: [] };
    const target = { name: "hv01", host: "10.0.0.11", port: 22, user: "root", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG5YAz6RyEiPeiJ2d1LZZ8gcXtH75YJw4WOrWmlelwNo" };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "discover-program-"));
    try {
      const file = path.join(dir, "index.ts");
      fs.writeFileSync(file, renderProgram(target, d));
      const root = path.resolve(__dirname, "..", "..");
      const program = ts.createProgram([file], {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.CommonJS,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        types: ["node"],
        typeRoots: [path.join(root, "node_modules", "@types")],
        baseUrl: root,
        paths: { "pulumi-sriov": ["sdk"], "@pulumi/pulumi": ["node_modules/@pulumi/pulumi"] },
      });
      const problems = ts.getPreEmitDiagnostics(program).map((x) => ts.flattenDiagnosticMessageText(x.messageText, "\n"));
      expect(problems).to.deep.equal([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
