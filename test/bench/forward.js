// A tiny TCP forwarder for the benchmark's network path (plain Node.js, no
// dependencies, so it can run inside a network namespace with
// `ip netns exec <ns> node forward.js ...`).
//
//   node forward.js <listenHost>:<listenPort>=<targetHost>:<targetPort> ...
//
// A listen port of 0 picks a free one. Prints one JSON line with the bound
// ports ([port, ...] in argument order), then forwards until its stdin
// closes (the parent went away) or it gets SIGTERM.
//
// Optional delay line, for kernels without `tc netem`: a line "delay <ms>"
// on stdin sets a one-way delay applied to every chunk in both directions
// (kept in order) and to the upstream connect (the TCP handshake's share), so
// a request/response exchange costs two one-way delays. It applies to data
// that arrives after the line was read.
"use strict";
const net = require("net");
const { performance } = require("perf_hooks");

let oneWayMs = 0;

const specs = process.argv.slice(2).map((a) => {
  const m = /^([^:=]+):(\d+)=([^:=]+):(\d+)$/.exec(a);
  if (!m) {
    process.stderr.write(`forward: bad spec ${JSON.stringify(a)} (want host:port=host:port)\n`);
    process.exit(2);
  }
  return { listenHost: m[1], listenPort: Number(m[2]), targetHost: m[3], targetPort: Number(m[4]) };
});

/** Writes chunks to `dst` each at its due time, in arrival order. */
class DelayLine {
  constructor(dst) {
    this.dst = dst;
    this.queue = [];
    this.timer = undefined;
    this.ready = false;
  }
  push(item) {
    this.queue.push(item);
    this.kick();
  }
  open() {
    this.ready = true;
    this.kick();
  }
  kick() {
    if (!this.ready || this.timer) return;
    while (this.queue.length) {
      const head = this.queue[0];
      const wait = head.due - performance.now();
      if (wait > 0.05) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.kick();
        }, wait);
        return;
      }
      this.queue.shift();
      if (head.end) this.dst.end();
      else if (!this.dst.destroyed) this.dst.write(head.data);
    }
  }
}

function forward(client, spec) {
  client.setNoDelay(true);
  const upstream = new net.Socket({ allowHalfOpen: true });
  upstream.setNoDelay(true);
  const down = new DelayLine(client);
  const up = new DelayLine(upstream);
  down.open();
  const kill = () => {
    client.destroy();
    upstream.destroy();
  };
  for (const s of [client, upstream]) s.on("error", kill);
  client.on("close", () => setTimeout(kill, oneWayMs));
  upstream.on("close", () => setTimeout(kill, oneWayMs));
  client.on("data", (d) => up.push({ due: performance.now() + oneWayMs, data: d }));
  client.on("end", () => up.push({ due: performance.now() + oneWayMs, end: true }));
  upstream.on("data", (d) => down.push({ due: performance.now() + oneWayMs, data: d }));
  upstream.on("end", () => down.push({ due: performance.now() + oneWayMs, end: true }));
  const connect = () => upstream.connect({ host: spec.targetHost, port: spec.targetPort }, () => up.open());
  if (oneWayMs > 0) setTimeout(connect, oneWayMs);
  else connect();
}

Promise.all(
  specs.map(
    (spec) =>
      new Promise((resolve, reject) => {
        const server = net.createServer({ allowHalfOpen: true }, (c) => forward(c, spec));
        server.once("error", reject);
        server.listen(spec.listenPort, spec.listenHost, () => resolve(server.address().port));
      }),
  ),
).then(
  (ports) => process.stdout.write(JSON.stringify(ports) + "\n"),
  (e) => {
    process.stderr.write(`forward: ${e.message}\n`);
    process.exit(1);
  },
);

let pending = "";
process.stdin.on("data", (d) => {
  pending += d;
  let nl;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    const m = /^delay (\d+(?:\.\d+)?)$/.exec(line);
    if (m) {
      oneWayMs = Number(m[1]);
      process.stdout.write(`ok ${oneWayMs}\n`);
    }
  }
});
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
