// No client- or DNS-supplied text reaches the operator's terminal raw: `fakemx report` (text
// and --json) over a corpus whose records carry hostile HELO names and senders, `fakemx dnsbl`
// against a DNS server answering hostile TXT records, and `fakemx state list` / `export` over
// greylist entries of hostile senders and recipients, all run as the built CLI in a child
// process, the way an operator runs them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStateStore } from '../../src/state/store.js';
import { keys } from '../../src/state/types.js';
import { runCli } from '../helpers/daemon.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

/** Raw terminal controls; "\n" is allowed only as the line separator the command writes. */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const HOSTILE: [name: string, text: string, shown: string][] = [
  ['OSC title', '\x1b]0;pwned\x07', '\\x1b]0;pwned\\x07'],
  ['SGR colour', '\x1b[31mred', '\\x1b[31mred'],
  ['OSC 52 clipboard', '\x1b]52;c;cm0gLXJmIH4=\x07', '\\x1b]52;c;cm0gLXJmIH4=\\x07'],
  ['C1 CSI', '\u009b2J', '\\x9b2J'],
  ['DEL', 'a\x7fb', 'a\\x7fb'],
  ['bidi override', 'abc\u202etxt.exe', 'abc\\u202etxt.exe'],
  ['line injection', 'x\r\nscore 0: not listed', 'x\\r\\nscore 0: not listed'],
];

const run = runCli;

const root = mkdtempSync(join(tmpdir(), 'fakemx-escapes-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fakemx report', () => {
  const store = join(root, 'corpus');
  const day = join(store, '2024-05-01');
  mkdirSync(day, { recursive: true });
  HOSTILE.forEach(([, text], i) => {
    const record = {
      version: 1, id: `m${i}`, receivedAt: `2024-05-01T10:00:0${i}.000Z`, session: `s${i}`,
      client: { ip: '192.0.2.1', port: 4000, helo: `helo-${text}` },
      tls: { protocol: `TLS-${text}` },
      envelope: { mailFrom: `x@dom-${text}`, rcptTo: ['y@example.com'] },
      sizes: { file: 100 },
      verdicts: [{ tag: `TAG-${text}` }],
      dns: { zones: [{ zone: `zone-${text}`, matched: true }] },
    };
    writeFileSync(join(day, `m${i}.json`), JSON.stringify(record));
  });

  let text: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    text = await run(['report', '--store', store, '--top', '100']);
  });

  it('text: no raw control character on stdout or stderr', () => {
    const r = text;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('7 messages');
    expect(r.stdout).not.toMatch(RAW);
    expect(r.stderr).not.toMatch(RAW);
  });

  it.each(HOSTILE)('text: %s is shown escaped in every table', (_n, _text, shown) => {
    const r = text;
    for (const field of ['helo-', 'dom-', 'TAG-', 'zone-', 'TLS-']) {
      expect(r.stdout, field).toContain(`${field}${field === 'helo-' || field === 'dom-' ? shown.toLowerCase() : shown}`);
    }
  });

  it('--json: terminal-safe, and parses back to the exact client text', async () => {
    const r = await run(['report', '--store', store, '--top', '100', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW);
    const parsed = JSON.parse(r.stdout) as { helo: { key: string }[]; senderDomains: { key: string }[] };
    expect(parsed.helo.map((h) => h.key).sort()).toEqual(HOSTILE.map(([, t]) => `helo-${t}`.toLowerCase()).sort());
    expect(parsed.senderDomains.map((h) => h.key).sort()).toEqual(HOSTILE.map(([, t]) => `dom-${t}`.toLowerCase()).sort());
  });
});

describe('fakemx dnsbl', () => {
  let srv: TestDnsServer;
  beforeAll(async () => {
    srv = await startDnsServer();
    srv.zone('bl.test', { rcode: 'NXDOMAIN' });
    srv.set('20.2.0.192.bl.test', { a: ['127.0.0.2'], txt: HOSTILE.map(([, t]) => t), ttl: 300 });
  });
  afterAll(async () => {
    await srv.stop();
  });

  it('TXT answers are escaped, one line each, and the verdict line is ours', async () => {
    const r = await run(['dnsbl', '192.0.2.20', '--rbl', 'bl.test'], { FAKEMX_DNS_SERVERS: srv.address, FAKEMX_DNS_TIMEOUT: '1000', FAKEMX_DNS_RETRIES: '0' });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(RAW);
    const lines = r.stdout.trimEnd().split('\n');
    const txt = lines.filter((l) => l.startsWith('  TXT '));
    expect(txt.sort()).toEqual(HOSTILE.map(([, , shown]) => `  TXT "${shown}"`).sort());
    expect(lines.at(-1)).toBe('score 1 (threshold 1): listed (DNSBL: bl.test)');
    expect(lines.filter((l) => l.startsWith('score '))).toHaveLength(1);
  });
});

describe('fakemx state', () => {
  const dir = join(root, 'state');
  const config = join(root, 'state.json');
  // What greylisting writes for a triplet (policy/greylist.ts): the sender and recipient as the
  // client sent them, in the key and in the value (an SMTPUTF8 quoted local part may hold any of HOSTILE).
  const grey = HOSTILE.map(([, text], i) => ({ key: keys.grey('192.0.2.0/24', `"${text}"@from${i}.test`, `"${text}"@rcpt.test`), from: `"${text}"@from${i}.test`, rcpt: `"${text}"@rcpt.test` }));
  beforeAll(async () => {
    writeFileSync(config, JSON.stringify({ state: { path: dir } }));
    const st = openStateStore({ backend: 'local', path: dir, timeout: 2000, onError: 'open', leaseTtl: 60_000, leaseBlock: 1, redis: { url: '', prefix: '', connectTimeout: 1000, tlsCa: '', password: '', cacheEntries: 0 } }, { sweepInterval: 0 });
    for (const g of grey) await st.set(g.key, { net: '192.0.2.0/24', from: g.from, rcpt: g.rcpt, first: 1 }, 3_600_000);
    await st.close();
  });

  it('list: every entry on one line, no raw control character', async () => {
    const r = await run(['state', 'list', '-c', config]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(HOSTILE.length);
  });

  it.each([['list --json', ['list', '--json']], ['export', ['export']]])('%s: terminal-safe, and parses back to the exact client text', async (_n, args) => {
    const r = await run(['state', ...args, '-c', config]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW);
    const rows = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { key: string; value: { from: string; rcpt: string } });
    expect(rows.map((x) => x.key).sort()).toEqual(grey.map((g) => g.key).sort());
    expect(rows.map((x) => x.value.from).sort()).toEqual(grey.map((g) => g.from).sort());
  });
});
