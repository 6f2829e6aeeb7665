// End to end through createServer() on 127.0.0.1: nodemailer's SMTP client (with pipelining),
// exact storage with trace headers and metadata, store failures, tempfail after storing,
// maxSessions, whole-line timeouts, memory-bounded long lines, resets mid-DATA, and events.
import { afterEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import nodemailer from 'nodemailer';
import { RawClient, greeted } from './helpers/client.js';
import { startServer, type TestServer } from './helpers/server.js';

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

async function sendRaw(port: number, body: string | Buffer, rcpts = ['<b@example.com>']): Promise<string> {
  const c = await greeted(port);
  try {
    expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
    for (const r of rcpts) expect((await c.cmd(`RCPT TO:${r}`)).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    c.send(body);
    return (await c.reply()).raw;
  } finally {
    c.close();
  }
}

describe('nodemailer delivers and the corpus holds it exactly', () => {
  it('stores the message with Received, trace headers and metadata', async () => {
    srv = await startServer();
    const seen: string[] = [];
    srv.server.on('message', (m) => seen.push(m.metadata.id));
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: srv.port, secure: false, ignoreTLS: true, name: 'sender.test' });
    const info = await t.sendMail({ from: 'alice@example.org', to: ['bob@example.com', 'carol@example.com'], subject: 'hi', text: 'line one\n.leading dot\nlast' });
    t.close();
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]{17}$/);
    const [m] = srv.messages();
    expect(m).toBeDefined();
    const eml = m!.eml.toString('utf8');
    expect(eml).toMatch(/^Received: from sender\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test \(fakemx\) with ESMTP id [0-9a-z]{17};\r\n\t\w{3}, /);
    expect(eml).toContain('X-FakeMX-Helo: sender.test\r\n');
    expect(eml).toContain('X-FakeMX-Mail-From: <alice@example.org>\r\n');
    expect(eml).toContain('X-FakeMX-Rcpt-To: <bob@example.com>\r\nX-FakeMX-Rcpt-To: <carol@example.com>\r\n');
    expect(eml).toMatch(/X-FakeMX-Client: 127\.0\.0\.1:\d+\r\n/);
    expect(eml).toContain('\r\n.leading dot\r\n'); // unstuffed
    expect(m!.meta.envelope).toMatchObject({ mailFrom: 'alice@example.org', rcptTo: ['bob@example.com', 'carol@example.com'] });
    expect(m!.meta.client).toMatchObject({ ip: '127.0.0.1', helo: 'sender.test', esmtp: true });
    expect(m!.meta.sizes.file).toBe(m!.eml.length);
    expect(seen).toEqual([m!.meta.id]);
    expect(info.response).toContain(m!.meta.id);
  });

  it('keeps bytes exactly: lone CR and LF, 8-bit, dot-stuffing', async () => {
    srv = await startServer();
    const body = Buffer.from('Subject: x\r\n\r\na\rb\nc\r\n..dot\r\n\xe9t\xe9\r\n.\r\n', 'latin1');
    expect(await sendRaw(srv.port, body)).toMatch(/^250 /);
    const eml = srv.messages()[0]!.eml;
    const stored = eml.subarray(eml.indexOf('Subject: x'));
    expect(stored.equals(Buffer.from('Subject: x\r\n\r\na\rb\nc\r\n.dot\r\n\xe9t\xe9\r\n', 'latin1'))).toBe(true);
  });

  it('one Received "for" clause only with a single recipient', async () => {
    srv = await startServer();
    await sendRaw(srv.port, 'x\r\n.\r\n', ['<only@example.com>']);
    expect(srv.messages()[0]!.eml.toString()).toMatch(/id [0-9a-z]{17}\r\n\tfor <only@example\.com>;/);
  });

  it('CR/LF in HELO cannot inject a header', async () => {
    srv = await startServer();
    const c = await RawClient.connect(srv.port);
    await c.reply();
    // A bare CR inside the line is not a line end: it must not reach the header raw.
    expect((await c.cmd('EHLO evil\rX-Injected: yes')).code).toBe(501);
    expect((await c.cmd('EHLO ok.test')).code).toBe(250);
    c.close();
  });
});

describe('store failures and tempfail', () => {
  it('an unwritable store answers 451 4.3.0 and leaves no file', async () => {
    srv = await startServer();
    if (process.getuid?.() === 0) {
      // root ignores permissions: make the day directory a file instead.
      const day = new Date().toISOString().slice(0, 10);
      mkdirSync(srv.store, { recursive: true });
      const { writeFileSync, rmSync } = await import('node:fs');
      rmSync(`${srv.store}/${day}`, { recursive: true, force: true });
      writeFileSync(`${srv.store}/${day}`, 'not a directory');
      expect(await sendRaw(srv.port, 'x\r\n.\r\n')).toMatch(/^451 4\.3\.0 /);
      rmSync(`${srv.store}/${day}`);
    } else {
      chmodSync(srv.store, 0o500);
      expect(await sendRaw(srv.port, 'x\r\n.\r\n')).toMatch(/^451 4\.3\.0 /);
      chmodSync(srv.store, 0o700);
    }
    expect(srv.files().filter((f) => f.endsWith('.eml') || f.includes('.tmp-'))).toEqual([]);
  });

  it('doTempFail with storeData: stored durably, then 421 4.3.2 and close', async () => {
    srv = await startServer({ doTempFail: true, storeData: true });
    const tags: string[] = [];
    srv.server.on('verdict', (v) => tags.push(v.tag));
    const c = await greeted(srv.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    expect((await c.cmd('DATA')).code).toBe(354);
    c.send('Subject: spam\r\n\r\nbuy\r\n.\r\n');
    const r = await c.reply();
    expect(r.raw).toBe('421 4.3.2 Service temporarily unavailable, closing transmission channel\r\n');
    expect(await c.waitClose()).toBe(true);
    const [m] = srv.messages();
    expect(m!.meta.tempfailed).toBe(true);
    expect(m!.meta.verdicts.map((v) => v.tag)).toContain('TEMPFAIL');
    expect(tags).toContain('TEMPFAIL');
  });

  it('doTempFail: SIZE over maxDataSize at MAIL is a TEMPFAIL (421 4.3.2), never 552', async () => {
    srv = await startServer({ doTempFail: true, storeData: false, maxDataSize: 10000 });
    const verdicts: { tag: string; details: Record<string, unknown> }[] = [];
    srv.server.on('verdict', (v) => verdicts.push({ tag: v.tag, details: v.details }));
    const c = await greeted(srv.port);
    expect((await c.cmd('MAIL FROM:<a@example.org> SIZE=10001')).raw).toBe('421 4.3.2 Service temporarily unavailable, closing transmission channel\r\n');
    expect(await c.waitClose()).toBe(true);
    expect(verdicts).toContainEqual({ tag: 'TEMPFAIL', details: { at: 'MAIL', reason: 'size' } });
  });

  it('storeData false is a sink: 250 and nothing on disk', async () => {
    srv = await startServer({ storeData: false });
    expect(await sendRaw(srv.port, 'x\r\n.\r\n')).toMatch(/^250 2\.0\.0/);
    expect(srv.files()).toEqual([]);
  });
});

describe('connection limits and timeouts', () => {
  it('maxSessions: one more gets 421 4.3.2 too busy at once', async () => {
    srv = await startServer({ maxSessions: 2, bannerDelay: 2000 });
    const a = await RawClient.connect(srv.port);
    const b = await RawClient.connect(srv.port);
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const c = await RawClient.connect(srv.port);
    const r = await c.reply(1500);
    expect(Date.now() - t0).toBeLessThan(1500); // 'at once': long before the 2 s banner delay
    expect(r.raw).toBe('421 4.3.2 mx.test too busy, try later\r\n');
    expect(await c.waitClose()).toBe(true);
    for (const x of [a, b, c]) x.close();
  });

  it('connections refused past maxSessionsPerIp and kept open by the bot do not take maxSessions', async () => {
    // Each refused session waited up to 5 s for the client's FIN and counted as one of
    // maxSessions meanwhile: one address (per-IP limit 4, maxSessions 32) opening 60
    // connections got 4 sessions and 28 per-IP 421s, and the next 28 and every other client got
    // "too busy". A session that has said its last word no longer takes a slot.
    srv = await startServer({ maxSessions: 8, maxSessionsPerIp: 2, bannerDelay: 2000 });
    // The bot reads the 421 and never sends its FIN (a half-open socket that keeps its side).
    const port = srv.port;
    const bot = await Promise.all(
      Array.from({ length: 30 }, () => new Promise<{ sock: Socket; got: () => string }>((ok, ko) => {
        let got = '';
        const sock = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1', allowHalfOpen: true }, () => ok({ sock, got: () => got }));
        sock.on('data', (d) => (got += d.toString('latin1')));
        sock.on('error', ko);
      })),
    );
    await new Promise((r) => setTimeout(r, 300));
    const said = bot.map((b) => b.got());
    expect(said.filter((x) => x === '')).toHaveLength(2); // its 2 sessions wait out the banner delay
    expect(said.filter((x) => x === '421 4.7.0 too many connections from your address\r\n')).toHaveLength(28);
    // At most maxSessions refused ones linger for their FIN (sockets the server still holds); it let the older 20 go.
    expect(srv.server.activeSessions).toBe(2 + 8);
    const other = await RawClient.connect(port, { localAddress: '127.0.0.2' });
    expect((await other.reply(3000)).code).toBe(220);
    other.close();
    for (const b of bot) b.sock.destroy();
  });

  it('receiveTimeout is a whole-line limit: a byte-a-tick dripper is cut off', async () => {
    srv = await startServer({ receiveTimeout: 300 });
    const c = await greeted(srv.port);
    const t0 = Date.now();
    const drip = setInterval(() => c.send('N'), 50);
    const r = await c.reply(2000);
    clearInterval(drip);
    expect(r.raw).toBe('421 4.4.2 mx.test timeout, closing connection\r\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await c.waitClose()).toBe(true);
  });

  it('an idle DATA phase times out too', async () => {
    srv = await startServer({ receiveTimeout: 300 });
    const c = await greeted(srv.port);
    await c.cmd('MAIL FROM:<>');
    await c.cmd('RCPT TO:<b@example.com>');
    expect((await c.cmd('DATA')).code).toBe(354);
    c.send('partial body');
    expect((await c.reply(2000)).code).toBe(421);
    expect(await c.waitClose()).toBe(true);
    // The partial temporary file is removed asynchronously, right after the close.
    for (let i = 0; i < 100 && srv.files().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(srv.files()).toEqual([]);
  });

  it('a 1 MB line without LF gets 500 5.5.2 and memory stays bounded', async () => {
    srv = await startServer();
    const c = await greeted(srv.port);
    const before = process.memoryUsage().rss;
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 16; i++) c.send(chunk);
    c.send('\r\n');
    const r = await c.reply(5000);
    expect(r.code).toBe(500);
    expect(r.enhanced).toBe('5.5.2');
    expect((await c.cmd('NOOP')).code).toBe(250);
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 1024 * 1024);
    c.close();
  });

  it('a reset mid-DATA leaves no file and other sessions carry on', async () => {
    srv = await startServer();
    const closes: string[] = [];
    srv.server.on('disconnect', (_s, info) => closes.push(info.reason));
    const bystander = await greeted(srv.port);
    const c = await greeted(srv.port);
    await c.cmd('MAIL FROM:<>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    c.send('Subject: half\r\n\r\n' + 'y'.repeat(100_000));
    await new Promise((r) => setTimeout(r, 50));
    c.socket.resetAndDestroy();
    for (const end = Date.now() + 5000; closes.length === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    expect(closes).toHaveLength(1);
    // The aborted temporary is unlinked once its open settles, which may trail the close on a busy machine.
    for (const end = Date.now() + 5000; srv.files().length > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    expect(srv.files()).toEqual([]);
    expect((await bystander.cmd('NOOP')).code).toBe(250);
    expect(srv.server.activeSessions).toBe(1);
    bystander.close();
  });

  it('a pipelined batch split into single bytes is answered in order', async () => {
    srv = await startServer();
    const c = await greeted(srv.port);
    const batch = 'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRSET\r\nNOOP\r\n';
    for (const ch of batch) {
      c.send(ch);
      await new Promise((r) => setImmediate(r));
    }
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await c.reply()).code);
    expect(codes).toEqual([250, 250, 250, 250, 250]);
    c.close();
  });
});

describe('events', () => {
  it("'listening' carries the bound listeners", async () => {
    const { createServer } = await import('../src/server.js');
    const s = createServer({ config: { listenAddress: '127.0.0.1', listenPort: 0, storeData: false } });
    const seen = new Promise<unknown>((r) => s.once('listening', r));
    const infos = await s.listen();
    expect(await seen).toEqual(infos);
    expect(infos[0]).toMatchObject({ address: '127.0.0.1', tls: 'none' });
    expect(infos[0]!.port).toBeGreaterThan(0);
    await s.close(0);
  });

  it('FAKEMX_* variables apply from process.env by default; createServer({ env }) reads those given instead', async () => {
    const { createServer } = await import('../src/server.js');
    const config = { listenAddress: '127.0.0.1', listenPort: 0, storeData: false };
    const before = process.env.FAKEMX_HOST_NAME;
    process.env.FAKEMX_HOST_NAME = 'from-env.test';
    try {
      expect(createServer({ config }).config.hostName).toBe('from-env.test');
      expect(createServer({ config, env: {} }).config.hostName).not.toBe('from-env.test');
      expect(createServer({ config, env: { FAKEMX_HOST_NAME: 'given.test' } }).config.hostName).toBe('given.test');
    } finally {
      if (before === undefined) delete process.env.FAKEMX_HOST_NAME;
      else process.env.FAKEMX_HOST_NAME = before;
    }
  });

  it('listening, connect, command, disconnect, close', async () => {
    srv = await startServer({ verboseLogging: true });
    const ev: string[] = [];
    srv.server.on('connect', () => ev.push('connect'));
    srv.server.on('command', (_s, line) => ev.push(`command:${line}`));
    srv.server.on('disconnect', () => ev.push('disconnect'));
    const closed = new Promise<void>((r) => srv!.server.once('close', () => r()));
    const c = await greeted(srv.port);
    await c.cmd('QUIT');
    await c.waitClose();
    for (let i = 0; i < 50 && !ev.includes('disconnect'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(ev).toEqual(['connect', 'command:EHLO client.test', 'command:QUIT', 'disconnect']);
    await srv.close();
    srv = undefined;
    await closed;
  });

  it('command and reply events reach listeners added while running, without verbose logging, until removed', async () => {
    srv = await startServer({ verboseLogging: false, maxSmtpNoop: 100 });
    const c = await greeted(srv.port);
    const got: string[] = [];
    const a = (_s: unknown, line: string) => got.push(`a:${line}`);
    const b = (_s: unknown, line: string) => got.push(`b:${line}`);
    const onReply = (_s: unknown, r: { code: number }) => got.push(`reply:${r.code}`);
    srv.server.on('command', a);
    srv.server.on('command', b);
    srv.server.on('reply', onReply);
    await c.cmd('NOOP');
    expect(got).toEqual(['a:NOOP', 'b:NOOP', 'reply:250']);
    // One of two command listeners removed: the other still hears.
    srv.server.off('command', a);
    srv.server.off('reply', onReply);
    got.length = 0;
    await c.cmd('NOOP');
    expect(got).toEqual(['b:NOOP']);
    srv.server.off('command', b);
    await c.cmd('NOOP');
    expect(got).toEqual(['b:NOOP']);
    await c.cmd('QUIT');
  });

  it('a second close() resolves only once the server is closed', async () => {
    srv = await startServer({ storeData: false });
    const { server: s, port } = srv;
    srv = undefined;
    const c = await greeted(port);
    let closed = false;
    s.once('close', () => (closed = true));
    const first = s.close(300);
    await s.close(300);
    expect(closed).toBe(true);
    await first;
    c.close();
  });

  it('a raw socket that closes at once does not disturb the server', async () => {
    srv = await startServer();
    for (let i = 0; i < 20; i++) {
      const s = connect(srv.port, '127.0.0.1');
      s.on('error', () => undefined);
      s.on('connect', () => s.destroy());
    }
    await new Promise((r) => setTimeout(r, 100));
    const c = await greeted(srv.port);
    expect((await c.cmd('NOOP')).code).toBe(250);
    c.close();
  });
});
