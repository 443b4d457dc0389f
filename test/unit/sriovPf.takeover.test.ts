// SriovPf taking over hand-made persistence (takeOver): the preview lines,
// the refusals (a second mechanism, a path that sets nothing, rc.local lines
// that cannot be removed exactly), and delete putting the originals back,
// whose restore command is run here against real files.
import { expect } from "chai";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Facts, PfFacts } from "../../provider/resources/sriovPf/facts";
import { Desired, plan } from "../../provider/resources/sriovPf/plan";
import { inputsSchema } from "../../provider/resources/sriovPf/schema";
import { backupOf, parseTakenOver, putBackOps, stripRcLocal, takenOverPath, TakenOver, takeOverKind } from "../../provider/resources/sriovPf/takeover";

const PCI = "0000:01:00.0";
const RULE = "/etc/udev/rules.d/70-sriov.rules";
const RULE_TEXT = 'ACTION=="add", SUBSYSTEM=="net", KERNEL=="ens4", ATTR{device/sriov_numvfs}="4"\n';
const RC = "/etc/rc.local";
const UNIT = "/etc/systemd/system/sriov-vfs.service";
const CONF = "/etc/modprobe.d/igb.conf";

function pf(over: Partial<PfFacts> = {}): PfFacts {
  return {
    pciAddress: PCI,
    totalVfs: 7,
    numVfs: 4,
    autoprobe: true,
    numaNode: -1,
    driver: "igb",
    netdevs: [{ name: "ens4", mac: "52:54:00:5a:00:01", mtu: 1500, operstate: "up" }],
    vfs: [],
    adminMacs: {},
    driverHasMaxVfs: true,
    ...over,
  };
}

function facts(over: Partial<Facts> = {}): Facts {
  return {
    candidates: [
      { pciAddress: PCI, driver: "igb", netdevs: ["ens4"], macs: [] },
      { pciAddress: "0000:02:00.0", driver: "igb", netdevs: ["ens5"], macs: [] },
    ],
    pf: pf(),
    files: {},
    unit: { enabled: "", active: "inactive" },
    vfUnits: [],
    tools: ["systemctl", "udevadm", "ip", "modinfo", "update-initramfs"],
    foreign: [],
    ...over,
  };
}

const handRule = (): Partial<Facts> => ({ foreign: [{ path: RULE, mentions: "ens4" }], foreignContent: { [RULE]: RULE_TEXT } });
const want = (over: Partial<Desired> = {}): Desired => ({ numVfs: 4, autoprobe: true, persist: "systemd", ...over });
const OPTS = { host: "hv1", selector: "interface" as const };
const descriptions = (p: { ops: { description: string }[] }) => p.ops.map((o) => o.description);

describe("SriovPf takeOver", () => {
  describe("plan", () => {
    it("replaces a listed udev rule with this resource's unit: recorded first, then moved to the backup after the unit is in place", () => {
      const p = plan(facts(handRule()), want({ takeOver: [RULE] }), OPTS);
      expect(p.failures).to.deep.equal([]);
      const d = descriptions(p);
      expect(d).to.include(`replace udev rule ${RULE} with pulumi-sriov's systemd unit`);
      const record = p.ops.find((o) => o.kind === "write" && o.path === takenOverPath(PCI));
      expect(record, "the record of what is taken over").to.not.equal(undefined);
      expect(parseTakenOver((record as { content: string }).content)).to.deep.equal([{ path: RULE, kind: "udev rule" }]);
      const i = (s: string) => d.findIndex((x) => x.startsWith(s));
      expect(i("write /etc/systemd/system/pulumi-sriov-pf-")).to.be.lessThan(i("record in"));
      expect(i("record in")).to.be.lessThan(i("replace udev rule"));
      expect(p.ops[i("replace udev rule")]).to.deep.include({ kind: "remove", path: RULE });
      expect(d[i("replace udev rule") + 1]).to.equal("reload udev rules");
      expect(p.warnings).to.deep.equal([]);
    });

    it("names this resource's persistence as persist says it", () => {
      expect(descriptions(plan(facts(handRule()), want({ persist: "udev", takeOver: [RULE] }), OPTS))).to.include(
        `replace udev rule ${RULE} with pulumi-sriov's udev rule`,
      );
      expect(descriptions(plan(facts(handRule()), want({ persist: "modprobe", takeOver: [RULE] }), OPTS))).to.include(
        `replace udev rule ${RULE} with pulumi-sriov's modprobe option file`,
      );
    });

    it("refuses a path in takeOver that sets nothing for this PF, naming the ones that do", () => {
      const p = plan(facts(handRule()), want({ takeOver: [RULE, "/etc/udev/rules.d/99-other.rules"] }), OPTS);
      expect(p.ops).to.deep.equal([]);
      expect(p.failures).to.deep.equal([
        {
          property: "takeOver",
          reason: `/etc/udev/rules.d/99-other.rules on hv1 is not a file that sets VFs for PF ${PCI} (those are: ${RULE}); remove it from takeOver`,
        },
      ]);
      expect(plan(facts(), want({ takeOver: [RULE] }), OPTS).failures[0].reason).to.match(/is not a file that sets VFs for PF 0000:01:00\.0 \(none does\)/);
    });

    it("refuses every unlisted mechanism at once, and plans nothing", () => {
      const f = facts({
        foreign: [
          { path: RULE, mentions: "ens4" },
          { path: CONF, mentions: "options igb max_vfs" },
        ],
        foreignContent: { [RULE]: RULE_TEXT, [CONF]: "options igb max_vfs=4\n" },
      });
      const p = plan(f, want({ takeOver: [RULE] }), OPTS);
      expect(p.ops).to.deep.equal([]);
      expect(p.problems).to.deep.equal([
        `takeOver: ${CONF} on hv1 also sets VFs for PF ${PCI} (it mentions options igb max_vfs); persist "systemd" would be a second mechanism beside it: list it in takeOver to replace it with pulumi-sriov's systemd unit, or use persist "none"`,
      ]);
    });

    it("once taken over (in the record, the file gone) the listed path plans nothing more", () => {
      const taken: TakenOver[] = [{ path: RULE, kind: "udev rule" }];
      const p = plan(facts({ takenOver: taken }), want({ takeOver: [RULE] }), OPTS);
      expect(p.failures).to.deep.equal([]);
      expect(descriptions(p).filter((d) => d.startsWith("replace") || d.startsWith("record"))).to.deep.equal([]);
    });

    it("a later take-over adds to the record", () => {
      const f = facts({ ...handRule(), takenOver: [{ path: "/etc/udev/rules.d/60-old.rules", kind: "udev rule" }] });
      const p = plan(f, want({ takeOver: [RULE] }), OPTS);
      const record = p.ops.find((o) => o.kind === "write" && o.path === takenOverPath(PCI)) as { content: string };
      expect(parseTakenOver(record.content).map((e) => e.path)).to.deep.equal(["/etc/udev/rules.d/60-old.rules", RULE]);
    });

    it("a hand-made unit is disabled before it is moved, and its enabled state recorded", () => {
      const f = facts({ foreign: [{ path: UNIT, mentions: PCI }], foreignContent: { [UNIT]: "[Service]\n" }, foreignEnabled: { [UNIT]: "enabled" } });
      const p = plan(f, want({ persist: "udev", takeOver: [UNIT] }), OPTS);
      const d = descriptions(p);
      const at = d.indexOf(`replace systemd unit ${UNIT} with pulumi-sriov's udev rule`);
      expect(d.slice(at - 1, at + 2)).to.deep.equal(["disable sriov-vfs.service (taken over)", `replace systemd unit ${UNIT} with pulumi-sriov's udev rule`, "reload systemd units"]);
      const record = p.ops.find((o) => o.kind === "write" && o.path === takenOverPath(PCI)) as { content: string };
      expect(parseTakenOver(record.content)).to.deep.equal([{ path: UNIT, kind: "systemd unit", enabled: "enabled" }]);
    });

    it("a modprobe file is taken over whole only when it holds nothing but max_vfs; other ports of the driver are warned about", () => {
      const f = (text: string) => facts({ foreign: [{ path: CONF, mentions: "options igb max_vfs" }], foreignContent: { [CONF]: text } });
      const ok = plan(f("# by hand\noptions igb max_vfs=4\n"), want({ takeOver: [CONF] }), OPTS);
      expect(descriptions(ok)).to.include.members([`replace modprobe option file ${CONF} with pulumi-sriov's systemd unit`, "regenerate the initramfs without the module option"]);
      expect(ok.warnings).to.deep.equal([`${CONF} also gave 0000:02:00.0 (ens5) VFs whenever igb loads; once it is replaced they get none at boot`]);
      const more = plan(f("options igb max_vfs=4\noptions igb InterruptThrottleRate=1\n"), want({ takeOver: [CONF] }), OPTS);
      expect(more.problems).to.deep.equal([
        `takeOver: ${CONF} on hv1 cannot be taken over: it also holds "options igb InterruptThrottleRate=1", which taking the file over would drop; move max_vfs out of it by hand, or use persist "none"`,
      ]);
    });

    it("rc.local keeps every line but the ones writing this PF's sriov_numvfs", () => {
      const text = "#!/bin/sh -e\necho 4 > /sys/class/net/ens4/device/sriov_numvfs\nip link set ens4 vf 0 mac 02:00:00:00:00:01\necho 2 > /sys/class/net/ens5/device/sriov_numvfs\nexit 0\n";
      const p = plan(facts({ foreign: [{ path: RC, mentions: "ens4" }], foreignContent: { [RC]: text } }), want({ takeOver: [RC] }), OPTS);
      const op = p.ops.find((o) => o.description === `replace rc.local ${RC} with pulumi-sriov's systemd unit`);
      expect(op).to.deep.include({
        kind: "write",
        path: RC,
        content: "#!/bin/sh -e\nip link set ens4 vf 0 mac 02:00:00:00:00:01\necho 2 > /sys/class/net/ens5/device/sriov_numvfs\nexit 0\n",
      });
      const record = p.ops.find((o) => o.kind === "write" && o.path === takenOverPath(PCI)) as { content: string };
      expect(parseTakenOver(record.content)).to.deep.equal([{ path: RC, kind: "rc.local", written: (op as { content: string }).content }]);
    });

    it("refuses rc.local lines it cannot remove exactly, saying why", () => {
      const id = { pciAddress: PCI, netdevs: ["ens4"], driver: "igb" };
      const reason = (text: string) => (stripRcLocal(text, id) as { reason?: string }).reason;
      expect(reason("if [ -e /sys/class/net/ens4 ]; then\n  echo 4 > /sys/class/net/ens4/device/sriov_numvfs\nfi\n")).to.match(/^line 2 \(echo 4 .*\) is inside an if, for, while or case block or a function$/);
      expect(reason("setup() {\necho 4 > /sys/class/net/ens4/device/sriov_numvfs\n}\nsetup\n")).to.match(/inside an if, for, while or case block or a function/);
      expect(reason("echo 4 > /sys/class/net/ens4/device/sriov_numvfs && logger done\n")).to.match(/holds more than one command/);
      expect(reason("echo 4 \\\n > /sys/bus/pci/devices/0000:01:00.0/sriov_numvfs\n")).to.match(/part of a continued command/);
      expect(reason("cat <<EOF >/tmp/x\nEOF\necho 4 > /sys/class/net/ens4/device/sriov_numvfs\n")).to.match(/here-document/);
      expect(reason("for d in ens4 ens5; do echo 4 > /sys/class/net/$d/device/sriov_numvfs; done\n")).to.match(/inside|more than one command/);
      // A name that merely contains the PF's name is another interface.
      expect(reason("echo 4 > /sys/class/net/ens40/device/sriov_numvfs\n")).to.equal("no single line of it writes this PF's sriov_numvfs");
      expect(stripRcLocal("echo 4 > /sys/bus/pci/devices/0000:01:00.0/sriov_numvfs\n", id)).to.deep.equal({
        content: "",
        removed: ["echo 4 > /sys/bus/pci/devices/0000:01:00.0/sriov_numvfs"],
      });
      const p = plan(
        facts({ foreign: [{ path: RC, mentions: "ens4" }], foreignContent: { [RC]: "if true; then\necho 4 > /sys/class/net/ens4/device/sriov_numvfs\nfi\n" } }),
        want({ takeOver: [RC] }),
        OPTS,
      );
      expect(p.problems).to.deep.equal([
        `takeOver: ${RC} on hv1 cannot have its lines for PF ${PCI} removed exactly: line 2 (echo 4 > /sys/class/net/ens4/device/sriov_numvfs) is inside an if, for, while or case block or a function; remove them by hand, or use persist "none"`,
      ]);
    });

    it("delete (persist none) neither refuses nor takes over", () => {
      const p = plan(facts(handRule()), want({ numVfs: 0, persist: "none", takeOver: [RULE] }), OPTS);
      expect(p.failures).to.deep.equal([]);
      expect(descriptions(p).some((d) => d.startsWith("replace") || d.startsWith("record"))).to.equal(false);
    });
  });

  describe("input checks", () => {
    const parse = (takeOver: unknown, persist = "systemd") => inputsSchema().safeParse({ interface: "ens4", numVfs: 2, persist, takeOver });
    const messages = (r: ReturnType<typeof parse>) => (r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));

    it("takes absolute paths of the files that can be taken over", () => {
      expect(messages(parse([RULE, RC, UNIT, CONF, "/etc/rc.d/rc.local"]))).to.deep.equal([]);
      expect(parse(undefined).success).to.equal(true);
    });

    it("refuses relative, unclean or unknown paths, duplicates, and persist none, with clear messages", () => {
      expect(messages(parse(["70-sriov.rules"]))).to.deep.equal(["takeOver.0: must be an absolute path (starting with /)"]);
      expect(messages(parse(["/etc/udev/rules.d/../x.rules"]))).to.deep.equal(['takeOver.0: must be a plain path (no "//", "." or ".." parts)']);
      expect(messages(parse(["/etc/fstab"]))).to.deep.equal([
        "takeOver.0: must be a udev rule (/etc/udev/rules.d/*.rules), a systemd unit (/etc/systemd/system/*.service), a modprobe option file (/etc/modprobe.d/*.conf) or rc.local (/etc/rc.local, /etc/rc.d/rc.local)",
      ]);
      expect(messages(parse([RULE, RULE]))).to.deep.equal([`takeOver: lists ${RULE} twice`]);
      expect(messages(parse([RULE], "none"))).to.deep.equal([
        'takeOver: needs persist "systemd", "udev" or "modprobe": a hand-made file is replaced with this resource\'s own persistence, and persist "none" has none',
      ]);
      expect(messages(parse("/etc/rc.local"))[0]).to.match(/^takeOver: /);
    });

    it("knows each kind by its path", () => {
      expect([RULE, UNIT, CONF, RC, "/etc/rc.d/rc.local", "/etc/udev/rules.d/x.conf"].map(takeOverKind)).to.deep.equal([
        "udev rule",
        "systemd unit",
        "modprobe option file",
        "rc.local",
        "rc.local",
        undefined,
      ]);
    });
  });

  describe("delete puts the originals back", () => {
    const opts = { host: "hv1", tools: ["systemctl", "udevadm", "update-initramfs"] };

    it("restores each file from the backup, then reloads and re-enables what it had disabled", () => {
      const taken: TakenOver[] = [
        { path: RULE, kind: "udev rule" },
        { path: UNIT, kind: "systemd unit", enabled: "enabled" },
      ];
      const files = { [RULE]: null, [backupOf(RULE)]: RULE_TEXT, [UNIT]: null, [backupOf(UNIT)]: "[Service]\n" };
      const r = putBackOps(taken, files, files, opts);
      expect(r.failures).to.deep.equal([]);
      expect(descriptions(r)).to.deep.equal([
        `put back udev rule ${RULE} as it was before it was taken over`,
        `put back systemd unit ${UNIT} as it was before it was taken over`,
        "reload systemd units",
        "enable sriov-vfs.service at boot again",
        "reload udev rules",
      ]);
    });

    it("restores rc.local only over exactly what was written in its place", () => {
      const taken: TakenOver[] = [{ path: RC, kind: "rc.local", written: "exit 0\n" }];
      const same = { [RC]: "exit 0\n", [backupOf(RC)]: "echo 4 > /sys/class/net/ens4/device/sriov_numvfs\nexit 0\n" };
      expect(descriptions(putBackOps(taken, same, same, opts))).to.deep.equal([`put back rc.local ${RC} as it was before it was taken over`]);
      const edited = { ...same, [RC]: "logger hello\nexit 0\n" };
      expect(putBackOps(taken, edited, edited, opts)).to.deep.equal({
        ops: [],
        failures: [
          {
            property: "takeOver",
            reason: `${RC} on hv1 changed since its lines for this PF were taken over; the original is kept at ${backupOf(RC)}: put its lines back by hand and remove ${backupOf(RC)}, then delete again`,
          },
        ],
      });
    });

    it("refuses to overwrite a file that exists again with other content; skips one whose backup was removed", () => {
      const taken: TakenOver[] = [{ path: RULE, kind: "udev rule" }];
      const again = { [RULE]: "# new\n", [backupOf(RULE)]: RULE_TEXT };
      expect(putBackOps(taken, again, again, opts).failures[0].reason).to.equal(
        `${RULE} on hv1 exists again with other content; the original taken over is kept at ${backupOf(RULE)}: choose one by hand and remove ${backupOf(RULE)}, then delete again`,
      );
      const gone = { [RULE]: null, [backupOf(RULE)]: null };
      expect(putBackOps(taken, gone, gone, opts)).to.deep.equal({ ops: [], failures: [] });
    });

    it("the restore command puts content, mode and times back exactly and drops the backup copy", () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sriovpf-takeover-"));
      try {
        const f = path.join(dir, "etc", "70-sriov.rules");
        const bak = path.join(dir, "backup", "70-sriov.rules");
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.mkdirSync(path.dirname(bak), { recursive: true });
        fs.writeFileSync(bak, RULE_TEXT, { mode: 0o640 });
        fs.chmodSync(bak, 0o640);
        fs.utimesSync(bak, 1_000_000, 1_000_000);
        const files = { [RULE]: null, [backupOf(RULE)]: RULE_TEXT };
        const [op] = putBackOps([{ path: RULE, kind: "udev rule" }], files, files, { host: "hv1", tools: [] }).ops as { argv: string[] }[];
        // The same script, pointed at the temporary tree instead of /etc and the backup.
        expect(op.argv.slice(-2)).to.deep.equal([RULE, backupOf(RULE)]);
        execFileSync(op.argv[0], [...op.argv.slice(1, -2), f, bak]);
        expect(fs.readFileSync(f, "utf8")).to.equal(RULE_TEXT);
        expect(fs.statSync(f).mode & 0o777).to.equal(0o640);
        expect(fs.statSync(f).mtimeMs).to.equal(1_000_000_000);
        expect(fs.existsSync(bak)).to.equal(false);
        expect(fs.readdirSync(path.dirname(f))).to.deep.equal(["70-sriov.rules"]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
