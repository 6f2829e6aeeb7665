// DNSBL scenario (issue 4's performance bullet): the fakemx daemon asks 5 zones on an in-process
// DNS server that answers each query after 50 ms. Measures connect -> first reply line (bannerDelay
// 0, so the greeting waits only for the verdict): cold, cached, and a burst of distinct clients.
// Also the engine alone (dist/dnsbl/ in this process, no SMTP): the pure time to verdict.
// Standalone: node bench/dnsbl-latency.mjs [--burst 1000] [--samples 50]

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import dgram from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort, pct, smtpExchange, waitGreeting } from './held-sessions.mjs';

const ZONES = ['z1.bench.test', 'z2.bench.test', 'z3.bench.test', 'z4.bench.test', 'z5.bench.test'];
const DELAY_MS = 50;

/** A DNS list server: every answer after delayMs; 127.0.0.2 listed (RFC 5782 §5), the rest NXDOMAIN. */
function startSlowDns(dnsPacket, delayMs) {
  return new Promise((resolve, reject) => {
    // A burst of 5 x 1000 queries must not overflow the default receive buffer (drops look like timeouts).
    const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    let queries = 0;
    const timers = new Set();
    sock.on('message', (msg, rinfo) => {
      let q;
      try {
        q = dnsPacket.decode(msg);
      } catch {
        return;
      }
      const question = q.questions?.[0];
      if (!question) return;
      queries++;
      const listed = /^2\.0\.0\.127\./.test(question.name);
      const zone = ZONES.find((z) => question.name.toLowerCase().endsWith(z)) ?? 'bench.test';
      const answers = listed && question.type === 'A' ? [{ type: 'A', name: question.name, ttl: 300, data: '127.0.0.2' }] : [];
      // RFC 2308 §3: a negative answer carries the zone's SOA, whose minimum is the negative TTL.
      const authorities = answers.length ? [] : [{
        type: 'SOA', name: zone, ttl: 300,
        data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 300 },
      }];
      const reply = dnsPacket.encode({
        type: 'response', id: q.id, flags: dnsPacket.AUTHORITATIVE_ANSWER | (answers.length ? 0 : 3), questions: q.questions, answers, authorities,
      });
      const t = setTimeout(() => {
        timers.delete(t);
        sock.send(reply, rinfo.port, rinfo.address);
      }, delayMs);
      timers.add(t);
    });
    sock.on('error', reject);
    sock.bind(0, '127.0.0.1', () =>
      resolve({
        addr: `127.0.0.1:${sock.address().port}`,
        queries: () => queries,
        close: () => {
          for (const t of timers) clearTimeout(t);
          sock.close();
        },
      }),
    );
  });
}

/**
 * The slow DNS server in its own process, as a real one would be: the 5000 answers of a burst then
 * arrive from outside, and the measuring process does no DNS work of its own.
 */
function spawnSlowDns() {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--dns-server'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    let addr = null;
    let finalQueries = null;
    let exited = false;
    const waiters = [];
    p.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.addr && !addr) {
          addr = msg.addr;
          resolve({
            addr,
            queries: () => finalQueries,
            close: () =>
              new Promise((r) => {
                if (exited) return r();
                waiters.push(r);
                p.kill('SIGTERM');
              }),
          });
        }
        if (msg.queries !== undefined) finalQueries = msg.queries;
      }
    });
    p.on('exit', () => {
      exited = true;
      for (const w of waiters) w();
      if (!addr) reject(new Error('DNS server did not start'));
    });
  });
}


/** TcpExt ListenOverflows from /proc/net/netstat: SYNs dropped because an accept queue was full. */
function listenOverflows() {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i++) {
      if (!lines[i].startsWith('TcpExt:')) continue;
      const k = lines[i].split(/\s+/);
      const v = lines[i + 1].split(/\s+/);
      const j = k.indexOf('ListenOverflows');
      return j > 0 ? Number(v[j]) : NaN;
    }
  } catch {
    // not Linux
  }
  return NaN;
}

/** Udp RcvbufErrors from /proc/net/snmp: datagrams dropped because a socket's receive buffer was full. */
function udpRcvbufErrors() {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const k = lines[0].split(/\s+/);
    const v = lines[1].split(/\s+/);
    return Number(v[k.indexOf('RcvbufErrors')]);
  } catch {
    return NaN;
  }
}

/** The DNSBL engine alone, in this process: cold, cached and a burst of distinct addresses. */
async function engineOnly(root, dnsAddr, samples, burst) {
  const dist = (f) => import(pathToFileURL(join(root, 'dist/dnsbl', f)).href);
  const [{ DnsblEngine }, { DnsblCheck }, { parseProviders }] = await Promise.all([dist('engine.js'), dist('check.js'), dist('provider.js')]);
  const quiet = { info() {}, warn() {}, debug() {}, error() {}, trace() {}, fatal() {}, child() { return quiet; } };
  const dnsCfg = { servers: [dnsAddr], timeout: 2000, retries: 1, minTtl: 60, maxTtl: 3600, cacheSize: 100000, threshold: 1, healthCheckInterval: 0, skipPrivate: false, action: 'ignore' };
  const engine = new DnsblEngine({ dns: dnsCfg, logger: quiet });
  const check = new DnsblCheck(engine, [], parseProviders(ZONES), { threshold: 1, skipPrivate: false, timeout: 2000, action: 'ignore' });
  const zoneErrors = {};
  const one = async (ip) => {
    const t0 = performance.now();
    const r = await check.check(ip, { deadline: Date.now() + 2000 });
    for (const z of r.zones) if (z.error) zoneErrors[z.error] = (zoneErrors[z.error] ?? 0) + 1;
    if (r.zones.length !== ZONES.length) zoneErrors.missing = (zoneErrors.missing ?? 0) + 1;
    return performance.now() - t0;
  };
  try {
    const addrs = Array.from({ length: samples }, (_, i) => `10.0.2.${i + 1}`);
    const cold = [];
    for (const a of addrs) cold.push(await one(a));
    const cached = [];
    for (const a of addrs) cached.push(await one(a));
    const rcvbuf0 = udpRcvbufErrors();
    const t0 = performance.now();
    const b = await Promise.all(Array.from({ length: burst }, (_, i) => one(`10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`)));
    return { cold: stats(cold), cached: stats(cached), burst: stats(b), burstWallMs: performance.now() - t0, zoneErrors, udpRcvbufErrors: udpRcvbufErrors() - rcvbuf0 };
  } finally {
    engine.stop();
  }
}

function stats(values) {
  return { n: values.length, p50: pct(values, 50), p99: pct(values, 99), max: pct(values, 100) };
}

/** Time from connect start to the first complete reply line, from localAddress. */
async function firstReply(port, localAddress) {
  const r = await smtpExchange({ port, localAddress, commands: [], timeoutMs: 10000 });
  return { ms: r.times[0], code: r.replies[0]?.slice(0, 3) };
}

/** Runs the scenario; returns { zones, delayMs, baseline, cold, cached, burst, queries, non220, burstWallMs }. */
export async function runDnsbl({ root, out, burst = 1000, samples = 50, log = () => {}, noteCommand = () => {} }) {
  mkdirSync(out, { recursive: true });
  const dns = await spawnSlowDns();
  const port = await freePort();
  const access = join(out, 'dnsbl-access.txt');
  writeFileSync(access, '# bench: the baseline client skips the lists\npermit 127.0.0.2/32\n');
  const cfg = {
    listenAddress: '127.0.0.1', listenPort: port, storeData: false, bannerDelay: 0, errorDelay: 0, doEarlyTalk: false,
    maxSessions: 1000000, maxSessionsPerIp: 1000000, maxMessages: 1000000, logLevel: 'warn', shutdownGrace: 1000,
    accessList: access, rblProviders: ZONES,
    dns: { servers: [dns.addr], timeout: 2000, retries: 1, healthCheckInterval: 0, skipPrivate: false, action: 'ignore' },
  };
  const file = join(out, 'fakemx-dnsbl.json');
  writeFileSync(file, `${JSON.stringify(cfg, null, 2)}\n`);
  noteCommand(`node dist/cli.js run --config bench/out/fakemx-dnsbl.json   # started by dnsbl-latency.mjs: 5 rblProviders on its DNS server`);
  const proc = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, 'dist/fakemx.cjs', 'run', '--config', file], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  for (const s of [proc.stdout, proc.stderr]) s.on('data', (d) => tail.push(...d.toString().split('\n').filter(Boolean).slice(-5)));
  const exited = new Promise((r) => proc.on('exit', r));
  try {
    await waitGreeting({ port, localAddress: '127.0.0.2', timeoutMs: 30000 }).catch((e) => {
      throw new Error(`${e.message}\n${tail.slice(-10).join('\n')}`);
    });
    let non220 = 0;
    const take = async (addr) => {
      const r = await firstReply(port, addr);
      if (r.code !== '220') non220++;
      return r.ms;
    };
    const baseline = [];
    for (let i = 0; i < samples; i++) baseline.push(await take('127.0.0.2'));
    const addrs = Array.from({ length: samples }, (_, i) => `127.0.2.${i + 1}`);
    const cold = [];
    for (const a of addrs) cold.push(await take(a));
    const cached = [];
    for (const a of addrs) cached.push(await take(a));
    log(`dnsbl: cold p50 ${pct(cold, 50).toFixed(1)} ms, cached p50 ${pct(cached, 50).toFixed(2)} ms; burst of ${burst}`);
    const burstAddrs = Array.from({ length: burst }, (_, i) => `127.0.${10 + Math.floor(i / 250)}.${(i % 250) + 1}`);
    const overflows0 = listenOverflows();
    const rcvbuf0 = udpRcvbufErrors();
    const t0 = performance.now();
    const burstTimes = [];
    const burstErrors = [];
    await Promise.all(
      burstAddrs.map((a) =>
        take(a).then(
          (ms) => burstTimes.push(ms),
          (e) => burstErrors.push(e.message),
        ),
      ),
    );
    const burstWallMs = performance.now() - t0;
    const burstListenOverflows = listenOverflows() - overflows0;
    const burstUdpRcvbufErrors = udpRcvbufErrors() - rcvbuf0;
    if (burstErrors.length) throw new Error(`burst: ${burstErrors.length} clients failed: ${burstErrors.slice(0, 3).join(' | ')}`);
    const engine = await engineOnly(root, dns.addr, samples, burst).catch((e) => ({ error: e.message }));
    await dns.close();
    return {
      zones: ZONES.length, delayMs: DELAY_MS, baseline: stats(baseline), cold: stats(cold), cached: stats(cached), burst: stats(burstTimes),
      queries: dns.queries(), non220, burstWallMs, burstListenOverflows, burstUdpRcvbufErrors,
      engine,
    };
  } finally {
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    await dns.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv.includes('--dns-server')) {
  const require = createRequire(import.meta.url);
  const dns = await startSlowDns(require(join(dirname(fileURLToPath(import.meta.url)), '../node_modules/dns-packet')), DELAY_MS);
  console.log(JSON.stringify({ addr: dns.addr }));
  process.on('SIGTERM', () => {
    process.stdout.write(`${JSON.stringify({ queries: dns.queries() })}\n`, () => process.exit(0));
  });
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bench = dirname(fileURLToPath(import.meta.url));
  const arg = (n, d) => {
    const i = process.argv.indexOf(`--${n}`);
    return i >= 0 ? Number(process.argv[i + 1]) : d;
  };
  const r = await runDnsbl({ root: join(bench, '..'), out: join(bench, 'out'), burst: arg('burst', 1000), samples: arg('samples', 50), log: (m) => console.error(m) });
  console.log(JSON.stringify(r, null, 2));
  process.exit(0);
}
