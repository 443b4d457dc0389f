// Taking over hand-made persistence: a udev rule, systemd unit, modprobe
// option file or rc.local line that already sets this PF's VFs is replaced by
// this resource's own persistence, in the plan, where the operator sees it,
// and never kept beside it. The original goes to the host's backup and a
// record says what was taken, so delete puts it back exactly. Pure: the
// operations are data, like the rest of the plan.
import { BACKUP_DIR, RECORD_DIR } from "../../host/host";
import { shScript } from "../../host/quote";
import type { CheckFailure } from "../../validate";
import type { Persist } from "./schema";

export type TakeOverKind = "udev rule" | "systemd unit" | "modprobe option file" | "rc.local";

export const RC_LOCAL_PATHS = ["/etc/rc.local", "/etc/rc.d/rc.local"];

/** What a hand-made persistence file is, by its path (undefined: not a kind this resource can take over). */
export function takeOverKind(path: string): TakeOverKind | undefined {
  if (RC_LOCAL_PATHS.includes(path)) return "rc.local";
  if (/^\/etc\/udev\/rules\.d\/[^/]+\.rules$/.test(path)) return "udev rule";
  if (/^\/etc\/systemd\/system\/[^/]+\.service$/.test(path)) return "systemd unit";
  if (/^\/etc\/modprobe\.d\/[^/]+\.conf$/.test(path)) return "modprobe option file";
  return undefined;
}

/** This resource's persistence as the preview names it. */
export function persistWords(p: Exclude<Persist, "none">): string {
  return { systemd: "systemd unit", udev: "udev rule", modprobe: "modprobe option file" }[p];
}

export function takenOverPath(pci: string): string {
  return `${RECORD_DIR}/sriov-pf-${pci}-taken-over.json`;
}

export function backupOf(path: string): string {
  return BACKUP_DIR + path;
}

/** One file taken over, as recorded for delete. */
export interface TakenOver {
  path: string;
  kind: TakeOverKind;
  /** A unit's `systemctl is-enabled` state when taken (delete enables it again when it was "enabled"). */
  enabled?: string;
  /** rc.local: what was written in its place (delete puts the original back only over exactly this). */
  written?: string;
}

export function parseTakenOver(text: string): TakenOver[] {
  try {
    const v = JSON.parse(text);
    if (Array.isArray(v))
      return v.filter((e) => typeof e?.path === "string" && typeof e?.kind === "string" && takeOverKind(e.path) === e.kind);
  } catch {
    /* not JSON: nothing recorded */
  }
  return [];
}

export function renderTakenOver(entries: TakenOver[]): string {
  return JSON.stringify(entries, null, 1) + "\n";
}

export type Op =
  | { kind: "run"; description: string; argv: string[] }
  | { kind: "write"; description: string; path: string; content: string }
  | { kind: "remove"; description: string; path: string };

export interface PfIdentity {
  pciAddress: string;
  netdevs: string[];
  driver: string;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * rc.local without the lines that write this PF's sriov_numvfs, or why that
 * cannot be done exactly. A line is removed only when it is one whole command
 * at the top level of the script: not continued, not inside an if/for/while/
 * case block or a function, and in a script without here-documents. Other
 * lines that name the PF (VF MACs, VLANs) stay.
 */
export function stripRcLocal(text: string, pf: PfIdentity): { content: string; removed: string[] } | { reason: string } {
  const lines = text.split("\n");
  const names = pf.netdevs.map((n) => new RegExp(`(^|[^A-Za-z0-9_.-])${escape(n)}([^A-Za-z0-9_.-]|$)`));
  const mentions = (l: string) => l.includes("sriov_numvfs") && (l.includes(pf.pciAddress) || names.some((r) => r.test(l)));
  if (lines.some((l) => /<</.test(l))) return { reason: "it has a here-document, so its lines cannot be told apart safely" };
  const keep: string[] = [];
  const removed: string[] = [];
  let depth = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const code = l.trim().startsWith("#") ? "" : l;
    if (mentions(code)) {
      const where = `line ${i + 1} (${l.trim()})`;
      if (depth !== 0) return { reason: `${where} is inside an if, for, while or case block or a function` };
      if (/\\$/.test(l) || (i > 0 && /\\$/.test(lines[i - 1]))) return { reason: `${where} is part of a continued command` };
      if (/[;&|`{}()]/.test(l.replace(/\$\([^()]*\)/g, ""))) return { reason: `${where} holds more than one command` };
      removed.push(l);
      continue;
    }
    // Block words counted crudely; a count that goes below zero means the script is not followed.
    for (const w of code.split(/[\s;]+/)) {
      if (["if", "for", "while", "until", "case", "{"].includes(w)) depth++;
      else if (["fi", "done", "esac", "}"].includes(w)) depth--;
    }
    if (depth < 0) return { reason: `its blocks could not be followed (line ${i + 1})` };
    keep.push(l);
  }
  if (!removed.length) return { reason: "no single line of it writes this PF's sriov_numvfs" };
  return { content: keep.join("\n"), removed };
}

/** A modprobe file holds only this driver's max_vfs (and comments), or the reason it cannot be taken over whole. */
function modprobeOnlyMaxVfs(text: string, driver: string): string | undefined {
  const only = new RegExp(`^\\s*options\\s+${escape(driver)}\\s+max_vfs=\\S+\\s*$`);
  const other = text.split("\n").find((l) => l.trim() && !l.trim().startsWith("#") && !only.test(l));
  return other === undefined ? undefined : `it also holds "${other.trim()}", which taking the file over would drop; move max_vfs out of it by hand, or use persist "none"`;
}

export interface TakeOverInput {
  pf: PfIdentity;
  persist: Exclude<Persist, "none">;
  takeOver: readonly string[];
  foreign: { path: string; mentions: string }[];
  /** Foreign files' content, by path. */
  contents: Record<string, string>;
  /** Foreign units' is-enabled state, by path. */
  enabled: Record<string, string>;
  /** What earlier applies took over (the record). */
  taken: TakenOver[];
  tools: string[];
  /** Other SR-IOV PFs on the host with their driver (a removed module option also concerns them). */
  others: { pciAddress: string; driver: string; netdevs: string[] }[];
  host: string;
}

/**
 * The operations that replace each foreign file listed in takeOver, and the
 * failures for a foreign file not listed (two mechanisms) or a listed path
 * that sets nothing for this PF.
 */
export function takeOverOps(t: TakeOverInput): { ops: Op[]; failures: CheckFailure[]; warnings: string[] } {
  const ops: Op[] = [];
  const failures: CheckFailure[] = [];
  const warnings: string[] = [];
  const pci = t.pf.pciAddress;
  const ours = persistWords(t.persist);
  const entries: TakenOver[] = [];
  const after: Op[] = [];
  for (const f of t.foreign) {
    if (!t.takeOver.includes(f.path)) {
      failures.push({
        property: "takeOver",
        reason: `${f.path} on ${t.host} also sets VFs for PF ${pci} (it mentions ${f.mentions}); persist "${t.persist}" would be a second mechanism beside it: list it in takeOver to replace it with pulumi-sriov's ${ours}, or use persist "none"`,
      });
      continue;
    }
    const kind = takeOverKind(f.path);
    if (!kind) {
      failures.push({ property: "takeOver", reason: `${f.path} is not a udev rule, systemd unit, modprobe option file or rc.local, which are the files that can be taken over` });
      continue;
    }
    const description = `replace ${kind} ${f.path} with pulumi-sriov's ${ours}`;
    const text = t.contents[f.path] ?? "";
    if (kind === "rc.local") {
      const s = stripRcLocal(text, t.pf);
      if ("reason" in s) {
        failures.push({
          property: "takeOver",
          reason: `${f.path} on ${t.host} cannot have its lines for PF ${pci} removed exactly: ${s.reason}; remove them by hand, or use persist "none"`,
        });
        continue;
      }
      entries.push({ path: f.path, kind, written: s.content });
      // writeFile keeps the file's mode and owner and copies the original to the backup.
      after.push({ kind: "write", description, path: f.path, content: s.content });
      continue;
    }
    if (kind === "modprobe option file") {
      const why = modprobeOnlyMaxVfs(text, t.pf.driver);
      if (why) {
        failures.push({ property: "takeOver", reason: `${f.path} on ${t.host} cannot be taken over: ${why}` });
        continue;
      }
      const alsoHit = t.others.filter((c) => c.driver === t.pf.driver && c.pciAddress !== pci);
      if (alsoHit.length && t.persist !== "modprobe")
        warnings.push(
          `${f.path} also gave ${alsoHit.map((c) => `${c.pciAddress}${c.netdevs[0] ? ` (${c.netdevs[0]})` : ""}`).join(", ")} VFs whenever ${t.pf.driver} loads; once it is replaced they get none at boot`,
        );
    }
    const name = f.path.slice(f.path.lastIndexOf("/") + 1);
    const enabled = kind === "systemd unit" ? t.enabled[f.path] : undefined;
    entries.push(enabled !== undefined ? { path: f.path, kind, enabled } : { path: f.path, kind });
    if (kind === "systemd unit" && enabled === "enabled")
      after.push({ kind: "run", description: `disable ${name} (taken over)`, argv: ["systemctl", "disable", "--no-reload", name] });
    // removeFile copies the file (mode and owner kept) to the backup before removing it.
    after.push({ kind: "remove", description, path: f.path });
    if (kind === "systemd unit" && t.tools.includes("systemctl")) after.push({ kind: "run", description: "reload systemd units", argv: ["systemctl", "daemon-reload"] });
    if (kind === "udev rule" && t.tools.includes("udevadm")) after.push({ kind: "run", description: "reload udev rules", argv: ["udevadm", "control", "--reload"] });
    if (kind === "modprobe option file") {
      if (t.tools.includes("update-initramfs")) after.push({ kind: "run", description: "regenerate the initramfs without the module option", argv: ["update-initramfs", "-u"] });
      else if (t.tools.includes("dracut")) after.push({ kind: "run", description: "regenerate the initramfs without the module option", argv: ["dracut", "-f"] });
    }
  }
  const foreign = new Set(t.foreign.map((f) => f.path));
  const recorded = new Set(t.taken.map((e) => e.path));
  for (const p of t.takeOver)
    if (!foreign.has(p) && !recorded.has(p))
      failures.push({
        property: "takeOver",
        reason: `${p} on ${t.host} is not a file that sets VFs for PF ${pci}${t.foreign.length ? ` (those are: ${t.foreign.map((f) => f.path).join(", ")})` : " (none does)"}; remove it from takeOver`,
      });
  if (failures.length) return { ops: [], failures, warnings };
  if (entries.length) {
    // Recorded before anything is moved, so a delete after a cut-off apply still puts it back.
    const merged = [...t.taken.filter((e) => !entries.some((n) => n.path === e.path)), ...entries];
    ops.push({
      kind: "write",
      description: `record in ${takenOverPath(pci)} what is taken over (delete puts it back)`,
      path: takenOverPath(pci),
      content: renderTakenOver(merged),
    });
  }
  ops.push(...after);
  return { ops, failures, warnings };
}

/**
 * Delete's operations that put each taken-over file back from the backup,
 * exactly (content, mode and owner: copied with cp -p), once this resource's
 * own persistence is gone. `current` and `backups` are the files' contents now
 * (null: absent). A failure is returned before anything runs.
 */
export function putBackOps(
  taken: TakenOver[],
  current: Record<string, string | null>,
  backups: Record<string, string | null>,
  opts: { host: string; tools: string[] },
): { ops: Op[]; failures: CheckFailure[] } {
  const ops: Op[] = [];
  const failures: CheckFailure[] = [];
  let reloadUnits = false;
  let reloadUdev = false;
  let initramfs = false;
  const enable: string[] = [];
  for (const e of taken) {
    const bak = backupOf(e.path);
    const kept = backups[bak];
    // Nothing kept (removed by hand): nothing to put back.
    if (kept === null || kept === undefined) continue;
    const now = current[e.path];
    if (e.kind === "rc.local" ? now !== e.written : now !== null && now !== undefined && now !== kept) {
      failures.push({
        property: "takeOver",
        reason:
          e.kind === "rc.local"
            ? `${e.path} on ${opts.host} changed since its lines for this PF were taken over; the original is kept at ${bak}: put its lines back by hand and remove ${bak}, then delete again`
            : `${e.path} on ${opts.host} exists again with other content; the original taken over is kept at ${bak}: choose one by hand and remove ${bak}, then delete again`,
      });
      continue;
    }
    ops.push({
      kind: "run",
      description: `put back ${e.kind} ${e.path} as it was before it was taken over`,
      argv: shScript('set -e; f="$1"; b="$2"; t=$(mktemp -- "$(dirname -- "$f")/.$(basename -- "$f").back.XXXXXX"); cp -p -- "$b" "$t"; mv -f -- "$t" "$f"; rm -f -- "$b"', e.path, bak),
    });
    if (e.kind === "systemd unit") {
      reloadUnits = true;
      if (e.enabled === "enabled") enable.push(e.path.slice(e.path.lastIndexOf("/") + 1));
    }
    if (e.kind === "udev rule") reloadUdev = true;
    if (e.kind === "modprobe option file") initramfs = true;
  }
  if (failures.length) return { ops: [], failures };
  const has = (t: string) => opts.tools.includes(t);
  if (reloadUnits && has("systemctl")) ops.push({ kind: "run", description: "reload systemd units", argv: ["systemctl", "daemon-reload"] });
  for (const u of enable) ops.push({ kind: "run", description: `enable ${u} at boot again`, argv: ["systemctl", "enable", "--no-reload", u] });
  if (reloadUdev && has("udevadm")) ops.push({ kind: "run", description: "reload udev rules", argv: ["udevadm", "control", "--reload"] });
  if (initramfs && has("update-initramfs")) ops.push({ kind: "run", description: "regenerate the initramfs with the module option", argv: ["update-initramfs", "-u"] });
  else if (initramfs && has("dracut")) ops.push({ kind: "run", description: "regenerate the initramfs with the module option", argv: ["dracut", "-f"] });
  return { ops, failures };
}
