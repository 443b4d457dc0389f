// Loaded by .mocharc.js before any test file, in the main process and in
// every worker process.
import { finishFile, printTotals, startTotals } from "../reliability/figures";

export const mochaHooks = {
  // Once per test file when files run in worker processes; once at the end otherwise.
  afterAll(): void {
    finishFile();
  },
};

export function mochaGlobalSetup(): void {
  startTotals();
}

export function mochaGlobalTeardown(): void {
  printTotals();
}
