// The naive baseline: the same configuration the way a user scripts it with
// @pulumi/command's `remote.Command` — one resource per command of the
// guides in ../shared/seeds, chained with dependsOn like the provider's
// resources, each opening its own SSH connection (a Command resource dials,
// runs its one command and disconnects). The @pulumi/command provider
// plugin is a separate binary that cannot be installed here, so this runs
// each command over a fresh ssh2 connection, as that plugin does: pinned
// host key, key authentication, dial retries (dialErrorLimit 10, 1 s apart),
// non-zero exit fails the step. Independent steps run at once, as the engine
// runs independent resources (its default parallelism is unbounded).
//
// A re-run of such a program runs nothing: a Command's `create` runs again
// only when its inputs change, so drift on the host goes unseen.
import { Client } from "ssh2";
import type { BenchConnection, VfAttrs } from "./program";
import { sleep } from "../../lab/process";
import type { HostCounts } from "./hostcount";

export interface NaiveStep {
  name: string;
  deps: string[];
  command: string;
  stdin?: string;
  /** Where the command comes from (seed file and what it says). */
  source: string;
}

export interface NaiveOptions {
  /** PF network interface name. */
  pfIfname: string;
  numVfs: number;
  vfs: VfAttrs[];
  networkName: string;
}

export const SEEDS = {
  grub: "seeds/000 (Arch, I350), seeds/003 (Ubuntu 22.04): edit GRUB_CMDLINE_LINUX_DEFAULT, then update-grub / grub-mkconfig",
  numvfs: "seeds/001 (RHEL 7) step 3, seeds/003 step 4: echo N > /sys/class/net/<pf>/device/sriov_numvfs",
  udev: "seeds/003 step 5, seeds/001 step 4: udev rule setting sriov_numvfs, then udevadm control --reload",
  vf: "seeds/002 (Debian), seeds/003, seeds/004: ip link set <pf> vf <n> mac|vlan|spoofchk|trust …, one command per attribute",
  pool: "seeds/001 procedure 17.10: write passthrough.xml, virsh net-define, net-autostart, net-start",
};

export function naiveSteps(o: NaiveOptions): NaiveStep[] {
  const pf = o.pfIfname;
  const steps: NaiveStep[] = [
    {
      name: "grub-edit",
      deps: [],
      command: `sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT="\\(.*\\)"$/GRUB_CMDLINE_LINUX_DEFAULT="\\1 intel_iommu=on iommu=pt"/' /etc/default/grub`,
      source: SEEDS.grub,
    },
    { name: "grub-update", deps: ["grub-edit"], command: "update-grub", source: SEEDS.grub },
    { name: "pf-numvfs", deps: ["grub-update"], command: `echo ${o.numVfs} > /sys/class/net/${pf}/device/sriov_numvfs`, source: SEEDS.numvfs },
    {
      name: "pf-udev-rule",
      deps: ["pf-numvfs"],
      command: `echo 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="${pf}", ATTR{device/sriov_numvfs}="${o.numVfs}"' > /etc/udev/rules.d/70-sriov.rules`,
      source: SEEDS.udev,
    },
    { name: "pf-udev-reload", deps: ["pf-udev-rule"], command: "udevadm control --reload", source: SEEDS.udev },
  ];
  const vfSteps: string[] = [];
  o.vfs.forEach((a, i) => {
    const attrs: [string, string][] = [
      ["mac", a.mac],
      ["vlan", String(a.vlan)],
      ["spoofchk", a.spoofCheck ? "on" : "off"],
      ["trust", a.trust ? "on" : "off"],
    ];
    for (const [k, v] of attrs) {
      const name = `vf${i}-${k}`;
      vfSteps.push(name);
      steps.push({ name, deps: ["pf-numvfs"], command: `ip link set ${pf} vf ${i} ${k} ${v}`, source: SEEDS.vf });
    }
  });
  const xml = `<network>\n  <name>${o.networkName}</name>\n  <forward mode='hostdev' managed='yes'>\n    <pf dev='${pf}'/>\n  </forward>\n</network>\n`;
  steps.push(
    { name: "pool-xml", deps: ["pf-udev-reload", ...vfSteps], command: "cat > /tmp/passthrough.xml", stdin: xml, source: SEEDS.pool },
    { name: "pool-define", deps: ["pool-xml"], command: "virsh net-define /tmp/passthrough.xml", source: SEEDS.pool },
    { name: "pool-autostart", deps: ["pool-define"], command: `virsh net-autostart ${o.networkName}`, source: SEEDS.pool },
    { name: "pool-start", deps: ["pool-define"], command: `virsh net-start ${o.networkName}`, source: SEEDS.pool },
  );
  return steps;
}

export interface NaiveResult {
  wallMs: number;
  handshakes: number;
  /** Connection attempts, including refused or dropped ones that were retried. */
  dialAttempts: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
  steps: { name: string; ms: number }[];
  /** Counted on the host around the run (HostCounter.around). */
  host?: HostCounts;
}


function keyBlob(hostKey: string): Buffer {
  return Buffer.from(hostKey.trim().split(/\s+/)[1], "base64");
}

export interface Counters {
  handshakes: number;
  dialAttempts: number;
  commands: number;
  bytesSent: number;
  bytesReceived: number;
}

function dialOnce(c: BenchConnection, counters: Counters): Promise<Client> {
  counters.dialAttempts++;
  return new Promise((resolve, reject) => {
    const client = new Client();
    let settled = false;
    client.on("ready", () => {
      settled = true;
      counters.handshakes++;
      resolve(client);
    });
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(e);
    };
    client.on("error", fail);
    client.on("close", () => fail(new Error("connection closed during handshake")));
    client.connect({
      host: c.host,
      port: c.port,
      username: c.user,
      privateKey: c.privateKey,
      readyTimeout: 15000,
      hostVerifier: (key: Buffer) => key.equals(keyBlob(c.hostKey)),
    });
  });
}

async function dial(c: BenchConnection, counters: Counters): Promise<Client> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await dialOnce(c, counters);
    } catch (e) {
      if (attempt >= 10) throw e;
      await sleep(1000);
    }
  }
}

/** The same steps, each waiting for the one before (a script, or Commands chained with dependsOn in the guides' order). */
export function chained(steps: NaiveStep[]): NaiveStep[] {
  return steps.map((s, i) => ({ ...s, deps: i ? [steps[i - 1].name] : [] }));
}

/** Steps on the longest dependency chain (what parallel execution cannot overlap). */
export function criticalPath(steps: NaiveStep[]): number {
  const depth = new Map<string, number>();
  for (const s of steps) depth.set(s.name, 1 + Math.max(0, ...s.deps.map((d) => depth.get(d) ?? 0)));
  return Math.max(0, ...depth.values());
}

export function newCounters(): Counters {
  return { handshakes: 0, dialAttempts: 0, commands: 0, bytesSent: 0, bytesReceived: 0 };
}

/** One Command resource: dial, run, disconnect. */
export async function runOne(c: BenchConnection, step: Pick<NaiveStep, "name" | "command" | "stdin">, counters: Counters): Promise<void> {
  const client = await dial(c, counters);
  try {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      client.exec(step.command, (err, stream) => {
        if (err) return reject(err);
        counters.commands++;
        counters.bytesSent += Buffer.byteLength(step.command) + (step.stdin ? Buffer.byteLength(step.stdin) : 0);
        let stdout = "";
        let stderr = "";
        let code: number | null = null;
        stream.on("data", (d: Buffer) => (stdout += d));
        stream.stderr.on("data", (d: Buffer) => (stderr += d));
        stream.on("exit", (c: number | null) => (code = c));
        stream.on("close", () => {
          counters.bytesReceived += Buffer.byteLength(stdout) + Buffer.byteLength(stderr);
          resolve({ code, stdout, stderr });
        });
        stream.end(step.stdin);
      });
    });
    if (r.code !== 0) throw new Error(`naive step ${step.name}: ${JSON.stringify(step.command)} exited ${r.code}: ${r.stderr.trim()}`);
  } finally {
    client.end();
  }
}

export async function runNaive(c: BenchConnection, steps: NaiveStep[]): Promise<NaiveResult> {
  const counters = newCounters();
  const timings: { name: string; ms: number }[] = [];
  const done = new Map<string, Promise<void>>();
  const t0 = performance.now();
  for (const s of steps) {
    const deps = s.deps.map((d) => {
      const p = done.get(d);
      if (!p) throw new Error(`naive step ${s.name} depends on ${d}, declared later or unknown`);
      return p;
    });
    const p = Promise.all(deps).then(async () => {
      const t = performance.now();
      await runOne(c, s, counters);
      timings.push({ name: s.name, ms: performance.now() - t });
    });
    p.catch(() => undefined);
    done.set(s.name, p);
  }
  const settled = await Promise.allSettled([...done.values()]);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failed) throw failed.reason;
  return { wallMs: performance.now() - t0, ...counters, steps: timings };
}

/**
 * The physical limit of the same work: the naive steps' commands, in order,
 * as one shell script (stopping at the first failure), a step's stdin as a
 * here-document.
 */
export function oneScript(steps: NaiveStep[]): string {
  const lines = ["set -e"];
  for (const s of steps) {
    if (s.stdin === undefined) lines.push(s.command);
    else lines.push(`${s.command} <<'BENCH_EOF'`, s.stdin.replace(/\n$/, ""), "BENCH_EOF");
  }
  return lines.join("\n") + "\n";
}

/** That script over one SSH connection: dial, one command, disconnect. */
export async function runScript(c: BenchConnection, steps: NaiveStep[]): Promise<NaiveResult> {
  const counters = newCounters();
  const t0 = performance.now();
  await runOne(c, { name: "one script", command: oneScript(steps) }, counters);
  const wallMs = performance.now() - t0;
  return { wallMs, ...counters, steps: [{ name: "one script", ms: wallMs }] };
}
