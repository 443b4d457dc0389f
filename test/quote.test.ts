import { expect } from "chai";
import { execFileSync } from "child_process";
import fc from "fast-check";
import { commandLine, quote, shScript } from "../provider/host/quote";

// Runs a command line in a real POSIX shell and returns its argv as seen by the program.
function argvSeenBy(line: string): string[] {
  const out = execFileSync("sh", ["-c", `${line}`], { encoding: "utf8" });
  return JSON.parse(out);
}

describe("shell quoting", () => {
  const printArgv = ["node", "-e", "process.stdout.write(JSON.stringify(process.argv.slice(1)))"];

  it("leaves plain words alone and quotes everything else", () => {
    expect(quote("eth0")).to.equal("eth0");
    expect(quote("0000:01:00.0")).to.equal("0000:01:00.0");
    expect(quote("")).to.equal("''");
    expect(quote("a b")).to.equal("'a b'");
    expect(quote("it's")).to.equal(`'it'"'"'s'`);
  });

  it("delivers awkward arguments unchanged through a real shell", () => {
    const nasty = ["$(touch /tmp/pwned)", "`id`", "a;b", "x\ny", "'\"", "*", "~root", "-n", "$HOME", "\\", "a&&b|c>d"];
    expect(argvSeenBy(commandLine([...printArgv, ...nasty]))).to.deep.equal(nasty);
  });

  it("never lets a random string execute (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary" }).map((s) => s.replace(/\0/g, "")), { maxLength: 5 }), (args) => {
        expect(argvSeenBy(commandLine([...printArgv, ...args]))).to.deep.equal(args);
      }),
      { numRuns: 60 },
    );
  });

  it("passes script arguments as positional parameters", () => {
    const out = execFileSync("sh", ["-c", commandLine(shScript('printf "%s|%s" "$1" "$2"', "a b", "$(id)"))], { encoding: "utf8" });
    expect(out).to.equal("a b|$(id)");
  });

  it("refuses an empty command", () => {
    expect(() => commandLine([])).to.throw(/empty/);
  });
});
