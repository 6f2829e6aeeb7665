// Session edges the conformance table cannot script: a client that half-closes (FIN) with
// commands queued, in the middle of a line or of DATA, or right after the final dot; and a
// maximum-size body with the next transaction pipelined behind its dot, in one write, while
// the store pushes back (the chunk with the dot fills its write buffer: issue 12.2).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient, greeted, sessionWaitsForClientClose } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { noTemporaries } from '../helpers/temporaries.js';

let srv: TestServer;
const verdicts: { tag: string; details: Record<string, unknown> }[] = [];
beforeAll(async () => {
  srv = await startServer({ maxDataSize: 2_097_152 });
  srv.server.on('verdict', (v) => verdicts.push({ tag: v.tag, details: v.details }));
});
afterAll(async () => {
  await srv.close();
});

/** All bytes until the server closes (bounded). */
async function rest(c: RawClient, ms = 5000): Promise<string> {
  expect(await c.waitClose(ms), 'the server closes').toBe(true);
  return c.pending;
}

/** Store files (.eml/.json and temporaries) once temporaries settle. */
async function settled(): Promise<string[]> {
  await noTemporaries(() => srv.files());
  return srv.files();
}

const hangups = () => verdicts.filter((v) => v.tag === 'HANGUP');

describe('a client that half-closes', () => {
  it('with commands queued: every one is answered, then the session closes', async () => {
    const c = await greeted(srv.port);
    c.send('MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRSET\r\n');
    c.socket.end();
    expect(await rest(c)).toBe('250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.0.0 Reset ok\r\n');
  });

  it('in the middle of a command line: no reply, closed at once, a HANGUP', async () => {
    const before = hangups().length;
    const c = await greeted(srv.port);
    c.send('NOO');
    c.socket.end();
    expect(await rest(c, 2000)).toBe('');
    for (const end = Date.now() + 1000; hangups().length === before && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    expect(hangups().length).toBe(before + 1);
  });

  it('in the middle of DATA: nothing is stored, no 250, closed, a HANGUP in the data phase', async () => {
    const files = srv.files().length;
    const before = hangups().length;
    const c = await greeted(srv.port);
    expect((await c.cmd('MAIL FROM:<a@b.example>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<c@d.example>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    c.send('Subject: cut\r\n\r\nhalf a message\r\n');
    c.socket.end();
    expect(await rest(c, 2000)).toBe('');
    expect((await settled()).length).toBe(files);
    for (const end = Date.now() + 1000; hangups().length === before && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
    expect(hangups().slice(before).map((v) => v.details.phase)).toEqual(['data']);
  });

  it('right after the final dot: the message is stored and acknowledged, then closed', async () => {
    const c = await greeted(srv.port);
    expect((await c.cmd('MAIL FROM:<a@b.example>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<c@d.example>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    c.send('Subject: last words\r\n\r\nbye\r\n.\r\n');
    c.socket.end();
    const text = await rest(c);
    const id = /^250 2\.0\.0 Ok: queued as ([0-9a-z]{17})\r\n$/.exec(text)?.[1];
    expect(id, text).toBeDefined();
    const m = srv.messages().find((x) => x.meta.id === id)!;
    expect(m.eml.subarray(m.meta.sizes.headers).toString()).toBe('Subject: last words\r\n\r\nbye\r\n');
  });
});

describe('backpressure', () => {
  it('a maximum-size body with the next transaction pipelined behind its dot: all answered, both stored exactly', { timeout: 20_000 }, async () => {
    const c = await greeted(srv.port);
    expect((await c.cmd('MAIL FROM:<big@b.example>')).code).toBe(250);
    expect((await c.cmd('RCPT TO:<c@d.example>')).code).toBe(250);
    expect((await c.cmd('DATA')).code).toBe(354);
    // 2,097,152 octets exactly: 2,048 lines of 1,022 octets + CRLF.
    const line = (i: number) => `${String(i).padStart(6, '0')} ${'x'.repeat(1015)}\r\n`;
    const big = Array.from({ length: 2048 }, (_, i) => line(i)).join('');
    expect(big.length).toBe(2_097_152);
    c.send(big + '.\r\nMAIL FROM:<next@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n');
    const replies = [await c.reply(15_000), await c.reply(), await c.reply(), await c.reply()];
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250, 354]);
    c.send('Subject: small\r\n\r\nafter the big one\r\n.\r\n');
    const second = await c.reply(10_000);
    expect(second.code).toBe(250);
    expect((await c.cmd('QUIT')).code).toBe(221);
    const byId = new Map(srv.messages().map((m) => [m.meta.id, m]));
    const body = (r: { text: string }) => {
      const m = byId.get(/queued as ([0-9a-z]+)/.exec(r.text)![1]!)!;
      return m.eml.subarray(m.meta.sizes.headers).toString('latin1');
    };
    expect(body(replies[0]!) === big).toBe(true);
    expect(body(second)).toBe('Subject: small\r\n\r\nafter the big one\r\n');
  });
});

describe('a client that stops reading', () => {
  it('is cut off by receiveTimeout once our replies back up (TIMEOUT in the write phase) and its slot is freed', { timeout: 20_000 }, async () => {
    const slow = await startServer({ receiveTimeout: 600, maxJunkCommands: 1_000_000, doEarlyTalk: false });
    const seen: { tag: string; details: Record<string, unknown> }[] = [];
    slow.server.on('verdict', (v) => seen.push({ tag: v.tag, details: v.details }));
    try {
      const c = await greeted(slow.port);
      c.socket.pause(); // read nothing more: every reply stays in the socket buffers
      // 200,000 HELPs ask for ~20 MB of replies, far more than loopback buffers hold.
      c.send('HELP\r\n'.repeat(200_000));
      const t0 = Date.now();
      for (const end = t0 + 10_000; !seen.some((v) => v.tag === 'TIMEOUT') && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      expect(seen.filter((v) => v.tag === 'TIMEOUT').map((v) => v.details.phase)).toEqual(['write']);
      for (const end = Date.now() + 3000; slow.server.activeSessions > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      expect(slow.server.activeSessions).toBe(0);
      c.close();
      // And the next client is served.
      const d = await greeted(slow.port);
      expect((await d.cmd('QUIT')).code).toBe(221);
      d.close();
    } finally {
      await slow.close();
    }
  });
});


describe('after QUIT', () => {
  // The server closes its socket once the 221 is written, without waiting for the client's
  // FIN: a client that keeps its side open (allowHalfOpen) still gets the 221 and the FIN,
  // and the session is gone at once, not after the 5 s linger that guards a 421's delivery.
  it('the 221, then the FIN, and the session ends without the client closing', async () => {
    const { connect } = await import('node:net');
    const sock = connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    const gone = new Promise<number>((r) => srv.server.once('disconnect', () => r(Date.now())));
    let text = '';
    const ended = new Promise<void>((r) => sock.once('end', r));
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (/^220 [^\n]*\r\n$/.test(text)) sock.write('HELO client.test\r\n');
      else if (/\r\n250 [^\n]*\r\n$/.test(text)) sock.write('QUIT\r\n');
    });
    const t0 = Date.now();
    const bounded = <T>(p: Promise<T>) => Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 3000))]);
    expect(await bounded(ended)).toBeUndefined();
    expect(text).toMatch(/\r\n221 2\.0\.0 .* closing connection\r\n$/);
    const at = await bounded(gone);
    expect(at).not.toBe('timeout');
    expect((at as number) - t0).toBeLessThan(3000);
    sock.destroy();
  });

  // A 421 is not a QUIT: the client may still be sending, and a close with its data unread
  // would answer that data with a reset that can take the 421 with it. The session waits
  // for the client's FIN (or the linger) instead.
  it('a 421 keeps waiting for a half-open client to close its side', async () => {
    const s421 = await startServer({ maxSmtpErrors: 1 });
    try {
      const { connect } = await import('node:net');
      let goneAt = 0;
      s421.server.once('disconnect', () => (goneAt = Date.now()));
      const sock = connect({ port: s421.port, host: '127.0.0.1', allowHalfOpen: true });
      sock.on('error', () => {});
      let text = '';
      const ended = new Promise<void>((r) => sock.once('end', r));
      sock.on('data', (d) => {
        text += d.toString('latin1');
        if (/^220 [^\n]*\r\n$/.test(text) || /^220 [^\n]*\r\n5\d\d [^\n]*\r\n$/.test(text)) sock.write('BOGUS\r\n');
      });
      await Promise.race([ended, new Promise((r) => setTimeout(r, 3000))]);
      expect(text).toMatch(/\r\n421 [^\n]*\r\n$/);
      expect(await sessionWaitsForClientClose(sock, () => goneAt)).toEqual({ heldWhileOpen: true, goneAfterClose: true });
    } finally {
      await s421.close();
    }
  });
});
