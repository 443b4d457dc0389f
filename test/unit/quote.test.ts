import { expect } from "chai";
import { execFileSync } from "child_process";
import fc from "fast-check";
import { commandLine, quote, shScript, systemdEscape, systemdQuote, udevQuote } from "../../provider/host/quote";

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

describe("systemd and udev quoting", () => {
  it("doubles systemd's specifier and variable signs", () => {
    expect(systemdEscape("echo $a 50% ${b}%n")).to.equal("echo $$a 50%% $${b}%%n");
    expect(systemdEscape("plain")).to.equal("plain");
  });

  it("quotes one ExecStart= argument: backslashes and quotes escaped, then specifiers", () => {
    expect(systemdQuote(`echo "$a" 50% \\n`)).to.equal(`"echo \\"$$a\\" 50%% \\\\n"`);
    expect(systemdQuote("")).to.equal('""');
  });

  // systemd's own unquoting: inside "…", \\ and \" stand for \ and ", and $$ / %% for $ / %.
  it("round-trips any string through systemd's unquoting rules (property)", () => {
    const unquote = (q: string) =>
      q
        .slice(1, -1)
        .replace(/\$\$|%%|\\(.)/g, (m, c) => (m === "$$" ? "$" : m === "%%" ? "%" : c));
    fc.assert(fc.property(fc.string(), (s) => unquote(systemdQuote(s)) === s));
  });

  it("double-quotes udev values and refuses what udev cannot quote", () => {
    expect(udevQuote("0000:01:00.0")).to.equal('"0000:01:00.0"');
    expect(udevQuote("7")).to.equal('"7"');
    for (const bad of ['a"b', "a\\b", "a\nb"]) expect(() => udevQuote(bad)).to.throw(/udev rule value/);
  });
});
