// The memory backend: a Map with per-entry expiry on an injectable clock. The unit tests' store,
// the local backend's fallback when its disk fails, and the lease table of a single node.

import type { Lease, ScanPage, ScanPageOptions, StateBackend, StateEntry, StateValue } from './types.js';

export class MemoryBackend implements StateBackend {
  readonly kind: 'memory' | 'local' = 'memory';
  private readonly map = new Map<string, StateEntry>();
  private readonly leases = new Map<string, Map<string, number>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A live entry, or null (an expired one is dropped on the way). */
  peek(key: string): StateEntry | null {
    const e = this.map.get(key);
    if (!e) return null;
    if (e.expiresAt <= this.now()) {
      this.map.delete(key);
      return null;
    }
    return e;
  }

  /** Synchronous forms, used by the local backend's overlay. */
  put(key: string, value: StateValue, expiresAt: number): StateEntry {
    const e = { key, value, expiresAt };
    this.map.set(key, e);
    return e;
  }

  remove(key: string): boolean {
    return this.map.delete(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  get size(): number {
    return this.map.size;
  }

  entries(): IterableIterator<StateEntry> {
    return this.map.values();
  }

  async getMany(keys: readonly string[]): Promise<(StateEntry | null)[]> {
    return keys.map((k) => this.peek(k));
  }

  async set(key: string, value: StateValue, expiresAt: number): Promise<void> {
    this.put(key, value, expiresAt);
  }

  async add(key: string, value: StateValue, expiresAt: number): Promise<{ entry: StateEntry; created: boolean }> {
    const old = this.peek(key);
    if (old) return { entry: old, created: false };
    return { entry: this.put(key, value, expiresAt), created: true };
  }

  async del(key: string): Promise<boolean> {
    return this.peek(key) !== null && this.map.delete(key);
  }

  async *scan(prefix: string): AsyncIterable<StateEntry> {
    for (const e of [...this.map.values()]) if (e.key.startsWith(prefix) && this.peek(e.key)) yield e;
  }

  /** Keys in order from the cursor (the last key examined): sorting each call is fine for tests and a fallback. */
  async scanPage(prefix: string, cursor: string | null, o: ScanPageOptions): Promise<ScanPage> {
    // The cursor is a key of this prefix (the last one examined); any other is not one we gave out.
    if (cursor !== null && !cursor.startsWith(prefix)) throw new Error('bad scan cursor');
    const ks = [...this.map.keys()].filter((k) => k.startsWith(prefix) && (cursor === null || k > cursor)).sort();
    const entries: StateEntry[] = [];
    let examined = 0;
    for (const k of ks) {
      if (examined >= o.budget || entries.length >= o.limit) return { entries, cursor: ks[examined - 1] ?? cursor, examined };
      examined++;
      const e = this.peek(k);
      if (e && (!o.keep || o.keep(e))) entries.push(e);
    }
    return { entries, cursor: null, examined };
  }

  private live(key: string, now: number): Map<string, number> {
    let m = this.leases.get(key);
    if (!m) this.leases.set(key, (m = new Map<string, number>()));
    for (const [id, exp] of m) if (exp <= now) m.delete(id);
    return m;
  }

  async acquire(lease: Lease, max: number, expiresAt: number, now: number): Promise<boolean> {
    const m = this.live(lease.key, now);
    if (!m.has(lease.id) && m.size >= max) {
      if (m.size === 0) this.leases.delete(lease.key);
      return false;
    }
    m.set(lease.id, expiresAt);
    return true;
  }

  async renew(leases: readonly Lease[], expiresAt: number): Promise<void> {
    for (const l of leases) {
      const m = this.leases.get(l.key);
      if (m?.has(l.id)) m.set(l.id, expiresAt);
    }
  }

  async release(lease: Lease): Promise<void> {
    const m = this.leases.get(lease.key);
    if (!m) return;
    m.delete(lease.id);
    if (m.size === 0) this.leases.delete(lease.key);
  }

  async leaseCount(key: string, now: number): Promise<number> {
    const m = this.leases.get(key);
    if (!m) return 0;
    const n = this.live(key, now).size;
    if (n === 0) this.leases.delete(key);
    return n;
  }

  async sweep(now: number): Promise<number> {
    let n = 0;
    for (const [k, e] of this.map) {
      if (e.expiresAt <= now) {
        this.map.delete(k);
        n++;
      }
    }
    return n;
  }

  async close(): Promise<void> {}
}
