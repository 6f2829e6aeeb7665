// The Redis backend against a real redis-server on a loopback port: the same entry and lease
// semantics as the local one, two nodes sharing leases, and the failure semantics: Redis
// killed, paused (slow) and restarted: every call answers within the deadline, one log line
// per outage transition, reconnect with backoff, health degraded then ok.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listState } from '../../src/console/state-view.js';
import { RedisBackend } from '../../src/state/redis.js';
import { SPARE_IDLE, StateStore, openStateStore } from '../../src/state/store.js';
import { StateError } from '../../src/state/types.js';
import { RedisServer } from './redis-server.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis?.stop();
});

let n = 0;
const cfg = (over: Record<string, unknown> = {}) => ({
  backend: 'redis' as const,
  path: '',
  timeout: 100,
  onError: 'open' as const,
  leaseTtl: 2000,
  leaseBlock: 1,
  redis: { url: redis.url, prefix: `t${++n}:`, connectTimeout: 500, tlsCa: '', password: '', cacheEntries: 1000 },
  ...over,
});

const backend = (s: StateStore) => s.backend as RedisBackend;
const cli = (...args: string[]) => execFileSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' }).trim();

function logs() {
  const tags: string[] = [];
  const mk = () => (obj: Record<string, unknown>) => tags.push(String(obj.tag));
  return { tags, logger: { warn: mk(), info: mk(), error: mk(), debug: mk(), isLevelEnabled: () => true } as never };
}

async function connected(s: StateStore) {
  await (s.backend as RedisBackend).whenConnected();
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 5000) => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
};

describe('redis backend', () => {
  it('set, get, add-once, delete, scan, with server-side expiry', async () => {
    const s = openStateStore(cfg());
    await connected(s);
    await s.set('white:192.0.2.0/24', { n: 1 }, 60_000);
    await s.set('trap:192.0.2.1', { rcpt: 'x@y' }, 150);
    expect((await s.get('white:192.0.2.0/24'))?.value).toEqual({ n: 1 });
    const a = await s.add('grey:192.0.2.0/24|a@b|c@d', { first: 1 }, 60_000);
    const b = await s.add('grey:192.0.2.0/24|a@b|c@d', { first: 2 }, 60_000);
    expect([a.created, b.created]).toEqual([true, false]);
    expect(b.entry.value).toEqual({ first: 1 });
    const scanned: string[] = [];
    for await (const e of s.scan('')) scanned.push(e.key);
    expect(scanned.sort()).toEqual(['grey:192.0.2.0/24|a@b|c@d', 'trap:192.0.2.1', 'white:192.0.2.0/24']);
    await new Promise((r) => setTimeout(r, 200));
    expect(await s.get('trap:192.0.2.1')).toBeNull();
    expect(await s.del('white:192.0.2.0/24')).toBe(true);
    expect(await s.get('white:192.0.2.0/24')).toBeNull();
    await s.close();
  });

  it('scanPage (the console State page): the SCAN cursor to the end, no repeats, leases and other prefixes left out, bounded steps', async () => {
    const s = openStateStore(cfg({ timeout: 5000 }));
    await connected(s);
    const made: string[] = [];
    for (let i = 0; i < 2500; i++) made.push(`pass:greet:10.0.${i >> 8}.${i & 255}`);
    for (let i = 0; i < made.length; i += 250) await Promise.all(made.slice(i, i + 250).map((k) => s.set(k, { at: 1 }, 60_000)));
    await s.set('trap:10.9.9.9', { rcpt: 'needle@trap.example' }, 60_000);
    expect(await s.acquireLease('lease:10.0.0.1', 's1', 5)).not.toBeNull();
    // Another deployment's keys under another prefix are not ours.
    const other = openStateStore(cfg());
    await connected(other);
    await other.set('pass:greet:10.7.7.7', { at: 1 }, 60_000);
    const seen: string[] = [];
    let cursor: string | null = null;
    let steps = 0;
    do {
      const p = await s.scanPage('', cursor, { limit: 200, budget: 500 });
      // Stops at a batch boundary: never more than the budget looked at, the batch's rest beyond `limit` at most.
      expect(p.examined).toBeLessThanOrEqual(500 + 1000);
      seen.push(...p.entries.map((e) => e.key));
      cursor = p.cursor;
    } while (cursor !== null && ++steps < 200);
    expect(steps).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual([...made, 'trap:10.9.9.9'].sort());
    const needle = await s.scanPage('trap:', null, { limit: 50, budget: 5000, keep: (e) => JSON.stringify(e.value).includes('needle') });
    expect(needle.entries.map((e) => e.key)).toEqual(['trap:10.9.9.9']);
    // A prefix that matches almost nothing still stops at the budget: SCAN's COUNT is what it
    // walked, so one page never walks the whole keyspace looking for matches.
    const rare = await s.scanPage('fail:', null, { limit: 50, budget: 500 });
    expect(rare.entries).toEqual([]);
    expect(rare.cursor).not.toBeNull();
    expect(rare.examined).toBeLessThanOrEqual(500 + 1000);
    await expect(s.scanPage('', 'not-a-cursor', { limit: 1, budget: 1 })).rejects.toThrow(/bad scan cursor/);
    // The console's API over it: an address search, and a bad cursor is a 400, not a 503.
    const byIp = await listState(s, { q: '10.0.3.7' });
    expect(byIp.status).toBe(200);
    expect((byIp.body.items as { key: string }[]).map((i) => i.key)).toEqual(['pass:greet:10.0.3.7']);
    expect((await listState(s, { cursor: 'x' })).status).toBe(400);
    // A console user's bad cursors are not state errors: the store is not marked down.
    for (let i = 0; i < 3; i++) expect((await listState(s, { cursor: 'y' })).status).toBe(400);
    expect(s.health()).toEqual({ ok: true });
    expect(s.errors).toBe(0);
    await other.close();
    await s.close();
  });

  it('two nodes share leases; a node that dies leaves nothing behind after leaseTtl', async () => {
    const c = cfg({ leaseTtl: 300 });
    const a = openStateStore(c);
    const b = openStateStore(c);
    await Promise.all([connected(a), connected(b)]);
    expect(await a.acquireLease('lease:192.0.2.5', 's1', 2)).not.toBeNull();
    expect(await b.acquireLease('lease:192.0.2.5', 's1', 2)).not.toBeNull();
    expect(await b.acquireLease('lease:192.0.2.5', 's2', 2)).toBeNull();
    // a's lease outlives its TTL while a renews it.
    await new Promise((r) => setTimeout(r, 700));
    expect(await b.leaseCount('lease:192.0.2.5')).toBe(2);
    // a "dies": its connection goes without releasing, its renew timer stops.
    (a as unknown as { held: Map<string, unknown> }).held.clear();
    await (a.backend as RedisBackend).close();
    expect(await until(async () => (await b.leaseCount('lease:192.0.2.5')) === 1, 2000)).toBe(true);
    expect(await b.acquireLease('lease:192.0.2.5', 's3', 2)).not.toBeNull();
    await b.close();
  });

  it('a lease asked while redis-server is stopped (SIGSTOP) past state.timeout leaves no lease once it runs again', async () => {
    const s = openStateStore(cfg({ timeout: 100, leaseTtl: 60_000 }));
    await connected(s);
    // The script cached first, so the stalled acquire is the very command queued (no NOSCRIPT resend).
    s.releaseLease((await s.acquireLease('lease:192.0.2.78', 'warm', 1))!);
    redis.pause();
    let e: unknown;
    try {
      e = await s.acquireLease('lease:192.0.2.77', 's1', 2).catch((x: unknown) => x);
    } finally {
      redis.resume();
    }
    expect(e).toBeInstanceOf(Error);
    // The acquire queued during the stop runs now; the release sent once it has run removes it.
    expect(await until(async () => (await s.leaseCount('lease:192.0.2.77').catch(() => -1)) === 0, 3000)).toBe(true);
    expect(await s.acquireLease('lease:192.0.2.77', 's2', 1)).not.toBeNull();
    await s.close();
  });

  it('a released lease frees its slot at once, and the set goes with its last member', async () => {
    const c = cfg();
    const s = openStateStore(c);
    await connected(s);
    const exists = () => execFileSync('redis-cli', ['-p', String(redis.port), 'EXISTS', `${c.redis.prefix}lease:192.0.2.9`], { encoding: 'utf8' }).trim();
    const l1 = await s.acquireLease('lease:192.0.2.9', 's1', 2);
    const l2 = await s.acquireLease('lease:192.0.2.9', 's2', 2);
    expect(await s.acquireLease('lease:192.0.2.9', 's3', 2)).toBeNull();
    s.releaseLease(l1!);
    expect(await until(async () => (await s.leaseCount('lease:192.0.2.9')) === 1, 2000)).toBe(true);
    const l3 = await s.acquireLease('lease:192.0.2.9', 's3', 2);
    expect(l3).not.toBeNull();
    expect(exists()).toBe('1');
    s.releaseLease(l2!);
    s.releaseLease(l3!);
    expect(await until(() => exists() === '0', 2000)).toBe(true);
    await s.close();
  });

  it('Redis killed and restarted: calls fail fast, one line per transition, reconnect, healthy again', async () => {
    const { tags, logger } = logs();
    const s = openStateStore(cfg({ timeout: 80 }), { logger });
    await connected(s);
    await s.set('white:x', {}, 60_000);
    await redis.kill();
    let worst = 0;
    let failed = 0;
    for (let i = 0; i < 30; i++) {
      const t0 = Date.now();
      const r = await s.get('white:x').catch((e: unknown) => e);
      worst = Math.max(worst, Date.now() - t0);
      if (r instanceof StateError) failed++;
      await new Promise((r2) => setTimeout(r2, 10));
    }
    expect(failed).toBeGreaterThanOrEqual(29);
    expect(worst).toBeLessThan(80 + 50);
    expect(s.health().ok).toBe(false);
    await redis.start();
    expect(await until(async () => (await s.get('white:x').then(() => true, () => false)))).toBe(true);
    expect(s.health()).toEqual({ ok: true });
    expect(tags).toEqual(['STATE_DOWN', 'STATE_UP']);
    await s.close();
  });

  it('Redis paused (slow): each call gives up at the deadline', async () => {
    const s = openStateStore(cfg({ timeout: 60 }));
    await connected(s);
    redis.pause();
    try {
      const t0 = Date.now();
      const results = await Promise.all(Array.from({ length: 50 }, () => s.get('white:y').catch((e: unknown) => e)));
      const dt = Date.now() - t0;
      expect(results.every((r) => r instanceof StateError && r.reason === 'timeout')).toBe(true);
      expect(dt).toBeLessThan(60 + 100);
    } finally {
      redis.resume();
    }
    expect(await until(async () => (await s.get('white:y').then(() => true, () => false)))).toBe(true);
    await s.close();
  });

  it('a Redis that is down at start is an outage, not a start failure', async () => {
    const { tags, logger } = logs();
    const s = openStateStore({ ...cfg(), redis: { ...cfg().redis, url: 'redis://127.0.0.1:1' } }, { logger });
    const t0 = Date.now();
    await expect(s.get('x')).rejects.toBeInstanceOf(StateError);
    expect(Date.now() - t0).toBeLessThan(200);
    // The refused connection is the outage (the client reports it), whatever the calls did.
    expect(await until(() => tags.length > 0, 2000)).toBe(true);
    expect(tags).toEqual(['STATE_DOWN']);
    await s.close();
  });
});

describe('tracked read cache (state.redis.cacheEntries, CLIENT TRACKING)', () => {
  const tracked = () => {
    const c = cfg();
    return { ...c, redis: { ...c.redis, cacheEntries: 1000 } };
  };

  it('a client seen again is read from memory; a change on another node, a delete and an expiry are seen', async () => {
    const c = tracked();
    const a = openStateStore(c);
    const b = openStateStore(c);
    await Promise.all([connected(a), connected(b)]);
    // A missing key is cached too (Redis tracks it by name), so the next read costs no round trip.
    expect(await a.get('pass:greet:192.0.2.40')).toBeNull();
    const misses = backend(a).cacheMisses;
    expect(await a.get('pass:greet:192.0.2.40')).toBeNull();
    expect(backend(a).cacheMisses).toBe(misses);
    expect(backend(a).cacheHits).toBeGreaterThanOrEqual(1);
    // Another node creates it: a's copy is invalidated by Redis's push, not by a timer.
    await b.set('pass:greet:192.0.2.40', { at: 7 }, 60_000);
    expect(await until(async () => (await a.get('pass:greet:192.0.2.40'))?.value.at === 7, 2000)).toBe(true);
    // Changed again, then written from outside fakemx altogether (redis-cli).
    await b.set('pass:greet:192.0.2.40', { at: 8 }, 60_000);
    expect(await until(async () => (await a.get('pass:greet:192.0.2.40'))?.value.at === 8, 2000)).toBe(true);
    cli('SET', `${c.redis.prefix}pass:greet:192.0.2.40`, JSON.stringify({ v: { at: 9 }, e: Date.now() + 60_000 }));
    expect(await until(async () => (await a.get('pass:greet:192.0.2.40'))?.value.at === 9, 2000)).toBe(true);
    await b.del('pass:greet:192.0.2.40');
    expect(await until(async () => (await a.get('pass:greet:192.0.2.40')) === null, 2000)).toBe(true);
    // A read on the wire when this node writes the key: its (older) answer is not kept.
    const racing = a.get('white:192.0.2.1/24');
    await a.set('white:192.0.2.1/24', { n: 2 }, 60_000);
    expect(await racing).toBeNull();
    expect((await a.get('white:192.0.2.1/24'))?.value).toEqual({ n: 2 });
    // This node's own write is read back at once (no wait for the push).
    await a.set('white:192.0.2.0/24', { n: 1 }, 60_000);
    expect((await a.get('white:192.0.2.0/24'))?.value).toEqual({ n: 1 });
    // An entry past its expiry is gone even while cached.
    await b.set('trap:192.0.2.41', { rcpt: 'x@y' }, 150);
    expect(await a.get('trap:192.0.2.41')).not.toBeNull();
    await new Promise((r) => setTimeout(r, 200));
    expect(await a.get('trap:192.0.2.41')).toBeNull();
    await Promise.all([a.close(), b.close()]);
  });

  it('a lost connection empties the cache (invalidations sent meanwhile are lost with it)', async () => {
    const s = openStateStore(tracked());
    await connected(s);
    await s.getMany(['fail:192.0.2.50', 'trap:192.0.2.50']);
    expect(backend(s).cached).toBe(2);
    cli('CLIENT', 'KILL', 'TYPE', 'normal');
    expect(await until(() => backend(s).cached === 0, 2000)).toBe(true);
    expect(await until(async () => (await s.get('fail:192.0.2.50').then(() => true, () => false)), 2000)).toBe(true);
    await s.close();
  });

  it('with cacheEntries 0 (RESP2, no CLIENT TRACKING: for proxies) every read goes to Redis and sees every change', async () => {
    const c = cfg();
    const off = { ...c, redis: { ...c.redis, cacheEntries: 0 } };
    const a = openStateStore(off);
    const b = openStateStore(off);
    await Promise.all([connected(a), connected(b)]);
    expect(await a.get('fail:192.0.2.70')).toBeNull();
    await b.set('fail:192.0.2.70', { test: 'dnsbl' }, 60_000);
    expect((await a.get('fail:192.0.2.70'))?.value).toEqual({ test: 'dnsbl' });
    expect([backend(a).cached, backend(a).cacheHits]).toEqual([0, 0]);
    const l = await a.acquireLease('lease:192.0.2.70', 's1', 1);
    expect(l).not.toBeNull();
    expect(await b.acquireLease('lease:192.0.2.70', 's1', 1)).toBeNull();
    const scanned: string[] = [];
    for await (const e of a.scan('fail:')) scanned.push(e.key);
    expect(scanned).toEqual(['fail:192.0.2.70']);
    await Promise.all([a.close(), b.close()]);
  });

  it('holds at most cacheEntries keys', async () => {
    const c = tracked();
    const s = openStateStore({ ...c, redis: { ...c.redis, cacheEntries: 10 } });
    await connected(s);
    for (let i = 0; i < 40; i++) await s.get(`fail:192.0.2.${i}`);
    expect(backend(s).cached).toBe(10);
    await s.close();
  });
});

describe('lease blocks (state.leaseBlock)', () => {
  const blocks = (leaseBlock: number) => cfg({ leaseBlock, leaseTtl: 5000 });
  const count = (s: StateStore, ip: string) => s.leaseCount(`lease:${ip}`);

  it('far below the cap a block serves the next sessions without a round trip; spares go back after SPARE_IDLE', async () => {
    const s = openStateStore(blocks(16));
    await connected(s);
    const first = await s.acquireLease('lease:192.0.2.60', 's0', 1000);
    expect(first).not.toBeNull();
    expect(await count(s, '192.0.2.60')).toBe(16);
    expect(s.leasesSpare).toBe(15);
    const next = [];
    for (let i = 1; i < 16; i++) next.push(await s.acquireLease('lease:192.0.2.60', `s${i}`, 1000));
    expect(next.every((l) => l !== null)).toBe(true);
    expect(new Set([first, ...next].map((l) => l!.id)).size).toBe(16);
    // Still the one block in Redis: those fifteen cost no command.
    expect(await count(s, '192.0.2.60')).toBe(16);
    expect(s.leasesSpare).toBe(0);
    // The seventeenth takes a new block.
    const more = await s.acquireLease('lease:192.0.2.60', 's16', 1000);
    expect(more).not.toBeNull();
    expect(await count(s, '192.0.2.60')).toBe(32);
    // Sessions end: their slots wait as spares, then go back once unused for SPARE_IDLE. A
    // second release of the same slot is a no-op, not a slot handed out twice.
    expect(s.leasesSpare).toBe(15);
    const extra = await s.acquireLease('lease:192.0.2.60', 's17', 1000);
    expect(s.leasesSpare).toBe(14);
    s.releaseLease(first!);
    s.releaseLease(first!);
    expect(s.leasesSpare).toBe(15);
    for (const l of [...next, more, extra]) s.releaseLease(l!);
    expect(s.leasesSpare).toBe(16);
    expect(await until(async () => (await count(s, '192.0.2.60')) === 0, SPARE_IDLE * 4)).toBe(true);
    expect(s.leasesSpare).toBe(0);
    await s.close();
  });

  it('blocks taken at once for one address all go to its spares: none is lost, held and renewed for ever', async () => {
    const s = openStateStore(blocks(16));
    await connected(s);
    // A client opening two connections at once: both find no spare and each takes a block.
    const [x, y] = await Promise.all([s.acquireLease('lease:192.0.2.64', 's1', 1000), s.acquireLease('lease:192.0.2.64', 's2', 1000)]);
    expect(await count(s, '192.0.2.64')).toBe(32);
    expect(s.leasesSpare).toBe(30);
    s.releaseLease(x!);
    s.releaseLease(y!);
    expect(await until(async () => (await count(s, '192.0.2.64')) === 0, SPARE_IDLE * 4)).toBe(true);
    expect([s.leasesSpare, s.leasesHeld]).toEqual([0, 0]);
    await s.close();
  });

  it('block slots Redis no longer has (lost in a restart, or expired while the node was cut off) are neither handed out nor pooled again', async () => {
    const c = blocks(16);
    const s = openStateStore(c);
    await connected(s);
    const first = await s.acquireLease('lease:192.0.2.65', 's1', 1000);
    expect(s.leasesSpare).toBe(15);
    cli('DEL', `${c.redis.prefix}lease:192.0.2.65`);
    await s.renewAll();
    // Not one of the 15 phantoms: a new block, which Redis counts.
    expect(s.leasesSpare).toBe(0);
    const next = await s.acquireLease('lease:192.0.2.65', 's2', 1000);
    expect(next).not.toBeNull();
    expect(await count(s, '192.0.2.65')).toBe(16);
    expect(s.leasesSpare).toBe(15);
    // The lost slot in use is not a spare when its session ends.
    s.releaseLease(first!);
    expect(s.leasesSpare).toBe(15);
    await s.close();
  });

  it('an acquire answered while the store closes is given back, not held', async () => {
    for (const leaseBlock of [1, 16]) {
      const c = blocks(leaseBlock);
      const s = openStateStore(c);
      await connected(s);
      const asked = s.acquireLease('lease:192.0.2.64', 's1', 1000).then(
        () => 'held',
        (e: unknown) => (e instanceof StateError ? e.reason : 'other'),
      );
      await s.close();
      expect(await asked, `leaseBlock ${leaseBlock}`).toBe('closed');
      expect(s.leasesHeld).toBe(0);
      expect(await until(() => cli('EXISTS', `${c.redis.prefix}lease:192.0.2.64`) === '0', 2000)).toBe(true);
    }
  });

  it('a spare reserved under one cap never serves a listener with a lower cap', async () => {
    const s = openStateStore(blocks(16));
    await connected(s);
    // A listener with maxSessionsPerIp 1000 reserves a block; another with 2 sees 16 taken.
    expect(await s.acquireLease('lease:192.0.2.63', 's1', 1000)).not.toBeNull();
    expect(s.leasesSpare).toBe(15);
    expect(await s.acquireLease('lease:192.0.2.63', 's2', 2)).toBeNull();
    expect(s.leasesSpare).toBe(15);
    expect(await s.acquireLease('lease:192.0.2.63', 's3', 1000)).not.toBeNull();
    expect(s.leasesSpare).toBe(14);
    await s.close();
  });

  it('near the cap one slot at a time: the default cap of 4 is exact across two nodes', async () => {
    const c = blocks(16);
    const a = openStateStore(c);
    const b = openStateStore(c);
    await Promise.all([connected(a), connected(b)]);
    expect(await a.acquireLease('lease:192.0.2.61', 's1', 4)).not.toBeNull();
    expect(a.leasesSpare).toBe(0);
    const got = [];
    for (let i = 0; i < 4; i++) got.push(await b.acquireLease('lease:192.0.2.61', `s${i}`, 4));
    expect(got.map((l) => l !== null)).toEqual([true, true, true, false]);
    expect(await count(a, '192.0.2.61')).toBe(4);
    await Promise.all([a.close(), b.close()]);
    expect(await until(async () => cli('EXISTS', `${c.redis.prefix}lease:192.0.2.61`) === '0', 2000)).toBe(true);
  });

  it('a spare held by one node counts against another only until it idles out', async () => {
    const c = blocks(16);
    const a = openStateStore(c);
    const b = openStateStore(c);
    await Promise.all([connected(a), connected(b)]);
    // 8 free: a's block is 2 (a quarter of the free slots), one of them spare.
    const la = await a.acquireLease('lease:192.0.2.62', 's1', 8);
    expect(a.leasesSpare).toBe(1);
    const got = [];
    for (let i = 0; i < 7; i++) got.push(await b.acquireLease('lease:192.0.2.62', `s${i}`, 8));
    expect(got.filter((l) => l !== null)).toHaveLength(6);
    // 7 sessions open, 8 slots taken: b gets the last one once a's spare has gone back.
    expect(await until(async () => (await b.acquireLease('lease:192.0.2.62', 'late', 8)) !== null, SPARE_IDLE * 4)).toBe(true);
    expect(await count(b, '192.0.2.62')).toBe(8);
    a.releaseLease(la!);
    await Promise.all([a.close(), b.close()]);
  });
});
