// Property tests of the kernel-argument editor on generated GRUB files and
// /etc/kernel/cmdline files: quoting styles (double, single, unquoted with
// escapes), escaped quotes, comments, duplicate keys, self-references,
// if-blocks and drop-ins. The real /bin/sh checks our reading of every file,
// before and after the edit.
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as fc from "fast-check";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { conflicts, hasEffect, sameArg, splitCmdline } from "../../provider/resources/iommuKernelArgs/cmdline";
import { applyGrub, GrubConfigError, GrubFiles, grubCmdline, LINUX, undoGrub } from "../../provider/resources/iommuKernelArgs/grub";
import { applyPlain, undoPlain } from "../../provider/resources/iommuKernelArgs/plainfile";
import { parseShellFile, wordTokens } from "../../provider/resources/iommuKernelArgs/shellvars";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 150);

// ---- generators --------------------------------------------------------------

/** Arguments users have, including ones that conflict with what we set. */
const userArg = fc.oneof(
  fc.constantFrom(
    "quiet",
    "splash",
    "console=ttyS0,115200",
    "console=tty0",
    "intel_iommu=off",
    "intel_iommu=on",
    "amd_iommu=off",
    "iommu=soft",
    "iommu=pt",
    "pci=noaer",
    "hugepages=4",
    "loglevel=3",
    "rd.luks.uuid=3f1e",
    "intel-iommu=igfx_off",
    'acpi_osi="Windows 2015"',
    "nomodeset",
  ),
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_.]{0,7}$/), fc.option(fc.stringMatching(/^[a-z0-9:,.]{0,6}$/), { nil: undefined })).map(([k, v]) =>
    v === undefined ? k : `${k}=${v}`,
  ),
);

const wantedArgs = fc
  .record({
    vendor: fc.constantFrom("intel_iommu=on", "amd_iommu=on", undefined),
    pt: fc.boolean(),
    extra: fc.subarray(["pci=realloc", "hugepages=16", "pcie_acs_override=downstream", "vfio-pci.ids=8086:10ca", "console=ttyS1"]),
  })
  .map(({ vendor, pt, extra }) => [...(vendor ? [vendor] : []), ...(pt ? ["iommu=pt"] : []), ...extra]);

const sep = fc.constantFrom(" ", "  ", "\t", " \t ");

/** A value rendered in one of the shell's quoting styles. */
function quoted(args: string[], seps: string[], style: "dq" | "sq" | "unq", lead: string, trail: string): string {
  let value = lead;
  args.forEach((a, i) => (value += (i ? seps[i % seps.length] : "") + a));
  value += trail;
  if (style === "dq") return `"${value.replace(/[\\"$`]/g, (c) => "\\" + c)}"`;
  if (style === "sq") return `'${value}'`;
  // Unquoted: every character that is special to the shell escaped with a backslash.
  return value.replace(/[^A-Za-z0-9_.,:/=+@%-]/g, (c) => "\\" + c);
}

const assignment = (variable: string) =>
  fc
    .record({
      args: fc.array(userArg, { maxLength: 5 }),
      seps: fc.array(sep, { minLength: 1, maxLength: 3 }),
      style: fc.constantFrom("dq", "dq", "sq", "unq"),
      selfRef: fc.constantFrom("none", "none", "front", "back"),
      exported: fc.boolean(),
      lead: fc.constantFrom("", "", " "),
      trail: fc.constantFrom("", "", " "),
      comment: fc.constantFrom("", "", "   # set by the installer", ' # "quoted" `ticks`'),
      wrapIf: fc.constantFrom(false, false, false, true),
    })
    .map((a) => {
      let value = quoted(a.args, a.seps, a.style as "dq" | "sq" | "unq", a.lead, a.trail);
      if (a.selfRef !== "none") {
        const body = quoted(a.args, a.seps, "dq", a.lead, a.trail).slice(1, -1);
        value = a.selfRef === "front" ? `"$${variable} ${body}"` : `"${body} \${${variable}}"`;
      }
      const line = `${a.exported ? "export " : ""}${variable}=${value}${a.comment}`;
      return a.wrapIf ? `if true; then\n  ${line}\nfi` : line;
    });

const otherLine = fc.constantFrom(
  "",
  "# If you change this file, run 'update-grub' afterwards",
  "#GRUB_CMDLINE_LINUX=\"intel_iommu=on\"",
  "# note that you can use only modes which your card supports via `vbeinfo'",
  "GRUB_DEFAULT=0",
  "GRUB_TIMEOUT=5",
  "GRUB_DISTRIBUTOR=`echo Debian`",
  'GRUB_DISTRIBUTOR="$(echo "Debian GNU/Linux")"',
  "GRUB_TERMINAL='console serial'",
);

const grubFile = fc
  .array(fc.oneof({ weight: 2, arbitrary: otherLine }, { weight: 2, arbitrary: assignment(LINUX) }, { weight: 2, arbitrary: assignment("GRUB_CMDLINE_LINUX_DEFAULT") }), {
    maxLength: 8,
  })
  .chain((lines) => fc.constantFrom("\n", "").map((end) => lines.join("\n") + end));

const grubFiles: fc.Arbitrary<GrubFiles> = fc
  .record({
    main: grubFile,
    dropins: fc.array(grubFile, { maxLength: 2 }),
    readsDropins: fc.boolean(),
  })
  .map(({ main, dropins, readsDropins }) => {
    const files: Record<string, string | null> = { "/etc/default/grub": main };
    dropins.forEach((d, i) => (files[`/etc/default/grub.d/${10 + i * 40}-site.cfg`] = d));
    return { files, readsDropins };
  });

// ---- the real shell ------------------------------------------------------------

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "iommu-args-prop-"));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

/** The default entry's arguments as grub-mkconfig computes them: the files sourced by /bin/sh. */
function shellCmdline(g: GrubFiles): string[] {
  fs.rmSync(TMP, { recursive: true, force: true });
  fs.mkdirSync(path.join(TMP, "grub.d"), { recursive: true });
  const main = g.files["/etc/default/grub"];
  if (main != null) fs.writeFileSync(path.join(TMP, "grub"), main);
  const dropins = Object.keys(g.files).filter((p) => p.startsWith("/etc/default/grub.d/") && g.files[p] != null);
  for (const p of dropins) fs.writeFileSync(path.join(TMP, "grub.d", path.basename(p)), g.files[p]!);
  const script =
    `[ -f ./grub ] && . ./grub; ` +
    (g.readsDropins ? 'for x in ./grub.d/*.cfg; do [ -e "$x" ] && . "$x"; done; ' : "") +
    'printf "%s %s" "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT"';
  const r = spawnSync("/bin/sh", ["-c", script], { cwd: TMP, encoding: "utf8", env: { PATH: "/usr/bin:/bin", LC_ALL: "C" } });
  if (r.status !== 0) throw new Error(`sh failed (${r.status}): ${r.stderr}\n${JSON.stringify(g.files)}`);
  return splitCmdline(r.stdout);
}

function tryApply(g: GrubFiles, wanted: string[]) {
  try {
    return applyGrub(g, wanted);
  } catch (e) {
    // A later drop-in replacing the value outright is refused by design.
    if (e instanceof GrubConfigError && /after .* is read/.test(e.message)) return undefined;
    throw e;
  }
}

describe("IommuKernelArgs editor properties", function () {
  this.timeout(120000);

  it("reads generated GRUB files as /bin/sh does", () => {
    fc.assert(
      fc.property(grubFiles, (g) => {
        expect(grubCmdline(g)).to.deep.equal(shellCmdline(g));
      }),
      { numRuns: RUNS },
    );
  });

  it("adding then removing arguments gives back every file byte for byte", () => {
    fc.assert(
      fc.property(grubFiles, wantedArgs, (g, wanted) => {
        const a = tryApply(g, wanted);
        fc.pre(a !== undefined);
        const after = { ...g.files, ...a!.changes };
        const back = undoGrub(after, a!.edits, a!.created);
        for (const p of new Set([...Object.keys(g.files), ...Object.keys(back)])) expect(back[p] ?? null, p).to.equal(g.files[p] ?? null);
      }),
      { numRuns: RUNS },
    );
  });

  it("after adding, the shell sees every wanted argument take effect and every other user argument, in order", () => {
    fc.assert(
      fc.property(grubFiles, wantedArgs, (g, wanted) => {
        const a = tryApply(g, wanted);
        fc.pre(a !== undefined);
        const after = { files: { ...g.files, ...a!.changes }, readsDropins: g.readsDropins };
        const seen = shellCmdline(after);
        expect(seen, "our model of the edited files").to.deep.equal(a!.cmdline);
        for (const w of wanted) expect(hasEffect(seen, w), `${w} in ${seen.join(" ")}`).to.equal(true);
        // The user's arguments: all kept (in order) except the conflicting ones.
        const before = shellCmdline(g).filter((x) => !conflicts(x, wanted));
        const ours = seen.filter((x) => !before.includes(x) || false);
        expect(ours.every((x) => wanted.some((w) => sameArg(w, x))), `only wanted arguments were added: ${ours.join(" ")}`).to.equal(true);
        expect(seen.filter((x) => before.includes(x))).to.deep.equal(before.filter((x) => seen.includes(x)));
        expect(before.filter((x) => !seen.includes(x)), "user arguments lost").to.deep.equal([]);
      }),
      { numRuns: RUNS },
    );
  });

  it("applying again to the restored files gives the same files (idempotent)", () => {
    fc.assert(
      fc.property(grubFiles, wantedArgs, (g, wanted) => {
        const a = tryApply(g, wanted);
        fc.pre(a !== undefined);
        const after = { ...g.files, ...a!.changes };
        const again = applyGrub({ files: undoGrub(after, a!.edits, a!.created), readsDropins: g.readsDropins }, wanted);
        expect({ ...after, ...again.changes }).to.deep.equal(after);
      }),
      { numRuns: RUNS },
    );
  });

  it("removing after the user edited the same line keeps the user's new argument and puts back what was replaced", () => {
    fc.assert(
      fc.property(grubFiles, wantedArgs, fc.stringMatching(/^zz[a-z]{1,5}=[0-9]{1,3}$/), (g, wanted, extra) => {
        const a = tryApply(g, wanted);
        fc.pre(a !== undefined && a!.edits.some((e) => e.variable));
        const edit = a!.edits.find((e) => e.variable)!;
        const files = { ...g.files, ...a!.changes };
        // The user appends an argument to the very assignment we edited.
        const text = files[edit.path]!;
        const asg = parseShellFile(text).assignments.find((x) => x.variable === edit.variable && x.occurrence === edit.occurrence)!;
        const last = asg.word.segments[asg.word.segments.length - 1];
        fc.pre(last?.ctx === "dq" && last.end === asg.word.end && wordTokens(asg.word).length > 0);
        files[edit.path] = text.slice(0, asg.word.end - 1) + " " + extra + text.slice(asg.word.end - 1);
        const back = undoGrub(files, a!.edits, a!.created);
        const seen = shellCmdline({ files: back, readsDropins: g.readsDropins });
        const original = shellCmdline(g);
        expect(seen.filter((x) => x !== extra).sort(), "the user's arguments, ours gone").to.deep.equal([...original].sort());
        expect(seen).to.include(extra);
      }),
      { numRuns: RUNS },
    );
  });

  it("/etc/kernel/cmdline: adding then removing gives back the file byte for byte; a user edit in between survives", () => {
    const plainFile = fc
      .record({ args: fc.array(userArg, { maxLength: 8 }), seps: fc.array(fc.constantFrom(" ", "  ", "\n", "\t"), { minLength: 1, maxLength: 3 }), end: fc.constantFrom("\n", "", " \n") })
      .map(({ args, seps, end }) => args.map((x, i) => (i ? seps[i % seps.length] : "") + x).join("") + end);
    fc.assert(
      fc.property(plainFile, wantedArgs, fc.stringMatching(/^zz[a-z]{1,5}$/), (text, wanted, extra) => {
        const r = applyPlain("/etc/kernel/cmdline", text, wanted);
        for (const w of wanted) expect(hasEffect(splitCmdline(r.text), w)).to.equal(true);
        if (!r.edit) {
          expect(r.text).to.equal(text);
          return;
        }
        expect(undoPlain(r.text, r.edit)).to.equal(text);
        const edited = undoPlain(`${extra} ${r.text}`, r.edit);
        expect(splitCmdline(edited).filter((x) => x !== extra).sort()).to.deep.equal(splitCmdline(text).sort());
      }),
      { numRuns: RUNS },
    );
  });
});
