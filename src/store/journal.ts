// The per-day journal of metadata records: the one durable copy of each record, appended with
// group commit. Every record waiting while a write+fdatasync runs goes out in the next one, so
// N concurrent messages cost ~2 journal syncs, not N. The <id>.json files beside the messages
// are written from the same text without an fsync of their own; after a crash the start-up
// recovery (corpus.ts) rewrites any that are missing or short from this journal.
//
// A write that fails part-way (ENOSPC) may leave a torn line: the next batch starts with a
// newline so every later record is whole on its own line; readers skip lines that do not parse.
// A batch whose file went away with its directory (ENOENT at open) fails; its messages are
// written again once the directory is made again (corpus.ts rewrite).

import { open, type FileHandle } from 'node:fs/promises';

interface Waiter {
  buf: Buffer;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const NL = Buffer.from('\n');

export class Journal {
  private waiting: Waiter[] = [];
  private running = false;
  private torn = false;
  /** Journal syncs done (tests read it). */
  syncs = 0;

  constructor(readonly path: string) {}

  /** Append one line (text ending in "\n"); resolves once it is on disk (fdatasync). */
  append(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ buf: Buffer.from(line, 'utf8'), resolve, reject });
      if (!this.running) void this.run();
    });
  }

  /**
   * One batch at a time: open (append), write, fdatasync, close. Opening per batch, not per
   * message, costs little next to the sync, and a journal whose directory was deleted or moved
   * is simply made anew by the next batch (nothing stays open to leak or go stale).
   */
  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting;
        this.waiting = [];
        const bufs = batch.map((w) => w.buf);
        if (this.torn) bufs.unshift(NL);
        let total = 0;
        for (const b of bufs) total += b.length;
        let fh: FileHandle | undefined;
        try {
          fh = await open(this.path, 'a', 0o640);
          await writeAll(fh, bufs, total);
          this.torn = false;
          await fh.datasync();
          this.syncs++;
          for (const w of batch) w.resolve();
        } catch (e) {
          this.torn = true;
          for (const w of batch) w.reject(e);
        } finally {
          await fh?.close().catch(() => undefined);
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/**
 * FileHandle.writev may write less than asked (a filling disk returns a short count before
 * ENOSPC) and does not retry: go on until every byte is out, so the next write reports the
 * error instead of a truncated file being acknowledged.
 */
export async function writeAll(fh: FileHandle, bufs: Buffer[], total: number): Promise<void> {
  let left = bufs;
  let remaining = total;
  while (remaining > 0) {
    const { bytesWritten } = await fh.writev(left);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    remaining -= bytesWritten;
    if (remaining <= 0) return;
    let skip = bytesWritten;
    let i = 0;
    while (skip >= left[i]!.length) skip -= left[i++]!.length;
    left = [left[i]!.subarray(skip), ...left.slice(i + 1)];
  }
}

/** Every whole, parseable JSON object line of a journal's text. */
export function journalLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      const v: unknown = JSON.parse(line);
      if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      // A torn line (killed mid-write, or a write that failed): not a record.
    }
  }
  return out;
}
