// The lookup engine every policy's DnsblCheck shares: one resolver (kept across a reload with
// the same DNS settings), one cache with coalescing and TTL clamps for A and TXT answers, and
// the RFC 5782 §5 zone health table with its periodic checks. Lookups never reject.

import type { DnsConfig } from '../config/schema.js';
import type { DnsQueryEvent } from '../events.js';
import type { Logger } from '../log/logger.js';
import { DnsCache, type CacheSource } from '../dns/cache.js';
import { DnsClient, DnsError, type DnsResponse, type Resolver } from '../dns/client.js';
import { isBadAnswer } from './query.js';

/** What one (zone, client) A lookup found; this is what the cache keeps. */
export interface ZoneLookup {
  rcode: string;
  answers: string[];
  /** Seconds the answer may be cached (before clamping), or null for errors. */
  ttl: number | null;
  /** timeout, servfail, refused, formerr, network, bad_answer, ... */
  error?: string;
}

export interface LookupOutcome {
  lookup: ZoneLookup;
  source: CacheSource;
  ms: number;
  /**
   * Seconds this answer is still good for, or null for errors: the answer's own TTL when it was
   * asked now (RFC 2308 §5's negative TTL for NXDOMAIN/NODATA, the smallest A record TTL for a
   * listing); from this engine's cache, the less of that and what is left of the cached copy.
   * The client cache remembers a DNS list pass this long (cache.passTtl.dnsbl at most).
   */
  ttl: number | null;
}

export interface DnsblEngineOptions {
  dns: DnsConfig;
  logger: Logger;
  onQuery?: (ev: DnsQueryEvent) => void;
  /** Default: a DnsClient built from `dns`. */
  resolver?: Resolver;
  /** Another engine whose cache entries and zone health this one takes over (reload). */
  prev?: DnsblEngine;
  now?: () => number;
}

/** A zone's health as the engine itself knows it (the console's Caught page shows it). */
export interface ZoneHealth {
  zone: string;
  /** The last RFC 5782 §5 test: passed, failed, no answer, or never run (healthCheckInterval 0). */
  state: 'ok' | 'failing' | 'unknown' | 'unchecked';
  /** When that test ran (ms since the epoch), or null. */
  checkedAt: number | null;
  /** Why it failed or got no answer, or null. */
  reason: string | null;
  /** Lookups skip the zone (it failed and has not passed since; an unanswered test keeps the state). */
  skipped: boolean;
  /** Answers outside 127/8 (a refused or rate-limited query) since start. */
  badAnswers: number;
}

const HEALTH_LISTED = '2.0.0.127';
const HEALTH_UNLISTED = '1.0.0.127';
const MAX_TXT = 8;
const DEFAULT_WARN_INTERVAL_MS = 60 * 60_000;

function errorOf(e: unknown): string {
  if (e instanceof DnsError) return e.code;
  return 'network';
}

/** Turns a DNS response into a list lookup result (RFC 5782 §2.3, RFC 2308 §5). */
export function toLookup(r: DnsResponse): ZoneLookup {
  if (r.rcode === 'NXDOMAIN' || (r.rcode === 'NOERROR' && r.answers.length === 0)) {
    return { rcode: r.rcode, answers: [], ttl: r.negativeTtl ?? 0 };
  }
  if (r.rcode !== 'NOERROR') return { rcode: r.rcode, answers: [], ttl: null, error: r.rcode.toLowerCase() };
  const answers = r.answers.filter((a) => a.type === 'A').map((a) => a.data);
  const ttl = Math.min(...r.answers.map((a) => a.ttl));
  if (answers.some(isBadAnswer)) return { rcode: r.rcode, answers, ttl, error: 'bad_answer' };
  return { rcode: r.rcode, answers, ttl };
}

/** Resolver settings; a reload with the same ones keeps the resolver (and its lookups in flight). */
function resolverKey(d: DnsConfig): string {
  return JSON.stringify([d.servers.map(String), d.timeout, d.retries]);
}

/** A DnsClient closed when its last engine stops. */
class SharedResolver implements Resolver {
  private refs = 1;
  constructor(readonly key: string, readonly client: DnsClient) {}
  query(name: string, type: 'A' | 'TXT'): Promise<DnsResponse> {
    return this.client.query(name, type);
  }
  retain(): this {
    this.refs++;
    return this;
  }
  get closed(): boolean {
    return this.refs <= 0;
  }
  close(): void {
    if (--this.refs <= 0) this.client.close();
  }
  get stats() {
    return this.client.stats;
  }
}

function sharedResolver(d: DnsConfig, prev: Resolver | undefined): Resolver {
  const key = resolverKey(d);
  if (prev instanceof SharedResolver && prev.key === key && !prev.closed) return prev.retain();
  return new SharedResolver(key, new DnsClient({ servers: d.servers.map(String), timeout: d.timeout, retries: d.retries }));
}

/** Shared by every policy's DnsblCheck: one resolver, one cache, one health table. */
export class DnsblEngine {
  readonly resolver: Resolver;
  readonly cache: DnsCache<ZoneLookup>;
  readonly txtCache: DnsCache<string[]>;
  /** Zones that failed the RFC 5782 §5 test; skipped until they pass again. */
  readonly unhealthy: Set<string>;
  /** bad_answer counts per zone. */
  readonly badAnswers = new Map<string, number>();
  readonly dns: DnsConfig;
  private readonly logger: Logger;
  private readonly onQuery: ((ev: DnsQueryEvent) => void) | undefined;
  private readonly now: () => number;
  private readonly lastWarn = new Map<string, number>();
  private healthTimer: NodeJS.Timeout | null = null;
  /** The last health test per zone. */
  private readonly lastCheck: Map<string, { state: 'ok' | 'failing' | 'unknown'; at: number; reason: string | null }>;
  /** The zones the policies use (set by startHealthChecks). */
  private zones: string[] = [];
  private stopped = false;

  constructor(o: DnsblEngineOptions) {
    this.dns = o.dns;
    this.logger = o.logger;
    this.onQuery = o.onQuery;
    this.now = o.now ?? Date.now;
    this.resolver = o.resolver ?? sharedResolver(o.dns, o.prev?.resolver);
    const copts = { maxEntries: o.dns.cacheSize, minTtl: o.dns.minTtl, maxTtl: o.dns.maxTtl, now: this.now };
    this.cache = new DnsCache<ZoneLookup>(copts, o.prev?.cache);
    this.txtCache = new DnsCache<string[]>(copts, o.prev?.txtCache);
    this.unhealthy = new Set(o.prev?.unhealthy ?? []);
    this.lastCheck = new Map(o.prev?.lastCheck ?? []);
  }

  /** Every zone in use, and any other the health table knows, with its last test. */
  health(): ZoneHealth[] {
    const names = [...new Set([...this.zones, ...this.lastCheck.keys()])].sort();
    return names.map((zone) => {
      const c = this.lastCheck.get(zone);
      return {
        zone,
        state: c?.state ?? 'unchecked',
        checkedAt: c?.at ?? null,
        reason: c?.reason ?? null,
        skipped: this.unhealthy.has(zone),
        badAnswers: this.badAnswers.get(zone) ?? 0,
      };
    });
  }

  healthy(zone: string): boolean {
    return !this.unhealthy.has(zone);
  }

  /** A lookup of one zone for one reversed address; never rejects (errors are results). */
  async lookupA(zone: string, rev: string): Promise<LookupOutcome> {
    const t0 = this.now();
    let out: LookupOutcome;
    const key = `${zone} ${rev}`;
    try {
      const r = await this.cache.lookup(key, async () => {
        const l = toLookup(await this.resolver.query(`${rev}.${zone}`, 'A'));
        if (l.error === 'bad_answer') this.noteBadAnswer(zone, l.answers);
        return { value: l, ttl: l.error && l.error !== 'bad_answer' ? null : l.ttl };
      });
      const l = r.value;
      let ttl = l.error ? null : l.ttl;
      // A cached copy has aged (and was kept at least dns.minTtl): never more than is left of it.
      if (ttl !== null && r.source === 'cache') ttl = Math.min(ttl, this.cache.ttlOf(key) ?? 0);
      out = { lookup: l, source: r.source, ms: this.now() - t0, ttl };
    } catch (e) {
      out = { lookup: { rcode: '', answers: [], ttl: null, error: errorOf(e) }, source: 'query', ms: this.now() - t0, ttl: null };
    }
    try {
      this.onQuery?.({
        zone, durationMs: out.ms, cacheHit: out.source !== 'query',
        ...(out.lookup.error ? { error: out.lookup.error } : {}),
      });
    } catch {
      // an event listener must not break a lookup
    }
    return out;
  }

  /** TXT reasons of a listing (RFC 5782 §2.1); errors give no text. */
  async lookupTxt(zone: string, rev: string): Promise<string[]> {
    try {
      const r = await this.txtCache.lookup(`${zone} ${rev}`, async () => {
        const resp = await this.resolver.query(`${rev}.${zone}`, 'TXT');
        const txt = resp.answers.filter((a) => a.type === 'TXT').slice(0, MAX_TXT).map((a) => a.data.slice(0, 512));
        const ttl = resp.answers.length > 0 ? Math.min(...resp.answers.map((a) => a.ttl)) : (resp.negativeTtl ?? 0);
        return { value: txt, ttl: resp.rcode === 'NOERROR' || resp.rcode === 'NXDOMAIN' ? ttl : null };
      });
      return r.value;
    } catch {
      return [];
    }
  }

  private noteBadAnswer(zone: string, answers: string[]): void {
    this.badAnswers.set(zone, (this.badAnswers.get(zone) ?? 0) + 1);
    const every = this.dns.healthCheckInterval > 0 ? this.dns.healthCheckInterval * 60_000 : DEFAULT_WARN_INTERVAL_MS;
    const last = this.lastWarn.get(zone);
    const now = this.now();
    if (last !== undefined && now - last < every) return;
    this.lastWarn.set(zone, now);
    this.logger.warn(
      { tag: 'DNSBL_ERROR', zone, answers, count: this.badAnswers.get(zone) },
      `${zone} answered outside 127/8 or in 127.255.255.0/24 (query refused or rate limited?); not counted as a listing`,
    );
  }

  /** RFC 5782 §5: 127.0.0.2 must be listed, 127.0.0.1 must not. Errors leave the state as it was. */
  async checkZone(zone: string): Promise<'ok' | 'fail' | 'unknown'> {
    let two: ZoneLookup;
    let one: ZoneLookup;
    try {
      [two, one] = await Promise.all([
        this.resolver.query(`${HEALTH_LISTED}.${zone}`, 'A').then(toLookup),
        this.resolver.query(`${HEALTH_UNLISTED}.${zone}`, 'A').then(toLookup),
      ]);
    } catch (e) {
      this.logger.warn({ tag: 'DNSBL_HEALTH', zone, error: errorOf(e) }, `${zone}: health check got no answer`);
      this.lastCheck.set(zone, { state: 'unknown', at: this.now(), reason: `no answer (${errorOf(e)})` });
      return 'unknown';
    }
    const soft = [two, one].find((l) => l.error && l.error !== 'bad_answer');
    if (soft) {
      // SERVFAIL/REFUSED is the resolver's trouble as much as the zone's: do not flip state.
      this.logger.warn({ tag: 'DNSBL_HEALTH', zone, error: soft.error }, `${zone}: health check failed to resolve`);
      this.lastCheck.set(zone, { state: 'unknown', at: this.now(), reason: `failed to resolve (${soft.error})` });
      return 'unknown';
    }
    let reason = '';
    if (two.error === 'bad_answer') reason = `127.0.0.2 answered ${two.answers.join(',')} (query refused or rate limited?)`;
    else if (two.answers.length === 0) reason = '127.0.0.2 is not listed';
    else if (one.answers.length > 0) reason = `127.0.0.1 is listed (${one.answers.join(',')})`;
    if (reason) {
      if (!this.unhealthy.has(zone)) this.logger.warn({ tag: 'DNSBL_HEALTH', zone, reason }, `${zone} fails the RFC 5782 test (${reason}); skipped until it passes`);
      this.unhealthy.add(zone);
      this.lastCheck.set(zone, { state: 'failing', at: this.now(), reason });
      return 'fail';
    }
    this.lastCheck.set(zone, { state: 'ok', at: this.now(), reason: null });
    if (this.unhealthy.delete(zone)) this.logger.info({ tag: 'DNSBL_HEALTH', zone }, `${zone} passes the RFC 5782 test again`);
    return 'ok';
  }

  async checkZones(zones: Iterable<string>): Promise<void> {
    await Promise.all([...new Set(zones)].map((z) => this.checkZone(z)));
  }

  /**
   * First health round now, then every healthCheckInterval minutes (0 = off). Waits for the
   * first round at most dns.timeout, so a dead resolver cannot hold up start-up; zones stay
   * in use until a round says otherwise.
   */
  async startHealthChecks(zones: readonly string[]): Promise<void> {
    this.zones = [...new Set(zones)];
    if (this.stopped || this.dns.healthCheckInterval <= 0 || zones.length === 0) return;
    const first = this.checkZones(zones).catch(() => undefined);
    if (!this.healthTimer) {
      this.healthTimer = setInterval(() => {
        this.checkZones(zones).catch(() => undefined);
      }, this.dns.healthCheckInterval * 60_000);
      this.healthTimer.unref();
    }
    await byDeadline(first, Date.now() + this.dns.timeout, Date.now);
  }

  /** Stops the health timer and releases the resolver (closed with its last user). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.healthTimer) clearInterval(this.healthTimer);
    this.healthTimer = null;
    this.resolver.close();
  }
}

/** Resolves at the deadline (or at once if it has passed) with whatever has settled. */
export function byDeadline<T>(p: Promise<T>, deadline: number, now: () => number): Promise<T | undefined> {
  const wait = Math.max(0, deadline - now());
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), wait);
    }),
  ]).finally(() => clearTimeout(timer));
}
