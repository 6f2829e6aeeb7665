// The admin HTTP listener (node:http, apart from SMTP): GET /healthz and GET /metrics, and the
// operator console (src/console/) when http.console is on.
// Contract: startAdmin() resolves once bound (rejects on bind errors); close() stops it and
// drops idle keep-alive sockets. Every request is bounded in time, headers and body, and a
// flood of half-open connections cannot keep a health check out (the oldest idle are shed).

import { effectiveListeners, storePathsInUse } from '../config/effective.js';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import type { ListenerInfo } from '../events.js';
import type { Logger } from '../log/logger.js';
import { ConsoleApp } from '../console/routes.js';

/** What /healthz reads from the server (FakemxServer has all of it). */
export interface HealthSource {
  /** The state store's health, when one is open: not ok is degraded (sessions go on per state.onError). */
  stateHealth?(): { ok: boolean; note?: string } | null;
  readonly listening: ListenerInfo[];
  readonly activeSessions: number;
  readonly config: Config;
  /** The corpora's disk cap (store.maxBytes, store.minFreeBytes): a full store is degraded. */
  readonly stores?: { status(): readonly { store: string; full: boolean; reason: string | null }[] };
}

export interface HealthReport {
  ok: boolean;
  body: {
    /** degraded: still answered 200 (the store heals itself on the next message), with a reason. */
    status: 'ok' | 'degraded' | 'unavailable';
    uptimeS: number;
    activeSessions: number;
    listeners: ListenerInfo[];
    reason?: string;
  };
}

export interface AdminOptions {
  address: string;
  port: number;
  source: HealthSource;
  /** True once the SMTP server was closed (its 'close' event); listeners then no longer listen. */
  closed: () => boolean;
  /** Prometheus text and its content type. */
  metrics: () => Promise<{ text: string; contentType: string }>;
  logger: Logger;
  startedAt?: number;
  /** Overrides of ADMIN_LIMITS (tests use small timeouts). */
  limits?: Partial<AdminLimits>;
  /** The operator console (http.console), asked for /, /console/* and /api/*; read at each request. */
  console?: () => ConsoleApp | null;
}

export interface AdminLimits {
  /** Request headers complete within this long of the connection (or the previous response). */
  headersTimeoutMs: number;
  /** A whole request, headers and body, within this long (>= headersTimeoutMs). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long (Node 20.20 adds 1 s to the socket timer). */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic either way is destroyed after this long (a stalled body, a reader that stopped). */
  idleTimeoutMs: number;
  /** Open admin connections at most; one more sheds the oldest idle (never refuses the newcomer). */
  maxConnections: number;
  /** Milliseconds a store-writability answer is reused: a health-check flood costs one probe per period. */
  storeCheckCacheMs: number;
}

/**
 * Defaults. A health checker or Prometheus sends its whole request at once and needs a couple
 * of connections; 5 s for headers is generous for them and short for a slowloris. The cap
 * bounds memory whatever arrives: 64 sockets with parsers is a few hundred KB.
 */
export const ADMIN_LIMITS: Readonly<AdminLimits> = Object.freeze({
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
  maxConnections: 64,
  storeCheckCacheMs: 1_000,
});

/** Shed connections are logged at most this often (a flood would otherwise log one line each). */
const SHED_LOG_INTERVAL_MS = 10_000;

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export type StoreCheck = { ok: true; note?: string } | { ok: false; reason: string };

const errCode = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code ?? 'error';

/**
 * Can the corpus under `root` take today's message? Today's directory (UTC, as the store
 * names it) must be a writable directory; if it does not exist yet, the nearest existing
 * ancestor must be one, since the store makes the missing directories on the next message.
 * A missing root is reported as a note (degraded): it was deleted or moved while running.
 * Root passes W_OK on any mode bits, but not on a read-only mount (EROFS) or a non-directory.
 */
export async function checkStoreDir(root: string, now = new Date()): Promise<StoreCheck> {
  const today = join(root, now.toISOString().slice(0, 10));
  let dir = today;
  for (;;) {
    try {
      if (!(await stat(dir)).isDirectory()) return { ok: false, reason: `store directory ${dir} not writable (ENOTDIR)` };
      await access(dir, constants.W_OK);
      break;
    } catch (e) {
      const code = errCode(e);
      const up = dirname(dir);
      if (code !== 'ENOENT' || up === dir) return { ok: false, reason: `store directory ${dir} not writable (${code})` };
      dir = up;
    }
  }
  // Today's directory, or the root before today's first message: nothing to say.
  if (dir === today || dir === root) return { ok: true };
  return { ok: true, note: `store path ${root} missing (ENOENT); made again on the next message` };
}

/** checkStoreDir with each answer reused for `ttlMs` (per directory and day); concurrent callers share one probe. */
export function cachedStoreCheck(ttlMs: number, check = checkStoreDir): (root: string) => Promise<StoreCheck> {
  const cache = new Map<string, { at: number; result: Promise<StoreCheck> }>();
  return (root) => {
    const now = new Date();
    const key = `${root}\0${now.toISOString().slice(0, 10)}`;
    const hit = cache.get(key);
    if (hit && now.getTime() - hit.at < ttlMs) return hit.result;
    if (cache.size > 32) cache.clear();
    const result = check(root, now).catch((e: unknown): StoreCheck => ({ ok: false, reason: `store check failed (${errCode(e)})` }));
    cache.set(key, { at: now.getTime(), result });
    return result;
  };
}

/**
 * 200 when every configured SMTP listener listens and every corpus in use can store today's
 * message (degraded, still 200, when the store will have to remake its root); 503 otherwise.
 */
export async function checkHealth(
  src: HealthSource,
  closed: boolean,
  startedAt: number,
  storeCheck: (root: string) => Promise<StoreCheck> = (root) => checkStoreDir(root),
): Promise<HealthReport> {
  const listeners = src.listening;
  const config = src.config;
  const expected = config.listeners.length > 0 ? config.listeners.length : 1;
  let reason: string | undefined;
  let note: string | undefined;
  if (closed) reason = 'server closed';
  else if (listeners.length < expected) reason = `${listeners.length} of ${expected} SMTP listeners listening`;
  if (!reason) {
    for (const r of await Promise.all(storePathsInUse(effectiveListeners(config)).map((dir) => storeCheck(dir)))) {
      if (!r.ok) {
        reason = r.reason;
        break;
      }
      note ??= r.note;
    }
    // Full (store.onFull): the server still answers every session, it stores nothing.
    const full = src.stores?.status().find((st) => st.full);
    if (full) note ??= `store ${full.store} full: ${full.reason}`;
  }
  const state = reason ? null : (src.stateHealth?.() ?? null);
  if (state && !state.ok) note ??= state.note ?? 'state store unavailable';
  const body: HealthReport['body'] = {
    status: reason ? 'unavailable' : note ? 'degraded' : 'ok',
    uptimeS: Math.round((Date.now() - startedAt) / 1000),
    activeSessions: src.activeSessions,
    listeners,
    ...((reason ?? note) ? { reason: reason ?? note } : {}),
  };
  return { ok: !reason, body };
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : body);
}

async function handle(
  opts: AdminOptions,
  startedAt: number,
  storeCheck: (root: string) => Promise<StoreCheck>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // The console reads its own bodies (the login form) and answers its own methods.
  const app = opts.console?.() ?? null;
  if (app) {
    let url: URL | null = null;
    try {
      url = new URL(req.url ?? '/', 'http://admin.invalid');
    } catch {
      // answered as a bad request below
    }
    if (url && ConsoleApp.owns(url.pathname)) return app.handle(req, res, url);
  }
  // A GET body is meaningless here; discard whatever comes (bounded by the request timeout).
  req.resume();
  // A request with a body (none is expected) gets `connection: close`: Node then closes right
  // after the answer instead of waiting, up to the request timeout, for a body that may never come.
  const close = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
  const extra: Record<string, string> = close ? { connection: 'close' } : {};
  const method = req.method ?? '';
  // RFC 9110 §9.1: a general-purpose server must support GET and HEAD; all else is 405.
  if (method !== 'GET' && method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false, { allow: 'GET, HEAD', ...extra });
    return;
  }
  const head = method === 'HEAD';
  let path: string;
  try {
    path = new URL(req.url ?? '/', 'http://admin.invalid').pathname;
  } catch {
    send(res, 400, 'text/plain; charset=utf-8', 'bad request\n', head, extra);
    return;
  }
  if (path === '/healthz') {
    const h = await checkHealth(opts.source, opts.closed(), startedAt, storeCheck);
    send(res, h.ok ? 200 : 503, 'application/json', JSON.stringify(h.body) + '\n', head, extra);
  } else if (path === '/metrics') {
    const m = await opts.metrics();
    send(res, 200, m.contentType, m.text, head, extra);
  } else {
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head, extra);
  }
}

/** The reply Node would send for a client error, then the socket is closed. */
function clientErrorReply(err: NodeJS.ErrnoException): string {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n';
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\r\n';
  return 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n';
}

export function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const startedAt = opts.startedAt ?? Date.now();
  const lim: AdminLimits = { ...ADMIN_LIMITS, ...opts.limits };
  // Node refuses headersTimeout > requestTimeout.
  const headersTimeout = Math.min(lim.headersTimeoutMs, lim.requestTimeoutMs);
  const storeCheck = cachedStoreCheck(lim.storeCheckCacheMs);
  const server: Server = createServer(
    {
      requestTimeout: lim.requestTimeoutMs,
      headersTimeout,
      keepAliveTimeout: lim.keepAliveTimeoutMs,
      // Node checks the two timeouts above only this often (default 30 s): a quarter of the
      // header timeout keeps a half-open socket's life within 1.25x of it.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4))),
      maxHeaderSize: 8 * 1024,
    },
    (req, res) => {
      handle(opts, startedAt, storeCheck, req, res).catch((e: unknown) => {
        opts.logger.warn({ tag: 'ADMIN_ERROR', url: req.url, err: e instanceof Error ? e.message : String(e) }, 'admin request failed');
        try {
          if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n', false);
          else res.destroy();
        } catch {
          res.destroy();
        }
      });
    },
  );
  server.maxHeadersCount = 50;
  // Per-socket inactivity (either way): bounds what the timeouts above do not, such as a
  // client that stops reading a response. Node destroys the socket (no 'timeout' listener).
  server.timeout = lim.idleTimeoutMs;
  // Not server.maxConnections: past it Node drops the NEW connection, so 64 half-open sockets
  // kept every health check out. Instead every connection is admitted and, past the cap, the
  // oldest one without a request in progress (a half-open or idle keep-alive one) is shed.
  const conns = new Map<Socket, { inFlight: number }>(); // insertion order = age
  let shed = 0;
  let shedLoggedAt = 0;
  server.on('connection', (sock: Socket) => {
    conns.set(sock, { inFlight: 0 });
    sock.once('close', () => conns.delete(sock));
    if (conns.size <= lim.maxConnections) return;
    let victim: Socket | undefined;
    for (const [s, c] of conns) {
      if (s === sock) continue;
      victim ??= s; // every other one busy: the oldest request loses, the newcomer is still served
      if (c.inFlight === 0) {
        victim = s;
        break;
      }
    }
    if (!victim) return;
    conns.delete(victim);
    victim.destroy();
    shed++;
    const now = Date.now();
    if (now - shedLoggedAt >= SHED_LOG_INTERVAL_MS) {
      opts.logger.warn({ tag: 'ADMIN_SHED', shed, maxConnections: lim.maxConnections }, 'admin connections over the cap: oldest idle closed');
      shedLoggedAt = now;
      shed = 0;
    }
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const c = conns.get(req.socket);
    if (!c) return;
    c.inFlight++;
    res.once('close', () => c.inFlight--);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, sock: Socket) => {
    // Answer what can be answered, then close for good: end() alone would leave the socket
    // half-open (http servers allow half-open) until the peer closes its side.
    if (sock.writable && err.code !== 'ECONNRESET') sock.end(clientErrorReply(err), () => sock.destroy());
    else sock.destroy();
  });
  return new Promise((resolvePromise, reject) => {
    const onErr = (e: Error) => reject(e);
    server.once('error', onErr);
    server.listen({ host: opts.address, port: opts.port }, () => {
      server.off('error', onErr);
      server.on('error', (e) => opts.logger.error({ tag: 'ADMIN_ERROR', err: e.message }, 'admin listener error'));
      const a = server.address() as AddressInfo;
      opts.logger.info({ tag: 'ADMIN_LISTENING', address: a.address, port: a.port }, `admin HTTP on ${a.address}:${a.port}`);
      resolvePromise({
        address: a.address,
        port: a.port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeIdleConnections();
            // In-flight requests finish within the request timeout; do not wait longer.
            setTimeout(() => server.closeAllConnections(), lim.requestTimeoutMs).unref();
          }),
      });
    });
  });
}
