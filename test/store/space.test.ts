// The disk cap's measure of a corpus (src/store/space.ts): what counts toward store.maxBytes.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Corpus } from '../../src/store/corpus.js';
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
