/**
 * One lab VM per test process, shared by every test that leaves the guest as
 * it found it. Started lazily on first use; stopped by a mocha root after-all
 * hook (registered when this module is loaded by a spec file) or, in a mocha
 * worker process, when the process exits.
 */
import { LabVm, LabVmOptions } from "./vm";

export type SharedLabOptions = Omit<LabVmOptions, "name" | "persistentOverlay">;

let current: Promise<LabVm> | undefined;

/**
 * The shared lab VM, booted on first call (building the image if needed).
 * A failed start is remembered, so every test that needs the lab fails with the
 * same error instead of booting again; a VM that died is replaced.
 * Options only matter for the call that starts it.
 */
export async function sharedLab(opts: SharedLabOptions = {}): Promise<LabVm> {
  if (current) {
    const vm = await current;
    if (vm.running) return vm;
    await vm.stop();
    current = undefined;
  }
  current = LabVm.start({ ...opts, name: "shared" });
  return current;
}

/** Stops the shared VM, if one was started. */
export async function stopSharedLab(): Promise<void> {
  const p = current;
  current = undefined;
  if (!p) return;
  try {
    await (await p).stop();
  } catch {
    // a failed start has nothing left to stop
  }
}

// Under mocha, a module loaded while spec files are being loaded registers
// this on the root suite: the VM stops once after all tests. In a worker
// process (files run in parallel) the root suite is one file's: the VM then
// serves every file of that worker and is killed when the worker exits.
if (typeof after === "function" && process.env.MOCHA_WORKER_ID === undefined) {
  after("stop the shared lab VM", async function () {
    this.timeout(60000);
    await stopSharedLab();
  });
}
