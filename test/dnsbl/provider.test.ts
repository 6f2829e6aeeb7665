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
  const bad = ['', 'bl.test=127.0.0', 'bl.test=127.0.0.256', 'bl.test=127.0.0.[3..2]', 'bl.test=127.0.0.[2', 'bl.test*x', 'bad zone', 'bl..test'];
  for (const raw of bad) it(`rejects "${raw}"`, () => expect(() => parseProvider(raw)).toThrow());

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
