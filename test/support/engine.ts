// Engine harness: drives the real `@pulumi/pulumi` dynamic-provider process over
// gRPC the way the Pulumi engine does during `pulumi preview` / `pulumi up` /
// `pulumi refresh` / `pulumi destroy`, without a Pulumi CLI: for the exact
// protocol and call counts (tests through the real CLI: support/pulumiCli.ts).
//
// What is reproduced from the engine (pulumi/pulumi pkg/resource/plugin and
// pkg/resource/deploy), and why it matters for provider authors:
//
// * The provider is serialized with `pulumi.runtime.serializeFunction(() =>
//   provider, { allowSecrets: true })`, exactly like `pulumi.dynamic.Resource`,
//   and its text travels as the `__provider` input property. The provider
//   process runs `require-from-string` on it, so `require` inside handlers
//   resolves from the process's working directory's node_modules and there is
//   no TypeScript loader.
// * The process is started as the engine starts `pulumi-resource-pulumi-nodejs`:
//   `node <@pulumi/pulumi>/cmd/dynamic-provider/index.js <engine address>`,
//   cwd = program directory, env += PULUMI_NODEJS_PROJECT / PULUMI_PROJECT /
//   PULUMI_CONFIG. It prints its port on the first stdout line. Everything it
//   prints afterwards (stdout and stderr) is what `pulumi up` shows as
//   diagnostics; that is where `console.log` and `pulumi.log.*` end up, because
//   the engine never gives a plugin PULUMI_NODEJS_ENGINE, so the Log RPC is not
//   used. The engine address passed is a real (tiny) Engine gRPC server that
//   records any Log calls anyway.
// * Start-up calls: Handshake (the dynamic provider answers UNIMPLEMENTED),
//   GetPluginInfo, CheckConfig (UNIMPLEMENTED), Configure. The protocol flags
//   (acceptSecrets, supportsPreview, ...) come from Handshake when it is
//   implemented, else from the Configure response. The Node.js dynamic provider
//   answers acceptSecrets=false and supportsPreview=false, therefore:
//     - secrets are sent to the provider as plain values, and the engine marks
//       outputs secret again where the input with the same key was secret
//       (`annotateSecrets`, recursing into objects);
//     - during preview the engine never calls Create or Update on a dynamic
//       provider: it hands the inputs back as outputs. Only Check and Diff
//       (and Read for refresh) run in preview.
// * Unknown values (preview only) are sent as the string UNKNOWN; outside a
//   preview unknowns are dropped from requests and rejected in responses.
// * `undefined` properties are dropped before sending (the SDK never registers
//   them); a provider returning `undefined` inside its outputs fails in the
//   provider process ("Unexpected struct type").
// * Calls on one process are concurrent, one process serves one deployment.

import * as path from "path";
import * as crypto from "crypto";
import * as readline from "readline";
import { spawn, ChildProcess } from "child_process";
import * as grpc from "@grpc/grpc-js";
import * as pulumi from "@pulumi/pulumi";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as plugproto from "@pulumi/pulumi/proto/plugin_pb";
import * as engrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engproto from "@pulumi/pulumi/proto/engine_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
// eslint-disable-next-line @typescript-eslint/no-var-requires
const statusproto: any = require("@pulumi/pulumi/proto/status_pb");

// ---------------------------------------------------------------------------
// Wire-level constants (identical to @pulumi/pulumi runtime/rpc.js and the Go
// engine's resource/properties.go).

/** The string the engine sends for a value that is not known during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** Key that marks a special object (secret, asset, resource reference...). */
export const SIG_KEY = "4dabf18193072939515e22adb298388d";
/** Signature value of a secret: `{ [SIG_KEY]: SECRET_SIG, value }`. */
export const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** Property that carries the serialized provider. */
export const PROVIDER_KEY = "__provider";
/** Resource type token of `new pulumi.dynamic.Resource(provider, name, props)`. */
export const DYNAMIC_RESOURCE_TYPE = "pulumi-nodejs:dynamic:Resource";
/** Type token of the default provider the engine creates for dynamic resources. */
export const DYNAMIC_PROVIDER_TYPE = "pulumi:providers:pulumi-nodejs";

export type Props = Record<string, any>;

export interface SecretValue<T = any> {
    [SIG_KEY]: typeof SECRET_SIG;
    value: T;
}

/** A value the way the engine holds a secret (what `pulumi.secret(v)` becomes). */
export function secret<T>(value: T): SecretValue<T> {
    return { [SIG_KEY]: SECRET_SIG, value } as SecretValue<T>;
}

export function isSecret(v: unknown): v is SecretValue {
    return isPlainObject(v) && (v as any)[SIG_KEY] === SECRET_SIG;
}

/** Deep copy with every secret replaced by its plain value. */
export function unwrapSecrets<T = any>(v: T): T {
    if (isSecret(v)) {
        return unwrapSecrets((v as any).value);
    }
    if (Array.isArray(v)) {
        return v.map((e) => unwrapSecrets(e)) as any;
    }
    if (isPlainObject(v)) {
        const out: Props = {};
        for (const [k, e] of Object.entries(v as Props)) {
            out[k] = unwrapSecrets(e);
        }
        return out as T;
    }
    return v;
}

/** True when the value is, or contains, a secret. */
export function containsSecrets(v: unknown): boolean {
    if (isSecret(v)) {
        return true;
    }
    if (Array.isArray(v)) {
        return v.some(containsSecrets);
    }
    if (isPlainObject(v)) {
        return Object.values(v as Props).some(containsSecrets);
    }
    return false;
}

/** Copy of a property map without `__provider` (for assertions). */
export function withoutProvider<T extends Props | undefined>(props: T): T {
    if (!props) {
        return props;
    }
    const { [PROVIDER_KEY]: _omit, ...rest } = props as Props;
    return rest as T;
}

function isPlainObject(v: unknown): v is Props {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
        return false;
    }
    const proto = Object.getPrototypeOf(v);
    return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------
// Serialization, as `pulumi.dynamic.Resource` does it.

export type SerializedProvider = string;
export type ProviderLike = pulumi.dynamic.ResourceProvider | SerializedProvider;

interface SerializedEntry {
    text: string;
    containsSecrets: boolean;
}

// `pulumi.dynamic.Resource` caches per provider object (cacheDynamicProviders
// defaults to true); so do we, and we remember which texts captured secrets.
const serializedCache = new WeakMap<object, Promise<SerializedEntry>>();
const secretTexts = new Set<string>();

async function serializeEntry(provider: pulumi.dynamic.ResourceProvider): Promise<SerializedEntry> {
    let p = serializedCache.get(provider);
    if (!p) {
        p = pulumi.runtime
            .serializeFunction(() => provider, { allowSecrets: true })
            .then((sf) => {
                if (sf.containsSecrets) {
                    secretTexts.add(sf.text);
                }
                return { text: sf.text, containsSecrets: sf.containsSecrets };
            });
        serializedCache.set(provider, p);
        // A failed serialization must not be cached: the next attempt should fail
        // (or succeed) on its own.
        p.catch(() => serializedCache.delete(provider));
    }
    return p;
}

/**
 * What the engine stores as the `__provider` input of a dynamic resource.
 * Rejects with @pulumi/pulumi's own message when the provider cannot be
 * serialized (e.g. "... captured variable 'schema' which indirectly referenced
 * ...").
 */
export async function serializeProvider(provider: pulumi.dynamic.ResourceProvider): Promise<SerializedProvider> {
    return (await serializeEntry(provider)).text;
}

/** The `__provider` property value as the SDK registers it (secret if the closure captured secrets). */
async function providerProperty(provider: ProviderLike): Promise<any> {
    if (typeof provider === "string") {
        return secretTexts.has(provider) ? secret(provider) : provider;
    }
    const e = await serializeEntry(provider);
    return e.containsSecrets ? secret(e.text) : e.text;
}

// ---------------------------------------------------------------------------
// Property marshalling, mirroring the Go engine's MarshalProperties /
// UnmarshalProperties for what dynamic providers can see.

interface MarshalOptions {
    keepUnknowns: boolean;
    keepSecrets: boolean;
}

const SKIP = Symbol("skip");

function marshalValue(v: any, opts: MarshalOptions): any {
    if (v === undefined) {
        // The SDK never registers undefined properties.
        return SKIP;
    }
    if (v === null || typeof v === "boolean" || typeof v === "number") {
        return v;
    }
    if (typeof v === "string") {
        if (v === UNKNOWN && !opts.keepUnknowns) {
            return SKIP; // the engine drops unknowns it may not send
        }
        return v;
    }
    if (Array.isArray(v)) {
        const out: any[] = [];
        for (const e of v) {
            const m = marshalValue(e, opts);
            if (m !== SKIP) {
                out.push(m);
            }
        }
        return out;
    }
    if (isSecret(v)) {
        if (!opts.keepSecrets) {
            return marshalValue(v.value, opts);
        }
        const inner = marshalValue(v.value, opts);
        return { [SIG_KEY]: SECRET_SIG, value: inner === SKIP ? null : inner };
    }
    if (isPlainObject(v)) {
        return marshalMap(v, opts);
    }
    throw new Error(
        `engine harness: cannot send a ${Object.prototype.toString.call(v)} as a property value; ` +
            `only JSON-like values, secrets and UNKNOWN can be resource properties`,
    );
}

function marshalMap(props: Props | undefined, opts: MarshalOptions): Props {
    const out: Props = {};
    if (!props) {
        return out;
    }
    // The engine walks properties in sorted key order (PropertyMap.StableKeys).
    for (const k of Object.keys(props).sort()) {
        const m = marshalValue(props[k], opts);
        if (m !== SKIP) {
            out[k] = m;
        }
    }
    return out;
}

function toStruct(props: Props): structproto.Struct {
    return structproto.Struct.fromJavaScript(props as any);
}

interface UnmarshalOptions {
    keepUnknowns: boolean;
    rejectUnknowns: boolean;
}

function unmarshalValue(key: string, v: any, opts: UnmarshalOptions): any {
    if (typeof v === "string" && v === UNKNOWN) {
        if (opts.rejectUnknowns) {
            throw new Error(`unexpected unknown property value for "${key}"`);
        }
        return opts.keepUnknowns ? v : SKIP;
    }
    if (Array.isArray(v)) {
        return v.map((e) => unmarshalValue(key, e, opts)).filter((e) => e !== SKIP);
    }
    if (isPlainObject(v)) {
        return unmarshalMap(v, opts);
    }
    return v;
}

function unmarshalMap(props: Props | undefined, opts: UnmarshalOptions): Props {
    const out: Props = {};
    for (const [k, v] of Object.entries(props ?? {})) {
        const u = unmarshalValue(k, v, opts);
        if (u !== SKIP) {
            out[k] = u;
        }
    }
    return out;
}

function fromStruct(s: structproto.Struct | undefined, opts: UnmarshalOptions): Props | undefined {
    if (!s) {
        return undefined;
    }
    return unmarshalMap(s.toJavaScript() as Props, opts);
}

/**
 * The engine's annotateSecrets: for a provider that does not accept secrets,
 * an output is made secret when the input with the same key contained a
 * secret; when both are objects it recurses instead.
 */
export function annotateSecrets(outs: Props | undefined, ins: Props | undefined): void {
    if (!outs || !ins) {
        return;
    }
    for (const [key, inValue] of Object.entries(ins)) {
        if (!(key in outs)) {
            continue;
        }
        const outValue = outs[key];
        if (isPlainObject(outValue) && !isSecret(outValue) && isPlainObject(inValue) && !isSecret(inValue)) {
            annotateSecrets(outValue, inValue);
        } else if (!isSecret(outValue) && containsSecrets(inValue)) {
            outs[key] = secret(outValue);
        }
    }
}

// ---------------------------------------------------------------------------
// Errors

/** A failed provider call. `message` is the provider's own error text. */
export class EngineError extends Error {
    constructor(
        message: string,
        readonly method: string,
        readonly urn: string | undefined,
        readonly grpcCode: number | undefined,
        /** Set when the provider threw an error with an `id` (resource created but not initialised). */
        readonly initFailed?: { id: string; properties: Props; reasons: string[] },
    ) {
        super(message);
        this.name = "EngineError";
    }
}

function decodeInitFailure(err: grpc.ServiceError): EngineError["initFailed"] {
    const raw = err.metadata?.get("grpc-status-details-bin")?.[0];
    if (!raw || typeof raw === "string") {
        return undefined;
    }
    try {
        const status = statusproto.Status.deserializeBinary(new Uint8Array(raw));
        for (const any of status.getDetailsList()) {
            if (any.getTypeName() === "pulumirpc.ErrorResourceInitFailed") {
                const d = provproto.ErrorResourceInitFailed.deserializeBinary(any.getValue_asU8());
                return {
                    id: d.getId(),
                    properties: (d.getProperties()?.toJavaScript() as Props) ?? {},
                    reasons: d.getReasonsList(),
                };
            }
        }
    } catch {
        // not a Pulumi status; ignore
    }
    return undefined;
}

// ---------------------------------------------------------------------------
// The provider process

export interface EngineOptions {
    /** Program directory: the process's cwd, where `require` in handlers resolves. Default: this repository. */
    cwd?: string;
    /** Project and stack used in URNs and PULUMI_NODEJS_PROJECT. Default "project" / "stack". */
    project?: string;
    stack?: string;
    /** Provider configuration sent in Configure (the default provider's `pulumi-nodejs:*` config). */
    config?: Props;
    /** Extra environment for the provider process. */
    env?: Record<string, string>;
    /** Milliseconds to wait for the port line. Default 30000. */
    startTimeoutMs?: number;
}

export interface CallOptions {
    /** Preview (`pulumi preview`, or the preview phase of `pulumi up`). */
    preview?: boolean;
    /** Resource type token; default `pulumi-nodejs:dynamic:Resource`. */
    type?: string;
    /** Type chain of parents for the URN, e.g. "sriov:index:SriovHost". */
    parentType?: string;
}

export interface CheckFailure {
    property: string;
    reason: string;
}

export interface CheckResult {
    /** Checked inputs as the engine keeps them (secrets re-applied, `__provider` included). */
    inputs: Props;
    failures: CheckFailure[];
}

export interface DiffResult {
    /** Whether the engine will update/replace, after its fallback for DIFF_UNKNOWN. */
    changes: boolean;
    /** What the provider answered: "some" | "none" | "unknown" (no diff method, or `changes` left undefined). */
    providerChanges: "some" | "none" | "unknown";
    replaces: string[];
    deleteBeforeReplace: boolean;
    stables: string[];
    /** Keys the engine found changed when it had to diff inputs itself (DIFF_UNKNOWN). */
    changedKeys: string[];
}

export interface LogEntry {
    /** "info" for stdout lines, "infoerr" for stderr lines (the engine's diag severities); Log RPC severities otherwise. */
    severity: string;
    message: string;
    stream: "stdout" | "stderr" | "engine";
    urn?: string;
}

type Method = "check" | "diff" | "create" | "read" | "update" | "delete";

const liveProcesses = new Set<ChildProcess>();
process.on("exit", () => {
    for (const c of liveProcesses) {
        try {
            c.kill("SIGKILL");
        } catch {
            // already gone
        }
    }
});

// The repository root (also right when this file runs compiled from dist/).
const REPO_ROOT = ((): string => {
    for (let d = __dirname; ; d = path.dirname(d)) {
        try {
            if (require(path.join(d, "package.json")).name === "pulumi-sriov") {
                return d;
            }
        } catch {
            // no package.json here
        }
        if (path.dirname(d) === d) {
            return path.resolve(__dirname, "..", "..");
        }
    }
})();
const GRPC_LIMITS = {
    "grpc.max_receive_message_length": 400 * 1024 * 1024,
    "grpc.max_send_message_length": 400 * 1024 * 1024,
};

function unary<Req, Res>(client: any, method: string, req: Req, deadline?: number): Promise<Res> {
    return new Promise((resolve, reject) => {
        const opts = deadline ? { deadline: Date.now() + deadline } : {};
        client[method](req, new grpc.Metadata(), opts, (err: grpc.ServiceError | null, res: Res) =>
            err ? reject(err) : resolve(res),
        );
    });
}

/** A tiny Engine service: the address handed to the plugin, recording any Log calls. */
async function startEngineServer(logs: LogEntry[]): Promise<{ server: grpc.Server; address: string }> {
    const server = new grpc.Server(GRPC_LIMITS);
    const severities: Record<number, string> = {
        [engproto.LogSeverity.DEBUG]: "debug",
        [engproto.LogSeverity.INFO]: "info",
        [engproto.LogSeverity.WARNING]: "warning",
        [engproto.LogSeverity.ERROR]: "error",
    };
    const unimplemented = (_call: any, cb: any) => cb({ code: grpc.status.UNIMPLEMENTED, details: "not supported" });
    server.addService(engrpc.EngineService, {
        log(call: grpc.ServerUnaryCall<engproto.LogRequest, emptyproto.Empty>, cb: grpc.sendUnaryData<emptyproto.Empty>) {
            const r = call.request;
            logs.push({
                severity: severities[r.getSeverity()] ?? String(r.getSeverity()),
                message: r.getMessage(),
                stream: "engine",
                urn: r.getUrn() || undefined,
            });
            cb(null, new emptyproto.Empty());
        },
        getRootResource: unimplemented,
        setRootResource: unimplemented,
        startDebugging: unimplemented,
        requirePulumiVersion(_call: any, cb: any) {
            cb(null, new emptyproto.Empty());
        },
    } as any);
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    return { server, address: `127.0.0.1:${port}` };
}

/**
 * One dynamic-provider process, as the engine runs one per deployment
 * (`pulumi up`, `preview`, `refresh`, `destroy`). Every method sends what the
 * engine would send for that step and returns what the engine would keep.
 */
export class ProviderProcess {
    /** Number of gRPC calls made per method, e.g. to prove a preview or a no-op `up` made no Create/Update. */
    readonly calls: Record<Method, number> = { check: 0, diff: 0, create: 0, read: 0, update: 0, delete: 0 };
    /** Protocol flags negotiated at start-up. */
    readonly protocol = { acceptSecrets: false, acceptResources: false, supportsPreview: false };
    /** Version reported by GetPluginInfo. */
    pluginVersion = "";
    /** Milliseconds spent in start() (spawn → configured). */
    startMillis = 0;
    readonly project: string;
    readonly stack: string;

    private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    private exitPromise: Promise<void>;
    private stderrTail: string[] = [];

    private constructor(
        /** Everything the provider printed (what `pulumi up` shows as diagnostics) plus any Log RPCs. */
        readonly logs: LogEntry[],
        private readonly child: ChildProcess,
        private readonly client: provrpc.ResourceProviderClient,
        private readonly engine: grpc.Server,
        opts: EngineOptions,
    ) {
        this.project = opts.project ?? "project";
        this.stack = opts.stack ?? "stack";
        this.exitPromise = new Promise((resolve) => {
            child.once("exit", (code, signal) => {
                this.exited = { code, signal };
                liveProcesses.delete(child);
                resolve();
            });
        });
    }

    /** Spawn the provider process and configure it, as the engine does for the default `pulumi-nodejs` provider. */
    static async start(opts: EngineOptions = {}): Promise<ProviderProcess> {
        const t0 = Date.now();
        const cwd = path.resolve(opts.cwd ?? REPO_ROOT);
        const project = opts.project ?? "project";
        const stack = opts.stack ?? "stack";
        // The `pulumi-resource-pulumi-nodejs` shim resolves the script from the program directory.
        const script = require.resolve("@pulumi/pulumi/cmd/dynamic-provider", { paths: [cwd] });

        const logs: LogEntry[] = [];
        const { server: engine, address: engineAddress } = await startEngineServer(logs);

        const env: Record<string, string | undefined> = { ...process.env };
        // No TypeScript loader or test-runner hooks in the plugin: the engine starts it with plain node.
        delete env.NODE_OPTIONS;
        env.PULUMI_NODEJS_PROJECT = project;
        env.PULUMI_PROJECT = project;
        if (opts.config && Object.keys(opts.config).length > 0) {
            env.PULUMI_CONFIG = JSON.stringify(
                Object.fromEntries(Object.entries(opts.config).map(([k, v]) => [`${project}:${k}`, v])),
            );
        }
        Object.assign(env, opts.env ?? {});

        const child = spawn(process.execPath, [script, engineAddress], {
            cwd,
            env: env as NodeJS.ProcessEnv,
            stdio: ["ignore", "pipe", "pipe"],
        });
        liveProcesses.add(child);

        const stderrLines: string[] = [];
        readline.createInterface({ input: child.stderr! }).on("line", (line) => {
            stderrLines.push(line);
            if (stderrLines.length > 50) {
                stderrLines.shift();
            }
            if (line.trim() !== "") {
                logs.push({ severity: "infoerr", message: line, stream: "stderr" });
            }
        });

        const port = await new Promise<number>((resolve, reject) => {
            let gotPort = false;
            const rl = readline.createInterface({ input: child.stdout! });
            const timer = setTimeout(() => {
                fail(new Error(`dynamic provider did not print its port within ${opts.startTimeoutMs ?? 30000} ms`));
            }, opts.startTimeoutMs ?? 30000);
            const fail = (e: Error) => {
                clearTimeout(timer);
                child.kill("SIGKILL");
                engine.forceShutdown();
                reject(new Error(`${e.message}\n${stderrLines.join("\n")}`));
            };
            rl.on("line", (line) => {
                if (!gotPort) {
                    gotPort = true;
                    clearTimeout(timer);
                    const p = Number(line.trim());
                    if (!Number.isInteger(p) || p <= 0) {
                        fail(new Error(`dynamic provider wrote an invalid port to stdout: ${JSON.stringify(line)}`));
                        return;
                    }
                    resolve(p);
                    return;
                }
                if (line.trim() !== "") {
                    logs.push({ severity: "info", message: line, stream: "stdout" });
                }
            });
            child.once("error", (e) => fail(e));
            child.once("exit", (code, signal) => {
                if (!gotPort) {
                    fail(new Error(`could not read plugin [${script}]: exit ${code ?? signal}`));
                }
            });
        });

        const client = new provrpc.ResourceProviderClient(
            `127.0.0.1:${port}`,
            grpc.credentials.createInsecure(),
            GRPC_LIMITS,
        );
        const proc = new ProviderProcess(logs, child, client, engine, opts);
        proc.stderrTail = stderrLines;
        try {
            await proc.initialize(opts, path.dirname(script), engineAddress);
        } catch (e) {
            await proc.stop();
            throw e;
        }
        proc.startMillis = Date.now() - t0;
        return proc;
    }

    private async initialize(opts: EngineOptions, dir: string, engineAddress: string): Promise<void> {
        // Handshake: the dynamic provider does not implement it; the engine then
        // falls back to the flags from Configure.
        const hs = new provproto.ProviderHandshakeRequest();
        hs.setEngineAddress(engineAddress);
        hs.setRootDirectory(dir);
        hs.setProgramDirectory(dir);
        hs.setConfigureWithUrn(true);
        hs.setSupportsViews(true);
        hs.setSupportsRefreshBeforeUpdate(true);
        hs.setInvokeWithPreview(true);
        hs.setAcceptsByteString(true);
        let handshake: provproto.ProviderHandshakeResponse | undefined;
        try {
            handshake = await unary(this.client, "handshake", hs);
        } catch (e) {
            if ((e as grpc.ServiceError).code !== grpc.status.UNIMPLEMENTED) {
                throw e;
            }
        }

        const info = await unary<emptyproto.Empty, plugproto.PluginInfo>(this.client, "getPluginInfo", new emptyproto.Empty());
        this.pluginVersion = info.getVersion();

        const config = opts.config ?? {};
        const cc = new provproto.CheckRequest();
        cc.setUrn(this.providerUrn());
        cc.setName("default");
        cc.setType(DYNAMIC_PROVIDER_TYPE);
        cc.setOlds(toStruct({}));
        cc.setNews(toStruct(marshalMap(config, { keepUnknowns: false, keepSecrets: true })));
        try {
            await unary(this.client, "checkConfig", cc);
        } catch (e) {
            if ((e as grpc.ServiceError).code !== grpc.status.UNIMPLEMENTED) {
                throw e;
            }
        }

        const req = new provproto.ConfigureRequest();
        req.setUrn(this.providerUrn());
        req.setName("default");
        req.setType(DYNAMIC_PROVIDER_TYPE);
        req.setId(crypto.randomUUID());
        req.setAcceptsecrets(true);
        req.setAcceptresources(true);
        req.setSendsOldInputs(true);
        req.setSendsOldInputsToDelete(true);
        const vars = req.getVariablesMap();
        for (const [k, v] of Object.entries(config)) {
            const plain = unwrapSecrets(v);
            vars.set(`pulumi-nodejs:config:${k}`, typeof plain === "string" ? plain : JSON.stringify(plain));
        }
        req.setArgs(toStruct(marshalMap(config, { keepUnknowns: true, keepSecrets: true })));
        const resp = await unary<provproto.ConfigureRequest, provproto.ConfigureResponse>(this.client, "configure", req);

        if (handshake) {
            this.protocol.acceptSecrets = handshake.getAcceptSecrets();
            this.protocol.acceptResources = handshake.getAcceptResources();
            this.protocol.supportsPreview = true;
        } else {
            this.protocol.acceptSecrets = resp.getAcceptsecrets();
            this.protocol.acceptResources = resp.getAcceptresources();
            this.protocol.supportsPreview = resp.getSupportspreview();
        }
    }

    /** URN the engine gives a resource of this deployment. */
    urn(name: string, opts: CallOptions = {}): string {
        const type = opts.type ?? DYNAMIC_RESOURCE_TYPE;
        const chain = opts.parentType ? `${opts.parentType}$${type}` : type;
        return `urn:pulumi:${this.stack}::${this.project}::${chain}::${name}`;
    }

    private providerUrn(): string {
        return `urn:pulumi:${this.stack}::${this.project}::${DYNAMIC_PROVIDER_TYPE}::default`;
    }

    private marshal(props: Props | undefined, keepUnknowns: boolean): structproto.Struct {
        return toStruct(marshalMap(props, { keepUnknowns, keepSecrets: this.protocol.acceptSecrets }));
    }

    /** Adds `__provider` where a stored property map lacks it (never overwrites stored code). */
    private async withProvider(props: Props | undefined, provider: ProviderLike): Promise<Props> {
        const out: Props = { ...(props ?? {}) };
        if (out[PROVIDER_KEY] === undefined) {
            out[PROVIDER_KEY] = await providerProperty(provider);
        }
        return out;
    }

    private async call<Req, Res>(method: Method, grpcMethod: string, urn: string, req: Req): Promise<Res> {
        if (this.exited) {
            throw new EngineError(this.deathMessage(), method, urn, undefined);
        }
        this.calls[method]++;
        try {
            return await unary<Req, Res>(this.client, grpcMethod, req);
        } catch (e) {
            const err = e as grpc.ServiceError;
            let message = err.details ?? err.message;
            if (err.code === grpc.status.UNAVAILABLE || this.exited) {
                await Promise.race([this.exitPromise, new Promise((r) => setTimeout(r, 200))]);
                if (this.exited) {
                    message = `${message}\n${this.deathMessage()}`;
                }
            }
            throw new EngineError(message, method, urn, err.code, decodeInitFailure(err));
        }
    }

    private deathMessage(): string {
        const how = this.exited ? `exited (code ${this.exited.code}, signal ${this.exited.signal})` : "is gone";
        return `dynamic provider process ${how}; stderr:\n${this.stderrTail.join("\n")}`;
    }

    /**
     * Check: `olds` are the resource's previous checked inputs ({} when it is
     * being created or replaced), `news` what the program registers. `__provider`
     * in `news` is always set from `provider`, as `pulumi.dynamic.Resource` does.
     */
    async check(provider: ProviderLike, name: string, olds: Props, news: Props, opts: CallOptions = {}): Promise<CheckResult> {
        const preview = !!opts.preview;
        const urn = this.urn(name, opts);
        const newsP: Props = { ...news, [PROVIDER_KEY]: await providerProperty(provider) };
        const oldsP = olds && Object.keys(olds).length > 0 ? await this.withProvider(olds, provider) : {};
        const req = new provproto.CheckRequest();
        req.setUrn(urn);
        req.setName(name);
        req.setType(opts.type ?? DYNAMIC_RESOURCE_TYPE);
        req.setOlds(this.marshal(oldsP, preview));
        req.setNews(this.marshal(newsP, preview));
        req.setRandomseed(crypto.randomBytes(32));
        const resp = await this.call<provproto.CheckRequest, provproto.CheckResponse>("check", "check", urn, req);
        const inputs = fromStruct(resp.getInputs(), { keepUnknowns: preview, rejectUnknowns: !preview }) ?? {};
        if (!this.protocol.acceptSecrets) {
            annotateSecrets(inputs, newsP);
        }
        const failures = resp.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() }));
        return { inputs, failures };
    }

    /**
     * Diff: `olds` are the stored OUTPUTS (that is what a dynamic provider's
     * `diff` receives), `news` the new checked inputs. `oldInputs` (default:
     * `olds`) is sent too and is what the engine compares itself when the
     * provider answers DIFF_UNKNOWN.
     */
    async diff(
        provider: ProviderLike,
        id: string,
        name: string,
        olds: Props,
        news: Props,
        opts: CallOptions & { oldInputs?: Props; ignoreChanges?: string[] } = {},
    ): Promise<DiffResult> {
        const preview = !!opts.preview;
        const urn = this.urn(name, opts);
        const oldOutputs = await this.withProvider(olds, provider);
        const oldInputs = await this.withProvider(opts.oldInputs ?? olds, provider);
        const newInputs = await this.withProvider(news, provider);
        const req = new provproto.DiffRequest();
        req.setId(id);
        req.setUrn(urn);
        req.setName(name);
        req.setType(opts.type ?? DYNAMIC_RESOURCE_TYPE);
        req.setOldInputs(this.marshal(oldInputs, preview));
        req.setOlds(this.marshal(oldOutputs, preview));
        req.setNews(this.marshal(newInputs, preview));
        req.setIgnorechangesList(opts.ignoreChanges ?? []);
        const resp = await this.call<provproto.DiffRequest, provproto.DiffResponse>("diff", "diff", urn, req);
        const kind = resp.getChanges();
        const D = provproto.DiffResponse.DiffChanges;
        const providerChanges = kind === D.DIFF_SOME ? "some" : kind === D.DIFF_NONE ? "none" : "unknown";
        let changes = providerChanges === "some";
        let changedKeys: string[] = resp.getDiffsList();
        if (providerChanges === "unknown") {
            // The engine diffs old and new inputs itself (secrets unwrapped).
            changedKeys = diffKeys(unwrapSecrets(oldInputs), unwrapSecrets(newInputs), new Set(opts.ignoreChanges ?? []));
            changes = changedKeys.length > 0;
        }
        return {
            changes,
            providerChanges,
            replaces: resp.getReplacesList(),
            deleteBeforeReplace: resp.getDeletebeforereplace(),
            stables: resp.getStablesList(),
            changedKeys,
        };
    }

    /**
     * Create with checked inputs. In a preview the engine does not call a
     * provider that does not support previews (dynamic providers don't): it
     * returns the inputs as outputs and an empty id, and so does this.
     */
    async create(
        provider: ProviderLike,
        name: string,
        inputs: Props,
        opts: CallOptions & { timeout?: number } = {},
    ): Promise<{ id: string; outs: Props }> {
        const preview = !!opts.preview;
        const urn = this.urn(name, opts);
        const props = await this.withProvider(inputs, provider);
        if (preview && !this.protocol.supportsPreview) {
            return { id: "", outs: props };
        }
        const req = new provproto.CreateRequest();
        req.setUrn(urn);
        req.setName(name);
        req.setType(opts.type ?? DYNAMIC_RESOURCE_TYPE);
        req.setProperties(this.marshal(props, preview));
        req.setTimeout(opts.timeout ?? 0);
        req.setPreview(preview);
        const resp = await this.call<provproto.CreateRequest, provproto.CreateResponse>("create", "create", urn, req);
        const id = resp.getId();
        if (id === "" && !preview) {
            throw new EngineError(`plugin returned empty resource.ID from create '${urn}'`, "create", urn, undefined);
        }
        const outs = this.unmarshalOutputs("create", urn, resp.getProperties(), preview);
        if (!this.protocol.acceptSecrets) {
            annotateSecrets(outs, props);
        }
        return { id, outs };
    }

    /**
     * Read (refresh, or `Resource.get`): `state` are the stored outputs, `inputs`
     * the stored inputs. An empty returned id means the resource is gone.
     * `inputs` in the result is set only when the provider returned inputs.
     */
    async read(
        provider: ProviderLike,
        id: string,
        name: string,
        state: Props,
        inputs?: Props,
        opts: CallOptions = {},
    ): Promise<{ id: string; props: Props; inputs?: Props }> {
        const urn = this.urn(name, opts);
        const stateP = await this.withProvider(state, provider);
        const inputsP = inputs ? await this.withProvider(inputs, provider) : undefined;
        const req = new provproto.ReadRequest();
        req.setId(id);
        req.setUrn(urn);
        req.setName(name);
        req.setType(opts.type ?? DYNAMIC_RESOURCE_TYPE);
        req.setProperties(this.marshal(stateP, false));
        if (inputsP) {
            req.setInputs(this.marshal(inputsP, false));
        }
        const resp = await this.call<provproto.ReadRequest, provproto.ReadResponse>("read", "read", urn, req);
        const props = this.unmarshalOutputs("read", urn, resp.getProperties(), false);
        const newInputs = resp.getInputs()
            ? this.unmarshalOutputs("read", urn, resp.getInputs(), false)
            : undefined;
        if (!this.protocol.acceptSecrets) {
            annotateSecrets(newInputs, inputsP);
            annotateSecrets(props, stateP);
        }
        return { id: resp.getId(), props, inputs: newInputs };
    }

    /**
     * Update: `olds` are the stored outputs (what a dynamic provider's `update`
     * receives as olds), `news` the new checked inputs. In a preview the engine
     * does not call a dynamic provider and returns `news` as the outputs.
     */
    async update(
        provider: ProviderLike,
        id: string,
        name: string,
        olds: Props,
        news: Props,
        opts: CallOptions & { oldInputs?: Props; timeout?: number; ignoreChanges?: string[] } = {},
    ): Promise<{ outs: Props }> {
        const preview = !!opts.preview;
        const urn = this.urn(name, opts);
        const newInputs = await this.withProvider(news, provider);
        if (preview && !this.protocol.supportsPreview) {
            return { outs: newInputs };
        }
        const oldOutputs = await this.withProvider(olds, provider);
        const oldInputs = await this.withProvider(opts.oldInputs ?? olds, provider);
        const req = new provproto.UpdateRequest();
        req.setId(id);
        req.setUrn(urn);
        req.setName(name);
        req.setType(opts.type ?? DYNAMIC_RESOURCE_TYPE);
        req.setOlds(this.marshal(oldOutputs, false));
        req.setNews(this.marshal(newInputs, preview));
        req.setOldInputs(this.marshal(oldInputs, false));
        req.setTimeout(opts.timeout ?? 0);
        req.setIgnorechangesList(opts.ignoreChanges ?? []);
        req.setPreview(preview);
        const resp = await this.call<provproto.UpdateRequest, provproto.UpdateResponse>("update", "update", urn, req);
        const outs = this.unmarshalOutputs("update", urn, resp.getProperties(), preview);
        if (!this.protocol.acceptSecrets) {
            annotateSecrets(outs, newInputs);
        }
        return { outs };
    }

    /**
     * Delete: `outs` are the stored outputs; their `__provider` (the code stored
     * at the last create/update) is what runs, not `provider`, which is only
     * used when `outs` has none.
     */
    async delete(
        provider: ProviderLike,
        id: string,
        name: string,
        outs: Props,
        opts: CallOptions & { oldInputs?: Props; timeout?: number } = {},
    ): Promise<void> {
        const urn = this.urn(name, opts);
        const outputs = await this.withProvider(outs, provider);
        const oldInputs = await this.withProvider(opts.oldInputs ?? outs, provider);
        const req = new provproto.DeleteRequest();
        req.setId(id);
        req.setUrn(urn);
        req.setName(name);
        req.setType(opts.type ?? DYNAMIC_RESOURCE_TYPE);
        req.setProperties(this.marshal(outputs, false));
        req.setOldInputs(this.marshal(oldInputs, false));
        req.setTimeout(opts.timeout ?? 0);
        await this.call<provproto.DeleteRequest, emptyproto.Empty>("delete", "delete", urn, req);
    }

    private unmarshalOutputs(method: Method, urn: string, s: structproto.Struct | undefined, preview: boolean): Props {
        try {
            return fromStruct(s, { keepUnknowns: preview, rejectUnknowns: !preview }) ?? {};
        } catch (e) {
            throw new EngineError((e as Error).message, method, urn, undefined);
        }
    }

    /** Resolves when a log line matching `match` has arrived (stdout/stderr lag behind gRPC replies). */
    async waitForLog(match: string | RegExp, timeoutMs = 5000): Promise<LogEntry> {
        const test = (l: LogEntry) => (typeof match === "string" ? l.message.includes(match) : match.test(l.message));
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const hit = this.logs.find(test);
            if (hit) {
                return hit;
            }
            if (Date.now() > deadline) {
                throw new Error(
                    `no log line matching ${match} within ${timeoutMs} ms; got:\n` +
                        this.logs.map((l) => `[${l.severity}] ${l.message}`).join("\n"),
                );
            }
            await new Promise((r) => setTimeout(r, 10));
        }
    }

    /** Whether the process is still running. */
    get running(): boolean {
        return !this.exited;
    }

    /** Stops the process this instance started (SIGTERM, then SIGKILL after 3 s) and the engine server. */
    async stop(): Promise<void> {
        this.client.close();
        this.engine.forceShutdown();
        if (!this.exited) {
            this.child.kill("SIGTERM");
            const timer = setTimeout(() => {
                if (!this.exited) {
                    this.child.kill("SIGKILL");
                }
            }, 3000);
            await this.exitPromise;
            clearTimeout(timer);
        }
    }
}

function deepEqual(a: any, b: any): boolean {
    if (a === b) {
        return true;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
        return a.length === b.length && a.every((e, i) => deepEqual(e, b[i]));
    }
    if (isPlainObject(a) && isPlainObject(b)) {
        const ka = Object.keys(a).filter((k) => a[k] !== undefined);
        const kb = Object.keys(b).filter((k) => b[k] !== undefined);
        return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
    }
    return false;
}

function diffKeys(olds: Props, news: Props, ignore: Set<string>): string[] {
    const keys = new Set([...Object.keys(olds), ...Object.keys(news)]);
    return [...keys].filter((k) => !ignore.has(k) && !deepEqual(olds[k], news[k])).sort();
}

// ---------------------------------------------------------------------------
// A stack: engine-like sequencing of whole deployments.

export interface ResourceSpec {
    name: string;
    provider: ProviderLike;
    /** Inputs, or a function of the outputs of resources declared before this one (by name). */
    props: Props | ((outputs: Record<string, Props>) => Props);
    type?: string;
    parentType?: string;
    /** The `deleteBeforeReplace` resource option. */
    deleteBeforeReplace?: boolean;
}

export interface StateEntry {
    urn: string;
    name: string;
    type?: string;
    parentType?: string;
    id: string;
    inputs: Props;
    outputs: Props;
}

export type StepOp = "create" | "update" | "same" | "replace" | "delete" | "refresh" | "gone";

export interface Step {
    op: StepOp;
    name: string;
    urn: string;
    /** For update/replace: what the diff reported. */
    diff?: DiffResult;
}

export interface DeploymentResult {
    steps: Step[];
    /** Outputs by resource name (in a preview: what the program would see, unknowns as UNKNOWN). */
    outputs: Record<string, Props>;
    /** The provider process's logs for this deployment. */
    logs: LogEntry[];
    /** gRPC calls made during this deployment. */
    calls: Record<Method, number>;
    startMillis: number;
}

export interface DeployOptions {
    /**
     * Run independent resources concurrently, as the engine does: resources with
     * literal props start at once; one whose props is a function waits for all
     * resources declared before it. Default: one at a time in declaration order.
     */
    parallel?: boolean;
}

/** A failed deployment: the engine stops at the first failing step, keeping what succeeded. */
export class DeploymentError extends Error {
    constructor(
        readonly cause: Error,
        readonly result: DeploymentResult,
    ) {
        super(cause.message);
        this.name = "DeploymentError";
    }
}

/** The DeploymentError a deployment that must fail gave; any other outcome fails the test. */
export async function deploymentFailure(p: Promise<unknown>): Promise<DeploymentError> {
    try {
        await p;
    } catch (e) {
        if (e instanceof DeploymentError) return e;
        throw e;
    }
    throw new Error("expected the deployment to fail");
}

/**
 * Engine-like state across deployments: `up` runs check → diff →
 * create/update/replace/same per resource in declaration order, then deletes
 * resources no longer declared (reverse order); `preview` does the same with
 * unknowns allowed and no Create/Update calls; `refresh` reads every resource;
 * `destroy` deletes all. Each deployment starts its own provider process, as
 * the engine does.
 */
export class Stack {
    /** Resource state by name, in creation order. */
    readonly state = new Map<string, StateEntry>();

    constructor(private readonly opts: EngineOptions = {}) {}

    preview(resources: ResourceSpec[], opts: DeployOptions = {}): Promise<DeploymentResult> {
        return this.deploy(resources, true, opts);
    }

    up(resources: ResourceSpec[], opts: DeployOptions = {}): Promise<DeploymentResult> {
        return this.deploy(resources, false, opts);
    }

    private async withProcess(
        body: (p: ProviderProcess, steps: Step[], outputs: Record<string, Props>) => Promise<void>,
    ): Promise<DeploymentResult> {
        const p = await ProviderProcess.start(this.opts);
        const steps: Step[] = [];
        const outputs: Record<string, Props> = {};
        const result = (): DeploymentResult => ({
            steps,
            outputs,
            logs: p.logs,
            calls: { ...p.calls },
            startMillis: p.startMillis,
        });
        try {
            await body(p, steps, outputs);
        } catch (e) {
            await p.stop();
            throw new DeploymentError(e as Error, result());
        }
        await p.stop();
        return result();
    }

    private async deploy(resources: ResourceSpec[], preview: boolean, opts: DeployOptions): Promise<DeploymentResult> {
        const names = new Set<string>();
        for (const r of resources) {
            if (names.has(r.name)) {
                throw new Error(`duplicate resource name ${r.name}`);
            }
            names.add(r.name);
        }
        return this.withProcess(async (p, steps, outputs) => {
            const pendingDeletes: StateEntry[] = [];
            const slots: Step[] = [];
            const record = (i: number, step: Step) => {
                slots[i] = step;
            };
            const one = async (r: ResourceSpec, i: number): Promise<void> => {
                const copts: CallOptions = { preview, type: r.type, parentType: r.parentType };
                const urn = p.urn(r.name, copts);
                const raw = typeof r.props === "function" ? r.props(outputs) : r.props;
                const old = this.state.get(r.name);
                const olds = old ? old.inputs : {};
                const checked = await p.check(r.provider, r.name, olds, raw, copts);
                if (checked.failures.length > 0) {
                    throw new EngineError(
                        `resource ${urn} has check errors:\n` +
                            checked.failures.map((f) => `  ${f.property}: ${f.reason}`).join("\n"),
                        "check",
                        urn,
                        undefined,
                    );
                }
                let inputs = checked.inputs;

                if (!old) {
                    const { id, outs } = await p.create(r.provider, r.name, inputs, copts);
                    record(i, { op: "create", name: r.name, urn });
                    outputs[r.name] = preview ? previewOutputs(outs) : outs;
                    if (!preview) {
                        this.state.set(r.name, { urn, name: r.name, type: r.type, parentType: r.parentType, id, inputs, outputs: outs });
                    }
                    return;
                }

                const diff = await p.diff(r.provider, old.id, r.name, old.outputs, inputs, {
                    ...copts,
                    oldInputs: old.inputs,
                });
                if (!diff.changes) {
                    record(i, { op: "same", name: r.name, urn });
                    outputs[r.name] = old.outputs;
                    if (!preview) {
                        this.state.set(r.name, { ...old, inputs });
                    }
                    return;
                }

                if (diff.replaces.length === 0) {
                    const { outs } = await p.update(r.provider, old.id, r.name, old.outputs, inputs, {
                        ...copts,
                        oldInputs: old.inputs,
                    });
                    record(i, { op: "update", name: r.name, urn, diff });
                    outputs[r.name] = preview ? previewOutputs(outs) : outs;
                    if (!preview) {
                        this.state.set(r.name, { ...old, inputs, outputs: outs });
                    }
                    return;
                }

                // Replacement: the engine re-checks without olds, since defaults
                // carried over from the old resource no longer apply.
                const rechecked = await p.check(r.provider, r.name, {}, raw, copts);
                if (rechecked.failures.length > 0) {
                    throw new EngineError(
                        `resource ${urn} has check errors:\n` +
                            rechecked.failures.map((f) => `  ${f.property}: ${f.reason}`).join("\n"),
                        "check",
                        urn,
                        undefined,
                    );
                }
                inputs = rechecked.inputs;
                const dbr = r.deleteBeforeReplace || diff.deleteBeforeReplace;
                if (dbr && !preview) {
                    await p.delete(r.provider, old.id, r.name, old.outputs, { ...copts, oldInputs: old.inputs });
                    this.state.delete(r.name);
                }
                const { id, outs } = await p.create(r.provider, r.name, inputs, copts);
                record(i, { op: "replace", name: r.name, urn, diff });
                outputs[r.name] = preview ? previewOutputs(outs) : outs;
                if (!preview) {
                    if (!dbr) {
                        pendingDeletes.push(old);
                    }
                    this.state.set(r.name, { urn, name: r.name, type: r.type, parentType: r.parentType, id, inputs, outputs: outs });
                }
                        };
            if (!opts.parallel) {
                try {
                    for (let i = 0; i < resources.length; i++) {
                        await one(resources[i], i);
                    }
                } finally {
                    steps.push(...slots.filter(Boolean));
                }
            } else {
                // Resources with literal props start at once; a resource whose props
                // read other outputs waits for every resource declared before it.
                const tasks: Promise<void>[] = [];
                resources.forEach((r, i) => {
                    const ready = typeof r.props === "function" ? Promise.all(tasks.slice()) : Promise.resolve([]);
                    tasks.push(ready.then(() => one(r, i)));
                });
                const settled = await Promise.allSettled(tasks);
                steps.push(...slots.filter(Boolean));
                const failed = settled.find((t) => t.status === "rejected") as PromiseRejectedResult | undefined;
                if (failed) {
                    throw failed.reason;
                }
            }

            // Create-before-delete replacements: old resources go at the end.
            for (const old of pendingDeletes.reverse()) {
                await p.delete(old.outputs[PROVIDER_KEY] ?? "", old.id, old.name, old.outputs, {
                    type: old.type,
                    parentType: old.parentType,
                    oldInputs: old.inputs,
                });
            }

            // Resources no longer declared: deleted in reverse creation order.
            const gone = [...this.state.values()].filter((s) => !names.has(s.name)).reverse();
            for (const s of gone) {
                if (!preview) {
                    await p.delete(s.outputs[PROVIDER_KEY] ?? "", s.id, s.name, s.outputs, {
                        type: s.type,
                        parentType: s.parentType,
                        oldInputs: s.inputs,
                    });
                    this.state.delete(s.name);
                }
                steps.push({ op: "delete", name: s.name, urn: s.urn });
            }
        });
    }

    /** `pulumi refresh`: Read every resource; an empty id removes it from state. */
    refresh(): Promise<DeploymentResult> {
        return this.withProcess(async (p, steps, outputs) => {
            for (const s of [...this.state.values()]) {
                const opts = { type: s.type, parentType: s.parentType };
                const r = await p.read(s.outputs[PROVIDER_KEY] ?? "", s.id, s.name, s.outputs, s.inputs, opts);
                if (r.id === "") {
                    this.state.delete(s.name);
                    steps.push({ op: "gone", name: s.name, urn: s.urn });
                    continue;
                }
                const next = { ...s, id: r.id, outputs: r.props, inputs: r.inputs ?? s.inputs };
                this.state.set(s.name, next);
                outputs[s.name] = r.props;
                steps.push({ op: "refresh", name: s.name, urn: s.urn });
            }
        });
    }

    /** `pulumi destroy`: delete everything in reverse creation order. */
    destroy(): Promise<DeploymentResult> {
        return this.withProcess(async (p, steps) => {
            for (const s of [...this.state.values()].reverse()) {
                await p.delete(s.outputs[PROVIDER_KEY] ?? "", s.id, s.name, s.outputs, {
                    type: s.type,
                    parentType: s.parentType,
                    oldInputs: s.inputs,
                });
                this.state.delete(s.name);
                steps.push({ op: "delete", name: s.name, urn: s.urn });
            }
        });
    }
}

/**
 * What a program sees in a preview for a resource being created or updated:
 * the engine hands back the inputs, and the SDK treats every other output as
 * unknown. Reading a missing key yields UNKNOWN.
 */
function previewOutputs(outs: Props): Props {
    return new Proxy(outs, {
        get(target, key, receiver) {
            if (typeof key === "string" && !(key in target)) {
                return UNKNOWN;
            }
            return Reflect.get(target, key, receiver);
        },
    });
}

/**
 * Convenience for one resource through one `pulumi up` on a fresh process:
 * check → (diff → update/replace when `prior` is given) → create. Returns the
 * engine's view afterwards; the process is stopped.
 */
export async function lifecycle(
    provider: ProviderLike,
    name: string,
    props: Props,
    prior?: StateEntry,
    opts: EngineOptions = {},
): Promise<{ step: Step; state: StateEntry; result: DeploymentResult }> {
    const stack = new Stack(opts);
    if (prior) {
        stack.state.set(name, prior);
    }
    const result = await stack.up([{ name, provider, props }]);
    return { step: result.steps[0], state: stack.state.get(name)!, result };
}
