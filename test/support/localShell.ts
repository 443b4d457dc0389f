// Commands in a local shell, as a Transport's exec runs them on a host: for
// tests of the executor and the host layer without SSH.
import { ChildProcessWithoutNullStreams, spawn } from "child_process";
import type { ExecResult, Transport } from "../../provider/host/transport";

/** Waits for `child` to end, having given it `stdin`; collects its output. */
export function collect(child: ChildProcessWithoutNullStreams, stdin?: Buffer | string): Promise<ExecResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
    // A command that exits without reading its input closes the pipe first (EPIPE): not an error.
    child.stdin.on("error", () => undefined);
    child.stdin.end(stdin ?? "");
  });
}

/** `sh -c command` with `stdin` as its input. */
export function localShell(command: string, stdin?: Buffer | string): Promise<ExecResult> {
  return collect(spawn("/bin/sh", ["-c", command]), stdin);
}

/** A Transport whose host is this machine, as root needs no sudo: for executor tests. */
export function localTransport(name = "local"): Transport {
  return { name, needsSudo: false, exec: localShell, open: () => Promise.reject(new Error("not used")) };
}
