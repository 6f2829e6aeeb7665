// The library API: createServer() returns a FakemxServer (an EventEmitter of ServerEvents)
// that owns the listeners, the session table (maxSessions), the corpora and one Policy per
// listener. One connection's path: Listener (PROXY, TLS) -> accept() here -> Session (the
// engine) -> PolicySession (hooks) -> store -> Observer (log line, event, metrics).

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { storePathsInUse, type EffectiveListener } from './config/effective.js';
import { loadConfig, type LoadedConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { ListenerInfo, ServerEvents } from './events.js';
import { Listener, type Accepted } from './listeners.js';
import { silentLogger, type Logger } from './log/logger.js';
import { hostPort, prefixKey } from './net/ip.js';
import { Observer } from './observer.js';
import { matchAccess } from './policy/access.js';
import { installSalt } from './policy/auth.js';
import type { ZoneHealth } from './dnsbl/engine.js';
import { createDnsCheck, type DnsRuntime } from './dnsbl/runtime.js';
import { Policy } from './policy/index.js';
import { PerIpLimiter } from './policy/limits.js';
import { openStateStore, type StateStore } from './state/store.js';
import type { TlsInfo } from './smtp/hooks.js';
import { formatReply, replies } from './smtp/reply.js';
import { Session, type Connection, type SessionConfig } from './smtp/session.js';
import type { Corpus } from './store/corpus.js';
import { Stores } from './store/stores.js';
import { newId } from './util/id.js';
import { Roster } from './util/roster.js';

export interface CreateServerOptions {
  /** Config values (validated exactly like the file's); they win over the file. */
  config?: Record<string, unknown>;
  /** A config file to read. */
  configFile?: string;
  /** Where FAKEMX_* overrides are read from (default process.env); `{}` reads none, so a test's
   *  server is configured by what the test says, whatever its environment holds. */
  env?: NodeJS.ProcessEnv;
  /** An already loaded config (the daemon); config/configFile are then ignored. */
  loaded?: LoadedConfig;
  /** Logger; default: silent. */
  logger?: Logger;
}

export interface ListenOptions {
  /** Inherited listening sockets (systemd socket activation), matched by name then order. */
  fds?: { fd: number; name: string }[];
}

/** What a listener's sessions share under one config: rebuilt on reload, captured by each new session. */
interface Profile {
  eff: EffectiveListener;
  policy: Policy;
  session: SessionConfig;
}

/** What one loaded config turns into. */
interface Runtime {
  loaded: LoadedConfig;
  dns: DnsRuntime | null;
  /** The state store (one per daemon; kept across reloads that leave state.* alone), or null when nothing uses it. */
  state: StateStore | null;
  stateKey: string;
}

/** Where a session carries its place in the server's rosters (src/util/roster.ts). */
const IN_SERVER = Symbol('fakemx.server.session');
const LINGERING = Symbol('fakemx.server.lingering');

/** The engine's view of one listener (exported for bench/engine-sink.mjs, which runs the engine alone). */
export function sessionConfig(eff: EffectiveListener, loaded: LoadedConfig): SessionConfig {
  const p = eff.policy;
  return Object.freeze({
    listener: eff.name,
    hostName: p.hostName,
    receiveTimeout: p.receiveTimeout,
    maxLineLength: p.maxLineLength,
    maxPendingInput: p.maxPendingInput,
    maxDataSize: p.maxDataSize,
    hideSizeLimit: p.doTempFail,
    dataTimeout: p.dataTimeout,
    maxSessionTime: p.maxSessionTime,
    maxSmtpErrors: p.maxSmtpErrors,
    maxSmtpNoop: p.maxSmtpNoop,
    maxSmtpVrfy: p.maxSmtpVrfy,
    maxSmtpRcpt: p.maxSmtpRcpt,
    maxRcptOvershoot: p.maxRcptOvershoot,
    maxJunkCommands: p.maxJunkCommands,
    maxMessages: p.maxMessages,
    advertisePipelining: p.advertisePipelining,
    bannerTeaser: p.bannerTeaser,
    chunking: p.chunking,
    binaryMime: p.chunking && p.binaryMime,
    ...(p.auth.enabled
      ? { auth: { mechanisms: p.auth.cramMd5 ? (['PLAIN', 'LOGIN', 'CRAM-MD5'] as const) : (['PLAIN', 'LOGIN'] as const), plaintext: p.auth.allowPlaintext } }
      : {}),
    // An implicit-TLS session has no STARTTLS; only starttls listeners offer it.
    ...(eff.tls === 'starttls' && loaded.tls
      ? { startTls: { context: loaded.tls.context, handshakeTimeout: loaded.config.tls.handshakeTimeout } }
      : {}),
  });
}

export class FakemxServer extends EventEmitter<ServerEvents> {
  private runtime: Runtime;
  private readonly sessions = new Roster<Session>(IN_SERVER);
  /** Sessions in `sessions` that said their last word and wait only for the socket to close. */
  private readonly lingering = new Roster<Session>(LINGERING);
  private readonly perIp = new PerIpLimiter();
  /** The corpora in use, their store config and disk cap (store/stores.ts). */
  readonly stores: Stores;
  private readonly profiles = new Map<Listener, Profile>();
  private sockets: Listener[] = [];
  /** close()'s promise (set: the server is closing); a later call waits for the same shutdown. */
  private closed: Promise<void> | null = null;
  /** Resolves close() once the last session has gone. */
  private drained: (() => void) | null = null;
  /** Work left for when the sessions of an older config have ended (its state store's close). */
  private waiting: { pending: Set<Session>; fn: () => void }[] = [];
  readonly logger: Logger;
  private readonly observer: Observer;

  constructor(loaded: LoadedConfig, logger?: Logger) {
    super();
    this.logger = logger ?? silentLogger();
    this.observer = new Observer(this.logger, this);
    this.stores = new Stores(this.logger, { state: (ev) => this.emit('storeState', ev), pruned: (ev) => this.emit('storePruned', ev) });
    this.runtime = this.buildRuntime(loaded);
    // A throwing 'error' listener-less emit would crash the process; keep one.
    this.on('error', (e) => this.logger.error({ tag: 'ERROR', err: e.message }, 'server error'));
  }

  get config(): Config {
    return this.runtime.loaded.config;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  get listening(): ListenerInfo[] {
    return this.sockets.map((l) => l.info);
  }

  /** The state store in use (the CLI and tests read it), or null. */
  get state(): StateStore | null {
    return this.runtime.state;
  }

  /** /healthz: the state store's health, or null when none is open. */
  stateHealth(): { ok: boolean; note?: string } | null {
    return this.runtime.state?.health() ?? null;
  }

  /** The DNS list zones' health as the engine's own tests found it (the console's Caught page); [] without DNS lists. */
  dnsHealth(): ZoneHealth[] {
    return this.runtime.dns?.health() ?? [];
  }

  private buildRuntime(loaded: LoadedConfig): Runtime {
    const old = this.runtime as Runtime | undefined;
    const dns = createDnsCheck(loaded.config, this.logger, (ev) => this.emit('dnsQuery', ev), old?.dns ?? null);
    const { state, stateKey } = this.stateFor(loaded, old);
    return { loaded, dns, state, stateKey };
  }

  /**
   * The state store a config needs: with the redis backend always (fleet-wide per-IP leases),
   * else when a listener caches clients, greylists or has greytraps. The old one is kept while
   * state.* is unchanged.
   */
  private stateFor(loaded: LoadedConfig, old: Runtime | undefined): { state: StateStore | null; stateKey: string } {
    const cfg = loaded.config.state;
    const used = cfg.backend === 'redis' || loaded.listeners.some((l) => l.policy.cache.enabled || l.policy.greylist.enabled || l.policy.greylist.trapAddresses !== '');
    if (!used) return { state: null, stateKey: '' };
    const stateKey = JSON.stringify(cfg);
    if (old?.state && old.stateKey === stateKey) return { state: old.state, stateKey };
    const state = openStateStore(
      cfg,
      { logger: this.logger, onError: (op, reason) => this.emit('stateError', { op, reason }) },
    );
    return { state, stateKey };
  }

  private corpusFor(path: string): Corpus {
    return this.stores.corpus(path);
  }

  private profile(eff: EffectiveListener, rt: Runtime): Profile {
    const p = eff.policy;
    const lists = rt.loaded.lists;
    const access = p.accessList ? lists.access(p.accessList) : null;
    const policy = new Policy(p, {
      maxSessions: rt.loaded.config.maxSessions,
      active: () => this.sessions.size - this.lingering.size,
      perIp: this.perIp,
      ipKey: (ip) => prefixKey(ip, p.ipv6Prefix),
      access: access ? (ip) => matchAccess(access, ip) : null,
      domains: p.localDomains ? lists.domains(p.localDomains) : null,
      mailboxes: p.localMailboxes ? lists.mailboxes(p.localMailboxes) : null,
      corpus: p.storeData ? this.corpusFor(p.storePath) : null,
      dns: rt.dns ? rt.dns.forPolicy(p) : null,
      observer: this.observer,
      state: rt.state,
      stateOnError: rt.loaded.config.state.onError,
      // A fleet counts sessions per address together and shares DNS list verdicts whether or
      // not the client cache is on (issue 14, point 4).
      fleet: rt.state?.kind === 'redis',
      greylistAllow: p.greylist.allowList ? lists.greylistAllow(p.greylist.allowList) : null,
      traps: p.greylist.trapAddresses ? lists.mailboxes(p.greylist.trapAddresses) : null,
      ...(p.auth.enabled && p.auth.recordPasswords === 'sha256' ? { authSalt: installSalt(p.auth, rt.loaded.config.state.path) } : {}),
      closing: (s) => this.linger(s as Session),
      gone: (s) => this.sessionGone(s as Session),
    });
    return { eff, policy, session: sessionConfig(eff, rt.loaded) };
  }

  /** Make sure every corpus in use exists; at start, sweep what a killed process left. */
  private async initCorpora(rt: Runtime, atStart: boolean): Promise<void> {
    this.stores.configure(rt.loaded.config.store);
    for (const [path, removed] of await this.stores.init(storePathsInUse(rt.loaded.listeners))) {
      if (atStart && removed > 0) this.logger.warn({ tag: 'STALE_TEMP', store: path, removed }, 'removed temporaries left by an earlier crash');
    }
  }

  private newListener(eff: EffectiveListener, rt: Runtime): Listener {
    const l = new Listener(eff, rt.loaded.tls?.options, rt.loaded.config.tls.handshakeTimeout, {
      accept: (lst, a) => this.accept(lst, a),
      dropped: (lst, ip, port) => {
        this.observer.connectionVerdict('LIMIT', ip, port, { limit: 'maxConnections', listener: lst.info.name });
        this.emit('connection', { listener: lst.info.name, outcome: 'too_busy' });
      },
      refused: (lst, tag, ip, port, reason) => {
        this.observer.connectionVerdict(tag, ip, port, { listener: lst.info.name, reason });
        this.emit('connection', { listener: lst.info.name, outcome: tag === 'TLS_FAILED' ? 'tls_failed' : 'proxy_invalid' });
      },
      error: (e) => this.emit('error', e),
    }, rt.loaded.config.maxSessions);
    this.profiles.set(l, this.profile(eff, rt));
    return l;
  }

  // ---- listeners -----------------------------------------------------------------------

  async listen(opts: ListenOptions = {}): Promise<ListenerInfo[]> {
    const rt = this.runtime;
    await this.initCorpora(rt, true);
    const fds = [...(opts.fds ?? [])];
    for (const eff of rt.loaded.listeners) {
      const fdIdx = fds.findIndex((f) => f.name === eff.fdName);
      const fd = fdIdx >= 0 ? fds.splice(fdIdx, 1)[0] : fds.shift();
      const l = this.newListener(eff, rt);
      await l.listen(fd?.fd);
      if (l.info.name !== eff.name) this.profiles.set(l, this.profile(bound(eff, l), rt));
      this.sockets.push(l);
    }
    await rt.dns?.start();
    const infos = this.listening;
    this.emit('listening', infos);
    for (const i of infos) this.logListening(i);
    return infos;
  }

  private accept(l: Listener, a: Accepted): void {
    const prof = this.profiles.get(l)!;
    const { sock, ip, port } = a;
    const host = prof.eff.policy.hostName;
    if (this.closed) {
      sock.end(formatReply(replies.shuttingDown(host), true));
      return;
    }
    // A session that has written its last reply and only waits (at most LINGER_MS) for the
    // client's FIN holds no slot: a bot that keeps its refused connections open would fill
    // maxSessions with them (one address past maxSessionsPerIp locked every other client out).
    if (this.sessions.size - this.lingering.size >= this.config.maxSessions) {
      // FakeSMTP: beyond maxSessions, refuse at once (no banner delay).
      this.observer.connectionVerdict('LIMIT', ip, port, { limit: 'maxSessions', listener: l.info.name });
      this.emit('connection', { listener: l.info.name, outcome: 'too_busy' });
      sock.end(formatReply(replies.tooBusy(host), true));
      setTimeout(() => sock.destroy(), 2000).unref();
      return;
    }
    // Nagle is already off: the Listener's server sets noDelay on every accepted handle.
    const tls = tlsInfo(sock);
    const conn: Connection = { id: newId(), remoteAddress: ip, remotePort: port };
    if (tls) conn.tls = tls;
    if (a.rest && a.rest.length > 0) conn.initialInput = a.rest;
    const s = new Session(sock, conn, prof.session, prof.policy);
    this.sessions.add(s);
    this.emit('connection', { listener: l.info.name, outcome: 'accepted' });
    this.observer.open(s, l.info.name, tls);
    this.emit('connect', s);
    s.start();
  }

  /**
   * A session said its last word and waits (LINGER_MS at most) for the client's FIN without a
   * slot. At most maxSessions wait so, the oldest let go first: a flood of refused connections
   * kept open costs descriptors up to twice maxSessions, not its rate times LINGER_MS.
   */
  private linger(s: Session): void {
    this.lingering.add(s);
    if (this.lingering.size <= this.config.maxSessions) return;
    const oldest = this.lingering.first();
    if (!oldest) return;
    this.lingering.delete(oldest);
    oldest.hangUp();
  }

  private logListening(i: ListenerInfo): void {
    this.logger.info({ tag: 'LISTENING', ...i }, `listening on ${hostPort(i.address, i.port)} (${i.tls})`);
  }

  private sessionGone(s: Session): void {
    this.sessions.delete(s);
    this.lingering.delete(s);
    if (this.waiting.length > 0) {
      for (const w of this.waiting) w.pending.delete(s);
      for (const w of this.waiting.filter((x) => x.pending.size === 0)) w.fn();
      this.waiting = this.waiting.filter((x) => x.pending.size > 0);
    }
    if (this.sessions.size === 0) this.drained?.();
  }

  // ---- reload and shutdown ---------------------------------------------------------------

  /**
   * New sessions use the new config; open ones finish on the old (its state store is closed when
   * the last of them ends). All or nothing: new listeners are bound first and a failure closes
   * them again, so a refused file leaves the daemon exactly as it was. A listener keeps its
   * socket when its address and port stay (its name, profile, PROXY and certificates are
   * updated in place); a change of TLS mode on the same port closes the old socket and binds the
   * new one. A socket-activated listener (matched by its name) is never re-bound: its address
   * and port come from systemd, and a change of its TLS mode needs a restart.
   */
  async reload(loaded: LoadedConfig): Promise<void> {
    const cur = this.runtime;
    const rt = this.buildRuntime(loaded);
    const old = this.sockets;
    const taken = new Set<Listener>();
    const at = (e: EffectiveListener, port = e.port) => `${e.address}|${port}`;
    const samePlace = (o: Listener, e: EffectiveListener) => !o.inherited && (at(o.eff) === at(e) || at(o.eff, o.info.port) === at(e));
    const plan: { eff: EffectiveListener; keep?: Listener; replace?: Listener; made?: Listener }[] = [];
    const dropNew = () => {
      if (rt.state && rt.state !== cur.state) void rt.state.close();
      if (rt.dns && rt.dns !== cur.dns) rt.dns.stop();
    };
    for (const eff of loaded.listeners) {
      const inherited = old.find((o) => !taken.has(o) && o.inherited && eff.fdName !== undefined && o.eff.fdName === eff.fdName);
      if (inherited && inherited.eff.tls !== eff.tls) {
        dropNew();
        throw new Error(`listener ${eff.name}: its socket comes from systemd; a change of tls (${inherited.eff.tls} -> ${eff.tls}) needs a restart`);
      }
      const keep = inherited ?? old.find((o) => !taken.has(o) && samePlace(o, eff) && o.eff.tls === eff.tls);
      const replace = keep ? undefined : old.find((o) => !taken.has(o) && samePlace(o, eff));
      for (const o of [keep, replace]) if (o) taken.add(o);
      plan.push({ eff, ...(keep ? { keep } : {}), ...(replace ? { replace } : {}) });
    }
    await this.initCorpora(rt, false);
    const released: Listener[] = [];
    try {
      // New places first (nothing given up yet), then the TLS-mode changes in place.
      for (const p of [...plan.filter((x) => !x.keep && !x.replace), ...plan.filter((x) => x.replace)]) {
        if (p.replace) {
          await p.replace.release();
          released.push(p.replace);
        }
        p.made = this.newListener(p.eff, rt);
        await p.made.listen();
      }
    } catch (e) {
      for (const p of plan) {
        if (!p.made) continue;
        void p.made.close();
        this.profiles.delete(p.made);
      }
      // What was let go for a replacement takes its port back.
      for (const o of released) await o.listen().catch((err: Error) => this.logger.error({ tag: 'ERROR', listener: o.info.name, err: err.message }, 'could not take a listener back after a failed reload'));
      this.initCorpora(cur, false).catch(() => undefined);
      dropNew();
      throw e;
    }
    for (const p of plan) {
      if (p.keep) {
        p.keep.update(p.eff, loaded.tls?.options, loaded.config.maxSessions);
        this.profiles.set(p.keep, this.profile(bound(p.eff, p.keep), rt));
      } else if (p.made) {
        const info = p.made.info;
        if (info.name !== p.eff.name) this.profiles.set(p.made, this.profile(bound(p.eff, p.made), rt));
        this.logListening(info);
      }
    }
    for (const o of old) {
      if (!taken.has(o)) void o.close();
      if (!plan.some((p) => p.keep === o)) this.profiles.delete(o);
    }
    this.runtime = rt;
    this.sockets = plan.map((p) => (p.keep ?? p.made)!);
    if (cur.dns && cur.dns !== rt.dns) cur.dns.stop();
    // The old store serves the sessions of the old config until the last of them ends.
    if (cur.state && cur.state !== rt.state) {
      const prev = cur.state;
      this.afterOpenSessions(() => void prev.close());
    }
    await rt.dns?.start();
  }

  /** Runs `fn` once every session open now has ended (at once when there is none, or at close). */
  private afterOpenSessions(fn: () => void): void {
    const pending = new Set(this.sessions.toArray());
    if (pending.size === 0) return fn();
    this.waiting.push({ pending, fn });
  }

  /** Stops the listeners and ends the sessions (after graceMs); a second call resolves with the first. */
  close(graceMs = this.config.shutdownGrace): Promise<void> {
    return (this.closed ??= this.shutdown(graceMs));
  }

  private async shutdown(graceMs: number): Promise<void> {
    // net.Server.close() calls back only once every connection has ended: start it now,
    // wait for it after the sessions are gone.
    const stopped = Promise.all(this.sockets.map((l) => l.close()));
    const drained = new Promise<void>((r) => {
      this.drained = r;
      if (this.sessions.size === 0) r();
    });
    for (const s of this.sessions.toArray()) s.shutdown();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
    await Promise.race([drained, grace]);
    clearTimeout(timer);
    for (const s of this.sessions.toArray()) s.destroy('shutdown');
    await drained;
    await stopped;
    for (const w of this.waiting.splice(0)) w.fn();
    await this.runtime.state?.close();
    this.runtime.dns?.stop();
    this.stores.close();
    this.emit('close');
  }
}

/** The listener's settings under the name it has once bound (sessions and records carry it: the real address, not port 0). */
function bound(eff: EffectiveListener, l: Listener): EffectiveListener {
  return l.info.name === eff.name ? eff : { ...eff, name: l.info.name };
}

function tlsInfo(sock: Socket): TlsInfo | undefined {
  const t = sock as TLSSocket;
  if (!t.encrypted) return undefined;
  const servername = (t as { servername?: unknown }).servername;
  return {
    protocol: t.getProtocol() ?? 'unknown',
    cipher: t.getCipher()?.name ?? 'unknown',
    ...(typeof servername === 'string' ? { servername } : {}),
  };
}

export function createServer(opts: CreateServerOptions = {}): FakemxServer {
  const loaded = opts.loaded ?? loadConfig({ ...(opts.configFile ? { file: opts.configFile } : {}), ...(opts.config ? { overrides: opts.config } : {}), ...(opts.env ? { env: opts.env } : {}) });
  return new FakemxServer(loaded, opts.logger);
}
