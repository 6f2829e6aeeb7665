// Command-line framing over a queue of received chunks. Chunks are kept as they came and
// lines are cut out with Buffer.indexOf; bytes are copied only when one line straddles two
// chunks, and then at most one line's worth, so a deep pipelined batch costs linear time.
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
      const lf = c.indexOf(LF);
      if (lf >= 0) {
        this.consume(lf + 1);
        if (this.discarding || lf + 1 > max) {
          this.discarding = false;
          return TOO_LONG;
        }
        return c.subarray(0, lf > 0 && c[lf - 1] === 13 ? lf - 1 : lf);
      }
      // No LF in the first chunk.
      if (this.discarding || c.length >= max) {
        this.discarding = true;
        this.consume(c.length);
        continue;
      }
      const d = this.chunks[1];
      if (d === undefined) return null;
      // The line straddles chunks: join this part with the next chunk up to its first LF
      // (never more than the line limit), so the copy is bounded by one line.
      const dl = d.indexOf(LF);
      const take = Math.min(dl >= 0 ? dl + 1 : d.length, max);
      this.chunks[0] = Buffer.concat([c, d.subarray(0, take)]);
      if (take === d.length) this.chunks.splice(1, 1);
      else this.chunks[1] = d.subarray(take);
    }
  }

  /** True when a whole line is waiting (cheap: looks at the first chunk, then the others). */
  hasLine(): boolean {
    for (const c of this.chunks) if (c.indexOf(LF) >= 0) return true;
    return false;
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
    this.discarding = false;
    this.small?.reset();
  }

  private consume(n: number): void {
    const c = this.chunks[0]!;
    this.bytes -= n;
    if (n < c.length) this.chunks[0] = c.subarray(n);
    else if (this.chunks.length === 1) {
      this.chunks = NONE;
      this.small?.reset(); // a held session keeps no block
    } else this.chunks.shift();
  }
}
