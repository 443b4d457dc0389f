// Results of `npm run bench` as markdown: machine, tables, targets.
import { spawnSync } from "child_process";
import * as os from "os";
import type { NaiveResult } from "./baseline";
import type { OpCost } from "./opcost";
import type { ResourceRun, RunResult, TraceEntry } from "./deploy";
import type { HostCounts } from "./hostcount";

export interface Machine {
  date: string;
  nproc: number;
  cpu: string;
  kernel: string;
  node: string;
  qemu: string;
  loadAtStart: string;
}

export function machine(): Machine {
  const q = spawnSync(process.env.LAB_QEMU ?? "qemu-system-x86_64", ["--version"], { encoding: "utf8" });
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    nproc: os.cpus().length,
    cpu: os.cpus()[0]?.model?.trim() ?? "unknown",
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    qemu: (q.stdout ?? "").split("\n")[0].trim() || "unknown",
    loadAtStart: os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" "),
  };
}

export interface OursRow {
  configure: RunResult;
  noop: RunSummaryLike;
  destroy?: RunResult;
}

type RunSummaryLike = RunResult;

export interface LatencyRow {
  rttTarget: number;
  rttMeasured: number;
  ours: OursRow;
  /** Naive, independent steps at once (as the engine runs independent Commands). */
  naive?: NaiveResult;
  /** Naive, each step after the one before. */
  naiveChained?: NaiveResult;
  /** The physical limit: the naive steps as one shell script over one connection. */
  oneScript?: NaiveResult;
  /** On the lab guest. */
  opCost?: OpCost;
  /** On OpenSSH on this machine, behind the same path. */
  opCostLocal?: OpCost;
}

export interface FleetRow {
  hosts: number;
  what: "configure" | "no-op";
  run: RunResult;
  resources: number;
}

export interface Results {
  machine: Machine;
  lab: string;
  path: string;
  labBootSeconds?: number;
  rows: LatencyRow[];
  /** Per-resource round trips of a no-op re-run, one resource at a time. */
  noopPerResource?: ResourceRun[];
  /** Per-resource round trips of a configuration, one resource at a time. */
  configurePerResource?: ResourceRun[];
  fleetRtt?: number;
  fleetRttMeasured?: number;
  fleet: FleetRow[];
  /** Naive steps, and how many lie on its longest dependency chain. */
  naiveSteps?: number;
  naiveCritical?: number;
  /** Processes one reading of the host counters starts (subtracted from every count). */
  hostCountOverhead?: number;
  /** Host commands of the first configure run, with durations. */
  configureTrace?: TraceEntry[];
  notes: string[];
}

const s = (ms: number) => (ms / 1000).toFixed(1);
const kb = (n: number) => (n / 1024).toFixed(1);

function ourStats(r: RunResult) {
  return r.stats.total;
}

/** Handshakes per host in one process: "1" when every host had exactly one, else the list. */
function handshakesPerHost(r: RunResult): string {
  const per = Object.values(r.stats.hosts).map((h) => h.handshakes);
  if (per.length === 0) return "0";
  return per.every((h) => h === per[0]) ? `${per[0]} × ${per.length} host${per.length > 1 ? "s" : ""}` : per.join(", ");
}

export interface TargetCheck {
  target: string;
  met: boolean;
  detail: string;
}

export function checkTargets(r: Results): TargetCheck[] {
  const out: TargetCheck[] = [];
  const allRuns: [string, RunResult][] = [];
  for (const row of r.rows) {
    allRuns.push([`configure @${row.rttTarget} ms`, row.ours.configure], [`no-op @${row.rttTarget} ms`, row.ours.noop]);
    if (row.ours.destroy) allRuns.push([`destroy @${row.rttTarget} ms`, row.ours.destroy]);
  }
  for (const f of r.fleet) allRuns.push([`fleet ${f.what} N=${f.hosts}`, f.run]);
  const bad = allRuns.filter(([, run]) => Object.values(run.stats.hosts).some((h) => h.handshakes !== 1));
  out.push({
    target: "1 SSH handshake per host per provider process",
    met: bad.length === 0,
    detail: bad.length
      ? `not in: ${bad.map(([n, run]) => `${n} (${handshakesPerHost(run)})`).join(", ")}`
      : `every run (${allRuns.length} provider processes, ${r.fleet.reduce((m, f) => Math.max(m, f.hosts), 1)} hosts at most) made exactly one per host`,
  });
  const noops = r.rows.map((row) => row.ours.noop);
  const perRes = noops.map((n) => ourStats(n).commands / Math.max(1, n.resources.length));
  const worst = r.noopPerResource?.reduce((m, x) => Math.max(m, x.commands ?? 0), 0);
  const noopOk = perRes.every((x) => x <= 1) && (worst === undefined || worst <= 1);
  out.push({
    target: "no-op re-run: at most 1 round trip per resource",
    met: noopOk,
    detail:
      `${noops.map((n) => `${ourStats(n).commands} round trips / ${n.resources.length} resources`).join("; ")}` +
      (worst !== undefined ? `; one resource at a time: at most ${worst} per resource` : ""),
  });
  for (const [rtt, want] of [[0, 1.5], [50, 2]] as const) {
    const row = r.rows.find((x) => x.rttTarget === rtt);
    const naive = row && [row.naive, row.naiveChained].filter((x): x is NaiveResult => !!x).sort((x, y) => x.wallMs - y.wallMs)[0];
    if (!row || !naive) continue;
    const got = naive.wallMs / row.ours.configure.wallMs;
    out.push({
      target: `configure ≥ ${want}× faster than the naive script at ${rtt} ms`,
      met: got >= want,
      detail: `naive (the faster of its two runs) ${s(naive.wallMs)} s / pulumi-sriov ${s(row.ours.configure.wallMs)} s = ${got.toFixed(2)}×`,
    });
  }
  const limits = r.rows.filter((x) => x.oneScript);
  if (limits.length)
    out.push({
      target: "configure within 1.5× of the one-script physical limit",
      met: limits.every((x) => x.ours.configure.wallMs / x.oneScript!.wallMs <= 1.5),
      detail: limits
        .map((x) => `${x.rttTarget} ms: ${s(x.ours.configure.wallMs)} s / ${s(x.oneScript!.wallMs)} s = ${(x.ours.configure.wallMs / x.oneScript!.wallMs).toFixed(2)}×`)
        .join("; "),
    });
  const vfs = (r.configurePerResource ?? []).filter((x) => x.kind === "VirtualFunction");
  if (vfs.length)
    out.push({
      target: "each VirtualFunction create under 1 s (one resource at a time, 0 ms)",
      met: vfs.every((x) => x.ms < 1000),
      detail: vfs.map((x) => `${x.name} ${s(x.ms)} s`).join(", "),
    });
  const noopHost = r.rows.filter((x) => x.ours.noop.host);
  const worstProcs = r.noopPerResource?.reduce((m, x) => Math.max(m, x.host?.processes ?? 0), 0);
  if (noopHost.length)
    out.push({
      target: "no-op re-run: under 5 host processes per resource",
      met:
        noopHost.every((x) => x.ours.noop.host!.processes / x.ours.noop.resources.length < 5) &&
        (r.noopPerResource?.every((x) => (x.host?.processes ?? 0) < 5) ?? true),
      detail:
        noopHost.map((x) => `${x.rttTarget} ms: ${x.ours.noop.host!.processes} processes / ${x.ours.noop.resources.length} resources`).join("; ") +
        (worstProcs !== undefined && r.noopPerResource?.some((x) => x.host) ? `; one resource at a time: at most ${worstProcs}` : ""),
    });
  return out;
}

export function latencyTable(r: Results): string {
  const lines = [
    "| RTT (set / measured) | run | SSH handshakes | round trips (commands) | bytes sent / received | host processes | daemon-reloads | udev settles | wall time |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of r.rows) {
    const rtt = `${row.rttTarget} ms / ${row.rttMeasured.toFixed(1)} ms`;
    const c = ourStats(row.ours.configure);
    const n = ourStats(row.ours.noop);
    lines.push(
      `| ${rtt} | pulumi-sriov: configure (${row.ours.configure.resources.length} resources) | ${c.handshakes} | ${c.commands} | ${kb(c.bytesSent)} KiB / ${kb(c.bytesReceived)} KiB | ${hostCells(row.ours.configure.host)} | ${s(row.ours.configure.wallMs)} s |`,
      `| ${rtt} | pulumi-sriov: no-op re-run (check + diff) | ${n.handshakes} | ${n.commands} | ${kb(n.bytesSent)} KiB / ${kb(n.bytesReceived)} KiB | ${hostCells(row.ours.noop.host)} | ${s(row.ours.noop.wallMs)} s |`,
    );
    for (const [label, v] of baselines(row)) {
      const dials = v.dialAttempts > v.handshakes ? ` (${v.dialAttempts} dials)` : "";
      lines.push(
        `| ${rtt} | ${label}: configure | ${v.handshakes}${dials} | ${v.commands} | ${kb(v.bytesSent)} KiB / ${kb(v.bytesReceived)} KiB | ${hostCells(v.host)} | ${s(v.wallMs)} s |`,
      );
    }
    if (row.ours.destroy) {
      const d = ourStats(row.ours.destroy);
      lines.push(
        `| ${rtt} | pulumi-sriov: destroy | ${d.handshakes} | ${d.commands} | ${kb(d.bytesSent)} KiB / ${kb(d.bytesReceived)} KiB | ${hostCells(row.ours.destroy.host)} | ${s(row.ours.destroy.wallMs)} s |`,
      );
    }
  }
  return lines.join("\n");
}

const hostCells = (h: HostCounts | undefined) => (h ? `${h.processes} | ${h.reloads} | ${h.settles}` : "– | – | –");

const BASELINES = [
  ["naive, a connection per command, independent steps at once", "naive"],
  ["naive, a connection per command, one after another", "naiveChained"],
  ["physical limit: the same commands as one script over one connection", "oneScript"],
] as const;

function baselines(row: LatencyRow): [string, NaiveResult][] {
  return BASELINES.flatMap(([label, k]) => (row[k] ? [[label, row[k]!] as [string, NaiveResult]] : []));
}

const times = (ours: number, theirs: number | undefined) => (theirs ? `${(ours / theirs).toFixed(2)}×` : "–");

/** pulumi-sriov's configure as a multiple of each baseline's: wall time and host processes (below 1 is less). */
export function ratioTable(r: Results): string {
  const lines = [
    "| RTT | pulumi-sriov configure against | wall time: ours / that | host processes: ours / that | round trips: ours / that | SSH handshakes: ours / that |",
    "|---|---|---:|---:|---:|---:|",
  ];
  for (const row of r.rows) {
    const ours = row.ours.configure;
    for (const [label, v] of baselines(row))
      lines.push(
        `| ${row.rttTarget} ms | ${label} | **${times(ours.wallMs, v.wallMs)}** | ${ours.host && v.host ? times(ours.host.processes, v.host.processes) : "–"} | ${times(ours.stats.total.commands, v.commands)} | ${times(ours.stats.total.handshakes, v.handshakes)} |`,
      );
  }
  return lines.length > 2 ? lines.join("\n") : "";
}

export interface NetworkEstimate {
  rtt: number;
  /** Extra ms per fresh-connection command and per pooled command, against 0 ms. */
  dFresh: number;
  dPooled: number;
  oursConfigure: number;
  oursNoop: number;
  naiveChained: number;
  naiveParallel?: number;
}

/**
 * The network share of each run at each RTT: the measured extra cost of one
 * operation at that RTT (against 0 ms) times the operations on the run's
 * critical path. pulumi-sriov's commands all lie on it (the resources are
 * chained and the VFs take the host lock in turn): 1 handshake + C commands.
 * Naive chained: every step is a fresh connection; in parallel, the steps of
 * its longest chain.
 */
export function networkEstimates(r: Results): NetworkEstimate[] {
  const cost = (row: LatencyRow) => row.opCostLocal ?? row.opCost;
  const b = r.rows.find((x) => x.rttTarget === 0);
  const base = b && cost(b);
  if (!base) return [];
  const out: NetworkEstimate[] = [];
  for (const row of r.rows) {
    const c = cost(row);
    if (!c || row.rttTarget === 0) continue;
    const dFresh = c.freshMs - base.freshMs;
    const dPooled = c.pooledMs - base.pooledMs;
    const dHandshake = dFresh - dPooled;
    const naiveSteps = r.naiveSteps ?? 0;
    out.push({
      rtt: row.rttTarget,
      dFresh,
      dPooled,
      oursConfigure: dHandshake + row.ours.configure.stats.total.commands * dPooled,
      oursNoop: dHandshake + row.ours.noop.stats.total.commands * dPooled,
      naiveChained: naiveSteps * dFresh,
      naiveParallel: r.naiveCritical !== undefined ? r.naiveCritical * dFresh : undefined,
    });
  }
  return out;
}

export function opCostTable(r: Results): string {
  const rows = r.rows.filter((x) => x.opCost || x.opCostLocal);
  if (!rows.length) return "";
  const ms = (x: number | undefined) => (x === undefined ? "–" : `${x.toFixed(x < 20 ? 1 : 0)} ms`);
  const lines = [
    "| RTT (set / measured) | lab guest: fresh connection + one command (naive) | lab guest: one command on the open connection (pulumi-sriov) | OpenSSH on this machine: fresh | OpenSSH on this machine: open connection |",
    "|---|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.rttTarget} ms / ${row.rttMeasured.toFixed(1)} ms | ${ms(row.opCost?.freshMs)} | ${ms(row.opCost?.pooledMs)} | ${ms(row.opCostLocal?.freshMs)} | ${ms(row.opCostLocal?.pooledMs)} |`,
    );
  }
  const est = networkEstimates(r);
  if (est.length) {
    lines.push(
      "",
      `Network share of each run: the extra cost of one operation against 0 ms (${rows.some((x) => x.opCostLocal) ? "measured on OpenSSH on this machine, whose CPU cost is small and steady; the guest's handshakes vary by more than the latency" : "measured on the lab guest"}) × the operations on the run's critical path (pulumi-sriov: 1 handshake + every command; naive chained: ${r.naiveSteps} fresh connections; naive in parallel: the ${r.naiveCritical} on its longest chain):`,
      "",
      "| RTT | extra per fresh connection | extra per pooled command | pulumi-sriov configure | pulumi-sriov no-op | naive chained | naive in parallel | naive chained / pulumi-sriov | naive in parallel / pulumi-sriov |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const e of est)
      lines.push(
        `| ${e.rtt} ms | ${e.dFresh.toFixed(0)} ms | ${e.dPooled.toFixed(0)} ms | ${s(e.oursConfigure)} s | ${s(e.oursNoop)} s | ${s(e.naiveChained)} s | ${e.naiveParallel === undefined ? "–" : `${s(e.naiveParallel)} s`} | ${(e.naiveChained / e.oursConfigure).toFixed(1)}× | ${e.naiveParallel === undefined ? "–" : `${(e.naiveParallel / e.oursConfigure).toFixed(1)}×`} |`,
      );
  }
  return lines.join("\n");
}

export function perResourceTable(runs: ResourceRun[]): string {
  const lines = [
    "| resource | kind | operation | round trips | handshakes | host processes | daemon-reloads | udev settles | time |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const x of runs)
    lines.push(`| ${x.name} | ${x.kind} | ${x.op} | ${x.commands ?? "?"} | ${x.handshakes ?? "?"} | ${hostCells(x.host)} | ${s(x.ms)} s |`);
  return lines.join("\n");
}

/** Where the configure time went: each resource's time, and the slowest host commands. */
export function timeTable(r: Results): string {
  const row = r.rows[0];
  if (!row) return "";
  const lines = [
    `Per resource, configure at ${row.rttTarget} ms (from its Check to the end of its Create, waits for the host lock included):`,
    "",
    "| resource | kind | time |",
    "|---|---|---:|",
    ...row.ours.configure.resources.map((x) => `| ${x.name} | ${x.kind} | ${s(x.ms)} s |`),
  ];
  const trace = r.configureTrace;
  if (trace?.length) {
    const total = trace.reduce((m, x) => m + x.ms, 0);
    const top = [...trace].sort((a, b) => b.ms - a.ms).slice(0, 8);
    const short = (w: string) => w.replace(/\s+/g, " ").replace(/\|/g, "\\|").slice(0, 90);
    lines.push(
      "",
      `The ${trace.length} host commands of that run (the host lock's channels not included) took ${s(total)} s in all; the slowest:`,
      "",
      "| command (start) | time |",
      "|---|---:|",
      ...top.map((x) => `| \`${short(x.what)}\` | ${s(x.ms)} s |`),
    );
  }
  return lines.join("\n");
}

export function fleetTable(r: Results): string {
  const lines = [
    "| hosts (N) | run | resources | SSH handshakes | round trips | wall time | wall / wall(N=1) |",
    "|---:|---|---:|---:|---:|---:|---:|",
  ];
  for (const f of r.fleet) {
    const one = r.fleet.find((x) => x.what === f.what && x.hosts === 1);
    const t = f.run.stats.total;
    lines.push(
      `| ${f.hosts} | ${f.what} | ${f.resources} | ${t.handshakes} (${handshakesPerHost(f.run)}) | ${t.commands} | ${s(f.run.wallMs)} s | ${one ? (f.run.wallMs / one.run.wallMs).toFixed(2) : "–"} |`,
    );
  }
  return lines.join("\n");
}

/** Plain-language reading of the numbers, computed from them. */
export function reading(r: Results): string[] {
  const out: string[] = [];
  const row0 = r.rows.find((x) => x.rttTarget === 0) ?? r.rows[0];
  const trace = r.configureTrace;
  if (row0 && trace?.length) {
    const host = trace.reduce((m, x) => m + x.ms, 0);
    out.push(
      `At ${row0.rttTarget} ms the configure took ${s(row0.ours.configure.wallMs)} s, of which its host commands ran ${s(host)} s one after another ` +
        `(the slowest: ${[...trace].sort((a, b) => b.ms - a.ms).slice(0, 3).map((x) => `\`${x.what.split(/[;\n]/)[0].slice(0, 40)}\` ${s(x.ms)} s`).join(", ")}): ` +
        "on the emulated guest the work on the host, not the network, sets the wall time, and it varies from run to run by more than the added latency.",
    );
  }
  const at50 = networkEstimates(r).find((e) => e.rtt === 50);
  const row50 = r.rows.find((x) => x.rttTarget === 50);
  if (at50 && row50) {
    const c = row50.ours.configure.stats.total.commands;
    out.push(
      `The network share at 50 ms: pulumi-sriov ${s(at50.oursConfigure)} s (1 handshake + ${c} round trips on its critical path, ` +
        `${at50.dPooled.toFixed(0)} ms each), the naive script ${s(at50.naiveChained)} s chained` +
        (at50.naiveParallel !== undefined ? ` or ${s(at50.naiveParallel)} s with independent steps at once` : "") +
        `: ${(at50.naiveChained / at50.oursConfigure).toFixed(1)}× against the chained script even on a host whose work cost nothing. ` +
        `One handshake instead of ${r.naiveSteps ?? "many"} is the gain; the ${c} round trips, all on the critical path (every create reads the host again ` +
        `after Check's plan read it, writes under the host lock take a lock channel each, and the VFs take the lock in turn), give most of it back.`,
    );
  }
  const noop = r.rows.map((x) => x.ours.noop.stats.total.commands);
  if (noop.length)
    out.push(
      `A no-op re-run costs one handshake and ${Math.max(...noop)} round trips for ${r.rows[0].ours.noop.resources.length} resources ` +
        "(IommuKernelArgs, SriovPf and VfPoolNetwork read the host once each in Check; VirtualFunction's Check reads nothing).",
    );
  return out;
}

/** The README's benchmark section body: when, where, and the main rows at each RTT with their counts. */
export function readmeTable(r: Results): string {
  const m = r.machine;
  const lines = [
    `Taken ${m.date} on ${m.nproc} CPUs (${m.cpu}), Node.js ${m.node.replace(/^v(\d+).*/, "$1")}, ${m.qemu.replace(/ \(.*\)$/, "")} under TCG, load average at start ${m.loadAtStart}; host counts read on the lab guest:`,
    "",
    "| RTT | run | SSH handshakes | round trips | host processes | daemon-reloads | udev settles | wall time |",
    "|---:|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of r.rows) {
    const runs: [string, { handshakes: number; commands: number }, HostCounts | undefined, number][] = [
      [`pulumi-sriov: configure (${row.ours.configure.resources.length} resources)`, ourStats(row.ours.configure), row.ours.configure.host, row.ours.configure.wallMs],
      ["pulumi-sriov: no-op re-run", ourStats(row.ours.noop), row.ours.noop.host, row.ours.noop.wallMs],
      ...baselines(row).map(([label, v]): [string, NaiveResult, HostCounts | undefined, number] => [label, v, v.host, v.wallMs]),
    ];
    for (const [label, t, h, ms] of runs) lines.push(`| ${row.rttTarget} ms | ${label} | ${t.handshakes} | ${t.commands} | ${hostCells(h)} | ${s(ms)} s |`);
  }
  lines.push("", ...checkTargets(r).map((t) => `- ${t.met ? "Met" : "**Not met**"}: ${t.target} (${t.detail}).`));
  return lines.join("\n");
}

export const README_START = "<!-- bench results: written by npm run bench -->";
export const README_END = "<!-- end of bench results -->";

/** `readme` with the text between the markers replaced by `table`; throws when the markers are missing. */
export function withReadmeTable(readme: string, table: string): string {
  const a = readme.indexOf(README_START);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) throw new Error("README.md has no bench results markers");
  return readme.slice(0, a + README_START.length) + "\n" + table + "\n" + readme.slice(b);
}

export function markdown(r: Results, method: string): string {
  const m = r.machine;
  const targets = checkTargets(r);
  const parts = [
    "# Benchmark results",
    "",
    `Taken ${m.date} with \`npm run bench\` on: ${m.nproc} CPUs (${m.cpu}), ${m.kernel}, Node.js ${m.node}, ${m.qemu}; load average at start ${m.loadAtStart} (the machine was shared).`,
    `Lab host: ${r.lab}${r.labBootSeconds ? ` (booted in ${r.labBootSeconds.toFixed(0)} s)` : ""}.`,
    `Network path: ${r.path}.`,
    "",
    "## Targets",
    "",
    "| target | met | measured |",
    "|---|---|---|",
    ...targets.map((t) => `| ${t.target} | ${t.met ? "yes" : "**no**"} | ${t.detail} |`),
    "",
    "## One host: configure from scratch, then re-run with nothing changed",
    "",
    latencyTable(r),
    "",
  ];
  const ratios = ratioTable(r);
  if (ratios)
    parts.push(
      "### pulumi-sriov's configure as a multiple of each baseline",
      "",
      "Below 1× is less than the baseline (faster, fewer processes). The physical limit does the naive script's work (the same commands) in one shell script over one SSH connection: the least the host can do for this configuration without the provider's persistence, verification, backups and records.",
      "",
      ratios,
      "",
    );
  const time = timeTable(r);
  if (time) parts.push("### Where the time goes", "", time, "");
  const cost = opCostTable(r);
  if (cost) parts.push("### What a round trip costs", "", "Medians over the same path, of a command that does nothing (`true`), on the lab guest (9 fresh connections, 21 commands) and on an OpenSSH server on this machine behind the same path (21 and 41):", "", cost, "");
  if (r.configurePerResource) parts.push("Round trips per resource, configure from scratch (one resource at a time, 0 ms):", "", perResourceTable(r.configurePerResource), "");
  if (r.noopPerResource) parts.push("Round trips per resource, no-op re-run (one resource at a time, 0 ms):", "", perResourceTable(r.noopPerResource), "");
  if (r.fleet.length) {
    parts.push(
      `## Fleet: N hosts in one \`pulumi up\` (RTT ${r.fleetRtt} ms set, ${r.fleetRttMeasured?.toFixed(1)} ms measured)`,
      "",
      fleetTable(r),
      "",
    );
  }
  const read = reading(r);
  if (read.length) parts.push("## Reading the numbers", "", ...read.map((n) => `- ${n}`), "");
  if (r.notes.length) parts.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  parts.push("## Method", "", method, "");
  return parts.join("\n");
}
