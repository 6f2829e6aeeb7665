// Corpus store: trace headers, durable commit, failure leaves nothing, CR/LF never
// reach a header line. Unit level (no sockets); the e2e store tests are in test/smtp.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Corpus, headerValue, rfc5322Date, traceHeaders, type TraceInfo } from '../../src/store/corpus.js';

const trace: TraceInfo = {
  hostName: 'mx.test', sessionId: 'sess1', clientIp: '192.0.2.7', clientPort: 4711, helo: 'bot.example',
  esmtp: true, tls: false, smtputf8: false, mailFrom: 'a@b.example', rcptTo: ['c@d.example'],
};

const meta = {
  version: 1 as const, receivedAt: '', session: 's', listener: 'l',
  client: { ip: '192.0.2.7', port: 1, helo: 'h', esmtp: true }, server: { ip: '127.0.0.1', port: 25, hostName: 'mx.test' },
  tls: null, envelope: { mailFrom: '', rcptTo: [], declaredSize: null, body: null, smtputf8: false },
  timings: { sessionOpenedAt: '', dataStartedAt: '', dataEndedAt: '', dataMs: 0 }, verdicts: [], dns: null, tempfailed: false,
};

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fakemx-corpus-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('trace headers', () => {
  it('Received names HELO, client IP, host, protocol, id, single recipient and date (RFC 5321 §4.4)', () => {
    const h = traceHeaders(trace, 'ID1', new Date('2026-11-22T10:00:00Z'));
    expect(h).toContain('Received: from bot.example ([192.0.2.7])\r\n\tby mx.test (fakemx) with ESMTP id ID1\r\n\tfor <c@d.example>;\r\n\tSun, 22 Nov 2026 10:00:00 +0000\r\n');
    expect(h).toContain('X-FakeMX-Session: sess1\r\n');
    expect(h).toContain('X-FakeMX-Client: 192.0.2.7:4711\r\n');
    expect(h).toContain('X-FakeMX-Helo: bot.example\r\n');
    expect(h).toContain('X-FakeMX-Mail-From: <a@b.example>\r\n');
    expect(h).toContain('X-FakeMX-Rcpt-To: <c@d.example>\r\n');
    expect(h).toContain('X-FakeMX-Received-At: 2026-11-22T10:00:00.000Z\r\n');
  });
  it('no FOR clause with several recipients; one X-FakeMX-Rcpt-To each', () => {
    const h = traceHeaders({ ...trace, rcptTo: ['x@a.example', 'y@a.example'] }, 'ID', new Date());
    expect(h).not.toContain('\tfor <');
    expect(h.match(/X-FakeMX-Rcpt-To:/g)).toHaveLength(2);
  });
  it.each([
    ['ESMTPS', { tls: true }], ['SMTP', { esmtp: false }], ['UTF8SMTP', { smtputf8: true }], ['UTF8SMTPS', { smtputf8: true, tls: true }],
  ])('protocol %s', (proto, over) => {
    expect(traceHeaders({ ...trace, ...over }, 'I', new Date())).toContain(`with ${proto} id`);
  });
  it('IPv6 client as IPv6: literal', () => {
    expect(traceHeaders({ ...trace, clientIp: '2001:db8::1' }, 'I', new Date())).toContain('([IPv6:2001:db8::1])');
  });
  it('CR, LF and controls in client values never start a new header line', () => {
    const h = traceHeaders({ ...trace, helo: 'evil\r\nX-Injected: 1\x00\x1b' }, 'I', new Date());
    expect(h).not.toMatch(/\r\nX-Injected/);
    expect(h.split('\r\n').every((l) => !/[\r\n\x00\x1b]/.test(l))).toBe(true);
    expect(headerValue('a\rb\nc\td')).toBe('a?b?c d');
  });
  it('RFC 5322 date', () => {
    expect(rfc5322Date(new Date('2026-01-05T03:04:05Z'))).toBe('Mon, 5 Jan 2026 03:04:05 +0000');
  });
});

describe('Corpus', () => {
  it('commits .eml and .json under the day directory, no temporaries left', async () => {
    const root = tmp();
    const c = new Corpus(root);
    await c.init();
    const w = c.begin(trace, new Date('2026-11-22T10:00:00Z'));
    w.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    const stored = await w.commit(meta);
    const files = readdirSync(join(root, '2026-11-22')).sort();
    expect(files).toEqual([`${stored.id}.eml`, `${stored.id}.json`]);
    const eml = readFileSync(stored.path, 'latin1');
    expect(eml.endsWith('\r\n\r\nbody\r\n')).toBe(true);
    expect(eml.startsWith('Received: from bot.example')).toBe(true);
    const j = JSON.parse(readFileSync(stored.path.replace('.eml', '.json'), 'utf8'));
    expect(j.id).toBe(stored.id);
    expect(j.file).toBe(`2026-11-22/${stored.id}.eml`);
    expect(j.sizes.body).toBe(20);
    expect(j.sizes.file).toBe(Buffer.byteLength(eml, 'latin1'));
  });

  it('a large body streams through in chunks', async () => {
    const root = tmp();
    const c = new Corpus(root);
    const w = c.begin(trace);
    const chunk = Buffer.alloc(100_000, 0x61);
    for (let i = 0; i < 30; i++) {
      const p = w.write(chunk);
      if (p) await p;
    }
    const s = await w.commit(meta);
    expect(s.metadata.sizes.body).toBe(3_000_000);
  });

  it('abort removes the temporary file', async () => {
    const root = tmp();
    const c = new Corpus(root);
    const w = c.begin(trace);
    w.write(Buffer.from('x'));
    w.abort();
    await new Promise((r) => setTimeout(r, 100));
    const day = readdirSync(root)[0]!;
    expect(readdirSync(join(root, day))).toEqual([]);
  });

  it('an I/O failure throws StoreError and leaves no file', async () => {
    const root = tmp();
    const day = new Date().toISOString().slice(0, 10);
    writeFileSync(join(root, day), 'not a directory'); // mkdir of the day directory fails
    const c = new Corpus(root);
    const w = c.begin(trace);
    w.write(Buffer.from('x'));
    await expect(w.commit(meta)).rejects.toThrow(/open|store/);
    expect(readdirSync(root)).toEqual([day]);
  });

  it('ids are unique and sort by time', async () => {
    const root = tmp();
    mkdirSync(root, { recursive: true });
    const c = new Corpus(root);
    const ids = Array.from({ length: 1000 }, (_, i) => c.begin(trace, new Date(1_700_000_000_000 + i)));
    for (const w of ids) w.abort();
    const sorted = [...ids.map((w) => w.id)].sort();
    expect(new Set(sorted).size).toBe(1000);
    expect(sorted).toEqual(ids.map((w) => w.id));
  });
});

describe('start-up sweep of temporaries left by a crash', () => {
  it('removes .tmp- files in recent day directories once, keeps messages', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fakemx-sweep-'));
    mkdirSync(join(root, '2026-11-27'));
    writeFileSync(join(root, '2026-11-27', '.tmp-a.eml'), 'half');
    writeFileSync(join(root, '2026-11-27', '.tmp-a.json'), '{');
    writeFileSync(join(root, '2026-11-27', 'b.eml'), 'whole');
    const c = new Corpus(root);
    expect(await c.init()).toBe(2);
    expect(readdirSync(join(root, '2026-11-27'))).toEqual(['b.eml']);
    writeFileSync(join(root, '2026-11-27', '.tmp-c.eml'), 'in flight');
    expect(await c.init()).toBe(0); // a reload must never touch in-flight files
    expect(readdirSync(join(root, '2026-11-27')).sort()).toEqual(['.tmp-c.eml', 'b.eml']);
  });
});

describe('GroupSync (directory fsync group commit)', () => {
  it('callers during a running sync share the next one, each gets a sync started after it asked', async () => {
    const { GroupSync } = await import('../../src/store/corpus.js');
    const started: number[] = [];
    const finish: (() => void)[] = [];
    const g = new GroupSync(() => {
      started.push(started.length);
      return new Promise<void>((r) => finish.push(r));
    });
    const a = g.request(); // starts sync 0
    const b = g.request(); // waits for sync 1
    const c = g.request(); // shares sync 1
    expect(started).toEqual([0]);
    finish[0]!();
    await a;
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual([0, 1]);
    let bDone = false;
    void b.then(() => (bDone = true));
    await new Promise((r) => setImmediate(r));
    expect(bDone).toBe(false);
    finish[1]!();
    await Promise.all([b, c]);
    expect(started).toHaveLength(2);
  });

  it('a failed sync rejects its callers and the next request starts afresh', async () => {
    const { GroupSync } = await import('../../src/store/corpus.js');
    let n = 0;
    const g = new GroupSync(() => (n++ === 0 ? Promise.reject(new Error('EIO')) : Promise.resolve()));
    await expect(g.request()).rejects.toThrow('EIO');
    await expect(g.request()).resolves.toBeUndefined();
  });
});
