// Helpers for the reliability suite on the lab host: what the host's files
// look like (hash per managed file, stray temp files, GRUB's verdict on
// grub.cfg), VF state read independently of the provider's parsers, and the
// glue that runs one lifecycle step in this process (where faults can be
// injected) while the engine's state lives in a `Stack` whose next `up`
// or `destroy` runs in the real provider process.
import { expect } from "chai";
import type { LabVm } from "../../lab/vm";
import { PROVIDER_KEY, secret, serializeProvider, Stack, StateEntry, unwrapSecrets } from "../support/engine";

/** Every file a resource of this project writes or makes a tool write (libvirt's XML included). */
const MANAGED = [
  "/etc/default/grub",
  "/etc/default/grub.d/*",
  "/boot/grub/grub.cfg",
  "/etc/systemd/system/pulumi-sriov-*",
  "/etc/udev/rules.d/70-pulumi-sriov-*",
  "/etc/modprobe.d/pulumi-sriov*",
  "/etc/libvirt/qemu/*.xml",
  "/etc/libvirt/qemu/networks/*.xml",
];
const TEMP_DIRS = ["/etc/default", "/etc/default/grub.d", "/boot/grub", "/etc/systemd/system", "/etc/udev/rules.d", "/etc/modprobe.d"];

export interface Snapshot {
  files: Record<string, string>;
  temps: string[];
  grubCheck: string;
}

export async function snapshot(vm: LabVm): Promise<Snapshot> {
  const out = await vm.run(
    `for f in ${MANAGED.join(" ")}; do [ -f "$f" ] && echo "H $(sha256sum < "$f" | cut -c1-16) $f"; done; ` +
      `find ${TEMP_DIRS.join(" ")} -maxdepth 1 -name '.*.tmp.*' -printf 'T %p\\n' 2>/dev/null; ` +
      `if grub-script-check /boot/grub/grub.cfg 2>&1; then echo "G ok"; else echo "G failed"; fi; true`,
  );
  const s: Snapshot = { files: {}, temps: [], grubCheck: "" };
  for (const line of out.split("\n")) {
    if (line.startsWith("H ")) {
      const [, h, ...p] = line.split(" ");
      s.files[p.join(" ")] = h;
    } else if (line.startsWith("T ")) s.temps.push(line.slice(2));
    else if (line.startsWith("G ")) s.grubCheck = line.slice(2);
    else if (line.trim()) s.grubCheck += ` ${line.trim()}`;
  }
  return s;
}

/** Each file after the fault is as it was before, or as the next run left it: never something in between. */
export function expectOldOrNew(before: Snapshot, faulted: Snapshot, after: Snapshot, what: string): void {
  const paths = new Set([...Object.keys(before.files), ...Object.keys(faulted.files), ...Object.keys(after.files)]);
  for (const p of paths) {
    const f = faulted.files[p];
    expect(f === before.files[p] || f === after.files[p], `${what}: ${p} is neither its old nor its new content`).to.equal(true);
  }
}

export interface HostVf {
  mac: string;
  vlan: number;
  qos: number;
  spoofchk: boolean;
  trust: boolean;
  driver: string;
}

/** A VF as `ip -j -d link` and sysfs report it. */
export async function hostVf(vm: LabVm, pf: string, index: number): Promise<HostVf | undefined> {
  const link = JSON.parse(await vm.run(`ip -j -d link show dev ${pf}`))[0];
  const e = (link.vfinfo_list ?? []).find((v: any) => v.vf === index);
  if (!e) return undefined;
  const vl = e.vlan_list?.[0] ?? {};
  const driver = (await vm.run(`v=$(readlink -f /sys/class/net/${pf}/device/virtfn${index}); if [ -e $v/driver ]; then basename "$(readlink -f $v/driver)"; fi; true`)).trim();
  return { mac: e.address, vlan: vl.vlan ?? 0, qos: vl.qos ?? 0, spoofchk: e.spoofchk, trust: e.trust, driver };
}

export type Kind = "iommuKernelArgs" | "sriovPf" | "virtualFunction" | "vfPoolNetwork" | "domainVfInterface";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

/** The engine's record of a resource after a create/update this process ran. */
export async function engineEntry(stack: Stack, kind: Kind, name: string, id: string, inputs: any, outs: any): Promise<StateEntry> {
  const text = await serializeProvider(providers[kind]);
  const { connection: ic, hostChanges: _h, ...inRest } = inputs;
  const { connection: oc, ...outRest } = outs;
  return {
    urn: `urn:pulumi:stack::project::pulumi-nodejs:dynamic:Resource::${name}`,
    name,
    id,
    inputs: { ...inRest, connection: secret(ic), [PROVIDER_KEY]: text },
    outputs: { ...outRest, connection: secret(oc ?? ic), [PROVIDER_KEY]: text },
  };
}

/** The plain values a provider method receives (secrets unwrapped, no __provider). */
export function plain(props: any): any {
  const { [PROVIDER_KEY]: _p, ...rest } = unwrapSecrets(props ?? {});
  return rest;
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms / 1000} s (hung)`)), ms)))]).finally(
    () => clearTimeout(t),
  );
}
