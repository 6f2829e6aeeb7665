// Volume is an input: thousands of pipelined commands in one write, in every state, are
// answered one reply per command, in order (or cut by a documented limit with 421), with
// no internal error, and the daemon goes on serving. Real sockets on 127.0.0.1.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';
import { RawClient } from '../helpers/client.js';

/** Reads whole reply lines from a socket without re-copying what it already parsed. */
class Lines {
  codes: string[] = [];
  closed = false;
  private rest = '';
  private wake: (() => void) | null = null;
  constructor(readonly sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      const text = this.rest + d;
      let pos = 0;
      for (let nl = text.indexOf('\r\n'); nl >= 0; nl = text.indexOf('\r\n', pos)) {
        const line = text.slice(pos, nl);
        pos = nl + 2;
        if (!/^\d{3}[ -]/.test(line)) throw new Error(`malformed reply ${JSON.stringify(line)}`);
        if (line[3] === ' ') this.codes.push(line.slice(0, 9).trim());
      }
      this.rest = text.slice(pos);
      this.wake?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    sock.on('error', () => undefined);
  }
  static open(port: number): Promise<Lines> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host: '127.0.0.1' });
      s.once('connect', () => resolve(new Lines(s)));
      s.once('error', reject);
    });
  }
  /** Wait until `n` final reply lines arrived or the server closed; bounded. */
  async until(n: number, ms = 15_000): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (this.codes.length < n && !this.closed && Date.now() < deadline) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    return this.codes;
  }
  send(s: string): void {
    this.sock.write(s);
  }
}

const repeat = (line: string, n: number) => `${line}\r\n`.repeat(n);
const MSG = 'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n';
const BODY = 'Subject: volume\r\n\r\nhello\r\n.\r\n';

let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

/** A fresh client is served after the flood: the process and its listener are alive. */
async function stillServes(port: number): Promise<void> {
  const c = await RawClient.connect(port);
  expect((await c.reply()).code).toBe(220);
  expect((await c.cmd('EHLO after.test')).code).toBe(250);
  expect((await c.cmd('QUIT')).code).toBe(221);
  c.close();
}

describe('pipelined batches in one write', () => {
  const N = 5000;
  const cases: { name: string; config: Record<string, unknown>; script: string; expected: () => string[] }[] = [
    {
      name: `${N} RSETs after DATA's final dot, junk limit raised: every one answered`,
      config: { maxJunkCommands: 1_000_000, storeData: false },
      script: 'EHLO c.test\r\n' + MSG + BODY + repeat('RSET', N) + 'QUIT\r\n',
      expected: () => ['220', '250', '250 2.1.0', '250 2.1.5', '354', '250 2.0.0', ...Array<string>(N).fill('250 2.0.0'), '221 2.0.0'],
    },
    {
      name: `${N} RSETs after DATA's final dot, default junk limit: 100 answered, then 421`,
      config: { storeData: false },
      script: 'EHLO c.test\r\n' + MSG + BODY + repeat('RSET', N) + 'QUIT\r\n',
      expected: () => ['220', '250', '250 2.1.0', '250 2.1.5', '354', '250 2.0.0', ...Array<string>(100).fill('250 2.0.0'), '421 4.7.0'],
    },
    {
      name: `${N} RSETs before the greeting with earlyTalkAction ignore`,
      config: { bannerDelay: 200, doEarlyTalk: true, earlyTalkAction: 'ignore', maxJunkCommands: 1_000_000, storeData: false },
      script: 'EHLO c.test\r\n' + repeat('RSET', N) + 'QUIT\r\n',
      expected: () => ['220', '250', ...Array<string>(N).fill('250 2.0.0'), '221 2.0.0'],
    },
    {
      name: `${N} NOOP-free junk inside a transaction (RSET/MAIL pairs)`,
      config: { maxJunkCommands: 1_000_000, storeData: false },
      script: 'EHLO c.test\r\n' + repeat('MAIL FROM:<a@example.org>\r\nRSET', N / 2) + 'QUIT\r\n',
      expected: () => ['220', '250', ...Array<string[]>(N / 2).fill(['250 2.1.0', '250 2.0.0']).flat(), '221 2.0.0'],
    },
    {
      name: '1,500 RCPTs in one write: one 250 or 452 per RCPT, in order',
      config: { storeData: false },
      script: 'EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n' + Array.from({ length: 1500 }, (_, i) => `RCPT TO:<u${i}@example.com>\r\n`).join('') + 'QUIT\r\n',
      expected: () => ['220', '250', '250 2.1.0', ...Array<string>(100).fill('250 2.1.5'), ...Array<string>(1400).fill('452 4.5.3'), '221 2.0.0'],
    },
    {
      name: 'RCPTs past the overshoot limit end the session with 421',
      config: { storeData: false, maxRcptOvershoot: 50 },
      script: 'EHLO c.test\r\nMAIL FROM:<a@example.org>\r\n' + repeat('RCPT TO:<u@example.com>', 400) + 'QUIT\r\n',
      expected: () => ['220', '250', '250 2.1.0', ...Array<string>(100).fill('250 2.1.5'), ...Array<string>(50).fill('452 4.5.3'), '421 4.7.0'],
    },
    {
      name: '200 whole messages pipelined in one write are all stored and answered',
      config: { maxMessages: 1000 },
      script: 'EHLO c.test\r\n' + repeat(MSG + BODY.slice(0, -2), 200) + 'QUIT\r\n',
      expected: () => ['220', '250', ...Array<string[]>(200).fill(['250 2.1.0', '250 2.1.5', '354', '250 2.0.0']).flat(), '221 2.0.0'],
    },
  ];

  it.each(cases)('$name', async ({ config, script, expected }) => {
    // The scripts do not wait after EHLO or DATA: early talk is logged, never acted on.
    srv = await startServer({ earlyTalkAction: 'ignore', ...config });
    const faults: string[] = [];
    srv.server.on('verdict', (v) => {
      if (v.tag === 'SESSION_FAULT') faults.push(String(v.details.error));
    });
    const c = await Lines.open(srv.port);
    c.send(script);
    const want = expected();
    const got = await c.until(want.length);
    // Compare as a whole, so one missing, extra or reordered reply fails.
    expect(got.length).toBe(want.length);
    expect(got.map((g, i) => (g.startsWith(want[i]!) ? want[i] : g))).toEqual(want);
    expect(faults).toEqual([]);
    c.sock.destroy();
    await stillServes(srv.port);
  });

  it('the batch split into writes at random offsets gives the same replies', async () => {
    srv = await startServer({ storeData: false, maxJunkCommands: 1_000_000, earlyTalkAction: 'ignore' });
    const script = 'EHLO c.test\r\n' + MSG + BODY + repeat('RSET', 3000) + repeat('NOOP', 5) + 'QUIT\r\n';
    const c = await Lines.open(srv.port);
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let at = 0; at < script.length; ) {
      const n = 1 + Math.floor(rnd() * 700);
      c.send(script.slice(at, at + n));
      at += n;
    }
    const got = await c.until(6 + 3000 + 5 + 1);
    expect(got.slice(-7)).toEqual([...Array<string>(6).fill('250 2.0.0'), '221 2.0.0']);
    expect(got.length).toBe(6 + 3000 + 5 + 1);
  });
});

describe('pending input is not copied over and over', () => {
  it('a deep batch arriving in small pieces while the session is busy costs linear copying', async () => {
    // The tarpit holds the reply to XBAD for 1 s; meanwhile 2,000 RSETs arrive in 40-byte pieces.
    srv = await startServer({ maxJunkCommands: 1_000_000, earlyTalkAction: 'ignore', errorDelay: 1000 });
    const c = await Lines.open(srv.port);
    await c.until(1);
    c.send('EHLO c.test\r\n');
    await c.until(2);
    const concat = vi.spyOn(Buffer, 'concat');
    const batch = repeat('RSET', 2000);
    c.send('XBAD\r\n');
    // One piece per turn of the event loop, so each arrives as a read of its own.
    for (let i = 0; i < batch.length; i += 40) {
      c.send(batch.slice(i, i + 40));
      await new Promise((r) => setImmediate(r));
    }
    c.send('QUIT\r\n');
    const got = await c.until(2 + 1 + 2000 + 1);
    expect(got[2]).toBe('500 5.5.1');
    expect(got.at(-1)).toBe('221 2.0.0');
    let copied = 0;
    for (const call of concat.mock.calls) for (const b of call[0]) copied += b.length;
    concat.mockRestore();
    // Each byte may be copied a few times (a line straddling two pieces), never once per piece.
    expect(copied).toBeLessThan(4 * (batch.length + 200));
  });
});
