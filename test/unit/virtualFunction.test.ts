// VirtualFunction pure logic: input checks, parsing of host output, MAC
// derivation, planning (including convergence against a model of the
// kernel's VF state), drift, and the persistence unit.
import { expect } from "chai";
import { execFileSync } from "child_process";
import fc from "fast-check";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { lifecycle } from "../../provider/resource";
import { UNKNOWN } from "../../provider/validate";
import { previewLines, spec } from "../../provider/resources/virtualFunction";
import { factsCommand, HostFacts, parseFacts, parseIpLinks, parseProbe, probeSections, VfAttributes, vfAttributes, vfInfo } from "../../provider/resources/virtualFunction/facts";
import { defaultMac, derivedMac, isLocallyAdministeredUnicast, ZERO_MAC } from "../../provider/resources/virtualFunction/mac";
import { observedInputs, Operation, outputsOf, plan, Resolved, RESET_STATE, resolve, verify } from "../../provider/resources/virtualFunction/plan";
import { RESET, VfInputs, inputsSchema } from "../../provider/resources/virtualFunction/schema";
import { renderUnit, systemdQuote, unitScript } from "../../provider/resources/virtualFunction/unit";

const FIXTURES = path.join(__dirname, "..", "fixtures", "virtualFunction");
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), "utf8");

const conn = { host: "10.0.0.5", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", insecureSkipHostKeyCheck: true };

function inputs(over: Partial<VfInputs> = {}): VfInputs {
  const r = inputsSchema().safeParse({ pf: "enp1s0", index: 1, ...over });
  if (!r.success) throw new Error(JSON.stringify(r.error.issues));
  return r.data;
}

const desired = (over: Partial<Resolved> = {}): Resolved => ({ ...RESET, mac: "02:11:22:33:44:55", persist: false, ...over });

/** A host with one igb PF (enp1s0, 0000:01:00.0, 2 VFs) and VF 1 fresh from the kernel. */
function facts(over: { pf?: Partial<NonNullable<HostFacts["pf"]>>; vf?: Partial<NonNullable<HostFacts["vf"]>>; attributes?: Partial<VfAttributes>; top?: Partial<HostFacts> } = {}): HostFacts {
  return {
    pf: {
      pciAddress: "0000:01:00.0",
      namePciAddress: "0000:01:00.0",
      netdev: "enp1s0",
      driver: "igb",
      operstate: "up",
      carrier: true,
      speed: 1000,
      numVfs: 2,
      totalVfs: 7,
      autoprobe: true,
      ...over.pf,
    },
    vf: {
      pciAddress: "0000:01:10.2",
      driver: "igbvf",
      driverOverride: "",
      netdev: "enp1s0v1",
      netdevMac: "6a:0c:33:0f:7d:21",
      iommuGroup: 12,
      numaNode: -1,
      groupDevices: [{ pciAddress: "0000:01:10.2", driver: "igbvf" }],
      vfioUsers: [],
      ...over.vf,
    },
    attributes: { mac: ZERO_MAC, vlan: 0, qos: 0, vlanProtocol: "802.1Q", spoofCheck: true, trust: false, linkState: "auto", minTxRate: 0, maxTxRate: 0, ...over.attributes },
    otherVfMacs: [{ mac: ZERO_MAC, pf: "enp1s0", index: 0 }],
    vfioPciLoaded: false,
    machineId: "5f1c0a3d2b8e4e6f9a7b1c2d3e4f5a6b",
    unit: { name: "pulumi-sriov-vf-0000:01:00.0-1.service", content: null, enabled: "", active: "inactive" },
    ...over.top,
  };
}

/**
 * A model of what the kernel and systemd do with our operations, to prove
 * plans converge: applying a plan and planning again yields nothing.
 */
function simulate(f: HostFacts, ops: Operation[]): HostFacts {
  const s: HostFacts = JSON.parse(JSON.stringify(f));
  for (const op of ops) {
    if (op.kind === "write") s.unit.content = op.content;
    else if (op.kind === "remove") s.unit.content = null;
    else {
      const a = op.argv;
      if (a[0] === "ip") {
        expect(a.slice(0, 7)).to.deep.equal(["ip", "link", "set", "dev", s.pf!.netdev, "vf", "1"]);
        const w = a.slice(7);
        const at = s.attributes!;
        for (let i = 0; i < w.length; i += 2) {
          const v = w[i + 1];
          switch (w[i]) {
            case "mac": at.mac = v; break;
            case "vlan": at.vlan = Number(v); at.qos = 0; at.vlanProtocol = "802.1Q"; break;
            case "qos": at.qos = Number(v); break;
            case "proto": at.vlanProtocol = v as any; break;
            case "spoofchk": at.spoofCheck = v === "on"; break;
            case "trust": at.trust = v === "on"; break;
            case "state": at.linkState = v as any; break;
            case "min_tx_rate": at.minTxRate = Number(v); break;
            case "max_tx_rate": at.maxTxRate = Number(v); break;
            default: throw new Error(`unexpected ip word ${w[i]}`);
          }
        }
      } else if (a[0] === "sh" && a[2].includes('systemctl "$@"')) {
        // start-unit.sh: starts, and enables when asked
        s.unit.active = "active";
        if (a[5] === "enable") s.unit.enabled = "enabled";
      }
      else if (a[0] === "sh" && a[2].includes("daemon-reload")) {
        // reloads only: nothing the model tracks
      } else if (a[0] === "sh") {
        const [, , , , value, target] = a;
        const vf = s.vf!;
        if (target.endsWith("/driver_override")) vf.driverOverride = value;
        else if (target.endsWith("/driver/unbind")) { vf.driver = ""; vf.netdev = ""; vf.netdevMac = ""; }
        else if (target === "/sys/bus/pci/drivers_probe") {
          if (!vf.driver) vf.driver = vf.driverOverride || (s.pf!.autoprobe ? "igbvf" : "");
          if (vf.driver === "igbvf") {
            // igbvf without an administrative MAC picks a random one and tells the PF.
            if (s.attributes!.mac === ZERO_MAC) s.attributes!.mac = "6a:00:00:00:00:99";
            vf.netdev = "enp1s0v1";
            vf.netdevMac = s.attributes!.mac;
          }
        } else throw new Error(`unexpected sysfs write to ${target}`);
      } else if (a[0] === "modprobe") s.vfioPciLoaded = true;
      else if (a[0] === "systemctl") {
        if (a[1] === "enable") s.unit.enabled = "enabled";
        else if (a[1] === "disable") {
          s.unit.enabled = "disabled";
          if (a.includes("--now")) s.unit.active = "inactive";
        }
        else if (a[1] === "start") s.unit.active = "active";
        else if (a[1] === "stop") s.unit.active = "inactive";
        else if (a[1] !== "daemon-reload") throw new Error(`unexpected systemctl ${a[1]}`);
      } else throw new Error(`unexpected command ${a.join(" ")}`);
    }
  }
  return s;
}

const runs = (ops: Operation[]) => ops.map((o) => (o.kind === "run" ? o.argv.join(" ") : `${o.kind} ${o.path}`));

describe("VirtualFunction inputs", () => {
  const provider = lifecycle(spec);

  it("fills the kernel defaults for attributes left out", async () => {
    const r = await provider.check({}, { connection: conn, pf: "enp1s0", index: 3 });
    expect(r.failures).to.deep.equal([]);
    // No host answers here: preview's host changes say it was not checked.
    const { connection: _c, hostChanges, ...rest } = r.inputs;
    expect(hostChanges).to.have.length(1);
    expect(hostChanges[0]).to.match(/^\(not checked\) /);
    expect(rest).to.deep.equal({
      pf: "enp1s0",
      index: 3,
      qos: 0,
      vlanProtocol: "802.1Q",
      spoofCheck: true,
      trust: false,
      linkState: "auto",
      minTxRate: 0,
      maxTxRate: 0,
      driver: "default",
      persist: true,
    });
  });

  it("reports every bad property at once, each by name", async () => {
    const r = await provider.check({}, {
      connection: conn,
      pf: "bad/name",
      index: -1,
      mac: "01:00:5e:00:00:01",
      vlan: 5000,
      qos: 9,
      vlanProtocol: "802.1x",
      spoofCheck: "yes",
      linkState: "up",
      maxTxRate: -5,
      driver: "igbvf",
      colour: "blue",
    });
    const props = r.failures.map((f) => f.property).sort();
    expect(props).to.include.members(["pf", "index", "mac", "vlan", "qos", "vlanProtocol", "spoofCheck", "linkState", "maxTxRate", "driver"]);
    expect(r.failures.find((f) => f.property === "mac")!.reason).to.match(/unicast/);
    expect(r.failures.find((f) => f.property === "driver")!.reason).to.match(/"default" or "vfio-pci"/);
    expect(r.failures.some((f) => /colour/.test(f.property + f.reason))).to.equal(true);
  });

  it("reports a bad value once, not again through the rules between properties", async () => {
    const r = await provider.check({}, { connection: conn, pf: "enp1s0", index: 0, qos: 9, vlanProtocol: "802.1x", maxTxRate: -5, minTxRate: 3 });
    expect(r.failures.map((f) => f.property).sort()).to.deep.equal(["maxTxRate", "qos", "vlanProtocol"]);
  });

  it("needs a vlan for qos and 802.1ad, and minTxRate within maxTxRate", async () => {
    const r = await provider.check({}, { connection: conn, pf: "enp1s0", index: 0, qos: 3, vlanProtocol: "802.1ad", minTxRate: 200, maxTxRate: 100 });
    expect(r.failures.map((f) => f.property).sort()).to.deep.equal(["minTxRate", "qos", "vlanProtocol"]);
    expect(r.failures.find((f) => f.property === "qos")!.reason).to.match(/needs vlan/);
    const ok = await provider.check({}, { connection: conn, pf: "enp1s0", index: 0, vlan: 0, qos: 3, minTxRate: 100, maxTxRate: 0 });
    expect(ok.failures).to.deep.equal([]);
  });

  it("normalises MACs and accepts all zeros as no administrative MAC", () => {
    expect(inputs({ mac: "02-AB-CD-EF-00-01" }).mac).to.equal("02:ab:cd:ef:00:01");
    expect(inputs({ mac: ZERO_MAC }).mac).to.equal(ZERO_MAC);
  });

  it("lets values still unknown in a preview pass", async () => {
    const r = await provider.check({}, { connection: conn, pf: UNKNOWN, index: 2, vlan: UNKNOWN, qos: 2 });
    expect(r.failures).to.deep.equal([]);
  });

  it("replaces on another PF or index, updates in place otherwise", async () => {
    const olds = { connection: conn, applied: inputs({ index: 1 }) };
    const d1 = await provider.diff("x", olds, { connection: conn, ...inputs({ index: 2 }) });
    expect(d1.replaces).to.deep.equal(["index"]);
    const d2 = await provider.diff("x", olds, { connection: conn, ...inputs({ index: 1, vlan: 10 }) });
    expect(d2).to.deep.include({ changes: true, replaces: [] });
    const d3 = await provider.diff("x", olds, { connection: conn, ...inputs({ index: 1 }) });
    expect(d3.changes).to.equal(false);
  });
});

describe("VirtualFunction host output parsing", () => {
  // Both files are the probe's output captured on the lab host (igb PF, igbvf VFs).
  it("reads PF, VF, driver, IOMMU group, attributes and unit (captured: VF 1 configured)", () => {
    const f = parseFacts(1, fixture("probe-igb-vf1.txt"));
    expect(f.pf).to.deep.equal({
      pciAddress: "0000:01:00.0",
      namePciAddress: "0000:01:00.0",
      netdev: "enp1s0",
      driver: "igb",
      operstate: "up",
      carrier: true,
      speed: 1000,
      numVfs: 3,
      totalVfs: 7,
      autoprobe: true,
    });
    expect(f.vf).to.deep.equal({
      pciAddress: "0000:01:10.2",
      driver: "igbvf",
      driverOverride: "",
      netdev: "enp1s0v1",
      netdevMac: "02:00:00:00:00:22",
      iommuGroup: 9,
      numaNode: -1,
      groupDevices: [{ pciAddress: "0000:01:10.2", driver: "igbvf" }],
      vfioUsers: [],
    });
    expect(f.attributes).to.deep.equal({ mac: "02:00:00:00:00:22", vlan: 42, qos: 5, vlanProtocol: "802.1Q", spoofCheck: false, trust: true, linkState: "auto", minTxRate: 0, maxTxRate: 50 });
    expect(f.otherVfMacs.map((o) => `${o.pf}/${o.index}`)).to.deep.equal(["enp1s0/0", "enp1s0/2"]);
    expect(f.unit).to.deep.equal({ name: "pulumi-sriov-vf-0000:01:00.0-1.service", content: null, enabled: "", active: "inactive", stale: false });
    expect(f.machineId).to.equal("1f7ebed7891a4b11a26778bb9c26564c");
    expect(f.vfioPciLoaded).to.equal(true);
  });

  it("reads a vfio-pci binding, the process holding its group, and the unit (captured: VF 2)", () => {
    const f = parseFacts(2, fixture("probe-igb-vf2-vfio.txt"));
    expect(f.vf).to.deep.include({ pciAddress: "0000:01:10.4", driver: "vfio-pci", driverOverride: "vfio-pci", netdev: "", netdevMac: "", iommuGroup: 10 });
    expect(f.vf!.groupDevices).to.deep.equal([{ pciAddress: "0000:01:10.4", driver: "vfio-pci" }]);
    expect(f.vf!.vfioUsers).to.deep.equal([{ pid: 648, command: "sleep" }]);
    expect(f.vfioPciLoaded).to.equal(true);
    expect(f.unit.enabled).to.equal("enabled");
    expect(f.unit.active).to.equal("active");
    expect(f.unit.content).to.match(/^\[Unit\]\nDescription=fixture\n/);
    expect(f.unit.content!.endsWith("WantedBy=multi-user.target\n")).to.equal(true);
  });

  it("splits the sections exactly, keeping the unit file byte for byte", () => {
    const unit = "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n";
    const out = `pf_name_pci=\nunit_name=u\n@@ip\n[]\n\n@@ip-exit=0\n@@unit\n${unit}`;
    expect(probeSections(out)).to.deep.equal({ head: "pf_name_pci=\nunit_name=u\n", ip: "[]\n", ipExit: 0, unit });
    expect(probeSections("@@ip\n[]\n\n@@ip-exit=1\n")).to.deep.equal({ head: "", ip: "[]\n", ipExit: 1, unit: null });
    expect(() => probeSections("pf_name_pci=\n")).to.throw(/no ip section/);
    expect(() => parseFacts(0, "@@ip\n\n@@ip-exit=255\n")).to.throw(/exited 255/);
  });

  it("has no PF without pf_pci, no VF without vf_pci", () => {
    expect(parseProbe("pf_name_pci=\nmachine_id=abc\n").pf).to.equal(undefined);
    const p = parseProbe("pf_pci=0000:01:00.0\npf_netdev=enp1s0\npf_numvfs=0\n");
    expect(p.pf!.numVfs).to.equal(0);
    expect(p.vf).to.equal(undefined);
  });

  it("reads vlan, qos, protocol, rates, spoof check, trust and link state from vfinfo_list", () => {
    const a = vfAttributes({
      vf: 1,
      address: "02:AA:BB:CC:DD:EE",
      vlan_list: [{ vlan: 100, qos: 3, protocol: "802.1ad" }],
      rate: { max_tx: 500, min_tx: 10 },
      spoofchk: false,
      trust: true,
      link_state: "disable",
    });
    expect(a).to.deep.equal({ mac: "02:aa:bb:cc:dd:ee", vlan: 100, qos: 3, vlanProtocol: "802.1ad", spoofCheck: false, trust: true, linkState: "disable", minTxRate: 10, maxTxRate: 500 });
    // Zero fields and 802.1Q are left out by iproute2.
    expect(vfAttributes({ vf: 0, address: "00:00:00:00:00:00", vlan_list: [{}], rate: { max_tx: 0, min_tx: 0 } })).to.deep.include({ vlan: 0, qos: 0, vlanProtocol: "802.1Q", minTxRate: 0, maxTxRate: 0 });
  });

  it("finds the VF on its PF and every other VF's MAC", () => {
    const links = parseIpLinks(
      JSON.stringify([
        { ifname: "lo" },
        { ifname: "enp1s0", vfinfo_list: [{ vf: 0, address: "02:00:00:00:00:01" }, { vf: 1, address: "02:00:00:00:00:02" }] },
        { ifname: "enp2s0", vfinfo_list: [{ vf: 1, address: "02:00:00:00:00:03" }] },
      ]),
    );
    const r = vfInfo(links, "enp1s0", 1);
    expect(r.attributes!.mac).to.equal("02:00:00:00:00:02");
    expect(r.otherVfMacs.map((o) => `${o.pf}/${o.index}`)).to.deep.equal(["enp1s0/0", "enp2s0/1"]);
  });
});

describe("VirtualFunction probe script on a fake sysfs", () => {
  let root: string;
  let bin: string;
  const w = (p: string, content: string) => {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), content);
  };
  const ln = (p: string, target: string) => {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.symlinkSync(target, path.join(root, p));
  };
  const dir = (p: string) => fs.mkdirSync(path.join(root, p), { recursive: true });
  const run = (pf: string, stored: string, index: number, opts: { systemd?: boolean } = {}) => {
    const argv = factsCommand(pf, stored, index, root, opts);
    return execFileSync(argv[0], argv.slice(1), { encoding: "utf8", env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  };

  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "vf-probe-"));
    bin = path.join(root, "bin");
    const dev = "/sys/bus/pci/devices";
    for (const d of ["igb", "igbvf", "vfio-pci"]) dir(`/sys/bus/pci/drivers/${d}`);
    // PF 0000:01:00.0 (enp1s0) with VFs 0 (igbvf) and 1 (vfio-pci, group shared with an unbound device).
    w(`${dev}/0000:01:00.0/sriov_numvfs`, "2\n");
    w(`${dev}/0000:01:00.0/sriov_totalvfs`, "7\n");
    w(`${dev}/0000:01:00.0/sriov_drivers_autoprobe`, "1\n");
    dir(`${dev}/0000:01:00.0/net/enp1s0`);
    ln(`${dev}/0000:01:00.0/driver`, "../../drivers/igb");
    ln(`${dev}/0000:01:00.0/virtfn0`, "../0000:01:10.0");
    ln(`${dev}/0000:01:00.0/virtfn1`, "../0000:01:10.2");
    ln("/sys/class/net/enp1s0/device", "../../../bus/pci/devices/0000:01:00.0");
    w("/sys/class/net/enp1s0/operstate", "up\n");
    w("/sys/class/net/enp1s0/carrier", "1\n");
    w("/sys/class/net/enp1s0/speed", "1000\n");
    w(`${dev}/0000:01:10.0/driver_override`, "(null)\n");
    w(`${dev}/0000:01:10.0/numa_node`, "-1\n");
    w(`${dev}/0000:01:10.0/net/enp1s0v0/address`, "02:aa:00:00:00:01\n");
    ln(`${dev}/0000:01:10.0/driver`, "../../drivers/igbvf");
    ln(`${dev}/0000:01:10.0/iommu_group`, "../../../../kernel/iommu_groups/8");
    ln("/sys/kernel/iommu_groups/8/devices/0000:01:10.0", `../../../../bus/pci/devices/0000:01:10.0`);
    w(`${dev}/0000:01:10.2/driver_override`, "vfio-pci\n");
    w(`${dev}/0000:01:10.2/numa_node`, "0\n");
    ln(`${dev}/0000:01:10.2/driver`, "../../drivers/vfio-pci");
    ln(`${dev}/0000:01:10.2/iommu_group`, "../../../../kernel/iommu_groups/9");
    dir(`${dev}/0000:01:10.3`);
    ln("/sys/kernel/iommu_groups/9/devices/0000:01:10.2", `../../../../bus/pci/devices/0000:01:10.2`);
    ln("/sys/kernel/iommu_groups/9/devices/0000:01:10.3", `../../../../bus/pci/devices/0000:01:10.3`);
    w("/dev/vfio/9", "");
    ln("/proc/4242/fd/7", "/dev/vfio/9");
    ln("/proc/4242/fd/8", "/dev/vfio/9");
    w("/proc/4242/comm", "qemu-system-x86\n");
    dir("/proc/77/fd");
    w("/etc/machine-id", "abc123\n");
    w("/etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-1.service", "[Unit]\nDescription=vf 1\n");
    ln("/etc/systemd/system/multi-user.target.wants/pulumi-sriov-vf-0000:01:00.0-1.service", "../pulumi-sriov-vf-0000:01:00.0-1.service");
    // systemctl and ip answer as on a host. Enablement is read from the install link, not from systemctl.
    w("/bin/systemctl", '#!/bin/sh\ncase "$*" in *-1.service*) printf "ActiveState=active\\n" ;; *) printf "ActiveState=inactive\\n" ;; esac\n');
    w("/bin/ip", `#!/bin/sh\ncat ${JSON.stringify(path.join(root, "ip.json"))}\n`);
    fs.chmodSync(path.join(bin, "systemctl"), 0o755);
    fs.chmodSync(path.join(bin, "ip"), 0o755);
    w(
      "/ip.json",
      JSON.stringify([
        { ifname: "enp1s0", vfinfo_list: [{ vf: 0, address: "02:aa:00:00:00:01", vlan_list: [{}], spoofchk: true, trust: false, link_state: "auto", rate: { max_tx: 0, min_tx: 0 } }, { vf: 1, address: "02:aa:00:00:00:02", vlan_list: [{ vlan: 9 }] }] },
      ]),
    );
  });

  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("reads a VF bound to its default driver", () => {
    const f = parseFacts(0, run("enp1s0", "", 0));
    expect(f.pf).to.deep.equal({ pciAddress: "0000:01:00.0", namePciAddress: "0000:01:00.0", netdev: "enp1s0", driver: "igb", operstate: "up", carrier: true, speed: 1000, numVfs: 2, totalVfs: 7, autoprobe: true });
    expect(f.vf).to.deep.equal({
      pciAddress: "0000:01:10.0",
      driver: "igbvf",
      driverOverride: "",
      netdev: "enp1s0v0",
      netdevMac: "02:aa:00:00:00:01",
      iommuGroup: 8,
      numaNode: -1,
      groupDevices: [{ pciAddress: "0000:01:10.0", driver: "igbvf" }],
      vfioUsers: [],
    });
    expect(f.attributes!.mac).to.equal("02:aa:00:00:00:01");
    expect(f.machineId).to.equal("abc123");
    expect(f.vfioPciLoaded).to.equal(true);
    expect(f.unit).to.deep.equal({ name: "pulumi-sriov-vf-0000:01:00.0-0.service", content: null, enabled: "", active: "inactive", stale: false });
  });

  it("reads a vfio-pci VF: its group's devices, the process holding the group, the unit", () => {
    const f = parseFacts(1, run("enp1s0", "", 1));
    expect(f.vf).to.deep.include({ pciAddress: "0000:01:10.2", driver: "vfio-pci", driverOverride: "vfio-pci", netdev: "", netdevMac: "", iommuGroup: 9, numaNode: 0 });
    expect(f.vf!.groupDevices).to.deep.equal([
      { pciAddress: "0000:01:10.2", driver: "vfio-pci" },
      { pciAddress: "0000:01:10.3", driver: "" },
    ]);
    expect(f.vf!.vfioUsers).to.deep.equal([{ pid: 4242, command: "qemu-system-x86" }]);
    expect(f.attributes).to.deep.include({ mac: "02:aa:00:00:00:02", vlan: 9 });
    expect(f.unit).to.deep.equal({ name: "pulumi-sriov-vf-0000:01:00.0-1.service", content: "[Unit]\nDescription=vf 1\n", enabled: "enabled", active: "active", stale: false });
  });

  it("leaves out systemd's state of the unit when asked (the read-back after a change), and only that", () => {
    const full = parseFacts(1, run("enp1s0", "", 1));
    const light = parseFacts(1, run("enp1s0", "", 1, { systemd: false }));
    expect(light.unit.active).to.equal("");
    expect({ ...light, unit: { ...light.unit, active: full.unit.active } }).to.deep.equal(full);
  });

  it("finds the PF by the stored PCI address when its name changed, and reports a missing VF or PF", () => {
    const renamed = parseFacts(0, run("eth9", "0000:01:00.0", 0));
    expect(renamed.pf).to.deep.include({ pciAddress: "0000:01:00.0", namePciAddress: "", netdev: "enp1s0" });
    const noVf = parseFacts(5, run("enp1s0", "", 5));
    expect(noVf.pf!.numVfs).to.equal(2);
    expect(noVf.vf).to.equal(undefined);
    expect(noVf.attributes).to.equal(undefined);
    const noPf = parseFacts(0, run("eth9", "", 0));
    expect(noPf.pf).to.equal(undefined);
    expect(noPf.unit.name).to.equal("");
    // A PF gone from the bus still names its unit, so delete can remove it.
    const gone = parseFacts(1, run("eth9", "0000:09:00.0", 1));
    expect(gone.pf).to.equal(undefined);
    expect(gone.unit.name).to.equal("pulumi-sriov-vf-0000:09:00.0-1.service");
  });
});

describe("VirtualFunction default MAC", () => {
  it("is a deterministic, locally administered unicast MAC (property)", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.nat(4095), (host, pci, index) => {
        const m = derivedMac(host, pci, index);
        expect(m).to.match(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
        expect(isLocallyAdministeredUnicast(m)).to.equal(true);
        expect(derivedMac(host, pci, index)).to.equal(m);
      }),
    );
  });

  it("differs per host, PF and index", () => {
    const all = new Set<string>();
    for (const h of ["a", "b"]) for (const p of ["0000:01:00.0", "0000:02:00.0"]) for (let i = 0; i < 64; i++) all.add(derivedMac(h, p, i));
    expect(all.size).to.equal(2 * 2 * 64);
  });

  it("steps past a MAC another VF already has", () => {
    const first = derivedMac("h", "0000:01:00.0", 3);
    const m = defaultMac("h", "0000:01:00.0", 3, new Set([first]));
    expect(m).to.not.equal(first);
    expect(m).to.equal(derivedMac("h", "0000:01:00.0", 3, 1));
  });

  it("resolve derives it from the host's machine id, PF PCI address and index", () => {
    const f = facts();
    const { desired: d, problems } = resolve(inputs(), f);
    expect(problems).to.deep.equal([]);
    expect(d.mac).to.equal(derivedMac(f.machineId, "0000:01:00.0", 1));
  });

  it("refuses a given MAC another VF has, naming it", () => {
    const f = facts({ top: { otherVfMacs: [{ mac: "02:00:00:00:00:09", pf: "enp2s0", index: 4 }] } });
    const { problems } = resolve(inputs({ mac: "02:00:00:00:00:09" }), f);
    expect(problems).to.deep.equal(["mac 02:00:00:00:00:09 is already the MAC of VF 4 of enp2s0; VF MACs must be unique on a host"]);
  });
});

describe("VirtualFunction planning", () => {
  const opts = { pfName: "enp1s0" };

  describe("preview (hostChanges)", () => {
    it("lists the operations an up would run", () => {
      const lines = previewLines(facts(), inputs({ vlan: 100, qos: 3 }));
      expect(lines).to.include("VF 1 of enp1s0 (0000:01:00.0): set vlan 100 qos 3");
      expect(lines.every((l) => !l.startsWith("refused:"))).to.equal(true);
    });

    it("is empty when the VF already is as the inputs say", () => {
      const i = inputs({ mac: "02:11:22:33:44:55", vlan: 7, persist: false });
      const f = facts({ attributes: { mac: i.mac, vlan: 7 }, vf: { netdevMac: i.mac } });
      expect(previewLines(f, i)).to.deep.equal([]);
    });

    it("lists what it refuses instead, one line each", () => {
      const lines = previewLines(facts(), inputs({ minTxRate: 10, maxTxRate: 100, linkState: "enable" }));
      expect(lines).to.deep.equal([
        "refused: linkState = enable is not supported by the igb driver of PF enp1s0 (0000:01:00.0): igb cannot set a VF's link state",
        "refused: minTxRate = 10 is not supported by the igb driver of PF enp1s0 (0000:01:00.0): igb has no minimum TX rate for VFs",
      ]);
    });
  });

  it("sets each attribute that differs, with the PF's current name", () => {
    const d = desired({ vlan: 100, qos: 3, spoofCheck: false, trust: true, maxTxRate: 300 });
    const p = plan(facts(), 1, d, opts);
    expect(p.problems).to.deep.equal([]);
    expect(runs(p.ops)).to.deep.equal([
      "ip link set dev enp1s0 vf 1 vlan 100 qos 3",
      "ip link set dev enp1s0 vf 1 min_tx_rate 0 max_tx_rate 300",
      "ip link set dev enp1s0 vf 1 mac 02:11:22:33:44:55",
      "ip link set dev enp1s0 vf 1 spoofchk off",
      "ip link set dev enp1s0 vf 1 trust on",
      `sh -c printf "%s\\n" "$1" > "$2" sh 0000:01:10.2 /sys/bus/pci/devices/0000:01:10.2/driver/unbind`,
      `sh -c printf "%s\\n" "$1" > "$2" sh 0000:01:10.2 /sys/bus/pci/drivers_probe`,
    ]);
    expect(p.ops.map((o) => o.description)).to.include("VF 1 of enp1s0 (0000:01:00.0): set vlan 100 qos 3");
  });

  it("rebinds the default driver after a MAC change so the VF's interface uses it", () => {
    const p = plan(facts({ attributes: { mac: "02:11:22:33:44:55" } }), 1, desired(), opts);
    expect(p.ops.map((o) => o.description)).to.deep.equal([
      "VF 1 of enp1s0 (0000:01:00.0): unbind 0000:01:10.2 from igbvf",
      "VF 1 of enp1s0 (0000:01:00.0): probe 0000:01:10.2 (enp1s0v1 takes mac 02:11:22:33:44:55)",
    ]);
  });

  it("plans nothing for a VF that is already as wanted", () => {
    const d = desired({ vlan: 7, trust: true });
    const f = facts({ attributes: { mac: d.mac, vlan: 7, trust: true }, vf: { netdevMac: d.mac } });
    expect(plan(f, 1, d, opts)).to.deep.equal({ ops: [], problems: [], warnings: [] });
  });

  it("converges in one apply from any state, and then plans nothing (property)", () => {
    const mac = fc.constantFrom(ZERO_MAC, "02:11:22:33:44:55", "0a:00:00:00:00:01");
    const attrs = fc.record({
      mac,
      vlan: fc.constantFrom(0, 1, 4095),
      qos: fc.integer({ min: 0, max: 7 }),
      vlanProtocol: fc.constantFrom("802.1Q" as const, "802.1ad" as const),
      spoofCheck: fc.boolean(),
      trust: fc.boolean(),
      linkState: fc.constantFrom("auto" as const, "enable" as const, "disable" as const),
      minTxRate: fc.constantFrom(0, 10),
      maxTxRate: fc.constantFrom(0, 100, 1000),
    });
    const driverState = fc.constantFrom(
      { driver: "igbvf", driverOverride: "", netdev: "enp1s0v1" },
      { driver: "vfio-pci", driverOverride: "vfio-pci", netdev: "" },
      { driver: "vfio-pci", driverOverride: "", netdev: "" },
      { driver: "", driverOverride: "", netdev: "" },
      { driver: "", driverOverride: "vfio-pci", netdev: "" },
    );
    fc.assert(
      fc.property(attrs, attrs, driverState, fc.constantFrom("default" as const, "vfio-pci" as const), fc.boolean(), fc.constantFrom(null, "old unit"), fc.boolean(), (cur, want, drv, driver, persist, unitContent, ours) => {
        // mlx5-like PF: no refusals known, so every attribute is plannable.
        const f = facts({ pf: { driver: "mlx5_core" }, attributes: cur, vf: { ...drv, netdevMac: drv.netdev ? "6a:00:00:00:00:01" : "" }, top: { unit: { name: "u", content: unitContent, enabled: "", active: "inactive" } } });
        const d: Resolved = { ...want, driver, persist };
        const p1 = plan(f, 1, d, { ...opts, ownMac: ours ? cur.mac : undefined });
        expect(p1.problems).to.deep.equal([]);
        const after = simulate(f, p1.ops);
        expect(verify(after, 1, d)).to.deep.equal([]);
        expect(plan(after, 1, d, { ...opts, ownMac: d.mac }).ops).to.deep.equal([]);
      }),
      { numRuns: 300 },
    );
  });

  describe("attributes the driver refuses", () => {
    it("names attribute, value and driver before changing anything (igb)", () => {
      const p = plan(facts(), 1, desired({ minTxRate: 10, maxTxRate: 100, linkState: "enable", vlan: 5, vlanProtocol: "802.1ad" }), opts);
      expect(p.problems).to.deep.equal([
        "vlanProtocol = 802.1ad is not supported by the igb driver of PF enp1s0 (0000:01:00.0): igb tags VFs with 802.1Q only",
        "linkState = enable is not supported by the igb driver of PF enp1s0 (0000:01:00.0): igb cannot set a VF's link state",
        "minTxRate = 10 is not supported by the igb driver of PF enp1s0 (0000:01:00.0): igb has no minimum TX rate for VFs",
      ]);
    });

    it("says why maxTxRate cannot be set on a PF without link", () => {
      const down = plan(facts({ pf: { operstate: "down", carrier: undefined, speed: undefined } }), 1, desired({ maxTxRate: 100 }), opts);
      expect(down.problems).to.deep.equal([
        "maxTxRate = 100: the igb driver sets VF rate limits only while the PF has a link, and enp1s0 is down (bring it up, with a cable or peer connected)",
      ]);
      const noCarrier = plan(facts({ pf: { operstate: "down", carrier: false } }), 1, desired({ maxTxRate: 100 }), opts);
      expect(noCarrier.problems[0]).to.match(/enp1s0 is down with no carrier/);
      const tooFast = plan(facts(), 1, desired({ maxTxRate: 2000 }), opts);
      expect(tooFast.problems).to.deep.equal(["maxTxRate = 2000 exceeds the link speed of PF enp1s0 (1000 Mbit/s)"]);
    });

    it("keeps defaults that a driver cannot set off the plan (igb: state auto, rates 0)", () => {
      const p = plan(facts({ pf: { operstate: "down", carrier: false } }), 1, desired({ mac: ZERO_MAC }), opts);
      expect(p).to.deep.equal({ ops: [], problems: [], warnings: [] });
    });
  });

  describe("vfio-pci", () => {
    it("binds through driver_override, never new_id", () => {
      const d = desired({ driver: "vfio-pci", mac: ZERO_MAC });
      const p = plan(facts(), 1, d, opts);
      expect(p.problems).to.deep.equal([]);
      expect(p.ops.map((o) => o.description)).to.deep.equal([
        "load the vfio-pci module",
        "VF 1 of enp1s0 (0000:01:00.0): set driver_override of 0000:01:10.2 to vfio-pci",
        "VF 1 of enp1s0 (0000:01:00.0): unbind 0000:01:10.2 from igbvf",
        "VF 1 of enp1s0 (0000:01:00.0): probe 0000:01:10.2 (binds vfio-pci)",
      ]);
      expect(JSON.stringify(p.ops)).to.not.include("new_id");
      const w = p.ops[1] as Extract<Operation, { kind: "run" }>;
      expect(w.argv.slice(4)).to.deep.equal(["vfio-pci", "/sys/bus/pci/devices/0000:01:10.2/driver_override"]);
    });

    it("refuses a group the host still uses, listing its devices", () => {
      const f = facts({ vf: { groupDevices: [{ pciAddress: "0000:01:00.0", driver: "igb" }, { pciAddress: "0000:01:10.2", driver: "igbvf" }, { pciAddress: "0000:00:1c.0", driver: "pcieport" }] } });
      const p = plan(f, 1, desired({ driver: "vfio-pci", mac: ZERO_MAC }), opts);
      expect(p.problems).to.have.length(1);
      expect(p.problems[0]).to.include("IOMMU group 12 of VF 1 of enp1s0 (0000:01:00.0) is not viable");
      expect(p.problems[0]).to.include("0000:01:00.0 (igb), 0000:01:10.2 (igbvf), 0000:00:1c.0 (pcieport)");
      expect(p.problems[0]).to.include("0000:01:00.0 through igb");
    });

    it("says the IOMMU is off when the VF has no group", () => {
      const p = plan(facts({ vf: { iommuGroup: -1, groupDevices: [] } }), 1, desired({ driver: "vfio-pci", mac: ZERO_MAC }), opts);
      expect(p.problems[0]).to.match(/no IOMMU group, so the IOMMU is off/);
    });

    it("rebinds the default driver when switched back, unless a guest holds the VF", () => {
      const bound = facts({ vf: { driver: "vfio-pci", driverOverride: "vfio-pci", netdev: "", netdevMac: "" } });
      const p = plan(bound, 1, desired({ mac: ZERO_MAC }), opts);
      expect(runs(p.ops)).to.deep.equal([
        `sh -c printf "%s\\n" "$1" > "$2" sh  /sys/bus/pci/devices/0000:01:10.2/driver_override`,
        `sh -c printf "%s\\n" "$1" > "$2" sh 0000:01:10.2 /sys/bus/pci/devices/0000:01:10.2/driver/unbind`,
        `sh -c printf "%s\\n" "$1" > "$2" sh 0000:01:10.2 /sys/bus/pci/drivers_probe`,
      ]);
      const used = facts({ vf: { driver: "vfio-pci", driverOverride: "vfio-pci", vfioUsers: [{ pid: 4242, command: "qemu-system-x86" }] } });
      expect(plan(used, 1, desired({ mac: ZERO_MAC }), opts).problems).to.deep.equal([
        "driver = default: VF 1 of enp1s0 (0000:01:00.0) is bound to vfio-pci and in use by qemu-system-x86 (pid 4242); detach it from the guest (or stop the guest) first",
      ]);
    });
  });

  describe("persistence", () => {
    it("writes, enables and starts the unit", () => {
      const d = desired({ persist: true });
      const f = facts({ attributes: { mac: d.mac }, vf: { netdevMac: d.mac } });
      expect(plan(f, 1, d, opts).ops.map((o) => o.description)).to.deep.equal([
        "write /etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-1.service",
        "enable pulumi-sriov-vf-0000:01:00.0-1.service (runs at boot) and start it",
      ]);
      const done = facts({ attributes: { mac: d.mac }, vf: { netdevMac: d.mac }, top: { unit: { name: "u", content: renderUnit("0000:01:00.0", 1, d), enabled: "enabled", active: "active" } } });
      expect(plan(done, 1, d, opts).ops).to.deep.equal([]);
    });

    it("reloads systemd when the file is right but systemd holds an older version (a run cut off after the write)", () => {
      const d = desired({ persist: true });
      const unit = { name: "u", content: renderUnit("0000:01:00.0", 1, d), enabled: "enabled", active: "inactive", stale: true };
      const f = facts({ attributes: { mac: d.mac }, vf: { netdevMac: d.mac }, top: { unit } });
      expect(plan(f, 1, d, opts).ops.map((o) => o.description)).to.deep.equal([
        "reload systemd units if it has not loaded pulumi-sriov-vf-0000:01:00.0-1.service as written",
        "start pulumi-sriov-vf-0000:01:00.0-1.service",
      ]);
    });

    it("a changed unit that systemd holds is read again, not started again; a new one needs no reload", () => {
      const d = desired({ persist: true });
      const old = renderUnit("0000:01:00.0", 1, desired({ persist: true, vlan: 7 }));
      const held = facts({ attributes: { mac: d.mac }, vf: { netdevMac: d.mac }, top: { unit: { name: "u", content: old, enabled: "enabled", active: "active" } } });
      expect(plan(held, 1, d, opts).ops.map((o) => o.description)).to.deep.equal([
        "write /etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-1.service",
        "reload systemd units if it has not loaded pulumi-sriov-vf-0000:01:00.0-1.service as written",
      ]);
      const stopped = facts({ attributes: { mac: d.mac }, vf: { netdevMac: d.mac }, top: { unit: { name: "u", content: renderUnit("0000:01:00.0", 1, d), enabled: "enabled", active: "failed" } } });
      expect(plan(stopped, 1, d, opts).ops.map((o) => o.description)).to.deep.equal(["start pulumi-sriov-vf-0000:01:00.0-1.service"]);
    });

    it("reads systemd's NeedDaemonReload as a stale unit", () => {
      const head = "unit_name=pulumi-sriov-vf-0000:01:00.0-1.service\nunit_wanted=1\nActiveState=inactive\nNeedDaemonReload=yes\n";
      expect(parseProbe(head, "x").unit).to.deep.include({ enabled: "enabled", active: "inactive", stale: true });
      expect(parseProbe(head.replace("=yes", "=no"), "x").unit.stale).to.equal(false);
    });

    it("removes it when persist is off", () => {
      const d = desired();
      const f = facts({ attributes: { mac: d.mac }, vf: { netdevMac: d.mac }, top: { unit: { name: "u", content: "x", enabled: "enabled", active: "active" } } });
      expect(runs(plan(f, 1, d, opts).ops)).to.deep.equal([
        "systemctl disable --now --no-reload pulumi-sriov-vf-0000:01:00.0-1.service",
        "remove /etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-1.service",
      ]);
    });
  });

  describe("delete", () => {
    it("resets every attribute and the driver, and removes the unit", () => {
      const f = facts({
        attributes: { mac: "02:11:22:33:44:55", vlan: 10, qos: 2, spoofCheck: false, trust: true, maxTxRate: 100 },
        vf: { driver: "vfio-pci", driverOverride: "vfio-pci", netdev: "" },
        top: { unit: { name: "u", content: "x", enabled: "enabled", active: "active" } },
      });
      const p = plan(f, 1, RESET_STATE, { pfName: "enp1s0", removing: true, ownMac: "02:11:22:33:44:55" });
      expect(p.problems).to.deep.equal([]);
      expect(runs(p.ops)).to.deep.equal([
        "ip link set dev enp1s0 vf 1 vlan 0",
        "ip link set dev enp1s0 vf 1 min_tx_rate 0 max_tx_rate 0",
        "ip link set dev enp1s0 vf 1 mac 00:00:00:00:00:00",
        "ip link set dev enp1s0 vf 1 spoofchk on",
        "ip link set dev enp1s0 vf 1 trust off",
        `sh -c printf "%s\\n" "$1" > "$2" sh  /sys/bus/pci/devices/0000:01:10.2/driver_override`,
        `sh -c printf "%s\\n" "$1" > "$2" sh 0000:01:10.2 /sys/bus/pci/devices/0000:01:10.2/driver/unbind`,
        `sh -c printf "%s\\n" "$1" > "$2" sh 0000:01:10.2 /sys/bus/pci/drivers_probe`,
        "systemctl disable --now --no-reload pulumi-sriov-vf-0000:01:00.0-1.service",
        "remove /etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-1.service",
      ]);
    });

    it("clears only the MAC it set, and rebinds igbvf so the interface drops it", () => {
      const f = facts({ attributes: { mac: "02:11:22:33:44:55" }, vf: { netdevMac: "02:11:22:33:44:55" } });
      expect(plan(f, 1, RESET_STATE, { pfName: "enp1s0", removing: true, ownMac: "02:11:22:33:44:55" }).ops.map((o) => o.description)).to.deep.equal([
        "VF 1 of enp1s0 (0000:01:00.0): clear the administrative MAC 02:11:22:33:44:55",
        "VF 1 of enp1s0 (0000:01:00.0): unbind 0000:01:10.2 from igbvf",
        "VF 1 of enp1s0 (0000:01:00.0): probe 0000:01:10.2 (enp1s0v1 picks its own MAC)",
      ]);
      // Someone else's MAC (or the one igbvf picked) is not ours to clear.
      expect(plan(f, 1, RESET_STATE, { pfName: "enp1s0", removing: true, ownMac: "02:00:00:00:00:01" }).ops).to.deep.equal([]);
      expect(plan(f, 1, desired({ mac: ZERO_MAC }), { pfName: "enp1s0" }).ops).to.deep.equal([]);
    });

    it("succeeds when the VF or the PF is gone, still removing the unit", () => {
      const noVf = facts({ top: { vf: undefined, attributes: undefined, unit: { name: "pulumi-sriov-vf-0000:01:00.0-1.service", content: "x", enabled: "enabled", active: "active" } } });
      const p = plan(noVf, 1, RESET_STATE, { pfName: "enp1s0", removing: true, ownMac: "02:11:22:33:44:55" });
      expect(p.problems).to.deep.equal([]);
      expect(runs(p.ops)).to.include("remove /etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-1.service");
      const noPf = facts({ top: { pf: undefined, vf: undefined, attributes: undefined, unit: { name: "pulumi-sriov-vf-0000:01:00.0-1.service", content: "x", enabled: "", active: "" } } });
      expect(runs(plan(noPf, 1, RESET_STATE, { pfName: "enp1s0", removing: true }).ops)).to.deep.equal([
        "remove /etc/systemd/system/pulumi-sriov-vf-0000:01:00.0-1.service",
      ]);
      const nothing = facts({ top: { pf: undefined, vf: undefined, attributes: undefined, unit: { name: "", content: null, enabled: "", active: "" } } });
      expect(plan(nothing, 1, RESET_STATE, { pfName: "enp1s0", removing: true })).to.deep.equal({ ops: [], problems: [], warnings: [] });
    });

    it("will not take a VF from a running guest", () => {
      const f = facts({ vf: { driver: "vfio-pci", driverOverride: "vfio-pci", vfioUsers: [{ pid: 77, command: "qemu-system-x86" }] } });
      expect(plan(f, 1, RESET_STATE, { pfName: "enp1s0", removing: true }).problems[0]).to.match(/in use by qemu-system-x86 \(pid 77\)/);
    });
  });

  it("says what to do when the VF does not exist", () => {
    const f = facts({ top: { vf: undefined, attributes: undefined } });
    expect(plan(f, 5, desired(), opts).problems).to.deep.equal([
      "VF 5 of enp1s0 (0000:01:00.0) does not exist: the PF has 2 VFs (sriov_numvfs; at most 7); raise numVfs on its SriovPf",
    ]);
    const noPf = facts({ top: { pf: undefined, vf: undefined, attributes: undefined } });
    expect(plan(noPf, 5, desired(), opts).problems).to.deep.equal(["PF enp1s0: no such network interface on the host"]);
  });
});

describe("VirtualFunction drift (read)", () => {
  const applied = inputs({ vlan: 100, trust: true });
  const d = resolve(applied, facts()).desired;
  const outs = outputsOf(facts({ attributes: { mac: d.mac } }), 1, true);

  it("observes what the host has, keeping a derived MAC left out", () => {
    const f = facts({ attributes: { mac: d.mac, vlan: 100, trust: true }, top: { unit: { name: "u", content: renderUnit("0000:01:00.0", 1, { ...d, persist: true }), enabled: "enabled", active: "active" } } });
    expect(observedInputs(applied, outs, f)).to.deep.equal(applied);
  });

  it("shows hand edits as changed inputs", () => {
    const f = facts({ attributes: { mac: "02:99:99:99:99:99", vlan: 200, trust: false, spoofCheck: false }, vf: { driver: "vfio-pci" } });
    const o = observedInputs(applied, outs, f);
    expect(o).to.deep.include({ mac: "02:99:99:99:99:99", vlan: 200, trust: false, spoofCheck: false, driver: "vfio-pci", persist: false });
    // Observed inputs stay valid inputs (state is re-validated on the next operation).
    expect(inputsSchema().safeParse(o).success).to.equal(true);
  });

  it("treats any MAC as no drift when the MAC is left to the VF (all zeros)", () => {
    const zero = inputs({ mac: ZERO_MAC });
    const o = observedInputs(zero, outs, facts({ attributes: { mac: "6a:00:00:00:00:99" } }));
    expect(o.mac).to.equal(ZERO_MAC);
  });

  it("keeps observed inputs valid for any host state (property)", () => {
    fc.assert(
      fc.property(
        fc.record({ mac: fc.constantFrom(ZERO_MAC, "02:00:00:00:00:01"), vlan: fc.integer({ min: 0, max: 4095 }), qos: fc.integer({ min: 0, max: 7 }), vlanProtocol: fc.constantFrom("802.1Q" as const, "802.1ad" as const) }),
        (a) => {
          fc.pre(a.vlanProtocol === "802.1Q" || a.vlan > 0);
          const o = observedInputs(inputs(), outs, facts({ attributes: a }));
          expect(inputsSchema().safeParse(o).success).to.equal(true);
        },
      ),
    );
  });

  it("never puts undefined in outputs", () => {
    const o = outputsOf(facts({ top: { vf: undefined, attributes: undefined } }), 1, false);
    for (const [k, v] of Object.entries(o)) expect(v, k).to.not.equal(undefined);
  });
});

describe("VirtualFunction persistence unit", () => {
  const d = desired({ mac: "02:11:22:33:44:55", vlan: 100, qos: 2, trust: true, maxTxRate: 300, driver: "vfio-pci", persist: true });

  it("matches the golden file", () => {
    const got = renderUnit("0000:01:00.0", 3, d);
    const file = path.join(FIXTURES, "unit-vf3-vfio.service");
    if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, got);
    expect(got).to.equal(fs.readFileSync(file, "utf8"));
  });

  it("matches the golden file for a VF on its default driver (rebinds until its interface has the MAC)", () => {
    const got = renderUnit("0000:01:00.0", 1, desired({ mac: "02:11:22:33:44:66", persist: true }));
    const file = path.join(FIXTURES, "unit-vf1-default.service");
    if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, got);
    expect(got).to.equal(fs.readFileSync(file, "utf8"));
  });

  it("is ordered after the PF's unit and before libvirt and networking", () => {
    const u = renderUnit("0000:01:00.0", 3, d);
    expect(u).to.include("After=pulumi-sriov-pf-0000:01:00.0.service systemd-udev-settle.service\n");
    expect(u).to.include("Before=libvirtd.service virtqemud.service virtnetworkd.service network-pre.target\n");
    expect(u).to.include("Type=oneshot\nRemainAfterExit=yes\n");
    expect(u).to.include("WantedBy=multi-user.target\n");
  });

  it("runs a script that a POSIX shell accepts", () => {
    for (const dd of [d, desired({ persist: true }), desired({ linkState: "disable", minTxRate: 5, maxTxRate: 10, vlan: 3, vlanProtocol: "802.1ad", persist: true })]) {
      execFileSync("sh", ["-n", "-c", unitScript("0000:01:00.0", 3, dd).join("\n")]);
    }
  });

  it("quotes for systemd: $ doubled, % doubled, quotes and backslashes escaped", () => {
    expect(systemdQuote(`echo "$a" 50% \\n`)).to.equal(`"echo \\"$$a\\" 50%% \\\\n"`);
  });
});
