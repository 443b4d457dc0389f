// What one SSH operation costs over the benchmark's path at a given
// round-trip time, measured with many samples of a command that does
// nothing (`true`), so that the guest's own work hardly counts:
//
//   fresh:  dial, authenticate, run one command, disconnect (ssh2, as the naive baseline does)
//   pooled: one command on an open connection (the provider's host layer, as resources use it)
//
// The wall times of whole configurations on the emulated guest vary by more
// than the added latency costs (the guest's CPU is shared); these medians
// show the latency cost per operation cleanly, and multiplied by the counts
// on each run's critical path they give the network share of its wall time.
import { connectionSchema } from "../../provider/connection";
import { closeAllConnections, hostFor } from "../../provider/host";
import { newCounters, runOne } from "./baseline";
import type { BenchConnection } from "./program";

export interface OpCost {
  freshMs: number;
  pooledMs: number;
  freshSamples: number;
  pooledSamples: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function measureOpCost(c: BenchConnection, opts: { fresh?: number; pooled?: number } = {}): Promise<OpCost> {
  const nFresh = opts.fresh ?? 9;
  const nPooled = opts.pooled ?? 21;
  const fresh: number[] = [];
  const counters = newCounters();
  for (let i = 0; i < nFresh; i++) {
    const t = performance.now();
    await runOne(c, { name: "true", command: "true" }, counters);
    fresh.push(performance.now() - t);
  }
  const host = hostFor(connectionSchema().parse(c) as any);
  const pooled: number[] = [];
  try {
    await host.run(["true"]); // the handshake
    for (let i = 0; i < nPooled; i++) {
      const t = performance.now();
      await host.run(["true"]);
      pooled.push(performance.now() - t);
    }
  } finally {
    await closeAllConnections();
  }
  return { freshMs: median(fresh), pooledMs: median(pooled), freshSamples: nFresh, pooledSamples: nPooled };
}
