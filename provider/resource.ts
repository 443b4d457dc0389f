// The lifecycle every resource shares: validation in check, replacement
// rules in diff, connection handling, and state shape. A resource supplies
// only what is specific to it (schema, observe, apply, remove).
//
// State stored by the engine is the resource's outputs plus `applied`: the
// inputs as last applied, or as last observed on the host when read found
// drift. diff compares new inputs with `applied`, so an unchanged program
// runs no host commands, and a refresh that saw drift makes the next `up`
// repair it.
import { z } from "zod";
import { Connection, connectionSchema } from "./connection";
import { hostFor, RemoteHost } from "./host";
import { CheckFailure, InputError, UNKNOWN, validate } from "./validate";

export interface Ctx {
  host: RemoteHost;
  connection: Connection;
}

export interface ResourceSpec<I extends object, O extends object> {
  kind: string;
  /** Schema of the resource's own inputs (without `connection`); built on each call. */
  schema(): z.ZodType<I>;
  /** Inputs whose change forces replacement (delete and create). */
  replaceOn(olds: I, news: I): string[];
  deleteBeforeReplace?: boolean;
  /** A stable id from the inputs. */
  id(inputs: I, outs: O): string;
  create(ctx: Ctx, inputs: I): Promise<O>;
  /** Observed state, and the inputs as the host now has them; undefined when gone. */
  read(ctx: Ctx, applied: I, outs: O): Promise<{ outs: O; observed: I } | undefined>;
  update(ctx: Ctx, olds: I, news: I, outs: O): Promise<O>;
  delete(ctx: Ctx, applied: I, outs: O): Promise<void>;
  /**
   * What applying `inputs` would change on the host now, one line per
   * operation (empty when the host already matches). Shown by preview as
   * `hostChanges`; a non-empty plan for unchanged inputs is drift to repair.
   */
  plan?(ctx: Ctx, inputs: I, applied?: I): Promise<string[]>;
}

/**
 * The input check adds for preview: what applying would change on the host,
 * one line per operation. Not stored in `applied`.
 */
export const HOST_CHANGES = "hostChanges";
const NOT_CHECKED = "(not checked)";

/**
 * The input that adopts what a host already has: the SDK sets it from the
 * `import` resource option (the engine's own import cannot load a dynamic
 * provider). Create then changes nothing: it refuses unless the host already
 * matches the inputs and the id names this resource. Only a new resource
 * adopts; once in the state it is ignored. Not stored in `applied`.
 */
export const IMPORT_ID = "importId";

/** Preview lines that would change the host (not warnings, not "not checked"). */
export function hostChangesIn(lines: readonly string[]): string[] {
  return lines.filter((l) => !l.startsWith("warning: ") && !l.startsWith(NOT_CHECKED));
}

/** Why an import would have to change the host, or undefined when it would not. */
function importRefusal(id: string, changes: readonly string[]): string | undefined {
  if (!changes.length) return undefined;
  return (
    `import of ${id} would change the host, so it is refused: ${changes.join("; ")}. ` +
    "Make the inputs match the host (`pulumi-sriov discover` prints them), or leave out `import` to have create make these changes"
  );
}

export type State<I, O> = O & { connection: Connection; applied: I };

/** Removes undefined values (the engine rejects them) and deep-copies. */
export function clean<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .filter((k) => (v as any)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as any)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

export function sameValue(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function containsUnknownValue(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (v && typeof v === "object") return Object.values(v).some(containsUnknownValue);
  return false;
}

/** Validates connection and resource inputs together, naming every bad property. */
function validateAll<I extends object>(spec: ResourceSpec<I, any>, raw: any) {
  const { connection: rawConn, __provider: _p, applied: _a, [HOST_CHANGES]: _h, [IMPORT_ID]: _i, ...rest } = raw ?? {};
  const c = rawConn === undefined ? undefined : validate(connectionSchema(), rawConn);
  const r = validate(spec.schema(), rest);
  const failures: CheckFailure[] = [];
  if (!c) failures.push({ property: "connection", reason: "is required" });
  else for (const f of c.failures) failures.push({ ...f, property: f.property === "(inputs)" ? "connection" : `connection.${f.property}` });
  failures.push(...r.failures);
  return {
    failures,
    hasUnknowns: !!c?.hasUnknowns || r.hasUnknowns,
    // Defaults applied where everything is known, raw values otherwise.
    connection: (c?.hasUnknowns ? rawConn : c?.value) as Connection,
    inputs: (r.hasUnknowns ? rest : r.value) as I,
  };
}

export function parseInputs<I extends object>(spec: ResourceSpec<I, any>, raw: any): { connection: Connection; inputs: I } {
  const v = validateAll(spec, raw);
  if (v.failures.length) throw new InputError(v.failures);
  if (v.hasUnknowns) throw new InputError([{ property: "(inputs)", reason: "values are still unknown" }]);
  return { connection: v.connection, inputs: v.inputs };
}

/** An `import` that would change the host or names another resource. */
export class ImportError extends Error {
  override name = "ImportError";
}

export interface DynamicProvider {
  check(olds: any, news: any): Promise<{ inputs: any; failures: CheckFailure[] }>;
  diff(id: string, olds: any, news: any): Promise<{ changes: boolean; replaces: string[]; deleteBeforeReplace: boolean }>;
  create(inputs: any): Promise<{ id: string; outs: any }>;
  read(id: string, props: any): Promise<{ id: string; props: any; inputs?: any }>;
  update(id: string, olds: any, news: any): Promise<{ outs: any }>;
  delete(id: string, props: any): Promise<void>;
}

/** Turns a resource spec into the six dynamic-provider methods. */
export function lifecycle<I extends object, O extends object>(spec: ResourceSpec<I, O>): DynamicProvider {
  const ctxFor = (connection: Connection): Ctx => ({ connection, host: hostFor(connection) });
  const state = (connection: Connection, inputs: I, outs: O) => clean({ ...outs, connection, applied: inputs });
  const fromState = (props: any) => {
    const { connection, inputs } = parseInputs(spec, { ...props.applied, connection: props.connection });
    const { applied: _a, connection: _c, __provider: _p, ...outs } = props;
    return { connection, inputs, outs: outs as O };
  };
  return {
    async check(olds, news) {
      const v = validateAll(spec, news);
      if (v.failures.length) return { inputs: news, failures: v.failures };
      const inputs: any = { ...v.inputs, connection: v.connection };
      const importId = news?.[IMPORT_ID];
      if (importId !== undefined) {
        if (typeof importId !== "string" || importId === "")
          return { inputs: news, failures: [{ property: IMPORT_ID, reason: "the `import` option must be this resource's id (a non-empty string)" }] };
        if (!spec.plan) return { inputs: news, failures: [{ property: IMPORT_ID, reason: `${spec.kind} cannot be imported` }] };
      }
      // A resource already in the state has nothing left to adopt (and a
      // replacement's create must not try to).
      const adopting = importId !== undefined && !olds?.connection;
      if (adopting) inputs[IMPORT_ID] = importId;
      // With everything known, ask the host what applying would change, so
      // that preview shows it (dynamic providers show only check and diff).
      if (spec.plan && !v.hasUnknowns) {
        try {
          inputs[HOST_CHANGES] = await spec.plan(ctxFor(v.connection), v.inputs);
        } catch (e) {
          // The host may not be ready yet (another resource of this update
          // creates what this one needs): preview says so instead of failing.
          inputs[HOST_CHANGES] = [`${NOT_CHECKED} ${(e as Error).message}`];
        }
        const refused = adopting && importRefusal(importId, hostChangesIn(inputs[HOST_CHANGES]));
        if (refused) return { inputs: news, failures: [{ property: IMPORT_ID, reason: refused }] };
      }
      return { inputs: clean(inputs), failures: [] };
    },

    async diff(_id, olds, news) {
      const applied = { ...(olds.applied ?? {}) };
      const { connection: newConn, __provider: _p, [HOST_CHANGES]: hostChanges, [IMPORT_ID]: _i, ...newInputs } = news;
      // The host differs from what was applied (drift): the update repairs it.
      const drift = Array.isArray(hostChanges) && hostChanges.some((c: string) => !c.startsWith(NOT_CHECKED));
      const keys = new Set([...Object.keys(applied), ...Object.keys(newInputs)]);
      const changed = [...keys].filter((k) => !sameValue(applied[k], newInputs[k]) || containsUnknownValue(newInputs[k]));
      const replaces = spec.replaceOn(applied as I, newInputs as I).filter((k) => changed.includes(k));
      const oc = olds.connection ?? {};
      const nc = newConn ?? {};
      const connChanged = !sameValue(oc, nc) || containsUnknownValue(nc);
      if (oc.host !== nc.host || (oc.port ?? 22) !== (nc.port ?? 22) || containsUnknownValue(nc.host)) replaces.push("connection");
      return { changes: changed.length > 0 || connChanged || drift, replaces, deleteBeforeReplace: spec.deleteBeforeReplace ?? true };
    },

    async create(raw) {
      const { connection, inputs } = parseInputs(spec, raw);
      const ctx = ctxFor(connection);
      const importId: string | undefined = raw?.[IMPORT_ID];
      if (importId !== undefined) {
        // Checked again here: at preview the inputs may still have been unknown.
        const refused = importRefusal(importId, hostChangesIn(await spec.plan!(ctx, inputs)));
        if (refused) throw new ImportError(refused);
      }
      const outs = await spec.create(ctx, inputs);
      const id = spec.id(inputs, outs);
      if (importId !== undefined && importId !== id)
        throw new ImportError(`import of ${importId}: these inputs describe ${id} on this host, not ${importId}; the host was not changed`);
      return { id, outs: state(connection, inputs, outs) };
    },

    async read(id, props) {
      const { connection, inputs, outs } = fromState(props);
      const r = await spec.read(ctxFor(connection), inputs, outs);
      if (!r) return { id: "", props: {} };
      const next = state(connection, r.observed, r.outs);
      return { id, props: next, inputs: clean({ ...r.observed, connection }) };
    },

    async update(_id, olds, news) {
      const prev = fromState(olds);
      const { connection, inputs } = parseInputs(spec, news);
      const outs = await spec.update(ctxFor(connection), prev.inputs, inputs, prev.outs);
      return { outs: state(connection, inputs, outs) };
    },

    async delete(_id, props) {
      const { connection, inputs, outs } = fromState(props);
      await spec.delete(ctxFor(connection), inputs, outs);
    },
  };
}
