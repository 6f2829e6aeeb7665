// postscreen's entry syntax: zones, filters with ranges and lists, weights; what is rejected;
// which answers a filter matches.

import { describe, expect, it } from 'vitest';
import { matchFilter, parseProvider } from '../../src/dnsbl/provider.js';

describe('provider syntax', () => {
  const ok: [string, string, string | null, number][] = [
    ['bl.test', 'bl.test', null, 1],
    ['BL.Test.', 'bl.test', null, 1],
    ['zen.spamhaus.org=127.0.0.[2..11]*3', 'zen.spamhaus.org', '127.0.0.[2..11]', 3],
    ['list.dnswl.org=127.0.[0..255].[1;2;3]*-5', 'list.dnswl.org', '127.0.[0..255].[1;2;3]', -5],
    ['bl.test*2', 'bl.test', null, 2],
    ['bl.test=127.0.0.2', 'bl.test', '127.0.0.2', 1],
    // A one-value range is a range, not an empty one.
    ['bl.test=127.0.0.[4..4]', 'bl.test', '127.0.0.[4..4]', 1],
  ];
  for (const [raw, zone, filter, weight] of ok) {
    it(raw, () => {
      const p = parseProvider(raw);
      expect([p.zone, p.filter === null ? null : filter, p.weight]).toEqual([zone, filter, weight]);
    });
  }
  // Each refusal names its reason: the operator reads it at start-up (a config error).
  const bad: [string, RegExp][] = [
    ['', /bad zone/],
    ['bad zone', /bad zone/],
    ['bl..test', /bad zone/],
    ['bl.test=127.0.0', /four octets/],
    ['bl.test=127.0.0.2.1', /four octets/],
    ['bl.test=127.0.0.256', /bad octet "256"/],
    ['bl.test=127.0.0.0002', /bad octet "0002"/],
    ['bl.test=127.0.0.x', /bad octet "x"/],
    ['bl.test=127.0.0.[3..2]', /empty range "3..2"/],
    ['bl.test=127.0.0.[1..2..3]', /bad range "1..2..3"/],
    ['bl.test=127.0.0.[]', /bad pattern "\[\]"/],
    ['bl.test=127.0.0.[2]x', /bad pattern/],
    ['bl.test=127.0.0.[2', /unbalanced brackets/],
    ['bl.test=127.0.0.2]', /unbalanced brackets/],
    ['bl.test=127.0.0.[[2]]', /unbalanced brackets/],
    ['bl.test*x', /bad weight "x"/],
    ['bl.test*', /bad weight ""/],
    ['bl.test*1234567', /bad weight "1234567"/],
    ['bl.test*2x', /bad weight "2x"/],
  ];
  for (const [raw, why] of bad) it(`rejects "${raw}"`, () => expect(() => parseProvider(raw)).toThrow(why));
  it('a weight of six digits, signed, is taken', () => expect(parseProvider('bl.test*-999999').weight).toBe(-999999));

  const filters: [string, string, boolean][] = [
    ['bl.test', '127.0.0.9', true],
    ['bl.test=127.0.0.[2..11]', '127.0.0.11', true],
    ['bl.test=127.0.0.[2..11]', '127.0.0.12', false],
    ['bl.test=127.0.[0..255].[1;3]', '127.0.5.3', true],
    ['bl.test=127.0.[0..255].[1;3]', '127.0.5.2', false],
    ['bl.test=127.0.0.2', '127.0.0.2', true],
    ['bl.test=127.0.0.[4..4]', '127.0.0.4', true],
    ['bl.test=127.0.0.[4..4]', '127.0.0.5', false],
  ];
  for (const [raw, answer, want] of filters) {
    it(`filter ${raw} vs ${answer}`, () => expect(matchFilter(parseProvider(raw).filter, answer)).toBe(want));
  }
});
