// `npm run lab`: boot the lab host, show the plan for the lab stack, apply it
// through the real Pulumi dynamic-provider process, print what the host now
// has, apply again to show that nothing changes, then stop the lab (or keep
// it running with --keep).
//
//   npm run lab [-- --keep] [--destroy] [--program stack|explicit]
//
//   --keep      leave the lab running afterwards (until Ctrl-C) and print how to reach it
//   --destroy   after the no-change run, delete every resource again (reverse order)
//   --program   stack (default): the top-level project's program with Pulumi.lab.yaml,
//                 which is what `pulumi up --stack lab` runs;
//               explicit: examples/lab/program.ts, every resource class used directly
//
// With the Pulumi CLI installed, `pulumi up --stack lab` does the same (see
// Pulumi.lab.yaml for the three config values the lab hands out).
import * as fs from "fs";
import * as path from "path";
import { LabVm } from "../../test/lab/vm";
import type { SriovHostSummary } from "../../sdk";
import { runFleet } from "../fleet/program";
import { formatEvent, formatHostSummary, formatPlan, summarizeSteps } from "./display";
import { Deployment, DeploymentFailed, LocalStack } from "./local-engine";
import { LAB_PF_PCI_ADDRESS, labProgram } from "./program";
import { parseStackFile, projectName, withLabConnection } from "./stack-config";

const ROOT = path.resolve(__dirname, "..", "..");

interface Args {
  keep: boolean;
  destroy: boolean;
  program: "stack" | "explicit";
}

function usage(message?: string): never {
  if (message) process.stderr.write(`lab: ${message}\n`);
  process.stderr.write("usage: npm run lab [-- --keep] [--destroy] [--program stack|explicit]\n");
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { keep: false, destroy: false, program: "stack" };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === "--keep") a.keep = true;
    else if (v === "--destroy") a.destroy = true;
    else if (v === "--program") {
      const p = argv[++i];
      if (p !== "stack" && p !== "explicit") usage(`--program must be stack or explicit, got ${JSON.stringify(p)}`);
      a.program = p;
    } else if (v === "--help" || v === "-h") usage();
    else usage(`unknown argument ${JSON.stringify(v)}`);
  }
  return a;
}

const say = (s = "") => process.stdout.write(s + "\n");
const heading = (s: string) => say(`\n== ${s}`);

function printDeploymentErrors(e: unknown): void {
  if (e instanceof DeploymentFailed) {
    for (const err of e.deployment.errors) say(`error: ${err.message}`);
    const diag = e.deployment.logs.filter((l) => l.stream !== "engine").slice(-20);
    if (diag.length) {
      say("provider process output (last lines):");
      for (const l of diag) say(`  ${l.message}`);
    }
  } else {
    say(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}

function printOutputs(program: Args["program"], outputs: any): void {
  if (program === "stack") {
    for (const [name, summary] of Object.entries((outputs?.hosts ?? {}) as Record<string, SriovHostSummary>)) say(formatHostSummary(name, summary));
    say(`waves: ${JSON.stringify(outputs?.waves)}`);
    return;
  }
  const o = outputs;
  const summary: SriovHostSummary = {
    kernelArgs: o.kernel,
    pfs: [{ ...o.pf, vfs: o.vfs }],
    poolNetworks: [o.network],
  };
  say(formatHostSummary("lab", summary));
  if (o.nic) say(`  guest interface: mac ${o.nic.mac}, VF ${o.nic.pciAddress}, alias ${o.nic.alias}`);
}

function callCounts(d: Deployment): string {
  return Object.entries(d.calls)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const runtime = path.join(ROOT, "node_modules", "pulumi-sriov", "dist", "provider", "runtime.js");
  if (!fs.existsSync(runtime)) {
    say(`lab: ${runtime} is missing; run \`npm run lab\` (it builds and links the package first)`);
    return 2;
  }
  const project = projectName(path.join(ROOT, "Pulumi.yaml"));
  const stackFile = parseStackFile(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8"), project);

  heading("Booting the lab host");
  const vm = await LabVm.start({ name: "main" });
  let exitCode = 0;
  try {
    const lab = vm.connection;
    say(`lab host: ${lab.user}@${lab.host}:${lab.port}, host key ${lab.hostKey.split(" ").slice(0, 2).join(" ").slice(0, 60)}…`);
    const pfs = (await vm.run("for d in /sys/bus/pci/devices/*/sriov_totalvfs; do p=${d%/sriov_totalvfs}; echo \"${p##*/} totalvfs=$(cat $d) driver=$(basename $(readlink $p/driver))\"; done")).trim();
    say(`SR-IOV PFs:\n${pfs.replace(/^/gm, "  ")}`);

    const { config, secretKeys } = withLabConnection(stackFile, lab);
    if (stackFile.encrypted.length) say(`(encrypted stack values ignored, the lab provides them: ${stackFile.encrypted.join(", ")})`);
    const program =
      args.program === "stack"
        ? () => runFleet()
        : () => labProgram({ connection: { host: lab.host, port: lab.port, user: lab.user, hostKey: lab.hostKey, privateKey: lab.privateKey } });
    const stack = new LocalStack({
      project: args.program === "stack" ? project : "sriov-lab",
      stack: "lab",
      config: args.program === "stack" ? config : {},
      secretKeys,
      cwd: ROOT,
      onEvent: (e) => {
        const line = formatEvent(e);
        if (line) say(line);
      },
    });
    say(`program: ${args.program === "stack" ? `${project} (Pulumi.yaml main) with Pulumi.lab.yaml` : "examples/lab/program.ts"}; PF ${LAB_PF_PCI_ADDRESS}`);

    heading("Plan (pulumi preview --diff)");
    const progress = stack.onEvent;
    stack.onEvent = undefined;
    const plan = await stack.preview(program);
    stack.onEvent = progress;
    say(formatPlan(plan));

    heading("Applying (pulumi up)");
    const t0 = Date.now();
    const up = await stack.up(program);
    say(`${summarizeSteps(up.steps, false)} in ${((Date.now() - t0) / 1000).toFixed(1)}s; provider calls: ${callCounts(up)}`);

    heading("Outputs");
    printOutputs(args.program, up.outputs);

    heading("Applying again (expect no changes)");
    stack.onEvent = undefined;
    const again = await stack.up(program);
    stack.onEvent = progress;
    const changed = again.steps.filter((s) => s.op !== "same");
    say(`${summarizeSteps(again.steps, false)}; provider calls: ${callCounts(again)}`);
    if (changed.length || again.calls.create || again.calls.update || again.calls.delete) {
      say("error: the second run was expected to change nothing, but:");
      say(formatPlan(again));
      exitCode = 1;
    } else {
      say("no changes: every resource is up to date, and no writes were made");
    }

    if (args.destroy) {
      heading("Destroying (pulumi destroy)");
      const gone = await stack.destroy();
      say(`${summarizeSteps(gone.steps, false)}; provider calls: ${callCounts(gone)}`);
    }
  } catch (e) {
    printDeploymentErrors(e);
    exitCode = 1;
  }

  if (args.keep) {
    const c = vm.connection;
    heading("The lab keeps running (Ctrl-C stops it)");
    say(`  ssh:      ${vm.sshCommandLine()}`);
    say(`  key:      ${vm.image.privateKeyPath}`);
    say(`  host key: ${c.hostKey}`);
    say(`  port:     ${c.port}`);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (!vm.running) {
          say("lab: QEMU exited");
          clearInterval(timer);
          resolve();
        }
      }, 2000);
    });
    return exitCode;
  }
  heading("Stopping the lab host");
  await vm.stop();
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    printDeploymentErrors(e);
    process.exit(1);
  },
);
