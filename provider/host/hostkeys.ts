// Host-key verification: against a pinned key or OpenSSH known_hosts files.
import { createHash, createHmac } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export function fingerprint(keyBlob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "");
}

/** The key type named inside an SSH public key blob. */
export function keyType(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return "unknown";
  const n = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + n).toString("latin1");
}

/** "ssh-ed25519 AAAA… comment" → blob. */
export function parsePublicKeyLine(line: string): { type: string; blob: Buffer } | undefined {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) return undefined;
  const blob = Buffer.from(parts[1], "base64");
  return blob.length ? { type: parts[0], blob } : undefined;
}

export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function hostPatternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [, , salt, hash] = pattern.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  }
  const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$", "i");
  return re.test(name);
}

export interface KnownHostsVerdict {
  result: "match" | "mismatch" | "unknown";
  file?: string;
}

/** Looks the presented key up in known_hosts content (may list several files). */
export function checkKnownHosts(files: { path: string; content: string }[], host: string, port: number, blob: Buffer): KnownHostsVerdict {
  const name = knownHostsName(host, port);
  const type = keyType(blob);
  let mismatch: string | undefined;
  for (const f of files) {
    for (const raw of f.content.split("\n")) {
      const line = raw.trim();
      if (!line || line.startsWith("#")) continue;
      let fields = line.split(/\s+/);
      let revoked = false;
      if (fields[0].startsWith("@")) {
        if (fields[0] === "@revoked") revoked = true;
        else continue; // @cert-authority is not supported
        fields = fields.slice(1);
      }
      if (fields.length < 3) continue;
      const patterns = fields[0].split(",");
      const negated = patterns.some((p) => p.startsWith("!") && hostPatternMatches(p.slice(1), name));
      if (negated || !patterns.some((p) => !p.startsWith("!") && hostPatternMatches(p, name))) continue;
      const known = Buffer.from(fields[2], "base64");
      if (known.equals(blob)) {
        if (revoked) return { result: "mismatch", file: f.path };
        return { result: "match", file: f.path };
      }
      if (fields[1] === type) mismatch = f.path;
    }
  }
  return mismatch ? { result: "mismatch", file: mismatch } : { result: "unknown" };
}

export function defaultKnownHostsFiles(): { path: string; content: string }[] {
  const files = [path.join(os.homedir(), ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"];
  const out: { path: string; content: string }[] = [];
  for (const p of files) {
    try {
      out.push({ path: p, content: fs.readFileSync(p, "utf8") });
    } catch {
      /* absent */
    }
  }
  return out;
}

/** Verifies a presented key; returns undefined when accepted, else the reason. */
export function verifyHostKey(
  opts: { host: string; port: number; hostKey?: string; insecureSkipHostKeyCheck?: boolean },
  blob: Buffer,
  knownHosts: () => { path: string; content: string }[] = defaultKnownHostsFiles,
): string | undefined {
  if (opts.insecureSkipHostKeyCheck) return undefined;
  const fp = fingerprint(blob);
  const type = keyType(blob);
  const presented = `${type} ${blob.toString("base64")}`;
  const pinHelp = `To trust it, pin it with connection.hostKey = "${presented}" or add it to known_hosts (ssh-keyscan -p ${opts.port} ${opts.host}, then compare the fingerprint out of band).`;
  if (opts.hostKey) {
    const pinned = parsePublicKeyLine(opts.hostKey);
    if (pinned && pinned.blob.equals(blob)) return undefined;
    const pinnedFp = pinned ? fingerprint(pinned.blob) : "unparseable";
    return `host key mismatch: the host presented ${type} ${fp} but connection.hostKey pins ${pinnedFp}. If the host was reinstalled, verify the new key and update connection.hostKey. ${pinHelp}`;
  }
  const verdict = checkKnownHosts(knownHosts(), opts.host, opts.port, blob);
  if (verdict.result === "match") return undefined;
  if (verdict.result === "mismatch")
    return `host key CHANGED: the host presented ${type} ${fp}, which differs from the key recorded in ${verdict.file}. This may be an attack or a reinstalled host; verify it, then update known_hosts or connection.hostKey.`;
  return `unknown host key: the host presented ${type} ${fp} and it is not in known_hosts and no connection.hostKey is set. ${pinHelp}`;
}
