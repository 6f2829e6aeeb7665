// Command-line framing over a queue of received chunks. Chunks are kept as they came and
// lines are cut out with Buffer.indexOf; bytes are copied only when one line straddles two
// chunks, and then once, when its end has come, so a deep pipelined batch costs linear time.
// How far the input is known to hold no LF is remembered, so a line dripped in many reads is
// scanned once, not again on every read.
// Small reads that arrive while others wait are copied into shared blocks (small-reads.ts), so
// what a session holds stays near its octets (maxPendingInput) however finely input is split.

import { SmallReads } from '../util/small-reads.js';

const LF = 10;
/** No chunk waiting: shared and frozen, so an idle session holds no array of its own. */
const NONE: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/** Returned by next() for a line longer than the limit (it has been dropped whole). */
export const TOO_LONG = Symbol('line too long');

export class LineBuffer {
  private chunks: Buffer[] = NONE;
  /** Octets waiting, over all chunks. */
  bytes = 0;
  /** Dropping the rest of an over-long line until its LF. */
  private discarding = false;
  /** Small reads queued behind others are copied into shared blocks (made at the first). */
  private small: SmallReads | null = null;
  /** The first this many waiting octets hold no LF (already scanned). */
  private scanned = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    // The common case, nothing waiting (the session answers as input comes): queued as is, no copy.
    if (this.chunks === NONE) this.chunks = [chunk];
    else (this.small ??= new SmallReads()).push(this.chunks, chunk);
  }

  /**
   * The next whole line (without CRLF / LF), TOO_LONG when a line of more than `max` octets
   * including its end was dropped, or null when no whole line has arrived yet.
   * RFC 5321 §4.5.3.1.4: a command line is at most 512 octets incl. CRLF.
   */
  next(max: number): Buffer | typeof TOO_LONG | null {
    for (;;) {
      const c = this.chunks[0];
      if (c === undefined) return null;
      const lf = this.findLf();
      if (lf >= 0 && lf < c.length) {
        this.consume(lf + 1);
        if (this.discarding || lf + 1 > max) {
          this.discarding = false;
          return TOO_LONG;
        }
        return c.subarray(0, lf > 0 && c[lf - 1] === 13 ? lf - 1 : lf);
      }
      // The line does not end in the first chunk: too long already, still coming, or ending in a later chunk.
      if (this.discarding || (lf < 0 ? this.bytes >= max : lf + 1 > max)) {
        this.discarding = true;
        this.consume(c.length);
        continue;
      }
      if (lf < 0) return null;
      this.join(lf + 1);
    }
  }

  /** Offset of the first waiting LF (-1: none yet), scanning only octets not scanned before. */
  private findLf(): number {
    let off = 0;
    for (const c of this.chunks) {
      const end = off + c.length;
      if (this.scanned < end) {
        const lf = c.indexOf(LF, this.scanned - off);
        if (lf >= 0) return off + lf;
        this.scanned = end;
      }
      off = end;
    }
    return -1;
  }

  /** The first n waiting octets (one line, within the limit) made one chunk: one copy per straddling line. */
  private join(n: number): void {
    const parts: Buffer[] = [];
    let left = n;
    let i = 0;
    while (left > 0) {
      const d = this.chunks[i]!;
      if (d.length <= left) {
        parts.push(d);
        left -= d.length;
        i++;
      } else {
        parts.push(d.subarray(0, left));
        this.chunks[i] = d.subarray(left);
        left = 0;
      }
    }
    this.chunks.splice(0, i, Buffer.concat(parts, n));
  }

  /** True when a whole line is waiting. */
  hasLine(): boolean {
    return this.findLf() >= 0;
  }

  /** Up to n of the first waiting octets (for an early-talk sample). */
  peek(n: number): Buffer {
    const c = this.chunks[0];
    if (c === undefined) return Buffer.alloc(0);
    if (c.length >= n || this.chunks.length === 1) return Buffer.from(c.subarray(0, n));
    return Buffer.concat(this.chunks, Math.min(n, this.bytes));
  }

  /**
   * At most `n` of the first waiting octets, in order, as the chunks they came in (no copy).
   * A BDAT chunk (RFC 3030 §2) is read with this: its octets follow the command line in the
   * same queue and are data, not lines.
   */
  take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0];
      if (c === undefined) break;
      const k = Math.min(left, c.length);
      out.push(k === c.length ? c : c.subarray(0, k));
      this.consume(k);
      left -= k;
    }
    return out;
  }

  /** Everything waiting, in order (DATA takes over the input). */
  takeAll(): Buffer[] {
    const all = this.chunks;
    this.clear();
    return all;
  }

  clear(): void {
    this.chunks = NONE;
    this.bytes = 0;
    this.scanned = 0;
    this.discarding = false;
    this.small?.reset();
  }

  private consume(n: number): void {
    const c = this.chunks[0]!;
    this.bytes -= n;
    this.scanned = this.scanned > n ? this.scanned - n : 0;
    if (n < c.length) this.chunks[0] = c.subarray(n);
    else if (this.chunks.length === 1) {
      this.chunks = NONE;
      this.small?.reset(); // a held session keeps no block
    } else this.chunks.shift();
  }
}
