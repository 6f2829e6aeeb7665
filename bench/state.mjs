// State store benchmark (issue 14): `npm run build && node bench/state.mjs [--quick]`.
// Needs redis-server on PATH (test/interop/setup.sh installs it); it runs a private one on a
// loopback port. Daemons run as child processes (the package bin), clients here.
//
// 1. Greeting latency a state lookup adds: connect -> 220 for sequential connections with
//    bannerDelay 0, the client cache on (one state read per connection) vs no state, for the
//    local (LMDB) and the Redis backend; and Redis's own round trip (PING) on the same loopback.
//    Goals: local p99 added <= 1 ms; Redis p99 <= its round-trip p99 + 1 ms.
// 2. New-connection throughput (connect, EHLO, MAIL, RCPT, QUIT) with greylisting and the client
//    cache on, as a ratio to both off, in the same run (goal >= 0.8): the median over rounds of
//    the ratio within each round. The client network is allowlisted first, so every RCPT passes
//    on the allowlist entry read at connect.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const quick = process.argv.includes('--quick');
const LAT_N = quick ? 300 : 2000;
const TP_SECONDS = quick ? 2 : 3;
// Short series, many rounds, each round's order reversed from the last, and the ratio taken per
// round: this 2-core VM's speed drifts by tens of percent within a minute (bench/RESULTS.md), and
// a ratio of two series measured side by side cancels the drift a ratio of run-long means keeps.
const TP_ROUNDS = quick ? 2 : 8;
const TP_CONC = 20;
const work = mkdtempSync(join(tmpdir(), 'fakemx-bench-state-'));
const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function startRedis() {
  const port = await freePort();
  const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.push(c);
  for (let i = 0; i < 100; i++) {
    if (await rtt(port).then(() => true, () => false)) return port;
    await new Promise((r) => setTimeout(r, 30));
  }
  throw new Error('redis-server did not start');
}

/** One PING round trip on a fresh or given socket, in ms. */
function rtt(port, sock) {
  return new Promise((resolve, reject) => {
    const s = sock ?? connect(port, '127.0.0.1');
    const go = () => {
      const t0 = process.hrtime.bigint();
      s.once('data', () => {
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (!sock) s.destroy();
        resolve(ms);
      });
      s.write('PING\r\n');
    };
    if (sock) go();
    else {
      // A fresh socket per probe gets its own error listener; the reused one has none to pile up.
      s.once('error', reject);
      s.once('connect', go);
    }
  });
}

async function startDaemon(name, cfg) {
  const config = join(work, `${name}.json`);
  writeFileSync(config, JSON.stringify({
    listenAddress: '127.0.0.1', listenPort: 0, bannerDelay: 0, errorDelay: 0, doEarlyTalk: false, storeData: false,
    maxSessions: 10_000, maxSessionsPerIp: 10_000, logLevel: 'info', receiveTimeout: 30_000, ...cfg,
  }));
  const c = spawn(process.execPath, ['dist/fakemx.cjs', 'run', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(c);
  return new Promise((resolve, reject) => {
    let buf = '';
    c.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      const m = /"tag":"LISTENING"[^\n]*"port":(\d+)/.exec(buf);
      if (m) {
        c.stdout.removeAllListeners('data');
        c.stdout.resume();
        resolve({ port: Number(m[1]), stop: () => c.kill('SIGTERM') });
      }
    });
    c.on('exit', (code) => reject(new Error(`${name} exited ${code}`)));
  });
}

/** A minimal SMTP client: send a line, wait for the reply's final line. */
function session(port, commands) {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    s.setNoDelay(true);
    const t0 = process.hrtime.bigint();
    let greetMs = 0;
    let buf = '';
    let i = -1;
    const codes = [];
    s.setEncoding('latin1');
    s.on('data', (d) => {
      buf += d;
      for (;;) {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (line[3] === '-') continue;
        if (i < 0) greetMs = Number(process.hrtime.bigint() - t0) / 1e6;
        codes.push(Number(line.slice(0, 3)));
        i++;
        if (i < commands.length) s.write(`${commands[i]}\r\n`);
        else {
          s.end();
          resolve({ greetMs, codes });
        }
      }
    });
    s.on('error', reject);
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmt = (x) => x.toFixed(3);

async function greetLatency(port) {
  for (let i = 0; i < 50; i++) await session(port, ['QUIT']);
  const xs = [];
  for (let i = 0; i < LAT_N; i++) xs.push((await session(port, ['QUIT'])).greetMs);
  return { p50: pct(xs, 50), p99: pct(xs, 99) };
}

async function throughput(port, seconds = TP_SECONDS) {
  const cmds = ['EHLO bench.test', 'MAIL FROM:<s@bench.test>', 'RCPT TO:<r@example.org>', 'QUIT'];
  const end = Date.now() + seconds * 1000;
  let n = 0;
  let refused = 0;
  await Promise.all(Array.from({ length: TP_CONC }, async () => {
    while (Date.now() < end) {
      const r = await session(port, cmds);
      if (r.codes[3] === 250) n++;
      else refused++;
    }
  }));
  return { perSec: n / seconds, refused };
}

const redisPort = await startRedis();
const rsock = connect(redisPort, '127.0.0.1');
await new Promise((r) => rsock.once('connect', r));
rsock.setNoDelay(true);
for (let i = 0; i < 100; i++) await rtt(redisPort, rsock);
const rtts = [];
for (let i = 0; i < LAT_N; i++) rtts.push(await rtt(redisPort, rsock));
rsock.destroy();

const allow = join(work, 'allow');
writeFileSync(allow, '');
const redisState = { backend: 'redis', redis: { url: `redis://127.0.0.1:${redisPort}`, prefix: 'bench:' } };
const plain = await startDaemon('plain', {});
const local = await startDaemon('local', { state: { path: join(work, 'state') }, cache: { enabled: true } });
const redis = await startDaemon('redis', { state: redisState, cache: { enabled: true } });

const lat = { none: await greetLatency(plain.port), local: await greetLatency(local.port), redis: await greetLatency(redis.port) };
const redisRtt = { p50: pct(rtts, 50), p99: pct(rtts, 99) };

// Throughput: greylisting + cache on (local and redis) vs off, interleaved in one run.
const greyLocal = await startDaemon('grey-local', { state: { path: join(work, 'state-grey') }, cache: { enabled: true }, greylist: { enabled: true, passtime: 0 } });
const greyRedis = await startDaemon('grey-redis', { state: redisState, cache: { enabled: true }, greylist: { enabled: true, passtime: 0 } });
// The same Redis fleet node with both off: it still counts maxSessionsPerIp in Redis (a lease
// per connection), so on-vs-this is what greylisting and the cache add to a fleet node.
const fleetOff = await startDaemon('fleet-off', { state: redisState, cache: { enabled: false }, greylist: { enabled: false } });
// One first attempt each (passtime 0): the retry allowlists 127.0.0.0/24.
for (const d of [greyLocal, greyRedis]) for (let i = 0; i < 2; i++) await session(d.port, ['EHLO bench.test', 'MAIL FROM:<s@bench.test>', 'RCPT TO:<r@example.org>', 'QUIT']);
const tp = { off: [], local: [], redis: [], fleetOff: [] };
const series = [['off', plain], ['local', greyLocal], ['redis', greyRedis], ['fleetOff', fleetOff]];
// A first pass through every series is not counted: the greylisting daemons have answered
// two sessions so far, and their first seconds would be JIT warm-up, not state.
for (const [, d] of series) await throughput(d.port, 1);
for (let round = 0; round < TP_ROUNDS; round++) {
  for (const [name, d] of round % 2 ? [...series].reverse() : series) tp[name].push(await throughput(d.port));
}const rate = (xs) => xs.reduce((a, x) => a + x.perSec, 0) / xs.length;
/** The median over rounds (the mean of the middle two for an even count) of a series' rate over another's in the same round. */
const ratio = (a, b) => {
  const r = a.map((x, i) => x.perSec / b[i].perSec).sort((x, y) => x - y);
  const m = r.length >> 1;
  return r.length % 2 ? r[m] : (r[m - 1] + r[m]) / 2;
};

const out = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
  loadavg: (await import('node:os')).loadavg().map((x) => x.toFixed(2)),
  greetingLatencyMs: {
    none: { p50: fmt(lat.none.p50), p99: fmt(lat.none.p99) },
    local: { p50: fmt(lat.local.p50), p99: fmt(lat.local.p99), addedP99: fmt(lat.local.p99 - lat.none.p99) },
    redis: { p50: fmt(lat.redis.p50), p99: fmt(lat.redis.p99), addedP99: fmt(lat.redis.p99 - lat.none.p99) },
    redisPing: { p50: fmt(redisRtt.p50), p99: fmt(redisRtt.p99) },
    goals: {
      localAddedP99LE1ms: lat.local.p99 - lat.none.p99 <= 1,
      redisAddedP99LERttPlus1ms: lat.redis.p99 - lat.none.p99 <= redisRtt.p99 + 1,
    },
  },
  newConnectionsPerSec: {
    off: rate(tp.off).toFixed(0),
    greylistAndCacheLocal: rate(tp.local).toFixed(0),
    greylistAndCacheRedis: rate(tp.redis).toFixed(0),
    ratioLocal: ratio(tp.local, tp.off).toFixed(2),
    ratioRedis: ratio(tp.redis, tp.off).toFixed(2),
    ratiosPerRound: { local: tp.local.map((x, i) => (x.perSec / tp.off[i].perSec).toFixed(2)), redis: tp.redis.map((x, i) => (x.perSec / tp.off[i].perSec).toFixed(2)) },
    refused: [...tp.off, ...tp.local, ...tp.redis, ...tp.fleetOff].reduce((a, x) => a + x.refused, 0),
    goalRatioGE08: ratio(tp.local, tp.off) >= 0.8 && ratio(tp.redis, tp.off) >= 0.8,
    // Not the goal's baseline (that is no state at all): a Redis fleet node with greylisting
    // and the cache off, which pays its per-connection lease all the same.
    redisFleetBothOff: rate(tp.fleetOff).toFixed(0),
    ratioRedisToFleetOff: ratio(tp.redis, tp.fleetOff).toFixed(2),
  },
  settings: { latencyConnections: LAT_N, throughputSeconds: TP_SECONDS, rounds: TP_ROUNDS, concurrency: TP_CONC },
};
console.log(JSON.stringify(out, null, 2));
for (const d of [plain, local, redis, greyLocal, greyRedis, fleetOff]) d.stop();
process.exit(0);
