// `fakemx dnsbl <ip>` against the in-process DNS server: per-zone lines, TXT, score and
// verdict, and the exit codes (0 not listed or allowed, 1 listed, 2 error).

import { describe, expect, it } from 'vitest';
import { dnsblCommand } from '../../src/commands/dnsbl.js';
import { config, srv, useDnsServer } from '../helpers/dnsbl.js';

useDnsServer();

describe('fakemx dnsbl <ip>', () => {
  const cases: { name: string; ip: string; code: number; has: RegExp[] }[] = [
    { name: 'listed', ip: '192.0.2.20', code: 1, has: [/^block bl\.test \(bl\.test\*2\): 20\.2\.0\.192\.bl\.test A 127\.0\.0\.2; matched, weight 2; ttl 300s; \d+ ms$/, /^ {2}TXT "spam source"$/, /^score 2 \(threshold 1\): listed \(DNSBL: bl\.test\)$/] },
    { name: 'not listed', ip: '192.0.2.21', code: 0, has: [/^block bl\.test \(bl\.test\*2\): 21\.2\.0\.192\.bl\.test A none; not listed; ttl 120s/, /not listed$/] },
    { name: 'allowed', ip: '192.0.2.22', code: 0, has: [/^allow wl\.test: .* matched/, /allowed \(DNSWL\)$/] },
    { name: 'error', ip: '192.0.2.23', code: 2, has: [/error servfail; ttl -; (\d+ ms|-)$/] },
    { name: 'not an address', ip: 'nope', code: 2, has: [/not an IP address/] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 120 } });
      srv.zone('wl.test', { rcode: 'NXDOMAIN' });
      srv.set('20.2.0.192.bl.test', { a: ['127.0.0.2'], txt: ['spam source'], ttl: 300 });
      srv.set('22.2.0.192.wl.test', { a: ['127.0.0.2'] });
      srv.set('23.2.0.192.bl.test', { rcode: 'SERVFAIL' });
      const cfg = config({ dns: { servers: [srv.address], timeout: 2000, retries: 0 }, rwlProviders: ['wl.test'], rblProviders: ['bl.test*2'] });
      const lines: string[] = [];
      expect(await dnsblCommand(c.ip, cfg, (l) => lines.push(l))).toBe(c.code);
      for (const re of c.has) expect(lines.some((l) => re.test(l)), `${re} in\n${lines.join('\n')}`).toBe(true);
    });
  }
});
