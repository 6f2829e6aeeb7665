// The per-day group commit. A message that finished receiving hands its record here at once
// and fdatasyncs its own file meanwhile; one batch at a time, every record waiting is appended
// to the day's journal (open, one writev, one fdatasync, close), then each message of the batch
// whose own sync is done is placed (its temporary renamed into place and its <id>.json written
// beside it, both at once), then each directory touched is fsynced once, then all are answered.
// Records that arrive while a batch runs form the next one. So N concurrent messages cost N
// message fdatasyncs plus about two journal and two directory syncs in all.
//
// The journal is the one durable copy of each record: <id>.json is written without a
// temporary and without an fsync, and the start-up recovery (corpus.ts) rewrites one that is
// missing or short from the journal and removes one whose message never got into place.
// A write that fails part-way (ENOSPC) may leave a torn line: the next batch starts with a
// newline so every later record is whole on its own line; readers skip lines that do not parse.
//
// Callbacks on raw descriptors, not fs.promises: through FileHandle a thread-pool round trip
// costs several times the syscall here (bench/RESULTS.md, Round 4).

import fs from 'node:fs';

/** Where a message goes once its record is durable. */
export interface Placement {
  /** Its temporary, and its final name. */
  from: string;
  to: string;
  /** The record file written beside it (the same text as the journal line). */
  json: string;
  /** Directories whose entries change (each fsynced once per batch). */
  dirs: readonly string[];
}

/** How a commit ended: err null when the message is durable and in place. */
export interface CommitResult {
  err: NodeJS.ErrnoException | Error | null;
  /** The step that failed: journal, fsync (the message's own), rename, metadata, dirsync. */
  step: string;
  /** The message was renamed into place (a failure must remove it again). */
  placed: boolean;
}

interface Entry {
  line: Buffer;
  place: Placement | null;
  /** The message's own fdatasync: pending (null), done (true) or failed. */
  data: true | Error | null;
  result: CommitResult;
  done: (r: CommitResult) => void;
}

const NL = Buffer.from('\n');
const noop = (): void => undefined;

export class DayCommit {
  private waiting: Entry[] = [];
  private running = false;
  private torn = false;
  /** The batch waiting for its messages' own syncs before placing them (one at a time). */
  private gate: (() => void) | null = null;
  /** Journal syncs done (tests read it). */
  syncs = 0;

  constructor(
    readonly path: string,
    private readonly syncDir: (dir: string) => Promise<void>,
  ) {}

  /** Append a record alone (a duplicate arrival); resolves once it is on disk. */
  append(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.add(Buffer.from(line, 'utf8'), null, (r) => (r.err ? reject(r.err) : resolve()));
    });
  }

  /**
   * Commit a message: its record is journaled with the batch, and the message is placed once
   * `dataSynced` has been called for it (the caller's fdatasync of the temporary, run meanwhile).
   * Returns the function to call with that sync's outcome.
   */
  commit(line: string, place: Placement, done: (r: CommitResult) => void): (err: Error | null) => void {
    const e = this.add(Buffer.from(line, 'utf8'), place, done);
    return (err) => {
      e.data = err ?? true;
      this.gate?.();
    };
  }

  private add(line: Buffer, place: Placement | null, done: (r: CommitResult) => void): Entry {
    const e: Entry = { line, place, data: null, result: { err: null, step: '', placed: false }, done };
    this.waiting.push(e);
    // Deferred to the check phase: every message whose sync completed in this poll joins.
    if (!this.running) {
      this.running = true;
      setImmediate(() => this.run());
    }
    return e;
  }

  private run(): void {
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length === 0) {
      this.running = false;
      return;
    }
    const bufs = batch.map((w) => w.line);
    if (this.torn) bufs.unshift(NL);
    fs.open(this.path, 'a', 0o640, (err, fd) => {
      if (err) return this.journaled(batch, err);
      writevAll(fd, bufs, (err2) => {
        if (err2) {
          fs.close(fd, noop);
          return this.journaled(batch, err2);
        }
        fs.fdatasync(fd, (err3) => {
          fs.close(fd, noop);
          if (!err3) this.syncs++;
          this.journaled(batch, err3);
        });
      });
    });
  }

  /** The batch's records are durable (or not): place its messages, or fail them. */
  private journaled(batch: Entry[], err: Error | null): void {
    this.torn = err !== null;
    if (err) {
      for (const e of batch) e.result = { err, step: 'journal', placed: false };
      return this.finish(batch);
    }
    const open = () => {
      if (batch.some((e) => e.place && e.data === null)) return;
      this.gate = null;
      this.placeAll(batch);
    };
    this.gate = open;
    open();
  }

  /** Rename each message into place and write its record file, all at once; then the directories. */
  private placeAll(batch: Entry[]): void {
    let left = 1;
    const step = () => {
      if (--left === 0) this.syncDirs(batch);
    };
    for (const e of batch) {
      const p = e.place;
      if (!p) continue;
      if (e.data !== true) {
        e.result = { err: e.data, step: 'fsync', placed: false };
        continue;
      }
      left += 2;
      fs.rename(p.from, p.to, (err) => {
        if (err) e.result = { err, step: 'rename', placed: false };
        else e.result.placed = true;
        step();
      });
      writeNew(p.json, e.line, (err) => {
        if (err && !e.result.err) e.result = { err, step: 'metadata', placed: e.result.placed };
        step();
      });
    }
    step();
  }

  private syncDirs(batch: Entry[]): void {
    const dirs = new Set<string>();
    for (const e of batch) if (e.place && !e.result.err) for (const d of e.place.dirs) dirs.add(d);
    if (dirs.size === 0) return this.finish(batch);
    void Promise.all([...dirs].map((d) => this.syncDir(d))).then(
      () => this.finish(batch),
      (err: Error) => {
        for (const e of batch) if (e.place && !e.result.err) e.result = { err, step: 'dirsync', placed: true };
        this.finish(batch);
      },
    );
  }

  private finish(batch: Entry[]): void {
    for (const e of batch) {
      // A placed message that failed later keeps placed: true (its owner removes it again).
      try {
        e.done(e.result);
      } catch {
        /* an owner's fault is its own; the batch goes on */
      }
    }
    this.run();
  }
}

/** Write `buf` to a new file at `path` (replaced if present), no fsync. */
function writeNew(path: string, buf: Buffer, cb: (err: Error | null) => void): void {
  fs.open(path, 'w', 0o640, (err, fd) => {
    if (err) return cb(err);
    writevAll(fd, [buf], (err2) => fs.close(fd, (err3) => cb(err2 ?? err3)));
  });
}

/**
 * writev until every byte is out: a filling disk returns a short count before ENOSPC, and
 * writev does not retry, so the next write reports the error instead of a truncated file
 * being acknowledged. Positionless: the descriptor's offset (or O_APPEND) decides where.
 */
export function writevAll(fd: number, bufs: Buffer[], cb: (err: Error | null) => void): void {
  let remaining = 0;
  for (const b of bufs) remaining += b.length;
  if (remaining === 0) return cb(null);
  const go = (left: Buffer[]) => {
    fs.writev(fd, left, (err, written) => {
      if (err) return cb(err);
      if (written <= 0) return cb(new Error('write made no progress'));
      remaining -= written;
      if (remaining <= 0) return cb(null);
      let skip = written;
      let i = 0;
      while (skip >= left[i]!.length) skip -= left[i++]!.length;
      go([left[i]!.subarray(skip), ...left.slice(i + 1)]);
    });
  };
  go(bufs);
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
