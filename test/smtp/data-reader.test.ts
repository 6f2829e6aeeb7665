// DATA reader: only <CRLF>.<CRLF> ends a message; dot-unstuffing per RFC 5321 §4.5.2;
// lone CR/LF kept; every split of the input across chunks gives the same result.
import { describe, expect, it } from 'vitest';
import { DataReader } from '../../src/smtp/data-reader.js';

function run(input: string, splits: number[] = []): { body: string; end: number; rest: string; size: number } {
  const r = new DataReader();
  const buf = Buffer.from(input, 'latin1');
  const cuts = [0, ...splits, buf.length];
  let body = '';
  let offset = 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const chunk = buf.subarray(cuts[i], cuts[i + 1]);
    const res = r.feed(chunk);
    body += Buffer.concat(res.segments).toString('latin1');
    if (res.end >= 0) {
      offset = cuts[i]! + res.end;
      return { body, end: offset, rest: buf.subarray(offset).toString('latin1'), size: r.size };
    }
  }
  return { body, end: -1, rest: '', size: r.size };
}

const cases: { name: string; input: string; body: string; ended: boolean; rest?: string }[] = [
  { name: 'empty body', input: '.\r\n', body: '', ended: true },
  { name: 'simple', input: 'Subject: x\r\n\r\nhi\r\n.\r\n', body: 'Subject: x\r\n\r\nhi\r\n', ended: true },
  { name: 'stuffed dot removed', input: '..leading\r\n.\r\n', body: '.leading\r\n', ended: true },
  { name: 'lone dot-dot line', input: 'a\r\n..\r\n.\r\n', body: 'a\r\n.\r\n', ended: true },
  { name: 'LF.LF does not end', input: 'a\n.\nb\r\n.\r\n', body: 'a\n.\nb\r\n', ended: true },
  { name: 'LF.CRLF does not end', input: 'a\n.\r\nb\r\n.\r\n', body: 'a\n.\r\nb\r\n', ended: true },
  { name: 'CR.CR does not end', input: 'a\r.\rb\r\n.\r\n', body: 'a\r.\rb\r\n', ended: true },
  { name: 'CRLF.LF does not end', input: 'a\r\n.\nb\r\n.\r\n', body: 'a\r\n\nb\r\n', ended: true },
  { name: 'CRLF.CR+x keeps lone CR, drops stuffing dot', input: 'a\r\n.\rx\r\n.\r\n', body: 'a\r\n\rx\r\n', ended: true },
  { name: 'lone CR and LF kept', input: 'a\rb\nc\r\n.\r\n', body: 'a\rb\nc\r\n', ended: true },
  { name: 'no terminator', input: 'a\r\nb\r\n', body: 'a\r\nb\r\n', ended: false },
  { name: 'pipelined command after end', input: 'x\r\n.\r\nQUIT\r\n', body: 'x\r\n', ended: true, rest: 'QUIT\r\n' },
  { name: '8-bit bytes pass', input: 'caf\xe9\r\n.\r\n', body: 'caf\xe9\r\n', ended: true },
  { name: 'NUL passes', input: 'a\x00b\r\n.\r\n', body: 'a\x00b\r\n', ended: true },
  { name: 'dot inside line is content', input: 'a.b\r\n.c\r\n.\r\n', body: 'a.b\r\nc\r\n', ended: true },
  // Split after "b": a chunk that ends in CR + text is inside a line, so the "." that opens the
  // next chunk is content, not a line-start dot (the reader's tail rule).
  { name: 'lone CR then text at a chunk end, a dot next', input: 'a\rb.\r\nc\r\n.\r\n', body: 'a\rb.\r\nc\r\n', ended: true },
  // A line that starts with CR: the CRLF of an empty line must still count (a message that
  // ends with an empty line, or starts with one, would otherwise never end).
  { name: 'empty line before the end', input: 'a\r\n\r\n.\r\n', body: 'a\r\n\r\n', ended: true },
  { name: 'empty first line', input: '\r\n.\r\n', body: '\r\n', ended: true },
  { name: 'CR CR LF then the end', input: 'a\r\r\n.\r\n', body: 'a\r\r\n', ended: true },
  { name: 'CR x LF . CRLF does not end', input: 'a\rb\n.\r\nrest\r\n.\r\n', body: 'a\rb\n.\r\nrest\r\n', ended: true },
];

describe('DataReader', () => {
  for (const c of cases) {
    it(c.name, () => {
      const whole = run(c.input);
      expect(whole.body).toBe(c.body);
      expect(whole.end >= 0).toBe(c.ended);
      // size counts exactly the octets passed on (SIZE / maxDataSize are checked against it).
      expect(whole.size).toBe(c.body.length);
      if (c.rest !== undefined) expect(whole.rest).toBe(c.rest);
      // The same at every split point, and split into single bytes.
      for (let k = 1; k < c.input.length; k++) {
        const split = run(c.input, [k]);
        expect(split.body, `split at ${k}`).toBe(c.body);
        expect(split.end, `split at ${k}`).toBe(whole.end);
        expect(split.size, `split at ${k}`).toBe(c.body.length);
        if (c.rest !== undefined) expect(split.rest, `split at ${k}`).toBe(c.rest);
      }
      const bytes = run(c.input, Array.from({ length: c.input.length - 1 }, (_, i) => i + 1));
      expect(bytes.body).toBe(c.body);
      expect(bytes.end).toBe(whole.end);
      expect(bytes.size).toBe(c.body.length);
    });
  }

  it('counts unstuffed size', () => {
    const r = new DataReader();
    r.feed(Buffer.from('..ab\r\n.\r\n'));
    expect(r.size).toBe(5);
  });
});

// A seeded random differential check against the rule read straight from RFC 5321 §4.1.1.4
// and §4.5.2 (a line starts at offset 0 or after CRLF; there ".\r\n" ends the body and any
// other leading dot is dropped), over the octets that matter, whole and cut at random points.
describe('DataReader against the plain rule', () => {
  function reference(input: string): { body: string; end: number } {
    let body = '';
    for (let i = 0; i < input.length; ) {
      const lineStart = i === 0 || (input[i - 2] === '\r' && input[i - 1] === '\n');
      if (lineStart && input[i] === '.') {
        if (input.startsWith('.\r\n', i)) return { body, end: i + 3 };
        // "." or ".\r" at the very end may yet be the terminator: withheld until more comes.
        if (input.length - i <= 2 && '.\r'.startsWith(input.slice(i))) return { body, end: -1 };
        i++; // the stuffing dot
        continue;
      }
      body += input[i++];
    }
    return { body, end: -1 };
  }
  let seed = 777;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);

  it('3,000 random inputs, whole and cut at random points', () => {
    for (let n = 0; n < 3000; n++) {
      let input = n === 0 ? 'a\r\n.\r' : n === 1 ? 'a\r\n.' : '';
      const len = n < 2 ? 0 : rnd(40);
      for (let k = 0; k < len; k++) input += '\r\n.ab'[rnd(5)];
      if (n >= 2 && rnd(2) === 0) input += '\r\n.\r\n';
      const want = reference(input);
      const cuts = [...new Set(Array.from({ length: rnd(4) }, () => rnd(input.length + 1)))].sort((a, b) => a - b);
      for (const got of [run(input), run(input, cuts)]) {
        expect(got.end, JSON.stringify({ input, cuts })).toBe(want.end);
        expect(got.body, JSON.stringify({ input, cuts })).toBe(want.body);
      }
    }
  });
});
