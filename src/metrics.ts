// Prometheus metrics for fakemx, on a registry of our own (never prom-client's global one,
// so several servers or tests in one process stay apart). They are fed only by the server's
// events (src/events.ts), never by parsing logs; a failing handler is logged, never rethrown.

import type { EventEmitter } from 'node:events';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServerEvents } from './events.js';
import type { Logger } from './log/logger.js';
import { Roster } from './util/roster.js';

/** Outcomes of one webhook delivery, as counted in fakemx_webhook_total{result}. */
export type WebhookResult = 'success' | 'retry' | 'failed' | 'dropped';

/** Every result a transaction can have; pre-set to 0 so a scrape shows every series from the start. */
const MESSAGE_RESULTS = ['stored', 'tempfailed', 'too_big', 'store_failed', 'discarded'] as const;
const WEBHOOK_RESULTS: readonly WebhookResult[] = ['success', 'retry', 'failed', 'dropped'];

/** DNS list lookups are answered in milliseconds to a few seconds (dns.timeout <= 60 s). */
const DNS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/** Where a session carries its place among the sessions metrics count as open. */
const METRICS_OPEN = Symbol('fakemx.metrics.open');

/** Label values come from config and code, but cap their length so nothing unbounded lands in a series. */
function label(v: unknown): string {
  const s = typeof v === 'string' ? v : String(v);
  return s.length > 128 ? s.slice(0, 128) : s;
}

/**
 * Counts by label values in plain numbers, handed to prom-client at scrape time (the metric's
 * collect()). prom-client hashes and validates the labels object on every inc(), ~1.5 µs; the
 * per-connection and per-message series were paying that several times over (Round 8 in
 * bench/RESULTS.md). Two label values at most, looked up in nested maps: no key is built.
 */
class Tally {
  private readonly rows = new Map<string, Map<string, { n: number; flushed: number }>>();

  add(a: string, b = '', n = 1): void {
    let inner = this.rows.get(a);
    if (!inner) this.rows.set(a, (inner = new Map<string, { n: number; flushed: number }>()));
    const row = inner.get(b);
    if (row) row.n += n;
    else inner.set(b, { n, flushed: 0 });
  }

  /** Each row's growth since the last flush (for counters). */
  flush(inc: (a: string, b: string, delta: number) => void): void {
    for (const [a, inner] of this.rows) {
      for (const [b, row] of inner) {
        if (row.n === row.flushed) continue;
        inc(a, b, row.n - row.flushed);
        row.flushed = row.n;
      }
    }
  }

  /** Each row's value (for gauges). */
  each(set: (a: string, b: string, value: number) => void): void {
    for (const [a, inner] of this.rows) for (const [b, row] of inner) set(a, b, row.n);
  }
}

/** The subset of FakemxServer that metrics listen to (tests pass a bare EventEmitter). */
export type EventSource = Pick<EventEmitter<ServerEvents>, 'on' | 'off'>;

export class Metrics {
  readonly registry = new Registry();
  readonly sessionsActive: Gauge<'listener'>;
  readonly connections: Counter<'listener' | 'outcome'>;
  readonly verdicts: Counter<'tag'>;
  readonly messages: Counter<'result'>;
  readonly messageBytes: Counter;
  readonly dnsDuration: Histogram<'zone'>;
  readonly dnsErrors: Counter<'zone' | 'kind'>;
  readonly dnsCacheHits: Counter;
  readonly webhook: Counter<'result'>;
  readonly storeFull: Gauge<'store'>;
  readonly storePruned: Counter<'store'>;
  readonly authAttempts: Counter<'mechanism' | 'tls'>;
  readonly stateErrors: Counter<'op' | 'reason'>;
  private readonly tally = { connections: new Tally(), active: new Tally(), verdicts: new Tally(), messages: new Tally(), bytes: 0, bytesFlushed: 0 };
  /** Handler failures (a bug); logged at most once a minute. */
  private failures = 0;
  private lastFailureLog = 0;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const t = this.tally;
    this.sessionsActive = new Gauge({
      name: 'fakemx_sessions_active', help: 'Open SMTP sessions, per listener.', labelNames: ['listener'], registers,
      collect: () => t.active.each((listener, _b, v) => this.sessionsActive.set({ listener: label(listener) }, v)),
    });
    this.connections = new Counter({
      name: 'fakemx_connections_total', help: 'Accepted TCP connections by listener and outcome (accepted, too_busy, proxy_invalid, tls_failed); refusals inside a session are verdicts.', labelNames: ['listener', 'outcome'], registers,
      collect: () => t.connections.flush((listener, outcome, d) => this.connections.inc({ listener: label(listener), outcome: label(outcome) }, d)),
    });
    this.verdicts = new Counter({
      name: 'fakemx_verdicts_total', help: 'Verdicts recorded, by tag (PREGREET, DNSBL, TEMPFAIL, LIMIT, ...).', labelNames: ['tag'], registers,
      collect: () => t.verdicts.flush((tag, _b, d) => this.verdicts.inc({ tag: label(tag) }, d)),
    });
    this.messages = new Counter({
      name: 'fakemx_messages_total', help: 'Message transactions that reached the end of DATA (or were refused at DATA), by result.', labelNames: ['result'], registers,
      collect: () => t.messages.flush((result, _b, d) => this.messages.inc({ result: label(result) }, d)),
    });
    this.messageBytes = new Counter({
      name: 'fakemx_message_bytes_total', help: 'Octets of message data received (after dot-unstuffing), whatever the result.', registers,
      collect: () => {
        if (t.bytes > t.bytesFlushed) this.messageBytes.inc(t.bytes - t.bytesFlushed);
        t.bytesFlushed = t.bytes;
      },
    });
    this.dnsDuration = new Histogram({ name: 'fakemx_dns_query_duration_seconds', help: 'DNS list queries sent on the wire (cache hits excluded), by zone.', labelNames: ['zone'], buckets: DNS_BUCKETS, registers });
    this.dnsErrors = new Counter({ name: 'fakemx_dns_errors_total', help: 'Failed DNS list queries by zone and kind (timeout, servfail, refused, formerr, network, bad_answer).', labelNames: ['zone', 'kind'], registers });
    this.dnsCacheHits = new Counter({ name: 'fakemx_dns_cache_hits_total', help: 'DNS list lookups answered from the cache.', registers });
    this.stateErrors = new Counter({ name: 'fakemx_state_errors_total', help: 'State store calls that failed (error) or missed state.timeout (timeout), by operation; the session went on per state.onError.', labelNames: ['op', 'reason'], registers });
    this.webhook = new Counter({ name: 'fakemx_webhook_total', help: 'Webhook deliveries by result (success, retry, failed after all retries, dropped when the queue was full).', labelNames: ['result'], registers });
    this.authAttempts = new Counter({ name: 'fakemx_auth_attempts_total', help: 'AUTH attempts (the honeypot: each one failed), by mechanism and whether under TLS; from the AUTH verdicts.', labelNames: ['mechanism', 'tls'], registers });
    this.storeFull = new Gauge({ name: 'fakemx_store_full', help: 'Per corpus: 1 while store.maxBytes or store.minFreeBytes is crossed and nothing is stored (STORE_FULL), else 0.', labelNames: ['store'], registers });
    this.storePruned = new Counter({ name: 'fakemx_store_pruned_bytes_total', help: 'Per corpus: octets deleted by store.onFull prune (whole oldest days).', labelNames: ['store'], registers });
    for (const r of MESSAGE_RESULTS) this.messages.inc({ result: r }, 0);
    for (const r of WEBHOOK_RESULTS) this.webhook.inc({ result: r }, 0);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Text exposition format (what GET /metrics returns). */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Count one webhook outcome; never throws. */
  webhookResult(result: WebhookResult, n = 1): void {
    try {
      this.webhook.inc({ result }, n);
    } catch {
      this.failures++;
    }
  }

  /**
   * Subscribe to a server's events. Returns a function that unsubscribes.
   * Every handler is wrapped: an exception here must never reach the emitter, whose
   * caller is a session (EventEmitter.emit runs listeners synchronously).
   */
  attach(server: EventSource, logger?: Logger): () => void {
    const guard = <A extends unknown[]>(name: string, fn: (...a: A) => void) => (...a: A): void => {
      try {
        fn(...a);
      } catch (e) {
        this.failures++;
        const now = Date.now();
        if (logger && now - this.lastFailureLog > 60_000) {
          this.lastFailureLog = now;
          logger.warn({ tag: 'METRICS_ERROR', event: name, failures: this.failures, err: e instanceof Error ? e.message : String(e) }, 'metrics handler failed');
        }
      }
    };
    // Sessions open per listener: remembered per session, so a disconnect without a counted
    // connect (attached mid-session) cannot push a gauge below zero. A roster, not a Map by id
    // (src/util/roster.ts): a Map's rebuilt tables kept every session id alive past scavenges.
    const open = new Roster<ServerEvents['connect'][0], string>(METRICS_OPEN);
    const handlers = {
      connection: guard('connection', (ev: ServerEvents['connection'][0]) => {
        this.tally.connections.add(ev.listener, ev.outcome);
      }),
      connect: guard('connect', (s: ServerEvents['connect'][0]) => {
        open.add(s, s.listener);
        this.tally.active.add(s.listener);
      }),
      disconnect: guard('disconnect', (s: ServerEvents['disconnect'][0]) => {
        const l = open.get(s);
        if (l === undefined) return;
        open.delete(s);
        this.tally.active.add(l, '', -1);
      }),
      verdict: guard('verdict', (ev: ServerEvents['verdict'][0]) => {
        this.tally.verdicts.add(ev.tag);
        // The mechanism is one the engine offers (PLAIN, LOGIN, CRAM-MD5): a bounded label.
        if (ev.tag === 'AUTH') this.authAttempts.inc({ mechanism: label(ev.details.mechanism), tls: ev.details.tls === true ? 'yes' : 'no' });
      }),
      messageResult: guard('messageResult', (ev: ServerEvents['messageResult'][0]) => {
        this.tally.messages.add(ev.result);
        if (Number.isFinite(ev.bytes) && ev.bytes > 0) this.tally.bytes += ev.bytes;
      }),
      stateError: guard('stateError', (ev: ServerEvents['stateError'][0]) => {
        this.stateErrors.inc({ op: label(ev.op), reason: label(ev.reason) });
      }),
      storeState: guard('storeState', (ev: ServerEvents['storeState'][0]) => {
        this.storeFull.set({ store: label(ev.store) }, ev.state === 'full' ? 1 : 0);
      }),
      storePruned: guard('storePruned', (ev: ServerEvents['storePruned'][0]) => {
        this.storePruned.inc({ store: label(ev.store) }, ev.bytes);
      }),
      dnsQuery: guard('dnsQuery', (ev: ServerEvents['dnsQuery'][0]) => {
        const zone = label(ev.zone);
        if (ev.cacheHit) this.dnsCacheHits.inc();
        else if (Number.isFinite(ev.durationMs) && ev.durationMs >= 0) this.dnsDuration.observe({ zone }, ev.durationMs / 1000);
        if (ev.error) this.dnsErrors.inc({ zone, kind: label(ev.error) });
      }),
    };
    // Loose typing here only: each handler was typed against its own event above.
    const pairs = Object.entries(handlers) as [keyof ServerEvents, (...a: never[]) => void][];
    const target = server as unknown as { on(e: string, f: (...a: never[]) => void): void; off(e: string, f: (...a: never[]) => void): void };
    for (const [event, fn] of pairs) target.on(event, fn);
    return () => {
      for (const [event, fn] of pairs) target.off(event, fn);
    };
  }

  /**
   * A series for every corpus in use from the start (fakemx_store_full 0 or 1, pruned 0), so a
   * dashboard or an alert sees the store before its first change of state. At start and after a
   * reload (a new storePath); the events keep them current.
   */
  seedStores(stores: { status(): readonly { store: string; full: boolean }[] }): void {
    for (const st of stores.status()) {
      const store = label(st.store);
      this.storeFull.set({ store }, st.full ? 1 : 0);
      this.storePruned.inc({ store }, 0);
    }
  }

  /** Handler failures so far (tests; a non-zero value is a bug worth a look). */
  get handlerFailures(): number {
    return this.failures;
  }
}
