// What the CLI lab tests share: the fleet program's stack pointed at the lab
// guest, and the host's state as a test compares it before and after.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runFleet } from "../../examples/fleet/program";
import { labStackConfig } from "../../examples/lab/stack-config";
import { freeLoopbackPort, LabVm } from "../../lab/vm";
import { snapshot } from "../reliability/lab";
import { CliProject, ROOT } from "../../lab/pulumiCli";

export const PROJECT = "sriov-fleet";
/** The lab guest's two igb PFs. */
export const LAB_PFS = ["0000:01:00.0", "0000:02:00.0"] as const;

/** A loopback port nothing listens on. */
export const closedPort = freeLoopbackPort;

/**
 * Pulumi.lab.yaml's host pointed at the lab guest. With `pf`, that PF alone
 * with `numVfs` VFs and no VF resources or networks; `kernelArgs: false`
 * leaves the command line alone.
 */
export function labHosts(vm: LabVm, opts: { name?: string; pf?: string; numVfs?: number; kernelArgs?: false } = {}): any[] {
  const c = vm.connection;
  const config = labStackConfig(fs.readFileSync(path.join(ROOT, "Pulumi.lab.yaml"), "utf8"), PROJECT, { host: c.host, port: c.port, user: c.user, hostKey: c.hostKey });
  const host = (config[`${PROJECT}:hosts`] as any[])[0];
  if (opts.name) host.name = opts.name;
  if (opts.pf) {
    host.pfs = [{ pciAddress: opts.pf, numVfs: opts.numVfs ?? 2, manageVfs: false }];
    host.poolNetworks = [];
  }
  if (opts.kernelArgs === false) host.kernelArgs = false;
  return [host];
}

/** A new project folder with the fleet program, this configuration and the lab's key as the secret. */
export async function fleetProject(vm: LabVm, name: string, config: Record<string, unknown>, stack = "lab"): Promise<CliProject> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pulumi-sriov-${name}-`));
  const cli = await CliProject.open({ dir, project: PROJECT, stack, program: async () => runFleet() });
  cli.writeConfig(config);
  await cli.setSecret(`${PROJECT}:sshPrivateKey`, vm.connection.privateKey);
  return cli;
}

export interface HostState {
  files: Record<string, string>;
  /** The kernel command line of each boot entry in grub.cfg (a generated file: regenerating it need not give the image's bytes). */
  bootEntries: string;
  temps: string[];
  numVfs: string;
  networks: string;
  records: string;
}

/**
 * What "the host as found" means: the files we manage byte for byte (hashes),
 * GRUB's boot entries, VF counts, libvirt networks, create's records.
 */
export async function hostState(vm: LabVm): Promise<HostState> {
  const s = await snapshot(vm);
  delete s.files["/boot/grub/grub.cfg"];
  const bootEntries = (await vm.run("grep -E '^\\s*linux\\s' /boot/grub/grub.cfg | sed 's/^\\s*//'")).trim();
  const numVfs = (await vm.run(LAB_PFS.map((p) => `echo ${p}=$(cat /sys/bus/pci/devices/${p}/sriov_numvfs)`).join("; "))).trim();
  const networks = (await vm.run("virsh -q net-list --all --name | sort")).trim();
  const records = (await vm.run("find /var/lib/pulumi-sriov/found -type f 2>/dev/null | sort; true")).trim();
  return { files: s.files, bootEntries, temps: s.temps, numVfs, networks, records };
}
