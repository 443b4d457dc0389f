// Kernel command-line arguments as the kernel sees them: splitting a line
// into arguments, argument keys, which keys the kernel accumulates, and
// whether a command line already has the effect of a wanted argument.

/**
 * Keys whose every occurrence counts (pci=realloc and pci=assign-busses both
 * apply; several console= are all used). Owning one of these never removes
 * the user's other values. Every other key is single-valued: the resource
 * owns it outright and replaces the user's values.
 */
export function isMultiValued(key: string): boolean {
  return key === "pci" || key === "console" || key === "earlycon";
}

/**
 * Keys the resource refuses to own: taking them over would remove what makes
 * the host boot at all.
 */
export function isReservedKey(key: string): boolean {
  return ["root", "rootflags", "rootfstype", "init", "ro", "rw", "boot_image", "initrd", "boot", "resume", "rd.lvm.lv", "cryptdevice"].includes(
    key.toLowerCase(),
  );
}

/**
 * The parameter name of an argument, normalised as the kernel compares them
 * (dashes and underscores are equal: vfio-pci.ids is vfio_pci.ids).
 */
export function argKey(arg: string): string {
  const a = arg.startsWith('"') ? arg.slice(1) : arg;
  const eq = a.indexOf("=");
  return (eq < 0 ? a : a.slice(0, eq)).replace(/-/g, "_");
}

/** An argument in canonical form, so vfio_pci.ids=x and vfio-pci.ids=x compare equal. */
export function canonicalArg(arg: string): string {
  const eq = arg.indexOf("=");
  return eq < 0 ? argKey(arg) : `${argKey(arg)}${arg.slice(eq)}`;
}

export function sameArg(a: string, b: string): boolean {
  return canonicalArg(a) === canonicalArg(b);
}

/**
 * Splits a command line into arguments the way the kernel does: on
 * whitespace, except inside double quotes (foo="a b" is one argument).
 */
export function splitCmdline(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inQuote = false;
  for (const ch of line) {
    if (ch === '"') inQuote = !inQuote;
    if (!inQuote && /\s/.test(ch)) {
      if (cur) out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * Whether `wanted` has its effect on a command line: a single-valued key's
 * last occurrence must be exactly it (the kernel applies them in order);
 * a multi-valued argument must be present.
 */
export function hasEffect(args: readonly string[], wanted: string): boolean {
  const key = argKey(wanted);
  if (isMultiValued(key)) return args.some((a) => sameArg(a, wanted));
  for (let i = args.length - 1; i >= 0; i--) if (argKey(args[i]) === key) return sameArg(args[i], wanted);
  return false;
}

/** Arguments of `wanted` that a command line does not (yet) have the effect of. */
export function missingArgs(args: readonly string[], wanted: readonly string[]): string[] {
  return wanted.filter((w) => !hasEffect(args, w));
}

/**
 * Whether `arg` conflicts with the wanted arguments: it sets a single-valued
 * key the resource owns, to something else.
 */
export function conflicts(arg: string, wanted: readonly string[]): boolean {
  const key = argKey(arg);
  if (isMultiValued(key)) return false;
  return wanted.some((w) => argKey(w) === key) && !wanted.some((w) => sameArg(w, arg));
}

/** Characters an argument we write may contain: safe unquoted, in single and in double quotes. */
export const SAFE_ARG = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*(=[A-Za-z0-9_.,:/+@%=-]*)?$/;

/**
 * The [start, end) ranges to cut to remove the tokens at `remove`: each run of
 * removed tokens goes with the separator before it, or the one after it when
 * the run starts the list, so the kept tokens keep their own spacing.
 */
export function cutRanges<T>(toks: readonly T[], remove: ReadonlySet<number>, start: (t: T) => number, end: (t: T) => number): [number, number][] {
  const cuts: [number, number][] = [];
  for (let i = 0; i < toks.length; i++) {
    if (!remove.has(i)) continue;
    let j = i;
    while (j + 1 < toks.length && remove.has(j + 1)) j++;
    const prev = i > 0 ? toks[i - 1] : undefined;
    const next = j + 1 < toks.length ? toks[j + 1] : undefined;
    cuts.push(prev ? [end(prev), end(toks[j])] : next ? [start(toks[i]), start(next)] : [start(toks[i]), end(toks[j])]);
    i = j;
  }
  return cuts;
}
