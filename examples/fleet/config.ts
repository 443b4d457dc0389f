// Fleet stack configuration: parsing, defaults, secrets and waves. Pure
// functions only (no Pulumi runtime), so every rule is unit-testable.
//
// Stack configuration (Pulumi.<stack>.yaml, namespace = project name):
//
//   waveSize: 2                 hosts per rollout wave (default: all in one wave)
//   defaults:                   merged into every host
//     connection: { user: root, port: 22 }
//     kernelArgs: { iommu: auto, passthrough: true }
//     pf: { persist: systemd, vfTemplate: { spoofCheck: true } }
//   hosts:
//     - name: hv01
//       connection: { host: 10.0.0.11, hostKey: "ssh-ed25519 AAAA…" }
//       kernelArgs: { extraArgs: [pci=realloc] }     # or false: not managed
//       pfs:
//         - pciAddress: "0000:41:00.0"
//           numVfs: 8
//           vfTemplate: { vlan: 100, trust: false }
//           vfs: [{ index: 0, mac: "02:00:00:00:41:00" }]
//       poolNetworks: [{ name: sriov-a, pf: "0000:41:00.0" }]
//
// Secrets never go in `hosts` or `defaults`; they are set with
// `pulumi config set --secret`:
//   sshPrivateKey, sshPassword, sshPrivateKeyPassword   for every host
//   hostSecrets.<host>.{privateKey,password,privateKeyPassword,proxy.*}   per host
import { z } from "zod";
import type { ConnectionArgs, IommuKernelArgsInputs, SriovHostArgs, SriovHostPfArgs, SriovHostPoolNetworkArgs } from "../../sdk";
import { validateSriovHostArgs } from "../../sdk/host";
import { inputsSchema as kernelInputsSchema } from "../../provider/resources/iommuKernelArgs/schema";
import { inputsSchema as pfInputsSchema } from "../../provider/resources/sriovPf/schema";
import { inputsSchema as poolInputsSchema } from "../../provider/resources/vfPoolNetwork/schema";
import { inputsSchema as vfInputsSchema } from "../../provider/resources/virtualFunction/schema";

/** Connection fields that are secrets: refused in plain configuration. */
export const SECRET_FIELDS = ["password", "privateKey", "privateKeyPassword"] as const;
type SecretField = (typeof SECRET_FIELDS)[number];

/** Plain (non-secret) connection settings as they appear in stack configuration. */
export interface PlainConnection {
  host?: string;
  port?: number;
  user?: string;
  hostKey?: string;
  agentSocketPath?: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
  insecureSkipHostKeyCheck?: boolean;
  proxy?: Omit<PlainConnection, "proxy">;
}

/** A VF's attributes as the VirtualFunction schema takes them (without pf and index). */
export type PlainVfAttributes = Omit<z.input<ReturnType<typeof vfInputsSchema>>, "pf" | "index">;

export interface PfConfig {
  interface?: string;
  pciAddress?: string;
  macAddress?: string;
  numVfs: number;
  autoprobe?: boolean;
  persist?: "systemd" | "udev" | "modprobe" | "none";
  mtu?: number;
  force?: boolean;
  /** Hand-made persistence files the PF's SriovPf replaces (absolute paths; per PF, not a default). */
  takeOver?: string[];
  vfTemplate?: Omit<PlainVfAttributes, "mac">;
  vfs?: (PlainVfAttributes & { index: number })[];
  manageVfs?: boolean;
}

/** Kernel arguments as the IommuKernelArgs schema takes them. */
export type KernelArgsConfig = z.input<ReturnType<typeof kernelInputsSchema>>;

export interface PoolNetworkConfig {
  name: string;
  pf: string;
  vlan?: number;
  autostart?: boolean;
  libvirtUri?: string;
  force?: boolean;
}

export interface HostConfig {
  /** Unique host name: names the SriovHost component and keys `hostSecrets`. */
  name: string;
  connection: PlainConnection & { host: string };
  /** Kernel arguments; false: not managed on this host (overrides defaults.kernelArgs). */
  kernelArgs?: KernelArgsConfig | false;
  pfs: PfConfig[];
  poolNetworks?: PoolNetworkConfig[];
  /** Adopt what the host has: SriovHost child name → id (as `pulumi-sriov discover --format yaml` prints). */
  imports?: Record<string, string>;
}

export interface FleetDefaults {
  connection?: PlainConnection;
  kernelArgs?: KernelArgsConfig;
  /** PF settings applied under every PF's own (vfTemplate merged key by key). */
  pf?: Omit<PfConfig, "interface" | "pciAddress" | "macAddress" | "numVfs" | "vfs">;
}

export interface FleetConfig {
  waveSize?: number;
  defaults?: FleetDefaults;
  hosts: HostConfig[];
}

export interface SecretCredentials {
  password?: string;
  privateKey?: string;
  privateKeyPassword?: string;
}

/** The secret half of the configuration (read with getSecret / getSecretObject). */
export interface FleetSecrets {
  sshPrivateKey?: string;
  sshPassword?: string;
  sshPrivateKeyPassword?: string;
  hostSecrets?: Record<string, SecretCredentials & { proxy?: SecretCredentials }>;
}

/** A configuration error; `problems` name each bad setting by its path. */
export class FleetConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid fleet configuration:\n  ${problems.join("\n  ")}`);
    this.name = "FleetConfigError";
  }
}

// ---------------------------------------------------------------------------
// Schemas (built per call).

/** One field of a resource's input schema, without its default. */
function providerField(schema: () => z.ZodType, key: string): z.ZodType {
  let f = (schema() as unknown as z.ZodObject).shape[key] as z.ZodType;
  if (!f) throw new Error(`no field ${key} in the resource schema`);
  while (f instanceof z.ZodDefault || f instanceof z.ZodOptional) f = f.unwrap() as z.ZodType;
  return f;
}

/** Fields of a resource's input schema, each optional and without its default. */
function providerFields(schema: () => z.ZodType, keys: readonly string[]): Record<string, z.ZodType> {
  return Object.fromEntries(keys.map((k) => [k, providerField(schema, k).optional()]));
}

function schemas() {
  const int = (what = "a whole number") => z.number({ message: `must be ${what}` }).int(`must be ${what}`);
  const bool = () => z.boolean({ message: "must be true or false" });
  const str = () => z.string({ message: "must be a string" }).min(1, "must not be empty");
  const endpoint = {
    host: str(),
    port: int().min(1, "must be 1–65535").max(65535, "must be 1–65535").optional(),
    user: str().optional(),
    hostKey: str().optional(),
    agentSocketPath: str().optional(),
    dialErrorLimit: int().min(1, "must be at least 1").optional(),
    perDialTimeout: z.number({ message: "must be a number of seconds" }).positive("must be positive").optional(),
    insecureSkipHostKeyCheck: bool().optional(),
  };
  const proxy = z.object(endpoint).strict();
  const connection = z.object({ ...endpoint, proxy: proxy.optional() }).strict();
  // Resource settings are checked by the resources' own field schemas, so a
  // bad value reads the same here as in the resource (defaults stay unset
  // until the hosts are resolved).
  const vfAttrs = providerFields(vfInputsSchema, ["vlan", "qos", "vlanProtocol", "spoofCheck", "trust", "linkState", "minTxRate", "maxTxRate", "driver", "persist"]);
  const vfTemplate = z.object(vfAttrs).strict();
  const vfOverride = z.object({ index: providerField(vfInputsSchema, "index"), ...providerFields(vfInputsSchema, ["mac"]), ...vfAttrs }).strict();
  const pfSettings = {
    ...providerFields(pfInputsSchema, ["autoprobe", "persist", "mtu", "force"]),
    vfTemplate: vfTemplate.optional(),
    manageVfs: bool().optional(),
  };
  const pf = z
    .object({
      ...providerFields(pfInputsSchema, ["interface", "pciAddress", "macAddress", "takeOver"]),
      numVfs: providerField(pfInputsSchema, "numVfs"),
      vfs: z.array(vfOverride).optional(),
      ...pfSettings,
    })
    .strict();
  const kernelArgs = z.object(providerFields(kernelInputsSchema, ["iommu", "passthrough", "extraArgs", "bootloader", "reboot", "rebootTimeoutSeconds"])).strict();
  const poolNetwork = z
    .object({
      name: providerField(poolInputsSchema, "name"),
      pf: str(), // one of this host's PFs, by the key it is listed with
      ...providerFields(poolInputsSchema, ["vlan", "autostart", "libvirtUri", "force"]),
    })
    .strict();
  const host = z
    .object({
      name: z.string({ message: "must be a string" }).regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "must be a host name (letters, digits, _ . -; at most 63 characters)"),
      connection,
      kernelArgs: z.union([kernelArgs, z.literal(false)]).optional(),
      pfs: z.array(pf, { message: "must be a list of PFs" }),
      poolNetworks: z.array(poolNetwork).optional(),
      imports: z.record(z.string(), z.string({ message: "must be an id (a string)" }).min(1, "must be a non-empty id")).optional(),
    })
    .strict();
  const defaults = z
    .object({
      connection: z.object({ ...endpoint, host: str().optional(), proxy: proxy.optional() }).strict().optional(),
      kernelArgs: kernelArgs.optional(),
      pf: z.object(pfSettings).strict().optional(),
    })
    .strict();
  const fleet = z
    .object({
      waveSize: int().min(1, "must be at least 1").optional(),
      defaults: defaults.optional(),
      hosts: z.array(host, { message: "must be a list of hosts" }).min(1, "must list at least one host"),
    })
    .strict();
  const credentials = z.object({ password: str().optional(), privateKey: str().optional(), privateKeyPassword: str().optional() }).strict();
  const secrets = z
    .object({
      sshPrivateKey: str().optional(),
      sshPassword: str().optional(),
      sshPrivateKeyPassword: str().optional(),
      hostSecrets: z.record(z.string(), credentials.extend({ proxy: credentials.optional() }).strict()).optional(),
    })
    .strict();
  return { fleet, secrets };
}

/** "hosts[0].pfs[1].numVfs" from a zod path. */
export function pathName(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || "(configuration)";
}

function zodProblems(error: z.ZodError, describe: (path: readonly PropertyKey[], message: string) => string): string[] {
  return error.issues.map((i) => {
    if (i.code === "unrecognized_keys") return i.keys.map((k) => describe([...i.path, k], "is not a known setting")).join("\n  ");
    return describe(i.path, i.message);
  });
}

/** Finds secret fields written into plain configuration; each problem says how to set it instead. */
export function plainSecretProblems(raw: any): string[] {
  const problems: string[] = [];
  const scan = (conn: any, at: string, target: (field: SecretField, proxy: boolean) => string) => {
    if (!conn || typeof conn !== "object") return;
    for (const f of SECRET_FIELDS)
      if (f in conn) problems.push(`${at}.${f}: secrets do not belong in plain configuration; set it with: pulumi config set --secret ${target(f, false)}`);
    if (conn.proxy && typeof conn.proxy === "object")
      for (const f of SECRET_FIELDS)
        if (f in conn.proxy) problems.push(`${at}.proxy.${f}: secrets do not belong in plain configuration; set it with: pulumi config set --secret ${target(f, true)}`);
  };
  const global: Record<SecretField, string> = { password: "sshPassword", privateKey: "sshPrivateKey", privateKeyPassword: "sshPrivateKeyPassword" };
  scan(raw?.defaults?.connection, "defaults.connection", (f, proxy) => (proxy ? `--path 'hostSecrets.<host>.proxy.${f}' <value>` : `${global[f]} <value>`));
  if (Array.isArray(raw?.hosts))
    raw.hosts.forEach((h: any, i: number) => {
      const name = typeof h?.name === "string" ? h.name : "<host>";
      scan(h?.connection, `hosts[${i}].connection`, (f, proxy) => `--path 'hostSecrets.${name}.${proxy ? "proxy." : ""}${f}' <value>`);
    });
  return problems;
}

/**
 * Parses and checks the plain fleet configuration. Throws a FleetConfigError
 * listing every problem by its configuration path; returns the typed value.
 */
export function parseFleetConfig(raw: unknown): FleetConfig {
  const problems = plainSecretProblems(raw);
  // Secret fields were reported above; do not report them again as unknown settings.
  const stripped = stripSecretFields(raw);
  const r = schemas().fleet.safeParse(stripped);
  if (!r.success) problems.push(...zodProblems(r.error, (p, m) => `${pathName(p)}: ${m}`));
  if (problems.length) throw new FleetConfigError(problems);
  const fleet = r.data as FleetConfig;
  const names = new Map<string, number>();
  fleet.hosts.forEach((h, i) => {
    if (names.has(h.name)) problems.push(`hosts[${i}].name: ${h.name} is already hosts[${names.get(h.name)}]`);
    else names.set(h.name, i);
  });
  // Structural rules of each host (selectors, VF indexes, pool network PFs) as SriovHost checks them.
  fleet.hosts.forEach((h, i) => {
    for (const p of hostStructureProblems(resolveHost(h, fleet.defaults))) problems.push(`hosts[${i}].${p}`);
  });
  if (problems.length) throw new FleetConfigError(problems);
  return fleet;
}

function stripSecretFields(raw: any): any {
  if (!raw || typeof raw !== "object") return raw;
  const strip = (c: any) => {
    if (!c || typeof c !== "object" || Array.isArray(c)) return c;
    const out = { ...c };
    for (const f of SECRET_FIELDS) delete out[f];
    if (out.proxy && typeof out.proxy === "object" && !Array.isArray(out.proxy)) {
      out.proxy = { ...out.proxy };
      for (const f of SECRET_FIELDS) delete out.proxy[f];
    }
    return out;
  };
  const out = { ...raw };
  if (out.defaults && typeof out.defaults === "object") out.defaults = { ...out.defaults, connection: strip(out.defaults.connection) };
  if (out.defaults && out.defaults.connection === undefined) delete out.defaults.connection;
  if (Array.isArray(out.hosts)) out.hosts = out.hosts.map((h: any) => (h && typeof h === "object" ? { ...h, connection: strip(h.connection) } : h));
  return out;
}

/**
 * Checks the secret configuration against the host list. Problems name keys
 * only, never values.
 */
export function checkFleetSecrets(raw: unknown, hostNames: string[]): FleetSecrets {
  const problems: string[] = [];
  const r = schemas().secrets.safeParse(raw ?? {});
  if (!r.success) problems.push(...zodProblems(r.error, (p, m) => `${pathName(p)}: ${m}`));
  const secrets = (r.success ? r.data : {}) as FleetSecrets;
  const given = (raw as any)?.hostSecrets;
  for (const name of given && typeof given === "object" ? Object.keys(given) : [])
    if (!hostNames.includes(name)) problems.push(`hostSecrets.${name}: no host of that name (hosts: ${hostNames.join(", ")})`);
  if (problems.length) throw new FleetConfigError(problems);
  return secrets;
}

/** A host with the fleet defaults applied, ready for SriovHost (connection still without secrets). */
export interface ResolvedHost {
  name: string;
  connection: PlainConnection & { host: string };
  kernelArgs?: KernelArgsConfig;
  pfs: PfConfig[];
  poolNetworks: PoolNetworkConfig[];
  imports?: Record<string, string>;
}

/** Applies `defaults` to a host: connection fields, kernel arguments, PF settings and VF template (host values win). */
export function resolveHost(host: HostConfig, defaults: FleetDefaults = {}): ResolvedHost {
  const dc = defaults.connection ?? {};
  const connection = { ...dc, ...host.connection } as PlainConnection & { host: string };
  if (dc.proxy || host.connection.proxy) connection.proxy = { ...(dc.proxy ?? {}), ...(host.connection.proxy ?? {}) };
  let kernelArgs: KernelArgsConfig | undefined;
  if (host.kernelArgs !== false && (host.kernelArgs || defaults.kernelArgs)) kernelArgs = { ...(defaults.kernelArgs ?? {}), ...(host.kernelArgs || {}) };
  const dpf = defaults.pf ?? {};
  const pfs = host.pfs.map((pf) => {
    const merged: PfConfig = { ...dpf, ...pf };
    const template = { ...(dpf.vfTemplate ?? {}), ...(pf.vfTemplate ?? {}) };
    if (Object.keys(template).length && merged.manageVfs !== false) merged.vfTemplate = template;
    else delete merged.vfTemplate;
    return merged;
  });
  return { name: host.name, connection, kernelArgs, pfs, poolNetworks: host.poolNetworks ?? [], ...(host.imports ? { imports: host.imports } : {}) };
}

/** The same structural rules SriovHost enforces, applied before any resource is declared. */
function hostStructureProblems(h: ResolvedHost): string[] {
  return validateSriovHostArgs({ connection: h.connection as ConnectionArgs, kernelArgs: h.kernelArgs, pfs: h.pfs, poolNetworks: h.poolNetworks, imports: h.imports }, h.name).filter(
    (p) => !p.startsWith("connection"),
  );
}

/** The full connection of a host: plain settings plus its secrets (per-host secrets win over fleet-wide ones). */
export function connectionFor(host: ResolvedHost, secrets: FleetSecrets): ConnectionArgs {
  const own = secrets.hostSecrets?.[host.name] ?? {};
  const c: any = { ...host.connection };
  const pick = (v: string | undefined, k: SecretField) => {
    if (v !== undefined) c[k] = v;
  };
  pick(own.privateKey ?? secrets.sshPrivateKey, "privateKey");
  pick(own.password ?? secrets.sshPassword, "password");
  pick(own.privateKeyPassword ?? secrets.sshPrivateKeyPassword, "privateKeyPassword");
  if (own.proxy) c.proxy = { ...(c.proxy ?? {}), ...own.proxy };
  return c as ConnectionArgs;
}

/** SriovHost arguments for a resolved host, with the given connection. */
export function sriovHostArgs(host: ResolvedHost, connection: SriovHostArgs["connection"]): SriovHostArgs {
  return {
    connection,
    kernelArgs: host.kernelArgs as IommuKernelArgsInputs | undefined,
    pfs: host.pfs as SriovHostPfArgs[],
    poolNetworks: host.poolNetworks as SriovHostPoolNetworkArgs[],
    ...(host.imports ? { imports: host.imports } : {}),
  };
}

/**
 * Splits hosts into rollout waves of `waveSize`, in configuration order
 * (default: one wave with every host).
 */
export function computeWaves<T>(hosts: readonly T[], waveSize?: number): T[][] {
  const size = waveSize ?? hosts.length;
  if (!Number.isInteger(size) || size < 1) throw new FleetConfigError([`waveSize: must be a whole number ≥ 1 (got ${JSON.stringify(waveSize)})`]);
  const waves: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) waves.push(hosts.slice(i, i + size));
  return waves;
}
