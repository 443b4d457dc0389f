// Reading a pool network's state from a host: one round trip and one virsh
// process for the network itself (and one shell for its PF or VFs), a second
// round trip only when guests are connected and need naming.
import { batchArgv, commandLine, HostCommandError, RemoteHost, shScript } from "../../host";
import type { CommandResult } from "../../host";
import { parseNetwork } from "../../libvirt/network";
import { networkUsers } from "../../libvirt/users";
import { infoFlag, isNotFound, isVirshMissing, parseInfo, virsh, virshCommands } from "../../libvirt/virsh";
import { connections, PoolFacts } from "./plan";
import { PoolInputs } from "./schema";

function fail(host: RemoteHost, argv: string[], r: CommandResult, what: string): never {
  const hint = isVirshMissing(r) ? "virsh is not installed on this host (install libvirt-clients / libvirt-daemon-system)" : what;
  throw new HostCommandError(host.name, commandLine(argv), r.code, r.stdout, r.stderr, hint);
}

type PoolSelector = Pick<PoolInputs, "name" | "libvirtUri" | "pf" | "vfs">;

/**
 * The pool network's reads as one command (one virsh process for the
 * network, one shell for its PF or VFs), for `host.withLock`'s first read or
 * `execute`'s read back; `facts` parses its result.
 */
export function poolReads(host: RemoteHost, w: PoolSelector) {
  const uri = w.libvirtUri;
  const reads = [["net-info", w.name], ["net-dumpxml", w.name], ["net-dumpxml", "--inactive", w.name]];
  const all = virshCommands(uri, reads);
  const cmds = [all.argv];
  if (w.pf !== undefined) cmds.push(shScript('f=/sys/class/net/$1/device/sriov_numvfs; [ -e "$f" ] || exit 44; read -r n <"$f" && echo "$n"', w.pf));
  else if (w.vfs?.length) cmds.push(shScript('for a in "$@"; do [ -e "/sys/bus/pci/devices/$a/physfn" ] || echo "$a"; done; exit 0', ...w.vfs));
  const batch = batchArgv(cmds);
  return {
    argv: batch.argv,
    facts: (r: CommandResult, opts: { users?: boolean } = {}) => factsOf(host, w, all.split, batch.split(r, host.name), opts),
  };
}

export async function readFacts(host: RemoteHost, w: PoolSelector, opts: { users?: boolean } = {}): Promise<PoolFacts> {
  const reads = poolReads(host, w);
  return reads.facts(await host.run(reads.argv, { allowFail: true }), opts);
}

async function factsOf(
  host: RemoteHost,
  w: PoolSelector,
  splitVirsh: (r: CommandResult) => CommandResult[],
  [rv, rs]: CommandResult[],
  opts: { users?: boolean },
): Promise<PoolFacts> {
  const uri = w.libvirtUri;
  // Each read's own command line is what an error quotes.
  const [info, live, config] = [["net-info", w.name], ["net-dumpxml", w.name], ["net-dumpxml", "--inactive", w.name]].map((c) => virsh(uri, ...c));
  const [ri, rl, rc] = splitVirsh(rv);

  const facts: PoolFacts = { exists: false, active: false, persistent: false, autostart: false };
  if (rs) {
    if (w.pf !== undefined) facts.pfNumVfs = rs.code === 44 ? null : rs.code === 0 ? Number(rs.stdout.trim()) : undefined;
    else facts.missingVfs = rs.stdout.split("\n").filter(Boolean);
  }
  if (ri.code !== 0) {
    if (isNotFound(ri)) return facts;
    fail(host, info, ri, `read network ${w.name}`);
  }
  const i = parseInfo(ri.stdout);
  facts.exists = true;
  facts.active = infoFlag(i, "Active");
  facts.persistent = infoFlag(i, "Persistent");
  facts.autostart = infoFlag(i, "Autostart");
  if (i.UUID) facts.uuid = i.UUID;
  if (rl.code !== 0) fail(host, live, rl, `read network ${w.name}`);
  facts.liveXml = rl.stdout;
  facts.live = parseNetwork(rl.stdout);
  if (facts.persistent) {
    if (rc.code !== 0) fail(host, config, rc, `read network ${w.name}`);
    facts.config = parseNetwork(rc.stdout);
  }
  if (opts.users && connections(facts) > 0) facts.users = await networkUsers(host, uri, w.name);
  return facts;
}
