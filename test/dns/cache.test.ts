// The DNS list cache: TTL clamping, expiry with an injected clock, LRU bound, sharing
// entries on reload, coalescing of concurrent loads, errors not cached.

import { describe, expect, it } from 'vitest';
import { DnsCache } from '../../src/dns/cache.js';

function cache(over: Partial<ConstructorParameters<typeof DnsCache<string>>[0]> = {}) {
  const clock = { t: 1_000_000 };
  const c = new DnsCache<string>({ maxEntries: 100, minTtl: 60, maxTtl: 3600, now: () => clock.t, ...over });
  return { c, clock };
}

describe('DnsCache', () => {
  const clamps: [string, number, number][] = [
    ['below min', 5, 60],
    ['inside', 300, 300],
    ['above max', 86_400, 3600],
    ['zero', 0, 60],
    ['NaN', Number.NaN, 60],
  ];
  for (const [name, ttl, want] of clamps) {
    it(`clamps TTL: ${name}`, () => {
      const { c } = cache();
      expect(c.clampTtl(ttl)).toBe(want);
      c.set('k', 'v', ttl);
      expect(c.ttlOf('k')).toBe(want);
    });
  }

  it('expires entries at the clamped TTL', () => {
    const { c, clock } = cache();
    c.set('k', 'v', 10); // clamped to 60 s
    clock.t += 59_000;
    expect(c.get('k')).toBe('v');
    clock.t += 1_000;
    expect(c.get('k')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('evicts the least recently used beyond maxEntries', () => {
    const { c } = cache({ maxEntries: 3 });
    c.set('a', '1', 100);
    c.set('b', '2', 100);
    c.set('c', '3', 100);
    expect(c.get('a')).toBe('1'); // a is now the most recent
    c.set('d', '4', 100);
    expect(c.size).toBe(3);
    expect(c.get('b')).toBeUndefined();
    expect(['a', 'c', 'd'].map((k) => c.get(k))).toEqual(['1', '3', '4']);
  });

  it('maxEntries 0 stores nothing', () => {
    const { c } = cache({ maxEntries: 0 });
    c.set('a', '1', 100);
    expect(c.size).toBe(0);
  });

  it('a new cache can take over the entries of the old (reload)', () => {
    const { c, clock } = cache();
    c.set('a', '1', 100);
    const d = new DnsCache<string>({ maxEntries: 100, minTtl: 60, maxTtl: 3600, now: () => clock.t }, c);
    expect(d.get('a')).toBe('1');
  });

  it('coalesces concurrent loads of one key', async () => {
    const { c } = cache();
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const load = async () => {
      loads++;
      await gate;
      return { value: 'v', ttl: 300 };
    };
    const all = Array.from({ length: 20 }, () => c.lookup('k', load));
    expect(c.pending).toBe(1);
    release();
    const got = await Promise.all(all);
    expect(loads).toBe(1);
    expect(got.filter((g) => g.source === 'query')).toHaveLength(1);
    expect(got.filter((g) => g.source === 'inflight')).toHaveLength(19);
    expect((await c.lookup('k', load)).source).toBe('cache');
    expect(c.pending).toBe(0);
  });

  it('a failed load is shared by its waiters and not cached', async () => {
    const { c } = cache();
    let loads = 0;
    const load = async () => {
      loads++;
      await new Promise((r) => setTimeout(r, 5));
      throw new Error('boom');
    };
    const res = await Promise.allSettled([c.lookup('k', load), c.lookup('k', load)]);
    expect(res.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(loads).toBe(1);
    await expect(c.lookup('k', load)).rejects.toThrow('boom');
    expect(loads).toBe(2);
  });

  it('ttl null: the value is returned but not cached', async () => {
    const { c } = cache();
    expect((await c.lookup('k', async () => ({ value: 'err', ttl: null }))).value).toBe('err');
    expect(c.size).toBe(0);
  });
});
