// The fleet program: hypervisors from stack configuration, one SriovHost
// each, rolled out in waves. Every resource of wave n+1 depends on all hosts
// of wave n, so the engine starts a wave only after the previous one has
// succeeded, and a failure stops the rollout there.
import * as pulumi from "@pulumi/pulumi";
import { SriovHost, SriovHostSummary } from "../../sdk";
import {
  checkFleetSecrets,
  computeWaves,
  connectionFor,
  FleetConfig,
  FleetSecrets,
  parseFleetConfig,
  resolveHost,
  sriovHostArgs,
} from "./config";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const runtimeConfig: { isConfigSecret(k: string): boolean; getConfig(k: string): string | undefined } = require("@pulumi/pulumi/runtime/config");

export interface FleetDeployment {
  /** Host names per wave. */
  waves: string[][];
  /** The SriovHost component of each host, by name. */
  hosts: Record<string, SriovHost>;
}

/** Declares the fleet: one SriovHost per host, wave n+1 depending on every host of wave n. */
export function deployFleet(fleet: FleetConfig, secrets: pulumi.Input<FleetSecrets>, opts: { parent?: pulumi.Resource } = {}): FleetDeployment {
  const resolved = fleet.hosts.map((h) => resolveHost(h, fleet.defaults));
  const waves = computeWaves(resolved, fleet.waveSize);
  const secretsOut = pulumi.secret(secrets) as pulumi.Output<FleetSecrets>;
  const hosts: Record<string, SriovHost> = {};
  let previous: SriovHost[] = [];
  for (const wave of waves) {
    const current = wave.map((h) => {
      const connection = secretsOut.apply((s) => connectionFor(h, s));
      const host = new SriovHost(h.name, sriovHostArgs(h, connection), { parent: opts.parent, dependsOn: previous });
      hosts[h.name] = host;
      return host;
    });
    previous = current;
  }
  return { waves: waves.map((w) => w.map((h) => h.name)), hosts };
}

/** Stack outputs: the waves and a plain summary per host (no connection details). */
export function fleetOutputs(d: FleetDeployment): { waves: string[][]; hosts: pulumi.Output<Record<string, SriovHostSummary>> } {
  const names = Object.keys(d.hosts);
  return {
    waves: d.waves,
    hosts: pulumi.all(names.map((n) => d.hosts[n].summary)).apply((s) => Object.fromEntries(names.map((n, i) => [n, s[i]]))),
  };
}

/** Keys of stack configuration whose values are secrets. */
export const SECRET_KEYS = ["sshPrivateKey", "sshPassword", "sshPrivateKeyPassword", "hostSecrets"] as const;

/**
 * Reads the fleet from the stack's configuration. Secret keys must have been
 * set with `pulumi config set --secret`; a plain value is refused.
 */
export function readStackConfig(config: pulumi.Config = new pulumi.Config()): { fleet: FleetConfig; secrets: pulumi.Output<FleetSecrets> } {
  const problems: string[] = [];
  for (const k of SECRET_KEYS)
    if (runtimeConfig.getConfig(`${config.name}:${k}`) !== undefined && !runtimeConfig.isConfigSecret(`${config.name}:${k}`))
      problems.push(`${k}: is stored in plain text; set it with: pulumi config set --secret ${k === "hostSecrets" ? "--path 'hostSecrets.<host>.privateKey'" : k} …`);
  if (problems.length) throw new Error(`invalid fleet configuration:\n  ${problems.join("\n  ")}`);
  const fleet = parseFleetConfig({
    waveSize: config.getObject<number>("waveSize"),
    defaults: config.getObject("defaults"),
    hosts: config.getObject("hosts"),
  });
  const names = fleet.hosts.map((h) => h.name);
  const secrets = pulumi
    .all([config.getSecret("sshPrivateKey"), config.getSecret("sshPassword"), config.getSecret("sshPrivateKeyPassword"), config.getSecretObject("hostSecrets")])
    .apply(([sshPrivateKey, sshPassword, sshPrivateKeyPassword, hostSecrets]) =>
      checkFleetSecrets(dropUndefined({ sshPrivateKey, sshPassword, sshPrivateKeyPassword, hostSecrets }), names),
    );
  return { fleet, secrets: pulumi.secret(secrets) };
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The whole program: configuration → fleet → stack outputs. */
export function runFleet(config?: pulumi.Config) {
  const { fleet, secrets } = readStackConfig(config);
  return fleetOutputs(deployFleet(fleet, secrets));
}
