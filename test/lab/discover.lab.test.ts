// Adopting a host set up by hand, the way the guides in the seeds do it: a
// udev rule that writes sriov_numvfs, VF MACs and VLANs set with `ip link`,
// a hostdev pool network defined with virsh. `pulumi-sriov discover` reads
// it; `pulumi up` of the stack configuration it prints, through the real
// CLI, adopts every resource and writes nothing (the host's files, sysfs
// values and networks compared before and after, and every command sent to
// the host traced); the next preview is empty; one VLAN changed in the
// configuration then applies only that.
import { expect } from "chai";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import * as yaml from "js-yaml";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { ROOT, type CliProject } from "../../lab/pulumiCli";
import { hostVf } from "../reliability/lab";
import { fleetProject, hostState, HostState, LAB_PFS, PROJECT } from "../support/cliLab";

const PCI = LAB_PFS[1];
const PF = "enp2s0";
const RULE = "/etc/udev/rules.d/70-sriov.rules";
const NETWORK = "sriov-hand";
const MACS = ["02:00:00:5a:02:00", "02:00:00:5a:02:01"];
const VLANS = [100, 101];

// Seed 003's udev rule and `ip link` commands, seed 000's rebind (so each
// VF's netdev takes its new MAC) and seed 001's hostdev pool network.
const HAND_SETUP = `set -e
printf '%s\\n' 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="${PF}", ATTR{device/sriov_numvfs}="2"' > ${RULE}
udevadm control --reload
echo 2 > /sys/class/net/${PF}/device/sriov_numvfs
udevadm settle
${[0, 1].map((i) => `ip link set ${PF} vf ${i} mac ${MACS[i]} vlan ${VLANS[i]}`).join("\n")}
for i in 0 1; do
  a=$(basename "$(readlink -f /sys/class/net/${PF}/device/virtfn$i)")
  echo "$a" > /sys/bus/pci/drivers/igbvf/unbind
  echo "$a" > /sys/bus/pci/drivers/igbvf/bind
done
udevadm settle
cat > /tmp/${NETWORK}.xml <<'EOF'
<network>
  <name>${NETWORK}</name>
  <forward mode='hostdev' managed='yes'>
    <pf dev='${PF}'/>
  </forward>
</network>
EOF
virsh -q net-define /tmp/${NETWORK}.xml
virsh -q net-start ${NETWORK}
virsh -q net-autostart ${NETWORK}
rm /tmp/${NETWORK}.xml
`;

const HAND_TEARDOWN = `virsh -q net-destroy ${NETWORK} 2>/dev/null; virsh -q net-undefine ${NETWORK} 2>/dev/null
rm -f ${RULE}; udevadm control --reload
echo 0 > /sys/class/net/${PF}/device/sriov_numvfs; true`;

/**
 * Commands that change a host, where they run as commands (not where a read
 * merely names them, as the bootloader probe names update-grub): none may
 * reach the host while adopting. The VLAN change below checks that this
 * catches the provider's own changes.
 */
const MUTATING = [
  /\bip (-\S+ )*link set /,
  /(^|[\n;&|(]\s*)(update-grub|grub-mkconfig|grub2-mkconfig)(\s|$)/,
  /\bvirsh\b[^\n;]*\bnet-(define|start|autostart|destroy|undefine|update)\b/,
  /\bsystemctl\b[^\n;]*\b(enable|disable|start|stop|restart|daemon-reload)\b/,
  /\budevadm (trigger|control)\b/,
  /echo [^\n;|]*>\s*"?\/sys\//,
  /mv -f -- "\$t" "\$f"/, // RemoteHost.writeFile
  /rm -f -- "\$1"/, // RemoteHost.removeFile
];
const mutating = (commands: { command: string }[]) => commands.filter((c) => MUTATING.some((m) => m.test(c.command))).map((c) => c.command.slice(0, 300));

interface Extra {
  rule: string;
  vfs: string;
  network: string;
}

/** What hostState does not cover: the hand-made rule, each VF's attributes and driver, the network's XML and flags. */
async function extraState(vm: LabVm): Promise<Extra> {
  const rule = await vm.run(`sha256sum ${RULE} 2>/dev/null; true`);
  const vfs = JSON.stringify([await hostVf(vm, PF, 0), await hostVf(vm, PF, 1)]);
  const network = await vm.run(`virsh -q net-dumpxml ${NETWORK} 2>/dev/null; virsh -q net-info ${NETWORK} 2>/dev/null | grep -E 'Active|Persistent|Autostart'; true`);
  return { rule, vfs, network };
}

function traced(file: string): { host: string; command: string }[] {
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
}

describe("adopting a host set up by hand: discover, then pulumi up through the CLI changes nothing", function () {
  this.timeout(1800000);
  let vm: LabVm;
  let dir: string;
  let keyFile: string;
  let cli: CliProject | undefined;
  let found: HostState;
  let foundExtra: Extra;
  let config: Record<string, any>;
  const traceFile = () => path.join(dir, "trace.jsonl");

  const discover = (format: string) =>
    promisify(execFile)(
      process.execPath,
      [path.join(ROOT, "dist", "provider", "cli.js"), "discover", "--host", vm.connection.host, "--port", String(vm.connection.port), "--user", "root", "--key", keyFile, "--host-key", vm.connection.hostKey, "--name", "lab", "--format", format],
      { env: { ...process.env, PULUMI_SRIOV_TRACE: traceFile() }, encoding: "utf8" },
    ).then((r) => r.stdout);

  before(async function () {
    this.timeout(900000);
    vm = await sharedLab();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pulumi-sriov-adopt-"));
    keyFile = path.join(dir, "key");
    fs.writeFileSync(keyFile, vm.connection.privateKey, { mode: 0o600 });
    await vm.run(HAND_SETUP);
    found = await hostState(vm);
    foundExtra = await extraState(vm);
  });

  after(async () => {
    delete process.env.PULUMI_SRIOV_TRACE;
    if (vm) {
      // Undo the hand set-up by hand, and drop the records the VLAN change made.
      await vm.run(HAND_TEARDOWN);
      const records = (await vm.run("find /var/lib/pulumi-sriov/found -type f 2>/dev/null | sort; true")).trim().split("\n").filter(Boolean);
      const ours = records.filter((r) => !found.records.split("\n").includes(r));
      if (ours.length) await vm.run(`rm -f -- ${ours.join(" ")}`);
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("discover reports the hand-made set-up, in a few round trips and with no writes", async () => {
    const report = await discover("report");
    process.stderr.write(`--- pulumi-sriov discover (report)\n${report}`);
    expect(report, report).to.include(`PF ${PCI} ${PF}`);
    expect(report, report).to.include(`${RULE} (by hand, udev)`);
    expect(report, report).to.match(new RegExp(`VF 0 .*mac ${MACS[0]}, vlan ${VLANS[0]}`));
    expect(report, report).to.include(`pool network ${NETWORK} on PF ${PCI}`);
    expect(report, report).to.match(/pulumi up of this set-up changes nothing on the host/);
    const commands = traced(traceFile());
    process.stderr.write(`discover: ${commands.length} commands sent to the host\n`);
    expect(mutating(commands), "mutating commands").to.deep.equal([]);
    expect(await hostState(vm)).to.deep.equal(found);
    expect(await extraState(vm)).to.deep.equal(foundExtra);
  });

  it("pulumi up of the printed stack configuration adopts every resource and writes nothing on the host", async () => {
    const printed = await discover("yaml");
    process.stderr.write(`--- pulumi-sriov discover --format yaml\n${printed}`);
    config = (yaml.load(printed) as any).config;
    const host = config[`${PROJECT}:hosts`][0];
    expect(host.pfs.find((p: any) => p.pciAddress === PCI)).to.deep.include({ numVfs: 2, persist: "none" });
    expect(Object.keys(host.imports)).to.include.members([`lab-${PCI.replace(/:/g, "-")}`, `lab-net-${NETWORK}`]);
    cli = await fleetProject(vm, "adopt", config);
    fs.rmSync(traceFile(), { force: true });
    process.env.PULUMI_SRIOV_TRACE = traceFile();
    const up = await cli.stack.up(cli.out);
    delete process.env.PULUMI_SRIOV_TRACE;
    process.stderr.write(`--- pulumi up\n${up.stdout}`);
    const adopted = Object.keys(host.imports).length;
    expect(up.summary.resourceChanges, up.stdout).to.deep.include({ create: adopted + 2 }); // + the stack and the SriovHost component
    const commands = traced(traceFile());
    process.stderr.write(`pulumi up (adopt ${adopted} resources): ${commands.length} commands sent to the host\n`);
    expect(commands.length, "the provider process was traced").to.be.greaterThan(0);
    expect(mutating(commands), "mutating commands").to.deep.equal([]);
    expect(await hostState(vm)).to.deep.equal(found);
    expect(await extraState(vm)).to.deep.equal(foundExtra);
  });

  it("the next preview is empty", async () => {
    const preview = await cli!.stack.preview({ ...cli!.out, diff: true });
    expect(Object.keys(preview.changeSummary), preview.stdout).to.deep.equal(["same"]);
  });

  it("one VLAN changed in the configuration: up changes only that VF, and only its VLAN", async () => {
    const host = config[`${PROJECT}:hosts`][0];
    const pf = host.pfs.find((p: any) => p.pciAddress === PCI);
    pf.vfs.find((v: any) => v.index === 0).vlan = 200;
    cli!.writeConfig(config);
    fs.rmSync(traceFile(), { force: true });
    process.env.PULUMI_SRIOV_TRACE = traceFile();
    const up = await cli!.stack.up(cli!.out);
    delete process.env.PULUMI_SRIOV_TRACE;
    const changes = mutating(traced(traceFile()));
    expect(changes.length, "the change reaches the host, and the trace shows it").to.be.greaterThan(0);
    expect(changes.every((c) => c.includes(`${PF} vf 0 `)), changes.join("\n")).to.equal(true);
    expect(up.summary.resourceChanges, up.stdout).to.deep.include({ update: 1 });
    expect(Object.keys(up.summary.resourceChanges ?? {}).sort()).to.deep.equal(["same", "update"]);
    expect(await hostVf(vm, PF, 0)).to.include({ mac: MACS[0], vlan: 200 });
    const now = await extraState(vm);
    expect(JSON.parse(now.vfs)[1]).to.deep.equal(JSON.parse(foundExtra.vfs)[1]);
    expect(now.rule).to.equal(foundExtra.rule);
    expect(now.network).to.equal(foundExtra.network);
    const again = await cli!.stack.preview(cli!.out);
    expect(Object.keys(again.changeSummary), again.stdout).to.deep.equal(["same"]);
  });
});
