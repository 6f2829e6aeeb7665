// The disk cap of one corpus: store.maxBytes (the corpus's own size: messages, records,
// journals, and files at its root such as the console's index snapshot) and store.minFreeBytes (free space left on its filesystem). The state is decided
// in the background, after each stored message and on a timer while full, and read
// synchronously when a message begins and commits: a session never waits for it.
//   prune: delete whole day directories, oldest first, never today's or one being written,
//          until under the low-water mark (90% of maxBytes, 110% of minFreeBytes). If that is
//          not enough, the store is full as with stop.
//   stop:  store nothing (STORE_FULL) until space returns: the corpus shrinks (someone
//          deleted days; re-measured every RESCAN_MS while full) or the filesystem frees up.
// Every change of state is reported once (transition), and every pruned day.

import { readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Corpus, SpacePolicy } from './corpus.js';
import { DAY_DIR, dayOf } from './layout.js';

export interface SpaceLimits {
  maxBytes: number;
  minFreeBytes: number;
  onFull: 'prune' | 'stop';
}

export interface SpaceUsage {
  /** Octets under the store root (files' sizes). */
  usedBytes: number;
  /** Octets free to an unprivileged user on its filesystem; null when not measured (minFreeBytes 0). */
  freeBytes: number | null;
}

export interface SpaceEvents {
  /** full: the reason; null: space is back. */
  transition(reason: string | null, usage: SpaceUsage): void;
  pruned(day: string, bytes: number): void;
  /** Measuring or pruning failed (logged; the state is kept). */
  error(e: unknown): void;
}

/** How stale a statfs answer may be before the next is taken (bytes written since are subtracted). */
const STATFS_MS = 250;
/** While full, the state is re-checked this often (space may come back without a message). */
const RECHECK_MS = 1000;
/**
 * While full, the corpus is measured again (an operator may have deleted days) this often, or
 * ten times as long as the last measurement took, whichever is longer.
 */
const RESCAN_MS = 2000;
const LOW_WATER = 0.9;
const FREE_MARGIN = 1.1;

/** Octets in a directory tree (files only; a day directory of either format). */
async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += await treeBytes(p);
    else n += await stat(p).then((s) => s.size, () => 0);
  }
  return n;
}

export class SpaceGuard implements SpacePolicy {
  private readonly days = new Map<string, number>();
  private used = 0;
  private free: number | null = null;
  private freeAt = 0;
  private writtenSinceStat = 0;
  private reason: string | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private scannedAt = 0;
  private scanMs = 0;
  private closed = false;

  constructor(
    private readonly corpus: Corpus,
    private limits: SpaceLimits,
    private readonly events: SpaceEvents,
    private readonly statfsFn: (path: string) => Promise<{ bavail: number | bigint; bsize: number | bigint }> = (p) => statfs(p),
  ) {}

  private get active(): boolean {
    return this.limits.maxBytes > 0 || this.limits.minFreeBytes > 0;
  }

  fullReason(): string | null {
    return this.active ? this.reason : null;
  }

  usage(): SpaceUsage {
    return { usedBytes: this.used, freeBytes: this.free === null ? null : Math.max(0, this.free - this.writtenSinceStat) };
  }

  added(day: string, bytes: number): void {
    this.days.set(day, (this.days.get(day) ?? 0) + bytes);
    this.used += bytes;
    this.writtenSinceStat += bytes;
    void this.check();
  }

  configure(limits: SpaceLimits): void {
    this.limits = limits;
    void this.check();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Decide the state again (coalesced: one evaluation at a time, one more if asked meanwhile). Resolves when done. */
  check(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = (async () => {
      do {
        this.again = false;
        try {
          await this.evaluate();
        } catch (e) {
          this.events.error(e);
        }
      } while (this.again && !this.closed);
    })();
    this.running = run.finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async scan(): Promise<void> {
    const t0 = Date.now();
    const entries = await readdir(this.corpus.root, { withFileTypes: true }).catch(() => []);
    this.days.clear();
    let used = 0;
    for (const e of entries) {
      const p = join(this.corpus.root, e.name);
      if (e.isDirectory() && DAY_DIR.test(e.name)) {
        const b = await treeBytes(p);
        this.days.set(e.name, b);
        used += b;
        // Files beside the days count too: the console's index snapshot grows with the corpus.
      } else if (e.isFile()) used += await stat(p).then((st) => st.size, () => 0);
    }
    this.used = used;
    this.scannedAt = Date.now();
    this.scanMs = this.scannedAt - t0;
  }

  private async measureFree(force: boolean): Promise<void> {
    if (this.limits.minFreeBytes <= 0) {
      this.free = null;
      return;
    }
    if (!force && this.free !== null && Date.now() - this.freeAt < STATFS_MS) return;
    const s = await this.statfsFn(this.corpus.root);
    this.free = Number(s.bavail) * Number(s.bsize);
    this.freeAt = Date.now();
    this.writtenSinceStat = 0;
  }

  /** Why the store is over its cap (high water, or with `low` the low-water mark), or null. */
  private over(low: boolean): string | null {
    const { maxBytes, minFreeBytes } = this.limits;
    const max = low ? Math.floor(maxBytes * LOW_WATER) : maxBytes;
    if (maxBytes > 0 && this.used > max) return `store.maxBytes ${maxBytes} reached (${this.used} octets stored)`;
    const free = this.usage().freeBytes;
    const min = low ? Math.ceil(minFreeBytes * FREE_MARGIN) : minFreeBytes;
    if (minFreeBytes > 0 && free !== null && free < min) return `free space ${free} below store.minFreeBytes ${minFreeBytes}`;
    return null;
  }

  private async evaluate(): Promise<void> {
    if (!this.active || this.closed) {
      this.set(null);
      return;
    }
    if (this.scannedAt === 0 || (this.reason !== null && Date.now() - this.scannedAt >= Math.max(RESCAN_MS, 10 * this.scanMs))) await this.scan();
    await this.measureFree(this.reason !== null);
    let reason = this.over(false);
    if (reason !== null && this.limits.onFull === 'prune') {
      await this.prune();
      reason = this.over(false);
    }
    this.set(reason);
    if (reason !== null && !this.timer && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.check();
      }, RECHECK_MS);
      this.timer.unref();
    }
  }

  /** Delete whole oldest days until under the low-water mark; today's and busy days are kept. */
  private async prune(): Promise<void> {
    const today = dayOf(new Date());
    const busy = this.corpus.busyDays();
    const names = (await readdir(this.corpus.root).catch(() => [] as string[])).filter((n) => DAY_DIR.test(n)).sort();
    for (const day of names) {
      if (this.over(true) === null) return;
      if (day >= today || busy.has(day)) continue;
      this.corpus.forgetDay(day);
      const bytes = this.days.get(day) ?? (await treeBytes(join(this.corpus.root, day)));
      await rm(join(this.corpus.root, day), { recursive: true, force: true });
      this.days.delete(day);
      this.used = Math.max(0, this.used - bytes);
      this.events.pruned(day, bytes);
      await this.measureFree(true);
    }
  }

  private set(reason: string | null): void {
    if (reason === this.reason) return;
    const was = this.reason;
    this.reason = reason;
    // A new reason while still full is not a transition.
    if ((was === null) !== (reason === null)) this.events.transition(reason, this.usage());
  }
}
