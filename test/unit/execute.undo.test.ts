// The shared executor's undo steps, on a local shell as host: what a later
// failure puts back, in which order, and how it is reported.
import { expect } from "chai";
import fs from "fs";
import os from "os";
import path from "path";
import { BACKUP_DIR, execute, failedBeforeAnyChange, keepingCopy, Operation, PartialApplyError, RemoteHost, restoreFromBackup } from "../../provider/host";
import { localTransport } from "../support/localShell";

describe("executor undo (local shell)", () => {
  let dir: string;
  const host = new RemoteHost(localTransport("root@local-undo:22"));
  const read = (p: string) => fs.readFileSync(p, "utf8");
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "exec-undo-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(BACKUP_DIR + dir, { recursive: true, force: true });
  });

  it("a later failure puts back written, created and removed files, newest first, then regenerations in plan order", async () => {
    const edited = path.join(dir, "edited");
    const created = path.join(dir, "created");
    const removed = path.join(dir, "removed");
    const derived = path.join(dir, "derived");
    const order = path.join(dir, "order");
    fs.writeFileSync(edited, "user's\n", { mode: 0o600 });
    fs.writeFileSync(removed, "keep me\n");
    fs.writeFileSync(derived, "derived from user's\n");
    const ops: Operation[] = [
      { kind: "write", path: edited, content: "ours\n", description: "write edited", undo: restoreFromBackup(edited, true) },
      { kind: "write", path: created, content: "new\n", description: "create created", undo: restoreFromBackup(created, false) },
      { kind: "remove", path: removed, description: "remove removed", undo: restoreFromBackup(removed, true) },
      {
        description: "regenerate derived",
        argv: keepingCopy(derived, ["sh", "-c", 'cat "$1" > "$2"', "sh", edited, derived]),
        undo: { ...restoreFromBackup(derived, true), on: "any", afterRestores: true },
      },
      {
        description: "refresh",
        argv: ["sh", "-c", 'cat "$1" >> "$2"', "sh", edited, order],
        undo: { description: `ran refresh again`, argv: ["sh", "-c", 'cat "$1" >> "$2"', "sh", edited, order], failed: "refresh again", on: "any", afterRestores: true },
      },
      { description: "check", argv: ["cat", derived], check: (r) => (r.stdout.includes("user") ? undefined : `check failed: derived says ${r.stdout.trim()}`) },
      { description: "never runs", argv: ["sh", "-c", 'echo ran > "$1"', "sh", path.join(dir, "never")] },
    ];
    let err: unknown;
    await execute(host, ops).catch((e) => (err = e));
    expect(err).to.be.instanceOf(PartialApplyError);
    const p = err as PartialApplyError;
    expect(p.cause.message).to.equal("root@local-undo:22: check failed: derived says ours");
    expect(p.undone!.done).to.deep.equal([`restored ${removed}`, `removed ${created}`, `restored ${edited}`, `restored ${derived}`, "ran refresh again"]);
    expect(p.undone!.failed).to.deep.equal([]);
    expect(p.applied).to.deep.equal(["write edited", "create created", "remove removed", "regenerate derived", "refresh", ...p.undone!.done]);
    expect(p.notApplied).to.deep.equal(["check", "never runs"]);
    // The host is as it was: contents, mode, the created file gone; the refresh ran again on the restored file.
    expect(read(edited)).to.equal("user's\n");
    expect(fs.statSync(edited).mode & 0o777).to.equal(0o600);
    expect(fs.existsSync(created)).to.equal(false);
    expect(read(removed)).to.equal("keep me\n");
    expect(read(derived)).to.equal("derived from user's\n");
    expect(read(order)).to.equal("ours\nuser's\n");
    expect(fs.existsSync(path.join(dir, "never"))).to.equal(false);
  });

  it("a failing step runs its own undo (on any) but not a later-only one; an undo that fails is reported", async () => {
    const file = path.join(dir, "file");
    fs.writeFileSync(file, "before\n");
    const ops: Operation[] = [
      { kind: "write", path: file, content: "after\n", description: "write file", undo: { ...restoreFromBackup(file, true), on: "failed" } },
      { description: "fails", argv: ["sh", "-c", "echo boom >&2; exit 4"], undo: { description: "undid fails", argv: ["sh", "-c", "echo no way >&2; exit 1"], failed: "undoing fails failed", on: "any" } },
    ];
    let err: unknown;
    await execute(host, ops).catch((e) => (err = e));
    const p = err as PartialApplyError;
    expect(p).to.be.instanceOf(PartialApplyError);
    expect(p.undone!.failed).to.deep.equal(["undoing fails failed: no way"]);
    expect(p.cause.message).to.contain("boom").and.to.contain("undoing fails failed: no way");
    expect(p.undone!.cause.message).to.not.contain("no way");
    // The write's undo is for its own failure only: it stays written.
    expect(read(file)).to.equal("after\n");
  });

  it("a first step that fails with nothing to undo throws the bare cause, marked as leaving the host unchanged", async () => {
    let err: unknown;
    await execute(host, [{ description: "fails", argv: ["sh", "-c", "exit 3"] }]).catch((e) => (err = e));
    expect(err).to.not.be.instanceOf(PartialApplyError);
    expect(failedBeforeAnyChange(err)).to.equal(true);
  });

  describe("steps that join into one command", () => {
    // A command that logs each run and its words, and refuses the word "bad".
    const prefix = (log: string) => ["sh", "-c", 'echo "$*" >> "$0"; for w; do [ "$w" != bad ] || { echo "bad refused" >&2; exit 3; }; done', log];
    const step = (log: string, word: string, more: Partial<Operation> = {}): Operation => ({
      description: `set ${word}`,
      argv: [...prefix(log), word],
      joins: { prefix: prefix(log), words: [word] },
      ...more,
    } as Operation);

    it("neighbours with the same prefix run as one command with all their words", async () => {
      const log = path.join(dir, "runs");
      await execute(host, [step(log, "a"), step(log, "b"), step(log, "c"), { description: "other", argv: ["true"] }, step(log, "d")]);
      expect(read(log).split("\n").filter(Boolean)).to.deep.equal(["a b c", "d"]);
    });

    it("a joined command that fails runs again step by step, so the failure names the refused step and what was applied", async () => {
      const log = path.join(dir, "runs");
      const after = path.join(dir, "after");
      let err: unknown;
      await execute(host, [step(log, "a"), step(log, "bad"), step(log, "c"), { description: "after", argv: ["touch", after] }]).catch((e) => (err = e));
      expect(read(log).split("\n").filter(Boolean)).to.deep.equal(["a bad c", "a", "bad"]);
      expect(err).to.be.instanceOf(PartialApplyError);
      const p = err as PartialApplyError;
      expect(p.applied).to.deep.equal(["set a"]);
      expect(p.notApplied).to.deep.equal(["set bad", "set c", "after"]);
      expect(p.message).to.include("bad refused");
      expect(fs.existsSync(after)).to.equal(false);
    });

    it("a step with an undo or a check is not joined", async () => {
      const log = path.join(dir, "runs");
      await execute(host, [step(log, "a"), step(log, "b", { check: () => undefined }), step(log, "c")]);
      expect(read(log).split("\n").filter(Boolean)).to.deep.equal(["a", "b", "c"]);
    });
  });

  describe("a read-back after the operations", () => {
    /** The local shell as host, counting round trips. */
    function counted() {
      const t = localTransport("root@local-readback:22");
      let trips = 0;
      const exec = t.exec;
      t.exec = (command, stdin) => {
        trips++;
        return exec(command, stdin);
      };
      return { host: new RemoteHost(t), trips: () => trips };
    }

    it("runs in the same round trip as the last operations and returns its result, exit code and all", async () => {
      const c = counted();
      const f = path.join(dir, "f");
      const r = await execute(c.host, [{ description: "write", argv: ["sh", "-c", 'echo x > "$0"', f] }], undefined, { readBack: ["sh", "-c", 'cat "$0"; exit 3', f] });
      expect(r).to.deep.include({ code: 3, stdout: "x\n" });
      expect(c.trips()).to.equal(1);
    });

    it("does not run when an operation fails", async () => {
      const c = counted();
      const marker = path.join(dir, "read");
      let err: unknown;
      await execute(c.host, [{ description: "fails", argv: ["false"] }], undefined, { readBack: ["touch", marker] }).catch((e) => (err = e));
      expect(err).to.be.instanceOf(Error);
      expect(fs.existsSync(marker)).to.equal(false);
    });
  });
});
