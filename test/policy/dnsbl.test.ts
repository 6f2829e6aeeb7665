// DNS lists against the in-process DNS server: syntax, query names, private ranges, listed / not
// listed, weights and filters, bad answers, errors, timeout, TC -> TCP, forged answers, TTL clamp and
// negative caching, coalescing, DNSWL first, health checks, createDnsCheck and `fakemx dnsbl`.

import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dnsblCommand } from '../../src/commands/dnsbl.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config, DnsConfig } from '../../src/config/schema.js';
import type { DnsQueryEvent } from '../../src/events.js';
import { createDnsCheck } from '../../src/policy/dns-check.js';
import {
  DnsblCheck, DnsblEngine, isBadAnswer, isPrivate, matchFilter, parseProvider, parseProviders, queryName,
} from '../../src/policy/dnsbl.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

let srv: TestDnsServer;
const engines: DnsblEngine[] = [];

beforeAll(async () => {
  srv = await startDnsServer();
});
afterAll(async () => {
  await srv.stop();
});
afterEach(() => {
  for (const e of engines.splice(0)) e.stop();
  srv.reset();
});

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

function dnsConfig(over: Partial<DnsConfig> = {}): DnsConfig {
  return {
    servers: [srv.address], timeout: 150, retries: 0, minTtl: 60, maxTtl: 3600, cacheSize: 1000,
    threshold: 1, healthCheckInterval: 0, skipPrivate: false, action: 'auto', ...over,
  };
}

interface Setup {
  rwl?: string[];
  rbl?: string[];
  dns?: Partial<DnsConfig>;
  clock?: { t: number };
}

function setup(o: Setup) {
  const events: DnsQueryEvent[] = [];
  const log = capture();
  const dns = dnsConfig(o.dns);
  const engine = new DnsblEngine({
    dns, logger: log.logger, onQuery: (e) => events.push(e),
    ...(o.clock ? { now: () => o.clock!.t } : {}),
  });
  engines.push(engine);
  const check = new DnsblCheck(engine, parseProviders(o.rwl ?? []), parseProviders(o.rbl ?? []), {
    threshold: dns.threshold, skipPrivate: dns.skipPrivate, timeout: dns.timeout, action: dns.action,
  });
  return { engine, check, events, lines: log.lines, soon: () => Date.now() + 1000 };
}

describe('provider syntax', () => {
  const ok: [string, string, string | null, number][] = [
    ['bl.test', 'bl.test', null, 1],
    ['BL.Test.', 'bl.test', null, 1],
    ['zen.spamhaus.org=127.0.0.[2..11]*3', 'zen.spamhaus.org', '127.0.0.[2..11]', 3],
    ['list.dnswl.org=127.0.[0..255].[1;2;3]*-5', 'list.dnswl.org', '127.0.[0..255].[1;2;3]', -5],
    ['bl.test*2', 'bl.test', null, 2],
    ['bl.test=127.0.0.2', 'bl.test', '127.0.0.2', 1],
  ];
  for (const [raw, zone, filter, weight] of ok) {
    it(raw, () => {
      const p = parseProvider(raw);
      expect([p.zone, p.filter === null ? null : filter, p.weight]).toEqual([zone, filter, weight]);
    });
  }
  const bad = ['', 'bl.test=127.0.0', 'bl.test=127.0.0.256', 'bl.test=127.0.0.[3..2]', 'bl.test=127.0.0.[2', 'bl.test*x', 'bad zone', 'bl..test'];
  for (const raw of bad) it(`rejects "${raw}"`, () => expect(() => parseProvider(raw)).toThrow());

  const filters: [string, string, boolean][] = [
    ['bl.test', '127.0.0.9', true],
    ['bl.test=127.0.0.[2..11]', '127.0.0.11', true],
    ['bl.test=127.0.0.[2..11]', '127.0.0.12', false],
    ['bl.test=127.0.[0..255].[1;3]', '127.0.5.3', true],
    ['bl.test=127.0.[0..255].[1;3]', '127.0.5.2', false],
    ['bl.test=127.0.0.2', '127.0.0.2', true],
  ];
  for (const [raw, answer, want] of filters) {
    it(`filter ${raw} vs ${answer}`, () => expect(matchFilter(parseProvider(raw).filter, answer)).toBe(want));
  }
});

describe('query names (RFC 5782 §2)', () => {
  const cases: [string, string | null][] = [
    ['192.0.2.99', '99.2.0.192.bl.test'],
    ['::ffff:192.0.2.99', '99.2.0.192.bl.test'],
    ['::FFFF:c000:0263', '99.2.0.192.bl.test'],
    ['2001:db8:1:2::abcd', 'd.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test'],
    ['2001:DB8::1', '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test'],
    ['not-an-ip', null],
    ['1.2.3', null],
    ['1::2::3', null],
  ];
  for (const [ip, want] of cases) it(ip, () => expect(queryName(ip, 'bl.test')).toBe(want));
});

describe('private addresses', () => {
  const cases: [string, boolean][] = [
    ['10.1.2.3', true], ['172.16.0.1', true], ['172.31.255.255', true], ['172.32.0.1', false],
    ['192.168.1.1', true], ['127.0.0.2', true], ['169.254.1.1', true], ['100.64.0.1', true],
    ['100.127.255.255', true], ['100.128.0.1', false], ['0.1.2.3', true], ['192.0.2.1', false],
    ['::1', true], ['::', true], ['fe80::1', true], ['fd00::1', true], ['fc00::1', true],
    ['2001:db8::1', false], ['::ffff:10.0.0.1', true], ['::ffff:8.8.8.8', false],
  ];
  for (const [ip, want] of cases) it(ip, () => expect(isPrivate(ip)).toBe(want));
});

describe('bad answers', () => {
  const cases: [string, boolean][] = [
    ['127.0.0.2', false], ['127.1.2.3', false], ['127.255.255.254', true], ['127.255.255.252', true],
    ['10.0.0.1', true], ['192.0.2.1', true], ['garbage', true],
  ];
  for (const [a, want] of cases) it(a, () => expect(isBadAnswer(a)).toBe(want));
});

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
    const r = await check.check('192.0.2.7', { deadline: t0 + 120 });
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(110);
    expect(took).toBeLessThan(600);
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

  const ttls: { name: string; script: Parameters<TestDnsServer['set']>[1]; ttl: number }[] = [
    { name: 'positive TTL below minTtl is raised', script: { a: ['127.0.0.2'], ttl: 5 }, ttl: 60 },
    { name: 'positive TTL above maxTtl is lowered', script: { a: ['127.0.0.2'], ttl: 86_400 }, ttl: 3600 },
    { name: 'negative: SOA minimum (RFC 2308)', script: { rcode: 'NXDOMAIN', soa: { ttl: 3600, minimum: 600 } }, ttl: 600 },
    { name: 'negative: SOA TTL when lower than MINIMUM', script: { rcode: 'NXDOMAIN', soa: { ttl: 120, minimum: 900 } }, ttl: 120 },
    { name: 'negative without SOA: minTtl', script: { rcode: 'NXDOMAIN', soa: null }, ttl: 60 },
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

describe('zone health (RFC 5782 §5)', () => {
  const cases: { name: string; two: Parameters<TestDnsServer['set']>[1]; one: Parameters<TestDnsServer['set']>[1]; result: string; skipped: boolean }[] = [
    { name: 'healthy zone', two: { a: ['127.0.0.2'] }, one: { rcode: 'NXDOMAIN' }, result: 'ok', skipped: false },
    { name: '127.0.0.2 not listed', two: { rcode: 'NXDOMAIN' }, one: { rcode: 'NXDOMAIN' }, result: 'fail', skipped: true },
    { name: '127.0.0.1 listed (lists everything)', two: { a: ['127.0.0.2'] }, one: { a: ['127.0.0.2'] }, result: 'fail', skipped: true },
    { name: 'refused code for the test entry', two: { a: ['127.255.255.254'] }, one: { a: ['127.255.255.254'] }, result: 'fail', skipped: true },
    { name: 'SERVFAIL: state unchanged', two: { rcode: 'SERVFAIL' }, one: { rcode: 'SERVFAIL' }, result: 'unknown', skipped: false },
    { name: 'no answer: state unchanged', two: { drop: true }, one: { drop: true }, result: 'unknown', skipped: false },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      srv.set('2.0.0.127.bl.test', c.two, 'A');
      srv.set('1.0.0.127.bl.test', c.one, 'A');
      srv.set('16.2.0.192.bl.test', { a: ['127.0.0.2'] }, 'A');
      const { engine, check, lines } = setup({ rbl: ['bl.test'], dns: { timeout: 60 } });
      expect(await engine.checkZone('bl.test')).toBe(c.result);
      const r = await check.check('192.0.2.16', { deadline: Date.now() + 1000 });
      expect(r.zones.length).toBe(c.skipped ? 0 : 1);
      if (c.result !== 'ok') expect(lines.some((l) => l.tag === 'DNSBL_HEALTH' && l.level === 40)).toBe(true);
    });
  }

  it('a failing zone is used again once it passes', async () => {
    srv.set('2.0.0.127.bl.test', { rcode: 'NXDOMAIN' }, 'A');
    const { engine, lines } = setup({ rbl: ['bl.test'] });
    await engine.checkZones(['bl.test']);
    expect(engine.healthy('bl.test')).toBe(false);
    srv.set('2.0.0.127.bl.test', { a: ['127.0.0.2'] }, 'A');
    await engine.checkZones(['bl.test']);
    expect(engine.healthy('bl.test')).toBe(true);
    expect(lines.some((l) => l.tag === 'DNSBL_HEALTH' && l.level === 30)).toBe(true);
  });
});

function config(over: Record<string, unknown>): Config {
  return loadConfig({ overrides: over, env: {} }).config;
}

describe('createDnsCheck', () => {
  const dns = () => ({ servers: [srv.address], timeout: 150, retries: 0, skipPrivate: false, healthCheckInterval: 0 });

  it('null without providers anywhere; forPolicy null for a policy without providers', () => {
    expect(createDnsCheck(config({ dns: dns() }), pino({ level: 'silent' }), () => undefined, null)).toBeNull();
    const c = config({ dns: dns(), listeners: [{ address: '127.0.0.1', port: 0, tls: 'none', profile: { rblProviders: ['bl.test'] } }] });
    const rt = createDnsCheck(c, pino({ level: 'silent' }), () => undefined, null)!;
    try {
      expect(rt).not.toBeNull();
      expect(rt.forPolicy(c)).toBeNull();
      const p = { ...c, rblProviders: ['bl.test'] };
      const chk = rt.forPolicy(p)!;
      expect(chk.timeout).toBe(150);
      expect(chk.action).toBe('auto');
      expect(rt.forPolicy({ ...c, rblProviders: ['bl.test'] })).toBe(chk);
    } finally {
      rt.stop();
    }
  });

  it('start() runs the health check; reload reuses the cache; events reach onQuery', async () => {
    srv.set('2.0.0.127.bl.test', { a: ['127.0.0.2'] }, 'A');
    srv.set('17.2.0.192.bl.test', { a: ['127.0.0.2'] }, 'A');
    const events: DnsQueryEvent[] = [];
    const c = config({ dns: { ...dns(), healthCheckInterval: 60 }, rblProviders: ['bl.test'] });
    const rt1 = createDnsCheck(c, pino({ level: 'silent' }), (e) => events.push(e), null)!;
    await rt1.start();
    expect(srv.count('2.0.0.127.bl.test')).toBe(1);
    expect(srv.count('1.0.0.127.bl.test')).toBe(1);
    expect((await rt1.forPolicy(c)!.check('192.0.2.17', { deadline: Date.now() + 1000 })).listed).toBe(true);
    const rt2 = createDnsCheck(c, pino({ level: 'silent' }), (e) => events.push(e), rt1)!;
    rt1.stop();
    try {
      expect((await rt2.forPolicy(c)!.check('192.0.2.17', { deadline: Date.now() + 1000 })).listed).toBe(true);
      expect(srv.count('17.2.0.192.bl.test', 'A')).toBe(1);
      expect(events.map((e) => e.cacheHit)).toEqual([false, true]);
    } finally {
      rt2.stop();
    }
  });

  it('reload with the same DNS settings: a lookup in flight survives the old runtime stopping', async () => {
    srv.set('18.2.0.192.bl.test', { a: ['127.0.0.2'], delayMs: 80 }, 'A');
    const c = config({ dns: dns(), rblProviders: ['bl.test'] });
    const rt1 = createDnsCheck(c, pino({ level: 'silent' }), () => undefined, null)!;
    const pending = rt1.forPolicy(c)!.check('192.0.2.18', { deadline: Date.now() + 1000 });
    await new Promise((r) => setTimeout(r, 20));
    const rt2 = createDnsCheck(c, pino({ level: 'silent' }), () => undefined, rt1)!;
    rt1.stop();
    try {
      const r = await pending;
      expect([r.listed, r.zones[0]!.error]).toEqual([true, undefined]);
    } finally {
      rt2.stop();
    }
  });

  it('start() waits for the first health round at most dns.timeout', async () => {
    srv.zone('dead.test', { drop: true });
    const c = config({ dns: { ...dns(), timeout: 100, retries: 1, healthCheckInterval: 60 }, rblProviders: ['dead.test'] });
    const rt = createDnsCheck(c, pino({ level: 'silent' }), () => undefined, null)!;
    try {
      const t0 = Date.now();
      await rt.start();
      expect(Date.now() - t0).toBeLessThan(180);
    } finally {
      rt.stop();
    }
  });

  it('a bad entry fails creation', () => {
    const c = config({ dns: dns() });
    expect(() => createDnsCheck({ ...c, rblProviders: ['bl.test=1.2.3'] }, pino({ level: 'silent' }), () => undefined, null)).toThrow(/four octets/);
  });
});

describe('fakemx dnsbl <ip>', () => {
  const cases: { name: string; ip: string; code: number; has: RegExp[] }[] = [
    { name: 'listed', ip: '192.0.2.20', code: 1, has: [/^block bl\.test \(bl\.test\*2\): 20\.2\.0\.192\.bl\.test A 127\.0\.0\.2; matched, weight 2; ttl 300s; \d+ ms$/, /^ {2}TXT "spam source"$/, /^score 2 \(threshold 1\): listed \(DNSBL: bl\.test\)$/] },
    { name: 'not listed', ip: '192.0.2.21', code: 0, has: [/^block bl\.test \(bl\.test\*2\): 21\.2\.0\.192\.bl\.test A none; not listed; ttl 120s/, /not listed$/] },
    { name: 'allowed', ip: '192.0.2.22', code: 0, has: [/^allow wl\.test: .* matched/, /allowed \(DNSWL\)$/] },
    { name: 'error', ip: '192.0.2.23', code: 2, has: [/error servfail/] },
    { name: 'not an address', ip: 'nope', code: 2, has: [/not an IP address/] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 120 } });
      srv.zone('wl.test', { rcode: 'NXDOMAIN' });
      srv.set('20.2.0.192.bl.test', { a: ['127.0.0.2'], txt: ['spam source'], ttl: 300 });
      srv.set('22.2.0.192.wl.test', { a: ['127.0.0.2'] });
      srv.set('23.2.0.192.bl.test', { rcode: 'SERVFAIL' });
      const cfg = config({ dns: { servers: [srv.address], timeout: 150, retries: 0 }, rwlProviders: ['wl.test'], rblProviders: ['bl.test*2'] });
      const lines: string[] = [];
      expect(await dnsblCommand(c.ip, cfg, (l) => lines.push(l))).toBe(c.code);
      for (const re of c.has) expect(lines.some((l) => re.test(l)), `${re} in\n${lines.join('\n')}`).toBe(true);
    });
  }
});
