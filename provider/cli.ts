#!/usr/bin/env node
// The package's command line: `pulumi-sriov discover --host …` reads one
// hypervisor and prints what it has, as a report, as the fleet program's
// stack configuration, or as a Pulumi program that adopts it.
import * as fs from "fs";
import { parseArgs } from "util";
import { connectionSchema } from "./connection";
import { closeAllConnections } from "./host";
import { discover } from "./discover";
import { renderProgram, renderReport, renderStackConfig, Target } from "./discover/render";

const USAGE = `usage: pulumi-sriov discover --host HOST [options]

Reads one host over SSH (no writes) and prints its SR-IOV set-up.

  --host HOST           host name or address (required)
  --port PORT           SSH port (22)
  --user USER           SSH user (root; others use sudo -n)
  --key FILE            private key file (else the SSH agent at $SSH_AUTH_SOCK)
  --host-key KEY        the host's public key ("ssh-ed25519 AAAA…"); else known_hosts
  --insecure-skip-host-key-check   accept any host key
  --name NAME           the host's name in the output (the host's own name)
  --format FORMAT       report (default) | yaml (fleet stack configuration) | program (TypeScript)
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === undefined) {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== "discover") throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const { values } = parseArgs({
    args: rest,
    options: {
      host: { type: "string" },
      port: { type: "string" },
      user: { type: "string" },
      key: { type: "string" },
      "host-key": { type: "string" },
      "insecure-skip-host-key-check": { type: "boolean" },
      name: { type: "string" },
      format: { type: "string", default: "report" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.host) throw new UsageError("--host is required");
  const format = values.format!;
  if (!["report", "yaml", "program"].includes(format)) throw new UsageError(`--format must be report, yaml or program, not ${JSON.stringify(format)}`);
  const port = values.port === undefined ? 22 : Number(values.port);
  const parsed = connectionSchema().safeParse({
    host: values.host,
    port,
    user: values.user,
    privateKey: values.key !== undefined ? fs.readFileSync(values.key, "utf8") : undefined,
    agentSocketPath: values.key === undefined ? process.env.SSH_AUTH_SOCK : undefined,
    hostKey: values["host-key"],
    insecureSkipHostKeyCheck: values["insecure-skip-host-key-check"],
  });
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => `--${String(i.path[0] ?? "")}: ${i.message}`).join("\n"));
  const c = parsed.data;
  const d = await discover(c);
  const name = values.name ?? (d.inventory.hostname || c.host);
  const target: Target = { name, host: c.host, port: c.port, user: c.user, hostKey: c.hostKey };
  const text = format === "yaml" ? renderStackConfig(target, d) : format === "program" ? renderProgram(target, d) : renderReport(target, d);
  process.stdout.write(text);
  return 0;
}

main(process.argv.slice(2))
  .then(
    (code) => (process.exitCode = code),
    (e: Error) => {
      process.stderr.write(`pulumi-sriov: ${e.message.replace(/connection\.hostKey = /g, "--host-key ")}\n`);
      if (e instanceof UsageError) process.stderr.write(USAGE);
      process.exitCode = e instanceof UsageError ? 2 : 1;
    },
  )
  .finally(() => closeAllConnections());
