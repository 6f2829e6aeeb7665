// LineBuffer edges the framing table does not reach: reading from an empty buffer, empty
// chunks, take() across chunks (BDAT reads its octets with it), peek() within one chunk, and
// input split into one-octet reads while the session is busy (what it holds for them).
import { describe, expect, it } from 'vitest';
import { LineBuffer } from '../../src/smtp/line-buffer.js';

describe('LineBuffer edges', () => {
  it('an empty buffer has no line, peeks and takes nothing', () => {
    const b = new LineBuffer();
    expect(b.next(512)).toBeNull();
    expect(b.hasLine()).toBe(false);
    expect(b.peek(5).length).toBe(0);
    expect(b.take(5)).toEqual([]);
    expect(b.takeAll()).toEqual([]);
  });

  it('empty chunks change nothing', () => {
    const b = new LineBuffer();
    b.push(Buffer.alloc(0));
    expect(b.bytes).toBe(0);
    b.push(Buffer.from('NO'));
    b.push(Buffer.alloc(0));
    b.push(Buffer.from('OP\r\n'));
    expect(b.next(512)?.toString()).toBe('NOOP');
    expect(b.bytes).toBe(0);
    expect(b.next(512)).toBeNull();
  });

  it('take(n) returns exactly n octets across chunks and leaves the rest in order', () => {
    const b = new LineBuffer();
    for (const s of ['abc', 'def', 'gh\r\nQUIT\r\n']) b.push(Buffer.from(s));
    expect(Buffer.concat(b.take(5)).toString()).toBe('abcde');
    expect(b.bytes).toBe(11);
    expect(Buffer.concat(b.take(3)).toString()).toBe('fgh');
    expect(b.next(512)?.toString()).toBe('');
    expect(b.next(512)?.toString()).toBe('QUIT');
    expect(b.bytes).toBe(0);
  });

  it('clear() also forgets a line being dropped: the next line is read whole', () => {
    const b = new LineBuffer();
    b.push(Buffer.from('x'.repeat(600)));
    expect(b.next(512)).toBeNull(); // over the limit, no LF yet: being dropped
    b.clear();
    b.push(Buffer.from('NOOP\r\n'));
    expect(b.next(512)?.toString()).toBe('NOOP');
  });

  it('peek(n) within the first chunk, and past the end of all chunks', () => {
    const b = new LineBuffer();
    b.push(Buffer.from('abcdef'));
    b.push(Buffer.from('gh'));
    expect(b.peek(3).toString()).toBe('abc');
    expect(b.peek(7).toString()).toBe('abcdefg');
    expect(b.peek(100).toString()).toBe('abcdefgh');
    expect(b.bytes).toBe(8);
  });

  it('64 KiB in one-octet reads queue as a few blocks (4 KiB), not 65,536 Buffers; lines and octets unchanged', () => {
    const b = new LineBuffer();
    const input = Buffer.from('NOOP\r\n'.repeat(10_922) + 'NOOP');
    // Buffer.alloc: each read with a backing store of its own, as a socket read has.
    for (const o of input) b.push(Buffer.alloc(1, o));
    expect(b.bytes).toBe(input.length);
    const pieces = b.takeAll();
    expect(pieces.length).toBeLessThanOrEqual(20);
    expect(Buffer.concat(pieces).equals(input)).toBe(true);
    for (const o of input) b.push(Buffer.alloc(1, o));
    for (let i = 0; i < 10_922; i++) expect(b.next(512)?.toString()).toBe('NOOP');
    expect(b.next(512)).toBeNull();
    b.push(Buffer.from('\r\n'));
    expect(b.next(512)?.toString()).toBe('NOOP');
  });

  it('octets handed out from a block are never rewritten by the small reads after them', () => {
    const b = new LineBuffer();
    b.push(Buffer.from('BDAT 3\r\n'));
    for (const c of 'abcR') b.push(Buffer.from(c)); // queued behind the command: into a block
    expect(b.next(512)?.toString()).toBe('BDAT 3');
    const part = b.take(3);
    for (const c of 'SET\r\nQUIT\r\n') b.push(Buffer.from(c));
    expect(Buffer.concat(part).toString()).toBe('abc');
    expect(b.next(512)?.toString()).toBe('RSET');
    expect(b.next(512)?.toString()).toBe('QUIT');
    expect(b.bytes).toBe(0);
  });
});
