// `npm run bench`: SSH handshakes, round trips, bytes and wall time of
// configuring the lab host through the real provider process, against the
// naive one-connection-per-command baseline, at several round-trip times,
// and a fleet figure. Prints a markdown report and writes it to
// test/bench/RESULTS.md.
//
//   npm run bench [-- --rtt 0,20,50] [--fleet 1,2,4,8] [--fleet-rtt 50]
//                    [--no-baseline] [--no-fleet] [--no-per-resource] [--out FILE | --no-write]
//                    [--lab-port PORT]   use a lab guest already running (npx tsx lab/cli.ts up)
//                    [--from-json FILE]  only write the report again from a run's saved results (RESULTS.json)
//
// The raw results go to RESULTS.json beside the report.
import * as fs from "fs";
import * as path from "path";
import { attachLab, describeLab, LabHost, startLab } from "./lab";
import { chained, criticalPath, naiveSteps, NaiveResult, runNaive, runScript } from "./baseline";
import { HostCounter, HostCounts } from "./hostcount";
import { measureOpCost } from "./opcost";
import { TestSshd } from "../support/sshd";
import { BenchResource, BenchStack, RunResult, StateEntry } from "./deploy";
import { fingerprint, fingerprintDiff, labPfs, normalizeGrubCfg, rememberPristine, resetByHand, verifyConfigured } from "./hostops";
import { NetPath } from "./netpath";
import { BenchConnection, hostResources, NUM_VFS, vfAttrs } from "./program";
import { checkTargets, LatencyRow, machine, markdown, readmeTable, Results, withReadmeTable } from "./report";
import { METHOD } from "./method";

const ROOT = path.resolve(__dirname, "..", "..");
const DEFAULT_OUT = path.join(__dirname, "RESULTS.md");
const README = path.join(ROOT, "README.md");

/** Writes the report `md` of `results`; the README's table too when the report goes to its usual place. */
function writeReport(md: string, results: Results, out: string): void {
  fs.writeFileSync(out, md);
  if (path.resolve(out) === DEFAULT_OUT) fs.writeFileSync(README, withReadmeTable(fs.readFileSync(README, "utf8"), readmeTable(results)));
}

interface Args {
  rtts: number[];
  fleet: number[];
  fleetRtt: number;
  baseline: boolean;
  perResource: boolean;
  labPort?: number;
  fromJson?: string;
  out?: string;
}

function usage(msg?: string): never {
  if (msg) process.stderr.write(`bench: ${msg}\n`);
  process.stderr.write(
    "usage: npm run bench [-- --rtt 0,20,50] [--fleet 1,2,4,8] [--fleet-rtt 50] [--no-baseline] [--no-fleet] [--no-per-resource] [--lab-port PORT] [--from-json FILE] [--out FILE | --no-write]\n",
  );
  process.exit(2);
}

function numbers(v: string | undefined, what: string): number[] {
  if (!v || !/^\d+(,\d+)*$/.test(v)) usage(`${what} takes a comma-separated list of whole numbers`);
  return v.split(",").map(Number);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rtts: [0, 20, 50], fleet: [1, 2, 4, 8], fleetRtt: 50, baseline: true, perResource: true, out: DEFAULT_OUT };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === "--rtt") a.rtts = numbers(argv[++i], "--rtt");
    else if (v === "--fleet") a.fleet = numbers(argv[++i], "--fleet");
    else if (v === "--fleet-rtt") a.fleetRtt = numbers(argv[++i], "--fleet-rtt")[0];
    else if (v === "--no-fleet") a.fleet = [];
    else if (v === "--no-baseline") a.baseline = false;
    else if (v === "--no-per-resource") a.perResource = false;
    else if (v === "--lab-port") a.labPort = numbers(argv[++i], "--lab-port")[0];
    else if (v === "--from-json") a.fromJson = argv[++i] ?? usage("--from-json takes a file");
    else if (v === "--out") a.out = argv[++i] ?? usage("--out takes a file");
    else if (v === "--no-write") a.out = undefined;
    else usage(`unknown argument ${JSON.stringify(v)}`);
  }
  if (a.fleet.some((n) => n < 1 || n > 16)) usage("--fleet sizes must be 1–16");
  return a;
}

const t0 = Date.now();
const log = (s: string) => process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(0)}s] ${s}\n`);
const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function summary(r: RunResult): string {
  const t = r.stats.total;
  const ops = r.resources.reduce<Record<string, number>>((m, x) => ((m[x.op] = (m[x.op] ?? 0) + 1), m), {});
  return `${secs(r.wallMs)}, ${t.handshakes} handshakes, ${t.commands} round trips, ${t.bytesSent}/${t.bytesReceived} bytes; ${Object.entries(ops)
    .map(([k, v]) => `${v} ${k}`)
    .join(", ")} [${r.resources.map((x) => `${x.name} ${secs(x.ms)}`).join(", ")}]${hostSummary(r.host)}`;
}

const hostSummary = (h: HostCounts | undefined) => (h ? `; host: ${h.processes} processes, ${h.reloads} daemon-reloads, ${h.settles} udev settles` : "");

function naiveSummary(r: NaiveResult): string {
  return `${secs(r.wallMs)}, ${r.handshakes} handshakes (${r.dialAttempts} dials), ${r.commands} round trips, ${r.bytesSent}/${r.bytesReceived} bytes${hostSummary(r.host)}`;
}

/** The state entry as it would be for the same resource reached through another endpoint. */
function viaEndpoint(e: StateEntry, host: string, port: number): StateEntry {
  const c: StateEntry = JSON.parse(JSON.stringify(e));
  for (const props of [c.inputs, c.outputs]) {
    const conn = props.connection;
    const target = conn && typeof conn === "object" && "value" in conn ? conn.value : conn;
    if (target) Object.assign(target, { host, port });
  }
  return c;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const runtime = path.join(ROOT, "node_modules", "pulumi-sriov", "dist", "provider", "runtime.js");
  if (!fs.existsSync(runtime)) {
    process.stderr.write(`bench: ${runtime} is missing; run \`npm run bench\` (it builds and links the package first)\n`);
    return 2;
  }
  if (args.fromJson) {
    const saved = JSON.parse(fs.readFileSync(args.fromJson, "utf8")) as Results;
    const md = markdown(saved, METHOD);
    process.stdout.write(md + "\n");
    if (args.out) writeReport(md, saved, args.out);
    return 0;
  }
  const results: Results = {
    machine: machine(),
    lab: "",
    path: "",
    rows: [],
    fleet: [],
    notes: [],
  };
  log(`machine: ${results.machine.nproc} CPUs (${results.machine.cpu}), load ${results.machine.loadAtStart}`);

  let vm: LabHost;
  if (args.labPort) {
    log(`using the lab guest on 127.0.0.1:${args.labPort}`);
    vm = attachLab(args.labPort);
  } else {
    log("booting the lab host (QEMU TCG, two igb SR-IOV PFs)");
    vm = await startLab();
  }
  let net: NetPath | undefined;
  let sshd: TestSshd | undefined;
  let counter: HostCounter | undefined;
  try {
    results.labBootSeconds = vm.bootSeconds;
    results.lab = await describeLab(vm);
    const pfs = await labPfs(vm);
    await rememberPristine(vm);
    await resetByHand(vm, ["sriov-bench", "sriov-bench-h0", "sriov-bench-h1"]);
    await normalizeGrubCfg(vm);
    const pristine = await fingerprint(vm);
    counter = await HostCounter.install(vm);
    results.hostCountOverhead = counter.overhead;
    log(`host counters installed; one reading starts ${counter.overhead} processes (subtracted)`);
    const counted = counter.around.bind(counter);
    const endpoints = Math.max(1, ...args.fleet);
    // OpenSSH on this machine, behind the same path: the protocol's own round trips, without the emulated guest's CPU.
    sshd = await TestSshd.start({ passwordAuth: false });
    net = await NetPath.create({ host: vm.connection.host, port: vm.connection.port }, endpoints, { host: sshd.host, port: sshd.port });
    const localConn: BenchConnection = {
      host: net.alsoEndpoint!.host,
      port: net.alsoEndpoint!.port,
      user: "root",
      privateKey: sshd.users.root.privateKey,
      hostKey: sshd.hostKey,
    };
    results.path = net.describe();
    log(`network path: ${net.describe()}; endpoints ${net.endpoints.map((e) => `${e.host}:${e.port}`).join(", ")}`);
    const conn = (i: number): BenchConnection => ({ ...vm.connection, host: net!.endpoints[i].host, port: net!.endpoints[i].port });

    /** After a run: back to the pristine host; through the provider first when `stack` has state. */
    const backToPristine = async (what: string, networks: string[]) => {
      const now = await fingerprint(vm);
      const diff = fingerprintDiff(pristine, now);
      if (diff.length) {
        results.notes.push(`after ${what}, the host differed from the start (reset by hand):\n${diff.map((d) => `    ${d}`).join("\n")}`);
        log(`after ${what}: host differs from the start; resetting by hand:\n  ${diff.join("\n  ")}`);
        await resetByHand(vm, networks, { providerLeftovers: true });
        const again = fingerprintDiff(pristine, await fingerprint(vm));
        if (again.length) throw new Error(`the host cannot be put back as it was:\n  ${again.join("\n  ")}`);
      }
    };

    const vfList = Array.from({ length: NUM_VFS }, (_, i) => vfAttrs(0, i));
    const program = (c: BenchConnection) =>
      hostResources({ prefix: "", connection: c, pf: 0, pfPciAddress: pfs[0].pciAddress, networkName: "sriov-bench", kernelArgs: true });

    for (const rtt of args.rtts) {
      await net.setRtt(rtt);
      const measured = await net.measureRtt();
      log(`== RTT ${rtt} ms (measured ${measured.toFixed(1)} ms)`);
      const resources = program(conn(0));
      const stack = new BenchStack({ cwd: ROOT });
      const configure = await counted(() => stack.up(resources, { trace: rtt === args.rtts[0] }));
      if (configure.trace) results.configureTrace = configure.trace;
      log(`pulumi-sriov configure: ${summary(configure)}`);
      const problems = await verifyConfigured(vm, pfs[0], vfList, "sriov-bench", { kernelArgs: true });
      if (problems.length) throw new Error(`the provider's configuration is not on the host:\n  ${problems.join("\n  ")}`);
      const noop = await counted(() => stack.up(resources));
      log(`pulumi-sriov no-op: ${summary(noop)}`);
      const changed = noop.resources.filter((r) => r.op !== "same");
      if (changed.length) results.notes.push(`no-op re-run at ${rtt} ms changed: ${changed.map((r) => `${r.name} (${r.op})`).join(", ")}`);
      if (rtt === args.rtts[0] && args.perResource) {
        const attributed = await stack.up(resources, { attribute: true, counter });
        results.noopPerResource = attributed.resources;
        const silent = [...new Set(attributed.resources.filter((r) => r.commands === 0).map((r) => r.kind))];
        if (silent.length)
          results.notes.push(
            `${silent.join(", ")}: Check does not contact the host (no plan hook), so its no-op costs no round trip, and neither a ` +
              "preview nor a no-op re-run looks for drift on it (only `pulumi refresh` does).",
          );
        log(`no-op, one resource at a time: ${attributed.resources.map((r) => `${r.name} ${r.commands}`).join(", ")}`);
      }
      const destroy = await counted(() => stack.destroy(resources));
      log(`pulumi-sriov destroy: ${summary(destroy)}`);
      await backToPristine(`pulumi-sriov destroy at ${rtt} ms`, ["sriov-bench"]);
      const row: LatencyRow = { rttTarget: rtt, rttMeasured: measured, ours: { configure, noop, destroy } };

      const opCost = await measureOpCost(conn(0));
      row.opCost = opCost;
      log(`one operation on the lab: fresh connection + command ${opCost.freshMs.toFixed(0)} ms, command on the open connection ${opCost.pooledMs.toFixed(0)} ms`);
      row.opCostLocal = await measureOpCost(localConn, { fresh: 21, pooled: 41 });
      log(`one operation on OpenSSH here: fresh ${row.opCostLocal.freshMs.toFixed(1)} ms, open connection ${row.opCostLocal.pooledMs.toFixed(1)} ms`);

      if (args.baseline) {
        const steps = naiveSteps({ pfIfname: pfs[0].ifname, numVfs: NUM_VFS, vfs: vfList, networkName: "sriov-bench" });
        results.naiveSteps = steps.length;
        results.naiveCritical = criticalPath(steps);
        for (const variant of ["parallel", "chained", "one script"] as const) {
          const naive = await counted(() =>
            variant === "one script" ? runScript(conn(0), steps) : runNaive(conn(0), variant === "parallel" ? steps : chained(steps)),
          );
          log(`naive configure (${variant}): ${naiveSummary(naive)} → ours / that: ${(configure.wallMs / naive.wallMs).toFixed(2)}× the time`);
          const np = await verifyConfigured(vm, pfs[0], vfList, "sriov-bench", { kernelArgs: true });
          if (np.length) throw new Error(`the naive configuration is not on the host:\n  ${np.join("\n  ")}`);
          if (variant === "parallel") row.naive = naive;
          else if (variant === "chained") row.naiveChained = naive;
          else row.oneScript = naive;
          await resetByHand(vm, ["sriov-bench"]);
          await backToPristine(`the naive run (${variant}) at ${rtt} ms`, ["sriov-bench"]);
        }
      }
      results.rows.push(row);
    }

    if (args.perResource) {
      await net.setRtt(0);
      const resources = program(conn(0));
      const stack = new BenchStack({ cwd: ROOT });
      const attributed = await stack.up(resources, { attribute: true, counter });
      results.configurePerResource = attributed.resources;
      log(`configure, one resource at a time: ${attributed.resources.map((r) => `${r.name} ${r.commands}`).join(", ")}`);
      await stack.destroy(resources);
      await backToPristine("the per-resource configure", ["sriov-bench"]);
    }

    if (args.fleet.length) {
      await net.setRtt(args.fleetRtt);
      results.fleetRtt = args.fleetRtt;
      results.fleetRttMeasured = await net.measureRtt();
      log(`== fleet at RTT ${args.fleetRtt} ms (measured ${results.fleetRttMeasured.toFixed(1)} ms)`);
      const fleetHost = (k: number, pf: number): BenchResource[] =>
        hostResources({ prefix: `h${k}-`, connection: conn(k), pf, pfPciAddress: pfs[pf].pciAddress, networkName: `sriov-bench-h${pf}`, kernelArgs: false });
      let configured: BenchStack | undefined;
      let configuredResources: BenchResource[] = [];
      for (const n of [1, 2].filter((x) => x <= Math.max(...args.fleet))) {
        const resources = Array.from({ length: n }, (_, k) => fleetHost(k, k)).flat();
        const stack = new BenchStack({ cwd: ROOT });
        const run = await stack.up(resources);
        log(`fleet configure N=${n}: ${summary(run)}`);
        for (let k = 0; k < n; k++) {
          const p = await verifyConfigured(vm, pfs[k], Array.from({ length: NUM_VFS }, (_, i) => vfAttrs(k, i)), `sriov-bench-h${k}`, { kernelArgs: false });
          if (p.length) throw new Error(`fleet host ${k} is not configured:\n  ${p.join("\n  ")}`);
        }
        results.fleet.push({ hosts: n, what: "configure", run, resources: resources.length });
        if (n === 2 || n === Math.max(...args.fleet)) {
          configured = stack;
          configuredResources = resources;
          break;
        }
        await stack.destroy(resources);
        await backToPristine(`fleet N=${n}`, ["sriov-bench-h0", "sriov-bench-h1"]);
      }
      // No-op re-runs over N endpoints: each is a host to the provider (its own
      // connection), with the state a stack for N identically configured hosts has.
      const pfCount = configuredResources.length / (NUM_VFS + 2);
      for (const n of args.fleet) {
        const stack = new BenchStack({ cwd: ROOT });
        const resources: BenchResource[] = [];
        for (let k = 0; k < n; k++) {
          const src = k % pfCount;
          const mine = fleetHost(k, src);
          resources.push(...mine);
          for (const r of mine) {
            const from = configured!.state.get(r.name.replace(/^h\d+-/, `h${src}-`))!;
            stack.state.set(r.name, viaEndpoint(from, net.endpoints[k].host, net.endpoints[k].port));
          }
        }
        const run = await stack.up(resources);
        log(`fleet no-op N=${n}: ${summary(run)}`);
        results.fleet.push({ hosts: n, what: "no-op", run, resources: resources.length });
      }
      await configured!.destroy(configuredResources);
      await backToPristine("the fleet runs", ["sriov-bench-h0", "sriov-bench-h1"]);
      results.notes.push(
        `Fleet: one lab guest is all this machine fits (${results.machine.nproc} CPUs, QEMU without KVM, other guests running), so the "hosts" are ` +
          `endpoints of the same guest: each endpoint is its own address in the network namespace, hence its own pooled SSH connection, ` +
          `handshake and host lock in the provider. The configure rows give each host its own PF (the lab has two, so N ≤ 2) with ` +
          `${NUM_VFS} VFs and a pool network (kernel arguments are per machine and left out). The no-op rows reuse the configured state ` +
          `for more endpoints (host k reads PF k mod 2). All hosts share the guest's emulated vCPU, its sshd and its lock file ` +
          `(writes of different "hosts" are serialised by the flock, which separate machines would not do), so wall time here grows ` +
          `faster with N than on a real fleet: it is an upper bound.`,
      );
    }
    if (args.baseline)
      results.notes.push(
        "Naive baseline: @pulumi/command's provider plugin is a separate binary that cannot be installed here, so each of its " +
          "`remote.Command` resources is reproduced as what it does: a fresh ssh2 connection (pinned host key, key auth, dial retries), " +
          "one command, disconnect. It runs two ways: steps chained like the provider's resources and independent ones at once (as the engine " +
          "runs independent resources; its default parallelism is unbounded), and each step after the one before. It configures " +
          "less than the provider (no VF attribute persistence, no verification, no backups, no drift detection), and its re-run " +
          "runs nothing at all (a Command re-runs only when its inputs change), so it has no no-op row.",
      );
    results.notes.push(
      "IommuKernelArgs uses reboot \"never\": the bench measures planning and writing the arguments (update-grub included), not a reboot.",
    );
  } finally {
    await counter?.uninstall().catch((e) => log(`host counters: uninstall failed: ${e}`));
    await net?.close();
    await sshd?.stop();
    await vm.stop();
  }

  const md = markdown(results, METHOD);
  process.stdout.write("\n" + md + "\n");
  if (args.out) {
    writeReport(md, results, args.out);
    const json = args.out.replace(/\.md$/, "") + ".json";
    fs.writeFileSync(json, JSON.stringify(results, (k, v) => (k === "trace" && Array.isArray(v) ? undefined : v), 1) + "\n");
    log(`wrote ${path.relative(process.cwd(), args.out)} and ${path.relative(process.cwd(), json)}`);
  }
  const missed = checkTargets(results).filter((t) => !t.met);
  if (missed.length) log(`targets missed: ${missed.map((t) => t.target).join("; ")}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
