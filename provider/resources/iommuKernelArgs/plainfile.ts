// Editing a plain command-line file (/etc/kernel/cmdline): the whole file is
// the argument list. Only the bytes of arguments we touch change; spacing,
// line breaks and the trailing newline stay as they were.
import { conflicts, cutRanges, missingArgs, sameArg, splitCmdline } from "./cmdline";
import { Edit } from "./restore";

interface Span {
  text: string;
  start: number;
  end: number;
}

function spans(text: string): Span[] {
  const out: Span[] = [];
  let inQuote = false;
  let cur: Span | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') inQuote = !inQuote;
    if (!inQuote && /\s/.test(ch)) {
      cur = undefined;
      continue;
    }
    if (!cur) out.push((cur = { text: "", start: i, end: i }));
    cur.text += ch;
    cur.end = i + 1;
  }
  return out;
}

export function removeArgs(text: string, remove: ReadonlySet<number>): string {
  let out = text;
  for (const [s, e] of cutRanges(spans(text), remove, (t) => t.start, (t) => t.end).reverse()) out = out.slice(0, s) + out.slice(e);
  return out;
}

export function appendArgs(text: string, args: readonly string[]): string {
  if (args.length === 0) return text;
  const toks = spans(text);
  if (toks.length === 0) return text.trim() === "" ? `${args.join(" ")}\n` : args.join(" ") + text;
  const at = toks[toks.length - 1].end;
  return text.slice(0, at) + " " + args.join(" ") + text.slice(at);
}

export function plainArgs(text: string): string[] {
  return splitCmdline(text);
}

/** Applies wanted arguments to a plain command-line file; null edit when nothing changes. */
export function applyPlain(path: string, text: string, wanted: readonly string[]): { text: string; edit?: Edit } {
  const toks = spans(text);
  const drop = new Set<number>();
  toks.forEach((t, i) => {
    if (conflicts(t.text, wanted)) drop.add(i);
  });
  const removed = toks.filter((_, i) => drop.has(i)).map((t) => t.text);
  const kept = toks.filter((_, i) => !drop.has(i)).map((t) => t.text);
  const added = missingArgs(kept, wanted);
  const after = appendArgs(removeArgs(text, drop), added);
  if (after === text) return { text };
  return { text: after, edit: { path, before: text, after, added, removed } };
}

/**
 * Undoes an edit of a plain file: exactly `before` when the file is still as
 * we left it, else our arguments are taken out and the replaced ones put back.
 */
export function undoPlain(text: string, edit: Edit): string {
  if (text === edit.after) return edit.before;
  const toks = spans(text);
  const drop = new Set<number>();
  for (const a of edit.added) {
    for (let i = toks.length - 1; i >= 0; i--)
      if (!drop.has(i) && sameArg(toks[i].text, a)) {
        drop.add(i);
        break;
      }
  }
  const removed = removeArgs(text, drop);
  const present = splitCmdline(removed);
  return appendArgs(
    removed,
    edit.removed.filter((a) => !present.some((p) => sameArg(p, a))),
  );
}
