// What the state store holds and how a backend is driven. Every entry is a small JSON object
// with an absolute expiry (milliseconds since the epoch); keys are `kind:fields`, the kinds
// below, so the CLI, the docs and both backends name the same things. Backends: memory (tests,
// and the local store's fallback when its disk fails), local (LMDB), redis.

import { normalizeIp, prefixText } from '../net/ip.js';

export type StateValue = Record<string, unknown>;

export interface StateEntry {
  key: string;
  value: StateValue;
  /** Milliseconds since the epoch, by the store's clock. */
  expiresAt: number;
}

/**
 * grey: a triplet's first attempt (client network | sender | recipient).
 * white: a client network that retried in time (allowlisted).
 * trap: a client address that wrote to a greytrap.
 * pass: a client address that passed one pre-greeting test (pass:<test>:<ip>).
 * fail: a client address that failed a test (the client cache's denylist).
 * lease: the sessions one client address holds across the fleet (Redis only).
 */
export const KINDS = ['grey', 'white', 'trap', 'pass', 'fail', 'lease'] as const;
export type Kind = (typeof KINDS)[number];

export type CacheTest = 'greet' | 'pipelining' | 'dnsbl';
export const CACHE_TESTS: readonly CacheTest[] = ['greet', 'pipelining', 'dnsbl'];

export const keys = {
  grey: (net: string, from: string, rcpt: string) => `grey:${net}|${from.toLowerCase()}|${rcpt.toLowerCase()}`,
  white: (net: string) => `white:${net}`,
  trap: (ip: string) => `trap:${normalizeIp(ip)}`,
  pass: (test: CacheTest, ip: string) => `pass:${test}:${normalizeIp(ip)}`,
  fail: (ip: string) => `fail:${normalizeIp(ip)}`,
  lease: (ipKey: string) => `lease:${ipKey}`,
};

/** The kind of a key (the part before the first colon), or null for a key fakemx did not write. */
export function kindOf(key: string): Kind | null {
  const k = key.slice(0, key.indexOf(':'));
  return (KINDS as readonly string[]).includes(k) ? (k as Kind) : null;
}

/**
 * The client network greylisting and its allowlist use: IPv4 /v4 and IPv6 /v6 (spamd keys on
 * the address; big senders retry from another address of the same network). `192.0.2.0/24`,
 * `2001:db8::/64`. Not an address: returned as is.
 */
export function clientNetwork(ip: string, v4 = 24, v6 = 64): string {
  const a = normalizeIp(ip);
  return prefixText(a, v4, v6) ?? a;
}

/** A state call failed or missed its deadline; the policy applies state.onError. */
export class StateError extends Error {
  constructor(
    message: string,
    readonly reason: 'timeout' | 'error' | 'closed',
  ) {
    super(message);
    this.name = 'StateError';
  }
}

export interface Lease {
  key: string;
  id: string;
  /**
   * One slot of a block (store.ts): given back to the node's spares for this pool, not to the
   * backend. The pool is the key and the cap it was reserved under, so a spare taken under one
   * listener's maxSessionsPerIp never serves a listener with a lower one.
   */
  pool?: string;
}

export interface ScanPageOptions {
  /** Entries to return at most (the Redis backend may return the rest of one SCAN batch beyond it). */
  limit: number;
  /** Keys to examine at most in this call. */
  budget: number;
  keep?: (e: StateEntry) => boolean;
}

export interface ScanPage {
  entries: StateEntry[];
  /** Opaque; pass it back to go on. Null when the scan has reached the end. */
  cursor: string | null;
  /** Keys examined in this call (expired and filtered-out ones included). */
  examined: number;
}

/** One backend. Every method may reject; the StateStore in store.ts adds deadlines and accounting. */
export interface StateBackend {
  readonly kind: 'memory' | 'local' | 'redis';
  /** The entries for `keys`, in order; null for a missing or expired one. */
  getMany(keys: readonly string[]): Promise<(StateEntry | null)[]>;
  set(key: string, value: StateValue, expiresAt: number): Promise<void>;
  /** Stores the entry unless a live one exists (SET NX); returns the entry now stored. */
  add(key: string, value: StateValue, expiresAt: number): Promise<{ entry: StateEntry; created: boolean }>;
  del(key: string): Promise<boolean>;
  /** Every live entry whose key starts with `prefix` (not leases). */
  scan(prefix: string): AsyncIterable<StateEntry>;
  /**
   * One bounded step of a resumable scan (the console's pages): examines about `budget` keys
   * under `prefix` from `cursor` (null: the start) and returns the live ones `keep` accepts,
   * stopping early once `limit` are kept, with the cursor to go on from (null: the end). Never
   * a whole-store walk in one call, so a large store cannot hold the event loop.
   */
  scanPage(prefix: string, cursor: string | null, opts: ScanPageOptions): Promise<ScanPage>;
  /** A lease on `key` for `id` unless `max` live leases exist; the lease lasts until expiresAt. */
  acquire(lease: Lease, max: number, expiresAt: number, now: number): Promise<boolean>;
  /**
   * Up to ids.length leases on `key` at once (a block; the redis backend only): how many were
   * taken, the first of `ids` first; 0 when `max` live leases exist. At least one when any is
   * free, never more than a `div`th of the free ones, so a node reserves ahead only while the
   * address is far below its cap.
   */
  acquireBlock?(key: string, ids: readonly string[], max: number, div: number, expiresAt: number, now: number): Promise<number>;
  /** Gives back several leases on one key at once. */
  releaseMany?(key: string, ids: readonly string[]): Promise<void>;
  /** Extends the given leases (a node renews all of its leases in one call); the redis backend returns the ids it no longer had. */
  renew(leases: readonly Lease[], expiresAt: number): Promise<void | readonly string[]>;
  release(lease: Lease): Promise<void>;
  /** Live leases on `key` (the CLI's counts). */
  leaseCount(key: string, now: number): Promise<number>;
  /** Removes expired entries (local: a sweep; redis expires by itself). Returns how many. */
  sweep(now: number): Promise<number>;
  close(): Promise<void>;
  /** Something the operator should know without an error (a local store running in memory after a disk failure). */
  readonly note?: string | undefined;
}

/** A stored value with its expiry, as both persistent backends write it (one JSON string). */
export function encodeEntry(value: StateValue, expiresAt: number): string {
  return JSON.stringify({ v: value, e: expiresAt });
}

export function decodeEntry(key: string, raw: string | Buffer | null | undefined, now: number): StateEntry | null {
  if (raw === null || raw === undefined) return null;
  try {
    const o = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8')) as { v?: unknown; e?: unknown };
    if (typeof o.e !== 'number' || o.e <= now || o.v === null || typeof o.v !== 'object') return null;
    return { key, value: o.v as StateValue, expiresAt: o.e };
  } catch {
    return null;
  }
}
