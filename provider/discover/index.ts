// `pulumi-sriov discover`: read one host (the inventory script and
// IommuKernelArgs' own probe, one round trip each), turn what it has into
// inputs, then ask each resource's own preview (`spec.plan`) what `pulumi up`
// of those inputs would change, so the printed program is checked against the
// same code that will apply it.
import type { Connection } from "../connection";
import { hostFor, RemoteHost, shScript } from "../host";
import { Ctx, hostChangesIn, ResourceSpec } from "../resource";
import { detect } from "../resources/iommuKernelArgs/detect";
import { configuredNow } from "../resources/iommuKernelArgs/plan";
import { readFacts as readKernelFacts } from "../resources/iommuKernelArgs";
import { loadScript } from "../scripts";
import { adopt, Adoption } from "./adopt";
import { Inventory, parseInventory } from "./inventory";
import { LIBVIRT_URI } from "./libvirtUri";

export { LIBVIRT_URI };

const SCRIPT = loadScript("discover");

/** What `pulumi up` of the adoption would change, per resource (empty: nothing). */
export interface Check {
  resource: string;
  changes: string[];
  /** The resource's own inputs check or plan failed. */
  error?: string;
}

export interface Discovery {
  inventory: Inventory;
  adoption: Adoption;
  checks: Check[];
}

export async function readInventory(host: RemoteHost, root = ""): Promise<Inventory> {
  const r = await host.run(shScript(SCRIPT, root, LIBVIRT_URI), { what: "read the host's SR-IOV set-up" });
  return parseInventory(r.stdout);
}

async function configuredKernelArgs(host: RemoteHost): Promise<string[] | undefined> {
  const facts = await readKernelFacts(host);
  try {
    return configuredNow(facts, detect(facts, "auto", host.name));
  } catch {
    return undefined; // no bootloader we can edit: kernel arguments stay unmanaged
  }
}

function spec(kind: string): ResourceSpec<any, any> {
  return require(`../resources/${kind}`).spec;
}

async function check(ctx: Ctx, resource: string, kind: string, raw: Record<string, unknown>): Promise<Check> {
  const s = spec(kind);
  const parsed = s.schema().safeParse(raw);
  if (!parsed.success) return { resource, changes: [], error: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") };
  try {
    return { resource, changes: hostChangesIn(await s.plan!(ctx, parsed.data)) };
  } catch (e) {
    return { resource, changes: [], error: (e as Error).message };
  }
}

/** The resources' inputs for an adoption, as SriovHost creates them (without `connection`). */
export function resourcesOf(a: Adoption): { resource: string; kind: string; inputs: Record<string, unknown> }[] {
  const out: { resource: string; kind: string; inputs: Record<string, unknown> }[] = [];
  if (a.kernelArgs) out.push({ resource: "kernel arguments", kind: "iommuKernelArgs", inputs: { ...a.kernelArgs } });
  for (const pf of a.pfs) {
    const inputs: Record<string, unknown> = { pciAddress: pf.pciAddress, numVfs: pf.numVfs, persist: pf.persist };
    if (pf.autoprobe === false) inputs.autoprobe = false;
    out.push({ resource: `PF ${pf.pciAddress}`, kind: "sriovPf", inputs });
    if (!pf.interface) continue;
    for (const vf of pf.vfs) out.push({ resource: `PF ${pf.pciAddress} VF ${vf.index}`, kind: "virtualFunction", inputs: { ...vf, pf: pf.interface } });
  }
  for (const n of a.poolNetworks) {
    const pf = a.pfs.find((p) => p.pciAddress === n.pf)!;
    const { users: _u, ...inputs } = n;
    out.push({ resource: `network ${n.name}`, kind: "vfPoolNetwork", inputs: { ...inputs, pf: pf.interface } });
  }
  return out;
}

export async function discover(connection: Connection): Promise<Discovery> {
  const host = hostFor(connection);
  const [inventory, configured] = await Promise.all([readInventory(host), configuredKernelArgs(host)]);
  const adoption = adopt(inventory, configured);
  const ctx: Ctx = { host, connection };
  const checks = await Promise.all(resourcesOf(adoption).map((r) => check(ctx, r.resource, r.kind, r.inputs)));
  return { inventory, adoption, checks };
}
