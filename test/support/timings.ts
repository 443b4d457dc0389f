// Wall times of a lab suite's steps, printed once at the end so a slow step
// shows up in the log without any test asserting on time.

export interface Timings {
  /** step name → ms (steps may also be recorded directly). */
  readonly timings: Record<string, number>;
  /** Runs `f`, recording its wall time under `what` even when it throws. */
  timed<T>(what: string, f: () => Promise<T>): Promise<T>;
  /** One line on stderr: `<suite> lab timings (ms): {...}`. */
  print(suite: string): void;
}

export function stopwatch(): Timings {
  const timings: Record<string, number> = {};
  return {
    timings,
    async timed(what, f) {
      const t = Date.now();
      try {
        return await f();
      } finally {
        timings[what] = Date.now() - t;
      }
    },
    print(suite) {
      process.stderr.write(`${suite} lab timings (ms): ${JSON.stringify(timings)}\n`);
    },
  };
}
