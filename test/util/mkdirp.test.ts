// mkdir -p without Node's recursive mkdir: the same answers (the first directory made, or
// undefined), errors for a file in the way, and an answer, not a spin, under /proc.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdirp, mkdirpSync } from '../../src/util/mkdirp.js';

const variants = [
  ['async', (d: string) => mkdirp(d)],
  ['sync', (d: string) => Promise.resolve().then(() => mkdirpSync(d))],
] as const;

describe.each(variants)('mkdirp (%s)', (_v, make) => {
  it.each([
    ['three levels', ['a', 'b', 'c'], [] as string[], 'a'],
    ['the last level', ['a', 'b'], ['a'], 'a/b'],
    ['all there', ['a', 'b'], ['a', 'a/b'], null],
  ] as const)('%s: makes them and returns the first made', async (_n, path, existing, first) => {
    const base = mkdtempSync(join(tmpdir(), 'fakemx-mkdirp-'));
    for (const e of existing) mkdirSync(join(base, e));
    expect(await make(join(base, ...path))).toBe(first === null ? undefined : join(base, first));
    expect(statSync(join(base, ...path)).isDirectory()).toBe(true);
  });

  it.each([
    ['a file on the way', (b: string) => (writeFileSync(join(b, 'f'), ''), join(b, 'f', 'x')), 'ENOTDIR'],
    ['a file at the end', (b: string) => (writeFileSync(join(b, 'f'), ''), join(b, 'f')), 'ENOTDIR'],
    ['under /proc (Node\'s recursive mkdir never returns)', () => '/proc/fakemx-nope/a/b', 'ENOENT'],
  ] as const)('%s: rejects with %s', async (_n, path, code) => {
    const base = mkdtempSync(join(tmpdir(), 'fakemx-mkdirp-'));
    await expect(make(path(base))).rejects.toMatchObject({ code });
  });
});
