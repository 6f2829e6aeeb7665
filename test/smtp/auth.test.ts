// AUTH honeypot (RFC 4954) conformance table: named sessions against a real server on
// 127.0.0.1, every reply read and checked in order, the next reply after the last step must
// be QUIT's 221 (or the server has closed). Every finished exchange is an AUTH verdict with
// what auth.recordPasswords allows, and fails with 535 5.7.8; past auth.maxAttempts, 421.
// Then: the salt, the metric, the record of a message after AUTH, TLS-only offering, the
// error tarpit.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import selfsigned from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VerdictEvent } from '../../src/events.js';
import { Metrics } from '../../src/metrics.js';
import { installSalt } from '../../src/policy/auth.js';
import { RawClient } from '../helpers/client.js';
import { startEngine } from '../helpers/engine.js';
import { startServer, type TestServer } from '../helpers/server.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const SALT = 'test-salt';
const sha = (pw: string) => createHash('sha256').update(SALT).update('\0').update(pw).digest('hex');
const AUTH = { enabled: true, allowPlaintext: true, salt: SALT };

interface Step {
  send?: string;
  raw?: string;
  expect?: string | string[];
}
interface Case {
  name: string;
  config?: Record<string, unknown>;
  /** ehlo (default), helo or none after the greeting. */
  start?: 'ehlo' | 'helo' | 'none';
  steps: Step[];
  closes?: boolean;
  /** The AUTH verdicts' details, in order (atMs and attempt left out). */
  attempts?: Record<string, unknown>[];
  /** The session's PIPELINING verdict (details it must have); none unless given. */
  early?: Record<string, unknown>;
}

const cases: Case[] = [
  { name: 'EHLO offers AUTH PLAIN LOGIN when allowed in clear', steps: [{ send: 'EHLO again.test', expect: '250 /\nAUTH PLAIN LOGIN\n/' }] },
  { name: 'CRAM-MD5 is offered when enabled', config: { auth: { ...AUTH, cramMd5: true } }, steps: [{ send: 'EHLO again.test', expect: '250 /\nAUTH PLAIN LOGIN CRAM-MD5\n/' }] },
  { name: 'not offered in clear by default: AUTH is 538 5.7.11', config: { auth: { enabled: true } }, steps: [{ send: 'EHLO again.test', expect: '250 /^(?![\\s\\S]*AUTH)/' }, { send: `AUTH PLAIN ${b64('\0u\0p')}`, expect: '538 5.7.11' }] },
  { name: 'auth disabled: AUTH is 502', config: { auth: { enabled: false } }, steps: [{ send: 'AUTH PLAIN', expect: '502 5.5.1' }] },
  // RFC 4954 §5: where AUTH is offered, MAIL FROM takes AUTH=<> (sendmail sends it unauthenticated) or a mailbox.
  { name: 'MAIL FROM with AUTH=<> where AUTH is offered: 250', steps: [{ send: 'MAIL FROM:<a@example.org> AUTH=<>', expect: '250 2.1.0' }], attempts: [] },
  { name: 'MAIL FROM with AUTH=<xtext> where AUTH is offered: 250', steps: [{ send: 'MAIL FROM:<a@example.org> AUTH=a+2Bb@example.org SIZE=100', expect: '250 2.1.0' }], attempts: [] },
  { name: 'MAIL FROM with AUTH= where AUTH is not offered: 555', config: { auth: { enabled: true } }, steps: [{ send: 'MAIL FROM:<a@example.org> AUTH=<>', expect: '555 5.5.4' }], attempts: [] },
  {
    name: 'PLAIN with an initial response: 535 5.7.8, recorded with the salted hash',
    steps: [{ send: `AUTH PLAIN ${b64('\0admin\0hunter2')}`, expect: '535 5.7.8 /Authentication credentials invalid$/' }],
    attempts: [{ mechanism: 'PLAIN', user: 'admin', tls: false, initialResponse: true, password: sha('hunter2'), passwordFormat: 'sha256' }],
  },
  {
    name: 'PLAIN without an initial response: empty 334, then 535',
    steps: [{ send: 'AUTH PLAIN', expect: '334' }, { send: b64('boss\x00info@example.com\x00123456'), expect: '535 5.7.8' }],
    attempts: [{ mechanism: 'PLAIN', user: 'info@example.com', authzid: 'boss', tls: false, initialResponse: false, password: sha('123456'), passwordFormat: 'sha256' }],
  },
  {
    name: 'LOGIN: Username: and Password: challenges, then 535',
    steps: [{ send: 'AUTH LOGIN', expect: '334 /^VXNlcm5hbWU6$/' }, { send: b64('postmaster'), expect: '334 /^UGFzc3dvcmQ6$/' }, { send: b64('pässwörd'), expect: '535 5.7.8' }],
    attempts: [{ mechanism: 'LOGIN', user: 'postmaster', tls: false, initialResponse: false, password: sha('pässwörd'), passwordFormat: 'sha256' }],
  },
  {
    name: 'LOGIN with the user name as initial response',
    steps: [{ send: `auth login ${b64('root')}`, expect: '334 /^UGFzc3dvcmQ6$/' }, { send: b64('toor'), expect: '535 5.7.8' }],
    attempts: [{ mechanism: 'LOGIN', user: 'root', tls: false, initialResponse: true, password: sha('toor'), passwordFormat: 'sha256' }],
  },
  // ---- pipelining inside an AUTH exchange (RFC 4954 §4, RFC 2920 §3.1) ----
  // AUTH ends a pipelined group, and each response is sent only after its 334: input behind
  // them before the reply is early talk (earlyTalkAction drop by default: 554 and close, the
  // lines are never decoded). The verdict's sample shows one "*" a line, never the credentials.
  {
    name: 'a whole LOGIN exchange in one write is early talk (PIPELINING after AUTH)',
    steps: [{ raw: `AUTH LOGIN\r\n${b64('a')}\r\n${b64('b')}\r\nNOOP\r\n`, expect: '554 5.5.1 /protocol error/' }],
    closes: true,
    attempts: [],
    early: { after: 'AUTH', sample: '*\\r\\n*\\r\\n*\\r\\n', action: 'drop' },
  },
  {
    name: 'PLAIN credentials sent with AUTH PLAIN, before the empty 334, are early talk',
    steps: [{ raw: `AUTH PLAIN\r\n${b64('\0admin\0hunter2')}\r\n`, expect: '554 5.5.1' }],
    closes: true,
    attempts: [],
    early: { after: 'AUTH', sample: '*\\r\\n' },
  },
  {
    name: 'LOGIN with an initial response is not one round trip: the password behind it is early talk',
    steps: [{ raw: `AUTH LOGIN ${b64('root')}\r\n${b64('toor')}\r\n`, expect: '554 5.5.1' }],
    closes: true,
    attempts: [],
    early: { after: 'AUTH' },
  },
  {
    name: 'user name and password in one write, before the Password: challenge, are early talk',
    steps: [{ send: 'AUTH LOGIN', expect: '334 /^VXNlcm5hbWU6$/' }, { raw: `${b64('u')}\r\n${b64('p')}\r\n`, expect: '554 5.5.1' }],
    closes: true,
    attempts: [],
    early: { after: 'AUTH', sample: '*\\r\\n' },
  },
  {
    name: 'a command behind the last response, before the 535, is early talk',
    steps: [{ send: 'AUTH LOGIN', expect: '334' }, { send: b64('u'), expect: '334' }, { raw: `${b64('p')}\r\nMAIL FROM:<a@example.org>\r\n`, expect: '554 5.5.1' }],
    closes: true,
    attempts: [],
    early: { after: 'AUTH', sample: '*\\r\\n' },
  },
  {
    name: 'an exchange line reading "PLAIN x" is a response, not AUTH PLAIN with an initial response: input behind it is early talk',
    steps: [{ send: 'AUTH LOGIN', expect: '334' }, { raw: 'PLAIN eA==\r\nNOOP\r\n', expect: '554 5.5.1' }],
    closes: true,
    attempts: [],
    early: { after: 'AUTH', sample: '*\\r\\n' },
  },
  {
    name: 'CRAM-MD5: a response sent with the command, before the challenge, is early talk',
    config: { auth: { ...AUTH, cramMd5: true } },
    steps: [{ raw: `AUTH CRAM-MD5\r\n${b64('tim 0123')}\r\n`, expect: '554 5.5.1' }],
    closes: true,
    attempts: [],
    early: { after: 'AUTH' },
  },
  {
    name: 'AUTH PLAIN with an initial response may be followed in the same write (the §4 exception)',
    steps: [{ raw: `AUTH PLAIN ${b64('\0u\0p')}\r\nNOOP\r\n`, expect: ['535 5.7.8', '250'] }],
    attempts: [{ mechanism: 'PLAIN', user: 'u', tls: false, initialResponse: true, password: sha('p'), passwordFormat: 'sha256' }],
  },
  {
    name: 'earlyTalkAction ignore: flagged, and the lines are read as the exchange, not as commands',
    config: { auth: AUTH, earlyTalkAction: 'ignore' },
    steps: [{ raw: `AUTH LOGIN\r\n${b64('a')}\r\n${b64('b')}\r\nNOOP\r\n`, expect: ['334', '334', '535 5.7.8', '250'] }],
    attempts: [{ mechanism: 'LOGIN', user: 'a', tls: false, initialResponse: false, password: sha('b'), passwordFormat: 'sha256' }],
    early: { after: 'AUTH', sample: '*\\r\\n*\\r\\n*\\r\\n', action: 'ignore' },
  },
  {
    name: 'earlyTalkAction ignore: a MAIL line behind AUTH PLAIN is its (malformed) response, never a command',
    config: { auth: AUTH, earlyTalkAction: 'ignore' },
    steps: [{ raw: 'AUTH PLAIN\r\nMAIL FROM:<a@example.org>\r\n', expect: ['334', '501 5.5.2'] }, { send: 'RCPT TO:<b@example.com>', expect: '503 5.5.1' }],
    attempts: [],
    early: { after: 'AUTH', sample: '*\\r\\n' },
  },
  {
    name: 'earlyTalkAction enforce: the exchange goes on, then every RCPT is refused',
    config: { auth: AUTH, earlyTalkAction: 'enforce' },
    steps: [{ raw: `AUTH PLAIN\r\n${b64('\0u\0p')}\r\n`, expect: ['334', '535 5.7.8'] }, { send: 'MAIL FROM:<a@example.org>', expect: '250' }, { send: 'RCPT TO:<b@example.com>', expect: '550 5.5.1 /protocol error/' }],
    attempts: [{ mechanism: 'PLAIN', user: 'u', tls: false, initialResponse: false, password: sha('p'), passwordFormat: 'sha256' }],
    early: { after: 'AUTH', action: 'enforce' },
  },
  {
    name: 'CRAM-MD5: challenge, user and digest recorded, never a password',
    config: { auth: { ...AUTH, cramMd5: true } },
    steps: [{ send: 'AUTH CRAM-MD5', expect: '334 /^[A-Za-z0-9+/]+=*$/' }, { send: b64('tim b913a602c7eda7a495b4e6e7334d3890'), expect: '535 5.7.8' }],
    // The challenge too (recordPasswords sha256, the default): with it a guessed password can be checked against the digest.
    attempts: [{ mechanism: 'CRAM-MD5', user: 'tim', tls: false, initialResponse: false, cramDigest: 'b913a602c7eda7a495b4e6e7334d3890', cramChallenge: expect.stringMatching(/^<[0-9a-f]+\.\d+@mx\.test>$/) }],
  },
  {
    name: 'CRAM-MD5 with recordPasswords none: the digest without its challenge (which would make it checkable)',
    config: { auth: { ...AUTH, cramMd5: true, recordPasswords: 'none' } },
    steps: [{ send: 'AUTH CRAM-MD5', expect: '334' }, { send: b64('tim b913a602c7eda7a495b4e6e7334d3890'), expect: '535 5.7.8' }],
    attempts: [{ mechanism: 'CRAM-MD5', user: 'tim', tls: false, initialResponse: false, cramDigest: 'b913a602c7eda7a495b4e6e7334d3890' }],
  },
  { name: 'CRAM-MD5 not offered: 504', steps: [{ send: 'AUTH CRAM-MD5', expect: '504 5.5.4' }] },
  { name: 'CRAM-MD5 with an initial response is 501', config: { auth: { ...AUTH, cramMd5: true } }, steps: [{ send: `AUTH CRAM-MD5 ${b64('x')}`, expect: '501 5.5.4' }, { send: 'NOOP', expect: '250' }] },
  { name: 'unknown mechanism is 504 5.5.4', steps: [{ send: 'AUTH GSSAPI', expect: '504 5.5.4' }] },
  { name: 'AUTH without a mechanism is 501', steps: [{ send: 'AUTH', expect: '501 5.5.4' }] },
  { name: '"*" cancels the exchange with 501 5.0.0; nothing is recorded', steps: [{ send: 'AUTH LOGIN', expect: '334' }, { send: '*', expect: '501 5.0.0' }, { send: 'NOOP', expect: '250' }], attempts: [] },
  { name: 'a malformed base64 response is 501 5.5.2; the session goes on', steps: [{ send: 'AUTH PLAIN', expect: '334' }, { send: 'not base64!', expect: '501 5.5.2' }, { send: 'NOOP', expect: '250' }], attempts: [] },
  { name: 'a malformed initial response is 501 5.5.2', steps: [{ send: 'AUTH PLAIN a=b=', expect: '501 5.5.2' }], attempts: [] },
  {
    name: 'the initial response "=" is empty',
    steps: [{ send: 'AUTH PLAIN =', expect: '535 5.7.8' }],
    attempts: [{ mechanism: 'PLAIN', user: '', tls: false, initialResponse: true, password: sha(''), passwordFormat: 'sha256' }],
  },
  { name: 'an over-long exchange line is 500 5.5.6; the session goes on', steps: [{ send: 'AUTH PLAIN', expect: '334' }, { send: 'A'.repeat(13_000), expect: '500 5.5.6' }, { send: 'NOOP', expect: '250' }], attempts: [] },
  { name: 'an over-long AUTH command line is 500 5.5.2', steps: [{ send: `AUTH PLAIN ${'A'.repeat(600)}`, expect: '500 5.5.2' }, { send: 'NOOP', expect: '250' }], attempts: [] },
  { name: 'AUTH before EHLO is 503', start: 'none', steps: [{ send: `AUTH PLAIN ${b64('\0u\0p')}`, expect: '503' }], attempts: [] },
  { name: 'AUTH after HELO is 503 (an ESMTP extension)', start: 'helo', steps: [{ send: `AUTH PLAIN ${b64('\0u\0p')}`, expect: '503 5.5.1' }], attempts: [] },
  {
    name: 'AUTH inside a transaction is 503 5.5.1',
    steps: [{ send: 'MAIL FROM:<a@example.org>', expect: '250' }, { send: `AUTH PLAIN ${b64('\0u\0p')}`, expect: '503 5.5.1' }, { send: 'RSET', expect: '250' }],
    attempts: [],
  },
  {
    name: 'AUTH twice: each attempt fails and is recorded',
    steps: [{ send: `AUTH PLAIN ${b64('\0u1\0p1')}`, expect: '535 5.7.8' }, { send: `AUTH PLAIN ${b64('\0u2\0p2')}`, expect: '535 5.7.8' }],
    attempts: [
      { mechanism: 'PLAIN', user: 'u1', tls: false, initialResponse: true, password: sha('p1'), passwordFormat: 'sha256' },
      { mechanism: 'PLAIN', user: 'u2', tls: false, initialResponse: true, password: sha('p2'), passwordFormat: 'sha256' },
    ],
  },
  {
    name: 'past auth.maxAttempts: 421 and close, that attempt recorded too',
    config: { auth: { ...AUTH, maxAttempts: 2, recordPasswords: 'plain' }, maxSmtpErrors: 10 },
    steps: [{ send: `AUTH PLAIN ${b64('\0a\0x')}`, expect: '535' }, { send: `AUTH PLAIN ${b64('\0b\0y')}`, expect: '535' }, { send: `AUTH PLAIN ${b64('\0c\0z')}`, expect: '421 4.7.0' }],
    closes: true,
    attempts: ['a', 'b', 'c'].map((u, i) => ({ mechanism: 'PLAIN', user: u, tls: false, initialResponse: true, password: 'xyz'[i], passwordFormat: 'plain' })),
  },
  {
    name: 'recordPasswords none: no password in the record',
    config: { auth: { ...AUTH, recordPasswords: 'none' } },
    steps: [{ send: `AUTH PLAIN ${b64('\0u\0secret')}`, expect: '535' }],
    attempts: [{ mechanism: 'PLAIN', user: 'u', tls: false, initialResponse: true }],
  },
];

function check(r: { code: number; enhanced: string | undefined; text: string; raw: string }, exp: string, what: string): void {
  const m = /^(\d{3})(?: (\d\.\d{1,3}\.\d{1,3}))?(?: \/(.*)\/)?$/s.exec(exp);
  if (!m) throw new Error(`bad expectation ${exp}`);
  expect(r.code, `${what} -> ${r.raw}`).toBe(Number(m[1]));
  if (m[2]) expect(r.enhanced, r.raw).toBe(m[2]);
  if (m[3]) expect(r.text, r.raw).toMatch(new RegExp(m[3]));
}

const servers = new Map<string, { srv: TestServer; verdicts: VerdictEvent[] }>();
async function get(config: Record<string, unknown> = {}) {
  const key = JSON.stringify(config);
  let s = servers.get(key);
  if (!s) {
    const srv = await startServer({ auth: AUTH, ...config });
    const verdicts: VerdictEvent[] = [];
    srv.server.on('verdict', (v) => verdicts.push(v));
    servers.set(key, (s = { srv, verdicts }));
  }
  return s;
}
afterAll(async () => {
  for (const s of servers.values()) await s.srv.close();
});


/**
 * A server with these settings; `talk` opens clients already past EHLO (`connect`) and drives
 * them; the details of every AUTH verdict recorded, in order. The server is closed after.
 */
async function authDetailsOf(config: Record<string, unknown>, talk: (connect: () => Promise<RawClient>) => Promise<void>): Promise<Record<string, unknown>[]> {
  const srv = await startServer(config);
  const seen: VerdictEvent[] = [];
  srv.server.on('verdict', (v) => seen.push(v));
  try {
    await talk(async () => {
      const cl = await RawClient.connect(srv.port);
      await cl.reply();
      await cl.cmd('EHLO c.test');
      return cl;
    });
    return seen.filter((v) => v.tag === 'AUTH').map((v) => v.details);
  } finally {
    await srv.close();
  }
}

describe('AUTH honeypot (RFC 4954)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const { srv, verdicts } = await get(c.config);
      const cl = await RawClient.connect(srv.port);
      const port = cl.socket.localPort;
      const mine = (v: VerdictEvent) => v.session?.remotePort === port;
      try {
        expect((await cl.reply()).code).toBe(220);
        if ((c.start ?? 'ehlo') === 'ehlo') expect((await cl.cmd('EHLO client.test')).code).toBe(250);
        if (c.start === 'helo') expect((await cl.cmd('HELO client.test')).code).toBe(250);
        for (const step of c.steps) {
          if (step.send !== undefined) cl.send(step.send + '\r\n');
          if (step.raw !== undefined) cl.send(step.raw);
          const exps = step.expect === undefined ? [] : Array.isArray(step.expect) ? step.expect : [step.expect];
          for (const e of exps) check(await cl.reply(), e, step.send ?? '(raw)');
        }
        if (c.closes) {
          expect(await cl.waitClose(2000)).toBe(true);
        } else {
          const q = await cl.cmd('QUIT');
          expect(q.raw, `the next reply after the last step must be QUIT's 221 (then ${JSON.stringify(cl.pending)})`).toMatch(/^221 /);
          expect(await cl.waitClose(2000)).toBe(true);
        }
        expect(cl.pending).toBe('');
      } finally {
        cl.close();
      }
      const early = verdicts.filter((v) => mine(v) && v.tag === 'PIPELINING').map((v) => v.details);
      if (c.early) {
        expect(early).toHaveLength(1);
        expect(early[0]).toMatchObject(c.early);
      } else {
        expect(early, 'no PIPELINING verdict').toEqual([]);
      }
      if (c.attempts) {
        const got = verdicts.filter((v) => mine(v) && v.tag === 'AUTH').map((v) => v.details);
        expect(got.map((d) => d.attempt)).toEqual(c.attempts.map((_, i) => i + 1));
        expect(got.map(({ attempt: _a, ...d }) => d)).toEqual(c.attempts);
      }
    });
  }
});

describe('AUTH in the engine', () => {
  it('a hook that answers 235 makes a later AUTH 503 (RFC 4954 §4); credentials never reach the command hook', async () => {
    const lines: string[] = [];
    const eng = await startEngine(
      { auth: (_s, a) => (a.password === 'right' ? { code: 235, enhanced: '2.7.0', text: 'Authentication successful' } : undefined), command: (_s, l) => void lines.push(l) },
      { auth: { mechanisms: ['PLAIN', 'LOGIN'], plaintext: true } },
    );
    try {
      const cl = await RawClient.connect(eng.port);
      await cl.reply();
      await cl.cmd('EHLO c.test');
      // No hook answer: the engine cannot check credentials, 454 4.7.0.
      expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0wrong')}`)).raw).toMatch(/^454 4\.7\.0 /);
      expect((await cl.cmd('AUTH LOGIN')).code).toBe(334);
      expect((await cl.cmd(b64('u'))).code).toBe(334);
      expect((await cl.cmd(b64('right'))).raw).toMatch(/^235 2\.7\.0 /);
      expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0right')}`)).raw).toMatch(/^503 5\.5\.1 /);
      await cl.cmd('QUIT');
      cl.close();
      expect(lines.join('\n')).not.toMatch(new RegExp([b64('\0u\0wrong'), b64('u'), b64('right')].map((x) => x.replace(/[+/=]/g, '.')).join('|')));
      expect(lines).toContain('AUTH PLAIN *');
      expect(lines).toContain('(AUTH response)');
    } finally {
      await eng.close();
    }
  });
});

describe('AUTH honeypot: records, metric, TLS, tarpit', () => {
  it('the per-install salt is made once (0600) and kept; auth.salt wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fakemx-salt-'));
    const a = installSalt({ salt: '' }, dir);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(dir, 'auth-salt')).mode & 0o777).toBe(0o600);
    expect(installSalt({ salt: '' }, dir)).toBe(a);
    writeFileSync(join(dir, 'auth-salt'), 'other\n');
    expect(installSalt({ salt: '' }, dir)).toBe('other');
    expect(installSalt({ salt: 'cfg' }, dir)).toBe('cfg');
    expect(readFileSync(join(dir, 'auth-salt'), 'utf8')).toBe('other\n');
  });

  it('without auth.salt the server hashes with the salt under state.path', async () => {
    const state = mkdtempSync(join(tmpdir(), 'fakemx-state-'));
    const details = await authDetailsOf({ auth: { enabled: true, allowPlaintext: true }, state: { path: state } }, async (connect) => {
      const cl = await connect();
      expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0pw')}`)).code).toBe(535);
      cl.close();
    });
    const salt = readFileSync(join(state, 'auth-salt'), 'utf8').trim();
    expect(details[0]!.password).toBe(createHash('sha256').update(salt).update('\0').update('pw').digest('hex'));
  });

  it('a password that is not UTF-8 is hashed as the octets sent: no two share a hash', async () => {
    const shaOctets = (pw: Buffer) => createHash('sha256').update(SALT).update('\0').update(pw).digest('hex');
    // Latin-1 passwords: each decodes to 'p\uFFFDss' as UTF-8.
    const pwA = Buffer.from('p\xe9ss', 'latin1');
    const pwB = Buffer.from('p\xe8ss', 'latin1');
    const details = await authDetailsOf({ auth: AUTH }, async (connect) => {
      const cl = await connect();
      const plain = Buffer.concat([Buffer.from('\0u\0', 'latin1'), pwA]);
      expect((await cl.cmd(`AUTH PLAIN ${plain.toString('base64')}`)).code).toBe(535);
      expect((await cl.cmd(`AUTH LOGIN ${b64('u')}`)).code).toBe(334);
      expect((await cl.cmd(pwB.toString('base64'))).code).toBe(535);
      expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0p\u00e9ss')}`)).code).toBe(535);
      cl.close();
    });
    const pws = details.map((d) => d.password);
    expect(pws).toEqual([shaOctets(pwA), shaOctets(pwB), sha('p\u00e9ss')]);
    expect(new Set(pws).size).toBe(3);
  });

  it('a user name that is not UTF-8 keeps its octets (userBase64) beside the U+FFFD reading; a UTF-8 one has none', async () => {
    const jose = Buffer.from('jos\xe9', 'latin1');
    const b64b = (b: Buffer) => b.toString('base64');
    const details = await authDetailsOf({ auth: { ...AUTH, cramMd5: true } }, async (connect) => {
      const cl = await connect();
      expect((await cl.cmd(`AUTH PLAIN ${b64b(Buffer.concat([Buffer.from('\0'), jose, Buffer.from('\0pw')]))}`)).code).toBe(535);
      expect((await cl.cmd(`AUTH LOGIN ${b64b(jose)}`)).code).toBe(334);
      expect((await cl.cmd(b64('pw'))).code).toBe(535);
      expect((await cl.cmd('AUTH CRAM-MD5')).code).toBe(334);
      expect((await cl.cmd(b64b(Buffer.concat([jose, Buffer.from(' b913a602c7eda7a495b4e6e7334d3890')])))).code).toBe(535);
      cl.close();
      const c2 = await connect();
      expect((await c2.cmd(`AUTH PLAIN ${b64('\0jos\u00e9\0pw')}`)).code).toBe(535);
      c2.close();
    });
    expect(details.slice(0, 3).map((d) => [d.mechanism, d.user, d.userBase64])).toEqual([
      ['PLAIN', 'jos\uFFFD', b64b(jose)],
      ['LOGIN', 'jos\uFFFD', b64b(jose)],
      ['CRAM-MD5', 'jos\uFFFD', b64b(jose)],
    ]);
    expect(details[3]).toMatchObject({ user: 'jos\u00e9' });
    expect(details[3]).not.toHaveProperty('userBase64');
  });

  it('recordPasswords plain: a password that is not UTF-8 keeps its octets (passwordBase64); a UTF-8 one has none, nor has a hash', async () => {
    const pw = Buffer.from('p\xe9ss', 'latin1');
    const run = (recordPasswords: string) =>
      authDetailsOf({ auth: { ...AUTH, recordPasswords } }, async (connect) => {
        const cl = await connect();
        expect((await cl.cmd(`AUTH PLAIN ${Buffer.concat([Buffer.from('\0u\0'), pw]).toString('base64')}`)).code).toBe(535);
        expect((await cl.cmd(`AUTH LOGIN ${b64('u')}`)).code).toBe(334);
        expect((await cl.cmd(pw.toString('base64'))).code).toBe(535);
        expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0p\u00e9ss')}`)).code).toBe(535);
        cl.close();
      });
    const plain = await run('plain');
    expect(plain.map((d) => [d.password, d.passwordBase64])).toEqual([
      ['p\uFFFDss', pw.toString('base64')],
      ['p\uFFFDss', pw.toString('base64')],
      ['p\u00e9ss', undefined],
    ]);
    for (const d of await run('sha256')) expect(d).not.toHaveProperty('passwordBase64');
  });

  it('a malformed PLAIN message (fewer than two NULs) records its text as a password, never in clear as the user', async () => {
    const details = await authDetailsOf({ auth: { ...AUTH, recordPasswords: 'none' } }, async (connect) => {
      const cl = await connect();
      expect((await cl.cmd(`AUTH PLAIN ${b64('alice\0S3cret!')}`)).code).toBe(535);
      expect((await cl.cmd(`AUTH PLAIN ${b64('S3cret2')}`)).code).toBe(535);
      cl.close();
    });
    expect(details.map((d) => [d.user, d.authzid, d.password])).toEqual([
      ['alice', undefined, undefined],
      ['', undefined, undefined],
    ]);
    expect(JSON.stringify(details)).not.toContain('S3cret');
  });

  it('a malformed PLAIN message is hashed like a password with recordPasswords sha256', async () => {
    const details = await authDetailsOf({ auth: AUTH }, async (connect) => {
      const cl = await connect();
      await cl.cmd(`AUTH PLAIN ${b64('alice\0S3cret!')}`);
      await cl.cmd(`AUTH PLAIN ${b64('S3cret2')}`);
      cl.close();
    });
    expect(details.map((d) => [d.user, d.password])).toEqual([
      ['alice', sha('S3cret!')],
      ['', sha('S3cret2')],
    ]);
  });

  it('fakemx_auth_attempts_total counts attempts by mechanism and TLS', async () => {
    const srv = await startServer({ auth: AUTH });
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.attach(srv.server);
    try {
      const cl = await RawClient.connect(srv.port);
      await cl.reply();
      await cl.cmd('EHLO c.test');
      await cl.cmd(`AUTH PLAIN ${b64('\0u\0p')}`);
      await cl.cmd(`AUTH LOGIN ${b64('u')}`);
      await cl.cmd(b64('p'));
      await cl.cmd(`AUTH PLAIN ${b64('\0v\0q')}`);
      cl.close();
      const text = await metrics.text();
      expect(text).toMatch(/fakemx_auth_attempts_total\{mechanism="PLAIN",tls="no"\} 2/);
      expect(text).toMatch(/fakemx_auth_attempts_total\{mechanism="LOGIN",tls="no"\} 1/);
    } finally {
      await srv.close();
    }
  });

  it('a message stored after failed AUTH carries the attempts in its record', async () => {
    const srv = await startServer({ auth: AUTH });
    try {
      const cl = await RawClient.connect(srv.port);
      await cl.reply();
      await cl.cmd('EHLO c.test');
      expect((await cl.cmd(`AUTH PLAIN ${b64('\0spam@example.com\0pw')}`)).code).toBe(535);
      await cl.cmd('MAIL FROM:<a@example.org>');
      await cl.cmd('RCPT TO:<b@example.com>');
      cl.send('BDAT 3 LAST\r\nabc');
      expect((await cl.reply()).text).toMatch(/queued as/);
      cl.close();
      const [m] = srv.messages();
      const auth = m!.meta.verdicts.filter((v) => v.tag === 'AUTH');
      expect(auth).toHaveLength(1);
      expect(auth[0]).toMatchObject({ mechanism: 'PLAIN', user: 'spam@example.com', tls: false, password: sha('pw') });
    } finally {
      await srv.close();
    }
  });

  it('the 535 waits for the error tarpit', async () => {
    const srv = await startServer({ auth: AUTH, errorDelay: 150 });
    try {
      const cl = await RawClient.connect(srv.port);
      await cl.reply();
      await cl.cmd('EHLO c.test');
      let t = Date.now();
      expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0p')}`)).code).toBe(535);
      expect(Date.now() - t).toBeGreaterThanOrEqual(140);
      t = Date.now();
      expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0p')}`)).code).toBe(535);
      expect(Date.now() - t).toBeGreaterThanOrEqual(290); // errorDelay x errors so far
      cl.close();
    } finally {
      await srv.close();
    }
  });

  describe('offered only after STARTTLS by default', () => {
    let certFile = '';
    let keyFile = '';
    beforeAll(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'fakemx-tls-'));
      const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.test' }], { keySize: 2048, algorithm: 'sha256' });
      certFile = join(dir, 'cert.pem');
      keyFile = join(dir, 'key.pem');
      writeFileSync(certFile, pems.cert);
      writeFileSync(keyFile, pems.private);
    });

    it('no AUTH in clear, AUTH PLAIN LOGIN after STARTTLS; the attempt is recorded with tls', async () => {
      const srv = await startServer({
        tls: { cert: certFile, key: keyFile },
        listeners: [{ address: '127.0.0.1', port: 0, tls: 'starttls', profile: { auth: { enabled: true, salt: SALT } } }],
      });
      const seen: VerdictEvent[] = [];
      srv.server.on('verdict', (v) => seen.push(v));
      try {
        const cl = await RawClient.connect(srv.port);
        await cl.reply();
        const e1 = await cl.cmd('EHLO c.test');
        expect(e1.text).not.toMatch(/AUTH/);
        expect((await cl.cmd(`AUTH PLAIN ${b64('\0u\0p')}`)).code).toBe(538);
        expect((await cl.cmd('STARTTLS')).code).toBe(220);
        const sec = tlsConnect({ socket: cl.socket, rejectUnauthorized: false, servername: 'mx.test' });
        await new Promise<void>((r, j) => sec.once('secureConnect', () => r()).once('error', j));
        const tc = new RawClient(sec);
        const e2 = await tc.cmd('EHLO c.test');
        expect(e2.text).toMatch(/\nAUTH PLAIN LOGIN\n/);
        const r = await tc.cmd(`AUTH PLAIN ${b64('\0user\0pass')}`);
        expect(r.code).toBe(535);
        expect(r.enhanced).toBe('5.7.8');
        expect((await tc.cmd('QUIT')).code).toBe(221);
        tc.close();
        const auth = seen.filter((v) => v.tag === 'AUTH');
        expect(auth.map((v) => v.details)).toEqual([{ mechanism: 'PLAIN', user: 'user', tls: true, attempt: 1, initialResponse: true, password: sha('pass'), passwordFormat: 'sha256' }]);
      } finally {
        await srv.close();
      }
    });
  });
});
