// Issue 15, Corpus: store.format maildir, store.dedupe and the disk cap (store.maxBytes,
// store.minFreeBytes, store.onFull), each through a real server on 127.0.0.1; Python's
// mailbox.Maildir reads what the Maildir format wrote; report and the webhook on both formats.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as httpServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildReport, formatReport } from '../../src/commands/report.js';
import type { VerdictEvent } from '../../src/events.js';
import { checkHealth } from '../../src/http/admin.js';
import { Metrics } from '../../src/metrics.js';
import { dayOf, JOURNAL } from '../../src/store/layout.js';
import type { MessageMetadata } from '../../src/store/metadata.js';
import type { StoreStateEvent } from '../../src/store/stores.js';
import { Webhook } from '../../src/webhook.js';
import { silentLogger } from '../../src/log/logger.js';
import { greeted, type RawClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(over: Record<string, unknown>): Promise<TestServer> {
  const srv = await startServer({ storeData: true, ...over });
  cleanups.push(() => srv.close());
  return srv;
}

async function client(srv: TestServer, helo = 'bot.example'): Promise<RawClient> {
  const c = await greeted(srv.port, helo);
  cleanups.push(() => c.close());
  return c;
}

/** One transaction; the final reply and its queue id. */
async function deliver(c: RawClient, body: string, from = 'a@spam.example', to = 'b@mx.test'): Promise<{ raw: string; id: string | undefined }> {
  expect((await c.cmd(`MAIL FROM:<${from}>`)).code).toBe(250);
  expect((await c.cmd(`RCPT TO:<${to}>`)).code).toBe(250);
  expect((await c.cmd('DATA')).code).toBe(354);
  const r = await c.cmd(`${body}.`);
  return { raw: r.raw, id: /queued as (\S+)/.exec(r.text)?.[1] };
}

const today = () => dayOf(new Date());
const records = (root: string): MessageMetadata[] =>
  readdirSync(root)
    .flatMap((d) => readdirSync(join(root, d)).filter((f) => f.endsWith('.json') && !f.startsWith('.')).map((f) => join(root, d, f)))
    .map((p) => JSON.parse(readFileSync(p, 'utf8')) as MessageMetadata);

describe('store.format maildir', () => {
  it('each day directory is a Maildir: tmp/ empty, the message in new/ under a unique name, the record beside it', async () => {
    const srv = await server({ store: { format: 'maildir' } });
    const c = await client(srv);
    const a = await deliver(c, 'Subject: one\r\n\r\nfirst body\r\n');
    const b = await deliver(c, 'Subject: two\r\n\r\n..dot-stuffed\r\n');
    expect(a.raw).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]{17}\r\n$/);
    const day = join(srv.store, today());
    expect(readdirSync(day).sort()).toEqual([JOURNAL, `${a.id}.json`, `${b.id}.json`, 'cur', 'new', 'tmp'].sort());
    expect(readdirSync(join(day, 'tmp'))).toEqual([]);
    expect(readdirSync(join(day, 'cur'))).toEqual([]);
    const names = readdirSync(join(day, 'new')).sort();
    expect(names).toHaveLength(2);
    const pid = process.pid;
    // <sec>.M<usec>P<pid>Q<seq>R<id>.<host>: time, pid and sequence, the id, the host.
    for (const n of names) expect(n).toMatch(new RegExp(`^\\d{10}\\.M\\d+P${pid}Q\\d+R[0-9a-z]{17}\\.[^/:]+$`));
    const metaA = JSON.parse(readFileSync(join(day, `${a.id}.json`), 'utf8')) as MessageMetadata;
    expect(metaA.file).toMatch(new RegExp(`^${today()}/new/\\d+\\.M\\d+P${pid}Q\\d+R${a.id}\\.`));
    const file = readFileSync(join(srv.store, metaA.file));
    expect(file.length).toBe(metaA.sizes.file);
    const text = file.toString('latin1');
    expect(text).toMatch(/^Received: from bot\.example/);
    expect(text).toContain('X-FakeMX-Mail-From: <a@spam.example>\r\n');
    expect(text).toContain('X-FakeMX-Rcpt-To: <b@mx.test>\r\n');
    expect(text.endsWith('\r\n\r\nfirst body\r\n')).toBe(true);
  });

  it('Python mailbox.Maildir reads the corpus: every message, its X-FakeMX headers, its body byte-exact', async () => {
    const srv = await server({ store: { format: 'maildir' } });
    const c = await client(srv);
    const bodies = ['Subject: py one\r\n\r\nhello\r\n', 'Subject: py two\r\nX-Bin: \xe9\r\n\r\n.leading dot\r\nend\r\n'];
    const ids = [];
    for (const b of bodies) ids.push((await deliver(c, b.replace(/^\./m, '..'))).id);
    const script = [
      'import json, mailbox, sys',
      'box = mailbox.Maildir(sys.argv[1], factory=None, create=False)',
      'out = []',
      'for key in sorted(box.keys()):',
      '    m = box[key]',
      '    raw = box.get_bytes(key)',
      "    out.append({'key': key, 'subject': m['Subject'], 'from': m['X-FakeMX-Mail-From'], 'received': m['Received'] is not None, 'body': raw.split(b'\\r\\n\\r\\n', 1)[1].decode('latin1'), 'subdir': m.get_subdir()})",
      'print(json.dumps(out))',
    ].join('\n');
    const out = JSON.parse(execFileSync('python3', ['-c', script, join(srv.store, today())], { encoding: 'utf8' })) as { key: string; subject: string; from: string; received: boolean; body: string; subdir: string }[];
    expect(out).toHaveLength(2);
    expect(out.map((m) => m.subject).sort()).toEqual(['py one', 'py two']);
    for (const m of out) {
      expect(m.from).toBe('<a@spam.example>');
      expect(m.received).toBe(true);
      expect(m.subdir).toBe('new');
      expect(ids.some((id) => m.key.includes(`R${id}.`))).toBe(true);
    }
    // The whole stored text after the header block is the body as sent (unstuffed).
    const two = out.find((m) => m.subject === 'py two')!;
    expect(two.body).toBe('.leading dot\r\nend\r\n');
  });

  it('report reads both formats alike; the webhook sends the Maildir file, also after a reader moved it to cur/', async () => {
    const eml = await server({});
    const md = await server({ store: { format: 'maildir' } });
    for (const srv of [eml, md]) {
      const c = await client(srv, 'helo.example');
      await deliver(c, 'Subject: r\r\n\r\nreport me\r\n');
      await deliver(c, 'Subject: r2\r\n\r\nreport me too\r\n', 'x@other.example');
    }
    const [re, rm] = [await buildReport({ dir: eml.store }), await buildReport({ dir: md.store })];
    for (const r of [re, rm]) {
      expect(r.messages).toBe(2);
      expect(r.invalidFiles).toBe(0);
      expect(r.helo).toEqual([{ key: 'helo.example', messages: 2 }]);
    }
    expect(rm.bytes).toBe(re.bytes);

    // The webhook: a receiver on 127.0.0.1 gets the raw message of a Maildir message.
    const got: { metadata: MessageMetadata; path: string; raw?: string }[] = [];
    const recv = httpServer((req: IncomingMessage, res) => {
      let b = '';
      req.on('data', (d: Buffer) => (b += d.toString()));
      req.on('end', () => {
        got.push(JSON.parse(b) as (typeof got)[number]);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => recv.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => recv.close(r)));
    const url = `http://127.0.0.1:${(recv.address() as AddressInfo).port}/hook`;
    const hook = new Webhook({ url, headers: {}, timeout: 2000, maxRetries: 0, queueSize: 10, includeRawMax: 1_000_000 }, silentLogger());
    const metas = records(md.store);
    const first = metas[0]!;
    hook.enqueue({ metadata: first, path: join(md.store, first.file) });
    // A mail reader took the other one: new/<name> -> cur/<name>:2,S.
    const second = metas[1]!;
    const name = second.file.split('/').pop()!;
    renameSync(join(md.store, second.file), join(md.store, today(), 'cur', `${name}:2,S`));
    hook.enqueue({ metadata: second, path: join(md.store, second.file) });
    await hook.idle();
    await hook.stop();
    expect(got).toHaveLength(2);
    for (const g of got) {
      const raw = Buffer.from(g.raw!, 'base64');
      expect(raw.length).toBe(g.metadata.sizes.file);
      expect(raw.toString('latin1')).toMatch(/^Received: from helo\.example/);
    }
    // report still counts the moved message (it reads the records).
    expect((await buildReport({ dir: md.store })).messages).toBe(2);
  });
});

describe('store.dedupe', () => {
  it('a body stored once; later arrivals (time, client, envelope) in the first record; counts in report; folded after a restart too', async () => {
    const srv = await server({ store: { dedupe: true } });
    const verdicts: VerdictEvent[] = [];
    srv.server.on('verdict', (v) => verdicts.push(v));
    const c = await client(srv, 'one.example');
    const body = 'Subject: same\r\n\r\nbuy now\r\n';
    const first = await deliver(c, body, 'a@spam.example', 'x@mx.test');
    const c2 = await client(srv, 'two.example');
    const again = await deliver(c2, body, 'b@spam.example', 'y@mx.test');
    const other = await deliver(c2, 'Subject: same\r\n\r\nbuy later\r\n');
    // Every reply looks the same; each arrival has its own id.
    for (const r of [first, again, other]) expect(r.raw).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]{17}\r\n$/);
    expect(new Set([first.id, again.id, other.id]).size).toBe(3);
    const day = join(srv.store, today());
    const emls = readdirSync(day).filter((f) => f.endsWith('.eml'));
    expect(emls.sort()).toEqual([`${first.id}.eml`, `${other.id}.eml`].sort());
    const meta = JSON.parse(readFileSync(join(day, `${first.id}.json`), 'utf8')) as MessageMetadata;
    expect(meta.bodySha256).toMatch(/^[0-9a-f]{64}$/);
    expect(meta.duplicates?.count).toBe(1);
    expect(meta.duplicates?.arrivals[0]).toMatchObject({ id: again.id, client: { ip: '127.0.0.1', helo: 'two.example' }, envelope: { mailFrom: 'b@spam.example', rcptTo: ['y@mx.test'] } });
    expect(verdicts.filter((v) => v.tag === 'DUPLICATE').map((v) => v.details)).toEqual([{ id: again.id, of: first.id, count: 1 }]);
    expect(verdicts.filter((v) => v.tag === 'STORED')).toHaveLength(2);

    // A new server on the same store rebuilds its index from the journal.
    const srv2 = createServerOn(srv.store, { store: { dedupe: true } });
    const [l] = await srv2.listen();
    cleanups.push(() => srv2.close(500));
    const c3 = await greeted(l!.port, 'three.example');
    cleanups.push(() => c3.close());
    const third = await deliver(c3, body, 'c@spam.example');
    expect(third.raw).toMatch(/^250 /);
    const after = JSON.parse(readFileSync(join(day, `${first.id}.json`), 'utf8')) as MessageMetadata;
    expect(after.duplicates?.count).toBe(2);
    expect(after.duplicates?.arrivals.map((a) => a.client.helo)).toEqual(['two.example', 'three.example']);
    expect(readdirSync(day).filter((f) => f.endsWith('.eml'))).toHaveLength(2);

    // Each arrival was a delivery of its own (a 250 to its own client): counted in the tables.
    const r = await buildReport({ dir: srv.store });
    expect([r.messages, r.stored]).toEqual([4, 2]);
    expect(r.duplicates).toEqual({ messages: 1, arrivals: 2, top: [{ key: first.id, messages: 2 }] });
    expect(r.helo.map((x) => [x.key, x.messages]).sort()).toEqual([['one.example', 1], ['three.example', 1], ['two.example', 2]]);
    expect(r.senderDomains.map((x) => [x.key, x.messages])).toEqual([['spam.example', 4]]);
    // The two arrivals only: `other`, stored later in the same session, is no duplicate (its
    // record does not carry the earlier arrival's DUPLICATE).
    expect(r.verdicts.find((x) => x.key === 'DUPLICATE')?.messages).toBe(2);
    expect(r.days).toEqual([{ day: today(), messages: 4, sessions: 3 }]);
    const text = formatReport(r);
    expect(text).toContain('4 messages (2 stored, 2 duplicate arrivals folded into them)');
    expect(text).toContain('Duplicates (store.dedupe): 1 stored body arrived again 2 times');
  });

  it('concurrent identical bodies: exactly one stored, every other recorded (maildir)', async () => {
    const srv = await server({ store: { dedupe: true, format: 'maildir' } });
    const body = `Subject: burst\r\n\r\n${'x'.repeat(5000)}\r\n`;
    const replies = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const c = await client(srv, `c${i}.example`);
        return deliver(c, body);
      }),
    );
    expect(replies.every((r) => r.raw.startsWith('250 '))).toBe(true);
    const day = join(srv.store, today());
    expect(readdirSync(join(day, 'new'))).toHaveLength(1);
    const recs = records(srv.store);
    expect(recs).toHaveLength(1);
    expect(recs[0]!.duplicates?.count).toBe(7);
    expect(new Set(recs[0]!.duplicates!.arrivals.map((a) => a.id)).size).toBe(7);
  });
});

describe('disk cap', () => {
  it('stop: past maxBytes STORE_FULL, the same 250, nothing written, one log line and metric per transition, /healthz degraded; stores again once space returns', async () => {
    const srv = await server({ store: { maxBytes: 6000, onFull: 'stop' } });
    const states: StoreStateEvent[] = [];
    const verdicts: VerdictEvent[] = [];
    srv.server.on('storeState', (e) => states.push(e));
    srv.server.on('verdict', (v) => verdicts.push(v));
    const metrics = new Metrics({ defaultMetrics: false });
    cleanups.push(metrics.attach(srv.server));
    const c = await client(srv);
    const big = `Subject: big\r\n\r\n${'y'.repeat(3000)}\r\n`;
    let n = 0;
    while (states.length === 0 && n < 10) {
      expect((await deliver(c, big)).raw).toMatch(/^250 2\.0\.0 Ok: queued as /);
      n++;
      await srv.server.stores.settled();
    }
    expect(states).toMatchObject([{ state: 'full', store: srv.store }]);
    expect(states[0]!.reason).toMatch(/store\.maxBytes 6000 reached/);
    const stored = readdirSync(join(srv.store, today())).filter((f) => f.endsWith('.eml'));
    expect(stored).toHaveLength(n);
    // Full: the reply is unchanged, nothing is written, STORE_FULL is the verdict.
    const r = await deliver(c, big);
    expect(r.raw).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]{17}\r\n$/);
    expect(verdicts.filter((v) => v.tag === 'STORE_FULL').map((v) => v.details.id)).toEqual([r.id]);
    expect(readdirSync(join(srv.store, today())).filter((f) => f.endsWith('.eml') || f.startsWith('.tmp-'))).toHaveLength(n);
    expect(await metrics.text()).toMatch(/fakemx_store_full\{store="[^"]+"\} 1/);
    const h = await checkHealth(srv.server, false, Date.now());
    expect(h.ok).toBe(true);
    expect(h.body.status).toBe('degraded');
    expect(h.body.reason).toMatch(/full: store\.maxBytes/);
    // The session goes on.
    expect((await c.cmd('NOOP')).code).toBe(250);
    // Space returns: an operator deletes the day; within the re-check the store takes messages again.
    rmSync(join(srv.store, today()), { recursive: true });
    for (let i = 0; i < 80 && states.length < 2; i++) await new Promise((res) => setTimeout(res, 100));
    expect(states.map((s) => s.state)).toEqual(['full', 'ok']);
    expect(await metrics.text()).toMatch(/fakemx_store_full\{store="[^"]+"\} 0/);
    const back = await deliver(await client(srv), 'Subject: back\r\n\r\nstored again\r\n');
    expect(existsSync(join(srv.store, today(), `${back.id}.eml`))).toBe(true);
    expect((await checkHealth(srv.server, false, Date.now())).body.status).toBe('ok');
  }, 20_000);

  it('prune: whole oldest days deleted down to the low-water mark, today kept, a log line per day; maildir', async () => {
    const srv0 = await server({ store: { format: 'maildir' } });
    const root = srv0.store;
    await srv0.server.close(200);
    // Three old days of 4000 octets each, in the Maildir layout.
    for (const d of ['2020-01-01', '2020-01-02', '2020-01-03']) {
      mkdirSync(join(root, d, 'new'), { recursive: true });
      writeFileSync(join(root, d, 'new', 'old'), 'z'.repeat(4000));
    }
    const srv = createServerOn(root, { store: { format: 'maildir', maxBytes: 10_000, onFull: 'prune' } });
    const pruned: string[] = [];
    const states: StoreStateEvent[] = [];
    srv.on('storePruned', (e) => pruned.push(e.day));
    srv.on('storeState', (e) => states.push(e));
    const [l] = await srv.listen();
    cleanups.push(() => srv.close(500));
    await srv.stores.settled();
    // 12,000 > 10,000: the oldest go until <= 9,000 (one day is enough).
    expect(pruned).toEqual(['2020-01-01']);
    expect(readdirSync(root).sort()).toEqual(['2020-01-02', '2020-01-03']);
    expect(states).toEqual([]);
    const c = await greeted(l!.port);
    cleanups.push(() => c.close());
    const r = await deliver(c, `Subject: p\r\n\r\n${'p'.repeat(6000)}\r\n`);
    expect(r.raw).toMatch(/^250 /);
    await srv.stores.settled();
    // Today's message brings it over again: both old days go, today's is never touched.
    expect(pruned).toEqual(['2020-01-01', '2020-01-02', '2020-01-03']);
    expect(readdirSync(root)).toEqual([today()]);
    expect(readdirSync(join(root, today(), 'new'))).toHaveLength(1);
    expect(srv.stores.status()[0]!.full).toBe(false);
  });

  it('minFreeBytes beyond the filesystem: full from the start, nothing stored, still serving', async () => {
    const srv = await server({ store: { minFreeBytes: Number.MAX_SAFE_INTEGER } });
    await srv.server.stores.settled();
    expect(srv.server.stores.status()[0]).toMatchObject({ full: true });
    const c = await client(srv);
    const r = await deliver(c, 'Subject: f\r\n\r\nnot stored\r\n');
    expect(r.raw).toMatch(/^250 2\.0\.0 Ok: queued as /);
    expect(readdirSync(srv.store)).toEqual([]);
    expect((await c.cmd('QUIT')).code).toBe(221);
  });
});

import { createServer as createFakemx } from '../../src/server.js';
import { FAST } from '../helpers/server.js';
function createServerOn(store: string, over: Record<string, unknown>) {
  return createFakemx({ config: { ...FAST, storeData: true, storePath: store, ...over } });
}
