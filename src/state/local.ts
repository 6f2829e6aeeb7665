// The local backend: one LMDB environment (the `lmdb` package, its binary in the npm
// package) under state.path, file state.mdb. LMDB commits are copy-on-write, so a crash or
// SIGKILL leaves the last committed transaction, never a torn one; other processes (the
// `fakemx state` CLI) read and write the same file while the daemon runs.
//
// Writes are asynchronous in lmdb-js (batched into one transaction per turn); until a write
// commits, an overlay answers reads of that key, so a session sees its own writes at once and
// never waits for an fsync. If a write fails (disk full, read-only, map full), the store goes
// on in memory (reads still fall back to the file) and says so once through onDegraded().

import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';
import { MemoryBackend } from './memory.js';
import { decodeEntry, encodeEntry, type Lease, type ScanPage, type ScanPageOptions, type StateBackend, type StateEntry, type StateValue } from './types.js';
import { mkdirpSync } from '../util/mkdirp.js';

export interface LocalOptions {
  /** Directory; the database is <path>/state.mdb. */
  path: string;
  now?: () => number;
  /** The disk failed and the store now keeps new writes in memory (called once). */
  onDegraded?: (reason: string) => void;
}

/** A write that has not committed yet: the entry it writes, or null for a delete. */
type Pending = { entry: StateEntry | null };

export class LocalBackend implements StateBackend {
  readonly kind = 'local' as const;
  private readonly db: RootDatabase<string, string>;
  private readonly now: () => number;
  private readonly pending = new Map<string, Pending>();
  /** Leases are per process: a restart ends every session that held one. */
  private readonly leases: MemoryBackend;
  /** Set once the disk failed: new writes live here. */
  private mem: MemoryBackend | null = null;
  private memDeleted = new Set<string>();
  note: string | undefined;
  private closed = false;

  constructor(private readonly opts: LocalOptions) {
    this.now = opts.now ?? Date.now;
    this.leases = new MemoryBackend(this.now);
    mkdirpSync(opts.path, 0o750);
    // Loaded here, not at import: only configs that keep state need the native module.
    const { open } = createRequire(import.meta.url)('lmdb') as typeof import('lmdb');
    const file = join(opts.path, 'state.mdb');
    const made = !existsSync(file);
    this.db = open<string, string>({ path: file, encoding: 'string', compression: false });
    // Clients' addresses and envelopes: 0640 like the corpus, whatever the umask, when made
    // here (a mode an operator gave an existing store is left alone).
    if (made) {
      for (const f of [file, `${file}-lock`]) {
        try {
          chmodSync(f, 0o640);
        } catch {
          // not ours to change (another user's file): it keeps its mode
        }
      }
    }
  }

  /** The database file (the CLI and the docs name it). */
  get file(): string {
    return join(this.opts.path, 'state.mdb');
  }

  private read(key: string, now: number): StateEntry | null {
    if (this.mem) {
      const m = this.mem.peek(key);
      if (m) return m;
      if (this.memDeleted.has(key)) return null;
    }
    const p = this.pending.get(key);
    if (p) return p.entry && p.entry.expiresAt > now ? p.entry : null;
    return decodeEntry(key, this.db.get(key), now);
  }

  private degrade(e: unknown): void {
    if (this.mem || this.closed) return;
    this.mem = new MemoryBackend(this.now);
    const code = (e as NodeJS.ErrnoException | null)?.code ?? (e instanceof Error ? e.message : String(e));
    // What had not committed yet moves to memory, so nothing a session wrote is forgotten.
    for (const [k, p] of this.pending) {
      if (p.entry) this.mem.put(k, p.entry.value, p.entry.expiresAt);
      else this.memDeleted.add(k);
    }
    this.pending.clear();
    this.note = `local state store ${this.file} cannot be written (${code}); keeping new entries in memory`;
    this.opts.onDegraded?.(this.note);
  }

  private write(key: string, entry: StateEntry | null): void {
    if (this.closed) throw new Error('state store closed');
    if (this.mem) {
      if (entry) {
        this.mem.put(key, entry.value, entry.expiresAt);
        this.memDeleted.delete(key);
      } else {
        this.mem.remove(key);
        this.memDeleted.add(key);
      }
      return;
    }
    const p: Pending = { entry };
    this.pending.set(key, p);
    let done: Promise<boolean>;
    try {
      done = entry ? this.db.put(key, encodeEntry(entry.value, entry.expiresAt)) : this.db.remove(key);
    } catch (e) {
      this.degrade(e);
      return;
    }
    done.then(
      () => {
        if (this.pending.get(key) === p) this.pending.delete(key);
      },
      (e: unknown) => this.degrade(e),
    );
  }

  async getMany(keys: readonly string[]): Promise<(StateEntry | null)[]> {
    const now = this.now();
    return keys.map((k) => this.read(k, now));
  }

  async set(key: string, value: StateValue, expiresAt: number): Promise<void> {
    this.write(key, { key, value, expiresAt });
  }

  async add(key: string, value: StateValue, expiresAt: number): Promise<{ entry: StateEntry; created: boolean }> {
    const old = this.read(key, this.now());
    if (old) return { entry: old, created: false };
    const entry = { key, value, expiresAt };
    this.write(key, entry);
    return { entry, created: true };
  }

  async del(key: string): Promise<boolean> {
    const had = this.read(key, this.now()) !== null;
    this.write(key, null);
    return had;
  }

  async *scan(prefix: string): AsyncIterable<StateEntry> {
    const now = this.now();
    const seen = new Set<string>();
    for (const { key } of this.db.getRange({ start: prefix })) {
      if (!key.startsWith(prefix)) break;
      seen.add(key);
      const e = this.read(key, now);
      if (e) yield e;
    }
    const extra: StateEntry[] = [];
    for (const [k, p] of this.pending) if (!seen.has(k) && k.startsWith(prefix) && p.entry && p.entry.expiresAt > now) extra.push(p.entry);
    if (this.mem) for (const e of this.mem.entries()) if (!seen.has(e.key) && e.key.startsWith(prefix) && e.expiresAt > now) extra.push(e);
    yield* extra;
  }

  /**
   * LMDB keeps keys in order, so the cursor is the last key examined and the next step starts
   * right after it. Each step reads at most `budget` keys from the memory map in this turn.
   * Entries the file does not hold yet (not committed, or kept in memory since the disk
   * failed) are merged in key order, so one that commits between two steps is still seen once.
   */
  async scanPage(prefix: string, cursor: string | null, o: ScanPageOptions): Promise<ScanPage> {
    // The cursor is a key of this prefix (the last one examined); any other is not one we gave out.
    if (cursor !== null && !cursor.startsWith(prefix)) throw new Error('bad scan cursor');
    const now = this.now();
    const after = cursor ?? '';
    const extra = new Map<string, StateEntry>();
    for (const [k, p] of this.pending) if (p.entry && k.startsWith(prefix) && k > after) extra.set(k, p.entry);
    if (this.mem) for (const e of this.mem.entries()) if (e.key.startsWith(prefix) && e.key > after) extra.set(e.key, e);
    // Only as many overlay keys are looked up in the file as the page takes: while the disk is
    // down the overlay holds every write since, and a page is bounded by its budget.
    const side = [...extra.keys()].sort();
    let i = 0;
    const nextSideKey = (): string | null => {
      while (i < side.length) {
        const k = side[i++]!;
        if (this.db.get(k) === undefined) return k;
      }
      return null;
    };
    const file = this.db.getRange({ start: cursor ?? prefix })[Symbol.iterator]();
    const nextFileKey = (): string | null => {
      for (let r = file.next(); !r.done; r = file.next()) {
        const k = r.value.key;
        if (!k.startsWith(prefix)) return null;
        if (k !== cursor) return k;
      }
      return null;
    };
    const entries: StateEntry[] = [];
    let examined = 0;
    let last = cursor;
    let f: string | null;
    let sk: string | null;
    // Close LMDB's read cursor however the loop ends (an early return leaves the range unfinished).
    try {
      f = nextFileKey();
      sk = nextSideKey();
      while (f !== null || sk !== null) {
        if (examined >= o.budget || entries.length >= o.limit) return { entries, cursor: last ?? prefix, examined };
        let key: string;
        if (f !== null && (sk === null || f < sk)) {
          key = f;
          f = nextFileKey();
        } else {
          key = sk!;
          sk = nextSideKey();
        }
        examined++;
        last = key;
        // The overlay first, then the file (read() knows the order); a side key that committed meanwhile reads from the file.
        const e = this.read(key, now);
        if (e && (!o.keep || o.keep(e))) entries.push(e);
      }
    } finally {
      file.return?.();
    }
    return { entries, cursor: null, examined };
  }

  acquire(lease: Lease, max: number, expiresAt: number, now: number): Promise<boolean> {
    return this.leases.acquire(lease, max, expiresAt, now);
  }

  renew(leases: readonly Lease[], expiresAt: number): Promise<void> {
    return this.leases.renew(leases, expiresAt);
  }

  release(lease: Lease): Promise<void> {
    return this.leases.release(lease);
  }

  leaseCount(key: string, now: number): Promise<number> {
    return this.leases.leaseCount(key, now);
  }

  /** Removes expired entries from the file (in one write transaction) and from memory. */
  async sweep(now: number): Promise<number> {
    const expired: string[] = [];
    for (const { key, value } of this.db.getRange({})) {
      if (this.pending.has(key)) continue;
      if (decodeEntry(key, value, now) === null) expired.push(key);
    }
    let n = expired.length;
    if (this.mem) n += await this.mem.sweep(now);
    if (expired.length > 0 && !this.mem) {
      const db: Database<string, string> = this.db;
      await db
        .transaction(() => {
          for (const k of expired) {
            // Read again inside the transaction: another process may have renewed it.
            if (decodeEntry(k, db.get(k), now) === null) void db.remove(k);
          }
        })
        .catch((e: unknown) => this.degrade(e));
    }
    return n;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }
}
