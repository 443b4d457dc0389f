// Reading a Pulumi stack file (Pulumi.<stack>.yaml), and pointing the lab
// stack at a running lab VM.
import * as fs from "fs";
// eslint-disable-next-line @typescript-eslint/no-var-requires
const yaml: { load(text: string): unknown } = require("js-yaml");

export interface StackFile {
  /** Values of the project's configuration keys, by key without the project prefix. */
  config: Record<string, unknown>;
  /** Keys stored encrypted (`secure:`), which only the Pulumi CLI can decrypt. */
  encrypted: string[];
  /** Keys of other namespaces (ignored here). */
  ignored: string[];
}

/** The project name from a Pulumi.yaml. */
export function projectName(pulumiYamlPath: string): string {
  const doc = yaml.load(fs.readFileSync(pulumiYamlPath, "utf8")) as any;
  if (!doc || typeof doc.name !== "string") throw new Error(`${pulumiYamlPath}: no project name`);
  return doc.name;
}

/** Parses a stack file's `config:` for `project`. */
export function parseStackFile(text: string, project: string): StackFile {
  const doc = (yaml.load(text) ?? {}) as any;
  const out: StackFile = { config: {}, encrypted: [], ignored: [] };
  for (const [key, value] of Object.entries((doc.config ?? {}) as Record<string, unknown>)) {
    const [ns, name] = key.includes(":") ? [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)] : [project, key];
    if (ns !== project) {
      out.ignored.push(key);
      continue;
    }
    if (value && typeof value === "object" && !Array.isArray(value) && "secure" in (value as object)) {
      out.encrypted.push(name);
      continue;
    }
    out.config[name] = value;
  }
  return out;
}

/** Where the lab's SSH server answers, and its pinned host key. */
export interface LabConnectionDetails {
  host: string;
  port: number;
  user: string;
  hostKey: string;
}

/**
 * The lab stack file's configuration (keys with their namespace, as in
 * Pulumi.lab.yaml) pointed at a running lab: the one host's connection gets
 * the lab's address, port, user and pinned host key. Encrypted values and
 * other namespaces are left out (the caller sets the lab's key as a secret).
 */
export function labStackConfig(text: string, project: string, lab: LabConnectionDetails): Record<string, unknown> {
  const { config } = parseStackFile(text, project);
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(config).map(([k, v]) => [`${project}:${k}`, JSON.parse(JSON.stringify(v))]));
  const hosts = out[`${project}:hosts`] as any[];
  if (!Array.isArray(hosts) || hosts.length !== 1) throw new Error("the lab stack must list exactly one host under `hosts`");
  hosts[0].connection = { ...(hosts[0].connection ?? {}), host: lab.host, port: lab.port, user: lab.user, hostKey: lab.hostKey };
  return out;
}
