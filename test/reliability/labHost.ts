// The lab guest as every reliability file on it sets it up: its two PFs, a
// password user with sudo (for flows over a password connection), libvirtd
// and a tiny defined domain; put back as the image had it afterwards, for the
// test files that share the guest after this one. Timings are printed at the
// end, per file.
import { expect } from "chai";
import { randomBytes } from "crypto";
import { closeAllConnections } from "../../provider/host";
import { buildXml, el } from "../../provider/libvirt/xml";
import { sharedLab } from "../../lab/shared";
import type { LabVm } from "../../lab/vm";
import { secret, ResourceSpec, Props } from "../support/engine";
import { addSecret, record } from "./figures";
import type { Kind } from "./lab";

export const DOMAIN = "reltiny";
const PW_USER = "relpw";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const providers = require("pulumi-sriov/dist/provider");

function tinyDomainXml(): string {
  const rootPort = (index: number) => el("controller", { type: "pci", index: String(index), model: "pcie-root-port" });
  return buildXml(
    el("domain", { type: "qemu" }, [
      el("name", {}, [], DOMAIN),
      el("memory", { unit: "MiB" }, [], "128"),
      el("vcpu", {}, [], "1"),
      el("os", {}, [el("type", { arch: "x86_64", machine: "q35" }, [], "hvm")]),
      el("devices", {}, [el("controller", { type: "pci", index: "0", model: "pcie-root" }), rootPort(1), rootPort(2), rootPort(3), el("memballoon", { model: "none" })]),
    ]),
  );
}

export interface ReliabilityLab {
  vm: LabVm;
  /** root by key. */
  rootConn: any;
  /** A password user with sudo (root by password where the image has no sudo). */
  pwConn: any;
  /** The two igb PFs: 0000:01:00.0 and 0000:02:00.0. */
  pf: { name: string; pci: string }[];
  timed<T>(what: string, f: () => Promise<T>): Promise<T>;
  /** Adds to a timing measured by hand. */
  addTime(what: string, ms: number): void;
  res(kind: Kind, name: string, conn: any, props: Props): ResourceSpec;
  numVfs(i: number): Promise<number>;
  grubFiles(): Promise<string>;
  linuxLine(): Promise<string>;
}

/**
 * Registers the set-up and tear-down hooks in the calling `describe` and
 * returns the context its tests use (filled in once `before` has run).
 */
export function useReliabilityLab(label: string): ReliabilityLab {
  // Take a place in the machine's queue of lab VMs as soon as the file loads.
  const labReady = sharedLab();
  labReady.catch(() => undefined);
  const timings: Record<string, number> = {};
  // As found: put back by the tear-down.
  let foundGrubText = "";
  let foundCmdline = "";
  const ctx = {
    pf: [
      { name: "", pci: "0000:01:00.0" },
      { name: "", pci: "0000:02:00.0" },
    ],
    addTime(what: string, ms: number) {
      timings[what] = (timings[what] ?? 0) + ms;
    },
    async timed<T>(what: string, f: () => Promise<T>): Promise<T> {
      const t = Date.now();
      try {
        return await f();
      } finally {
        ctx.addTime(what, Date.now() - t);
      }
    },
    res: (kind: Kind, name: string, conn: any, props: Props): ResourceSpec => ({ name, provider: providers[kind], props: { connection: secret(conn), ...props } }),
    numVfs: async (i: number) => Number((await ctx.vm.run(`cat /sys/bus/pci/devices/${ctx.pf[i].pci}/sriov_numvfs`)).trim()),
    grubFiles: () => ctx.vm.run('for f in /etc/default/grub /etc/default/grub.d/*; do [ -f "$f" ] && echo "$f $(sha256sum < "$f" | cut -c1-16)"; done; true'),
    linuxLine: async () => (await ctx.vm.run("grep -m1 -E '^\\s*linux\\s' /boot/grub/grub.cfg")).trim().replace(/^linux\s+\S+\s*/, ""),
  } as ReliabilityLab;

  before(async function () {
    ctx.vm = await ctx.timed("boot", () => labReady.then(() => sharedLab()));
    const vm = ctx.vm;
    ctx.rootConn = vm.connection;
    addSecret("lab private key", ctx.rootConn.privateKey);
    for (const p of ctx.pf) p.name = (await vm.run(`ls /sys/bus/pci/devices/${p.pci}/net`)).trim();
    // A password login for the engine flows (the image allows root by key only).
    const password = randomBytes(18).toString("base64url");
    addSecret("lab password", password);
    const hasSudo = (await vm.exec("command -v sudo")).code === 0;
    await vm.run(
      hasSudo
        ? `id ${PW_USER} >/dev/null 2>&1 || useradd -m -s /bin/sh ${PW_USER}; echo '${PW_USER}:${password}' | chpasswd; ` +
            `echo '${PW_USER} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/${PW_USER}; chmod 440 /etc/sudoers.d/${PW_USER}; ` +
            `printf 'PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/00-reliability.conf; systemctl reload ssh`
        : `echo 'root:${password}' | chpasswd; printf 'PasswordAuthentication yes\\nPermitRootLogin yes\\n' > /etc/ssh/sshd_config.d/00-reliability.conf; systemctl reload ssh`,
    );
    ctx.pwConn = { host: ctx.rootConn.host, port: ctx.rootConn.port, user: hasSudo ? PW_USER : "root", password, hostKey: ctx.rootConn.hostKey };
    record("lab password connection user", `${ctx.pwConn.user} (sudo: ${hasSudo})`);
    await vm.run("systemctl is-active libvirtd >/dev/null || systemctl start libvirtd");
    await vm.run(`virsh -c qemu:///system dominfo ${DOMAIN} >/dev/null 2>&1 || virsh -c qemu:///system define /dev/stdin`, { input: tinyDomainXml() });
    foundGrubText = await vm.run("cat /etc/default/grub");
    foundCmdline = (await vm.run("cat /proc/cmdline")).trim();
    expect(ctx.pf.map((p) => p.name).filter(Boolean)).to.have.length(2);
  });

  // A long run: show each failure as it happens, not only in mocha's summary at the end.
  afterEach(function () {
    const t = this.currentTest;
    if (t?.state === "failed") process.stderr.write(`\n[reliability lab] FAILED: ${t.fullTitle()}\n${t.err?.stack ?? t.err?.message}\n`);
  });

  after(async function () {
    const vm = ctx.vm;
    if (vm?.running) {
      this.timeout(15 * 60_000);
      await vm.exec(
        `virsh -c qemu:///system undefine ${DOMAIN} >/dev/null 2>&1; rm -f /etc/ssh/sshd_config.d/00-reliability.conf /etc/sudoers.d/${PW_USER}; ` +
          `userdel -r ${PW_USER} >/dev/null 2>&1; systemctl reload ssh; true`,
      );
      if ((await vm.run("cat /etc/default/grub")) !== foundGrubText) {
        await vm.run("cat > /etc/default/grub && update-grub 2>/dev/null", { input: foundGrubText });
      }
      if ((await vm.run("cat /proc/cmdline")).trim() !== foundCmdline) await vm.reboot();
    }
    process.stderr.write(`reliability lab timings, ${label} (s): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v / 1000)])))}\n`);
    await closeAllConnections();
  });

  return ctx;
}
