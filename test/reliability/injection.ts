// Generators for the injection tests: random text mixed with shell
// metacharacters and payloads that, if a shell ever executed them, would
// create a canary file. Each generated value gets canary paths of its own,
// so a canary that appears names the value that was executed.
import * as fc from "fast-check";
import * as fs from "fs";
import * as path from "path";

/** Where canaries would appear (on the machine running the commands). */
export const CANARY_DIR = `/tmp/pulumi-sriov-canary-${process.pid}`;
const MARK = "\u0001C\u0001";

/** Shell-level ways to run `touch MARK`, and other characters with a meaning to sh, virsh, XML or GRUB. */
const PAYLOADS = [
  `$(touch ${MARK})`,
  `\`touch ${MARK}\``,
  `;touch ${MARK};`,
  `\ntouch ${MARK}\n`,
  `|touch ${MARK}`,
  `&&touch ${MARK}`,
  `||touch ${MARK}`,
  `&touch ${MARK}&`,
  `'$(touch ${MARK})'`,
  `"$(touch ${MARK})"`,
  `';touch ${MARK};'`,
  `";touch ${MARK};"`,
  `'"'"';touch ${MARK};'`,
  `$(touch\${IFS}${MARK})`,
  `>${MARK}`,
  `\\$(touch ${MARK})`,
  `\r\ntouch ${MARK}\r\n`,
  `<(touch ${MARK})`,
];
const META = [" ", "\t", "\n", "'", '"', "\\", "$", "`", ";", "|", "&", "<", ">", "(", ")", "{", "}", "[", "]", "*", "?", "~", "#", "!", "%", "=", "-", "--", "/", "..", ":", "@", ",", "+", "$IFS", "${HOME}", "$@", "$1", "-rf", "<x/>", "&amp;", "'/>", "\u00e9", "\u202e", "\u0000"];
const PLAUSIBLE = ["enp1s0", "eth0", "0000:01:00.0", "01:10.2", "52:54:00:12:34:56", "qemu:///system", "pool0", "vm1", "hugepages=16", "vfio-pci.ids=8086:10ca", "prof1"];

const fragment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PAYLOADS) },
  { weight: 3, arbitrary: fc.constantFrom(...META) },
  { weight: 2, arbitrary: fc.constantFrom(...PLAUSIBLE) },
  { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 4 }) },
);

/** A raw value: may contain a canary marker, replaced by `materialize`. */
export const rawValue = fc.array(fragment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join(""));

/** The same, never containing NUL (which no shell argument or SSH command can carry). */
export const rawShellValue = rawValue.map((v) => v.replace(/\u0000/g, ""));

let serial = 0;

/** Prefix of canaries made by a relative `touch` (values that must stay one path component). */
const BARE = `pulumi-sriov-canary-${process.pid}-`;
/** Where a relative canary lands: the SSH user's (root's) home, where remote commands start. */
const HOME_DIR = "/root";

/** Replaces canary markers with fresh canary paths (bare names for values that must hold no '/'). */
export function materialize(raw: string, label: string, opts: { bare?: boolean } = {}): string {
  const id = `${label.replace(/[^A-Za-z0-9_.-]/g, "_")}-${++serial}`;
  return raw.split(MARK).join(opts.bare ? BARE + id : path.join(CANARY_DIR, id));
}

export function resetCanaries(): void {
  fs.rmSync(CANARY_DIR, { recursive: true, force: true });
  fs.mkdirSync(CANARY_DIR, { recursive: true, mode: 0o777 });
}

/** Canaries that appeared: each is a value some shell executed. */
export function canaries(): string[] {
  const list = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  return [...list(CANARY_DIR), ...list(HOME_DIR).filter((n) => n.startsWith(BARE)).map((n) => path.join(HOME_DIR, n))];
}

export function removeCanaryDir(): void {
  fs.rmSync(CANARY_DIR, { recursive: true, force: true });
}

/** Characters that mean something to a POSIX shell, except [ ] (IPv6 host names have them; never passed to a shell). */
export const SHELL_META_BUT_BRACKETS = /[\s'"\\$`;|&<>(){}*?~#!\u0000]/;

/** Characters that mean something to a POSIX shell. */
export const SHELL_META = /[\s'"\\$`;|&<>(){}\[\]*?~#!\u0000]/;
