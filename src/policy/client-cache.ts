// The client cache: postscreen's temporary allowlist and denylist. A client that passed a
// pre-greeting test (greet: the banner delay without early talk; pipelining: a session without
// talking out of turn; dnsbl: not listed) is remembered per test for cache.passTtl.<test> and
// skips that test (and, for greet, the banner delay) on its next connection. A client that
// failed one is remembered for cache.failTtl and answered at connect as the failed test's
// action says (drop: 421 and close; enforce: 550 each RCPT; ignore: logged). A dnsbl pass lasts
// as long as the DNS answers said (dnsblPassTtl). Pure logic over the state store; the verdicts
// CACHE_PASS and CACHE_FAIL are the caller's to emit.

import type { CacheConfig, EarlyTalkAction } from '../config/schema.js';
import { dnsblDropReply, dnsblRcptReply, effectiveAction } from '../dnsbl/verdict.js';
import type { DnsAction } from '../config/schema.js';
import type { Reply } from '../smtp/reply.js';
import type { DnsZoneResult } from '../store/metadata.js';
import type { StateStore } from '../state/store.js';
import { CACHE_TESTS, keys, type CacheTest, type StateEntry } from '../state/types.js';

/** The schema's cache keys (config/schema.ts), under the name this module has always used. */
export type { CacheConfig };

export interface ClientRecord {
  /** Tests this client passed recently. */
  passed: ReadonlySet<CacheTest>;
  /** The test it failed recently, if any. */
  failed: StateEntry | null;
  /** It wrote to a greytrap (greytrap.ts). */
  trapped: StateEntry | null;
  /** Its network's allowlist entry (greylisting), when asked for. */
  white: StateEntry | null;
  /**
   * The DNS allow list zone its dnsbl pass came from, when that pass was a DNSWL listing: the
   * pass skips the lookup, so without it the client would lose its DNSWL exemption from
   * greylisting for as long as the pass lasts.
   */
  dnswl: string | null;
}

/**
 * Everything known about a client address, in one read (one round trip on Redis); with
 * `whiteKey`, also its network's greylisting allowlist entry, so an allowlisted sender's RCPTs
 * need no further read.
 */
export async function lookupClient(store: StateStore, ip: string, whiteKey?: string): Promise<ClientRecord> {
  // The allowlist key only when asked: on Redis every key is a command of its own.
  const asked = [keys.fail(ip), keys.trap(ip), ...CACHE_TESTS.map((t) => keys.pass(t, ip))];
  if (whiteKey !== undefined) asked.push(whiteKey);
  const got = await store.getMany(asked);
  const passed = new Set<CacheTest>();
  CACHE_TESTS.forEach((t, i) => {
    if (got[2 + i]) passed.add(t);
  });
  const allowedBy = got[2 + CACHE_TESTS.indexOf('dnsbl')]?.value.dnswl;
  return {
    passed, failed: got[0] ?? null, trapped: got[1] ?? null, white: whiteKey !== undefined ? (got[2 + CACHE_TESTS.length] ?? null) : null,
    dnswl: typeof allowedBy === 'string' ? allowedBy : null,
  };
}

/**
 * How long a DNS list pass is remembered, in ms: the smallest TTL the lookups returned (per
 * zone the answer's: RFC 2308 §5 min(SOA TTL, SOA MINIMUM) for NXDOMAIN/NODATA, the smallest
 * A record TTL for a listing that did not count, e.g. below dns.threshold or filtered out),
 * so the pass never outlives what a list said, clamped to [dnsblMinTtl, passTtl.dnsbl] with
 * the ceiling winning if they cross. Without any TTL (no list asked) passTtl.dnsbl.
 */
export function dnsblPassTtl(cfg: CacheConfig, zones: readonly DnsZoneResult[]): number {
  let secs = Infinity;
  for (const z of zones) if (typeof z.ttl === 'number') secs = Math.min(secs, z.ttl);
  if (secs === Infinity) return cfg.passTtl.dnsbl;
  return Math.min(cfg.passTtl.dnsbl, Math.max(cfg.dnsblMinTtl, secs * 1000));
}

/**
 * The client passed `test`: remembered for passTtl[test] (ttl overrides it, e.g. a DNS answer's).
 * `dnswl`: the dnsbl pass is a DNS allow list listing (that zone), which exempts the client from
 * greylisting while the pass lasts, as the lookup it stands for would have.
 */
export async function recordPass(store: StateStore, cfg: CacheConfig, ip: string, test: CacheTest, ttl?: number, dnswl?: string): Promise<void> {
  const ms = Math.min(ttl ?? cfg.passTtl[test], cfg.passTtl[test]);
  if (ms <= 0) return;
  await store.set(keys.pass(test, ip), { at: store.clock(), ...(dnswl !== undefined ? { dnswl } : {}) }, ms);
}

/** The client failed `test`: remembered for failTtl, and every pass it had is forgotten. */
export async function recordFail(store: StateStore, cfg: CacheConfig, ip: string, test: CacheTest | 'pregreet' | 'manual', details: Record<string, unknown> = {}): Promise<void> {
  if (cfg.failTtl <= 0) return;
  await store.set(keys.fail(ip), { test, at: store.clock(), ...details }, cfg.failTtl);
  await Promise.all(CACHE_TESTS.map((t) => store.del(keys.pass(t, ip))));
}

export interface CachedFailVerdict {
  action: 'drop' | 'enforce' | 'ignore';
  /** Ends the session at connect (drop). */
  reply: Reply | undefined;
  /** Every RCPT gets this (enforce). */
  rcptReject: Reply | undefined;
}

/** What a remembered failure does now: the action of the test that failed. */
export function cachedFail(entry: StateEntry, ip: string, cfg: { earlyTalkAction: EarlyTalkAction; dnsAction: DnsAction; storeData: boolean }): CachedFailVerdict {
  const test = typeof entry.value.test === 'string' ? entry.value.test : '';
  if (test === 'dnsbl') {
    const zone = typeof entry.value.zone === 'string' ? entry.value.zone : 'a DNS list';
    const action = effectiveAction(cfg.dnsAction, cfg.storeData);
    return {
      action,
      reply: action === 'drop' ? dnsblDropReply(ip, zone) : undefined,
      rcptReject: action === 'enforce' ? dnsblRcptReply(ip, zone) : undefined,
    };
  }
  const action = test === 'manual' ? 'drop' : cfg.earlyTalkAction;
  const text = `Service unavailable; client [${ip}] failed a test recently, try again later`;
  return {
    action,
    reply: action === 'drop' ? { code: 421, enhanced: '4.7.1', text, close: true, outcome: 'cache_fail' } : undefined,
    rcptReject: action === 'enforce' ? { code: 550, enhanced: '5.7.1', text: `client [${ip}] failed a test recently` } : undefined,
  };
}
