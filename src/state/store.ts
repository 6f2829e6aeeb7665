// The state store sessions use: one backend behind a deadline. Every call that can wait on a
// network (the Redis backend) races a timer of state.timeout ms; a failure or a missed
// deadline rejects with StateError, the policy applies state.onError, and the store counts it
// (fakemx_state_errors_total). The store is "down" when the backend says its connection is
// lost, or after FAILS_FOR_OUTAGE failed calls in a row (a lone slow answer under load is not an
// outage; nor is one stall that makes the calls then in flight time out together): one log
// line when an outage starts and one when it ends, never one per session; /healthz reads
// health(). The local backend answers from memory-mapped pages in the calling turn, so it
// needs no timer.
//
// Leases (maxSessionsPerIp across a fleet) are renewed by one timer for all of a node's
// sessions; a node that dies stops renewing and its leases expire after state.leaseTtl.
// With Redis a node takes them in blocks (state.leaseBlock) while an address is far below its
// cap: the block's spare slots serve the node's next sessions from that address with no round
// trip, and go back to Redis after SPARE_IDLE unused. Near the cap a block is one slot, so the
// count is exact where it decides anything.

import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { StateConfig } from '../config/schema.js';
import type { Logger } from '../log/logger.js';
import { LocalBackend } from './local.js';
import { MemoryBackend } from './memory.js';
import { RedisBackend } from './redis.js';
import { StateError, type Lease, type ScanPage, type ScanPageOptions, type StateBackend, type StateEntry, type StateValue } from './types.js';

export interface StateStoreOptions {
  timeout: number;
  leaseTtl?: number;
  now?: () => number;
  logger?: Logger;
  /** Each failed or late call (the metrics count them). */
  onError?: (op: string, reason: StateError['reason']) => void;
  /** Milliseconds between sweeps of expired entries (local backend); 0 = none. */
  sweepInterval?: number;
  /** Lease slots taken at once for one address (state.leaseBlock); 1 = one per session. */
  leaseBlock?: number;
}

/** Milliseconds a spare lease slot stays reserved unused before it goes back. */
export const SPARE_IDLE = 1000;
/** A block never takes more than this fraction (1/n) of the slots still free for an address. */
export const LEASE_BLOCK_DIV = 4;

/** Longest a console State page may wait for its scan step, ms (at least state.timeout). */
const SCAN_PAGE_DEADLINE = 2000;

/** Failed calls in a row that make an outage when the connection itself looks fine. */
export const FAILS_FOR_OUTAGE = 3;

export interface StateHealth {
  ok: boolean;
  /** Why the store is degraded (down, or a local store in memory), when it is. */
  note?: string;
}

export class StateStore {
  private down: { since: number; reason: string } | null = null;
  /** Failed calls since the last success, and when the first of them failed (store clock). */
  private failing = 0;
  private failingSince = 0;
  private readonly now: () => number;
  private readonly timeout: number;
  private readonly leaseTtl: number;
  /** This node's leases, renewed together. */
  private readonly held = new Map<string, Lease>();
  private renewTimer: NodeJS.Timeout | null = null;
  /** Slots of blocks not in use, per pool (lease key and cap), newest last, with when each came back. */
  private readonly spare = new Map<string, { lease: Lease; since: number }[]>();
  private spareTimer: NodeJS.Timeout | null = null;
  private blocks = 0;
  /** Block slots handed to a session and not given back (a second release of one is a no-op). */
  private readonly slotsInUse = new Set<string>();
  private readonly leaseBlock: number;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** close() has begun: an acquire answered from now on is given back, not held (and renewed) for ever. */
  private stopping = false;
  /** Acquires on the wire: close() lets them finish (and give back what they got) before the connection goes. */
  private readonly acquiring = new Set<Promise<unknown>>();
  /** Unique per process: a lease id is node:session. */
  readonly node = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  errors = 0;

  constructor(
    readonly backend: StateBackend,
    private readonly opts: StateStoreOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.timeout = opts.timeout;
    this.leaseTtl = opts.leaseTtl ?? 60_000;
    this.leaseBlock = backend.acquireBlock && backend.releaseMany ? Math.max(1, opts.leaseBlock ?? 1) : 1;
    if (opts.sweepInterval && backend.kind === 'local') {
      this.sweepTimer = setInterval(() => {
        void backend.sweep(this.now()).catch(() => undefined);
      }, opts.sweepInterval);
      this.sweepTimer.unref();
    }
  }

  get kind(): StateBackend['kind'] {
    return this.backend.kind;
  }

  /** Ok, or degraded with a reason; never unavailable (sessions go on either way). */
  health(): StateHealth {
    if (this.down) return { ok: false, note: `state store (${this.backend.kind}) unavailable since ${new Date(this.down.since).toISOString()}: ${this.down.reason}` };
    const note = this.backend.note;
    return note ? { ok: false, note } : { ok: true };
  }

  get isDown(): boolean {
    return this.down !== null;
  }

  /** An outage began (logged once) or goes on. */
  markDown(reason: string): void {
    if (this.down || this.closed) return;
    this.down = { since: Date.now(), reason };
    this.opts.logger?.warn({ tag: 'STATE_DOWN', backend: this.backend.kind, reason }, `state store unavailable: ${reason}; sessions go on per state.onError`);
  }

  markUp(): void {
    if (!this.down) return;
    const ms = Date.now() - this.down.since;
    this.down = null;
    this.opts.logger?.warn({ tag: 'STATE_UP', backend: this.backend.kind, downMs: ms }, `state store available again after ${ms} ms`);
  }

  private fail(op: string, reason: StateError['reason'], message: string): StateError {
    this.errors++;
    this.opts.onError?.(op, reason);
    const now = this.now();
    if (this.failing++ === 0) this.failingSince = now;
    // Timeouts count only once they span a whole state.timeout: one stall of a loaded host makes
    // every call then in flight time out within a few ms of each other (seen flapping
    // STATE_DOWN/STATE_UP four times in 9 s with Redis up); a Redis that stays silent keeps
    // failing calls made later too. An error answer or a refused connection counts at once.
    if (this.failing >= FAILS_FOR_OUTAGE && (reason !== 'timeout' || now - this.failingSince >= this.timeout)) this.markDown(message);
    return new StateError(`state ${op}: ${message}`, reason);
  }

  /** One call under the deadline. */
  private call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new StateError(`state ${op}: store closed`, 'closed'));
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      return Promise.reject(this.fail(op, 'error', e instanceof Error ? e.message : String(e)));
    }
    const ok = (v: T) => {
      this.failing = 0;
      this.markUp();
      return v;
    };
    const asError = (e: unknown): StateError => (e instanceof StateError ? e : this.fail(op, 'error', e instanceof Error ? e.message || e.name : String(e)));
    const bad = (e: unknown): never => {
      throw asError(e);
    };
    if (this.backend.kind !== 'redis') return p.then(ok, bad);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(this.fail(op, 'timeout', `no answer within ${this.timeout} ms`));
      }, this.timeout);
      p.then(
        (v) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(ok(v));
        },
        (e: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(asError(e));
        },
      );
    });
  }

  getMany(keys: readonly string[]): Promise<(StateEntry | null)[]> {
    return this.call('get', () => this.backend.getMany(keys));
  }

  async get(key: string): Promise<StateEntry | null> {
    return (await this.getMany([key]))[0] ?? null;
  }

  set(key: string, value: StateValue, ttlMs: number): Promise<void> {
    const exp = this.now() + ttlMs;
    return this.call('set', () => this.backend.set(key, value, exp));
  }

  /** Set unless present: the entry now stored, and whether this call made it. */
  add(key: string, value: StateValue, ttlMs: number): Promise<{ entry: StateEntry; created: boolean }> {
    const exp = this.now() + ttlMs;
    return this.call('add', () => this.backend.add(key, value, exp));
  }

  del(key: string): Promise<boolean> {
    return this.call('del', () => this.backend.del(key));
  }

  /** Every live entry under a key prefix; no deadline (the CLI and exports). */
  scan(prefix: string): AsyncIterable<StateEntry> {
    return this.backend.scan(prefix);
  }

  /**
   * One bounded, resumable step of a scan (the console's State page). Like scan(), outside
   * the sessions' accounting: a slow page or a bad cursor from a console user is not a state
   * error and must not mark the store down (/healthz). It has a deadline of its own, as the
   * CLI has: several SCAN steps may take longer than a session's state.timeout.
   */
  scanPage(prefix: string, cursor: string | null, opts: ScanPageOptions): Promise<ScanPage> {
    if (this.closed) return Promise.reject(new StateError('state scan: store closed', 'closed'));
    const ms = Math.max(this.timeout, SCAN_PAGE_DEADLINE);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StateError(`state scan: no answer within ${ms} ms`, 'timeout')), ms);
    });
    return Promise.race([this.backend.scanPage(prefix, cursor, opts), late]).finally(() => clearTimeout(timer));
  }

  clock(): number {
    return this.now();
  }

  // ---- leases ------------------------------------------------------------------------------

  /** A lease on `key` for one session, unless `max` are held across the fleet. */
  acquireLease(key: string, session: string, max: number): Promise<Lease | null> {
    const poolKey = `${max}|${key}`;
    const pool = this.spare.get(poolKey);
    if (pool) {
      const slot = pool.pop()!;
      if (pool.length === 0) this.spare.delete(poolKey);
      this.slotsInUse.add(slot.lease.id);
      return Promise.resolve(slot.lease);
    }
    // Only an acquire that goes to the backend is tracked: close() waits for those.
    const p = this.leaseBlock > 1 ? this.acquireBlock(key, max, poolKey) : this.acquireOne(key, session, max);
    this.acquiring.add(p);
    const done = () => this.acquiring.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * One acquire under the deadline: how many of `ids` the backend gave (0: refused). Any given
   * after the deadline, or answered once close() began, are given back, not held.
   */
  private async reserve(key: string, ids: readonly string[], ask: () => Promise<number>): Promise<number> {
    let asked: Promise<number> | undefined;
    let got: number;
    try {
      got = await this.call('lease', () => (asked = ask()));
    } catch (e) {
      // Past the deadline the acquire may still run (a stalled Redis runs what was queued when it
      // wakes, a script cache miss resends it later): a lease nobody holds would count against
      // the client on every node until it expires. Given back once the acquire has run.
      asked?.then((n) => (n > 0 ? this.releaseSlots(key, ids.slice(0, n)) : undefined)).catch(() => undefined);
      throw e;
    }
    if (got > 0 && this.stopping) {
      await this.releaseSlots(key, ids.slice(0, got)).catch(() => undefined);
      throw new StateError('state lease: store closed', 'closed');
    }
    return got;
  }

  /** One lease for one session (state.leaseBlock 1, or a backend without blocks). */
  private async acquireOne(key: string, session: string, max: number): Promise<Lease | null> {
    const lease = { key, id: `${this.node}:${session}` };
    const now = this.now();
    const got = await this.reserve(key, [lease.id], () => this.backend.acquire(lease, max, now + this.leaseTtl, now).then((ok) => (ok ? 1 : 0)));
    if (got === 0) return null;
    this.held.set(lease.id, lease);
    this.armRenew();
    return lease;
  }

  /** A block of up to state.leaseBlock slots: the first for this session, the rest spare. */
  private async acquireBlock(key: string, max: number, pool: string): Promise<Lease | null> {
    const base = `${this.node}:b${(++this.blocks).toString(36)}`;
    const ids = Array.from({ length: this.leaseBlock }, (_, i) => `${base}.${i}`);
    const now = this.now();
    const got = await this.reserve(key, ids, () => this.backend.acquireBlock!(key, ids, max, LEASE_BLOCK_DIV, now + this.leaseTtl, now));
    if (got <= 0) return null;
    const slots: Lease[] = ids.slice(0, got).map((id) => ({ key, id, pool }));
    for (const l of slots) this.held.set(l.id, l);
    this.armRenew();
    if (got > 1) {
      // Joined to the pool, not in its place: another block for it (sessions from one address
      // at once) or slots given back may have filled it meanwhile, and a slot dropped from the
      // pools would be held and renewed for ever. Oldest first, as sweepSpare reads it.
      const spares = [...(this.spare.get(pool) ?? []), ...slots.slice(1).map((lease) => ({ lease, since: now }))];
      this.spare.set(pool, spares.sort((x, y) => x.since - y.since));
      this.armSpare();
    }
    this.slotsInUse.add(slots[0]!.id);
    return slots[0]!;
  }

  /** Leases on one key given back: one id with release, several (only ever a block's, so a backend with blocks) at once. */
  private releaseSlots(key: string, ids: readonly string[]): Promise<void> {
    return ids.length === 1 ? this.backend.release({ key, id: ids[0]! }) : this.backend.releaseMany!(key, ids);
  }

  /** Gives a lease back; a failure is left to its expiry (never blocks a closing session). */
  releaseLease(lease: Lease): void {
    if (lease.pool !== undefined) {
      if (!this.slotsInUse.delete(lease.id)) return;
      if (this.closed || !this.held.has(lease.id)) return; // a slot Redis lost (renewAll) is not pooled again
      const pool = this.spare.get(lease.pool);
      if (!pool) this.spare.set(lease.pool, [{ lease, since: this.now() }]);
      else if (pool.length < this.leaseBlock) pool.push({ lease, since: this.now() });
      else return this.dropLeases(lease.key, [lease]);
      this.armSpare();
      return;
    }
    this.dropLeases(lease.key, [lease]);
  }

  /** Leases this node no longer holds, given back to the backend. */
  private dropLeases(key: string, leases: readonly Lease[]): void {
    for (const l of leases) this.held.delete(l.id);
    this.stopRenewIfIdle();
    const ids = leases.map((l) => l.id);
    void this.call('release', () => this.releaseSlots(key, ids)).catch(() => undefined);
  }

  /** No lease left to renew: the renew timer stops. */
  private stopRenewIfIdle(): void {
    if (this.held.size === 0 && this.renewTimer) {
      clearInterval(this.renewTimer);
      this.renewTimer = null;
    }
  }

  private armSpare(): void {
    if (this.spareTimer) return;
    this.spareTimer = setInterval(() => this.sweepSpare(), SPARE_IDLE);
    this.spareTimer.unref();
  }

  /** Spare slots unused for SPARE_IDLE go back, one command per address. */
  sweepSpare(): void {
    const old = this.now() - SPARE_IDLE;
    for (const [poolKey, pool] of this.spare) {
      // Oldest first: sessions take the newest (pop), so the idle ones sit at the front.
      let n = 0;
      while (n < pool.length && pool[n]!.since <= old) n++;
      if (n === 0) continue;
      const gone = pool.splice(0, n).map((x) => x.lease);
      if (pool.length === 0) this.spare.delete(poolKey);
      this.dropLeases(gone[0]!.key, gone);
    }
    if (this.spare.size === 0 && this.spareTimer) {
      clearInterval(this.spareTimer);
      this.spareTimer = null;
    }
  }

  /** Spare lease slots this node holds (tests, the bench). */
  get leasesSpare(): number {
    let n = 0;
    for (const pool of this.spare.values()) n += pool.length;
    return n;
  }

  leaseCount(key: string): Promise<number> {
    return this.call('lease', () => this.backend.leaseCount(key, this.now()));
  }

  get leasesHeld(): number {
    return this.held.size;
  }

  private armRenew(): void {
    if (this.renewTimer) return;
    this.renewTimer = setInterval(() => void this.renewAll(), Math.max(10, Math.floor(this.leaseTtl / 3)));
    this.renewTimer.unref();
  }

  /** Extends every lease this node holds, in one batch. */
  renewAll(): Promise<void> {
    if (this.held.size === 0) return Promise.resolve();
    const all = [...this.held.values()];
    const exp = this.now() + this.leaseTtl;
    return this.call('renew', () => this.backend.renew(all, exp)).then(
      (lost) => {
        if (lost) this.lostSlots(lost);
      },
      () => undefined,
    );
  }

  /**
   * Block slots the backend no longer had (lost in a Redis restart, or expired while this node
   * was cut off and removed by another node's acquire): a spare one would admit sessions Redis
   * does not count, and a slot in use would go back to the spares when its session ends.
   * A session's own lease is left as before: it ends with the session.
   */
  private lostSlots(ids: readonly string[]): void {
    for (const id of ids) {
      const l = this.held.get(id);
      if (l?.pool === undefined) continue;
      this.held.delete(id);
      const pool = this.spare.get(l.pool);
      const i = pool ? pool.findIndex((x) => x.lease.id === id) : -1;
      if (i >= 0) pool!.splice(i, 1);
      if (pool?.length === 0) this.spare.delete(l.pool);
    }
    this.stopRenewIfIdle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.stopping = true;
    await Promise.allSettled([...this.acquiring]);
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.spareTimer) clearInterval(this.spareTimer);
    this.renewTimer = this.sweepTimer = this.spareTimer = null;
    this.spare.clear();
    this.slotsInUse.clear();
    // Leases still held (sessions cut by shutdown) are given back before the connection goes.
    const held = [...this.held.values()];
    this.held.clear();
    await Promise.all(held.map((l) => this.backend.release(l).catch(() => undefined)));
    this.closed = true;
    await this.backend.close();
  }
}

export interface OpenStateOptions {
  logger?: Logger;
  onError?: StateStoreOptions['onError'];
  now?: () => number;
  /** Sweep interval of the local backend (default one minute). */
  sweepInterval?: number;
}

/** The store a config describes. The Redis one connects in the background (a down Redis is an outage, not a start failure). */
export function openStateStore(cfg: StateConfig, opts: OpenStateOptions = {}): StateStore {
  // The backend reports connection changes to the store made around it.
  const ref: { store?: StateStore } = {};
  let backend: StateBackend;
  if (cfg.backend === 'redis') {
    backend = new RedisBackend({
      url: cfg.redis.url,
      prefix: cfg.redis.prefix,
      connectTimeout: cfg.redis.connectTimeout,
      cacheEntries: cfg.redis.cacheEntries,
      ...(cfg.redis.tlsCa ? { tlsCa: cfg.redis.tlsCa } : {}),
      ...(cfg.redis.password ? { password: cfg.redis.password } : {}),
      onStatus: (up, reason) => {
        if (up) ref.store?.markUp();
        else ref.store?.markDown(reason ?? 'connection lost');
      },
    });
  } else {
    backend = new LocalBackend({
      path: cfg.path,
      ...(opts.now ? { now: opts.now } : {}),
      onDegraded: (reason) => opts.logger?.warn({ tag: 'STATE_DEGRADED', backend: 'local', reason }, reason),
    });
  }
  const store = new StateStore(backend, {
    timeout: cfg.timeout,
    leaseTtl: cfg.leaseTtl,
    leaseBlock: cfg.leaseBlock,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.onError ? { onError: opts.onError } : {}),
    sweepInterval: opts.sweepInterval ?? 60_000,
  });
  ref.store = store;
  return store;
}

/** A store over memory on a test clock (unit tests). */
export function memoryStateStore(now: () => number, timeout = 50): StateStore {
  return new StateStore(new MemoryBackend(now), { timeout, now });
}
