// GRUB's kernel arguments: GRUB_CMDLINE_LINUX and GRUB_CMDLINE_LINUX_DEFAULT,
// assigned in /etc/default/grub and, where grub-mkconfig reads them
// (Debian, Ubuntu, Proxmox), in /etc/default/grub.d/*.cfg, sourced after it
// in name order. A later assignment replaces an earlier one unless it
// refers to the variable itself ("$GRUB_CMDLINE_LINUX …").
//
// Ownership: the user's conflicting arguments (same key, other value) are
// removed where they take effect and recorded; the arguments still missing
// then go into our own drop-in, sourced last, which appends to
// GRUB_CMDLINE_LINUX (so recovery entries boot with the same IOMMU setup).
// Without drop-ins they are appended to the effective GRUB_CMDLINE_LINUX
// assignment in /etc/default/grub, in its own quoting.
import { conflicts, missingArgs, sameArg, splitCmdline } from "./cmdline";
import { Edit } from "./restore";
import { appendTokens, parseShellFile, parseWord, removeTokens, ShellFile, ShellParseError, splice, wordTokens } from "./shellvars";

export const GRUB_MAIN = "/etc/default/grub";
export const GRUB_DROPIN_DIR = "/etc/default/grub.d";
/** Our drop-in: "zz-" so that it is sourced after the distribution's and the user's. */
export const OUR_DROPIN = "/etc/default/grub.d/zz-pulumi-sriov.cfg";
export const LINUX = "GRUB_CMDLINE_LINUX";
export const LINUX_DEFAULT = "GRUB_CMDLINE_LINUX_DEFAULT";

export interface GrubFiles {
  /** Content by path (null: absent): /etc/default/grub and every drop-in, ours included. */
  files: Record<string, string | null>;
  /** grub-mkconfig sources /etc/default/grub.d/*.cfg. */
  readsDropins: boolean;
}

export class GrubConfigError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`${path}: ${reason}`);
    this.name = "GrubConfigError";
  }
}

/** Byte order, as the shell's glob sorts in the C locale. */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Files in the order grub-mkconfig sources them (present files only). */
export function sourceOrder(g: GrubFiles): string[] {
  const order = g.files[GRUB_MAIN] != null ? [GRUB_MAIN] : [];
  if (g.readsDropins)
    order.push(
      ...Object.keys(g.files)
        .filter((p) => p.startsWith(GRUB_DROPIN_DIR + "/") && p.endsWith(".cfg") && g.files[p] != null)
        .sort(byteOrder),
    );
  return order;
}

function parse(path: string, text: string): ShellFile {
  try {
    return parseShellFile(text);
  } catch (e) {
    if (e instanceof ShellParseError) throw new GrubConfigError(path, `cannot be read as a shell file (${e.message}); fix it by hand first`);
    throw e;
  }
}

/** One argument of the effective value and where it was assigned. */
export interface SourcedArg {
  text: string;
  opaque: boolean;
  path: string;
  variable: string;
  occurrence: number;
  token: number;
}

/** The value of a variable after sourcing the files in order. */
export function effectiveArgs(parsed: readonly { path: string; file: ShellFile }[], variable: string): SourcedArg[] {
  let value: SourcedArg[] = [];
  for (const { path, file } of parsed)
    for (const a of file.assignments) {
      if (a.variable !== variable) continue;
      const next: SourcedArg[] = [];
      wordTokens(a.word).forEach((t, token) => {
        if (t.reference === variable) next.push(...value);
        else next.push({ text: t.text, opaque: t.opaque, path, variable, occurrence: a.occurrence, token });
      });
      value = next;
    }
  return value;
}

/** The kernel arguments GRUB's default entry gets from these files (LINUX, then LINUX_DEFAULT). */
export function grubCmdline(g: GrubFiles): string[] {
  const parsed = sourceOrder(g).map((path) => ({ path, file: parse(path, g.files[path]!) }));
  return [...effectiveArgs(parsed, LINUX), ...effectiveArgs(parsed, LINUX_DEFAULT)].map((a) => a.text);
}

/**
 * Our drop-in. Its content depends only on the arguments (not on what was
 * replaced), so that planning without the state's record, as a create on a
 * configured host or a preview does, finds nothing to change.
 */
export function renderDropin(args: readonly string[]): string {
  return [
    "# Managed by pulumi-sriov (IommuKernelArgs): kernel arguments for IOMMU and SR-IOV.",
    "# Deleting the resource removes this file (and puts back any value it replaced), then regenerates grub.cfg.",
    `${LINUX}="$${LINUX} ${args.join(" ")}"`,
    "",
  ].join("\n");
}

export interface GrubApply {
  /** New content of every file that changes (null: remove). */
  changes: Record<string, string | null>;
  edits: Edit[];
  created: string[];
  /** Where the resource's arguments are configured. */
  configPath: string;
  /** The default entry's arguments once the change is made. */
  cmdline: string[];
}

/**
 * Plans GRUB's files so that the wanted arguments take effect: conflicting
 * user arguments removed where they take effect, missing ones added.
 * Works on the user's files as they are without our changes (see undoGrub).
 */
export function applyGrub(g: GrubFiles, wanted: readonly string[]): GrubApply {
  const order = sourceOrder(g).filter((p) => p !== OUR_DROPIN);
  const parsed = order.map((path) => ({ path, file: parse(path, g.files[path]!) }));
  const eff = [...effectiveArgs(parsed, LINUX), ...effectiveArgs(parsed, LINUX_DEFAULT)];
  const conflicting = eff.filter((a) => !a.opaque && conflicts(a.text, wanted));
  const remaining = eff.filter((a) => !conflicting.includes(a)).map((a) => a.text);
  const missing = missingArgs(remaining, wanted);

  // Assignment edits, keyed by path / variable / occurrence.
  type Pending = { path: string; variable: string; occurrence: number; remove: Set<number>; append: string[] };
  const pending = new Map<string, Pending>();
  const pend = (path: string, variable: string, occurrence: number) => {
    const k = `${path}\0${variable}\0${occurrence}`;
    let p = pending.get(k);
    if (!p) pending.set(k, (p = { path, variable, occurrence, remove: new Set(), append: [] }));
    return p;
  };
  for (const c of conflicting) pend(c.path, c.variable, c.occurrence).remove.add(c.token);

  const changes: Record<string, string | null> = {};
  const created: string[] = [];
  let configPath = GRUB_MAIN;

  if (g.readsDropins) {
    const later = parsed.filter((p) => byteOrder(p.path, OUR_DROPIN) > 0);
    for (const l of later) {
      const abs = l.file.assignments.find((a) => a.variable === LINUX && !wordTokens(a.word).some((t) => t.reference === LINUX));
      if (abs)
        throw new GrubConfigError(
          l.path,
          `sets ${LINUX} after ${OUR_DROPIN} is read and would discard the arguments; make it append ("$${LINUX} …") or rename it to sort before ${OUR_DROPIN}`,
        );
    }
    const want = missing.length ? renderDropin(missing) : null;
    if ((g.files[OUR_DROPIN] ?? null) !== want) changes[OUR_DROPIN] = want;
    if (want !== null) {
      created.push(OUR_DROPIN);
      configPath = OUR_DROPIN;
    }
  } else if (g.files[OUR_DROPIN] != null) {
    changes[OUR_DROPIN] = null; // left over from a time drop-ins were read; never ours to keep
  }

  let appendLine: string | undefined;
  if (!g.readsDropins && missing.length) {
    const main = parsed.find((p) => p.path === GRUB_MAIN);
    const all = main?.file.assignments.filter((a) => a.variable === LINUX) ?? [];
    const target = all[all.length - 1];
    // Only an assignment that always runs and comes last is sure to take effect.
    if (target && !target.conditional) pend(GRUB_MAIN, LINUX, target.occurrence).append = missing;
    else appendLine = `${LINUX}="$${LINUX} ${missing.join(" ")}"\n`;
  }

  const edits: Edit[] = [];
  const byFile = new Map<string, Pending[]>();
  for (const p of pending.values()) byFile.set(p.path, [...(byFile.get(p.path) ?? []), p]);
  for (const [path, list] of byFile) {
    const text = g.files[path]!;
    const file = parsed.find((p) => p.path === path)!.file;
    const splices: { start: number; end: number; replacement: string }[] = [];
    for (const p of list) {
      const a = file.assignments.find((x) => x.variable === p.variable && x.occurrence === p.occurrence)!;
      const toks = wordTokens(a.word);
      const before = text.slice(a.word.start, a.word.end);
      let after = removeTokens(text, a.word, p.remove);
      if (p.append.length) after = appendTokens(after, parseWord(after, 0), p.append);
      splices.push({ start: a.word.start, end: a.word.end, replacement: after });
      edits.push({
        path,
        variable: p.variable,
        occurrence: p.occurrence,
        before,
        after,
        added: [...p.append],
        removed: toks.filter((_, i) => p.remove.has(i)).map((t) => t.text),
      });
    }
    changes[path] = splice(text, splices);
  }

  if (appendLine !== undefined) {
    const before = changes[GRUB_MAIN] ?? g.files[GRUB_MAIN];
    if (before == null) {
      changes[GRUB_MAIN] = appendLine;
      created.push(GRUB_MAIN);
    } else {
      const after = before + (before === "" || before.endsWith("\n") ? "" : "\n") + appendLine;
      changes[GRUB_MAIN] = after;
      edits.push({ path: GRUB_MAIN, before, after, added: [...missing], removed: [] });
    }
  }

  const result = { ...g.files, ...changes };
  return { changes, edits, created, configPath, cmdline: grubCmdline({ files: result, readsDropins: g.readsDropins }) };
}

/**
 * Puts back what an edit changed in a sourced file: exactly the old bytes
 * when the assignment is still as we left it; otherwise (edited since) our
 * arguments are taken out and the replaced ones appended again.
 */
export function undoGrubEdit(text: string, edit: Edit): string {
  if (edit.variable === undefined) {
    if (text === edit.after) return edit.before;
    const suffix = edit.after.startsWith(edit.before) ? edit.after.slice(edit.before.length) : "";
    if (suffix && text.includes(suffix)) {
      const at = text.lastIndexOf(suffix);
      return text.slice(0, at) + text.slice(at + suffix.length);
    }
    return text;
  }
  const file = parseShellFile(text);
  const candidates = file.assignments.filter((a) => a.variable === edit.variable);
  const raw = (a: (typeof candidates)[number]) => text.slice(a.word.start, a.word.end);
  const exact = candidates.find((a) => a.occurrence === edit.occurrence && raw(a) === edit.after) ?? candidates.find((a) => raw(a) === edit.after);
  if (exact) return splice(text, [{ start: exact.word.start, end: exact.word.end, replacement: edit.before }]);
  const target = candidates.find((a) => a.occurrence === edit.occurrence) ?? candidates[candidates.length - 1];
  if (!target) return text;
  const toks = wordTokens(target.word);
  const drop = new Set<number>();
  for (const added of edit.added)
    for (let i = toks.length - 1; i >= 0; i--)
      if (!drop.has(i) && !toks[i].opaque && sameArg(toks[i].text, added)) {
        drop.add(i);
        break;
      }
  let after = removeTokens(text, target.word, drop);
  const present = wordTokens(parseWord(after, 0)).map((t) => t.text);
  const back = edit.removed.filter((r) => !present.some((p) => sameArg(p, r)));
  if (back.length) after = appendTokens(after, parseWord(after, 0), back);
  return splice(text, [{ start: target.word.start, end: target.word.end, replacement: after }]);
}

/** The files as they were before the resource's edits (null: absent). */
export function undoGrub(files: Record<string, string | null>, edits: readonly Edit[], created: readonly string[]): Record<string, string | null> {
  const out = { ...files };
  for (const p of created) out[p] = null;
  for (const e of [...edits].reverse()) {
    const cur = out[e.path];
    if (cur == null) continue; // removed by the user since; nothing to put back into
    out[e.path] = undoGrubEdit(cur, e);
  }
  return out;
}

/** The kernel arguments of the first kernel entry of a generated grub.cfg (the default one unless GRUB_DEFAULT says otherwise). */
export function firstEntryArgs(grubCfg: string): string[] | undefined {
  for (const line of grubCfg.split("\n")) {
    const m = /^\s*(linux|linux16|linuxefi)\s+(\S+)(.*)$/.exec(line);
    if (m) return splitCmdline(m[3]);
  }
  return undefined;
}
