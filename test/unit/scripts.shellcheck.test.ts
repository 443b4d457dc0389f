import { expect } from "chai";
import { spawnSync } from "child_process";
import fs from "fs";
import os from "os";
import path from "path";
import { SCRIPTS_DIR } from "../../provider/scripts";
import { parseUsageOutput, USAGE_SCRIPT } from "../../provider/resources/sriovPf/usage";

const ROOT = path.resolve(__dirname, "..", "..");
const shipped = fs.readdirSync(SCRIPTS_DIR).filter((f) => f.endsWith(".sh"));

// Runs shellcheck; a missing shellcheck fails the test (installed by lab/system-deps.sh).
function shellcheck(args: string[]): { status: number | null; output: string } {
  const r = spawnSync("shellcheck", args, { encoding: "utf8" });
  if (r.error) throw new Error(`shellcheck could not run (${r.error.message}); install it with: sudo bash lab/system-deps.sh`);
  return { status: r.status, output: r.stdout + r.stderr };
}

describe("shell scripts", () => {
  it("ships the host-side programs", () => {
    expect(shipped).to.include.members([
      "sriov-pf-facts.sh",
      "sriov-pf-usage.sh",
      "virtual-function-facts.sh",
      "iommu-kernel-args-facts.sh",
      "iommu-kernel-args-entries.sh",
      "keep-file.sh",
      "restore-file.sh",
      "reboot-soon.sh",
      "start-unit.sh",
    ]);
  });

  // The host runs them with `sh`, which may be dash or busybox: POSIX only.
  for (const name of shipped)
    it(`provider/scripts/${name} passes shellcheck -s sh`, () => {
      const r = shellcheck(["-s", "sh", path.join(SCRIPTS_DIR, name)]);
      expect(r.status, r.output).to.equal(0);
    });

  // The bash scripts the tests and the lab run (their shebang names the shell).
  for (const rel of ["lab/system-deps.sh", "lab/tools/build.sh"])
    it(`${rel} passes shellcheck`, () => {
      const r = shellcheck([path.join(ROOT, rel)]);
      expect(r.status, r.output).to.equal(0);
    });

  describe("sriov-pf-usage.sh, run locally with a fake virsh", () => {
    let bin: string;
    const run = (virsh: string) => {
      fs.writeFileSync(path.join(bin, "virsh"), `#!/bin/sh\n${virsh}\n`, { mode: 0o755 });
      const r = spawnSync("/bin/sh", ["-c", USAGE_SCRIPT, "sh", "qemu:///system"], {
        encoding: "utf8",
        env: { PATH: `${bin}:/usr/bin:/bin` },
      });
      expect(r.status, r.stderr).to.equal(0);
      return parseUsageOutput(r.stdout);
    };
    before(() => {
      bin = fs.mkdtempSync(path.join(os.tmpdir(), "usage-bin-"));
    });
    after(() => fs.rmSync(bin, { recursive: true, force: true }));

    it("lists running domains and active networks with their XML", () => {
      const objs = run(
        [
          '[ "$2" = qemu:///system ] || exit 3',
          'case "$3" in',
          '  list) printf "vm 1\\nvm2\\n\\n" ;;',
          "  dumpxml) echo \"<domain><name>$5</name></domain>\" ;;",
          '  net-list) printf "pool\\n" ;;',
          "  net-dumpxml) echo \"<network><name>$5</name></network>\" ;;",
          "esac",
        ].join("\n"),
      );
      expect(objs).to.deep.equal({
        domains: { "vm 1": "<domain><name>vm 1</name></domain>\n", vm2: "<domain><name>vm2</name></domain>\n" },
        networks: { pool: "<network><name>pool</name></network>\n" },
      });
    });

    it("reports virsh's complaint when it cannot list", () => {
      const objs = run('echo "error: failed to connect to the hypervisor" >&2; exit 1');
      expect(objs.error).to.equal("error: failed to connect to the hypervisor");
      expect(objs.domains).to.deep.equal({});
    });
  });
});
