// `npm run lab`: the main job, through the real Pulumi CLI. Boots the lab
// host, then runs the lab stack as an operator would:
//
//   pulumi preview --diff
//   pulumi up --yes
//   pulumi stack output              (printed as a summary of the host)
//   pulumi up --expect-no-changes
//   pulumi refresh --expect-no-changes
//   pulumi destroy --yes             (with --destroy)
//
//   npm run lab [-- --keep] [--destroy] [--fresh] [--program stack|explicit]
//
//   --keep      leave the lab running afterwards (until Ctrl-C) and print how to reach it
//   --destroy   end with `pulumi destroy`
//   --fresh     start over: new stack state and a new lab disk
//   --program   stack (default): the top-level project's fleet program with Pulumi.lab.yaml;
//               explicit: examples/lab/index.ts, every resource class used directly
//
// The lab's disk and the stack's state (a file backend, passphrase-encrypted
// secrets) live under .lab/ and survive between runs, so a second run finds
// everything in place. SSH to the lab is forwarded from 127.0.0.1:2222
// (LAB_SSH_PORT overrides), the port Pulumi.lab.yaml names.
import * as fs from "fs";
import * as path from "path";
import type { SriovHostSummary } from "../../sdk";
import { LAB_DIR } from "../../lab/image";
import { LabVm } from "../../lab/vm";
import { CliProject, cliVersion, toolsBin } from "../../lab/pulumiCli";
import { runFleet } from "../fleet/program";
import { complain, formatHostSummary, heading, passThrough, say, usageLine } from "./display";
import labIndex = require("./index");
import { LAB_PF_PCI_ADDRESS } from "./program";
import { labStackConfig, projectName } from "./stack-config";

const ROOT = path.resolve(__dirname, "..", "..");
const VM_NAME = "main";

interface Args {
  keep: boolean;
  destroy: boolean;
  fresh: boolean;
  program: "stack" | "explicit";
}

function usage(message?: string): never {
  if (message) complain(message);
  usageLine("npm run lab [-- --keep] [--destroy] [--fresh] [--program stack|explicit]");
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { keep: false, destroy: false, fresh: false, program: "stack" };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === "--keep") a.keep = true;
    else if (v === "--destroy") a.destroy = true;
    else if (v === "--fresh") a.fresh = true;
    else if (v === "--program") {
      const p = argv[++i];
      if (p !== "stack" && p !== "explicit") usage(`--program must be stack or explicit, got ${JSON.stringify(p)}`);
      a.program = p;
    } else if (v === "--help" || v === "-h") usage();
    else usage(`unknown argument ${JSON.stringify(v)}`);
  }
  return a;
}

const seconds = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

function plain(outputs: Record<string, { value: any }>): Record<string, any> {
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value]));
}

function printOutputs(program: Args["program"], o: Record<string, any>): void {
  if (program === "stack") {
    for (const [name, summary] of Object.entries((o.hosts ?? {}) as Record<string, SriovHostSummary>)) say(formatHostSummary(name, summary));
    say(`waves: ${JSON.stringify(o.waves)}`);
    return;
  }
  say(formatHostSummary("lab", { kernelArgs: o.kernel, pfs: [{ ...o.pf, vfs: o.vfs }], poolNetworks: [o.network] }));
  if (o.nic) say(`  guest interface: mac ${o.nic.mac}, VF ${o.nic.pciAddress}, alias ${o.nic.alias}`);
}

/** What the host has right now, read directly (not from the stack). */
async function hostFacts(vm: LabVm): Promise<string> {
  const script =
    'for d in /sys/bus/pci/devices/*/sriov_totalvfs; do p=${d%/sriov_totalvfs}; ' +
    'echo "PF ${p##*/}: $(cat $p/sriov_numvfs) of $(cat $d) VFs, driver $(basename $(readlink $p/driver))"; done; ' +
    'echo "cmdline: $(cat /proc/cmdline)"; virsh -q net-list --all 2>/dev/null | sed "s/^/network /"';
  return (await vm.run(script)).trim().replace(/^/gm, "  ");
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const runtime = path.join(ROOT, "node_modules", "pulumi-sriov", "dist", "provider", "runtime.js");
  if (!fs.existsSync(runtime)) {
    say(`lab: ${runtime} is missing; run \`npm run lab\` (it builds and links the package first)`);
    return 2;
  }

  heading("Pulumi CLI");
  let t0 = Date.now();
  toolsBin();
  say(`pulumi ${cliVersion()} (built from its Go modules by lab/tools/build.sh; ready in ${seconds(t0)})`);

  const dir = path.join(LAB_DIR, "pulumi", args.program);
  if (args.fresh) {
    say("--fresh: removing the lab stack's state and the lab's disk");
    CliProject.reset(dir);
    fs.rmSync(path.join(LAB_DIR, "vms", VM_NAME), { recursive: true, force: true });
  }

  heading("Booting the lab host");
  const port = Number(process.env.LAB_SSH_PORT ?? 2222);
  const vm = await LabVm.start({ name: VM_NAME, persistentOverlay: true, sshPort: port });
  let exitCode = 0;
  try {
    const lab = vm.connection;
    say(`lab host: ${lab.user}@${lab.host}:${lab.port}, host key ${lab.hostKey.split(" ").slice(0, 2).join(" ").slice(0, 60)}…`);
    say(await hostFacts(vm));

    const project = args.program === "stack" ? projectName(path.join(ROOT, "Pulumi.yaml")) : "sriov-lab";
    const program = args.program === "stack" ? async () => runFleet() : labIndex;
    const cli = await CliProject.open({ dir, project, stack: "lab", program, onOutput: passThrough });
    if (args.program === "stack") {
      cli.writeConfig(labStackConfig(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8"), project, lab));
      await cli.setSecret(`${project}:sshPrivateKey`, lab.privateKey);
    } else {
      cli.writeConfig({ [`${project}:port`]: lab.port, [`${project}:hostKey`]: lab.hostKey });
      await cli.setSecret(`${project}:privateKey`, lab.privateKey);
    }
    say(`program: ${args.program === "stack" ? `${project} (examples/fleet) with Pulumi.lab.yaml` : "examples/lab/index.ts"}; PF ${LAB_PF_PCI_ADDRESS}`);
    say(`stack: lab, state in ${path.relative(ROOT, path.join(dir, "state"))} (file backend), secrets encrypted with the passphrase in ${path.relative(ROOT, path.join(dir, "passphrase"))}`);

    const out = cli.out;
    heading("pulumi preview --diff");
    t0 = Date.now();
    await cli.stack.preview({ ...out, diff: true });
    say(`(preview took ${seconds(t0)})`);

    heading("pulumi up --yes");
    t0 = Date.now();
    const up = await cli.stack.up(out);
    say(`(up took ${seconds(t0)}: ${JSON.stringify(up.summary.resourceChanges ?? {})})`);

    heading("Outputs (pulumi stack output), and the host itself");
    printOutputs(args.program, plain(await cli.stack.outputs()));
    say("on the host now:");
    say(await hostFacts(vm));

    heading("pulumi up --expect-no-changes");
    t0 = Date.now();
    await cli.stack.up({ ...out, expectNoChanges: true });
    say(`(no changes; took ${seconds(t0)})`);

    heading("pulumi refresh --expect-no-changes");
    t0 = Date.now();
    await cli.stack.refresh({ ...out, expectNoChanges: true });
    say(`(the host matches the state; took ${seconds(t0)})`);

    if (args.destroy) {
      heading("pulumi destroy --yes");
      t0 = Date.now();
      await cli.stack.destroy(out);
      say(`(destroy took ${seconds(t0)}); on the host now:`);
      say(await hostFacts(vm));
    }
  } catch (e) {
    say(`error: ${e instanceof Error ? e.message : String(e)}`);
    exitCode = 1;
  }

  if (args.keep) {
    const c = vm.connection;
    heading("The lab keeps running (Ctrl-C stops it)");
    say(`  ssh:      ${vm.sshCommandLine()}`);
    say(`  key:      ${vm.image.privateKeyPath}`);
    say(`  host key: ${c.hostKey}`);
    say(`  port:     ${c.port}`);
    say(`  pulumi:   cd ${dir} && PATH=${toolsBin()}:$PATH PULUMI_BACKEND_URL=file://${path.join(dir, "state")} PULUMI_CONFIG_PASSPHRASE_FILE=${path.join(dir, "passphrase")} pulumi stack`);
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
  heading("Stopping the lab host (its disk and the stack's state are kept; --fresh starts over)");
  await vm.stop();
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    say(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
