// CHUNKING / BDAT (RFC 3030) conformance table: each named case is a session driven by a raw
// socket client of our own against a real server on 127.0.0.1 (Postfix's client does not
// send BDAT and Python's smtplib cannot). Every reply is read and checked, in order; after
// the last step the next reply must be the 221 to our QUIT (or the server has closed), so an
// extra or a missing reply fails the case. The messages the case stored are compared byte
// for byte with what its chunks carried, with their record's transfer and chunk count.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { endCase, RawClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { noTemporaries } from '../helpers/temporaries.js';

interface Step {
  /** A command line (CRLF added). */
  send?: string;
  /** Exact octets. */
  raw?: string | Buffer;
  /** Send `raw` in pieces of this many octets, one write each, `gap` ms apart (default 2). */
  split?: number;
  gap?: number;
  /** Replies expected, in order: "250", "250 2.0.0", "250 2.0.0 /regex/". */
  expect?: string | string[];
  /** Wait this long before the next step (ms). */
  pause?: number;
}
interface Case {
  name: string;
  config?: Record<string, unknown>;
  steps: Step[];
  /** The server closes the connection after the last step. */
  closes?: boolean;
  /** Bodies of the messages stored, in order, exactly. */
  stored?: (string | Buffer)[];
  /** Their records' transfer and chunks (undefined = no chunks field). */
  records?: { transfer: 'DATA' | 'BDAT'; chunks?: number; tempfailed?: boolean; body?: string | null }[];
}

const env: Step[] = [
  { send: 'MAIL FROM:<a@example.org>', expect: '250 2.1.0' },
  { send: 'RCPT TO:<b@example.com>', expect: '250 2.1.5' },
];
const QUEUED = '250 2.0.0 /queued as/';
const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const smuggle = 'Subject: s\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nforged\r\n.\r\n\n.\n\r.\r';
const big = 'x'.repeat(2000);

const cases: Case[] = [
  { name: 'EHLO advertises CHUNKING (not BINARYMIME)', steps: [{ send: 'EHLO again.test', expect: '250 /\nCHUNKING$/' }] },
  { name: 'BINARYMIME is advertised when enabled', config: { binaryMime: true }, steps: [{ send: 'EHLO again.test', expect: '250 /\nCHUNKING\nBINARYMIME$/' }] },
  { name: 'chunking false: no CHUNKING, BDAT is an unknown command', config: { chunking: false }, steps: [{ send: 'EHLO again.test', expect: '250 /SMTPUTF8$/' }, ...env, { send: 'BDAT 5 LAST', expect: '500 5.5.1' }] },
  {
    name: 'one LAST chunk is stored byte-exact (no CRLF at the end, no dot rules)',
    steps: [...env, { raw: 'BDAT 12 LAST\r\nHello\r\nWorld', expect: QUEUED }],
    stored: ['Hello\r\nWorld'],
    records: [{ transfer: 'BDAT', chunks: 1 }],
  },
  {
    name: 'chunks answered one by one, then BDAT 0 LAST',
    steps: [...env, { raw: 'BDAT 10\r\n0123456789', expect: '250 2.0.0 /Ok: 10 octets$/' }, { raw: 'BDAT 5\r\nabcde', expect: '250 2.0.0 /Ok: 5 octets$/' }, { send: 'BDAT 0 LAST', expect: QUEUED }],
    stored: ['0123456789abcde'],
    records: [{ transfer: 'BDAT', chunks: 3 }],
  },
  {
    name: 'several pipelined chunks in one write',
    steps: [{ raw: 'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 3\r\nabcBDAT 4\r\ndefgBDAT 2 LAST\r\nhiNOOP\r\n', expect: ['250 2.1.0', '250 2.1.5', '250 2.0.0 /3 octets/', '250 2.0.0 /4 octets/', QUEUED, '250'] }],
    stored: ['abcdefghi'],
    records: [{ transfer: 'BDAT', chunks: 3 }],
  },
  {
    name: 'one chunk split across many reads (command too)',
    steps: [...env, { raw: Buffer.concat([Buffer.from('BDAT 256 LAST\r\n'), bin]), split: 7, expect: QUEUED }],
    stored: [bin],
    records: [{ transfer: 'BDAT', chunks: 1 }],
  },
  {
    name: 'two messages pipelined, each in two chunks, in one write',
    steps: [{ raw: 'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 2\r\nm1BDAT 1 LAST\r\n!MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.com>\r\nBDAT 2\r\nm2BDAT 1 LAST\r\n?', expect: ['250', '250', '250 2.0.0 /2 octets/', QUEUED, '250', '250', '250 2.0.0 /2 octets/', QUEUED] }],
    stored: ['m1!', 'm2?'],
    records: [{ transfer: 'BDAT', chunks: 2 }, { transfer: 'BDAT', chunks: 2 }],
  },
  {
    name: 'smuggling inside a chunk is stored as data, never run',
    steps: [...env, { raw: `BDAT ${Buffer.byteLength(smuggle)} LAST\r\n${smuggle}`, expect: QUEUED }],
    stored: [smuggle],
    records: [{ transfer: 'BDAT', chunks: 1 }],
  },
  {
    name: 'leading dots are data (no unstuffing)',
    steps: [...env, { raw: 'BDAT 12 LAST\r\n..a\r\n.\r\n.b\r\n', expect: QUEUED }],
    stored: ['..a\r\n.\r\n.b\r\n'],
  },
  {
    name: 'BDAT 0 LAST alone stores an empty body',
    steps: [...env, { send: 'BDAT 0 LAST', expect: QUEUED }],
    stored: [''],
    records: [{ transfer: 'BDAT', chunks: 1 }],
  },
  {
    name: 'BDAT without MAIL: the chunk is read and dropped, then 503',
    steps: [{ raw: 'BDAT 6\r\nNOOP\r\n', expect: '503 5.5.1 /MAIL/' }],
  },
  {
    name: 'BDAT without RCPT: 503 after the chunk',
    steps: [{ send: 'MAIL FROM:<a@example.org>', expect: '250' }, { raw: 'BDAT 6 LAST\r\nRSET\r\n', expect: '503 5.5.1 /RCPT/' }, { send: 'RCPT TO:<b@example.com>', expect: '250 2.1.5' }],
  },
  {
    name: 'DATA after BDAT in one transaction is 503; BDAT goes on',
    steps: [...env, { raw: 'BDAT 5\r\nhello', expect: '250 2.0.0' }, { send: 'DATA', expect: '503 5.5.1 /BDAT/' }, { send: 'BDAT 0 LAST', expect: QUEUED }],
    stored: ['hello'],
  },
  {
    name: 'BDAT after LAST is 503 (the transaction is over)',
    steps: [...env, { raw: 'BDAT 1 LAST\r\nx', expect: QUEUED }, { raw: 'BDAT 1 LAST\r\ny', expect: '503 5.5.1' }],
    stored: ['x'],
  },
  { name: 'missing size is 501 and close', steps: [...env, { send: 'BDAT', expect: '501 5.5.4' }], closes: true },
  { name: 'non-numeric size is 501 and close', steps: [...env, { raw: 'BDAT abc\r\nabc', expect: '501 5.5.4' }], closes: true },
  { name: 'negative size is 501 and close', steps: [...env, { send: 'BDAT -1 LAST', expect: '501 5.5.4' }], closes: true },
  { name: 'unknown second argument is 501 and close', steps: [...env, { send: 'BDAT 3 FIRST', expect: '501 5.5.4' }], closes: true },
  { name: 'a size of 16 digits is 501 and close', steps: [...env, { send: 'BDAT 1234567890123456', expect: '501 5.5.4' }], closes: true },
  {
    name: 'a chunk past maxDataSize is read and dropped, 552, and the session goes on',
    config: { maxDataSize: 1024 },
    steps: [...env, { raw: `BDAT 2000 LAST\r\n${big}`, split: 500, expect: '552 5.3.4' }, ...env, { raw: 'BDAT 2 LAST\r\nok', expect: QUEUED }],
    stored: ['ok'],
  },
  {
    name: 'chunks passing maxDataSize together: 552 for each chunk of the transaction until LAST',
    config: { maxDataSize: 1024 },
    steps: [...env, { raw: `BDAT 1000\r\n${big.slice(0, 1000)}`, expect: '250 2.0.0' }, { raw: `BDAT 1000\r\n${big.slice(0, 1000)}`, expect: '552 5.3.4' }, { raw: 'BDAT 3 LAST\r\nend', expect: '552 5.3.4' }, { send: 'MAIL FROM:<a@example.org>', expect: '250 2.1.0' }],
  },
  {
    name: 'RSET between chunks drops them',
    steps: [...env, { raw: 'BDAT 5\r\nhello', expect: '250 2.0.0' }, { send: 'RSET', expect: '250 2.0.0' }, { raw: 'BDAT 5 LAST\r\nworld', expect: '503 5.5.1' }, ...env, { raw: 'BDAT 3 LAST\r\nabc', expect: QUEUED }],
    stored: ['abc'],
    records: [{ transfer: 'BDAT', chunks: 1 }],
  },
  {
    name: 'DATA still works beside CHUNKING and is recorded as DATA',
    steps: [...env, { send: 'DATA', expect: '354' }, { raw: 'hi\r\n.\r\n', expect: QUEUED }],
    stored: ['hi\r\n'],
    records: [{ transfer: 'DATA' }],
  },
  // ---- BINARYMIME (RFC 3030 §3): off by default, only beside CHUNKING, needs BDAT ----
  {
    name: 'BODY=BINARYMIME is 555 5.5.4 when not advertised (RFC 5321 §4.1.1.11); the session goes on',
    steps: [{ send: 'MAIL FROM:<a@example.org> BODY=BINARYMIME', expect: '555 5.5.4 /BODY=BINARYMIME/' }, ...env, { raw: 'BDAT 2 LAST\r\nok', expect: QUEUED }],
    stored: ['ok'],
    records: [{ transfer: 'BDAT', chunks: 1, body: null }],
  },
  {
    name: 'binaryMime without chunking: neither is advertised, BODY=BINARYMIME is 555',
    config: { binaryMime: true, chunking: false },
    steps: [{ send: 'EHLO again.test', expect: '250 /^(?![\\s\\S]*(CHUNKING|BINARYMIME))/' }, { send: 'MAIL FROM:<a@example.org> BODY=BINARYMIME', expect: '555 5.5.4' }],
  },
  {
    name: 'BODY=BINARYMIME: DATA is 503 5.5.1, the transaction stays, BDAT stores it byte-exact',
    config: { binaryMime: true },
    steps: [{ send: 'MAIL FROM:<a@example.org> BODY=BINARYMIME', expect: '250 2.1.0' }, { send: 'RCPT TO:<b@example.com>', expect: '250' }, { send: 'DATA', expect: '503 5.5.1 /BINARYMIME/' }, { raw: Buffer.concat([Buffer.from('BDAT 256 LAST\r\n'), bin]), expect: QUEUED }],
    stored: [bin],
    records: [{ transfer: 'BDAT', chunks: 1, body: 'BINARYMIME' }],
  },
  {
    name: 'BODY=BINARYMIME: NULs, bare CR, bare LF and a lone dot line across chunks are stored as sent',
    config: { binaryMime: true },
    steps: [
      { send: 'MAIL FROM:<a@example.org> BODY=BINARYMIME SIZE=40', expect: '250 2.1.0' },
      { send: 'RCPT TO:<b@example.com>', expect: '250' },
      { raw: 'BDAT 9\r\n\0a\rb\nc\r\n.', expect: '250 2.0.0 /Ok: 9 octets$/' },
      { raw: 'BDAT 7 LAST\r\n\r\n\0\0\r\r\n', split: 3, expect: QUEUED },
    ],
    stored: ['\0a\rb\nc\r\n.\r\n\0\0\r\r\n'],
    records: [{ transfer: 'BDAT', chunks: 2, body: 'BINARYMIME' }],
  },
  {
    name: 'BODY=BINARYMIME, MAIL/RCPT/DATA pipelined: DATA is 503, then BDAT in the same transaction',
    config: { binaryMime: true },
    steps: [
      { raw: 'MAIL FROM:<a@example.org> BODY=binarymime\r\nRCPT TO:<b@example.com>\r\nDATA\r\n', expect: ['250 2.1.0', '250 2.1.5', '503 5.5.1'] },
      { raw: 'BDAT 3 LAST\r\n\0\n\r', expect: QUEUED },
    ],
    stored: ['\0\n\r'],
    records: [{ transfer: 'BDAT', chunks: 1, body: 'BINARYMIME' }],
  },
  {
    name: 'BODY=BINARYMIME in the Maildir format: stored byte-exact, body type recorded',
    config: { binaryMime: true, store: { format: 'maildir' } },
    steps: [{ send: 'MAIL FROM:<a@example.org> BODY=BINARYMIME', expect: '250 2.1.0' }, { send: 'RCPT TO:<b@example.com>', expect: '250' }, { raw: Buffer.concat([Buffer.from('BDAT 256 LAST\r\n'), bin]), expect: QUEUED }],
    stored: [bin],
    records: [{ transfer: 'BDAT', chunks: 1, body: 'BINARYMIME' }],
  },
  {
    name: 'BODY=8BITMIME with BINARYMIME offered: DATA works, recorded as 8BITMIME',
    config: { binaryMime: true },
    steps: [{ send: 'MAIL FROM:<a@example.org> BODY=8BITMIME', expect: '250 2.1.0' }, { send: 'RCPT TO:<b@example.com>', expect: '250' }, { send: 'DATA', expect: '354' }, { raw: 'hi\r\n.\r\n', expect: QUEUED }],
    stored: ['hi\r\n'],
    records: [{ transfer: 'DATA', body: '8BITMIME' }],
  },
  {
    name: 'without PIPELINING the chunk after BDAT is not early talk',
    config: { advertisePipelining: false },
    steps: [...env, { raw: 'BDAT 4\r\nabcd', expect: '250 2.0.0' }, { raw: 'BDAT 6 LAST\r\nMAIL\r\n', expect: QUEUED }],
    stored: ['abcdMAIL\r\n'],
  },
  {
    name: 'without PIPELINING a command sent after the chunk, before its reply, is early talk',
    config: { advertisePipelining: false },
    steps: [...env, { raw: 'BDAT 4\r\nabcdNOOP\r\n', expect: '554 5.5.1' }],
    closes: true,
  },
  {
    name: 'without PIPELINING a command sent behind the LAST chunk: the message is answered (stored), then the early talk',
    config: { advertisePipelining: false },
    steps: [...env, { raw: 'BDAT 4 LAST\r\nabcdNOOP\r\n', expect: [QUEUED, '554 5.5.1'] }],
    closes: true,
    stored: ['abcd'],
  },
  {
    name: 'without PIPELINING a command sent behind DATA\'s final dot is early talk too, after the message\'s 250',
    config: { advertisePipelining: false },
    steps: [...env, { send: 'DATA', expect: '354' }, { raw: 'x\r\n.\r\nNOOP\r\n', expect: [QUEUED, '554 5.5.1'] }],
    closes: true,
    stored: ['x\r\n'],
  },
  {
    name: 'with PIPELINING a command behind the final dot is answered in turn',
    steps: [...env, { send: 'DATA', expect: '354' }, { raw: 'x\r\n.\r\nNOOP\r\n', expect: [QUEUED, '250 2.0.0'] }],
    stored: ['x\r\n'],
  },
  {
    name: 'doTempFail: the LAST chunk gets DATA\'s 421 and the message is kept',
    config: { doTempFail: true },
    steps: [...env, { raw: 'BDAT 3\r\nabc', expect: '250 2.0.0' }, { raw: 'BDAT 3 LAST\r\ndef', expect: '421 4.3.2' }],
    closes: true,
    stored: ['abcdef'],
    records: [{ transfer: 'BDAT', chunks: 2, tempfailed: true }],
  },
  {
    name: 'doTempFail without storing: the first chunk is refused like DATA',
    config: { doTempFail: true, storeData: false },
    steps: [...env, { raw: 'BDAT 3\r\nabc', expect: '421 4.3.2' }],
    closes: true,
  },
  {
    name: 'dataTimeout bounds a chunk dripped inside the receive timeout',
    config: { receiveTimeout: 5000, dataTimeout: 300 },
    steps: [...env, { raw: `BDAT 40 LAST\r\n${'y'.repeat(40)}`, split: 1, gap: 25, expect: '421 4.4.2' }],
    closes: true,
  },
  {
    name: 'dataTimeout bounds the whole transaction: empty chunks, each inside the receive timeout',
    config: { receiveTimeout: 5000, dataTimeout: 500 },
    steps: [...env, { send: 'BDAT 0', expect: '250 2.0.0 /0 octets/' }, { send: 'BDAT 0', pause: 700, expect: '250 2.0.0' }, { send: 'BDAT 0', expect: '421 4.4.2' }],
    closes: true,
  },
  {
    name: 'dataTimeout bounds the whole transaction: a LAST chunk whose octets come with its command',
    config: { receiveTimeout: 5000, dataTimeout: 500 },
    steps: [...env, { raw: 'BDAT 1\r\na', pause: 700, expect: '250 2.0.0' }, { raw: 'BDAT 1 LAST\r\nb', expect: '421 4.4.2' }],
    closes: true,
  },
  {
    name: 'a client that stops mid-chunk hits the receive timeout; nothing is stored',
    config: { receiveTimeout: 300 },
    steps: [...env, { raw: 'BDAT 100 LAST\r\n0123456789', pause: 100 }, { raw: '0123456789', expect: '421 4.4.2' }],
    closes: true,
  },
];

function check(r: { code: number; enhanced: string | undefined; text: string; raw: string }, exp: string, what: string): void {
  const m = /^(\d{3})(?: (\d\.\d{1,3}\.\d{1,3}))?(?: \/(.*)\/)?$/s.exec(exp);
  if (!m) throw new Error(`bad expectation ${exp}`);
  expect(r.code, `${what} -> ${r.raw}`).toBe(Number(m[1]));
  if (m[2]) expect(r.enhanced, r.raw).toBe(m[2]);
  if (m[3]) expect(r.text, r.raw).toMatch(new RegExp(m[3]));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CHUNKING / BDAT (RFC 3030)', () => {
  const servers = new Map<string, TestServer>();
  const get = async (config: Record<string, unknown> = {}) => {
    const key = JSON.stringify(config);
    let s = servers.get(key);
    if (!s) servers.set(key, (s = await startServer(config)));
    return s;
  };
  afterAll(async () => {
    for (const s of servers.values()) await s.close();
  });

  for (const c of cases) {
    it(c.name, async () => {
      const srv = await get(c.config);
      const before = new Set(srv.messages().map((m) => m.meta.id));
      const cl = await RawClient.connect(srv.port);
      try {
        expect((await cl.reply()).code).toBe(220);
        expect((await cl.cmd('EHLO client.test')).code).toBe(250);
        for (const step of c.steps) {
          if (step.send !== undefined) cl.send(step.send + '\r\n');
          if (step.raw !== undefined) {
            const raw = typeof step.raw === 'string' ? Buffer.from(step.raw, 'latin1') : step.raw;
            if (step.split) {
              for (let i = 0; i < raw.length; i += step.split) {
                cl.send(raw.subarray(i, i + step.split));
                if (cl.closed) break;
                await sleep(step.gap ?? 2);
              }
            } else {
              cl.send(raw);
            }
          }
          if (step.pause) await sleep(step.pause);
          const exps = step.expect === undefined ? [] : Array.isArray(step.expect) ? step.expect : [step.expect];
          for (const e of exps) check(await cl.reply(), e, step.send ?? '(raw)');
        }
        await endCase(cl, c.closes === true);
      } finally {
        cl.close();
      }
      expect(await noTemporaries(() => srv.files()), 'temporaries left').toEqual([]);
      const added = srv.messages().filter((m) => !before.has(m.meta.id)).sort((a, b) => a.meta.receivedAt.localeCompare(b.meta.receivedAt) || a.meta.id.localeCompare(b.meta.id));
      const bodies = added.map((m) => m.eml.subarray(m.meta.sizes.headers));
      expect(bodies.map((b) => b.toString('latin1')), 'stored bodies').toEqual((c.stored ?? []).map((b) => (typeof b === 'string' ? b : b.toString('latin1'))));
      for (const [i, b] of bodies.entries()) {
        const want = c.stored![i]!;
        expect(b.equals(typeof want === 'string' ? Buffer.from(want, 'latin1') : want), 'byte-exact').toBe(true);
      }
      if (c.records) {
        const want = c.records;
        expect(added.map((m, i) => ({
          transfer: m.meta.transfer,
          chunks: m.meta.chunks,
          ...(m.meta.tempfailed ? { tempfailed: true } : {}),
          // The body type (RFC 3030 §3 BINARYMIME, RFC 6152) only where the case names one.
          ...(want[i] && 'body' in want[i] ? { body: m.meta.envelope.body } : {}),
        }))).toEqual(want);
      }
    });
  }

  it('a BDAT message carries the same trace headers as a DATA one', async () => {
    const srv = await get();
    const send = async (how: 'DATA' | 'BDAT') => {
      const cl = await RawClient.connect(srv.port);
      await cl.reply();
      await cl.cmd('EHLO client.test');
      await cl.cmd('MAIL FROM:<a@example.org>');
      await cl.cmd('RCPT TO:<b@example.com>');
      let r;
      if (how === 'DATA') {
        expect((await cl.cmd('DATA')).code).toBe(354);
        r = await cl.cmd('Subject: t\r\n\r\nx\r\n.');
      } else {
        cl.send('BDAT 16 LAST\r\nSubject: t\r\n\r\nx\r\n');
        r = await cl.reply();
      }
      const id = /queued as ([0-9a-z]+)/.exec(r.text)![1]!;
      await cl.cmd('QUIT');
      cl.close();
      const m = srv.messages().find((x) => x.meta.id === id)!;
      return m.eml.subarray(0, m.meta.sizes.headers).toString('latin1').split(/\r\n(?![ \t])/).map((h) => h.split(':')[0]);
    };
    const d = await send('DATA');
    const b = await send('BDAT');
    expect(b).toEqual(d);
    expect(d[0]).toBe('Received');
  });
});

describe('BDAT property: any body, any chunking, any write split', () => {
  let srv: TestServer;
  afterAll(async () => {
    await srv?.close();
  });

  it('stores every message byte-exact with its chunk count (30 runs, pipelined, split at random offsets)', async () => {
    srv = await startServer();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 100, maxLength: 1500 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 5 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }),
        async (bytes, cutsAt, emptyLast, splits) => {
          const body = Buffer.from(bytes);
          const cuts = [...new Set(cutsAt.map((c) => Math.floor(c * body.length)))].sort((a, b) => a - b);
          const parts: Buffer[] = [];
          let at = 0;
          for (const c of cuts) {
            parts.push(body.subarray(at, c));
            at = c;
          }
          parts.push(body.subarray(at));
          if (emptyLast) parts.push(Buffer.alloc(0));
          const wire: Buffer[] = [Buffer.from('MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n')];
          parts.forEach((p, i) => wire.push(Buffer.from(`BDAT ${p.length}${i === parts.length - 1 ? ' LAST' : ''}\r\n`), p));
          const all = Buffer.concat(wire);
          const cl = await RawClient.connect(srv.port);
          cl.socket.setNoDelay(true);
          try {
            await cl.reply();
            await cl.cmd('EHLO p.test');
            // The whole transaction in writes of random sizes, without waiting for replies.
            for (let i = 0, k = 0; i < all.length; k++) {
              const n = splits[k % splits.length]!;
              cl.send(all.subarray(i, i + n));
              i += n;
              // Separate reads on the server side (loopback would coalesce back-to-back writes).
              if (k % 3 === 2) await sleep(1);
            }
            expect((await cl.reply()).code).toBe(250);
            expect((await cl.reply()).code).toBe(250);
            for (let i = 0; i < parts.length - 1; i++) expect((await cl.reply()).text).toMatch(new RegExp(`Ok: ${parts[i]!.length} octets`));
            const last = await cl.reply();
            const id = /queued as ([0-9a-z]+)/.exec(last.text)?.[1];
            expect(id, last.raw).toBeDefined();
            expect((await cl.cmd('QUIT')).code).toBe(221);
            const m = srv.messages().find((x) => x.meta.id === id)!;
            expect(m.eml.subarray(m.meta.sizes.headers).equals(body)).toBe(true);
            expect(m.meta.chunks).toBe(parts.length);
          } finally {
            cl.close();
          }
        },
      ),
      { numRuns: 30, seed: 3030 },
    );
  });
});
