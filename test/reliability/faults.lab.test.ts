// Reliability on the lab host (Debian under QEMU with two igb SR-IOV PFs):
// for VirtualFunction, SriovPf, VfPoolNetwork and DomainVfInterface, the SSH
// connection is dropped at every host-operation boundary of create, update
// and delete in turn (test/reliability/faultSeries.ts says what is checked
// after each). IommuKernelArgs has its own file, so the two can run at once.
import { expect } from "chai";
import { hostVf } from "./lab";
import { disarm, installFaults } from "./faults";
import { faultSeries } from "./faultSeries";
import { recordError, trackStack } from "./figures";
import { DOMAIN, useReliabilityLab } from "./labHost";
import { Stack } from "../support/engine";

describe("reliability on the lab host: the connection dropped at every boundary of create, update and delete", function () {
  this.timeout(4 * 60 * 60_000);
  const lab = useReliabilityLab("faults");
  before(() => installFaults());
  after(() => void disarm());
  // The VFs DomainVfInterface gives the tiny domain; removed before the lab's own tear-down.
  describe("VirtualFunction, SriovPf, VfPoolNetwork and DomainVfInterface", () => {
    const base = new Stack();
    let vfPci: string[] = [];

    before(async () => {
      trackStack("faults-base", base);
      const r = await base.up([lab.res("sriovPf", "base", lab.rootConn, { pciAddress: lab.pf[1].pci, numVfs: 4, persist: "none" })]);
      vfPci = r.outputs.base.vfs.map((v: any) => v.pciAddress);
      expect(vfPci).to.have.length(4);
    });
    after(async () => {
      await base.destroy().catch((e) => recordError("faults base destroy", e));
    });

    it("VirtualFunction (over a password connection through sudo)", async () => {
      const { vm, pf } = lab;
      await faultSeries(lab, {
        kind: "virtualFunction",
        name: "fvf",
        conn: () => lab.pwConn,
        v1: () => ({ pf: pf[1].name, index: 1, mac: "02:00:00:00:aa:01", vlan: 10, qos: 2, spoofCheck: false, trust: true }),
        v2: () => ({ pf: pf[1].name, index: 1, mac: "02:00:00:00:aa:02", vlan: 20, driver: "vfio-pci" }),
        async verify(stage) {
          const v = (await hostVf(vm, pf[1].name, 1))!;
          const unit = (await vm.exec(`cat /etc/systemd/system/pulumi-sriov-vf-${pf[1].pci}-1.service`)).stdout;
          if (stage === "create") {
            expect(v).to.deep.include({ mac: "02:00:00:00:aa:01", vlan: 10, qos: 2, spoofchk: false, trust: true, driver: "igbvf" });
            expect(unit).to.include("mac 02:00:00:00:aa:01");
          } else if (stage === "update") {
            expect(v).to.deep.include({ mac: "02:00:00:00:aa:02", vlan: 20, qos: 0, spoofchk: true, trust: false, driver: "vfio-pci" });
            expect(unit).to.include("mac 02:00:00:00:aa:02");
          } else {
            // The administrative MAC is cleared: igbvf, bound again, picks its own.
            expect(v).to.deep.include({ vlan: 0, qos: 0, spoofchk: true, trust: false, driver: "igbvf" });
            expect(v.mac).to.not.be.oneOf(["02:00:00:00:aa:01", "02:00:00:00:aa:02"]);
            expect(unit).to.equal("");
          }
        },
      });
    });

    it("SriovPf", async () => {
      const { vm, pf } = lab;
      // As found: what delete must put back.
      const foundVfs = await lab.numVfs(0);
      const foundMtu = Number((await vm.run(`cat /sys/class/net/${pf[0].name}/mtu`)).trim());
      await faultSeries(lab, {
        kind: "sriovPf",
        name: "fpf",
        conn: () => lab.rootConn,
        v1: () => ({ interface: pf[0].name, numVfs: 2 }),
        v2: () => ({ interface: pf[0].name, numVfs: 3, mtu: 9000 }),
        async verify(stage) {
          const unit = (await vm.exec(`cat /etc/systemd/system/pulumi-sriov-pf-${pf[0].pci}.service; systemctl is-enabled pulumi-sriov-pf-${pf[0].pci}.service`)).stdout;
          const mtu = Number((await vm.run(`cat /sys/class/net/${pf[0].name}/mtu`)).trim());
          if (stage === "delete") {
            expect(await lab.numVfs(0), `VFs as found (${foundVfs})`).to.equal(foundVfs);
            expect(mtu, "MTU as found").to.equal(foundMtu);
            expect(unit).to.not.include("ExecStart");
          } else {
            expect(await lab.numVfs(0)).to.equal(stage === "create" ? 2 : 3);
            expect(mtu).to.equal(stage === "create" ? 1500 : 9000);
            expect(unit).to.include(`echo ${stage === "create" ? 2 : 3} > $$d/sriov_numvfs`).and.include("\nenabled");
          }
        },
      });
    });

    it("VfPoolNetwork", async () => {
      const info = async () => (await lab.vm.exec("virsh -c qemu:///system net-info relpool")).stdout;
      await faultSeries(lab, {
        kind: "vfPoolNetwork",
        name: "fpool",
        conn: () => lab.rootConn,
        v1: () => ({ name: "relpool", pf: lab.pf[1].name }),
        v2: () => ({ name: "relpool", pf: lab.pf[1].name, autostart: false }),
        async verify(stage) {
          const i = (await info()).trim();
          if (stage === "delete") expect(i).to.equal("");
          else {
            expect(i).to.match(/Active:\s+yes/).and.match(/Persistent:\s+yes/);
            expect(i).to.match(stage === "create" ? /Autostart:\s+yes/ : /Autostart:\s+no/);
          }
        },
      });
    });

    it("DomainVfInterface", async () => {
      const macs = async () => (await lab.vm.run(`virsh -c qemu:///system dumpxml --inactive ${DOMAIN} | grep -o "mac address='[^']*'" || true`)).trim();
      await faultSeries(lab, {
        kind: "domainVfInterface",
        name: "fiface",
        conn: () => lab.rootConn,
        v1: () => ({ domain: DOMAIN, source: { pciAddress: vfPci[3] }, mac: "52:54:00:6e:00:01" }),
        v2: () => ({ domain: DOMAIN, source: { pciAddress: vfPci[3] }, mac: "52:54:00:6e:00:01", live: false }),
        async verify(stage) {
          const m = await macs();
          if (stage === "delete") expect(m).to.equal("");
          else expect(m).to.equal("mac address='52:54:00:6e:00:01'");
        },
      });
    });
  });
});
