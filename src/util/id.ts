// Unique, time-sortable ids for sessions and messages: 9 base-36 digits of the
// millisecond clock, 4 of a per-process sequence and 4 random, so ids sort by time,
// never repeat within a process and almost surely not across processes.

import { randomBytes } from 'node:crypto';

let seq = 0;
let pool = randomBytes(256);
let poolPos = 0;

function rand4(): string {
  if (poolPos + 3 > pool.length) {
    pool = randomBytes(256);
    poolPos = 0;
  }
  const n = pool.readUIntBE(poolPos, 3) % 1_679_616; // 36^4
  poolPos += 3;
  return n.toString(36).padStart(4, '0');
}

export function newId(now = Date.now()): string {
  seq = (seq + 1) % 1_679_616;
  return now.toString(36).padStart(9, '0') + seq.toString(36).padStart(4, '0') + rand4();
}
