// Work counted on the lab host itself, read through the lab's own SSH
// client (not the measured path):
//
//   processes  the `processes` line of /proc/stat (every fork and clone the
//              kernel made), minus what one reading of the counters starts
//              (calibrated once: back-to-back readings with nothing between)
//   reloads    systemd daemon-reloads: manager reloads logged by PID 1 in
//              the journal since the start ("Reloading." on systemd 252,
//              "Reloading..." on later ones, which add a "finished" line)
//   settles    `udevadm settle` runs: /usr/bin/udevadm is bind-mounted over
//              by a two-line sh wrapper that appends a line to a log and
//              execs the real binary (exec, so no extra process; the
//              provider runs the same command and gets the same result)
import type { LabHost } from "./lab";

export interface HostCounts {
  processes: number;
  reloads: number;
  settles: number;
}

// Not under /run: it is mounted noexec, and the wrapper must run.
const DIR = "/var/lib/bench-host-counts";
const SETTLES = `${DIR}/settles`;

// Shell builtins apart from journalctl: /proc/stat first, so the reading's
// own processes (its journalctl, the next reading's session) fall between
// two readings of `processes` and are calibrated out.
const READ = [
  'while read -r k v _; do [ "$k" = processes ] && break; done < /proc/stat; echo "processes $v"',
  `echo "reloads $(journalctl -q -o cat _PID=1 --since=@$(cat ${DIR}/since) --grep='^Reloading\\.+$' | wc -l)"`,
  `n=0; if [ -e ${SETTLES} ]; then while read -r _; do n=$((n + 1)); done < ${SETTLES}; fi; echo "settles $n"`,
].join("\n");

const INSTALL = [
  `mkdir -p ${DIR}`,
  `[ -e ${DIR}/since ] || date +%s > ${DIR}/since`,
  `if ! mountpoint -q /usr/bin/udevadm; then cp -p /usr/bin/udevadm ${DIR}/udevadm; printf '%s\\n' '#!/bin/sh' '[ "$1" = settle ] && echo settle >> ${SETTLES}' 'exec ${DIR}/udevadm "$@"' > ${DIR}/udevadm-wrapper; chmod 755 ${DIR}/udevadm-wrapper; mount --bind ${DIR}/udevadm-wrapper /usr/bin/udevadm; fi`,
].join("\n");

const UNINSTALL = `if mountpoint -q /usr/bin/udevadm; then umount /usr/bin/udevadm; fi; rm -rf ${DIR}`;

export function parseCounts(text: string): HostCounts {
  const get = (k: string) => {
    const m = new RegExp(`^${k} (\\d+)$`, "m").exec(text);
    if (!m) throw new Error(`host counters: no ${k} in ${JSON.stringify(text)}`);
    return Number(m[1]);
  };
  return { processes: get("processes"), reloads: get("reloads"), settles: get("settles") };
}

/** after − before, less what the reading itself started (`overhead` processes). */
export function countsBetween(before: HostCounts, after: HostCounts, overhead: number): HostCounts {
  return {
    processes: Math.max(0, after.processes - before.processes - overhead),
    reloads: after.reloads - before.reloads,
    settles: after.settles - before.settles,
  };
}

export class HostCounter {
  private constructor(
    private readonly vm: LabHost,
    /** Processes one reading starts, between its /proc/stat and the next reading's. */
    readonly overhead: number,
  ) {}

  /** Installs the udevadm wrapper and calibrates the reading's own processes (least of 4 back-to-back pairs). */
  static async install(vm: LabHost): Promise<HostCounter> {
    await vm.run(INSTALL);
    const reads: HostCounts[] = [];
    for (let i = 0; i < 5; i++) reads.push(parseCounts(await vm.run(READ)));
    const overhead = Math.min(...reads.slice(1).map((r, i) => r.processes - reads[i].processes));
    return new HostCounter(vm, overhead);
  }

  async read(): Promise<HostCounts> {
    return parseCounts(await this.vm.run(READ));
  }

  async since(before: HostCounts): Promise<HostCounts> {
    return countsBetween(before, await this.read(), this.overhead);
  }

  /** Runs `body` and puts the host's counts of its work on the result. */
  async around<T extends { host?: HostCounts }>(body: () => Promise<T>): Promise<T> {
    const before = await this.read();
    const r = await body();
    r.host = await this.since(before);
    return r;
  }

  async uninstall(): Promise<void> {
    await this.vm.run(UNINSTALL);
  }
}
