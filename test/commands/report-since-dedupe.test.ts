// `fakemx report --since` with store.dedupe: a body first stored on an older day and arriving
// again today is folded into that older day's record (its day directory's journal and
// <id>.json). The arrival is today's delivery, so --since today must count it, as the report
// without --since does in its per-day table. Real servers on 127.0.0.1; the older day is made
// by moving the first message's day directory back, as a store that ran on earlier days has it.
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildReport } from '../../src/commands/report.js';
import { createServer } from '../../src/server.js';
import { dayOf, JOURNAL } from '../../src/store/layout.js';
import { greeted, type RawClient } from '../helpers/client.js';
import { FAST } from '../helpers/server.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(store: string) {
  const server = createServer({ config: { ...FAST, storeData: true, storePath: store, store: { dedupe: true } } });
  const [l] = await server.listen();
  cleanups.push(() => server.close(500));
  return { server, port: l!.port };
}

async function deliver(c: RawClient, body: string, from: string): Promise<string> {
  expect((await c.cmd(`MAIL FROM:<${from}>`)).code).toBe(250);
  expect((await c.cmd('RCPT TO:<b@mx.test>')).code).toBe(250);
  expect((await c.cmd('DATA')).code).toBe(354);
  const r = await c.cmd(`${body}.`);
  expect(r.code).toBe(250);
  return /queued as (\S+)/.exec(r.text)![1]!;
}

/** Move a day directory `days` back: its name, and the times and paths in its records and journal. */
function ageDay(store: string, day: string, days: number): string {
  const shift = (iso: string) => new Date(Date.parse(iso) - days * 86_400_000).toISOString();
  const old = shift(`${day}T12:00:00.000Z`).slice(0, 10);
  const fix = (m: Record<string, unknown>) => {
    const t = m.timings as Record<string, unknown>;
    return {
      ...m,
      receivedAt: shift(m.receivedAt as string),
      file: (m.file as string).replace(day, old),
      timings: { ...t, sessionOpenedAt: shift(t.sessionOpenedAt as string), dataStartedAt: shift(t.dataStartedAt as string), dataEndedAt: shift(t.dataEndedAt as string) },
    };
  };
  const dir = join(store, old);
  renameSync(join(store, day), dir);
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    writeFileSync(join(dir, f), JSON.stringify(fix(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>)) + '\n');
  }
  const lines = readFileSync(join(dir, JOURNAL), 'utf8').split('\n').filter(Boolean);
  writeFileSync(join(dir, JOURNAL), lines.map((l) => JSON.stringify(fix(JSON.parse(l) as Record<string, unknown>)) + '\n').join(''));
  return old;
}

describe('report --since and duplicate arrivals folded into an older day', () => {
  it('counts today\'s arrivals whose first copy is stored on an earlier day', async () => {
    const store = mkdtempSync(join(tmpdir(), 'fakemx-since-dedupe-'));
    cleanups.push(() => rmSync(store, { recursive: true, force: true }));
    const body = 'Subject: same\r\n\r\nbuy now\r\n';
    const today = dayOf(new Date());

    // Day 1 (made older below): the first copy and one unrelated message.
    const a = await serve(store);
    const c1 = await greeted(a.port, 'first.example');
    cleanups.push(() => c1.close());
    const firstId = await deliver(c1, body, 'x@old.example');
    await deliver(c1, 'Subject: other\r\n\r\nsomething else\r\n', 'x@old.example');
    c1.close();
    await a.server.close(500);
    const old = ageDay(store, today, 3);

    // Today: a new daemon rebuilds its dedupe index from the older day's journal; two
    // clients send the same body again and one sends a new body.
    const b = await serve(store);
    const ids: string[] = [];
    for (const helo of ['again1.example', 'again2.example']) {
      const c = await greeted(b.port, helo);
      cleanups.push(() => c.close());
      ids.push(await deliver(c, body, `y@${helo}`));
      c.close();
    }
    const c3 = await greeted(b.port, 'new.example');
    cleanups.push(() => c3.close());
    await deliver(c3, 'Subject: new\r\n\r\na new body\r\n', 'z@new.example');
    c3.close();

    // The arrivals went into the older day's record, as store.dedupe says.
    const rec = JSON.parse(readFileSync(join(store, old, `${firstId}.json`), 'utf8')) as { duplicates?: { count: number; arrivals: { id: string }[] } };
    expect(rec.duplicates?.count).toBe(2);
    expect(rec.duplicates?.arrivals.map((x) => x.id)).toEqual(ids);

    // Without --since: today holds 3 deliveries in 3 sessions.
    const all = await buildReport({ dir: store });
    expect(all.days).toEqual([
      { day: old, messages: 2, sessions: 1 },
      { day: today, messages: 3, sessions: 3 },
    ]);
    // --since today must say the same of today (it counted 1 message, no DUPLICATE).
    const since = await buildReport({ dir: store, since: today });
    expect(since.days).toEqual([{ day: today, messages: 3, sessions: 3 }]);
    expect([since.messages, since.stored]).toEqual([3, 1]);
    expect(since.verdicts.find((v) => v.key === 'DUPLICATE')?.messages).toBe(2);
    // The Duplicates table too: one stored body (from the older day) arrived again twice since.
    expect(since.duplicates).toEqual({ messages: 1, arrivals: 2, top: [{ key: firstId, messages: 2 }] });
    expect(all.duplicates).toEqual({ messages: 1, arrivals: 2, top: [{ key: firstId, messages: 2 }] });
    expect(since.helo.map((h) => h.key).sort()).toEqual(['again1.example', 'again2.example', 'new.example']);
    // The older day's own messages stay out.
    expect(since.senderDomains.map((d) => d.key).sort()).toEqual(['again1.example', 'again2.example', 'new.example']);
  });
});
