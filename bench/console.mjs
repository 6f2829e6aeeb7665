// The console's two performance targets (issue 16), measured on the built daemon:
//
//   corpus: a store of --messages (default 100,000) messages is written to bench/out/console-store
//           (reused when it already holds that many), the daemon is started on it with the
//           console on and no index snapshot (every record read: coldIndexMs), stopped (which
//           writes the snapshot) and started again (indexMs: from the snapshot); each time also
//           the time to LISTENING, which must not wait for the index. Then the Corpus list API
//           (/api/corpus) is asked --queries times over HTTP with a mix of filters and pages:
//           p50/p99/max must be <= 200 ms p99. Also reports the daemon's RSS.
//   live:   the daemon runs with the console on, SMTP sessions are held open and a trickle of
//           connections arrives; the daemon's CPU time is read from /proc/<pid>/stat over
//           --seconds with no browser, then with --browsers (default 10) headless Chromium tabs
//           on the Live page (which polls /api/live every 2 s). Target: < 2% of one core.
//
// node bench/console.mjs [corpus|live|all] [--messages N] [--queries N] [--seconds N] [--browsers N]
// Needs `npm run build` and, for live, /usr/bin/chromium (test/interop/setup.sh installs it).
// Prints one JSON object per part on stdout.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, pct, sleep } from './held-sessions.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const what = args[0] && !args[0].startsWith('--') ? args[0] : 'all';
const MESSAGES = opt('messages', 100_000);
const QUERIES = opt('queries', 1000);
const SECONDS = opt('seconds', 60);
const BROWSERS = opt('browsers', 10);
const CLK_TCK = 100; // Linux USER_HZ

const TAGS = ['PREGREET', 'PIPELINING', 'DNSBL', 'TARPIT', 'TEMPFAIL', 'STORED'];
const WORDS = ['invoice', 'winner', 'package', 'account', 'urgent', 'prize', 'crypto', 'meeting', 'refund', 'viagra', 'bank', 'delivery'];

/** Writes `n` messages (json + eml) over 30 days, as the store lays them out. */
function makeStore(dir, n) {
  mkdirSync(dir, { recursive: true });
  const marker = join(dir, '.bench-count');
  if (existsSync(marker) && Number(readFileSync(marker, 'utf8')) === n) return false;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const start = Date.UTC(2026, 0, 1);
  const step = (30 * 86_400_000) / n;
  let day = '';
  for (let i = 0; i < n; i++) {
    const at = new Date(start + Math.floor(i * step));
    const d = at.toISOString().slice(0, 10);
    if (d !== day) {
      mkdirSync(join(dir, d), { recursive: true });
      day = d;
    }
    const id = `b${String(i).padStart(16, '0')}`;
    const ip = `198.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const helo = `host${i % 5000}.bots.example`;
    const from = `user${i % 20000}@sender${i % 3000}.example`;
    const rcpt = [`rcpt${i % 700}@example.com`];
    const subject = `${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} #${i}`;
    const tags = [TAGS[i % TAGS.length], ...(i % 3 === 0 ? [TAGS[(i + 2) % TAGS.length]] : [])];
    const meta = {
      version: 1, id, file: `${d}/${id}.eml`, receivedAt: at.toISOString(), session: `s${id}`, listener: '127.0.0.1:25',
      client: { ip, port: 40000 + (i % 20000), helo, esmtp: true }, server: { ip: '127.0.0.1', port: 25, hostName: 'mx.bench' }, tls: null,
      envelope: { mailFrom: from, rcptTo: rcpt, declaredSize: null, body: null, smtputf8: false },
      sizes: { body: 300, headers: 400, file: 700 }, timings: { sessionOpenedAt: at.toISOString(), dataStartedAt: at.toISOString(), dataEndedAt: at.toISOString(), dataMs: 1 },
      verdicts: tags.map((tag, k) => ({ tag, atMs: k * 10 })), dns: null, tempfailed: false,
    };
    const eml = `Received: from ${helo} ([${ip}])\r\n\tby mx.bench (fakemx) with ESMTP id ${id};\r\n\t${at.toUTCString()}\r\nX-FakeMX-Session: s${id}\r\nFrom: <${from}>\r\nTo: <${rcpt[0]}>\r\nSubject: ${subject}\r\nDate: ${at.toUTCString()}\r\nMessage-ID: <${id}@bench>\r\n\r\nHello, this is message ${i}.\r\n`;
    writeFileSync(join(dir, d, `${id}.json`), JSON.stringify(meta));
    writeFileSync(join(dir, d, `${id}.eml`), eml);
  }
  writeFileSync(marker, String(n));
  return true;
}

/** Starts the built daemon on a config; resolves with its process, SMTP port and log lines. */
async function daemon(cfg) {
  const dir = mkdtempSync(join(tmpdir(), 'fakemx-bench-console-'));
  const file = join(dir, 'fakemx.json');
  writeFileSync(file, JSON.stringify(cfg));
  const child = spawn(process.execPath, [join(root, 'dist/fakemx.cjs'), 'run', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      try {
        lines.push(JSON.parse(buf.slice(0, nl)));
      } catch {
        /* not JSON */
      }
      buf = buf.slice(nl + 1);
    }
  });
  const wait = async (tag, ms) => {
    const end = Date.now() + ms;
    for (;;) {
      const l = lines.find((x) => x.tag === tag);
      if (l) return l;
      if (Date.now() > end || child.exitCode !== null) throw new Error(`no ${tag} line`);
      await sleep(20);
    }
  };
  let smtp;
  try {
    smtp = await wait('LISTENING', 10_000);
  } catch (e) {
    child.kill('SIGKILL'); // never leave a daemon behind
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const exited = new Promise((r) => child.once('exit', r));
  return {
    child, port: smtp.port, lines, wait,
    stop: async () => {
      child.kill('SIGTERM');
      // A clean stop writes the corpus index snapshot; a daemon that hangs is killed.
      const t = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

function rssMb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

async function corpus() {
  const store = join(root, 'bench/out/console-store');
  const t0 = Date.now();
  const made = makeStore(store, MESSAGES);
  const writeMs = Date.now() - t0;
  const httpPort = await freePort();
  const cfg = { listenAddress: '127.0.0.1', listenPort: 0, storePath: store, logLevel: 'info', http: { port: httpPort, console: true } };
  rmSync(join(store, '.console-index.jsonl'), { force: true });
  let t1 = Date.now();
  const cold = await daemon(cfg);
  const coldListenMs = Date.now() - t1;
  const coldIndexed = await cold.wait('CONSOLE_INDEXED', 600_000);
  const coldIndexMs = Date.now() - t1;
  await cold.stop();
  t1 = Date.now();
  const d = await daemon(cfg);
  const listenMs = Date.now() - t1;
  try {
    const indexed = await d.wait('CONSOLE_INDEXED', 600_000);
    const indexMs = Date.now() - t1;
    const base = `http://127.0.0.1:${httpPort}/api/corpus`;
    const days = readdirSync(store).filter((x) => /^\d{4}-/.test(x));
    const mix = [
      () => '',
      () => `?offset=${Math.floor(Math.random() * 1000) * 50}`,
      () => `?subject=${WORDS[Math.floor(Math.random() * WORDS.length)]}`,
      () => `?subject=%23${Math.floor(Math.random() * MESSAGES)}`,
      () => `?helo=host${Math.floor(Math.random() * 5000)}.`,
      () => `?client=198.${Math.floor(Math.random() * 2)}.0.0/16`,
      () => `?client=198.0.${Math.floor(Math.random() * 256)}.`,
      () => `?day=${days[Math.floor(Math.random() * days.length)]}`,
      () => `?verdict=${TAGS[Math.floor(Math.random() * TAGS.length)]}&offset=500`,
      () => `?from=sender${Math.floor(Math.random() * 3000)}.example&rcpt=rcpt1`,
      () => '?subject=no-such-subject-anywhere',
    ];
    for (let i = 0; i < 20; i++) await (await fetch(base + mix[i % mix.length]())).arrayBuffer(); // warm-up
    const ms = [];
    let total = 0;
    for (let i = 0; i < QUERIES; i++) {
      const q = mix[i % mix.length]();
      const s = process.hrtime.bigint();
      const r = await fetch(base + q);
      const body = await r.json();
      ms.push(Number(process.hrtime.bigint() - s) / 1e6);
      if (r.status !== 200) throw new Error(`${q}: ${r.status}`);
      total += body.items.length;
    }
    const r2 = (x) => Math.round(x * 100) / 100;
    return {
      part: 'corpus',
      messages: indexed.messages,
      storeWritten: made ? `${writeMs} ms` : 'reused',
      coldListenMs,
      coldIndexMs,
      coldRecordsRead: coldIndexed.read,
      listenMs,
      indexMs,
      recordsRead: indexed.read,
      fromSnapshot: indexed.fromSnapshot,
      queries: QUERIES,
      itemsReturned: total,
      p50Ms: r2(pct(ms, 50)),
      p99Ms: r2(pct(ms, 99)),
      maxMs: r2(Math.max(...ms)),
      rssMb: rssMb(d.child.pid),
      targetP99Ms: 200,
      pass: pct(ms, 99) <= 200,
    };
  } finally {
    await d.stop();
  }
}

async function live() {
  const puppeteer = (await import('puppeteer-core')).default;
  const httpPort = await freePort();
  const store = mkdtempSync(join(tmpdir(), 'fakemx-bench-live-'));
  const d = await daemon({ listenAddress: '127.0.0.1', listenPort: 0, storePath: store, logLevel: 'info', bannerDelay: 0, maxSessions: 200, maxSessionsPerIp: 200, receiveTimeout: 3_600_000, http: { port: httpPort, console: true } });
  await sleep(500);
  // 50 held sessions (the Live page lists them every poll) and one new connection a second.
  const held = [];
  for (let i = 0; i < 50; i++) {
    const s = net.connect(d.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('data', () => s.write(`EHLO held${i}.example\r\n`));
    held.push(s);
  }
  const trickle = setInterval(() => {
    const s = net.connect(d.port, '127.0.0.1');
    s.on('error', () => undefined);
    s.once('data', () => s.end('QUIT\r\n'));
  }, 1000);
  const measure = async (label) => {
    const a = cpuSeconds(d.child.pid);
    const t = Date.now();
    await sleep(SECONDS * 1000);
    const used = cpuSeconds(d.child.pid) - a;
    const wall = (Date.now() - t) / 1000;
    return { label, cpuSeconds: Math.round(used * 100) / 100, wallSeconds: Math.round(wall), percentOfOneCore: Math.round((used / wall) * 10000) / 100 };
  };
  // One Chromium per "browser": a tab in the background of a window is hidden, and the Live
  // page stops polling while hidden, so ten tabs of one browser would be one poller.
  const profiles = [];
  const browsers = [];
  try {
    await sleep(2000);
    const idle = await measure('no browser');
    const pages = [];
    for (let i = 0; i < BROWSERS; i++) {
      const profile = mkdtempSync(join(tmpdir(), 'fakemx-bench-chromium-'));
      profiles.push(profile);
      const b = await puppeteer.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
      });
      browsers.push(b);
      const [p] = await b.pages();
      const page = p ?? (await b.newPage());
      await page.goto(`http://127.0.0.1:${httpPort}/console/`, { waitUntil: 'load' });
      pages.push(page);
    }
    await sleep(3000);
    const polls0 = await countPolls(pages);
    const withBrowsers = await measure(`${BROWSERS} Live pages`);
    const polls = (await countPolls(pages)) - polls0;
    return {
      part: 'live',
      browsers: BROWSERS,
      heldSessions: held.length,
      idle,
      withBrowsers,
      liveApiRequests: polls,
      consoleCostPercent: Math.round((withBrowsers.percentOfOneCore - idle.percentOfOneCore) * 100) / 100,
      targetPercent: 2,
      pass: withBrowsers.percentOfOneCore - idle.percentOfOneCore < 2,
    };
  } finally {
    clearInterval(trickle);
    for (const s of held) s.destroy();
    for (const b of browsers) await b.close();
    await d.stop();
    for (const p of profiles) rmSync(p, { recursive: true, force: true });
    rmSync(store, { recursive: true, force: true });
  }
}

/** /api/live requests the pages made so far (from the browser's own resource timing). */
async function countPolls(pages) {
  let n = 0;
  for (const p of pages) n += await p.evaluate(`performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/live')).length`);
  return n;
}

if (what === 'corpus' || what === 'all') console.log(JSON.stringify(await corpus()));
if (what === 'live' || what === 'all') console.log(JSON.stringify(await live()));
