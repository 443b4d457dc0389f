// Fault injection at the host layer's operation boundaries. While armed,
// every primitive host operation a resource performs (taking the host lock,
// run, batch, writeFile) is counted; at the armed one the SSH connection is
// torn down abruptly (the TCP socket destroyed, as a network failure would)
// and stays down for the rest of the call: every later host operation of
// that call fails as on a dead link, rollbacks included. That is what a
// `pulumi up` sees when the link to a hypervisor drops mid-change.
//
// "after": the operation ran on the host, then the link dropped before its
// result arrived (the provider cannot know it was applied).
// "during": the link drops `delayMs` after the operation started.
import { HostConnectError, RemoteHost } from "../../provider/host";

export type FaultMode = "after" | "during";

interface Armed {
  at: number;
  mode: FaultMode;
  delayMs: number;
  calls: number;
  fired: boolean;
  down: boolean;
  trace: string[];
}

let armed: Armed | undefined;
let installed = false;

function summary(name: string, args: unknown[]): string {
  const a = args[0];
  if (name === "writeFile") return `writeFile ${String(a)}`;
  if (name === "run") return `run ${(a as string[]).slice(0, 6).join(" ").slice(0, 120)}`;
  if (name === "batch") return `batch of ${(a as unknown[]).length}: ${(a as string[][]).map((c) => c.slice(0, 3).join(" ")).join("; ").slice(0, 160)}`;
  return name;
}

async function drop(host: RemoteHost): Promise<void> {
  const client = await (host.transport as any).client?.catch?.(() => undefined);
  client?.destroy();
}

function lost(host: RemoteHost, what: string): HostConnectError {
  return new HostConnectError(host.name, `connection lost ${what} (injected fault)`, true);
}

/** Wraps RemoteHost's primitives once per process; idle unless armed. */
export function installFaults(): void {
  if (installed) return;
  installed = true;
  const proto = RemoteHost.prototype as any;
  for (const name of ["run", "batch", "writeFile"]) {
    const orig = proto[name];
    proto[name] = async function (this: RemoteHost, ...args: unknown[]) {
      const f = armed;
      if (!f) return orig.apply(this, args);
      if (f.down) throw lost(this, `before ${summary(name, args)}`);
      const n = ++f.calls;
      f.trace.push(`${n} ${summary(name, args)}`);
      if (n !== f.at) return orig.apply(this, args);
      f.fired = true;
      if (f.mode === "after") {
        await orig.apply(this, args);
        f.down = true;
        await drop(this);
        throw lost(this, `after ${summary(name, args)} ran`);
      }
      const p = orig.apply(this, args);
      const timer = new Promise<void>((r) => setTimeout(r, f.delayMs)).then(async () => {
        f.down = true;
        await drop(this);
      });
      try {
        return await p;
      } finally {
        await timer;
      }
    };
  }
  const origLock = proto.withLock;
  proto.withLock = function (this: RemoteHost, fn: (first: any) => Promise<unknown>, opts?: any) {
    const f = armed;
    // A nested call runs inside the lock already held: not a boundary.
    if (!f || (this as any).holder?.getStore()) return origLock.call(this, fn, opts);
    if (f.down) return Promise.reject(lost(this, "before taking the host lock"));
    return origLock.call(
      this,
      async (first: any) => {
        const n = ++f.calls;
        f.trace.push(`${n} host lock taken`);
        if (n === f.at) {
          f.fired = true;
          f.down = true;
          await drop(this);
          throw lost(this, "after taking the host lock");
        }
        if (f.down) throw lost(this, "inside the host lock");
        return fn(first);
      },
      opts,
    );
  };
}

/** Arms a fault at the `at`-th host operation (1-based) of the calls that follow. */
export function arm(at: number, mode: FaultMode = "after", delayMs = 150): void {
  armed = { at, mode, delayMs, calls: 0, fired: false, down: false, trace: [] };
}

/** Disarms; says whether the fault fired and what operations ran. */
export function disarm(): { fired: boolean; calls: number; trace: string[] } {
  const f = armed;
  armed = undefined;
  return { fired: !!f?.fired, calls: f?.calls ?? 0, trace: f?.trace ?? [] };
}
