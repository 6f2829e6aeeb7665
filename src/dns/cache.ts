// Bounded TTL cache for DNS list lookups, with coalescing of in-flight loads: callers
// asking for a key that is being loaded share that one promise (postscreen does the
// same for concurrent sessions from one client). Map insertion order is the LRU order.

export interface CacheOptions {
  /** Most entries kept; 0 disables storing (coalescing still works). */
  maxEntries: number;
  /** TTL clamp in seconds (RFC 2308 §5 negatives and positives alike). */
  minTtl: number;
  maxTtl: number;
  /** Milliseconds clock, injectable for tests. */
  now?: () => number;
}

export interface Loaded<V> {
  value: V;
  /** Seconds to keep the value before clamping; null = do not cache (errors). */
  ttl: number | null;
}

export type CacheSource = 'cache' | 'inflight' | 'query';

interface Entry<V> {
  value: V;
  expires: number;
}

export class DnsCache<V> {
  private readonly entries: Map<string, Entry<V>>;
  private readonly inflight = new Map<string, Promise<V>>();
  private readonly opts: CacheOptions;
  private readonly now: () => number;

  /** `share`: another cache whose entries this one takes over (config reload). */
  constructor(opts: CacheOptions, share?: DnsCache<V>) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.entries = share ? share.entries : new Map<string, Entry<V>>();
    this.trim();
  }

  get size(): number {
    return this.entries.size;
  }

  get pending(): number {
    return this.inflight.size;
  }

  /** Seconds, clamped to minTtl..maxTtl (maxTtl wins if they cross). */
  clampTtl(ttl: number): number {
    const t = Number.isFinite(ttl) ? ttl : 0;
    return Math.min(this.opts.maxTtl, Math.max(this.opts.minTtl, t));
  }

  /** A live value, refreshed to most-recently-used; expired entries are removed. */
  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** Remaining lifetime in seconds of a live entry (for the CLI and tests), else null. */
  ttlOf(key: string): number | null {
    const e = this.entries.get(key);
    if (!e) return null;
    const left = e.expires - this.now();
    return left > 0 ? Math.ceil(left / 1000) : null;
  }

  set(key: string, value: V, ttl: number): void {
    if (this.opts.maxEntries <= 0) return;
    const secs = this.clampTtl(ttl);
    if (secs <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + secs * 1000 });
    this.trim();
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  /**
   * The cached value, or the in-flight load's, or a new load. A rejected load is not
   * cached, and its waiters all see the rejection.
   */
  async lookup(key: string, load: () => Promise<Loaded<V>>): Promise<{ value: V; source: CacheSource }> {
    const hit = this.get(key);
    if (hit !== undefined) return { value: hit, source: 'cache' };
    const running = this.inflight.get(key);
    if (running) return { value: await running, source: 'inflight' };
    const p = (async () => {
      try {
        const r = await load();
        if (r.ttl !== null) this.set(key, r.value, r.ttl);
        return r.value;
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return { value: await p, source: 'query' };
  }

  /** Evict least recently used entries (the front of the Map) down to maxEntries; O(1) amortised. */
  private trim(): void {
    const max = Math.max(0, this.opts.maxEntries);
    for (const k of this.entries.keys()) {
      if (this.entries.size <= max) return;
      this.entries.delete(k);
    }
  }
}
