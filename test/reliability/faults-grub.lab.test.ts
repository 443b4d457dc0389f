// Reliability on the lab host: IommuKernelArgs with the SSH connection
// dropped at every host-operation boundary of create, update and delete
// (test/reliability/faultSeries.ts says what is checked after each), over a
// user's own value for a key the resource sets. Every regeneration runs
// update-grub, so this series is the longest; it has its own file so that it
// runs beside the other resources' series.
import { expect } from "chai";
import { disarm, installFaults } from "./faults";
import { faultSeries } from "./faultSeries";
import { useReliabilityLab } from "./labHost";

describe("reliability on the lab host: the connection dropped at every boundary of IommuKernelArgs (GRUB)", function () {
  this.timeout(4 * 60 * 60_000);
  const lab = useReliabilityLab("faults, GRUB");
  before(() => installFaults());
  after(() => void disarm());

  it("over a user's own hugepages=2: grub.cfg always passes grub-script-check; delete puts the user's files back byte for byte", async () => {
    const { vm } = lab;
    // The user's value, which the resource replaces while it exists and must put back on delete
    // (the lab's tear-down puts the image's /etc/default/grub back).
    await vm.run(`sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT="/GRUB_CMDLINE_LINUX_DEFAULT="hugepages=2 /' /etc/default/grub && update-grub 2>/dev/null`);
    const userGrub = await lab.grubFiles();
    const userLinux = await lab.linuxLine();
    await vm.run("rm -rf /root/grub-as-found && mkdir -p /root/grub-as-found && cp -a /etc/default/grub /etc/default/grub.d /root/grub-as-found/");
    expect(userLinux.split(/\s+/)).to.include("hugepages=2");
    try {
      await faultSeries(lab, {
        kind: "iommuKernelArgs",
        name: "fkargs",
        conn: () => lab.rootConn,
        v1: () => ({ iommu: "intel", extraArgs: ["hugepages=8"] }),
        v2: () => ({ iommu: "intel", extraArgs: ["hugepages=8", "nmi_watchdog=0"] }),
        async verify(stage) {
          const line = (await lab.linuxLine()).split(/\s+/);
          if (stage === "delete") {
            const diff = await vm.run("diff -ru /root/grub-as-found/grub /etc/default/grub; diff -ru /root/grub-as-found/grub.d /etc/default/grub.d; true");
            expect(await lab.grubFiles(), `the user's GRUB files (${diff.trim().split("\n").slice(2).join(" | ")})`).to.equal(userGrub);
            expect(line.join(" ")).to.equal(userLinux);
          } else {
            expect(line).to.include.members(["intel_iommu=on", "iommu=pt", "hugepages=8"]);
            expect(line, "the user's value is replaced while the resource exists").to.not.include("hugepages=2");
            if (stage === "update") expect(line).to.include("nmi_watchdog=0");
            else expect(line).to.not.include("nmi_watchdog=0");
          }
        },
      });
    } finally {
      await vm.run("rm -rf /root/grub-as-found");
    }
  });
});
