// Reliability on the lab host (Debian under QEMU with two igb SR-IOV PFs),
// one boot for the whole file:
//
// 0. Injection: random values through the resources' reads on a host with
//    libvirt and SR-IOV NICs; none is ever executed.
// 1. Concurrency: 14 VirtualFunction resources applied at once by one
//    provider process over two connections (root key, and a password user
//    through sudo); two provider processes at once, each a PF with VFs,
//    writing units and reloading systemd. Files stay consistent.
// 2. Faults (the connection dropped at every boundary): see
//    reliability.faults.lab.test.ts and reliability.faults-grub.lab.test.ts.
// 3. Drift: the seeds' manual commands (echo 0 > sriov_numvfs, ip link set
//    … vf … mac, editing /etc/default/grub, virsh net-destroy, detaching the
//    interface) are detected by refresh (and by check's hostChanges where the
//    resource plans), and repaired by the next up.
// 4. The host still boots with what the resources configured.
import { expect } from "chai";
import * as fc from "fast-check";
import { connectionSchema } from "../../provider/connection";
import { closeAllConnections, hostFor } from "../../provider/host";
import { readFacts as readDomainFacts } from "../../provider/resources/domainVfInterface/facts";
import { libvirtObjects, readFacts } from "../../provider/resources/sriovPf/apply";
import { readFacts as readPoolFacts } from "../../provider/resources/vfPoolNetwork/facts";
import { readFacts as readVfFacts } from "../../provider/resources/virtualFunction";
import type { LabVm } from "../../lab/vm";
import { figures, record, recordLogs, trackStack } from "./figures";
import { CANARY_DIR, materialize, rawShellValue } from "./injection";
import { hostVf, snapshot } from "./lab";
import { DOMAIN, useReliabilityLab } from "./labHost";
import { DeploymentResult, ProviderProcess, Props, ResourceSpec, Stack } from "../support/engine";

describe("reliability on the lab host: injection, concurrency, drift, reboot", function () {
  this.timeout(4 * 60 * 60_000);
  const lab = useReliabilityLab("injection, concurrency, drift, reboot");
  const { pf, res, numVfs, linuxLine, timed } = lab;
  let vm: LabVm;
  let rootConn: any;
  let pwConn: any;
  before(() => {
    ({ vm, rootConn, pwConn } = lab);
  });
  const keepLogs = (where: string, r: DeploymentResult) => recordLogs(where, r.logs);
  const sshAccepted = async (since: number, user: string) =>
    Number((await vm.run(`journalctl -q --since @${since} --no-pager | grep -c "sshd.*Accepted password for ${user} " || true`)).trim());

  // ---------------------------------------------------------------------------
  describe("0. injection on a host with libvirt and SR-IOV NICs: random values through the resources' reads", () => {
    it("no value given to the PF scan, the VF probe, virsh reads or the libvirt usage scan is executed", async () => {
      const host = hostFor(connectionSchema().parse(rootConn) as any);
      await vm.run(`rm -rf ${CANARY_DIR}; mkdir -p ${CANARY_DIR}`);
      const guestCanaries = async () => (await vm.run(`ls ${CANARY_DIR}; ls /root | grep '^pulumi-sriov-canary-' || true`)).split("\n").filter(Boolean);
      // virsh must not be sent to other hosts or told to run programs (ssh/tcp/tls/ext transports).
      const local = (u: string) => (/\+[a-z0-9]*:|^[a-z0-9]+:\/\/[^/]/i.test(u) ? "qemu:///system" : u);
      await fc.assert(
        fc.asyncProperty(rawShellValue, rawShellValue, rawShellValue, fc.nat(7), async (a, b, c, index) => {
          const v = materialize(a, "lab-value");
          const w = materialize(b, "lab-value2");
          const uri = local(materialize(c, "lab-uri"));
          figures.injectionValues += 3;
          figures.injectionSentToHost += 3;
          const quiet = (p: Promise<unknown>) => p.then(() => undefined, (e: Error) => record("lab injection read error", e.message));
          await quiet(readFacts(host, "interface", v, w));
          await quiet(readFacts(host, "pciAddress", w, v));
          await quiet(readVfFacts(host, v, w, index));
          await quiet(readPoolFacts(host, { name: v, pf: w, libvirtUri: uri }));
          await quiet(readPoolFacts(host, { name: w, vfs: [v, w], libvirtUri: uri }));
          await quiet(readDomainFacts(host, uri, v, w));
          await quiet(libvirtObjects(host, uri));
          expect(await guestCanaries(), JSON.stringify([v, w, uri])).to.deep.equal([]);
        }),
        { numRuns: Math.ceil(Number(process.env.INJECTION_RUNS ?? 60) / 3) },
      );
      const executed = await guestCanaries();
      figures.injectionExecuted += executed.length;
      expect(executed).to.deep.equal([]);
      await vm.run(`rm -rf ${CANARY_DIR}`);
      await closeAllConnections();
    });
  });

  // ---------------------------------------------------------------------------
  describe("1. concurrency", () => {
    // Whatever a failed test left (VF units, the modprobe file, VFs): removed by hand.
    afterEach(async function () {
      if (this.currentTest?.state !== "failed") return;
      await vm.exec(
        `for u in /etc/systemd/system/pulumi-sriov-*.service; do [ -e "$u" ] && systemctl disable --now "$(basename "$u")"; rm -f "$u"; done; systemctl daemon-reload; ` +
          `if [ -e /etc/modprobe.d/pulumi-sriov-igb.conf ]; then rm -f /etc/modprobe.d/pulumi-sriov-igb.conf; update-initramfs -u >/dev/null 2>&1; fi; for p in ${pf[0].pci} ${pf[1].pci}; do echo 0 > /sys/bus/pci/devices/$p/sriov_numvfs; done; rm -f /var/lib/pulumi-sriov/found/*; true`,
      );
    });

    it("one provider process applies 14 VFs at once over two connections; files and attributes are all consistent; a second up is a no-op", async () => {
      const base = trackStack("concurrency-pfs", new Stack());
      const pfs = [0, 1].map((i) => res("sriovPf", `pf${i}`, rootConn, { pciAddress: pf[i].pci, numVfs: 7, persist: "none" }));
      keepLogs("concurrency pfs up", await timed("concurrency: 2 PFs × 7 VFs", () => base.up(pfs)));
      const many = trackStack("concurrency-vfs", new Stack());
      const want = (p: number, i: number) => ({ mac: `02:00:00:01:0${p}:1${i}`, vlan: 100 + 10 * p + i, qos: i, trust: i % 2 === 0, spoofCheck: i % 3 !== 0 });
      const vfs: ResourceSpec[] = [];
      for (const p of [0, 1]) for (let i = 0; i < 7; i++) vfs.push(res("virtualFunction", `vf-${p}-${i}`, (p + i) % 2 ? pwConn : rootConn, { pf: pf[p].name, index: i, ...want(p, i) }));
      const since = Math.floor(Date.now() / 1000) - 1;
      const r = await timed("concurrency: 14 VFs in parallel", () => many.up(vfs, { parallel: true }));
      keepLogs("concurrency vfs up", r);
      expect(r.steps.map((s) => s.op)).to.deep.equal(Array(14).fill("create"));
      // One SSH connection per host and credential in the provider process.
      if (pwConn.user !== "root") expect(await sshAccepted(since, pwConn.user), "password logins during the up").to.equal(1);
      for (const p of [0, 1]) {
        for (let i = 0; i < 7; i++) {
          const w = want(p, i);
          const v = (await hostVf(vm, pf[p].name, i))!;
          expect(v, `VF ${i} of ${pf[p].name}`).to.deep.include({ mac: w.mac, vlan: w.vlan, qos: w.qos, trust: w.trust, spoofchk: w.spoofCheck });
          const unit = `/etc/systemd/system/pulumi-sriov-vf-${pf[p].pci}-${i}.service`;
          const text = await vm.run(`cat ${unit}; systemctl is-enabled pulumi-sriov-vf-${pf[p].pci}-${i}.service`);
          expect(text).to.include(`p=/sys/bus/pci/devices/${pf[p].pci}`).and.include(`vf ${i} mac ${w.mac}`).and.include("\nenabled");
        }
      }
      const s = await snapshot(vm);
      expect(s.temps).to.deep.equal([]);
      expect(Object.keys(s.files).filter((f) => f.includes("pulumi-sriov-vf-"))).to.have.length(14);
      const again = await many.up(vfs, { parallel: true });
      expect(again.steps.map((x) => x.op)).to.deep.equal(Array(14).fill("same"));
      expect(again.calls.create + again.calls.update).to.equal(0);
      keepLogs("concurrency vfs destroy", await timed("concurrency: destroy 14 VFs", () => many.destroy()));
      expect((await vm.run("ls /etc/systemd/system | grep -c pulumi-sriov-vf- || true")).trim()).to.equal("0");
      for (const p of [0, 1])
        for (let i = 0; i < 7; i++) {
          const v = (await hostVf(vm, pf[p].name, i))!;
          expect(v).to.deep.include({ vlan: 0, qos: 0, trust: false, spoofchk: true });
          expect(v.mac, "the administrative MAC is cleared").to.not.equal(want(p, i).mac);
        }
      keepLogs("concurrency pfs destroy", await base.destroy());
      expect([await numVfs(0), await numVfs(1)]).to.deep.equal([0, 0]);
    });

    it("two provider processes at once, each a PF with VFs, share the host's unit directory and systemd: every unit complete and enabled, then all removed", async () => {
      // Both processes write units and reload systemd at once; the host lock keeps them apart.
      // (The shared modprobe file is the same test with update-initramfs: `npm run test:slow`.)
      const stacks = [0, 1].map((i) => trackStack(`concurrency-procs-${i}`, new Stack()));
      const want = (p: number, i: number) => ({ mac: `02:00:00:02:0${p}:1${i}`, vlan: 200 + 10 * p + i });
      const spec = (p: number): ResourceSpec[] => [
        res("sriovPf", `pp${p}`, p ? pwConn : rootConn, { pciAddress: pf[p].pci, numVfs: 3, persist: "systemd" }),
        ...[0, 1, 2].map((i) => res("virtualFunction", `pv-${p}-${i}`, p ? pwConn : rootConn, { pf: pf[p].name, index: i, ...want(p, i) })),
      ];
      const results = await timed("concurrency: two processes", () => Promise.all([0, 1].map((p) => stacks[p].up(spec(p)))));
      results.forEach((r, p) => keepLogs(`two processes ${p}`, r));
      expect([await numVfs(0), await numVfs(1)]).to.deep.equal([3, 3]);
      for (const p of [0, 1]) {
        const pfUnit = `pulumi-sriov-pf-${pf[p].pci}.service`;
        expect((await vm.run(`cat /etc/systemd/system/${pfUnit}; systemctl is-enabled ${pfUnit}`)).trim()).to.match(/\nenabled$/);
        for (const i of [0, 1, 2]) {
          const unit = `pulumi-sriov-vf-${pf[p].pci}-${i}.service`;
          const text = await vm.run(`cat /etc/systemd/system/${unit}; systemctl is-enabled ${unit}`);
          expect(text).to.include(`vf ${i} mac ${want(p, i).mac}`).and.include("\nenabled");
          expect(await hostVf(vm, pf[p].name, i), `VF ${i} of ${pf[p].name}`).to.deep.include({ mac: want(p, i).mac, vlan: want(p, i).vlan });
        }
      }
      const s = await snapshot(vm);
      expect(s.temps).to.deep.equal([]);
      expect(Object.keys(s.files).filter((f) => f.includes("/pulumi-sriov-"))).to.have.length(8);
      const units = Object.keys(s.files).filter((f) => f.includes("/pulumi-sriov-")).map((f) => f.split("/").pop());
      expect((await vm.run(`systemctl show -p NeedDaemonReload --value ${units.join(" ")} | sort -u`)).trim(), "systemd has loaded every unit as written").to.equal("no");
      await timed("concurrency: two processes destroy", () => Promise.all(stacks.map((st) => st.destroy())));
      expect((await vm.run("ls /etc/systemd/system | grep -c pulumi-sriov- || true")).trim()).to.equal("0");
      expect([await numVfs(0), await numVfs(1)]).to.deep.equal([0, 0]);
    });
  });

  // ---------------------------------------------------------------------------
  describe("3. drift: the seeds' manual commands are detected and repaired", () => {
    const stack = new Stack();
    let foundVfs = 0;
    const resources = () => [
      res("iommuKernelArgs", "kargs", rootConn, { iommu: "intel", extraArgs: ["hugepages=8"] }),
      res("sriovPf", "pf", rootConn, { interface: pf[0].name, numVfs: 3 }),
      res("virtualFunction", "vf", pwConn, { pf: pf[0].name, index: 1, mac: "02:00:00:00:dd:01", vlan: 30 }),
      res("vfPoolNetwork", "pool", rootConn, { name: "driftpool", pf: pf[0].name }),
      res("domainVfInterface", "iface", rootConn, { domain: DOMAIN, source: { network: "driftpool" }, mac: "52:54:00:6e:00:02" }),
    ];
    /** What check tells a preview about the host (hostChanges), per resource. */
    async function hostChanges(): Promise<Record<string, string[]>> {
      const p = await ProviderProcess.start();
      try {
        const out: Record<string, string[]> = {};
        for (const r of resources()) {
          const c = await p.check(r.provider, r.name, stack.state.get(r.name)?.inputs ?? {}, r.props as Props);
          out[r.name] = (c.inputs.hostChanges as string[] | undefined) ?? [];
        }
        recordLogs("drift check", p.logs);
        return out;
      } finally {
        await p.stop();
      }
    }

    before(async () => {
      trackStack("drift", stack);
      foundVfs = await numVfs(0);
      keepLogs("drift up", await timed("drift: first up", () => stack.up(resources())));
      const changes = await hostChanges();
      for (const [name, c] of Object.entries(changes)) expect(c, `${name}: nothing to change after the up`).to.deep.equal([]);
    });

    async function drift(what: string, command: string, expectations: { resource: string; refreshed: (applied: Props | undefined) => void; planned: boolean; repaired: () => Promise<void> }): Promise<void> {
      figures.driftsMade++;
      await vm.run(command);
      const ref = await timed("drift: refresh", () => stack.refresh());
      keepLogs(`drift ${what} refresh`, ref);
      const entry = stack.state.get(expectations.resource);
      expectations.refreshed(entry?.outputs.applied);
      const hc = await hostChanges();
      if (expectations.planned) expect(hc[expectations.resource], `${what}: check's hostChanges`).to.not.deep.equal([]);
      const pv = await stack.preview(resources());
      const step = pv.steps.find((s) => s.name === expectations.resource)!;
      expect(step.op, `${what}: preview`).to.not.equal("same");
      figures.driftsDetected++;
      const r = await timed("drift: repairing up", () => stack.up(resources()));
      keepLogs(`drift ${what} up`, r);
      await expectations.repaired();
      const again = await stack.preview(resources());
      expect(again.steps.map((s) => s.op), `${what}: a preview after the repair`).to.deep.equal(Array(5).fill("same"));
      figures.driftsRepaired++;
    }

    it("echo 0 > sriov_numvfs (PF)", async () => {
      await drift("numvfs 0", `echo 0 > /sys/class/net/${pf[0].name}/device/sriov_numvfs`, {
        resource: "pf",
        refreshed: (a) => expect(a?.numVfs).to.equal(0),
        planned: true,
        repaired: async () => {
          expect(await numVfs(0)).to.equal(3);
          expect((await hostVf(vm, pf[0].name, 1))!).to.deep.include({ mac: "02:00:00:00:dd:01", vlan: 30 });
        },
      });
    });

    it("ip link set … vf 1 mac … (VF)", async () => {
      await drift("vf mac", `ip link set ${pf[0].name} vf 1 mac 02:00:00:0d:0d:0d`, {
        resource: "vf",
        refreshed: (a) => expect(a?.mac).to.equal("02:00:00:0d:0d:0d"),
        planned: false,
        repaired: async () => {
          expect((await hostVf(vm, pf[0].name, 1))!.mac).to.equal("02:00:00:00:dd:01");
        },
      });
    });

    it("editing /etc/default/grub by hand (intel_iommu=off) and update-grub", async () => {
      await drift(
        "grub edited",
        `sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT="/GRUB_CMDLINE_LINUX_DEFAULT="intel_iommu=off /' /etc/default/grub && update-grub 2>/dev/null`,
        {
          resource: "kargs",
          refreshed: (a) => expect(a?.iommu).to.equal("none"),
          planned: true,
          repaired: async () => {
            const line = (await linuxLine()).split(/\s+/);
            expect(line).to.include("intel_iommu=on").and.not.include("intel_iommu=off");
            expect((await snapshot(vm)).grubCheck).to.equal("ok");
          },
        },
      );
    });

    it("virsh net-destroy (pool network)", async () => {
      await drift("net-destroy", "virsh -c qemu:///system net-destroy driftpool", {
        resource: "pool",
        refreshed: (a) => expect(a?.drift).to.include("network is not active"),
        planned: true,
        repaired: async () => {
          expect(await vm.run("virsh -c qemu:///system net-info driftpool")).to.match(/Active:\s+yes/);
        },
      });
    });

    it("virsh detach-interface --config (guest interface)", async () => {
      await drift("detach", `virsh -c qemu:///system detach-interface ${DOMAIN} network --mac 52:54:00:6e:00:02 --config`, {
        resource: "iface",
        refreshed: (a) => expect(a, "refresh drops the interface from state").to.equal(undefined),
        planned: true,
        repaired: async () => {
          expect(await vm.run(`virsh -c qemu:///system dumpxml --inactive ${DOMAIN}`)).to.include("52:54:00:6e:00:02");
        },
      });
    });

    it("4. after a reboot the host runs what the resources configured; destroy leaves it as found", async () => {
      await timed("reboot", () => vm.reboot());
      const cmdline = (await vm.run("cat /proc/cmdline")).trim().split(/\s+/);
      expect(cmdline).to.include.members(["intel_iommu=on", "iommu=pt", "hugepages=8"]);
      expect(cmdline).to.not.include("intel_iommu=off");
      expect((await snapshot(vm)).grubCheck).to.equal("ok");
      expect(await numVfs(0)).to.equal(3);
      expect((await hostVf(vm, pf[0].name, 1))!).to.deep.include({ mac: "02:00:00:00:dd:01", vlan: 30 });
      expect(await vm.run("virsh -c qemu:///system net-info driftpool")).to.match(/Active:\s+yes/);
      const pv = await stack.preview(resources());
      expect(pv.steps.map((s) => s.op), "nothing to do after the reboot").to.deep.equal(Array(5).fill("same"));
      keepLogs("drift destroy", await timed("drift: destroy", () => stack.destroy()));
      expect(await numVfs(0), "VFs as found").to.equal(foundVfs);
      expect((await vm.exec("virsh -c qemu:///system net-info driftpool")).code).to.not.equal(0);
      expect(await vm.run(`virsh -c qemu:///system dumpxml --inactive ${DOMAIN}`)).to.not.include("52:54:00:6e:00:02");
      // The hand edit (intel_iommu=off in GRUB_CMDLINE_LINUX_DEFAULT) was the user's: replaced while managed, put back now.
      expect(await vm.run("grep ^GRUB_CMDLINE_LINUX_DEFAULT= /etc/default/grub")).to.include("intel_iommu=off");
    });
  });
});
