/**
 * The lab's guest disk image: Debian bookworm booted through GRUB, with the
 * packages the provider drives (libvirt, iproute2, pciutils, kmod...).
 *
 * The image is cached under `.lab/images/<recipe hash>/` and rebuilt only when
 * the recipe changes (the build script's text, the package list, the kernel
 * command line...). A build happens in a temporary directory that is renamed
 * into place only when complete, so an interrupted build never leaves a half
 * image behind.
 */
import { spawn, spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { pidAlive, sleep } from "./process";

/** Root of everything the lab keeps on disk (gitignored). `LAB_DIR` overrides. */
export const LAB_DIR = path.resolve(process.env.LAB_DIR ?? path.join(__dirname, "..", ".lab"));
const IMAGES_DIR = path.join(LAB_DIR, "images");
const BUILD_SCRIPT = path.join(__dirname, "build-image.sh");
const SYSTEM_DEPS_SCRIPT = path.join(__dirname, "system-deps.sh");

/** Everything that decides what the image contains; its hash keys the cache. */
export interface ImageRecipe {
  suite: string;
  packages: string[];
  diskGb: number;
  /** GRUB_CMDLINE_LINUX written to /etc/default/grub in the guest. */
  cmdline: string;
  hostname: string;
}

export const IMAGE_RECIPE: Readonly<ImageRecipe> = Object.freeze({
  suite: "bookworm",
  packages: [
    "linux-image-amd64", "systemd-sysv", "udev", "dbus", "kmod", "zstd",
    "openssh-server", "iproute2", "pciutils", "ethtool", "util-linux", "procps",
    "grub-pc", "python3",
    "libvirt-daemon-system", "libvirt-clients", "qemu-system-x86",
  ],
  diskGb: 8,
  // no_timer_check: under a loaded TCG host the kernel's IO-APIC timer check
  // can panic the boot; panic=10 reboots after any panic instead of hanging.
  cmdline: "console=ttyS0 intel_iommu=on no_timer_check panic=10",
  hostname: "sriov-lab",
});

/** A built image and the keys that go with it. */
export interface LabImage {
  /** Recipe hash (hex, 16 characters): the cache key. */
  hash: string;
  /** Directory holding the image and its keys. */
  dir: string;
  /** The base qcow2 disk; runs use copy-on-write overlays on top of it. */
  disk: string;
  /** Path of the client private key (OpenSSH format, mode 0600). */
  privateKeyPath: string;
  /** Client private key text, as `connection.privateKey` takes it. */
  privateKey: string;
  /** The guest's host public key line, "ssh-ed25519 AAAA...", for pinning. */
  hostKey: string;
  recipe: ImageRecipe;
  /** Size of the qcow2 file on disk in bytes. */
  sizeBytes: number;
  /** Build duration in seconds (as recorded when it was built). */
  buildSeconds: number;
}

export interface EnsureImageOptions {
  /** Progress sink; defaults to stderr. */
  log?: (line: string) => void;
  /** Rebuild even if a cached image exists. */
  rebuild?: boolean;
}

/** Hash of the build recipe: the script text plus the recipe fields. */
export function recipeHash(recipe: ImageRecipe = IMAGE_RECIPE): string {
  const h = crypto.createHash("sha256");
  h.update(fs.readFileSync(BUILD_SCRIPT));
  h.update("\0");
  h.update(JSON.stringify({ ...recipe, packages: [...recipe.packages].sort() }));
  return h.digest("hex").slice(0, 16);
}

const defaultLog = (line: string) => process.stderr.write(line.endsWith("\n") ? line : line + "\n");

/** The cached image for the current recipe, if it has been built. */
export function findImage(recipe: ImageRecipe = IMAGE_RECIPE): LabImage | undefined {
  const hash = recipeHash(recipe);
  const dir = path.join(IMAGES_DIR, hash);
  const meta = path.join(dir, "image.json");
  if (!fs.existsSync(meta)) return undefined;
  return loadImage(dir);
}

function loadImage(dir: string): LabImage {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "image.json"), "utf8"));
  const disk = path.join(dir, "disk.qcow2");
  const privateKeyPath = path.join(dir, "client_ed25519");
  fs.chmodSync(privateKeyPath, 0o600);
  return {
    hash: meta.hash,
    dir,
    disk,
    privateKeyPath,
    privateKey: fs.readFileSync(privateKeyPath, "utf8"),
    hostKey: publicKeyLine(fs.readFileSync(path.join(dir, "host_ed25519.pub"), "utf8")),
    recipe: meta.recipe,
    sizeBytes: fs.statSync(disk).size,
    buildSeconds: meta.buildSeconds,
  };
}

/** "ssh-ed25519 AAAA... comment" → "ssh-ed25519 AAAA...". */
function publicKeyLine(text: string): string {
  const [type, key] = text.trim().split(/\s+/);
  if (!type || !key) throw new Error(`not an OpenSSH public key: ${JSON.stringify(text.slice(0, 40))}`);
  return `${type} ${key}`;
}

/**
 * The Debian mirror URI of this machine's apt sources (deb822 `.sources` or
 * one-line `sources.list`), for the suite the image is built from. `LAB_MIRROR`
 * overrides it.
 */
export function debianMirror(suite: string = IMAGE_RECIPE.suite): string {
  if (process.env.LAB_MIRROR) return process.env.LAB_MIRROR;
  const candidates: { uri: string; suites: string[] }[] = [];
  const dir = "/etc/apt/sources.list.d";
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).sort().map((f) => path.join(dir, f)) : [];
  for (const file of files.filter((f) => f.endsWith(".sources"))) {
    for (const stanza of fs.readFileSync(file, "utf8").split(/\n\s*\n/)) {
      const field = (name: string) =>
        stanza.split("\n").find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ":"))
          ?.slice(name.length + 1).trim().split(/\s+/) ?? [];
      if (!field("Types").includes("deb")) continue;
      if (field("Enabled")[0]?.toLowerCase() === "no") continue;
      for (const uri of field("URIs")) candidates.push({ uri, suites: field("Suites") });
    }
  }
  const lists = ["/etc/apt/sources.list", ...files.filter((f) => f.endsWith(".list"))];
  for (const file of lists.filter((f) => fs.existsSync(f))) {
    for (const raw of fs.readFileSync(file, "utf8").split("\n")) {
      const line = raw.replace(/\[[^\]]*\]/, " ").trim().split(/\s+/);
      if (line[0] === "deb" && line[1] && line[2]) candidates.push({ uri: line[1], suites: [line[2]] });
    }
  }
  const pick = candidates.find((c) => c.suites.includes(suite))
    ?? candidates.find((c) => c.suites.some((s) => s.startsWith(suite) && !s.includes("security")));
  if (!pick) {
    throw new Error(`lab image: no Debian '${suite}' source in /etc/apt (sources.list or sources.list.d); ` +
      "set LAB_MIRROR to a Debian mirror URI");
  }
  return pick.uri.replace(/\/+$/, "");
}

function haveCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd} || test -x /usr/sbin/${cmd} || test -x /sbin/${cmd}`],
    { stdio: "ignore" }).status === 0;
}

/** Installs missing host packages (QEMU 10 from backports, debootstrap...). */
export function ensureSystemDeps(log: (line: string) => void = defaultLog): void {
  const needed = ["qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen", "debootstrap", "sfdisk", "mkfs.ext4", "losetup"];
  const igb = () => spawnSync("qemu-system-x86_64", ["-device", "help"], { encoding: "utf8" }).stdout?.includes('"igb"');
  if (needed.every(haveCommand) && igb()) return;
  log(`lab: installing system dependencies (${SYSTEM_DEPS_SCRIPT})`);
  const r = spawnSync("bash", [SYSTEM_DEPS_SCRIPT], { stdio: ["ignore", "inherit", "inherit"] });
  if (r.status !== 0) throw new Error(`lab: ${SYSTEM_DEPS_SCRIPT} failed (exit ${r.status ?? r.signal})`);
}



/** Cross-process lock file holding the owner's pid; stale locks are taken over. */
async function withLock<T>(lockPath: string, onWait: () => void, fn: () => Promise<T>): Promise<T> {
  let waited = 0;
  for (;;) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: "wx" });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = Number(fs.readFileSync(lockPath, "utf8").trim());
      if (!owner || !pidAlive(owner)) {
        fs.rmSync(lockPath, { force: true });
        continue;
      }
      if (waited % 30000 === 0) onWait();
      await sleep(1000);
      waited += 1000;
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lockPath, { force: true });
  }
}

let activeBuild: ReturnType<typeof spawn> | undefined;
process.on("exit", () => {
  // The build script unmounts and detaches its loop devices on SIGTERM.
  if (activeBuild?.pid && activeBuild.exitCode === null) {
    try { process.kill(activeBuild.pid, "SIGTERM"); } catch { /* gone */ }
  }
});

/**
 * Returns the cached image for the current recipe, building it first when
 * needed (as root: loop devices, mount, chroot). Progress lines go to `log`.
 */
export async function ensureImage(opts: EnsureImageOptions = {}): Promise<LabImage> {
  const log = opts.log ?? defaultLog;
  const recipe: ImageRecipe = { ...IMAGE_RECIPE, packages: [...IMAGE_RECIPE.packages] };
  const hash = recipeHash(recipe);
  const finalDir = path.join(IMAGES_DIR, hash);
  if (!opts.rebuild) {
    const cached = findImage(recipe);
    if (cached) return cached;
  }
  fs.mkdirSync(IMAGES_DIR, { recursive: true });
  return withLock(path.join(IMAGES_DIR, `${hash}.lock`),
    () => log(`lab: waiting for another process building image ${hash}...`),
    async () => {
      if (!opts.rebuild) {
        const cached = findImage(recipe);
        if (cached) return cached; // built by whoever held the lock
      }
      return build(recipe, hash, finalDir, log);
    });
}

async function build(recipe: ImageRecipe, hash: string, finalDir: string, log: (l: string) => void): Promise<LabImage> {
  if (process.getuid?.() !== 0) {
    throw new Error("lab image: building needs root (loop devices, mount, chroot); run as root or build once with " +
      "`sudo npx tsx lab/cli.ts build`");
  }
  ensureSystemDeps(log);
  const mirror = debianMirror(recipe.suite);
  const started = Date.now();
  // Leftovers of interrupted builds of any recipe.
  for (const entry of fs.readdirSync(IMAGES_DIR)) {
    const m = /^\.build-[0-9a-f]+-(\d+)$/.exec(entry);
    if (m && !pidAlive(Number(m[1]))) fs.rmSync(path.join(IMAGES_DIR, entry), { recursive: true, force: true });
  }
  const tmp = path.join(IMAGES_DIR, `.build-${hash}-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  const work = path.join(tmp, "work");
  fs.mkdirSync(work, { recursive: true });
  log(`lab: building image ${hash} (Debian ${recipe.suite}, ${recipe.packages.length} packages) in ${tmp}`);
  try {
    for (const [file, comment] of [["client_ed25519", "lab-client"], ["host_ed25519", "lab-host"]]) {
      const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path.join(tmp, file)],
        { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`lab image: ssh-keygen failed: ${r.stderr}`);
    }
    const env = {
      ...process.env,
      LAB_WORK: work,
      LAB_MIRROR: mirror,
      LAB_SUITE: recipe.suite,
      LAB_PACKAGES: recipe.packages.join(" "),
      LAB_DISK_GB: String(recipe.diskGb),
      LAB_CMDLINE: recipe.cmdline,
      LAB_AUTH_KEY: path.join(tmp, "client_ed25519.pub"),
      LAB_HOST_KEY: path.join(tmp, "host_ed25519"),
      LAB_HOSTNAME: recipe.hostname,
    };
    await new Promise<void>((resolve, reject) => {
      const child = spawn("bash", [BUILD_SCRIPT], { env, stdio: ["ignore", "pipe", "pipe"] });
      activeBuild = child;
      let buf = "";
      const onData = (d: Buffer) => {
        buf += d.toString("utf8");
        const lines = buf.split("\n");
        buf = lines.pop() ?? "";
        for (const l of lines) if (l.trim()) log(l.replace(/\r/g, ""));
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.on("error", reject);
      child.on("close", (code, signal) => {
        activeBuild = undefined;
        if (buf.trim()) log(buf);
        if (code === 0) resolve();
        else reject(new Error(`lab image: ${BUILD_SCRIPT} failed (${signal ?? `exit ${code}`}); ` +
          `full log: ${path.join(IMAGES_DIR, `failed-build-${hash}.log`)}`));
      });
    });
    fs.renameSync(path.join(work, "disk.qcow2"), path.join(tmp, "disk.qcow2"));
    fs.renameSync(path.join(work, "build.log"), path.join(tmp, "build.log"));
    fs.rmSync(work, { recursive: true, force: true });
    const buildSeconds = Math.round((Date.now() - started) / 100) / 10;
    fs.writeFileSync(path.join(tmp, "image.json"), JSON.stringify({
      hash, recipe, buildSeconds, builtAt: new Date().toISOString(),
    }, null, 2) + "\n");
    fs.rmSync(finalDir, { recursive: true, force: true });
    fs.renameSync(tmp, finalDir);
  } catch (e) {
    // Keep the log of a failed build next to where the image would be.
    const logFile = path.join(work, "build.log");
    if (fs.existsSync(logFile)) fs.copyFileSync(logFile, path.join(IMAGES_DIR, `failed-build-${hash}.log`));
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  pruneOldImages(hash, log);
  const image = loadImage(finalDir);
  log(`lab: image ${hash} built in ${image.buildSeconds}s (${(image.sizeBytes / 2 ** 20).toFixed(0)} MiB qcow2)`);
  return image;
}

/** Image hashes that live runs use; undefined if some live run does not say. */
function imagesInUse(): Set<string> | undefined {
  const runs = path.join(LAB_DIR, "runs");
  const used = new Set<string>();
  if (!fs.existsSync(runs)) return used;
  for (const entry of fs.readdirSync(runs)) {
    const m = /-p(\d+)-\d+$/.exec(entry);
    if (!m || !pidAlive(Number(m[1]))) continue;
    const file = path.join(runs, entry, "image-hash");
    if (!fs.existsSync(file)) return undefined;
    used.add(fs.readFileSync(file, "utf8").trim());
  }
  return used;
}

/** Removes images of older recipes that no live run uses. */
function pruneOldImages(keep: string, log: (l: string) => void): void {
  const inUse = imagesInUse();
  if (!inUse) return;
  for (const entry of fs.readdirSync(IMAGES_DIR)) {
    if (/^failed-build-[0-9a-f]{16}\.log$/.test(entry)) fs.rmSync(path.join(IMAGES_DIR, entry), { force: true });
    if (entry === keep || inUse.has(entry) || !/^[0-9a-f]{16}$/.test(entry)) continue;
    if (fs.existsSync(path.join(IMAGES_DIR, `${entry}.lock`))) continue;
    log(`lab: removing image of an older recipe: ${entry}`);
    fs.rmSync(path.join(IMAGES_DIR, entry), { recursive: true, force: true });
  }
}
