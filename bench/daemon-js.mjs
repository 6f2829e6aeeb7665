// The daemon's own JavaScript per connection or per message, with no sockets or system calls:
// the real server (listener profile, policy session, observer, metrics) accepts a fake socket
// and is fed an smtp-source-like session in memory. Steadier than any loopback run (a few % run
// to run, against ±30 % for a VM's loopback), so it is where a change to the per-connection
// path is measured first (bench/RESULTS.md, Round 17). It reaches into dist/server.js's
// internals (the listener's accept), so it follows the build it is given.
// Usage: node bench/daemon-js.mjs [--dist DIR] [--mode c|d] [--count N] [--rounds 7] [--heap TOP]
//   c: a new connection per message (EHLO, MAIL, RCPT, DATA, 4 KB body, QUIT); d: one session,
//   N messages; --heap TOP: instead, sample what is allocated (V8's sampling heap profiler,
//   objects collected later included) and print the TOP sites in bytes per unit.
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Session as Inspector } from 'node:inspector/promises';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
};
const dist = resolve(arg('dist', new URL('../dist', import.meta.url).pathname));
const mode = arg('mode', 'c');
const count = Number(arg('count', mode === 'c' ? 50_000 : 100_000));
const rounds = Number(arg('rounds', 7));
const heapTop = Number(arg('heap', 0));
if (!['c', 'd'].includes(mode) || !(count > 0) || !(rounds > 0)) {
  console.error('usage: node bench/daemon-js.mjs [--dist DIR] [--mode c|d] [--count N] [--rounds 7] [--heap TOP]');
  process.exit(2);
}
const imp = (f) => import(pathToFileURL(`${dist}/${f}`).href);
const { FakemxServer } = await imp('server.js');
const { createLogger } = await imp('log/logger.js');
const { startObservability } = await imp('observability.js');
const { loadConfig } = await imp('config/load.js');

// The bench's fakemx sink config (bench/run.mjs), on an ephemeral port nobody connects to.
const loaded = loadConfig({
  env: {},
  overrides: {
    listenAddress: '127.0.0.1', listenPort: 0, storeData: false, bannerDelay: 0, errorDelay: 0, doEarlyTalk: false,
    doTempFail: false, maxSessions: 1000000, maxSessionsPerIp: 1000000, maxMessages: 1000000, maxSmtpErrors: 10000,
    maxDataSize: 52428800, logLevel: 'warn', receiveTimeout: 300000, accessList: '',
  },
});
const logger = createLogger(loaded.config);
const server = new FakemxServer(loaded, logger);
await server.listen();
const obs = await startObservability(server, loaded.config, logger);
const listener = server.sockets[0];

/** What the engine and the listener use of a net.Socket; writes are counted and dropped. */
class FakeSocket extends EventEmitter {
  out = 0;
  paused = false;
  destroyed = false;
  writable = true;
  writableNeedDrain = false;
  writableLength = 0;
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  allowHalfOpen = true;
  write(s) { this.out += s.length; return true; }
  cork() {}
  uncork() {}
  isPaused() { return this.paused; }
  pause() { this.paused = true; return this; }
  resume() { this.paused = false; return this; }
  setNoDelay() { return this; }
  end(s) { if (s) this.write(s); return this.destroy(); }
  destroy() {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.writable = false;
    // Node emits 'close' after the handle has closed, never inside destroy().
    queueMicrotask(() => this.emit('close', false));
    return this;
  }
}

const body = Buffer.from(`Subject: bench\r\n\r\n${`${'x'.repeat(76)}\r\n`.repeat(52)}.\r\n`);
const [EHLO, ...MAIL] = ['EHLO client.example\r\n', 'MAIL FROM:<bench@source.example>\r\n', 'RCPT TO:<sink@fakemx.example>\r\n', 'DATA\r\n'].map((s) => Buffer.from(s));
const QUIT = Buffer.from('QUIT\r\n');
const accept = (sock) => server.accept(listener, { sock, ip: '127.0.0.1', port: 40000 });
const turn = () => new Promise((r) => setImmediate(r));

async function connections(n) {
  for (let i = 0; i < n; i++) {
    const s = new FakeSocket();
    accept(s);
    s.emit('data', EHLO);
    for (const c of MAIL) s.emit('data', c);
    s.emit('data', body);
    s.emit('data', QUIT);
    if ((i & 63) === 63) await turn(); // let closes and timers run, as a loaded loop would
  }
  await turn();
}

let held = null;
let sent = 0;
async function messages(n) {
  for (let i = 0; i < n; i++) {
    if (!held || sent >= 500_000) { // maxMessages is per session
      held?.emit('data', QUIT);
      held = new FakeSocket();
      accept(held);
      held.emit('data', EHLO);
      sent = 0;
    }
    for (const c of MAIL) held.emit('data', c);
    held.emit('data', body);
    sent++;
    if ((i & 255) === 255) await turn();
  }
}

const run = mode === 'c' ? connections : messages;
const unit = mode === 'c' ? 'connection' : 'message';
await run(Math.ceil(count / 4)); // warm-up: optimised code, grown heap

if (heapTop > 0) {
  const ins = new Inspector();
  ins.connect();
  await ins.post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
  await run(count);
  const { profile } = await ins.post('HeapProfiler.stopSampling');
  const sites = new Map();
  let total = 0;
  const walk = (node, caller) => {
    const f = node.callFrame;
    const name = `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
    if (node.selfSize > 0) {
      const k = `${name} < ${caller}`;
      sites.set(k, (sites.get(k) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const c of node.children) walk(c, name.split(' ')[0]);
  };
  walk(profile.head, '');
  console.log(`allocated per ${unit}: ${(total / count).toFixed(0)} B (sampled)`);
  for (const [k, v] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, heapTop)) console.log(`${(v / count).toFixed(0).padStart(7)} B  ${k}`);
} else {
  const cpu = [];
  const wall = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await run(count);
    const c = process.cpuUsage(c0);
    wall.push(((performance.now() - w0) * 1000) / count);
    cpu.push((c.user + c.system) / count);
  }
  const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  console.log(`per ${unit}: wall ${med(wall).toFixed(2)} µs, CPU ${med(cpu).toFixed(2)} µs (all threads, GC helpers included); median of ${rounds} rounds of ${count}`);
  console.log(`rounds (wall): ${wall.map((x) => x.toFixed(2)).join(' ')}`);
}
await obs.stop();
await server.close(0);
process.exit(0);
