// The stub resolver against the in-process DNS server on 127.0.0.1: answers and TTLs,
// negative TTL from the SOA, errors, timeouts and failover, TC -> TCP, spoofing defence
// (forged ID / port dropped and counted), several source ports, close().

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DnsClient, DnsError, parseServer } from '../../src/dns/client.js';
import { parseResolvConf, readResolvConf } from '../../src/dns/resolv-conf.js';
import { startDnsServer, type ForgeKind, type TestDnsServer } from '../helpers/dns-server.js';

let srv: TestDnsServer;
const clients: DnsClient[] = [];

function client(opts: Partial<ConstructorParameters<typeof DnsClient>[0]> = {}): DnsClient {
  const c = new DnsClient({ servers: [srv.address], timeout: 200, retries: 1, ...opts });
  clients.push(c);
  return c;
}

async function rejection(p: Promise<unknown>): Promise<DnsError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DnsError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  srv = await startDnsServer();
});
afterAll(async () => {
  await srv.stop();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  srv.reset();
});

describe('parseServer', () => {
  const cases: [string, string, number, 4 | 6][] = [
    ['192.0.2.1', '192.0.2.1', 53, 4],
    ['192.0.2.1:5353', '192.0.2.1', 5353, 4],
    ['2001:db8::1', '2001:db8::1', 53, 6],
    ['[2001:db8::1]:5353', '2001:db8::1', 5353, 6],
    ['[2001:DB8:0:0::1]', '2001:db8::1', 53, 6],
  ];
  for (const [spec, canonical, port, family] of cases) {
    it(spec, () => {
      const s = parseServer(spec);
      expect([s.canonical, s.port, s.family]).toEqual([canonical, port, family]);
    });
  }
  for (const bad of ['', 'example.com', '192.0.2.1:0', '192.0.2.1:x', '[::1]:70000', '300.1.1.1']) {
    it(`rejects "${bad}"`, () => expect(() => parseServer(bad)).toThrow());
  }
});

describe('resolv.conf', () => {
  const cases: [string, string, string[]][] = [
    ['plain', 'nameserver 192.0.2.1\nnameserver 192.0.2.2\n', ['192.0.2.1', '192.0.2.2']],
    ['comments and search ignored', '# x\nsearch example.com\n; y\nnameserver 192.0.2.1 # main\noptions ndots:5\n', ['192.0.2.1']],
    ['ipv6 with zone', 'nameserver fe80::1%eth0\nnameserver ::1\n', ['fe80::1%eth0', '::1']],
    ['at most three', 'nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n', ['192.0.2.1', '192.0.2.2', '192.0.2.3']],
    ['garbage skipped', 'nameserver not-an-ip\nnameserver 192.0.2.9\n', ['192.0.2.9']],
  ];
  for (const [name, text, want] of cases) it(name, () => expect(parseResolvConf(text)).toEqual(want));
  it('missing file -> local server', () => expect(readResolvConf('/nonexistent/resolv.conf')).toEqual(['127.0.0.1']));
});

describe('DnsClient', () => {
  it('A answers with TTL', async () => {
    srv.set('2.0.0.127.bl.test', { a: ['127.0.0.2', '127.0.0.4'], ttl: 42 });
    const r = await client().query('2.0.0.127.bl.test', 'A');
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers).toEqual([
      { type: 'A', data: '127.0.0.2', ttl: 42 },
      { type: 'A', data: '127.0.0.4', ttl: 42 },
    ]);
    expect(r.tcp).toBe(false);
  });

  it('TXT answers', async () => {
    srv.set('2.0.0.127.bl.test', { txt: ['listed, see https://bl.test/'], ttl: 60 }, 'TXT');
    const r = await client().query('2.0.0.127.bl.test', 'TXT');
    expect(r.answers).toEqual([{ type: 'TXT', data: 'listed, see https://bl.test/', ttl: 60 }]);
  });

  it('NXDOMAIN: negative TTL is min(SOA TTL, MINIMUM) (RFC 2308 §5)', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 900, minimum: 77 } });
    const r = await client().query('9.9.9.9.bl.test', 'A');
    expect([r.rcode, r.answers, r.negativeTtl]).toEqual(['NXDOMAIN', [], 77]);
  });

  it('SERVFAIL is returned after the retries', async () => {
    srv.zone('bl.test', { rcode: 'SERVFAIL' });
    const r = await client({ retries: 1 }).query('1.2.3.4.bl.test', 'A');
    expect(r.rcode).toBe('SERVFAIL');
    expect(srv.count('1.2.3.4.bl.test')).toBe(2);
  });

  it('no answer: timeout after 1 + retries tries', async () => {
    srv.zone('dead.test', { drop: true });
    const c = client({ timeout: 80, retries: 2 });
    const t0 = Date.now();
    const e = await rejection(c.query('1.2.3.4.dead.test', 'A'));
    expect(e.code).toBe('timeout');
    expect(srv.count('1.2.3.4.dead.test')).toBe(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(230);
    expect(c.stats.timeouts).toBe(3);
  });

  it('moves to the next server on timeout', async () => {
    const dead = await startDnsServer();
    try {
      dead.zone('bl.test', { drop: true });
      srv.set('2.0.0.127.bl.test', { a: ['127.0.0.2'] });
      const r = await client({ servers: [dead.address, srv.address], timeout: 80, retries: 1 }).query('2.0.0.127.bl.test', 'A');
      expect(r.answers.map((a) => a.data)).toEqual(['127.0.0.2']);
      expect(r.server).toBe(srv.address);
      expect(dead.count('2.0.0.127.bl.test')).toBe(1);
    } finally {
      await dead.stop();
    }
  });

  it('TC answer is retried over TCP', async () => {
    srv.set('2.0.0.127.bl.test', { txt: ['x'.repeat(200)], tc: true }, 'TXT');
    const c = client();
    const r = await c.query('2.0.0.127.bl.test', 'TXT');
    expect(r.tcp).toBe(true);
    expect(r.answers[0]!.data).toBe('x'.repeat(200));
    expect(srv.queries.map((q) => q.transport)).toEqual(['udp', 'tcp']);
    expect(c.stats.tcp).toBe(1);
  });

  // RFC 5452 §9.1: an answer is taken only from the server asked, to the port and ID used,
  // for the question asked (name, type, class), and marked a response.
  const forged: ForgeKind[] = ['id', 'port', 'name', 'type', 'qr'];
  for (const kind of forged) {
    it(`forged answer with a wrong ${kind} is dropped and counted`, async () => {
      srv.set('4.3.2.1.bl.test', { rcode: 'NXDOMAIN', delayMs: 30, forge: { kind, a: ['127.0.0.2'] } });
      const c = client();
      const r = await c.query('4.3.2.1.bl.test', 'A');
      expect(r.rcode).toBe('NXDOMAIN');
      expect(r.answers).toEqual([]);
      expect(c.stats.dropped).toBe(1);
    });
  }

  it('records of another owner in a matching answer are ignored (no listing injected)', async () => {
    srv.set('5.3.2.1.bl.test', { rcode: 'NXDOMAIN', delayMs: 30, forge: { kind: 'owner', a: ['127.0.0.2'] } });
    const c = client();
    const r = await c.query('5.3.2.1.bl.test', 'A');
    // The forged packet matches ID, port and question, so it is the answer; its A record,
    // owned by other.5.3.2.1.bl.test, is not an answer to the name asked.
    expect(r.rcode).toBe('NOERROR');
    expect(r.answers).toEqual([]);
  });

  it('uses several source ports and varying IDs', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN' });
    const c = client({ sockets: 4 });
    await Promise.all(Array.from({ length: 40 }, (_, i) => c.query(`${i}.0.0.10.bl.test`, 'A')));
    expect(new Set(srv.queries.map((q) => q.port)).size).toBe(4);
    expect(new Set(srv.queries.map((q) => q.id)).size).toBeGreaterThan(30);
  });

  it('close() rejects outstanding queries and later ones', async () => {
    srv.zone('dead.test', { drop: true });
    const c = client({ timeout: 5000 });
    const p = c.query('1.dead.test', 'A');
    await new Promise((r) => setTimeout(r, 20));
    c.close();
    expect((await rejection(p)).code).toBe('closed');
    expect((await rejection(c.query('2.dead.test', 'A'))).code).toBe('closed');
    expect(c.outstanding).toBe(0);
  });

  it('rejects an invalid name without sending', async () => {
    expect((await rejection(client().query(`${'a'.repeat(64)}.test`, 'A'))).code).toBe('bad_name');
    expect(srv.queries).toEqual([]);
  });

  it('bounds outstanding queries', async () => {
    srv.zone('dead.test', { drop: true });
    const c = client({ timeout: 5000, maxOutstanding: 2 });
    const held = [c.query('1.dead.test', 'A'), c.query('2.dead.test', 'A')];
    for (const p of held) p.catch(() => undefined);
    expect((await rejection(c.query('3.dead.test', 'A'))).code).toBe('overload');
  });
});

describe('send window', () => {
  it('queries beyond the window wait their turn, in order, and all complete', async () => {
    srv.zone('win.test', { a: ['127.0.0.2'], delayMs: 30 });
    const c = client({ sockets: 1, windowPerSocket: 2, timeout: 1000 });
    const names = Array.from({ length: 6 }, (_, i) => `q${i}.win.test`);
    const t0 = Date.now();
    const all = names.map((n) => c.query(n, 'A'));
    await new Promise((r) => setTimeout(r, 10));
    expect(srv.queries.length).toBe(2); // only the window is on the wire
    const rs = await Promise.all(all);
    expect(rs.every((r) => r.answers.some((a) => a.type === 'A'))).toBe(true);
    expect(srv.queries.map((q) => q.name)).toEqual(names);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(85); // three rounds of 30 ms
    expect(c.outstanding).toBe(0);
  });

  it('close() rejects waiting queries too', async () => {
    srv.zone('win.test', { drop: true });
    const c = client({ sockets: 1, windowPerSocket: 1 });
    const p = [c.query('a.win.test', 'A'), c.query('b.win.test', 'A')];
    c.close();
    for (const x of p) expect((await rejection(x)).code).toBe('closed');
  });
});
