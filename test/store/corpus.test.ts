// Corpus store: trace headers, durable commit, failure leaves nothing, CR/LF never
// reach a header line. Unit level (no sockets); the e2e store tests are in test/smtp.
import { afterEach, describe, expect, it, vi } from 'vitest';
import fs, { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Corpus, fsyncDir, headerValue, rfc5322Date, StoreError, StoreFullError, traceHeaders, type TraceInfo } from '../../src/store/corpus.js';
import type { MessageMetadata } from '../../src/store/metadata.js';

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
  it('IPv6 client as IPv6: literal; in X-FakeMX-Client in brackets, so the port cannot read as part of the address', () => {
    const h = traceHeaders({ ...trace, clientIp: '2001:db8::1', clientPort: 5555 }, 'I', new Date());
    expect(h).toContain('([IPv6:2001:db8::1])');
    expect(h).toContain('X-FakeMX-Client: [2001:db8::1]:5555\r\n');
  });
  // README: client-supplied values have CR, LF and other control characters replaced by "?".
  it.each([
    ['C0 and DEL', 'a\x00b\x1bc\x7fd', 'a?b?c?d'],
    ['NEL (U+0085), a line end to Unicode-aware readers', 'x\u0085y@c', 'x?y@c'],
    ['LINE and PARAGRAPH SEPARATOR', 'a\u2028b\u2029c', 'a?b?c'],
    ['C1 CSI (U+009B), a terminal escape', 'a\u009b31mb', 'a?31mb'],
    ['bidi override (Trojan Source)', 'gro\u202eup', 'gro?up'],
    ['TAB becomes a space', 'a\tb', 'a b'],
    ['other scripts stay', 'jürgen@例え.jp', 'jürgen@例え.jp'],
  ])('header value: %s', (_n, input, out) => {
    expect(headerValue(input)).toBe(out);
    const h = traceHeaders({ ...trace, mailFrom: input, rcptTo: [input], helo: input }, 'I', new Date());
    expect(h).toContain(`X-FakeMX-Mail-From: <${out}>\r\n`);
    expect(h).toContain(`X-FakeMX-Rcpt-To: <${out}>\r\n`);
    expect(h).toContain(`X-FakeMX-Helo: ${out}\r\n`);
  });
  it('CR, LF and controls in client values never start a new header line', () => {
    const h = traceHeaders({ ...trace, helo: 'evil\r\nX-Injected: 1\x00\x1b' }, 'I', new Date());
    expect(h).not.toMatch(/\r\nX-Injected/);
    expect(h.split('\r\n').every((l) => !/[\r\n\x00\x1b]/.test(l))).toBe(true);
    expect(headerValue('a\rb\nc\td')).toBe('a?b?c d');
  });
  it.each([
    ['under the limit: whole', 'x'.repeat(997), 998, 997],
    ['at the limit: whole', 'x'.repeat(998), 998, 998],
    ['past the limit: cut to it (RFC 5322 §2.1.1 line length)', 'x'.repeat(2000), 998, 998],
    ['a shorter limit', 'abcdef', 4, 4],
  ] as const)('headerValue length: %s', (_n, input, max, len) => {
    expect(headerValue(input, max)).toBe(input.slice(0, len));
  });
  it('RFC 5322 date', () => {
    expect(rfc5322Date(new Date('2026-01-05T03:04:05Z'))).toBe('Mon, 5 Jan 2026 03:04:05 +0000');
  });
});

describe('Corpus', () => {
  it('the record and its journal line keep client text terminal-safe (\\u escapes) and parse to it unchanged', async () => {
    const root = tmp();
    const c = new Corpus(root);
    await c.init();
    const helo = 'bot\u0085x\u2028y\u202ez\u009b31m';
    const w = c.begin(trace, new Date('2026-11-22T10:00:00Z'));
    void w.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    const stored = await w.commit({ ...meta, client: { ...meta.client, helo } });
    const raw = readFileSync(stored.path.replace('.eml', '.json'), 'utf8');
    const journal = readFileSync(join(root, '2026-11-22', '.journal'), 'utf8');
    for (const text of [raw, journal]) expect(text).not.toMatch(/[\u0080-\u009f\u2028\u2029\u202a-\u202e]/);
    expect((JSON.parse(raw) as MessageMetadata).client.helo).toBe(helo);
    expect(journal).toContain(raw);
  });

  it('commits .eml and .json under the day directory, no temporaries left', async () => {
    const root = tmp();
    const c = new Corpus(root);
    await c.init();
    const w = c.begin(trace, new Date('2026-11-22T10:00:00Z'));
    void w.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    const stored = await w.commit(meta);
    const files = readdirSync(join(root, '2026-11-22')).sort();
    expect(files).toEqual(['.journal', `${stored.id}.eml`, `${stored.id}.json`]);
    const eml = readFileSync(stored.path, 'latin1');
    expect(eml.endsWith('\r\n\r\nbody\r\n')).toBe(true);
    expect(eml.startsWith('Received: from bot.example')).toBe(true);
    const j = JSON.parse(readFileSync(stored.path.replace('.eml', '.json'), 'utf8')) as MessageMetadata;
    expect(j.id).toBe(stored.id);
    expect(j.file).toBe(`2026-11-22/${stored.id}.eml`);
    expect(j.sizes.body).toBe(20);
    expect(j.sizes.file).toBe(Buffer.byteLength(eml, 'latin1'));
  });

  it('the store filling up while a message comes in: commit throws StoreFullError and keeps nothing of it', async () => {
    const root = tmp();
    const c = new Corpus(root);
    await c.init();
    let full: string | null = null;
    const added: number[] = [];
    c.space = { fullReason: () => full, added: (_d, n) => void added.push(n) };
    const w = c.begin(trace, new Date('2026-11-22T10:00:00Z'));
    void w.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    full = 'store.maxBytes 1 reached';
    const e = await w.commit(meta).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StoreFullError);
    expect((e as StoreFullError).reason).toBe('store.maxBytes 1 reached');
    expect(readdirSync(join(root, '2026-11-22')).filter((n) => !n.startsWith('.journal'))).toEqual([]);
    expect(added).toEqual([]);
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

  it('a body in one-octet reads reaches the disk byte-exact in a few buffers, not one per read', async () => {
    const root = tmp();
    const c = new Corpus(root);
    const w = c.begin(trace);
    const body = Buffer.from('x'.repeat(200_000) + '\r\n');
    const writev = vi.spyOn(fs, 'writev');
    try {
      // Buffer.alloc: each read with a backing store of its own, as a socket read has.
      for (const o of body) {
        const p = w.write(Buffer.alloc(1, o));
        if (p) await p;
      }
      const s = await w.commit(meta);
      expect(readFileSync(s.path).subarray(-body.length).equals(body)).toBe(true);
      let iovecs = 0;
      for (const call of writev.mock.calls) iovecs += (call[1] as Buffer[]).length;
      // Each queued Buffer costs ~100+ octets beyond its own: 200,000 of them held ~20 MB for 200 KB.
      expect(iovecs).toBeLessThan(100);
    } finally {
      writev.mockRestore();
    }
  });

  it('abort removes the temporary file', async () => {
    const root = tmp();
    const c = new Corpus(root);
    const w = c.begin(trace);
    void w.write(Buffer.from('x'));
    w.abort();
    // Removed once its open settles (slow on a busy machine): wait, bounded, for an empty day directory.
    const settled = () => readdirSync(root).length === 1 && readdirSync(join(root, readdirSync(root)[0]!)).length === 0;
    for (const end = Date.now() + 5000; !settled() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    const day = readdirSync(root)[0]!;
    expect(readdirSync(join(root, day))).toEqual([]);
  });

  it('an I/O failure throws StoreError and leaves no file', async () => {
    const root = tmp();
    const day = new Date().toISOString().slice(0, 10);
    writeFileSync(join(root, day), 'not a directory'); // mkdir of the day directory fails
    const c = new Corpus(root);
    const w = c.begin(trace);
    void w.write(Buffer.from('x'));
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

describe('store throughput: one fsync of the message per message, the rest group-committed', () => {
  // The file operations themselves, counted on node:fs (the store calls them there, raw
  // descriptors and callbacks): per message one open of its temporary, one writev (header and
  // body), one fdatasync, one rename, and its record file written once (open, writev); per
  // group one journal open, writev and fdatasync. No fsync of a file, no record temporary.
  it.each(['eml', 'maildir'] as const)('%s: 40 concurrent messages cost 40 fdatasyncs and 40 renames, plus a few journal and directory syncs', async (format) => {
    const { default: fs } = await import('node:fs');
    const { vi } = await import('vitest');
    const root = tmp();
    const dirSyncs: string[] = [];
    // A directory fsync takes a while, as on a disk: requests meanwhile share the next one.
    const c = new Corpus(root, { format, syncDir: (d) => new Promise((r) => setTimeout(() => r(void dirSyncs.push(d)), 5)) });
    await c.init();
    // Warm the day directory so its creation is not counted.
    await c.begin(trace, new Date('2026-11-22T10:00:00Z')).commit(meta);
    dirSyncs.length = 0;
    const j0 = c.journalFor('2026-11-22').syncs;
    const names = ['open', 'writev', 'write', 'fdatasync', 'fsync', 'rename'] as const;
    const spies = Object.fromEntries(names.map((n) => [n, vi.spyOn(fs, n)])) as unknown as Record<(typeof names)[number], { mock: { calls: unknown[][] }; mockRestore(): void }>;
    try {
      const ws = Array.from({ length: 40 }, () => c.begin(trace, new Date('2026-11-22T10:00:01Z')));
      for (const w of ws) void w.write(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
      const stored = await Promise.all(ws.map((w) => w.commit(meta)));
      const journalSyncs = c.journalFor('2026-11-22').syncs - j0;
      expect(stored).toHaveLength(40);
      expect(journalSyncs).toBeGreaterThanOrEqual(1);
      expect(journalSyncs).toBeLessThanOrEqual(4);
      expect(spies.fsync.mock.calls).toHaveLength(0);
      expect(spies.fdatasync.mock.calls).toHaveLength(40 + journalSyncs);
      expect(spies.rename.mock.calls).toHaveLength(40);
      // Temporaries, record files, one journal open per group.
      expect(spies.open.mock.calls).toHaveLength(80 + journalSyncs);
      expect(spies.writev.mock.calls).toHaveLength(80 + journalSyncs);
      expect(spies.write.mock.calls).toHaveLength(0);
      // One directory sync per group (eml: the day; maildir: new/ and the day).
      expect(dirSyncs.length).toBeLessThanOrEqual(4 * (format === 'maildir' ? 2 : 1));
      // Every record is in the journal, once, and is the text of its <id>.json.
      const journal = readFileSync(join(root, '2026-11-22', '.journal'), 'utf8');
      for (const s of stored) {
        const text = readFileSync(join(root, '2026-11-22', `${s.id}.json`), 'utf8');
        expect(journal.split('\n').filter((l) => l + '\n' === text)).toHaveLength(1);
        expect(readFileSync(s.path).length).toBe(s.metadata.sizes.file);
      }
    } finally {
      for (const sp of Object.values(spies)) sp.mockRestore();
    }
  });
});

describe('group commit: a failure at any step acknowledges nothing and leaves no file in place', () => {
  // Each step of journal.ts fails once, for one message of three committing together; the
  // failing one throws StoreError naming the step, nothing of it is in place (no message file,
  // no record file, no temporary), the others are stored whole.
  const eio = (syscall: string, code = 'EIO') => Object.assign(new Error(`${code}: i/o error, ${syscall}`), { code, syscall });
  const cases: { step: string; fn: 'fdatasync' | 'fsync' | 'rename' | 'open'; match: (args: unknown[]) => boolean; all?: boolean; code?: string }[] = [
    { step: 'fsync', fn: 'fdatasync', match: () => true },
    // A failed fsync of the message is final, whatever its code: never the ENOENT retry.
    { step: 'fsync', fn: 'fdatasync', match: () => true, code: 'ENOENT' },
    { step: 'rename', fn: 'rename', match: (a) => String(a[0]).includes('.tmp-') || String(a[0]).includes('/tmp/') },
    { step: 'metadata', fn: 'open', match: (a) => String(a[0]).endsWith('.json') },
    // The journal fails for the whole group that was writing it: every message of that group.
    { step: 'journal', fn: 'open', match: (a) => String(a[0]).endsWith('.journal'), all: true },
    // The directory fsync after the renames (fsync is used for nothing else): the group's
    // messages were in place, and are removed again.
    { step: 'dirsync', fn: 'fsync', match: () => true, all: true },
  ];
  for (const format of ['eml', 'maildir'] as const) {
    for (const c of cases) {
      it(`${format}: ${c.fn} fails${c.code ? ` with ${c.code}` : ''} (${c.step})`, async () => {
        const { default: fs } = await import('node:fs');
        const { vi } = await import('vitest');
        const root = tmp();
        const corpus = new Corpus(root, { format });
        await corpus.init();
        await corpus.begin(trace, new Date('2026-11-22T10:00:00Z')).commit(meta);
        const real = fs[c.fn] as (...a: unknown[]) => void;
        let failed = false;
        const spy = vi.spyOn(fs, c.fn).mockImplementation((...a: unknown[]) => {
          if (!failed && c.match(a)) {
            failed = true;
            const cb = a[a.length - 1] as (e: Error) => void;
            return process.nextTick(() => cb(eio(c.fn, c.code)));
          }
          return real(...a);
        });
        try {
          const ws = Array.from({ length: 3 }, (_, i) => {
            const w = corpus.begin(trace, new Date('2026-11-22T10:00:01Z'));
            void w.write(Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`));
            return w;
          });
          const rs = await Promise.allSettled(ws.map((w) => w.commit(meta)));
          const bad = rs.filter((r) => r.status === 'rejected');
          expect(failed).toBe(true);
          if (c.all) expect(bad.length).toBeGreaterThanOrEqual(1);
          else expect(bad).toHaveLength(1);
          for (const b of bad) {
            const e = b.reason as StoreError;
            expect(e).toBeInstanceOf(StoreError);
            expect([e.step, e.message]).toEqual([c.step, `${c.step}: ${c.code ?? 'EIO'}: i/o error, ${c.fn}`]);
          }
          const day = join(root, '2026-11-22');
          const names = [...readdirSync(day), ...(format === 'maildir' ? readdirSync(join(day, 'new')).map((n) => `new/${n}`) : [])];
          for (const [i, r] of rs.entries()) {
            const id = ws[i]!.id;
            const mine = names.filter((n) => n.includes(id));
            if (r.status === 'fulfilled') expect(mine.sort()).toEqual([`${id}.json`, format === 'eml' ? `${id}.eml` : mine.find((n) => n.startsWith('new/'))!].sort());
            else expect(mine, `${id} left files`).toEqual([]);
          }
          if (format === 'maildir') expect(readdirSync(join(day, 'tmp'))).toEqual([]);
          expect(names.filter((n) => n.startsWith('.tmp-'))).toEqual([]);
        } finally {
          spy.mockRestore();
        }
      });
    }
  }
});

describe('recovery from the journal (records are not fsynced on their own)', () => {
  it.each(['eml', 'maildir'] as const)('%s: a record lost or cut short is written again at start, byte-identical; a record without its message removed; tmp/ and .tmp- swept', async (format) => {
    const root = tmp();
    const at = new Date('2026-11-22T10:00:00Z');
    const c = new Corpus(root, { format });
    await c.init();
    const stored = [];
    for (let i = 0; i < 3; i++) {
      const w = c.begin(trace, at);
      void w.write(Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`));
      stored.push(await w.commit(meta));
    }
    const day = join(root, '2026-11-22');
    const texts = stored.map((s) => readFileSync(join(day, `${s.id}.json`), 'utf8'));
    // What a power cut can leave: a record file empty, one missing, half-written temporaries.
    writeFileSync(join(day, `${stored[0]!.id}.json`), '');
    rmSync(join(day, `${stored[1]!.id}.json`));
    writeFileSync(join(day, '.tmp-0half0000000000.eml'), 'half');
    if (format === 'maildir') writeFileSync(join(day, 'tmp', '1.M1P1Q1R0half0000000001.h'), 'half');
    // A record file whose message was killed before its rename (journal.ts writes both at once).
    writeFileSync(join(day, '0stray0000000000.json'), '{"id":"0stray0000000000"}\n');
    // A torn last journal line (killed mid-append) is skipped.
    writeFileSync(join(day, '.journal'), readFileSync(join(day, '.journal'), 'utf8') + '{"id":"0torn');
    const synced: string[] = [];
    const again = new Corpus(root, { format, syncDir: (d) => (synced.push(d), fsyncDir(d)) });
    expect(await again.init()).toBe(format === 'maildir' ? 2 : 1);
    // The renames and removals of the sweep are made durable: the day directory is fsynced.
    expect(synced).toContain(day);
    stored.forEach((s, i) => expect(readFileSync(join(day, `${s.id}.json`), 'utf8')).toBe(texts[i]));
    expect(readdirSync(day).filter((f) => f.endsWith('.json')).sort()).toEqual(stored.map((s) => `${s.id}.json`).sort());
    if (format === 'maildir') expect(readdirSync(join(day, 'tmp'))).toEqual([]);
    expect(readdirSync(day).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('dedupe: arrivals folded in before a crash are folded in again from the journal', async () => {
    const root = tmp();
    const at = new Date('2026-11-22T10:00:00Z');
    const c = new Corpus(root, { dedupe: true });
    const one = async (client: string) => {
      const w = c.begin(trace, at);
      void w.write(Buffer.from('Subject: same\r\n\r\nsame\r\n'));
      return w.commit({ ...meta, receivedAt: at.toISOString(), client: { ...meta.client, helo: client } });
    };
    const first = await one('a');
    const dup = await one('b');
    expect(dup.duplicateOf).toBe(first.id);
    const json = join(root, '2026-11-22', `${first.id}.json`);
    const full = readFileSync(json, 'utf8');
    expect((JSON.parse(full) as MessageMetadata).duplicates?.count).toBe(1);
    // The rewrite of the record with the arrival never reached the disk.
    const before = { ...(JSON.parse(full) as MessageMetadata) };
    delete before.duplicates;
    writeFileSync(json, JSON.stringify(before) + '\n');
    await new Corpus(root, { dedupe: true }).init();
    expect(readFileSync(json, 'utf8')).toBe(full);
  });
});
