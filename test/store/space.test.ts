// The disk cap's measure of a corpus (src/store/space.ts): what counts toward store.maxBytes.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { Corpus } from '../../src/store/corpus.js';
import { dayOf } from '../../src/store/layout.js';
import { SpaceGuard } from '../../src/store/space.js';

let root = '';
afterEach(() => rmSync(root, { recursive: true, force: true }));

const guardOn = (maxBytes: number) => {
  const transitions: (string | null)[] = [];
  const g = new SpaceGuard(new Corpus(root), { maxBytes, minFreeBytes: 0, onFull: 'stop' }, { transition: (r) => transitions.push(r), pruned: () => {}, error: () => {} });
  return { g, transitions };
};

describe('store.maxBytes: what the corpus size counts', () => {
  it.each([
    // name, files (path under the root -> octets), cap, full?
    ['day files only, under the cap', { '2026-12-01/a.eml': 3000 }, 4000, false],
    ['day files exactly at the cap are not past it', { '2026-12-01/a.eml': 3000, '2026-12-02/b.eml': 1000 }, 4000, false],
    ['day files past the cap', { '2026-12-01/a.eml': 3000, '2026-12-02/b.eml': 2000 }, 4000, true],
    ['the index snapshot at the root pushes it past the cap', { '2026-12-01/a.eml': 3000, '.console-index.jsonl': 2000 }, 4000, true],
    ['a directory that is not a day is not the corpus', { '2026-12-01/a.eml': 3000, 'not-a-day/x': 5000 }, 4000, false],
  ] as const)('%s', async (_name, files, cap, full) => {
    root = mkdtempSync(join(tmpdir(), 'fakemx-space-'));
    let total = 0;
    for (const [p, n] of Object.entries(files)) {
      mkdirSync(join(root, p, '..'), { recursive: true });
      writeFileSync(join(root, p), Buffer.alloc(n));
      if (!p.startsWith('not-a-day')) total += n;
    }
    const { g, transitions } = guardOn(cap);
    await g.check();
    g.close();
    expect(g.usage().usedBytes).toBe(total);
    expect(g.fullReason() !== null).toBe(full);
    expect(transitions.length).toBe(full ? 1 : 0);
  });
});

describe('store.onFull "prune": oldest whole days go until under the low-water mark (90 %)', () => {
  const today = dayOf(new Date());
  it.each([
    // cap, days left, still full?
    ['past days go one by one until under 90 % of the cap, not just under it', 2100, [today], false],
    ['today is never pruned, even when it alone is over the cap', 500, [today], true],
    ['one old day is enough when that is under the low-water mark', 3400, ['2020-01-02', '2020-01-03', today], false],
  ] as const)('%s', async (_name, cap, left, full) => {
    root = mkdtempSync(join(tmpdir(), 'fakemx-space-'));
    for (const day of ['2020-01-01', '2020-01-02', '2020-01-03', today]) {
      mkdirSync(join(root, day));
      writeFileSync(join(root, day, 'a.eml'), Buffer.alloc(1000));
    }
    const pruned: string[] = [];
    const g = new SpaceGuard(new Corpus(root), { maxBytes: cap, minFreeBytes: 0, onFull: 'prune' }, { transition: () => {}, pruned: (d) => pruned.push(d), error: () => {} });
    await g.check();
    g.close();
    expect(readdirSync(root).sort()).toEqual(left);
    expect(pruned).toEqual(['2020-01-01', '2020-01-02', '2020-01-03'].filter((d) => !left.includes(d)));
    expect(g.usage().usedBytes).toBe(left.length * 1000);
    expect(g.fullReason() !== null).toBe(full);
  });
});

describe('store.minFreeBytes: free space between two statfs calls', () => {
  it('octets written since the last statfs count as used at once', async () => {
    root = mkdtempSync(join(tmpdir(), 'fakemx-space-'));
    let disk = 10_000;
    const g = new SpaceGuard(new Corpus(root), { maxBytes: 0, minFreeBytes: 5000, onFull: 'stop' }, { transition: () => {}, pruned: () => {}, error: () => {} }, () => Promise.resolve({ bavail: disk, bsize: 1 }));
    await g.check();
    expect([g.usage().freeBytes, g.fullReason()]).toEqual([10_000, null]);
    // A message lands; statfs (taken under 250 ms ago) is not asked again, or sees the same.
    disk -= 6000;
    g.added('2026-12-01', 6000);
    await g.check();
    g.close();
    expect(g.usage().freeBytes).toBe(4000);
    expect(g.fullReason()).toMatch(/free space 4000 below store.minFreeBytes 5000/);
  });

  it('statfs counts blocks: free space is bavail × bsize', async () => {
    vi.useFakeTimers({ toFake: ['Date'] }); // statfs is asked again after 250 ms of this clock
    onTestFinished(() => void vi.useRealTimers());
    root = mkdtempSync(join(tmpdir(), 'fakemx-space-'));
    let blocks = 3;
    const g = new SpaceGuard(new Corpus(root), { maxBytes: 0, minFreeBytes: 10_000, onFull: 'stop' }, { transition: () => {}, pruned: () => {}, error: () => {} }, () => Promise.resolve({ bavail: BigInt(blocks), bsize: 4096n }));
    await g.check();
    expect([g.usage().freeBytes, g.fullReason()]).toEqual([12_288, null]);
    blocks = 2;
    g.added('2026-12-01', 1);
    vi.setSystemTime(Date.now() + 300);
    await g.check();
    g.close();
    expect(g.usage().freeBytes).toBe(8192);
    expect(g.fullReason()).toMatch(/free space 8192 below store.minFreeBytes 10000/);
  });

  it('"prune" for free space deletes old days until 10 % above store.minFreeBytes, not just to it', async () => {
    root = mkdtempSync(join(tmpdir(), 'fakemx-space-'));
    const today = dayOf(new Date());
    for (const day of ['2020-01-01', '2020-01-02', '2020-01-03', today]) {
      mkdirSync(join(root, day));
      writeFileSync(join(root, day, 'a.eml'), Buffer.alloc(1000));
    }
    // The filesystem: 4,400 octets free, plus whatever the corpus gives back.
    const free = () => 4400 + 4000 - readdirSync(root).length * 1000;
    const pruned: string[] = [];
    const g = new SpaceGuard(new Corpus(root), { maxBytes: 0, minFreeBytes: 5000, onFull: 'prune' }, { transition: () => {}, pruned: (d) => pruned.push(d), error: () => {} }, () => Promise.resolve({ bavail: free(), bsize: 1 }));
    await g.check();
    g.close();
    // 4,400 → 5,400 after one day: past 5,000 but not past 5,500; a second day makes 6,400.
    expect(pruned).toEqual(['2020-01-01', '2020-01-02']);
    expect(g.usage().freeBytes).toBe(6400);
    expect(g.fullReason()).toBeNull();
  });
});
