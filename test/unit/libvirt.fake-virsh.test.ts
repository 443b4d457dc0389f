// The host-facing half of the libvirt resources against a stand-in `virsh`
// on a local shell: it answers with output captured from the lab host
// (fixtures) and logs every call, so reading state, naming a network's users
// and "create on a configured host writes nothing" are checked in a second,
// without a lab VM. The real thing is in vfPoolNetwork.lab.test.ts.
import { expect } from "chai";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RemoteHost } from "../../provider/host";
import type { ExecResult, OpenChannel, Transport } from "../../provider/host/transport";
import { framed } from "../../provider/host/transport";
import { collect } from "../support/localShell";
import type { Ctx } from "../../provider/resource";
import { networkUsers } from "../../provider/libvirt/users";
import { buildXml, parseXml } from "../../provider/libvirt/xml";
import { readFacts as readPoolFacts } from "../../provider/resources/vfPoolNetwork/facts";
import { planPool } from "../../provider/resources/vfPoolNetwork/plan";
import { inputsSchema as poolSchema } from "../../provider/resources/vfPoolNetwork/schema";
import { spec as poolSpec } from "../../provider/resources/vfPoolNetwork";
import { readFacts as readDomainFacts } from "../../provider/resources/domainVfInterface/facts";
import { inputsSchema as ifaceSchema } from "../../provider/resources/domainVfInterface/schema";
import { spec as ifaceSpec } from "../../provider/resources/domainVfInterface";

const FIXTURES = path.join(__dirname, "..", "fixtures", "libvirt");
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name), "utf8");

/**
 * `virsh` that answers from files named after its arguments and logs each
 * call. Like virsh, it also takes several commands in one argument
 * ("a b; echo M; echo --err M; c d"), quoted as a shell would.
 */
const FAKE_VIRSH = `#!/bin/sh
echo run >> "$FAKE_VIRSH_DIR/runs"
[ "$1" = -q ] && shift
[ "$1" = -c ] && shift 2
one() {
  case "$1" in echo) if [ "$2" = --err ]; then echo "error: $3" >&2; else printf '%s' "$2"; fi; return 0 ;; esac
  printf -- '-q -c fake %s\\n' "$*" >> "$FAKE_VIRSH_DIR/calls"
  key=$(printf '%s ' "$@" | tr -c 'A-Za-z0-9.-' '_')
  if [ -f "$FAKE_VIRSH_DIR/$key.out" ]; then cat "$FAKE_VIRSH_DIR/$key.out"; return 0; fi
  if [ -f "$FAKE_VIRSH_DIR/$key.err" ]; then cat "$FAKE_VIRSH_DIR/$key.err" >&2; return 1; fi
  echo "error: fake virsh has no answer for: $*" >&2
  return 3
}
if [ $# -eq 1 ]; then
  rest="$1; "; rc=0
  while [ -n "$rest" ]; do
    cmd=\${rest%%"; "*}; rest=\${rest#*"; "}
    eval "set -- $cmd"
    one "$@"; rc=$?
  done
  exit $rc
fi
one "$@"
`;

class FakeHost {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-virsh-"));
  readonly host: RemoteHost;

  constructor() {
    fs.mkdirSync(path.join(this.dir, "bin"));
    fs.writeFileSync(path.join(this.dir, "bin", "virsh"), FAKE_VIRSH, { mode: 0o755 });
    fs.writeFileSync(path.join(this.dir, "calls"), "");
    const env = { ...process.env, PATH: `${path.join(this.dir, "bin")}:${process.env.PATH}`, FAKE_VIRSH_DIR: this.dir };
    const run = (command: string) => spawn("sh", ["-c", command], { env });
    const transport: Transport = {
      name: "root@fake:22",
      needsSudo: false,
      exec: (command, stdin) => collect(run(command), stdin),
      open: async (command): Promise<OpenChannel> => {
        // The host lock: a command that stays open until closed.
        const c = run(command.replace("/run/lock/pulumi-sriov.lock", path.join(this.dir, "lock")).replace("mkdir -p /run/lock", "true"));
        const closed = new Promise<ExecResult>((resolve) => c.on("close", (code) => resolve({ code, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) })));
        let out = Buffer.alloc(0);
        let err = Buffer.alloc(0);
        const arrived: (() => void)[] = [];
        c.stdout.on("data", (b: Buffer) => ((out = Buffer.concat([out, b])), arrived.forEach((f) => f())));
        c.stderr.on("data", (b: Buffer) => ((err = Buffer.concat([err, b])), arrived.forEach((f) => f())));
        const when = <T>(pick: () => T | undefined) =>
          new Promise<T>((resolve) => {
            const look = () => {
              const v = pick();
              if (v !== undefined) resolve(v);
            };
            arrived.push(look);
            look();
          });
        const firstLine = when(() => (out.includes("\n") ? out.toString().split("\n")[0] : undefined));
        return {
          firstLine,
          upTo: (mark: string) => when(() => framed(out, err, mark)),
          closed,
          close: async () => {
            c.stdin.end();
            await closed;
          },
        };
      },
    };
    this.host = new RemoteHost(transport);
  }

  /** What `virsh <args…>` answers (stdout), or fails with (stderr). */
  answer(args: string[], out: string, failed = false): void {
    const key = args.map((a) => a.replace(/[^A-Za-z0-9.-]/g, "_")).join("_") + "_";
    fs.writeFileSync(path.join(this.dir, `${key}.${failed ? "err" : "out"}`), out);
  }

  /** How many virsh processes ran. */
  runs(): number {
    const f = path.join(this.dir, "runs");
    return fs.existsSync(f) ? fs.readFileSync(f, "utf8").split("\n").filter(Boolean).length : 0;
  }

  /** virsh calls made, without the connection options. */
  calls(): string[] {
    return fs
      .readFileSync(path.join(this.dir, "calls"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l.replace(/^-q -c \S+ /, ""));
  }

  ctx(): Ctx {
    return { host: this.host, connection: { host: "fake", port: 22, user: "root", dialErrorLimit: 1, perDialTimeout: 1 } };
  }

  dispose(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The lab host's state captured while the guest `tiny` held a VF from pool `p0`. */
function labState(f: FakeHost): void {
  f.answer(["net-info", "p0"], "Name:           p0\nUUID:           8c4ee35d-6f97-4f22-a4ac-f9440b1b49e4\nActive:         yes\nPersistent:     yes\nAutostart:      yes\n");
  f.answer(["net-dumpxml", "p0"], fixture("lab-network-pf-live.xml"));
  f.answer(["net-dumpxml", "--inactive", "p0"], fixture("lab-network-pf-config.xml"));
  f.answer(["net-port-list", "p0", "--uuid"], "229211ac-4dac-4fb1-828c-0a2c4979c101\n\n");
  f.answer(["net-port-dumpxml", "p0", "229211ac-4dac-4fb1-828c-0a2c4979c101"], fixture("lab-networkport.xml"));
  f.answer(
    ["dominfo", "tiny"],
    "Id:             1\nName:           tiny\nUUID:           558cce9d-2604-4924-871a-a4beb494e67a\nOS Type:        hvm\nState:          running\nCPU(s):         1\nPersistent:     yes\nAutostart:      disable\nMessages:       tainted: custom configuration parameters specified\n",
  );
  f.answer(["dumpxml", "tiny"], fixture("lab-domain-live.xml"));
  f.answer(["dumpxml", "--inactive", "tiny"], fixture("lab-domain-config.xml"));
}

const notFound = (kind: "network" | "domain", name: string) =>
  `error: failed to get ${kind} '${name}'\nerror: ${kind === "network" ? "Network" : "Domain"} not found: no ${kind} with matching name '${name}'\n`;

describe("libvirt resources against a stand-in virsh", () => {
  let f: FakeHost;
  beforeEach(() => {
    f = new FakeHost();
    labState(f);
  });
  afterEach(() => f.dispose());

  it("reads a pool network in one round trip, with the PF's VF count", async () => {
    const w = poolSchema().parse({ name: "p0", pf: "enp2s0" });
    const facts = await readPoolFacts(f.host, w);
    expect(facts).to.deep.include({ exists: true, active: true, persistent: true, autostart: true, uuid: "8c4ee35d-6f97-4f22-a4ac-f9440b1b49e4" });
    expect(facts.live?.forward?.addresses).to.have.length(4);
    expect(facts.config?.forward?.addresses).to.deep.equal([]);
    // This machine has no such PF: the pre-check says so instead of failing later in libvirt.
    expect(facts.pfNumVfs).to.equal(null);
    expect(f.calls()).to.deep.equal(["net-info p0", "net-dumpxml p0", "net-dumpxml --inactive p0"]);
    expect(f.runs(), "virsh processes").to.equal(1);
    expect(planPool(facts, w, "update")).to.deep.equal({ ops: [], problems: [], warnings: [] });
  });

  it("names the guests on a network from its ports", async () => {
    expect(await networkUsers(f.host, "qemu:///system", "p0")).to.deep.equal([{ domain: "tiny", macs: ["52:54:00:5b:00:01 on VF 0000:02:10.0"] }]);
  });

  it("delete of a network in use is refused naming the guest, and runs nothing", async () => {
    const w = poolSchema().parse({ name: "p0", pf: "enp2s0" });
    const err = await poolSpec.delete(f.ctx(), w, {} as never).then(
      () => undefined,
      (e) => e,
    );
    expect(err?.message).to.equal(
      "root@fake:22: network p0 is in use (1 guest interface(s) connected: tiny (52:54:00:5b:00:01 on VF 0000:02:10.0)); detach those interfaces or stop the guests first, or set force: true to delete it anyway",
    );
    expect(f.calls().filter((c) => /net-(destroy|undefine)/.test(c))).to.deep.equal([]);
  });

  it("delete of a network that is already gone succeeds and runs nothing", async () => {
    f.answer(["net-info", "gone"], notFound("network", "gone"), true);
    await poolSpec.delete(f.ctx(), poolSchema().parse({ name: "gone", pf: "enp2s0" }), {} as never);
    expect(f.calls()).to.deep.equal(["net-info gone", "net-dumpxml gone", "net-dumpxml --inactive gone"]);
  });

  it("refresh of a pool network: outputs and no drift", async () => {
    const w = poolSchema().parse({ name: "p0", pf: "enp2s0" });
    const r = await poolSpec.read(f.ctx(), w, {} as never);
    expect(r?.observed).to.deep.equal(w);
    expect(r?.outs).to.deep.include({ name: "p0", active: true, autostart: true, connections: 1 });
  });

  it("reads a guest's interfaces and the pool's VFs in one round trip", async () => {
    const d = await readDomainFacts(f.host, "qemu:///system", "tiny", "p0");
    expect(d).to.deep.include({ exists: true, running: true, persistent: true });
    expect(d.poolVfs).to.deep.equal(["0000:02:10.0", "0000:02:10.2", "0000:02:10.4", "0000:02:10.6"]);
    expect(f.calls()).to.deep.equal(["dominfo tiny", "dumpxml tiny", "dumpxml --inactive tiny", "net-dumpxml p0"]);
    expect(f.runs(), "virsh processes").to.equal(1);
    f.answer(["dominfo", "nope"], notFound("domain", "nope"), true);
    expect(await readDomainFacts(f.host, "qemu:///system", "nope")).to.deep.equal({ exists: false, running: false, persistent: false });
  });

  it("create on a guest that already has the interface writes nothing and reports it", async () => {
    const w = ifaceSchema().parse({ domain: "tiny", source: { network: "p0" }, mac: "52:54:00:5b:00:01", vlan: 42 });
    const outs = await ifaceSpec.create(f.ctx(), w);
    expect(outs).to.deep.equal({ mac: "52:54:00:5b:00:01", pciAddress: "0000:02:10.0", alias: "hostdev1" });
    expect(f.calls().filter((c) => /attach|detach/.test(c))).to.deep.equal([]);
    expect(await ifaceSpec.plan!(f.ctx(), w, w)).to.deep.equal([]);
    const direct = ifaceSchema().parse({ domain: "tiny", source: { pciAddress: "0000:02:10.2" }, mac: "52:54:00:5b:00:02", vlan: 100 });
    expect(await ifaceSpec.create(f.ctx(), direct)).to.deep.equal({ mac: "52:54:00:5b:00:02", pciAddress: "0000:02:10.2", alias: "hostdev0" });
    expect(f.calls().filter((c) => /attach|detach/.test(c))).to.deep.equal([]);
  });

  it("a change is previewed as the steps an up would run", async () => {
    const w = ifaceSchema().parse({ domain: "tiny", source: { network: "p0" }, mac: "52:54:00:5b:00:09" });
    expect(await ifaceSpec.plan!(f.ctx(), w)).to.deep.equal(["attach interface 52:54:00:5b:00:09 (network p0) to domain tiny (running guest and its configuration)"]);
    const off = ifaceSchema().parse({ domain: "tiny", source: { network: "p0" }, mac: "52:54:00:5b:00:01", vlan: 42, live: false });
    expect(await ifaceSpec.plan!(f.ctx(), off, off)).to.deep.equal(["detach interface 52:54:00:5b:00:01 (VF 0000:02:10.0) from domain tiny (running guest)"]);
  });

  it("delete detaches from the guest then its configuration, and waits until the guest has let go", async () => {
    const w = ifaceSchema().parse({ domain: "tiny", source: { network: "p0" }, mac: "52:54:00:5b:00:01", vlan: 42 });
    // The stand-in answers any detach; after it, the running XML no longer has the interface.
    const live = parseXml(fixture("lab-domain-live.xml"));
    const devices = live.children.find((c) => c.name === "devices")!;
    devices.children = devices.children.filter((c) => !(c.name === "interface" && c.children.some((m) => m.name === "mac" && m.attrs.address === w.mac)));
    fs.writeFileSync(path.join(f.dir, "after-detach.xml"), buildXml(live));
    const script = fs.readFileSync(path.join(f.dir, "bin", "virsh"), "utf8");
    fs.writeFileSync(
      path.join(f.dir, "bin", "virsh"),
      script.replace(
        "key=$(",
        'case "$1" in detach-device) cp "$FAKE_VIRSH_DIR/after-detach.xml" "$FAKE_VIRSH_DIR/dumpxml_tiny_.out"; echo "Device detached successfully"; exit 0;; esac\nkey=$(',
      ),
    );
    await ifaceSpec.delete(f.ctx(), w, { mac: w.mac!, pciAddress: "0000:02:10.0", alias: "hostdev1" });
    const writes = f.calls().filter((c) => /detach-device/.test(c));
    expect(writes).to.have.length(2);
    expect(writes[0]).to.match(/^detach-device tiny \/tmp\/\S+ --live$/);
    expect(writes[1]).to.match(/^detach-device tiny \/tmp\/\S+ --config$/);
    // Polled once after the detach: the guest had let go.
    expect(f.calls().filter((c) => c === "dumpxml tiny")).to.have.length(2);
  });

  it("a domain that is gone: delete succeeds, read reports it gone", async () => {
    f.answer(["dominfo", "nope"], notFound("domain", "nope"), true);
    const w = ifaceSchema().parse({ domain: "nope", source: { network: "p0" }, mac: "52:54:00:5b:00:01" });
    await ifaceSpec.delete(f.ctx(), w, { mac: w.mac!, pciAddress: "", alias: "" });
    expect(await ifaceSpec.read(f.ctx(), w, { mac: w.mac!, pciAddress: "", alias: "" })).to.equal(undefined);
  });

  it("a missing virsh is named as such", async () => {
    fs.rmSync(path.join(f.dir, "bin", "virsh"));
    const err = await readDomainFacts(f.host, "qemu:///system", "tiny").then(
      () => undefined,
      (e) => e,
    );
    expect(err?.message).to.match(/virsh is not installed on this host/);
  });
});
