// Two fakemx daemons (real processes, the package bin) sharing one real redis-server on a
// loopback port: greylisted on A, the retry on B after passtime passes; a trap hit on A blocks
// the client on B; maxSessionsPerIp holds across A and B; redis-server killed and restarted
// during a load of real clients: no accepted message missing from the corpora, no session
// longer than its work plus the deadline, /healthz degraded then ok. And the local backend
// keeps greylist and cache entries across a restart and a SIGKILL.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { openStateStore } from '../../src/state/store.js';
import { keys } from '../../src/state/types.js';
import { greeted, RawClient } from '../helpers/client.js';
import { startListening, type Daemon } from '../helpers/daemon.js';
import { freePort, RedisServer } from './redis-server.js';

let redis: RedisServer;
const daemons: Daemon[] = [];
// Redis keeps an append-only file here, as a production Redis would persist: a SIGKILLed and
// restarted Redis comes back with its data.
const work = mkdtempSync(join(tmpdir(), 'fakemx-fleet-'));
beforeAll(async () => {
  redis = await RedisServer.start(undefined, work);
});
afterAll(async () => {
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
});
afterEach(() => {
  for (const d of daemons.splice(0)) d.kill();
});

let n = 0;
async function node(cfg: Record<string, unknown>, prefix: string): Promise<Daemon & { http: number }> {
  const http = await freePort();
  const d = await startListening({
    bannerDelay: 0, errorDelay: 0, maxSessions: 500, maxSessionsPerIp: 500, logLevel: 'info',
    http: { address: '127.0.0.1', port: http },
    state: { backend: 'redis', timeout: 50, redis: { url: redis.url, prefix } },
    ...cfg,
  });
  daemons.push(d);
  return Object.assign(d, { http: d.httpPort ?? http });
}

async function send(port: number, rcpt: string, body = 'hello'): Promise<{ rcpt: number; end?: number; ms: number }> {
  const t0 = Date.now();
  const c = await greeted(port);
  await c.cmd('MAIL FROM:<sender@example.com>');
  const r = await c.cmd(`RCPT TO:<${rcpt}>`);
  if (r.code !== 250) {
    await c.cmd('QUIT').catch(() => undefined);
    c.close();
    return { rcpt: r.code, ms: Date.now() - t0 };
  }
  await c.cmd('DATA');
  const e = await c.cmd(`Subject: t\r\n\r\n${body}\r\n.`);
  await c.cmd('QUIT').catch(() => undefined);
  c.close();
  return { rcpt: r.code, end: e.code, ms: Date.now() - t0 };
}

function healthz(port: number): Promise<{ status: string; reason?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d)).on('end', () => resolve(JSON.parse(b) as { status: string }));
    });
    req.on('error', reject);
    req.end();
  });
}

function stored(d: Daemon): number {
  const root = join(d.dir, 'corpus');
  if (!existsSync(root)) return 0;
  let count = 0;
  for (const day of readdirSync(root)) count += readdirSync(join(root, day)).filter((f) => f.endsWith('.eml') && !f.startsWith('.tmp-')).length;
  return count;
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 10_000) => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
};

describe('two nodes sharing one Redis', () => {
  it('greylisted on A; the retry on B after passtime passes', async () => {
    const p = `fleet${++n}:`;
    const A = await node({ greylist: { enabled: true, passtime: 1500 } }, p);
    const B = await node({ greylist: { enabled: true, passtime: 1500 } }, p);
    expect((await send(A.port, 'alice@example.org')).rcpt).toBe(451);
    expect((await send(B.port, 'alice@example.org')).rcpt).toBe(451);
    await new Promise((r) => setTimeout(r, 1600));
    expect(await send(B.port, 'alice@example.org')).toMatchObject({ rcpt: 250, end: 250 });
    // The network is allowlisted on A too.
    expect(await send(A.port, 'bob@example.org')).toMatchObject({ rcpt: 250, end: 250 });
    await B.waitFor('GREYLIST_PASS', 2000, (l) => l.via === 'retry');
  });

  it('a trap hit on A blocks the client on B', async () => {
    const p = `fleet${++n}:`;
    const traps = join(work, `traps-${n}`);
    writeFileSync(traps, 'trap@example.org\n');
    const A = await node({ greylist: { enabled: true, passtime: 0, trapAddresses: traps } }, p);
    const B = await node({ greylist: { enabled: true, passtime: 0, trapAddresses: traps } }, p);
    expect((await send(A.port, 'trap@example.org')).rcpt).toBe(451);
    expect((await send(B.port, 'alice@example.org')).rcpt).toBe(451);
    await B.waitFor('TRAP', 2000, (l) => l.known === true);
  });

  it('maxSessionsPerIp holds across A and B', async () => {
    const p = `fleet${++n}:`;
    const A = await node({ maxSessionsPerIp: 2 }, p);
    const B = await node({ maxSessionsPerIp: 2 }, p);
    const a1 = await greeted(A.port);
    const b1 = await greeted(B.port);
    const a2 = await RawClient.connect(A.port);
    const r = await a2.reply(3000);
    expect([r.code, r.enhanced]).toEqual([421, '4.7.0']);
    await b1.cmd('QUIT');
    b1.close();
    await new Promise((r2) => setTimeout(r2, 100));
    const b2 = await greeted(B.port);
    await a1.cmd('QUIT');
    await b2.cmd('QUIT');
    a1.close();
    b2.close();
    await A.waitFor('LIMIT', 2000, (l) => l.fleet === true);
  });

  it('redis-server killed and restarted under load: nothing accepted is lost, no session stuck, /healthz degraded then ok', async () => {
    const p = `fleet${++n}:`;
    // The client network is allowlisted, so every message is accepted whether Redis answers or not.
    const seed = openStateStore({ backend: 'redis', path: '', timeout: 1000, onError: 'open', leaseTtl: 60_000, leaseBlock: 16, redis: { url: redis.url, prefix: p, connectTimeout: 1000, tlsCa: '', password: '', cacheEntries: 1000 } });
    await seed.set(keys.white('127.0.0.0/24'), { net: '127.0.0.0/24', via: 'test' }, 3_600_000).catch(async () => {
      await new Promise((r) => setTimeout(r, 200));
      await seed.set(keys.white('127.0.0.0/24'), { net: '127.0.0.0/24', via: 'test' }, 3_600_000);
    });
    await seed.close();
    const cfg = { greylist: { enabled: true }, cache: { enabled: true } };
    const A = await node(cfg, p);
    const B = await node(cfg, p);
    expect((await healthz(A.http)).status).toBe('ok');
    let accepted = 0;
    let deferred = 0;
    let worst = 0;
    let stop = false;
    const codes: string[] = [];
    const worker = async (i: number) => {
      for (let k = 0; !stop; k++) {
        const r = await send(i % 2 ? A.port : B.port, `user${i}@example.org`, `worker ${i} message ${k}`);
        worst = Math.max(worst, r.ms);
        if (r.end === 250) accepted++;
        else {
          deferred++;
          codes.push(`${r.rcpt}/${r.end ?? '-'}`);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 16 }, (_, i) => worker(i)));
    await new Promise((r) => setTimeout(r, 700));
    await redis.kill();
    expect(await until(async () => (await healthz(A.http)).status === 'degraded', 5000)).toBe(true);
    const down = await healthz(B.http);
    expect(down.status).toBe('degraded');
    expect(down.reason).toMatch(/state store \(redis\) unavailable/);
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    expect(await until(async () => (await healthz(A.http)).status === 'ok' && (await healthz(B.http)).status === 'ok', 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await load;
    expect(accepted).toBeGreaterThan(50);
    expect(codes.slice(0, 5)).toEqual([]);
    expect(deferred).toBe(0);
    expect(stored(A) + stored(B)).toBe(accepted);
    // A session is a handful of round trips on loopback; Redis slow or gone adds at most its deadline per call.
    expect(worst).toBeLessThan(2000);
    // One line per outage transition per node, not one per session: down when the connection
    // dropped, up when it came back (under a loaded machine a burst of missed deadlines may add a
    // short outage of its own, still one pair of lines, never one per session).
    for (const d of [A, B]) {
      const t = d.lines.filter((l) => String(l.tag).startsWith('STATE_')).map((l) => String(l.tag));
      expect(t.length % 2).toBe(0);
      expect(t.length).toBeLessThanOrEqual(6);
      t.forEach((line, i) => expect(line.startsWith(i % 2 ? 'STATE_UP' : 'STATE_DOWN')).toBe(true));
    }
  });
});

describe('the local backend across a restart and a SIGKILL', () => {
  it('keeps greylist triplets and cache passes', async () => {
    const http = await freePort();
    const base = { bannerDelay: 400, errorDelay: 0, http: { address: '127.0.0.1', port: http }, greylist: { enabled: true, passtime: 1000 }, cache: { enabled: true } };
    const first = await startListening(base);
    daemons.push(first);
    const state = join(first.dir, 'state');
    const cfg = { ...base, state: { path: state } };
    first.kill();
    await first.exited();
    const A = await startListening({ ...cfg, listenPort: 0 }, { configFile: undefined });
    daemons.push(A);
    // First attempt: greylisted; the banner delay is served (and passed) once.
    expect((await send(A.port, 'alice@example.org')).rcpt).toBe(451);
    await new Promise((r) => setTimeout(r, 300));
    A.kill();
    expect(await A.exited()).toBeNull();
    const B = await startListening(cfg);
    daemons.push(B);
    await new Promise((r) => setTimeout(r, 800));
    // After SIGKILL: the triplet's first attempt and the greet pass were kept.
    const t0 = Date.now();
    const c = await RawClient.connect(B.port);
    expect((await c.reply(2000)).code).toBe(220);
    expect(Date.now() - t0).toBeLessThan(300);
    c.close();
    expect(await send(B.port, 'alice@example.org')).toMatchObject({ rcpt: 250, end: 250 });
    // A clean restart keeps the allowlisting.
    B.child.kill('SIGTERM');
    expect(await B.exited()).toBe(0);
    const C = await startListening(cfg);
    daemons.push(C);
    expect(await send(C.port, 'bob@example.org')).toMatchObject({ rcpt: 250, end: 250 });
  });
});
