// Entry point of the host layer: one RemoteHost per pooled connection.
import { Connection } from "../connection";
import { RemoteHost } from "./host";
import { sshTransport } from "./ssh";
import { Transport } from "./transport";

const hosts = new WeakMap<Transport, RemoteHost>();

export function hostFor(connection: Connection): RemoteHost {
  const t = sshTransport(connection);
  let h = hosts.get(t);
  if (!h) hosts.set(t, (h = new RemoteHost(t)));
  return h;
}

export { RemoteHost, BACKUP_DIR, LOCK_FILE, RECORD_DIR, batchArgv } from "./host";
export type { Argv, CommandResult } from "./host";
export { closeAllConnections, closeConnection, sshStats, resetSshStats } from "./ssh";
export * from "./errors";
export { commandLine, quote, shScript } from "./quote";
export { describe, execute, failedBeforeAnyChange, keepingCopy, planOf, previewOf, refusal, refuseIfProblems, restoreFromBackup, undoReport } from "./execute";
export type { Command, Operation, Plan, Undo } from "./execute";
export { loggerFor, logLine, quiet } from "./log";
export type { Log } from "./log";
