// The console's State page API on a real admin listener (127.0.0.1:0), over the memory and the
// local (LMDB) backends: pages that follow a scan cursor to the end without repeats, search by
// kind, address, network and text, a bounded scan on a large store, and the writes: 403 while
// read-only, refused without the write header or from another origin, logged with the HTTP
// client's address when done, and a token required when one is set.
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { startConsole, type ConsoleRuntime } from '../../src/console/index.js';
import { SCAN_BUDGET } from '../../src/console/state-view.js';
import type { ServerEvents } from '../../src/events.js';
import { startAdmin, type AdminServer } from '../../src/http/admin.js';
import type { Logger } from '../../src/log/logger.js';
import { MemoryBackend } from '../../src/state/memory.js';
import { openStateStore, StateStore } from '../../src/state/store.js';
import { keys } from '../../src/state/types.js';
import { rawRequest } from '../helpers/http.js';

const tmp = mkdtempSync(join(tmpdir(), 'fakemx-console-state-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const call = (url: string, method = 'GET', headers: Record<string, string> = {}, body?: string) => rawRequest(url, headers, method, body);
const W = { 'x-fakemx-console': '1', 'content-type': 'application/json' };

interface Page {
  backend: string | null;
  items: { key: string; kind: string; subject: string; expiresAt: string; ttlMs: number; value: Record<string, unknown> }[];
  cursor: string | null;
  examined: number;
  write: boolean;
}

function capture(): { lines: Record<string, unknown>[]; logger: Logger } {
  const lines: Record<string, unknown>[] = [];
  const push = (o: unknown) => lines.push(o as Record<string, unknown>);
  return { lines, logger: { info: push, warn: push, error: push, debug: push, trace: push, fatal: push, isLevelEnabled: () => true, child: () => ({}) } as unknown as Logger };
}

let dirs = 0;
const backends: Record<string, () => StateStore> = {
  memory: () => new StateStore(new MemoryBackend(), { timeout: 1000 }),
  local: () =>
    openStateStore(
      { backend: 'local', path: join(tmp, `lmdb${++dirs}`), timeout: 1000, onError: 'open', leaseTtl: 60_000, leaseBlock: 1, redis: { url: '', prefix: '', connectTimeout: 100, tlsCa: '', password: '', cacheEntries: 0 } },
      { sweepInterval: 0 },
    ),
};

/**
 * Waits for the local backend's writes to reach the file. A scan is like Redis SCAN: an entry
 * written while it runs may be missed when it lands before the cursor (the overlay of
 * uncommitted writes is listed after the file), so the paging test starts from a quiet store.
 */
async function committed(s: StateStore): Promise<void> {
  const pending = (s.backend as unknown as { pending?: Map<string, unknown> }).pending;
  for (let i = 0; pending && pending.size > 0 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
}

/** 120 greylist triplets from 30 addresses, and one entry of every other kind. */
async function seed(s: StateStore): Promise<string[]> {
  const made: string[] = [];
  for (let i = 0; i < 120; i++) {
    const k = keys.grey(`198.51.${i % 30}.0/24`, `sender${i}@spam${i % 7}.example`, `rcpt${i}@example.com`);
    await s.set(k, { first: Date.now() }, 3_600_000);
    made.push(k);
  }
  const more: [string, Record<string, unknown>][] = [
    [keys.white('192.0.2.0/24'), { net: '192.0.2.0/24', n: 3, via: 'a@b|c@d' }],
    [keys.pass('greet', '203.0.113.5'), { at: 1 }],
    [keys.fail('203.0.113.66'), { test: 'pipelining', at: 1 }],
    [keys.trap('203.0.113.99'), { ip: '203.0.113.99', rcpt: '<script>alert(1)</script>@trap.example', hits: 2 }],
  ];
  for (const [k, v] of more) {
    await s.set(k, v, 3_600_000);
    made.push(k);
  }
  await committed(s);
  return made;
}

describe.each(Object.keys(backends))('State API over the %s backend', (name) => {
  let admin: AdminServer | null = null;
  let rt: ConsoleRuntime | null = null;
  let store: StateStore | null = null;
  afterEach(async () => {
    await admin?.close();
    rt?.stop();
    await store?.close();
    admin = rt = store = null;
  });

  async function start(http: Record<string, unknown>, logger: Logger = capture().logger) {
    store = backends[name]!();
    const config = loadConfig({ overrides: { listenPort: 0, storePath: join(tmp, 'corpus'), http: { port: 1, console: true, ...http } }, env: {} }).config;
    const s = store;
    rt = startConsole(new EventEmitter<ServerEvents>(), config, logger, { state: () => s });
    admin = await startAdmin({
      address: '127.0.0.1', port: 0, source: { listening: [], activeSessions: 0, config }, closed: () => false,
      metrics: async () => ({ text: '', contentType: 'text/plain' }), logger, console: () => rt?.app ?? null,
    });
    return { base: `http://127.0.0.1:${admin.port}`, store: s };
  }

  it('a cursor outside the kind asked for is a 400, not an empty or wrong page, and not a state error', async () => {
    const { base, store: s } = await start({});
    await seed(s);
    const first = JSON.parse((await call(`${base}/api/state?kind=grey&limit=5`)).body) as Page;
    expect(first.cursor).toMatch(/^grey:/);
    expect((await call(`${base}/api/state?kind=grey&limit=5&cursor=${encodeURIComponent(first.cursor!)}`)).status).toBe(200);
    // The kind filter changed and the old page's cursor kept (another kind's key): refused.
    const r = await call(`${base}/api/state?kind=trap&limit=5&cursor=${encodeURIComponent(first.cursor!)}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'bad cursor' });
    expect(s.health()).toEqual({ ok: true });
    expect(s.errors).toBe(0);
  });

  it('pages follow the cursor to the end without repeats; kind, address, network and text searches', async () => {
    const { base, store: s } = await start({});
    const made = await seed(s);
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await call(`${base}/api/state?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(r.status).toBe(200);
      expect(r.headers['content-security-policy']).toContain("default-src 'self'");
      const p = JSON.parse(r.body) as Page;
      expect(p.backend).toBe(name);
      expect(p.write).toBe(false);
      expect(p.items.length).toBeLessThanOrEqual(50);
      seen.push(...p.items.map((i) => i.key));
      cursor = p.cursor;
    } while (cursor !== null && ++pages < 20);
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...made].sort());

    const get = async (qs: string) => JSON.parse((await call(`${base}/api/state?${qs}`)).body) as Page;
    const white = await get('kind=white');
    expect(white.items.map((i) => i.key)).toEqual(['white:192.0.2.0/24']);
    expect(white.items[0]).toMatchObject({ kind: 'white', subject: '192.0.2.0/24', value: { n: 3 } });
    expect(white.items[0]!.ttlMs).toBeGreaterThan(3_500_000);
    // An address finds the network entries holding it; a network the entries inside it.
    const byIp = await get('q=198.51.3.77&limit=200');
    expect(byIp.items).toHaveLength(4);
    expect(byIp.items.every((i) => i.subject === '198.51.3.0/24')).toBe(true);
    const byNet = await get(`q=${encodeURIComponent('203.0.113.0/24')}&limit=200`);
    expect(byNet.items.map((i) => i.kind).sort()).toEqual(['fail', 'pass', 'trap']);
    const byText = await get('q=SPAM3.example&kind=grey&limit=200');
    expect(byText.items.length).toBe(17); // i % 7 === 3 for i < 120
    expect(byText.items.every((i) => i.key.includes('@spam3.example'))).toBe(true);
    // A hostile recipient comes back as data, for the page to show as text.
    expect((await get('kind=trap')).items[0]!.value.rcpt).toBe('<script>alert(1)</script>@trap.example');
    expect((await call(`${base}/api/state?kind=lease`)).status).toBe(400);
    expect((await call(`${base}/api/state?limit=x`)).status).toBe(400);
    // Read-only: every write is 403, whatever it carries.
    expect((await call(`${base}/api/state`, 'POST', W, '{"action":"allow","target":"192.0.2.1"}')).status).toBe(403);
    expect((await call(`${base}/api/state?key=${encodeURIComponent(made[0]!)}`, 'DELETE', W)).status).toBe(403);
    expect(await s.get(made[0]!)).not.toBeNull();
  });

  it('a search over a large store examines a bounded number of keys per request', async () => {
    const { base, store: s } = await start({});
    const n = SCAN_BUDGET + 1500;
    for (let i = 0; i < n; i++) await s.set(`pass:greet:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, { at: i }, 3_600_000);
    await s.set('trap:10.255.255.255', { rcpt: 'needle@trap.example' }, 3_600_000);
    const first = JSON.parse((await call(`${base}/api/state?q=needle`)).body) as Page;
    expect(first.examined).toBeLessThanOrEqual(SCAN_BUDGET + 1000);
    expect(first.cursor).not.toBeNull();
    let found = first.items.length;
    let cursor = first.cursor;
    for (let i = 0; cursor && i < 10; i++) {
      const p = JSON.parse((await call(`${base}/api/state?q=needle&cursor=${encodeURIComponent(cursor)}`)).body) as Page;
      found += p.items.length;
      cursor = p.cursor;
    }
    expect(found).toBe(1);
  });

  it('with http.consoleWrite: allow, deny, trap and delete, each logged with the client address; cross-site writes refused', async () => {
    const cap = capture();
    const { base, store: s } = await start({ consoleWrite: true }, cap.logger);
    const made = await seed(s);
    expect((JSON.parse((await call(`${base}/api/state?kind=white`)).body) as Page).write).toBe(true);
    const post = (body: unknown, h: Record<string, string> = W) => call(`${base}/api/state`, 'POST', h, JSON.stringify(body));

    // No write header: what a plain HTML form on another site could send.
    const form = await call(`${base}/api/state`, 'POST', { 'content-type': 'application/x-www-form-urlencoded' }, 'action=allow&target=192.0.2.1');
    expect(form.status).toBe(403);
    expect((JSON.parse(form.body) as { error: string }).error).toContain('X-Fakemx-Console');
    expect((await post({ action: 'deny', target: '198.51.100.1' }, { ...W, origin: 'http://evil.example' })).status).toBe(403);
    expect((await post({ action: 'deny', target: '198.51.100.1' }, { ...W, origin: 'null' })).status).toBe(403);
    expect((await post({ action: 'deny', target: '198.51.100.1' }, { ...W, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await call(`${base}/api/state?key=${encodeURIComponent(made[0]!)}`, 'DELETE', { 'sec-fetch-site': 'same-site', 'x-fakemx-console': '1' })).status).toBe(403);
    expect(await s.get(keys.fail('198.51.100.1'))).toBeNull();
    expect(await s.get(made[0]!)).not.toBeNull();
    expect(cap.lines.filter((l) => l.tag === 'CONSOLE_CSRF')).toHaveLength(5);

    // Same origin, as the page's own fetch() sends it.
    const host = base.slice('http://'.length);
    const allow = await post({ action: 'allow', target: '198.51.100.77' }, { ...W, origin: base, 'sec-fetch-site': 'same-origin', host });
    expect(allow.status).toBe(200);
    expect(JSON.parse(allow.body)).toMatchObject({ key: 'white:198.51.100.0/24' });
    expect((await s.get('white:198.51.100.0/24'))?.value).toMatchObject({ via: 'console' });
    const deny = await post({ action: 'deny', target: '198.51.100.1', ttlMs: 60_000 });
    expect(JSON.parse(deny.body)).toEqual({ key: 'fail:198.51.100.1', keys: ['fail:198.51.100.1'], ttlMs: 60_000, widened: false });
    // 'manual' is what makes a cached failure drop at connect.
    expect((await s.get('fail:198.51.100.1'))?.value).toMatchObject({ test: 'manual', via: 'console' });
    expect((await post({ action: 'trap', target: '198.51.100.2' })).status).toBe(200);
    expect((await post({ action: 'deny', target: '198.51.100.0/24' })).status).toBe(400);
    // An allow for a wider network: the /24s greylisting looks up; too wide is 400.
    expect(JSON.parse((await post({ action: 'allow', target: '203.0.113.0/23' })).body)).toMatchObject({ keys: ['white:203.0.112.0/24', 'white:203.0.113.0/24'], widened: false });
    const wide = await post({ action: 'allow', target: '10.0.0.0/8' });
    expect([wide.status, (JSON.parse(wide.body) as { error: string }).error]).toEqual([400, '10.0.0.0/8 holds 2^16 networks of /24 (greylist.ipv4Prefix); an allow covers at most 4096']);
    expect((await post({ action: 'allow', target: 'example.com' })).status).toBe(400);
    expect((await post({ action: 'allow', target: '192.0.2.1', ttlMs: 5 })).status).toBe(400);
    expect((await call(`${base}/api/state`, 'POST', W, '{not json')).status).toBe(400);
    expect((await call(`${base}/api/state`, 'POST', W, 'x'.repeat(5000))).status).toBe(413);

    const del = await call(`${base}/api/state?key=${encodeURIComponent(made[0]!)}`, 'DELETE', W);
    expect(del.status).toBe(200);
    expect(await s.get(made[0]!)).toBeNull();
    expect((await call(`${base}/api/state?key=${encodeURIComponent(made[0]!)}`, 'DELETE', W)).status).toBe(404);
    expect((await call(`${base}/api/state?key=lease:1.2.3.4`, 'DELETE', W)).status).toBe(400);
    expect((await call(`${base}/api/corpus`, 'POST', W, '{}')).status).toBe(405);

    const logged = cap.lines.filter((l) => l.tag === 'CONSOLE_STATE');
    expect(logged.map((l) => [l.action, l.key, l.ok])).toEqual([
      ['allow', 'white:198.51.100.0/24', true],
      ['deny', 'fail:198.51.100.1', true],
      ['trap', 'trap:198.51.100.2', true],
      ['allow', 'white:203.0.112.0/24', true],
      ['delete', made[0], true],
      ['delete', made[0], false],
    ]);
    expect(logged.every((l) => l.client === '127.0.0.1')).toBe(true);
    expect(logged.find((l) => l.key === 'white:203.0.112.0/24')?.keys).toBe(2);
  });

  it('an endless upload to the write API is answered 413 at the limit, not after its end', async () => {
    const { base } = await start({ consoleWrite: true });
    const { request } = await import('node:http');
    const CAP = 64 * 1024 * 1024;
    const r = await new Promise<{ status: number; sent: number }>((resolve, reject) => {
      let sent = 0;
      let done = false;
      const req = request(`${base}/api/state`, { method: 'POST', headers: W }, (res) => {
        done = true;
        res.resume();
        resolve({ status: res.statusCode ?? 0, sent });
        req.destroy();
      });
      req.on('error', (e) => (done ? undefined : reject(e)));
      const chunk = Buffer.alloc(64 * 1024, 0x78);
      // Bounded: at most CAP octets, and never the request's end, so only an early answer ends it.
      const pump = () => {
        while (!done && sent < CAP) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
      };
      pump();
    });
    expect(r.status).toBe(413);
    expect(r.sent).toBeLessThan(CAP);
  });

  it('with http.token every read and write needs it (Bearer or the login cookie), as off loopback', async () => {
    const { base, store: s } = await start({ token: 'tok', consoleWrite: true });
    await seed(s);
    expect((await call(`${base}/api/state`)).status).toBe(401);
    const denied = await call(`${base}/api/state`, 'POST', W, '{"action":"deny","target":"192.0.2.9"}');
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Bearer realm="fakemx"');
    expect(denied.headers.connection).toBe('close');
    expect(JSON.parse(denied.body)).toEqual({ error: 'token required (Authorization: Bearer <http.token>)' });
    expect((await call(`${base}/api/state`, 'POST', { ...W, authorization: 'Bearer nope' }, '{"action":"deny","target":"192.0.2.9"}')).status).toBe(401);
    expect(await s.get('fail:192.0.2.9')).toBeNull();
    expect((await call(`${base}/api/state`, 'GET', { authorization: 'Bearer tok' })).status).toBe(200);
    // A token does not replace the write header: a forged form would carry the cookie on a same-site request.
    expect((await call(`${base}/api/state`, 'POST', { authorization: 'Bearer tok' }, '{"action":"deny","target":"192.0.2.9"}')).status).toBe(403);
    expect((await call(`${base}/api/state`, 'POST', { ...W, authorization: 'Bearer tok' }, '{"action":"deny","target":"192.0.2.9"}')).status).toBe(200);
    expect(await s.get('fail:192.0.2.9')).not.toBeNull();
    // Off loopback the config demands the token at all.
    expect(() => loadConfig({ overrides: { listenPort: 0, storePath: tmp, http: { port: 1, console: true, address: '0.0.0.0' } }, env: {} })).toThrow(ConfigError);
  });
});

describe('local backend scanPage past the file', () => {
  it('entries kept in memory (disk failed) are merged with the file in key order, in bounded steps too', async () => {
    const s = backends.local!();
    try {
      await s.set('white:192.0.2.0/24', { n: 1 }, 60_000);
      await new Promise((r) => setTimeout(r, 100)); // committed to the file
      (s.backend as unknown as { degrade(e: unknown): void }).degrade(Object.assign(new Error('disk full'), { code: 'ENOSPC' }));
      for (let i = 0; i < 300; i++) await s.set(`trap:10.1.${i >> 8}.${i & 255}`, { hits: 1 }, 60_000);
      // A page looks up in the file only the memory keys it takes, not all 300.
      const db = (s.backend as unknown as { db: { get(k: string): unknown } }).db;
      const get = db.get.bind(db);
      let gets = 0;
      db.get = (k: string) => (gets++, get(k));
      await s.scanPage('', null, { limit: 50, budget: 80 });
      expect(gets).toBeLessThanOrEqual(100);
      db.get = get;
      const seen: string[] = [];
      let cursor: string | null = null;
      let steps = 0;
      do {
        const p = await s.scanPage('', cursor, { limit: 50, budget: 80 });
        expect(p.examined).toBeLessThanOrEqual(80);
        expect(p.entries.length).toBeLessThanOrEqual(50);
        seen.push(...p.entries.map((e) => e.key));
        cursor = p.cursor;
      } while (cursor !== null && ++steps < 50);
      expect(steps).toBeGreaterThanOrEqual(6);
      expect(new Set(seen).size).toBe(301);
      // One key order across the file and memory.
      expect(seen).toEqual([...seen].sort());
      expect(seen).toContain('white:192.0.2.0/24');
    } finally {
      await s.close();
    }
  });
});

describe('State API without a state store', () => {
  it('says so, and refuses writes with 409; /api/caught carries the DNS engine health it is given', async () => {
    const config = loadConfig({ overrides: { listenPort: 0, storePath: join(tmp, 'c2'), http: { port: 1, console: true, consoleWrite: true } }, env: {} }).config;
    const health = [{ zone: 'bl.example', state: 'failing' as const, checkedAt: 5, reason: '127.0.0.2 is not listed', skipped: true, badAnswers: 0 }];
    const rt = startConsole(new EventEmitter<ServerEvents>(), config, capture().logger, { state: () => null, dnsHealth: () => health });
    const admin = await startAdmin({
      address: '127.0.0.1', port: 0, source: { listening: [], activeSessions: 0, config }, closed: () => false,
      metrics: async () => ({ text: '', contentType: 'text/plain' }), logger: capture().logger, console: () => rt.app,
    });
    try {
      const base = `http://127.0.0.1:${admin.port}`;
      expect(JSON.parse((await call(`${base}/api/state`)).body)).toMatchObject({ backend: null, items: [], note: expect.stringContaining('no state store') as unknown });
      expect((await call(`${base}/api/state`, 'POST', W, '{"action":"deny","target":"192.0.2.9"}')).status).toBe(409);
      expect((await call(`${base}/console/state`)).status).toBe(200);
      const caught = JSON.parse((await call(`${base}/api/caught`)).body) as { zones: unknown[] };
      expect(caught.zones).toEqual([expect.objectContaining({ zone: 'bl.example', health: 'unused', check: health[0] })]);
    } finally {
      await admin.close();
      rt.stop();
    }
  });
});
