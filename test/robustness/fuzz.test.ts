// Property-based and mutation fuzzing of whole SMTP sessions against a running in-process
// server (fast-check): whatever a client sends, the process survives, every reply line is
// `^\d{3}[ -]...CRLF` (RFC 5321 §4.2.1), sessions end, memory stays bounded, and a valid
// session afterwards is stored byte-exact. Size: FAKEMX_FUZZ_RUNS sessions (default 20,000);
// FAKEMX_FUZZ_SEED replays a run; FAKEMX_FUZZ_REPORT=<file> writes a JSON summary (npm run fuzz).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { greeted } from '../helpers/client.js';
import { noTemporaries } from '../helpers/temporaries.js';
import { createServer, type FakemxServer } from '../../src/server.js';
import type { MessageMetadata } from '../../src/store/metadata.js';

// ---- sizing ------------------------------------------------------------------------------

const TOTAL = Math.max(100, Number(process.env.FAKEMX_FUZZ_RUNS ?? 20_000));
const SEED = process.env.FAKEMX_FUZZ_SEED !== undefined ? Number(process.env.FAKEMX_FUZZ_SEED) : undefined;
/** Sessions run at the same time in one property run: enough to keep the loop busy, few enough to stay tiny. */
const BATCH = Math.max(1, Number(process.env.FAKEMX_FUZZ_BATCH ?? 50));
// Share of the total per property; the split-at-every-offset cases come on top (a few hundred).
const FUZZ_SESSIONS = Math.round(TOTAL * 0.8);
const ORACLE_SESSIONS = TOTAL - FUZZ_SESSIONS;
/** Per-test timeout: ~1 ms per session on a busy 2-core box, with a generous floor. */
const TEST_MS = (n: number) => Math.max(60_000, n * 3);

// ---- servers -----------------------------------------------------------------------------

/** A tmpfs when there is one: the oracle stores thousands of fsynced messages. */
const base = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'fakemx-fuzz-'));

interface Target {
  name: string;
  server: FakemxServer;
  port: number;
  store: string;
  errors: Error[];
  verdicts: string[];
}

// Three profiles so the fuzz reaches both the policy edge and the engine's deep states:
// strict (defaults: early talk drops, 4 errors), deep (no early-talk checks, no error limit,
// storing), teaser (banner teaser with a short delay: the "talk between 220- and 220" path).
const RECEIVE_TIMEOUT = 400;
const PROFILES: Record<string, Record<string, unknown>> = {
  strict: { storeData: false },
  deep: {
    storeData: true, doEarlyTalk: false, maxSmtpErrors: 10_000, maxSmtpNoop: 10_000, maxSmtpVrfy: 10_000,
    maxMessages: 10_000, maxDataSize: 65_536, maxPendingInput: 4096,
  },
  teaser: { storeData: false, bannerTeaser: true, bannerDelay: 5, maxSmtpErrors: 20 },
};

async function start(name: string, cfg: Record<string, unknown>): Promise<Target> {
  const store = join(base, name);
  const server = createServer({
    config: {
      listenAddress: '127.0.0.1', listenPort: 0, hostName: 'mx.test', bannerDelay: 0, errorDelay: 0,
      receiveTimeout: RECEIVE_TIMEOUT, maxSessions: 10_000, maxSessionsPerIp: 10_000, storePath: store, ...cfg,
    },
  });
  const errors: Error[] = [];
  const verdicts: string[] = [];
  server.on('error', (e) => errors.push(e));
  // An exception caught by a session's fault boundary becomes a SESSION_FAULT verdict (ERROR
  // before the engine's fault boundary) and a 421 4.3.0: never valid.
  server.on('verdict', (v) => {
    if (verdicts.length < 100_000) verdicts.push(v.tag);
    if ((v.tag === 'SESSION_FAULT' || v.tag === 'ERROR') && errors.length < 20) errors.push(new Error(`${v.tag} verdict in ${name}: ${JSON.stringify(v.details)}`));
  });
  const [l] = await server.listen();
  return { name, server, port: l!.port, store, errors, verdicts };
}

const targets: Record<string, Target> = {};
let oracle: Target;

beforeAll(async () => {
  for (const [n, c] of Object.entries(PROFILES)) targets[n] = await start(n, c);
  // The oracle: a storing server that lets a well-formed pipelined session through whole.
  oracle = await start('oracle', { storeData: true, doEarlyTalk: false, receiveTimeout: 10_000 });
});

afterAll(async () => {
  for (const t of [...Object.values(targets), oracle]) await t?.server.close(500);
  rmSync(base, { recursive: true, force: true });
});

// ---- memory --------------------------------------------------------------------------------

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Live memory after a full collection: the JS heap plus Buffers and other external memory. */
function heapMb(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return (m.heapUsed + m.external) / 2 ** 20;
}

// ---- one session on a raw socket -------------------------------------------------------------

/** quit: send TRAILER and half-close; end: half-close; reset: RST; wait: keep open until the server closes. */
type Ending = 'quit' | 'end' | 'reset' | 'wait';
interface Case {
  kind: string;
  profile: string;
  bytes: Buffer;
  /** Sorted cut points in [1, bytes.length): each piece is its own write. */
  cuts: number[];
  /** Yield to the event loop between pieces so they arrive as separate reads. */
  gaps: boolean;
  waitGreeting: boolean;
  ending: Ending;
}

interface Outcome {
  received: Buffer;
  closedByServer: boolean;
  ms: number;
}

/** "\r\n.\r\n" ends any DATA, QUIT ends any command phase: the session must then close. */
const TRAILER = Buffer.from('\r\n.\r\nQUIT\r\n', 'latin1');
const tick = () => new Promise<void>((r) => setImmediate(r));
/** When the last fuzz socket closed (the heap check waits out the server's linger timers). */
let lastCloseAt = 0;

function runSession(port: number, c: Case, closeWaitMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const chunks: Buffer[] = [];
    let closed = false;
    let serverClosed = false;
    let onAny: (() => void) | null = null;
    const sock: Socket = connect({ port, host: '127.0.0.1' });
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      onAny?.();
    });
    sock.on('end', () => (serverClosed = true));
    sock.on('error', () => undefined);
    const hard = setTimeout(() => sock.destroy(), closeWaitMs + 5000);
    sock.on('close', () => {
      closed = true;
      lastCloseAt = Date.now();
      clearTimeout(hard);
      onAny?.();
      resolve({ received: Buffer.concat(chunks), closedByServer: serverClosed, ms: Date.now() - t0 });
    });
    const waitFor = (cond: () => boolean, ms: number) =>
      new Promise<void>((r) => {
        if (cond() || closed) return r();
        const t = setTimeout(() => {
          onAny = null;
          r();
        }, ms);
        onAny = () => {
          if (cond() || closed) {
            clearTimeout(t);
            onAny = null;
            r();
          }
        };
      });
    sock.once('connect', () => {
      void (async () => {
        if (c.waitGreeting) await waitFor(() => /(^|\n)220 [^\n]*\n/.test(Buffer.concat(chunks).toString('latin1')), 2000);
        let at = 0;
        for (const cut of [...c.cuts, c.bytes.length]) {
          if (closed) return;
          if (cut > at) sock.write(c.bytes.subarray(at, cut));
          at = cut;
          if (c.gaps) await tick();
        }
        if (closed) return;
        if (c.ending === 'reset') return void sock.resetAndDestroy();
        if (c.ending === 'wait') return; // the script ends with QUIT (or is cut by a 421): the server closes
        if (c.ending === 'quit') sock.write(TRAILER);
        sock.end();
        // Half-closed: the server must finish and close on its own within the bound.
        setTimeout(() => sock.destroy(), closeWaitMs).unref();
      })().catch(() => sock.destroy());
    });
  });
}

/** RFC 5321 §4.2.1: complete lines only, "NNN-" continuations with one code, "NNN " last. */
function replyErrors(buf: Buffer): string | null {
  const s = buf.toString('latin1');
  let pos = 0;
  let group: string | null = null;
  while (pos < s.length) {
    const nl = s.indexOf('\r\n', pos);
    if (nl < 0) return `partial line ${JSON.stringify(s.slice(pos, pos + 80))}`;
    const line = s.slice(pos, nl);
    pos = nl + 2;
    if (!/^\d{3}[ -]/.test(line)) return `bad line ${JSON.stringify(line.slice(0, 80))}`;
    if (/[\r\n]/.test(line)) return `lone CR/LF in ${JSON.stringify(line.slice(0, 80))}`;
    const code = line.slice(0, 3);
    if (group !== null && code !== group) return `code ${code} inside a ${group} multi-line reply`;
    group = line[3] === '-' ? code : null;
  }
  // A "220-" teaser line is the only continuation that may be cut off by a close.
  return null;
}

// ---- generators ------------------------------------------------------------------------------

const bytesOf = (s: string) => Buffer.from(s, 'latin1');

const VERBS = [
  'EHLO', 'HELO', 'MAIL FROM:', 'RCPT TO:', 'DATA', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'EXPN', 'HELP', 'STARTTLS',
  'BDAT 10', 'AUTH PLAIN', 'ehlo', 'mail from:', 'rcpt to:', 'GET / HTTP/1.1', 'XCLIENT', 'TURN',
];
const PIECES = [
  ' ', '\t', 'client.example', '[127.0.0.1]', '[IPv6:::1]', '<a@b.example>', '<>', '<postmaster>', '<Postmaster@x.example>',
  '<"q u"@x.example>', '<@relay.example:a@b.example>', '<a@[192.0.2.1]>', '<\xc3\xa9@\xc3\xa9.example>', ' SIZE=100',
  ' SIZE=99999999999999', ' BODY=8BITMIME', ' BODY=BINARYMIME', ' SMTPUTF8', ' FOO=BAR', ' SIZE', '=', '<', '>', ':',
  '@', '"', '\\', 'a@b', '.', '..', 'Subject: x', 'From: <a@b>',
];
const SEPS = ['\r\n', '\n', '\r', '\r\r\n', '\0', '\r\n.\r\n', '\r\n..\r\n', '\n.\n', '\r.\r', '\r\n.\n', '\n.\r\n', '\r\n.\r'];
const SPECIAL = [
  '\0', '\r', '\n', '.', '\r\n', '\r\n.\r\n', '\r\n..', '\xff', '\x80', '\xc3\xa9', '\xc3', '\x16\x03\x01', 'DATA\r\n',
  'RSET\r\n', 'EHLO x\r\n', 'MAIL FROM:<a@b>\r\n', 'RCPT TO:<c@d>\r\n', 'QUIT\r\n', 'STARTTLS\r\n', '\x1b[2J', '\x7f',
];

/** Long runs: lines around maxLineLength (512), past maxPendingInput (4096 on deep), and big. */
const longRun = fc
  .tuple(fc.constantFrom(511, 512, 513, 1000, 4095, 4097, 70_000), fc.constantFrom('A', '.', '\0', '\xff', ' '), fc.boolean())
  .map(([n, ch, crlf]) => bytesOf(ch.repeat(n) + (crlf ? '\r\n' : '')));
// Rare: a 70 KB run is costly in bulk, so weight it low.
const shortRun = fc.tuple(fc.constantFrom(511, 512, 513, 1000), fc.constantFrom('A', '.', '\0', '\xff'), fc.boolean())
  .map(([n, ch, crlf]) => bytesOf(ch.repeat(n) + (crlf ? '\r\n' : '')));

const rawBytes = (max: number) => fc.uint8Array({ minLength: 1, maxLength: max }).map((a) => Buffer.from(a));

const tokenSoup = fc
  .array(
    fc.oneof(
      { arbitrary: fc.constantFrom(...VERBS).map(bytesOf), weight: 5 },
      { arbitrary: fc.constantFrom(...PIECES).map(bytesOf), weight: 5 },
      { arbitrary: fc.constantFrom(...SEPS).map(bytesOf), weight: 5 },
      { arbitrary: rawBytes(12), weight: 2 },
      { arbitrary: shortRun, weight: 1 },
    ),
    { maxLength: 40 },
  )
  .map((parts) => Buffer.concat(parts));

const atom = fc.stringMatching(/^[a-z0-9]{1,8}(\.[a-z0-9]{1,6})?$/);
const address = fc.tuple(atom, atom).map(([l, d]) => `${l}@${d}.example`);

/** A body line: anything but the CRLF pair (which would end it); may hold lone CR, LF, NUL, 8-bit. */
const bodyLine = fc.oneof(
  fc.constantFrom('', '.', '..', '.x', 'x.', '.\r', '.\n', '\r', '\n', '\0', 'a\rb', 'a\nb', '\xe9t\xe9', 'From: a', '\r\r', 'x'.repeat(999)),
  fc.uint8Array({ maxLength: 60 }).map((a) => {
    const b = Buffer.from(a);
    for (let i = 1; i < b.length; i++) if (b[i] === 10 && b[i - 1] === 13) b[i] = 32;
    return b.toString('latin1');
  }),
  fc.stringMatching(/^[ -~]{0,70}$/),
);

interface Valid {
  helo: 'EHLO' | 'HELO';
  from: string;
  rcpts: string[];
  lines: string[];
}
const validArb: fc.Arbitrary<Valid> = fc.record({
  helo: fc.constantFrom('EHLO' as const, 'HELO' as const),
  from: fc.oneof(address, fc.constant('')),
  rcpts: fc.array(address, { minLength: 1, maxLength: 3 }),
  lines: fc.array(bodyLine, { maxLength: 8 }),
});

/** RFC 5321 §4.5.2: a line that starts with "." gets one more. Lines are CRLF-joined. */
function stuff(lines: string[]): string {
  return lines.map((l) => (l.startsWith('.') ? '.' + l : l) + '\r\n').join('');
}
const bodyOf = (v: Valid) => bytesOf(v.lines.map((l) => l + '\r\n').join(''));

function sessionText(v: Valid): Buffer {
  let s = `${v.helo} client.example\r\nMAIL FROM:<${v.from}>\r\n`;
  for (const r of v.rcpts) s += `RCPT TO:<${r}>\r\n`;
  return bytesOf(s + 'DATA\r\n' + stuff(v.lines) + '.\r\nQUIT\r\n');
}

type Mutation = { op: 'flip' | 'insert' | 'delete' | 'dup' | 'truncate'; at: number; len: number; payload: Buffer };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom('flip' as const, 'insert' as const, 'insert' as const, 'delete' as const, 'dup' as const, 'truncate' as const),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  len: fc.integer({ min: 1, max: 40 }),
  payload: fc.oneof(
    { arbitrary: fc.constantFrom(...SPECIAL).map(bytesOf), weight: 6 },
    { arbitrary: rawBytes(8), weight: 3 },
    { arbitrary: shortRun, weight: 1 },
  ),
});

function mutate(b: Buffer, muts: Mutation[]): Buffer {
  let out = b;
  for (const m of muts) {
    const at = Math.min(out.length, Math.floor(m.at * (out.length + 1)));
    switch (m.op) {
      case 'flip':
        if (at < out.length) {
          out = Buffer.from(out);
          out[at] = m.payload[0] ?? 0;
        }
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at), m.payload, out.subarray(at)]);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.len)]);
        break;
      case 'dup':
        out = Buffer.concat([out.subarray(0, at + m.len), out.subarray(at, at + m.len), out.subarray(at + m.len)]);
        break;
      case 'truncate':
        out = out.subarray(0, Math.max(1, at));
        break;
    }
  }
  return out;
}

const payloadArb = fc.oneof(
  { arbitrary: rawBytes(200).map((bytes) => ({ kind: 'random', bytes })), weight: 2 },
  { arbitrary: tokenSoup.map((bytes) => ({ kind: 'soup', bytes })), weight: 3 },
  {
    arbitrary: fc.tuple(validArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 })).map(([v, m]) => ({ kind: 'mutated', bytes: mutate(sessionText(v), m) })),
    weight: 5,
  },
  { arbitrary: fc.tuple(tokenSoup, longRun, tokenSoup).map((p) => ({ kind: 'huge', bytes: Buffer.concat(p) })), weight: 1 },
);

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    p: payloadArb,
    profile: fc.constantFrom('strict', 'deep', 'deep', 'teaser'),
    cutFrac: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
    gaps: fc.boolean(),
    waitGreeting: fc.oneof({ arbitrary: fc.constant(true), weight: 9 }, { arbitrary: fc.constant(false), weight: 1 }),
    ending: fc.oneof(
      { arbitrary: fc.constant<Ending>('quit'), weight: 17 },
      { arbitrary: fc.constant<Ending>('end'), weight: 2 },
      { arbitrary: fc.constant<Ending>('reset'), weight: 1 },
    ),
  })
  .map(({ p, profile, cutFrac, gaps, waitGreeting, ending }) => {
    const n = p.bytes.length;
    const cuts = [...new Set(cutFrac.map((f) => Math.floor(f * n)).filter((x) => x > 0 && x < n))].sort((a, b) => a - b);
    return { kind: p.kind, profile, bytes: p.bytes, cuts, gaps, waitGreeting, ending };
  });

function describeCase(c: Case): string {
  return JSON.stringify({ ...c, bytes: c.bytes.length > 400 ? `${c.bytes.subarray(0, 400).toString('latin1')}... (${c.bytes.length} bytes)` : c.bytes.toString('latin1') });
}

// ---- stats for the report --------------------------------------------------------------------

const stats = { heapGrowthMb: 0, heapAtEndMb: 0, peakRssGrowthMb: 0, sessions: 0, byKind: {} as Record<string, number>, codes: {} as Record<string, number>, serverClosed: 0, clientGaveUp: 0, maxSessionMs: 0 };
function count(c: Case, o: Outcome): void {
  stats.sessions++;
  stats.byKind[c.kind] = (stats.byKind[c.kind] ?? 0) + 1;
  if (o.closedByServer) stats.serverClosed++;
  stats.maxSessionMs = Math.max(stats.maxSessionMs, o.ms);
  for (const m of o.received.toString('latin1').matchAll(/^(\d{3}) /gm)) stats.codes[m[1]!] = (stats.codes[m[1]!] ?? 0) + 1;
}

const fcParams = (runs: number): fc.Parameters<[unknown]> => ({
  numRuns: runs,
  ...(SEED !== undefined ? { seed: SEED } : {}),
  // Each failure message names the session; shrinking a batch of sockets is slow, so stop at the first.
  endOnFailure: process.env.FAKEMX_FUZZ_SHRINK === undefined,
});

// ---- the properties ---------------------------------------------------------------------------

describe('fuzzing whole sessions', () => {
  const t0 = Date.now();
  let heap0 = 0;
  let rss0 = 0;

  it('random bytes, token soup, mutated and huge sessions: no crash, valid replies, every session ends', { timeout: TEST_MS(FUZZ_SESSIONS) }, async () => {
    heap0 = heapMb();
    rss0 = process.memoryUsage().rss / 2 ** 20;
    let peakRss = rss0;
    const runs = Math.ceil(FUZZ_SESSIONS / BATCH);
    await fc.assert(
      fc.asyncProperty(fc.array(caseArb, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const outs = await Promise.all(batch.map((c) => runSession(targets[c.profile]!.port, c, RECEIVE_TIMEOUT + 3000)));
        peakRss = Math.max(peakRss, process.memoryUsage().rss / 2 ** 20);
        outs.forEach((o, i) => {
          const c = batch[i]!;
          count(c, o);
          const err = replyErrors(o.received) ?? (/^421 4\.3\.0 /m.test(o.received.toString('latin1')) ? 'an internal error reply (421 4.3.0)' : null);
          if (err) throw new Error(`${err}\nreceived ${JSON.stringify(o.received.toString('latin1').slice(-300))}\ncase ${describeCase(c)}`);
          // Every session that was not reset must have been ended by the server, not by our give-up timer.
          if (c.ending !== 'reset' && !o.closedByServer) {
            stats.clientGaveUp++;
            throw new Error(`server did not close within ${RECEIVE_TIMEOUT + 3000} ms\ncase ${describeCase(c)}`);
          }
        });
      }),
      fcParams(runs),
    );
    for (const t of Object.values(targets)) expect(t.errors).toEqual([]);
    stats.peakRssGrowthMb = Math.round(peakRss - rss0);
    stats.heapAtEndMb = Math.round(heapMb() - heap0);
    // The process's whole footprint (fuzzer, clients and servers) stayed modest at the peak:
    // 175-185 MB over 16,000 sessions, 267-275 MB over 400,000 (npm run fuzz). The exact
    // leak check is the live-memory one after the run; this only catches a runaway.
    expect(peakRss - rss0).toBeLessThan(384);
  });

  it('well-formed pipelined sessions split anywhere are stored byte-exact', { timeout: TEST_MS(ORACLE_SESSIONS) }, async () => {
    const runs = Math.ceil(ORACLE_SESSIONS / BATCH);
    const one = fc.record({
      v: validArb,
      cutFrac: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
      gaps: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(one, { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        const cases = batch.map(({ v, cutFrac, gaps }) => {
          const bytes = sessionText(v);
          const cuts = [...new Set(cutFrac.map((f) => Math.floor(f * bytes.length)).filter((x) => x > 0))].sort((a, b) => a - b);
          return { kind: 'oracle', profile: 'oracle', bytes, cuts, gaps, waitGreeting: true, ending: 'end' as const };
        });
        const outs = await Promise.all(cases.map((c) => runSession(oracle.port, c, 5000)));
        outs.forEach((o, i) => {
          count(cases[i]!, o);
          checkOracle(o, batch[i]!.v, describeCase(cases[i]!));
        });
      }),
      fcParams(runs),
    );
  });

  it('one session split at every byte offset, and one byte per write, gives the same replies and message', { timeout: 60_000 }, async () => {
    const v: Valid = {
      helo: 'EHLO', from: 'a@b.example', rcpts: ['c@d.example', 'e@f.example'],
      lines: ['Subject: split', '', '.', '..leading', 'lone\rcr', 'lone\nlf', 'nul\0byte', '\xe9t\xe9 8-bit', '.\r', 'end'],
    };
    const bytes = sessionText(v);
    const cases: Case[] = [];
    for (let k = 1; k < bytes.length; k++) cases.push({ kind: 'split', profile: 'oracle', bytes, cuts: [k], gaps: true, waitGreeting: true, ending: 'end' });
    cases.push({ kind: 'split', profile: 'oracle', bytes, cuts: Array.from({ length: bytes.length - 1 }, (_, i) => i + 1), gaps: true, waitGreeting: true, ending: 'end' });
    for (let i = 0; i < cases.length; i += BATCH) {
      const part = cases.slice(i, i + BATCH);
      const outs = await Promise.all(part.map((c) => runSession(oracle.port, c, 5000)));
      outs.forEach((o, j) => {
        count(part[j]!, o);
        checkOracle(o, v, `split at ${part[j]!.cuts.length === 1 ? part[j]!.cuts[0] : 'every byte'}`);
      });
    }
  });

  // RFC 2920 §3.1: a group may end only with DATA (among others), and the message content may
  // open the next group; so MAIL..DATA in one go and body+QUIT in one go are legal however
  // TCP cuts them. The strict profile (early-talk checks on) must see no PIPELINING in any split.
  it('legal RFC 2920 groups split at every byte offset are never taken for early talk', { timeout: 60_000 }, async () => {
    const strict = targets.strict!;
    const before = strict.verdicts.length;
    const g2 = Buffer.from('MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\nDATA\r\n', 'latin1');
    const g3 = Buffer.from('Subject: groups\r\n\r\n..dot\r\n\xe9\r\n.\r\nQUIT\r\n', 'latin1');
    const splits: [number, number][] = [];
    for (let k = 1; k < g2.length; k++) splits.push([k, 0]);
    for (let j = 1; j < g3.length; j++) splits.push([0, j]);
    const one = async ([k, j]: [number, number]) => {
      const c = await greeted(strict.port);
      try {
        for (const [g, at] of [[g2, k], [g3, j]] as const) {
          if (at > 0) {
            c.send(g.subarray(0, at));
            await tick();
            c.send(g.subarray(at));
          } else c.send(g);
          const want = g === g2 ? [250, 250, 250, 354] : [250, 221];
          const got: number[] = [];
          while (got.length < want.length) got.push((await c.reply(5000)).code);
          expect(got, `split ${k}/${j}`).toEqual(want);
        }
      } finally {
        c.close();
      }
    };
    for (let i = 0; i < splits.length; i += BATCH) await Promise.all(splits.slice(i, i + BATCH).map(one));
    stats.sessions += splits.length;
    stats.byKind.groups = splits.length;
    expect(strict.verdicts.slice(before).filter((t) => t === 'PIPELINING' || t === 'PREGREET')).toEqual([]);
  });

  it('afterwards: a valid session works, no session or temporary file is left, the heap is back', { timeout: 30_000 }, async () => {
    for (const t of [...Object.values(targets), oracle]) {
      // Closing sockets linger at most until their peer's FIN; ours are all gone.
      for (const end = Date.now() + 3000; t.server.activeSessions > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      expect(t.server.activeSessions, t.name).toBe(0);
      expect(t.errors, t.name).toEqual([]);
    }
    const v: Valid = { helo: 'EHLO', from: 'after@fuzz.example', rcpts: ['x@y.example'], lines: ['Subject: after the fuzz', '', 'still here'] };
    const c: Case = { kind: 'after', profile: 'deep', bytes: sessionText(v), cuts: [], gaps: false, waitGreeting: true, ending: 'end' };
    for (const name of ['deep', 'oracle']) {
      const t = name === 'deep' ? targets.deep! : oracle;
      checkOracle(await runSession(t.port, c, 5000), v, 'after', t);
    }
    // Aborted messages remove their temporaries asynchronously; give them a moment.
    expect(await noTemporaries(() => listStore(targets.deep!.store))).toEqual([]);
    // Memory: nothing of the fuzz stays reachable. A closed session is held by its linger
    // timer (session.ts LINGER_MS, 5 s) — reported — so measure once that has run out.
    // The baseline is the first property's: a filtered run that skipped it (a mutation run
    // selects tests) has none. FAKEMX_FUZZ_HEAP=0 skips the wait and the check (npm run mutate).
    if (heap0 > 0 && process.env.FAKEMX_FUZZ_HEAP !== '0') {
      const wait = lastCloseAt + 5500 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      stats.heapGrowthMb = Math.round((heapMb() - heap0) * 10) / 10;
      expect(stats.heapGrowthMb).toBeLessThan(32);
    }
    const elapsed = (Date.now() - t0) / 1000;
    const summary = { ...stats, seconds: Math.round(elapsed * 10) / 10, perSecond: Math.round(stats.sessions / elapsed), seed: SEED ?? null };
    if (process.env.FAKEMX_FUZZ_REPORT) writeFileSync(process.env.FAKEMX_FUZZ_REPORT, JSON.stringify(summary, null, 2));
    console.log(`fuzz: ${JSON.stringify(summary)}`);
  });
});

describe('minimal cases found by the fuzz', () => {
  // RFC 5321 §4.2.1: every line of a multi-line reply carries the same code. With
  // bannerTeaser the "220-" line is out before the ClientHello arrives; the 554 must not
  // follow it bare. Fix: in Session.nonSmtp(), when phase === 'connecting' and bannerTeaser,
  // first write the teaser's last line ("220 <host> ESMTP fakemx"), as greet() would.
  it('a TLS ClientHello during the banner teaser does not split the 220 multi-line reply', async () => {
    const c: Case = { kind: 'min', profile: 'teaser', bytes: Buffer.from([0x16, 0x03, 0x01, 0x00]), cuts: [], gaps: false, waitGreeting: false, ending: 'end' };
    const o = await runSession(targets.teaser!.port, c, 3000);
    expect(replyErrors(o.received), o.received.toString('latin1')).toBeNull();
  });
});

// ---- volume: thousands of pipelined commands in one write ---------------------------------------
//
// Issue 12: a few thousand pipelined RSETs after DATA's final dot, or before the greeting with
// earlyTalkAction ignore, took the process down (one stack frame per pipelined command), and
// 1,500 RCPTs in one write got "421 4.3.0 internal error". Here batches of up to 100,000
// commands go in one buffer (split at random offsets into writes) after the final dot, before
// the greeting, inside a transaction, as thousands of RCPTs, or mixed; a model of RFC 5321
// gives the reply every command must get. The oracle: the replies are well-formed and are the
// model's, one per command, in order, ending with QUIT's 221 — or the model's up to a point
// where the session is cut by a 421 naming a documented limit ("too many <what>") that the
// commands sent so far can have reached, with no reply after it. Never "internal error", no
// SESSION_FAULT/ERROR verdict, and a fresh client is served afterwards. Size:
// FAKEMX_FUZZ_VOLUME random sessions (default TOTAL/2000, at least 8) of up to
// FAKEMX_FUZZ_VOLUME_MAX commands (default 20,000; 100,000 from TOTAL 100,000 on: npm run fuzz),
// plus the fixed cases below (three 100,000-command batches, 1,500 and 5,000 RCPTs).

const VOLUME_SESSIONS = Math.max(0, Number(process.env.FAKEMX_FUZZ_VOLUME ?? Math.max(8, Math.round(TOTAL / 2000))));
const VOLUME_MAX = Math.min(100_000, Math.max(100, Number(process.env.FAKEMX_FUZZ_VOLUME_MAX ?? (TOTAL >= 100_000 ? 100_000 : 20_000))));
/** The fixed batches' size (FAKEMX_FUZZ_VOLUME_BIG; npm run mutate runs them smaller). */
const BIG = Math.max(1000, Number(process.env.FAKEMX_FUZZ_VOLUME_BIG ?? 100_000));

/** Every per-session limit out of reach of the generator's budgets (BUDGET), so nothing may cut. */
const RAISED = { maxSmtpErrors: 10_000, maxSmtpNoop: 10_000, maxSmtpVrfy: 10_000, maxMessages: 1_000_000, maxJunkCommands: 1_000_000, maxRcptOvershoot: 1_000_000 };
/** Errors, NOOPs and VRFY/EXPNs a raised-limit session sends at most (each limit is 10,000). */
const BUDGET = 9_000;
const VOLUME_BASE = { storeData: false, doEarlyTalk: false, receiveTimeout: 60_000 };
const VOLUME_PROFILES: Record<string, Record<string, unknown>> = {
  raised: { ...VOLUME_BASE, ...RAISED },
  // The shipped limits: junk, NOOP, error and overshoot limits cut a long batch with 421.
  defaults: { ...VOLUME_BASE },
  wideRcpt: { ...VOLUME_BASE, ...RAISED, maxSmtpRcpt: 5000 },
  // Early talk is logged and otherwise ignored, so input sent before the greeting is processed.
  pregreet: { ...VOLUME_BASE, ...RAISED, doEarlyTalk: true, earlyTalkAction: 'ignore', bannerDelay: 150 },
  storing: { ...VOLUME_BASE, ...RAISED, storeData: true, maxDataSize: 65_536 },
};
/** The schema's defaults for the limits the model knows (README, src/config/schema.ts). */
const DEFAULT_LIMITS = { maxSmtpErrors: 4, maxSmtpNoop: 7, maxSmtpVrfy: 10, maxJunkCommands: 100, maxRcptOvershoot: 2000, maxMessages: 10, maxSmtpRcpt: 100 };
type Limits = typeof DEFAULT_LIMITS;
const limitsOf = (profile: string): Limits => ({ ...DEFAULT_LIMITS, ...(VOLUME_PROFILES[profile] as Partial<Limits>) });

/** The commands of the volume model. */
const enum K { EHLO, HELO, MAIL, MAIL_SIZE, RCPT, RCPT_BAD, DATA, RSET, NOOP, HELP, VRFY, EXPN, UNKNOWN, EMPTY }
const K_NAMES = ['EHLO', 'HELO', 'MAIL', 'MAIL_SIZE', 'RCPT', 'RCPT_BAD', 'DATA', 'RSET', 'NOOP', 'HELP', 'VRFY', 'EXPN', 'UNKNOWN', 'EMPTY'];

/**
 * RFC 5321 as fakemx answers it, for the commands above: the final reply codes one command gets
 * (DATA with its body: 354 and 250), and counters that are never below the engine's, so that
 * "counter > limit" is necessary for a limit's 421 to be legitimate.
 */
class VolumeModel {
  helo = false;
  esmtp = false;
  mail = false;
  rcpts = 0;
  n = { errors: 0, noop: 0, vrfy: 0, junk: 0, overshoot: 0, messages: 0 };
  constructor(readonly lim: Limits) {}

  /** Would this command be an error (5xx)? Without changing state. */
  errs(k: K): boolean {
    switch (k) {
      case K.MAIL: return !this.helo || this.mail;
      case K.MAIL_SIZE: return !this.helo || this.mail || !this.esmtp;
      case K.RCPT: case K.RCPT_BAD: return !this.mail || k === K.RCPT_BAD;
      case K.DATA: return this.rcpts === 0;
      case K.EXPN: case K.UNKNOWN: case K.EMPTY: return true;
      default: return false;
    }
  }

  step(k: K): number[] {
    const err = (code: number) => (this.n.errors++, [code]);
    switch (k) {
      case K.EHLO:
      case K.HELO:
        this.n.junk++;
        this.helo = true;
        this.esmtp = k === K.EHLO;
        this.mail = false;
        this.rcpts = 0;
        return [250];
      case K.MAIL:
      case K.MAIL_SIZE:
        if (!this.helo || this.mail) return err(503);
        if (k === K.MAIL_SIZE && !this.esmtp) return err(555);
        this.mail = true;
        this.rcpts = 0;
        return [250];
      case K.RCPT:
        if (!this.mail) return err(503);
        if (this.rcpts < this.lim.maxSmtpRcpt) return (this.rcpts++, [250]);
        this.n.overshoot++;
        return [452];
      case K.RCPT_BAD:
        return err(this.mail ? 553 : 503);
      case K.DATA:
        if (this.rcpts === 0) return err(503);
        this.n.messages++;
        this.mail = false;
        this.rcpts = 0;
        return [354, 250];
      case K.RSET:
        this.n.junk++;
        this.mail = false;
        this.rcpts = 0;
        return [250];
      case K.NOOP:
        this.n.junk++;
        this.n.noop++;
        return [250];
      case K.HELP:
        this.n.junk++;
        return [214];
      case K.VRFY:
        this.n.junk++;
        this.n.vrfy++;
        return [252];
      case K.EXPN:
        this.n.junk++;
        this.n.vrfy++;
        return err(502);
      case K.UNKNOWN:
      case K.EMPTY:
        return err(500);
    }
  }

  /** A 421 "too many <what>" is legitimate only once the model's counter for it is past the limit. */
  reached(what: string): boolean {
    const { n, lim } = this;
    switch (what) {
      case 'errors': return n.errors > lim.maxSmtpErrors;
      case 'junk commands': return n.junk > lim.maxJunkCommands;
      case 'NOOP commands': return n.noop > lim.maxSmtpNoop;
      case 'VRFY/EXPN commands': return n.vrfy > lim.maxSmtpVrfy;
      case 'recipients': return n.overshoot > lim.maxRcptOvershoot;
      case 'messages': return n.messages >= lim.maxMessages;
      default: return false;
    }
  }
}

const VBODY = ['Subject: volume\r\n\r\nhello\r\n', 'x\r\n..dot\r\n', '', 'a\rb\nc\r\n'];
function lineOf(k: K, i: number, rnd: () => number): string {
  switch (k) {
    case K.EHLO: return `EHLO v${i}.example\r\n`;
    case K.HELO: return `HELO v${i}.example\r\n`;
    case K.MAIL: return rnd() < 0.2 ? 'MAIL FROM:<>\r\n' : `MAIL FROM:<s${i}@v.example>\r\n`;
    case K.MAIL_SIZE: return 'MAIL FROM:<sized@v.example> SIZE=100\r\n';
    case K.RCPT: return rnd() < 0.05 ? 'RCPT TO:<postmaster>\r\n' : `RCPT TO:<r${i}@v.example>\r\n`;
    case K.RCPT_BAD: return 'RCPT TO:<bad@>\r\n';
    case K.DATA: return 'DATA\r\n';
    case K.RSET: return 'RSET\r\n';
    case K.NOOP: return rnd() < 0.5 ? 'NOOP\r\n' : `NOOP ${i}\r\n`;
    case K.HELP: return 'HELP\r\n';
    case K.VRFY: return `VRFY u${i}\r\n`;
    case K.EXPN: return 'EXPN list\r\n';
    case K.UNKNOWN: return 'XYZZY\r\n';
    case K.EMPTY: return '\r\n';
  }
}

type Scenario = 'afterDot' | 'pregreet' | 'inTransaction' | 'rcpts' | 'mixed';
/** Relative weights of the commands of a burst, per scenario. */
const WEIGHTS: Record<Scenario, Partial<Record<K, number>>> = {
  afterDot: { [K.RSET]: 12, [K.NOOP]: 2, [K.HELP]: 1, [K.MAIL]: 2, [K.RCPT]: 2, [K.DATA]: 1, [K.VRFY]: 1, [K.UNKNOWN]: 0.5 },
  pregreet: { [K.RSET]: 12, [K.NOOP]: 2, [K.HELP]: 1, [K.MAIL]: 2, [K.RCPT]: 2, [K.DATA]: 0.5, [K.EHLO]: 0.2, [K.EMPTY]: 0.3 },
  inTransaction: { [K.RCPT]: 10, [K.NOOP]: 2, [K.HELP]: 2, [K.VRFY]: 1, [K.MAIL]: 1, [K.RCPT_BAD]: 0.5, [K.RSET]: 0.05, [K.DATA]: 0.02 },
  rcpts: { [K.RCPT]: 1 },
  mixed: {
    [K.EHLO]: 0.3, [K.HELO]: 0.2, [K.MAIL]: 3, [K.MAIL_SIZE]: 0.5, [K.RCPT]: 5, [K.RCPT_BAD]: 0.5, [K.DATA]: 1, [K.RSET]: 3,
    [K.NOOP]: 2, [K.HELP]: 1, [K.VRFY]: 1, [K.EXPN]: 0.3, [K.UNKNOWN]: 0.5, [K.EMPTY]: 0.3,
  },
};

interface VolumeCase {
  name: string;
  scenario: Scenario;
  profile: string;
  commands: number;
  seed: number;
  /** Number of random cut points (each piece is its own write). */
  cuts: number;
  gaps: boolean;
  /** The burst is this one command only (e.g. the RSET flood of issue 12). */
  only?: K;
}

interface Built {
  bytes: Buffer;
  /** The command behind each expected reply after the greeting, for replaying the model at a cut. */
  kinds: K[];
  /** Expected final reply codes: 220, then one per command (two for DATA with body), then 221. */
  want: number[];
  /** For want[i] (i ≥ 1): the index in kinds of its command. */
  replyOf: Int32Array;
  cuts: number[];
}

function buildVolume(v: VolumeCase): Built {
  const rnd = prng(v.seed);
  const lim = limitsOf(v.profile);
  const m = new VolumeModel(lim);
  const raised = lim.maxSmtpErrors >= 10_000;
  const parts: string[] = [];
  const kinds: K[] = [];
  const want: number[] = [220];
  const replyOf: number[] = [-1];
  const push = (k: K, i: number) => {
    const codes = m.step(k);
    kinds.push(k);
    parts.push(lineOf(k, i, rnd));
    if (k === K.DATA && codes.length === 2) parts.push(VBODY[Math.floor(rnd() * VBODY.length)]! + '.\r\n');
    for (const c of codes) {
      want.push(c);
      replyOf.push(kinds.length - 1);
    }
  };
  // The state the burst starts in.
  if (v.scenario !== 'pregreet') push(K.EHLO, 0);
  if (v.scenario === 'afterDot') {
    push(K.MAIL, 0);
    push(K.RCPT, 0);
    push(K.DATA, 0);
  }
  if (v.scenario === 'inTransaction' || v.scenario === 'rcpts') {
    push(K.MAIL, 0);
    push(K.RCPT, 0);
  }
  if (v.scenario === 'pregreet') push(K.EHLO, 0);
  const w = Object.entries(v.only !== undefined ? { [v.only]: 1 } : WEIGHTS[v.scenario]).map(([k, x]) => [Number(k) as K, x] as const);
  const total = w.reduce((a, [, x]) => a + x, 0);
  for (let i = 1; kinds.length < v.commands; i++) {
    let r = rnd() * total;
    let k = w[w.length - 1]![0];
    for (const [kk, x] of w) if ((r -= x) < 0) {
      k = kk;
      break;
    }
    // Keep raised-limit sessions below every limit: past a budget, a harmless HELP instead.
    if (raised && ((m.errs(k) && m.n.errors >= BUDGET) || (k === K.NOOP && m.n.noop >= BUDGET) || ((k === K.VRFY || k === K.EXPN) && m.n.vrfy >= BUDGET))) k = K.HELP;
    push(k, i);
  }
  parts.push('QUIT\r\n');
  want.push(221);
  replyOf.push(kinds.length);
  const bytes = Buffer.from(parts.join(''), 'latin1');
  const cuts = [...new Set(Array.from({ length: v.cuts }, () => 1 + Math.floor(rnd() * (bytes.length - 1))))].sort((a, b) => a - b);
  return { bytes, kinds, want, replyOf: Int32Array.from(replyOf), cuts };
}

/** mulberry32: commands come from a seed that fast-check draws, so FAKEMX_FUZZ_SEED replays them. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DOCUMENTED_LIMIT = /^421 4\.7\.0 too many (errors|junk commands|NOOP commands|VRFY\/EXPN commands|recipients|messages), closing connection$/;
const volumeStats = { sessions: 0, commands: 0, answered: 0, completed: 0, cutBy: {} as Record<string, number>, maxCommands: 0, maxMs: 0, ms: 0 };

/** The oracle. Returns null when the session is right, else what is wrong. */
function checkVolume(v: VolumeCase, b: Built, o: Outcome): string | null {
  const err = replyErrors(o.received);
  if (err) return err;
  const text = o.received.toString('latin1');
  if (/^421 4\.3\.0 /m.test(text)) return `internal error reply: ${/^421 4\.3\.0 .*$/m.exec(text)![0]}`;
  const finals: string[] = [];
  for (let pos = 0; pos < text.length; ) {
    const nl = text.indexOf('\r\n', pos);
    if (text[pos + 3] === ' ') finals.push(text.slice(pos, nl));
    pos = nl + 2;
  }
  let k = 0;
  while (k < finals.length && k < b.want.length && Number(finals[k]!.slice(0, 3)) === b.want[k]) k++;
  volumeStats.answered += k;
  if (k === b.want.length && finals.length === k) {
    volumeStats.completed++;
    return o.closedByServer ? null : 'the server did not close after QUIT';
  }
  const at = `reply ${k} of ${b.want.length}, command ${k > 0 ? b.replyOf[k] : -1} ${K_NAMES[b.kinds[b.replyOf[k] ?? -1] ?? -1] ?? ''}`;
  if (k >= finals.length) return `${at}: no more replies (want ${b.want[k]}); got ${finals.length}, last ${JSON.stringify(finals.slice(-3))}`;
  const cut = DOCUMENTED_LIMIT.exec(finals[k]!);
  if (!cut) return `${at}: got ${JSON.stringify(finals[k])}, want ${b.want[k]} (or a 421 for a documented limit)`;
  if (finals.length !== k + 1) return `${at}: replies after the 421: ${JSON.stringify(finals.slice(k + 1, k + 4))}`;
  if (!o.closedByServer) return `${at}: no close after ${finals[k]}`;
  // Replay the model up to the cut command (inclusive): its counter must be past the limit.
  const m = new VolumeModel(limitsOf(v.profile));
  for (let i = 0; i <= b.replyOf[k]! && i < b.kinds.length; i++) m.step(b.kinds[i]!);
  if (!m.reached(cut[1]!)) return `${at}: "${finals[k]}" before the limit could be reached (${JSON.stringify(m.n)}, limits ${JSON.stringify(m.lim)})`;
  volumeStats.cutBy[cut[1]!] = (volumeStats.cutBy[cut[1]!] ?? 0) + 1;
  return null;
}

describe('volume: thousands of pipelined commands in one write', () => {
  const vt: Record<string, Target> = {};
  const faults: string[] = [];
  beforeAll(async () => {
    for (const [n, c] of Object.entries(VOLUME_PROFILES)) {
      const t = (vt[n] = await start(`volume-${n}`, c));
      t.server.on('verdict', (e) => {
        if ((e.tag === 'SESSION_FAULT' || e.tag === 'ERROR') && faults.length < 20) faults.push(`${n}: ${e.tag} ${JSON.stringify(e.details)}`);
      });
    }
  });
  afterAll(async () => {
    for (const t of Object.values(vt)) await t.server.close(500);
  });

  async function runVolume(v: VolumeCase): Promise<void> {
    const b = buildVolume(v);
    faults.length = 0;
    const c: Case = { kind: 'volume', profile: v.profile, bytes: b.bytes, cuts: b.cuts, gaps: v.gaps, waitGreeting: v.scenario !== 'pregreet', ending: 'wait' };
    // Bounded: 100,000 commands take 1-2 s on a busy 2-core box; a stalled session fails in 25 s.
    const o = await runSession(vt[v.profile]!.port, c, 10_000 + v.commands / 10);
    volumeStats.sessions++;
    volumeStats.commands += b.kinds.length + 1;
    volumeStats.maxCommands = Math.max(volumeStats.maxCommands, b.kinds.length + 1);
    volumeStats.maxMs = Math.max(volumeStats.maxMs, o.ms);
    volumeStats.ms += o.ms;
    count(c, o);
    const bad = checkVolume(v, b, o);
    if (bad) throw new Error(`${v.name}: ${bad}\nreplay: ${JSON.stringify(v)} (${b.bytes.length} bytes in ${b.cuts.length + 1} writes)\nlast received: ${JSON.stringify(o.received.toString('latin1').slice(-200))}`);
    expect(faults).toEqual([]);
    // The daemon lives and serves a fresh client on the same listener.
    const after = await greeted(vt[v.profile]!.port, 'after-volume.example');
    expect((await after.cmd('QUIT')).code).toBe(221);
    after.close();
  }

  const fixed: VolumeCase[] = [
    // RCPT batches first: on cold (not yet optimised) code each stack frame is biggest, so a
    // recursive engine overflows soonest (1,500 RCPTs were enough in issue 12).
    { name: '1,500 RCPTs in one write: one 250/452 per RCPT, in order (shipped limits)', scenario: 'rcpts', profile: 'defaults', commands: 1502, seed: 5, cuts: 0, gaps: false },
    { name: '1,500 RCPTs split at random offsets (shipped limits)', scenario: 'rcpts', profile: 'defaults', commands: 1502, seed: 6, cuts: 40, gaps: true },
    { name: '5,000 RCPTs with the shipped limits: 100 x 250, then 452s until the overshoot limit', scenario: 'rcpts', profile: 'defaults', commands: 5002, seed: 7, cuts: 8, gaps: false },
    { name: '5,000 RCPTs with maxSmtpRcpt 5000: every one 250', scenario: 'rcpts', profile: 'wideRcpt', commands: 5002, seed: 8, cuts: 8, gaps: true },
    { name: '20,000 RCPTs with maxSmtpRcpt 5000: 5,000 x 250, then 452s, split at random offsets', scenario: 'rcpts', profile: 'wideRcpt', commands: 20_002, seed: 11, cuts: 30, gaps: true },
    { name: `${BIG} commands after DATA's final dot (RSET-heavy), limits raised`, scenario: 'afterDot', profile: 'raised', commands: BIG, seed: 1, cuts: 12, gaps: false },
    { name: `${BIG} commands before the greeting, earlyTalkAction ignore`, scenario: 'pregreet', profile: 'pregreet', commands: BIG, seed: 2, cuts: 12, gaps: true },
    { name: `${BIG} commands inside a transaction (after MAIL), limits raised`, scenario: 'inTransaction', profile: 'raised', commands: BIG, seed: 3, cuts: 12, gaps: false },
    { name: `${BIG} RSETs after the final dot with the shipped limits: cut by the junk-command limit`, scenario: 'afterDot', profile: 'defaults', commands: BIG, seed: 4, cuts: 12, gaps: false, only: K.RSET },
    { name: `${BIG} RSETs before the greeting, earlyTalkAction ignore, limits raised`, scenario: 'pregreet', profile: 'pregreet', commands: BIG, seed: 9, cuts: 3, gaps: false, only: K.RSET },
    { name: `${BIG} mixed commands after the final dot with the shipped limits: cut by a documented limit`, scenario: 'afterDot', profile: 'defaults', commands: BIG, seed: 10, cuts: 12, gaps: true },
  ];
  for (const v of fixed) it(v.name, { timeout: 60_000 }, () => runVolume(v));

  it('the 1,500-RCPT batch gets exactly 100 x 250 then 1,400 x 452 (shipped limits)', { timeout: 30_000 }, async () => {
    const v = fixed.find((f) => f.seed === 5)!;
    const b = buildVolume(v);
    // The model's answer, spelled out: EHLO, MAIL, the first RCPT, 99 more 250s, 1,400 452s, QUIT.
    expect(b.want).toEqual([220, 250, 250, ...Array<number>(100).fill(250), ...Array<number>(1400).fill(452), 221]);
  });

  it(`${VOLUME_SESSIONS} random sessions of up to ${VOLUME_MAX} pipelined commands, every state, split at random offsets`, { timeout: Math.max(60_000, VOLUME_SESSIONS * VOLUME_MAX * 0.05) }, async () => {
    const scenarios: Scenario[] = ['afterDot', 'pregreet', 'inTransaction', 'rcpts', 'mixed'];
    const arb = fc.record({
      scenario: fc.constantFrom(...scenarios),
      limits: fc.constantFrom('raised', 'raised', 'defaults', 'storing', 'wideRcpt'),
      // Log-uniform size: as many short batches as long ones.
      size: fc.double({ min: Math.log(50), max: Math.log(VOLUME_MAX), noNaN: true }),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      cuts: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 9, max: 400 })),
      gaps: fc.boolean(),
    });
    let i = 0;
    await fc.assert(
      fc.asyncProperty(arb, async (a) => {
        const profile = a.scenario === 'pregreet' ? 'pregreet' : a.limits;
        const v: VolumeCase = { name: `volume #${i++} ${a.scenario}/${profile}`, scenario: a.scenario, profile, commands: Math.round(Math.exp(a.size)), seed: a.seed, cuts: a.cuts, gaps: a.gaps };
        await runVolume(v);
      }),
      { ...fcParams(VOLUME_SESSIONS), endOnFailure: true },
    );
    expect(volumeStats.completed).toBeGreaterThan(0);
  });

  it('afterwards: every volume session is closed on the server too', async () => {
    for (const t of Object.values(vt)) {
      for (const end = Date.now() + 3000; t.server.activeSessions > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      expect(t.server.activeSessions, t.name).toBe(0);
      expect(t.errors, t.name).toEqual([]);
    }
  });

  afterAll(() => {
    const summary = { ...volumeStats, commandsPerSecond: Math.round(volumeStats.commands / Math.max(0.001, volumeStats.ms / 1000)) };
    console.log(`fuzz volume: ${JSON.stringify(summary)}`);
    // The fuzz report (written by the "afterwards" test, which runs first) gets the volume part.
    const report = process.env.FAKEMX_FUZZ_REPORT;
    if (report && existsSync(report)) writeFileSync(report, JSON.stringify({ ...JSON.parse(readFileSync(report, 'utf8')), volume: summary }, null, 2));
  });
});

function listStore(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const d of readdirSync(root)) for (const f of readdirSync(join(root, d))) out.push(join(d, f));
  return out;
}

/** The reply sequence of a well-formed session, and its stored body, exactly. */
function checkOracle(o: Outcome, v: Valid, what: string, t: Target = oracle): void {
  const err = replyErrors(o.received);
  if (err) throw new Error(`${what}: ${err}`);
  const text = o.received.toString('latin1');
  const codes = [...text.matchAll(/^(\d{3}) /gm)].map((m) => Number(m[1]));
  const want = [220, 250, 250, ...v.rcpts.map(() => 250), 354, 250, 221];
  if (JSON.stringify(codes) !== JSON.stringify(want)) throw new Error(`${what}: replies ${JSON.stringify(codes)} != ${JSON.stringify(want)}\n${text}`);
  const id = /queued as ([0-9a-z]+)/.exec(text)?.[1];
  if (!id) throw new Error(`${what}: no queue id in ${text}`);
  const day = readdirSync(t.store).find((d) => existsSync(join(t.store, d, `${id}.eml`)));
  if (!day) throw new Error(`${what}: ${id}.eml not stored`);
  const eml = readFileSync(join(t.store, day, `${id}.eml`));
  const meta = JSON.parse(readFileSync(join(t.store, day, `${id}.json`), 'utf8')) as MessageMetadata;
  const body = eml.subarray(meta.sizes.headers);
  if (!body.equals(bodyOf(v))) throw new Error(`${what}: body differs\nwant ${JSON.stringify(bodyOf(v).toString('latin1'))}\ngot  ${JSON.stringify(body.toString('latin1'))}`);
  if (JSON.stringify(meta.envelope.rcptTo) !== JSON.stringify(v.rcpts) || meta.envelope.mailFrom !== v.from) throw new Error(`${what}: envelope ${JSON.stringify(meta.envelope)}`);
}
