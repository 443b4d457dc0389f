import { expect } from "chai";
import { createHmac, randomBytes } from "crypto";
import { checkKnownHosts, fingerprint, keyType, verifyHostKey } from "../../provider/host/hostkeys";

function blob(type: string, body: Buffer): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, body]);
}

describe("host key verification", () => {
  const key = blob("ssh-ed25519", randomBytes(36));
  const other = blob("ssh-ed25519", randomBytes(36));
  const line = `ssh-ed25519 ${key.toString("base64")}`;

  it("reads the key type and an OpenSSH-style fingerprint", () => {
    expect(keyType(key)).to.equal("ssh-ed25519");
    expect(fingerprint(key)).to.match(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it("accepts the pinned key and refuses another, showing both fingerprints", () => {
    expect(verifyHostKey({ host: "h", port: 22, hostKey: line }, key)).to.equal(undefined);
    const err = verifyHostKey({ host: "h", port: 22, hostKey: line }, other)!;
    expect(err).to.include(fingerprint(other)).and.include(fingerprint(key)).and.include("mismatch");
  });

  it("matches plain, bracketed-port and hashed known_hosts entries", () => {
    const files = (content: string) => () => [{ path: "kh", content }];
    expect(verifyHostKey({ host: "h1", port: 22 }, key, files(`h0,h1 ${line}\n`))).to.equal(undefined);
    expect(verifyHostKey({ host: "127.0.0.1", port: 2222 }, key, files(`[127.0.0.1]:2222 ${line}\n`))).to.equal(undefined);
    const salt = randomBytes(20);
    const hash = createHmac("sha1", salt).update("[10.1.1.1]:2200").digest("base64");
    expect(verifyHostKey({ host: "10.1.1.1", port: 2200 }, key, files(`|1|${salt.toString("base64")}|${hash} ${line}\n`))).to.equal(undefined);
  });

  it("tells an unknown key from a changed one, with the fingerprint and how to pin it", () => {
    const unknown = verifyHostKey({ host: "h2", port: 22 }, key, () => [{ path: "kh", content: `h1 ${line}\n` }])!;
    expect(unknown).to.match(/unknown host key/).and.include(fingerprint(key)).and.include("connection.hostKey");
    const changed = verifyHostKey({ host: "h1", port: 22 }, other, () => [{ path: "kh", content: `h1 ${line}\n` }])!;
    expect(changed).to.match(/CHANGED/).and.include(fingerprint(other));
  });

  it("treats @revoked entries as a refusal", () => {
    expect(checkKnownHosts([{ path: "kh", content: `@revoked h1 ${line}\n` }], "h1", 22, key).result).to.equal("mismatch");
  });

  it("skips verification only when asked explicitly", () => {
    expect(verifyHostKey({ host: "h", port: 22, insecureSkipHostKeyCheck: true }, other, () => [])).to.equal(undefined);
    expect(verifyHostKey({ host: "h", port: 22 }, other, () => [])).to.be.a("string");
  });
});
