/**
 * Lab smoke test: proves the lab host is a real Linux kernel with a working
 * (emulated) SR-IOV NIC. It never skips: if the image cannot be built or the
 * guest cannot boot, this fails.
 */
import { expect } from "chai";
import * as crypto from "node:crypto";
import { IMAGE_RECIPE } from "../../lab/image";
import { sharedLab } from "../../lab/shared";
import { LabVm, PF_MACS } from "../../lab/vm";

const VF_ID = "8086:10ca"; // 82576 Virtual Function

interface Pf {
  name: string;
  pci: string;
  mac: string;
  driver: string;
  totalVfs: number;
}

async function listPfs(vm: LabVm): Promise<Pf[]> {
  const out = await vm.run(
    "for f in /sys/class/net/*/device/sriov_totalvfs; do n=${f#/sys/class/net/}; n=${n%%/*}; " +
    "echo \"$n $(basename $(readlink -f /sys/class/net/$n/device)) $(cat /sys/class/net/$n/address) " +
    "$(basename $(readlink -f /sys/class/net/$n/device/driver)) $(cat $f)\"; done");
  return out.trim().split("\n").filter(Boolean).map((line) => {
    const [name, pci, mac, driver, total] = line.split(" ");
    return { name, pci, mac, driver, totalVfs: Number(total) };
  });
}

async function vfAddresses(vm: LabVm): Promise<string[]> {
  return (await vm.run(`lspci -D -n -d ${VF_ID} | awk '{print $1}'`)).trim().split("\n").filter(Boolean);
}

describe("lab host (QEMU guest with emulated SR-IOV igb NICs)", function () {
  let vm: LabVm;

  before(async function () {
    // First run: image build (~2-4 min) + boot under TCG (~1-2 min).
    this.timeout(45 * 60 * 1000);
    vm = await sharedLab();
  });

  it("runs commands over ssh with exit codes, stdout and stderr", async function () {
    const r = await vm.exec("echo out; echo err >&2; exit 3");
    expect(r).to.deep.equal({ code: 3, stdout: "out\n", stderr: "err\n" });
    expect(await vm.run("cat", { input: "stdin text" })).to.equal("stdin text");
  });

  it("hands out a @pulumi/command-style connection with the pinned host key", async function () {
    const c = vm.connection;
    expect(c.host).to.equal("127.0.0.1");
    expect(c.user).to.equal("root");
    expect(c.port).to.be.a("number").greaterThan(0);
    expect(c.privateKey).to.match(/^-----BEGIN OPENSSH PRIVATE KEY-----/);
    expect(c.hostKey).to.match(/^ssh-ed25519 AAAA\S+$/);
    const guestKey = (await vm.run("cat /etc/ssh/ssh_host_ed25519_key.pub")).trim().split(/\s+/).slice(0, 2).join(" ");
    expect(guestKey).to.equal(c.hostKey);
  });

  it("booted through GRUB with the IOMMU active", async function () {
    const cmdline = (await vm.run("cat /proc/cmdline")).trim();
    expect(cmdline.split(/\s+/)).to.include("intel_iommu=on");
    expect(cmdline, "BOOT_IMAGE= is set by GRUB").to.match(/^BOOT_IMAGE=/);
    const groups = Number((await vm.run("ls /sys/kernel/iommu_groups | wc -l")).trim());
    expect(groups, "IOMMU groups").to.be.greaterThan(0);
    expect(await vm.run(`grep -c '^GRUB_CMDLINE_LINUX="${IMAGE_RECIPE.cmdline}"' /etc/default/grub`)).to.equal("1\n");
  });

  it("has two igb PFs with sriov_totalvfs 7 and the lab's MACs", async function () {
    const pfs = await listPfs(vm);
    expect(pfs.map((p) => p.driver)).to.deep.equal(["igb", "igb"]);
    expect(pfs.map((p) => p.totalVfs)).to.deep.equal([7, 7]);
    expect(pfs.map((p) => p.mac).sort()).to.deep.equal([...PF_MACS].sort());
    expect(new Set(pfs.map((p) => p.pci)).size).to.equal(2);
    for (const pf of pfs) {
      expect((await vm.run(`cat /sys/class/net/${pf.name}/carrier`)).trim(), `${pf.name} has a link`).to.equal("1");
    }
  });

  it("creates 4 VFs per PF through sysfs (igbvf, own IOMMU group, VF MAC settable) and removes them", async function () {
    this.timeout(10 * 60 * 1000);
    for (const pf of await listPfs(vm)) {
      const dev = `/sys/class/net/${pf.name}/device`;
      expect((await vm.run(`cat ${dev}/sriov_numvfs`)).trim()).to.equal("0");
      const before = await vfAddresses(vm);
      await vm.run(`echo 4 > ${dev}/sriov_numvfs && udevadm settle --timeout=60`);
      try {
        expect((await vm.run(`cat ${dev}/sriov_numvfs`)).trim()).to.equal("4");
        const added = (await vfAddresses(vm)).filter((a) => !before.includes(a));
        expect(added, `new ${VF_ID} devices under ${pf.name}`).to.have.length(4);
        const links = (await vm.run(`for v in ${dev}/virtfn*; do basename $(readlink -f $v); done`)).trim().split("\n");
        expect([...links].sort()).to.deep.equal([...added].sort());
        for (const vf of added) {
          const drv = (await vm.run(`d=/sys/bus/pci/devices/${vf}/driver; [ -e $d ] && basename $(readlink -f $d) || echo none`)).trim();
          expect(drv, `driver of VF ${vf}`).to.equal("igbvf");
          expect((await vm.exec(`test -e /sys/bus/pci/devices/${vf}/iommu_group`)).code, `IOMMU group of ${vf}`).to.equal(0);
        }
        const mac = "52:54:00:5a:01:" + crypto.randomBytes(1).toString("hex");
        await vm.run(`ip link set ${pf.name} vf 0 mac ${mac}`);
        expect(await vm.run(`ip link show ${pf.name}`)).to.match(new RegExp(`vf 0\\s+link/ether ${mac}`));
      } finally {
        await vm.run(`echo 0 > ${dev}/sriov_numvfs && udevadm settle --timeout=60`);
      }
      expect((await vm.run(`cat ${dev}/sriov_numvfs`)).trim()).to.equal("0");
      expect(await vfAddresses(vm)).to.deep.equal(before);
    }
  });

  it("answers virsh over ssh", async function () {
    const r = await vm.exec("virsh -c qemu:///system list --all");
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/Id\s+Name\s+State/);
  });

  it("keeps what was written to disk across a reboot", async function () {
    this.timeout(20 * 60 * 1000);
    const token = crypto.randomBytes(8).toString("hex");
    const file = "/var/lib/lab-smoke-token";
    await vm.run(`echo ${token} > ${file} && sync`);
    const bootId = (await vm.run("cat /proc/sys/kernel/random/boot_id")).trim();
    const started = Date.now();
    await vm.reboot();
    process.stderr.write(`lab smoke: reboot took ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    expect((await vm.run("cat /proc/sys/kernel/random/boot_id")).trim()).to.not.equal(bootId);
    expect((await vm.run(`cat ${file}`)).trim()).to.equal(token);
    expect((await vm.run("cat /proc/cmdline")).split(/\s+/)).to.include("intel_iommu=on");
    await vm.run(`rm -f ${file}`);
  });
});
