// Which running guests use a network: their live XML has an interface whose
// source is the network. Used to refuse cutting guests off (delete, restart)
// and to name them when refusing.
import type { RemoteHost } from "../host";
import { commandLine, HostCommandError } from "../host";
import { interfacesOnNetwork, parseDomain } from "./domain";
import { isNotFound, parseNames, virsh } from "./virsh";

export interface NetworkUser {
  domain: string;
  /** MACs of the domain's interfaces on the network. */
  macs: string[];
}

/** Running domains with an interface on `network`; two round trips. */
export async function networkUsers(host: RemoteHost, uri: string, network: string): Promise<NetworkUser[]> {
  const listArgv = virsh(uri, "list", "--uuid");
  const [list] = await host.batch([listArgv]);
  if (list.code !== 0) throw new HostCommandError(host.name, commandLine(listArgv), list.code, list.stdout, list.stderr, "list running domains");
  const uuids = parseNames(list.stdout);
  if (uuids.length === 0) return [];
  const dumps = await host.batch(uuids.map((u) => virsh(uri, "dumpxml", u)));
  const users: NetworkUser[] = [];
  dumps.forEach((r, i) => {
    if (r.code !== 0) {
      if (isNotFound(r)) return; // stopped and undefined in between
      throw new HostCommandError(host.name, commandLine(virsh(uri, "dumpxml", uuids[i])), r.code, r.stdout, r.stderr, "read a running domain");
    }
    const d = parseDomain(r.stdout);
    const on = interfacesOnNetwork(d, network);
    if (on.length) users.push({ domain: d.name, macs: on.map((x) => x.mac ?? "?") });
  });
  return users;
}

export function describeUsers(users: readonly NetworkUser[]): string {
  return users.map((u) => `${u.domain} (${u.macs.join(", ")})`).join(", ");
}
