// Listening sockets: plain TCP, implicit TLS (RFC 8314) and the PROXY protocol in front of
// either. A Listener turns each accepted connection into (socket, client address, early
// bytes) and hands it to the server; failures before that point are verdicts of their own.

import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { EffectiveListener } from './config/effective.js';
import type { ListenerInfo } from './events.js';
import { cidrContains, hostPort, normalizeIp, parseCidr, type Cidr } from './net/ip.js';
import { readProxyHeader } from './net/proxy-protocol.js';
import { tlsReason } from './util/tls-reason.js';

/** A connection ready for a session: the client as the PROXY header or the socket says. */
export interface Accepted {
  sock: Socket;
  ip: string;
  port: number;
  /** Bytes that came after a PROXY header, before the session took the socket. */
  rest?: Buffer;
}

export interface ListenerEvents {
  accept(l: Listener, a: Accepted): void;
  /** A connection closed at accept: the listener already holds its most (maxConnections). */
  dropped(l: Listener, ip: string, port: number): void;
  /** A connection that failed before it became a session (PROXY_INVALID, TLS_FAILED). */
  refused(l: Listener, tag: 'PROXY_INVALID' | 'TLS_FAILED', ip: string, port: number, reason: string): void;
  error(e: Error): void;
}

// A burst of new clients must not overflow the accept queue (Node's default is 511; the
// kernel caps this at net.core.somaxconn).
const LISTEN_BACKLOG = 4096;

/** Until a session takes the socket, an error is only the 'close' that follows (one shared function, no closure per socket). */
function ignoreError(): void {}

export class Listener {
  info: ListenerInfo;
  /** Bound to a descriptor handed over (systemd socket activation): never re-bound by fakemx. */
  inherited = false;
  private trusted: Cidr[] | null;
  private readonly server: NetServer;

  constructor(
    public eff: EffectiveListener,
    tls: SecureContextOptions | undefined,
    handshakeTimeout: number,
    private readonly on: ListenerEvents,
    maxSessions: number,
  ) {
    this.info = { name: eff.name, address: eff.address, port: eff.port, tls: eff.tls };
    this.trusted = eff.proxyProtocol ? eff.proxyProtocol.trusted.map(parseCidr) : null;
    if (eff.tls === 'implicit') {
      // RFC 8314: TLS from the first byte; the greeting follows the handshake.
      // Not half-open until the handshake is done: a client that sends its FIN before it is
      // let go at once, not held for tls.handshakeTimeout. Its session is half-open, as on a
      // plain listener (queued commands are still answered after the client's FIN).
      const ts = createTlsServer({ ...tls, handshakeTimeout, allowHalfOpen: false, noDelay: true });
      ts.on('secureConnection', (sock: TLSSocket) => {
        sock.allowHalfOpen = true;
        this.guard(sock);
      });
      ts.on('tlsClientError', (err, sock) => {
        this.on.refused(this, 'TLS_FAILED', normalizeIp(sock.remoteAddress ?? ''), sock.remotePort ?? 0, tlsReason(err));
        // Node reports a stalled or broken handshake but leaves the socket open: close it.
        sock.destroy();
      });
      this.server = ts;
    } else {
      // noDelay: Nagle off from accept, set by Node on the handle (no setNoDelay call per session).
      this.server = createNetServer({ allowHalfOpen: true, noDelay: true }, (sock) => this.guard(sock));
    }
    this.server.on('error', (e) => this.on.error(e));
    this.server.on('drop', (d?: { remoteAddress?: string; remotePort?: number }) => this.on.dropped(this, normalizeIp(d?.remoteAddress ?? ''), d?.remotePort ?? 0));
    this.limit(maxSessions);
  }

  /**
   * A TLS handshake or a PROXY header is waited for before there is a session, so maxSessions
   * does not hold those connections: idle ones to such a listener took a descriptor each for
   * tls.handshakeTimeout or the PROXY timeout, without bound, until the process ran out
   * (EMFILE) on every listener, the store and the admin port. Such a listener now holds at most
   * 3 x maxSessions connections (its sessions, the ones lingering after their last reply, as
   * many waiting for a handshake or header); Node closes one more at accept. A plain listener
   * answers every connection itself (421 past maxSessions) and needs no cap.
   */
  private limit(maxSessions: number): void {
    if (this.eff.tls === 'implicit' || this.eff.proxyProtocol) this.server.maxConnections = 3 * maxSessions;
  }

  /** Bind (or take an inherited descriptor); resolves with the address actually bound. */
  listen(fd?: number): Promise<ListenerInfo> {
    const server = this.server;
    return new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(e);
      server.once('error', onErr);
      const done = () => {
        server.off('error', onErr);
        const a = server.address() as AddressInfo;
        // A listener without a configured name is named by the address it got (port 0 became a port).
        this.info = { ...this.info, address: a.address, port: a.port, ...(this.eff.fdName === undefined ? { name: hostPort(a.address, a.port) } : {}) };
        resolve(this.info);
      };
      this.inherited = fd !== undefined;
      if (fd !== undefined) server.listen({ fd }, done);
      else server.listen({ host: this.eff.address, port: this.eff.port, ipv6Only: false, backlog: LISTEN_BACKLOG }, done);
    });
  }

  /** A reload that keeps this socket: new settings, new certificates for new handshakes. */
  update(eff: EffectiveListener, tls: SecureContextOptions | undefined, maxSessions: number): void {
    this.eff = eff;
    this.limit(maxSessions);
    this.trusted = eff.proxyProtocol ? eff.proxyProtocol.trusted.map(parseCidr) : null;
    this.info = { ...this.info, name: eff.fdName === undefined ? hostPort(this.info.address, this.info.port) : eff.name };
    if (eff.tls === 'implicit' && tls) (this.server as TlsServer).setSecureContext(tls);
  }

  /** Stop accepting; resolves when every connection it accepted has ended. */
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  /** Stop accepting and let the port go (the next loop turn closes the socket); connections stay. */
  async release(): Promise<void> {
    void this.close();
    await new Promise((r) => setImmediate(r));
  }

  private guard(sock: Socket): void {
    try {
      sock.on('error', ignoreError);
      if (this.trusted) this.proxied(sock, this.trusted);
      else this.on.accept(this, { sock, ip: normalizeIp(sock.remoteAddress ?? ''), port: sock.remotePort ?? 0 });
    } catch (e) {
      this.on.error(e instanceof Error ? e : new Error(String(e)));
      sock.destroy();
    }
  }

  /** PROXY protocol: only trusted peers, header within the timeout, else close. */
  private proxied(sock: Socket, trusted: Cidr[]): void {
    const peer = normalizeIp(sock.remoteAddress ?? '');
    const peerPort = sock.remotePort ?? 0;
    const bad = (reason: string) => {
      this.on.refused(this, 'PROXY_INVALID', peer, peerPort, reason);
      sock.destroy();
    };
    if (!trusted.some((c) => cidrContains(c, peer))) return bad('untrusted peer');
    readProxyHeader(sock, { timeoutMs: this.eff.proxyProtocol?.timeout ?? 5000 }).then(
      ({ header, rest }) => {
        if (sock.destroyed) return;
        // LOCAL / UNKNOWN: the connection is the proxy's own; keep the peer address.
        const src = header.command === 'PROXY' && header.source ? header.source : { address: peer, port: peerPort };
        try {
          this.on.accept(this, { sock, ip: normalizeIp(src.address), port: src.port, rest });
        } catch (e) {
          this.on.error(e instanceof Error ? e : new Error(String(e)));
          sock.destroy();
        }
      },
      (e: Error) => bad(e.message),
    );
  }
}
