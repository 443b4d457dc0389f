// Input validation shared by every resource: zod schemas are built inside
// functions (module-level schemas do not survive provider serialization),
// every bad property is reported at once, and values still unknown during
// preview pass.
import { z } from "zod";

/** What the engine sends for a value that is not known yet (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface CheckFailure {
  property: string;
  reason: string;
}

export class InputError extends Error {
  constructor(readonly failures: CheckFailure[]) {
    super(failures.map((f) => `${f.property}: ${f.reason}`).join("\n"));
    this.name = "InputError";
  }
}

function containsUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v && typeof v === "object") return Object.values(v).some(containsUnknown);
  return false;
}

function at(value: unknown, path: readonly PropertyKey[]): unknown {
  let cur: any = value;
  for (const p of path) {
    if (cur === null || cur === undefined || typeof cur !== "object") return undefined;
    cur = cur[p as any];
  }
  return cur;
}

function pathUnknown(value: unknown, path: readonly PropertyKey[]): boolean {
  for (let i = 0; i <= path.length; i++) if (at(value, path.slice(0, i)) === UNKNOWN) return true;
  // An object-level rule (refine) over a value holding unknowns cannot be judged yet.
  const here = at(value, path);
  return here !== null && typeof here === "object" && containsUnknown(here);
}

export function propertyName(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || "(inputs)";
}

/**
 * Validates raw inputs. Returns the parsed value (defaults applied) or every
 * failure, each naming its property. Failures that involve unknown preview
 * values are dropped; the parsed value is then the raw input.
 */
export function validate<T>(schema: z.ZodType<T>, raw: unknown): { value?: T; failures: CheckFailure[]; hasUnknowns: boolean } {
  const hasUnknowns = containsUnknown(raw);
  const result = schema.safeParse(raw);
  if (result.success) return { value: result.data, failures: [], hasUnknowns };
  const failures: CheckFailure[] = [];
  const add = (path: readonly PropertyKey[], reason: string) => {
    const f = { property: propertyName(path), reason };
    if (!failures.some((x) => x.property === f.property && x.reason === f.reason)) failures.push(f);
  };
  for (const issue of result.error.issues) {
    if (hasUnknowns && pathUnknown(raw, issue.path)) continue;
    // An unknown property (a typo) is named itself, not the object holding it.
    if (issue.code === "unrecognized_keys") for (const k of issue.keys) add([...issue.path, k], "is not a known property");
    else add(issue.path, issue.message);
  }
  return { failures, hasUnknowns };
}

// ---- reusable field schemas ------------------------------------------------

export const patterns = {
  // Linux netdev names: at most 15 bytes, no '/', whitespace or ':'; we are stricter.
  ifname: /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/,
  pciAddress: /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/,
  mac: /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/,
  libvirtName: /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$/,
};

export function ifnameSchema() {
  return z.string().regex(patterns.ifname, "must be a network interface name (letters, digits, _ . - @, at most 15 characters)");
}

export function pciAddressSchema() {
  return z
    .string()
    .transform((s) => (/^[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(s) ? `0000:${s}` : s).toLowerCase())
    .pipe(z.string().regex(patterns.pciAddress, "must be a PCI address like 0000:01:00.0"));
}

export interface MacOptions {
  /** Refuse multicast MACs (VFs and guests cannot use them). Default false. */
  unicast?: boolean;
  /** Accept 00:00:00:00:00:00 (a VF's "no administrative MAC"). Default true. */
  allowZero?: boolean;
  /** The address shown in the error for a malformed MAC. */
  example?: string;
}

/** A MAC address; "-" separators and upper case are accepted and normalized to "aa:bb:…". */
export function macSchema({ unicast = false, allowZero = true, example = "52:54:00:12:34:56" }: MacOptions = {}) {
  let mac: z.ZodType<string, string> = z.string().regex(patterns.mac, `must be a MAC address like ${example}`);
  if (unicast) mac = mac.refine((m) => (parseInt(m.slice(0, 2), 16) & 1) === 0, "must be a unicast MAC (the first octet's low bit is the multicast bit)");
  if (!allowZero) mac = mac.refine((m) => m !== "00:00:00:00:00:00", "must not be all zeros");
  return z
    .string()
    .transform((s) => s.toLowerCase().replace(/-/g, ":"))
    .pipe(mac);
}

export function libvirtUriSchema() {
  return z
    .string()
    .regex(/^[a-z0-9+]+:\/\/[A-Za-z0-9_.@:\[\]-]*\/[A-Za-z0-9_/]*(\?[A-Za-z0-9_=&.\/-]*)?$/, "must be a libvirt URI like qemu:///system")
    .default("qemu:///system");
}

export function vlanSchema() {
  return z.number().int("must be a whole number").min(0, "must be 0–4095").max(4095, "must be 0–4095");
}
