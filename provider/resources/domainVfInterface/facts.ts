// Reading a domain's interfaces from a host in one round trip and one virsh
// process: dominfo for
// state and persistence, the running and the persistent XML, and for a pool
// interface the pool's VFs (a running guest shows only the VF it got).
import { commandLine, HostCommandError, RemoteHost } from "../../host";
import type { CommandResult } from "../../host";
import { parseDomain } from "../../libvirt/domain";
import { parseNetwork } from "../../libvirt/network";
import { infoFlag, isNotFound, isVirshMissing, parseInfo, virsh, virshCommands } from "../../libvirt/virsh";
import { DomainFacts } from "./plan";

export async function readFacts(host: RemoteHost, uri: string, domain: string, network?: string): Promise<DomainFacts> {
  const reads = domainReads(host, uri, domain, network);
  return reads.facts(await host.run(reads.argv, { allowFail: true }));
}

/**
 * The domain's reads as one command (one virsh process), for the host lock's
 * first read or execute's read back; `facts` parses its result.
 */
export function domainReads(host: RemoteHost, uri: string, domain: string, network?: string): { argv: string[]; facts(r: CommandResult): DomainFacts } {
  const reads = [["dominfo", domain], ["dumpxml", domain], ["dumpxml", "--inactive", domain]];
  if (network !== undefined) reads.push(["net-dumpxml", network]);
  const all = virshCommands(uri, reads);
  return { argv: all.argv, facts: (r) => factsOf(host, uri, domain, reads, all.split(r)) };
}

function factsOf(host: RemoteHost, uri: string, domain: string, reads: string[][], [ri, rl, rc, rn]: CommandResult[]): DomainFacts {
  // Each read's own command line is what an error quotes.
  const [info, live, config] = reads.map((c) => virsh(uri, ...c));
  if (ri.code !== 0) {
    if (isNotFound(ri)) return { exists: false, running: false, persistent: false };
    const what = isVirshMissing(ri) ? "virsh is not installed on this host (install libvirt-clients / libvirt-daemon-system)" : `read domain ${domain}`;
    throw new HostCommandError(host.name, commandLine(info), ri.code, ri.stdout, ri.stderr, what);
  }
  const i = parseInfo(ri.stdout);
  // "Id: -" for a domain that is not running; paused and other active states have an id.
  const running = /^[0-9]+$/.test(i.Id ?? "");
  const facts: DomainFacts = { exists: true, running, persistent: infoFlag(i, "Persistent") };
  // A missing or unreadable network leaves the pool unknown; interfaces are still ours by MAC.
  if (rn?.code === 0) facts.poolVfs = parseNetwork(rn.stdout).forward?.addresses ?? [];
  if (rl.code !== 0) throw new HostCommandError(host.name, commandLine(live), rl.code, rl.stdout, rl.stderr, `read domain ${domain}`);
  facts.live = parseDomain(rl.stdout);
  if (facts.persistent) {
    if (rc.code !== 0) throw new HostCommandError(host.name, commandLine(config), rc.code, rc.stdout, rc.stderr, `read domain ${domain}`);
    facts.config = parseDomain(rc.stdout);
  }
  return facts;
}
