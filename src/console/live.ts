// What the console's Live and Caught pages show, kept from the server's events (src/events.ts)
// as they happen: the sessions open now, an hour of per-10-second counts (connections,
// messages, verdicts per tag), and bounded top-N tables of what got caught (client networks,
// HELO names, sender domains, DNS list zones, tarpit time, AUTH attempts). Every handler is O(1) amortised
// and never throws into the emitter (a session is the caller). Nothing here reads the disk.

import type { EventEmitter } from 'node:events';
import type { ZoneHealth } from '../dnsbl/engine.js';
import type { ServerEvents } from '../events.js';
import { prefixText } from '../net/ip.js';
import type { SessionInfo } from '../smtp/hooks.js';
import { Roster } from '../util/roster.js';

/** Where a session carries its place among the open sessions the Live page lists. */
const LIVE_OPEN = Symbol('fakemx.console.open');

/** One bucket of the time series. */
export const BUCKET_MS = 10_000;
/** Buckets kept: one hour. */
export const BUCKETS = 360;
/** Distinct verdict tags with a series of their own (tags come from code; this is a guard). */
const MAX_TAGS = 64;
/** Open sessions listed in one snapshot (the count is always exact). */
const MAX_LISTED_SESSIONS = 200;
/** Verdict tags remembered per open session. */
const MAX_SESSION_VERDICTS = 32;
/** Keys per top-N table before the smaller half is dropped. */
const TOP_CAP = 5_000;

/** A count per key, bounded: past TOP_CAP keys, the lower half by count is forgotten. */
export class TopCounter {
  private readonly rows = new Map<string, { n: number; tags: Map<string, number>; extra: number }>();
  constructor(private readonly cap = TOP_CAP) {}

  add(key: string, tag?: string, extra = 0): void {
    let r = this.rows.get(key);
    if (!r) {
      if (this.rows.size >= this.cap) this.prune();
      r = { n: 0, tags: new Map(), extra: 0 };
      this.rows.set(key, r);
    }
    r.n++;
    r.extra += extra;
    if (tag !== undefined && (r.tags.has(tag) || r.tags.size < 16)) r.tags.set(tag, (r.tags.get(tag) ?? 0) + 1);
  }

  private prune(): void {
    const counts = [...this.rows.values()].map((r) => r.n).sort((a, b) => a - b);
    const median = counts[Math.floor(counts.length / 2)] ?? 0;
    for (const [k, r] of this.rows) if (r.n <= median) this.rows.delete(k);
  }

  get size(): number {
    return this.rows.size;
  }

  /** The `n` largest, with each row's most frequent tags. */
  top(n: number, by: 'n' | 'extra' = 'n'): { key: string; count: number; extra: number; tags: Record<string, number> }[] {
    return [...this.rows.entries()]
      .sort((a, b) => b[1][by] - a[1][by] || (a[0] < b[0] ? -1 : 1))
      .slice(0, n)
      .map(([key, r]) => ({
        key,
        count: r.n,
        extra: r.extra,
        tags: Object.fromEntries([...r.tags.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5)),
      }));
  }
}

/** Per-zone DNS list figures: lookups from dnsQuery events, hits from DNSBL/DNSWL verdicts. */
export interface ZoneStats {
  zone: string;
  queries: number;
  cacheHits: number;
  errors: Record<string, number>;
  hits: number;
  totalMs: number;
}

/** Verdicts that say what a session did, not that it was caught doing something. */
const INFORMATIONAL = new Set(['STORED', 'TLS', 'DNSWL', 'HANGUP']);

interface OpenSession {
  info: SessionInfo;
  verdicts: string[];
  lastTag: string | undefined;
}

export interface LiveSession {
  id: string;
  client: string;
  ip: string;
  listener: string;
  phase: string;
  ageMs: number;
  helo: string | null;
  mailFrom: string | null;
  rcpts: number;
  messages: number;
  verdicts: string[];
}

export interface LiveSnapshot {
  now: number;
  /** Start (ms) of the first bucket; bucket i covers [start + i*bucketMs, start + (i+1)*bucketMs). */
  start: number;
  bucketMs: number;
  series: { connections: number[]; messages: number[]; verdicts: Record<string, number[]> };
  /** Per second, over the last minute. */
  rates: { connections: number; messages: number };
  totals: { connections: number; messages: number; verdicts: Record<string, number>; since: number };
  open: number;
  sessions: LiveSession[];
}

export interface CaughtSnapshot {
  now: number;
  since: number;
  networks: ReturnType<TopCounter['top']>;
  helos: ReturnType<TopCounter['top']>;
  senderDomains: ReturnType<TopCounter['top']>;
  /** health: from the lookups' error rate (past 50% failing); check: the engine's own RFC 5782 test, null where it has none. */
  zones: (ZoneStats & { hitRate: number; errorRate: number; health: 'ok' | 'failing' | 'unused'; check: ZoneHealth | null })[];
  tarpit: { verdicts: number; totalMs: number; clients: ReturnType<TopCounter['top']> };
  /** The AUTH honeypot (auth.enabled): attempts, user names tried (by mechanism), clients. */
  auth: { attempts: number; users: ReturnType<TopCounter['top']>; clients: ReturnType<TopCounter['top']> };
}

/** A session's phase from what it has said so far (the engine owns the object; it is live). */
function phaseOf(s: SessionInfo, lastTag: string | undefined): string {
  if (lastTag === 'TEMPFAIL') return 'tempfailed';
  if (s.rcptTo.length > 0) return 'rcpt';
  if (s.mailFrom) return 'mail';
  if (s.helo !== undefined) return s.esmtp ? 'ehlo' : 'helo';
  return 'connect';
}

/** The client's network as text: IPv4 /24, IPv6 /v6prefix ("2001:db8:1:2::/64"). */
export function networkOf(ip: string, v6prefix: number): string {
  return prefixText(ip, 24, Math.max(0, Math.min(128, v6prefix))) ?? ip;
}

const clientOf = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

export class LiveState {
  readonly since: number;
  /** A roster, not a Map by id (src/util/roster.ts): the metrics' Map by id kept every session id alive past scavenges. */
  private readonly open = new Roster<SessionInfo, OpenSession>(LIVE_OPEN);
  private readonly conns = new Uint32Array(BUCKETS);
  private readonly msgs = new Uint32Array(BUCKETS);
  private readonly tagSeries = new Map<string, Uint32Array>();
  /** Absolute bucket number (ms / BUCKET_MS) of the newest slot written. */
  private head: number;
  private totalConns = 0;
  private totalMsgs = 0;
  private readonly totalTags = new Map<string, number>();
  private readonly networks = new TopCounter();
  private readonly helos = new TopCounter();
  private readonly senders = new TopCounter();
  private readonly tarpitClients = new TopCounter();
  private readonly authUsers = new TopCounter();
  private readonly authClients = new TopCounter();
  private authAttempts = 0;
  private tarpitVerdicts = 0;
  private tarpitMs = 0;
  private readonly zones = new Map<string, ZoneStats>();
  private failures = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly v6prefix = 64,
  ) {
    this.since = now();
    this.head = Math.floor(this.since / BUCKET_MS);
  }

  /** Handler exceptions swallowed so far (a bug if not 0). */
  get handlerFailures(): number {
    return this.failures;
  }

  /** Moves the ring to the current bucket, zeroing the slots skipped over. */
  private advance(): number {
    const cur = Math.floor(this.now() / BUCKET_MS);
    if (cur > this.head) {
      const steps = Math.min(cur - this.head, BUCKETS);
      for (let i = 1; i <= steps; i++) {
        const slot = (this.head + i) % BUCKETS;
        this.conns[slot] = 0;
        this.msgs[slot] = 0;
        for (const s of this.tagSeries.values()) s[slot] = 0;
      }
      this.head = cur;
    }
    return this.head % BUCKETS;
  }

  private network(ip: string): string {
    return networkOf(ip, this.v6prefix);
  }

  private zone(name: string): ZoneStats {
    let z = this.zones.get(name);
    if (!z) {
      if (this.zones.size >= 256) return { zone: name, queries: 0, cacheHits: 0, errors: {}, hits: 0, totalMs: 0 };
      z = { zone: name, queries: 0, cacheHits: 0, errors: {}, hits: 0, totalMs: 0 };
      this.zones.set(name, z);
    }
    return z;
  }

  onConnection(ev: ServerEvents['connection'][0]): void {
    const slot = this.advance();
    this.conns[slot]!++;
    this.totalConns++;
    void ev;
  }

  onConnect(s: SessionInfo): void {
    this.open.add(s, { info: s, verdicts: [], lastTag: undefined });
  }

  onDisconnect(s: SessionInfo): void {
    this.open.delete(s);
    if (s.helo !== undefined) this.helos.add(s.helo.slice(0, 255).toLowerCase());
  }

  onVerdict(ev: ServerEvents['verdict'][0]): void {
    const slot = this.advance();
    const tag = ev.tag;
    let series = this.tagSeries.get(tag);
    if (!series && this.tagSeries.size < MAX_TAGS) this.tagSeries.set(tag, (series = new Uint32Array(BUCKETS)));
    if (series) series[slot]!++;
    this.totalTags.set(tag, (this.totalTags.get(tag) ?? 0) + 1);
    const s = ev.session;
    if (s) {
      const o = this.open.get(s);
      if (o) {
        o.lastTag = tag;
        if (o.verdicts.length < MAX_SESSION_VERDICTS) o.verdicts.push(tag);
      }
    }
    if (!INFORMATIONAL.has(tag)) {
      const ip = s?.remoteAddress ?? ev.client.replace(/^\[?([^\]]*)\]?:\d+$/, '$1');
      this.networks.add(this.network(ip), tag);
    }
    if (tag === 'TARPIT') {
      const ms = Number(ev.details.delayMs) || 0;
      this.tarpitVerdicts++;
      this.tarpitMs += ms;
      if (s) this.tarpitClients.add(s.remoteAddress, undefined, ms);
    }
    if (tag === 'AUTH') {
      const mech = typeof ev.details.mechanism === 'string' ? ev.details.mechanism.slice(0, 32) : '?';
      const user = typeof ev.details.user === 'string' ? ev.details.user.slice(0, 255) : '';
      this.authAttempts++;
      this.authUsers.add(user === '' ? '(empty)' : user, mech);
      if (s) this.authClients.add(s.remoteAddress, mech);
    }
    if (tag === 'DNSBL' || tag === 'DNSWL') {
      const zones = ev.details.zones;
      if (Array.isArray(zones)) for (const z of zones) if (typeof z === 'string') this.zone(z).hits++;
    }
  }

  onMessageResult(ev: ServerEvents['messageResult'][0]): void {
    const slot = this.advance();
    this.msgs[slot]!++;
    this.totalMsgs++;
    const from = ev.session.mailFrom;
    this.senders.add(from ? (from.domain || '(null sender)').toLowerCase() : '(none)', ev.result);
  }

  onDnsQuery(ev: ServerEvents['dnsQuery'][0]): void {
    const z = this.zone(ev.zone);
    if (ev.cacheHit) z.cacheHits++;
    else {
      z.queries++;
      if (Number.isFinite(ev.durationMs)) z.totalMs += ev.durationMs;
    }
    if (ev.error) z.errors[ev.error] = (z.errors[ev.error] ?? 0) + 1;
  }

  /** Subscribes to a server; returns the function that unsubscribes. */
  attach(server: Pick<EventEmitter<ServerEvents>, 'on' | 'off'>): () => void {
    const guard = <A extends unknown[]>(fn: (...a: A) => void) => (...a: A): void => {
      try {
        fn(...a);
      } catch {
        this.failures++;
      }
    };
    const h = {
      connection: guard((ev: ServerEvents['connection'][0]) => this.onConnection(ev)),
      connect: guard((s: SessionInfo) => this.onConnect(s)),
      disconnect: guard((s: SessionInfo) => this.onDisconnect(s)),
      verdict: guard((ev: ServerEvents['verdict'][0]) => this.onVerdict(ev)),
      messageResult: guard((ev: ServerEvents['messageResult'][0]) => this.onMessageResult(ev)),
      dnsQuery: guard((ev: ServerEvents['dnsQuery'][0]) => this.onDnsQuery(ev)),
    };
    server.on('connection', h.connection);
    server.on('connect', h.connect);
    server.on('disconnect', h.disconnect);
    server.on('verdict', h.verdict);
    server.on('messageResult', h.messageResult);
    server.on('dnsQuery', h.dnsQuery);
    return () => {
      server.off('connection', h.connection);
      server.off('connect', h.connect);
      server.off('disconnect', h.disconnect);
      server.off('verdict', h.verdict);
      server.off('messageResult', h.messageResult);
      server.off('dnsQuery', h.dnsQuery);
    };
  }

  /** The ring in time order, oldest first. */
  private ordered(a: Uint32Array): number[] {
    const out = new Array<number>(BUCKETS);
    const headSlot = this.head % BUCKETS;
    for (let i = 0; i < BUCKETS; i++) out[i] = a[(headSlot + 1 + i) % BUCKETS]!;
    return out;
  }

  /** Sum of the last `n` buckets (the current, partial one included). */
  private lastSum(a: Uint32Array, n: number): number {
    let t = 0;
    for (let i = 0; i < n; i++) t += a[(this.head - i + BUCKETS * 2) % BUCKETS]!;
    return t;
  }

  live(): LiveSnapshot {
    this.advance();
    const now = this.now();
    const verdicts: Record<string, number[]> = {};
    for (const [tag, s] of [...this.tagSeries.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) verdicts[tag] = this.ordered(s);
    const sessions: LiveSession[] = [];
    for (const o of this.open.dataArray(MAX_LISTED_SESSIONS)) {
      if (!o) continue;
      const s = o.info;
      sessions.push({
        id: s.id,
        client: clientOf(s.remoteAddress, s.remotePort),
        ip: s.remoteAddress,
        listener: s.listener,
        phase: phaseOf(s, o.lastTag),
        ageMs: Math.max(0, now - s.openedAt),
        helo: s.helo ?? null,
        mailFrom: s.mailFrom ? s.mailFrom.address || '<>' : null,
        rcpts: s.rcptTo.length,
        messages: s.counts.messages,
        verdicts: [...o.verdicts],
      });
    }
    // Oldest first: a held bot is what an operator looks for.
    sessions.sort((a, b) => b.ageMs - a.ageMs);
    // Seconds in the last six buckets actually elapsed (the current one is partial).
    const window = (5 * BUCKET_MS + (now - this.head * BUCKET_MS)) / 1000;
    const span = Math.max(1, Math.min(window, (now - this.since) / 1000));
    return {
      now,
      start: (this.head - BUCKETS + 1) * BUCKET_MS,
      bucketMs: BUCKET_MS,
      series: { connections: this.ordered(this.conns), messages: this.ordered(this.msgs), verdicts },
      rates: {
        connections: Math.round((this.lastSum(this.conns, 6) / span) * 100) / 100,
        messages: Math.round((this.lastSum(this.msgs, 6) / span) * 100) / 100,
      },
      totals: { connections: this.totalConns, messages: this.totalMsgs, verdicts: Object.fromEntries(this.totalTags), since: this.since },
      open: this.open.size,
      sessions,
    };
  }

  /**
   * `engineHealth`: the DNS list engine's own health table (its RFC 5782 tests), joined to each
   * zone as `check`; a zone in use that no lookup has asked yet is listed too. `health` stays
   * what the lookups' error rate says.
   */
  caught(top = 20, engineHealth: readonly ZoneHealth[] = []): CaughtSnapshot {
    const checks = new Map(engineHealth.map((h) => [h.zone, h]));
    const stats = [...this.zones.values()];
    for (const h of engineHealth) if (!this.zones.has(h.zone)) stats.push({ zone: h.zone, queries: 0, cacheHits: 0, errors: {}, hits: 0, totalMs: 0 });
    const zones = stats.map((z): CaughtSnapshot['zones'][number] => {
      const lookups = z.queries + z.cacheHits;
      const errs = Object.values(z.errors).reduce((a, b) => a + b, 0);
      const errorRate = z.queries > 0 ? errs / z.queries : 0;
      return {
        ...z,
        errors: { ...z.errors },
        hitRate: lookups > 0 ? z.hits / lookups : 0,
        errorRate,
        health: lookups === 0 ? 'unused' : errorRate > 0.5 ? 'failing' : 'ok',
        check: checks.get(z.zone) ?? null,
      };
    });
    zones.sort((a, b) => b.hits - a.hits || (a.zone < b.zone ? -1 : 1));
    return {
      now: this.now(),
      since: this.since,
      networks: this.networks.top(top),
      helos: this.helos.top(top),
      senderDomains: this.senders.top(top),
      zones,
      tarpit: { verdicts: this.tarpitVerdicts, totalMs: this.tarpitMs, clients: this.tarpitClients.top(top, 'extra') },
      auth: { attempts: this.authAttempts, users: this.authUsers.top(top), clients: this.authClients.top(top) },
    };
  }
}
