// The lab host the benchmark runs on: a guest of its own (LabVm), or one
// already running from `npx tsx lab/cli.ts up` (`--lab-port PORT`),
// reached with the lab's key and pinned host key.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { findImage } from "../../lab/image";
import { LabConnection, LabVm } from "../../lab/vm";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface LabHost {
  readonly connection: LabConnection;
  readonly bootSeconds?: number;
  exec(command: string, opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  run(command: string, opts?: { timeoutMs?: number; input?: string }): Promise<string>;
  stop(): Promise<void>;
}

/** What the guest is, for reports. */
export async function describeLab(lab: LabHost): Promise<string> {
  const [cpus, memKb] = (await lab.run("nproc; awk '/MemTotal/ {print $2}' /proc/meminfo")).trim().split("\n").map(Number);
  return `Debian bookworm guest under QEMU TCG (${cpus} vCPUs, ${Math.round(memKb / 1024)} MiB, no KVM), two emulated igb PFs (7 VFs each)`;
}

export async function startLab(): Promise<LabHost> {
  const vm = await LabVm.start({ name: "bench" });
  return {
    connection: vm.connection,
    bootSeconds: vm.bootSeconds,
    exec: (c, o) => vm.exec(c, o),
    run: (c, o) => vm.run(c, o),
    stop: () => vm.stop(),
  };
}

/** A lab guest started elsewhere (`lab/cli.ts up`), on 127.0.0.1:`port`; stop() leaves it running. */
export function attachLab(port: number): LabHost {
  const image = findImage();
  if (!image) throw new Error("bench: the lab image is not built (npx tsx lab/cli.ts build)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-lab-"));
  const knownHosts = path.join(dir, "known_hosts");
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${image.hostKey}\n`);
  const exec = (command: string, opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> =>
    new Promise((resolve) => {
      const args = [
        "-F", "/dev/null", "-i", image.privateKeyPath, "-p", String(port),
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
        "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "root@127.0.0.1", "--", command,
      ];
      const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 300000);
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.stdin.on("error", () => undefined);
      child.stdin.end(opts.input ?? "");
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? 255, stdout, stderr });
      });
    });
  return {
    connection: { host: "127.0.0.1", port, user: "root", privateKey: image.privateKey, hostKey: image.hostKey },
    exec,
    async run(command, opts) {
      const r = await exec(command, opts);
      if (r.code !== 0) throw new Error(`lab: command failed (exit ${r.code}): ${JSON.stringify(command)}\nstderr: ${r.stderr.trim()}`);
      return r.stdout;
    },
    async stop() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
