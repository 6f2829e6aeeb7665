// The state store on a test clock: entry expiry, set-if-absent, leases, the local (LMDB)
// backend across reopen and other processes, and the failure semantics (deadline, one log
// line per outage transition, error count, health).
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../../src/state/local.js';
import { MemoryBackend } from '../../src/state/memory.js';
import { SPARE_IDLE, StateStore, memoryStateStore } from '../../src/state/store.js';
import { StateError, clientNetwork, decodeEntry, encodeEntry, keys, kindOf, type StateBackend } from '../../src/state/types.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fakemx-state-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

/** Fakes only the interval timers (the store's renew and spare timers) until the test ends. */
function fakeIntervals(): void {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  onTestFinished(() => void vi.useRealTimers());
}

/** A store on a memory backend and a test clock (leaseTtl 60 ms) that counts the backend's renewals. */
function renewingStore() {
  const clock = { t: 1_000_000 };
  const now = () => clock.t;
  const b = new MemoryBackend(now);
  let n = 0;
  const renew = b.renew.bind(b);
  b.renew = (leases, exp) => (n++, renew(leases, exp));
  return { clock, b, s: new StateStore(b, { timeout: 50, leaseTtl: 60, now }), renewals: () => n };
}

describe('keys and networks', () => {
  it('groups IPv4 by /24 and IPv6 by /64 by default, configurable', () => {
    expect(clientNetwork('192.0.2.77')).toBe('192.0.2.0/24');
    expect(clientNetwork('::ffff:192.0.2.77')).toBe('192.0.2.0/24');
    expect(clientNetwork('192.0.2.77', 32)).toBe('192.0.2.77/32');
    expect(clientNetwork('192.0.2.77', 16)).toBe('192.0.0.0/16');
    expect(clientNetwork('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:DB8::1', 24, 48)).toBe('2001:db8::/48');
    expect(clientNetwork('2001:db8:1:2:3:4:5:6', 24, 128)).toBe('2001:db8:1:2:3:4:5:6/128');
  });

  it('names each kind; the kind is read back from a key', () => {
    expect(keys.grey('192.0.2.0/24', 'A@Example.com', 'b@example.org')).toBe('grey:192.0.2.0/24|a@example.com|b@example.org');
    expect(keys.white('192.0.2.0/24')).toBe('white:192.0.2.0/24');
    expect(keys.trap('::ffff:192.0.2.1')).toBe('trap:192.0.2.1');
    expect(keys.pass('greet', '192.0.2.1')).toBe('pass:greet:192.0.2.1');
    expect(keys.fail('192.0.2.1')).toBe('fail:192.0.2.1');
    expect(kindOf('pass:dnsbl:192.0.2.1')).toBe('pass');
    expect(kindOf('other:x')).toBeNull();
  });

  it('an encoded entry decodes until it expires; garbage decodes to nothing', () => {
    const raw = encodeEntry({ a: 1 }, 1000);
    expect(decodeEntry('k', raw, 999)).toEqual({ key: 'k', value: { a: 1 }, expiresAt: 1000 });
    expect(decodeEntry('k', raw, 1000)).toBeNull();
    expect(decodeEntry('k', 'not json', 0)).toBeNull();
    expect(decodeEntry('k', null, 0)).toBeNull();
  });
});

function backendSuite(name: string, make: (now: () => number) => StateBackend) {
  describe(`${name} backend`, () => {
    it('keeps an entry until its expiry, then forgets it', async () => {
      const c = clock();
      const b = make(c.now);
      await b.set('white:192.0.2.0/24', { n: 1 }, c.now() + 1000);
      expect((await b.getMany(['white:192.0.2.0/24', 'nope']))[0]?.value).toEqual({ n: 1 });
      c.advance(999);
      expect((await b.getMany(['white:192.0.2.0/24']))[0]).not.toBeNull();
      c.advance(1);
      expect((await b.getMany(['white:192.0.2.0/24']))[0]).toBeNull();
      await b.close();
    });

    it('add() stores once: the second caller gets the first entry', async () => {
      const c = clock();
      const b = make(c.now);
      const a1 = await b.add('grey:x', { first: 1 }, c.now() + 5000);
      const a2 = await b.add('grey:x', { first: 2 }, c.now() + 5000);
      expect(a1.created).toBe(true);
      expect(a2.created).toBe(false);
      expect(a2.entry.value).toEqual({ first: 1 });
      c.advance(5000);
      expect((await b.add('grey:x', { first: 3 }, c.now() + 5000)).created).toBe(true);
      await b.close();
    });

    it('deletes, and scans by prefix (live entries only)', async () => {
      const c = clock();
      const b = make(c.now);
      await b.set('trap:192.0.2.1', { rcpt: 'a@x' }, c.now() + 100);
      await b.set('trap:192.0.2.2', { rcpt: 'b@x' }, c.now() + 10_000);
      await b.set('white:192.0.2.0/24', {}, c.now() + 10_000);
      c.advance(200);
      const found: string[] = [];
      for await (const e of b.scan('trap:')) found.push(e.key);
      expect(found).toEqual(['trap:192.0.2.2']);
      expect(await b.del('trap:192.0.2.2')).toBe(true);
      expect(await b.del('trap:192.0.2.2')).toBe(false);
      expect((await b.getMany(['trap:192.0.2.2']))[0]).toBeNull();
      await b.close();
    });

    it('leases: at most max live, an expired one frees its slot, release gives one back', async () => {
      const c = clock();
      const b = make(c.now);
      const L = (id: string) => ({ key: 'lease:192.0.2.1', id });
      expect(await b.acquire(L('a'), 2, c.now() + 1000, c.now())).toBe(true);
      expect(await b.acquire(L('b'), 2, c.now() + 1000, c.now())).toBe(true);
      expect(await b.acquire(L('c'), 2, c.now() + 1000, c.now())).toBe(false);
      expect(await b.leaseCount('lease:192.0.2.1', c.now())).toBe(2);
      await b.release(L('a'));
      expect(await b.acquire(L('c'), 2, c.now() + 1000, c.now())).toBe(true);
      c.advance(500);
      await b.renew([L('c')], c.now() + 1000);
      c.advance(600);
      // b expired (a node that died), c was renewed.
      expect(await b.leaseCount('lease:192.0.2.1', c.now())).toBe(1);
      expect(await b.acquire(L('d'), 2, c.now() + 1000, c.now())).toBe(true);
      expect(await b.acquire(L('e'), 2, c.now() + 1000, c.now())).toBe(false);
      await b.close();
    });

    it('sweep removes what has expired', async () => {
      const c = clock();
      const b = make(c.now);
      await b.set('pass:greet:192.0.2.1', {}, c.now() + 100);
      await b.set('pass:greet:192.0.2.2', {}, c.now() + 100_000);
      c.advance(200);
      await b.sweep(c.now());
      const left: string[] = [];
      for await (const e of b.scan('')) left.push(e.key);
      expect(left).toEqual(['pass:greet:192.0.2.2']);
      await b.close();
    });
  });
}

backendSuite('memory', (now) => new MemoryBackend(now));
backendSuite('local', (now) => new LocalBackend({ path: tmp(), now }));

describe('local backend on disk', () => {
  it('entries survive a reopen, pending writes included once closed', async () => {
    const dir = tmp();
    const a = new LocalBackend({ path: dir });
    await a.set('white:192.0.2.0/24', { n: 3 }, Date.now() + 60_000);
    await a.close();
    const b = new LocalBackend({ path: dir });
    expect((await b.getMany(['white:192.0.2.0/24']))[0]?.value).toEqual({ n: 3 });
    await b.close();
  });

  it('a store it makes is 0640 (directory 0750) whatever the umask; a mode given to an existing one is kept', async () => {
    const dir = join(tmp(), 'state');
    const old = process.umask(0o022);
    try {
      const a = new LocalBackend({ path: dir });
      await a.close();
      expect(statSync(dir).mode & 0o777).toBe(0o750);
      expect(statSync(join(dir, 'state.mdb')).mode & 0o777).toBe(0o640);
      expect(statSync(join(dir, 'state.mdb-lock')).mode & 0o777).toBe(0o640);
      chmodSync(join(dir, 'state.mdb'), 0o660);
      const b = new LocalBackend({ path: dir });
      await b.close();
      expect(statSync(join(dir, 'state.mdb')).mode & 0o777).toBe(0o660);
    } finally {
      process.umask(old);
    }
  });

  it('another process sees the entries (the CLI while the daemon runs), and its writes are seen', async () => {
    const dir = tmp();
    const a = new LocalBackend({ path: dir });
    await a.set('trap:192.0.2.9', { rcpt: 'trap@example.com' }, Date.now() + 60_000);
    await new Promise((r) => setTimeout(r, 50));
    const script = `
      import { open } from 'lmdb';
      const db = open({ path: ${JSON.stringify(join(dir, 'state.mdb'))}, encoding: 'string', compression: false });
      const got = db.get('trap:192.0.2.9');
      await db.put('white:198.51.100.0/24', JSON.stringify({ v: { by: 'cli' }, e: Date.now() + 60000 }));
      await db.close();
      process.stdout.write(got ?? 'none');`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: process.cwd(), encoding: 'utf8' });
    expect((JSON.parse(out) as { v: unknown }).v).toEqual({ rcpt: 'trap@example.com' });
    expect((await a.getMany(['white:198.51.100.0/24']))[0]?.value).toEqual({ by: 'cli' });
    await a.close();
  });

  it('a write the disk refuses keeps the store going in memory, said once', async () => {
    const dir = tmp();
    const notes: string[] = [];
    const b = new LocalBackend({ path: dir, onDegraded: (r) => notes.push(r) });
    // A full disk, as lmdb reports it: the write's promise rejects.
    const db = (b as unknown as { db: { put: () => Promise<boolean> } }).db;
    db.put = () => Promise.reject(Object.assign(new Error('No space left on device'), { code: 'ENOSPC' }));
    await b.set('grey:a', { first: 1 }, Date.now() + 60_000);
    await new Promise((r) => setTimeout(r, 10));
    await b.set('grey:b', { first: 2 }, Date.now() + 60_000);
    expect((await b.getMany(['grey:a', 'grey:b'])).map((e) => e?.value)).toEqual([{ first: 1 }, { first: 2 }]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/ENOSPC/);
    expect(b.note).toMatch(/in memory/);
    await b.close();
  });
});

/** A backend whose calls hang or fail on demand. */
class FlakyBackend extends MemoryBackend {
  mode: 'ok' | 'hang' | 'fail' = 'ok';
  override async getMany(keys: readonly string[]) {
    if (this.mode === 'hang') return new Promise<never>(() => {});
    if (this.mode === 'fail') throw new Error('ECONNREFUSED');
    return super.getMany(keys);
  }
}

function logs() {
  const lines: { level: string; obj: Record<string, unknown> }[] = [];
  const mk = (level: string) => (obj: Record<string, unknown>) => lines.push({ level, obj });
  return { lines, logger: { warn: mk('warn'), info: mk('info'), error: mk('error'), debug: mk('debug'), isLevelEnabled: () => true } as never };
}

/** A backend that fails, hangs or answers as told, taken for Redis (outage lines are logged for it), and its store. */
function flakyRedis(opts: { timeout: number; onError?: (op: string, reason: string) => void }) {
  const b = new FlakyBackend();
  Object.defineProperty(b, 'kind', { value: 'redis' });
  const { lines, logger } = logs();
  const s = new StateStore(b, { timeout: opts.timeout, logger, ...(opts.onError ? { onError: opts.onError } : {}) });
  return { b, lines, s };
}

describe('failure semantics', () => {
  it('a call past the deadline rejects with StateError at the deadline, not later', async () => {
    const b = new FlakyBackend();
    Object.defineProperty(b, 'kind', { value: 'redis' });
    const errs: string[] = [];
    const s = new StateStore(b, { timeout: 40, onError: (op, r) => errs.push(`${op}:${r}`) });
    b.mode = 'hang';
    const t0 = Date.now();
    const e = await s.get('x').catch((x: unknown) => x);
    const dt = Date.now() - t0;
    expect(e).toBeInstanceOf(StateError);
    expect((e as StateError).reason).toBe('timeout');
    expect(dt).toBeGreaterThanOrEqual(35);
    expect(dt).toBeLessThan(200);
    expect(errs).toEqual(['get:timeout']);
    await s.close();
  });

  it('one log line when an outage starts and one when it ends, however many calls fail', async () => {
    const { b, lines, s } = flakyRedis({ timeout: 40 });
    b.mode = 'fail';
    for (let i = 0; i < 20; i++) await s.get('x').catch(() => undefined);
    expect(s.errors).toBe(20);
    expect(s.health().ok).toBe(false);
    expect(s.health().note).toMatch(/ECONNREFUSED/);
    b.mode = 'ok';
    for (let i = 0; i < 5; i++) await s.get('x');
    expect(s.health()).toEqual({ ok: true });
    expect(lines.map((l) => l.obj.tag)).toEqual(['STATE_DOWN', 'STATE_UP']);
    await s.close();
  });

  it('a lone failure among successes is counted but is no outage; three in a row are', async () => {
    const errs: string[] = [];
    const { b, lines, s } = flakyRedis({ timeout: 40, onError: (op, r) => errs.push(`${op}:${r}`) });
    for (let i = 0; i < 5; i++) {
      b.mode = 'fail';
      await s.get('x').catch(() => undefined);
      await s.get('x').catch(() => undefined);
      b.mode = 'ok';
      await s.get('x');
    }
    expect(errs).toHaveLength(10);
    expect(lines).toEqual([]);
    expect(s.health()).toEqual({ ok: true });
    b.mode = 'fail';
    for (let i = 0; i < 3; i++) await s.get('x').catch(() => undefined);
    expect(lines.map((l) => l.obj.tag)).toEqual(['STATE_DOWN']);
    expect(s.health().ok).toBe(false);
    await s.close();
  });

  it('calls that one stall times out together are no outage; timeouts that go on past state.timeout are', async () => {
    const { b, lines, s } = flakyRedis({ timeout: 40 });
    b.mode = 'hang';
    // Ten calls in flight when the backend stalls: ten timeouts within a few ms of each other.
    const late = await Promise.all(Array.from({ length: 10 }, () => s.get('x').catch((e: unknown) => e)));
    expect(late.every((e) => e instanceof StateError && e.reason === 'timeout')).toBe(true);
    expect(lines).toEqual([]);
    expect(s.health()).toEqual({ ok: true });
    // Still silent for a call made after them: the streak now spans more than state.timeout.
    await s.get('x').catch(() => undefined);
    expect(lines.map((l) => l.obj.tag)).toEqual(['STATE_DOWN']);
    expect(s.health().ok).toBe(false);
    b.mode = 'ok';
    await s.get('x');
    expect(lines.map((l) => l.obj.tag)).toEqual(['STATE_DOWN', 'STATE_UP']);
    await s.close();
  });

  it('an acquire past the deadline is given back: a stalled Redis that runs it later leaves no lease', async () => {
    // Redis answers one connection's commands in order: a late acquire runs before the release.
    class Stalled extends MemoryBackend {
      private chain: Promise<unknown> = Promise.resolve();
      override acquire(...a: Parameters<MemoryBackend['acquire']>) {
        const p = this.chain.then(() => new Promise((r) => setTimeout(r, 80))).then(() => super.acquire(...a));
        this.chain = p;
        return p;
      }
      override release(l: Parameters<MemoryBackend['release']>[0]) {
        const p = this.chain.then(() => super.release(l));
        this.chain = p;
        return p;
      }
    }
    const b = new Stalled();
    Object.defineProperty(b, 'kind', { value: 'redis' });
    const s = new StateStore(b, { timeout: 40, leaseTtl: 60_000 });
    const e = await s.acquireLease('lease:192.0.2.9', 's1', 2).catch((x: unknown) => x);
    expect((e as StateError).reason).toBe('timeout');
    await new Promise((r) => setTimeout(r, 150));
    expect(await b.leaseCount('lease:192.0.2.9', Date.now())).toBe(0);
    await s.close();
  });

  it('a closed store rejects at once', async () => {
    const s = memoryStateStore(Date.now);
    await s.close();
    await expect(s.get('x')).rejects.toBeInstanceOf(StateError);
  });

  it('leases are renewed by one timer and given back at close', async () => {
    // A test clock for the expiries, so a slow machine cannot let a lease lapse between two
    // steps; the renew timer itself is real (every leaseTtl / 3), and each step waits for it.
    const { clock, b, s, renewals } = renewingStore();
    const key = 'lease:192.0.2.1';
    const l1 = await s.acquireLease(key, 's1', 1);
    expect(l1).not.toBeNull();
    expect(await s.acquireLease(key, 's2', 1)).toBeNull();
    // Five TTLs, 40 ms of the clock at a time, each followed by a run of the timer: still held.
    for (let i = 0; i < 8; i++) {
      clock.t += 40;
      const seen = renewals();
      const until = Date.now() + 5000;
      while (renewals() === seen && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(renewals()).toBeGreaterThan(seen);
    }
    expect(await s.leaseCount(key)).toBe(1);
    expect(await s.acquireLease(key, 's2', 1)).toBeNull();
    s.releaseLease(l1!);
    const until = Date.now() + 5000;
    while ((await s.leaseCount(key)) !== 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(await s.leaseCount(key)).toBe(0);
    await s.acquireLease(key, 's3', 1);
    await s.close();
    expect(await b.leaseCount(key, clock.t)).toBe(0);
  });

  it('an idle store keeps no renew timer: it stops with the last lease and starts with the next', async () => {
    fakeIntervals(); // the renew timer is the one under test
    const { s, renewals } = renewingStore();
    expect(vi.getTimerCount()).toBe(0);
    const l1 = await s.acquireLease('lease:192.0.2.1', 's1', 2);
    const l2 = await s.acquireLease('lease:192.0.2.2', 's2', 2);
    expect(vi.getTimerCount()).toBe(1); // one timer for every lease
    await vi.advanceTimersByTimeAsync(20);
    expect(renewals()).toBe(1);
    s.releaseLease(l1!);
    expect(vi.getTimerCount()).toBe(1); // l2 still needs it
    await vi.advanceTimersByTimeAsync(20);
    expect(renewals()).toBe(2);
    s.releaseLease(l2!);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(renewals()).toBe(2);
    const l3 = await s.acquireLease('lease:192.0.2.3', 's3', 2);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(20);
    expect(renewals()).toBe(3);
    s.releaseLease(l3!);
    await s.close();
  });

  it('close() stops the renew timer of leases still held; renewAll() with none held asks nothing', async () => {
    fakeIntervals();
    const { s, renewals } = renewingStore();
    await s.renewAll();
    expect(renewals()).toBe(0);
    await s.acquireLease('lease:192.0.2.1', 's1', 2);
    expect(vi.getTimerCount()).toBe(1);
    await s.close(); // a session cut by shutdown: its lease is still held
    expect(vi.getTimerCount()).toBe(0);
  });

  it('spare lease slots (state.leaseBlock) go back after SPARE_IDLE, and then no timer is left', async () => {
    fakeIntervals();
    const clock = { t: 1_000_000 };
    const now = () => clock.t;
    // A backend with blocks, as Redis has: each id of a block is one lease while room is left.
    const b = Object.assign(new MemoryBackend(now), {
      async acquireBlock(key: string, ids: readonly string[], max: number, _div: number, exp: number, at: number): Promise<number> {
        let n = 0;
        for (const id of ids) if (await b.acquire({ key, id }, max, exp, at)) n++;
        return n;
      },
      async releaseMany(key: string, ids: readonly string[]): Promise<void> {
        for (const id of ids) await b.release({ key, id });
      },
    });
    const s = new StateStore(b, { timeout: 50, leaseTtl: 60_000, now, leaseBlock: 4 });
    const key = 'lease:192.0.2.1';
    const l1 = await s.acquireLease(key, 's1', 10);
    expect(l1).not.toBeNull();
    expect(s.leasesSpare).toBe(3);
    expect(await b.leaseCount(key, clock.t)).toBe(4);
    expect(vi.getTimerCount()).toBe(2); // renew and spare
    // Not yet idle for SPARE_IDLE: kept.
    clock.t += SPARE_IDLE - 1;
    await vi.advanceTimersByTimeAsync(SPARE_IDLE);
    expect(s.leasesSpare).toBe(3);
    clock.t += 1;
    await vi.advanceTimersByTimeAsync(SPARE_IDLE);
    expect(s.leasesSpare).toBe(0);
    expect(await b.leaseCount(key, clock.t)).toBe(1);
    expect(vi.getTimerCount()).toBe(1); // the spare timer stopped; l1 is still renewed
    s.releaseLease(l1!); // back to the spares, then swept in turn
    expect(s.leasesSpare).toBe(1);
    clock.t += SPARE_IDLE;
    await vi.advanceTimersByTimeAsync(SPARE_IDLE);
    expect(s.leasesSpare).toBe(0);
    expect(await b.leaseCount(key, clock.t)).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await s.close();
  });
});
