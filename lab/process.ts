// Small process helpers shared by the lab harness, its image builder and the
// benchmark.

/** True while `pid` exists (EPERM: it exists but belongs to someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
