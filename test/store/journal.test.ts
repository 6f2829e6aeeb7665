// The day journal's own commit (journal.ts) without a corpus: what a failed append leaves
// behind must not swallow the next record.
import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DayCommit, journalLines } from '../../src/store/journal.js';

let root = '';
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('DayCommit after a torn append', () => {
  it('the record after a half-written one starts on a line of its own', async () => {
    root = mkdtempSync(join(tmpdir(), 'fakemx-journal-'));
    const path = join(root, '.journal');
    const j = new DayCommit(path, () => Promise.resolve());
    await j.append('{"id":"a"}\n');
    // The disk fills mid-write: the first bytes of the record land, then EIO.
    vi.spyOn(fs, 'writev').mockImplementationOnce(((fd: number, bufs: Buffer[], cb: (e: Error | null) => void) => {
      fs.write(fd, bufs[0]!.subarray(0, 6), () => cb(Object.assign(new Error('EIO'), { code: 'EIO' })));
    }) as unknown as typeof fs.writev);
    await expect(j.append('{"id":"torn"}\n')).rejects.toThrow('EIO');
    await j.append('{"id":"b"}\n');
    expect(readFileSync(path, 'utf8')).toBe('{"id":"a"}\n{"id":\n{"id":"b"}\n');
    expect(journalLines(readFileSync(path, 'utf8')).map((r) => r.id)).toEqual(['a', 'b']);
  });
});
