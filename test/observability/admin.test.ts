// The admin HTTP listener on 127.0.0.1:0 with a real HTTP client (fetch): /healthz 200 and
// each 503 reason, /metrics text, 404/405/HEAD, and the slow-header bound.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import type { ListenerInfo } from '../../src/events.js';
import { startAdmin, type AdminServer, type HealthSource } from '../../src/http/admin.js';
import { effectiveListeners, storePathsInUse } from '../../src/config/effective.js';
import { silentLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/metrics.js';

const tmp = mkdtempSync(join(tmpdir(), 'fakemx-admin-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const config = (over: Record<string, unknown> = {}): Config => loadConfig({ overrides: { listenPort: 0, storePath: tmp, ...over }, env: {} }).config;
const mx: ListenerInfo = { name: 'mx', address: '127.0.0.1', port: 2525, tls: 'none' };

let admin: AdminServer | null = null;
afterEach(async () => {
  await admin?.close();
  admin = null;
});

async function start(source: HealthSource, closed = false, requestTimeoutMs?: number) {
  const metrics = new Metrics({ defaultMetrics: false });
  admin = await startAdmin({
    address: '127.0.0.1',
    port: 0,
    source,
    closed: () => closed,
    metrics: async () => ({ text: await metrics.text(), contentType: metrics.contentType }),
    logger: silentLogger(),
    ...(requestTimeoutMs ? { limits: { requestTimeoutMs } } : {}),
  });
  return `http://127.0.0.1:${admin.port}`;
}

describe('GET /healthz', () => {
  const notDir = join(tmp, 'a-file');
  writeFileSync(notDir, 'x');
  const cases: { name: string; source: () => HealthSource; closed?: boolean; status: number; degraded?: boolean; reason?: RegExp }[] = [
    { name: 'listening and store writable', source: () => ({ listening: [mx], activeSessions: 3, config: config() }), status: 200 },
    { name: 'a listener is not listening', source: () => ({ listening: [], activeSessions: 0, config: config() }), status: 503, reason: /^0 of 1 SMTP listeners listening$/ },
    { name: 'server closed', source: () => ({ listening: [mx], activeSessions: 0, config: config() }), closed: true, status: 503, reason: /^server closed$/ },
    // The store makes a missing root again on the next message: degraded, still 200.
    { name: 'store path missing', source: () => ({ listening: [mx], activeSessions: 0, config: config({ storePath: join(tmp, 'gone') }) }), status: 200, degraded: true, reason: /store path .*gone missing \(ENOENT\); made again on the next message/ },
    { name: 'store path is a file', source: () => ({ listening: [mx], activeSessions: 0, config: config({ storePath: notDir }) }), status: 503, reason: /not writable \(ENOTDIR\)/ },
    { name: 'store path under a file', source: () => ({ listening: [mx], activeSessions: 0, config: config({ storePath: join(notDir, 'corpus') }) }), status: 503, reason: /not writable \(ENOTDIR\)/ },
    { name: 'storeData off: store path not checked', source: () => ({ listening: [mx], activeSessions: 0, config: config({ storeData: false, storePath: join(tmp, 'gone') }) }), status: 200 },
  ];
  it.each(cases)('$name -> $status', async ({ source, closed, status, degraded, reason }) => {
    const base = await start(source(), closed ?? false);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: degraded ? 'degraded' : status === 200 ? 'ok' : 'unavailable', uptimeS: expect.any(Number) as unknown, activeSessions: expect.any(Number) as unknown, listeners: expect.any(Array) as unknown });
    if (reason) expect(body.reason).toMatch(reason);
    else expect(body).not.toHaveProperty('reason');
  });

  it('reports active sessions and listeners', async () => {
    const base = await start({ listening: [mx], activeSessions: 3, config: config() });
    expect(await (await fetch(`${base}/healthz?verbose=1`)).json()).toMatchObject({ activeSessions: 3, listeners: [mx] });
  });
});

describe('storePathsInUse', () => {
  it('takes listener profiles over the top level and skips storeData false', () => {
    const c = config({
      listeners: [
        { address: '127.0.0.1', port: 0, profile: { storePath: join(tmp, 'one') } },
        { address: '127.0.0.1', port: 0, profile: { storeData: false, storePath: join(tmp, 'two') } },
        { address: '127.0.0.1', port: 0 },
      ],
    });
    expect(storePathsInUse(effectiveListeners(c))).toEqual([join(tmp, 'one'), tmp]);
  });
});

describe('routing', () => {
  const cases: { name: string; method: string; path: string; status: number; body?: RegExp; allow?: string }[] = [
    { name: 'metrics text', method: 'GET', path: '/metrics', status: 200, body: /# TYPE fakemx_connections_total counter/ },
    { name: 'unknown path', method: 'GET', path: '/nope', status: 404, body: /not found/ },
    { name: 'POST', method: 'POST', path: '/healthz', status: 405, allow: 'GET, HEAD' },
    { name: 'DELETE', method: 'DELETE', path: '/metrics', status: 405, allow: 'GET, HEAD' },
    { name: 'HEAD has no body', method: 'HEAD', path: '/healthz', status: 200, body: /^$/ },
  ];
  it.each(cases)('$method $path -> $status', async ({ method, path, status, body, allow }) => {
    const base = await start({ listening: [mx], activeSessions: 0, config: config() });
    const res = await fetch(`${base}${path}`, { method, ...(method === 'POST' ? { body: 'x' } : {}) });
    expect(res.status).toBe(status);
    if (allow) expect(res.headers.get('allow')).toBe(allow);
    if (body) expect(await res.text()).toMatch(body);
    if (path === '/metrics' && status === 200) expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('bounds', () => {
  it('a client that never finishes its headers is cut off', async () => {
    const base = await start({ listening: [mx], activeSessions: 0, config: config() }, false, 300);
    const port = Number(new URL(base).port);
    const started = Date.now();
    const result = await new Promise<string>((resolve) => {
      const sock = connect(port, '127.0.0.1', () => sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
      let got = '';
      sock.on('data', (d) => (got += d.toString()));
      sock.on('close', () => resolve(got));
      sock.on('error', () => resolve(got));
      setTimeout(() => sock.destroy(), 5000).unref();
    });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(result === '' || result.startsWith('HTTP/1.1 408')).toBe(true);
  });

  it('close() resolves with an idle keep-alive connection open', async () => {
    const base = await start({ listening: [mx], activeSessions: 0, config: config() });
    const res = await fetch(`${base}/healthz`);
    await res.text();
    const t = Date.now();
    await admin!.close();
    admin = null;
    expect(Date.now() - t).toBeLessThan(1000);
  });
});
