// The engine harness against the real @pulumi/pulumi dynamic-provider process,
// with a small provider that manages a file on the local filesystem.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { expect } from "chai";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import {
    DeploymentError,
    EngineError,
    ProviderProcess,
    SIG_KEY,
    SECRET_SIG,
    Stack,
    UNKNOWN,
    isSecret,
    lifecycle,
    secret,
    serializeProvider,
    withoutProvider,
} from "../support/engine";

// ---------------------------------------------------------------------------
// The provider under test. Everything it needs is required inside the
// handlers, at call time, so that serialization captures nothing but code.
// The unknown sentinel is written literally: capturing the imported UNKNOWN
// constant would capture the whole harness module.

const fileProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: any, news: any) {
        const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
        const failures: { property: string; reason: string }[] = [];
        if (news.path !== unknown && (typeof news.path !== "string" || !news.path.startsWith("/"))) {
            failures.push({ property: "path", reason: "must be an absolute path" });
        }
        if (news.content !== unknown && typeof news.content !== "string") {
            failures.push({ property: "content", reason: "must be a string" });
        }
        if (
            news.mode !== undefined &&
            news.mode !== unknown &&
            !(Number.isInteger(news.mode) && news.mode >= 0 && news.mode <= 0o777)
        ) {
            failures.push({ property: "mode", reason: "must be an integer between 0 and 0o777" });
        }
        const inputs = { ...news };
        if (inputs.mode === undefined) {
            inputs.mode = 0o644; // a default filled in by check
        }
        return { inputs, failures };
    },

    async diff(id: string, olds: any, news: any) {
        const replaces: string[] = [];
        if (olds.path !== news.path) {
            replaces.push("path");
        }
        const changed = ["path", "content", "mode", "extra"].filter(
            (k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]),
        );
        return { changes: changed.length > 0, replaces, deleteBeforeReplace: false };
    },

    async create(inputs: any) {
        const fs = require("fs");
        const crypto = require("crypto");
        const started = Date.now();
        if (inputs.delayMs) {
            await new Promise((r) => setTimeout(r, inputs.delayMs));
        }
        const tmp = `${inputs.path}.tmp-${process.pid}`;
        fs.writeFileSync(tmp, inputs.content, { mode: inputs.mode });
        fs.renameSync(tmp, inputs.path);
        console.log(`wrote ${inputs.path}`);
        const outs: any = {
            path: inputs.path,
            content: inputs.content,
            mode: inputs.mode,
            size: Buffer.byteLength(inputs.content),
            sha256: crypto.createHash("sha256").update(inputs.content).digest("hex"),
            started,
            finished: Date.now(),
            pid: process.pid,
        };
        if (inputs.extra !== undefined) {
            outs.extra = inputs.extra;
        }
        if (inputs.sawTypes) {
            outs.sawTypes = Object.fromEntries(
                Object.entries(inputs).map(([k, v]) => [k, Array.isArray(v) ? "array" : v === null ? "null" : typeof v]),
            );
        }
        return { id: inputs.path, outs };
    },

    async read(id: string, props: any) {
        const fs = require("fs");
        const crypto = require("crypto");
        if (!fs.existsSync(id)) {
            return { id: "", props: {} };
        }
        const content = fs.readFileSync(id, "utf8");
        const mode = fs.statSync(id).mode & 0o777;
        return {
            id,
            props: {
                ...props,
                content,
                mode,
                size: Buffer.byteLength(content),
                sha256: crypto.createHash("sha256").update(content).digest("hex"),
            },
        };
    },

    async update(id: string, olds: any, news: any) {
        const fs = require("fs");
        const crypto = require("crypto");
        fs.writeFileSync(id, news.content);
        fs.chmodSync(id, news.mode);
        return {
            outs: {
                ...olds,
                content: news.content,
                mode: news.mode,
                size: Buffer.byteLength(news.content),
                sha256: crypto.createHash("sha256").update(news.content).digest("hex"),
            },
        };
    },

    async delete(id: string, props: any) {
        const fs = require("fs");
        fs.unlinkSync(id);
    },
};

// Module-level zod schema captured by `check`: the classic serialization pitfall.
const schema = z.object({ path: z.string(), content: z.string() });
const capturingProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: any, news: any) {
        const r = schema.safeParse(news);
        return { inputs: news, failures: r.success ? [] : [{ property: "path", reason: "invalid" }] };
    },
    async create(inputs: any) {
        return { id: "x", outs: {} };
    },
};

// The fix: keep heavy code in a module the handler requires at call time.
// A captured string is serialized by value, so the absolute path travels along.
const heavyModule = path.join(__dirname, "..", "support", "engine-fixtures", "heavy.js");
const requiringProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: any, news: any) {
        return { inputs: news, failures: require(heavyModule).validate(news) };
    },
    async create(inputs: any) {
        return { id: "x", outs: { ok: true } };
    },
};

const typedModule = path.join(__dirname, "..", "support", "engine-fixtures", "typed.ts");
const typescriptProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs: any) {
        return { id: "x", outs: { twice: require(typedModule).double(inputs.n) } };
    },
};

function sha256(s: string): string {
    return require("crypto").createHash("sha256").update(s).digest("hex");
}

describe("engine harness (real dynamic-provider process over gRPC)", function () {
    let dir: string;
    let proc: ProviderProcess;

    before(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "sriov-engine-"));
        proc = await ProviderProcess.start();
    });

    after(async () => {
        await proc?.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    const file = (name: string) => path.join(dir, name);

    describe("serialization", () => {
        it("produces what pulumi.dynamic.Resource stores as __provider", async () => {
            const text = await serializeProvider(fileProvider);
            expect(text).to.match(/^exports\.handler = __f\d+;/);
            expect(text).to.include("var __provider = {check: ");
            expect(text).to.include("require(\"fs\")");
            // pulumi.dynamic.Resource serializes `() => provider` for its `provider` parameter.
            const provider = fileProvider;
            const direct = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
            expect(direct.text).to.equal(text);
            expect(direct.containsSecrets).to.equal(false);
        });

        it("fails with pulumi's message when a handler captures a module-level zod schema", async () => {
            let err: Error | undefined;
            try {
                await serializeProvider(capturingProvider);
            } catch (e) {
                err = e as Error;
            }
            expect(err, "serialization should fail").to.be.instanceOf(Error);
            // e.g. "'()=>provider': captured variable 'provider' which indirectly referenced function
            // 'check': which captured variable 'schema' which indirectly referenced function 'bound
            // safeParse': which could not be serialized" (line-wrapped).
            expect(err!.message).to.match(/captured\s+variable 'schema'/);
            expect(err!.message).to.match(/could not be serialized/);
            // The same failure surfaces from a harness call, before any RPC.
            const before = proc.calls.check;
            let callErr: Error | undefined;
            try {
                await proc.check(capturingProvider, "captures", {}, { path: "/x", content: "" });
            } catch (e) {
                callErr = e as Error;
            }
            expect(callErr?.message).to.match(/captured\s+variable 'schema'/);
            expect(proc.calls.check).to.equal(before);
        });

        it("works when the heavy code is required by the handler at call time", async () => {
            const bad = await proc.check(requiringProvider, "requires", {}, { path: "relative", content: 3 });
            expect(bad.failures.map((f) => f.property).sort()).to.deep.equal(["content", "path"]);
            const good = await proc.check(requiringProvider, "requires", {}, { path: "/abs", content: "x" });
            expect(good.failures).to.deep.equal([]);
        });

        it("has no TypeScript loader in the provider process", async () => {
            let err: EngineError | undefined;
            try {
                await proc.create(typescriptProvider, "typed", { n: 2 });
            } catch (e) {
                err = e as EngineError;
            }
            expect(err).to.be.instanceOf(EngineError);
            expect(err!.message).to.match(/SyntaxError|Unexpected token|Missing initializer/);
            expect(err!.method).to.equal("create");
        });
    });

    describe("start-up", () => {
        it("negotiates what the engine negotiates with the Node.js dynamic provider", () => {
            expect(proc.protocol).to.deep.equal({ acceptSecrets: false, acceptResources: false, supportsPreview: false });
            const pkg = require("@pulumi/pulumi/package.json");
            expect(proc.pluginVersion).to.equal(pkg.version);
            expect(proc.startMillis).to.be.greaterThan(0);
            expect(proc.running).to.equal(true);
        });

        it("stop() ends exactly the process it started", async () => {
            const p = await ProviderProcess.start();
            const pid = (p as any).child.pid as number;
            expect(() => process.kill(pid, 0)).not.to.throw();
            await p.stop();
            expect(p.running).to.equal(false);
            expect(() => process.kill(pid, 0)).to.throw();
            expect(proc.running).to.equal(true);
        });
    });

    describe("check", () => {
        it("returns checked inputs with defaults and __provider", async () => {
            const { inputs, failures } = await proc.check(fileProvider, "f", {}, { path: file("a"), content: "hi" });
            expect(failures).to.deep.equal([]);
            expect(withoutProvider(inputs)).to.deep.equal({ path: file("a"), content: "hi", mode: 0o644 });
            expect(inputs.__provider).to.equal(await serializeProvider(fileProvider));
        });

        it("reports every failing property at once", async () => {
            const { failures } = await proc.check(fileProvider, "f", {}, { path: "rel", content: 7, mode: 4096 });
            expect(failures).to.deep.equal([
                { property: "path", reason: "must be an absolute path" },
                { property: "content", reason: "must be a string" },
                { property: "mode", reason: "must be an integer between 0 and 0o777" },
            ]);
        });

        it("lets an unknown preview value through, as the sentinel string", async () => {
            const { inputs, failures } = await proc.check(
                fileProvider,
                "f",
                {},
                { path: file("u"), content: UNKNOWN },
                { preview: true },
            );
            expect(failures).to.deep.equal([]);
            expect(inputs.content).to.equal(UNKNOWN);
        });

        it("drops unknowns outside a preview, as the engine does", async () => {
            const { failures } = await proc.check(fileProvider, "f", {}, { path: file("u"), content: UNKNOWN });
            expect(failures).to.deep.equal([{ property: "content", reason: "must be a string" }]);
        });

        it("surfaces a throwing check as a rejected promise with the provider's message", async () => {
            const throwing: pulumi.dynamic.ResourceProvider = {
                async check() {
                    throw new Error("host lab1: connection refused");
                },
                async create() {
                    return { id: "x" };
                },
            };
            let err: EngineError | undefined;
            try {
                await proc.check(throwing, "t", {}, {});
            } catch (e) {
                err = e as EngineError;
            }
            expect(err).to.be.instanceOf(EngineError);
            expect(err!.message).to.equal("host lab1: connection refused");
            expect(err!.method).to.equal("check");
            expect(err!.urn).to.equal("urn:pulumi:stack::project::pulumi-nodejs:dynamic:Resource::t");
        });
    });

    describe("create, read, diff, update, delete", () => {
        const name = "crud";
        let id: string;
        let inputs: any;
        let outs: any;

        it("creates the file", async () => {
            ({ inputs } = await proc.check(fileProvider, name, {}, { path: file("crud"), content: "one" }));
            ({ id, outs } = await proc.create(fileProvider, name, inputs));
            expect(id).to.equal(file("crud"));
            expect(fs.readFileSync(file("crud"), "utf8")).to.equal("one");
            expect(fs.statSync(file("crud")).mode & 0o777).to.equal(0o644);
            expect(outs).to.include({ path: file("crud"), content: "one", mode: 0o644, size: 3, sha256: sha256("one") });
            expect(outs.__provider).to.equal(inputs.__provider);
            await proc.waitForLog(`wrote ${file("crud")}`);
        });

        it("reads without drift, then detects drift on disk", async () => {
            const clean = await proc.read(fileProvider, id, name, outs, inputs);
            expect(clean.id).to.equal(id);
            expect(clean.props).to.deep.equal(outs);
            expect(clean.inputs).to.equal(undefined);

            fs.writeFileSync(file("crud"), "tampered");
            const drifted = await proc.read(fileProvider, id, name, outs, inputs);
            expect(drifted.props.content).to.equal("tampered");
            expect(drifted.props.sha256).to.equal(sha256("tampered"));
            outs = drifted.props;
        });

        it("diffs: no change, a change, a replacement", async () => {
            const same = await proc.diff(fileProvider, id, name, outs, { ...inputs, content: "tampered" });
            expect(same).to.deep.include({ changes: false, providerChanges: "none", replaces: [] });

            const changed = await proc.diff(fileProvider, id, name, outs, { ...inputs, content: "two" });
            expect(changed).to.deep.include({ changes: true, providerChanges: "some", replaces: [] });

            const moved = await proc.diff(fileProvider, id, name, outs, { ...inputs, path: file("elsewhere") });
            expect(moved).to.deep.include({ changes: true, replaces: ["path"], deleteBeforeReplace: false });
        });

        it("updates the file", async () => {
            const checked = await proc.check(fileProvider, name, inputs, { path: file("crud"), content: "two", mode: 0o600 });
            expect(checked.failures).to.deep.equal([]);
            const { outs: next } = await proc.update(fileProvider, id, name, outs, checked.inputs, { oldInputs: inputs });
            expect(fs.readFileSync(file("crud"), "utf8")).to.equal("two");
            expect(fs.statSync(file("crud")).mode & 0o777).to.equal(0o600);
            expect(next).to.include({ content: "two", mode: 0o600, size: 3, sha256: sha256("two") });
            outs = next;
            inputs = checked.inputs;
        });

        it("deletes with the code stored at create time", async () => {
            const refusing: pulumi.dynamic.ResourceProvider = {
                async create() {
                    return { id: "x" };
                },
                async delete() {
                    throw new Error("the new code must not run");
                },
            };
            await proc.delete(refusing, id, name, outs, { oldInputs: inputs });
            expect(fs.existsSync(file("crud"))).to.equal(false);
        });

        it("reports a vanished resource from read as an empty id", async () => {
            const gone = await proc.read(fileProvider, id, name, outs, inputs);
            expect(gone.id).to.equal("");
        });
    });

    describe("values on the wire", () => {
        it("round-trips JSON-like values through protobuf Struct", async () => {
            const extra = {
                int: 42,
                float: 1.5,
                negative: -7,
                big: 2 ** 52 + 1,
                yes: true,
                no: false,
                nothing: null,
                list: [1, "two", [3], { four: 4 }],
                empty: {},
                emptyList: [],
                nested: { deep: { deeper: ["x"] } },
            };
            const { inputs } = await proc.check(fileProvider, "wire", {}, {
                path: file("wire"),
                content: "w",
                extra,
                sawTypes: true,
            });
            const { outs } = await proc.create(fileProvider, "wire", inputs);
            expect(outs.extra).to.deep.equal(extra);
            expect(outs.sawTypes).to.deep.include({ extra: "object", path: "string", mode: "number", sawTypes: "boolean" });
        });

        it("drops undefined inputs (the SDK never registers them)", async () => {
            const { inputs } = await proc.check(fileProvider, "undef", {}, {
                path: file("undef"),
                content: "u",
                extra: undefined,
                sawTypes: true,
            });
            expect(inputs).not.to.have.property("extra");
            const { outs } = await proc.create(fileProvider, "undef", inputs);
            expect(outs.sawTypes).not.to.have.property("extra");
        });

        it("fails a create whose outputs contain undefined", async () => {
            const sloppy: pulumi.dynamic.ResourceProvider = {
                async create() {
                    return { id: "x", outs: { known: 1, missing: undefined } };
                },
            };
            let err: EngineError | undefined;
            try {
                await proc.create(sloppy, "sloppy", {});
            } catch (e) {
                err = e as EngineError;
            }
            expect(err).to.be.instanceOf(EngineError);
            expect(err!.message).to.include("Unexpected struct type");
        });

        it("sends secrets as plain values and marks same-named outputs secret again", async () => {
            const { inputs } = await proc.check(fileProvider, "secret", {}, {
                path: file("secret"),
                content: secret("hunter2"),
            });
            expect(inputs.content).to.deep.equal({ [SIG_KEY]: SECRET_SIG, value: "hunter2" });
            const { outs } = await proc.create(fileProvider, "secret", inputs);
            // The provider saw the plain value...
            expect(fs.readFileSync(file("secret"), "utf8")).to.equal("hunter2");
            expect(outs.size).to.equal(7);
            // ...and the engine re-marks only outputs whose input key held a secret.
            expect(isSecret(outs.content)).to.equal(true);
            expect(outs.content.value).to.equal("hunter2");
            expect(isSecret(outs.sha256)).to.equal(false);
            expect(outs.sha256).to.equal(sha256("hunter2"));
        });

        it("marks a nested secret inside an object, not the whole object", async () => {
            const { inputs } = await proc.check(fileProvider, "nested-secret", {}, {
                path: file("nested-secret"),
                content: "c",
                extra: { user: "root", password: secret("pw") },
            });
            const { outs } = await proc.create(fileProvider, "nested-secret", inputs);
            expect(isSecret(outs.extra)).to.equal(false);
            expect(outs.extra.user).to.equal("root");
            expect(outs.extra.password).to.deep.equal(secret("pw"));
        });

        it("surfaces an initialisation failure (error with an id)", async () => {
            const half: pulumi.dynamic.ResourceProvider = {
                async create() {
                    const e: any = new Error("created but not ready");
                    e.id = "half-1";
                    e.properties = { state: "degraded" };
                    e.reasons = ["link down"];
                    throw e;
                },
            };
            let err: EngineError | undefined;
            try {
                await proc.create(half, "half", {});
            } catch (e) {
                err = e as EngineError;
            }
            expect(err!.message).to.equal("created but not ready");
            expect(err!.initFailed).to.deep.equal({
                id: "half-1",
                properties: { state: "degraded" },
                reasons: ["link down"],
            });
        });
    });

    describe("preview", () => {
        it("never calls Create or Update on a dynamic provider", async () => {
            const creates = proc.calls.create;
            const updates = proc.calls.update;
            const { inputs } = await proc.check(fileProvider, "pv", {}, { path: file("pv"), content: UNKNOWN }, { preview: true });
            const created = await proc.create(fileProvider, "pv", inputs, { preview: true });
            expect(created.id).to.equal("");
            expect(created.outs).to.deep.equal(inputs);
            const updated = await proc.update(fileProvider, "pv", "pv", {}, inputs, { preview: true });
            expect(updated.outs).to.deep.equal(inputs);
            expect(proc.calls.create).to.equal(creates);
            expect(proc.calls.update).to.equal(updates);
            expect(fs.existsSync(file("pv"))).to.equal(false);
        });
    });

    describe("concurrency", () => {
        it("serves 10 concurrent creates on one process", async () => {
            const delayMs = 300;
            const t0 = Date.now();
            const results = await Promise.all(
                Array.from({ length: 10 }, async (_, i) => {
                    const { inputs } = await proc.check(fileProvider, `c${i}`, {}, {
                        path: file(`c${i}`),
                        content: `n${i}`,
                        delayMs,
                    });
                    return proc.create(fileProvider, `c${i}`, inputs);
                }),
            );
            const elapsed = Date.now() - t0;
            for (let i = 0; i < 10; i++) {
                expect(fs.readFileSync(file(`c${i}`), "utf8")).to.equal(`n${i}`);
                expect(results[i].id).to.equal(file(`c${i}`));
            }
            // One process served all of them, overlapping in time.
            expect(new Set(results.map((r) => r.outs.pid)).size).to.equal(1);
            const lastStart = Math.max(...results.map((r) => r.outs.started));
            const firstEnd = Math.min(...results.map((r) => r.outs.finished));
            expect(lastStart).to.be.lessThan(firstEnd);
            expect(elapsed).to.be.lessThan(10 * delayMs);
        });
    });

    describe("logs", () => {
        it("captures stdout/stderr the way the engine shows them; pulumi.log goes to stdout", async () => {
            const chatty: pulumi.dynamic.ResourceProvider = {
                async create() {
                    console.log("plain stdout line");
                    console.error("plain stderr line");
                    await require("@pulumi/pulumi").log.info("via pulumi.log");
                    await require("@pulumi/pulumi").log.warn("careful");
                    return { id: "x" };
                },
            };
            await proc.create(chatty, "chatty", {});
            expect(await proc.waitForLog("plain stdout line")).to.deep.include({ severity: "info", stream: "stdout" });
            expect(await proc.waitForLog("plain stderr line")).to.deep.include({ severity: "infoerr", stream: "stderr" });
            expect(await proc.waitForLog("info: [runtime] via pulumi.log")).to.deep.include({ stream: "stdout" });
            expect(await proc.waitForLog("warning: [runtime] careful")).to.deep.include({ stream: "stderr" });
            expect(proc.logs.filter((l) => l.stream === "engine")).to.deep.equal([]);
        });
    });

    describe("a crashing provider", () => {
        it("rejects with the exit status and stderr", async () => {
            const p = await ProviderProcess.start();
            const crashing: pulumi.dynamic.ResourceProvider = {
                async create() {
                    console.error("about to die");
                    process.exit(3);
                },
            };
            let err: EngineError | undefined;
            try {
                await p.create(crashing, "crash", {});
            } catch (e) {
                err = e as EngineError;
            }
            expect(err).to.be.instanceOf(EngineError);
            expect(err!.message).to.include("exited (code 3");
            expect(err!.message).to.include("about to die");
            expect(p.running).to.equal(false);
            await p.stop();
        });
    });

    describe("Stack: deployments as the engine sequences them", () => {
        it("up, no-op up, preview, update, replace, refresh, destroy", async () => {
            const stack = new Stack();
            const spec = (content: string, name = "s.txt", extra?: any) => [
                { name: "a", provider: fileProvider, props: { path: file(`stack-${name}`), content } },
                {
                    name: "b",
                    provider: fileProvider,
                    props: (o: Record<string, any>) => ({ path: file("stack-b"), content: `sha of a: ${o.a.sha256}`, extra }),
                },
            ];

            const first = await stack.up(spec("v1"));
            expect(first.steps.map((s) => `${s.op} ${s.name}`)).to.deep.equal(["create a", "create b"]);
            expect(fs.readFileSync(file("stack-b"), "utf8")).to.equal(`sha of a: ${sha256("v1")}`);

            const again = await stack.up(spec("v1"));
            expect(again.steps.map((s) => s.op)).to.deep.equal(["same", "same"]);
            expect(again.calls).to.include({ create: 0, update: 0, delete: 0 });

            // Preview of a change: b's input depends on a's unknown output.
            const pv = await stack.preview(spec("v2"));
            expect(pv.steps.map((s) => `${s.op} ${s.name}`)).to.deep.equal(["update a", "update b"]);
            expect(pv.outputs.a.sha256).to.equal(UNKNOWN);
            expect(pv.calls).to.include({ create: 0, update: 0 });
            expect(fs.readFileSync(file("stack-s.txt"), "utf8")).to.equal("v1");

            const upd = await stack.up(spec("v2"));
            expect(upd.steps.map((s) => `${s.op} ${s.name}`)).to.deep.equal(["update a", "update b"]);
            expect(fs.readFileSync(file("stack-b"), "utf8")).to.equal(`sha of a: ${sha256("v2")}`);

            const rep = await stack.up(spec("v2", "moved.txt"));
            expect(rep.steps.map((s) => `${s.op} ${s.name}`)).to.deep.equal(["replace a", "same b"]);
            expect(rep.steps[0].diff!.replaces).to.deep.equal(["path"]);
            expect(fs.existsSync(file("stack-s.txt"))).to.equal(false);
            expect(fs.readFileSync(file("stack-moved.txt"), "utf8")).to.equal("v2");

            fs.writeFileSync(file("stack-moved.txt"), "drift");
            const ref = await stack.refresh();
            expect(ref.outputs.a.content).to.equal("drift");
            const heal = await stack.up(spec("v2", "moved.txt"));
            expect(heal.steps.map((s) => s.op)).to.deep.equal(["update", "same"]);
            expect(fs.readFileSync(file("stack-moved.txt"), "utf8")).to.equal("v2");

            const dropped = await stack.up(spec("v2", "moved.txt").slice(0, 1));
            expect(dropped.steps.map((s) => `${s.op} ${s.name}`)).to.deep.equal(["same a", "delete b"]);
            expect(fs.existsSync(file("stack-b"))).to.equal(false);

            const down = await stack.destroy();
            expect(down.steps.map((s) => `${s.op} ${s.name}`)).to.deep.equal(["delete a"]);
            expect(fs.existsSync(file("stack-moved.txt"))).to.equal(false);
            expect(stack.state.size).to.equal(0);
        });

        it("stops at check failures with every failing property named", async () => {
            const stack = new Stack();
            let err: DeploymentError | undefined;
            try {
                await stack.up([{ name: "bad", provider: fileProvider, props: { path: "rel", content: 1 } }]);
            } catch (e) {
                err = e as DeploymentError;
            }
            expect(err).to.be.instanceOf(DeploymentError);
            expect(err!.message).to.include("path: must be an absolute path");
            expect(err!.message).to.include("content: must be a string");
            expect(err!.result.calls.create).to.equal(0);
            expect(stack.state.size).to.equal(0);
        });

        it("runs independent resources concurrently with { parallel: true }", async () => {
            const stack = new Stack();
            const delayMs = 400;
            const specs = [
                ...Array.from({ length: 6 }, (_, i) => ({
                    name: `p${i}`,
                    provider: fileProvider,
                    props: { path: file(`par-${i}`), content: `${i}`, delayMs },
                })),
                {
                    name: "summary",
                    provider: fileProvider,
                    props: (o: Record<string, any>) => ({
                        path: file("par-summary"),
                        content: Array.from({ length: 6 }, (_, i) => o[`p${i}`].sha256).join("\n"),
                    }),
                },
            ];
            const t0 = Date.now();
            const r = await stack.up(specs, { parallel: true });
            const elapsed = Date.now() - t0 - r.startMillis;
            expect(r.steps.map((s) => s.op)).to.deep.equal(Array(7).fill("create"));
            const starts = specs.slice(0, 6).map((s) => r.outputs[s.name].started);
            const ends = specs.slice(0, 6).map((s) => r.outputs[s.name].finished);
            expect(Math.max(...starts)).to.be.lessThan(Math.min(...ends));
            expect(r.outputs.summary.started).to.be.at.least(Math.max(...ends));
            expect(elapsed).to.be.lessThan(6 * delayMs);
            await stack.destroy();
            expect(fs.readdirSync(dir).filter((f) => f.startsWith("par-"))).to.deep.equal([]);
        });

        it("lifecycle() runs one resource through one up", async () => {
            const { step, state } = await lifecycle(fileProvider, "one", { path: file("one"), content: "1" });
            expect(step.op).to.equal("create");
            expect(state.id).to.equal(file("one"));
            const second = await lifecycle(fileProvider, "one", { path: file("one"), content: "2" }, state);
            expect(second.step.op).to.equal("update");
            expect(fs.readFileSync(file("one"), "utf8")).to.equal("2");
        });
    });
});
