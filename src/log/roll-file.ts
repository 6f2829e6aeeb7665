// A pino transport (it runs in pino's worker thread) that writes the log to one file per period
// under logPath, fakemx.2026-12.log (monthly), fakemx.2026-12-03.log (daily) or
// fakemx.2026-12-03T02.log (hourly), in UTC like the lines' own timestamps, and keeps the newest
// `keep` files (FakeSMTP: 12 monthly files). Own code, not pino-roll: pino-roll arms one
// setTimeout for the whole period, Node fires a wait over 2^31-1 ms (24.8 days) at once, and a
// 30-day period rolled hundreds of files a second for the first days of every period.

import { once } from 'node:events';
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';

export type RollFrequency = 'hourly' | 'daily' | 'monthly';

export interface RollOptions {
  dir: string;
  /** File names are `<base>.<period>.log`. */
  base: string;
  frequency: RollFrequency;
  /** Files kept, the current one included. */
  keep: number;
}

/** Node's timers hold at most 2^31-1 ms (a longer delay fires after 1 ms): longer waits are armed in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

const PERIOD = /^\d{4}-\d{2}(?:-\d{2}(?:T\d{2})?)?$/;

/** The period a moment falls in: "2026-12", "2026-12-03" or "2026-12-03T02" (UTC). */
export function periodOf(f: RollFrequency, ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.slice(0, f === 'monthly' ? 7 : f === 'daily' ? 10 : 13);
}

/** The first millisecond of the period after the one `ms` is in. */
export function nextBoundary(f: RollFrequency, ms: number): number {
  const d = new Date(ms);
  const [y, m, day, h] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()];
  if (f === 'monthly') return Date.UTC(y, m + 1, 1);
  if (f === 'daily') return Date.UTC(y, m, day + 1);
  return Date.UTC(y, m, day, h + 1);
}

/** How long to wait before looking at the clock again: to the boundary, in steps a timer can hold. */
export function rollDelay(f: RollFrequency, ms: number): number {
  return Math.min(Math.max(nextBoundary(f, ms) - ms, 0), MAX_TIMER_MS);
}

export function fileName(base: string, period: string): string {
  return `${base}.${period}.log`;
}

/**
 * When a period named "2026-12", "2026-12-03" or "2026-12-03T02" ends (UTC ms): its last line
 * is older than that. Names alone do not sort by it across frequencies ("2026-12-02T05" sorts
 * after "2026-12-02" though that hour ended first).
 */
function periodEnd(period: string): number {
  const [y, m, d, h] = period.split(/[-T]/).map(Number) as [number, number, number?, number?];
  const f: RollFrequency = h !== undefined ? 'hourly' : d !== undefined ? 'daily' : 'monthly';
  return nextBoundary(f, Date.UTC(y, m - 1, d ?? 1, h ?? 0));
}

/**
 * Deletes the oldest of this logger's files (any frequency's names, so a changed setting still
 * prunes) until `keep` are left; the current file is never deleted. Oldest: the period that
 * ended first.
 */
export async function pruneLogs(o: Pick<RollOptions, 'dir' | 'base' | 'keep'>, current: string): Promise<string[]> {
  const prefix = `${o.base}.`;
  const period = (n: string) => n.slice(prefix.length, -4);
  const ours = (await readdir(o.dir))
    .filter((n) => n.startsWith(prefix) && n.endsWith('.log') && PERIOD.test(period(n)))
    .map((n) => ({ n, end: periodEnd(period(n)) }))
    .sort((a, b) => a.end - b.end || (a.n < b.n ? -1 : 1))
    .map((x) => x.n);
  const old = ours.filter((n) => n !== current).slice(0, Math.max(ours.length - o.keep, 0));
  for (const n of old) await unlink(join(o.dir, n)).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
  return old;
}

/** The transport: pino's worker calls this with the options from logger.ts. */
export default async function rollFile(o: RollOptions, now: () => number = Date.now): Promise<pino.DestinationStream> {
  let period = periodOf(o.frequency, now());
  // 0640 like the corpus: log lines name clients and senders (a volume made without a umask,
  // as Docker's, would otherwise leave them world-readable). Kept for the files reopen() makes.
  const dest = pino.destination({ dest: join(o.dir, fileName(o.base, period)), mkdir: true, sync: false, mode: 0o640 });
  const prune = (): void => {
    // A file that cannot be deleted costs disk, not log lines: say so on stderr and go on.
    pruneLogs(o, fileName(o.base, period)).catch((e: unknown) => {
      process.stderr.write(`fakemx: log files: ${e instanceof Error ? e.message : String(e)}\n`);
    });
  };
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const p = periodOf(o.frequency, now());
    if (p !== period) {
      period = p;
      // reopen() waits for a write in flight, so no line is split between two files. (sonic-boom
      // 4 drops its close if end() comes during that wait: a stop within a write's time of a roll,
      // once a period, leaves the stop to pino's worker exit.)
      dest.reopen(join(o.dir, fileName(o.base, p)));
      prune();
    }
    timer = setTimeout(tick, rollDelay(o.frequency, now())).unref();
  };
  dest.once('close', () => clearTimeout(timer));
  await once(dest, 'ready');
  prune();
  tick();
  return dest;
}
