// The real Pulumi CLI, as the lab and the end-to-end tests run it.
//
// The CLI is built from its Go modules by lab/tools/build.sh (pinned there).
// The Node.js language host is not served by the module proxy here, so
// programs run as Automation API inline programs: the SDK serves the program
// from this process and the `pulumi` binary does everything else (engine,
// state, secrets, diff display, the dynamic-provider plugin). Commands that
// need no program (refresh, destroy, stack export, stack output, cancel) can
// also be run as plain `pulumi …` in the project folder, with `cli()`.
//
// Everything stays on this machine: a file backend and PULUMI_HOME inside the
// project folder, a passphrase secrets provider whose passphrase is a file
// there, no update check and no plugin downloads.
import { execFileSync, spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
// eslint-disable-next-line @typescript-eslint/no-var-requires
const yaml: { dump(v: unknown, o?: object): string; load(text: string): unknown } = require("js-yaml");
import { LocalWorkspace, PulumiCommand, PulumiFn, Stack } from "@pulumi/pulumi/automation";

export const ROOT = path.resolve(__dirname, "..");

let bin: string | undefined;

/**
 * The folder holding `pulumi` and `pulumi-resource-pulumi-nodejs`, built on
 * first use (progress on stderr). PULUMI_SRIOV_TOOLS_BIN names a ready one.
 */
export function toolsBin(): string {
  if (bin) return bin;
  if (process.env.PULUMI_SRIOV_TOOLS_BIN) return (bin = process.env.PULUMI_SRIOV_TOOLS_BIN);
  const out = execFileSync("bash", [path.join(ROOT, "lab", "tools", "build.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  bin = out.trim().split("\n").pop()!;
  return bin;
}

/** `pulumi version` of the built CLI. */
export function cliVersion(): string {
  return execFileSync(path.join(toolsBin(), "pulumi"), ["version"], { encoding: "utf8" }).trim();
}

export interface ProjectOptions {
  /** Project folder: Pulumi.yaml, Pulumi.<stack>.yaml, state/, home/, passphrase. */
  dir: string;
  project: string;
  stack: string;
  program: PulumiFn;
  /** Where the dynamic-provider process resolves packages (default: this repository's). */
  nodeModules?: string;
  /** Each chunk the CLI prints (default: nowhere). */
  onOutput?: (text: string) => void;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A project folder with one stack, run through the real CLI. */
export class CliProject {
  readonly dir: string;
  readonly env: Record<string, string>;
  private constructor(
    readonly opts: ProjectOptions,
    readonly stack: Stack,
    env: Record<string, string>,
  ) {
    this.dir = opts.dir;
    this.env = env;
  }

  static async open(opts: ProjectOptions): Promise<CliProject> {
    const dir = path.resolve(opts.dir);
    fs.mkdirSync(dir, { recursive: true });
    const modules = path.join(dir, "node_modules");
    if (!fs.existsSync(modules)) fs.symlinkSync(opts.nodeModules ?? path.join(ROOT, "node_modules"), modules, "dir");
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), `name: ${opts.project}\nruntime: nodejs\ndescription: pulumi-sriov (${opts.project})\n`);

    const env = offlineEnv(dir);
    const tools = toolsBin();
    const pulumiCommand = await PulumiCommand.get({ root: path.dirname(tools), skipVersionCheck: true });
    const ws = await LocalWorkspace.create({ workDir: dir, pulumiHome: env.PULUMI_HOME, envVars: env, pulumiCommand, program: opts.program, secretsProvider: "passphrase" });
    const stack = await Stack.createOrSelect(opts.stack, ws);
    return new CliProject(opts, stack, env);
  }

  get stackFile(): string {
    return path.join(this.dir, `Pulumi.${this.opts.stack}.yaml`);
  }

  /**
   * Sets the stack's plain configuration (keys with their namespace, values of
   * any shape) in Pulumi.<stack>.yaml, keeping the file's encryption salt and
   * its encrypted values.
   */
  writeConfig(config: Record<string, unknown>): void {
    const old = fs.existsSync(this.stackFile) ? ((yaml.load(fs.readFileSync(this.stackFile, "utf8")) ?? {}) as Record<string, any>) : {};
    const secure = Object.fromEntries(Object.entries((old.config ?? {}) as Record<string, any>).filter(([, v]) => v && typeof v === "object" && "secure" in v));
    fs.writeFileSync(this.stackFile, yaml.dump({ ...old, config: { ...config, ...secure } }, { lineWidth: -1 }));
  }

  /** `pulumi config set --secret key` (value on standard input, never on a command line). */
  async setSecret(key: string, value: string): Promise<void> {
    const r = await runCli(["config", "set", "--secret", "--stack", this.opts.stack, key], this.dir, this.env, undefined, value);
    if (r.code !== 0) throw new Error(`pulumi config set --secret ${key} exited ${r.code}: ${r.stderr.trim()}`);
  }

  /** The stack's passphrase (to check that it appears nowhere it should not). */
  passphrase(): string {
    return fs.readFileSync(this.env.PULUMI_CONFIG_PASSPHRASE_FILE, "utf8").trim();
  }

  /** Runs `pulumi <args>` in the project folder with the project's environment. */
  cli(args: string[], opts: { onOutput?: (text: string) => void } = {}): Promise<CliResult> {
    return runCli(args, this.dir, this.env, opts.onOutput ?? this.opts.onOutput);
  }

  /** Like `cli`, and fails with the CLI's output when it exits non-zero. */
  async cliOk(args: string[]): Promise<string> {
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} exited ${r.code}:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** Automation API options every operation shares. */
  get out(): { onOutput?: (text: string) => void; color: "never" } {
    return { onOutput: this.opts.onOutput, color: "never" };
  }

  /** Deletes the stack's state, PULUMI_HOME and stack file (keeps the passphrase). */
  static reset(dir: string): void {
    for (const name of ["state", "home"]) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) if (/^Pulumi\..+\.yaml$/.test(f)) fs.rmSync(path.join(dir, f));
  }
}

/**
 * The environment that keeps the CLI on this machine for a project folder:
 * state and PULUMI_HOME inside it, the passphrase in a file there (made on
 * first use), no update check, no plugin downloads, the built CLI on PATH.
 */
export function offlineEnv(dir: string): Record<string, string> {
  for (const sub of ["state", "home"]) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const passphraseFile = path.join(dir, "passphrase");
  if (!fs.existsSync(passphraseFile)) fs.writeFileSync(passphraseFile, crypto.randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
  return {
    PATH: `${toolsBin()}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    PULUMI_HOME: path.join(dir, "home"),
    PULUMI_BACKEND_URL: `file://${path.join(dir, "state")}`,
    PULUMI_CONFIG_PASSPHRASE_FILE: passphraseFile,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
  };
}

/** Runs `pulumi <args>` in `cwd` with `env` added; `input` goes to its standard input. */
export function runCli(args: string[], cwd: string, env: Record<string, string>, onOutput?: (text: string) => void, input?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(toolsBin(), "pulumi"), [...args, "--color", "never"], {
      cwd,
      env: { ...process.env, ...env },
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d;
      onOutput?.(d.toString());
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d;
      onOutput?.(d.toString());
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
