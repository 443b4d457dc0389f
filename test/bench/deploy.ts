// Deployments for the benchmark, over the real dynamic-provider process
// (test/support/engine.ts), with the engine's ordering: a resource starts
// once every resource it depends on has finished (its inputs may read their
// outputs), independent resources run at once, one provider process per
// deployment. Per resource, `up` makes the calls the engine makes in the
// update phase of `pulumi up`: Check, then Create (new) or Diff and, only when
// the diff reports changes, Update.
//
// The SSH counters live in the provider process (provider/host/ssh.ts). A
// dedicated dynamic provider in the same process reads them: its Check
// returns `sshStats()` of the host module, required by package name there,
// which is the module instance every resource's handler uses.
import * as pulumi from "@pulumi/pulumi";
import { EngineOptions, ProviderLike, ProviderProcess, Props } from "../support/engine";
import type { HostCounter, HostCounts } from "./hostcount";

export interface TransportStats {
  handshakes: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
}

export interface SshStats {
  total: TransportStats;
  hosts: Record<string, TransportStats>;
}

/**
 * Reads the SSH counters of the process it runs in; touches no host. With
 * `trace: "start"` it also starts recording every host command (its first
 * words and how long it took, from the provider's RemoteHost), and with
 * `trace: "take"` returns and clears that record.
 */
export const statsProvider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: any, news: any) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const host = require("pulumi-sriov/dist/provider/host");
    const g = globalThis as any;
    if (news.trace === "start" && !g.__benchTrace) {
      g.__benchTrace = [];
      const proto = host.RemoteHost.prototype;
      const exec = proto.exec;
      proto.exec = async function (this: any, command: string, shown: string, stdin?: string) {
        const t = Date.now();
        try {
          return await exec.call(this, command, shown, stdin);
        } finally {
          g.__benchTrace?.push({ at: t, ms: Date.now() - t, what: String(shown).slice(0, 160) });
        }
      };
    }
    let trace: any[] = [];
    if (news.trace === "take") {
      trace = g.__benchTrace ?? [];
      if (g.__benchTrace) g.__benchTrace = [];
    }
    return { inputs: { stats: host.sshStats(), trace }, failures: [] };
  },
  async create() {
    return { id: "stats", outs: {} };
  },
};

export interface TraceEntry {
  at: number;
  ms: number;
  what: string;
}

export async function readStats(p: ProviderProcess): Promise<SshStats> {
  const r = await p.check(statsProvider, "bench-ssh-stats", {}, { at: Date.now() });
  return r.inputs.stats as SshStats;
}

export async function startTrace(p: ProviderProcess): Promise<void> {
  await p.check(statsProvider, "bench-ssh-stats", {}, { trace: "start" });
}

export async function takeTrace(p: ProviderProcess): Promise<TraceEntry[]> {
  const r = await p.check(statsProvider, "bench-ssh-stats", {}, { trace: "take" });
  return r.inputs.trace as TraceEntry[];
}

export interface BenchResource {
  name: string;
  /** Resource kind, for reports (e.g. "SriovPf"). */
  kind: string;
  provider: ProviderLike;
  /** Names of resources this one waits for. */
  deps: string[];
  /** Inputs, from the outputs of finished resources. */
  props: (outputs: Record<string, Props>) => Props;
}

export interface StateEntry {
  id: string;
  inputs: Props;
  outputs: Props;
}

export type Op = "create" | "update" | "same" | "replace" | "delete";

export interface ResourceRun {
  name: string;
  kind: string;
  op: Op;
  ms: number;
  /** With `attribute`: this resource's SSH commands (round trips) and handshakes. */
  commands?: number;
  handshakes?: number;
  /** With `attribute` and `counter`: the host's work for this resource. */
  host?: HostCounts;
}

export interface UpOptions {
  /**
   * Run one resource at a time, in declaration order, and read the SSH
   * counters after each, to attribute round trips to resources (wall time
   * is then not what the engine would take).
   */
  attribute?: boolean;
  /** With `attribute`: also count the host's work per resource (ResourceRun.host). */
  counter?: HostCounter;
  /** Record every host command with its duration (RunResult.trace). */
  trace?: boolean;
}

export interface RunResult {
  /** Wall time of the deployment's resource operations (provider process start excluded). */
  wallMs: number;
  /** Provider process start (spawn → configured), paid once per deployment. */
  startMs: number;
  resources: ResourceRun[];
  calls: Record<string, number>;
  stats: SshStats;
  trace?: TraceEntry[];
  /** Counted on the host around the whole run (HostCounter.around). */
  host?: HostCounts;
}

export class DeployError extends Error {
  constructor(
    message: string,
    readonly partial: ResourceRun[],
  ) {
    super(message);
    this.name = "DeployError";
  }
}

/** Engine-like state of one stack, in memory. */
export class BenchStack {
  readonly state = new Map<string, StateEntry>();

  constructor(private readonly engine: EngineOptions = {}) {}

  private async withProcess<T>(body: (p: ProviderProcess) => Promise<T>): Promise<{ value: T; stats: SshStats; p: ProviderProcess }> {
    const p = await ProviderProcess.start(this.engine);
    try {
      const value = await body(p);
      const stats = await readStats(p);
      return { value, stats, p };
    } finally {
      await p.stop();
    }
  }

  /** `pulumi up` (update phase): every resource checked, then created, or diffed and updated if changed. */
  async up(resources: BenchResource[], opts: UpOptions = {}): Promise<RunResult> {
    const runs: ResourceRun[] = [];
    const byName = new Map(resources.map((r) => [r.name, r]));
    for (const r of resources) for (const d of r.deps) if (!byName.has(d)) throw new Error(`${r.name} depends on unknown ${d}`);
    let wallMs = 0;
    let trace: TraceEntry[] | undefined;
    const { stats, p } = await this.withProcess(async (p) => {
      if (opts.trace) await startTrace(p);
      const outputs: Record<string, Props> = {};
      const done = new Map<string, Promise<void>>();
      const t0 = performance.now();
      const one = async (r: BenchResource): Promise<void> => {
        await Promise.all(r.deps.map((d) => done.get(d)!));
        const t = performance.now();
        const news = r.props(outputs);
        const old = this.state.get(r.name);
        const checked = await p.check(r.provider, r.name, old?.inputs ?? {}, news);
        if (checked.failures.length) {
          throw new Error(`${r.name}: check failed: ${checked.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
        }
        let op: Op;
        if (!old) {
          const c = await p.create(r.provider, r.name, checked.inputs);
          this.state.set(r.name, { id: c.id, inputs: checked.inputs, outputs: c.outs });
          op = "create";
        } else {
          const d = await p.diff(r.provider, old.id, r.name, old.outputs, checked.inputs, { oldInputs: old.inputs });
          if (!d.changes) {
            this.state.set(r.name, { ...old, inputs: checked.inputs });
            op = "same";
          } else if (d.replaces.length === 0) {
            const u = await p.update(r.provider, old.id, r.name, old.outputs, checked.inputs, { oldInputs: old.inputs });
            this.state.set(r.name, { ...old, inputs: checked.inputs, outputs: u.outs });
            op = "update";
          } else {
            await p.delete(old.outputs.__provider ?? r.provider, old.id, r.name, old.outputs, { oldInputs: old.inputs });
            this.state.delete(r.name);
            const c = await p.create(r.provider, r.name, checked.inputs);
            this.state.set(r.name, { id: c.id, inputs: checked.inputs, outputs: c.outs });
            op = "replace";
          }
        }
        outputs[r.name] = this.state.get(r.name)!.outputs;
        runs.push({ name: r.name, kind: r.kind, op, ms: performance.now() - t });
      };
      if (opts.attribute) {
        let before = (await readStats(p)).total;
        for (const r of resources) {
          const hostBefore = await opts.counter?.read();
          const run = one(r);
          done.set(r.name, run);
          await run.catch(() => undefined);
          const now = (await readStats(p)).total;
          const last = runs[runs.length - 1];
          if (last?.name === r.name) {
            Object.assign(last, { commands: now.commands - before.commands, handshakes: now.handshakes - before.handshakes });
            if (hostBefore) last.host = await opts.counter!.since(hostBefore);
          }
          before = now;
        }
      } else {
        for (const r of resources) {
          // Declared in dependency order: a resource's promise exists before its dependants look it up.
          for (const d of r.deps) if (!done.has(d)) throw new Error(`${r.name} is declared before its dependency ${d}`);
          done.set(r.name, one(r));
        }
      }
      const settled = await Promise.allSettled([...done.values()]);
      wallMs = performance.now() - t0;
      if (opts.trace) trace = await takeTrace(p);
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed.length) throw new DeployError(failed.map((f) => (f.reason as Error).message).join("\n"), runs);
    });
    return { wallMs, startMs: p.startMillis, resources: runs, calls: { ...p.calls }, stats, trace };
  }

  /** `pulumi destroy`: deletes in reverse dependency order (dependants first), independent ones at once. */
  async destroy(resources: BenchResource[]): Promise<RunResult> {
    const runs: ResourceRun[] = [];
    let wallMs = 0;
    const { stats, p } = await this.withProcess(async (p) => {
      const t0 = performance.now();
      const done = new Map<string, Promise<void>>();
      const dependants = (name: string) => resources.filter((r) => r.deps.includes(name)).map((r) => r.name);
      const one = async (r: BenchResource): Promise<void> => {
        await Promise.all(dependants(r.name).map((d) => done.get(d)!));
        const s = this.state.get(r.name);
        if (!s) return;
        const t = performance.now();
        await p.delete(s.outputs.__provider ?? r.provider, s.id, r.name, s.outputs, { oldInputs: s.inputs });
        this.state.delete(r.name);
        runs.push({ name: r.name, kind: r.kind, op: "delete", ms: performance.now() - t });
      };
      for (const r of [...resources].reverse()) done.set(r.name, one(r));
      const settled = await Promise.allSettled([...done.values()]);
      wallMs = performance.now() - t0;
      const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed.length) throw new DeployError(failed.map((f) => (f.reason as Error).message).join("\n"), runs);
    });
    return { wallMs, startMs: p.startMillis, resources: runs, calls: { ...p.calls }, stats };
  }
}
