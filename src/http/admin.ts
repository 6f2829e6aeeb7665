// The admin HTTP listener (node:http, apart from SMTP): GET /healthz and GET /metrics.
// Contract: startAdmin() resolves once bound (rejects on bind errors); close() stops it and
// drops idle keep-alive sockets. Every request is bounded in time, headers and body.

import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Config } from '../config/schema.js';
import type { ListenerInfo } from '../events.js';
import type { Logger } from '../log/logger.js';

/** What /healthz reads from the server (FakemxServer has all of it). */
export interface HealthSource {
  readonly listening: ListenerInfo[];
  readonly activeSessions: number;
  readonly config: Config;
}

export interface HealthReport {
  ok: boolean;
  body: {
    status: 'ok' | 'unavailable';
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
  /** Milliseconds a whole request (headers included) may take. */
  requestTimeoutMs?: number;
}

export interface AdminServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const REQUEST_TIMEOUT_MS = 10_000;
const MAX_CONNECTIONS = 64;

/** The directory the corpus writes to for a storePath ("" = ./var/corpus, as in the schema doc). */
export function storeDir(storePath: string): string {
  return resolve(storePath === '' ? 'var/corpus' : storePath);
}

/** Every corpus directory in use: per listener, profile over top level; only where storeData is on. */
export function storePathsInUse(config: Config): string[] {
  const out = new Set<string>();
  const profiles = config.listeners.length > 0 ? config.listeners.map((l) => l.profile ?? {}) : [{}];
  for (const p of profiles) {
    const storeData = p.storeData ?? config.storeData;
    if (storeData) out.add(storeDir(p.storePath ?? config.storePath));
  }
  return [...out];
}

/** 200 when every configured SMTP listener listens and every corpus directory is writable. */
export async function checkHealth(src: HealthSource, closed: boolean, startedAt: number): Promise<HealthReport> {
  const listeners = src.listening;
  const config = src.config;
  const expected = config.listeners.length > 0 ? config.listeners.length : 1;
  let reason: string | undefined;
  if (closed) reason = 'server closed';
  else if (listeners.length < expected) reason = `${listeners.length} of ${expected} SMTP listeners listening`;
  if (!reason) {
    for (const dir of storePathsInUse(config)) {
      try {
        // Root passes W_OK on any mode bits, but not on a read-only mount (EROFS) or a non-directory.
        if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
        await access(dir, constants.W_OK);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'error';
        reason = `store path ${dir} not writable (${code})`;
        break;
      }
    }
  }
  const body: HealthReport['body'] = {
    status: reason ? 'unavailable' : 'ok',
    uptimeS: Math.round((Date.now() - startedAt) / 1000),
    activeSessions: src.activeSessions,
    listeners,
    ...(reason ? { reason } : {}),
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

async function handle(opts: AdminOptions, startedAt: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  // A GET body is meaningless here; discard whatever comes (bounded by the request timeout).
  req.resume();
  const method = req.method ?? '';
  // RFC 9110 §9.1: a general-purpose server must support GET and HEAD; all else is 405.
  if (method !== 'GET' && method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false, { allow: 'GET, HEAD' });
    return;
  }
  const head = method === 'HEAD';
  let path: string;
  try {
    path = new URL(req.url ?? '/', 'http://admin.invalid').pathname;
  } catch {
    send(res, 400, 'text/plain; charset=utf-8', 'bad request\n', head);
    return;
  }
  if (path === '/healthz') {
    const h = await checkHealth(opts.source, opts.closed(), startedAt);
    send(res, h.ok ? 200 : 503, 'application/json', JSON.stringify(h.body) + '\n', head);
  } else if (path === '/metrics') {
    const m = await opts.metrics();
    send(res, 200, m.contentType, m.text, head);
  } else {
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n', head);
  }
}

export function startAdmin(opts: AdminOptions): Promise<AdminServer> {
  const startedAt = opts.startedAt ?? Date.now();
  const timeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const server: Server = createServer(
    {
      // Slowloris bounds: whole request and headers within `timeout`, few headers, small header block.
      requestTimeout: timeout,
      headersTimeout: Math.min(timeout, 5_000),
      keepAliveTimeout: 5_000,
      // Node checks the two timeouts above only this often (default 30 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(timeout / 4))),
      maxHeaderSize: 8 * 1024,
    },
    (req, res) => {
      handle(opts, startedAt, req, res).catch((e: unknown) => {
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
  server.maxConnections = MAX_CONNECTIONS;
  // Idle sockets: cut after the request timeout too.
  server.setTimeout(timeout);
  server.on('clientError', (_err, sock) => {
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
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
            setTimeout(() => server.closeAllConnections(), timeout).unref();
          }),
      });
    });
  });
}
