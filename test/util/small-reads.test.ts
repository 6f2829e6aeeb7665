// SmallReads: runs of small reads are copied into append-only blocks, the rest queued as it came;
// the queue always holds the octets in order, and octets handed out are never rewritten.
import { describe, expect, it } from 'vitest';
import { SMALL_READ, SmallReads } from '../../src/util/small-reads.js';

const read = (n: number, o: number) => Buffer.alloc(n, o);

describe('SmallReads', () => {
  const cases: { name: string; sizes: number[]; maxPieces: number }[] = [
    { name: '10,000 one-octet reads (the first queued as is)', sizes: Array<number>(10_000).fill(1), maxPieces: 5 },
    { name: '100,000 one-octet reads (several blocks)', sizes: Array<number>(100_000).fill(1), maxPieces: 27 },
    { name: 'large reads queued as they came', sizes: [SMALL_READ, 5000, SMALL_READ], maxPieces: 3 },
    { name: 'small and large alternating', sizes: [1, SMALL_READ, 2, SMALL_READ, 3], maxPieces: 5 },
    { name: 'reads just under the limit', sizes: [SMALL_READ - 1, SMALL_READ - 1, SMALL_READ - 1], maxPieces: 2 },
    { name: 'one small read alone is not copied', sizes: [5], maxPieces: 1 },
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

  it('a lone small read (a short message after its header) is queued as it came, not copied', () => {
    const s = new SmallReads();
    const header = Buffer.from('Received: from x\r\n');
    const body = Buffer.from('Subject: hi\r\n\r\nhello\r\n');
    const q = [header];
    s.push(q, body);
    expect(q[1]).toBe(body);
  });

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
