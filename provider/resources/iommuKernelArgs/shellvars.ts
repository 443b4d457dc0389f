// Reads and edits variable assignments in files that a POSIX shell sources
// (/etc/default/grub and its drop-ins), without evaluating them: every
// character of an assigned value keeps the position of its raw bytes, so an
// edit replaces exactly the bytes of the arguments it touches and leaves
// quoting styles, comments, escapes and everything else as they were.
import { cutRanges } from "./cmdline";

export type QuoteCtx = "dq" | "sq" | "unq";

/** One character of a value (after quote removal), or one expansion ($X, ${X}, $(…), `…`). */
export interface Piece {
  kind: "char" | "expansion";
  /** The character, or the expansion's raw text. */
  text: string;
  /** Raw byte range in the file. */
  start: number;
  end: number;
  ctx: QuoteCtx;
  /** For $NAME and ${NAME}. */
  name?: string;
  /** $(…) or `…`: its value cannot be known without running it. */
  command?: boolean;
}

/** A quoted or unquoted stretch of a word, with its delimiters. */
export interface Segment {
  ctx: QuoteCtx;
  start: number;
  end: number;
}

export interface Word {
  start: number;
  end: number;
  pieces: Piece[];
  segments: Segment[];
}

export interface Assignment {
  variable: string;
  /** Index among this variable's assignments in the file. */
  occurrence: number;
  word: Word;
  /** Inside if/while/for/case or a { } block: it may not run. */
  conditional: boolean;
}

export interface ShellFile {
  text: string;
  assignments: Assignment[];
}

export class ShellParseError extends Error {
  constructor(readonly offset: number, readonly line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.name = "ShellParseError";
  }
}

function lineOf(text: string, offset: number): number {
  let n = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === "\n") n++;
  return n;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const OPERATORS = ";&|()<>";

/** End of a $(…) / $((…)) starting at `i` (the `$`). */
function skipParens(text: string, i: number): number {
  let depth = 0;
  let j = i + 1;
  while (j < text.length) {
    const c = text[j];
    if (c === "\\") j += 2;
    else if (c === "'") {
      const k = text.indexOf("'", j + 1);
      if (k < 0) throw new ShellParseError(j, lineOf(text, j), "unterminated single quote inside $(…)");
      j = k + 1;
    } else if (c === '"') j = skipDoubleQuoted(text, j);
    else if (c === "`") j = skipBackticks(text, j);
    else if (c === "(") {
      depth++;
      j++;
    } else if (c === ")") {
      depth--;
      j++;
      if (depth === 0) return j;
    } else j++;
  }
  throw new ShellParseError(i, lineOf(text, i), "unterminated $(");
}

function skipBraces(text: string, i: number): number {
  let j = i + 2;
  let depth = 1;
  while (j < text.length) {
    const c = text[j];
    if (c === "\\") j += 2;
    else if (c === "'") {
      const k = text.indexOf("'", j + 1);
      if (k < 0) break;
      j = k + 1;
    } else if (c === '"') j = skipDoubleQuoted(text, j);
    else if (c === "$" && text[j + 1] === "{") {
      depth++;
      j += 2;
    } else if (c === "}") {
      depth--;
      j++;
      if (depth === 0) return j;
    } else j++;
  }
  throw new ShellParseError(i, lineOf(text, i), "unterminated ${");
}

function skipBackticks(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length) {
    if (text[j] === "\\") j += 2;
    else if (text[j] === "`") return j + 1;
    else j++;
  }
  throw new ShellParseError(i, lineOf(text, i), "unterminated backquote");
}

function skipDoubleQuoted(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length) {
    const c = text[j];
    if (c === "\\") j += 2;
    else if (c === '"') return j + 1;
    else if (c === "$" && text[j + 1] === "(") j = skipParens(text, j);
    else if (c === "$" && text[j + 1] === "{") j = skipBraces(text, j);
    else if (c === "`") j = skipBackticks(text, j);
    else j++;
  }
  throw new ShellParseError(i, lineOf(text, i), "unterminated double quote");
}

/** Parses an expansion starting at `i` (a `$` or a backquote); null when `$` is a literal. */
function expansion(text: string, i: number, ctx: QuoteCtx): Piece | null {
  if (text[i] === "`") {
    const end = skipBackticks(text, i);
    return { kind: "expansion", text: text.slice(i, end), start: i, end, ctx, command: true };
  }
  const n = text[i + 1];
  if (n === "(") {
    const end = skipParens(text, i);
    return { kind: "expansion", text: text.slice(i, end), start: i, end, ctx, command: !text.startsWith("$((", i) };
  }
  if (n === "{") {
    const end = skipBraces(text, i);
    const inner = text.slice(i + 2, end - 1);
    return { kind: "expansion", text: text.slice(i, end), start: i, end, ctx, name: /^[A-Za-z_][A-Za-z0-9_]*$/.test(inner) ? inner : undefined };
  }
  NAME.lastIndex = i + 1;
  const m = NAME.exec(text);
  if (m) return { kind: "expansion", text: text.slice(i, i + 1 + m[0].length), start: i, end: i + 1 + m[0].length, ctx, name: m[0] };
  if (n !== undefined && /[0-9@*#?$!-]/.test(n)) return { kind: "expansion", text: text.slice(i, i + 2), start: i, end: i + 2, ctx };
  return null;
}

/** Parses one shell word starting at `i`, up to unquoted whitespace or an operator. */
export function parseWord(text: string, i: number): Word {
  const start = i;
  const pieces: Piece[] = [];
  const segments: Segment[] = [];
  let unqStart = -1;
  const closeUnq = (at: number) => {
    if (unqStart >= 0 && at > unqStart) segments.push({ ctx: "unq", start: unqStart, end: at });
    unqStart = -1;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === " " || c === "\t" || c === "\n" || OPERATORS.includes(c)) break;
    if (c === "'") {
      closeUnq(i);
      const k = text.indexOf("'", i + 1);
      if (k < 0) throw new ShellParseError(i, lineOf(text, i), "unterminated single quote");
      for (let j = i + 1; j < k; j++) pieces.push({ kind: "char", text: text[j], start: j, end: j + 1, ctx: "sq" });
      segments.push({ ctx: "sq", start: i, end: k + 1 });
      i = k + 1;
      continue;
    }
    if (c === '"') {
      closeUnq(i);
      const segStart = i;
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw new ShellParseError(i, lineOf(text, i), "unterminated double quote");
        const d = text[j];
        if (d === '"') break;
        if (d === "\\") {
          const e = text[j + 1];
          if (e === "\n") j += 2; // line continuation: no value character
          else if (e !== undefined && '$`"\\'.includes(e)) {
            pieces.push({ kind: "char", text: e, start: j, end: j + 2, ctx: "dq" });
            j += 2;
          } else {
            pieces.push({ kind: "char", text: "\\", start: j, end: j + 1, ctx: "dq" });
            j += 1;
          }
          continue;
        }
        if (d === "$" || d === "`") {
          const x = expansion(text, j, "dq");
          if (x) {
            pieces.push(x);
            j = x.end;
            continue;
          }
        }
        pieces.push({ kind: "char", text: d, start: j, end: j + 1, ctx: "dq" });
        j++;
      }
      segments.push({ ctx: "dq", start: segStart, end: j + 1 });
      i = j + 1;
      continue;
    }
    if (unqStart < 0) unqStart = i;
    if (c === "\\") {
      const e = text[i + 1];
      if (e === undefined) {
        i++;
        continue;
      }
      if (e !== "\n") pieces.push({ kind: "char", text: e, start: i, end: i + 2, ctx: "unq" });
      i += 2;
      continue;
    }
    if (c === "$" || c === "`") {
      const x = expansion(text, i, "unq");
      if (x) {
        pieces.push(x);
        i = x.end;
        continue;
      }
    }
    pieces.push({ kind: "char", text: c, start: i, end: i + 1, ctx: "unq" });
    i++;
  }
  closeUnq(i);
  return { start, end: i, pieces, segments };
}

const COMMAND_PREFIX_WORDS = new Set(["then", "do", "else", "elif", "if", "while", "until", "!", "{", "}", "time", "fi", "done", "esac"]);
const OPENERS = new Set(["if", "while", "until", "for", "case", "{"]);
const CLOSERS = new Set(["fi", "done", "esac", "}"]);

/**
 * Finds every assignment in a sourced shell file (at the start of a simple
 * command, optionally after `export`), skipping comments, quotes and
 * command substitutions. Assignments inside if-blocks count as assignments.
 */
export function parseShellFile(text: string): ShellFile {
  const assignments: Assignment[] = [];
  const seen = new Map<string, number>();
  let i = 0;
  let atCommandStart = true;
  let depth = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\n") {
      atCommandStart = true;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "\\" && text[i + 1] === "\n") {
      i += 2;
      continue;
    }
    if (c === "#") {
      const nl = text.indexOf("\n", i);
      i = nl < 0 ? text.length : nl;
      continue;
    }
    if (OPERATORS.includes(c)) {
      atCommandStart = c !== "<" && c !== ">";
      i++;
      continue;
    }
    if (atCommandStart) {
      const m = /(export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)=/y;
      m.lastIndex = i;
      const hit = m.exec(text);
      if (hit) {
        const word = parseWord(text, i + hit[0].length);
        const variable = hit[2];
        const occurrence = seen.get(variable) ?? 0;
        seen.set(variable, occurrence + 1);
        assignments.push({ variable, occurrence, word, conditional: depth > 0 });
        i = word.end;
        continue;
      }
    }
    const word = parseWord(text, i);
    if (word.end === i) {
      i++; // a character no rule consumes; move on
      continue;
    }
    const w = text.slice(i, word.end);
    if (atCommandStart && OPENERS.has(w)) depth++;
    if (atCommandStart && CLOSERS.has(w) && depth > 0) depth--;
    atCommandStart = COMMAND_PREFIX_WORDS.has(w);
    i = word.end;
  }
  return { text, assignments };
}

// ---- kernel arguments inside an assigned value --------------------------------

export interface ArgToken {
  /** The argument as the kernel sees it; expansions appear as their raw text. */
  text: string;
  /** Piece indexes (inclusive). */
  first: number;
  last: number;
  /** Contains an expansion: its value is not known here. */
  opaque: boolean;
  /** The token is exactly `$NAME` / `${NAME}`. */
  reference?: string;
}

/** Splits an assigned value into kernel arguments (whitespace separates, except inside kernel double quotes). */
export function wordTokens(word: Word): ArgToken[] {
  const out: ArgToken[] = [];
  let cur: ArgToken | undefined;
  let inQuote = false;
  word.pieces.forEach((p, idx) => {
    const isChar = p.kind === "char";
    if (isChar && p.text === '"') inQuote = !inQuote;
    if (isChar && !inQuote && /^\s$/.test(p.text)) {
      cur = undefined;
      return;
    }
    if (!cur) {
      cur = { text: "", first: idx, last: idx, opaque: false };
      out.push(cur);
    }
    cur.text += p.text;
    cur.last = idx;
    if (!isChar) cur.opaque = true;
  });
  for (const t of out) {
    const p = word.pieces[t.first];
    if (t.first === t.last && p.kind === "expansion" && p.name) t.reference = p.name;
  }
  return out;
}

/** The raw text of a word with some of its arguments removed (and the whitespace that separated them). */
export function removeTokens(text: string, word: Word, remove: ReadonlySet<number>): string {
  const drop = new Set<number>();
  for (const [from, to] of cutRanges(wordTokens(word), remove, (t) => t.first, (t) => t.last + 1)) for (let k = from; k < to; k++) drop.add(k);
  const ranges = word.pieces.filter((_, k) => drop.has(k)).map((p) => [p.start, p.end] as const);
  let out = "";
  let pos = word.start;
  for (const [s, e] of ranges) {
    out += text.slice(pos, s);
    pos = e;
  }
  return out + text.slice(pos, word.end);
}

/** The raw text of a word with arguments appended after its last argument, in the word's own quoting. */
export function appendTokens(text: string, word: Word, args: readonly string[]): string {
  const raw = text.slice(word.start, word.end);
  if (args.length === 0) return raw;
  const joined = args.join(" ");
  if (word.segments.length === 0) return `"${joined}"`;
  const toks = wordTokens(word);
  let pos: number;
  let ctx: QuoteCtx;
  let insert: string;
  if (toks.length > 0) {
    const last = word.pieces[toks[toks.length - 1].last];
    pos = last.end;
    ctx = last.ctx;
    insert = " " + joined;
  } else {
    const quoted = word.segments.find((s) => s.ctx !== "unq");
    pos = quoted ? quoted.start + 1 : word.end;
    ctx = quoted ? quoted.ctx : "unq";
    insert = joined;
  }
  if (ctx === "unq") {
    // A plain unquoted word (GRUB_CMDLINE_LINUX=quiet) becomes one double-quoted word.
    const plain = word.segments.length === 1 && word.pieces.every((p) => p.kind === "char" && /^[A-Za-z0-9_.,:/+@%=-]$/.test(p.text));
    if (plain) return `"${word.pieces.map((p) => p.text).join("")}${insert}"`;
    insert = `"${insert}"`;
  }
  return text.slice(word.start, pos) + insert + text.slice(pos, word.end);
}

/** Replaces byte ranges of a text (non-overlapping). */
export function splice(text: string, edits: readonly { start: number; end: number; replacement: string }[]): string {
  const sorted = [...edits].sort((a, b) => b.start - a.start);
  let out = text;
  for (const e of sorted) out = out.slice(0, e.start) + e.replacement + out.slice(e.end);
  return out;
}
