// systemd steps shared by the resources that write units.
import { shScript } from "./quote";

/**
 * Reloads systemd only when it has not loaded `unit` as its file now is. A
 * reload re-reads every unit and runs the generators (seconds, and dozens of
 * processes, on a busy or slow host); a unit systemd has never loaded, or
 * whose file it read already, needs none. The file may be right while systemd
 * still holds an older one (a run cut off after the write, or a file removed
 * without a reload): then it reloads.
 */
export function reloadUnlessLoaded(unit: string): { kind: "run"; description: string; argv: string[] } {
  return {
    kind: "run",
    description: `reload systemd units if it has not loaded ${unit} as written`,
    argv: shScript(
      's=$(systemctl show -p LoadState -p NeedDaemonReload -- "$1"); case "$s" in *LoadState=loaded*NeedDaemonReload=no*|*NeedDaemonReload=no*LoadState=loaded*) exit 0 ;; esac; exec systemctl daemon-reload',
      unit,
    ),
  };
}
