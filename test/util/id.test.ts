// Session and message ids (src/util/id.ts): 17 base-36 octets, the millisecond clock first so
// ids sort by time, unique within the process. The clock part is reused while the millisecond
// stays the same; a call with another time must rewrite it.
import { describe, expect, it } from 'vitest';
import { newId } from '../../src/util/id.js';

const clock = (now: number) => now.toString(36).padStart(9, '0');

describe('newId', () => {
  it.each([
    { name: 'epoch start', now: 0 },
    { name: 'today', now: Date.UTC(2026, 11, 3, 7, 0, 0) },
    { name: 'the largest 9-digit clock (year 5188)', now: 36 ** 9 - 1 },
  ])('$name: 17 octets of [0-9a-z], the clock first', ({ now }) => {
    const id = newId(now);
    expect(id).toMatch(/^[0-9a-z]{17}$/);
    expect(id.slice(0, 9)).toBe(clock(now));
  });

  it('a call with another time rewrites the clock part, in either direction', () => {
    const t = Date.UTC(2026, 11, 3);
    for (const now of [t, t, t + 1, t, t - 1000, t - 1000, t + 5]) expect(newId(now).slice(0, 9)).toBe(clock(now));
  });

  it('100,000 ids in one millisecond and across several: all different, sorted by time then sequence', () => {
    const t = Date.UTC(2026, 11, 3);
    const ids: string[] = [];
    for (let i = 0; i < 100_000; i++) ids.push(newId(t + Math.floor(i / 40_000)));
    expect(new Set(ids).size).toBe(ids.length);
    // The sequence part wraps only after 36^4 = 1,679,616 ids: within this run it only grows.
    const seqs = ids.map((id) => id.slice(9, 13));
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]! || seqs[i - 1] === 'zzzz')).toBe(true);
    expect([...ids].sort()).toEqual(ids);
  });
});
