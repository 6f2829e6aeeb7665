// Address helpers: bytes (the one IPv6 expansion), normalisation, CIDR matching (IPv4 and
// IPv6) and the per-network key that counts IPv6 clients per /64 for maxSessionsPerIp.
import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { cidrContains, ipBytes, ipText, ipv6Bytes, ipv6ToBig, normalizeIp, parseCidr, prefixKey, prefixText } from '../../src/net/ip.js';

const hex = (b: number[] | null) => (b === null ? null : b.map((x) => x.toString(16).padStart(2, '0')).join(''));

describe('ipv6Bytes (the IPv6 expansion)', () => {
  it.each([
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['1::', '00010000000000000000000000000000'],
    ['2001:db8:1:2::abcd', '20010db800010002000000000000abcd'],
    ['2001:DB8::1', '20010db8000000000000000000000001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1:2:3:4:5:6:7::', '00010002000300040005000600070000'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['0:0:0:0:0:ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['64:ff9b::198.51.100.7', '0064ff9b0000000000000000c6336407'],
    ['fe80::1%eth0', 'fe800000000000000000000000000001'],
  ])('%s', (ip, want) => expect(hex(ipv6Bytes(ip))).toBe(want));
  it.each([
    '', '1.2.3.4', 'not-an-ip', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4::5:6:7:8',
    '12345::', ':1:2:3:4:5:6:7', '::1.2.3.256', '::1.2.3', 'g::1',
  ])('rejects "%s"', (ip) => expect(ipv6Bytes(ip)).toBeNull());
  it('accepts whatever node:net calls IPv6', () => {
    for (const ip of ['::', '::1', '1::', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:1.2.3.4', '::ffff:1.2.3.4', 'FE80::1%eth0', 'a:b::c:d']) {
      expect(isIPv6(ip)).toBe(true);
      expect(ipv6Bytes(ip), ip).not.toBeNull();
    }
  });
  it('ipv6ToBig is its value; anything else throws', () => {
    expect(ipv6ToBig('2001:db8::1')).toBe(0x20010db8000000000000000000000001n);
    expect(() => ipv6ToBig('1::2::3')).toThrow(/not an IPv6 address/);
  });
});

describe('ipBytes', () => {
  it.each([
    ['192.0.2.1', 4, 'c0000201'],
    ['::ffff:192.0.2.1', 4, 'c0000201'],
    ['::FFFF:c000:0201', 4, 'c0000201'],
    ['2001:db8::1', 6, '20010db8000000000000000000000001'],
    ['::1', 6, '00000000000000000000000000000001'],
    // Only ::ffff:0:0/96 is IPv4 (per-IP limits, DNSBL names and state keys follow the family):
    // its IPv6 neighbours stay IPv6.
    ['1::ffff:c000:201', 6, '00010000000000000000ffffc0000201'],
    ['::fffe:c000:201', 6, '00000000000000000000fffec0000201'],
    ['::7fff:c000:201', 6, '000000000000000000007fffc0000201'],
    ['::ff:ffff:c000:201', 6, '000000000000000000ffffffc0000201'],
    ['::c000:201', 6, '000000000000000000000000c0000201'],
    ['64:ff9b::192.0.2.1', 6, '0064ff9b0000000000000000c0000201'],
  ] as const)('%s', (ip, family, bytes) => {
    const a = ipBytes(ip);
    expect([a?.family, hex(a?.bytes ?? null)]).toEqual([family, bytes]);
  });
  it.each(['1.2.3', '256.1.1.1', 'unix-socket', ''])('rejects "%s"', (ip) => expect(ipBytes(ip)).toBeNull());
});

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
    // A mapped network's prefix is an IPv6 length: /120 is the IPv4 /24.
    ['mapped network /120 is the IPv4 /24', '::ffff:198.51.100.0/120', '198.51.100.77', true],
    ['mapped network /120, outside', '::ffff:198.51.100.0/120', '198.51.101.1', false],
    ['mapped address alone is one address', '::ffff:198.51.100.7', '198.51.100.7', true],
    ['mapped network /96 is every IPv4 address', '::ffff:0.0.0.0/96', '203.0.113.9', true],
    // The longest prefixes are allowed (one address); a prefix inside a byte splits it.
    ['v4 /32, the address', '198.51.100.7/32', '198.51.100.7', true],
    ['v4 /32, the next one', '198.51.100.7/32', '198.51.100.8', false],
    ['v6 /128, the address', '2001:db8::1/128', '2001:db8::1', true],
    ['v6 /128, the next one', '2001:db8::1/128', '2001:db8::2', false],
    ['mapped /128 is one IPv4 address', '::ffff:198.51.100.7/128', '198.51.100.7', true],
    ['v4 /25, upper half', '192.0.2.128/25', '192.0.2.200', true],
    ['v4 /25, lower half', '192.0.2.128/25', '192.0.2.100', false],
    ['v6 /127, its pair', '2001:db8::/127', '2001:db8::1', true],
    ['v6 /127, past it', '2001:db8::/127', '2001:db8::2', false],
    ['spaces around the rule', ' 192.0.2.0/24 ', '192.0.2.9', true],
  ])('%s', (_n, cidr, ip, want) => expect(cidrContains(parseCidr(cidr), ip)).toBe(want));
  it.each(['192.0.2.0/33', '2001:db8::/129', 'example.com', '1.2.3/8', '10.0.0.0/x', '::ffff:198.51.100.0/24', '::ffff:198.51.100.0/129', '192.0.2.0/', '192.0.2.0/-1', '192.0.2.0/0024', '/24', ''])('rejects %s', (bad) => {
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

// The one place an address is written from its bytes (state keys, the console, PROXY v2, report).
describe('ipText (RFC 5952 text)', () => {
  const bytesOf = (a: string) => ipv6Bytes(a)!;
  it.each([
    ['all zeros', '0:0:0:0:0:0:0:0', '::'],
    ['loopback', '0:0:0:0:0:0:0:1', '::1'],
    ['a run at the end', '2001:db8:0:0:0:0:0:0', '2001:db8::'],
    // §4.2.2: one zero group alone is not shortened.
    ['one zero group', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    // §4.2.3: the longest run; of two equally long, the first.
    ['the longer run, not the first', '1:0:0:1:0:0:0:1', '1:0:0:1::1'],
    ['of two equal runs, the first', '0:0:1:0:0:1:1:1', '::1:0:0:1:1:1'],
    ['of two equal runs inside, the first', '1:0:0:1:0:0:1:1', '1::1:0:0:1:1'],
    // §4.1: no leading zeros, lower case.
    ['leading zeros dropped, lower case', '2001:0DB8:00AB:0:0:0:0:000F', '2001:db8:ab::f'],
    // §5: a v4-mapped address in mixed form.
    ['v4-mapped', '::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['not v4-mapped (ffff elsewhere)', '0:0:0:0:ffff:0:c000:201', '::ffff:0:c000:201'],
  ])('%s', (_n, a, text) => {
    expect(ipText(6, bytesOf(a))).toBe(text);
    expect(isIPv6(text)).toBe(true);
  });
  it('IPv4 dotted', () => expect(ipText(4, [192, 0, 2, 1])).toBe('192.0.2.1'));
});

describe('prefixText (a network as text)', () => {
  it.each([
    ['IPv4 /24', '192.0.2.77', 24, 64, '192.0.2.0/24'],
    ['IPv4 /20 cuts inside a byte', '192.0.31.77', 20, 64, '192.0.16.0/20'],
    ['IPv4 /32', '192.0.2.77', 32, 64, '192.0.2.77/32'],
    ['IPv4 /0', '192.0.2.77', 0, 64, '0.0.0.0/0'],
    ['v4-mapped counts as IPv4', '::ffff:192.0.2.77', 24, 64, '192.0.2.0/24'],
    ['IPv6 /64', '2001:db8:1:2:3:4:5:6', 24, 64, '2001:db8:1:2::/64'],
    ['IPv6 /56 cuts inside a group', '2001:db8:1:2ff:3:4:5:6', 24, 56, '2001:db8:1:200::/56'],
    ['IPv6 /128', '2001:db8::1', 24, 128, '2001:db8::1/128'],
    ['IPv6 /0', '2001:db8::1', 24, 0, '::/0'],
  ])('%s', (_n, ip, v4, v6, text) => expect(prefixText(ip, v4, v6)).toBe(text));
  it('not an address: null', () => expect(prefixText('not-an-ip', 24, 64)).toBeNull());
});
