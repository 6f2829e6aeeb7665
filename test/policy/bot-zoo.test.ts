// The bot zoo: scripted misbehaving clients on real sockets, each of which must be caught
// with the right tag and reply; and the other side, well-behaved clients (nodemailer with
// pipelining) that must never be flagged under any of the shipped profiles.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { RawClient, greeted } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import type { VerdictEvent } from '../../src/events.js';

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

const lists = mkdtempSync(join(tmpdir(), 'fakemx-zoo-'));
const mailboxes = join(lists, 'mailboxes');
writeFileSync(mailboxes, 'alice@example.com\n');
const permitLoopback = join(lists, 'permit');
writeFileSync(permitLoopback, 'permit 127.0.0.0/8\n');
const rejectLoopback = join(lists, 'reject');
writeFileSync(rejectLoopback, '# nobody from here\nreject 127.0.0.1/32\n');

async function withVerdicts(config: Record<string, unknown>): Promise<VerdictEvent[]> {
  srv = await startServer(config);
  const v: VerdictEvent[] = [];
  srv.server.on('verdict', (e) => v.push(e));
  return v;
}
/** The verdicts that judge a client; STORED and TLS are records of what happened, not flags. */
const RECORDS = new Set(['STORED', 'TLS']);
const tags = (v: VerdictEvent[]) => v.filter((e) => !RECORDS.has(e.tag)).map((e) => e.tag);
const until = async (cond: () => boolean, ms = 2000) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
};

describe('banner delay', () => {
  it('the greeting arrives no earlier than bannerDelay and not much later', async () => {
    // 'Not much later': before the delay could have run twice, with room for a busy machine's lag.
    const D = 500;
    await withVerdicts({ bannerDelay: D });
    const t0 = Date.now();
    const c = await RawClient.connect(srv!.port);
    const g = await c.reply(2000);
    const dt = Date.now() - t0;
    expect(g.code).toBe(220);
    expect(dt).toBeGreaterThanOrEqual(D - 5);
    expect(dt).toBeLessThan(2 * D);
    c.close();
  });

  it('a client the access list permits skips the delay', async () => {
    await withVerdicts({ bannerDelay: 2000, accessList: permitLoopback });
    const t0 = Date.now();
    const c = await RawClient.connect(srv!.port);
    expect((await c.reply(1500)).code).toBe(220);
    expect(Date.now() - t0).toBeLessThan(1000); // far from the 2 s delay
    c.close();
  });
});

describe('the zoo', () => {
  it('pregreeter: talks before the greeting -> PREGREET, 554 5.5.1 and close', async () => {
    const v = await withVerdicts({ bannerDelay: 300 });
    const c = await RawClient.connect(srv!.port);
    c.send('EHLO bot\r\n');
    const r = await c.reply(2000);
    expect(r.raw).toBe('554 5.5.1 protocol error\r\n');
    expect(await c.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['PREGREET']);
    expect(v[0]!.details).toMatchObject({ sample: 'EHLO bot\\r\\n', action: 'drop' });
    expect(v[0]!.details.afterMs as number).toBeLessThan(300);
  });

  // Binary junk (not UTF-8) too: the decided rejection answers it rather than a 500 that let the client on.
  it.each([
    ['a command', Buffer.from('EHLO bot\r\n')],
    ['binary junk', Buffer.from([0x16, 0xff, 0xfe, 0x0d, 0x0a])],
  ])('teaser: %s after "220-" but before "220 " -> greeting finished, then rejected', async (_name, early) => {
    const v = await withVerdicts({ bannerDelay: 300, bannerTeaser: true });
    const c = await RawClient.connect(srv!.port);
    await until(() => c.pending.startsWith('220-'));
    expect(c.pending).toMatch(/^220-mx\.test\r\n$/);
    c.send(early);
    const g = await c.reply(2000);
    expect(g.lines).toEqual(['220-mx.test', '220 mx.test ESMTP fakemx']);
    const r = await c.reply(2000);
    expect(r.code).toBe(554);
    expect(await c.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['PREGREET']);
  });

  it('pipelines without EHLO (HELO client, no PIPELINING offered) -> PIPELINING', async () => {
    const v = await withVerdicts({});
    const c = await RawClient.connect(srv!.port);
    await c.reply();
    expect((await c.cmd('HELO bot')).code).toBe(250);
    c.send('MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n');
    const r = await c.reply();
    expect(r.code).toBe(554);
    expect(await c.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['PIPELINING']);
    expect(v[0]!.details).toMatchObject({ after: 'MAIL' });
  });

  it('pipelines past a group end (EHLO + MAIL in one write) -> PIPELINING', async () => {
    const v = await withVerdicts({});
    const c = await RawClient.connect(srv!.port);
    await c.reply();
    c.send('EHLO bot\r\nMAIL FROM:<a@b.example>\r\n');
    // EHLO must end the group: the bytes after it make it the offending command.
    expect((await c.reply()).raw).toBe('554 5.5.1 protocol error\r\n');
    expect(await c.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['PIPELINING']);
    expect(v[0]!.details).toMatchObject({ after: 'EHLO' });
  });

  it('advertisePipelining false: any batch is early talk (postscreen pipelining test)', async () => {
    const v = await withVerdicts({ advertisePipelining: false });
    const c = await greeted(srv!.port);
    c.send('MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\n');
    expect((await c.reply()).code).toBe(554);
    expect(await c.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['PIPELINING']);
    expect(v[0]!.details).toMatchObject({ after: 'MAIL' });
  });

  it('HTTP prober -> NONSMTP, 554 and close', async () => {
    const v = await withVerdicts({});
    const c = await RawClient.connect(srv!.port);
    await c.reply();
    c.send('POST /cgi-bin/x HTTP/1.0\r\nHost: y\r\n\r\n');
    expect((await c.reply()).code).toBe(554);
    expect(await c.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['NONSMTP']);
  });

  it('dictionary attacker: unknown users -> growing tarpit delays -> LIMIT close', async () => {
    // A step well above a busy machine's timer lag, so the growth shows in client-side times.
    const D = 250;
    const v = await withVerdicts({ localMailboxes: mailboxes, errorDelay: D, maxSmtpErrors: 3 });
    const c = await greeted(srv!.port);
    await c.cmd('MAIL FROM:<x@spam.example>');
    const times: number[] = [];
    let last = 0;
    for (const u of ['adam', 'bert', 'carl', 'dora']) {
      const t0 = Date.now();
      const r = await c.cmd(`RCPT TO:<${u}@example.com>`, 3000);
      times.push(Date.now() - t0);
      last = r.code;
      if (r.code === 421) break;
      expect(r.raw).toBe('550 5.1.1 unknown user\r\n');
    }
    expect(last).toBe(421);
    expect(await c.waitClose()).toBe(true);
    // errorDelay x errors so far: D, 2D, 3D ms, then the limit close (no delay).
    expect(times[0]).toBeGreaterThanOrEqual(D - 5);
    expect(times[1]).toBeGreaterThanOrEqual(2 * D - 5);
    expect(times[2]).toBeGreaterThanOrEqual(3 * D - 5);
    expect(times[1]! - times[0]!).toBeGreaterThan(50);
    expect(tags(v)).toEqual(['TARPIT', 'TARPIT', 'TARPIT', 'LIMIT']);
    expect(v[3]!.details).toMatchObject({ limit: 'errors' });
  });

  it('slow dripper -> TIMEOUT', async () => {
    const v = await withVerdicts({ receiveTimeout: 250 });
    const c = await greeted(srv!.port);
    const drip = setInterval(() => c.send('X'), 40);
    const r = await c.reply(2000);
    clearInterval(drip);
    expect(r.code).toBe(421);
    expect(r.enhanced).toBe('4.4.2');
    expect(tags(v)).toEqual(['TIMEOUT']);
  });

  it('connection flood from one address -> LIMIT 421 4.7.0 per IP', async () => {
    const v = await withVerdicts({ maxSessionsPerIp: 3, bannerDelay: 1000 });
    const held = await Promise.all([0, 1, 2].map(() => RawClient.connect(srv!.port)));
    await until(() => srv!.server.activeSessions === 3);
    const extra = await RawClient.connect(srv!.port);
    const r = await extra.reply(500);
    expect(r.raw).toBe('421 4.7.0 too many connections from your address\r\n');
    expect(await extra.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['LIMIT']);
    for (const h of held) h.close();
  });

  it('access list reject -> ACCESS_REJECT, 554 5.7.1 at once', async () => {
    const v = await withVerdicts({ accessList: rejectLoopback, bannerDelay: 1000 });
    const c = await RawClient.connect(srv!.port);
    const r = await c.reply(500);
    expect(r.raw).toBe('554 5.7.1 access denied\r\n');
    expect(await c.waitClose()).toBe(true);
    expect(tags(v)).toEqual(['ACCESS_REJECT']);
  });
});

describe('early talk actions that carry on', () => {
  it('enforce: the session goes on, every RCPT gets 550 5.5.1, the early bytes are not lost', async () => {
    const v = await withVerdicts({ bannerDelay: 200, earlyTalkAction: 'enforce' });
    const c = await RawClient.connect(srv!.port);
    c.send('EHLO early.test\r\n');
    expect((await c.reply(2000)).code).toBe(220);
    const e = await c.reply();
    expect(e.code).toBe(250); // the early EHLO, answered in order
    expect((await c.cmd('MAIL FROM:<a@b.example>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<c@example.com>')).raw).toBe('550 5.5.1 protocol error\r\n');
    expect(tags(v)).toEqual(['PREGREET']);
    c.close();
  });

  it('ignore: recorded in the stored message, nothing else changes', async () => {
    const v = await withVerdicts({ bannerDelay: 200, earlyTalkAction: 'ignore' });
    const c = await RawClient.connect(srv!.port);
    c.send('EHLO early.test\r\n');
    expect((await c.reply(2000)).code).toBe(220);
    expect((await c.reply()).code).toBe(250);
    await c.cmd('MAIL FROM:<a@b.example>');
    await c.cmd('RCPT TO:<c@example.com>');
    await c.cmd('DATA');
    expect((await c.cmd('x\r\n.')).code).toBe(250);
    const [m] = srv!.messages();
    expect(m!.meta.verdicts.map((x) => x.tag)).toEqual(['PREGREET']);
    expect(tags(v)).toEqual(['PREGREET']);
    c.close();
  });
});

describe('tarpit stutter and high water', () => {
  it('stutter writes an error reply one byte per interval', async () => {
    await withVerdicts({ tarpit: { stutter: true, stutterInterval: 10, highWater: 90 }, maxSmtpErrors: 10 });
    const c = await greeted(srv!.port);
    const t0 = Date.now();
    const r = await c.cmd('XBAD', 5000);
    const dt = Date.now() - t0;
    expect(r.code).toBe(500);
    // "500 5.5.1 Error: command not recognized\r\n" is 41 bytes -> ~400 ms.
    expect(dt).toBeGreaterThanOrEqual(300);
    c.close();
  });

  it('above highWater % of maxSessions no tarpit delay applies', async () => {
    const v = await withVerdicts({ errorDelay: 1000, maxSessions: 4, tarpit: { stutter: false, stutterInterval: 1000, highWater: 50 } });
    const others = await Promise.all([0, 1].map(() => greeted(srv!.port)));
    const c = await greeted(srv!.port);
    await c.cmd('XBAD'); // first error: 1000 x 0 errors-before... counted after
    const t0 = Date.now();
    expect((await c.cmd('XBAD2', 1500)).code).toBe(500);
    expect(Date.now() - t0).toBeLessThan(500);
    expect(tags(v)).not.toContain('TARPIT');
    for (const o of [...others, c]) o.close();
  });
});

describe('real clients are never flagged', () => {
  const profiles: [string, Record<string, unknown>, RegExp][] = [
    // nodemailer reports a 421 at DATA followed by the close as "Connection closed unexpectedly".
    ['fake-mx (tempfail at DATA)', { storeData: false, doTempFail: true, bannerDelay: 150, errorDelay: 75, doEarlyTalk: true }, /421|Connection closed unexpectedly/],
    ['corpus (store, then tempfail)', { storeData: true, doTempFail: true, bannerDelay: 150, doEarlyTalk: true, earlyTalkAction: 'ignore' }, /421/],
    ['sink', { storeData: true, doTempFail: false, bannerDelay: 0, doEarlyTalk: false }, /^$/],
    ['teaser + strict pipelining checks', { bannerDelay: 150, bannerTeaser: true, doEarlyTalk: true }, /^$/],
  ];
  it.each(profiles)('nodemailer with pipelining under %s', async (_name, config, failure) => {
    const v = await withVerdicts(config);
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: srv!.port, ignoreTLS: true, name: 'good.test', pool: false });
    let err = '';
    for (let i = 0; i < 2; i++) {
      try {
        await t.sendMail({ from: 'a@example.org', to: ['b@example.com', 'c@example.com'], subject: 's', text: 'hello' });
      } catch (e) {
        err = String((e as { response?: string }).response ?? e);
      }
    }
    t.close();
    expect(err).toMatch(failure);
    // nodemailer without a pool hangs up after the last reply instead of sending QUIT: that
    // HANGUP (in the ready state, nothing pending) is a fact about the session, not a flag.
    const flags = v.filter((x) => x.tag !== 'TEMPFAIL' && !RECORDS.has(x.tag) && !(x.tag === 'HANGUP' && x.details.phase === 'ready'));
    expect(flags.map((x) => x.tag)).toEqual([]);
  });
});
