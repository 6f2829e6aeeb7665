// The library API: createServer() returns a FakemxServer (an EventEmitter of ServerEvents)
// that owns the listeners, the session table (maxSessions), the corpus, and the policy
// hooks built per listener. The daemon, the tests and embedding programs all use it.
// Verdicts are recorded here once: log line, session metadata, 'verdict' event.

import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { loadConfig, type LoadedConfig } from './config/load.js';
import type { Config, ListenerConfig, PolicyConfig } from './config/schema.js';
import type { ListenerInfo, MessageResult, ServerEvents } from './events.js';
import { clientTag, silentLogger, type Logger } from './log/logger.js';
import { cidrContains, normalizeIp, prefixKey, parseCidr, type Cidr } from './net/ip.js';
import { readProxyHeader } from './net/proxy-protocol.js';
import { matchAccess } from './policy/access.js';
import { createDnsCheck, type DnsRuntime } from './policy/dns-check.js';
import { buildHooks, verdictList, type PolicyServices } from './policy/index.js';
import { PerIpLimiter } from './policy/limits.js';
import type { SessionHooks, SessionInfo, TlsInfo } from './smtp/hooks.js';
import { formatReply, replies, sanitize } from './smtp/reply.js';
import { Session, type SessionConfig } from './smtp/session.js';
import { Corpus, type StoredMessage } from './store/corpus.js';
import { newId } from './util/id.js';

export interface CreateServerOptions {
  /** Config values (validated exactly like the file's); they win over the file. */
  config?: Record<string, unknown>;
  /** A config file to read. */
  configFile?: string;
  /** An already loaded config (the daemon); config/configFile are then ignored. */
  loaded?: LoadedConfig;
  /** Logger; default: silent. */
  logger?: Logger;
}

export interface ListenOptions {
  /** Inherited listening sockets (systemd socket activation), matched by name then order. */
  fds?: { fd: number; name: string }[];
}

interface ListenerRuntime {
  cfg: ListenerConfig;
  policy: PolicyConfig;
  hooks: SessionHooks;
  /** Shared by every session this listener accepts under the current config. */
  session: SessionConfig;
  trusted: Cidr[] | null;
  server: NetServer;
  info: ListenerInfo;
}

/** What one loaded config turns into: rebuilt on reload, captured by each new session. */
interface Runtime {
  loaded: LoadedConfig;
  config: Config;
  tlsOptions: SecureContextOptions | undefined;
  secureContext: SecureContext | undefined;
  dns: DnsRuntime | null;
}

function policyFor(config: Config, l: ListenerConfig): PolicyConfig {
  const p = l.profile ?? {};
  return { ...config, ...p, tarpit: { ...config.tarpit, ...(p.tarpit ?? {}) } };
}

/** Certificate options from the config (files read now), or undefined without a certificate. */
function tlsOptions(config: Config): SecureContextOptions | undefined {
  if (!config.tls.cert || !config.tls.key) return undefined;
  return {
    cert: readFileSync(config.tls.cert),
    key: readFileSync(config.tls.key),
    ...(config.tls.ca ? { ca: readFileSync(config.tls.ca) } : {}),
    minVersion: config.tls.minVersion,
    ...(config.tls.ciphers ? { ciphers: config.tls.ciphers } : {}),
  };
}

function sessionConfig(name: string, l: ListenerConfig, policy: PolicyConfig, rt: Runtime): SessionConfig {
  return {
    listener: name,
    hostName: policy.hostName,
    receiveTimeout: policy.receiveTimeout,
    maxLineLength: policy.maxLineLength,
    maxPendingInput: policy.maxPendingInput,
    maxDataSize: policy.maxDataSize,
    dataTimeout: policy.dataTimeout,
    maxSmtpErrors: policy.maxSmtpErrors,
    maxSmtpNoop: policy.maxSmtpNoop,
    maxSmtpVrfy: policy.maxSmtpVrfy,
    maxSmtpRcpt: policy.maxSmtpRcpt,
    maxRcptOvershoot: policy.maxRcptOvershoot,
    maxJunkCommands: policy.maxJunkCommands,
    maxSessionTime: policy.maxSessionTime,
    maxMessages: policy.maxMessages,
    advertisePipelining: policy.advertisePipelining,
    bannerTeaser: policy.bannerTeaser,
    ...(l.tls === 'starttls' && rt.secureContext
      ? { startTls: { context: rt.secureContext, handshakeTimeout: rt.config.tls.handshakeTimeout } }
      : {}),
  };
}

const LISTEN_BACKLOG = 4096;

export class FakemxServer extends EventEmitter<ServerEvents> {
  private runtime: Runtime;
  private readonly sessions = new Set<Session>();
  private readonly perIp = new PerIpLimiter();
  private readonly corpora = new Map<string, Corpus>();
  private listenerRts: ListenerRuntime[] = [];
  private closing = false;
  readonly logger: Logger;

  constructor(loaded: LoadedConfig, logger?: Logger) {
    super();
    this.logger = logger ?? silentLogger();
    this.runtime = this.buildRuntime(loaded);
    // A throwing 'error' listener-less emit would crash the process; keep one.
    this.on('error', (e) => this.logger.error({ tag: 'ERROR', err: e.message }, 'server error'));
  }

  get config(): Config {
    return this.runtime.config;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  get listening(): ListenerInfo[] {
    return this.listenerRts.map((l) => l.info);
  }

  private buildRuntime(loaded: LoadedConfig): Runtime {
    const config = loaded.config;
    const old = this.runtime as Runtime | undefined;
    const dns = createDnsCheck(config, this.logger, (ev) => this.emit('dnsQuery', ev), old?.dns ?? null);
    const opts = tlsOptions(config);
    return { loaded, config, tlsOptions: opts, secureContext: opts ? createSecureContext(opts) : undefined, dns };
  }

  private corpusFor(path: string): Corpus {
    let c = this.corpora.get(path);
    if (!c) this.corpora.set(path, (c = new Corpus(path)));
    return c;
  }

  private services(policy: PolicyConfig, rt: Runtime): PolicyServices {
    const lists = rt.loaded.lists;
    const access = policy.accessList ? lists.access(policy.accessList) : null;
    return {
      maxSessions: rt.config.maxSessions,
      active: () => this.sessions.size,
      perIp: this.perIp,
      ipKey: (ip) => prefixKey(ip, policy.ipv6Prefix),
      access: access ? (ip) => matchAccess(access, ip) : null,
      domains: policy.localDomains ? lists.domains(policy.localDomains) : null,
      mailboxes: policy.localMailboxes ? lists.mailboxes(policy.localMailboxes) : null,
      corpus: policy.storeData ? this.corpusFor(policy.storePath) : null,
      dns: rt.dns ? rt.dns.forPolicy(policy) : null,
      verdict: (s, tag, d) => this.verdict(s, tag, d),
      messageResult: (s, result, bytes) => this.messageResult(s, result, bytes),
      message: (s, stored) => this.stored(s, stored),
    };
  }

  private hooksFor(policy: PolicyConfig, rt: Runtime): SessionHooks {
    const p = buildHooks(policy, this.services(policy, rt));
    const log = this.logger;
    const verbose = policy.verboseLogging;
    return {
      ...p,
      verdict: (s, tag, d) => this.verdict(s, tag, d),
      command: (s, raw) => {
        // Sanitised only when someone will see it: the per-line cost is paid by verbose runs.
        if (!verbose && this.listenerCount('command') === 0) return;
        const line = sanitize(raw, 512);
        if (verbose) log.info({ tag: 'CMD', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), line }, 'command');
        this.emit('command', s, line);
      },
      reply: (s, r) => {
        if (verbose) log.info({ tag: 'REPLY', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), code: r.code, text: r.text }, 'reply');
        this.emit('reply', s, r);
      },
      tls: (s, info) => this.tlsUp(s, info),
      close: (s, info) => {
        p.close?.(s, info);
        this.sessions.delete(s as Session);
        const verdicts: Record<string, number> = {};
        for (const v of verdictList(s)) verdicts[v.tag] = (verdicts[v.tag] ?? 0) + 1;
        log.info(
          {
            tag: 'CLOSE', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), listener: s.listener,
            helo: s.helo ?? null, counts: s.counts, verdicts, outcome: info.reason, durationMs: info.durationMs,
            ...(s.tls ? { tls: s.tls } : {}),
          },
          `session closed: ${info.reason}`,
        );
        this.emit('disconnect', s, info);
      },
    };
  }

  private verdict(s: SessionInfo, tag: string, details: Record<string, unknown>): void {
    const rec = { tag, atMs: Date.now() - s.openedAt, ...details };
    verdictList(s).push(rec);
    this.logger.info(
      { tag, session: s.id, client: clientTag(s.remoteAddress, s.remotePort), ...details },
      `${tag} from ${clientTag(s.remoteAddress, s.remotePort)}`,
    );
    this.emit('verdict', { tag, session: s, details });
  }

  private tlsUp(s: SessionInfo, info: TlsInfo): void {
    this.logger.info({ tag: 'TLS', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), ...info }, 'TLS established');
  }

  private messageResult(s: SessionInfo, result: MessageResult, bytes: number): void {
    this.emit('messageResult', { session: s, result, bytes });
  }

  private stored(s: SessionInfo, m: StoredMessage): void {
    this.logger.info(
      { tag: 'STORED', session: s.id, client: clientTag(s.remoteAddress, s.remotePort), id: m.id, file: m.path, bytes: m.metadata.sizes.file },
      `STORED ${m.id}`,
    );
    this.emit('message', { session: s, metadata: m.metadata, path: m.path });
  }

  // ---- listeners -----------------------------------------------------------------------

  async listen(opts: ListenOptions = {}): Promise<ListenerInfo[]> {
    const rt = this.runtime;
    for (const c of this.corpora.values()) await c.init();
    for (const l of rt.config.listeners) {
      const pol = policyFor(rt.config, l);
      if (!pol.storeData) continue;
      const removed = await this.corpusFor(pol.storePath).init();
      if (removed > 0) this.logger.warn({ tag: 'STALE_TEMP', store: pol.storePath, removed }, 'removed temporaries left by an earlier crash');
    }
    const fds = [...(opts.fds ?? [])];
    for (const l of rt.config.listeners) {
      const fdIdx = fds.findIndex((f) => f.name === l.name);
      const fd = fdIdx >= 0 ? fds.splice(fdIdx, 1)[0] : fds.shift();
      this.listenerRts.push(await this.openListener(l, rt, fd?.fd));
    }
    await rt.dns?.start();
    const infos = this.listening;
    this.emit('listening', infos);
    for (const i of infos) this.logger.info({ tag: 'LISTENING', ...i }, `listening on ${i.address}:${i.port} (${i.tls})`);
    return infos;
  }

  private openListener(l: ListenerConfig, rt: Runtime, fd?: number): Promise<ListenerRuntime> {
    const policy = policyFor(rt.config, l);
    const lr: ListenerRuntime = {
      cfg: l,
      policy,
      hooks: this.hooksFor(policy, rt),
      session: sessionConfig(l.name ?? `${l.address}:${l.port}`, l, policy, rt),
      trusted: l.proxyProtocol ? l.proxyProtocol.trusted.map(parseCidr) : null,
      server: null as unknown as NetServer,
      info: { name: l.name ?? `${l.address}:${l.port}`, address: l.address, port: l.port, tls: l.tls },
    };
    let server: NetServer;
    if (l.tls === 'implicit') {
      // RFC 8314: TLS from the first byte; the greeting follows the handshake.
      const ts = createTlsServer({
        ...rt.tlsOptions,
        handshakeTimeout: rt.config.tls.handshakeTimeout,
        allowHalfOpen: true,
      });
      ts.on('secureConnection', (sock: TLSSocket) => this.guardAccept(lr, sock));
      ts.on('tlsClientError', (err, sock) => {
        this.logger.info({ tag: 'TLS_FAILED', listener: lr.info.name, client: clientTag(normalizeIp(sock.remoteAddress ?? ''), sock.remotePort ?? 0), reason: err.message }, 'TLS handshake failed');
        this.emit('connection', { listener: lr.info.name, outcome: 'tls_failed' });
        // Node reports a stalled or broken handshake but leaves the socket open: close it.
        sock.destroy();
      });
      server = ts;
    } else {
      server = createNetServer({ allowHalfOpen: true }, (sock) => this.guardAccept(lr, sock));
    }
    server.on('error', (e) => this.emit('error', e));
    lr.server = server;
    return new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      server.once('error', onErr);
      const done = () => {
        server.off('error', onErr);
        const a = server.address() as AddressInfo;
        lr.info = { ...lr.info, address: a.address, port: a.port };
        resolve(lr);
      };
      if (fd !== undefined) server.listen({ fd }, done);
      // A burst of new clients must not overflow the accept queue (Node's default is 511;
      // the kernel caps this at net.core.somaxconn).
      else server.listen({ host: l.address, port: l.port, ipv6Only: false, backlog: LISTEN_BACKLOG }, done);
    });
  }

  private guardAccept(lr: ListenerRuntime, sock: Socket): void {
    try {
      sock.on('error', () => undefined);
      if (lr.trusted) this.acceptProxied(lr, sock);
      else this.accept(lr, sock, normalizeIp(sock.remoteAddress ?? ''), sock.remotePort ?? 0);
    } catch (e) {
      this.emit('error', e instanceof Error ? e : new Error(String(e)));
      sock.destroy();
    }
  }

  /** PROXY protocol: only trusted peers, header within the timeout, else close. */
  private acceptProxied(lr: ListenerRuntime, sock: Socket): void {
    const peer = normalizeIp(sock.remoteAddress ?? '');
    const bad = (reason: string) => {
      this.logger.info({ tag: 'PROXY_INVALID', listener: lr.info.name, client: clientTag(peer, sock.remotePort ?? 0), reason }, 'PROXY header rejected');
      this.emit('connection', { listener: lr.info.name, outcome: 'proxy_invalid' });
      sock.destroy();
    };
    if (!lr.trusted!.some((c) => cidrContains(c, peer))) return bad('untrusted peer');
    readProxyHeader(sock, { timeoutMs: lr.cfg.proxyProtocol?.timeout ?? 5000 }).then(
      ({ header, rest }) => {
        if (sock.destroyed) return;
        // LOCAL / UNKNOWN: the connection is the proxy's own; keep the peer address.
        const src = header.command === 'PROXY' && header.source ? header.source : { address: peer, port: sock.remotePort ?? 0 };
        try {
          this.accept(lr, sock, normalizeIp(src.address), src.port, rest);
        } catch (e) {
          this.emit('error', e instanceof Error ? e : new Error(String(e)));
          sock.destroy();
        }
      },
      (e: Error) => bad(e.message),
    );
  }

  private accept(lr: ListenerRuntime, sock: Socket, ip: string, port: number, rest?: Buffer): void {
    const rt = this.runtime;
    const policy = lr.policy;
    if (this.closing) {
      sock.end(formatReply(replies.shuttingDown(policy.hostName), true));
      return;
    }
    if (this.sessions.size >= rt.config.maxSessions) {
      // FakeSMTP: beyond maxSessions, refuse at once (no banner delay).
      this.logger.info({ tag: 'LIMIT', limit: 'maxSessions', client: clientTag(ip, port), listener: lr.info.name }, 'too busy');
      this.emit('connection', { listener: lr.info.name, outcome: 'too_busy' });
      sock.end(formatReply(replies.tooBusy(policy.hostName), true));
      setTimeout(() => sock.destroy(), 2000).unref();
      return;
    }
    sock.setNoDelay(true);
    const tsock = sock as TLSSocket;
    const tlsInfo: TlsInfo | undefined = tsock.encrypted
      ? { protocol: tsock.getProtocol() ?? 'unknown', cipher: tsock.getCipher()?.name ?? 'unknown', ...(typeof (tsock as { servername?: unknown }).servername === 'string' ? { servername: (tsock as unknown as { servername: string }).servername } : {}) }
      : undefined;
    const conn = {
      id: newId(),
      remoteAddress: ip,
      remotePort: port,
      ...(tlsInfo ? { tls: tlsInfo } : {}),
      ...(rest && rest.length > 0 ? { initialInput: rest } : {}),
    };
    // An implicit-TLS session has no STARTTLS; the shared config offers it only on starttls listeners.
    const s = new Session(sock, conn, lr.session, lr.hooks);
    this.sessions.add(s);
    this.emit('connection', { listener: lr.info.name, outcome: 'accepted' });
    if (this.logger.isLevelEnabled('info')) {
      this.logger.info(
        { tag: 'OPEN', session: s.id, client: clientTag(ip, port), listener: lr.info.name, ...(tlsInfo ? { tls: tlsInfo } : {}) },
        `session opened from ${clientTag(ip, port)}`,
      );
    }
    this.emit('connect', s);
    s.start();
  }

  // ---- reload and shutdown ---------------------------------------------------------------

  /** New sessions use the new config; open ones finish on the old. Changed listeners are re-bound. */
  async reload(loaded: LoadedConfig): Promise<void> {
    const rt = this.buildRuntime(loaded);
    const old = this.listenerRts;
    const next: ListenerRuntime[] = [];
    const key = (l: ListenerConfig) => `${l.address}|${l.port}|${l.tls}|${JSON.stringify(l.proxyProtocol ?? null)}`;
    for (const l of rt.config.listeners) {
      const pol = policyFor(rt.config, l);
      if (pol.storeData) await this.corpusFor(pol.storePath).init();
      // A listener bound to port 0 matches a new config naming the port it actually got.
      const same = old.find((o) => !next.includes(o) && (key(o.cfg) === key(l) || key({ ...o.cfg, port: o.info.port }) === key(l)));
      if (same) {
        same.cfg = l;
        same.policy = pol;
        same.hooks = this.hooksFor(pol, rt);
        same.trusted = l.proxyProtocol ? l.proxyProtocol.trusted.map(parseCidr) : null;
        same.info = { ...same.info, name: l.name ?? same.info.name };
        same.session = sessionConfig(same.info.name, l, pol, rt);
        // A reload re-reads certificates; implicit-TLS listeners take them for new handshakes.
        if (l.tls === 'implicit' && rt.tlsOptions) (same.server as TlsServer).setSecureContext(rt.tlsOptions);
        next.push(same);
      } else {
        next.push(await this.openListener(l, rt));
      }
    }
    for (const o of old) if (!next.includes(o)) o.server.close();
    const prevDns = this.runtime.dns;
    this.runtime = rt;
    this.listenerRts = next;
    if (prevDns && prevDns !== rt.dns) prevDns.stop();
    await rt.dns?.start();
  }

  /**
   * Stop accepting; tell clients 421 at their next command; after graceMs close the rest.
   * A message being stored finishes (or fails) before its session ends: never half.
   */
  async close(graceMs = this.runtime.config.shutdownGrace): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // net.Server.close() calls back only once every connection has ended: start it now,
    // wait for it after the sessions are gone.
    const stopped = Promise.all(this.listenerRts.map((l) => new Promise<void>((r) => l.server.close(() => r()))));
    for (const s of this.sessions) s.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
    for (const s of this.sessions) s.destroy('shutdown');
    while (this.sessions.size > 0) await new Promise((r) => setTimeout(r, 5));
    await stopped;
    this.runtime.dns?.stop();
    this.emit('close');
  }
}

export function createServer(opts: CreateServerOptions = {}): FakemxServer {
  const loaded = opts.loaded ?? loadConfig({ ...(opts.configFile ? { file: opts.configFile } : {}), ...(opts.config ? { overrides: opts.config } : {}) });
  return new FakemxServer(loaded, opts.logger);
}
