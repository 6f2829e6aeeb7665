// The stored record of a message: the session's verdicts, not the outcomes of the session's
// other messages. A connection that delivers several messages (nodemailer's pool, smtplib
// reusing a connection) used to write each earlier message's STORED into every later record.
import { afterEach, describe, expect, it } from 'vitest';
import { greeted } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

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
});
