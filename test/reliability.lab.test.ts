// Reliability on the lab host (Debian under QEMU with two igb SR-IOV PFs),
// one boot for the whole file:
//
// 1. Concurrency: 14 VirtualFunction resources applied at once by one
//    provider process over two connections (root key, and a password user
//    through sudo); two provider processes at once, each a PF with VFs,
//    writing units and reloading systemd. Files stay consistent.
// 2. Faults: for each of the five resources, the SSH connection is dropped
//    at every host-operation boundary of create, update and delete in turn.
//    Each time, no managed file is partial (old or new content only), no
//    temp file is left, grub.cfg passes grub-script-check, and the next
//    `up` / `destroy` through the real provider process converges, after
//    which a preview shows nothing to do.
// 3. Drift: the seeds' manual commands (echo 0 > sriov_numvfs, ip link set
//    … vf … mac, editing /etc/default/grub, virsh net-destroy, detaching the
//    interface) are detected by refresh (and by check's hostChanges where the
//    resource plans), and repaired by the next up.
// 4. The host still boots with what the resources configured.
import { expect } from "chai";
import { randomBytes } from "crypto";
import { appendFileSync } from "fs";
import * as fc from "fast-check";
import { connectionSchema } from "../provider/connection";
import { closeAllConnections, hostFor } from "../provider/host";
import { observeDomain } from "../provider/resources/domainVfInterface/facts";
import { libvirtObjects, readFacts } from "../provider/resources/sriovPf/apply";
import { observePool } from "../provider/resources/vfPoolNetwork/facts";
import { gather as gatherVf } from "../provider/resources/virtualFunction";
import { CANARY_DIR, materialize, rawShellValue } from "./reliability/injection";
import { provider as inProcess } from "../provider/runtime";
import { sharedLab } from "./lab/shared";
import type { LabVm } from "./lab/vm";
import { PF_MACS } from "./lab/vm";
import { buildXml, el } from "../provider/libvirt/xml";
import { arm, disarm, installFaults } from "./reliability/faults";
import { addSecret, figures, record, recordError, recordLogs, trackStack } from "./reliability/figures";
import { engineEntry, expectOldOrNew, hostVf, Kind, plain, Snapshot, snapshot, withTimeout } from "./reliability/lab";
import { DeploymentResult, ProviderProcess, Props, ResourceSpec, secret, Stack } from "./support/engine";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const OP_TIMEOUT = 15 * 60_000;
const DOMAIN = "reltiny";
const PW_USER = "relpw";

function tinyDomainXml(): string {
  const rootPort = (index: number) => el("controller", { type: "pci", index: String(index), model: "pcie-root-port" });
  return buildXml(
    el("domain", { type: "qemu" }, [
      el("name", {}, [], DOMAIN),
      el("memory", { unit: "MiB" }, [], "128"),
      el("vcpu", {}, [], "1"),
      el("os", {}, [el("type", { arch: "x86_64", machine: "q35" }, [], "hvm")]),
      el("devices", {}, [el("controller", { type: "pci", index: "0", model: "pcie-root" }), rootPort(1), rootPort(2), rootPort(3), el("memballoon", { model: "none" })]),
    ]),
  );
}

// Take a place in the machine's queue of lab VMs as soon as the suite loads:
// the guest boots while the suite's other files run.
const labReady = sharedLab();
labReady.catch(() => undefined);

describe("reliability on the lab host: concurrency, dropped connections, drift, reboot", function () {
  this.timeout(4 * 60 * 60_000);
  let vm: LabVm;
  let rootConn: any;
  let pwConn: any;
  const pf = [
    { name: "", pci: "" },
    { name: "", pci: "" },
  ];
  let origGrub = "";
  let origGrubText = "";
  let origLinux = "";
  let origCmdline = "";
  const timings: Record<string, number> = {};

  async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
    const t = Date.now();
    try {
      return await f();
    } finally {
      timings[what] = (timings[what] ?? 0) + Date.now() - t;
    }
  }
  const keepLogs = (where: string, r: DeploymentResult) => recordLogs(where, r.logs);
  const res = (kind: Kind, name: string, conn: any, props: Props): ResourceSpec => ({ name, provider: providers[kind], props: { connection: secret(conn), ...props } });
  const numVfs = async (i: number) => Number((await vm.run(`cat /sys/bus/pci/devices/${pf[i].pci}/sriov_numvfs`)).trim());
  const grubFiles = () => vm.run('for f in /etc/default/grub /etc/default/grub.d/*; do [ -f "$f" ] && echo "$f $(sha256sum < "$f" | cut -c1-16)"; done; true');
  const linuxLine = async () => (await vm.run("grep -m1 -E '^\\s*linux\\s' /boot/grub/grub.cfg")).trim().replace(/^linux\s+\S+\s*/, "");
  const sshAccepted = async (since: number, user: string) =>
    Number((await vm.run(`journalctl -q --since @${since} --no-pager | grep -c "sshd.*Accepted password for ${user} " || true`)).trim());

  before(async function () {
    vm = await timed("boot", () => labReady.then(() => sharedLab()));
    rootConn = vm.connection;
    addSecret("lab private key", rootConn.privateKey);
    for (const [i, pci] of ["0000:01:00.0", "0000:02:00.0"].entries()) {
      pf[i].pci = pci;
      pf[i].name = (await vm.run(`ls /sys/bus/pci/devices/${pci}/net`)).trim();
    }
    // A password login for the engine flows (the image allows root by key only).
    const password = randomBytes(18).toString("base64url");
    addSecret("lab password", password);
    const hasSudo = (await vm.exec("command -v sudo")).code === 0;
    await vm.run(
      hasSudo
        ? `id ${PW_USER} >/dev/null 2>&1 || useradd -m -s /bin/sh ${PW_USER}; echo '${PW_USER}:${password}' | chpasswd; ` +
            `echo '${PW_USER} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/${PW_USER}; chmod 440 /etc/sudoers.d/${PW_USER}; ` +
            `printf 'PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/00-reliability.conf; systemctl reload ssh`
        : `echo 'root:${password}' | chpasswd; printf 'PasswordAuthentication yes\\nPermitRootLogin yes\\n' > /etc/ssh/sshd_config.d/00-reliability.conf; systemctl reload ssh`,
    );
    pwConn = { host: rootConn.host, port: rootConn.port, user: hasSudo ? PW_USER : "root", password, hostKey: rootConn.hostKey };
    record("lab password connection user", `${pwConn.user} (sudo: ${hasSudo})`);
    await vm.run("systemctl is-active libvirtd >/dev/null || systemctl start libvirtd");
    await vm.run(`virsh -c qemu:///system dominfo ${DOMAIN} >/dev/null 2>&1 || virsh -c qemu:///system define /dev/stdin`, { input: tinyDomainXml() });
    origGrub = await grubFiles();
    origGrubText = await vm.run("cat /etc/default/grub");
    origLinux = await linuxLine();
    origCmdline = (await vm.run("cat /proc/cmdline")).trim();
    installFaults();
  });

  // A long run: show each failure as it happens, not only in mocha's summary at the end.
  afterEach(function () {
    const t = this.currentTest;
    if (t?.state === "failed") process.stderr.write(`\n[reliability lab] FAILED: ${t.fullTitle()}\n${t.err?.stack ?? t.err?.message}\n`);
  });

  after(async function () {
    disarm();
    // Leave the shared guest as the image had it, for the test files that follow in this process.
    if (vm?.running) {
      this.timeout(15 * 60_000);
      await vm.exec(
        `virsh -c qemu:///system undefine ${DOMAIN} >/dev/null 2>&1; rm -f /etc/ssh/sshd_config.d/00-reliability.conf /etc/sudoers.d/${PW_USER}; ` +
          `userdel -r ${PW_USER} >/dev/null 2>&1; systemctl reload ssh; true`,
      );
      if ((await vm.run("cat /etc/default/grub")) !== origGrubText) {
        await vm.run("cat > /etc/default/grub && update-grub 2>/dev/null", { input: origGrubText });
      }
      if ((await vm.run("cat /proc/cmdline")).trim() !== origCmdline) await vm.reboot();
    }
    process.stderr.write(`reliability lab timings (s): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v / 1000)])))}\n`);
    await closeAllConnections();
  });

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
          await quiet(gatherVf(host, v, w, index));
          await quiet(observePool(host, { name: v, pf: w, libvirtUri: uri }));
          await quiet(observePool(host, { name: w, vfs: [v, w], libvirtUri: uri }));
          await quiet(observeDomain(host, uri, v, w));
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
  describe("2. the connection dropped at every boundary of create, update and delete", () => {
    const base = new Stack();
    let vfPci: string[] = [];

    before(async () => {
      trackStack("faults-base", base);
      const r = await base.up([res("sriovPf", "base", rootConn, { pciAddress: pf[1].pci, numVfs: 4, persist: "none" })]);
      vfPci = r.outputs.base.vfs.map((v: any) => v.pciAddress);
      expect(vfPci).to.have.length(4);
    });
    after(async () => {
      await base.destroy().catch((e) => recordError("faults base destroy", e));
    });

    interface Scenario {
      kind: Kind;
      name: string;
      conn: () => any;
      v1: () => Props;
      v2: () => Props;
      /** The host as the inputs say (created / updated), or as before the resource (deleted). */
      verify: (stage: "create" | "update" | "delete") => Promise<void>;
    }

    /** Whatever a failed series left: removed by hand, so the sections after it start clean. */
    async function cleanByHand(): Promise<void> {
      await vm.exec(
        [
          "virsh -c qemu:///system net-destroy relpool; virsh -c qemu:///system net-undefine relpool",
          `virsh -c qemu:///system detach-interface ${DOMAIN} hostdev --mac 52:54:00:6e:00:01 --config`,
          `for u in /etc/systemd/system/pulumi-sriov-vf-* /etc/systemd/system/pulumi-sriov-pf-${pf[0].pci}.service; do [ -e "$u" ] && systemctl disable --now "$(basename "$u")"; rm -f "$u"; done; systemctl daemon-reload`,
          `echo 0 > /sys/bus/pci/devices/${pf[0].pci}/sriov_numvfs; ip link set ${pf[0].name} mtu 1500`,
          "rm -f /etc/default/grub.d/zz-pulumi-sriov.cfg /var/lib/pulumi-sriov/found/*; update-grub",
          "true",
        ].join(" >/dev/null 2>&1; "),
      );
    }

    async function series(sc: Scenario): Promise<void> {
      try {
        await runSeries(sc);
      } catch (e) {
        await cleanByHand();
        throw e;
      }
    }

    async function runSeries(sc: Scenario): Promise<void> {
      const stack = trackStack(`faults-${sc.name}`, new Stack());
      const p = inProcess(sc.kind);
      const spec = (props: Props) => [res(sc.kind, sc.name, sc.conn(), props)];
      const done = { create: false, update: false, delete: false };
      let faults = 0;
      // Every problem found, so one bug does not hide the boundaries after it.
      const problems: string[] = [];
      const check = async (what: string, fn: () => unknown): Promise<boolean> => {
        try {
          await fn();
          return true;
        } catch (e) {
          problems.push(`${what}: ${(e as Error).message.split("\n")[0]}`);
          return false;
        }
      };
      let last: Snapshot | undefined;
      for (let k = 1; !(done.create && done.update && done.delete); k++) {
        expect(k, "boundaries").to.be.lessThan(40);
        for (const op of ["create", "update", "delete"] as const) {
          const props = op === "create" ? sc.v1() : sc.v2();
          // The host as the last step left it: verify and preview change nothing.
          const before = last ?? (await timed("faults: snapshots", () => snapshot(vm)));
          let err: Error | undefined;
          const old = stack.state.get(sc.name);
          if (op === "create") expect(old, "absent before create").to.equal(undefined);
          else expect(old, `present before ${op}`).to.not.equal(undefined);
          // The checked inputs, as the engine has them before calling the provider (no fault here).
          const checked = op === "delete" ? undefined : await timed("faults: check", () => p.check(old ? plain(old.inputs) : {}, { ...props, connection: sc.conn() }));
          if (checked) expect(checked.failures).to.deep.equal([]);
          const opStart = Date.now();
          arm(k, "after");
          try {
            if (op === "create") {
              const r = await withTimeout(p.create(checked!.inputs), OP_TIMEOUT, `${sc.name} create`);
              stack.state.set(sc.name, await engineEntry(stack, sc.kind, sc.name, r.id, checked!.inputs, r.outs));
            } else if (op === "update") {
              const r = await withTimeout(p.update(old!.id, plain(old!.outputs), checked!.inputs), OP_TIMEOUT, `${sc.name} update`);
              stack.state.set(sc.name, await engineEntry(stack, sc.kind, sc.name, old!.id, checked!.inputs, r.outs));
            } else {
              await withTimeout(p.delete(old!.id, plain(old!.outputs)), OP_TIMEOUT, `${sc.name} delete`);
              stack.state.delete(sc.name);
            }
          } catch (e) {
            err = e as Error;
          }
          const f = disarm();
          timings["faults: faulted op"] = (timings["faults: faulted op"] ?? 0) + Date.now() - opStart;
          const where = `${sc.name} ${op} fault #${k}`;
          if (!f.fired) {
            if (err) throw new Error(`${where}: failed without a fault: ${err.message}\n${f.trace.join("\n")}`);
            done[op] = true;
          } else {
            faults++;
            figures.faultsInjected++;
            expect(err, `${where} must fail`).to.be.instanceOf(Error);
            recordError(where, err);
          }
          const faulted = await timed("faults: snapshots", () => snapshot(vm));
          let ok = await check(where, () => expect(faulted.temps, "temp files left").to.deep.equal([]));
          ok = (await check(where, () => expect(faulted.grubCheck, "grub-script-check after the fault").to.equal("ok"))) && ok;
          // The next run, through the real provider process.
          const next = op === "delete" ? () => stack.destroy() : () => stack.up(spec(props));
          const r = await timed(`faults: ${sc.name} recovery`, () => withTimeout(next(), OP_TIMEOUT, `${where}: the next run`)).catch((e) => {
            recordError(`${where} recovery`, e);
            throw new Error(`${where}: the next run failed: ${(e as Error).message}\nfaulted run: ${f.trace.join(" | ")}\nfault: ${err?.message}`);
          });
          keepLogs(`${where} recovery`, r);
          // REL_LOG=<file>: each step's faulted trace and the next run's logs, for a closer look.
          if (process.env.REL_LOG)
            appendFileSync(
              process.env.REL_LOG,
              `== ${where}\nfaulted: ${f.trace.join(" | ")}\nstate before: ${JSON.stringify(old ? { ...plain(old.outputs), connection: undefined } : null)}\n${r.logs.map((l) => `[${l.severity}] ${l.message}`).join("\n")}\n`,
            );
          const after = await timed("faults: snapshots", () => snapshot(vm));
          last = after;
          ok = (await check(where, () => expectOldOrNew(before, faulted, after, "after the fault"))) && ok;
          ok = (await check(where, () => expect(after.grubCheck, "grub-script-check after the next run").to.equal("ok"))) && ok;
          ok = (await timed("faults: verify", () => check(`${where}, after the next run`, () => sc.verify(op)))) && ok;
          if (op !== "delete") {
            const pv = await timed("faults: preview", () => stack.preview(spec(props)));
            ok = (await check(where, () => expect(pv.steps.map((s) => s.op), "a preview after the next run").to.deep.equal(["same"]))) && ok;
          }
          if (f.fired && ok) figures.faultsRecovered++;
        }
      }
      record(`faults ${sc.name}`, `${faults} faults; problems:\n${problems.join("\n")}`);
      expect(faults, "faults injected").to.be.greaterThan(2);
      expect(problems, `${sc.name}: ${problems.length} problems after ${faults} faults`).to.deep.equal([]);
    }

    it("VirtualFunction (over a password connection through sudo)", async () => {
      const pfName = () => pf[1].name;
      await timed("faults: VirtualFunction", () =>
        series({
          kind: "virtualFunction",
          name: "fvf",
          conn: () => pwConn,
          v1: () => ({ pf: pfName(), index: 1, mac: "02:00:00:00:aa:01", vlan: 10, qos: 2, spoofCheck: false, trust: true }),
          v2: () => ({ pf: pfName(), index: 1, mac: "02:00:00:00:aa:02", vlan: 20, driver: "vfio-pci" }),
          async verify(stage) {
            const v = (await hostVf(vm, pfName(), 1))!;
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
        }),
      );
    });

    it("SriovPf", async () => {
      // As found: what delete must put back.
      const foundVfs = await numVfs(0);
      const foundMtu = Number((await vm.run(`cat /sys/class/net/${pf[0].name}/mtu`)).trim());
      await timed("faults: SriovPf", () =>
        series({
          kind: "sriovPf",
          name: "fpf",
          conn: () => rootConn,
          v1: () => ({ interface: pf[0].name, numVfs: 2 }),
          v2: () => ({ interface: pf[0].name, numVfs: 3, mtu: 9000 }),
          async verify(stage) {
            const unit = (await vm.exec(`cat /etc/systemd/system/pulumi-sriov-pf-${pf[0].pci}.service; systemctl is-enabled pulumi-sriov-pf-${pf[0].pci}.service`)).stdout;
            const mtu = Number((await vm.run(`cat /sys/class/net/${pf[0].name}/mtu`)).trim());
            if (stage === "delete") {
              expect(await numVfs(0), `VFs as found (${foundVfs})`).to.equal(foundVfs);
              expect(mtu, "MTU as found").to.equal(foundMtu);
              expect(unit).to.not.include("ExecStart");
            } else {
              expect(await numVfs(0)).to.equal(stage === "create" ? 2 : 3);
              expect(mtu).to.equal(stage === "create" ? 1500 : 9000);
              expect(unit).to.include(`echo ${stage === "create" ? 2 : 3} > $$d/sriov_numvfs`).and.include("\nenabled");
            }
          },
        }),
      );
    });

    it("VfPoolNetwork", async () => {
      const info = async () => (await vm.exec("virsh -c qemu:///system net-info relpool")).stdout;
      await timed("faults: VfPoolNetwork", () =>
        series({
          kind: "vfPoolNetwork",
          name: "fpool",
          conn: () => rootConn,
          v1: () => ({ name: "relpool", pf: pf[1].name }),
          v2: () => ({ name: "relpool", pf: pf[1].name, autostart: false }),
          async verify(stage) {
            const i = (await info()).trim();
            if (stage === "delete") expect(i).to.equal("");
            else {
              expect(i).to.match(/Active:\s+yes/).and.match(/Persistent:\s+yes/);
              expect(i).to.match(stage === "create" ? /Autostart:\s+yes/ : /Autostart:\s+no/);
            }
          },
        }),
      );
    });

    it("DomainVfInterface", async () => {
      const macs = async () => (await vm.run(`virsh -c qemu:///system dumpxml --inactive ${DOMAIN} | grep -o "mac address='[^']*'" || true`)).trim();
      await timed("faults: DomainVfInterface", () =>
        series({
          kind: "domainVfInterface",
          name: "fiface",
          conn: () => rootConn,
          v1: () => ({ domain: DOMAIN, source: { pciAddress: vfPci[3] }, mac: "52:54:00:6e:00:01" }),
          v2: () => ({ domain: DOMAIN, source: { pciAddress: vfPci[3] }, mac: "52:54:00:6e:00:01", live: false }),
          async verify(stage) {
            const m = await macs();
            if (stage === "delete") expect(m).to.equal("");
            else expect(m).to.equal("mac address='52:54:00:6e:00:01'");
          },
        }),
      );
    });

    it("IommuKernelArgs (GRUB), over a user's own hugepages=2: grub.cfg always passes grub-script-check; delete puts the user's files back byte for byte", async () => {
      // The user's value, which the resource replaces while it exists and must put back on delete.
      const imageGrub = await vm.run("cat /etc/default/grub");
      await vm.run(`sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT="/GRUB_CMDLINE_LINUX_DEFAULT="hugepages=2 /' /etc/default/grub && update-grub 2>/dev/null`);
      const [savedGrub, savedLinux] = [origGrub, origLinux];
      origGrub = await grubFiles();
      origLinux = await linuxLine();
      await vm.run("mkdir -p /root/grub-as-found && cp -a /etc/default/grub /etc/default/grub.d /root/grub-as-found/");
      expect(origLinux.split(/\s+/)).to.include("hugepages=2");
      try {
        await iommuSeries();
      } finally {
        await vm.run("cat > /etc/default/grub && update-grub 2>/dev/null", { input: imageGrub });
        [origGrub, origLinux] = [savedGrub, savedLinux];
      }
    });

    const iommuSeries = () =>
      timed("faults: IommuKernelArgs", () =>
        series({
          kind: "iommuKernelArgs",
          name: "fkargs",
          conn: () => rootConn,
          v1: () => ({ iommu: "intel", extraArgs: ["hugepages=8"] }),
          v2: () => ({ iommu: "intel", extraArgs: ["hugepages=8", "nmi_watchdog=0"] }),
          async verify(stage) {
            const line = (await linuxLine()).split(/\s+/);
            if (stage === "delete") {
              const diff = await vm.run("diff -ru /root/grub-as-found/grub /etc/default/grub; diff -ru /root/grub-as-found/grub.d /etc/default/grub.d; true");
              expect(await grubFiles(), `the user's GRUB files (${diff.trim().split("\n").slice(2).join(" | ")})`).to.equal(origGrub);
              expect(line.join(" ")).to.equal(origLinux);
            } else {
              expect(line).to.include.members(["intel_iommu=on", "iommu=pt", "hugepages=8"]);
              expect(line, "the user's value is replaced while the resource exists").to.not.include("hugepages=2");
              if (stage === "update") expect(line).to.include("nmi_watchdog=0");
              else expect(line).to.not.include("nmi_watchdog=0");
            }
          },
        }),
      );
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
