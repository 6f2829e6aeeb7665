// Issue 12 (7): the admin listener under a flood of half-open connections (loopback, raw
// sockets). /healthz must answer 200 while 64 or 500 connections sit on half-sent headers,
// long before any of them times out (about a second on a quiet machine); the cap sheds the
// oldest idle ones, never the newcomer; half-open and idle keep-alive sockets are closed after
// their timeouts (small ones, set through options).
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { ListenerInfo } from '../../src/events.js';
import { startAdmin, type AdminLimits, type AdminServer } from '../../src/http/admin.js';
import { silentLogger } from '../../src/log/logger.js';

const mx: ListenerInfo = { name: 'mx', address: '127.0.0.1', port: 2525, tls: 'none' };
// storeData off: these tests are about connections, not the store probe.
const config = loadConfig({ overrides: { listenPort: 0, storeData: false }, env: {} }).config;

const open: Socket[] = [];
let admin: AdminServer | null = null;
afterEach(async () => {
  for (const s of open.splice(0)) s.destroy();
  await admin?.close();
  admin = null;
});

async function start(limits: Partial<AdminLimits> = {}): Promise<number> {
  admin = await startAdmin({
    address: '127.0.0.1',
    port: 0,
    source: { listening: [mx], activeSessions: 0, config },
    closed: () => false,
    metrics: async () => ({ text: '', contentType: 'text/plain' }),
    logger: silentLogger(),
    limits,
  });
  return admin.port;
}

interface Held {
  sock: Socket;
  /** Milliseconds from the flood's start to this socket's close, once closed. */
  closedAt: number | null;
  got: string;
}

/** Open n connections, each sending `prefix` and then nothing more; resolves once all connected. */
async function flood(port: number, n: number, prefix: string): Promise<{ held: Held[]; t0: number }> {
  const t0 = Date.now();
  const held = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Held>((resolve, reject) => {
          const sock = connect(port, '127.0.0.1');
          open.push(sock);
          const h: Held = { sock, closedAt: null, got: '' };
          // A 'data' listener matters: a paused socket never sees the server's FIN, so never 'close'.
          sock.on('data', (d) => (h.got += d.toString('latin1')));
          sock.on('close', () => (h.closedAt = Date.now() - t0));
          sock.on('error', () => undefined);
          sock.once('connect', () => {
            if (prefix) sock.write(prefix);
            resolve(h);
          });
          setTimeout(() => reject(new Error('connect took over 5 s')), 5000).unref();
        }),
    ),
  );
  // Let the server see every connection and every partial request before the probe.
  await new Promise((r) => setTimeout(r, 50));
  return { held, t0 };
}

/**
 * How long a probe may take under a flood: well under the held connections' 10 s header
 * timeout, so only the cap's shedding can answer in time (about 1 s on a quiet machine; a busy
 * 2-core one needs room).
 */
const PROBE_MS = 5000;

/** GET /healthz on a fresh connection; status and milliseconds, or an error after `ms`. */
async function healthz(port: number, ms = PROBE_MS): Promise<{ status: number; ms: number }> {
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(ms), headers: { connection: 'close' } });
  await res.text();
  return { status: res.status, ms: performance.now() - t };
}

const until = async (cond: () => boolean, ms: number) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

const HALF = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ';
describe('/healthz under a flood of half-open connections', () => {
  const cases = [
    { name: '64 half-sent requests', n: 64, prefix: HALF },
    { name: '500 half-sent requests', n: 500, prefix: HALF },
    { name: '500 silent connections', n: 500, prefix: '' },
    { name: '500 bare request lines', n: 500, prefix: 'GET /metrics HTTP/1.1\r\n' },
  ];
  it.each(cases)('$name: 200 before any held connection times out, connections capped, oldest shed first', async ({ n, prefix }) => {
    // Long timeouts: only the cap can make room here.
    const port = await start({ headersTimeoutMs: 10_000, requestTimeoutMs: 10_000, maxConnections: 64 });
    const { held } = await flood(port, n, prefix);
    const h = await healthz(port);
    expect(h.status).toBe(200);
    expect(h.ms).toBeLessThan(PROBE_MS);
    // At most the cap stays open (the probe took one slot); those kept are the newest.
    await until(() => held.filter((x) => x.closedAt === null).length <= 63, 5000);
    const alive = held.map((x) => x.closedAt === null);
    expect(alive.filter(Boolean).length).toBeLessThanOrEqual(63);
    if (n > 64) expect(alive.indexOf(true)).toBeGreaterThan(alive.lastIndexOf(false));
    // And again, with the flood still there.
    expect((await healthz(port)).status).toBe(200);
  });
});

describe('timeouts', () => {
  const cases = [
    { name: 'half-sent headers', prefix: HALF },
    { name: 'nothing sent at all', prefix: '' },
  ];
  it.each(cases)('$name: closed after the header timeout, with 408', async ({ prefix }) => {
    const port = await start({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
    const { held } = await flood(port, 20, prefix);
    expect(await until(() => held.every((x) => x.closedAt !== null), 2000)).toBe(true);
    for (const x of held) {
      expect(x.closedAt!).toBeGreaterThanOrEqual(250);
      expect(x.closedAt!).toBeLessThan(1500);
      expect(x.got).toMatch(/^HTTP\/1\.1 408 /);
    }
  });

  it('an idle keep-alive connection is closed after the keep-alive timeout (+ Node\'s 1 s buffer)', async () => {
    const port = await start({ keepAliveTimeoutMs: 200 });
    const { held } = await flood(port, 1, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await until(() => held[0]!.closedAt !== null, 3000)).toBe(true);
    expect(held[0]!.got).toMatch(/^HTTP\/1\.1 200 /);
    expect(held[0]!.closedAt!).toBeGreaterThanOrEqual(150);
    expect(held[0]!.closedAt!).toBeLessThan(1200 + 500);
  });

  it('a request body that never comes: answered with connection: close, closed at once', async () => {
    const port = await start({ requestTimeoutMs: 5_000, headersTimeoutMs: 5_000 });
    const { held } = await flood(port, 1, 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
    expect(await until(() => held[0]!.closedAt !== null, 3000)).toBe(true);
    expect(held[0]!.got).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n/i);
    expect(held[0]!.closedAt!).toBeLessThan(1000);
  });

  it('a client that stops reading a large response is cut by the idle timeout', async () => {
    const big = 'x'.repeat(32 * 2 ** 20); // more than loopback's socket buffers hold
    let asked = false;
    admin = await startAdmin({
      address: '127.0.0.1',
      port: 0,
      source: { listening: [mx], activeSessions: 0, config },
      closed: () => false,
      metrics: async () => {
        asked = true;
        return { text: big, contentType: 'text/plain' };
      },
      logger: silentLogger(),
      limits: { idleTimeoutMs: 300 },
    });
    const sock = connect(admin.port, '127.0.0.1');
    open.push(sock);
    sock.on('error', () => undefined);
    await new Promise((r) => sock.once('connect', r));
    sock.pause();
    sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    // Stalled past the idle timeout, counted from when the server has the request (which can
    // take a while on a busy machine).
    expect(await until(() => asked, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    let got = 0;
    const closed = new Promise<boolean>((r) => {
      sock.on('close', () => r(true));
      setTimeout(() => r(false), 5000).unref();
    });
    sock.on('data', (d: Buffer) => (got += d.length));
    sock.resume();
    expect(await closed).toBe(true);
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThan(big.length); // the server gave up on it
  });
});
