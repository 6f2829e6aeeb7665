// startObservability() on a real FakemxServer (127.0.0.1): a message sent with nodemailer
// shows in /metrics and reaches the webhook receiver; /healthz follows the server's state;
// reload() re-binds the admin port and switches the webhook; stop() releases everything.
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.js';
import { startObservability, type Observability } from '../../src/observability.js';
import type { WebhookPayload } from '../../src/webhook.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** A free TCP port on 127.0.0.1 (http.port 0 means "off", so the test picks one). */
async function freePort(): Promise<number> {
  const s = createHttpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function receiver() {
  const got: WebhookPayload[] = [];
  const waiters: (() => void)[] = [];
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload);
      res.writeHead(200).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    /** Wait (bounded) until n payloads arrived. */
    async until(n: number, ms = 3000) {
      const end = Date.now() + ms;
      while (got.length < n && Date.now() < end) await new Promise<void>((r) => (waiters.push(r), setTimeout(r, 50)));
      return got;
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

async function send(port: number) {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, name: 'sender.test' });
  try {
    await t.sendMail({ from: 'alice@example.org', to: 'bob@example.com', subject: 'hi', text: 'hello' });
  } finally {
    t.close();
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup(webhookUrl: string | null) {
  const httpPort = await freePort();
  const srv: TestServer = await startServer({
    http: { address: '127.0.0.1', port: httpPort },
    ...(webhookUrl ? { webhook: { url: webhookUrl, includeRawMax: 100_000 } } : {}),
  });
  cleanups.push(() => srv.close());
  const obs: Observability = await startObservability(srv.server, srv.server.config, silentLogger());
  cleanups.push(() => obs.stop());
  return { srv, obs, admin: `http://127.0.0.1:${httpPort}`, httpPort };
}

describe('observability on a real server', () => {
  it('a delivered message shows in /metrics and reaches the webhook with its raw text', async () => {
    const rx = await receiver();
    cleanups.push(rx.close);
    const { srv, admin } = await setup(rx.url);
    await send(srv.port);
    const [payload] = await rx.until(1);
    const [stored] = srv.messages();
    expect(payload!.metadata.id).toBe(stored!.meta.id);
    expect(payload!.path).toBe(stored!.path);
    expect(Buffer.from(payload!.raw!, 'base64').equals(stored!.eml)).toBe(true);

    const text = await (await fetch(`${admin}/metrics`)).text();
    const listener = srv.server.listening[0]!.name;
    expect(text).toContain(`fakemx_connections_total{listener="${listener}",outcome="accepted"} 1`);
    expect(text).toContain('fakemx_messages_total{result="stored"} 1');
    expect(text).toMatch(/fakemx_message_bytes_total [1-9]\d*/);
    expect(text).toContain('fakemx_webhook_total{result="success"} 1');
    expect(text).toContain('process_resident_memory_bytes');
  });

  it('every corpus in use has its store series from the start, before any change of state', async () => {
    const { srv, admin } = await setup(null);
    const text = await (await fetch(`${admin}/metrics`)).text();
    const store = srv.server.stores.status()[0]!.store;
    expect(text).toContain(`fakemx_store_full{store="${store}"} 0`);
    expect(text).toContain(`fakemx_store_pruned_bytes_total{store="${store}"} 0`);
  });

  it('/healthz: 200 while listening, 503 once the server is closed', async () => {
    const { srv, admin } = await setup(null);
    const ok = await fetch(`${admin}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ok', activeSessions: 0, listeners: [{ port: srv.port }] });
    await srv.server.close(100);
    const down = await fetch(`${admin}/healthz`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'unavailable', reason: 'server closed' });
  });

  it('reload(): new admin port, webhook switched on, then off', async () => {
    const rx = await receiver();
    cleanups.push(rx.close);
    const { srv, obs, admin } = await setup(null);
    const newPort = await freePort();
    const base = srv.server.config;
    await obs.reload({ ...base, http: { ...base.http, address: '127.0.0.1', port: newPort }, webhook: { ...base.webhook, url: rx.url } });
    await expect(fetch(`${admin}/healthz`)).rejects.toThrow();
    expect((await fetch(`http://127.0.0.1:${newPort}/healthz`)).status).toBe(200);
    await send(srv.port);
    expect(await rx.until(1)).toHaveLength(1);

    await obs.reload({ ...base, http: { ...base.http, address: '127.0.0.1', port: newPort }, webhook: { ...base.webhook, url: '' } });
    await send(srv.port);
    await new Promise((r) => setTimeout(r, 200));
    expect(rx.got).toHaveLength(1);
  });

  it('reload() to a port in use fails and keeps the old listener', async () => {
    const { srv, obs, admin } = await setup(null);
    const blocker = createHttpServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())));
    const busy = (blocker.address() as AddressInfo).port;
    await expect(obs.reload({ ...srv.server.config, http: { ...srv.server.config.http, address: '127.0.0.1', port: busy } })).rejects.toThrow(/EADDRINUSE/);
    expect((await fetch(`${admin}/healthz`)).status).toBe(200);
  });

  it('stop(): admin port closed, no handlers left on the server', async () => {
    const { srv, obs, admin } = await setup('http://127.0.0.1:9/never');
    const before = srv.server.listenerCount('connection');
    await obs.stop();
    await expect(fetch(`${admin}/healthz`)).rejects.toThrow();
    expect(srv.server.listenerCount('connection')).toBe(before - 1);
    expect(srv.server.listenerCount('message')).toBe(0);
    // Sessions go on without observability.
    await send(srv.port);
    expect(srv.messages()).toHaveLength(1);
  });
});
