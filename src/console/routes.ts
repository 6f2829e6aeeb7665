// The operator console on the admin HTTP listener (http.console): pages under /console/,
// their JSON API under /api/, the page assets (built from npm packages into dist/console/assets
// by scripts/build-console.mjs). Every response carries a strict Content-Security-Policy
// (default-src 'self', no inline script or style), nosniff, no-referrer and frame denial.
// Access: with http.token set, every request needs `Authorization: Bearer <token>` or the
// HttpOnly, SameSite=Strict cookie the login form sets; without one (loopback only, which the
// config loader enforces) the Host header must name a loopback or IP host (DNS rebinding).
// Writes (the State page, only with http.consoleWrite) also pass a cross-site check (writeRefusal).

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Config } from '../config/schema.js';
import type { ZoneHealth } from '../dnsbl/engine.js';
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/store.js';
import { escapeText } from '../util/escape.js';
import { DAY_DIR } from '../store/layout.js';
import type { CorpusIndex, CorpusQuery } from './corpus-index.js';
import type { LiveState } from './live.js';
import { LoginThrottle, MAX_FAILURES, WINDOW_MS } from './login-throttle.js';
import { DamagedRecord, messageView } from './message.js';
import { loginPage, page, type PageName } from './pages.js';
import { addState, deleteState, listState, parseWrite } from './state-view.js';

export const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers on every console response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
});

export const COOKIE = 'fakemx_console';
/** A live snapshot is computed at most this often, whatever the number of pages polling. */
const LIVE_CACHE_MS = 1_000;
/** A YYYY-MM-DD that names a real day (not 2026-13-01 or 2026-02-30). */
function isCalendarDay(day: string): boolean {
  const t = Date.parse(`${day}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === day;
}

/** The Caught tables are recomputed at most this often. */
const CAUGHT_CACHE_MS = 5_000;
/**
 * The most of a request body the console reads: the login form (one token) and a State write
 * (a one-entry JSON object) are both tiny, and readBody buffers what it reads.
 */
const REQUEST_BODY_MAX = 4096;
/** The header every write must carry (see writeRefusal). */
const WRITE_HEADER = 'x-fakemx-console';
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export interface ConsoleSettings {
  token: string;
  consoleWrite: boolean;
}

export interface ConsoleOptions {
  live: LiveState;
  index: CorpusIndex;
  settings: () => ConsoleSettings;
  logger: Logger;
  /** The server's state store (null when no check uses one); the State page reads and edits it. */
  state?: () => StateStore | null;
  /** The config in force (the TTLs and prefixes of an allow/deny/trap entry). */
  config?: () => Config;
  /** The DNS list engine's own zone health (the Caught page). */
  dnsHealth?: () => readonly ZoneHealth[];
  /** Asset directory override (tests); default dist/console/assets or src/console/assets beside this module. */
  assetDir?: string;
}

interface Asset {
  body: Buffer;
  gz: Buffer;
  type: string;
  etag: string;
}

const ASSET_FILES: Record<string, { type: string; npm?: string }> = {
  'console.js': { type: 'text/javascript; charset=utf-8' },
  'console.css': { type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', npm: 'uplot/dist/uPlot.iife.min.js' },
  'uPlot.min.css': { type: 'text/css; charset=utf-8', npm: 'uplot/dist/uPlot.min.css' },
};

function cached(body: Buffer, type: string): Asset {
  return { body, gz: gzipSync(body, { level: 9 }), type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** Reads the assets once: from the build (dist/console/assets), else the sources and node_modules (tests run src/). */
export function loadAssets(dir?: string): Map<string, Asset> {
  const base = dir ?? fileURLToPath(new URL('./assets/', import.meta.url));
  const require = createRequire(import.meta.url);
  const out = new Map<string, Asset>();
  for (const [name, a] of Object.entries(ASSET_FILES)) {
    const local = `${base.replace(/\/?$/, '/')}${name}`;
    const file = existsSync(local) || !a.npm ? local : require.resolve(a.npm);
    out.set(name, cached(readFileSync(file), a.type));
  }
  return out;
}

/** Token-derived cookie value: the cookie proves the token without holding it. */
export function cookieValue(token: string): string {
  return createHmac('sha256', token).update('fakemx console session v1').digest('base64url');
}

function same(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function cookies(req: IncomingMessage): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) m.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return m;
}

/** A Host a DNS-rebinding page cannot take: an IP literal, localhost or *.localhost. */
export function hostAllowed(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  const n = name.toLowerCase();
  return isIP(n) !== 0 || n === 'localhost' || n.endsWith('.localhost');
}

/**
 * Why a write must be refused as possibly forged by another site, or null. Writes need the
 * header X-Fakemx-Console: 1: an HTML form cannot send a custom header, and a cross-origin
 * fetch() that sets one is preflighted, which this server never approves (no CORS headers), so
 * only the console's own script (or an API client that chose to) can send it. That is needed
 * even with the SameSite=Strict cookie: without http.token (loopback) there is no credential
 * at all for a page on another site to lack, and "same-site" still includes other ports of the
 * same host. A browser's Origin and Sec-Fetch-Site, when sent, must say same origin as well.
 * Origin "null" is refused here: the console's script writes with fetch(), whose requests (mode
 * "cors") carry the page's own origin whatever the referrer policy (Fetch standard, "append a
 * request Origin header"); only a navigation's form post under no-referrer sends "null".
 */
function writeRefusal(req: IncomingMessage): string | null {
  if (req.headers[WRITE_HEADER] !== '1') return 'writes need the header X-Fakemx-Console: 1';
  return crossSite(req);
}

/**
 * Why a browser request looks cross-site (Sec-Fetch-Site, Origin against Host), or null.
 * `nullOrigin`: take Origin "null" as unknown (a form post from a page under Referrer-Policy:
 * no-referrer, as the console's own pages are, carries it), leaving the call to Sec-Fetch-Site.
 */
function crossSite(req: IncomingMessage, nullOrigin = false): string | null {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${escapeText(String(site)).slice(0, 40)})`;
  const origin = req.headers.origin;
  if (origin !== undefined && !(nullOrigin && origin === 'null')) {
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      // "null" or garbage: refused below
    }
    if (host === null || host !== req.headers.host) return 'cross-origin request refused (Origin does not match Host)';
  }
  return null;
}

type Json = Record<string, unknown> | unknown[];

export class ConsoleApp {
  private readonly assets: Map<string, Asset>;
  /** The pages, without and with the header's log-out button (shown only with http.token). */
  private readonly pages = new Map<string, Asset>();
  private liveCache: { at: number; asset: Asset } | null = null;
  private readonly throttle = new LoginThrottle();
  private caughtCache: { at: number; asset: Asset } | null = null;

  constructor(private readonly opts: ConsoleOptions) {
    this.assets = loadAssets(opts.assetDir);
    for (const p of ['live', 'caught', 'corpus', 'message', 'state'] as const) {
      for (const logout of [false, true]) this.pages.set(`${p}:${logout}`, cached(Buffer.from(page(p, { logout })), 'text/html; charset=utf-8'));
    }
  }

  /** Paths the console answers; everything else stays with the admin server. */
  static owns(path: string): boolean {
    return path === '/' || path === '/favicon.ico' || path === '/console' || path.startsWith('/console/') || path === '/api' || path.startsWith('/api/');
  }

  private send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: Buffer | string, extra: Record<string, string> = {}): void {
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': buf.length, 'cache-control': 'no-store', ...extra });
    res.end(req.method === 'HEAD' ? undefined : buf);
  }

  private json(req: IncomingMessage, res: ServerResponse, status: number, body: Json, extra: Record<string, string> = {}): void {
    this.send(req, res, status, 'application/json; charset=utf-8', JSON.stringify(body), extra);
  }

  /** A prepared (pre-compressed) body; gzip when the client takes it, 304 on a matching ETag. */
  private asset(req: IncomingMessage, res: ServerResponse, a: Asset, cache: string): void {
    const base = { ...SECURITY_HEADERS, 'content-type': a.type, 'cache-control': cache, etag: a.etag, vary: 'accept-encoding' };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, base);
      res.end();
      return;
    }
    const gz = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gz ? a.gz : a.body;
    res.writeHead(200, { ...base, 'content-length': body.length, ...(gz ? { 'content-encoding': 'gzip' } : {}) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** The API's 401 (pages redirect to the login form instead); the challenge names the scheme an API client must use. */
  private unauthorized(req: IncomingMessage, res: ServerResponse, extra: Record<string, string> = {}): void {
    this.json(req, res, 401, { error: 'token required (Authorization: Bearer <http.token>)' }, { 'www-authenticate': 'Bearer realm="fakemx"', ...extra });
  }

  private authorized(req: IncomingMessage, token: string): boolean {
    if (!token) return true;
    const auth = req.headers.authorization;
    // RFC 7235 §2.1: the scheme name is case-insensitive ("bearer" is as good as "Bearer").
    if (auth !== undefined && /^bearer /i.test(auth) && same(auth.slice(7).trim(), token)) return true;
    const c = cookies(req).get(COOKIE);
    if (c !== undefined && same(c, cookieValue(token))) return true;
    // Credentials that were given and are wrong count toward the address's throttle; none at all
    // (a browser not logged in yet) do not.
    if (auth !== undefined || c !== undefined) this.failed(req);
    return false;
  }

  /** A wrong credential from this client: counted; the failure that starts a block is logged once. */
  private failed(req: IncomingMessage): void {
    const client = req.socket.remoteAddress ?? '';
    if (this.throttle.fail(client)) {
      this.opts.logger.warn({ tag: 'CONSOLE_LOGIN_THROTTLED', client, failures: MAX_FAILURES, seconds: WINDOW_MS / 1000 }, `console: ${MAX_FAILURES} wrong tokens from ${client}; refused for the rest of ${WINDOW_MS / 1000} s`);
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    const method = req.method ?? '';
    const { token, consoleWrite } = this.opts.settings();
    if (!token && !hostAllowed(req.headers.host)) {
      req.resume();
      this.send(req, res, 403, 'text/plain; charset=utf-8', 'host not allowed: use an IP address or localhost, or set http.token\n', { connection: 'close' });
      return;
    }
    // An address that presented too many wrong tokens is refused before any check (login-throttle.ts).
    const wait = token ? this.throttle.wait(req.socket.remoteAddress ?? '') : 0;
    if (wait > 0) {
      req.resume();
      const secs = Math.ceil(wait / 1000);
      this.send(req, res, 429, 'text/plain; charset=utf-8', `too many wrong tokens from this address; try again in ${secs} s\n`, { 'retry-after': String(secs), connection: 'close' });
      return;
    }
    if (path === '/console/login') {
      await this.login(req, res, token);
      return;
    }
    if (path === '/console/logout') {
      this.logout(req, res, token);
      return;
    }
    const read = method === 'GET' || method === 'HEAD';
    if (!read) {
      // Only the State page writes, and only with http.consoleWrite.
      if (path.startsWith('/api/') && !consoleWrite) {
        req.resume();
        this.json(req, res, 403, { error: 'read-only console (http.consoleWrite is false)' }, { connection: 'close' });
        return;
      }
      if (path === '/api/state' && (method === 'POST' || method === 'DELETE')) {
        if (!this.authorized(req, token)) {
          req.resume();
          this.unauthorized(req, res, { connection: 'close' });
          return;
        }
        const refused = writeRefusal(req);
        if (refused) {
          req.resume();
          this.opts.logger.warn({ tag: 'CONSOLE_CSRF', client: req.socket.remoteAddress, method, path }, `console: write refused: ${refused}`);
          this.json(req, res, 403, { error: refused }, { connection: 'close' });
          return;
        }
        await this.writeState(req, res, url, method);
        return;
      }
      req.resume();
      this.send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: path === '/api/state' ? 'GET, HEAD, POST, DELETE' : 'GET, HEAD', connection: 'close' });
      return;
    }
    req.resume();
    if (path === '/favicon.ico') {
      res.writeHead(204, { ...SECURITY_HEADERS, 'cache-control': 'max-age=86400' });
      res.end();
      return;
    }
    if (path.startsWith('/console/assets/')) {
      const a = this.assets.get(path.slice('/console/assets/'.length));
      if (a) this.asset(req, res, a, 'no-cache');
      else this.send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (!this.authorized(req, token)) {
      if (path.startsWith('/api/') || path === '/api') {
        this.unauthorized(req, res);
      } else {
        this.send(req, res, 303, 'text/plain; charset=utf-8', 'login required\n', { location: '/console/login' });
      }
      return;
    }
    if (path === '/' || path === '/console') {
      this.send(req, res, 303, 'text/plain; charset=utf-8', 'see /console/\n', { location: '/console/' });
      return;
    }
    const pageName = ({ '/console/': 'live', '/console/caught': 'caught', '/console/corpus': 'corpus', '/console/message': 'message', '/console/state': 'state' } as Record<string, PageName | undefined>)[path];
    if (pageName) {
      this.asset(req, res, this.pages.get(`${pageName}:${token !== ''}`)!, 'no-cache');
      return;
    }
    await this.api(req, res, url, consoleWrite);
  }

  /** POST (allow/deny/trap) or DELETE (?key=) on /api/state; authorized and same-origin by now. */
  private async writeState(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
    const store = this.opts.state?.() ?? null;
    const config = this.opts.config?.();
    if (!store || !config) {
      req.resume();
      return this.json(req, res, 409, { error: 'no state store in use (no listener caches clients, greylists or has greytraps)' });
    }
    const client = req.socket.remoteAddress ?? '';
    let answer;
    let action: string;
    let key: string | undefined;
    if (method === 'DELETE') {
      req.resume();
      action = 'delete';
      key = url.searchParams.get('key') ?? '';
      answer = await deleteState(store, key);
      if (answer.status === 400) key = undefined;
    } else {
      const body = await readBody(req, REQUEST_BODY_MAX);
      if (body === null) return this.json(req, res, 413, { error: 'too large' }, { connection: 'close' });
      const w = parseWrite(body);
      if ('status' in w) return this.json(req, res, w.status, w.body);
      action = w.action;
      answer = await addState(store, config, w);
      key = answer.key;
    }
    if (key !== undefined && answer.status !== 400) {
      // One line per write that reached the store: who (the HTTP client's address) did what to which key.
      const ok = answer.status === 200;
      this.opts.logger.info(
        // An allow for a wide network writes several keys: the first, and how many.
        { tag: 'CONSOLE_STATE', action, key, ...(Array.isArray(answer.body.keys) && answer.body.keys.length > 1 ? { keys: answer.body.keys.length } : {}), ok, status: answer.status, client, ...(typeof answer.body.ttlMs === 'number' ? { ttlMs: answer.body.ttlMs } : {}) },
        `console: ${action} ${escapeText(key)}${Array.isArray(answer.body.keys) && answer.body.keys.length > 1 ? ` and ${answer.body.keys.length - 1} more` : ''} from ${client}${ok ? '' : ` failed (${answer.status})`}`,
      );
    }
    this.json(req, res, answer.status, answer.body);
  }

  private async login(req: IncomingMessage, res: ServerResponse, token: string): Promise<void> {
    const method = req.method ?? '';
    if (method === 'GET' || method === 'HEAD') {
      req.resume();
      if (!token) this.send(req, res, 303, 'text/plain; charset=utf-8', 'no token needed\n', { location: '/console/' });
      else this.send(req, res, 200, 'text/html; charset=utf-8', loginPage(false));
      return;
    }
    if (method !== 'POST') {
      req.resume();
      this.send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD, POST', connection: 'close' });
      return;
    }
    const body = await readBody(req, REQUEST_BODY_MAX);
    if (body === null) {
      this.send(req, res, 413, 'text/plain; charset=utf-8', 'too large\n', { connection: 'close' });
      return;
    }
    const given = new URLSearchParams(body).get('token') ?? '';
    if (!token || !same(given, token)) {
      if (token) {
        this.opts.logger.warn({ tag: 'CONSOLE_LOGIN_FAILED', client: req.socket.remoteAddress }, 'console login with a wrong token');
        this.failed(req);
      }
      this.send(req, res, token ? 401 : 303, 'text/html; charset=utf-8', token ? loginPage(true) : '', token ? {} : { location: '/console/' });
      return;
    }
    this.send(req, res, 303, 'text/plain; charset=utf-8', 'logged in\n', {
      location: '/console/',
      'set-cookie': `${COOKIE}=${cookieValue(token)}; Path=/; HttpOnly; SameSite=Strict`,
    });
  }

  /**
   * POST /console/logout (the header's button): clears the login cookie. The cookie is derived
   * from the token, so this ends the session in this browser; changing http.token ends all.
   * Same-origin only, so another site cannot log the operator out.
   */
  private logout(req: IncomingMessage, res: ServerResponse, token: string): void {
    req.resume();
    if (req.method !== 'POST') {
      this.send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'POST', connection: 'close' });
      return;
    }
    const refused = crossSite(req, true);
    if (refused) {
      this.opts.logger.warn({ tag: 'CONSOLE_CSRF', client: req.socket.remoteAddress, method: 'POST', path: '/console/logout' }, `console: logout refused: ${refused}`);
      this.send(req, res, 403, 'text/plain; charset=utf-8', `${refused}\n`, { connection: 'close' });
      return;
    }
    this.send(req, res, 303, 'text/plain; charset=utf-8', 'logged out\n', {
      location: token ? '/console/login' : '/console/',
      'set-cookie': `${COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`,
    });
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL, consoleWrite: boolean): Promise<void> {
    const p = url.pathname;
    const q = url.searchParams;
    if (p === '/api/live') {
      const now = Date.now();
      if (!this.liveCache || now - this.liveCache.at >= LIVE_CACHE_MS) {
        this.liveCache = { at: now, asset: cached(Buffer.from(JSON.stringify(this.opts.live.live())), 'application/json; charset=utf-8') };
      }
      this.asset(req, res, this.liveCache.asset, 'no-store');
    } else if (p === '/api/caught') {
      const now = Date.now();
      if (!this.caughtCache || now - this.caughtCache.at >= CAUGHT_CACHE_MS) {
        const caught = this.opts.live.caught(20, this.opts.dnsHealth?.() ?? []);
        this.caughtCache = { at: now, asset: cached(Buffer.from(JSON.stringify(caught)), 'application/json; charset=utf-8') };
      }
      this.asset(req, res, this.caughtCache.asset, 'no-store');
    } else if (p === '/api/corpus') {
      const query: CorpusQuery = {};
      for (const k of ['day', 'verdict', 'client', 'helo', 'from', 'rcpt', 'subject'] as const) {
        const v = q.get(k)?.trim();
        if (v) query[k] = v.slice(0, 256);
      }
      // A real calendar day too: 2026-13-01 has the shape and no directory could ever match it.
      if (query.day && (!DAY_DIR.test(query.day) || !isCalendarDay(query.day))) {
        return this.json(req, res, 400, { error: 'day must be a date, YYYY-MM-DD' });
      }
      for (const k of ['offset', 'limit'] as const) {
        const v = q.get(k);
        if (v === null || v === '') continue;
        if (!/^\d{1,9}$/.test(v)) return this.json(req, res, 400, { error: `${k} must be a whole number` });
        query[k] = Number(v);
      }
      await this.opts.index.subjectsRead();
      try {
        this.json(req, res, 200, { ...this.opts.index.query(query) });
      } catch (e) {
        this.json(req, res, 400, { error: e instanceof Error ? e.message : String(e) });
      }
    } else if (p === '/api/state') {
      const store = this.opts.state?.() ?? null;
      if (!store) return this.json(req, res, 200, { backend: null, items: [], cursor: null, examined: 0, write: consoleWrite, note: 'no state store in use: no listener caches clients, greylists or has greytraps' });
      const limit = q.get('limit');
      if (limit && !/^\d{1,4}$/.test(limit)) return this.json(req, res, 400, { error: 'limit must be a whole number' });
      const r = await listState(store, { kind: q.get('kind'), q: q.get('q'), cursor: q.get('cursor'), limit: limit ? Number(limit) : null });
      this.json(req, res, r.status, { ...r.body, write: consoleWrite });
    } else if (p === '/api/corpus/facets') {
      this.json(req, res, 200, { days: this.opts.index.days(), verdicts: this.opts.index.tags(), indexing: this.opts.index.indexing, indexed: this.opts.index.size, progress: this.opts.index.scanProgress });
    } else if (p === '/api/corpus/message' || p === '/api/corpus/raw') {
      const id = q.get('id') ?? '';
      const e = ID.test(id) ? this.opts.index.get(id) : undefined;
      if (!e) return this.json(req, res, 404, { error: 'no such message' });
      if (p === '/api/corpus/message') {
        try {
          this.json(req, res, 200, { ...(await messageView(e.path, e.json)) });
        } catch (err) {
          // The corpus's fault, not a bug: said as such (the page shows it), not as an internal error.
          if (err instanceof DamagedRecord) return this.json(req, res, 500, { error: `the metadata record of ${id} is damaged: ${err.message}` });
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          this.opts.index.remove(id);
          this.json(req, res, 404, { error: 'message gone from the store' });
        }
      } else {
        await this.raw(req, res, id, e.path);
      }
    } else {
      this.json(req, res, 404, { error: 'not found' });
    }
  }

  /** The .eml as a download: never something a browser would render. */
  private async raw(req: IncomingMessage, res: ServerResponse, id: string, path: string): Promise<void> {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      this.opts.index.remove(id);
      return this.json(req, res, 404, { error: 'message gone from the store' });
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="${id}.eml"`,
      'content-length': size,
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // pipeline, not pipe(): a client that goes away mid-download (a cancelled save) must close
    // the file too; pipe() left the read stream paused with its descriptor open for good, one
    // per cancelled download, and this request's promise unsettled.
    try {
      await pipeline(createReadStream(path), res);
    } catch {
      res.destroy();
    }
  }
}

/**
 * The request body as text, or null as soon as it passes `max` octets: the rest is not read
 * (the callers answer 413 with Connection: close, which drops it), so an endless upload costs
 * one chunk, not its whole length.
 */
function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer) => {
      n += c.length;
      if (n <= max) return void chunks.push(c);
      req.off('data', onData);
      req.pause();
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(null));
  });
}
