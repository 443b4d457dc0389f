// IommuKernelArgs on the GRUB-booted lab guest, driven through the real
// dynamic-provider process as `pulumi up` / `refresh` drive it. The guest
// already boots with `console=ttyS0 intel_iommu=on` (the user's arguments);
// the suite adds a user drop-in holding a value the resource must replace
// (pcie_acs_override=id:…) and checks that delete puts every file back
// byte for byte. Reboots are real: create, the update that needs one and
// delete each reboot the guest and verify /proc/cmdline.
import { expect } from "chai";
import { stopwatch } from "../support/timings";
import { closeAllConnections } from "../../provider/host";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { DeploymentError, secret, Stack } from "../support/engine";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

const DROPIN = "/etc/default/grub.d/zz-pulumi-sriov.cfg";
const USER_DROPIN = "/etc/default/grub.d/50-site.cfg";
const BROKEN_DROPIN = "/etc/default/grub.d/00-broken.cfg";
const USER_DROPIN_TEXT = [
  "# Site policy: an ACS override for one device (the user's, before pulumi-sriov).",
  'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT  pcie_acs_override=id:8086:10ca"   # keep',
  "",
].join("\n");

describe("IommuKernelArgs on the lab host (GRUB)", function () {
  this.timeout(60 * 60_000);
  let vm: LabVm;
  let connection: any;
  let imageGrub = "";
  /** The user's files before the resource existed: path → content (sorted listing of /etc/default/grub{,.d}). */
  let userFiles = "";
  let userCmdline: string[] = [];
  const { timings, timed, print: printTimings } = stopwatch();
  const stack = new Stack();

  const args = (s: string) => s.trim().split(/\s+/).filter((a) => !a.startsWith("BOOT_IMAGE="));
  const cmdline = async () => (await vm.run("cat /proc/cmdline")).trim();
  const bootId = async () => (await vm.run("cat /proc/sys/kernel/random/boot_id")).trim();
  /** Every file under /etc/default/grub{,.d}, with its bytes (base64), so any change shows. */
  const grubFiles = () => vm.run('for f in /etc/default/grub /etc/default/grub.d/*; do [ -f "$f" ] && printf "%s %s\\n" "$f" "$(base64 -w0 "$f")"; done; true');
  const firstLinuxLine = async () => args((await vm.run("grep -m1 -E '^\\s*linux\\s' /boot/grub/grub.cfg")).replace(/^\s*linux\s+\S+/, ""));
  const mtime = (p: string) => vm.run(`stat -c %Y.%Z ${p}`);

  const resource = (props: Record<string, unknown>) => [
    { name: "kargs", provider: providers.iommuKernelArgs, props: { connection: secret(connection), iommu: "intel", ...props } },
  ];

  before(async function () {
    vm = await timed("boot", () => sharedLab());
    connection = vm.connection;
    imageGrub = await grubFiles();
    // The user's own state: a drop-in with a value the resource will own, in effect.
    await vm.run(`printf '%s' '${USER_DROPIN_TEXT.replace(/'/g, "'\\''")}' > ${USER_DROPIN} && update-grub 2>/dev/null`);
    userFiles = await grubFiles();
    userCmdline = await firstLinuxLine();
    expect(userCmdline).to.include.members(["console=ttyS0", "intel_iommu=on", "pcie_acs_override=id:8086:10ca"]);
  });

  after(async function () {
    printTimings("IommuKernelArgs");
    await closeAllConnections();
    if (!vm?.running) return;
    // Leave the guest as the image had it, whatever happened above.
    await vm.exec(`rm -f ${DROPIN} ${USER_DROPIN} ${BROKEN_DROPIN}; update-grub 2>/dev/null`);
    if (imageGrub && (await grubFiles()) !== imageGrub) throw new Error(`the lab's GRUB files differ from the image's after cleanup:\n${await grubFiles()}`);
    const running = await cmdline();
    if (/iommu=pt|hugepages=/.test(running)) await vm.reboot();
  });

  it("preview lists what create will do on the host, and changes nothing", async () => {
    const r = await timed("preview", () =>
      stack.preview(resource({ extraArgs: ["hugepages=16", "pcie_acs_override=downstream"], reboot: "ifNeeded", rebootTimeoutSeconds: 900 })),
    );
    expect(r.calls).to.include({ create: 0, update: 0 });
    const lines: string[] = r.outputs.kargs.hostChanges;
    expect(lines.slice(0, 3)).to.deep.equal([
      `write ${USER_DROPIN} (removes pcie_acs_override=id:8086:10ca)`,
      `create ${DROPIN} (adds iommu=pt hugepages=16 pcie_acs_override=downstream)`,
      "regenerate /boot/grub/grub.cfg: /usr/sbin/update-grub",
    ]);
    expect(lines[lines.length - 2]).to.equal(
      "check that the first entry of /boot/grub/grub.cfg boots with intel_iommu=on iommu=pt hugepages=16 pcie_acs_override=downstream",
    );
    expect(lines[lines.length - 1]).to.match(/^reboot root@127\.0\.0\.1:\d+ \(the running kernel lacks iommu=pt hugepages=16 pcie_acs_override=downstream\) and check \/proc\/cmdline$/);
    expect(await grubFiles()).to.equal(userFiles);
  });

  it("create with reboot: ifNeeded reboots, the arguments are active and the user's value is replaced", async () => {
    const before = await bootId();
    const r = await timed("create+reboot", () =>
      stack.up(resource({ extraArgs: ["hugepages=16", "pcie_acs_override=downstream"], reboot: "ifNeeded", rebootTimeoutSeconds: 900 })),
    );
    expect(r.steps.map((s) => s.op)).to.deep.equal(["create"]);
    const o = r.outputs.kargs;
    expect(o).to.deep.include({
      bootloader: "grub",
      configPath: DROPIN,
      rebootRequired: false,
      iommuEnabled: true,
      regenerateCommand: "/usr/sbin/update-grub",
    });
    expect(o.args).to.deep.equal(["intel_iommu=on", "iommu=pt", "hugepages=16", "pcie_acs_override=downstream"]);
    expect(o.iommuGroupCount).to.be.greaterThan(5);
    expect(o.bootloaderEvidence).to.include.members(["/proc/cmdline has BOOT_IMAGE= (passed by GRUB)", "grub-mkconfig reads /etc/default/grub.d/*.cfg"]);
    expect(o.replacedArgs).to.deep.equal([`pcie_acs_override=id:8086:10ca (${USER_DROPIN} GRUB_CMDLINE_LINUX_DEFAULT)`]);
    // A stock kernel has no ACS override patch: the resource says so.
    expect(o.warnings.join("\n")).to.match(/does not know pcie_acs_override=downstream/);

    // On the host: a new boot, with the arguments, and hugepages really reserved.
    expect(await bootId()).to.not.equal(before);
    const running = args(await cmdline());
    expect(running).to.include.members(["console=ttyS0", "intel_iommu=on", "iommu=pt", "hugepages=16", "pcie_acs_override=downstream"]);
    expect(running).to.not.include("pcie_acs_override=id:8086:10ca");
    expect(o.activeCmdline).to.equal(await cmdline());
    expect((await vm.run("grep HugePages_Total /proc/meminfo")).trim()).to.match(/HugePages_Total:\s+16$/);
    // The main file is untouched (intel_iommu=on was already the user's); our drop-in says what it replaced.
    expect(await vm.run("cat /etc/default/grub")).to.equal(Buffer.from(userFiles.split("\n")[0].split(" ")[1], "base64").toString());
    const dropin = await vm.run(`cat ${DROPIN}`);
    expect(dropin).to.contain('GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX iommu=pt hugepages=16 pcie_acs_override=downstream"');
    expect(await vm.run(`cat ${USER_DROPIN}`)).to.equal(USER_DROPIN_TEXT.replace("  pcie_acs_override=id:8086:10ca", ""));
  });

  it("a second up is a no-op: no changes in diff, no create/update, no writes; refresh shows no drift", async () => {
    const stamps = [await mtime(DROPIN), await mtime(USER_DROPIN), await mtime("/boot/grub/grub.cfg")];
    const prior = stack.state.get("kargs")!;
    const r = await timed("no-op up", () => stack.up(resource({ extraArgs: ["hugepages=16", "pcie_acs_override=downstream"], reboot: "ifNeeded", rebootTimeoutSeconds: 900 })));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["same"]);
    expect(r.calls).to.include({ create: 0, update: 0, delete: 0 });
    const f = await timed("refresh", () => stack.refresh());
    expect(f.steps.map((s) => s.op)).to.deep.equal(["refresh"]);
    const after = stack.state.get("kargs")!;
    expect(after.outputs.applied).to.deep.equal(prior.outputs.applied);
    expect(after.outputs.restore).to.deep.equal(prior.outputs.restore);
    expect(after.outputs.rebootRequired).to.equal(false);
    // Still nothing to do after the refresh.
    const again = await stack.up(resource({ extraArgs: ["hugepages=16", "pcie_acs_override=downstream"], reboot: "ifNeeded", rebootTimeoutSeconds: 900 }));
    expect(again.steps.map((s) => s.op)).to.deep.equal(["same"]);
    expect([await mtime(DROPIN), await mtime(USER_DROPIN), await mtime("/boot/grub/grub.cfg")]).to.deep.equal(stamps);
  });

  it("update without reboot: the configuration changes and rebootRequired says so", async () => {
    const before = await bootId();
    const r = await timed("update (no reboot)", () => stack.up(resource({ extraArgs: ["hugepages=8", "pcie_acs_override=downstream"], reboot: "never" })));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["update"]);
    const o = r.outputs.kargs;
    expect(o.rebootRequired).to.equal(true);
    expect(o.args).to.include("hugepages=8");
    expect(await bootId()).to.equal(before);
    expect(await vm.run(`cat ${DROPIN}`)).to.contain("iommu=pt hugepages=8 pcie_acs_override=downstream");
    expect(await firstLinuxLine()).to.include("hugepages=8").and.not.include("hugepages=16");
    // The user's drop-in still carries our edit only once (undo, then apply).
    expect(await vm.run(`cat ${USER_DROPIN}`)).to.equal(USER_DROPIN_TEXT.replace("  pcie_acs_override=id:8086:10ca", ""));
  });

  it("update to reboot: ifNeeded with the same arguments writes nothing and reboots into them", async () => {
    const stamp = await mtime(DROPIN);
    const r = await timed("update (reboot only)", () =>
      stack.up(resource({ extraArgs: ["hugepages=8", "pcie_acs_override=downstream"], reboot: "ifNeeded", rebootTimeoutSeconds: 900 })),
    );
    expect(r.steps.map((s) => s.op)).to.deep.equal(["update"]);
    expect(r.outputs.kargs.rebootRequired).to.equal(false);
    expect(args(await cmdline())).to.include.members(["hugepages=8", "iommu=pt"]);
    expect((await vm.run("grep HugePages_Total /proc/meminfo")).trim()).to.match(/HugePages_Total:\s+8$/);
    expect(await mtime(DROPIN)).to.equal(stamp);
  });

  it("refresh notices an argument taken out by hand; the next up puts it back", async () => {
    await vm.run(`sed -i 's/ hugepages=8//' ${DROPIN}`);
    await stack.refresh();
    const applied = stack.state.get("kargs")!.outputs.applied;
    expect(applied.extraArgs).to.deep.equal(["pcie_acs_override=downstream"]);
    const r = await timed("repair drift", () => stack.up(resource({ extraArgs: ["hugepages=8", "pcie_acs_override=downstream"], reboot: "ifNeeded", rebootTimeoutSeconds: 900 })));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["update"]);
    expect(await vm.run(`cat ${DROPIN}`)).to.contain("iommu=pt hugepages=8 pcie_acs_override=downstream");
    expect(r.outputs.kargs.rebootRequired).to.equal(false); // the running kernel never lost it
  });

  it("a failing update-grub restores the files and reports the tool's output", async () => {
    await vm.run(`printf '%s\\n' 'echo "00-broken.cfg: this drop-in fails on purpose" >&2' 'exit 1' > ${BROKEN_DROPIN}`);
    const files = await grubFiles();
    const cfg = await vm.run("sha256sum /boot/grub/grub.cfg");
    const prior = stack.state.get("kargs")!;
    let err: DeploymentError | undefined;
    await timed("failed regeneration", () =>
      stack.up(resource({ extraArgs: ["hugepages=32", "pcie_acs_override=downstream"], reboot: "ifNeeded", rebootTimeoutSeconds: 900 })).catch((e) => (err = e)),
    );
    expect(err, "the up must fail").to.be.instanceOf(DeploymentError);
    const msg = err!.message;
    expect(msg).to.contain("update-grub");
    expect(msg).to.match(/exited 1/);
    expect(msg).to.contain("this drop-in fails on purpose");
    expect(msg).to.contain(`the previous boot configuration was restored: restored ${DROPIN}`);
    expect(await grubFiles()).to.equal(files);
    expect(await vm.run("sha256sum /boot/grub/grub.cfg")).to.equal(cfg);
    expect(stack.state.get("kargs")!.outputs).to.deep.equal(prior.outputs);
    await vm.run(`rm -f ${BROKEN_DROPIN}`);
  });

  it("delete with reboot: ifNeeded reboots; the arguments are gone and every file is back byte for byte", async () => {
    const before = await bootId();
    const r = await timed("delete+reboot", () => stack.up([]));
    expect(r.steps.map((s) => s.op)).to.deep.equal(["delete"]);
    expect(await bootId()).to.not.equal(before);
    expect(await grubFiles()).to.equal(userFiles);
    const running = args(await cmdline());
    expect(running).to.not.include.members(["iommu=pt"]);
    expect(running.filter((a) => /^(iommu|hugepages|pcie_acs_override)=/.test(a))).to.deep.equal(["pcie_acs_override=id:8086:10ca"]);
    expect(running).to.include.members(["console=ttyS0", "intel_iommu=on"]);
    expect(await firstLinuxLine()).to.deep.equal(userCmdline);
  });
});
