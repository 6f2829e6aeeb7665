// DNSBL/DNSWL end to end against Debian's rbldnsd on 127.0.0.1 (random UDP port): the daemon asks
// it (dns.servers, skipPrivate false), clients connect from 127.0.0.2, 127.0.0.3 ... (127/8 is all
// loopback on Linux); plus `fakemx dnsbl` of the built CLI (FAKEMX_CLI overrides its path).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsClient } from '../../src/dns/client.js';
import { RawClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = process.env.FAKEMX_CLI ?? join(ROOT, 'dist/cli.js');

// Clients by source address. Values follow RFC 5782 §2.3 (127.0.0.x answers).
const TEST_ENTRY = '127.0.0.2'; // RFC 5782 §5 test entry: on both lists, so allowed
const LISTED = '127.0.0.6'; // bl.test only
const ALLOWED = '127.0.0.3'; // bl.test and wl.test: the allow list wins
const CLEAN = '127.0.0.4'; // on no list
const CODE10 = '127.0.0.5'; // bl.test with answer 127.0.0.10

const BL = `$SOA 300 ns.bl.test hostmaster.bl.test 1 3600 600 86400 120
:127.0.0.2:Listed by the fakemx test DNSBL: $
127.0.0.2
127.0.0.3
127.0.0.5 :127.0.0.10:Listed with code 10
127.0.0.6
`;
const WL = `$SOA 300 ns.wl.test hostmaster.wl.test 1 3600 600 86400 120
:127.0.10.2:Allowed by the fakemx test DNSWL
127.0.0.2
127.0.0.3
`;
// A broken list: it lists 127.0.0.1 (it lists everything), so RFC 5782 §5 says skip it.
const BAD = `$SOA 300 ns.bad.test hostmaster.bad.test 1 3600 600 86400 120
:127.0.0.2:Lists everything
127.0.0.0/24
`;

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function run(cmd: string, args: string[], timeout = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

let dir: string;
let rbldnsd: ChildProcess | undefined;
let dnsPort = 0;

/** Polls until rbldnsd answers the test entry (bounded). */
async function waitForRbldnsd(ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  const c = new DnsClient({ servers: [`127.0.0.1:${dnsPort}`], timeout: 200, retries: 0 });
  try {
    while (Date.now() < deadline) {
      try {
        const r = await c.query('2.0.0.127.bl.test', 'A');
        if (r.answers.length > 0) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('rbldnsd did not come up');
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fakemx-rbldnsd-'));
  writeFileSync(join(dir, 'bl.zone'), BL);
  writeFileSync(join(dir, 'wl.zone'), WL);
  writeFileSync(join(dir, 'bad.zone'), BAD);
  // rbldnsd started as root drops to its own user, which must read the zone files.
  chmodSync(dir, 0o755);
  for (const f of ['bl.zone', 'wl.zone', 'bad.zone']) chmodSync(join(dir, f), 0o644);
  for (let attempt = 0; attempt < 5 && !rbldnsd; attempt++) {
    dnsPort = await freeUdpPort();
    const child = spawn('rbldnsd', ['-n', '-b', `127.0.0.1/${dnsPort}`, '-w', dir, '-t', '300',
      'bl.test:ip4set:bl.zone', 'wl.test:ip4set:wl.zone', 'bad.test:ip4set:bad.zone'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 10_000) stderr += d.toString();
    });
    try {
      await waitForRbldnsd(5000);
      rbldnsd = child;
    } catch (e) {
      child.kill();
      if (attempt === 4) throw new Error(`rbldnsd: ${(e as Error).message}\n${stderr}`);
    }
  }
});

afterAll(async () => {
  if (rbldnsd && rbldnsd.exitCode === null) {
    const gone = new Promise((r) => rbldnsd!.once('exit', r));
    rbldnsd.kill();
    await Promise.race([gone, new Promise((r) => setTimeout(r, 2000))]);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function dnsSettings(over: Record<string, unknown> = {}) {
  return { servers: [`127.0.0.1:${dnsPort}`], skipPrivate: false, timeout: 1000, retries: 1, ...over };
}

async function withServer<T>(over: Record<string, unknown>, fn: (s: TestServer) => Promise<T>): Promise<T> {
  const s = await startServer({ rwlProviders: ['wl.test'], rblProviders: ['bl.test'], storeData: false, ...over, dns: dnsSettings((over.dns as Record<string, unknown>) ?? {}) });
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

describe('rbldnsd: greeting outcomes (storeData false, action auto)', () => {
  const cases: { name: string; from: string; rbl?: string[]; code: number; text?: RegExp; closes: boolean }[] = [
    { name: 'listed client gets 421 4.7.1 and is closed', from: LISTED, code: 421, text: /^4\.7\.1 Service unavailable; client \[127\.0\.0\.6\] blocked using bl\.test$/, closes: true },
    { name: 'client on the allow list is let in though also listed', from: ALLOWED, code: 220, closes: false },
    { name: 'clean client is let in', from: CLEAN, code: 220, closes: false },
    { name: 'filter 127.0.0.2 does not match code 10', from: CODE10, rbl: ['bl.test=127.0.0.2'], code: 220, closes: false },
    { name: 'filter [2..11] matches code 10', from: CODE10, rbl: ['bl.test=127.0.0.[2..11]'], code: 421, text: /blocked using bl\.test$/, closes: true },
    { name: 'a zone failing the RFC 5782 test is skipped', from: LISTED, rbl: ['bad.test'], code: 220, closes: false },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await withServer({ ...(c.rbl ? { rblProviders: c.rbl } : {}) }, async (s) => {
        const tags: string[] = [];
        s.server.on('verdict', (v) => tags.push(v.tag));
        const cl = await RawClient.connect(s.port, { localAddress: c.from });
        try {
          const g = await cl.reply(5000);
          expect(g.code).toBe(c.code);
          if (c.text) expect(g.text).toMatch(c.text);
          if (c.closes) expect(await cl.waitClose(3000)).toBe(true);
          else expect((await cl.cmd('EHLO client.test')).code).toBe(250);
          if (c.code === 421) expect(tags).toContain('DNSBL');
          if (c.from === ALLOWED) expect(tags).toContain('DNSWL');
        } finally {
          cl.close();
        }
      });
    });
  }
});

describe('rbldnsd: actions', () => {
  it('enforce: each RCPT gets 550 5.7.1', async () => {
    await withServer({ dns: { action: 'enforce' } }, async (s) => {
      const cl = await RawClient.connect(s.port, { localAddress: LISTED });
      try {
        expect((await cl.reply(5000)).code).toBe(220);
        expect((await cl.cmd('EHLO client.test')).code).toBe(250);
        expect((await cl.cmd('MAIL FROM:<a@client.test>')).code).toBe(250);
        const r = await cl.cmd('RCPT TO:<b@mx.test>');
        expect([r.code, r.text]).toEqual([550, '5.7.1 Service unavailable; client [127.0.0.6] blocked using bl.test']);
      } finally {
        cl.close();
      }
    });
  });

  async function deliver(s: TestServer, from: string): Promise<void> {
    const cl = await RawClient.connect(s.port, { localAddress: from });
    try {
      expect((await cl.reply(5000)).code).toBe(220);
      for (const [line, code] of [['EHLO client.test', 250], ['MAIL FROM:<a@client.test>', 250], ['RCPT TO:<b@mx.test>', 250], ['DATA', 354]] as const) {
        expect((await cl.cmd(line)).code).toBe(code);
      }
      expect((await cl.cmd('Subject: t\r\n\r\nhello\r\n.')).code).toBe(250);
    } finally {
      cl.close();
    }
  }

  it('storeData true (auto = collect): listed client is stored with per-zone answers, TXT and score', async () => {
    await withServer({ storeData: true, rblProviders: ['bl.test*2'] }, async (s) => {
      await deliver(s, LISTED);
      const [m] = s.messages();
      const dns = m!.meta.dns!;
      expect([dns.listed, dns.allowed, dns.score]).toEqual([true, false, 2]);
      expect(dns.zones.find((z) => z.zone === 'bl.test')).toMatchObject({ answers: ['127.0.0.2'], matched: true, weight: 2, txt: ['Listed by the fakemx test DNSBL: 127.0.0.6'] });
      expect(dns.zones.find((z) => z.zone === 'wl.test')).toMatchObject({ answers: [], matched: false });
      expect(m!.meta.verdicts.map((v) => v.tag)).toContain('DNSBL');
    });
  });

  it('storeData true: an allowed client is stored with the allow list answer and TXT', async () => {
    await withServer({ storeData: true }, async (s) => {
      await deliver(s, ALLOWED);
      const m = s.messages()[0]!;
      expect([m.meta.dns!.allowed, m.meta.dns!.listed]).toEqual([true, false]);
      expect(m.meta.dns!.zones.find((z) => z.zone === 'wl.test')).toMatchObject({ answers: ['127.0.10.2'], matched: true, txt: ['Allowed by the fakemx test DNSWL'] });
      expect(m.meta.verdicts.map((v) => v.tag)).toContain('DNSWL');
    });
  });

  it('20 parallel sessions from one address: all refused, one DNS query per zone', async () => {
    await withServer({ maxSessionsPerIp: 50 }, async (s) => {
      const queries: boolean[] = [];
      s.server.on('dnsQuery', (e) => queries.push(e.cacheHit));
      const clients = await Promise.all(Array.from({ length: 20 }, () => RawClient.connect(s.port, { localAddress: LISTED })));
      try {
        const replies = await Promise.all(clients.map((c) => c.reply(5000)));
        expect(replies.every((r) => r.code === 421)).toBe(true);
        expect(queries.filter((hit) => !hit)).toHaveLength(2); // bl.test and wl.test, once each
      } finally {
        for (const c of clients) c.close();
      }
    });
  });
});

describe('fakemx dnsbl <ip> (built CLI)', () => {
  let cfg: string;
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} missing: run \`npm run build\` first (npm run test:interop does)`);
    cfg = join(dir, 'fakemx.json');
    writeFileSync(cfg, JSON.stringify({ rwlProviders: ['wl.test'], rblProviders: ['bl.test=127.0.0.[2..11]*3'], dns: dnsSettings() }));
  });

  const cases: { ip: string; code: number; out: RegExp[] }[] = [
    { ip: TEST_ENTRY, code: 0, out: [/^allow wl\.test: 2\.0\.0\.127\.wl\.test A 127\.0\.10\.2; matched/m, /allowed \(DNSWL\)$/m] },
    { ip: CODE10, code: 1, out: [/^block bl\.test \(bl\.test=127\.0\.0\.\[2\.\.11\]\*3\): 5\.0\.0\.127\.bl\.test A 127\.0\.0\.10; matched, weight 3; ttl 300s; \d+ ms$/m, /^ {2}TXT "Listed with code 10"$/m, /^score 3 \(threshold 1\): listed \(DNSBL: bl\.test\)$/m] },
    { ip: CLEAN, code: 0, out: [/A none; not listed; ttl 120s/m, /: not listed$/m] },
  ];
  for (const c of cases) {
    it(`${c.ip} -> exit ${c.code}`, async () => {
      const r = await run(process.execPath, [CLI, 'dnsbl', c.ip, '--config', cfg]);
      expect(r.code, r.stderr).toBe(c.code);
      for (const re of c.out) expect(r.stdout).toMatch(re);
    });
  }
});
