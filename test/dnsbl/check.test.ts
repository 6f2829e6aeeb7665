// DnsblCheck against the in-process DNS server: listed / not listed, weights and filters, bad
// answers, errors, timeout, TC -> TCP, forged answers, TTL clamp and negative caching,
// coalescing, IPv6 and IPv4-mapped clients, DNSWL first, private addresses skipped.

import { describe, expect, it } from 'vitest';
import type { TestDnsServer } from '../helpers/dns-server.js';
import { setup, srv, useDnsServer } from '../helpers/dnsbl.js';

useDnsServer();

describe('DnsblCheck', () => {
  it('listed: score, TXT for the listed zone, reply zone', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN' });
    srv.set('2.2.0.192.bl.test', { a: ['127.0.0.2'], ttl: 300 }, 'A');
    srv.set('2.2.0.192.bl.test', { txt: ['listed: see https://bl.test/192.0.2.2'] }, 'TXT');
    srv.zone('other.test', { rcode: 'NXDOMAIN' });
    const { check, events } = setup({ rbl: ['bl.test', 'other.test'] });
    const r = await check.check('192.0.2.2', { deadline: Date.now() + 1000 });
    expect(r.listed).toBe(true);
    expect(r.allowed).toBe(false);
    expect(r.score).toBe(1);
    expect(r.zones[0]).toMatchObject({ zone: 'bl.test', answers: ['127.0.0.2'], matched: true, weight: 1, txt: ['listed: see https://bl.test/192.0.2.2'] });
    expect(r.zones[1]).toMatchObject({ zone: 'other.test', answers: [], matched: false });
    expect(r.zones[1]!.txt).toBeUndefined();
    expect(srv.count('2.2.0.192.other.test', 'TXT')).toBe(0); // TXT only for listing zones
    expect(check.replyZone(r)).toBe('bl.test');
    expect(events.map((e) => [e.zone, e.cacheHit, e.error])).toEqual([
      ['bl.test', false, undefined],
      ['other.test', false, undefined],
    ]);
  });

  it('not listed: NXDOMAIN and NOERROR without answers', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN' });
    srv.zone('empty.test', { rcode: 'NOERROR' });
    const { check } = setup({ rbl: ['bl.test', 'empty.test'] });
    const r = await check.check('192.0.2.3', { deadline: Date.now() + 1000 });
    expect([r.listed, r.score, r.zones.map((z) => [z.matched, z.error])]).toEqual([false, 0, [[false, undefined], [false, undefined]]]);
    expect(check.replyZone(r)).toBe('');
  });

  const scoring: { name: string; answers: Record<string, string[]>; rbl: string[]; threshold: number; score: number; listed: boolean; reply: string }[] = [
    { name: 'weights add up to the threshold', answers: { 'a.test': ['127.0.0.2'], 'b.test': ['127.0.0.3'] }, rbl: ['a.test*2', 'b.test*1'], threshold: 3, score: 3, listed: true, reply: 'a.test' },
    { name: 'below the threshold', answers: { 'a.test': ['127.0.0.2'] }, rbl: ['a.test*2', 'b.test*1'], threshold: 3, score: 2, listed: false, reply: 'a.test' },
    { name: 'filter does not match', answers: { 'a.test': ['127.0.0.20'] }, rbl: ['a.test=127.0.0.[2..11]*5'], threshold: 1, score: 0, listed: false, reply: '' },
    { name: 'filter matches one of several answers', answers: { 'a.test': ['127.0.0.20', '127.0.0.4'] }, rbl: ['a.test=127.0.0.[2..11]*5'], threshold: 1, score: 5, listed: true, reply: 'a.test' },
    { name: 'two filters on one zone, one query', answers: { 'a.test': ['127.0.0.4', '127.0.0.10'] }, rbl: ['a.test=127.0.0.4*1', 'a.test=127.0.0.10*2', 'a.test=127.0.0.3*4'], threshold: 3, score: 3, listed: true, reply: 'a.test' },
    { name: 'negative weight allows', answers: { 'a.test': ['127.0.0.2'], 'wl.test': ['127.0.0.2'] }, rbl: ['a.test*2', 'wl.test*-5'], threshold: 1, score: -3, listed: false, reply: 'a.test' },
    { name: 'largest weight names the reply', answers: { 'a.test': ['127.0.0.2'], 'b.test': ['127.0.0.2'] }, rbl: ['a.test*1', 'b.test*4'], threshold: 1, score: 5, listed: true, reply: 'b.test' },
  ];
  for (const c of scoring) {
    it(`scoring: ${c.name}`, async () => {
      for (const z of ['a.test', 'b.test', 'wl.test']) srv.zone(z, { rcode: 'NXDOMAIN' });
      for (const [z, a] of Object.entries(c.answers)) srv.set(`4.2.0.192.${z}`, { a }, 'A');
      const { check } = setup({ rbl: c.rbl, dns: { threshold: c.threshold } });
      const r = await check.check('192.0.2.4', { deadline: Date.now() + 1000 });
      expect([r.score, r.listed, check.replyZone(r)]).toEqual([c.score, c.listed, c.reply]);
      expect(srv.count('4.2.0.192.a.test', 'A')).toBe(1);
    });
  }

  const bad: [string, string[]][] = [
    ['127.255.255.254 (Spamhaus: query via public resolver)', ['127.255.255.254']],
    ['non-127 answer', ['10.0.0.2']],
    ['mixed with a good one', ['127.0.0.2', '127.255.255.252']],
  ];
  for (const [name, a] of bad) {
    it(`never a listing: ${name}`, async () => {
      srv.set('5.2.0.192.bl.test', { a }, 'A');
      const { check, engine, lines, events } = setup({ rbl: ['bl.test'] });
      const r = await check.check('192.0.2.5', { deadline: Date.now() + 1000 });
      expect(r.listed).toBe(false);
      expect(r.zones[0]).toMatchObject({ zone: 'bl.test', matched: false, error: 'bad_answer', answers: a });
      expect(events[0]!.error).toBe('bad_answer');
      expect(engine.badAnswers.get('bl.test')).toBe(1);
      expect(lines.filter((l) => l.tag === 'DNSBL_ERROR')).toHaveLength(1);
      expect(srv.count('5.2.0.192.bl.test', 'TXT')).toBe(0);
    });
  }

  it('bad answers are warned about once per zone per interval, but counted each time', async () => {
    srv.zone('bl.test', { a: ['127.255.255.254'], ttl: 0 });
    const { check, engine, lines } = setup({ rbl: ['bl.test'], dns: { cacheSize: 0 } });
    for (let i = 1; i <= 3; i++) await check.check(`192.0.2.${i}`, { deadline: Date.now() + 1000 });
    expect(engine.badAnswers.get('bl.test')).toBe(3);
    expect(lines.filter((l) => l.tag === 'DNSBL_ERROR' && l.level === 40)).toHaveLength(1);
  });

  const errors: [string, Parameters<TestDnsServer['zone']>[1], string][] = [
    ['SERVFAIL', { rcode: 'SERVFAIL' }, 'servfail'],
    ['REFUSED', { rcode: 'REFUSED' }, 'refused'],
    ['FORMERR', { rcode: 'FORMERR' }, 'formerr'],
  ];
  for (const [name, script, code] of errors) {
    it(`${name} is an error, not a listing, and not cached`, async () => {
      srv.zone('bl.test', script);
      const { check, events } = setup({ rbl: ['bl.test'] });
      for (let i = 0; i < 2; i++) {
        const r = await check.check('192.0.2.6', { deadline: Date.now() + 1000 });
        expect(r.listed).toBe(false);
        expect(r.zones[0]).toMatchObject({ matched: false, error: code });
      }
      expect(srv.count('6.2.0.192.bl.test')).toBe(2);
      expect(events.map((e) => e.error)).toEqual([code, code]);
    });
  }

  it('a zone that never answers: resolved by the deadline, tagged timeout, others still count', async () => {
    srv.zone('dead.test', { drop: true });
    srv.set('7.2.0.192.bl.test', { a: ['127.0.0.2'] }, 'A');
    const { check } = setup({ rbl: ['dead.test', 'bl.test'], dns: { timeout: 2000 } });
    const t0 = Date.now();
    // A deadline with room for bl.test's answer on a busy machine, well before dns.timeout.
    const r = await check.check('192.0.2.7', { deadline: t0 + 500 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(490);
    expect(took).toBeLessThan(1500);
    expect(r.zones[0]).toMatchObject({ zone: 'dead.test', matched: false, error: 'timeout' });
    expect(r.zones[1]).toMatchObject({ zone: 'bl.test', matched: true });
    expect(r.listed).toBe(true);
  });

  it('resolver timeout (before the deadline) is tagged timeout', async () => {
    srv.zone('dead.test', { drop: true });
    const { check, events } = setup({ rbl: ['dead.test'], dns: { timeout: 50, retries: 1 } });
    const r = await check.check('192.0.2.8', { deadline: Date.now() + 2000 });
    expect(r.zones[0]!.error).toBe('timeout');
    expect(events[0]!.error).toBe('timeout');
    expect(srv.count('8.2.0.192.dead.test')).toBe(2);
  });

  it('TC answer: the lookup is retried over TCP', async () => {
    srv.set('9.2.0.192.bl.test', { a: ['127.0.0.2'], tc: true }, 'A');
    srv.set('9.2.0.192.bl.test', { txt: ['r'.repeat(100)], tc: true }, 'TXT');
    const { check } = setup({ rbl: ['bl.test'] });
    const r = await check.check('192.0.2.9', { deadline: Date.now() + 1000 });
    expect(r.zones[0]).toMatchObject({ matched: true, answers: ['127.0.0.2'], txt: ['r'.repeat(100)] });
    expect(srv.queries.filter((q) => q.transport === 'tcp').map((q) => q.type).sort()).toEqual(['A', 'TXT']);
  });

  for (const kind of ['id', 'port'] as const) {
    it(`forged listing with a wrong ${kind} is ignored`, async () => {
      srv.set('10.2.0.192.bl.test', { rcode: 'NXDOMAIN', delayMs: 30, forge: { kind, a: ['127.0.0.2'] } });
      const { check, engine } = setup({ rbl: ['bl.test'] });
      const r = await check.check('192.0.2.10', { deadline: Date.now() + 1000 });
      expect(r.listed).toBe(false);
      expect(r.zones[0]).toMatchObject({ matched: false, answers: [] });
      expect(r.zones[0]!.error).toBeUndefined();
      expect((engine.resolver as unknown as { stats: { dropped: number } }).stats.dropped).toBe(1);
    });
  }

  const ttls: { name: string; script: Parameters<TestDnsServer['set']>[1]; ttl: number; left: number }[] = [
    { name: 'positive TTL below minTtl is raised', script: { a: ['127.0.0.2'], ttl: 5 }, ttl: 60, left: 1 },
    { name: 'positive TTL above maxTtl is lowered', script: { a: ['127.0.0.2'], ttl: 86_400 }, ttl: 3600, left: 1 },
    { name: 'negative: SOA minimum (RFC 2308)', script: { rcode: 'NXDOMAIN', soa: { ttl: 3600, minimum: 600 } }, ttl: 600, left: 1 },
    { name: 'negative: SOA TTL when lower than MINIMUM', script: { rcode: 'NXDOMAIN', soa: { ttl: 120, minimum: 900 } }, ttl: 120, left: 1 },
    { name: 'negative without SOA: minTtl', script: { rcode: 'NXDOMAIN', soa: null }, ttl: 60, left: 0 },
  ];
  for (const c of ttls) {
    it(`TTL clamp and caching: ${c.name}`, async () => {
      srv.set('11.2.0.192.bl.test', c.script, 'A');
      srv.set('11.2.0.192.bl.test', { txt: ['t'] }, 'TXT');
      const clock = { t: 1_000_000 };
      const { check, engine, events } = setup({ rbl: ['bl.test'], clock });
      const first = await check.check('192.0.2.11', { deadline: Date.now() + 1000 });
      expect(engine.cache.ttlOf('bl.test 11.2.0.192')).toBe(c.ttl);
      clock.t += (c.ttl - 1) * 1000;
      const second = await check.check('192.0.2.11', { deadline: Date.now() + 1000 });
      expect(second.listed).toBe(first.listed);
      // A cached answer is good only for what is left of it, never more than it said (0 without SOA):
      // the client cache's dnsbl pass must not outlive it.
      expect(second.zones[0]!.ttl).toBe(c.left);
      expect(srv.count('11.2.0.192.bl.test', 'A')).toBe(1);
      clock.t += 1000;
      await check.check('192.0.2.11', { deadline: Date.now() + 1000 });
      expect(srv.count('11.2.0.192.bl.test', 'A')).toBe(2);
      expect(events.map((e) => e.cacheHit)).toEqual([false, true, false]);
    });
  }

  it('coalescing: 20 parallel checks from one address -> one query per zone', async () => {
    srv.zone('a.test', { rcode: 'NXDOMAIN', delayMs: 40 });
    srv.zone('b.test', { a: ['127.0.0.2'], txt: ['listed'], delayMs: 40 });
    srv.zone('wl.test', { rcode: 'NXDOMAIN', delayMs: 40 });
    const { check } = setup({ rwl: ['wl.test'], rbl: ['a.test', 'b.test'] });
    const all = await Promise.all(Array.from({ length: 20 }, () => check.check('192.0.2.12', { deadline: Date.now() + 1000 })));
    expect(all.every((r) => r.listed)).toBe(true);
    for (const z of ['a.test', 'b.test', 'wl.test']) expect(srv.count(`12.2.0.192.${z}`, 'A')).toBe(1);
    expect(srv.count('12.2.0.192.b.test', 'TXT')).toBe(1);
  });

  it('IPv6 client: 32 nibbles reversed', async () => {
    const name = 'd.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test';
    srv.set(name, { a: ['127.0.0.2'] }, 'A');
    const { check } = setup({ rbl: ['bl.test'] });
    const r = await check.check('2001:db8:1:2::abcd', { deadline: Date.now() + 1000 });
    expect(r.listed).toBe(true);
    expect(srv.count(name, 'A')).toBe(1);
  });

  it('IPv4-mapped client is looked up as IPv4', async () => {
    srv.set('13.2.0.192.bl.test', { a: ['127.0.0.2'] }, 'A');
    const { check } = setup({ rbl: ['bl.test'] });
    expect((await check.check('::ffff:192.0.2.13', { deadline: Date.now() + 1000 })).listed).toBe(true);
  });

  it('DNSWL first: an allowed client is not listed, though both lists answered at once', async () => {
    srv.set('14.2.0.192.wl.test', { a: ['127.0.10.1'] }, 'A');
    srv.set('14.2.0.192.bl.test', { a: ['127.0.0.2'] }, 'A');
    const { check } = setup({ rwl: ['wl.test=127.0.[0..255].[1..3]'], rbl: ['bl.test*5'] });
    const r = await check.check('192.0.2.14', { deadline: Date.now() + 1000 });
    expect([r.allowed, r.listed, r.score]).toEqual([true, false, 5]);
    expect(r.zones.map((z) => z.zone)).toEqual(['wl.test', 'bl.test']);
    // The record says which zone is an allow list (report keeps them apart).
    expect(r.zones.map((z) => z.allow ?? false)).toEqual([true, false]);
    expect(srv.count('14.2.0.192.bl.test', 'A')).toBe(1);
  });

  it('DNSWL filter respected: a non-matching allow answer does not allow', async () => {
    srv.set('15.2.0.192.wl.test', { a: ['127.0.10.9'] }, 'A');
    srv.set('15.2.0.192.bl.test', { a: ['127.0.0.2'] }, 'A');
    const { check } = setup({ rwl: ['wl.test=127.0.[0..255].[1..3]'], rbl: ['bl.test'] });
    const r = await check.check('192.0.2.15', { deadline: Date.now() + 1000 });
    expect([r.allowed, r.listed]).toEqual([false, true]);
  });

  const skip: [string, string, boolean, number][] = [
    ['private skipped', '10.0.0.1', true, 0],
    ['loopback skipped', '127.0.0.2', true, 0],
    ['ULA skipped', 'fd12::1', true, 0],
    ['private asked when skipPrivate is false', '10.0.0.1', false, 1],
    ['garbage never asked', 'unix-socket', false, 0],
  ];
  for (const [name, ip, skipPrivate, queries] of skip) {
    it(name, async () => {
      srv.zone('bl.test', { rcode: 'NXDOMAIN' });
      const { check } = setup({ rbl: ['bl.test'], dns: { skipPrivate } });
      const r = await check.check(ip, { deadline: Date.now() + 1000 });
      expect(r.listed).toBe(false);
      expect(srv.queries.length).toBe(queries);
    });
  }
});
