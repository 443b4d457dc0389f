// What the host says about a PF, gathered in one round trip by one shell
// script, and parsed here without touching the host. The script takes its
// inputs as positional parameters (never spliced into its text); $3 is a
// root prefix so tests can run it against a fake /sys and /etc.
import { RECORD_DIR } from "../../host/host";
import { FoundState, Selector } from "./schema";

export const UNIT_DIR = "/etc/systemd/system";
export const UDEV_DIR = "/etc/udev/rules.d";
export const MODPROBE_DIR = "/etc/modprobe.d";

export function unitName(pci: string): string {
  return `pulumi-sriov-pf-${pci}.service`;
}
export function unitPath(pci: string): string {
  return `${UNIT_DIR}/${unitName(pci)}`;
}
export function udevRulePath(pci: string): string {
  return `${UDEV_DIR}/70-pulumi-sriov-${pci}.rules`;
}
/** Create's record of the PF as found (VF count, autoprobe, MTU), kept until delete. */
export function foundPath(pci: string): string {
  return `${RECORD_DIR}/sriov-pf-${pci}.json`;
}

export function modprobePath(driver: string): string {
  return `${MODPROBE_DIR}/pulumi-sriov-${driver}.conf`;
}

export const READ_SCRIPT = String.raw`
kind="$1"; val="$2"; R="$3"; hint="$4"; records="$5"
S="$R/sys/bus/pci/devices"; E="$R/etc"
out() { printf '%s' "$1"; shift; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; }
rd() { if [ -r "$1" ] && v=$(cat "$1" 2>/dev/null) && [ -n "$v" ]; then printf '%s' "$v"; else printf -; fi; }
lnk() { if [ -L "$1" ]; then basename "$(readlink "$1")"; else printf -; fi; }
names() { ls -1 "$1" 2>/dev/null; }
b64() { base64 | tr -d '\n'; }
matches=
for p in $(names "$S"); do
  d="$S/$p"
  [ -e "$d/sriov_totalvfs" ] || continue
  out cand "$p" "$(lnk "$d/driver")"
  for n in $(names "$d/net"); do
    m=$(rd "$d/net/$n/address"); out candnet "$p" "$n" "$m"
    [ "$m" = "$val" ] && matches="$matches $p"
  done
done
sel=; drv=-
case "$kind" in
  pciAddress) [ -e "$S/$val" ] && sel="$val" ;;
  interface)
    if [ -e "$R/sys/class/net/$val" ]; then
      if [ -e "$R/sys/class/net/$val/device" ]; then sel=$(basename "$(readlink -f "$R/sys/class/net/$val/device")"); out ifdev "$sel"
      else out ifdev -; fi
    fi ;;
  macAddress) set -- $matches; [ $# -eq 1 ] && sel="$1" ;;
esac
for t in systemctl udevadm virsh ip modinfo update-initramfs dracut; do command -v "$t" >/dev/null 2>&1 && out tool "$t"; done
if [ -n "$sel" ] && [ -e "$S/$sel" ]; then
  d="$S/$sel"; out sel "$sel"
  for a in sriov_totalvfs sriov_numvfs sriov_drivers_autoprobe numa_node; do out "pf.$a" "$(rd "$d/$a")"; done
  drv=$(lnk "$d/driver"); out pf.driver "$drv"
  [ -L "$d/physfn" ] && out pf.physfn "$(lnk "$d/physfn")"
  pfnet=; pfnames=
  for n in $(names "$d/net"); do
    out pf.net "$n" "$(rd "$d/net/$n/address")" "$(rd "$d/net/$n/mtu")" "$(rd "$d/net/$n/operstate")"
    [ -n "$pfnet" ] || pfnet="$n"; pfnames="$pfnames $n"
  done
  i=0
  while [ -L "$d/virtfn$i" ]; do
    v="$d/virtfn$i"; vn=-; vm=-
    for n in $(names "$v/net"); do vn="$n"; vm=$(rd "$v/net/$n/address"); break; done
    out vf "$i" "$(lnk "$v")" "$(lnk "$v/iommu_group")" "$(lnk "$v/driver")" "$vn" "$vm"
    i=$((i+1))
  done
  if [ -n "$pfnet" ] && command -v ip >/dev/null 2>&1; then
    ip link show dev "$pfnet" 2>/dev/null | sed -n 's/^ *vf \([0-9][0-9]*\) .*link\/ether \([0-9a-fA-F:]*\).*/vfmac\t\1\t\2/p'
  fi
  # Persistence this resource did not write that also sets this PF's VF count.
  for dir in /etc/udev/rules.d /etc/systemd/system; do
    for b in $(names "$R$dir"); do
      f="$dir/$b"
      case "$b" in pulumi-sriov-*|70-pulumi-sriov-*) continue ;; *.rules|*.service) ;; *) continue ;; esac
      [ -f "$R$f" ] && grep -q sriov_numvfs "$R$f" 2>/dev/null || continue
      hit=
      grep -qF -- "$sel" "$R$f" && hit="$sel"
      for n in $pfnames; do grep -qw -- "$n" "$R$f" && hit="$hit $n"; done
      [ "$drv" != - ] && grep -qF -- "\"$drv\"" "$R$f" && hit="$hit $drv"
      [ -n "$hit" ] && out foreign "$f" "$hit"
    done
  done
  if [ "$drv" != - ]; then
    if command -v modinfo >/dev/null 2>&1; then
      modinfo -p "$drv" 2>/dev/null | grep -q '^max_vfs:' && out param max_vfs
    fi
    for b in $(names "$E/modprobe.d"); do
      f="/etc/modprobe.d/$b"
      case "$b" in *.conf) ;; *) continue ;; esac
      [ "$f" != "/etc/modprobe.d/pulumi-sriov-$drv.conf" ] && [ -f "$R$f" ] || continue
      grep -Eq "^[[:space:]]*options[[:space:]]+$drv[[:space:]].*max_vfs" "$R$f" 2>/dev/null && out foreign "$f" "options $drv max_vfs"
    done
  fi
fi
# Our own files: read even when the device is gone, so delete can remove them.
fp="$sel"; [ -z "$fp" ] && [ "$kind" = pciAddress ] && fp="$val"
if [ -n "$fp" ]; then
  [ "$drv" != - ] || drv="$hint"
  unit="/etc/systemd/system/pulumi-sriov-pf-$fp.service"; rule="/etc/udev/rules.d/70-pulumi-sriov-$fp.rules"; conf=
  [ -n "$drv" ] && [ "$drv" != - ] && conf="/etc/modprobe.d/pulumi-sriov-$drv.conf"
  for f in "$unit" "$rule" $conf; do [ -f "$R$f" ] && out file "$f" "$(b64 <"$R$f")"; done
  fs="$records/sriov-pf-$fp.json"; [ -f "$R$fs" ] && out found "$(b64 <"$R$fs")"
  if command -v systemctl >/dev/null 2>&1; then
    u="pulumi-sriov-pf-$fp.service"
    out unit "$(systemctl is-enabled "$u" 2>/dev/null)" "$(systemctl is-active "$u" 2>/dev/null)"
  fi
  for b in $(names "$E/systemd/system"); do
    case "$b" in "pulumi-sriov-vf-$fp-"*.service) out vfunit "$b" ;; esac
  done
fi
out end
`;

/** `driverHint`: the PF's last known driver, to find its modprobe file when the device is gone. */
export function readArgv(kind: Selector, value: string, opts: { root?: string; driverHint?: string } = {}): string[] {
  return ["sh", "-c", READ_SCRIPT, "sh", kind, value, opts.root ?? "", opts.driverHint ?? "", RECORD_DIR];
}

export interface PfCandidate {
  pciAddress: string;
  driver: string;
  netdevs: string[];
  macs: string[];
}

export interface NetdevFacts {
  name: string;
  mac: string;
  mtu: number;
  operstate: string;
}

export interface VfFacts {
  index: number;
  pciAddress: string;
  iommuGroup?: number;
  driver: string;
  netdev: string;
  mac: string;
}

export interface PfFacts {
  pciAddress: string;
  /** undefined: the device has no SR-IOV capability. */
  totalVfs?: number;
  numVfs: number;
  autoprobe: boolean;
  numaNode: number;
  /** "" when no driver is bound. */
  driver: string;
  /** Set when the device is itself a VF: its PF. */
  physfn?: string;
  netdevs: NetdevFacts[];
  vfs: VfFacts[];
  /** Addresses the PF assigned to its VFs (ip link "vf N link/ether …"). */
  adminMacs: Record<number, string>;
  driverHasMaxVfs: boolean;
}

export interface Facts {
  candidates: PfCandidate[];
  /** For the interface selector: the device behind the netdev ("-" when it has none), absent when no such netdev. */
  interfaceDevice?: string;
  pf?: PfFacts;
  /** Our persistence files for this PF that exist, by path. */
  files: Record<string, string>;
  unit?: { enabled: string; active: string };
  /** The PF as an earlier, unfinished create found it (see foundPath). */
  found?: FoundState;
  vfUnits: string[];
  tools: string[];
  foreign: { path: string; mentions: string }[];
}

/** The found-state file's content, or undefined when it is not one (then create records anew). */
export function parseFound(text: string): FoundState | undefined {
  try {
    const v = JSON.parse(text);
    if (Number.isInteger(v?.numVfs) && v.numVfs >= 0 && typeof v.autoprobe === "boolean" && Number.isInteger(v.mtu) && v.mtu >= 0)
      return { numVfs: v.numVfs, autoprobe: v.autoprobe, mtu: v.mtu };
  } catch {
    /* not JSON */
  }
  return undefined;
}

export function renderFound(f: FoundState): string {
  return JSON.stringify({ numVfs: f.numVfs, autoprobe: f.autoprobe, mtu: f.mtu }) + "\n";
}

function num(s: string | undefined): number | undefined {
  if (s === undefined || s === "-" || s === "") return undefined;
  const n = Number(s.trim());
  return Number.isFinite(n) ? n : undefined;
}

const dash = (s: string | undefined) => (s === undefined || s === "-" ? "" : s);

/** Parses the read script's output. Throws when it is cut short. */
export function parseFacts(stdout: string): Facts {
  const f: Facts = { candidates: [], files: {}, vfUnits: [], tools: [], foreign: [] };
  const pf: Partial<PfFacts> & { netdevs: NetdevFacts[]; vfs: VfFacts[]; adminMacs: Record<number, string> } = {
    netdevs: [],
    vfs: [],
    adminMacs: {},
  };
  let selected: string | undefined;
  let ended = false;
  const attrs: Record<string, string> = {};
  for (const line of stdout.split("\n")) {
    if (!line) continue;
    const [tag, ...c] = line.split("\t");
    switch (tag) {
      case "cand":
        f.candidates.push({ pciAddress: c[0], driver: dash(c[1]), netdevs: [], macs: [] });
        break;
      case "candnet": {
        const cand = f.candidates.find((x) => x.pciAddress === c[0]);
        if (cand) {
          cand.netdevs.push(c[1]);
          if (dash(c[2])) cand.macs.push(c[2].toLowerCase());
        }
        break;
      }
      case "ifdev":
        f.interfaceDevice = c[0];
        break;
      case "tool":
        f.tools.push(c[0]);
        break;
      case "sel":
        selected = c[0];
        break;
      case "pf.driver":
        pf.driver = dash(c[0]);
        break;
      case "pf.physfn":
        pf.physfn = dash(c[0]) || undefined;
        break;
      case "pf.net":
        pf.netdevs.push({ name: c[0], mac: dash(c[1]), mtu: num(c[2]) ?? 0, operstate: dash(c[3]) });
        break;
      case "vf": {
        const v: VfFacts = { index: Number(c[0]), pciAddress: dash(c[1]), driver: dash(c[3]), netdev: dash(c[4]), mac: dash(c[5]) };
        const g = num(c[2]);
        if (g !== undefined) v.iommuGroup = g;
        pf.vfs.push(v);
        break;
      }
      case "vfmac":
        pf.adminMacs[Number(c[0])] = c[1].toLowerCase();
        break;
      case "file":
        f.files[c[0]] = Buffer.from(c[1] ?? "", "base64").toString("utf8");
        break;
      case "unit":
        f.unit = { enabled: c[0] ?? "", active: c[1] ?? "" };
        break;
      case "found":
        f.found = parseFound(Buffer.from(c[0] ?? "", "base64").toString("utf8"));
        break;
      case "vfunit":
        f.vfUnits.push(c[0]);
        break;
      case "param":
        if (c[0] === "max_vfs") pf.driverHasMaxVfs = true;
        break;
      case "foreign":
        f.foreign.push({ path: c[0], mentions: (c[1] ?? "").trim() });
        break;
      case "end":
        ended = true;
        break;
      default:
        if (tag.startsWith("pf.")) attrs[tag.slice(3)] = c[0];
    }
  }
  if (!ended) throw new Error("the host's answer about its PCI devices ended early");
  if (selected) {
    f.pf = {
      pciAddress: selected,
      totalVfs: num(attrs.sriov_totalvfs),
      numVfs: num(attrs.sriov_numvfs) ?? 0,
      autoprobe: attrs.sriov_drivers_autoprobe !== "0",
      numaNode: num(attrs.numa_node) ?? -1,
      driver: pf.driver ?? "",
      physfn: pf.physfn,
      netdevs: pf.netdevs,
      vfs: pf.vfs,
      adminMacs: pf.adminMacs,
      driverHasMaxVfs: !!pf.driverHasMaxVfs,
    };
  }
  return f;
}

/** Why the selector found no usable PF, in an operator's words; undefined when it did. */
export function selectorProblem(facts: Facts, kind: Selector, value: string, host: string): { property: string; reason: string } | undefined {
  const r = selectorReason(facts, kind, value, host);
  if (!r) return undefined;
  const i = r.indexOf(": ");
  return { property: r.slice(0, i), reason: r.slice(i + 2) };
}

function selectorReason(facts: Facts, kind: Selector, value: string, host: string): string | undefined {
  const list = facts.candidates.length
    ? `SR-IOV capable devices on ${host}: ${facts.candidates
        .map((c) => `${c.pciAddress} (${[c.netdevs.join(", ") || "no interface", c.driver || "no driver", ...c.macs].join(", ")})`)
        .join("; ")}`
    : `${host} has no SR-IOV capable PCI device (none has sriov_totalvfs; check that SR-IOV is enabled in the BIOS and for the card)`;
  const pf = facts.pf;
  if (!pf) {
    if (kind === "interface") {
      if (facts.interfaceDevice === undefined) return `interface: no network interface named ${value} on ${host}. ${list}`;
      if (facts.interfaceDevice === "-") return `interface: ${value} on ${host} is not backed by a device (a bridge, bond or other virtual interface). ${list}`;
      return `interface: ${value} on ${host} is not a PCI device (its device is ${facts.interfaceDevice}). ${list}`;
    }
    if (kind === "pciAddress") return `pciAddress: no PCI device ${value} on ${host}. ${list}`;
    const hits = facts.candidates.filter((c) => c.macs.includes(value));
    if (hits.length > 1)
      return `macAddress: ${value} belongs to several PFs on ${host} (${hits.map((h) => h.pciAddress).join(", ")}; bonded ports share a MAC); use pciAddress instead`;
    return `macAddress: no SR-IOV PF on ${host} has MAC ${value}. ${list}`;
  }
  if (pf.physfn) return `${kind}: ${value} on ${host} is a virtual function of PF ${pf.physfn}, not a PF; use the PF (or the VirtualFunction resource for this VF)`;
  if (pf.totalVfs === undefined)
    return `${kind}: ${value} on ${host} (PCI ${pf.pciAddress}, driver ${pf.driver || "none"}) does not support SR-IOV: it has no sriov_totalvfs. ${list}`;
  return undefined;
}
