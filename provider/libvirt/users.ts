// Which guests use a network: the network's ports (one per connected guest
// interface, each naming its owner domain). Used to refuse cutting guests
// off (delete, restart) and to name them when refusing.
import type { RemoteHost } from "../host";
import { commandLine, HostCommandError } from "../host";
import { parsePort } from "./port";
import { isNotFound, parseNames, virsh } from "./virsh";

export interface NetworkUser {
  domain: string;
  /** MACs of the domain's interfaces on the network, with the VF each holds. */
  macs: string[];
}

/** Guests connected to `network`, from its ports; two round trips (one when there are none). */
export async function networkUsers(host: RemoteHost, uri: string, network: string): Promise<NetworkUser[]> {
  const listArgv = virsh(uri, "net-port-list", network, "--uuid");
  const [list] = await host.batch([listArgv]);
  if (list.code !== 0) {
    if (isNotFound(list)) return [];
    throw new HostCommandError(host.name, commandLine(listArgv), list.code, list.stdout, list.stderr, `list the ports of network ${network}`);
  }
  const uuids = parseNames(list.stdout);
  if (uuids.length === 0) return [];
  const dumps = await host.batch(uuids.map((u) => virsh(uri, "net-port-dumpxml", network, u)));
  const byDomain = new Map<string, string[]>();
  dumps.forEach((r, i) => {
    if (r.code !== 0) {
      if (/not found|no network port/i.test(r.stderr)) return; // released in between
      throw new HostCommandError(host.name, commandLine(virsh(uri, "net-port-dumpxml", network, uuids[i])), r.code, r.stdout, r.stderr, `read a port of network ${network}`);
    }
    const p = parsePort(r.stdout);
    const owner = p.owner?.name ?? `(port ${p.uuid})`;
    const what = p.plug?.pciAddress ? `${p.mac ?? "?"} on VF ${p.plug.pciAddress}` : (p.mac ?? "?");
    byDomain.set(owner, [...(byDomain.get(owner) ?? []), what]);
  });
  return [...byDomain].map(([domain, macs]) => ({ domain, macs }));
}

export function describeUsers(users: readonly NetworkUser[]): string {
  return users.map((u) => `${u.domain} (${u.macs.join(", ")})`).join(", ");
}
