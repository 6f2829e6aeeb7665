// The console without a browser: the live state from server events, the corpus index and
// its filters, and the HTTP side on a real admin listener (security headers, token, cookie,
// Host check, read-only API, raw download headers, page weight). The browser cases are in
// test/interop/console.test.ts.
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { CorpusIndex, subjectOf } from '../../src/console/corpus-index.js';
import { INDEX_SNAPSHOT as SNAPSHOT } from '../../src/store/layout.js';
import { startConsole, type ConsoleRuntime } from '../../src/console/index.js';
import { BUCKET_MS, LiveState, networkOf, TopCounter } from '../../src/console/live.js';
import { cookieValue, CSP, hostAllowed } from '../../src/console/routes.js';
import type { ServerEvents } from '../../src/events.js';
import { startAdmin, type AdminServer } from '../../src/http/admin.js';
import { silentLogger } from '../../src/log/logger.js';
import type { SessionInfo } from '../../src/smtp/hooks.js';
import type { MessageMetadata } from '../../src/store/metadata.js';
import { rawRequest } from '../helpers/http.js';

const tmp = mkdtempSync(join(tmpdir(), 'fakemx-console-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function session(id: string, over: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id, remoteAddress: '192.0.2.7', remotePort: 40000, localAddress: '127.0.0.1', localPort: 25, listener: 'mx', openedAt: Date.now() - 5000,
    helo: undefined, esmtp: false, tls: undefined, mailFrom: undefined, mailParams: undefined, rcptTo: [],
    counts: { commands: 0, errors: 0, noop: 0, vrfy: 0, rcpt: 0, messages: 0, junk: 0, overshoot: 0, deferred: 0 },
    ...over,
  };
}

function meta(id: string, at: string, over: Partial<MessageMetadata> = {}): MessageMetadata {
  return {
    version: 1, id, file: `${at.slice(0, 10)}/${id}.eml`, receivedAt: at, session: 's' + id, listener: 'mx',
    client: { ip: '192.0.2.7', port: 4000, helo: 'bot.example', esmtp: true }, server: { ip: '127.0.0.1', port: 25, hostName: 'mx' }, tls: null,
    envelope: { mailFrom: 'a@spam.example', rcptTo: ['u@example.com'], declaredSize: null, body: null, smtputf8: false },
    sizes: { body: 10, headers: 10, file: 20 }, timings: { sessionOpenedAt: at, dataStartedAt: at, dataEndedAt: at, dataMs: 0 },
    verdicts: [], dns: null, tempfailed: false, ...over,
  };
}

/** Writes a message the way the store lays it out. */
function store(root: string, m: MessageMetadata, subject: string): void {
  mkdirSync(join(root, m.receivedAt.slice(0, 10)), { recursive: true });
  writeFileSync(join(root, m.file), `Received: from x\r\nSubject: ${subject}\r\nFrom: a@spam.example\r\n\r\nbody of ${m.id}\r\n`);
  writeFileSync(join(root, m.file.replace(/\.eml$/, '.json')), JSON.stringify(m));
}

describe('LiveState', () => {
  it('lists open sessions with phase and verdicts, counts per 10 s bucket, forgets closed ones', () => {
    let now = 1_000_000_000_000;
    const live = new LiveState(() => now);
    const ev = new EventEmitter<ServerEvents>();
    const detach = live.attach(ev);
    const s = session('a1', { helo: 'bot.example', esmtp: true, mailFrom: { address: 'x@spam.example', local: 'x', domain: 'spam.example', utf8: false } });
    ev.emit('connection', { listener: 'mx', outcome: 'accepted' });
    ev.emit('connect', s);
    ev.emit('verdict', { tag: 'PREGREET', session: s, client: '[192.0.2.7]:40000', details: {} });
    ev.emit('verdict', { tag: 'TARPIT', session: s, client: '[192.0.2.7]:40000', details: { delayMs: 1500 } });
    let snap = live.live();
    expect(snap.open).toBe(1);
    expect(snap.sessions[0]).toMatchObject({ id: 'a1', client: '192.0.2.7:40000', phase: 'mail', helo: 'bot.example', mailFrom: 'x@spam.example', verdicts: ['PREGREET', 'TARPIT'] });
    expect(snap.series.connections.at(-1)).toBe(1);
    expect(snap.series.verdicts.PREGREET!.at(-1)).toBe(1);
    expect(snap.series.connections).toHaveLength(360);
    now += BUCKET_MS * 3;
    ev.emit('messageResult', { session: s, result: 'stored', bytes: 10 });
    ev.emit('disconnect', s, { reason: 'quit', durationMs: 1 });
    snap = live.live();
    expect(snap.open).toBe(0);
    expect(snap.series.connections.slice(-4)).toEqual([1, 0, 0, 0]);
    expect(snap.series.messages.at(-1)).toBe(1);
    // An hour later the old buckets are gone, the totals stay.
    now += BUCKET_MS * 400;
    snap = live.live();
    expect(snap.series.connections.every((x) => x === 0)).toBe(true);
    expect(snap.totals).toMatchObject({ connections: 1, messages: 1, verdicts: { PREGREET: 1, TARPIT: 1 } });
    const c = live.caught();
    expect(c.networks[0]).toMatchObject({ key: '192.0.2.0/24', count: 2 });
    expect(c.helos[0]).toMatchObject({ key: 'bot.example', count: 1 });
    expect(c.senderDomains[0]).toMatchObject({ key: 'spam.example', tags: { stored: 1 } });
    expect(c.tarpit).toMatchObject({ verdicts: 1, totalMs: 1500 });
    detach();
    ev.emit('connect', session('b2'));
    expect(live.live().open).toBe(0);
    expect(live.handlerFailures).toBe(0);
  });

  it('lists the 200 oldest open sessions and counts them all; a verdict reaches the right one', () => {
    const live = new LiveState();
    const ss = Array.from({ length: 250 }, (_, i) => session(`s${i}`));
    for (const s of ss) live.onConnect(s);
    live.onVerdict({ tag: 'PREGREET', session: ss[120]!, client: '[192.0.2.7]:40000', details: {} });
    live.onDisconnect(ss[0]!);
    const snap = live.live();
    expect(snap.open).toBe(249);
    expect(snap.sessions).toHaveLength(200);
    expect(snap.sessions[0]!.id).toBe('s1');
    expect(snap.sessions.at(-1)!.id).toBe('s200');
    expect(snap.sessions.find((x) => x.id === 's120')!.verdicts).toEqual(['PREGREET']);
    expect(snap.sessions.filter((x) => x.verdicts.length > 0)).toHaveLength(1);
  });

  it('AUTH attempts of the honeypot: user names by mechanism, clients', () => {
    const live = new LiveState();
    const s = session('au1');
    live.onVerdict({ tag: 'AUTH', session: s, client: '[192.0.2.7]:40000', details: { mechanism: 'PLAIN', user: 'admin', tls: false } });
    live.onVerdict({ tag: 'AUTH', session: s, client: '[192.0.2.7]:40000', details: { mechanism: 'LOGIN', user: 'admin', tls: false } });
    live.onVerdict({ tag: 'AUTH', session: s, client: '[192.0.2.7]:40000', details: { mechanism: 'PLAIN', user: '', tls: false } });
    const a = live.caught().auth;
    expect(a.attempts).toBe(3);
    expect(a.users[0]).toMatchObject({ key: 'admin', count: 2, tags: { PLAIN: 1, LOGIN: 1 } });
    expect(a.users[1]).toMatchObject({ key: '(empty)', count: 1 });
    expect(a.clients[0]).toMatchObject({ key: '192.0.2.7', count: 3 });
  });

  it('DNS list zones: lookups, hits, errors and health', () => {
    const live = new LiveState();
    for (let i = 0; i < 4; i++) live.onDnsQuery({ zone: 'bl.example', durationMs: 10, cacheHit: i === 3 });
    live.onDnsQuery({ zone: 'dead.example', durationMs: 2000, cacheHit: false, error: 'timeout' });
    live.onVerdict({ tag: 'DNSBL', session: null, client: '[192.0.2.1]:1', details: { zones: ['bl.example'] } });
    const z = live.caught().zones;
    expect(z[0]).toMatchObject({ zone: 'bl.example', queries: 3, cacheHits: 1, hits: 1, hitRate: 0.25, health: 'ok' });
    expect(z[1]).toMatchObject({ zone: 'dead.example', errors: { timeout: 1 }, health: 'failing', check: null });
    // The engine's own health joins each zone; a zone in use that nobody asked yet is listed too.
    const check = { zone: 'bl.example', state: 'failing' as const, checkedAt: 1, reason: '127.0.0.2 is not listed', skipped: true, badAnswers: 2 };
    const idle = { zone: 'idle.example', state: 'unchecked' as const, checkedAt: null, reason: null, skipped: false, badAnswers: 0 };
    const joined = live.caught(20, [check, idle]).zones;
    expect(joined.find((x) => x.zone === 'bl.example')).toMatchObject({ health: 'ok', check });
    expect(joined.find((x) => x.zone === 'idle.example')).toMatchObject({ queries: 0, health: 'unused', check: idle });
  });

  it('networks as text; top tables stay bounded', () => {
    expect(networkOf('203.0.113.9', 64)).toBe('203.0.113.0/24');
    expect(networkOf('2001:db8:1:2:3:4:5:6', 64)).toBe('2001:db8:1:2::/64');
    // RFC 5952 §4.2.3: of two equally long runs of zero groups, the first is shortened.
    expect(networkOf('0:0:1:0:0:1:1:1', 128)).toBe('::1:0:0:1:1:1/128');
    expect(networkOf('2001:db8::1', 200)).toBe('2001:db8::1/128');
    expect(networkOf('2001:db8::1', 48)).toBe('2001:db8::/48');
    const t = new TopCounter(100);
    for (let i = 0; i < 1000; i++) t.add(`k${i}`);
    for (let i = 0; i < 5; i++) t.add('hot');
    expect(t.size).toBeLessThanOrEqual(100);
    expect(t.top(1)[0]).toMatchObject({ key: 'hot', count: 5 });
  });
});

describe('CorpusIndex', () => {
  it('scans the store, filters newest first, pages, takes new messages, forgets a removed one', async () => {
    const root = join(tmp, 'idx');
    store(root, meta('m1', '2026-01-01T10:00:00.000Z'), 'first =?UTF-8?B?w6nDqQ==?=');
    store(root, meta('m2', '2026-01-02T10:00:00.000Z', { client: { ip: '198.51.100.20', port: 1, helo: 'Other.Example', esmtp: false }, verdicts: [{ tag: 'PREGREET', atMs: 1 }, { tag: 'PREGREET', atMs: 2 }] }), 'second');
    store(root, meta('m3', '2026-01-02T11:00:00.000Z', { envelope: { mailFrom: '', rcptTo: ['x@a.example', 'y@b.example'], declaredSize: null, body: null, smtputf8: false } }), 'third');
    writeFileSync(join(root, '2026-01-02', '.tmp-zz.json'), '{');
    const idx = new CorpusIndex();
    await idx.setRoots([root]);
    expect(idx.size).toBe(3);
    expect(idx.query({}).items.map((i) => i.id)).toEqual(['m3', 'm2', 'm1']);
    expect(idx.query({}).items[2]!.subject).toBe('first éé');
    expect(idx.query({ day: '2026-01-02' }).total).toBe(2);
    expect(idx.query({ verdict: 'pregreet' }).items.map((i) => i.id)).toEqual(['m2']);
    expect(idx.query({ verdict: 'PREGREET' }).items[0]!.verdicts).toEqual(['PREGREET']);
    expect(idx.query({ client: '198.51.100.0/24' }).items.map((i) => i.id)).toEqual(['m2']);
    expect(idx.query({ client: '192.0.2' }).total).toBe(2);
    expect(idx.query({ helo: 'other' }).total).toBe(1);
    expect(idx.query({ rcpt: 'B.EXAMPLE' }).items.map((i) => i.id)).toEqual(['m3']);
    expect(idx.query({ subject: 'ÉÉ'.toLowerCase() }).total).toBe(1);
    expect(idx.query({ from: 'spam' }).total).toBe(2);
    expect(idx.query({ offset: 1, limit: 1 })).toMatchObject({ total: 3, offset: 1, limit: 1, items: [{ id: 'm2' }] });
    expect(() => idx.query({ client: '10.0.0.0/99' })).toThrow();
    expect(idx.days()).toEqual([{ day: '2026-01-02', count: 2 }, { day: '2026-01-01', count: 1 }]);

    const m4 = meta('m4', '2026-01-03T00:00:00.000Z');
    store(root, m4, 'fourth');
    idx.add({ session: session('s4'), metadata: m4, path: join(root, m4.file) });
    // Its head is read in the background: wait for it (bounded), not for a fixed 50 ms a loaded machine may not keep.
    for (let i = 0; i < 300 && idx.query({ limit: 1 }).items[0]?.subject !== 'fourth'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(idx.query({ limit: 1 }).items[0]).toMatchObject({ id: 'm4', subject: 'fourth' });
    idx.remove('m2');
    expect(idx.query({}).total).toBe(3);
    expect(idx.removeDay(root, '2026-01-02')).toBe(1);
    expect(idx.removeDay(join(tmp, 'elsewhere'), '2026-01-01')).toBe(0);
    expect(idx.query({}).items.map((i) => i.id)).toEqual(['m4', 'm1']);
    expect(idx.get('m3')).toBeUndefined();
    await idx.setRoots([]);
    expect(idx.size).toBe(0);
  });

  it('a snapshot taken right after a message arrived keeps its subject (the stop does not outrun the read of its head)', async () => {
    const root = join(tmp, 'snap-live');
    const a = new CorpusIndex();
    await a.setRoots([root]);
    const m = meta('l1', '2026-04-01T10:00:00.000Z');
    store(root, m, 'just arrived');
    a.add({ session: session('sl'), metadata: m, path: join(root, m.file) });
    expect(await a.saveSnapshot(root)).toBe(true);
    const b = new CorpusIndex();
    await b.setRoots([root]);
    expect(b.fromSnapshot).toBe(1);
    expect(b.query({ subject: 'arrived' }).items.map((i) => [i.id, i.subject])).toEqual([['l1', 'just arrived']]);
  });

  it('a snapshot makes the next start read only the days changed since; a torn or foreign one is ignored', async () => {
    const root = join(tmp, 'snap');
    store(root, meta('s1', '2026-03-01T10:00:00.000Z'), 'one');
    store(root, meta('s2', '2026-03-02T10:00:00.000Z'), 'two');
    store(root, meta('s3', '2026-03-03T10:00:00.000Z'), 'three');
    store(root, meta('s4', '2026-03-03T11:00:00.000Z'), 'four');
    // The day directories were last changed an hour ago.
    const old = new Date(Date.now() - 3_600_000);
    for (const d of ['2026-03-01', '2026-03-02', '2026-03-03']) utimesSync(join(root, d), old, old);
    const a = new CorpusIndex();
    await a.setRoots([root]);
    expect(a.recordsRead).toBe(4);
    expect(a.changedRoots).toEqual([root]);
    expect(await a.saveSnapshot(root)).toBe(true);
    expect(a.changedRoots).toEqual([]);
    expect(readdirSync(root).filter((n) => n.startsWith('.console-index'))).toEqual([SNAPSHOT]);
    // A start taken wholly from the snapshot leaves it as it is: nothing to write again.
    const same = new CorpusIndex();
    await same.setRoots([root]);
    expect([same.recordsRead, same.fromSnapshot]).toEqual([0, 4]);
    expect(same.changedRoots).toEqual([]);

    // While stopped: a message arrives on day 2, one of day 3 is deleted, a new day begins.
    store(root, meta('s5', '2026-03-02T12:00:00.000Z'), 'five');
    rmSync(join(root, '2026-03-03', 's4.json'));
    store(root, meta('s6', '2026-03-04T09:00:00.000Z'), 'six');
    const b = new CorpusIndex();
    await b.setRoots([root]);
    // Read: s5 and s6 only; day 1 (untouched) and the rest of days 2 and 3 came from the snapshot.
    expect(b.recordsRead).toBe(2);
    expect(b.fromSnapshot).toBe(3);
    expect(b.daysListed).toBe(3);
    expect(b.query({}).items.map((i) => [i.id, i.subject])).toEqual([['s6', 'six'], ['s3', 'three'], ['s5', 'five'], ['s2', 'two'], ['s1', 'one']]);
    expect(b.query({ subject: 'ONE' }).items.map((i) => i.id)).toEqual(['s1']);
    expect(b.get('s1')?.path).toBe(join(root, '2026-03-01', 's1.eml'));

    // A torn snapshot (cut short) and one of another store path are not used.
    const full = readFileSync(join(root, SNAPSHOT), 'utf8');
    writeFileSync(join(root, SNAPSHOT), full.slice(0, full.lastIndexOf('\n', full.length - 2) + 1));
    const c = new CorpusIndex();
    await c.setRoots([root]);
    expect(c.recordsRead).toBe(5);
    writeFileSync(join(root, SNAPSHOT), full.replace(JSON.stringify(root), JSON.stringify('/elsewhere')));
    const d = new CorpusIndex();
    await d.setRoots([root]);
    expect(d.recordsRead).toBe(5);
    expect(d.size).toBe(5);
  });

  it('a snapshot line over the length limit is skipped, not held: garbage around the days leaves them counted; an over-long day refuses the snapshot', async () => {
    const root = join(tmp, 'snap-long');
    store(root, meta('g1', '2026-04-01T10:00:00.000Z'), 'first');
    store(root, meta('g2', '2026-04-02T10:00:00.000Z'), 'second');
    store(root, meta('g3', '2026-04-02T11:00:00.000Z'), 'third');
    const old = new Date(Date.now() - 3_600_000);
    for (const d of ['2026-04-01', '2026-04-02']) utimesSync(join(root, d), old, old);
    const a = new CorpusIndex();
    await a.setRoots([root]);
    expect(await a.saveSnapshot(root)).toBe(true);
    const [head, ...days] = readFileSync(join(root, SNAPSHOT), 'utf8').split('\n');
    const MiB = 1024 * 1024;
    // Garbage of 3 MiB less a little, so the day line after it straddles the 1 MiB read boundary
    // at 3 MiB; and an over-long line with no newline at the very end.
    const garbage = 'x'.repeat(3 * MiB - head!.length - 2 - 20);
    writeFileSync(join(root, SNAPSHOT), [head, garbage, ...days.filter(Boolean), 'y'.repeat(200_000)].join('\n'));
    const b = new CorpusIndex({ snapshotLineMax: 64 * 1024 });
    await b.setRoots([root]);
    expect([b.recordsRead, b.fromSnapshot]).toEqual([0, 3]);
    expect(b.query({ subject: 'third' }).items.map((i) => i.id)).toEqual(['g3']);

    // The same snapshot with a limit below its day lines: those are skipped, the day count
    // no longer matches, and every record is read as without a snapshot.
    const c = new CorpusIndex({ snapshotLineMax: Math.min(...days.filter(Boolean).map((l) => l.length)) - 1 });
    await c.setRoots([root]);
    expect([c.recordsRead, c.fromSnapshot]).toEqual([3, 0]);
    // An over-long first line (no head to check) is no snapshot either.
    writeFileSync(join(root, SNAPSHOT), [garbage, head, ...days].join('\n'));
    const d = new CorpusIndex({ snapshotLineMax: 64 * 1024 });
    await d.setRoots([root]);
    expect([d.recordsRead, d.fromSnapshot]).toEqual([3, 0]);
  });

  describe('a day past the snapshot line limit is written on several lines', () => {
    // A small limit stands for SNAPSHOT_LINE_MAX (128 MiB): the big day has 40 entries (about
    // 8 KiB on one line), some received at the same millisecond so their order must survive the
    // split. Version 1 wrote it on one line, which the reader skipped: the day count then refused
    // the whole snapshot, every day was read again, and the snapshot was rewritten the same way.
    const LIMIT = 2048;
    const BIG = '2026-05-01';
    type Edit = (lines: string[]) => string[];
    /** The lines of the big day (the head is line 0). */
    const bigLines = (lines: string[]) => lines.flatMap((l, i) => (l.startsWith(`{"day":"${BIG}"`) ? [i] : []));
    it.each<[string, { readMax: number; edit?: Edit; want: [read: number, fromSnapshot: number] }]>([
      ['every line under the limit: read back whole, no record read', { readMax: LIMIT, want: [0, 42] }],
      ['a line of the day lost (torn mid-day): the day count is short, the snapshot refused', { readMax: LIMIT, edit: (l) => l.filter((_, i) => i !== bigLines(l)[1]), want: [42, 0] }],
      ['a reader with a smaller limit skips a line of the day: refused', { readMax: 600, want: [42, 0] }],
      [
        'version 1 (the day on one line) is still read, under a limit it fits',
        {
          readMax: 64 * 1024,
          edit: (l) => {
            const head = { ...(JSON.parse(l[0]!) as object), v: 1 };
            const byDay = new Map<string, unknown[]>();
            for (const line of l.slice(1).filter(Boolean)) {
              const d = JSON.parse(line) as { day: string; e: unknown[] };
              byDay.set(d.day, [...(byDay.get(d.day) ?? []), ...d.e]);
            }
            return [JSON.stringify(head), ...[...byDay].map(([day, e]) => JSON.stringify({ day, e })), ''];
          },
          want: [0, 42],
        },
      ],
    ])('%s', async (name, { readMax, edit, want }) => {
      const root = join(tmp, 'snap-big', name.replace(/\W+/g, '-'));
      for (let i = 0; i < 40; i++) store(root, meta(`b${i}`, `${BIG}T10:00:0${Math.floor(i / 8)}.000Z`, { client: { ip: '192.0.2.7', port: 4000, helo: `bot-${i}.example`, esmtp: true } }), `big day ${i}`);
      store(root, meta('o1', '2026-05-02T10:00:00.000Z'), 'other one');
      store(root, meta('o2', '2026-05-02T11:00:00.000Z'), 'other two');
      const old = new Date(Date.now() - 3_600_000);
      for (const d of [BIG, '2026-05-02']) utimesSync(join(root, d), old, old);
      const w = new CorpusIndex({ snapshotLineMax: LIMIT });
      await w.setRoots([root]);
      expect(await w.saveSnapshot(root)).toBe(true);
      const lines = readFileSync(join(root, SNAPSHOT), 'utf8').split('\n');
      expect(lines.every((l) => Buffer.byteLength(l) <= LIMIT)).toBe(true);
      expect(bigLines(lines).length).toBeGreaterThan(2);
      if (edit) writeFileSync(join(root, SNAPSHOT), edit(lines).join('\n'));
      const r = new CorpusIndex({ snapshotLineMax: readMax });
      await r.setRoots([root]);
      expect([r.recordsRead, r.fromSnapshot]).toEqual(want);
      const list = (x: CorpusIndex) => x.query({ limit: 100 }).items.map((i) => [i.id, i.helo, i.subject].join(' '));
      // From the snapshot, ties keep the order they were saved in; records read again come in
      // the order their reads finish, so there only the same entries are asked for.
      if (want[0] === 0) expect(list(r)).toEqual(list(w));
      else expect(list(r).sort()).toEqual(list(w).sort());
    });
  });

  it('subjectOf: unfolded, decoded, controls out, only from the header block', () => {
    expect(subjectOf('A: b\r\nSubject: one\r\n two\r\n\r\nSubject: body')).toBe('one two');
    expect(subjectOf('Subject: =?ISO-8859-1?Q?caf=E9?=\r\n\r\n')).toBe('café');
    expect(subjectOf('X: y\r\n\r\nSubject: not a header')).toBe('');
    expect(subjectOf('Subject: a\x1bb\r\n\r\n')).toBe('a b');
  });
});

describe('config', () => {
  const load = (http: Record<string, unknown>) => loadConfig({ overrides: { listenPort: 0, storePath: tmp, http }, env: {} });
  it('the console off loopback needs http.token; the console needs http.port', () => {
    expect(() => load({ console: true, port: 8025, address: '0.0.0.0' })).toThrow(ConfigError);
    try {
      load({ console: true, port: 8025, address: '192.0.2.1' });
    } catch (e) {
      expect((e as ConfigError).key).toBe('http.token');
    }
    try {
      load({ console: true, port: 0 });
    } catch (e) {
      expect((e as ConfigError).key).toBe('http.port');
    }
    expect(load({ console: true, port: 8025, address: '0.0.0.0', token: 't' }).config.http.console).toBe(true);
    expect(load({ console: true, port: 8025, address: '::1' }).config.http.token).toBe('');
    expect(load({ console: true, port: 8025, address: '127.0.0.2' }).config.http.console).toBe(true);
  });
});

describe('HTTP', () => {
  let admin: AdminServer | null = null;
  let rt: ConsoleRuntime | null = null;
  afterEach(async () => {
    await admin?.close();
    admin = null;
    rt?.stop();
    rt = null;
  });

  async function start(http: Record<string, unknown>, root: string) {
    const config = loadConfig({ overrides: { listenPort: 0, storePath: root, http: { port: 1, console: true, ...http } }, env: {} }).config;
    const ev = new EventEmitter<ServerEvents>();
    rt = startConsole(ev, config, silentLogger());
    await rt.index.ready();
    admin = await startAdmin({
      address: '127.0.0.1', port: 0, source: { listening: [], activeSessions: 0, config }, closed: () => false,
      metrics: async () => ({ text: '', contentType: 'text/plain' }), logger: silentLogger(), console: () => rt?.app ?? null,
    });
    return { base: `http://127.0.0.1:${admin.port}`, ev };
  }

  /** A raw request (fetch cannot set Host). */
  const get = rawRequest;

  it('a raw download the client abandons closes its file (no descriptor left open per cancelled download)', async () => {
    const root = join(tmp, 'http-abandon');
    const m = meta('big1', '2026-02-02T00:00:00.000Z');
    store(root, m, 'big');
    // Larger than the socket buffers, so the download is still running when the client leaves.
    writeFileSync(join(root, m.file), 'x'.repeat(16 * 1024 * 1024));
    const { base } = await start({}, root);
    const port = Number(new URL(base).port);
    const eml = join(root, m.file);
    const open = () => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === eml;
      } catch {
        return false;
      }
    }).length;
    for (let i = 0; i < 5; i++) {
      const sock = connect(port, '127.0.0.1');
      sock.on('error', () => undefined);
      sock.write(`GET /api/corpus/raw?id=big1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      await new Promise((r) => sock.once('data', r));
      sock.destroy();
    }
    const deadline = Date.now() + 5000;
    while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(open()).toBe(0);
  });

  it('pages and API: strict headers, pages fill from the API, raw downloads are attachments, read-only', async () => {
    const root = join(tmp, 'http1');
    store(root, meta('h1', '2026-02-01T00:00:00.000Z'), '<b>bold</b>');
    const { base } = await start({}, root);
    // The corpus index snapshot is written at flush (the daemon's stop), for the next start.
    await rt!.flush();
    expect(readdirSync(root)).toContain(SNAPSHOT);
    for (const p of ['/console/', '/console/caught', '/console/corpus', '/console/message?id=h1', '/api/live', '/api/caught', '/api/corpus', '/api/corpus/raw?id=h1']) {
      const r = await get(base + p);
      expect(r.status, p).toBe(200);
      expect(r.headers['content-security-policy'], p).toBe(CSP);
      expect(r.headers['x-content-type-options'], p).toBe('nosniff');
    }
    const html = (await get(base + '/console/')).body;
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]|\son\w+=|\sstyle=/i);
    expect(html).toContain('<script src="/console/assets/console.js" defer></script>');
    const list = JSON.parse((await get(base + '/api/corpus?subject=BOLD')).body) as { total: number; items: { subject: string }[] };
    expect(list.total).toBe(1);
    expect(list.items[0]!.subject).toBe('<b>bold</b>');
    const raw = await get(base + '/api/corpus/raw?id=h1');
    expect(raw.headers['content-type']).toBe('application/octet-stream');
    expect(raw.headers['content-disposition']).toBe('attachment; filename="h1.eml"');
    expect(raw.body).toContain('body of h1');
    const view = JSON.parse((await get(base + '/api/corpus/message?id=h1')).body) as { subject: string; text: string };
    expect(view).toMatchObject({ subject: '<b>bold</b>', text: 'body of h1\n' });
    expect((await get(base + '/api/corpus/message?id=../../etc/passwd')).status).toBe(404);
    expect((await get(base + '/api/corpus?day=yesterday')).status).toBe(400);
    // The shape of a day is not enough: no such month, no such day of February.
    for (const day of ['2026-13-01', '2026-02-30', '2026-00-10']) expect((await get(base + `/api/corpus?day=${day}`)).status).toBe(400);
    expect((await get(base + '/api/corpus?client=1.2.3.4/77')).status).toBe(400);
    expect((await get(base + '/api/nothing')).status).toBe(404);
    expect((await get(base + '/api/corpus', {}, 'POST', 'x')).status).toBe(403);
    expect((await get(base + '/api/corpus', {}, 'DELETE')).status).toBe(403);
    // /healthz and /metrics stay with the admin server.
    expect(JSON.parse((await get(base + '/healthz')).body)).toHaveProperty('status');
    expect((await get(base + '/')).headers.location).toBe('/console/');
    // A DNS-rebinding page names its own host: refused without a token.
    expect((await get(base + '/api/live', { host: 'evil.example:8025' })).status).toBe(403);
    expect((await get(base + '/api/live', { host: 'localhost:8025' })).status).toBe(200);
    // The gzipped page weight: the heaviest page loads every asset.
    let weight = gzipSync(html).length;
    for (const a of ['console.js', 'console.css', 'uPlot.iife.min.js', 'uPlot.min.css']) {
      const r = await get(`${base}/console/assets/${a}`, { 'accept-encoding': 'gzip' });
      expect(r.headers['content-encoding']).toBe('gzip');
      weight += Number(r.headers['content-length']);
    }
    expect(weight).toBeLessThan(200 * 1024);
    // A damaged record (cut short on disk): a JSON error naming it, not a bare "internal error".
    const rec = join(root, '2026-02-01', 'h1.json');
    const good = readFileSync(rec);
    for (const [bad, why] of [['{"id": "h1", "receiv', /not JSON/], ['[1,2]', /not a metadata record/]] as const) {
      writeFileSync(rec, bad);
      const r = await get(base + '/api/corpus/message?id=h1');
      expect(r.status).toBe(500);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect((JSON.parse(r.body) as { error: string }).error).toMatch(new RegExp(`^the metadata record of h1 is damaged: ${why.source}`));
    }
    writeFileSync(rec, good);
    // A message deleted behind the index's back is a 404 and leaves the index.
    rmSync(join(root, '2026-02-01'), { recursive: true });
    expect((await get(base + '/api/corpus/message?id=h1')).status).toBe(404);
    expect(JSON.parse((await get(base + '/api/corpus')).body)).toMatchObject({ total: 0 });
  });

  it('a list asked for right after a message was stored shows its subject, and a subject filter finds it', async () => {
    const root = join(tmp, 'http-fresh');
    mkdirSync(root, { recursive: true });
    const { base, ev } = await start({}, root);
    const m = meta('f1', '2026-02-02T00:00:00.000Z');
    store(root, m, 'fresh arrival');
    ev.emit('message', { session: session('sf'), metadata: m, path: join(root, m.file) });
    const list = JSON.parse((await get(base + '/api/corpus?subject=fresh')).body) as { total: number; items: { subject: string }[] };
    expect(list.items.map((i) => i.subject)).toEqual(['fresh arrival']);
  });

  it('with http.token: Bearer or the login cookie, nothing else; consoleWrite turns 403 into 405', async () => {
    const { base } = await start({ token: 'tok', consoleWrite: true }, join(tmp, 'http2'));
    const denied = await get(base + '/api/live');
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Bearer realm="fakemx"');
    expect(JSON.parse(denied.body)).toEqual({ error: 'token required (Authorization: Bearer <http.token>)' });
    expect((await get(base + '/console/corpus')).headers.location).toBe('/console/login');
    expect((await get(base + '/api/live', { authorization: 'Bearer tok' })).status).toBe(200);
    // RFC 7235 §2.1: the scheme is case-insensitive.
    expect((await get(base + '/api/live', { authorization: 'bearer tok' })).status).toBe(200);
    expect((await get(base + '/api/live', { authorization: 'BEARER tok' })).status).toBe(200);
    expect((await get(base + '/api/live', { authorization: 'Basic tok' })).status).toBe(401);
    expect((await get(base + '/api/live', { host: 'evil.example', authorization: 'Bearer tok' })).status).toBe(200);
    expect((await get(base + '/console/login')).body).toContain('name="token"');
    const bad = await get(base + '/console/login', { 'content-type': 'application/x-www-form-urlencoded' }, 'POST', 'token=nope');
    expect(bad.status).toBe(401);
    const ok = await get(base + '/console/login', { 'content-type': 'application/x-www-form-urlencoded' }, 'POST', 'token=tok');
    expect(ok.status).toBe(303);
    const cookie = String(ok.headers['set-cookie']);
    expect(cookie).toBe(`fakemx_console=${cookieValue('tok')}; Path=/; HttpOnly; SameSite=Strict`);
    expect((await get(base + '/api/live', { cookie: cookie.split(';')[0]! })).status).toBe(200);
    expect((await get(base + '/api/live', { cookie: 'fakemx_console=tok' })).status).toBe(401);
    expect((await get(base + '/console/login', {}, 'POST', 'token=' + 'x'.repeat(5000))).status).toBe(413);
    expect((await get(base + '/api/corpus', { authorization: 'Bearer tok' }, 'POST')).status).toBe(405);
  });

  it('ten wrong tokens from one address: 429 with Retry-After for the rest of the minute, the right token included', async () => {
    const { base } = await start({ token: 'tok' }, join(tmp, 'http-throttle'));
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    // Wrong Bearer tokens and wrong login forms count alike; a request with no credentials does not.
    for (let i = 0; i < 5; i++) expect((await get(base + '/api/live', { authorization: 'Bearer nope' })).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await get(base + '/api/live')).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await get(base + '/console/login', form, 'POST', 'token=nope')).status).toBe(401);
    for (const [path, headers, method, body] of [['/console/login', form, 'POST', 'token=tok'], ['/api/live', { authorization: 'Bearer tok' }, 'GET', undefined]] as const) {
      const r = await get(base + path, headers, method, body);
      expect(r.status, path).toBe(429);
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(r.headers['retry-after'])).toBeLessThanOrEqual(60);
    }
  });

  it('logout: POST /console/logout clears the cookie, same-origin only; the pages show its button only with a token', async () => {
    const { base } = await start({ token: 'tok', consoleWrite: false }, join(tmp, 'http-logout'));
    const host = new URL(base).host;
    const cookie = `fakemx_console=${cookieValue('tok')}`;
    const page = await get(base + '/console/corpus', { cookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<form method="post" action="/console/logout" class="logout">');
    const out = await get(base + '/console/logout', { cookie, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' }, 'POST');
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/console/login');
    expect(String(out.headers['set-cookie'])).toBe('fakemx_console=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict');
    // Another site cannot log the operator out; a GET (a link, a prefetch) does nothing.
    const forged = await get(base + '/console/logout', { cookie, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' }, 'POST');
    expect(forged.status).toBe(403);
    expect(forged.headers['set-cookie']).toBeUndefined();
    // The console's own form, under Referrer-Policy: no-referrer, posts with Origin: null.
    expect((await get(base + '/console/logout', { origin: 'null', 'sec-fetch-site': 'same-origin' }, 'POST')).status).toBe(303);
    expect((await get(base + '/console/logout', { origin: 'http://evil.example' }, 'POST')).status).toBe(403);
    const viaGet = await get(base + '/console/logout', { cookie });
    expect(viaGet.status).toBe(405);
    expect(viaGet.headers['set-cookie']).toBeUndefined();
  });

  it('without a token (loopback) there is no session to end: no log-out button', async () => {
    const { base: open } = await start({ token: '', consoleWrite: false }, join(tmp, 'http-logout-open'));
    expect((await get(open + '/console/corpus')).body).not.toContain('/console/logout');
    expect((await get(open + '/console/logout', {}, 'POST')).headers.location).toBe('/console/');
  });

  it('hostAllowed', () => {
    expect(hostAllowed('127.0.0.1:8025')).toBe(true);
    expect(hostAllowed('[::1]:8025')).toBe(true);
    expect(hostAllowed('localhost')).toBe(true);
    expect(hostAllowed('fakemx.localhost:1')).toBe(true);
    expect(hostAllowed('attacker.example')).toBe(false);
    expect(hostAllowed(undefined)).toBe(false);
  });
});
