// Unit tests of IommuKernelArgs: input checks through the shared lifecycle,
// the argument model, the shell-file reader, detection, facts parsing,
// health warnings, drift, and the executor's rollback (on a local shell).
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BACKUP_DIR, RemoteHost } from "../../provider/host/host";
import { localShell, localTransport } from "../support/localShell";
import { commandLine } from "../../provider/host/quote";
import { lifecycle } from "../../provider/resource";
import { UNKNOWN } from "../../provider/validate";
import { spec, execute, observedInputs } from "../../provider/resources/iommuKernelArgs";
import { argKey, hasEffect, missingArgs, splitCmdline } from "../../provider/resources/iommuKernelArgs/cmdline";
import { detect } from "../../provider/resources/iommuKernelArgs/detect";
import { Facts, factsArgv, parseFacts, parseProbeOutput, PROBES } from "../../provider/resources/iommuKernelArgs/facts";
import { firstEntryArgs } from "../../provider/resources/iommuKernelArgs/grub";
import { parseGrubbyInfo } from "../../provider/resources/iommuKernelArgs/grubby";
import { acsWarnings, groupWarnings, health, parseRootPorts } from "../../provider/resources/iommuKernelArgs/health";
import { Op, plan, rebootRequired } from "../../provider/resources/iommuKernelArgs/plan";
import { emptyRestore } from "../../provider/resources/iommuKernelArgs/restore";
import { parseShellFile, wordTokens } from "../../provider/resources/iommuKernelArgs/shellvars";
import { desiredArgs } from "../../provider/resources/iommuKernelArgs/schema";

const KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const connection = { host: "hv1.example", privateKey: KEY, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ" };

describe("IommuKernelArgs inputs", () => {
  // Without the preview hook: these checks never reach a host.
  const p = lifecycle({ ...spec, plan: undefined });

  it("applies the documented defaults", async () => {
    const r = await p.check({}, { connection });
    expect(r.failures).to.deep.equal([]);
    const { connection: _c, ...inputs } = r.inputs;
    expect(inputs).to.deep.equal({ iommu: "auto", passthrough: true, extraArgs: [], bootloader: "auto", reboot: "never", rebootTimeoutSeconds: 600 });
  });

  it("reports every bad property at once, each by name", async () => {
    const r = await p.check(
      {},
      {
        connection,
        iommu: "arm",
        extraArgs: ["ok=1", "two words", "root=/dev/sda1", "x;reboot", 'q="a"'],
        bootloader: "lilo",
        reboot: "always",
        rebootTimeoutSeconds: 5,
        colour: "blue",
      },
    );
    const props = r.failures.map((f) => f.property);
    expect(props).to.include.members(["iommu", "extraArgs[1]", "extraArgs[2]", "extraArgs[3]", "extraArgs[4]", "bootloader", "reboot", "rebootTimeoutSeconds"]);
    expect(props).to.not.include("extraArgs[0]");
    expect(r.failures.find((f) => f.property === "extraArgs[2]")!.reason).to.match(/makes the host boot/);
    expect(r.failures.some((f) => /colour/.test(f.property + f.reason))).to.equal(true);
  });

  it("refuses keys set twice, naming which input already sets them", async () => {
    const r = await p.check({}, { connection, extraArgs: ["iommu=soft", "intel_iommu=on", "hugepages=1", "hugepages=2", "pci=realloc", "pci=assign-busses"] });
    const by = Object.fromEntries(r.failures.map((f) => [f.property, f.reason]));
    expect(by["extraArgs[0]"]).to.match(/passthrough.*set passthrough: false/);
    expect(by["extraArgs[1]"]).to.match(/iommu \(auto\).*iommu: "none"/);
    expect(by["extraArgs[3]"]).to.match(/sets hugepages again/);
    expect(Object.keys(by)).to.have.members(["extraArgs[0]", "extraArgs[1]", "extraArgs[3]"]);
    const ok = await p.check({}, { connection, iommu: "none", passthrough: false, extraArgs: ["iommu=pt", "intel_iommu=on,sm_on"] });
    expect(ok.failures).to.deep.equal([]);
  });

  it("lets unknown preview values through", async () => {
    const r = await p.check({}, { connection, iommu: UNKNOWN, extraArgs: [UNKNOWN, "hugepages=16"], rebootTimeoutSeconds: UNKNOWN });
    expect(r.failures).to.deep.equal([]);
  });

  it("replaces on a bootloader change only; the rest updates in place", async () => {
    const olds = { applied: { iommu: "auto", passthrough: true, extraArgs: [], bootloader: "auto", reboot: "never", rebootTimeoutSeconds: 600 }, connection };
    const d1 = await p.diff("id", olds, { ...olds.applied, connection, bootloader: "grub" });
    expect(d1).to.include({ changes: true, deleteBeforeReplace: true });
    expect(d1.replaces).to.deep.equal(["bootloader"]);
    const d2 = await p.diff("id", olds, { ...olds.applied, connection, reboot: "ifNeeded", extraArgs: ["hugepages=16"] });
    expect(d2).to.deep.include({ changes: true, replaces: [] });
    const d3 = await p.diff("id", olds, { ...olds.applied, connection });
    expect(d3.changes).to.equal(false);
  });

  it("asks for the vendor argument from the CPU, then passthrough, then extra arguments", () => {
    expect(desiredArgs({ iommu: "auto", passthrough: true, extraArgs: ["hugepages=16"] }, "amd")).to.deep.equal(["amd_iommu=on", "iommu=pt", "hugepages=16"]);
    expect(desiredArgs({ iommu: "none", passthrough: false, extraArgs: [] }, undefined)).to.deep.equal([]);
    expect(() => desiredArgs({ iommu: "auto", passthrough: true, extraArgs: [] }, undefined)).to.throw(/CPU vendor/);
  });
});

describe("IommuKernelArgs argument model", () => {
  it("compares keys as the kernel does (dashes are underscores)", () => {
    expect(argKey("vfio-pci.ids=8086:10ca")).to.equal("vfio_pci.ids");
    expect(argKey('"foo=a b"')).to.equal("foo");
    expect(hasEffect(["vfio_pci.ids=1:2"], "vfio-pci.ids=1:2")).to.equal(true);
  });

  it("takes the last value of a single-valued key, any value of a multi-valued one", () => {
    expect(hasEffect(["intel_iommu=on", "intel_iommu=off"], "intel_iommu=on")).to.equal(false);
    expect(hasEffect(["intel_iommu=off", "intel_iommu=on"], "intel_iommu=on")).to.equal(true);
    expect(hasEffect(["pci=realloc", "pci=noaer"], "pci=realloc")).to.equal(true);
    expect(missingArgs(["iommu=pt"], ["iommu=pt", "hugepages=16"])).to.deep.equal(["hugepages=16"]);
  });

  it("splits like the kernel (quoted values stay one argument)", () => {
    expect(splitCmdline(' a  b="c d"\te\n')).to.deep.equal(["a", 'b="c d"', "e"]);
  });

  it("reboot is required while the running kernel lacks an argument's effect", () => {
    expect(rebootRequired("BOOT_IMAGE=/vmlinuz ro intel_iommu=on iommu=pt", ["intel_iommu=on", "iommu=pt"])).to.equal(false);
    expect(rebootRequired("ro intel_iommu=on iommu=pt intel_iommu=off", ["intel_iommu=on"])).to.equal(true);
  });
});

describe("IommuKernelArgs shell-file reader", () => {
  it("finds assignments only where the shell would make them", () => {
    const text = [
      "# GRUB_CMDLINE_LINUX=commented",
      'echo "GRUB_CMDLINE_LINUX=not-an-assignment"',
      "GRUB_X=$(printf '%s' \"a)b\" | tr a b) GRUB_CMDLINE_LINUX=second-on-line",
      "f() { GRUB_CMDLINE_LINUX=in-function; }",
      "case $x in a) GRUB_CMDLINE_LINUX=in-case ;; esac",
      "GRUB_CMDLINE_LINUX=`echo \\`date\\``",
      "export GRUB_CMDLINE_LINUX_DEFAULT=${GRUB_CMDLINE_LINUX_DEFAULT:-quiet}' x'",
      "GRUB_CMDLINE_LINUX=a\\",
      "b",
      "",
    ].join("\n");
    const f = parseShellFile(text);
    const seen = f.assignments.map((a) => `${a.variable}#${a.occurrence}${a.conditional ? "?" : ""}=${text.slice(a.word.start, a.word.end)}`);
    expect(seen).to.deep.equal([
      "GRUB_X#0=$(printf '%s' \"a)b\" | tr a b)",
      "GRUB_CMDLINE_LINUX#0=second-on-line",
      "GRUB_CMDLINE_LINUX#1?=in-function",
      "GRUB_CMDLINE_LINUX#2?=in-case",
      "GRUB_CMDLINE_LINUX#3=`echo \\`date\\``",
      "GRUB_CMDLINE_LINUX_DEFAULT#0=${GRUB_CMDLINE_LINUX_DEFAULT:-quiet}' x'",
      "GRUB_CMDLINE_LINUX#4=a\\\nb",
    ]);
    const last = f.assignments[f.assignments.length - 1];
    expect(wordTokens(last.word).map((t) => t.text)).to.deep.equal(["ab"]);
    const cmd = f.assignments.find((a) => a.variable === "GRUB_CMDLINE_LINUX" && a.occurrence === 3)!;
    expect(wordTokens(cmd.word)[0].opaque).to.equal(true);
  });

  it("fails with the line number on an unterminated quote", () => {
    expect(() => parseShellFile('A=1\nGRUB_CMDLINE_LINUX="quiet\n')).to.throw(/line 2: unterminated double quote/);
  });
});

// ---- facts and detection ------------------------------------------------------------

const ok = (stdout: string) => ({ code: 0, stdout, stderr: "" });

/** Probe output as recorded on the lab guest (Debian 12, QEMU q35 with intel-iommu and two igb NICs). */
function labProbeOutput(): Record<string, ReturnType<typeof ok>> {
  const grub = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=""\nGRUB_CMDLINE_LINUX="console=ttyS0 intel_iommu=on"\n';
  return {
    hostname: ok("sriov-lab\n"),
    pending: ok(""),
    cmdline: ok("BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1c2d ro console=ttyS0 intel_iommu=on\n"),
    bootId: ok("5e0c8a8e-aaaa-bbbb-cccc-000000000001\n"),
    cpu: ok("vendor_id\t: GenuineIntel\n"),
    os: ok('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'),
    efi: ok(""),
    tools: ok("update-grub /usr/sbin/update-grub\ngrub-mkconfig /usr/sbin/grub-mkconfig\ngrub-script-check /usr/bin/grub-script-check\nkernel-install /usr/bin/kernel-install\nlspci /usr/bin/lspci\n"),
    files: ok(`/etc/default/grub\t${Buffer.from(grub).toString("base64")}\n`),
    dropins: ok("yes\n"),
    grubcfg: ok("1 0 /boot/grub/grub.cfg\n"),
    bls: ok("0\n"),
    grubby: ok(""),
    proxmox: ok(""),
    kernels: ok("6.1.0-18-amd64 /boot/vmlinuz-6.1.0-18-amd64\n"),
    bootPath: ok(""),
    iommuClass: ok("dmar0\n"),
    groups: ok(
      [
        "0 0000:00:00.0 0x060000",
        "1 0000:00:01.0 0x030000",
        "2 0000:00:03.0 0x020000",
        "3 0000:00:04.0 0x010000",
        "4 0000:00:10.0 0x060400",
        "5 0000:00:11.0 0x060400",
        "6 0000:01:00.0 0x020000",
        "7 0000:02:00.0 0x020000",
        "8 0000:00:1f.0 0x060100",
        "8 0000:00:1f.2 0x010601",
        "8 0000:00:1f.3 0x0c0500",
      ].join("\n") + "\n",
    ),
    acpi: ok("DMAR\n"),
    kernelLog: ok("[    0.010000] ACPI: DMAR 0x000000007FFE1E2B 000050 (v01 BOCHS  BXPC)\n[    0.430000] DMAR: IOMMU enabled\n"),
    lspci: ok(
      [
        "0000:00:10.0 PCI bridge: Red Hat, Inc. QEMU PCIe Root port (prog-if 00 [Normal decode])",
        "\tCapabilities: [54] Express (v2) Root Port (Slot+), MSI 00",
        "\tKernel driver in use: pcieport",
        "",
        "0000:00:11.0 PCI bridge: Red Hat, Inc. QEMU PCIe Root port (prog-if 00 [Normal decode])",
        "\tCapabilities: [54] Express (v2) Root Port (Slot+), MSI 00",
        "\tCapabilities: [148 v1] Access Control Services",
        "\t\tACSCap:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-",
        "\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-",
        "",
      ].join("\n"),
    ),
  };
}

describe("IommuKernelArgs facts and detection", () => {
  it("has one probe per fact and parses recorded output", () => {
    const out = labProbeOutput();
    expect([...PROBES].sort()).to.deep.equal(Object.keys(out).sort());
    const f = parseFacts(out);
    expect(f).to.deep.include({ hostname: "sriov-lab", cpuVendor: "intel", efi: false, grubReadsDropins: true, osPrettyName: "Debian GNU/Linux 12 (bookworm)" });
    expect(f.files["/etc/default/grub"]).to.contain('GRUB_CMDLINE_LINUX="console=ttyS0 intel_iommu=on"');
    expect(f.grubCfgs).to.deep.equal([{ path: "/boot/grub/grub.cfg", generated: true, bls: false }]);
    expect(f.kernels).to.deep.equal([{ version: "6.1.0-18-amd64", image: "/boot/vmlinuz-6.1.0-18-amd64" }]);
  });

  it("the facts script, run on this machine, gives every probe a result and the framed files back", async () => {
    const r = await localShell(commandLine(factsArgv()));
    expect(r.code, r.stderr.toString()).to.equal(0);
    const byName = parseProbeOutput(r.stdout.toString(), r.stderr.toString());
    expect(Object.keys(byName)).to.deep.equal([...PROBES]);
    expect(Object.values(byName).map((p) => p.stderr).join("")).to.equal("");
    expect(byName.cmdline).to.deep.include({ code: 0, stdout: fs.readFileSync("/proc/cmdline", "utf8") });
    const f = parseFacts(byName);
    expect(f.hostname).to.equal(os.hostname());
    expect(f.bootId).to.equal(fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
    if (fs.existsSync("/etc/default/grub")) expect(f.files["/etc/default/grub"]).to.equal(fs.readFileSync("/etc/default/grub", "utf8"));
    const planning = parseProbeOutput((await localShell(commandLine(factsArgv({ health: false })))).stdout.toString());
    expect(Object.keys(planning)).to.not.include.members(["groups", "kernelLog", "lspci"]);
  });

  it("separates the probes' framed output exactly: no newline added or lost, stderr to its own probe", () => {
    const B = "0f0e0d0c-0b0a-4909-8807-060504030201";
    const stdout = `${B}\nno newline\n${B} one 0\n\n\ntwo lines\n\n${B} two 3\n\n${B} three 0\n`;
    const stderr = `\n${B} one\nwarn: ${B}x\n\n${B} two\n\n${B} three\n`;
    expect(parseProbeOutput(stdout, stderr)).to.deep.equal({
      one: { code: 0, stdout: "no newline", stderr: "" },
      two: { code: 3, stdout: "\n\ntwo lines\n", stderr: `warn: ${B}x\n` },
      three: { code: 0, stdout: "", stderr: "" },
    });
    expect(parseProbeOutput("sh: 1: cannot open\n")).to.deep.equal({});
  });

  it("detects GRUB with evidence and regenerates with update-grub", () => {
    const d = detect(parseFacts(labProbeOutput()), "auto", "root@lab:22");
    expect(d).to.deep.include({ bootloader: "grub", mode: "grub", grubCfg: "/boot/grub/grub.cfg", regenerate: [["/usr/sbin/update-grub"]] });
    expect(d.evidence).to.include.members([
      "/proc/cmdline has BOOT_IMAGE= (passed by GRUB)",
      "/boot/grub/grub.cfg: generated by grub-mkconfig",
      "grub-mkconfig reads /etc/default/grub.d/*.cfg",
    ]);
  });

  function facts(over: Partial<Facts>): Facts {
    return { ...parseFacts(labProbeOutput()), ...over };
  }

  it("prefers systemd-boot when it booted the kernel (LoaderInfo), grubby with BLS, proxmox when present", () => {
    expect(detect(facts({ efi: true, loaderInfo: "systemd-boot 252.22" }), "auto", "h").bootloader).to.equal("systemd-boot");
    const bls = facts({
      tools: { grubby: "/usr/sbin/grubby", "grub2-mkconfig": "/usr/sbin/grub2-mkconfig" },
      grubCfgs: [{ path: "/boot/grub2/grub.cfg", generated: true, bls: true }],
      grubby: parseGrubbyInfo('index=0\nkernel="/boot/vmlinuz-5.14"\nargs="ro quiet"\n'),
    });
    expect(detect(bls, "auto", "h")).to.deep.include({ bootloader: "grub2-bls", mode: "grubby" });
    const pve = facts({ tools: { ...facts({}).tools, "proxmox-boot-tool": "/usr/sbin/proxmox-boot-tool" } });
    expect(detect(pve, "auto", "h")).to.deep.include({ bootloader: "proxmox", mode: "grub" });
  });

  it("never regenerates an EFI stub grub.cfg", () => {
    const f = facts({
      tools: { "grub2-mkconfig": "/usr/sbin/grub2-mkconfig" },
      grubCfgs: [
        { path: "/boot/efi/EFI/fedora/grub.cfg", generated: false, bls: false },
        { path: "/boot/grub2/grub.cfg", generated: true, bls: false },
      ],
    });
    expect(detect(f, "grub", "h").regenerate).to.deep.equal([["/usr/sbin/grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"]]);
  });

  it("explains what is missing when the bootloader is given but its tools are not there", () => {
    expect(() => detect(facts({ tools: {} }), "grub", "root@h:22")).to.throw(/root@h:22: bootloader grub needs update-grub, grub-mkconfig or grub2-mkconfig/);
    expect(() => detect(facts({}), "grub2-bls", "h")).to.throw(/needs grubby/);
    expect(() => detect(facts({ tools: {} }), "systemd-boot", "h")).to.throw(/needs kernel-install/);
    expect(() => detect(facts({ tools: {}, grubCfgs: [] }), "auto", "h")).to.throw(/cannot tell which bootloader boots h; set bootloader to/);
  });
});

describe("IommuKernelArgs health", () => {
  it("finds root ports without ACS and with ACS not enabled (seed 000's output)", () => {
    const lspci = [
      "0000:00:1d.0 PCI bridge: Intel Corporation 200 Series PCH PCI Express Root Port #11 (rev f0) (prog-if 00 [Normal decode])",
      "\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00",
      "\tCapabilities: [1d0 v1] Access Control Services",
      "\t\tACSCap: SrcValid- TransBlk- ReqRedir- CmpltRedir- UpstreamFwd- EgressCtrl- DirectTrans-",
      "\t\tACSCtl: SrcValid- TransBlk- ReqRedir- CmpltRedir- UpstreamFwd- EgressCtrl- DirectTrans-",
      "",
      "0000:00:1c.0 PCI bridge: Intel Corporation Root Port #1 (prog-if 00 [Normal decode])",
      "\tCapabilities: [40] Express (v2) Root Port (Slot+), MSI 00",
      "",
      "0000:02:00.0 PCI bridge: PLX downstream (prog-if 00 [Normal decode])",
      "\tCapabilities: [68] Express (v2) Downstream Port (Slot+), MSI 00",
      "",
    ].join("\n");
    const ports = parseRootPorts(lspci);
    expect(ports.map((p) => p.address)).to.deep.equal(["0000:00:1d.0", "0000:00:1c.0"]);
    const w = acsWarnings(ports);
    expect(w[0]).to.match(/^root port without ACS .*0000:00:1c\.0/);
    expect(w[1]).to.match(/root port 0000:00:1d\.0 has ACS but does not enable SrcValid, ReqRedir, CmpltRedir, UpstreamFwd/);
  });

  it("warns about NICs that share an IOMMU group", () => {
    const w = groupWarnings([
      { group: "12", device: "0000:03:00.0", pciClass: "0x020000" },
      { group: "12", device: "0000:03:00.1", pciClass: "0x020000" },
      { group: "12", device: "0000:00:1c.0", pciClass: "0x060400" },
      { group: "13", device: "0000:04:00.0", pciClass: "0x020000" },
      { group: "14", device: "0000:05:00.0", pciClass: "0x0c0330" },
      { group: "14", device: "0000:05:00.1", pciClass: "0x010802" },
    ]);
    expect(w).to.have.length(1);
    expect(w[0]).to.match(/^IOMMU group 12: NIC 0000:03:00\.0 shares the group with 0000:03:00\.1 \(class 0x020000\); devices in one group can only be passed through together$/);
  });

  it("reports the lab guest as enabled, with only the root port without ACS to warn about", () => {
    const h = health(parseFacts(labProbeOutput()), ["intel_iommu=on", "iommu=pt"], true);
    expect(h.iommuEnabled).to.equal(true);
    expect(h.iommuGroupCount).to.equal(9);
    expect(h.warnings).to.have.length(1);
    expect(h.warnings[0]).to.match(/root port without ACS .*0000:00:10\.0/);
  });

  it("warns when the firmware hides the IOMMU, when it is off after boot, on faults and unknown arguments", () => {
    const base = parseFacts(labProbeOutput());
    const f: Facts = {
      ...base,
      acpiTables: [],
      iommuClassDevices: [],
      iommuGroups: [],
      lspciBridges: "",
      kernelLog: [
        '[    0.0] Unknown kernel command line parameters "pcie_acs_override=downstream BOOT_IMAGE=/vmlinuz", will be passed to user space.',
        "[ 9.1] DMAR: [DMA Read NO_PASID] Request device [02:00.0] fault addr 0xfffff000 [fault reason 0x06] PTE Read access is not set",
      ],
    };
    const h = health(f, ["intel_iommu=on", "pcie_acs_override=downstream"], false);
    expect(h.iommuEnabled).to.equal(false);
    expect(h.warnings.join("\n")).to.match(/no ACPI DMAR table: VT-d is off/);
    expect(h.warnings.join("\n")).to.match(/the IOMMU is not active although the kernel booted with intel_iommu=on/);
    expect(h.warnings.join("\n")).to.match(/1 IOMMU fault line\(s\) in the kernel log since boot, e\.g\. \[ 9\.1\] DMAR: \[DMA Read/);
    expect(h.warnings.join("\n")).to.match(/does not know pcie_acs_override=downstream \(it needs a kernel with the ACS override patch\)/);
    const pending = health({ ...f, kernelLog: [] }, ["intel_iommu=on"], true);
    expect(pending.warnings).to.include("the IOMMU is not active yet: the host must reboot with the new kernel arguments");
  });
});

describe("IommuKernelArgs drift", () => {
  const applied = { iommu: "auto" as const, passthrough: true, extraArgs: ["hugepages=16", "pci=realloc"], bootloader: "auto" as const, reboot: "never" as const, rebootTimeoutSeconds: 600 };
  const args = ["intel_iommu=on", "iommu=pt", "hugepages=16", "pci=realloc"];

  it("keeps the inputs when everything still takes effect", () => {
    expect(observedInputs(applied, args, ["ro", ...args])).to.deep.equal(applied);
  });

  it("drops what no longer takes effect, so the next up puts it back", () => {
    expect(observedInputs(applied, args, ["ro", "intel_iommu=off", "iommu=pt", "iommu=soft", "pci=realloc"])).to.deep.equal({
      ...applied,
      iommu: "none",
      passthrough: false,
      extraArgs: ["pci=realloc"],
    });
  });
});

describe("IommuKernelArgs grub.cfg reading", () => {
  it("reads the first kernel line's arguments", () => {
    const cfg = "menuentry 'Debian' {\n\tload_video\n\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1c2d ro  console=ttyS0 intel_iommu=on iommu=pt\n\tinitrd\t/boot/initrd.img\n}\n";
    expect(firstEntryArgs(cfg)).to.deep.equal(["root=UUID=1c2d", "ro", "console=ttyS0", "intel_iommu=on", "iommu=pt"]);
    expect(firstEntryArgs("set timeout=5\n")).to.equal(undefined);
  });

  it("a create cut off after its first write resumes from the record it left, still knowing the user's argument it replaced", () => {
    const user = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="hugepages=2 "\nGRUB_CMDLINE_LINUX="console=ttyS0 intel_iommu=on"\n';
    const probe = (files: Record<string, string>, pending?: object) => {
      const out = labProbeOutput();
      out.files = ok(Object.entries(files).map(([p, t]) => `${p}\t${Buffer.from(t).toString("base64")}\n`).join(""));
      if (pending) out.pending = ok(JSON.stringify(pending));
      return parseFacts(out);
    };
    const wanted = ["intel_iommu=on", "iommu=pt", "hugepages=8"];
    const f = probe({ "/etc/default/grub": user });
    const d = detect(f, "auto", "h");
    const first = plan(f, d, wanted, emptyRestore(), []);
    expect(first.restore.edits.flatMap((e) => e.removed)).to.deep.equal(["hugepages=2"]);
    const grubWrite = first.ops.find((o) => o.kind === "write" && o.path === "/etc/default/grub") as Extract<Op, { kind: "write" }>;
    // Cut off after that write: the file no longer shows hugepages=2; the record does.
    const cut = probe({ "/etc/default/grub": grubWrite.content }, first.restore);
    expect(cut.pendingRestore).to.deep.equal(first.restore);
    expect(plan(cut, d, wanted, emptyRestore(), []).restore.edits, "without the record").to.deep.equal([]);
    const resumed = plan(cut, d, wanted, cut.pendingRestore!, []);
    expect(resumed.restore).to.deep.equal(first.restore);
    expect(resumed.ops.map((o) => o.description)).to.include("create /etc/default/grub.d/zz-pulumi-sriov.cfg (adds iommu=pt hugepages=8)");
    expect(probe({ "/etc/default/grub": user }, { not: "a record" }).pendingRestore).to.equal(undefined);
  });

  it("regenerates a grub.cfg that lags behind files already right (a run cut off before update-grub), and only then", () => {
    const linux = "\tlinux\t/boot/vmlinuz-6.1.0-18-amd64 root=UUID=1c2d ro console=ttyS0 intel_iommu=on";
    const probe = (cfgLinux: string, dropin: string | null) => {
      const out = labProbeOutput();
      const grub = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=""\nGRUB_CMDLINE_LINUX="console=ttyS0 intel_iommu=on"\n';
      const files = [["/etc/default/grub", grub], ...(dropin === null ? [] : [["/etc/default/grub.d/zz-pulumi-sriov.cfg", dropin]])];
      out.files = ok(files.map(([p, t]) => `${p}\t${Buffer.from(t!).toString("base64")}\n`).join(""));
      out.grubcfg = ok(`1 0 /boot/grub/grub.cfg\t${cfgLinux}\n`);
      return parseFacts(out);
    };
    const wanted = ["intel_iommu=on", "iommu=pt"];
    const first = probe(linux, null);
    expect(first.grubCfgs[0].firstEntry).to.deep.equal(["root=UUID=1c2d", "ro", "console=ttyS0", "intel_iommu=on"]);
    const d = detect(first, "auto", "h");
    const write = plan(first, d, wanted, emptyRestore(), []).ops.find((o) => o.kind === "write") as Extract<Op, { kind: "write" }>;
    // The drop-in written, grub.cfg not regenerated yet.
    const cut = probe(linux, write.content);
    const again = plan(cut, d, wanted, emptyRestore(), []).ops;
    expect(again.map((o) => o.kind)).to.deep.equal(["run", "run", "verify"]);
    expect(again[0].description, again[0].description).to.match(/^regenerate \/boot\/grub\/grub.cfg \(its first entry boots ".*", not what .* say\): \/usr\/sbin\/update-grub$/);
    // Regenerated: nothing to do.
    expect(plan(probe(`${linux} iommu=pt`, write.content), d, wanted, emptyRestore(), []).ops).to.deep.equal([]);
    // Delete cut off after removing the drop-in: grub.cfg still boots iommu=pt.
    expect(plan(probe(`${linux} iommu=pt`, null), d, [], emptyRestore(), ["intel_iommu=on", "iommu=pt"]).ops.map((o) => o.kind)).to.deep.equal(["run", "run", "verify"]);
  });
});

// ---- the executor, on a local shell ---------------------------------------------

/** Runs commands with the local /bin/sh, as the SSH transport runs them remotely. */
describe("IommuKernelArgs executor rollback (local shell)", () => {
  let dir: string;
  const host = new RemoteHost(localTransport("root@local-test:22"));
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "iommu-exec-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(BACKUP_DIR + dir, { recursive: true, force: true });
  });

  it("a failing regeneration restores the files and reports the tool's output", async () => {
    const grub = path.join(dir, "grub");
    const dropin = path.join(dir, "zz-pulumi-sriov.cfg");
    const cfg = path.join(dir, "grub.cfg");
    fs.writeFileSync(grub, 'GRUB_CMDLINE_LINUX="intel_iommu=off"\n');
    fs.writeFileSync(cfg, "old grub.cfg\n");
    const ops: Op[] = [
      { kind: "write", path: grub, content: 'GRUB_CMDLINE_LINUX=""\n', previous: 'GRUB_CMDLINE_LINUX="intel_iommu=off"\n', description: "write grub" },
      { kind: "write", path: dropin, content: "ours\n", previous: null, description: "create drop-in" },
      {
        kind: "run",
        argv: ["sh", "-c", 'echo "Generating grub configuration file ..." >&2; echo "/etc/default/grub.d/00-broken.cfg: line 1: boom" >&2; exit 3'],
        description: "regenerate grub.cfg",
        rewrites: cfg,
      },
    ];
    let err: Error | undefined;
    await execute(host, ops).catch((e) => (err = e));
    expect(err, "execute must fail").to.be.instanceOf(Error);
    expect(err!.message).to.match(/^root@local-test:22: regenerate grub\.cfg: command "sh -c .*" exited 3/);
    expect(err!.message).to.contain("00-broken.cfg: line 1: boom");
    expect(err!.message).to.match(new RegExp(`the previous boot configuration was restored: removed ${dropin}; restored ${grub}`));
    expect(fs.readFileSync(grub, "utf8")).to.equal('GRUB_CMDLINE_LINUX="intel_iommu=off"\n');
    expect(fs.existsSync(dropin)).to.equal(false);
    expect(fs.readFileSync(cfg, "utf8")).to.equal("old grub.cfg\n");
  });

  it("a failed check after regeneration puts the old grub.cfg back and runs rerun-steps again", async () => {
    const file = path.join(dir, "cmdline");
    const cfg = path.join(dir, "grub.cfg");
    const log = path.join(dir, "refresh.log");
    fs.writeFileSync(file, "root=/dev/sda1 ro\n");
    fs.writeFileSync(cfg, "menuentry {\n\tlinux /vmlinuz root=/dev/sda1 ro\n}\n");
    const ops: Op[] = [
      { kind: "write", path: file, content: "root=/dev/sda1 ro intel_iommu=on\n", previous: "root=/dev/sda1 ro\n", description: "write cmdline" },
      { kind: "run", argv: ["sh", "-c", 'printf "menuentry {\\n\\tlinux /vmlinuz ro quiet\\n}\\n" > "$0"', cfg], description: "regenerate", rewrites: cfg },
      { kind: "run", argv: ["sh", "-c", 'cat "$1" >> "$0"', log, file], description: "refresh", rollback: "rerun" },
      { kind: "verify", check: "grubCfg", path: cfg, present: ["intel_iommu=on"], absent: [], description: "check the first entry" },
    ];
    let err: Error | undefined;
    await execute(host, ops).catch((e) => (err = e));
    expect(err!.message).to.match(/check the first entry failed: the first entry of .*grub\.cfg boots with "ro quiet", without intel_iommu=on/);
    expect(fs.readFileSync(file, "utf8")).to.equal("root=/dev/sda1 ro\n");
    expect(fs.readFileSync(cfg, "utf8")).to.equal("menuentry {\n\tlinux /vmlinuz root=/dev/sda1 ro\n}\n");
    // The refresh ran with the new file, then again with the restored one.
    expect(fs.readFileSync(log, "utf8")).to.equal("root=/dev/sda1 ro intel_iommu=on\nroot=/dev/sda1 ro\n");
  });

  it("runs nothing for an empty plan", async () => {
    await execute(host, []);
  });
});
