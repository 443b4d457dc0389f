// plan(facts, desired) → operations. Pure: the operations are data (a
// description an operator reads, and an argument vector or a file), so the
// list a test or a preview shows is exactly what apply runs.
import type { Plan as HostPlan } from "../../host";
import { refuseIfProblems } from "../../host";
import { shScript } from "../../host/quote";
import { CheckFailure, InputError } from "../../validate";
import { reloadUnlessLoaded } from "../../host/systemd";
import { unitName as vfUnitName } from "../virtualFunction/schema";
import { Facts, modprobePath, PfFacts, udevRulePath, unitName, unitPath, VfFacts } from "./facts";
import { parseModprobe, PersistSettings, renderModprobe, renderUdevRule, renderUnit } from "./render";
import { Persist } from "./schema";
import { takeOverOps } from "./takeover";

export type Op =
  | { kind: "run"; description: string; argv: string[]; vfWrite?: VfWrite }
  | { kind: "write"; description: string; path: string; content: string }
  | { kind: "remove"; description: string; path: string };

/** The write to sriov_numvfs that creates VFs: the kernel may refuse it. */
export interface VfWrite {
  pciAddress: string;
  numVfs: number;
  totalVfs: number;
  /** VFs there were before (0 was written first); apply tries to put them back if the kernel refuses. */
  previous: number;
}

export interface Desired {
  numVfs: number;
  autoprobe: boolean;
  persist: Persist;
  mtu?: number;
  /** Hand-made persistence files this resource replaces (absolute paths). */
  takeOver?: string[];
}

export interface PlanOptions {
  host: string;
  /** The input that found the PF, named in errors about the device itself. */
  selector?: string;
  /** Re-create existing VFs (autoprobe changed: it applies to VFs as they are created). */
  recreate?: boolean;
  /** Plan for a PF that is gone (delete): only its persistence files are handled. */
  pciAddress?: string;
  /** The gone PF's last known driver (its modprobe file). */
  driver?: string;
  /** An MTU to set now without persisting it (the one found, once mtu is no longer managed). */
  restoreMtu?: number;
}

/** The shared plan result; problems are `failures` as InputError words them. */
export interface Plan extends HostPlan<Op> {
  /** Why the plan must not run, by property (raised as an InputError). */
  failures: CheckFailure[];
  /** Existing VFs this plan destroys (checked against running domains and pool networks). */
  destroys: VfFacts[];
  /** Whether the VF count is written (VF settings are re-applied afterwards). */
  countChanges: boolean;
  persistPath: string;
}

function refused(failures: CheckFailure[], warnings: string[]): Plan {
  return { ops: [], problems: failures.map((f) => `${f.property}: ${f.reason}`), warnings, failures, destroys: [], countChanges: false, persistPath: "" };
}

/** Raises a plan's failures as the InputError SriovPf has always raised, naming the properties. */
export function refuseIfFailed(p: Plan, host: string): void {
  refuseIfProblems(p, host, () => new InputError(p.failures));
}

const SYS = "/sys/bus/pci/devices";

/** Writes a value to a sysfs attribute; the value and path travel as arguments. */
function sysfsWrite(path: string, value: string): string[] {
  return shScript('printf "%s\\n" "$2" > "$1"', path, value);
}

/**
 * Writes the VF count and, when the kernel refuses, prints the kernel log
 * lines the write produced (found after a marker put in the log first).
 */
export const VF_WRITE_SCRIPT = [
  'f="$1"; n="$2"; mark="pulumi-sriov: writing $n to $f ($$)"',
  'echo "$mark" > /dev/kmsg 2>/dev/null',
  'if err=$( { printf "%s\\n" "$n" > "$f"; } 2>&1 ); then exit 0; fi',
  'echo "$err" >&2',
  'ln=$(dmesg 2>/dev/null | grep -n -F -- "$mark" | tail -n 1 | cut -d: -f1)',
  'if [ -n "$ln" ]; then echo "--- kernel log:" >&2; dmesg | tail -n +$((ln+1)) | tail -n 20 >&2; fi',
  "exit 1",
].join("\n");

export function vfWriteArgv(pci: string, n: number): string[] {
  return shScript(VF_WRITE_SCRIPT, `${SYS}/${pci}/sriov_numvfs`, String(n));
}

function vfs(n: number): string {
  return `${n} VF${n === 1 ? "" : "s"}`;
}

function fail(property: string, reason: string): never {
  throw new InputError([{ property, reason }]);
}

export function persistPathFor(persist: Persist, pci: string, driver: string): string {
  switch (persist) {
    case "systemd":
      return unitPath(pci);
    case "udev":
      return udevRulePath(pci);
    case "modprobe":
      return driver ? modprobePath(driver) : "";
    case "none":
      return "";
  }
}

/**
 * The operations that make the persistence files say what `desired` says,
 * and remove the other kinds this resource may have written for the PF.
 */
export function persistOps(
  facts: Facts,
  pci: string,
  driver: string,
  desired: Desired,
  opts: { host: string; warnings?: string[]; failures?: CheckFailure[] },
): Op[] {
  const ops: Op[] = [];
  // Collected for a plan; thrown when asked for the operations alone.
  const refuse = (property: string, reason: string) => (opts.failures ? opts.failures.push({ property, reason }) : fail(property, reason));
  const has = (t: string) => facts.tools.includes(t);
  const settings: PersistSettings = { pciAddress: pci, numVfs: desired.numVfs, autoprobe: desired.autoprobe, mtu: desired.mtu };
  const warnings = opts.warnings ?? [];

  // systemd
  const unit = unitPath(pci);
  const name = unitName(pci);
  if (desired.persist === "systemd") {
    if (!has("systemctl")) {
      refuse("persist", `"systemd" needs systemctl, and ${opts.host} has none; use persist "udev"`);
      return ops;
    }
    const content = renderUnit(settings);
    const write = facts.files[unit] !== content;
    if (write) {
      ops.push({ kind: "write", description: `write ${unit}: ${vfs(desired.numVfs)} on ${pci} at boot, before libvirt and networking`, path: unit, content });
      ops.push(reloadUnlessLoaded(name));
    }
    // enable reloads systemd itself unless told not to; once is enough.
    if (facts.unit?.enabled !== "enabled")
      ops.push({ kind: "run", description: `enable ${name} at boot`, argv: ["systemctl", "enable", ...(write ? ["--no-reload"] : []), name] });
    // Running the unit now proves it works; the VF count is already right, so it changes nothing.
    if (write || facts.unit?.active === "failed" || facts.unit?.active === "inactive")
      ops.push({ kind: "run", description: `run ${name} now (the VFs are already as it sets them)`, argv: ["systemctl", "restart", name] });
  } else if (facts.files[unit] !== undefined) {
    ops.push({ kind: "run", description: `disable ${name}`, argv: ["systemctl", "disable", "--no-reload", name] });
    // A oneshot without ExecStop: stopping it leaves the VFs alone. VF units may
    // depend on it, so it is only stopped once none exist.
    if (facts.unit?.active === "active" && facts.vfUnits.length === 0)
      ops.push({ kind: "run", description: `stop ${name} (it has no stop action; the VFs stay)`, argv: ["systemctl", "stop", name] });
    ops.push({ kind: "remove", description: `remove ${unit}`, path: unit });
    ops.push({ kind: "run", description: "reload systemd units", argv: ["systemctl", "daemon-reload"] });
  }

  // udev
  const rule = udevRulePath(pci);
  if (desired.persist === "udev") {
    const content = renderUdevRule(settings);
    if (facts.files[rule] !== content) {
      ops.push({ kind: "write", description: `write ${rule}: ${vfs(desired.numVfs)} on ${pci} when its interface appears`, path: rule, content });
      if (has("udevadm")) ops.push({ kind: "run", description: "reload udev rules", argv: ["udevadm", "control", "--reload"] });
    }
  } else if (facts.files[rule] !== undefined) {
    ops.push({ kind: "remove", description: `remove ${rule}`, path: rule });
    if (has("udevadm")) ops.push({ kind: "run", description: "reload udev rules", argv: ["udevadm", "control", "--reload"] });
  }

  // modprobe: one file per driver, shared by every port of that driver.
  if (driver) {
    const conf = modprobePath(driver);
    const text = facts.files[conf];
    const existing = text === undefined ? undefined : parseModprobe(driver, text);
    const others = (existing?.ports ?? []).filter((p) => p !== pci);
    let content: string | null | undefined; // undefined: leave as is; null: remove
    if (desired.persist === "modprobe") {
      if (others.length && existing && existing.numVfs !== desired.numVfs) {
        refuse(
          "numVfs",
          `persist "modprobe" writes "options ${driver} max_vfs=${desired.numVfs}", but ${conf} on ${opts.host} already gives every ${driver} port max_vfs=${existing.numVfs} for ${others.join(", ")}; a module option cannot differ per port: use the same numVfs on all of them, or persist "systemd"`,
        );
        return ops;
      }
      if (text !== undefined && !existing) warnings.push(`${conf} was edited by hand and could not be read back; it is rewritten for ${pci} only`);
      const want = renderModprobe({ driver, numVfs: desired.numVfs, ports: [...others, pci] });
      if (text !== want) content = want;
    } else if (existing?.ports.includes(pci)) {
      content = others.length ? renderModprobe({ ...existing, ports: others }) : null;
    }
    if (content !== undefined) {
      if (content === null) ops.push({ kind: "remove", description: `remove ${conf}`, path: conf });
      else
        ops.push({
          kind: "write",
          description: `write ${conf}: options ${driver} max_vfs=${desired.numVfs} (every ${driver} port gets ${vfs(desired.numVfs)} when the driver loads)`,
          path: conf,
          content,
        });
      // initramfs images carry /etc/modprobe.d: a driver loaded from the initramfs reads the copy there.
      if (has("update-initramfs"))
        ops.push({ kind: "run", description: "regenerate the initramfs so it carries the module option", argv: ["update-initramfs", "-u"] });
      else if (has("dracut")) ops.push({ kind: "run", description: "regenerate the initramfs so it carries the module option", argv: ["dracut", "-f"] });
    }
  }
  return ops;
}

/** What makes `facts` become `desired`, or the failures naming the properties when it cannot. */
export function plan(facts: Facts, desired: Desired, opts: PlanOptions): Plan {
  const pf: PfFacts | undefined = facts.pf;
  const warnings: string[] = [];
  if (!pf) {
    // The device is gone: only what this resource wrote for it can be undone.
    if (!opts.pciAddress) throw new Error("plan: no PF and no PCI address");
    const failures: CheckFailure[] = [];
    const ops = persistOps(facts, opts.pciAddress, opts.driver ?? "", { ...desired, persist: "none" }, { host: opts.host, warnings, failures });
    if (failures.length) return refused(failures, warnings);
    return { ops, problems: [], failures: [], destroys: [], countChanges: false, warnings, persistPath: "" };
  }
  const pci = pf.pciAddress;
  const who = `PF ${pci}${pf.netdevs[0] ? ` (${pf.netdevs[0].name})` : ""} on ${opts.host}`;
  const total = pf.totalVfs ?? 0;
  const selector = opts.selector ?? "pciAddress";

  // Everything that can be known to fail is refused before the first write.
  const failures: { property: string; reason: string }[] = [];
  if (desired.numVfs > total)
    failures.push({
      property: "numVfs",
      reason: `${desired.numVfs} VFs requested, but ${who} (${pf.driver || "no driver"}) supports at most ${total} (sriov_totalvfs ${total})`,
    });
  if (!pf.driver && (desired.numVfs !== pf.numVfs || desired.numVfs > 0))
    failures.push({ property: selector, reason: `${who} has no driver bound; the kernel creates VFs only through the PF's driver (load it, e.g. modprobe, and bind it first)` });
  const netdev = pf.netdevs[0];
  if (desired.mtu !== undefined && !netdev) failures.push({ property: "mtu", reason: `${who} has no network interface to set the MTU on (driver ${pf.driver || "none"})` });
  if (desired.persist === "modprobe" && pf.driver && !pf.driverHasMaxVfs)
    failures.push({
      property: "persist",
      reason: `"modprobe" needs the ${pf.driver} driver's max_vfs module parameter, and ${pf.driver} has none on ${opts.host} (modinfo -p ${pf.driver}); use persist "systemd" or "udev"`,
    });
  if (desired.persist === "modprobe" && !pf.driver) failures.push({ property: "persist", reason: `"modprobe" needs to know the PF's driver, and ${who} has none bound` });
  if (desired.persist === "udev" && !facts.tools.includes("udevadm"))
    failures.push({ property: "persist", reason: `"udev" needs udev, and ${opts.host} has no udevadm; use persist "systemd"` });
  if (failures.length) return refused(failures, warnings);

  const ops: Op[] = [];
  const mtu = desired.mtu ?? (opts.restoreMtu && opts.restoreMtu > 0 ? opts.restoreMtu : undefined);
  if (mtu !== undefined && netdev && netdev.mtu !== mtu) {
    ops.push({
      kind: "run",
      description: `set the MTU of ${netdev.name} from ${netdev.mtu} to ${mtu}`,
      argv: facts.tools.includes("ip") ? ["ip", "link", "set", "dev", netdev.name, "mtu", String(mtu)] : sysfsWrite(`/sys/class/net/${netdev.name}/mtu`, String(mtu)),
    });
  }
  if (pf.autoprobe !== desired.autoprobe)
    ops.push({
      kind: "run",
      description: `set sriov_drivers_autoprobe of ${pci} to ${desired.autoprobe ? 1 : 0} (VFs ${desired.autoprobe ? "get" : "do not get"} their default driver as they are created)`,
      argv: sysfsWrite(`${SYS}/${pci}/sriov_drivers_autoprobe`, desired.autoprobe ? "1" : "0"),
    });

  const countChanges = pf.numVfs !== desired.numVfs || (!!opts.recreate && pf.numVfs > 0 && desired.numVfs > 0);
  const destroys = countChanges && pf.numVfs > 0 ? pf.vfs : [];
  if (countChanges) {
    if (pf.numVfs > 0)
      ops.push({
        kind: "run",
        description:
          desired.numVfs > 0
            ? `remove the ${vfs(pf.numVfs)} of ${pci} (the kernel takes a new count only from 0)`
            : `remove the ${vfs(pf.numVfs)} of ${pci}`,
        argv: sysfsWrite(`${SYS}/${pci}/sriov_numvfs`, "0"),
      });
    if (desired.numVfs > 0)
      ops.push({
        kind: "run",
        description: `create ${vfs(desired.numVfs)} on ${pci}`,
        argv: vfWriteArgv(pci, desired.numVfs),
        vfWrite: { pciAddress: pci, numVfs: desired.numVfs, totalVfs: total, previous: pf.numVfs },
      });
    if (facts.tools.includes("udevadm"))
      ops.push({ kind: "run", description: "wait for udev to finish with the VF devices", argv: ["udevadm", "settle", "--timeout=60"] });
  }

  ops.push(...persistOps(facts, pci, pf.driver, desired, { host: opts.host, warnings, failures }));
  if (failures.length) return refused(failures, warnings);

  // Persistence made by hand for this PF is replaced, as listed in takeOver, or refused: never two mechanisms.
  if (desired.persist !== "none") {
    const t = takeOverOps({
      pf: { pciAddress: pci, netdevs: pf.netdevs.map((n) => n.name), driver: pf.driver },
      persist: desired.persist,
      takeOver: desired.takeOver ?? [],
      foreign: facts.foreign,
      contents: facts.foreignContent ?? {},
      enabled: facts.foreignEnabled ?? {},
      taken: facts.takenOver ?? [],
      tools: facts.tools,
      others: facts.candidates,
      host: opts.host,
    });
    if (t.failures.length) return refused(t.failures, warnings);
    ops.push(...t.ops);
    warnings.push(...t.warnings);
  }

  // Each VirtualFunction unit file on the host is a VF resource that wants its
  // settings back on the new VFs. restart, not try-restart: a unit that failed
  // while its VF was missing must run too. Units of VFs beyond the new count
  // are left alone: they would wait for a VF that will not come.
  const remaining = new Set(Array.from({ length: countChanges ? desired.numVfs : 0 }, (_, i) => vfUnitName(pci, i)));
  const reapply = facts.vfUnits.filter((u) => remaining.has(u));
  if (reapply.length)
    ops.push({
      kind: "run",
      description: `re-apply the settings of ${pci}'s VFs (${reapply.join(", ")})`,
      argv: ["systemctl", "restart", "--", ...reapply],
    });

  if (desired.persist === "modprobe") {
    const alsoHit = facts.candidates.filter((c) => c.driver === pf.driver && c.pciAddress !== pci);
    if (alsoHit.length)
      warnings.push(
        `options ${pf.driver} max_vfs=${desired.numVfs} also gives ${alsoHit
          .map((c) => `${c.pciAddress}${c.netdevs[0] ? ` (${c.netdevs[0]})` : ""}`)
          .join(", ")} ${vfs(desired.numVfs)} whenever ${pf.driver} loads`,
      );
  }
  return { ops, problems: [], failures: [], destroys, countChanges, warnings, persistPath: persistPathFor(desired.persist, pci, pf.driver) };
}

/** The kernel's refusal to create VFs, with the kernel's own words and what to do about it. */
export function explainVfWriteFailure(w: VfWrite, who: string, stderr: string): string {
  const [head, log = ""] = stderr.split("--- kernel log:");
  const kernel = log
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const all = `${head}\n${log}`;
  let remedy: string;
  if (/bus [0-9a-f]+ out of range|bus number out of range/i.test(all))
    remedy =
      'the PCI bridge above the PF has no bus numbers left for the VFs: add "pci=assign-busses" to the kernel command line (IommuKernelArgs extraArgs) and reboot';
  else if (/MSI-?X|interrupt vector/i.test(all))
    remedy = "the device has run out of MSI-X interrupt vectors: request fewer VFs, or raise the vectors the device/firmware provides";
  else if (/MMIO|\bBAR\b|can't assign|cannot allocate memory|no space/i.test(all))
    remedy =
      'not enough PCI memory (MMIO) space for the VFs\' BARs: add "pci=realloc" to the kernel command line (IommuKernelArgs extraArgs) and reboot, or enable SR-IOV and "Above 4G decoding" in the BIOS';
  else if (/already enabled|busy/i.test(all))
    remedy = "the PF already had VFs when the count was written (something changed it at the same time); run the update again";
  else if (/does not support SRIOV configuration|no such device/i.test(all))
    remedy = 'the bound driver cannot create VFs through sysfs; use a driver that can, or persist "modprobe" with its max_vfs option';
  else remedy = "check that SR-IOV is enabled in the BIOS (globally and for this card) and read the kernel log (dmesg) around the write";
  const errLine = head.trim().split("\n").filter(Boolean).pop() ?? "";
  return [
    `the kernel refused to create ${vfs(w.numVfs)} on ${who} (sriov_totalvfs ${w.totalVfs})${errLine ? `: ${errLine}` : ""}`,
    kernel.length ? `kernel log:\n  ${kernel.join("\n  ")}` : "the kernel logged nothing about it",
    `remedy: ${remedy}`,
  ].join("\n");
}
