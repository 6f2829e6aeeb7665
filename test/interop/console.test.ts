// The operator console in a real browser: Debian's chromium driven by puppeteer-core against
// the built daemon. Every page loads with no console error and no CSP violation; the Live
// page shows a session this test holds open; the Corpus filter form finds the message this
// test sent; a hostile message (<script>, javascript: URLs, <img onerror>, a remote image in
// subject, HELO, body and attachment name) is shown inert: no script runs, no dialog opens,
// no request leaves the daemon's origin (request interception records any that tries), and
// bidirectional override/isolate controls show as [U+202E] marks instead of reordering text; the
// token is required off loopback, and a State write after the session ended leads to the login
// form; the State page shows the triplet an SMTP session greylisted and, with
// http.consoleWrite, deletes it. Screenshots go to test/interop/artifacts/ (gitignored).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { startDaemon, type Daemon } from '../helpers/daemon.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test/interop/artifacts');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function exec(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 30000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

/** A raw SMTP dialogue: writes each line after the previous reply, returns every reply. */
async function smtp(port: number, lines: string[], keepOpen = false): Promise<{ replies: string[]; sock: Socket }> {
  const sock = connect(port, '127.0.0.1');
  sock.setEncoding('utf8');
  let buf = '';
  const replies: string[] = [];
  const next = () =>
    new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply; got ${JSON.stringify(buf)}`)), 10000);
      const check = () => {
        const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buf);
        if (!m) return;
        const end = m.index + m[0].length;
        const reply = buf.slice(0, end);
        buf = buf.slice(end);
        sock.off('data', onData);
        clearTimeout(t);
        resolve(reply);
      };
      const onData = (d: string) => {
        buf += d;
        check();
      };
      sock.on('data', onData);
      check();
    });
  replies.push(await next());
  let inData = false;
  for (const l of lines) {
    sock.write(l + '\r\n');
    // Inside DATA only the final dot is answered.
    if (inData && l !== '.') continue;
    inData = false;
    const reply = await next();
    replies.push(reply);
    if (l === 'DATA' && reply.startsWith('354')) inData = true;
  }
  if (!keepOpen) sock.end();
  return { replies, sock };
}

interface Watched {
  page: Page;
  errors: string[];
  outside: string[];
  dialogs: string[];
}

/** A page that records console errors, CSP violations, dialogs and any request off the origin (aborted). */
async function watchedPage(browser: Browser, origin: string, headers?: Record<string, string>): Promise<Watched> {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  if (headers) await page.setExtraHTTPHeaders(headers);
  const w: Watched = { page, errors: [], outside: [], dialogs: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') w.errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => w.errors.push(`pageerror: ${e instanceof Error ? e.message : String(e)}`));
  page.on('dialog', (d) => {
    w.dialogs.push(d.message());
    void d.dismiss();
  });
  await page.evaluateOnNewDocument(`document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));`);
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    const u = r.url();
    if (u.startsWith(origin + '/')) void r.continue();
    else {
      w.outside.push(u);
      void r.abort();
    }
  });
  return w;
}

/** The text of the first element matching `sel` (page scripts are strings: the tests are typed without the DOM library). */
const text = async (p: Page, sel: string) => (await p.evaluate(`document.querySelector(${JSON.stringify(sel)}).textContent`)) as string;

const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `console-${name}.png`), fullPage: true });

const HOSTILE = [
  'MIME-Version: 1.0',
  'From: "<script>alert(1)</script>" <evil@hostile.example>',
  'To: victim@example.com',
  'Subject: <script>window.__pwned=1</script> <img src=x onerror="window.__pwned=2"> javascript:alert(3)',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: multipart/alternative; boundary="b2"',
  '',
  '--b2',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Click javascript:alert(4) or <script>window.__pwned=4</script> <img src=x onerror=alert(5)>',
  '--b2',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<html><body><script>window.__pwned=6</script><img src="http://198.51.100.7/track.gif" onerror="window.__pwned=7">',
  '<a href="javascript:alert(8)">win</a><img src="https://tracker.example/pixel.png"><iframe src="http://198.51.100.7/"></iframe>',
  '<link rel="stylesheet" href="http://198.51.100.7/x.css"><style>body{background:url(http://198.51.100.7/bg.png)}</style></body></html>',
  '--b2--',
  '--b1',
  'Content-Type: text/html; name="<script>alert(9)</script>.html"',
  'Content-Disposition: attachment; filename="<img src=x onerror=alert(10)>.html"',
  'Content-Transfer-Encoding: base64',
  '',
  Buffer.from('<script>alert(11)</script>').toString('base64'),
  '--b1--',
];

describe('console in chromium', () => {
  let d: Daemon;
  let browser: Browser;
  let origin: string;
  let profile: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const httpPort = await freePort();
    d = await startDaemon({
      listenAddress: '127.0.0.1', listenPort: 0, bannerDelay: 0, errorDelay: 0, receiveTimeout: 30000,
      auth: { enabled: true, allowPlaintext: true, recordPasswords: 'none', salt: 'interop' },
      http: { port: httpPort, console: true },
    });
    d.port = (await d.waitFor('LISTENING')).port as number;
    await d.waitFor('ADMIN_LISTENING');
    origin = `http://127.0.0.1:${httpPort}`;
    profile = mkdtempSync(join(tmpdir(), 'fakemx-chromium-'));
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
    });
  });

  afterAll(async () => {
    await browser?.close();
    d?.kill();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('the Live page shows a session this test holds open; no console error, no CSP violation', async () => {
    const held = await smtp(d.port, ['EHLO live-session.test', 'MAIL FROM:<held@bots.example>'], true);
    try {
      const w = await watchedPage(browser, origin);
      await w.page.goto(`${origin}/console/`, { waitUntil: 'load' });
      await w.page.waitForFunction(`document.querySelector('#sessions tbody').textContent.includes('live-session.test')`, { timeout: 10000 });
      const row = await text(w.page, '#sessions tbody');
      expect(row).toContain('held@bots.example');
      expect(row).toContain('mail');
      await w.page.waitForSelector('#chartConn canvas');
      await shot(w.page, 'live');
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
      await w.page.close();
    } finally {
      held.sock.destroy();
    }
  });

  it('the Corpus filter form finds the message this test sent; the Caught page loads clean', async () => {
    const token = `needle-${Date.now()}`;
    for (const subject of ['hay one', `the ${token} message`, 'hay two']) {
      const r = await exec('swaks', ['--server', `127.0.0.1:${d.port}`, '--helo', 'swaks.test', '--from', 'sender@example.org', '--to', 'rcpt@example.com', '--header', `Subject: ${subject}`, '--body', 'corpus body']);
      expect(r.code).toBe(0);
    }
    const w = await watchedPage(browser, origin);
    await w.page.goto(`${origin}/console/corpus`, { waitUntil: 'load' });
    await w.page.waitForFunction(`document.querySelectorAll('#messages tbody tr[data-id]').length >= 3`, { timeout: 10000 });
    await w.page.type('input[name=subject]', token);
    await Promise.all([w.page.waitForNavigation({ waitUntil: 'load' }), w.page.click('#filter button[type=submit]')]);
    await w.page.waitForFunction(`document.querySelector('#summary').textContent !== ''`, { timeout: 10000 });
    const rows = (await w.page.evaluate(`[...document.querySelectorAll('#messages tbody tr[data-id]')].map((t) => t.textContent)`)) as string[];
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain(token);
    expect(w.page.url()).toContain(`subject=${token}`);
    await shot(w.page, 'corpus');
    // The message view of that row.
    await Promise.all([w.page.waitForNavigation({ waitUntil: 'load' }), w.page.click('#messages tbody tr[data-id] a')]);
    await w.page.waitForFunction(`document.querySelector('#text').textContent.includes('corpus body')`, { timeout: 10000 });
    expect(w.errors).toEqual([]);
    expect(w.outside).toEqual([]);
    await w.page.close();

    // The AUTH honeypot's table shows a hostile user name as text.
    const authUser = '<img src=x onerror="window.__pwned=13">';
    const a = await exec('swaks', ['--server', `127.0.0.1:${d.port}`, '--helo', 'auth.test', '--to', 'rcpt@example.com', '--auth', 'PLAIN', '--auth-user', authUser, '--auth-password', 'x', '--quit-after', 'AUTH']);
    expect(a.out).toContain('535 5.7.8');
    const c = await watchedPage(browser, origin);
    await c.page.goto(`${origin}/console/caught`, { waitUntil: 'load' });
    await c.page.waitForFunction(`document.querySelector('#helos tbody').textContent.includes('swaks.test')`, { timeout: 15000 });
    expect(await text(c.page, '#authUsers tbody')).toContain(authUser);
    expect(await c.page.evaluate('window.__pwned ?? null')).toBeNull();
    expect(await c.page.evaluate(`document.querySelectorAll('main img').length`)).toBe(0);
    await shot(c.page, 'caught');
    expect(c.errors).toEqual([]);
    expect(c.outside).toEqual([]);
    await c.page.close();
  });

  it('a hostile message is shown inert: no script runs, no request leaves, downloads are attachments', async () => {
    const helo = '<script>alert(12)</script>';
    const r = await smtp(d.port, [`EHLO ${helo}`, 'MAIL FROM:<evil@hostile.example>', 'RCPT TO:<victim@example.com>', 'DATA', ...HOSTILE, '.', 'QUIT']);
    expect(r.replies.some((x) => x.startsWith('250 2.0.0'))).toBe(true);
    const list = (await (await fetch(`${origin}/api/corpus?from=hostile.example`)).json()) as { items: { id: string; helo: string; subject: string }[] };
    expect(list.items).toHaveLength(1);
    const id = list.items[0]!.id;
    expect(list.items[0]!.helo).toBe(helo);

    const w = await watchedPage(browser, origin);
    await w.page.goto(`${origin}/console/corpus?from=hostile.example`, { waitUntil: 'load' });
    await w.page.waitForFunction(`document.querySelectorAll('#messages tbody tr[data-id]').length === 1`, { timeout: 10000 });
    await shot(w.page, 'corpus-hostile');
    await w.page.goto(`${origin}/console/message?id=${id}`, { waitUntil: 'load' });
    await w.page.waitForFunction(`document.querySelector('#html').textContent.includes('track.gif')`, { timeout: 10000 });
    await w.page.click('#htmlBox summary');
    await new Promise((res) => setTimeout(res, 500));
    await shot(w.page, 'message-hostile');
    const dom = (await w.page.evaluate(`({
      pwned: window.__pwned ?? null,
      scripts: [...document.scripts].map((s) => s.src),
      imgs: document.querySelectorAll('img').length,
      iframes: document.querySelectorAll('iframe').length,
      jsLinks: [...document.querySelectorAll('a')].filter((a) => (a.getAttribute('href') || '').toLowerCase().startsWith('javascript')).length,
      subject: document.querySelector('#subject').textContent,
      attachment: document.querySelector('#attachments tbody').textContent,
      meta: document.querySelector('#meta').textContent,
    })`)) as { pwned: unknown; scripts: string[]; imgs: number; iframes: number; jsLinks: number; subject: string; attachment: string; meta: string };
    expect(dom.pwned).toBeNull();
    expect(dom.scripts).toEqual([`${origin}/console/assets/console.js`]);
    expect(dom.imgs).toBe(0);
    expect(dom.iframes).toBe(0);
    expect(dom.jsLinks).toBe(0);
    expect(dom.subject).toContain('<script>window.__pwned=1</script>');
    expect(dom.attachment).toContain('<img src=x onerror=alert(10)>.html');
    expect(dom.meta).toContain(helo);
    expect(w.dialogs).toEqual([]);
    expect(w.outside).toEqual([]);
    expect(w.errors).toEqual([]);
    await w.page.close();

    const raw = await fetch(`${origin}/api/corpus/raw?id=${id}`);
    expect(raw.headers.get('content-type')).toBe('application/octet-stream');
    expect(raw.headers.get('content-disposition')).toBe(`attachment; filename="${id}.eml"`);
    expect(raw.headers.get('x-content-type-options')).toBe('nosniff');
    expect(raw.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await raw.text()).toContain('track.gif');
  });

  it('bidirectional override and isolate controls in a message are shown as marks, never applied', async () => {
    // "Trojan Source" spoofing: U+202E makes "invoice\u202Efdp.exe" display as "invoiceexe.pdf".
    const rlo = '\u202E';
    const enc = (s: string) => `=?UTF-8?B?${Buffer.from(s).toString('base64')}?=`;
    const r = await smtp(d.port, [
      'EHLO bidi.example', 'MAIL FROM:<bidi@spoof.example>', 'RCPT TO:<victim@example.com>', 'DATA',
      'MIME-Version: 1.0',
      `From: ${enc(`Bank${rlo}knaB`)} <bidi@spoof.example>`,
      `Subject: ${enc(`invoice${rlo}fdp.exe \u2066isolated\u2069 \u200Fmarked\u061C`)}`,
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from(`open invoice${rlo}fdp.exe now`).toString('base64'),
      '--b1',
      'Content-Type: application/octet-stream',
      `Content-Disposition: attachment; filename="${enc(`invoice${rlo}fdp.exe`)}"`,
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('MZ').toString('base64'),
      '--b1--',
      '.', 'QUIT',
    ]);
    expect(r.replies.some((x) => x.startsWith('250 2.0.0'))).toBe(true);
    const list = (await (await fetch(`${origin}/api/corpus?from=spoof.example`)).json()) as { items: { id: string; subject: string }[] };
    expect(list.items).toHaveLength(1);
    // The API keeps the data as it came; only the page shows the controls as marks.
    expect(list.items[0]!.subject).toContain(rlo);
    const id = list.items[0]!.id;

    const w = await watchedPage(browser, origin);
    await w.page.goto(`${origin}/console/corpus?from=spoof.example`, { waitUntil: 'load' });
    await w.page.waitForFunction(`document.querySelectorAll('#messages tbody tr[data-id]').length === 1`, { timeout: 10000 });
    const row = await text(w.page, '#messages tbody tr[data-id]');
    expect(row).toContain('invoice[U+202E]fdp.exe [U+2066]isolated[U+2069] [U+200F]marked[U+061C]');
    await w.page.goto(`${origin}/console/message?id=${id}`, { waitUntil: 'load' });
    await w.page.waitForFunction(`document.querySelector('#attachments tbody td') && document.querySelector('#text').textContent.includes('open')`, { timeout: 10000 });
    const shown = (await w.page.evaluate(`({
      main: document.querySelector('main').textContent,
      subject: document.querySelector('#subject').textContent,
      attachment: document.querySelector('#attachments tbody td').textContent,
      text: document.querySelector('#text').textContent,
    })`)) as { main: string; subject: string; attachment: string; text: string };
    expect(shown.main).not.toMatch(/[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/);
    expect(shown.subject).toBe('invoice[U+202E]fdp.exe [U+2066]isolated[U+2069] [U+200F]marked[U+061C]');
    expect(shown.attachment).toBe('invoice[U+202E]fdp.exe');
    expect(shown.text).toContain('open invoice[U+202E]fdp.exe now');
    expect(shown.main).toContain('Bank[U+202E]knaB');
    expect(w.errors).toEqual([]);
    expect(w.dialogs).toEqual([]);
    await w.page.close();
  });

  it('the State page lists the triplet an SMTP session greylisted; with consoleWrite its delete button removes it', async () => {
    const httpPort = await freePort();
    const stateDir = mkdtempSync(join(tmpdir(), 'fakemx-state-'));
    const g = await startDaemon({
      listenAddress: '127.0.0.1', listenPort: 0, bannerDelay: 0, errorDelay: 0,
      greylist: { enabled: true }, state: { path: stateDir },
      http: { port: httpPort, console: true, consoleWrite: true },
    });
    try {
      g.port = (await g.waitFor('LISTENING')).port as number;
      await g.waitFor('ADMIN_LISTENING');
      const base = `http://127.0.0.1:${httpPort}`;
      // A quoted local part carries markup: the page must show it as text.
      const sender = `"<img src=x onerror=window.__pwned=21>"@grey-${Date.now()}.example`;
      const r = await smtp(g.port, ['EHLO grey.test', `MAIL FROM:<${sender}>`, 'RCPT TO:<user@example.com>', 'QUIT']);
      expect(r.replies[3]).toMatch(/^451 4\.7\.1/);
      const w = await watchedPage(browser, base);
      await w.page.goto(`${base}/console/state?kind=grey`, { waitUntil: 'load' });
      await w.page.waitForFunction(`document.querySelectorAll('#entries tbody tr[data-key]').length === 1`, { timeout: 10000 });
      const row = await text(w.page, '#entries tbody');
      expect(row).toContain(sender.toLowerCase());
      expect(row).toContain('127.0.0.0/24');
      expect(await w.page.evaluate(`document.querySelectorAll('main img').length`)).toBe(0);
      expect(await w.page.evaluate('window.__pwned ?? null')).toBeNull();
      await shot(w.page, 'state');
      // The row's delete button: the page's fetch() with the write header, then a reload.
      await Promise.all([
        w.page.waitForNavigation({ waitUntil: 'load' }),
        w.page.evaluate(`[...document.querySelectorAll('#entries tbody tr[data-key] button')].find((b) => b.textContent === 'delete').click()`),
      ]);
      await w.page.waitForFunction(`document.querySelector('#summary').textContent.includes('No entry')`, { timeout: 10000 });
      const left = (await (await fetch(`${base}/api/state?kind=grey`)).json()) as { items: unknown[] };
      expect(left.items).toEqual([]);
      const logged = await g.waitFor('CONSOLE_STATE');
      expect(logged).toMatchObject({ action: 'delete', ok: true, client: '127.0.0.1' });
      expect(String(logged.key)).toContain('grey:127.0.0.0/24|');
      // The same write from another origin, as a forged page would send it, is refused.
      const forged = await fetch(`${base}/api/state`, { method: 'POST', headers: { origin: 'http://evil.example', 'x-fakemx-console': '1', 'content-type': 'application/json' }, body: '{"action":"allow","target":"127.0.0.1"}' });
      expect(forged.status).toBe(403);
      expect(w.errors).toEqual([]);
      expect(w.outside).toEqual([]);
      expect(w.dialogs).toEqual([]);
      await w.page.close();
    } finally {
      g.kill();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it('a stop writes the corpus index snapshot; the next start reads no record it holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fakemx-snap-'));
    const cfg = { listenAddress: '127.0.0.1', listenPort: 0, bannerDelay: 0, errorDelay: 0, storePath: join(dir, 'corpus'), http: { port: await freePort(), console: true } };
    try {
      const first = await startDaemon(cfg);
      first.port = (await first.waitFor('LISTENING')).port as number;
      const r = await smtp(first.port, ['EHLO snap.test', 'MAIL FROM:<a@snap.example>', 'RCPT TO:<b@example.com>', 'DATA', 'Subject: snapshot me', '', 'body', '.', 'QUIT']);
      expect(r.replies.some((x) => x.startsWith('250 2.0.0'))).toBe(true);
      first.child.kill('SIGTERM');
      expect(await first.exited(30000)).toBe(0);
      expect(readdirSync(join(dir, 'corpus'))).toContain('.console-index.jsonl');
      const second = await startDaemon(cfg);
      try {
        const indexed = await second.waitFor('CONSOLE_INDEXED', 15000);
        expect(indexed).toMatchObject({ messages: 1, fromSnapshot: 1, read: 0 });
        const list = (await (await fetch(`http://127.0.0.1:${cfg.http.port}/api/corpus?subject=snapshot`)).json()) as { total: number };
        expect(list.total).toBe(1);
      } finally {
        second.kill();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('off loopback the token is required: without one start-up exits 78 naming http.token; with one, login or Bearer', async () => {
    const httpPort = await freePort();
    const bad = await startDaemon({ listenAddress: '127.0.0.1', listenPort: 0, http: { address: '0.0.0.0', port: httpPort, console: true } });
    expect(await bad.exited()).toBe(78);
    expect(bad.stderr).toContain('http.token');

    const secret = 's3cret-token-for-the-test';
    // Greylisting gives the State page a store, so its add form is shown.
    const stateDir = mkdtempSync(join(tmpdir(), 'fakemx-state-'));
    const t = await startDaemon({
      listenAddress: '127.0.0.1', listenPort: 0, greylist: { enabled: true }, state: { path: stateDir },
      http: { address: '0.0.0.0', port: httpPort, console: true, consoleWrite: true, token: secret },
    });
    try {
      await t.waitFor('ADMIN_LISTENING');
      const base = `http://127.0.0.1:${httpPort}`;
      expect((await fetch(`${base}/api/live`)).status).toBe(401);
      expect((await fetch(`${base}/api/live`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${base}/api/live`, { headers: { authorization: `Bearer ${secret}` } })).status).toBe(200);

      const w = await watchedPage(browser, base);
      await w.page.goto(`${base}/console/corpus`, { waitUntil: 'load' });
      expect(new URL(w.page.url()).pathname).toBe('/console/login');
      await shot(w.page, 'login');
      await w.page.type('input[name=token]', 'not the token');
      await Promise.all([w.page.waitForNavigation({ waitUntil: 'load' }), w.page.click('button[type=submit]')]);
      expect(await text(w.page, 'main')).toContain('not right');
      await w.page.type('input[name=token]', secret);
      await Promise.all([w.page.waitForNavigation({ waitUntil: 'load' }), w.page.click('button[type=submit]')]);
      expect(new URL(w.page.url()).pathname).toBe('/console/');
      await w.page.waitForFunction(`document.querySelector('#open').textContent !== '–'`, { timeout: 10000 });
      const cookies = await w.page.cookies();
      const c = cookies.find((x) => x.name === 'fakemx_console');
      expect(c?.httpOnly).toBe(true);
      expect(c?.sameSite).toBe('Strict');
      expect(c?.value).not.toContain(secret);

      // The header's log-out button ends the session in this browser: the cookie is gone and
      // the pages lead to the login form again.
      await Promise.all([w.page.waitForNavigation({ waitUntil: 'load' }), w.page.click('header form.logout button')]);
      expect(new URL(w.page.url()).pathname).toBe('/console/login');
      expect((await w.page.cookies()).find((x) => x.name === 'fakemx_console')).toBeUndefined();
      await w.page.goto(`${base}/console/corpus`, { waitUntil: 'load' });
      expect(new URL(w.page.url()).pathname).toBe('/console/login');
      await w.page.type('input[name=token]', secret);
      await Promise.all([w.page.waitForNavigation({ waitUntil: 'load' }), w.page.click('button[type=submit]')]);
      expect(new URL(w.page.url()).pathname).toBe('/console/');

      // The session ends (the cookie is gone) while the State page is open: its next write
      // gets a 401 and the page goes to the login form instead of only showing an error.
      await w.page.goto(`${base}/console/state`, { waitUntil: 'load' });
      await w.page.waitForFunction(`!document.querySelector('#writeBox').hidden`, { timeout: 10000 });
      await w.page.deleteCookie({ name: 'fakemx_console' });
      await w.page.type('#addForm input[name=target]', '192.0.2.77');
      await Promise.all([w.page.waitForNavigation({ waitUntil: 'load', timeout: 10000 }), w.page.click('#addForm button[type=submit]')]);
      expect(new URL(w.page.url()).pathname).toBe('/console/login');
      expect(((await (await fetch(`${base}/api/state`, { headers: { authorization: `Bearer ${secret}` } })).json()) as { items: unknown[] }).items).toEqual([]);
      // The expected 401s (the wrong login, the write after the session ended) are the only console errors.
      expect(w.errors.filter((e) => !e.includes('401'))).toEqual([]);
      expect(w.outside).toEqual([]);
      await w.page.close();
    } finally {
      t.kill();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
