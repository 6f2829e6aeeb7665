// The stored record of a message: the session's verdicts, not the outcomes of the session's
// other messages. A connection that delivers several messages (nodemailer's pool, smtplib
// reusing a connection) used to write each earlier message's STORED into every later record.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { createServer } from '../../src/server.js';
import { greeted } from '../helpers/client.js';
import { FAST, startServer, type TestServer } from '../helpers/server.js';

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

describe('verdicts in the record of each message of a session', () => {
  it('three messages on one connection: no record carries another message\'s STORED', async () => {
    srv = await startServer({ maxSmtpRcpt: 1 });
    const c = await greeted(srv.port);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
      expect((await c.cmd(`RCPT TO:<b${i}@example.com>`)).code).toBe(250);
      // The second message passes maxSmtpRcpt: a session verdict (LIMIT) that stays in the later records.
      if (i === 1) expect((await c.cmd('RCPT TO:<extra@example.com>')).code).toBe(452);
      expect((await c.cmd('DATA')).code).toBe(354);
      const r = await c.cmd(`Subject: m${i}\r\n\r\nbody ${i}\r\n.`);
      expect(r.code).toBe(250);
      ids.push(/queued as (\S+)/.exec(r.text)![1]!);
    }
    expect((await c.cmd('QUIT')).code).toBe(221);
    c.close();
    const byId = new Map(srv.messages().map((m) => [m.meta.id, m.meta]));
    expect(ids.map((id) => byId.get(id)?.verdicts.map((v) => v.tag))).toEqual([[], ['LIMIT'], ['LIMIT']]);
  });

  it('the CLOSE line still counts every message\'s outcome, and the session keeps no list of them', async () => {
    const lines: { tag?: string; verdicts?: Record<string, number>; stored?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
    const server = createServer({ config: { ...FAST, maxMessages: 100, storePath: join(mkdtempSync(join(tmpdir(), 'fakemx-test-')), 'corpus') }, logger });
    const [l] = await server.listen();
    try {
      const c = await greeted(l!.port);
      for (let i = 0; i < 50; i++) {
        await c.cmd('MAIL FROM:<a@example.org>');
        await c.cmd('RCPT TO:<b@example.com>');
        await c.cmd('DATA');
        expect((await c.cmd(`Subject: m${i}\r\n\r\nbody ${i}\r\n.`)).code).toBe(250);
      }
      // The policy session's verdict list holds no per-message entry (a sink session may deliver up to maxMessages).
      const [session] = (server as unknown as { sessions: { toArray(): { hooks: { verdicts: unknown[] } }[] } }).sessions.toArray();
      expect(session!.hooks.verdicts).toHaveLength(0);
      expect((await c.cmd('QUIT')).code).toBe(221);
      c.close();
      for (let i = 0; i < 100 && !lines.some((x) => x.tag === 'CLOSE'); i++) await new Promise((r) => setTimeout(r, 20));
      const close = lines.find((x) => x.tag === 'CLOSE');
      expect(close?.stored).toBe(50);
      expect(close?.verdicts).toEqual({ STORED: 50 });
      expect(lines.filter((x) => x.tag === 'STORED')).toHaveLength(50);
    } finally {
      await server.close(500);
    }
  });
});
