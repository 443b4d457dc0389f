// Smoke form of `npm run bench`: the lab host configured from scratch and
// re-run with nothing changed through the real provider process, checking
// the COUNTS the benchmark reports (SSH handshakes per host per process,
// round trips per resource of a no-op re-run), never wall time. Leaves the
// shared lab as it found it.
import { expect } from "chai";
import { sharedLab } from "../../lab/shared";
import { naiveSteps, SEEDS } from "./baseline";
import { BenchStack, RunResult } from "./deploy";
import { HostCounter } from "./hostcount";
import { fingerprint, fingerprintDiff, LabPf, labPfs, resetByHand } from "./hostops";
import { attachLab, LabHost } from "./lab";
import { BenchConnection, hostResources, NUM_VFS, vfAttrs } from "./program";

const NETWORK = "sriov-bench-smoke";

// Host work the counts must stay within (measured on the lab with margin;
// counts, unlike time, do not move with the machine's load).
/** systemd reloads of a configure from scratch: every unit is new, so none. */
const CONFIGURE_RELOADS = 0;
/** udev settles of a configure: SriovPf's wait after creating the VFs, and the one in its count write. */
const CONFIGURE_SETTLES = 2;
/**
 * Host processes of one resource's no-op (its one read) by kind, about twice
 * what the lab measures (IommuKernelArgs 12 with the SSH login it comes first
 * with, SriovPf 11, VirtualFunction 4, VfPoolNetwork 4): a read that starts
 * a tool per file again fails this.
 */
const NOOP_PROCESSES: Record<string, number> = { IommuKernelArgs: 25, SriovPf: 25, VirtualFunction: 8, VfPoolNetwork: 8 };

function handshakesPerHost(r: RunResult): number[] {
  return Object.values(r.stats.hosts).map((h) => h.handshakes);
}

describe("benchmark (smoke): counts", function () {
  describe("naive baseline", function () {
    it("is one command per step of the guides: 2 for GRUB, 3 for the PF, one per VF attribute, 4 for the pool", function () {
      const steps = naiveSteps({ pfIfname: "enp1s0", numVfs: 4, vfs: Array.from({ length: 4 }, (_, i) => vfAttrs(0, i)), networkName: "n" });
      expect(steps).to.have.length(25);
      expect(steps.filter((s) => s.source === SEEDS.vf)).to.have.length(16);
      expect(steps.map((s) => s.command)).to.include.members([
        "update-grub",
        "echo 4 > /sys/class/net/enp1s0/device/sriov_numvfs",
        "ip link set enp1s0 vf 2 trust on",
        "virsh net-define /tmp/passthrough.xml",
      ]);
      // Every dependency names an earlier step.
      steps.forEach((s, i) => s.deps.forEach((d) => expect(steps.slice(0, i).map((x) => x.name)).to.include(d)));
    });
  });

  describe("on the lab host", function () {
    this.timeout(40 * 60_000);
    let vm: LabHost;
    let running = () => true;
    let pf: LabPf;
    let initial = "";
    let stack: BenchStack;
    let resources: ReturnType<typeof hostResources>;
    let counter: HostCounter | undefined;

    before(async function () {
      // BENCH_LAB_PORT: a lab guest already running (npx tsx lab/cli.ts up) instead of the shared one.
      const port = Number(process.env.BENCH_LAB_PORT ?? 0);
      if (port) vm = attachLab(port);
      else {
        const shared = await sharedLab();
        vm = shared;
        running = () => shared.running;
      }
      [pf] = await labPfs(vm);
      initial = await fingerprint(vm, { grubCfg: false });
      const connection: BenchConnection = { ...vm.connection };
      resources = hostResources({ prefix: "", connection, pf: 0, pfPciAddress: pf.pciAddress, networkName: NETWORK, kernelArgs: true });
      stack = new BenchStack();
      counter = await HostCounter.install(vm);
    });

    after(async function () {
      if (!vm || !running()) return;
      await counter?.uninstall();
      if (stack?.state.size) await stack.destroy(resources).catch(() => undefined);
      const left = fingerprintDiff(initial, await fingerprint(vm, { grubCfg: false }));
      if (left.length) await resetByHand(vm, [NETWORK], { providerLeftovers: true });
    });

    it("configures from scratch with one SSH handshake, no systemd reload and only SriovPf's udev settles", async function () {
      const r = await counter!.around(() => stack.up(resources));
      expect(r.resources.map((x) => x.op)).to.deep.equal(resources.map(() => "create"));
      expect(handshakesPerHost(r)).to.deep.equal([1]);
      expect(r.stats.total.commands).to.be.greaterThan(0);
      const link = JSON.parse(await vm.run(`ip -j -d link show dev ${pf.ifname}`))[0];
      expect(link.vfinfo_list).to.have.length(NUM_VFS);
      expect(r.host!.reloads, "systemd daemon-reloads").to.equal(CONFIGURE_RELOADS);
      expect(r.host!.settles, "udevadm settle runs").to.be.at.most(CONFIGURE_SETTLES);
    });

    it("re-runs with nothing changed in one handshake and at most one round trip per resource", async function () {
      const r = await stack.up(resources);
      expect(r.resources.map((x) => x.op)).to.deep.equal(resources.map(() => "same"));
      expect(r.calls.create + r.calls.update + r.calls.delete).to.equal(0);
      expect(handshakesPerHost(r)).to.deep.equal([1]);
      expect(r.stats.total.commands).to.be.at.most(resources.length);
    });

    it("attributes the no-op round trips and host processes: none over one round trip per resource, few processes", async function () {
      const r = await stack.up(resources, { attribute: true, counter });
      expect(r.resources.map((x) => x.op)).to.deep.equal(resources.map(() => "same"));
      for (const x of r.resources) {
        expect(x.commands, `${x.name} (${x.kind}) round trips`).to.be.at.most(1);
        expect(x.host!.processes, `${x.name} (${x.kind}) host processes`).to.be.at.most(NOOP_PROCESSES[x.kind]);
        expect(x.host!.reloads + x.host!.settles, `${x.name} (${x.kind}) reloads and settles`).to.equal(0);
      }
      expect(handshakesPerHost(r)).to.deep.equal([1]);
    });

    it("destroys in one handshake and leaves the host as it was", async function () {
      const r = await stack.destroy(resources);
      expect(r.resources).to.have.length(resources.length);
      expect(handshakesPerHost(r)).to.deep.equal([1]);
      expect(fingerprintDiff(initial, await fingerprint(vm, { grubCfg: false }))).to.deep.equal([]);
    });
  });
});
