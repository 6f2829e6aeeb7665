// The webhook against a real local HTTP server on 127.0.0.1: delivery and payload, a
// receiver that is down, one that answers 500 then recovers, 4xx, timeouts, a full queue,
// and stop(). Backoff is shortened through the constructor options; waits are bounded.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { WebhookConfig } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log/logger.js';
import type { WebhookResult } from '../../src/metrics.js';
import type { MessageMetadata } from '../../src/store/metadata.js';
import { Webhook, type WebhookPayload } from '../../src/webhook.js';

const tmp = mkdtempSync(join(tmpdir(), 'fakemx-webhook-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function meta(id: string, size = 10): MessageMetadata {
  return {
    version: 1, id, file: `2024-05-01/${id}.eml`, receivedAt: '2024-05-01T10:00:00.000Z', session: 's1', listener: 'mx',
    client: { ip: '192.0.2.1', port: 4711, helo: 'bot.example', esmtp: true },
    server: { ip: '127.0.0.1', port: 25, hostName: 'mx.test' }, tls: null,
    envelope: { mailFrom: 'a@example.org', rcptTo: ['b@example.net'], declaredSize: null, body: null, smtputf8: false },
    sizes: { body: size, headers: 0, file: size },
    timings: { sessionOpenedAt: '', dataStartedAt: '', dataEndedAt: '', dataMs: 0 },
    verdicts: [], dns: null, tempfailed: false,
  };
}

interface Received {
  headers: IncomingMessage['headers'];
  body: WebhookPayload;
}

/** A receiver whose answer per request comes from `respond` (status, or 'hang'). */
async function receiver(respond: (n: number) => number | 'hang') {
  const got: Received[] = [];
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload });
      const r = respond(got.length);
      if (r === 'hang') hanging.push(res);
      else res.writeHead(r).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=secret`;
  return {
    url,
    got,
    close: () => {
      for (const h of hanging) h.destroy();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A port nobody listens on (connection refused). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const settings = (url: string, over: Partial<WebhookConfig> = {}): WebhookConfig => ({
  url, headers: { authorization: 'Bearer t' }, timeout: 2000, maxRetries: 3, queueSize: 100, includeRawMax: 0, ...over,
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function hook(s: WebhookConfig, opts: { concurrency?: number; backoffBaseMs?: number; backoffMaxMs?: number } = {}) {
  const counts: Record<WebhookResult, number> = { success: 0, retry: 0, failed: 0, dropped: 0 };
  const warned: Record<string, unknown>[] = [];
  const logger = Object.assign(silentLogger(), { warn: (o: Record<string, unknown>) => void warned.push(o) });
  const w = new Webhook(s, logger, { backoffBaseMs: 10, backoffMaxMs: 50, random: () => 1, count: (r, n = 1) => (counts[r] += n), ...opts });
  cleanups.push(() => w.stop());
  return { w, counts, warned };
}

/** idle() with a bound, so a bug fails the test instead of hanging it. */
const settled = (w: Webhook, ms = 5000) => Promise.race([w.idle(), new Promise((_, rej) => setTimeout(() => rej(new Error('webhook did not settle')), ms))]);

describe('webhook delivery', () => {
  it('POSTs {metadata, path} as JSON with the configured headers', async () => {
    const rx = await receiver(() => 204);
    cleanups.push(rx.close);
    const { w, counts } = hook(settings(rx.url));
    expect(w.enqueue({ metadata: meta('m1'), path: '/store/2024-05-01/m1.eml' })).toBe(true);
    await settled(w);
    expect(rx.got).toHaveLength(1);
    expect(rx.got[0]!.headers['content-type']).toBe('application/json');
    expect(rx.got[0]!.headers.authorization).toBe('Bearer t');
    expect(rx.got[0]!.body).toEqual({ metadata: meta('m1'), path: '/store/2024-05-01/m1.eml' });
    expect(counts).toEqual({ success: 1, retry: 0, failed: 0, dropped: 0 });
  });

  const rawCases = [
    { name: 'raw included when size <= includeRawMax', size: 11, max: 11, raw: Buffer.from('Subject: x\n').toString('base64') },
    { name: 'raw left out when bigger', size: 11, max: 10, raw: undefined },
    { name: 'raw left out when includeRawMax is 0', size: 11, max: 0, raw: undefined },
  ];
  it.each(rawCases)('$name', async ({ size, max, raw }) => {
    const rx = await receiver(() => 200);
    cleanups.push(rx.close);
    const path = join(tmp, 'm.eml');
    writeFileSync(path, 'Subject: x\n');
    const { w } = hook(settings(rx.url, { includeRawMax: max }));
    w.enqueue({ metadata: meta('m', size), path });
    await settled(w);
    expect(rx.got[0]!.body.raw).toBe(raw);
  });

  it('raw file gone: metadata still delivered', async () => {
    const rx = await receiver(() => 200);
    cleanups.push(rx.close);
    const { w, counts } = hook(settings(rx.url, { includeRawMax: 1000 }));
    w.enqueue({ metadata: meta('m'), path: join(tmp, 'missing.eml') });
    await settled(w);
    expect(rx.got[0]!.body).not.toHaveProperty('raw');
    expect(counts.success).toBe(1);
  });
});

describe('webhook failures and retries', () => {
  it('receiver down (connection refused): maxRetries retries, then failed', async () => {
    const { w, counts } = hook(settings(`http://127.0.0.1:${await deadPort()}/hook`, { maxRetries: 2 }));
    w.enqueue({ metadata: meta('m'), path: null });
    await settled(w);
    expect(counts).toEqual({ success: 0, retry: 2, failed: 1, dropped: 0 });
  });

  const statusCases: { name: string; answers: number[]; maxRetries: number; calls: number; counts: Partial<Record<WebhookResult, number>> }[] = [
    { name: '500 twice then 200: delivered on the third try', answers: [500, 500, 200], maxRetries: 3, calls: 3, counts: { success: 1, retry: 2, failed: 0 } },
    { name: '500 always: gives up after maxRetries', answers: [500, 500, 500, 500], maxRetries: 3, calls: 4, counts: { success: 0, retry: 3, failed: 1 } },
    { name: '503 with maxRetries 0: one try', answers: [503], maxRetries: 0, calls: 1, counts: { retry: 0, failed: 1 } },
    { name: '429 is retried', answers: [429, 200], maxRetries: 3, calls: 2, counts: { success: 1, retry: 1 } },
    { name: '400 is final: no retry', answers: [400, 200], maxRetries: 3, calls: 1, counts: { success: 0, retry: 0, failed: 1 } },
    { name: '302 is not followed and not retried', answers: [302], maxRetries: 3, calls: 1, counts: { failed: 1 } },
  ];
  it.each(statusCases)('$name', async ({ answers, maxRetries, calls, counts: expected }) => {
    const rx = await receiver((n) => answers[n - 1] ?? 200);
    cleanups.push(rx.close);
    const { w, counts } = hook(settings(rx.url, { maxRetries }));
    w.enqueue({ metadata: meta('m'), path: null });
    await settled(w);
    expect(rx.got).toHaveLength(calls);
    expect(counts).toMatchObject(expected);
  });

  it('a receiver that never answers hits the per-request timeout', async () => {
    const rx = await receiver(() => 'hang');
    cleanups.push(rx.close);
    const { w, counts } = hook(settings(rx.url, { timeout: 100, maxRetries: 1 }));
    const t = Date.now();
    w.enqueue({ metadata: meta('m'), path: null });
    await settled(w);
    expect(counts).toMatchObject({ retry: 1, failed: 1 });
    expect(Date.now() - t).toBeLessThan(2000);
  });

  it('backoff: exponential with full jitter, capped', () => {
    const w = new Webhook(settings('http://127.0.0.1:1/'), silentLogger(), { backoffBaseMs: 100, backoffMaxMs: 1000, random: () => 0.5 });
    expect([0, 1, 2, 3, 4, 10].map((a) => w.backoffMs(a))).toEqual([50, 100, 200, 400, 500, 500]);
    const zero = new Webhook(settings('http://127.0.0.1:1/'), silentLogger(), { random: () => 0 });
    expect(zero.backoffMs(5)).toBe(0);
  });
});

describe('webhook queue', () => {
  it('full queue: enqueue returns false at once, drops are counted', async () => {
    const rx = await receiver(() => 'hang');
    cleanups.push(rx.close);
    const { w, counts } = hook(settings(rx.url, { queueSize: 2, timeout: 5000 }), { concurrency: 1 });
    const t = Date.now();
    const accepted = ['a', 'b', 'c', 'd', 'e'].map((id) => w.enqueue({ metadata: meta(id), path: null }));
    expect(Date.now() - t).toBeLessThan(1000); // never waits on the receiver (which hangs for its 5 s timeout)
    // One in flight, two waiting, two dropped.
    expect(accepted).toEqual([true, true, true, false, false]);
    expect(counts.dropped).toBe(2);
    expect(w.pending).toBe(3);
    await w.stop();
    // stop() drops what still waits and aborts the request in flight, all counted.
    expect(counts.dropped).toBe(5);
    expect(w.pending).toBe(0);
    expect(w.enqueue({ metadata: meta('late'), path: null })).toBe(false);
  });

  it('stop() says what it gives up in one line: queued, and in flight or waiting for a retry', async () => {
    const down = `http://127.0.0.1:${await deadPort()}/hook`;
    // Long backoff: both deliveries are waiting for their retry when the stop comes.
    const { w, counts, warned } = hook(settings(down, { maxRetries: 5 }), { concurrency: 2, backoffBaseMs: 60_000, backoffMaxMs: 60_000 });
    for (const id of ['a', 'b', 'c']) w.enqueue({ metadata: meta(id), path: null });
    const end = Date.now() + 5000;
    while (counts.retry < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    await w.stop();
    expect(warned.filter((o) => o.tag === 'WEBHOOK_DROPPED')).toEqual([{ tag: 'WEBHOOK_DROPPED', dropped: 3, queued: 1, inFlight: 2, reason: 'shutdown' }]);
    expect(counts.dropped).toBe(3);
  });

  it('stop(grace) lets queued deliveries finish first', async () => {
    const rx = await receiver(() => 200);
    cleanups.push(rx.close);
    const { w, counts } = hook(settings(rx.url), { concurrency: 1 });
    for (const id of ['a', 'b', 'c']) w.enqueue({ metadata: meta(id), path: null });
    await w.stop(5000);
    expect(counts).toMatchObject({ success: 3, dropped: 0 });
    expect(rx.got.map((g) => g.body.metadata.id)).toEqual(['a', 'b', 'c']);
  });

  it('update() applies new settings to later attempts', async () => {
    const down = `http://127.0.0.1:${await deadPort()}/hook`;
    const rx = await receiver(() => 200);
    cleanups.push(rx.close);
    const { w, counts } = hook(settings(down, { maxRetries: 50 }));
    w.enqueue({ metadata: meta('m'), path: null });
    await new Promise((r) => setTimeout(r, 30));
    w.update(settings(rx.url, { maxRetries: 50 }));
    await settled(w);
    expect(counts.success).toBe(1);
    expect(rx.got).toHaveLength(1);
  });
});
