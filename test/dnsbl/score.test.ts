// Scoring without a server: allow lists first, block-list weights add up to the threshold,
// and the zone a listed client's reply names (largest weight, first on a tie).

import { describe, expect, it } from 'vitest';
import { replyZone, score } from '../../src/dnsbl/score.js';
import type { DnsZoneResult } from '../../src/store/metadata.js';

const z = (zone: string, matched: boolean, weight = 1): DnsZoneResult => ({ zone, answers: matched ? ['127.0.0.2'] : [], matched, weight });

describe('score', () => {
  const cases: { name: string; wl: DnsZoneResult[]; bl: DnsZoneResult[]; threshold: number; want: [number, boolean, boolean] }[] = [
    { name: 'nothing matched', wl: [], bl: [z('a', false), z('b', false)], threshold: 1, want: [0, false, false] },
    { name: 'one match at threshold 1', wl: [], bl: [z('a', true), z('b', false)], threshold: 1, want: [1, true, false] },
    { name: 'weights add up', wl: [], bl: [z('a', true, 2), z('b', true, 1)], threshold: 3, want: [3, true, false] },
    { name: 'below the threshold', wl: [], bl: [z('a', true, 2), z('b', false, 1)], threshold: 3, want: [2, false, false] },
    { name: 'negative weight pulls below', wl: [], bl: [z('a', true, 2), z('w', true, -5)], threshold: 1, want: [-3, false, false] },
    { name: 'an allow list wins, score still counted', wl: [z('w', true)], bl: [z('a', true, 5)], threshold: 1, want: [5, false, true] },
    { name: 'an unmatched allow list does not allow', wl: [z('w', false)], bl: [z('a', true)], threshold: 1, want: [1, true, false] },
    { name: 'threshold 0 needs a match', wl: [], bl: [z('a', false)], threshold: 0, want: [0, false, false] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = score(c.wl, c.bl, c.threshold);
      expect([r.score, r.listed, r.allowed]).toEqual(c.want);
      expect(r.zones).toEqual([...c.wl, ...c.bl]);
    });
  }
});

describe('replyZone', () => {
  const r = (zones: DnsZoneResult[]) => ({ score: 0, listed: true, allowed: false, zones });
  it('largest weight', () => expect(replyZone(r([z('a', true, 1), z('b', true, 4)]))).toBe('b'));
  it('first on a tie', () => expect(replyZone(r([z('a', true, 2), z('b', true, 2)]))).toBe('a'));
  it('unmatched zones never named', () => expect(replyZone(r([z('a', false, 9), z('b', true, 1)]))).toBe('b'));
  it('nothing matched: empty', () => expect(replyZone(r([z('a', false)]))).toBe(''));
  it('restricted to the block lists when given', () => {
    expect(replyZone(r([z('w', true, 9), z('b', true, 1)]), new Set(['b']))).toBe('b');
  });
});
