// Line framing over received chunks: every split of the input gives the same lines, an
// over-long line is dropped whole (RFC 5321 §4.5.3.1.4) and the next line is intact, and
// nothing is copied except the part of a line that straddles two chunks, once.
import { describe, expect, it, vi } from 'vitest';
import { LineBuffer, TOO_LONG } from '../../src/smtp/line-buffer.js';

/** Each line as text, or 'TOO_LONG' for a dropped one. */
function drain(b: LineBuffer, max: number): string[] {
  const out: string[] = [];
  for (let l = b.next(max); l !== null; l = b.next(max)) out.push(l === TOO_LONG ? 'TOO_LONG' : l.toString('latin1'));
  return out;
}

describe('LineBuffer', () => {
  const cases: { name: string; input: string; max: number; lines: string[]; left: number }[] = [
    { name: 'CRLF lines', input: 'EHLO a\r\nMAIL FROM:<>\r\n', max: 512, lines: ['EHLO a', 'MAIL FROM:<>'], left: 0 },
    { name: 'bare LF ends a command line too', input: 'NOOP\nRSET\r\n', max: 512, lines: ['NOOP', 'RSET'], left: 0 },
    { name: 'a partial line waits', input: 'NOOP\r\nRSE', max: 512, lines: ['NOOP'], left: 3 },
    { name: 'exactly the limit incl. CRLF passes', input: 'x'.repeat(10) + '\r\n', max: 12, lines: ['x'.repeat(10)], left: 0 },
    { name: 'one over the limit is dropped whole, the next line survives', input: 'x'.repeat(11) + '\r\nNOOP\r\n', max: 12, lines: ['TOO_LONG', 'NOOP'], left: 0 },
    { name: 'a huge line without LF is dropped as it comes', input: 'y'.repeat(5000), max: 512, lines: [], left: 0 },
    { name: 'a huge line then its LF is one TOO_LONG', input: 'y'.repeat(5000) + '\r\nQUIT\r\n', max: 512, lines: ['TOO_LONG', 'QUIT'], left: 0 },
  ];
  it.each(cases)('$name, at every split point', ({ input, max, lines, left }) => {
    const bytes = Buffer.from(input, 'latin1');
    for (let cut = 0; cut <= bytes.length; cut += Math.max(1, Math.floor(bytes.length / 97))) {
      const b = new LineBuffer();
      b.push(bytes.subarray(0, cut));
      const got = drain(b, max);
      b.push(bytes.subarray(cut));
      got.push(...drain(b, max));
      expect(got).toEqual(lines);
      expect(b.bytes).toBe(left);
    }
  });

  it('byte-at-a-time input gives the same lines', () => {
    const b = new LineBuffer();
    const input = Buffer.from('EHLO a\r\n' + 'z'.repeat(600) + '\r\nRSET\r\n');
    const got: string[] = [];
    for (const byte of input) {
      b.push(Buffer.from([byte]));
      got.push(...drain(b, 512));
    }
    expect(got).toEqual(['EHLO a', 'TOO_LONG', 'RSET']);
  });

  it('peek() and takeAll() see the waiting bytes in order', () => {
    const b = new LineBuffer();
    b.push(Buffer.from('ab'));
    b.push(Buffer.from('cd'));
    expect(b.peek(3).toString()).toBe('abc');
    expect(b.hasLine()).toBe(false);
    b.push(Buffer.from('\n'));
    expect(b.hasLine()).toBe(true);
    expect(Buffer.concat(b.takeAll()).toString()).toBe('abcd\n');
    expect(b.bytes).toBe(0);
  });

  it('a long line dripped in small reads is scanned and copied once, not again on every read', () => {
    // Counted work, not time: every octet indexOf looks at, and every octet Buffer.concat copies.
    const L = 60_000;
    const indexOf = vi.spyOn(Buffer.prototype, 'indexOf');
    const concat = vi.spyOn(Buffer, 'concat');
    const b = new LineBuffer();
    const got: string[] = [];
    let scanned = 0;
    let copied = 0;
    try {
      b.push(Buffer.from('NOOP\r\n'));
      for (let i = 0; i < L; i += 3) {
        b.push(Buffer.from('abc'));
        got.push(...drain(b, 65_536));
        b.hasLine();
      }
      b.push(Buffer.from('\r\nQUIT\r\n'));
      got.push(...drain(b, 65_536));
      // Read before mockRestore, which clears what the spies saw.
      scanned = indexOf.mock.contexts.reduce<number>((a, buf: unknown, i) => a + (buf as Buffer).length - Number(indexOf.mock.calls[i]![1] ?? 0), 0);
      copied = concat.mock.results.reduce((a, r) => a + (r.value as Buffer).length, 0);
    } finally {
      indexOf.mockRestore();
      concat.mockRestore();
    }
    expect(got.map((l) => l.length)).toEqual([4, L, 4]);
    expect(scanned).toBeLessThan(4 * L);
    expect(copied).toBeLessThan(2 * L);
  });
});
