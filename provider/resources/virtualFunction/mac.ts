// Default VF MACs. VFs get a random or zero MAC each time they are created
// (RHEL guide: "a new MAC address each time the host is rebooted"), so guests
// see new hardware. A MAC derived from (host, PF PCI address, VF index) is
// the same on every re-creation and every apply, and distinct across a fleet.
import { createHash } from "crypto";

export const ZERO_MAC = "00:00:00:00:00:00";

/** Locally administered (0x02 set) unicast (0x01 clear) MAC from a hash of the VF's identity. */
export function derivedMac(hostId: string, pfPci: string, index: number, attempt = 0): string {
  const seed = `pulumi-sriov vf\n${hostId}\n${pfPci}\n${index}${attempt ? `\n${attempt}` : ""}`;
  const b = createHash("sha256").update(seed).digest().subarray(0, 6);
  b[0] = (b[0] | 0x02) & 0xfe;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/**
 * The derived MAC not used by another VF on the host: on the (very unlikely)
 * collision the next attempt is taken, so the result stays deterministic for
 * a given host.
 */
export function defaultMac(hostId: string, pfPci: string, index: number, taken: ReadonlySet<string>): string {
  for (let attempt = 0; ; attempt++) {
    const mac = derivedMac(hostId, pfPci, index, attempt);
    if (!taken.has(mac)) return mac;
  }
}

export function isLocallyAdministeredUnicast(mac: string): boolean {
  const first = parseInt(mac.slice(0, 2), 16);
  return (first & 0x02) === 0x02 && (first & 0x01) === 0;
}
