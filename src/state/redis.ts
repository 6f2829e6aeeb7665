// The Redis backend (the official `redis` client): every fakemx node of a fleet points at one
// Redis or Valkey (>= 6.2 for PXAT). Entries are strings `{"v":value,"e":expiresAt}` with the
// same absolute expiry on the server (SET PXAT), so a key vanishes by itself; leases are one
// sorted set per client address (member = node:session, score = expiry). Every update that
// reads before it writes is one Lua script, so two nodes never race; each script and command
// touches one key, so keys may live on any shard of a Redis Cluster behind a proxy.
//
// Commands are not queued while disconnected (disableOfflineQueue): a call fails at once and
// the StateStore's deadline never has to run out. The client reconnects with backoff by itself.
//
// Reads go through a tracked cache (state.redis.cacheEntries): the connection speaks RESP3 with
// CLIENT TRACKING on, so Redis pushes an invalidation on that same connection whenever a key
// this node read changes or expires, on any node. A client seen again is then answered from
// memory without a round trip, never from a value another node has since changed.

import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { RedisClientType } from 'redis';
import { MAX_TLS_FILE_BYTES, readCapped } from '../util/read-capped.js';
import { decodeEntry, encodeEntry, type Lease, type ScanPage, type ScanPageOptions, type StateBackend, type StateEntry, type StateValue } from './types.js';

export interface RedisOptions {
  url: string;
  /** Prefix of every key (several deployments may share one Redis). */
  prefix: string;
  connectTimeout: number;
  /** PEM CA bundle for rediss:// (empty: the system's). */
  tlsCa?: string;
  /** AUTH password when not in the URL. */
  password?: string;
  /** Connection state changes: up, or down with the reason (the StateStore logs transitions). */
  onStatus?: (up: boolean, reason?: string) => void;
  /** Most keys the tracked read cache holds; 0 = no cache (RESP2, no CLIENT TRACKING: proxies that lack it). */
  cacheEntries?: number;
}

/** Backoff of the client's reconnects: 50 ms doubling to 2 s, with jitter. */
export function reconnectDelay(retries: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(retries, 10));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

const ADD = `local ok = redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2], 'NX')
if ok then return {1, ARGV[1]} end
return {0, redis.call('GET', KEYS[1])}`;

// KEYS[1] the lease set; ARGV id, max, expiresAt, now. Expired leases (a dead node's) go first.
const ACQUIRE = `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1`;

// KEYS[1] the lease set; ARGV max, expiresAt, now, div, then the ids to take in order.
const ACQUIRE_BLOCK = `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
if free < 1 then return 0 end
local k = math.min(#ARGV - 4, math.max(1, math.floor(free / tonumber(ARGV[4]))))
for i = 1, k do redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4 + i]) end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return k`;

const RENEW = `if redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[2], ARGV[1]) == 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1`;

/** SHA1 of a script's source, computed once per script (EVALSHA runs once per connection). */
const shas = new Map<string, string>();
const sha1 = (s: string): string => {
  let h = shas.get(s);
  if (h === undefined) shas.set(s, (h = createHash('sha1').update(s).digest('hex')));
  return h;
};

/** Glob-escape for SCAN MATCH. */
const globEscape = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/** state.redis.tlsCa's bundle, no more than a TLS file may hold (a path to /dev/zero would grow without end). */
function readCa(path: string): Buffer {
  const buf = readCapped(path, MAX_TLS_FILE_BYTES);
  if (buf === null) throw new Error(`state.redis.tlsCa: ${path} is larger than ${MAX_TLS_FILE_BYTES} bytes`);
  return buf;
}

export class RedisBackend implements StateBackend {
  readonly kind = 'redis' as const;
  private readonly client: RedisClientType;
  private readonly prefix: string;
  private closed = false;
  private up = false;
  private readonly ready: Promise<void>;
  /** Tracked reads: full key -> raw value (null: no such key). Null when state.redis.cacheEntries is 0. */
  private readonly cache: Map<string, string | null> | null;
  private readonly cacheMax: number;
  /** Keys with a GET on the wire, and how many. */
  private readonly inflight = new Map<string, number>();
  /** In-flight keys invalidated before their answer was taken: that answer is not kept. */
  private readonly stale = new Set<string>();
  /** Bumped when the whole cache goes (a flush push, a lost connection): answers asked before are not kept. */
  private epoch = 0;
  /** Reads answered from the cache, and reads sent (tests, the bench). */
  cacheHits = 0;
  cacheMisses = 0;

  constructor(opts: RedisOptions) {
    this.prefix = opts.prefix;
    const onStatus = opts.onStatus ?? (() => {});
    // Loaded on first use: the client library takes ~0.2 s to load, which every daemon start
    // and CLI call would pay though most never talk to Redis.
    const { createClient } = createRequire(import.meta.url)('redis') as typeof import('redis');
    this.cacheMax = opts.cacheEntries ?? 0;
    this.cache = this.cacheMax > 0 ? new Map() : null;
    this.client = createClient({
      url: opts.url,
      // CLIENT TRACKING's pushes need RESP3; the client sends CLIENT TRACKING ON again on
      // every reconnect (tracking belongs to the connection).
      ...(this.cache ? { RESP: 3 as const, emitInvalidate: true } : {}),
      ...(opts.password ? { password: opts.password } : {}),
      disableOfflineQueue: true,
      // No per-command timeout in the client: StateStore already races every call against
      // state.timeout, and the client's own (5 s by default) builds an AbortSignal.timeout per
      // command, the costliest part of a Redis-backed connection in the CPU profile (a timer,
      // an event target and a listener for each of ~8 commands). A Redis that accepts and never
      // answers is bounded by commandsQueueMaxLength below, then fails fast.
      commandOptions: { timeout: 0 },
      commandsQueueMaxLength: 100_000,
      socket: {
        connectTimeout: opts.connectTimeout,
        keepAlive: true,
        reconnectStrategy: reconnectDelay,
        ...(opts.tlsCa ? { tls: true as const, ca: readCa(opts.tlsCa) } : {}),
      },
    });
    this.client.on('ready', () => {
      this.invalidate(null);
      this.up = true;
      onStatus(true);
    });
    this.client.on('error', (e: unknown) => {
      // Invalidations sent while the connection was down are lost with it.
      this.invalidate(null);
      if (this.closed) return;
      this.up = false;
      const why = e instanceof Error ? e.message || e.name : String(e);
      // twemproxy and Envoy's redis_proxy answer HELLO 3 / CLIENT TRACKING with an error.
      onStatus(false, this.cache && /\b(HELLO|TRACKING)\b/i.test(why) ? `${why} (a server or proxy without RESP3 and CLIENT TRACKING needs state.redis.cacheEntries: 0)` : why);
    });
    this.client.on('end', () => {
      this.invalidate(null);
      this.up = false;
    });
    this.client.on('invalidate', (key: string | Buffer | null) => this.invalidate(key === null ? null : key.toString()));
    // The first connect may fail (Redis down at start): the client keeps retrying, calls fail meanwhile.
    this.ready = this.client.connect().then(
      () => undefined,
      () => undefined,
    );
  }

  /** Resolves once connected (or when the first try failed); tests and the CLI wait for it. */
  whenConnected(): Promise<void> {
    return this.ready;
  }

  get connected(): boolean {
    return this.up;
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  private async script(src: string, keys: string[], args: string[]): Promise<unknown> {
    const sha = sha1(src);
    try {
      return await this.client.sendCommand(['EVALSHA', sha, String(keys.length), ...keys, ...args]);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
      return this.client.sendCommand(['EVAL', src, String(keys.length), ...keys, ...args]);
    }
  }

  /**
   * One GET per (prefixed) key, sent in the same turn: the client writes them as one pipeline,
   * so still one round trip, and not MGET: every command touches one key, so keys may sit on
   * any shard behind a cluster-aware proxy (docs/deploy.md).
   */
  private getRaw(fullKeys: readonly string[]): Promise<(string | null)[]> {
    return Promise.all(fullKeys.map((k) => this.client.sendCommand<string | null>(['GET', k])));
  }

  /** A key changed elsewhere (null: every key). Its cached value goes; an answer on the wire for it is not kept. */
  private invalidate(key: string | null): void {
    if (!this.cache) return;
    if (key === null) {
      this.cache.clear();
      this.epoch++;
      return;
    }
    this.cache.delete(key);
    if (this.inflight.has(key)) this.stale.add(key);
  }

  /**
   * getRaw through the tracked cache: keys all cached cost no round trip; the missing ones are
   * asked, and kept unless invalidated meanwhile. The invalidation for a change that follows a
   * GET comes on the same connection after the GET's answer, but the answer reaches this code a
   * microtask later than the push, hence the in-flight bookkeeping rather than a plain set.
   */
  private getTracked(fullKeys: readonly string[]): Promise<(string | null)[]> {
    const cache = this.cache;
    if (!cache) return this.getRaw(fullKeys);
    const out = new Array<string | null>(fullKeys.length);
    const miss: string[] = [];
    const at: number[] = [];
    for (let i = 0; i < fullKeys.length; i++) {
      const v = cache.get(fullKeys[i]!);
      if (v === undefined) {
        miss.push(fullKeys[i]!);
        at.push(i);
      } else out[i] = v;
    }
    if (miss.length === 0) {
      this.cacheHits += fullKeys.length;
      return Promise.resolve(out);
    }
    this.cacheHits += fullKeys.length - miss.length;
    this.cacheMisses += miss.length;
    const epoch = this.epoch;
    for (const k of miss) this.inflight.set(k, (this.inflight.get(k) ?? 0) + 1);
    const done = (k: string) => {
      const n = this.inflight.get(k)! - 1;
      if (n > 0) this.inflight.set(k, n);
      else {
        this.inflight.delete(k);
        this.stale.delete(k);
      }
    };
    return this.getRaw(miss).then(
      (vals) => {
        const keep = this.up && epoch === this.epoch;
        for (let j = 0; j < miss.length; j++) {
          const k = miss[j]!;
          out[at[j]!] = vals[j]!;
          if (keep && !this.stale.has(k)) {
            // Oldest first out: a Map keeps insertion order.
            if (cache.size >= this.cacheMax && !cache.has(k)) cache.delete(cache.keys().next().value!);
            cache.set(k, vals[j]!);
          }
          done(k);
        }
        return out;
      },
      (e: unknown) => {
        for (const k of miss) done(k);
        throw e;
      },
    );
  }

  async getMany(keys: readonly string[]): Promise<(StateEntry | null)[]> {
    if (keys.length === 0) return [];
    const raw = await this.getTracked(keys.map((k) => this.k(k)));
    const now = Date.now();
    return keys.map((k, i) => decodeEntry(k, raw[i], now));
  }

  /** Keys in the tracked cache (tests, the bench). */
  get cached(): number {
    return this.cache?.size ?? 0;
  }

  async set(key: string, value: StateValue, expiresAt: number): Promise<void> {
    // This node's own writes: read-your-writes without waiting for the server's push.
    this.invalidate(this.k(key));
    await this.client.sendCommand(['SET', this.k(key), encodeEntry(value, expiresAt), 'PXAT', String(Math.ceil(expiresAt))]);
  }

  async add(key: string, value: StateValue, expiresAt: number): Promise<{ entry: StateEntry; created: boolean }> {
    const enc = encodeEntry(value, expiresAt);
    this.invalidate(this.k(key));
    const r = (await this.script(ADD, [this.k(key)], [enc, String(Math.ceil(expiresAt))])) as [number, string | null];
    const entry = { key, value, expiresAt };
    if (r[0] === 1) return { entry, created: true };
    return { entry: decodeEntry(key, r[1], Date.now()) ?? entry, created: false };
  }

  async del(key: string): Promise<boolean> {
    this.invalidate(this.k(key));
    return (await this.client.sendCommand<number>(['DEL', this.k(key)])) > 0;
  }

  /** One SCAN step and the GETs of what it found (leases left out): the live entries, the next cursor ('0': the end). */
  private async scanBatch(cursor: string, match: string, count: number): Promise<{ next: string; found: number; entries: StateEntry[] }> {
    const [next, found] = await this.client.sendCommand<[string, string[]]>(['SCAN', cursor, 'MATCH', match, 'COUNT', String(count)]);
    const ks = found.filter((k) => !k.startsWith(`${this.prefix}lease:`));
    const entries: StateEntry[] = [];
    if (ks.length > 0) {
      const raw = await this.getRaw(ks);
      const now = Date.now();
      for (let i = 0; i < ks.length; i++) {
        const e = decodeEntry(ks[i]!.slice(this.prefix.length), raw[i], now);
        if (e) entries.push(e);
      }
    }
    return { next, found: found.length, entries };
  }

  async *scan(prefix: string): AsyncIterable<StateEntry> {
    let cursor = '0';
    const match = `${globEscape(this.prefix + prefix)}*`;
    do {
      const b = await this.scanBatch(cursor, match, 1000);
      cursor = b.next;
      yield* b.entries;
    } while (cursor !== '0');
  }

  /**
   * SCAN's own cursor: one SCAN (COUNT up to the budget left) and its GETs per step, stopping
   * at a batch boundary, so a page may hold the rest of its last batch beyond `limit` (never
   * cut: SCAN cannot resume inside a batch). Redis answers SCAN in bounded time itself.
   */
  async scanPage(prefix: string, cursor: string | null, o: ScanPageOptions): Promise<ScanPage> {
    if (cursor !== null && !/^\d{1,20}$/.test(cursor)) throw new Error('bad scan cursor');
    let next = cursor ?? '0';
    const match = `${globEscape(this.prefix + prefix)}*`;
    const entries: StateEntry[] = [];
    let examined = 0;
    do {
      const count = Math.max(10, Math.min(1000, o.budget - examined));
      const b = await this.scanBatch(next, match, count);
      next = b.next;
      // COUNT is how much of the keyspace SCAN walked; a rare prefix matches almost nothing,
      // and counting only the matches would let one page walk the whole keyspace.
      examined += Math.max(b.found, count);
      for (const e of b.entries) if (!o.keep || o.keep(e)) entries.push(e);
    } while (next !== '0' && examined < o.budget && entries.length < o.limit);
    return { entries, cursor: next === '0' ? null : next, examined };
  }

  async acquire(lease: Lease, max: number, expiresAt: number, now: number): Promise<boolean> {
    return (await this.script(ACQUIRE, [this.k(lease.key)], [lease.id, String(max), String(Math.ceil(expiresAt)), String(now)])) === 1;
  }

  async acquireBlock(key: string, ids: readonly string[], max: number, div: number, expiresAt: number, now: number): Promise<number> {
    const r = await this.script(ACQUIRE_BLOCK, [this.k(key)], [String(max), String(Math.ceil(expiresAt)), String(now), String(div), ...ids]);
    return Number(r);
  }

  async releaseMany(key: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.client.sendCommand(['ZREM', this.k(key), ...ids]);
  }

  async renew(leases: readonly Lease[], expiresAt: number): Promise<string[]> {
    // Sent together: the client pipelines concurrent commands on its one connection.
    const r = await Promise.all(leases.map((l) => this.script(RENEW, [this.k(l.key)], [l.id, String(Math.ceil(expiresAt))])));
    return leases.filter((_, i) => r[i] === 0).map((l) => l.id);
  }

  /** A plain ZREM, not a script: Redis deletes a sorted set when its last member goes. */
  async release(lease: Lease): Promise<void> {
    await this.client.sendCommand(['ZREM', this.k(lease.key), lease.id]);
  }

  async leaseCount(key: string, now: number): Promise<number> {
    return this.client.sendCommand<number>(['ZCOUNT', this.k(key), `(${now}`, '+inf']);
  }

  /** Redis expires entries itself. */
  async sweep(_now: number): Promise<number> {
    return 0;
  }

  /** A round trip (PING), for the benchmark and the CLI. */
  async ping(): Promise<void> {
    await this.client.sendCommand(['PING']);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.client.isReady) {
      await this.client.close().catch(() => this.client.destroy());
    } else {
      this.client.destroy();
    }
  }
}
