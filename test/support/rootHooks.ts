// Loaded by .mocharc.js before any test file, in the main process and in
// every worker process.
import * as fs from "fs";
import * as path from "path";
import type { Context } from "mocha";
import { finishFile, printTotals, startTotals } from "../reliability/figures";

const ROOT = path.resolve(__dirname, "..", "..");
// Per-file wall times; .mocharc.js hands out the longest files first.
const DURATIONS = path.join(ROOT, ".lab", "test-durations.jsonl");
let started = 0;

/** The one test file this process ran, or undefined when it ran several (`mocha <files>…`). */
function onlyFile(ctx: Context): string | undefined {
  const files = new Set<string>();
  for (const s of ctx.test?.parent?.suites ?? []) if (s.file) files.add(s.file);
  return files.size === 1 ? [...files][0] : undefined;
}

export const mochaHooks = {
  // Once per test file when files run in worker processes; once at the end otherwise.
  beforeAll(): void {
    started = Date.now();
  },
  afterAll(this: Context): void {
    finishFile();
    const file = onlyFile(this);
    if (file === undefined) return;
    try {
      fs.mkdirSync(path.dirname(DURATIONS), { recursive: true });
      fs.appendFileSync(DURATIONS, JSON.stringify({ file: path.relative(ROOT, file), ms: Date.now() - started }) + "\n");
    } catch {
      // ordering hint only
    }
  },
};

export function mochaGlobalSetup(): void {
  startTotals();
}

export function mochaGlobalTeardown(): void {
  printTotals();
}
