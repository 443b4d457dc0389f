// A local stand-in for `pulumi preview` / `pulumi up` / `pulumi destroy`
// where no Pulumi CLI is installed: the Pulumi program runs in this process
// with the real @pulumi/pulumi language SDK (its resource monitor replaced),
// and every custom resource goes through the real dynamic-provider process
// over gRPC (test/support/engine.ts), the way the engine drives it:
//
//   check → (no prior state) create
//         → (prior state)    diff → same | update | replace
//
// Ordering comes from the SDK itself: a resource is registered only after
// every resource it depends on (dependsOn, inputs, component children) has
// answered, exactly as with the real engine, so independent resources run in
// parallel and a failure stops everything that depends on it. Resources in
// state but no longer in the program are deleted afterwards (reverse order).
// State lives in memory for the life of the LocalStack.
import * as pulumi from "@pulumi/pulumi";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as engine from "../../test/support/engine";
// eslint-disable-next-line @typescript-eslint/no-var-requires
const settings = require("@pulumi/pulumi/runtime/settings");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const rpc = require("@pulumi/pulumi/runtime/rpc");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const runtimeConfig = require("@pulumi/pulumi/runtime/config");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const outputModule = require("@pulumi/pulumi/output");
// eslint-disable-next-line @typescript-eslint/no-var-requires
const resproto = require("@pulumi/pulumi/proto/resource_pb");

export type Op = "create" | "update" | "replace" | "same" | "delete";

export interface Step {
  op: Op;
  urn: string;
  type: string;
  name: string;
  /** Checked inputs (what `pulumi preview --diff` shows for a create), secrets still marked. */
  inputs: Record<string, any>;
  /** Inputs in state before this deployment (update/replace/delete). */
  oldInputs?: Record<string, any>;
  /** Top-level input keys whose value changes (update/replace). */
  changedKeys: string[];
  /** Keys the provider said force a replacement. */
  replaces: string[];
  /** URNs this resource waited for. */
  dependencies: string[];
  millis: number;
}

export interface StepEvent {
  phase: "start" | "done" | "failed";
  step: Pick<Step, "urn" | "type" | "name"> & Partial<Step>;
  error?: Error;
}

export interface Deployment {
  preview: boolean;
  steps: Step[];
  /** The program's exports (stack outputs), resolved; "[unknown]" where a preview cannot know them. */
  outputs: any;
  /** Errors: failed resources and program errors. Empty when the deployment succeeded. */
  errors: Error[];
  /** gRPC calls made to the provider process, by method. */
  calls: Record<string, number>;
  /** What the provider process printed (diagnostics). */
  logs: engine.LogEntry[];
}

export interface StateEntry {
  urn: string;
  type: string;
  name: string;
  parentType?: string;
  id: string;
  inputs: Record<string, any>;
  outputs: Record<string, any>;
  dependencies: string[];
}

export interface LocalStackOptions {
  project: string;
  stack: string;
  /** Stack configuration, keys without the project prefix; objects are passed as JSON like `pulumi config`. */
  config?: Record<string, unknown>;
  /** Config keys whose values are secrets (as `pulumi config set --secret`). */
  secretKeys?: string[];
  /** Directory the provider process runs in (resolves `require` of handlers). Default: the repository root. */
  cwd?: string;
  /** Progress callback (one event as each resource starts and ends). */
  onEvent?: (e: StepEvent) => void;
}

export const UNKNOWN_DISPLAY = "[unknown]";

/** A failed deployment; `deployment` has what was done before the failure. */
export class DeploymentFailed extends Error {
  constructor(readonly deployment: Deployment) {
    super(deployment.errors.map((e) => e.message).join("\n"));
    this.name = "DeploymentFailed";
  }
}

function typeOfUrn(urn: string): string {
  return urn.split("::")[2].split("$").pop()!;
}

function newUrn(stack: string, project: string, parent: string, type: string, name: string): string {
  const chain = parent ? `${urnTypeChain(parent)}$${type}` : type;
  return `urn:pulumi:${stack}::${project}::${chain}::${name}`;
}

function urnTypeChain(urn: string): string {
  return urn.split("::")[2];
}

/** The SDK's deserialized values → engine wire values (unknowns as the UNKNOWN string). */
function toWire(v: any): any {
  if (v === outputModule.unknown) return engine.UNKNOWN;
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, toWire(e)]));
  return v;
}

function isPlainObject(v: unknown): v is Record<string, any> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

function same(a: any, b: any): boolean {
  return JSON.stringify(canonical(engine.unwrapSecrets(a))) === JSON.stringify(canonical(engine.unwrapSecrets(b)));
}

function canonical(v: any): any {
  if (Array.isArray(v)) return v.map(canonical);
  if (isPlainObject(v))
    return Object.fromEntries(
      Object.keys(v)
        .filter((k) => v[k] !== undefined)
        .sort()
        .map((k) => [k, canonical(v[k])]),
    );
  return v;
}

/** Top-level keys whose values differ (ignoring `__provider`). */
export function changedKeys(olds: Record<string, any>, news: Record<string, any>): string[] {
  const keys = new Set([...Object.keys(olds ?? {}), ...Object.keys(news ?? {})]);
  keys.delete(engine.PROVIDER_KEY);
  return [...keys].filter((k) => !same(olds?.[k], news?.[k]) || JSON.stringify(news?.[k] ?? null).includes(engine.UNKNOWN)).sort();
}

async function resolveOutputs(v: any): Promise<any> {
  const o = pulumi.output(v) as any;
  const value = await o.promise(/* withUnknowns */ true);
  const display = (x: any): any => {
    if (x === outputModule.unknown) return UNKNOWN_DISPLAY;
    if (Array.isArray(x)) return x.map(display);
    if (isPlainObject(x)) return Object.fromEntries(Object.entries(x).map(([k, e]) => [k, display(e)]));
    return x;
  };
  return display(value);
}

export class LocalStack {
  /** Resource state by URN, in the order resources were created. */
  readonly state = new Map<string, StateEntry>();
  /** Progress callback; may be changed between deployments. */
  onEvent: ((e: StepEvent) => void) | undefined;

  constructor(readonly opts: LocalStackOptions) {
    this.onEvent = opts.onEvent;
  }

  preview(program: () => unknown): Promise<Deployment> {
    return this.deploy(program, true);
  }

  up(program: () => unknown): Promise<Deployment> {
    return this.deploy(program, false);
  }

  /** Deletes every resource in reverse creation order (`pulumi destroy`). */
  async destroy(): Promise<Deployment> {
    const proc = await engine.ProviderProcess.start(this.engineOptions());
    const steps: Step[] = [];
    const errors: Error[] = [];
    try {
      for (const s of [...this.state.values()].reverse()) {
        try {
          await this.deleteEntry(proc, s, steps);
        } catch (e) {
          errors.push(e as Error);
          break;
        }
      }
    } finally {
      await proc.stop();
    }
    const d: Deployment = { preview: false, steps, outputs: {}, errors, calls: { ...proc.calls }, logs: proc.logs };
    if (errors.length) throw new DeploymentFailed(d);
    return d;
  }

  private engineOptions(): engine.EngineOptions {
    return { cwd: this.opts.cwd, project: this.opts.project, stack: this.opts.stack };
  }

  private emit(e: StepEvent): void {
    this.onEvent?.(e);
  }

  private async deleteEntry(proc: engine.ProviderProcess, s: StateEntry, steps: Step[]): Promise<void> {
    const t0 = Date.now();
    const step: Step = { op: "delete", urn: s.urn, type: s.type, name: s.name, inputs: {}, oldInputs: s.inputs, changedKeys: [], replaces: [], dependencies: s.dependencies, millis: 0 };
    this.emit({ phase: "start", step });
    try {
      await proc.delete(s.outputs[engine.PROVIDER_KEY] ?? "", s.id, s.name, s.outputs, { type: s.type, parentType: s.parentType, oldInputs: s.inputs });
    } catch (e) {
      this.emit({ phase: "failed", step, error: e as Error });
      throw e;
    }
    this.state.delete(s.urn);
    step.millis = Date.now() - t0;
    steps.push(step);
    this.emit({ phase: "done", step });
  }

  private async deploy(program: () => unknown, preview: boolean): Promise<Deployment> {
    const { project, stack } = this.opts;
    const proc = await engine.ProviderProcess.start(this.engineOptions());
    const steps: Step[] = [];
    const errors: Error[] = [];
    const registered = new Set<string>();
    const pendingDeletes: StateEntry[] = [];

    await pulumi.runtime.setMocks(
      {
        newResource: () => {
          throw new Error("local engine: unexpected mock call");
        },
        call: () => {
          throw new Error("local engine: invokes are not supported");
        },
      },
      project,
      stack,
      preview,
    );
    const config: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.opts.config ?? {})) config[`${project}:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
    runtimeConfig.setAllConfig(config, (this.opts.secretKeys ?? []).map((k) => `${project}:${k}`));

    const monitor = settings.getMonitor();
    monitor.registerResource = (req: any, cb: (err: any, resp?: any) => void) => {
      this.register(req, proc, preview, registered, steps, pendingDeletes).then(
        (resp) => cb(null, resp),
        (err) => {
          errors.push(err);
          cb(err);
        },
      );
    };
    monitor.registerResourceOutputs = (_req: any, cb: (err: any, resp?: any) => void) => cb(null, {});
    monitor.readResource = (req: any, cb: (err: any) => void) => cb(new Error(`local engine: reading existing resources is not supported (${req.getName()})`));

    // Rejections of outputs of failed resources surface here, as with `pulumi up`.
    const unhandled = (e: any) => {
      if (!errors.some((x) => x === e || (e && x.message && e.message && e.message.includes(x.message)))) errors.push(e instanceof Error ? e : new Error(String(e)));
    };
    process.on("unhandledRejection", unhandled);
    let outputs: any = {};
    try {
      try {
        outputs = await resolveOutputs(await program());
      } catch (e) {
        unhandled(e);
      }
      await settings.waitForRPCs();
      // Give rejected outputs a turn to report.
      await new Promise((r) => setImmediate(r));

      if (errors.length === 0) {
        // Create-before-delete replacements: old resources go last.
        for (const old of pendingDeletes.reverse()) {
          if (!preview) await proc.delete(old.outputs[engine.PROVIDER_KEY] ?? "", old.id, old.name, old.outputs, { type: old.type, parentType: old.parentType, oldInputs: old.inputs });
        }
        // Resources no longer declared.
        for (const s of [...this.state.values()].filter((x) => !registered.has(x.urn)).reverse()) {
          if (preview) {
            steps.push({ op: "delete", urn: s.urn, type: s.type, name: s.name, inputs: {}, oldInputs: s.inputs, changedKeys: [], replaces: [], dependencies: s.dependencies, millis: 0 });
          } else {
            try {
              await this.deleteEntry(proc, s, steps);
            } catch (e) {
              errors.push(e as Error);
              break;
            }
          }
        }
      }
    } finally {
      process.off("unhandledRejection", unhandled);
      await proc.stop();
    }
    const d: Deployment = { preview, steps, outputs, errors, calls: { ...proc.calls }, logs: proc.logs };
    if (errors.length) throw new DeploymentFailed(d);
    return d;
  }

  private async register(
    req: any,
    proc: engine.ProviderProcess,
    preview: boolean,
    registered: Set<string>,
    steps: Step[],
    pendingDeletes: StateEntry[],
  ): Promise<any> {
    const { project, stack } = this.opts;
    const type: string = req.getType();
    const name: string = req.getName();
    const parent: string = req.getParent();
    const urn = newUrn(stack, project, parent, type, name);
    if (registered.has(urn)) throw new Error(`Duplicate resource URN '${urn}'; try giving it a unique name`);
    registered.add(urn);
    const resp = new resproto.RegisterResourceResponse();
    resp.setUrn(urn);
    if (!req.getCustom()) {
      // Components have no provider: their inputs are their state.
      resp.setObject(req.getObject());
      return resp;
    }

    const raw = toWire(rpc.deserializeProperties(req.getObject()));
    const providerText = engine.unwrapSecrets(raw[engine.PROVIDER_KEY]);
    const news = { ...raw };
    delete news[engine.PROVIDER_KEY];
    const parentType = parent ? typeOfUrn(parent) : undefined;
    const copts: engine.CallOptions = { preview, type, parentType };
    const dependencies: string[] = req.getDependenciesList();
    const old = this.state.get(urn);
    const t0 = Date.now();
    const step: Step = { op: "create", urn, type, name, inputs: news, changedKeys: [], replaces: [], dependencies, millis: 0 };
    this.emit({ phase: "start", step });
    try {
      const checkFailed = (failures: engine.CheckFailure[]) =>
        new Error(`${type} ${name}: invalid inputs:\n${failures.map((f) => `  ${f.property}: ${f.reason}`).join("\n")}`);
      const checked = await proc.check(providerText, name, old?.inputs ?? {}, news, copts);
      if (checked.failures.length) throw checkFailed(checked.failures);
      let inputs = checked.inputs;
      step.inputs = inputs;
      let id = "";
      let outs: Record<string, any>;

      if (!old) {
        ({ id, outs } = await proc.create(providerText, name, inputs, copts));
      } else {
        step.oldInputs = old.inputs;
        step.changedKeys = changedKeys(old.inputs, inputs);
        const diff = await proc.diff(providerText, old.id, name, old.outputs, inputs, { ...copts, oldInputs: old.inputs });
        if (!diff.changes) {
          step.op = "same";
          id = old.id;
          outs = old.outputs;
        } else if (diff.replaces.length === 0) {
          step.op = "update";
          id = old.id;
          ({ outs } = await proc.update(providerText, old.id, name, old.outputs, inputs, { ...copts, oldInputs: old.inputs }));
        } else {
          step.op = "replace";
          step.replaces = diff.replaces;
          const rechecked = await proc.check(providerText, name, {}, news, copts);
          if (rechecked.failures.length) throw checkFailed(rechecked.failures);
          inputs = rechecked.inputs;
          step.inputs = inputs;
          const dbr = req.getDeletebeforereplace() || diff.deleteBeforeReplace;
          if (dbr && !preview) {
            await proc.delete(old.outputs[engine.PROVIDER_KEY] ?? providerText, old.id, name, old.outputs, { ...copts, oldInputs: old.inputs });
            this.state.delete(urn);
          }
          ({ id, outs } = await proc.create(providerText, name, inputs, copts));
          if (!dbr) pendingDeletes.push(old);
        }
      }

      // The engine marks additionalSecretOutputs secret.
      for (const k of req.getAdditionalsecretoutputsList() as string[])
        if (outs[k] !== undefined && !engine.isSecret(outs[k])) outs = { ...outs, [k]: engine.secret(outs[k]) };
      if (!preview) this.state.set(urn, { urn, type, name, parentType, id, inputs, outputs: outs, dependencies });
      step.millis = Date.now() - t0;
      steps.push(step);
      this.emit({ phase: "done", step });
      if (id) resp.setId(id);
      resp.setObject(structproto.Struct.fromJavaScript(outs as any));
      return resp;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      step.millis = Date.now() - t0;
      this.emit({ phase: "failed", step, error: err });
      throw err;
    }
  }
}
