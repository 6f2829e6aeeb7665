// The console's corpus index built from its snapshot alone: --days day directories of --per
// messages each (default 365 × 300), so the time is the index's own (unpacking and ordering
// the entries), not reading records. Compare builds with --dist (e.g. a copy of an older dist/).
//
// node bench/corpus-index.mjs [--days N] [--per N] [--runs N] [--dist DIR]
// Needs `npm run build`. The store goes to a temporary directory, removed at the end.
// Prints one JSON object: the build time of each run (ms), their median, and the time to write
// the snapshot back once (saveMs).

import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const days = Number(opt('days', 365));
const per = Number(opt('per', 300));
const runs = Number(opt('runs', 5));
const dist = resolve(opt('dist', join(repo, 'dist')));
const { CorpusIndex } = await import(pathToFileURL(join(dist, 'console', 'corpus-index.js')).href);
const { INDEX_SNAPSHOT } = await import(pathToFileURL(join(dist, 'store', 'layout.js')).href);

const root = mkdtempSync(join(tmpdir(), 'fakemx-bench-index-'));
try {
  // The snapshot as the index writes it (format 1: a head, then a line per day, entries by time).
  // The directories are older than the snapshot by more than its slack, so none is listed.
  const start = Date.UTC(2025, 0, 1);
  const old = new Date(Date.now() - 3_600_000);
  const lines = [JSON.stringify({ v: 1, root, startedAt: Date.now(), days })];
  let n = 0;
  for (let d = 0; d < days; d++) {
    const day = new Date(start + d * 86_400_000).toISOString().slice(0, 10);
    mkdirSync(join(root, day));
    utimesSync(join(root, day), old, old);
    const at = Array.from({ length: per }, () => start + d * 86_400_000 + Math.floor(Math.random() * 86_400_000)).sort((a, b) => a - b);
    const e = at.map((t) => {
      const id = `b${(n++).toString(36)}`;
      return [id, t, `${day}/${id}.eml`, 'mx', `192.0.2.${n % 250}`, 40000, 'bot.example', 'a@spam.example', ['u@example.com'], n % 3 ? [] : ['PREGREET'], `subject ${n}`, 1234, 0];
    });
    lines.push(JSON.stringify({ day, e }));
  }
  writeFileSync(join(root, INDEX_SNAPSHOT), lines.join('\n') + '\n');

  const ms = [];
  for (let r = 0; r < runs; r++) {
    const idx = new CorpusIndex();
    const t0 = performance.now();
    await idx.setRoots([root]);
    ms.push(Math.round(performance.now() - t0));
    if (idx.size !== days * per || idx.recordsRead !== 0) throw new Error(`indexed ${idx.size}, read ${idx.recordsRead}: not all from the snapshot`);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  // Then the snapshot written back from a built index, once (it replaces the one read above).
  const idx = new CorpusIndex();
  await idx.setRoots([root]);
  const t0 = performance.now();
  if (!(await idx.saveSnapshot(root))) throw new Error('snapshot not written');
  const saveMs = Math.round(performance.now() - t0);
  console.log(JSON.stringify({ dist, days, per, entries: days * per, runs: ms, medianMs: sorted[Math.floor(sorted.length / 2)], saveMs }));
} finally {
  rmSync(root, { recursive: true, force: true });
}
