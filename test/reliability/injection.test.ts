// Reliability: injection. Random strings, mixed with shell metacharacters
// and payloads that would create a canary file if any shell executed them,
// go in as every free-text value that can reach a host:
//
// 1. through the real provider process's Check, with the connection on a
//    real sshd on loopback: each value is either refused, naming the
//    property, or accepted, and then planned on that host for real
//    (SriovPf, VfPoolNetwork and DomainVfInterface plan during check);
// 2. past check, straight into the code that reads hosts with such values
//    (the resources' probes and virsh commands) and into the host layer
//    (commands, batches, sh scripts with positional parameters, atomic file
//    writes), over SSH to the same sshd: every value arrives byte for byte
//    as one argument, file names and contents intact;
// 3. accepted kernel arguments rendered into the GRUB drop-in that
//    grub-mkconfig sources with /bin/sh.
//
// After each property, no canary exists: no value was ever executed.
import { expect } from "chai";
import { spawnSync } from "child_process";
import * as fc from "fast-check";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { connectionSchema } from "../../provider/connection";
import { BACKUP_DIR, closeAllConnections, hostFor, RemoteHost, shScript } from "../../provider/host";
import { readFacts as readDomainFacts } from "../../provider/resources/domainVfInterface/facts";
import { renderDropin } from "../../provider/resources/iommuKernelArgs/grub";
import { inputsSchema as iommuSchema } from "../../provider/resources/iommuKernelArgs/schema";
import { readFacts } from "../../provider/resources/sriovPf/apply";
import { readFacts as readPoolFacts } from "../../provider/resources/vfPoolNetwork/facts";
import { readFacts as readVfFacts } from "../../provider/resources/virtualFunction";
import { validate } from "../../provider/validate";
import { addSecret, figures, record, recordLogs } from "./figures";
import { canaries, CANARY_DIR, materialize, rawShellValue, rawValue, removeCanaryDir, resetCanaries, SHELL_META, SHELL_META_BUT_BRACKETS } from "./injection";
import { ProviderProcess, secret } from "../support/engine";
import { TestSshd } from "../support/sshd";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const RUNS = Number(process.env.INJECTION_RUNS ?? 60);

type Kind = "iommuKernelArgs" | "sriovPf" | "virtualFunction" | "vfPoolNetwork" | "domainVfInterface";

/** Every free-text input that can reach a host, with how to place a value in otherwise valid inputs. */
const FIELDS: { kind: Kind; property: string; props: (v: string) => Record<string, unknown> }[] = [
  { kind: "iommuKernelArgs", property: "extraArgs[0]", props: (v) => ({ iommu: "intel", extraArgs: [v] }) },
  { kind: "sriovPf", property: "interface", props: (v) => ({ interface: v, numVfs: 1 }) },
  { kind: "sriovPf", property: "pciAddress", props: (v) => ({ pciAddress: v, numVfs: 1 }) },
  { kind: "sriovPf", property: "macAddress", props: (v) => ({ macAddress: v, numVfs: 1 }) },
  { kind: "virtualFunction", property: "pf", props: (v) => ({ pf: v, index: 0 }) },
  { kind: "virtualFunction", property: "mac", props: (v) => ({ pf: "enp1s0", index: 0, mac: v }) },
  { kind: "vfPoolNetwork", property: "name", props: (v) => ({ name: v, pf: "enp1s0" }) },
  { kind: "vfPoolNetwork", property: "pf", props: (v) => ({ name: "pool0", pf: v }) },
  { kind: "vfPoolNetwork", property: "vfs[0]", props: (v) => ({ name: "pool0", vfs: [v] }) },
  { kind: "vfPoolNetwork", property: "libvirtUri", props: (v) => ({ name: "pool0", pf: "enp1s0", libvirtUri: v }) },
  { kind: "domainVfInterface", property: "domain", props: (v) => ({ domain: v, source: { network: "pool0" } }) },
  { kind: "domainVfInterface", property: "source.network", props: (v) => ({ domain: "vm1", source: { network: v } }) },
  { kind: "domainVfInterface", property: "source.pciAddress", props: (v) => ({ domain: "vm1", source: { pciAddress: v } }) },
  { kind: "domainVfInterface", property: "mac", props: (v) => ({ domain: "vm1", source: { network: "pool0" }, mac: v }) },
  { kind: "domainVfInterface", property: "virtualport.profileId", props: (v) => ({ domain: "vm1", source: { network: "pool0" }, virtualport: { type: "802.1Qbh", profileId: v } }) },
  { kind: "domainVfInterface", property: "libvirtUri", props: (v) => ({ domain: "vm1", source: { network: "pool0" }, libvirtUri: v }) },
];

function assertNoCanary(what: string): void {
  const found = canaries();
  figures.injectionExecuted += found.length;
  expect(found, `${what}: values were executed by a shell (canaries in ${CANARY_DIR})`).to.deep.equal([]);
}

describe("reliability: injection — no free-text value is ever executed on a host", function () {
  this.timeout(20 * 60_000);
  let sshd: TestSshd;
  let conn: Record<string, unknown>;
  let host: RemoteHost;
  let tmp: string;

  before(async function () {
    sshd = await TestSshd.start();
    addSecret("root private key", sshd.users.root.privateKey);
    conn = { host: sshd.host, port: sshd.port, user: "root", privateKey: sshd.users.root.privateKey, hostKey: sshd.hostKey };
    host = hostFor(connectionSchema().parse(conn) as any);
    resetCanaries();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "sriov-inject-files-"));
  });

  afterEach(function () {
    // Whatever the test, a canary means a value was executed.
    assertNoCanary(this.currentTest?.title ?? "");
  });

  after(async () => {
    await closeAllConnections();
    await sshd?.stop();
    removeCanaryDir();
    if (tmp) {
      fs.rmSync(tmp, { recursive: true, force: true });
      // writeFile/removeFile kept the previous contents on this (test) host.
      fs.rmSync(path.join(BACKUP_DIR, tmp), { recursive: true, force: true });
    }
  });

  describe("1. through the provider process's check: refused by name, or planned on the host with the value quoted", () => {
    let proc: ProviderProcess;
    before(async () => {
      proc = await ProviderProcess.start({ env: { SSH_AUTH_SOCK: "" } });
    });
    after(async () => {
      if (proc) recordLogs("injection provider process", proc.logs);
      await proc?.stop();
    });

    for (const f of FIELDS) {
      it(`${f.kind}.${f.property}`, async () => {
        let accepted = 0;
        await fc.assert(
          fc.asyncProperty(rawValue, async (raw) => {
            const v = materialize(raw, `${f.kind}.${f.property}`);
            figures.injectionValues++;
            const r = await proc.check(providers[f.kind], "inject", {}, { ...f.props(v), connection: secret(conn) });
            if (r.failures.length) {
              figures.injectionRejected++;
              expect(r.failures.map((x) => x.property), JSON.stringify(v)).to.include(f.property);
              return;
            }
            accepted++;
            // Accepted values never carry shell syntax (the schemas are allow-lists)…
            expect(v, `accepted ${JSON.stringify(v)}`).to.not.match(SHELL_META);
            // …and those that plan were sent to the host: hostChanges is the host's answer.
            if (f.kind === "sriovPf" || f.kind === "virtualFunction" || f.kind === "vfPoolNetwork" || f.kind === "domainVfInterface") {
              expect(r.inputs.hostChanges).to.be.an("array");
              figures.injectionSentToHost++;
            }
            expect(canaries(), `after ${JSON.stringify(v)}`).to.deep.equal([]);
          }),
          { numRuns: RUNS },
        );
        record(`injection ${f.kind}.${f.property}`, `accepted ${accepted} of ${RUNS}`);
      });
    }

    it("connection.host and connection.user: only names, never shell text (checked without dialling)", () => {
      for (const field of ["host", "user"]) {
        fc.assert(
          fc.property(rawValue, (raw) => {
            const v = materialize(raw, `connection.${field}`);
            figures.injectionValues++;
            const r = validate(connectionSchema(), { ...conn, [field]: v });
            if (r.failures.length) {
              figures.injectionRejected++;
              expect(r.failures.map((x) => x.property)).to.include(field);
            } else {
              // A user name may end in $ (machine accounts, as useradd allows); it only ever goes into the SSH handshake.
              expect(field === "user" ? v.replace(/\$$/, "") : v).to.not.match(SHELL_META_BUT_BRACKETS);
            }
          }),
          { numRuns: RUNS * 4 },
        );
      }
    });
  });

  describe("2. past check: the resources' host reads and the host layer pass any value as one argument", () => {
    it("SriovPf's PCI scan with any interface name, PCI address or MAC", async () => {
      await fc.assert(
        fc.asyncProperty(rawShellValue, fc.constantFrom("interface", "pciAddress", "macAddress") as fc.Arbitrary<"interface">, async (raw, kind) => {
          const v = materialize(raw, `sriovPf-scan-${kind}`);
          figures.injectionValues++;
          figures.injectionSentToHost++;
          const facts = await readFacts(host, kind, v, v).catch((e: Error) => e);
          if (facts instanceof Error) record("sriovPf scan error", facts.message);
          expect(canaries(), JSON.stringify(v)).to.deep.equal([]);
        }),
        { numRuns: RUNS },
      );
    });

    it("VirtualFunction's probe with any PF name and stored PF address", async () => {
      await fc.assert(
        fc.asyncProperty(rawShellValue, rawShellValue, fc.nat(7), async (a, b, index) => {
          const pf = materialize(a, "vf-probe-pf");
          const pci = materialize(b, "vf-probe-pci");
          figures.injectionValues += 2;
          figures.injectionSentToHost += 2;
          const facts = await readVfFacts(host, pf, pci, index).catch((e: Error) => e);
          if (facts instanceof Error) record("vf probe error", facts.message);
          expect(canaries(), JSON.stringify([pf, pci])).to.deep.equal([]);
        }),
        { numRuns: RUNS },
      );
    });

    it("VfPoolNetwork's and DomainVfInterface's virsh reads with any URI, network, domain, PF and VF list", async () => {
      await fc.assert(
        fc.asyncProperty(rawShellValue, rawShellValue, rawShellValue, fc.array(rawShellValue, { maxLength: 3 }), async (u, n, d, vfs) => {
          const uri = materialize(u, "virsh-uri");
          const name = materialize(n, "virsh-name");
          const dom = materialize(d, "virsh-domain");
          const list = vfs.map((x) => materialize(x, "virsh-vf"));
          figures.injectionValues += 3 + list.length;
          figures.injectionSentToHost += 3 + list.length;
          for (const read of [
            () => readPoolFacts(host, { name, libvirtUri: uri, pf: dom }),
            () => readPoolFacts(host, { name, libvirtUri: uri, vfs: list.length ? list : [dom] }),
            () => readDomainFacts(host, uri, dom, name),
          ])
            await read().then(
              () => undefined,
              (e: Error) => record("virsh read error", e.message),
            );
          expect(canaries(), JSON.stringify([uri, name, dom, list])).to.deep.equal([]);
        }),
        { numRuns: RUNS },
      );
    });

    it("host.run, host.batch and shScript deliver every value byte for byte as one argument", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(rawShellValue, { minLength: 1, maxLength: 4 }), async (raws) => {
          const vs = raws.map((r) => materialize(r, "host-run"));
          figures.injectionValues += vs.length;
          figures.injectionSentToHost += vs.length;
          // printf '%s\0' prints each argument it received, NUL-terminated.
          const one = await host.run(["printf", "%s\\0", ...vs]);
          expect(one.stdout.split("\0").slice(0, -1)).to.deep.equal(vs);
          const batch = await host.batch([["printf", "%s\\0", ...vs], shScript('printf "%s\\0" "$@"', ...vs), ["printf", "%s", vs[0]]]);
          expect(batch.map((b) => b.code)).to.deep.equal([0, 0, 0]);
          expect(batch[0].stdout.split("\0").slice(0, -1)).to.deep.equal(vs);
          expect(batch[1].stdout.split("\0").slice(0, -1)).to.deep.equal(vs);
          expect(batch[2].stdout).to.equal(vs[0]);
          expect(canaries(), JSON.stringify(vs)).to.deep.equal([]);
        }),
        { numRuns: RUNS },
      );
    });

    it("host.writeFile / readFiles / removeFile: any file name and content, written atomically and read back intact", async () => {
      await fc.assert(
        fc.asyncProperty(rawShellValue, rawShellValue, async (n, c) => {
          // A file name is one path component: no '/', at most 200 bytes, not . or ..
          let name = materialize(n.replace(/\//g, "_"), "file-name", { bare: true });
          while (Buffer.byteLength(name) > 200) name = name.slice(0, -1);
          if (name === "" || name === "." || name === "..") name += "_x";
          if (name.startsWith("-")) name = "_" + name; // still passed after --, but keep ls output simple
          const content = materialize(c, "file-content");
          figures.injectionValues += 2;
          figures.injectionSentToHost += 2;
          const p = path.join(tmp, name);
          await host.writeFile(p, content);
          expect(fs.readFileSync(p, "utf8")).to.equal(content);
          expect((await host.readFiles([p]))[p]).to.equal(content);
          await host.writeFile(p, content + "!");
          expect(fs.readFileSync(p, "utf8")).to.equal(content + "!");
          await host.removeFile(p);
          expect(fs.existsSync(p)).to.equal(false);
          // Nothing else appeared beside it (no stray temp files).
          expect(fs.readdirSync(tmp)).to.deep.equal([]);
          expect(canaries(), JSON.stringify([name, content])).to.deep.equal([]);
        }),
        { numRuns: RUNS },
      );
    });
  });

  describe("3. accepted kernel arguments, sourced by /bin/sh as grub-mkconfig sources the drop-in", () => {
    it("every accepted argument is one literal word of GRUB_CMDLINE_LINUX", () => {
      let accepted = 0;
      const file = path.join(tmp, "dropin.cfg");
      fc.assert(
        fc.property(fc.array(rawValue, { minLength: 1, maxLength: 3 }), (raws) => {
          const args = raws.map((r) => materialize(r, "kernel-arg"));
          figures.injectionValues += args.length;
          const r = validate(iommuSchema(), { iommu: "intel", extraArgs: args });
          if (r.failures.length) {
            figures.injectionRejected += new Set(r.failures.map((x) => x.property)).size;
            for (const x of r.failures) expect(x.property).to.match(/^extraArgs(\[\d+\])?$/);
            return;
          }
          accepted++;
          const wanted = ["intel_iommu=on", "iommu=pt", ...args];
          fs.writeFileSync(file, renderDropin(wanted));
          const sh = spawnSync("/bin/sh", ["-c", '. "$1"; printf "%s" "$GRUB_CMDLINE_LINUX"', "sh", file], {
            encoding: "utf8",
            env: { PATH: "/usr/bin:/bin", GRUB_CMDLINE_LINUX: "console=ttyS0" },
          });
          expect(sh.status, sh.stderr).to.equal(0);
          expect(sh.stdout.split(" ")).to.deep.equal(["console=ttyS0", ...wanted]);
          expect(canaries()).to.deep.equal([]);
        }),
        { numRuns: RUNS * 4 },
      );
      fs.rmSync(file, { force: true });
      record("injection kernel args", `accepted ${accepted}`);
    });
  });
});
