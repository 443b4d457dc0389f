// `npm test` (plain `mocha`): every test file, in two worker processes, one
// lab VM each (the machine's two lab slots; a third worker would wait for a
// slot that frees only when a worker exits). Files are handed out in this
// order, longest first, so neither worker is left with a long file at the
// end. `mocha <file>…` runs just those files, in one process.
"use strict";
const fs = require("fs");
const path = require("path");

const LONGEST_FIRST = [
  "test/reliability.faults.lab.test.ts",
  "test/reliability.lab.test.ts",
  "test/reliability.faults-grub.lab.test.ts",
  "test/iommuKernelArgs.lab.test.ts",
  "test/cli.lab.test.ts",
  "test/cli.interrupt.lab.test.ts",
  "test/vfPoolNetwork.lab.test.ts",
  "test/sriovPf.lab.test.ts",
  "test/virtualFunction.lab.test.ts",
  "test/package.cli.lab.test.ts",
];

function testFiles(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? testFiles(path.join(dir, e.name)) : e.name.endsWith(".test.ts") ? [path.join(dir, e.name)] : []))
    .sort();
}

const named = process.argv.slice(2).some((a) => !a.startsWith("-") && /\.[cm]?[jt]s$|\*/.test(a));
const all = testFiles("test");
const config = {
  require: ["tsx/cjs", "./test/support/rootHooks.ts"],
  timeout: 120000,
  exit: true,
};
if (!named) {
  config.parallel = true;
  config.jobs = 2;
  config.spec = [...LONGEST_FIRST.filter((f) => all.includes(f)), ...all.filter((f) => !LONGEST_FIRST.includes(f))];
}
module.exports = config;
