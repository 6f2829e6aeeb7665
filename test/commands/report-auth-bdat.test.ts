// `fakemx report` on a corpus written by a real server: AUTH attempts (from the per-day AUTH
// journal, so sessions that stored nothing count too) as top user names, attempts per
// client and mechanisms; the BDAT share of stored messages and their chunks; --since; a torn
// journal line; an AUTH-only corpus is reported, not "no messages".
import { appendFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport, reportCommand } from '../../src/commands/report.js';
import { AUTH_JOURNAL, authJournalFor } from '../../src/policy/auth.js';
import { RawClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function session(port: number, fn: (c: RawClient) => Promise<void>): Promise<void> {
  const c = await RawClient.connect(port);
  await c.reply();
  await c.cmd('EHLO bot.test');
  await fn(c);
  await c.cmd('QUIT');
  c.close();
}

describe('report: AUTH attempts and BDAT share', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ auth: { enabled: true, allowPlaintext: true, salt: 's', maxAttempts: 5 } });
    // Three AUTH-only sessions: admin x3, root x1, test x1.
    await session(srv.port, async (c) => {
      for (const u of ['admin', 'admin', 'root']) expect((await c.cmd(`AUTH PLAIN ${b64(`\0${u}\0pw`)}`)).code).toBe(535);
    });
    await session(srv.port, async (c) => {
      expect((await c.cmd(`AUTH LOGIN ${b64('admin')}`)).code).toBe(334);
      expect((await c.cmd(b64('x'))).code).toBe(535);
    });
    await session(srv.port, async (c) => {
      expect((await c.cmd(`AUTH PLAIN ${b64('\0test\0x')}`)).code).toBe(535);
    });
    // Two messages: one with DATA, one in three BDAT chunks.
    await session(srv.port, async (c) => {
      await c.cmd('MAIL FROM:<a@example.org>');
      await c.cmd('RCPT TO:<b@example.com>');
      await c.cmd('DATA');
      expect((await c.cmd('x\r\n.')).code).toBe(250);
      await c.cmd('MAIL FROM:<a@example.org>');
      await c.cmd('RCPT TO:<b@example.com>');
      c.send('BDAT 1\r\naBDAT 1\r\nbBDAT 1 LAST\r\nc');
      for (let i = 0; i < 3; i++) expect((await c.reply()).code).toBe(250);
    });
    await authJournalFor(srv.store).flushed();
  });
  afterAll(async () => {
    await srv.close();
  });

  it('the AUTH journal is 0640 like the rest of the corpus (it may hold the passwords tried)', () => {
    const days = readdirSync(srv.store).filter((n) => /^\d{4}-\d{2}-\d{2}$/.test(n));
    expect(days.length).toBeGreaterThan(0);
    for (const day of days) expect(statSync(join(srv.store, day, AUTH_JOURNAL)).mode & 0o777).toBe(0o640);
  });

  it('counts attempts, sessions, users, clients and mechanisms from the journal', async () => {
    const r = await buildReport({ dir: srv.store });
    expect(r.auth.attempts).toBe(5);
    expect(r.auth.sessions).toBe(3);
    expect(r.auth.tls).toBe(0);
    expect(r.auth.users).toEqual([
      { key: 'admin', messages: 3 },
      { key: 'root', messages: 1 },
      { key: 'test', messages: 1 },
    ]);
    expect(r.auth.clients).toEqual([{ key: '127.0.0.1', messages: 5 }]);
    expect(r.auth.mechanisms).toEqual([
      { key: 'PLAIN', messages: 4 },
      { key: 'LOGIN', messages: 1 },
    ]);
  });

  it('gives the BDAT share and chunk count of stored messages', async () => {
    const r = await buildReport({ dir: srv.store });
    expect(r.messages).toBe(2);
    expect(r.transfer).toEqual({ bdat: 1, share: 0.5, chunks: 3 });
  });

  it('prints the tables; a torn journal line is skipped; --since past today drops it all', async () => {
    const day = readdirSync(srv.store).find((d) => /^\d{4}-\d{2}-\d{2}$/.test(d))!;
    appendFileSync(join(srv.store, day, AUTH_JOURNAL), '{"at":"2020-');
    let text = '';
    expect(await reportCommand({ dir: srv.store }, (s) => (text += s))).toBe(0);
    expect(text).toMatch(/BDAT \(CHUNKING\): 1 stored message \(50\.0%\), 3 chunks; DATA: 1/);
    expect(text).toMatch(/AUTH attempts: 5 in 3 sessions, 0 under TLS/);
    expect(text).toMatch(/Top AUTH user names\nuser +attempts +share\n[- ]+\nadmin +3 +60\.0%\n/);
    expect(text).toMatch(/AUTH attempts per client\nclient +attempts +share\n[- ]+\n127\.0\.0\.1 +5 +100\.0%/);
    const later = await buildReport({ dir: srv.store, since: '2999-01-01' });
    expect(later.auth.attempts).toBe(0);
  });

  it('an AUTH-only corpus is reported (no stored message needed)', async () => {
    const only = await startServer({ auth: { enabled: true, allowPlaintext: true, salt: 's' } });
    try {
      await session(only.port, async (c) => {
        expect((await c.cmd(`AUTH PLAIN ${b64('\0sa\0pw')}`)).code).toBe(535);
      });
      await authJournalFor(only.store).flushed();
      let text = '';
      expect(await reportCommand({ dir: only.store }, (s) => (text += s))).toBe(0);
      expect(text).toMatch(/AUTH attempts: 1 in 1 session,/);
      expect(text).toMatch(/\nsa +1 +100\.0%/);
      // No message, so no time range (it said "null .. null").
      expect(text).toMatch(/\n0 messages, 0 B\n/);
      expect(text).not.toContain('null');
    } finally {
      await only.close();
    }
  });
});
