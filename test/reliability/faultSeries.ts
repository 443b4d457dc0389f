// One resource's fault series on the lab host: the SSH connection dropped at
// every host-operation boundary of create, update and delete in turn. Each
// time, no managed file is partial (old or new content only), no temp file is
// left, grub.cfg passes grub-script-check, and the next `up` / `destroy`
// through the real provider process converges, after which a preview shows
// nothing to do.
import { expect } from "chai";
import { appendFileSync } from "fs";
import { provider as inProcess } from "../../provider/runtime";
import { Props, Stack } from "../support/engine";
import { arm, disarm } from "./faults";
import { figures, record, recordError, recordLogs, trackStack } from "./figures";
import { engineEntry, expectOldOrNew, Kind, plain, Snapshot, snapshot, withTimeout } from "./lab";
import { DOMAIN, ReliabilityLab } from "./labHost";

const OP_TIMEOUT = 15 * 60_000;

export interface Scenario {
  kind: Kind;
  name: string;
  conn: () => any;
  v1: () => Props;
  v2: () => Props;
  /** The host as the inputs say (created / updated), or as before the resource (deleted). */
  verify: (stage: "create" | "update" | "delete") => Promise<void>;
}

/** Whatever a failed series left: removed by hand, so what runs after it starts clean. */
async function cleanByHand(lab: ReliabilityLab): Promise<void> {
  const { pf } = lab;
  await lab.vm.exec(
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

export async function faultSeries(lab: ReliabilityLab, sc: Scenario): Promise<void> {
  try {
    await lab.timed(`faults: ${sc.name}`, () => runSeries(lab, sc));
  } catch (e) {
    await cleanByHand(lab);
    throw e;
  }
}

async function runSeries(lab: ReliabilityLab, sc: Scenario): Promise<void> {
  const { vm, timed } = lab;
  const stack = trackStack(`faults-${sc.name}`, new Stack());
  const p = inProcess(sc.kind);
  const spec = (props: Props) => [lab.res(sc.kind, sc.name, sc.conn(), props)];
  const done = { create: false, update: false, delete: false };
  const faults = { create: 0, update: 0, delete: 0 };
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
      lab.addTime("faults: faulted op", Date.now() - opStart);
      const where = `${sc.name} ${op} fault #${k}`;
      if (!f.fired) {
        if (err) throw new Error(`${where}: failed without a fault: ${err.message}\n${f.trace.join("\n")}`);
        // This op has fewer boundaries than k and its unfaulted run was checked
        // like the faulted ones when it first got here: it only moves the
        // series on to the next op now.
        if (done[op]) {
          last = undefined;
          continue;
        }
        done[op] = true;
      } else {
        faults[op]++;
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
      recordLogs(`${where} recovery`, r.logs);
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
  const total = faults.create + faults.update + faults.delete;
  record(`faults ${sc.name}`, `${total} faults (create ${faults.create}, update ${faults.update}, delete ${faults.delete}); problems:\n${problems.join("\n")}`);
  process.stderr.write(`faults ${sc.name}: create ${faults.create}, update ${faults.update}, delete ${faults.delete}\n`);
  expect(total, "faults injected").to.be.greaterThan(2);
  expect(problems, `${sc.name}: ${problems.length} problems after ${total} faults`).to.deep.equal([]);
}
