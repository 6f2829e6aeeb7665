// Session limits and hang-ups: junk commands (Postfix's junk limit), the recipient
// overshoot, the whole-session time cap, HANGUP in every phase (the slot is freed at once),
// control characters in HELO, and a session whose sink pushes back as the final dot arrives.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MessageSink, SessionHooks } from '../../src/smtp/hooks.js';
import { replies } from '../../src/smtp/reply.js';
import { greeted, RawClient } from '../helpers/client.js';
import { startEngine, type Engine } from '../helpers/engine.js';
import { startServer, type TestServer } from '../helpers/server.js';

let srv: TestServer | undefined;
let eng: Engine | undefined;
afterEach(async () => {
  await srv?.close();
  await eng?.close();
  srv = undefined;
  eng = undefined;
});

const until = async (cond: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return cond();
};

// maxPendingInput may be set below a line's own limit (maxLineLength, or RFC 4954's 12,288 octets
// in an AUTH exchange): a line within its limit that comes in pieces is still read to its end.
describe('maxPendingInput below the line limit', () => {
  const cases: { name: string; before: string[]; line: string; code: number }[] = [
    { name: 'a 2,000-octet NOOP line (maxLineLength 4096)', before: [], line: `NOOP ${'x'.repeat(2000)}`, code: 250 },
    { name: 'a 5,000-octet AUTH PLAIN response', before: ['AUTH PLAIN'], line: 'A'.repeat(5000), code: 535 },
  ];
  for (const c of cases) {
    it(`${c.name} sent in pieces is answered, not left to receiveTimeout`, async () => {
      srv = await startServer({ maxPendingInput: 1024, maxLineLength: 4096, receiveTimeout: 3000, auth: { enabled: true, allowPlaintext: true } });
      const cl = await greeted(srv.port);
      for (const b of c.before) expect((await cl.cmd(b)).code).toBe(334);
      const t0 = Date.now();
      for (let i = 0; i < c.line.length; i += 700) {
        cl.send(c.line.slice(i, i + 700));
        await new Promise((r) => setTimeout(r, 20));
      }
      expect((await cl.cmd('')).code).toBe(c.code);
      expect(Date.now() - t0).toBeLessThan(2000);
      cl.close();
    });
  }
});

describe('junk commands (maxJunkCommands)', () => {
  const cases: { name: string; line: string }[] = [
    { name: 'RSET', line: 'RSET' },
    { name: 'NOOP', line: 'NOOP' },
    { name: 'HELP', line: 'HELP' },
    { name: 'VRFY', line: 'VRFY a@example.com' },
    { name: 'EXPN', line: 'EXPN list' },
    { name: 'repeated EHLO', line: 'EHLO again.test' },
  ];
  it.each(cases)('$name beyond the limit ends the session with 421 4.7.0 and a LIMIT verdict', async ({ line }) => {
    srv = await startServer({ maxJunkCommands: 5, maxSmtpNoop: 100, maxSmtpVrfy: 100, maxSmtpErrors: 100 });
    const limits: unknown[] = [];
    srv.server.on('verdict', (v) => v.tag === 'LIMIT' && limits.push(v.details.limit));
    const c = await greeted(srv.port);
    for (let i = 0; i < 5; i++) expect((await c.cmd(line)).code).not.toBe(421);
    const r = await c.cmd(line);
    expect(r.code).toBe(421);
    expect(r.enhanced).toBe('4.7.0');
    expect(r.text).toMatch(/junk commands/);
    expect(await c.waitClose(2000)).toBe(true);
    expect(limits).toEqual(['junk commands']);
  });

  it('the EHLO after STARTTLS and the RSETs of a normal multi-message session stay far below the default', async () => {
    srv = await startServer({ storeData: false });
    const c = await greeted(srv.port);
    for (let i = 0; i < 10; i++) {
      expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
      expect((await c.cmd('RCPT TO:<b@example.com>')).code).toBe(250);
      expect((await c.cmd('DATA')).code).toBe(354);
      expect((await c.cmd('x\r\n.')).code).toBe(250);
      expect((await c.cmd('RSET')).code).toBe(250);
    }
    expect((await c.cmd('QUIT')).code).toBe(221);
  });
});

describe('recipient overshoot (maxRcptOvershoot)', () => {
  it('452 for each RCPT over maxSmtpRcpt, then 421 once the overshoot is used up', async () => {
    srv = await startServer({ maxSmtpRcpt: 2, maxRcptOvershoot: 3 });
    const c = await greeted(srv.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await c.cmd(`RCPT TO:<u${i}@example.com>`)).code);
    expect(codes).toEqual([250, 250, 452, 452, 452, 421]);
    expect(await c.waitClose(2000)).toBe(true);
  });
});

describe('deferred recipients share the overshoot budget', () => {
  // A neutral 451 (greylisting) is not an error and not tarpitted, and a deferred RCPT is no
  // recipient, so neither maxSmtpErrors nor maxSmtpRcpt ever counted it: one bot connection
  // pipelined 200,000 RCPTs to a greylisting fake MX in 13.6 s and got 200,000 451s, writing
  // 200,000 GREYLISTED log lines (62 MB) and 59 MB of greylist entries, never cut.
  const deferred = { code: 451, enhanced: '4.7.1', text: 'Greylisted, please try again in 25 minutes', neutral: true };

  it('RCPTs a hook defers with a neutral 451 are cut with 421 past maxRcptOvershoot', async () => {
    eng = await startEngine({ rcpt: () => deferred }, { maxRcptOvershoot: 3 });
    const c = await greeted(eng.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    const codes: number[] = [];
    for (let i = 0; i < 5 && codes.at(-1) !== 421; i++) codes.push((await c.cmd(`RCPT TO:<u${i}@example.com>`)).code);
    expect(codes).toEqual([451, 451, 451, 421]);
    expect(await c.waitClose(2000)).toBe(true);
  });

  it('deferrals and 452s draw on one budget, over transactions; a deferred DATA counts too', async () => {
    const hooks: SessionHooks = { rcpt: (_s, a) => (a.local.startsWith('grey') ? deferred : undefined), dataStart: () => deferred };
    eng = await startEngine(hooks, { maxSmtpRcpt: 1, maxRcptOvershoot: 4 });
    const c = await greeted(eng.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    expect((await c.cmd('RCPT TO:<grey1@example.com>')).code).toBe(451); // 1
    expect((await c.cmd('RCPT TO:<ok@example.com>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<more@example.com>')).code).toBe(452); // 2
    expect((await c.cmd('DATA')).code).toBe(451); // 3, and the transaction is gone
    expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<grey2@example.com>')).code).toBe(451); // 4
    const r = await c.cmd('RCPT TO:<grey3@example.com>');
    expect(r.code).toBe(421);
    expect(r.text).toMatch(/too many recipients/);
    expect(await c.waitClose(2000)).toBe(true);
  });

  it('a bot pipelining RCPTs at a greylisting server gets 421 after maxRcptOvershoot 451s, with as many GREYLISTED lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fakemx-grey-'));
    try {
      srv = await startServer({ greylist: { enabled: true }, state: { path: dir }, maxRcptOvershoot: 50 });
      let greylisted = 0;
      const limits: unknown[] = [];
      srv.server.on('verdict', (v) => {
        if (v.tag === 'GREYLISTED') greylisted++;
        if (v.tag === 'LIMIT') limits.push(v.details.limit);
      });
      const c = await greeted(srv.port);
      expect((await c.cmd('MAIL FROM:<bot@example.org>')).code).toBe(250);
      c.send(Array.from({ length: 500 }, (_, i) => `RCPT TO:<u${i}@example.com>\r\n`).join(''));
      const codes: number[] = [];
      while (codes.at(-1) !== 421 && codes.length < 500) codes.push((await c.reply(5000)).code);
      expect(codes.filter((x) => x === 451)).toHaveLength(50);
      expect(codes).toHaveLength(51);
      expect(codes.at(-1)).toBe(421);
      expect(await c.waitClose(2000)).toBe(true);
      expect(greylisted).toBe(51); // the 51st was deferred, then answered 421 instead
      expect(limits).toEqual(['recipients']);
    } finally {
      await srv?.close();
      srv = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('session time cap (maxSessionTime)', () => {
  it('a session that keeps talking is cut with 421 4.4.2 after maxSessionTime', async () => {
    srv = await startServer({ maxSessionTime: 400, maxSmtpNoop: 1000, maxJunkCommands: 1000 });
    const tags: string[] = [];
    srv.server.on('verdict', (v) => tags.push(`${v.tag}:${String((v.details.limit as string | undefined) ?? '')}`));
    const c = await greeted(srv.port);
    const t0 = Date.now();
    let r = await c.cmd('NOOP');
    while (r.code === 250 && Date.now() - t0 < 3000) {
      await new Promise((x) => setTimeout(x, 50));
      r = await c.cmd('NOOP');
    }
    expect(r.code).toBe(421);
    expect(r.enhanced).toBe('4.4.2');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(tags).toContain('LIMIT:session time');
  });

  it('a session held in the banner delay is cut too (the cap covers every state)', async () => {
    srv = await startServer({ maxSessionTime: 300, bannerDelay: 5000 });
    const c = await RawClient.connect(srv.port);
    const r = await c.reply(2000);
    expect(r.code).toBe(421);
    expect(await until(() => srv!.server.activeSessions === 0, 1000)).toBe(true);
  });
});

describe('HANGUP: a client that leaves frees its slot at once', () => {
  it('40 clients that hang up in the banner delay leave room for the next client', async () => {
    srv = await startServer({ maxSessions: 32, bannerDelay: 1500 });
    const hangups: Record<string, unknown>[] = [];
    srv.server.on('verdict', (v) => v.tag === 'HANGUP' && hangups.push(v.details));
    const cs = await Promise.all(Array.from({ length: 40 }, () => RawClient.connect(srv!.port)));
    for (const c of cs) c.socket.end();
    expect(await until(() => srv!.server.activeSessions === 0 && hangups.length >= 32, 1000)).toBe(true);
    expect(hangups[0]).toMatchObject({ phase: 'greeting' });
    expect(typeof hangups[0]!.afterMs).toBe('number');
    const c = await RawClient.connect(srv.port);
    const g = await c.reply(3000);
    expect(g.code).toBe(220);
    c.close();
  });

  const phases: { name: string; steps: string[]; phase: string }[] = [
    { name: 'after the greeting', steps: [], phase: 'ready' },
    { name: 'inside DATA', steps: ['MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.com>', 'DATA'], phase: 'data' },
  ];
  it.each(phases)('a hang-up $name is one HANGUP verdict with its phase', async ({ steps, phase }) => {
    srv = await startServer({});
    const hangups: Record<string, unknown>[] = [];
    srv.server.on('verdict', (v) => v.tag === 'HANGUP' && hangups.push(v.details));
    const c = await greeted(srv.port);
    for (const s of steps) await c.cmd(s);
    c.socket.end();
    expect(await until(() => srv!.server.activeSessions === 0, 1000)).toBe(true);
    expect(hangups).toEqual([expect.objectContaining({ phase })]);
  });

  it('a hang-up while a tarpit delay is pending frees the slot before the delay ends', async () => {
    srv = await startServer({ errorDelay: 3000 });
    const c = await greeted(srv.port);
    c.send('XBAD\r\n');
    c.send('XBAD\r\n');
    await new Promise((r) => setTimeout(r, 100));
    c.socket.end();
    expect(await until(() => srv!.server.activeSessions === 0, 1000)).toBe(true);
  });
});

describe('HELO/EHLO arguments with control characters', () => {
  const cases = [
    { name: 'OSC title (ESC ] 0 ; … BEL)', arg: '\x1b]0;pwned\x07' },
    { name: 'colour (ESC [ 31 m)', arg: 'a\x1b[31mb' },
    { name: 'OSC 52 clipboard', arg: '\x1b]52;c;aGk=\x07' },
    { name: 'NUL', arg: 'a\x00b' },
    { name: 'DEL', arg: 'a\x7fb' },
  ];
  it.each(cases)('$name gets 501 and is not taken as the HELO name', async ({ arg }) => {
    srv = await startServer({});
    const c = await RawClient.connect(srv.port);
    await c.reply();
    for (const verb of ['HELO', 'EHLO']) {
      const r = await c.cmd(`${verb} ${arg}`);
      expect(r.code).toBe(501);
    }
    expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(503);
  });
});

describe('a sink that pushes back when the final dot arrives (slow disk)', () => {
  it('the session reads on after the reply: the next command is answered at once', async () => {
    let release: (() => void) | null = null;
    const sink = (): MessageSink => ({
      write: () =>
        new Promise<void>((r) => {
          release = r;
        }),
      end: () => replies.queued('slow'),
      abort() {},
    });
    const hooks: SessionHooks = { dataStart: () => sink() };
    eng = await startEngine(hooks);
    const c = await greeted(eng.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    // Body and final dot in one write: the write that fills the sink is the one with the dot.
    c.send('Subject: slow\r\n\r\nbody\r\n.\r\n');
    await until(() => release !== null, 1000);
    setTimeout(() => release!(), 100);
    expect((await c.reply(2000)).code).toBe(250);
    // The bug left the socket paused until the idle timeout (receiveTimeout 5 s): anything well
    // under it is 'at once', with room for a busy machine.
    const t0 = Date.now();
    expect((await c.cmd('NOOP', 2500)).code).toBe(250);
    expect(Date.now() - t0).toBeLessThan(2500);
    expect((await c.cmd('QUIT')).code).toBe(221);
  });
});
