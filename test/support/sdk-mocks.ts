// Pulumi mocks for program tests: every registration is recorded with what
// the language SDK sends the engine (type, parent, dependencies, additional
// secret outputs, inputs with secrets still marked), and each resource's
// state is its inputs plus plausible outputs for its kind.
import * as pulumi from "@pulumi/pulumi";
// eslint-disable-next-line @typescript-eslint/no-var-requires
const settings = require("@pulumi/pulumi/runtime/settings");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const rpc = require("@pulumi/pulumi/runtime/rpc");

export const SIG_KEY = "4dabf18193072939515e22adb298388d";
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

export interface Registration {
  urn: string;
  type: string;
  name: string;
  custom: boolean;
  parent: string;
  /** URNs the engine would wait for (explicit dependsOn plus resources referenced by inputs). */
  dependencies: string[];
  additionalSecretOutputs: string[];
  /** Inputs as sent to the engine (secrets as `{ [SIG_KEY]: SECRET_SIG, value }`). */
  inputs: Record<string, any>;
  /** Outputs registered by a component with registerOutputs. */
  outputs?: Record<string, any>;
}

export function isSecretValue(v: any): boolean {
  return !!v && typeof v === "object" && v[SIG_KEY] === SECRET_SIG;
}

/** Every string in `v` that is not inside a secret. */
export function plainStrings(v: any, out: string[] = []): string[] {
  if (isSecretValue(v)) return out;
  if (typeof v === "string") out.push(v);
  else if (Array.isArray(v)) v.forEach((e) => plainStrings(e, out));
  else if (v && typeof v === "object") Object.values(v).forEach((e) => plainStrings(e, out));
  return out;
}

function unwrap(v: any): any {
  if (isSecretValue(v)) return unwrap(v.value);
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, unwrap(e)]));
  return v;
}

/** Plausible outputs for a resource of this package, from its inputs. */
export function fakeOutputs(type: string, inputs: Record<string, any>): Record<string, any> {
  const i = unwrap(inputs);
  const kind = type.split(":").pop();
  switch (kind) {
    case "IommuKernelArgs":
      return {
        args: ["intel_iommu=on", "iommu=pt", ...(i.extraArgs ?? [])],
        bootloader: i.bootloader && i.bootloader !== "auto" ? i.bootloader : "grub",
        configPath: "/etc/default/grub",
        activeCmdline: "BOOT_IMAGE=/vmlinuz root=/dev/sda1 intel_iommu=on iommu=pt",
        rebootRequired: false,
        iommuEnabled: true,
        iommuGroupCount: 12,
        warnings: [],
      };
    case "SriovPf": {
      const n = Number(i.numVfs ?? 0);
      return {
        interface: i.interface ?? "enp1s0",
        pciAddress: i.pciAddress ?? "0000:01:00.0",
        driver: "igb",
        totalVfs: 7,
        numVfs: n,
        numaNode: 0,
        persistPath: "/etc/systemd/system/pulumi-sriov-vfs@.service",
        vfs: Array.from({ length: n }, (_, k) => ({
          index: k,
          pciAddress: `0000:02:00.${k}`,
          iommuGroup: 20 + k,
          netdev: `enp2s0v${k}`,
          driver: "igbvf",
          mac: `02:00:00:00:00:0${k}`,
        })),
        warnings: [],
        found: { numVfs: 0, autoprobe: true, mtu: 1500 },
      };
    }
    case "VirtualFunction":
      return {
        pciAddress: `0000:02:00.${i.index}`,
        iommuGroup: 20 + Number(i.index),
        netdev: `enp2s0v${i.index}`,
        driver: i.driver === "vfio-pci" ? "vfio-pci" : "igbvf",
        mac: i.mac ?? `02:aa:00:00:00:0${i.index}`,
        numaNode: 0,
        pfPciAddress: "0000:01:00.0",
        pfInterface: i.pf,
        persistPath: `/etc/systemd/system/pulumi-sriov-vf@${i.index}.service`,
      };
    case "VfPoolNetwork":
      return {
        uuid: "6f1c9a52-3a4b-4c1e-9d7e-000000000001",
        xml: `<network><name>${i.name}</name></network>`,
        active: true,
        autostart: i.autostart ?? true,
        connections: 0,
        vfAddresses: ["0000:02:00.0", "0000:02:00.1"],
      };
    case "DomainVfInterface":
      return { mac: i.mac ?? "52:54:00:aa:bb:cc", pciAddress: "0000:02:00.3", alias: "hostdev0" };
    default:
      return {};
  }
}

export interface MockRun {
  registrations: Registration[];
  byName(name: string): Registration;
  byType(kind: string): Registration[];
  /** Waits until every registration so far has been answered. */
  settle(): Promise<void>;
}

/**
 * Installs mocks (optionally in preview mode) and a recorder in front of the
 * mock monitor. Call before constructing resources.
 */
export async function installMocks(opts: { project?: string; stack?: string; preview?: boolean; failOn?: (name: string) => boolean } = {}): Promise<MockRun> {
  const registrations: Registration[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args: pulumi.runtime.MockResourceArgs) {
        if (opts.failOn?.(args.name)) throw new Error(`mock failure creating ${args.name}`);
        if (!args.custom) return { id: undefined, state: args.inputs };
        // What the engine stores for these dynamic providers: the provider's
        // outputs, the connection (secret) and the inputs as applied.
        const { connection, __provider: _p, ...applied } = args.inputs;
        return { id: `${args.name}-id`, state: { ...fakeOutputs(args.type, args.inputs), connection, applied } };
      },
      call(args: pulumi.runtime.MockCallArgs) {
        return args.inputs;
      },
    },
    opts.project ?? "project",
    opts.stack ?? "stack",
    opts.preview ?? false,
  );
  const monitor = settings.getMonitor();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, cb: any) => {
    const parent: string = req.getParent();
    const type: string = req.getType();
    const name: string = req.getName();
    const urn = monitor.newUrn(parent, type, name);
    registrations.push({
      urn,
      type,
      name,
      custom: req.getCustom(),
      parent,
      dependencies: req.getDependenciesList(),
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      inputs: rpc.deserializeProperties(req.getObject()),
    });
    return register(req, cb);
  };
  const registerOutputs = monitor.registerResourceOutputs.bind(monitor);
  monitor.registerResourceOutputs = (req: any, cb: any) => {
    const r = registrations.find((x) => x.urn === req.getUrn());
    if (r) r.outputs = rpc.deserializeProperties(req.getOutputs());
    return registerOutputs(req, cb);
  };
  return {
    registrations,
    byName(name) {
      const r = registrations.find((x) => x.name === name);
      if (!r) throw new Error(`no resource named ${name}; registered: ${registrations.map((x) => x.name).join(", ")}`);
      return r;
    },
    byType(kind) {
      return registrations.filter((x) => x.type.endsWith(`:${kind}`));
    },
    settle: () => settings.waitForRPCs(),
  };
}

/** Resolves an Output's value (undefined when it is unknown, as in a preview). */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
  return (o as any).promise(/* withUnknowns */ false);
}
