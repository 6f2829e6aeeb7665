// createDnsCheck(): null without providers, one check per provider set, health checks at
// start, cache and resolver carried over a reload, bad entries fail creation.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { DnsQueryEvent } from '../../src/events.js';
import { createDnsCheck } from '../../src/dnsbl/runtime.js';
import { config, srv, useDnsServer } from '../helpers/dnsbl.js';

useDnsServer();

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
    // A timeout that a busy machine's answers meet (start() waits for the first round at most that long).
    const c = config({ dns: { ...dns(), timeout: 2000, healthCheckInterval: 60 }, rblProviders: ['bl.test'] });
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
    // The answer (80 ms late) must beat the timeout on a busy machine too.
    const c = config({ dns: { ...dns(), timeout: 2000 }, rblProviders: ['bl.test'] });
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
    // The whole round takes timeout x 2 tries (800 ms); start() must return after one timeout.
    const c = config({ dns: { ...dns(), timeout: 400, retries: 1, healthCheckInterval: 60 }, rblProviders: ['dead.test'] });
    const rt = createDnsCheck(c, pino({ level: 'silent' }), () => undefined, null)!;
    try {
      const t0 = Date.now();
      await rt.start();
      expect(Date.now() - t0).toBeLessThan(700);
    } finally {
      rt.stop();
    }
  });

  it('a bad entry fails creation', () => {
    const c = config({ dns: dns() });
    expect(() => createDnsCheck({ ...c, rblProviders: ['bl.test=1.2.3'] }, pino({ level: 'silent' }), () => undefined, null)).toThrow(/four octets/);
  });
});
