// SriovPf pure logic: input checks, the host read script (run by a real shell
// against a fake /sys and /etc), the persistence files (golden, and the boot
// script run against a fake sysfs), planning (including convergence against a
// model of the kernel's sriov_numvfs rules), kernel refusals and the libvirt
// in-use check.
import "../fixtures/sriovPf/protobuf-dedupe";
import { expect } from "chai";
import { execFileSync, spawnSync } from "child_process";
import fc from "fast-check";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { lifecycle } from "../../provider/resource";
import { InputError, UNKNOWN } from "../../provider/validate";
import { spec } from "../../provider/resources/sriovPf";
import { Facts, foundPath, parseFacts, parseFound, PfFacts, readArgv, renderFound, selectorProblem, udevRulePath, unitPath, modprobePath } from "../../provider/resources/sriovPf/facts";
import { Desired, explainVfWriteFailure, Op, plan, PlanOptions, VF_WRITE_SCRIPT } from "../../provider/resources/sriovPf/plan";
import { parseModprobe, renderModprobe, renderUdevRule, renderUnit, unitScript } from "../../provider/resources/sriovPf/render";
import { inputsSchema } from "../../provider/resources/sriovPf/schema";
import { describeUsers, findUsers, parseUsageOutput } from "../../provider/resources/sriovPf/usage";
import { pciFromElement } from "../../provider/libvirt/pci";
import { el } from "../../provider/libvirt/xml";
import { executable } from "../../provider/resources/sriovPf/apply";
import { execute, PartialApplyError, RemoteHost } from "../../provider/host";
import { localTransport } from "../support/localShell";
import { ProviderProcess, secret, UNKNOWN as WIRE_UNKNOWN } from "../support/engine";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const FIXTURES = path.join(__dirname, "..", "fixtures", "sriovPf");
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), "utf8");
const conn = { host: "10.0.0.5", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n", insecureSkipHostKeyCheck: true };
const PCI = "0000:01:00.0";

function pfFacts(over: Partial<PfFacts> = {}): PfFacts {
  const numVfs = over.numVfs ?? 0;
  return {
    pciAddress: PCI,
    totalVfs: 7,
    numVfs,
    autoprobe: true,
    numaNode: -1,
    driver: "igb",
    netdevs: [{ name: "ens4", mac: "52:54:00:5a:00:01", mtu: 1500, operstate: "up" }],
    vfs: Array.from({ length: numVfs }, (_, i) => ({
      index: i,
      pciAddress: `0000:02:10.${i}`,
      iommuGroup: 20 + i,
      driver: "igbvf",
      netdev: `ens4v${i}`,
      mac: `02:00:00:00:00:0${i}`,
    })),
    adminMacs: {},
    driverHasMaxVfs: true,
    ...over,
  };
}

function facts(pf: Partial<PfFacts> | null = {}, over: Partial<Facts> = {}): Facts {
  const { pf: _ignored, ...rest } = over;
  return {
    candidates: [
      { pciAddress: PCI, driver: "igb", netdevs: ["ens4"], macs: ["52:54:00:5a:00:01"] },
      { pciAddress: "0000:02:00.0", driver: "igb", netdevs: ["ens5"], macs: ["52:54:00:5a:00:02"] },
    ],
    pf: pf === null ? undefined : pfFacts(pf),
    files: {},
    unit: { enabled: "", active: "inactive" },
    vfUnits: [],
    tools: ["systemctl", "udevadm", "ip", "modinfo", "update-initramfs"],
    foreign: [],
    ...rest,
  };
}

const want = (over: Partial<Desired> = {}): Desired => ({ numVfs: 4, autoprobe: true, persist: "systemd", ...over });
const OPTS: PlanOptions = { host: "hv1", selector: "interface" };

function inputError(fn: () => unknown): InputError {
  try {
    // A plan refuses by returning its failures; anything else by throwing.
    const r = fn() as { failures?: InputError["failures"] } | undefined;
    if (r?.failures?.length) return new InputError(r.failures);
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error("expected an InputError");
}

// ---------------------------------------------------------------------------
// A model of the host: what each operation does to the kernel and the files.

interface Model {
  numVfs: number;
  totalVfs: number;
  autoprobe: boolean;
  mtu: number;
  files: Record<string, string>;
  enabled: string;
  active: string;
  vfRestarts: string[];
  kernelWrites: number[];
}

function applyOp(m: Model, op: Op): void {
  if (op.kind === "write") {
    m.files[op.path] = op.content;
    return;
  }
  if (op.kind === "remove") {
    delete m.files[op.path];
    return;
  }
  const a = op.argv;
  // Reloads only when systemd has not loaded the unit as written: nothing the model tracks.
  if (a[0] === "sh" && a[1] === "-c" && a[2].includes("exec systemctl daemon-reload")) return;
  if (a[0] === "sh" && a[1] === "-c") {
    const [target, value] = [a[4], a[5]];
    if (target.endsWith("/sriov_numvfs")) {
      const n = Number(value);
      // The kernel takes a new non-zero count only from 0 (EBUSY otherwise).
      if (n !== 0 && m.numVfs !== 0) throw new Error(`EBUSY: ${m.numVfs} VFs already enabled, wrote ${n}`);
      if (n > m.totalVfs) throw new Error("ERANGE");
      m.kernelWrites.push(n);
      m.numVfs = n;
    } else if (target.endsWith("/sriov_drivers_autoprobe")) m.autoprobe = value === "1";
    else if (target.endsWith("/mtu")) m.mtu = Number(value);
    else throw new Error(`unexpected write ${target}`);
    return;
  }
  if (a[0] === "ip" && a[1] === "link" && a[5] === "mtu") {
    m.mtu = Number(a[6]);
    return;
  }
  if (a[0] === "systemctl") {
    if (a[1] === "enable") m.enabled = "enabled";
    else if (a[1] === "disable") m.enabled = "disabled";
    else if (a[1] === "restart" && a[2] === "--") m.vfRestarts.push(...a.slice(3));
    else if (a[1] === "restart") m.active = "active";
    else if (a[1] === "stop") m.active = "inactive";
    else if (a[1] !== "daemon-reload") throw new Error(`unexpected ${a.join(" ")}`);
    return;
  }
  if (a[0] === "udevadm" || a[0] === "update-initramfs") return;
  throw new Error(`unexpected op ${a.join(" ")}`);
}

function modelOf(f: Facts): Model {
  const pf = f.pf!;
  return {
    numVfs: pf.numVfs,
    totalVfs: pf.totalVfs!,
    autoprobe: pf.autoprobe,
    mtu: pf.netdevs[0].mtu,
    files: { ...f.files },
    enabled: f.unit?.enabled ?? "",
    active: f.unit?.active ?? "",
    vfRestarts: [],
    kernelWrites: [],
  };
}

function factsOf(m: Model, before: Facts): Facts {
  return facts(
    { ...before.pf!, numVfs: m.numVfs, autoprobe: m.autoprobe, netdevs: [{ ...before.pf!.netdevs[0], mtu: m.mtu }], vfs: pfFacts({ numVfs: m.numVfs }).vfs },
    { ...before, pf: undefined, files: { ...m.files }, unit: { enabled: m.enabled, active: m.active } },
  );
}

function run(f: Facts, d: Desired, opts: PlanOptions = OPTS) {
  const p = plan(f, d, opts);
  const m = modelOf(f);
  for (const op of p.ops) applyOp(m, op);
  return { p, m, after: factsOf(m, f) };
}

// ---------------------------------------------------------------------------

describe("SriovPf", () => {
  describe("check", () => {
    const check = (news: any) => lifecycle(spec).check({}, { connection: conn, ...news });

    it("applies defaults: autoprobe true, persist systemd, force false", async () => {
      const r = await check({ interface: "ens4", numVfs: 4 });
      expect(r.failures).to.deep.equal([]);
      expect(r.inputs).to.include({ interface: "ens4", numVfs: 4, autoprobe: true, persist: "systemd", force: false });
    });

    it("normalizes a short PCI address and an upper-case MAC", async () => {
      expect((await check({ pciAddress: "01:00.0", numVfs: 1 })).inputs.pciAddress).to.equal("0000:01:00.0");
      expect((await check({ macAddress: "52-54-00-5A-00-01", numVfs: 1 })).inputs.macAddress).to.equal("52:54:00:5a:00:01");
    });

    it("reports every bad property at once, each by name", async () => {
      const r = await check({ interface: "no/slash", pciAddress: "01:00.0", numVfs: -1, persist: "rc.local", mtu: 20, autoprobe: "yes", extra: 1 });
      const props = r.failures.map((f) => f.property).sort();
      expect(props).to.include.members(["interface", "numVfs", "persist", "mtu", "autoprobe", "pciAddress"]);
      expect(r.failures.find((f) => f.property === "persist")!.reason).to.match(/systemd, udev, modprobe, none/);
    });

    it("needs exactly one of interface, pciAddress, macAddress", async () => {
      const none = await check({ numVfs: 2 });
      expect(none.failures).to.deep.equal([{ property: "interface", reason: "one of interface, pciAddress or macAddress is required to find the PF" }]);
      const two = await check({ interface: "ens4", pciAddress: PCI, numVfs: 2 });
      expect(two.failures.map((f) => f.property)).to.deep.equal(["pciAddress"]);
      expect(two.failures[0].reason).to.match(/only one of.*interface is also set/);
    });

    it("refuses what persist \"modprobe\" cannot keep across reboots", async () => {
      const r = await check({ interface: "ens4", numVfs: 2, persist: "modprobe", autoprobe: false, mtu: 9000 });
      expect(r.failures.map((f) => f.property).sort()).to.deep.equal(["autoprobe", "mtu"]);
    });

    it("lets unknown preview values pass", async () => {
      expect((await check({ interface: UNKNOWN, numVfs: UNKNOWN })).failures).to.deep.equal([]);
      expect((await check({ pciAddress: UNKNOWN, numVfs: 3, persist: UNKNOWN })).failures).to.deep.equal([]);
    });

    it("builds its schema per call (nothing at module level to serialize)", () => {
      expect(inputsSchema()).to.not.equal(inputsSchema());
    });
  });

  describe("in the real dynamic-provider process", () => {
    let proc: ProviderProcess;
    before(async () => {
      proc = await ProviderProcess.start();
    });
    after(async () => {
      await proc?.stop();
    });

    it("check names every bad property before any host is contacted", async () => {
      const r = await proc.check(providers.sriovPf, "pf", {}, { connection: secret(conn), interface: "ens4", macAddress: "zz", numVfs: 2.5, persist: "modprobe", autoprobe: false });
      expect(r.failures.map((f) => f.property).sort()).to.deep.equal(["autoprobe", "macAddress", "macAddress", "numVfs"]);
    });

    it("preview: values still unknown pass check", async () => {
      const r = await proc.check(providers.sriovPf, "pf", {}, { connection: secret(conn), interface: WIRE_UNKNOWN, numVfs: WIRE_UNKNOWN }, { preview: true });
      expect(r.failures).to.deep.equal([]);
    });
  });

  describe("diff", () => {
    const state = (applied: any) => ({ connection: conn, applied, pciAddress: PCI });
    const base = { interface: "ens4", numVfs: 4, autoprobe: true, persist: "systemd", force: false };

    it("changes the VF count in place", async () => {
      const d = await lifecycle(spec).diff("x", state(base), { connection: conn, ...base, numVfs: 2 });
      expect(d).to.deep.include({ changes: true, replaces: [] });
    });

    it("moving from a name to a PCI address is an update (update checks it is the same device)", async () => {
      const { interface: _i, ...rest } = base;
      const d = await lifecycle(spec).diff("x", state(base), { connection: conn, ...rest, pciAddress: PCI, numVfs: 2 });
      expect(d.replaces).to.deep.equal([]);
      expect(d.changes).to.equal(true);
    });

    it("another PCI address is another PF: replace", async () => {
      const a = { ...base, interface: undefined, pciAddress: PCI };
      const d = await lifecycle(spec).diff("x", state(a), { connection: conn, ...a, pciAddress: "0000:02:00.0" });
      expect(d.replaces).to.deep.equal(["pciAddress"]);
      expect(d.deleteBeforeReplace).to.equal(true);
    });

    it("nothing changed: no changes", async () => {
      const d = await lifecycle(spec).diff("x", state(base), { connection: conn, ...base });
      expect(d.changes).to.equal(false);
    });
  });

  describe("host read script", () => {
    let root: string;
    let bin: string;

    function mk(p: string, content?: string) {
      const f = path.join(root, p);
      fs.mkdirSync(content === undefined ? f : path.dirname(f), { recursive: true });
      if (content !== undefined) fs.writeFileSync(f, content);
    }
    // As in sysfs, every link leads to a folder that exists.
    function ln(p: string, target: string) {
      const f = path.join(root, p);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.mkdirSync(path.resolve(path.dirname(f), target), { recursive: true });
      fs.symlinkSync(target, f);
    }
    function stub(name: string, script: string) {
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    }
    function read(kind: "interface" | "pciAddress" | "macAddress", value: string, driverHint = "") {
      const argv = readArgv(kind, value, { root, driverHint });
      const r = spawnSync("/bin/sh", argv.slice(1), { encoding: "utf8", env: { PATH: bin } });
      expect(r.status, r.stderr).to.equal(0);
      return parseFacts(r.stdout);
    }

    before(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), "sriovpf-root-"));
      bin = fs.mkdtempSync(path.join(os.tmpdir(), "sriovpf-bin-"));
      for (const t of ["ls", "cat", "basename", "readlink", "grep", "base64", "tr", "sed", "head", "tail", "cut"])
        fs.symlinkSync(execFileSync("/bin/sh", ["-c", `command -v ${t}`], { encoding: "utf8" }).trim(), path.join(bin, t));
      stub("modinfo", '[ "$2" = igb ] && echo "max_vfs:Maximum number of virtual functions to allocate per physical function (uint)"; exit 0');
      stub("systemctl", 'case "$*" in is-enabled*) echo enabled ;; "show -p ActiveState --value -- pulumi-sriov-pf-"*) echo active ;; show*) echo inactive ;; esac');
      stub(
        "ip",
        'echo "3: $4: <BROADCAST> mtu 1500"; echo "    vf 0     link/ether 00:00:00:00:00:00 brd ff:ff:ff:ff:ff:ff, spoof checking on"; echo "    vf 1     link/ether 02:AA:BB:CC:DD:01 brd ff:ff:ff:ff:ff:ff"',
      );
      stub("udevadm", "exit 0");
      const D = "sys/bus/pci/devices";
      // PF 0000:01:00.0 (igb, ens4) with 2 VFs: VF 0 on vfio-pci, VF 1 on igbvf.
      mk(`${D}/${PCI}/sriov_totalvfs`, "7\n");
      mk(`${D}/${PCI}/sriov_numvfs`, "2\n");
      mk(`${D}/${PCI}/sriov_drivers_autoprobe`, "1\n");
      mk(`${D}/${PCI}/numa_node`, "-1\n");
      ln(`${D}/${PCI}/driver`, "../../../bus/pci/drivers/igb");
      mk(`${D}/${PCI}/net/ens4/address`, "52:54:00:5a:00:01\n");
      mk(`${D}/${PCI}/net/ens4/mtu`, "1500\n");
      mk(`${D}/${PCI}/net/ens4/operstate`, "up\n");
      ln(`${D}/${PCI}/virtfn0`, "../0000:02:10.0");
      ln(`${D}/${PCI}/virtfn1`, "../0000:02:10.2");
      mk(`${D}/0000:02:10.0/vendor`, "0x8086\n");
      ln(`${D}/0000:02:10.0/iommu_group`, "../../../../kernel/iommu_groups/21");
      ln(`${D}/0000:02:10.0/driver`, "../../../bus/pci/drivers/vfio-pci");
      ln(`${D}/0000:02:10.0/physfn`, `../${PCI}`);
      ln(`${D}/0000:02:10.2/iommu_group`, "../../../../kernel/iommu_groups/22");
      ln(`${D}/0000:02:10.2/driver`, "../../../bus/pci/drivers/igbvf");
      ln(`${D}/0000:02:10.2/physfn`, `../${PCI}`);
      mk(`${D}/0000:02:10.2/net/ens4v1/address`, "02:aa:bb:cc:dd:01\n");
      // A second PF, without driver; a virtio NIC without SR-IOV.
      mk(`${D}/0000:03:00.0/sriov_totalvfs`, "7\n");
      mk(`${D}/0000:00:03.0/vendor`, "0x1af4\n");
      mk(`${D}/0000:00:03.0/virtio0/net/enp0s3/address`, "52:54:00:5a:00:10\n");
      ln("sys/class/net/ens4", `../../bus/pci/devices/${PCI}/net/ens4`);
      ln(`${D}/${PCI}/net/ens4/device`, `../../../${PCI}`);
      ln("sys/class/net/enp0s3", "../../bus/pci/devices/0000:00:03.0/virtio0/net/enp0s3");
      ln(`${D}/0000:00:03.0/virtio0/net/enp0s3/device`, "../../../virtio0");
      ln("sys/class/net/ens4v1", `../../bus/pci/devices/0000:02:10.2/net/ens4v1`);
      ln(`${D}/0000:02:10.2/net/ens4v1/device`, "../../../0000:02:10.2");
      mk("sys/class/net/br0/address", "aa:bb:cc:00:00:01\n");
      // Our unit, a VF unit, and persistence someone wrote by hand.
      mk(`etc/systemd/system/pulumi-sriov-pf-${PCI}.service`, "[Unit]\nDescription=ours\n");
      mk("etc/systemd/system/multi-user.target.wants");
      fs.symlinkSync(`../pulumi-sriov-pf-${PCI}.service`, path.join(root, `etc/systemd/system/multi-user.target.wants/pulumi-sriov-pf-${PCI}.service`));
      mk(`etc/systemd/system/pulumi-sriov-vf-${PCI}-1.service`, "[Unit]\n");
      mk(`etc/systemd/system/pulumi-sriov-vf-0000:02:00.0-0.service`, "[Unit]\n");
      mk("etc/systemd/system/ssh.service", "[Service]\nExecStart=/usr/sbin/sshd\n");
      mk("etc/udev/rules.d/70-sriov.rules", 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="ens4", ATTR{device/sriov_numvfs}="4"\n');
      mk("etc/udev/rules.d/80-other.rules", 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="ens9", ATTR{device/sriov_numvfs}="4"\n');
      mk("etc/modprobe.d/igb.conf", "options igb max_vfs=4\n");
      mk("etc/modprobe.d/pulumi-sriov-igb.conf", renderModprobe({ driver: "igb", numVfs: 2, ports: [PCI, "0000:02:00.0"] }));
    });
    after(() => {
      fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(bin, { recursive: true, force: true });
    });

    it("finds the PF by interface name and reports everything in one pass", () => {
      const f = read("interface", "ens4");
      expect(f.interfaceDevice).to.equal(PCI);
      expect(f.tools.sort()).to.deep.equal(["ip", "modinfo", "systemctl", "udevadm"]);
      expect(f.candidates).to.deep.equal([
        { pciAddress: "0000:01:00.0", driver: "igb", netdevs: ["ens4"], macs: ["52:54:00:5a:00:01"] },
        { pciAddress: "0000:03:00.0", driver: "", netdevs: [], macs: [] },
      ]);
      expect(f.pf).to.deep.equal({
        pciAddress: PCI,
        totalVfs: 7,
        numVfs: 2,
        autoprobe: true,
        numaNode: -1,
        driver: "igb",
        physfn: undefined,
        netdevs: [{ name: "ens4", mac: "52:54:00:5a:00:01", mtu: 1500, operstate: "up" }],
        vfs: [
          { index: 0, pciAddress: "0000:02:10.0", iommuGroup: 21, driver: "vfio-pci", netdev: "", mac: "" },
          { index: 1, pciAddress: "0000:02:10.2", iommuGroup: 22, driver: "igbvf", netdev: "ens4v1", mac: "02:aa:bb:cc:dd:01" },
        ],
        adminMacs: { 0: "00:00:00:00:00:00", 1: "02:aa:bb:cc:dd:01" },
        driverHasMaxVfs: true,
      });
      expect(Object.keys(f.files).sort()).to.deep.equal([`/etc/modprobe.d/pulumi-sriov-igb.conf`, `/etc/systemd/system/pulumi-sriov-pf-${PCI}.service`]);
      expect(f.files[unitPath(PCI)]).to.equal("[Unit]\nDescription=ours\n");
      expect(parseModprobe("igb", f.files[modprobePath("igb")])).to.deep.equal({ driver: "igb", numVfs: 2, ports: [PCI, "0000:02:00.0"] });
      expect(f.unit).to.deep.equal({ enabled: "enabled", active: "active" });
      expect(f.vfUnits).to.deep.equal([`pulumi-sriov-vf-${PCI}-1.service`]);
      expect(f.foreign).to.deep.equal([
        { path: "/etc/udev/rules.d/70-sriov.rules", mentions: "ens4" },
        { path: "/etc/modprobe.d/igb.conf", mentions: "options igb max_vfs" },
      ]);
    });

    it("finds the same PF by PCI address and by MAC", () => {
      expect(read("pciAddress", PCI).pf!.netdevs[0].name).to.equal("ens4");
      expect(read("macAddress", "52:54:00:5a:00:01").pf!.pciAddress).to.equal(PCI);
    });

    it("explains a selector that finds no PF, listing the SR-IOV devices", () => {
      const cases: [any, string, RegExp][] = [
        ["interface", "ens9", /^no network interface named ens9 on hv1\. SR-IOV capable devices on hv1: 0000:01:00\.0 \(ens4, igb, 52:54:00:5a:00:01\); 0000:03:00\.0 \(no interface, no driver\)$/],
        ["interface", "br0", /not backed by a device/],
        ["interface", "enp0s3", /is not a PCI device \(its device is virtio0\)/],
        ["interface", "ens4v1", /is a virtual function of PF 0000:01:00\.0/],
        ["pciAddress", "0000:00:03.0", /does not support SR-IOV: it has no sriov_totalvfs/],
        ["pciAddress", "0000:09:00.0", /no PCI device 0000:09:00\.0 on hv1/],
        ["macAddress", "52:54:00:5a:00:10", /no SR-IOV PF on hv1 has MAC 52:54:00:5a:00:10/],
      ];
      for (const [kind, value, re] of cases) {
        const p = selectorProblem(read(kind, value), kind, value, "hv1");
        expect(p, `${kind} ${value}`).to.not.equal(undefined);
        expect(p!.property).to.equal(kind);
        expect(p!.reason).to.match(re);
      }
      expect(selectorProblem(read("interface", "ens4"), "interface", "ens4", "hv1")).to.equal(undefined);
    });

    it("reads this resource's files for a PF that is gone, by PCI address and driver hint", () => {
      mk("etc/udev/rules.d/70-pulumi-sriov-0000:09:00.0.rules", "x\n");
      const f = read("pciAddress", "0000:09:00.0", "igb");
      expect(f.pf).to.equal(undefined);
      expect(Object.keys(f.files).sort()).to.deep.equal(["/etc/modprobe.d/pulumi-sriov-igb.conf", "/etc/udev/rules.d/70-pulumi-sriov-0000:09:00.0.rules"]);
    });

    it("reports rc.local lines that write this PF's VF count, foreign files' content, units' state, and what was taken over", () => {
      mk("etc/rc.local", "#!/bin/sh\necho 4 > /sys/class/net/ens4/device/sriov_numvfs\nexit 0\n");
      mk("etc/systemd/system/sriov-vfs.service", "[Service]\nExecStart=/bin/sh -c 'echo 4 > /sys/bus/pci/devices/0000:01:00.0/sriov_numvfs'\n");
      mk(`var/lib/pulumi-sriov/found/sriov-pf-${PCI}-taken-over.json`, '[{"path":"/etc/udev/rules.d/60-old.rules","kind":"udev rule"}]\n');
      try {
        const f = read("interface", "ens4");
        expect(f.foreign.map((x) => x.path)).to.include.members(["/etc/rc.local", "/etc/systemd/system/sriov-vfs.service"]);
        expect(f.foreign.find((x) => x.path === "/etc/rc.local")!.mentions).to.equal("ens4");
        expect(f.foreignContent!["/etc/rc.local"]).to.equal("#!/bin/sh\necho 4 > /sys/class/net/ens4/device/sriov_numvfs\nexit 0\n");
        expect(f.foreignContent!["/etc/modprobe.d/igb.conf"]).to.equal("options igb max_vfs=4\n");
        expect(f.foreignEnabled).to.deep.equal({ "/etc/systemd/system/sriov-vfs.service": "enabled" });
        expect(f.takenOver).to.deep.equal([{ path: "/etc/udev/rules.d/60-old.rules", kind: "udev rule" }]);
      } finally {
        for (const p of ["etc/rc.local", "etc/systemd/system/sriov-vfs.service", `var/lib/pulumi-sriov/found/sriov-pf-${PCI}-taken-over.json`]) fs.rmSync(path.join(root, p));
      }
    });

    it("orders VF units by VF index whatever order the host listed them in", () => {
      const u = (n: number) => `pulumi-sriov-vf-${PCI}-${n}.service`;
      const f = parseFacts([u(10), u(1), u(2), u(0)].map((x) => `vfunit\t${x}\n`).join("") + "end\n");
      expect(f.vfUnits).to.deep.equal([u(0), u(1), u(2), u(10)]);
    });

    it("refuses output that was cut short", () => {
      expect(() => parseFacts("cand\t0000:01:00.0\tigb\n")).to.throw(/ended early/);
    });

    it("reads the PF as an unfinished create found it, and ignores a record that is not one", () => {
      expect(read("pciAddress", PCI).found).to.equal(undefined);
      const rec = foundPath(PCI).slice(1);
      mk(rec, renderFound({ numVfs: 0, autoprobe: true, mtu: 1500 }));
      expect(read("pciAddress", PCI).found).to.deep.equal({ numVfs: 0, autoprobe: true, mtu: 1500 });
      mk(rec, '{"numVfs": -1}');
      expect(read("pciAddress", PCI).found).to.equal(undefined);
      fs.rmSync(path.join(root, rec));
      expect(parseFound("not json")).to.equal(undefined);
    });
  });

  describe("persistence files", () => {
    const s = { pciAddress: PCI, numVfs: 4, autoprobe: true };

    it("systemd unit (golden)", () => {
      expect(renderUnit(s)).to.equal(fixture("unit-4vfs.service"));
      expect(renderUnit({ ...s, numVfs: 2, autoprobe: false, mtu: 9000 })).to.equal(fixture("unit-2vfs-mtu.service"));
    });

    it("udev rule (golden): matched by PCI address, never a name", () => {
      expect(renderUdevRule(s)).to.equal(fixture("udev-4vfs.rules"));
      expect(renderUdevRule({ ...s, mtu: 9000 })).to.match(/KERNELS=="0000:01:00\.0", .*ATTR\{mtu\}="9000"\n$/);
    });

    it("modprobe file (golden) round-trips its port list", () => {
      const m = { driver: "igb", numVfs: 4, ports: ["0000:02:00.0", PCI] };
      expect(renderModprobe(m)).to.equal(fixture("modprobe-igb.conf"));
      expect(parseModprobe("igb", renderModprobe(m))).to.deep.equal({ ...m, ports: [PCI, "0000:02:00.0"] });
      expect(parseModprobe("igb", "options igb max_vfs=4\n")).to.equal(undefined);
    });

    it("the unit is ordered before libvirt and network-pre and waits for the PF's driver", () => {
      const u = renderUnit(s);
      expect(u).to.match(/^Before=libvirtd\.service virtqemud\.service virtnetworkd\.service network-pre\.target/m);
      expect(u).to.match(/^Wants=network-pre\.target$/m);
      expect(u).to.match(/^DefaultDependencies=no$/m);
      expect(u).to.match(/^WantedBy=multi-user\.target$/m);
      expect(u).to.match(/^Type=oneshot$/m);
      expect(u).to.match(/^RemainAfterExit=yes$/m);
    });

    // Undoes systemd's unit-file processing of ExecStart= (continuations, $$, %%,
    // the single-quoted argument) and runs the script against a fake sysfs.
    function bootScript(unit: string, sysRoot: string): string {
      const joined = unit.replace(/\\\n/g, " ");
      const exec = /^ExecStart=\/bin\/sh -c '([^']*)'$/m.exec(joined);
      expect(exec, "ExecStart is /bin/sh -c '<script>'").to.not.equal(null);
      return exec![1].replace(/\$\$/g, "$").replace(/%%/g, "%").split("/sys/bus/pci/devices/").join(`${sysRoot}/`);
    }

    function fakePf(numVfs: number, driver = true) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sriovpf-boot-"));
      const d = path.join(dir, PCI);
      fs.mkdirSync(path.join(d, "net", "ens4"), { recursive: true });
      fs.writeFileSync(path.join(d, "sriov_numvfs"), `${numVfs}\n`);
      fs.writeFileSync(path.join(d, "sriov_drivers_autoprobe"), "1\n");
      fs.writeFileSync(path.join(d, "net", "ens4", "mtu"), "1500\n");
      if (driver) fs.mkdirSync(path.join(d, "driver"));
      return { dir, d };
    }

    it("the unit's boot script sets autoprobe, the count (0 first) and the MTU", () => {
      const { dir, d } = fakePf(2);
      // sriov_numvfs is a plain file here: log every write to prove 0 comes first.
      const script = bootScript(renderUnit({ ...s, autoprobe: false, mtu: 9000 }), dir).replace(
        /echo (\d+) > \$d\/sriov_numvfs/g,
        'echo $1 >> $d/writes; echo $1 > $d/sriov_numvfs'.replace(/\$1/g, "$1"),
      );
      const r = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
      expect(r.status, r.stderr).to.equal(0);
      expect(fs.readFileSync(path.join(d, "writes"), "utf8")).to.equal("0\n4\n");
      expect(fs.readFileSync(path.join(d, "sriov_numvfs"), "utf8")).to.equal("4\n");
      expect(fs.readFileSync(path.join(d, "sriov_drivers_autoprobe"), "utf8")).to.equal("0\n");
      expect(fs.readFileSync(path.join(d, "net", "ens4", "mtu"), "utf8")).to.equal("9000\n");
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the unit's boot script changes nothing when the count is already right", () => {
      const { dir, d } = fakePf(4);
      fs.chmodSync(path.join(d, "sriov_numvfs"), 0o444);
      const r = spawnSync("/bin/sh", ["-c", bootScript(renderUnit(s), dir)], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
      expect(r.status, r.stderr).to.equal(0);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("the unit script has no quotes or backslashes systemd would reinterpret", () => {
      for (const l of unitScript({ ...s, mtu: 9000 })) expect(l).to.not.match(/['\\]/);
    });
  });

  describe("plan", () => {
    const kinds = (ops: Op[]) => ops.map((o) => o.description);

    it("creates VFs on a fresh PF, then writes and enables the unit and runs it once", () => {
      const { p, m } = run(facts(), want());
      expect(kinds(p.ops)).to.deep.equal([
        `create 4 VFs on ${PCI}`,
        "wait for udev to finish with the VF devices",
        `write ${unitPath(PCI)}: 4 VFs on ${PCI} at boot, before libvirt and networking`,
        `reload systemd units if it has not loaded pulumi-sriov-pf-${PCI}.service as written`,
        `enable pulumi-sriov-pf-${PCI}.service at boot`,
        `run pulumi-sriov-pf-${PCI}.service now (the VFs are already as it sets them)`,
      ]);
      expect(m.kernelWrites).to.deep.equal([4]);
      expect(p.destroys).to.deep.equal([]);
      expect(p.persistPath).to.equal(unitPath(PCI));
    });

    it("changing a non-zero count writes 0 first, and re-applies the settings of the VFs that remain", () => {
      const vfUnits = [0, 1, 3, 12].map((i) => `pulumi-sriov-vf-${PCI}-${i}.service`);
      const f = facts({ numVfs: 4 }, { files: { [unitPath(PCI)]: renderUnit({ pciAddress: PCI, numVfs: 4, autoprobe: true }) }, unit: { enabled: "enabled", active: "active" }, vfUnits });
      const { p, m } = run(f, want({ numVfs: 2 }));
      expect(m.kernelWrites).to.deep.equal([0, 2]);
      expect(p.destroys.map((v) => v.pciAddress)).to.have.length(4);
      // restart (not try-restart) also runs a unit that failed while its VF was missing.
      const last = p.ops[p.ops.length - 1] as Extract<Op, { kind: "run" }>;
      expect(last.argv).to.deep.equal(["systemctl", "restart", "--", vfUnits[0], vfUnits[1]]);
      expect(m.vfRestarts).to.deep.equal([vfUnits[0], vfUnits[1]]);
    });

    it("re-applies nothing when no VF unit is within the new count", () => {
      const f = facts({ numVfs: 4 }, { files: { [unitPath(PCI)]: renderUnit({ pciAddress: PCI, numVfs: 4, autoprobe: true }) }, unit: { enabled: "enabled", active: "active" }, vfUnits: [`pulumi-sriov-vf-${PCI}-3.service`, `pulumi-sriov-vf-0000:99:00.0-0.service`] });
      const { p, m } = run(f, want({ numVfs: 2 }));
      expect(p.ops.some((o) => o.kind === "run" && o.argv.includes("restart") && o.argv.includes("--"))).to.equal(false);
      expect(m.vfRestarts).to.deep.equal([]);
    });

    it("a host already as desired gets no operations", () => {
      const f = facts({ numVfs: 4 }, { files: { [unitPath(PCI)]: renderUnit({ pciAddress: PCI, numVfs: 4, autoprobe: true }) }, unit: { enabled: "enabled", active: "active" } });
      expect(plan(f, want(), OPTS).ops).to.deep.equal([]);
    });

    it("refuses more VFs than the device has, with the numbers, before any write", () => {
      const e = inputError(() => plan(facts(), want({ numVfs: 8 }), OPTS));
      expect(e.failures).to.deep.equal([
        { property: "numVfs", reason: `8 VFs requested, but PF ${PCI} (ens4) on hv1 (igb) supports at most 7 (sriov_totalvfs 7)` },
      ]);
    });

    it("refuses a PF without a driver, naming the selector", () => {
      const e = inputError(() => plan(facts({ driver: "", netdevs: [] }), want(), OPTS));
      expect(e.failures[0].property).to.equal("interface");
      expect(e.failures[0].reason).to.match(/no driver bound/);
    });

    it("refuses persist modprobe for a driver without max_vfs", () => {
      const e = inputError(() => plan(facts({ driver: "i40e", driverHasMaxVfs: false }), want({ persist: "modprobe" }), OPTS));
      expect(e.failures).to.deep.equal([
        { property: "persist", reason: '"modprobe" needs the i40e driver\'s max_vfs module parameter, and i40e has none on hv1 (modinfo -p i40e); use persist "systemd" or "udev"' },
      ]);
    });

    it("persist modprobe: one file per driver, listing its ports; other ports are warned about", () => {
      const { p, m } = run(facts(), want({ persist: "modprobe" }));
      expect(m.files[modprobePath("igb")]).to.equal(renderModprobe({ driver: "igb", numVfs: 4, ports: [PCI] }));
      expect(kinds(p.ops)).to.include("regenerate the initramfs so it carries the module option");
      expect(p.warnings.join("\n")).to.match(/options igb max_vfs=4 also gives 0000:02:00\.0 \(ens5\) 4 VFs whenever igb loads/);
    });

    it("persist modprobe: a second port joins with the same count, and is refused with another", () => {
      const other = renderModprobe({ driver: "igb", numVfs: 4, ports: ["0000:02:00.0"] });
      const { m } = run(facts({}, { files: { [modprobePath("igb")]: other } }), want({ persist: "modprobe" }));
      expect(parseModprobe("igb", m.files[modprobePath("igb")])!.ports).to.deep.equal([PCI, "0000:02:00.0"]);
      const e = inputError(() => plan(facts({}, { files: { [modprobePath("igb")]: other } }), want({ persist: "modprobe", numVfs: 2 }), OPTS));
      expect(e.failures[0].property).to.equal("numVfs");
      expect(e.failures[0].reason).to.match(/already gives every igb port max_vfs=4 for 0000:02:00\.0; a module option cannot differ per port/);
    });

    it("leaving modprobe keeps the other ports' line and removes the file with the last port", () => {
      const both = renderModprobe({ driver: "igb", numVfs: 4, ports: [PCI, "0000:02:00.0"] });
      const one = run(facts({ numVfs: 4 }, { files: { [modprobePath("igb")]: both } }), want({ persist: "none" }));
      expect(one.m.files[modprobePath("igb")]).to.equal(renderModprobe({ driver: "igb", numVfs: 4, ports: ["0000:02:00.0"] }));
      const last = run(facts({ numVfs: 4 }, { files: { [modprobePath("igb")]: renderModprobe({ driver: "igb", numVfs: 4, ports: [PCI] }) } }), want({ persist: "none" }));
      expect(last.m.files).to.deep.equal({});
    });

    it("switching systemd → udev disables and removes the unit and writes the rule", () => {
      const f = facts({ numVfs: 4 }, { files: { [unitPath(PCI)]: renderUnit({ pciAddress: PCI, numVfs: 4, autoprobe: true }) }, unit: { enabled: "enabled", active: "active" } });
      const { p, m } = run(f, want({ persist: "udev" }));
      expect(m.files).to.deep.equal({ [udevRulePath(PCI)]: renderUdevRule({ pciAddress: PCI, numVfs: 4, autoprobe: true }) });
      expect(m.enabled).to.equal("disabled");
      expect(m.kernelWrites).to.deep.equal([]);
      expect(kinds(p.ops)).to.include("reload udev rules");
    });

    it("a changed autoprobe re-creates existing VFs so it applies to them", () => {
      const { m, p } = run(facts({ numVfs: 4 }), want({ autoprobe: false, persist: "none" }), { ...OPTS, recreate: true });
      expect(m.kernelWrites).to.deep.equal([0, 4]);
      expect(m.autoprobe).to.equal(false);
      expect(p.ops[0].description).to.match(/sriov_drivers_autoprobe .* to 0/);
    });

    it("sets the MTU before creating VFs, and restores a found MTU without persisting it", () => {
      const { p } = run(facts(), want({ mtu: 9000, persist: "none" }));
      expect(p.ops[0]).to.deep.include({ argv: ["ip", "link", "set", "dev", "ens4", "mtu", "9000"] });
      const back = run(facts({ netdevs: [{ name: "ens4", mac: "", mtu: 9000, operstate: "up" }] }), want({ numVfs: 0, persist: "none" }), { ...OPTS, restoreMtu: 1500 });
      expect(back.m.mtu).to.equal(1500);
    });

    it("a PF that is gone: only this resource's files are removed", () => {
      const f = facts(null, { files: { [unitPath(PCI)]: "x", [udevRulePath(PCI)]: "y" }, unit: { enabled: "enabled", active: "inactive" } });
      const p = plan(f, want({ numVfs: 0, persist: "none" }), { host: "hv1", pciAddress: PCI });
      expect(p.ops.filter((o) => o.kind === "remove").map((o) => (o as any).path)).to.deep.equal([unitPath(PCI), udevRulePath(PCI)]);
      expect(p.ops.some((o) => o.kind === "run" && o.argv.join(" ").includes("sriov_numvfs"))).to.equal(false);
    });

    it("refuses persistence beside a hand-made mechanism for this PF that takeOver does not list", () => {
      const p = plan(facts({}, { foreign: [{ path: "/etc/udev/rules.d/70-sriov.rules", mentions: "ens4" }] }), want(), OPTS);
      expect(p.ops).to.deep.equal([]);
      expect(p.warnings).to.deep.equal([]);
      expect(p.failures).to.deep.equal([
        {
          property: "takeOver",
          reason:
            '/etc/udev/rules.d/70-sriov.rules on hv1 also sets VFs for PF 0000:01:00.0 (it mentions ens4); persist "systemd" would be a second mechanism beside it: list it in takeOver to replace it with pulumi-sriov\'s systemd unit, or use persist "none"',
        },
      ]);
      // persist "none" adds no mechanism: the hand-made one is left to do its work.
      const none = plan(facts({}, { foreign: [{ path: "/etc/udev/rules.d/70-sriov.rules", mentions: "ens4" }] }), want({ persist: "none" }), OPTS);
      expect(none.failures).to.deep.equal([]);
    });

    it("converges from any state in one pass, never writing a count over a non-zero one, and is then idempotent", () => {
      const persists = ["systemd", "udev", "modprobe", "none"] as const;
      const arb = fc.record({
        total: fc.integer({ min: 1, max: 8 }),
        cur: fc.nat(8),
        curAutoprobe: fc.boolean(),
        want: fc.nat(8),
        autoprobe: fc.boolean(),
        persist: fc.constantFrom(...persists),
        prevPersist: fc.constantFrom(...persists),
        prevCount: fc.nat(8),
        mtu: fc.option(fc.constantFrom(1500, 9000), { nil: undefined }),
        enabled: fc.constantFrom("enabled", "disabled", ""),
        recreate: fc.boolean(),
      });
      fc.assert(
        fc.property(arb, (a) => {
          const cur = Math.min(a.cur, a.total);
          const n = Math.min(a.want, a.total);
          const d = want({ numVfs: n, autoprobe: a.persist === "modprobe" ? true : a.autoprobe, persist: a.persist, mtu: a.persist === "modprobe" ? undefined : a.mtu });
          const prev = { pciAddress: PCI, numVfs: a.prevCount, autoprobe: true };
          const files: Record<string, string> = {};
          if (a.prevPersist === "systemd") files[unitPath(PCI)] = renderUnit(prev);
          if (a.prevPersist === "udev") files[udevRulePath(PCI)] = renderUdevRule(prev);
          if (a.prevPersist === "modprobe") files[modprobePath("igb")] = renderModprobe({ driver: "igb", numVfs: a.prevCount, ports: [PCI] });
          const f = facts({ totalVfs: a.total, numVfs: cur, autoprobe: a.curAutoprobe }, { files, unit: { enabled: files[unitPath(PCI)] ? a.enabled : "", active: "inactive" } });
          const { m, after, p } = run(f, d, { ...OPTS, recreate: a.recreate });
          expect(m.numVfs).to.equal(n);
          expect(m.autoprobe).to.equal(d.autoprobe);
          if (d.mtu !== undefined) expect(m.mtu).to.equal(d.mtu);
          const expected: Record<string, string> = {};
          const s = { pciAddress: PCI, numVfs: n, autoprobe: d.autoprobe, mtu: d.mtu };
          if (a.persist === "systemd") expected[unitPath(PCI)] = renderUnit(s);
          if (a.persist === "udev") expected[udevRulePath(PCI)] = renderUdevRule(s);
          if (a.persist === "modprobe") expected[modprobePath("igb")] = renderModprobe({ driver: "igb", numVfs: n, ports: [PCI] });
          expect(m.files).to.deep.equal(expected);
          if (a.persist === "systemd") expect(m.enabled).to.equal("enabled");
          expect(p.destroys.length > 0).to.equal(cur > 0 && (cur !== n || (a.recreate && n > 0)));
          expect(plan(after, d, OPTS).ops).to.deep.equal([]);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe("kernel refusals", () => {
    const w = { pciAddress: PCI, numVfs: 2, totalVfs: 7, previous: 0 };

    it("quotes the kernel's bus-number complaint and names pci=assign-busses", () => {
      const msg = explainVfWriteFailure(
        w,
        "PF 0000:01:00.0 (enp1s0f0, igb) on hv1",
        "sh: 1: printf: printf: I/O error\n--- kernel log:\n[  643.338345] igb 0000:01:00.0: can't enable 2 VFs (bus 02 out of range of [bus 01])\n",
      );
      expect(msg).to.equal(
        [
          "the kernel refused to create 2 VFs on PF 0000:01:00.0 (enp1s0f0, igb) on hv1 (sriov_totalvfs 7): sh: 1: printf: printf: I/O error",
          "kernel log:\n  [  643.338345] igb 0000:01:00.0: can't enable 2 VFs (bus 02 out of range of [bus 01])",
          'remedy: the PCI bridge above the PF has no bus numbers left for the VFs: add "pci=assign-busses" to the kernel command line (IommuKernelArgs extraArgs) and reboot',
        ].join("\n"),
      );
    });

    it("names pci=realloc for MMIO, fewer VFs for MSI-X, the BIOS otherwise", () => {
      expect(explainVfWriteFailure(w, "PF", "x\n--- kernel log:\npci 0000:01:00.0: not enough MMIO resources for SR-IOV\n")).to.match(/pci=realloc.*Above 4G decoding/);
      expect(explainVfWriteFailure(w, "PF", "x\n--- kernel log:\nixgbe: Cannot enable SR-IOV: Not enough room in MSI-X table\n")).to.match(/MSI-X interrupt vectors: request fewer VFs/);
      expect(explainVfWriteFailure(w, "PF", "sh: write error: Input/output error\n")).to.match(/the kernel logged nothing about it\nremedy: check that SR-IOV is enabled in the BIOS/);
    });

    it("the write script puts a marker in the kernel log and prints what followed it", () => {
      expect(VF_WRITE_SCRIPT).to.include('> /dev/kmsg');
      expect(VF_WRITE_SCRIPT).to.include("--- kernel log:");
    });
  });

  describe("executor (local shell as the host)", () => {
    const host = new RemoteHost(localTransport());
    const run = (description: string, argv: string[]): Op => ({ kind: "run", description, argv });

    it("runs consecutive commands in one batch and files in between, in order", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sriovpf-exec-"));
      const log: string[] = [];
      await execute(
        host,
        executable(
          [
            run("one", ["sh", "-c", `echo 1 >> ${dir}/order`]),
            { kind: "write", description: "file", path: `${dir}/f`, content: "hello\n" },
            run("two", ["sh", "-c", `cat ${dir}/f >> ${dir}/order`]),
          ],
          "PF x",
        ),
        (l) => log.push(l),
      );
      expect(fs.readFileSync(`${dir}/order`, "utf8")).to.equal("1\nhello\n");
      expect(log).to.deep.equal(["one", "file", "two"]);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("stops at the first failure and says what was applied and what was not", async () => {
      const e = await execute(host, executable([run("first", ["true"]), run("second", ["sh", "-c", "echo nope >&2; exit 3"]), run("third", ["true"])], "PF x")).then(
        () => undefined,
        (x) => x,
      );
      expect(e).to.be.instanceOf(PartialApplyError);
      expect(e.message).to.match(/second: command .* exited 3\nnope/);
      expect(e.message).to.include("applied on local: first\nnot applied: second; third");
    });

    it("a refused VF write quotes the kernel log, names the remedy, and tries to put the old VFs back", async () => {
      const refused: Op = {
        kind: "run",
        description: "create 2 VFs on 0000:01:00.0",
        argv: ["sh", "-c", "echo 'sh: 1: printf: printf: Cannot allocate memory' >&2; echo '--- kernel log:' >&2; echo \"[ 643.3] igb 0000:01:00.0: can't enable 2 VFs (bus 02 out of range of [bus 01])\" >&2; exit 1"],
        vfWrite: { pciAddress: "0000:01:00.0", numVfs: 2, totalVfs: 7, previous: 4 },
      };
      const e = await execute(host, executable([run("remove the 4 VFs", ["true"]), refused, run("write unit", ["true"])], "PF 0000:01:00.0 (ens4, igb) on local")).then(
        () => undefined,
        (x) => x,
      );
      expect(e).to.be.instanceOf(PartialApplyError);
      expect(e.message).to.include("the kernel refused to create 2 VFs on PF 0000:01:00.0 (ens4, igb) on local (sriov_totalvfs 7): sh: 1: printf: printf: Cannot allocate memory");
      expect(e.message).to.include("can't enable 2 VFs (bus 02 out of range of [bus 01])");
      expect(e.message).to.include("pci=assign-busses");
      // Here there is no sysfs to write the old count back to: that is said too.
      expect(e.message).to.include("putting back the 4 VFs it had before failed too");
      expect(e.message).to.include("not applied: create 2 VFs on 0000:01:00.0; write unit");
    });
  });

  describe("in use by libvirt", () => {
    const vfs = pfFacts({ numVfs: 3 }).vfs;
    const domain = (name: string, devices: string) => `<domain type='kvm'><name>${name}</name><devices>${devices}</devices></domain>`;

    it("reads PCI addresses in hex or decimal", () => {
      expect(pciFromElement(el("address", { domain: "0x0000", bus: "0x02", slot: "0x10", function: "0x1" }))).to.equal("0000:02:10.1");
      expect(pciFromElement(el("address", { domain: "0", bus: "2", slot: "16", function: "1" }))).to.equal("0000:02:10.1");
      expect(pciFromElement(el("address", { type: "drive", bus: "0" }))).to.equal(undefined);
    });

    it("finds domains by hostdev, hostdev interface, pool network and macvtap, and pool networks by PF or VF", () => {
      const objs = parseUsageOutput(
        [
          ...[
            ["vm-hostdev", domain("vm-hostdev", "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x02' slot='0x10' function='0x1'/></source><address type='pci' bus='0x07' slot='0x00' function='0x0'/></hostdev>")],
            ["vm-iface", domain("vm-iface", "<interface type='hostdev' managed='yes'><source><address type='pci' domain='0' bus='2' slot='16' function='2'/></source></interface>")],
            ["vm-pool", domain("vm-pool", "<interface type='network'><source network='sriov-pool'/></interface>")],
            ["vm-direct", domain("vm-direct", "<interface type='direct'><source dev='ens4v0' mode='passthrough'/></interface>")],
            ["vm-other", domain("vm-other", "<interface type='network'><source network='default'/></interface><hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x05' slot='0x00' function='0x0'/></source></hostdev>")],
          ].map(([n, x]) => `dom\t${Buffer.from(n).toString("base64")}\t${Buffer.from(x).toString("base64")}`),
          ...[
            ["sriov-pool", "<network><name>sriov-pool</name><forward mode='hostdev' managed='yes'><pf dev='ens4'/></forward></network>"],
            ["vf-list", "<network><name>vf-list</name><forward mode='hostdev'><address type='pci' domain='0x0000' bus='0x02' slot='0x10' function='0x0'/></forward></network>"],
            ["default", "<network><name>default</name><forward mode='nat'/><bridge name='virbr0'/></network>"],
          ].map(([n, x]) => `net\t${Buffer.from(n).toString("base64")}\t${Buffer.from(x).toString("base64")}`),
          "end",
        ].join("\n"),
      );
      const u = findUsers(vfs, ["ens4"], objs);
      expect(u.networks).to.deep.equal([
        { name: "sriov-pool", via: "PF ens4" },
        { name: "vf-list", via: "VF 0000:02:10.0" },
      ]);
      expect(u.domains).to.deep.equal([
        { name: "vm-hostdev", via: "VF 0000:02:10.1" },
        { name: "vm-iface", via: "VF 0000:02:10.2" },
        { name: "vm-pool", via: "network sriov-pool" },
        { name: "vm-direct", via: "VF ens4v0" },
      ]);
      expect(describeUsers(u)).to.equal(
        "running domains vm-hostdev (VF 0000:02:10.1), vm-iface (VF 0000:02:10.2), vm-pool (network sriov-pool), vm-direct (VF ens4v0); active pool networks sriov-pool (PF ens4), vf-list (VF 0000:02:10.0)",
      );
    });

    it("skips XML it cannot read and addresses that name no VF", () => {
      const b64 = (x: string) => Buffer.from(x).toString("base64");
      const objs = parseUsageOutput(
        [
          `dom\t${b64("broken")}\t${b64("<domain><devices>")}`,
          `dom\t${b64("not-a-domain")}\t${b64("<network><devices/></network>")}`,
          `dom\t${b64("far")}\t${b64(domain("far", "<hostdev><source><address domain='0x0000' bus='0x100' slot='0x10' function='0x1'/></source></hostdev>"))}`,
          "end",
        ].join("\n"),
      );
      expect(findUsers(vfs, ["ens4"], objs)).to.deep.equal({ domains: [], networks: [] });
    });

    it("reports when libvirt could not be asked", () => {
      const o = parseUsageOutput(`err\t${Buffer.from("error: failed to connect to the hypervisor").toString("base64")}\n`);
      expect(o.error).to.equal("error: failed to connect to the hypervisor");
    });
  });
});
