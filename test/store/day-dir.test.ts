// Issue 12 (4): a day directory (or the whole corpus root) deleted or moved away while the
// daemon runs. Real server on 127.0.0.1, raw SMTP: the next message must still get 250 and be
// on disk, durably (fsync covers each new directory's parent), and /healthz must say not-ok
// when today's directory cannot be written. Unit cases drive Corpus directly.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cachedStoreCheck, startAdmin, type StoreCheck } from '../../src/http/admin.js';
import { silentLogger } from '../../src/log/logger.js';
import { Corpus, type TraceInfo } from '../../src/store/corpus.js';
import { greeted, type RawClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(): Promise<TestServer> {
  const srv = await startServer({ storeData: true });
  cleanups.push(() => srv.close());
  return srv;
}

/** One whole transaction; returns the final reply line and the queued id. */
async function deliver(c: RawClient, body = 'Subject: t\r\n\r\nhello\r\n'): Promise<{ code: number; id: string | undefined }> {
  expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
  expect((await c.cmd('RCPT TO:<b@example.com>')).code).toBe(250);
  expect((await c.cmd('DATA')).code).toBe(354);
  const r = await c.cmd(`${body}.`);
  return { code: r.code, id: /queued as (\S+)/.exec(r.text)?.[1] };
}

/** Where a stored id lives: its .eml and .json, both complete. */
function onDisk(root: string, id: string): { eml: string; meta: { id: string } } | null {
  for (const day of existsSync(root) ? readdirSync(root) : []) {
    const eml = join(root, day, `${id}.eml`);
    if (existsSync(eml)) return { eml: readFileSync(eml, 'latin1'), meta: JSON.parse(readFileSync(eml.replace(/\.eml$/, '.json'), 'utf8')) as { id: string } };
  }
  return null;
}

const moved = (p: string) => {
  const to = mkdtempSync(join(tmpdir(), 'fakemx-moved-'));
  cleanups.push(() => rmSync(to, { recursive: true, force: true }));
  renameSync(p, join(to, 'x'));
  return join(to, 'x');
};

describe('day directory removed between two messages (real server)', () => {
  const cases: { name: string; remove: (root: string, day: string) => void }[] = [
    { name: 'day directory deleted', remove: (root, day) => rmSync(join(root, day), { recursive: true }) },
    { name: 'day directory moved away', remove: (root, day) => moved(join(root, day)) },
    { name: 'corpus root deleted', remove: (root) => rmSync(root, { recursive: true }) },
    { name: 'corpus root moved away', remove: (root) => moved(root) },
  ];
  it.each(cases)('$name: the next message gets 250 and is on disk', async ({ remove }) => {
    const srv = await server();
    const c = await greeted(srv.port);
    cleanups.push(() => c.close());
    const first = await deliver(c);
    expect(first.code).toBe(250);
    const day = readdirSync(srv.store)[0]!;
    remove(srv.store, day);
    expect(existsSync(join(srv.store, day))).toBe(false);

    const second = await deliver(c, 'Subject: second\r\n\r\nstill here\r\n');
    expect(second.code).toBe(250);
    const got = onDisk(srv.store, second.id!);
    expect(got?.meta.id).toBe(second.id);
    expect(got?.eml.endsWith('Subject: second\r\n\r\nstill here\r\n')).toBe(true);
    // A third one goes through the recreated directory's normal path; no temporaries anywhere.
    expect((await deliver(c)).code).toBe(250);
    expect(srv.files().filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(srv.messages()).toHaveLength(2);
  });

  it('day directory deleted while a message is being received: still 250, complete on disk', async () => {
    const srv = await server();
    const c = await greeted(srv.port);
    cleanups.push(() => c.close());
    expect((await deliver(c)).code).toBe(250);
    const day = readdirSync(srv.store)[0]!;
    expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<b@example.com>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    const body = `Subject: mid\r\n\r\n${'x'.repeat(200)}\r\n`.repeat(500); // > FLUSH_AT: some of it is on disk already
    c.send(body);
    // Wait (bounded) until the temporary exists, then delete the directory under it.
    const until = Date.now() + 2000;
    while (!readdirSync(join(srv.store, day)).some((f) => f.startsWith('.tmp-')) && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    rmSync(join(srv.store, day), { recursive: true });
    const r = await c.cmd('tail\r\n.');
    expect(r.code).toBe(250);
    const id = /queued as (\S+)/.exec(r.text)![1]!;
    expect(onDisk(srv.store, id)?.eml.endsWith(`${body}tail\r\n`)).toBe(true);
    expect(srv.files().filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('/healthz follows today\'s directory (real server + admin listener)', () => {
  async function healthOf(srv: TestServer) {
    const admin = await startAdmin({
      address: '127.0.0.1', port: 0, source: srv.server, closed: () => false, logger: silentLogger(),
      metrics: async () => ({ text: '', contentType: 'text/plain' }),
      limits: { storeCheckCacheMs: 0 }, // every probe fresh; the cache has its own test
    });
    cleanups.push(() => admin.close());
    return async () => {
      const res = await fetch(`http://127.0.0.1:${admin.port}/healthz`, { signal: AbortSignal.timeout(2000) });
      return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
    };
  }
  const today = () => new Date().toISOString().slice(0, 10);
  const cases: { name: string; block: (root: string) => void; status: number; state: string; reason?: RegExp; stores: boolean }[] = [
    { name: 'day directory deleted (made on the next message)', block: (root) => rmSync(join(root, today()), { recursive: true }), status: 200, state: 'ok', stores: true },
    { name: 'corpus root deleted', block: (root) => rmSync(root, { recursive: true }), status: 200, state: 'degraded', reason: /missing \(ENOENT\); made again on the next message/, stores: true },
    { name: 'a regular file where today\'s directory goes', block: (root) => (rmSync(join(root, today()), { recursive: true }), writeFileSync(join(root, today()), 'x')), status: 503, state: 'unavailable', reason: /store directory .*\d{4}-\d\d-\d\d not writable \(ENOTDIR\)/, stores: false },
    { name: 'the corpus root is a regular file', block: (root) => (rmSync(root, { recursive: true }), writeFileSync(root, 'x')), status: 503, state: 'unavailable', reason: /not writable \(ENOTDIR\)/, stores: false },
  ];
  it.each(cases)('$name: $status $state; a message gets 250 exactly when healthy', async ({ block, status, state, reason, stores }) => {
    const srv = await server();
    const health = await healthOf(srv);
    const c = await greeted(srv.port);
    cleanups.push(() => c.close());
    expect((await deliver(c)).code).toBe(250);
    expect(await health()).toMatchObject({ status: 200, body: { status: 'ok' } });
    block(srv.store);
    const h = await health();
    expect(h.status).toBe(status);
    expect(h.body.status).toBe(state);
    if (reason) expect(h.body.reason).toMatch(reason);
    expect((await deliver(c)).code).toBe(stores ? 250 : 451);
    // Unblocked: healthy again, and storing again.
    if (!stores) {
      rmSync(existsSync(join(srv.store, today())) ? join(srv.store, today()) : srv.store, { force: true });
      expect((await deliver(c)).code).toBe(250);
    }
    expect(await health()).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('the probe is cached: a flood of checks costs one probe per period, concurrent callers share it', async () => {
    let probes = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const check = cachedStoreCheck(200, async (): Promise<StoreCheck> => {
      probes++;
      await gate;
      return { ok: true };
    });
    const all = Promise.all(Array.from({ length: 100 }, () => check('/x')));
    release();
    expect((await all).every((r) => r.ok)).toBe(true);
    expect(probes).toBe(1);
    await check('/y');
    expect(probes).toBe(2); // per directory
    await new Promise((r) => setTimeout(r, 250));
    await check('/x');
    expect(probes).toBe(3); // expired
  });
});

const trace: TraceInfo = {
  hostName: 'mx.test', sessionId: 's', clientIp: '192.0.2.7', clientPort: 1, helo: 'h', esmtp: true, tls: false, smtputf8: false, mailFrom: 'a@b', rcptTo: ['c@d'],
};
const meta = {
  version: 1 as const, receivedAt: '', session: 's', listener: 'l',
  client: { ip: '192.0.2.7', port: 1, helo: 'h', esmtp: true }, server: { ip: '127.0.0.1', port: 25, hostName: 'mx.test' },
  tls: null, envelope: { mailFrom: '', rcptTo: [], declaredSize: null, body: null, smtputf8: false },
  timings: { sessionOpenedAt: '', dataStartedAt: '', dataEndedAt: '', dataMs: 0 }, verdicts: [], dns: null, tempfailed: false,
};
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fakemx-daydir-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}
const AT = new Date('2026-11-22T10:00:00Z');
const DAY = '2026-11-22';

describe('Corpus recreates what went missing (unit)', () => {
  it('new directories are made durable: each created directory\'s parent is fsynced, top down', async () => {
    const base = tmp();
    const root = join(base, 'a', 'corpus');
    const synced: string[] = [];
    const c = new Corpus(root, { syncDir: async (d) => void synced.push(d) });
    await c.init();
    expect(synced).toEqual([base, join(base, 'a')]);
    synced.length = 0;
    await c.begin(trace, AT).commit(meta);
    // The day directory's entry (root), then the renames (the day directory itself).
    expect(synced).toEqual([root, join(root, DAY)]);

    rmSync(join(base, 'a'), { recursive: true });
    synced.length = 0;
    await c.begin(trace, AT).commit(meta);
    expect(synced).toEqual([base, join(base, 'a'), root, join(root, DAY)]);
  });

  it('twenty messages begun after the directory vanished all commit, sharing one re-creation', async () => {
    const root = tmp();
    const synced: string[] = [];
    const c = new Corpus(root, { syncDir: async (d) => void synced.push(d) });
    await c.begin(trace, AT).commit(meta);
    rmSync(join(root, DAY), { recursive: true });
    synced.length = 0;
    const ws = Array.from({ length: 20 }, () => c.begin(trace, AT));
    for (const w of ws) void w.write(Buffer.from('x\r\n'));
    const stored = await Promise.all(ws.map((w) => w.commit(meta)));
    expect(readdirSync(join(root, DAY))).toHaveLength(41); // 20 .eml, 20 .json, the day journal
    expect(stored.every((s) => readFileSync(s.path, 'latin1').endsWith('x\r\n'))).toBe(true);
    expect(synced.filter((d) => d === root)).toHaveLength(1);
  });

  it('a directory that cannot be made: StoreError, nothing left, and the next message tries again', async () => {
    const root = tmp();
    const c = new Corpus(root);
    await c.begin(trace, AT).commit(meta);
    rmSync(join(root, DAY), { recursive: true });
    writeFileSync(join(root, DAY), 'a file in the way');
    await expect(c.begin(trace, AT).commit(meta)).rejects.toThrow(/open/);
    expect(readdirSync(root)).toEqual([DAY]);
    rmSync(join(root, DAY));
    const s = await c.begin(trace, AT).commit(meta);
    expect(readdirSync(join(root, DAY)).sort()).toEqual(['.journal', `${s.id}.eml`, `${s.id}.json`]);
  });

  it('only the temporary deleted (directory kept) before commit: rewritten from the open file', async () => {
    const root = tmp();
    const c = new Corpus(root);
    const w = c.begin(trace, AT);
    void w.write(Buffer.from('body\r\n'));
    // The temporary is opened asynchronously: wait for it (bounded; slow on a busy machine).
    for (const end = Date.now() + 5000; !existsSync(w.tmpMsg) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    rmSync(w.tmpMsg);
    const s = await w.commit(meta);
    expect(readFileSync(s.path, 'latin1').endsWith('\r\nbody\r\n')).toBe(true);
    expect(readdirSync(dirname(s.path)).sort()).toEqual(['.journal', `${s.id}.eml`, `${s.id}.json`]);
  });

  it('the root turned into a file: every message fails cleanly (StoreError), nothing half-written', async () => {
    const base = tmp();
    const root = join(base, 'corpus');
    mkdirSync(root);
    const c = new Corpus(root);
    await c.begin(trace, AT).commit(meta);
    rmSync(root, { recursive: true });
    writeFileSync(root, 'blocked');
    await expect(c.begin(trace, AT).commit(meta)).rejects.toThrow(/open/);
    expect(readFileSync(root, 'utf8')).toBe('blocked');
  });
});
