// Results of `npm run bench` as markdown: machine, tables, targets.
import { spawnSync } from "child_process";
import * as os from "os";
import type { NaiveResult } from "./baseline";
import type { ResourceRun, RunResult, TraceEntry } from "./deploy";

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
  naive?: NaiveResult;
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
  const at50 = r.rows.find((row) => row.rttTarget === 50);
  if (at50?.naive) {
    const ratio = at50.naive.wallMs / at50.ours.configure.wallMs;
    out.push({
      target: "full configuration ≥ 10× faster than the naive baseline at 50 ms",
      met: ratio >= 10,
      detail: `${s(at50.naive.wallMs)} s naive / ${s(at50.ours.configure.wallMs)} s = ${ratio.toFixed(1)}×`,
    });
  }
  return out;
}

export function latencyTable(r: Results): string {
  const lines = [
    "| RTT (set / measured) | run | SSH handshakes | round trips (commands) | bytes sent / received | wall time |",
    "|---|---|---:|---:|---:|---:|",
  ];
  for (const row of r.rows) {
    const rtt = `${row.rttTarget} ms / ${row.rttMeasured.toFixed(1)} ms`;
    const c = ourStats(row.ours.configure);
    const n = ourStats(row.ours.noop);
    lines.push(
      `| ${rtt} | pulumi-sriov: configure (${row.ours.configure.resources.length} resources) | ${c.handshakes} | ${c.commands} | ${kb(c.bytesSent)} KiB / ${kb(c.bytesReceived)} KiB | ${s(row.ours.configure.wallMs)} s |`,
      `| ${rtt} | pulumi-sriov: no-op re-run (check + diff) | ${n.handshakes} | ${n.commands} | ${kb(n.bytesSent)} KiB / ${kb(n.bytesReceived)} KiB | ${s(row.ours.noop.wallMs)} s |`,
    );
    if (row.naive) {
      const v = row.naive;
      const dials = v.dialAttempts > v.handshakes ? ` (${v.dialAttempts} dials)` : "";
      lines.push(
        `| ${rtt} | naive, a connection per command: configure | ${v.handshakes}${dials} | ${v.commands} | ${kb(v.bytesSent)} KiB / ${kb(v.bytesReceived)} KiB | ${s(v.wallMs)} s |`,
        `| ${rtt} | **ratio naive / pulumi-sriov (configure)** | ${(v.handshakes / Math.max(1, c.handshakes)).toFixed(0)}× | ${(v.commands / Math.max(1, c.commands)).toFixed(1)}× |  | **${(v.wallMs / row.ours.configure.wallMs).toFixed(2)}×** |`,
      );
    }
    if (row.ours.destroy) {
      const d = ourStats(row.ours.destroy);
      lines.push(`| ${rtt} | pulumi-sriov: destroy | ${d.handshakes} | ${d.commands} | ${kb(d.bytesSent)} KiB / ${kb(d.bytesReceived)} KiB | ${s(row.ours.destroy.wallMs)} s |`);
    }
  }
  return lines.join("\n");
}

/** Wall time that the added latency cost each approach: run(L) − run(0). */
export function latencyCostTable(r: Results): string {
  const base = r.rows.find((x) => x.rttTarget === 0);
  if (!base) return "";
  const lines = ["| RTT | pulumi-sriov configure: + wall | naive configure: + wall | ratio |", "|---|---:|---:|---:|"];
  for (const row of r.rows) {
    if (row === base) continue;
    const ours = row.ours.configure.wallMs - base.ours.configure.wallMs;
    const naive = row.naive && base.naive ? row.naive.wallMs - base.naive.wallMs : undefined;
    lines.push(
      `| ${row.rttTarget} ms | ${s(ours)} s | ${naive === undefined ? "–" : `${s(naive)} s`} | ${naive === undefined || ours <= 0 ? "–" : `${(naive / ours).toFixed(1)}×`} |`,
    );
  }
  return lines.join("\n");
}

export function perResourceTable(runs: ResourceRun[]): string {
  const lines = ["| resource | kind | operation | round trips | handshakes |", "|---|---|---|---:|---:|"];
  for (const x of runs) lines.push(`| ${x.name} | ${x.kind} | ${x.op} | ${x.commands ?? "?"} | ${x.handshakes ?? "?"} |`);
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
  const time = timeTable(r);
  if (time) parts.push("### Where the time goes", "", time, "");
  const cost = latencyCostTable(r);
  if (cost) parts.push("What the added round-trip time cost each approach (wall time minus the same run at 0 ms):", "", cost, "");
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
  if (r.notes.length) parts.push("## Notes", "", ...r.notes.map((n) => `- ${n}`), "");
  parts.push("## Method", "", method, "");
  return parts.join("\n");
}
