// VirtualFunction on the lab host (QEMU igb NICs, real igbvf VFs), driven
// through the real dynamic-provider process as `pulumi up` drives it.
// Every test leaves the VFs it touched reset; the suite removes the VFs and
// the units it wrote.
import { expect } from "chai";
import { stopwatch } from "../support/timings";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { PF_MACS } from "../../lab/vm";
import { DeploymentError, ResourceSpec, secret, Stack } from "../support/engine";
import { hostFor, closeAllConnections } from "../../provider/host";
import { connectionSchema } from "../../provider/connection";
import { spec } from "../../provider/resources/virtualFunction";
import { execute, PartialApplyError } from "../../provider/host";
import { executable, readFacts } from "../../provider/resources/virtualFunction";
import { inputsSchema } from "../../provider/resources/virtualFunction/schema";
import { derivedMac, isLocallyAdministeredUnicast } from "../../provider/resources/virtualFunction/mac";
import { parseIpLinks, vfInfo } from "../../provider/resources/virtualFunction/facts";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const NUM_VFS = 3;

interface HostVf {
  mac: string;
  vlan: number;
  qos: number;
  spoofchk: boolean;
  trust: boolean;
  maxTx: number;
  minTx: number;
  linkState: string;
  driver: string;
  override: string;
  netdev: string;
}

describe("VirtualFunction on the lab host", function () {
  this.timeout(30 * 60_000);
  let vm: LabVm;
  let pf = "";
  let pfPci = "";
  let connection: any;
  const { timings, timed, print: printTimings } = stopwatch();

  /** The VF as the host reports it, read independently of the provider's parser. */
  async function hostVf(index: number): Promise<HostVf> {
    const link = JSON.parse(await vm.run(`ip -j -d link show dev ${pf}`))[0];
    const e = link.vfinfo_list.find((v: any) => v.vf === index);
    const vl = e.vlan_list?.[0] ?? {};
    const sys = (
      await vm.run(
        `v=$(readlink -f /sys/class/net/${pf}/device/virtfn${index}); if [ -e $v/driver ]; then basename "$(readlink -f $v/driver)"; else echo; fi; cat $v/driver_override; ls $v/net 2>/dev/null | head -n1; true`,
      )
    ).split("\n");
    return {
      mac: e.address,
      vlan: vl.vlan ?? 0,
      qos: vl.qos ?? 0,
      spoofchk: e.spoofchk,
      trust: e.trust,
      maxTx: e.rate?.max_tx ?? 0,
      minTx: e.rate?.min_tx ?? 0,
      linkState: e.link_state,
      driver: sys[0],
      override: sys[1] === "(null)" ? "" : sys[1],
      netdev: sys[2] ?? "",
    };
  }

  const unitFile = (index: number) => `/etc/systemd/system/pulumi-sriov-vf-${pfPci}-${index}.service`;

  function vfResource(name: string, props: Record<string, unknown>): ResourceSpec {
    return { name, provider: providers.virtualFunction, props: { connection: secret(connection), pf, ...props } };
  }

  /** Puts a VF back to a fresh VF's state by hand (between tests that must not depend on each other). */
  async function resetByHand(index: number) {
    await vm.run(
      `ip link set dev ${pf} vf ${index} mac 00:00:00:00:00:00 vlan 0 spoofchk on trust off; ip link set dev ${pf} vf ${index} min_tx_rate 0 max_tx_rate 0 || true; ` +
        `v=$(readlink -f /sys/class/net/${pf}/device/virtfn${index}); echo > $v/driver_override; ` +
        `if [ "$(basename "$(readlink -f $v/driver)")" = vfio-pci ]; then echo $(basename $v) > $v/driver/unbind; echo $(basename $v) > /sys/bus/pci/drivers_probe; fi`,
    );
  }

  before(async function () {
    // Waiting for a free lab slot on a busy machine can take long.
    this.timeout(120 * 60_000);
    vm = await timed("boot", () => sharedLab());
    connection = vm.connection;
    const links = JSON.parse(await vm.run("ip -j link show"));
    pf = links.find((l: any) => l.address === PF_MACS[0]).ifname;
    pfPci = (await vm.run(`basename "$(readlink -f /sys/class/net/${pf}/device)"`)).trim();
    // What SriovPf does: VFs, the PF up (rates need a link), and a unit
    // re-creating the VFs at boot.
    await vm.run(
      `ip link set dev ${pf} up; echo 0 > /sys/class/net/${pf}/device/sriov_numvfs; echo ${NUM_VFS} > /sys/class/net/${pf}/device/sriov_numvfs; ` +
        `printf '%s\\n' '[Unit]' 'Before=libvirtd.service network-pre.target' '[Service]' 'Type=oneshot' 'RemainAfterExit=yes' ` +
        // Like SriovPf's unit, it waits for the PF's driver (and udev's renaming, before the link goes up).
        `'ExecStart=/bin/sh -c "until [ -e /sys/bus/pci/devices/${pfPci}/net ]; do sleep 0.1; done; udevadm settle; echo ${NUM_VFS} > /sys/bus/pci/devices/${pfPci}/sriov_numvfs; ip link set dev $$(ls /sys/bus/pci/devices/${pfPci}/net) up"' '[Install]' 'WantedBy=multi-user.target' ` +
        `> /etc/systemd/system/pulumi-sriov-pf-${pfPci}.service; systemctl daemon-reload; systemctl enable pulumi-sriov-pf-${pfPci}.service`,
    );
    // Wait for the link (the lab joins both PFs with a hub).
    await vm.run(`for i in $(seq 50); do [ "$(cat /sys/class/net/${pf}/carrier 2>/dev/null)" = 1 ] && exit 0; sleep 0.2; done; exit 1`);
  });

  after(async function () {
    printTimings("VirtualFunction");
    await closeAllConnections();
    if (!vm?.running) return;
    await vm.exec(
      `systemctl disable --now pulumi-sriov-pf-${pfPci}.service 'pulumi-sriov-vf-${pfPci}-*.service' 2>/dev/null; ` +
        `rm -f /etc/systemd/system/pulumi-sriov-pf-${pfPci}.service /etc/systemd/system/pulumi-sriov-vf-${pfPci}-*.service; systemctl daemon-reload; ` +
        `echo 0 > /sys/class/net/${pf}/device/sriov_numvfs`,
    );
  });

  it("captures ip -j -d link output with configured VFs (parser fixture check)", async () => {
    // The parser tests use files captured this way; this proves the live output still parses the same.
    await vm.run(`ip link set dev ${pf} vf 2 mac 02:00:00:00:00:22 vlan 42 qos 5 spoofchk off trust on; ip link set dev ${pf} vf 2 max_tx_rate 50`);
    const json = await vm.run("ip -j -d link show");
    const netdev = pf;
    const a = vfInfo(parseIpLinks(json), netdev, 2).attributes!;
    expect(a).to.deep.equal({ mac: "02:00:00:00:00:22", vlan: 42, qos: 5, vlanProtocol: "802.1Q", spoofCheck: false, trust: true, linkState: "auto", minTxRate: 0, maxTxRate: 50 });
    await resetByHand(2);
  });

  describe("one VF through create, updates, drift and delete", () => {
    const stack = new Stack();
    const up = (props: Record<string, unknown>) => stack.up([vfResource("vf0", { index: 0, ...props })]);

    it("creates with kernel defaults and a derived MAC, and persists it", async () => {
      const r = await timed("create", () => up({}));
      expect(r.steps[0].op).to.equal("create");
      const o = r.outputs.vf0;
      const mid = (await vm.run("cat /etc/machine-id")).trim();
      expect(o.mac).to.equal(derivedMac(mid, pfPci, 0));
      expect(isLocallyAdministeredUnicast(o.mac)).to.equal(true);
      const vfPci = (await vm.run(`basename "$(readlink -f /sys/class/net/${pf}/device/virtfn0)"`)).trim();
      expect(o).to.deep.include({ pciAddress: vfPci, driver: "igbvf", pfPciAddress: pfPci, pfInterface: pf, persistPath: unitFile(0) });
      expect(o.iommuGroup).to.be.a("number").and.at.least(0);
      expect(o.numaNode).to.be.a("number");
      expect(o.netdev).to.match(/\S/);
      for (const [k, v] of Object.entries(o)) expect(v, k).to.not.equal(undefined);
      const h = await hostVf(0);
      expect(h).to.deep.include({ mac: o.mac, vlan: 0, spoofchk: true, trust: false, driver: "igbvf" });
      // The VF's own interface took the MAC (igbvf reads it when it binds).
      expect((await vm.run(`cat /sys/class/net/${h.netdev}/address`)).trim()).to.equal(o.mac);
      expect((await vm.run(`systemctl is-enabled pulumi-sriov-vf-${pfPci}-0.service; systemctl is-active pulumi-sriov-vf-${pfPci}-0.service`)).split("\n").slice(0, 2)).to.deep.equal(["enabled", "active"]);
      // verify reads "FILE:ALIAS" arguments, so the unit is checked under a name without ':'.
      await vm.run(`mkdir -p /run/vf-verify && cp ${unitFile(0)} /run/vf-verify/vf.service && systemd-analyze verify /run/vf-verify/vf.service; r=$?; rm -rf /run/vf-verify; exit $r`);
    });

    it("a second up with nothing changed is a no-op: diff says no changes", async () => {
      const r = await timed("noop-up", () => up({}));
      expect(r.steps[0].op).to.equal("same");
      expect(r.calls.create + r.calls.update + r.calls.delete).to.equal(0);
    });

    it("sets each attribute, then changes each", async () => {
      await timed("update-set", () => up({ mac: "02:00:00:aa:00:01", vlan: 100, qos: 3, spoofCheck: false, trust: true, maxTxRate: 100 }));
      expect(await hostVf(0)).to.deep.include({ mac: "02:00:00:aa:00:01", vlan: 100, qos: 3, spoofchk: false, trust: true, maxTx: 100 });
      const r = await timed("update-change", () => up({ mac: "02:00:00:aa:00:02", vlan: 200, qos: 0, spoofCheck: true, trust: false, maxTxRate: 300 }));
      expect(r.steps[0].op).to.equal("update");
      // Each operation run on the host is in the deployment's output.
      expect(r.logs.map((l) => l.message).join("\n")).to.match(/virtualFunction \S+ vf 0 on root@/).and.include("set vlan 200 qos 0");
      expect(r.outputs.vf0.mac).to.equal("02:00:00:aa:00:02");
      const h = await hostVf(0);
      expect(h).to.deep.include({ mac: "02:00:00:aa:00:02", vlan: 200, qos: 0, spoofchk: true, trust: false, maxTx: 300 });
      expect((await vm.run(`cat /sys/class/net/${h.netdev}/address`)).trim()).to.equal("02:00:00:aa:00:02");
      // The unit carries the new values for the next boot.
      const unit = await vm.run(`cat ${unitFile(0)}`);
      expect(unit).to.include("vf 0 mac 02:00:00:aa:00:02").and.include("vf 0 vlan 200 qos 0").and.include("max_tx_rate 300");
    });

    it("leaving attributes out resets them", async () => {
      await up({});
      const mid = (await vm.run("cat /etc/machine-id")).trim();
      expect(await hostVf(0)).to.deep.include({ mac: derivedMac(mid, pfPci, 0), vlan: 0, qos: 0, spoofchk: true, trust: false, maxTx: 0 });
    });

    it("refresh shows hand edits as drift and the next up repairs them", async () => {
      await up({ vlan: 10, trust: true });
      await vm.run(`ip link set dev ${pf} vf 0 vlan 55 qos 1 trust off spoofchk off`);
      const ref = await timed("refresh", () => stack.refresh());
      expect(ref.steps[0].op).to.equal("refresh");
      const st = stack.state.get("vf0")!;
      expect(st.outputs.applied).to.deep.include({ vlan: 55, qos: 1, trust: false, spoofCheck: false });
      const r = await timed("repair", () => up({ vlan: 10, trust: true }));
      expect(r.steps[0].op).to.equal("update");
      expect(await hostVf(0)).to.deep.include({ vlan: 10, qos: 0, trust: true, spoofchk: true });
      // Refresh now finds nothing, and up does nothing.
      await stack.refresh();
      expect((await up({ vlan: 10, trust: true })).steps[0].op).to.equal("same");
    });

    it("binds vfio-pci through driver_override and back to igbvf", async () => {
      const r = await timed("vfio-bind", () => up({ driver: "vfio-pci" }));
      expect(r.outputs.vf0).to.deep.include({ driver: "vfio-pci", netdev: "" });
      expect(await hostVf(0)).to.deep.include({ driver: "vfio-pci", override: "vfio-pci", netdev: "" });
      // Only this VF was captured: no new_id for 8086:10ca.
      expect((await hostVf(1)).driver).to.equal("igbvf");
      const back = await timed("vfio-unbind", () => up({}));
      expect(back.outputs.vf0.driver).to.equal("igbvf");
      expect(back.outputs.vf0.netdev).to.match(/\S/);
      expect(await hostVf(0)).to.deep.include({ driver: "igbvf", override: "" });
    });

    it("delete resets the VF and removes the unit", async () => {
      await up({ mac: "02:00:00:aa:00:09", vlan: 300, qos: 2, spoofCheck: false, trust: true, maxTxRate: 200, driver: "vfio-pci" });
      await timed("delete", () => stack.destroy());
      const h = await hostVf(0);
      expect(h).to.deep.include({ vlan: 0, qos: 0, spoofchk: true, trust: false, maxTx: 0, minTx: 0, driver: "igbvf", override: "" });
      // The administrative MAC is cleared: igbvf, bound again, picked its own, as on a new VF.
      expect(h.mac).to.not.equal("02:00:00:aa:00:09");
      expect((await vm.run(`cat /sys/class/net/${h.netdev}/address`)).trim()).to.equal(h.mac);
      expect((await vm.exec(`test -e ${unitFile(0)}`)).code).to.equal(1);
      expect((await vm.exec(`systemctl is-enabled pulumi-sriov-vf-${pfPci}-0.service`)).stdout.trim()).to.not.equal("enabled");
    });
  });

  describe("attributes igb refuses", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["minTxRate", { minTxRate: 10, maxTxRate: 100 }, /minTxRate = 10 is not supported by the igb driver of PF \S+ \(0000:[0-9a-f:.]+\): igb has no minimum TX rate/],
      ["linkState", { linkState: "enable" }, /linkState = enable is not supported by the igb driver/],
      ["vlanProtocol 802.1ad", { vlan: 100, vlanProtocol: "802.1ad" }, /vlanProtocol = 802.1ad is not supported by the igb driver/],
    ];
    for (const [what, props, message] of cases) {
      it(`${what}: fails naming attribute, value and driver, changing nothing`, async () => {
        const before = await hostVf(1);
        const stack = new Stack();
        const err = await stack.up([vfResource("vf1", { index: 1, mac: "02:00:00:bb:00:01", ...props })]).then(
          () => undefined,
          (e) => e,
        );
        expect(err).to.be.instanceOf(DeploymentError);
        expect(err.message).to.match(message);
        expect(err.message).to.include(vm.connection.host);
        expect(await hostVf(1)).to.deep.equal(before);
        expect((await vm.exec(`test -e ${unitFile(1)}`)).code).to.equal(1);
      });
    }

    it("the kernel's own refusal is reported with attribute, value, driver and stderr", async () => {
      // Bypasses the planner's knowledge of igb to see what the driver says.
      const conn = connectionSchema().parse(connection);
      const host = hostFor(conn);
      const facts = await readFacts(host, pf, "", 1);
      const err = await execute(host, executable(facts, [
        { kind: "run", description: "VF 1: set min_tx_rate 10", argv: ["ip", "link", "set", "dev", pf, "vf", "1", "min_tx_rate", "10", "max_tx_rate", "100"], attribute: "minTxRate", value: "10" },
      ])).then(
        () => undefined,
        (e) => e,
      );
      expect(err.message).to.match(/minTxRate = 10 was refused by the igb driver of PF/);
      expect(err.message).to.match(/RTNETLINK answers: Invalid argument/);
    });

    it("attributes joined in one command: the kernel's refusal of one still names it, and what went before is reported applied", async () => {
      const conn = connectionSchema().parse(connection);
      const host = hostFor(conn);
      const facts = await readFacts(host, pf, "", 1);
      const prefix = ["ip", "link", "set", "dev", pf, "vf", "1"];
      const step = (description: string, words: string[], attribute: "vlan" | "minTxRate", value: string) =>
        ({ kind: "run" as const, description, argv: [...prefix, ...words], attribute, value, joins: { prefix, words } });
      try {
        const err = await execute(host, executable(facts, [
          step("VF 1: set vlan 5 qos 0", ["vlan", "5", "qos", "0"], "vlan", "5"),
          step("VF 1: set min_tx_rate 10", ["min_tx_rate", "10", "max_tx_rate", "100"], "minTxRate", "10"),
        ])).then(
          () => undefined,
          (e) => e,
        );
        expect(err).to.be.instanceOf(PartialApplyError);
        expect(err.applied).to.deep.equal(["VF 1: set vlan 5 qos 0"]);
        expect(err.message).to.match(/minTxRate = 10 was refused by the igb driver of PF/);
        expect(err.message).to.match(/RTNETLINK answers: Invalid argument/);
        expect((await hostVf(1)).vlan).to.equal(5);
      } finally {
        await vm.run(`ip link set dev ${pf} vf 1 vlan 0`);
      }
    });

    it("maxTxRate on a PF without link says why", async () => {
      await vm.run(`ip link set dev ${pf} down`);
      try {
        const err = await new Stack().up([vfResource("vf1", { index: 1, maxTxRate: 100 })]).then(
          () => undefined,
          (e) => e,
        );
        expect(err.message).to.match(/maxTxRate = 100: the igb driver sets VF rate limits only while the PF has a link, and \S+ is down/);
      } finally {
        await vm.run(`ip link set dev ${pf} up; for i in $(seq 50); do [ "$(cat /sys/class/net/${pf}/carrier)" = 1 ] && exit 0; sleep 0.2; done; exit 1`);
      }
    });
  });

  it("create on a host already configured runs no writes", async () => {
    const stack = new Stack();
    const props = { index: 1, vlan: 20, trust: true, driver: "vfio-pci" };
    await stack.up([vfResource("vf1", props)]);
    // The same create again (as after a lost state), in-process, recording every command.
    const conn = connectionSchema().parse(connection);
    const host = hostFor(conn);
    const seen: string[] = [];
    const t = host.transport as any;
    const exec = t.exec.bind(t);
    const open = t.open.bind(t);
    t.exec = (c: string, stdin?: any) => (seen.push(c), exec(c, stdin));
    t.open = (c: string) => (seen.push(c), open(c));
    try {
      const outs = await spec.create({ host, connection: conn }, inputsSchema().parse({ pf, ...props }));
      expect(outs.driver).to.equal("vfio-pci");
    } finally {
      t.exec = exec;
      t.open = open;
    }
    // Only the host lock with its read-only probe ran: no ip link set, no sysfs or unit writes.
    expect(seen.length, seen.join("\n---\n")).to.equal(1);
    expect(seen[0]).to.include("flock").and.include("pf_name_pci").and.include("ip -j -d link show").and.not.include("ip link set");
    await stack.destroy();
    expect((await hostVf(1)).driver).to.equal("igbvf");
  });

  it("attributes and vfio-pci binding come back after a reboot and after VF re-creation", async function () {
    const stack = new Stack();
    const resources = [
      vfResource("vf1", { index: 1, mac: "02:00:00:cc:00:01", vlan: 30, qos: 4, trust: true, spoofCheck: false, maxTxRate: 150 }),
      vfResource("vf2", { index: 2, driver: "vfio-pci" }),
    ];
    const r = await stack.up(resources);
    const mac2 = r.outputs.vf2.mac;
    const expectApplied = async () => {
      expect(await hostVf(1)).to.deep.include({ mac: "02:00:00:cc:00:01", vlan: 30, qos: 4, trust: true, spoofchk: false, maxTx: 150, driver: "igbvf" });
      expect(await hostVf(2)).to.deep.include({ mac: mac2, driver: "vfio-pci", override: "vfio-pci" });
    };
    await expectApplied();

    // SriovPf re-creates VFs when their count changes, then restarts our units.
    await vm.run(
      `echo 0 > /sys/class/net/${pf}/device/sriov_numvfs; echo ${NUM_VFS} > /sys/class/net/${pf}/device/sriov_numvfs; ` +
        `systemctl restart pulumi-sriov-vf-${pfPci}-1.service pulumi-sriov-vf-${pfPci}-2.service`,
    );
    await expectApplied();

    await timed("reboot", () => vm.reboot());
    await closeAllConnections();
    const st = await vm.run(`systemctl is-active pulumi-sriov-vf-${pfPci}-1.service pulumi-sriov-vf-${pfPci}-2.service; journalctl -b -u 'pulumi-sriov-vf-*' --no-pager | tail -n 20`);
    expect(st.split("\n").slice(0, 2), st).to.deep.equal(["active", "active"]);
    await expectApplied();
    // The unit ran before libvirtd.
    const order = await vm.run(
      `systemctl show -p ActiveEnterTimestampMonotonic --value pulumi-sriov-vf-${pfPci}-2.service; systemctl show -p ActiveEnterTimestampMonotonic --value libvirtd.service`,
    );
    const [vfAt, libvirtAt] = order.trim().split("\n").map(Number);
    if (libvirtAt > 0) expect(vfAt).to.be.lessThan(libvirtAt);
    // Nothing drifted: refresh keeps the inputs, up does nothing.
    await stack.refresh();
    const again = await stack.up(resources);
    expect(again.steps.map((s) => s.op)).to.deep.equal(["same", "same"]);
    await stack.destroy();
    const h1 = await hostVf(1);
    expect(h1).to.deep.include({ vlan: 0, qos: 0, trust: false, spoofchk: true, maxTx: 0 });
    expect(h1.mac).to.not.equal("02:00:00:cc:00:01");
    expect(await hostVf(2)).to.deep.include({ driver: "igbvf", override: "" });
  });
});
