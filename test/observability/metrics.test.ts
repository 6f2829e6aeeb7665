// Metrics fed by synthetic server events on a bare EventEmitter: each event moves exactly
// the series it should, the exposition text has every name from issue 7, and a handler that
// throws never reaches the emitter (a session's call stack).
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ServerEvents } from '../../src/events.js';
import { silentLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics.js';
import type { CloseInfo, SessionInfo } from '../../src/smtp/hooks.js';

// The server hands the same session object to every event of one session: one object per id here.
const made = new Map<string, SessionInfo>();
const session = (id: string, listener = 'mx') => {
  const k = `${id}|${listener}`;
  if (!made.has(k)) made.set(k, { id, listener } as unknown as SessionInfo);
  return made.get(k)!;
};
const closeInfo: CloseInfo = { reason: 'quit', durationMs: 5 };

function setup() {
  const em = new EventEmitter<ServerEvents>();
  const m = new Metrics({ defaultMetrics: false });
  const detach = m.attach(em, silentLogger());
  /** Value of one series, 0 when absent. */
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const metric = m.registry.getSingleMetric(name);
    if (!metric) throw new Error(`no metric ${name}`);
    const data = await metric.get();
    const hit = data.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l) && Object.keys(v.labels).length >= Object.keys(labels).length && !('le' in v.labels));
    return hit?.value ?? 0;
  };
  return { em, m, detach, value };
}

describe('metrics from server events', () => {
  const cases: { name: string; emit: (em: EventEmitter<ServerEvents>) => void; expect: [string, Record<string, string>, number][] }[] = [
    {
      name: 'connection outcomes per listener',
      emit: (em) => {
        em.emit('connection', { listener: 'mx', outcome: 'accepted' });
        em.emit('connection', { listener: 'mx', outcome: 'accepted' });
        em.emit('connection', { listener: 'sub', outcome: 'too_busy' });
      },
      expect: [
        ['fakemx_connections_total', { listener: 'mx', outcome: 'accepted' }, 2],
        ['fakemx_connections_total', { listener: 'sub', outcome: 'too_busy' }, 1],
      ],
    },
    {
      name: 'sessions_active up on connect, down on disconnect, per listener',
      emit: (em) => {
        em.emit('connect', session('a', 'mx'));
        em.emit('connect', session('b', 'mx'));
        em.emit('connect', session('c', 'sub'));
        em.emit('disconnect', session('a', 'mx'), closeInfo);
      },
      expect: [
        ['fakemx_sessions_active', { listener: 'mx' }, 1],
        ['fakemx_sessions_active', { listener: 'sub' }, 1],
      ],
    },
    {
      name: 'a disconnect without its connect does not go negative',
      emit: (em) => {
        em.emit('disconnect', session('ghost', 'mx'), closeInfo);
        em.emit('connect', session('a', 'mx'));
        em.emit('disconnect', session('a', 'mx'), closeInfo);
        em.emit('disconnect', session('a', 'mx'), closeInfo);
      },
      expect: [['fakemx_sessions_active', { listener: 'mx' }, 0]],
    },
    {
      name: 'verdicts by tag',
      emit: (em) => {
        em.emit('verdict', { tag: 'PREGREET', session: session('a'), client: '[192.0.2.1]:1', details: {} });
        em.emit('verdict', { tag: 'PREGREET', session: session('b'), client: '[192.0.2.1]:1', details: {} });
        em.emit('verdict', { tag: 'DNSBL', session: session('b'), client: '[192.0.2.1]:1', details: {} });
        em.emit('verdict', { tag: 'PROXY_INVALID', session: null, client: '[192.0.2.9]:1', details: {} });
      },
      expect: [
        ['fakemx_verdicts_total', { tag: 'PREGREET' }, 2],
        ['fakemx_verdicts_total', { tag: 'DNSBL' }, 1],
        ['fakemx_verdicts_total', { tag: 'PROXY_INVALID' }, 1],
      ],
    },
    {
      name: 'message results and bytes',
      emit: (em) => {
        em.emit('messageResult', { session: session('a'), result: 'stored', bytes: 1000 });
        em.emit('messageResult', { session: session('a'), result: 'stored', bytes: 24 });
        em.emit('messageResult', { session: session('b'), result: 'too_big', bytes: 0 });
      },
      expect: [
        ['fakemx_messages_total', { result: 'stored' }, 2],
        ['fakemx_messages_total', { result: 'too_big' }, 1],
        ['fakemx_messages_total', { result: 'store_failed' }, 0],
        ['fakemx_message_bytes_total', {}, 1024],
      ],
    },
    {
      name: 'DNS queries: cache hits, errors by zone and kind',
      emit: (em) => {
        em.emit('dnsQuery', { zone: 'zen.example', durationMs: 12, cacheHit: false });
        em.emit('dnsQuery', { zone: 'zen.example', durationMs: 0, cacheHit: true });
        em.emit('dnsQuery', { zone: 'bl.example', durationMs: 2000, cacheHit: false, error: 'timeout' });
      },
      expect: [
        ['fakemx_dns_cache_hits_total', {}, 1],
        ['fakemx_dns_errors_total', { zone: 'bl.example', kind: 'timeout' }, 1],
      ],
    },
  ];

  it.each(cases)('$name', async ({ emit, expect: expected }) => {
    const { em, value } = setup();
    emit(em);
    for (const [name, labels, v] of expected) expect(await value(name, labels), `${name} ${JSON.stringify(labels)}`).toBe(v);
  });

  it('counts kept between scrapes reach the exposition once each: scrape, more events, scrape', async () => {
    const { em, m, value } = setup();
    em.emit('connection', { listener: 'mx', outcome: 'accepted' });
    em.emit('connect', session('s1'));
    em.emit('messageResult', { session: session('s1'), result: 'stored', bytes: 100 });
    em.emit('verdict', { tag: 'PREGREET', session: null, client: '[192.0.2.1]:1', details: {} });
    await m.text();
    expect(await value('fakemx_connections_total', { listener: 'mx', outcome: 'accepted' })).toBe(1);
    em.emit('connection', { listener: 'mx', outcome: 'accepted' });
    em.emit('connect', session('s2'));
    em.emit('disconnect', session('s1'), closeInfo);
    em.emit('messageResult', { session: session('s2'), result: 'stored', bytes: 50 });
    em.emit('verdict', { tag: 'PREGREET', session: null, client: '[192.0.2.1]:1', details: {} });
    const text = await m.text();
    expect(text).toContain('fakemx_connections_total{listener="mx",outcome="accepted"} 2');
    expect(text).toContain('fakemx_sessions_active{listener="mx"} 1');
    expect(text).toContain('fakemx_messages_total{result="stored"} 2');
    expect(text).toContain('fakemx_message_bytes_total 150');
    expect(text).toContain('fakemx_verdicts_total{tag="PREGREET"} 2');
    // A third scrape with nothing new changes nothing.
    expect(await m.text()).toBe(text);
  });

  it('DNS duration histogram counts wire queries only, in seconds', async () => {
    const { em, m } = setup();
    em.emit('dnsQuery', { zone: 'zen.example', durationMs: 12, cacheHit: false });
    em.emit('dnsQuery', { zone: 'zen.example', durationMs: 0, cacheHit: true });
    const data = await m.dnsDuration.get();
    const count = data.values.find((v) => v.metricName === 'fakemx_dns_query_duration_seconds_count' && v.labels.zone === 'zen.example');
    const sum = data.values.find((v) => v.metricName === 'fakemx_dns_query_duration_seconds_sum' && v.labels.zone === 'zen.example');
    expect(count?.value).toBe(1);
    expect(sum?.value).toBeCloseTo(0.012);
  });

  it('exposes every metric named in issue 7 plus default process metrics', async () => {
    const m = new Metrics();
    const text = await m.text();
    for (const name of [
      'fakemx_sessions_active', 'fakemx_connections_total', 'fakemx_verdicts_total', 'fakemx_messages_total',
      'fakemx_message_bytes_total', 'fakemx_dns_query_duration_seconds', 'fakemx_dns_errors_total',
      'fakemx_dns_cache_hits_total', 'fakemx_webhook_total', 'process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('fakemx_messages_total{result="discarded"} 0');
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('own registry: two instances do not share series', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.webhookResult('success');
    expect(await a.text()).toContain('fakemx_webhook_total{result="success"} 1');
    expect(await b.text()).toContain('fakemx_webhook_total{result="success"} 0');
  });

  it('a throwing handler never reaches the emitter, and later listeners still run', async () => {
    const { em, m, value } = setup();
    const warned: unknown[] = [];
    const logger = { warn: (o: unknown) => warned.push(o) } as unknown as ReturnType<typeof silentLogger>;
    const em2 = new EventEmitter<ServerEvents>();
    m.attach(em2, logger);
    let after = 0;
    em2.on('connection', () => after++);
    // A malformed event makes the handler throw (reads .listener of null).
    expect(() => em2.emit('connection', null as never)).not.toThrow();
    expect(() => em2.emit('verdict', undefined as never)).not.toThrow();
    expect(after).toBe(1);
    expect(m.handlerFailures).toBe(2);
    expect(warned).toHaveLength(1); // rate-limited: one line a minute
    em.emit('connection', { listener: 'mx', outcome: 'accepted' });
    expect(await value('fakemx_connections_total', { listener: 'mx', outcome: 'accepted' })).toBe(1);
  });

  it('detach unsubscribes every handler', async () => {
    const { em, detach, value } = setup();
    detach();
    em.emit('connection', { listener: 'mx', outcome: 'accepted' });
    expect(await value('fakemx_connections_total', { listener: 'mx', outcome: 'accepted' })).toBe(0);
    for (const e of ['connection', 'connect', 'disconnect', 'verdict', 'messageResult', 'dnsQuery'] as const) expect(em.listenerCount(e)).toBe(0);
  });
});
