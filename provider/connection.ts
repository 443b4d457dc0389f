// The `connection` input, with the field names and meaning of
// @pulumi/command's remote connection, plus host-key policy.
import { z } from "zod";

export interface ConnectionArgs {
  host: string;
  port?: number;
  user?: string;
  password?: string;
  privateKey?: string;
  privateKeyPassword?: string;
  agentSocketPath?: string;
  /** Pinned host public key ("ssh-ed25519 AAAA…"); otherwise OpenSSH known_hosts is used. */
  hostKey?: string;
  dialErrorLimit?: number;
  /** Seconds per dial attempt. */
  perDialTimeout?: number;
  proxy?: ProxyArgs;
  /** Accept any host key. Never the default. */
  insecureSkipHostKeyCheck?: boolean;
}
export type ProxyArgs = Omit<ConnectionArgs, "proxy">;

export interface Connection extends ConnectionArgs {
  port: number;
  user: string;
  dialErrorLimit: number;
  perDialTimeout: number;
  proxy?: Connection;
}

function endpointShape() {
  return {
    host: z
      .string()
      .min(1, "is required")
      .regex(/^[A-Za-z0-9_.:\[\]%-]+$/, "must be a host name or IP address"),
    port: z.number().int("must be a whole number").min(1, "must be 1–65535").max(65535, "must be 1–65535").default(22),
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_.-]{0,31}\$?$/i, "must be a user name")
      .default("root"),
    password: z.string().min(1, "must not be empty").optional(),
    privateKey: z
      .string()
      .refine((k) => /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k), "must be a PEM or OpenSSH private key (the key text, not a path)")
      .optional(),
    privateKeyPassword: z.string().optional(),
    agentSocketPath: z.string().min(1).optional(),
    hostKey: z
      .string()
      .regex(/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?$/, "must be a public key line like 'ssh-ed25519 AAAA…'")
      .optional(),
    dialErrorLimit: z.number().int("must be a whole number").min(1, "must be at least 1").max(1000).default(10),
    perDialTimeout: z.number().positive("must be positive").max(3600).default(15),
    insecureSkipHostKeyCheck: z.boolean().optional(),
  };
}

function hasAuth(c: { password?: string; privateKey?: string; agentSocketPath?: string }): boolean {
  return !!(c.password || c.privateKey || c.agentSocketPath || process.env.SSH_AUTH_SOCK);
}
const authMessage = "needs one of password, privateKey or agentSocketPath (or SSH_AUTH_SOCK in the environment)";

export function connectionSchema() {
  const proxy = z.object(endpointShape()).strict().refine(hasAuth, { message: authMessage });
  return z
    .object({ ...endpointShape(), proxy: proxy.optional() })
    .strict()
    .refine(hasAuth, { message: authMessage });
}

/** A stable identity for pooling: one SSH connection per (host, port, user, proxy). */
export function connectionKey(c: Connection): string {
  const self = `${c.user}@${c.host}:${c.port}`;
  return c.proxy ? `${self} via ${connectionKey(c.proxy)}` : self;
}

export function describeHost(c: Connection): string {
  return c.proxy ? `${c.user}@${c.host}:${c.port} (via ${c.proxy.host})` : `${c.user}@${c.host}:${c.port}`;
}
