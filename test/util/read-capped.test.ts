// readCapped: a file up to the cap whole (empty, across the 64 KiB steps, exactly the cap),
// null past it, an endless device stopped after cap + 1 octets, errno errors as they are.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCapped } from '../../src/util/read-capped.js';

const dir = mkdtempSync(join(tmpdir(), 'fakemx-capped-'));
const CAP = 200_000;

describe('readCapped', () => {
  it.each([
    ['empty', 0],
    ['one octet', 1],
    ['one 64 KiB step', 65_536],
    ['across the steps', 150_001],
    ['exactly the cap', CAP],
  ])('%s: the whole file', (name, size) => {
    const data = Buffer.alloc(size, 'x');
    data.fill('y', size >> 1);
    const f = join(dir, name);
    writeFileSync(f, data);
    expect(readCapped(f, CAP)?.equals(data)).toBe(true);
  });

  it('one octet past the cap: null', () => {
    const f = join(dir, 'over');
    writeFileSync(f, Buffer.alloc(CAP + 1));
    expect(readCapped(f, CAP)).toBeNull();
  });

  it('/dev/zero, which never ends: null', () => {
    expect(readCapped('/dev/zero', CAP)).toBeNull();
  });

  it.each([
    ['a missing file', join(dir, 'nope'), 'ENOENT'],
    ['a directory', dir, 'EISDIR'],
  ])('%s: the errno error', (_n, path, code) => {
    expect(() => readCapped(path, CAP)).toThrow(expect.objectContaining({ code }) as Error);
  });
});
