/**
 * Lab host command line.
 *
 *   tsx lab/cli.ts build [--rebuild]   build (or verify) the cached guest image
 *   tsx lab/cli.ts up [--persistent] [--memory MB] [--smp N]
 *                                           boot it, print how to connect, run until Ctrl-C
 *   tsx lab/cli.ts info                print the cache key and whether it is built
 */
import { ensureImage, findImage, IMAGE_RECIPE, recipeHash } from "./image";
import { LabVm } from "./vm";

function usage(): never {
  process.stderr.write("usage: tsx lab/cli.ts [up|build|info] [--rebuild] [--persistent] [--memory MB] [--smp N]\n");
  process.exit(2);
}

function flagValue(args: string[], name: string): number | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) usage();
  return v;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const cmd = args[0] && !args[0].startsWith("-") ? args[0] : "up";
  if (cmd === "info") {
    const image = findImage();
    console.log(JSON.stringify({
      recipeHash: recipeHash(),
      recipe: IMAGE_RECIPE,
      built: !!image,
      ...(image ? { disk: image.disk, sizeBytes: image.sizeBytes, buildSeconds: image.buildSeconds } : {}),
    }, null, 2));
    return;
  }
  if (cmd === "build") {
    const started = Date.now();
    const image = await ensureImage({ rebuild: args.includes("--rebuild") });
    const took = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`lab image ${image.hash}: ${image.disk} (${(image.sizeBytes / 2 ** 20).toFixed(0)} MiB), ` +
      `ready after ${took}s`);
    return;
  }
  if (cmd !== "up") usage();
  const vm = await LabVm.start({
    name: "cli",
    persistentOverlay: args.includes("--persistent"),
    memoryMb: flagValue(args, "--memory"),
    smp: flagValue(args, "--smp"),
  });
  const c = vm.connection;
  const pfs = (await vm.run(
    "for d in /sys/class/net/*/device/sriov_totalvfs; do n=${d#/sys/class/net/}; n=${n%%/*}; " +
    "echo \"$n $(basename $(readlink -f /sys/class/net/$n/device)) $(cat /sys/class/net/$n/address) totalvfs=$(cat $d)\"; done",
  )).trim();
  console.log([
    "",
    "SR-IOV lab host is up (Ctrl-C stops it).",
    `  host:       ${c.host}`,
    `  port:       ${c.port}`,
    `  user:       ${c.user}`,
    `  key:        ${vm.privateKeyPath}`,
    `  host key:   ${c.hostKey}`,
    `  ssh:        ${vm.sshCommandLine()}`,
    `  serial log: ${vm.serialLogPath}`,
    `  boot:       ${vm.bootSeconds}s to ssh`,
    "  SR-IOV PFs (name, PCI address, MAC, total VFs):",
    ...pfs.split("\n").map((l) => `    ${l}`),
    "",
    "Pulumi connection (same fields as @pulumi/command remote connection):",
    `  { host: "${c.host}", port: ${c.port}, user: "${c.user}", ` +
      `privateKey: fs.readFileSync("${vm.privateKeyPath}", "utf8"), hostKey: "${c.hostKey}" }`,
    "",
  ].join("\n"));
  // Run until a signal; vm.ts kills QEMU on SIGINT/SIGTERM/SIGHUP.
  const timer = setInterval(() => {
    if (!vm.running) {
      console.error("lab: QEMU exited");
      clearInterval(timer);
      process.exit(1);
    }
  }, 2000);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
