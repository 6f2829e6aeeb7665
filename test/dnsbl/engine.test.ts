// The engine's zone health (RFC 5782 §5) against the in-process DNS server: a zone that
// fails the 127.0.0.2 / 127.0.0.1 test is skipped until it passes; errors change nothing.

import { describe, expect, it } from 'vitest';
import { DnsblEngine, toLookup } from '../../src/dnsbl/engine.js';
import type { DnsRecord } from '../../src/dns/client.js';
import { silentLogger } from '../../src/log/logger.js';
import type { TestDnsServer } from '../helpers/dns-server.js';
import { setup, srv, useDnsServer } from '../helpers/dnsbl.js';

useDnsServer();

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
      // A short timeout only where nothing answers; an answer may be slow on a busy machine.
      const { engine, check, lines } = setup({ rbl: ['bl.test'], dns: { timeout: c.two.drop ? 60 : 5000 } });
      expect(engine.health()).toEqual([]);
      expect(await engine.checkZone('bl.test')).toBe(c.result);
      // The engine's own record of it (the console's Caught page shows it).
      expect(engine.health()).toEqual([
        expect.objectContaining({ zone: 'bl.test', state: c.result === 'fail' ? 'failing' : c.result, skipped: c.skipped, checkedAt: expect.any(Number) as unknown }),
      ]);
      if (c.result !== 'ok') expect(engine.health()[0]!.reason).toEqual(expect.any(String));
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
    expect(engine.health()[0]).toMatchObject({ state: 'ok', reason: null, skipped: false });
    expect(lines.some((l) => l.tag === 'DNSBL_HEALTH' && l.level === 30)).toBe(true);
  });

  it('health(): every zone in use, "unchecked" with healthCheckInterval 0; a reload keeps the record', async () => {
    srv.set('2.0.0.127.bl.test', { rcode: 'NXDOMAIN' }, 'A');
    const { engine } = setup({ rbl: ['bl.test'], dns: { healthCheckInterval: 0 } });
    await engine.startHealthChecks(['bl.test', 'other.test']);
    expect(engine.health().map((h) => [h.zone, h.state, h.checkedAt])).toEqual([['bl.test', 'unchecked', null], ['other.test', 'unchecked', null]]);
    await engine.checkZone('bl.test');
    expect(engine.health()[0]).toMatchObject({ zone: 'bl.test', state: 'failing', reason: '127.0.0.2 is not listed', skipped: true });
    const next = new DnsblEngine({ dns: engine.dns, logger: silentLogger(), prev: engine });
    expect(next.health()[0]).toMatchObject({ zone: 'bl.test', state: 'failing', skipped: true });
    next.stop();
  });
});

describe('toLookup: a DNS answer as a list lookup (RFC 5782 §2.3, RFC 2308 §5)', () => {
  const a = (data: string, ttl: number): DnsRecord => ({ type: 'A', data, ttl });
  it.each<[string, string, DnsRecord[], number | null, ReturnType<typeof toLookup>]>([
    ['listed: the smallest TTL of the answers', 'NOERROR', [a('127.0.0.2', 300), a('127.0.0.4', 60)], null, { rcode: 'NOERROR', answers: ['127.0.0.2', '127.0.0.4'], ttl: 60 }],
    ['NXDOMAIN: the negative TTL', 'NXDOMAIN', [], 120, { rcode: 'NXDOMAIN', answers: [], ttl: 120 }],
    ['NODATA without SOA: 0', 'NOERROR', [], null, { rcode: 'NOERROR', answers: [], ttl: 0 }],
    ['SERVFAIL: an error, no TTL', 'SERVFAIL', [], 120, { rcode: 'SERVFAIL', answers: [], ttl: null, error: 'servfail' }],
    ['an answer outside 127/8 is a bad answer', 'NOERROR', [a('10.0.0.1', 30)], null, { rcode: 'NOERROR', answers: ['10.0.0.1'], ttl: 30, error: 'bad_answer' }],
  ])('%s', (_n, rcode, answers, negativeTtl, want) => {
    expect(toLookup({ rcode, answers, negativeTtl, server: '127.0.0.1:53', tcp: false })).toEqual(want);
  });
});
