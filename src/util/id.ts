// Unique, time-sortable ids for sessions and messages: 9 base-36 digits of the
// millisecond clock, 4 of a per-process sequence and 4 random, so ids sort by time,
// never repeat within a process and almost surely not across processes.
//
// An id is written into one small buffer and read back as one flat latin1 string: a
// held session keeps a 17-octet string, not a rope of three concatenated parts.

import { randomBytes } from 'node:crypto';

const DIGITS = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz', 'latin1');
const out = Buffer.alloc(17);
let seq = 0;
let pool = randomBytes(256);
let poolPos = 0;

/** Writes `n` as `width` base-36 digits (zero-padded, most significant first) at `at`. */
function put36(n: number, at: number, width: number): void {
  let v = n;
  for (let i = at + width - 1; i >= at; i--) {
    out[i] = DIGITS[v % 36]!;
    v = Math.floor(v / 36);
  }
}

/** The clock part written last (most ids in a busy second share their millisecond). */
let lastNow = -1;

export function newId(now = Date.now()): string {
  seq = (seq + 1) % 1_679_616; // 36^4
  if (poolPos + 3 > pool.length) {
    pool = randomBytes(3072); // 1,024 ids per refill
    poolPos = 0;
  }
  const r = pool.readUIntBE(poolPos, 3) % 1_679_616;
  poolPos += 3;
  if (now !== lastNow) {
    put36(now, 0, 9);
    lastNow = now;
  }
  put36(seq, 9, 4);
  put36(r, 13, 4);
  return out.toString('latin1', 0, 17);
}
