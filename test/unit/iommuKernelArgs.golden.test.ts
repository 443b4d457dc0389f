// Golden tests of IommuKernelArgs's plans on recorded host files, one case
// per folder in test/fixtures/iommuKernelArgs/ (files/ is the host's file
// tree, case.json the inputs and facts, expected.txt the rendered plan).
// Every case also runs the plan on an in-memory host and checks: the
// verification steps pass; a second `up` plans nothing; an update then a
// delete put every file back byte for byte; a second delete plans nothing.
// Regenerate the expected files with UPDATE_GOLDEN=1.
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { argKey, hasEffect, sameArg, splitCmdline } from "../../provider/resources/iommuKernelArgs/cmdline";
import { detect, Detection } from "../../provider/resources/iommuKernelArgs/detect";
import { Facts, KERNEL_CMDLINE, LIB_KERNEL_CMDLINE, parseFiles, PROXMOX_BOOT_UUIDS } from "../../provider/resources/iommuKernelArgs/facts";
import { firstEntryArgs, GRUB_MAIN, grubCmdline } from "../../provider/resources/iommuKernelArgs/grub";
import { KernelEntry, parseGrubbyInfo } from "../../provider/resources/iommuKernelArgs/grubby";
import { configuredNow, Op, plan, Plan, refuseIfPlanError, verifyProblem } from "../../provider/resources/iommuKernelArgs/plan";
import { emptyRestore, Restore } from "../../provider/resources/iommuKernelArgs/restore";
import { desiredArgs, Inputs } from "../../provider/resources/iommuKernelArgs/schema";

const DIR = path.join(__dirname, "..", "fixtures", "iommuKernelArgs");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

interface Case {
  description: string;
  inputs: Pick<Inputs, "iommu" | "passthrough" | "extraArgs">;
  bootloader?: Inputs["bootloader"];
  facts: Partial<Facts> & { grubbyInfo?: string };
  error?: string;
}

function readTree(root: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else out["/" + path.relative(root, p).split(path.sep).join("/")] = fs.readFileSync(p);
    }
  };
  walk(root);
  return out;
}

/** The files the resource reads, framed as the host probe prints them. */
function probeFiles(tree: Record<string, Buffer>): string {
  const wanted = (p: string) => p === GRUB_MAIN || (p.startsWith("/etc/default/grub.d/") && p.endsWith(".cfg")) || [KERNEL_CMDLINE, LIB_KERNEL_CMDLINE, PROXMOX_BOOT_UUIDS].includes(p);
  return Object.keys(tree)
    .filter(wanted)
    .sort()
    .map((p) => `${p}\t${tree[p].toString("base64")}\n`)
    .join("");
}

function baseFacts(): Facts {
  return {
    hostname: "hv1",
    cmdline: "BOOT_IMAGE=/boot/vmlinuz root=/dev/sda1 ro",
    bootId: "b0",
    cpuVendor: "intel",
    cpuVendorRaw: "GenuineIntel",
    osPrettyName: "Debian GNU/Linux 12 (bookworm)",
    efi: false,
    loaderInfo: "",
    tools: { "update-grub": "/usr/sbin/update-grub", "grub-mkconfig": "/usr/sbin/grub-mkconfig", "grub-script-check": "/usr/bin/grub-script-check" },
    files: {},
    binaryFiles: [],
    grubReadsDropins: true,
    grubCfgs: [{ path: "/boot/grub/grub.cfg", generated: true, bls: false }],
    blsEntries: 0,
    grubby: [],
    proxmoxStatus: "",
    kernels: [],
    bootPath: "",
    iommuClassDevices: [],
    iommuGroups: [],
    acpiTables: ["DMAR"],
    kernelLog: [],
    lspciBridges: "",
  };
}

/** A host in memory: files, grubby entries, and what regeneration would write. */
class FakeHost {
  files: Record<string, string>;
  grubby: KernelEntry[];
  outputs: Record<string, string> = {};
  constructor(readonly facts: Facts, readonly det: Detection) {
    this.files = { ...facts.files };
    this.grubby = facts.grubby.map((k) => ({ kernel: k.kernel, args: [...k.args] }));
  }

  currentFacts(): Facts {
    return { ...this.facts, files: { ...this.files }, grubby: this.grubby.map((k) => ({ kernel: k.kernel, args: [...k.args] })) };
  }

  private regenerate(argv: string[]): void {
    if (this.det.mode === "grub" && argv[0].includes("grub")) {
      const args = grubCmdline({ files: this.files, readsDropins: this.facts.grubReadsDropins });
      this.outputs[this.det.grubCfg!] = `menuentry 'Linux' {\n\tlinux\t/boot/vmlinuz root=UUID=0000 ro ${args.join(" ")}\n}\n`;
    } else if (argv[0].endsWith("grubby")) {
      const k = this.grubby.find((e) => `--update-kernel=${e.kernel}` === argv[1]);
      if (!k) throw new Error(`grubby: no entry for ${argv[1]}`);
      // grubby-bls's update_args: removals (exact, or every value of a bare key), then each
      // added argument's key is dropped everywhere and the added arguments appended.
      const flag = (f: string) => splitCmdline(argv.find((a) => a.startsWith(f + "="))?.slice(f.length + 1) ?? "");
      for (const r of flag("--remove-args")) k.args = k.args.filter((x) => (r.includes("=") ? !sameArg(x, r) : argKey(x) !== argKey(r)));
      const add = flag("--args");
      for (const a of add) k.args = k.args.filter((x) => argKey(x) !== argKey(a));
      k.args.push(...add);
    } else {
      const cmdline = this.files[KERNEL_CMDLINE] ?? "";
      for (const k of this.facts.kernels) this.outputs[`${this.facts.bootPath}/loader/entries/4c4c-${k.version}.conf`] = `options ${cmdline.trim()}`;
    }
  }

  run(ops: readonly Op[]): void {
    for (const op of ops) {
      if (op.kind === "write") {
        expect(this.files[op.path] ?? null, `previous content of ${op.path}`).to.equal(op.previous);
        this.files[op.path] = op.content;
      } else if (op.kind === "remove") {
        expect(this.files[op.path], `previous content of ${op.path}`).to.equal(op.previous);
        delete this.files[op.path];
      } else if (op.kind === "run") {
        if (!/script-check/.test(op.argv[0])) this.regenerate(op.argv);
      } else {
        const problems: string[] = [];
        if (op.check === "grubCfg") problems.push(verifyProblem(op, firstEntryArgs(this.outputs[op.path!]) ?? [], op.path!) ?? "");
        if (op.check === "grubby") for (const k of this.grubby) problems.push(verifyProblem(op, k.args, k.kernel) ?? "");
        if (op.check === "loaderEntries")
          for (const [p, t] of Object.entries(this.outputs)) if (p.startsWith(op.path!)) problems.push(verifyProblem(op, splitCmdline(t.replace(/^options /, "")), p) ?? "");
        expect(problems.filter(Boolean), op.description).to.deep.equal([]);
      }
    }
  }
}

// ---- rendering -------------------------------------------------------------

/** Changed lines with one line of context (line-level LCS). */
function diff(a: string, b: string): string[] {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const L: number[][] = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const rows: { t: " " | "-" | "+"; s: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) rows.push({ t: " ", s: x[i++] }), j++;
    else if (i < n && (j >= m || L[i + 1][j] >= L[i][j + 1])) rows.push({ t: "-", s: x[i++] });
    else rows.push({ t: "+", s: y[j++] });
  }
  const keep = rows.map((_, k) => rows.slice(Math.max(0, k - 1), k + 2).some((q) => q.t !== " "));
  const out: string[] = [];
  rows.forEach((r, k) => {
    if (keep[k]) out.push(`${r.t} ${r.s}`);
    else if (keep[k - 1]) out.push("  …");
  });
  return out;
}

function renderOps(ops: readonly Op[]): string[] {
  const out: string[] = [];
  ops.forEach((op, k) => {
    out.push(`${k + 1}. ${op.description}`);
    if (op.kind === "write") out.push(...(op.previous === null ? op.content.split("\n").map((l) => `+ ${l}`) : diff(op.previous, op.content)).map((l) => `     ${l}`));
    if (op.kind === "run") out.push(`     $ ${op.argv.join(" ")}${op.rollback ? `   (on failure: ${op.rollback === "rerun" ? "run again" : op.rollback.join(" ")})` : ""}`);
  });
  return out;
}

function render(c: Case, det: Detection, wanted: string[], created: Plan, removed: Plan): string {
  return [
    `# ${c.description}`,
    `bootloader: ${det.bootloader} (${det.mode})`,
    "evidence:",
    ...det.evidence.map((e) => `  - ${e}`),
    `args: ${wanted.join(" ")}`,
    `configPath: ${created.configPath}`,
    `default entry: ${created.configured.join(" ")}`,
    `restore: ${JSON.stringify(created.restore)}`,
    "",
    "create:",
    ...renderOps(created.ops),
    "",
    "delete:",
    ...renderOps(removed.ops),
    "",
  ].join("\n");
}

// ---- the cases -------------------------------------------------------------

describe("IommuKernelArgs golden plans", () => {
  for (const name of fs.readdirSync(DIR).sort()) {
    const dir = path.join(DIR, name);
    if (!fs.existsSync(path.join(dir, "case.json"))) continue;
    const c: Case = JSON.parse(fs.readFileSync(path.join(dir, "case.json"), "utf8"));

    it(`${name}: ${c.description}`, () => {
      const tree = readTree(path.join(dir, "files"));
      const { grubbyInfo, ...overrides } = c.facts;
      const parsed = parseFiles(probeFiles(tree));
      const facts: Facts = { ...baseFacts(), ...overrides, files: parsed.files, binaryFiles: parsed.binary, grubby: parseGrubbyInfo(grubbyInfo ?? "") };
      const run = () => {
        const det = detect(facts, c.bootloader ?? "auto", "root@hv1:22");
        const wanted = desiredArgs(c.inputs, facts.cpuVendor);
        const p = plan(facts, det, wanted, emptyRestore(), []);
        refuseIfPlanError(p, "root@hv1:22");
        return { det, wanted, p };
      };
      if (c.error) {
        expect(run).to.throw(c.error);
        return;
      }
      const { det, wanted, p } = run();

      // Apply on an in-memory host; the plan's checks pass.
      const host = new FakeHost(facts, det);
      host.run(p.ops);
      expect(configuredNow(host.currentFacts(), det).filter((a) => wanted.some((w) => sameArg(w, a)))).to.have.members(wanted);
      for (const w of wanted) expect(hasEffect(p.configured, w), `${w} in ${p.configured.join(" ")}`).to.equal(true);

      // A second `up` with the same inputs plans nothing; nor does a plan without
      // the state's record (preview, or create on a host already configured).
      expect(plan(host.currentFacts(), det, wanted, p.restore, wanted).ops.map((o) => o.description)).to.deep.equal([]);
      expect(plan(host.currentFacts(), det, wanted, emptyRestore(), []).ops.map((o) => o.description), "without a record").to.deep.equal([]);

      // An update (fewer arguments) from there, then delete: the original files, byte for byte.
      const fewer = desiredArgs({ ...c.inputs, passthrough: !c.inputs.passthrough, extraArgs: [] }, facts.cpuVendor);
      const upd = plan(host.currentFacts(), det, fewer, p.restore, wanted);
      host.run(upd.ops);
      const del = plan(host.currentFacts(), det, [], upd.restore, fewer);
      host.run(del.ops);
      expect(host.files, "files after update + delete").to.deep.equal(facts.files);
      expect(host.grubby, "boot entries after update + delete").to.deep.equal(facts.grubby);
      expect(plan(host.currentFacts(), det, [], emptyRestore(), fewer).ops.map((o) => o.description), "a second delete").to.deep.equal(
        // Without a record only our own drop-in could still be removed, and it is gone.
        [],
      );

      // Delete straight after create, rendered for review.
      const fresh = new FakeHost(facts, det);
      fresh.run(p.ops);
      const removed = plan(fresh.currentFacts(), det, [], p.restore as Restore, wanted);
      fresh.run(removed.ops);
      expect(fresh.files, "files after delete").to.deep.equal(facts.files);

      const text = render(c, det, wanted, p, removed);
      const golden = path.join(dir, "expected.txt");
      if (UPDATE) fs.writeFileSync(golden, text);
      expect(fs.existsSync(golden), `${golden} is missing; run with UPDATE_GOLDEN=1 and review it`).to.equal(true);
      expect(text).to.equal(fs.readFileSync(golden, "utf8"));
    });
  }
});
