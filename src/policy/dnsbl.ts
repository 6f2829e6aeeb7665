// DNS block/allow lists (RFC 5782) for the policy chain: postscreen's `zone[=filter][*weight]`,
// query names, scoring, FakeSMTP's order (allow lists first), zone health. DnsblCheck implements
// DnsCheck: check() never rejects and resolves by the deadline; unanswered zones fail open.

import type { DnsConfig } from '../config/schema.js';
import type { DnsQueryEvent } from '../events.js';
import type { Logger } from '../log/logger.js';
import type { DnsListResult, DnsZoneResult } from '../store/metadata.js';
import { DnsCache, type CacheSource } from '../dns/cache.js';
import { DnsClient, DnsError, type DnsResponse, type Resolver } from '../dns/client.js';
import type { DnsCheck } from './index.js';

// ---- provider syntax ------------------------------------------------------------------

/** One octet pattern: inclusive ranges; `[2..11;15]` is [[2,11],[15,15]]. */
export type OctetPattern = readonly (readonly [number, number])[];

export interface ProviderEntry {
  /** The entry as configured. */
  raw: string;
  /** Lower case, no trailing dot. */
  zone: string;
  /** Four octet patterns, or null: any 127/8 answer matches. */
  filter: readonly OctetPattern[] | null;
  /** Defaults to 1; negative weights allow (postscreen). */
  weight: number;
}

const ZONE_RE = /^(?=.{1,200}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function parseOctetNumber(s: string, raw: string): number {
  if (!/^\d{1,3}$/.test(s) || Number(s) > 255) throw new Error(`invalid DNS list entry "${raw}": bad octet "${s}"`);
  return Number(s);
}

function parseOctetPattern(p: string, raw: string): OctetPattern {
  if (!p.startsWith('[')) {
    const n = parseOctetNumber(p, raw);
    return [[n, n]];
  }
  if (!p.endsWith(']') || p.length < 3) throw new Error(`invalid DNS list entry "${raw}": bad pattern "${p}"`);
  const out: [number, number][] = [];
  for (const item of p.slice(1, -1).split(';')) {
    const range = item.split('..');
    if (range.length === 1) {
      const n = parseOctetNumber(range[0]!, raw);
      out.push([n, n]);
    } else if (range.length === 2) {
      const lo = parseOctetNumber(range[0]!, raw);
      const hi = parseOctetNumber(range[1]!, raw);
      if (lo > hi) throw new Error(`invalid DNS list entry "${raw}": empty range "${item}"`);
      out.push([lo, hi]);
    } else {
      throw new Error(`invalid DNS list entry "${raw}": bad range "${item}"`);
    }
  }
  return out;
}

/** Splits "127.0.[1..3].2" into octet patterns, the dots inside brackets kept. */
function splitFilter(f: string, raw: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of f) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0 || depth > 1) throw new Error(`invalid DNS list entry "${raw}": unbalanced brackets`);
    if (ch === '.' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new Error(`invalid DNS list entry "${raw}": unbalanced brackets`);
  parts.push(cur);
  return parts;
}

/** postscreen_dnsbl_sites syntax: `zone[=d.d.d.d][*weight]`, each d a number or `[n;m..k]`. */
export function parseProvider(raw: string): ProviderEntry {
  let s = String(raw).trim();
  let weight = 1;
  const star = s.lastIndexOf('*');
  if (star >= 0) {
    const w = s.slice(star + 1);
    if (!/^[+-]?\d{1,6}$/.test(w)) throw new Error(`invalid DNS list entry "${raw}": bad weight "${w}"`);
    weight = Number(w);
    s = s.slice(0, star);
  }
  let filter: OctetPattern[] | null = null;
  const eq = s.indexOf('=');
  if (eq >= 0) {
    const parts = splitFilter(s.slice(eq + 1), raw);
    if (parts.length !== 4) throw new Error(`invalid DNS list entry "${raw}": a filter has four octets`);
    filter = parts.map((p) => parseOctetPattern(p, raw));
    s = s.slice(0, eq);
  }
  const zone = s.toLowerCase().replace(/\.$/, '');
  if (!ZONE_RE.test(zone)) throw new Error(`invalid DNS list entry "${raw}": bad zone "${s}"`);
  return { raw: String(raw), zone, filter, weight };
}

export function parseProviders(list: readonly unknown[]): ProviderEntry[] {
  return list.map((e) => parseProvider(String(e)));
}

/** Whether a dotted-quad answer matches the entry (no filter: any answer matches). */
export function matchFilter(filter: readonly OctetPattern[] | null, answer: string): boolean {
  if (!filter) return true;
  const oct = ipv4Bytes(answer);
  if (!oct) return false;
  return filter.every((pat, i) => pat.some(([lo, hi]) => oct[i]! >= lo && oct[i]! <= hi));
}

// ---- addresses and query names ----------------------------------------------------------

function ipv4Bytes(s: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  return b.every((n) => n <= 255) ? b : null;
}

function ipv6Bytes(input: string): number[] | null {
  let s = input.split('%')[0]!.toLowerCase();
  if (!/^[0-9a-f:.]+$/.test(s) || !s.includes(':')) return null;
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4Bytes(tail);
    if (!v4) return null;
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...rest];
  const out: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    out.push(v >> 8, v & 0xff);
  }
  return out;
}

/** Address bytes; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as IPv4. */
export function parseIp(ip: string): { family: 4 | 6; bytes: number[] } | null {
  const v4 = ipv4Bytes(ip);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = ipv6Bytes(ip);
  if (!v6) return null;
  if (v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) return { family: 4, bytes: v6.slice(12) };
  return { family: 6, bytes: v6 };
}

/** RFC 5782 §2.1 (IPv4: octets reversed) and §2.4 (IPv6: 32 nibbles reversed). */
export function reverseName(ip: string): string | null {
  const a = parseIp(ip);
  if (!a) return null;
  if (a.family === 4) return [...a.bytes].reverse().join('.');
  const nibbles: string[] = [];
  for (const b of a.bytes) nibbles.push((b >> 4).toString(16), (b & 0xf).toString(16));
  return nibbles.reverse().join('.');
}

export function queryName(ip: string, zone: string): string | null {
  const r = reverseName(ip);
  return r === null ? null : `${r}.${zone}`;
}

/** Private, loopback, link-local, CGNAT, ULA (and unspecified) addresses: not worth a query. */
export function isPrivate(ip: string): boolean {
  const a = parseIp(ip);
  if (!a) return true;
  const b = a.bytes;
  if (a.family === 4) {
    return (
      b[0] === 0 || // RFC 1122 "this network"
      b[0] === 10 || // RFC 1918
      b[0] === 127 || // loopback
      (b[0] === 169 && b[1] === 254) || // RFC 3927 link-local
      (b[0] === 172 && (b[1]! & 0xf0) === 16) || // RFC 1918
      (b[0] === 192 && b[1] === 168) || // RFC 1918
      (b[0] === 100 && (b[1]! & 0xc0) === 64) // RFC 6598 CGNAT
    );
  }
  if (b.every((x) => x === 0)) return true; // ::
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return true; // ::1
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return true; // fe80::/10 link-local
  if ((b[0]! & 0xfe) === 0xfc) return true; // RFC 4193 ULA fc00::/7
  return false;
}

/** RFC 5782 §2.3: answers are in 127/8; 127.255.255.0/24 is Spamhaus's "refused/limited". */
export function isBadAnswer(a: string): boolean {
  const b = ipv4Bytes(a);
  return !b || b[0] !== 127 || (b[1] === 255 && b[2] === 255);
}

// ---- lookups, cache, health ----------------------------------------------------------------

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
  }

  healthy(zone: string): boolean {
    return !this.unhealthy.has(zone);
  }

  /** A lookup of one zone for one reversed address; never rejects (errors are results). */
  async lookupA(zone: string, rev: string): Promise<LookupOutcome> {
    const t0 = this.now();
    let out: LookupOutcome;
    try {
      const r = await this.cache.lookup(`${zone} ${rev}`, async () => {
        const l = toLookup(await this.resolver.query(`${rev}.${zone}`, 'A'));
        if (l.error === 'bad_answer') this.noteBadAnswer(zone, l.answers);
        return { value: l, ttl: l.error && l.error !== 'bad_answer' ? null : l.ttl };
      });
      out = { lookup: r.value, source: r.source, ms: this.now() - t0 };
    } catch (e) {
      out = { lookup: { rcode: '', answers: [], ttl: null, error: errorOf(e) }, source: 'query', ms: this.now() - t0 };
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
      return 'unknown';
    }
    const soft = [two, one].find((l) => l.error && l.error !== 'bad_answer');
    if (soft) {
      // SERVFAIL/REFUSED is the resolver's trouble as much as the zone's: do not flip state.
      this.logger.warn({ tag: 'DNSBL_HEALTH', zone, error: soft.error }, `${zone}: health check failed to resolve`);
      return 'unknown';
    }
    let reason = '';
    if (two.error === 'bad_answer') reason = `127.0.0.2 answered ${two.answers.join(',')} (query refused or rate limited?)`;
    else if (two.answers.length === 0) reason = '127.0.0.2 is not listed';
    else if (one.answers.length > 0) reason = `127.0.0.1 is listed (${one.answers.join(',')})`;
    if (reason) {
      if (!this.unhealthy.has(zone)) this.logger.warn({ tag: 'DNSBL_HEALTH', zone, reason }, `${zone} fails the RFC 5782 test (${reason}); skipped until it passes`);
      this.unhealthy.add(zone);
      return 'fail';
    }
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

// ---- the check --------------------------------------------------------------------------

export interface DnsblCheckOptions {
  threshold: number;
  skipPrivate: boolean;
  timeout: number;
  action: DnsCheck['action'];
}

export const EMPTY_RESULT: Readonly<DnsListResult> = Object.freeze({ score: 0, listed: false, allowed: false, zones: [] });

/** Resolves at the deadline (or at once if it has passed) with whatever has settled. */
function byDeadline<T>(p: Promise<T>, deadline: number, now: () => number): Promise<T | undefined> {
  const wait = Math.max(0, deadline - now());
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), wait);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class DnsblCheck implements DnsCheck {
  readonly timeout: number;
  readonly action: DnsCheck['action'];
  private readonly rblZones: Set<string>;
  private readonly now: () => number;

  constructor(
    private readonly engine: DnsblEngine,
    readonly rwl: readonly ProviderEntry[],
    readonly rbl: readonly ProviderEntry[],
    private readonly opts: DnsblCheckOptions,
    now?: () => number,
  ) {
    this.timeout = opts.timeout;
    this.action = opts.action;
    this.rblZones = new Set(rbl.map((p) => p.zone));
    this.now = now ?? Date.now;
  }

  /** Every zone this check asks (for health checks). */
  zones(): string[] {
    return [...new Set([...this.rwl, ...this.rbl].map((p) => p.zone))];
  }

  async check(ip: string, opts: { deadline: number }): Promise<DnsListResult> {
    try {
      return await this.run(ip, opts.deadline, this.opts.skipPrivate);
    } catch {
      return { ...EMPTY_RESULT, zones: [] }; // fail open; run() should not throw
    }
  }

  /** The check itself; the CLI calls it with skipPrivate false. */
  async run(ip: string, deadline: number, skipPrivate: boolean): Promise<DnsListResult> {
    const rev = reverseName(ip);
    if (rev === null || (skipPrivate && isPrivate(ip))) return { ...EMPTY_RESULT, zones: [] };
    const rwl = this.rwl.filter((p) => this.engine.healthy(p.zone));
    const rbl = this.rbl.filter((p) => this.engine.healthy(p.zone));
    const zones = [...new Set([...rwl, ...rbl].map((p) => p.zone))];
    // All lists are asked at once (one round trip); only the verdict follows FakeSMTP's order.
    const got = new Map<string, LookupOutcome>();
    await byDeadline(
      Promise.all(zones.map((z) => this.engine.lookupA(z, rev).then((o) => void got.set(z, o)))),
      deadline,
      this.now,
    );
    const result = (p: ProviderEntry): DnsZoneResult => {
      const o = got.get(p.zone);
      if (!o) return { zone: p.zone, answers: [], matched: false, weight: p.weight, error: 'timeout' };
      const l = o.lookup;
      const base = { zone: p.zone, answers: [...l.answers], weight: p.weight, ms: o.ms };
      if (l.error) return { ...base, matched: false, error: l.error };
      return { ...base, matched: l.answers.some((a) => matchFilter(p.filter, a)) };
    };
    const wl = rwl.map(result);
    const bl = rbl.map(result);
    const all = [...wl, ...bl];
    const listedZones = [...new Set(all.filter((z) => z.matched).map((z) => z.zone))];
    if (listedZones.length > 0) {
      const txt = new Map<string, string[]>();
      await byDeadline(
        Promise.all(listedZones.map((z) => this.engine.lookupTxt(z, rev).then((t) => void txt.set(z, t)))),
        deadline,
        this.now,
      );
      for (const z of all) {
        const t = z.matched ? txt.get(z.zone) : undefined;
        if (t && t.length > 0) z.txt = t;
      }
    }
    const allowed = wl.some((z) => z.matched);
    const score = bl.reduce((s, z) => s + (z.matched ? z.weight : 0), 0);
    const listed = !allowed && bl.some((z) => z.matched) && score >= this.opts.threshold;
    return { score, listed, allowed, zones: all };
  }

  /** The matched block-list zone with the largest weight (first one on a tie). */
  replyZone(r: DnsListResult): string {
    let best: DnsZoneResult | undefined;
    for (const z of r.zones) {
      if (!z.matched || !this.rblZones.has(z.zone)) continue;
      if (!best || z.weight > best.weight) best = z;
    }
    return best?.zone ?? '';
  }
}
