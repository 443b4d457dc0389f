// `npm test` (plain `mocha`): every test file, in two worker processes, one
// lab VM each (the machine's two lab slots; a third worker would wait for a
// slot that frees only when a worker exits). Files are handed out longest
// first, so neither worker is left with a long file at the end: by the wall
// time last recorded for each file in .lab/test-durations.jsonl (written by
// test/support/rootHooks.ts), and for a file with no record yet by layer
// (the lab-bound layers first), then size. `mocha <file>…` runs just those
// files, in one process.
"use strict";
const fs = require("fs");
const path = require("path");

const DURATIONS = path.join(__dirname, ".lab", "test-durations.jsonl");
// Unrecorded files: slowest layers first.
const LAYER_ORDER = ["test/reliability", "test/lab", "test/bench", "test/engine", "test/sshd", "test/unit"];

function testFiles(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? testFiles(path.join(dir, e.name)) : e.name.endsWith(".test.ts") ? [path.join(dir, e.name)] : []))
    .sort();
}

/** file → its latest recorded wall time in ms. */
function recordedDurations() {
  const ms = new Map();
  let text = "";
  try {
    text = fs.readFileSync(DURATIONS, "utf8");
  } catch {
    return ms;
  }
  for (const line of text.split("\n")) {
    try {
      const r = JSON.parse(line);
      if (typeof r.file === "string" && typeof r.ms === "number") ms.set(r.file, r.ms);
    } catch {
      // a torn or empty line
    }
  }
  return ms;
}

function longestFirst(files) {
  const ms = recordedDurations();
  const layer = (f) => {
    const i = LAYER_ORDER.findIndex((l) => f.startsWith(l + "/"));
    return i < 0 ? LAYER_ORDER.length : i;
  };
  const recorded = files.filter((f) => ms.has(f)).sort((a, b) => ms.get(b) - ms.get(a));
  const rest = files
    .filter((f) => !ms.has(f))
    .sort((a, b) => layer(a) - layer(b) || fs.statSync(b).size - fs.statSync(a).size || a.localeCompare(b));
  return [...recorded, ...rest];
}

const named = process.argv.slice(2).some((a) => !a.startsWith("-") && /\.[cm]?[jt]s$|\*/.test(a));
const config = {
  require: ["tsx/cjs", "./test/support/rootHooks.ts"],
  timeout: 120000,
  exit: true,
};
if (!named) {
  config.parallel = true;
  config.jobs = 2;
  config.spec = longestFirst(testFiles("test"));
}
module.exports = config;
