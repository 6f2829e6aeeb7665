// Address helpers: normalisation, CIDR matching (IPv4 and IPv6) and the per-network key
// that counts IPv6 clients per /64 for maxSessionsPerIp.
import { describe, expect, it } from 'vitest';
import { cidrContains, normalizeIp, parseCidr, prefixKey } from '../../src/net/ip.js';

describe('normalizeIp', () => {
  it.each([
    ['IPv4 unchanged', '192.0.2.1', '192.0.2.1'],
    ['IPv4-mapped IPv6 -> IPv4', '::ffff:192.0.2.1', '192.0.2.1'],
    ['mapped, long form', '0:0:0:0:0:ffff:192.0.2.1', '192.0.2.1'],
    ['mapped, hex tail', '::ffff:c000:201', '192.0.2.1'],
    ['IPv6 lower-cased', '2001:DB8::1', '2001:db8::1'],
    ['zone stripped', 'fe80::1%eth0', 'fe80::1'],
    ['loopback v6 kept', '::1', '::1'],
  ])('%s', (_n, input, want) => expect(normalizeIp(input)).toBe(want));
});

describe('CIDR', () => {
  it.each([
    ['v4 inside', '192.0.2.0/24', '192.0.2.200', true],
    ['v4 outside', '192.0.2.0/24', '192.0.3.1', false],
    ['v4 host', '198.51.100.7', '198.51.100.7', true],
    ['v4 /0', '0.0.0.0/0', '203.0.113.9', true],
    ['v4 rule, mapped client', '127.0.0.0/8', '::ffff:127.0.0.2', true],
    ['v6 inside', '2001:db8::/32', '2001:db8:ffff::1', true],
    ['v6 outside', '2001:db8::/32', '2001:db9::1', false],
    ['families never mix', '::/0', '192.0.2.1', false],
  ])('%s', (_n, cidr, ip, want) => expect(cidrContains(parseCidr(cidr), ip)).toBe(want));
  it.each(['192.0.2.0/33', '2001:db8::/129', 'example.com', '1.2.3/8', '10.0.0.0/x'])('rejects %s', (bad) => {
    expect(() => parseCidr(bad)).toThrow();
  });
});

describe('prefixKey (maxSessionsPerIp grouping)', () => {
  it('IPv4 per address', () => {
    expect(prefixKey('192.0.2.1', 64)).not.toBe(prefixKey('192.0.2.2', 64));
  });
  it('IPv6 per /64 by default', () => {
    expect(prefixKey('2001:db8:1:2::1', 64)).toBe(prefixKey('2001:db8:1:2:ffff::9', 64));
    expect(prefixKey('2001:db8:1:2::1', 64)).not.toBe(prefixKey('2001:db8:1:3::1', 64));
  });
  it('configurable prefix', () => {
    expect(prefixKey('2001:db8:1:2::1', 48)).toBe(prefixKey('2001:db8:1:3::1', 48));
    expect(prefixKey('2001:db8::1', 128)).not.toBe(prefixKey('2001:db8::2', 128));
  });
  it('a mapped IPv4 client counts as its IPv4 address', () => {
    expect(prefixKey('::ffff:192.0.2.1', 64)).toBe('192.0.2.1');
  });
});
