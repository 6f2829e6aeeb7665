// RFC 5782 §2 without a server: query names (IPv4, IPv4-mapped, IPv6 nibbles), private
// ranges that are never asked about, answers that are never listings.

import { describe, expect, it } from 'vitest';
import { isBadAnswer, isPrivate, queryName } from '../../src/dnsbl/query.js';

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
    // The public neighbours of each range, so a range check that is too wide fails here.
    ['169.255.0.1', false], ['168.254.0.1', false], ['172.15.255.255', false], ['171.16.0.1', false],
    ['192.169.0.1', false], ['191.168.0.1', false], ['100.63.255.255', false], ['101.64.0.1', false],
    ['11.0.0.1', false], ['126.255.255.255', false], ['1.0.0.1', false],
    ['::2', false], ['1::1', false], ['febf::1', true], ['fec0::1', false], ['fe7f::1', false], ['80::1', false], ['fe::1', false], ['fb00::1', false],
  ];
  for (const [ip, want] of cases) it(ip, () => expect(isPrivate(ip)).toBe(want));
});

describe('bad answers', () => {
  const cases: [string, boolean][] = [
    ['127.0.0.2', false], ['127.1.2.3', false], ['127.255.255.254', true], ['127.255.255.252', true],
    ['10.0.0.1', true], ['192.0.2.1', true], ['garbage', true],
    // Only 127.255.255.0/24 is the refusal range, not its neighbours.
    ['127.255.0.1', false], ['127.0.255.1', false], ['127.255.254.1', false],
  ];
  for (const [a, want] of cases) it(a, () => expect(isBadAnswer(a)).toBe(want));
});
