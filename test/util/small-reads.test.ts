// SmallReads: small reads are copied into append-only blocks, large ones queued as they came;
// the queue always holds the octets in order, and octets handed out are never rewritten.
import { describe, expect, it } from 'vitest';
import { SMALL_READ, SmallReads } from '../../src/util/small-reads.js';

const read = (n: number, o: number) => Buffer.alloc(n, o);

describe('SmallReads', () => {
  const cases: { name: string; sizes: number[]; maxPieces: number }[] = [
    { name: '10,000 one-octet reads', sizes: Array<number>(10_000).fill(1), maxPieces: 1 },
    { name: '100,000 one-octet reads (several blocks)', sizes: Array<number>(100_000).fill(1), maxPieces: 7 },
    { name: 'large reads queued as they came', sizes: [SMALL_READ, 5000, SMALL_READ], maxPieces: 3 },
    { name: 'small and large alternating', sizes: [1, SMALL_READ, 2, SMALL_READ, 3], maxPieces: 5 },
    { name: 'a read just under the limit', sizes: [SMALL_READ - 1, SMALL_READ - 1], maxPieces: 1 },
  ];
  for (const c of cases) {
    it(`${c.name}: in order, at most ${c.maxPieces} pieces`, () => {
      const s = new SmallReads();
      const q: Buffer[] = [];
      const all = c.sizes.map((n, i) => read(n, 0x20 + (i % 90)));
      for (const b of all) s.push(q, b);
      expect(q.length).toBeLessThanOrEqual(c.maxPieces);
      expect(Buffer.concat(q).equals(Buffer.concat(all))).toBe(true);
    });
  }

  it('octets handed out (the queue emptied) are never rewritten by later reads', () => {
    const s = new SmallReads();
    let q: Buffer[] = [];
    for (const c of 'abc') s.push(q, Buffer.from(c));
    const out = q;
    q = [];
    for (const c of 'xyz') s.push(q, Buffer.from(c));
    expect(Buffer.concat(out).toString()).toBe('abc');
    expect(Buffer.concat(q).toString()).toBe('xyz');
    s.reset();
    s.push(q, Buffer.from('!'));
    expect(Buffer.concat(out).toString() + Buffer.concat(q).toString()).toBe('abcxyz!');
  });
});
