// fakemx's own DNS client (it asks recursive resolvers, RFC 1034 §5.3.1) on dns-packet over node:dgram, TCP (node:net) for truncated answers:
// query(name, type) resolves with rcode, A/TXT answers with TTL and the negative TTL, or rejects
// with a DnsError. Spoofing defence: random IDs, a pool of source ports, strict answer matching.

import { randomInt } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createRequire } from 'node:module';
import { connect, isIP, type Socket as TcpSocket } from 'node:net';
import type * as DnsPacket from 'dns-packet';
import { Roster } from '../util/roster.js';
import { readResolvConf } from './resolv-conf.js';

export type QueryType = 'A' | 'TXT';

// dns-packet (~20 ms to import) is loaded by the first DnsClient: the config loader imports
// parseServer from here, and every `fakemx` command and every daemon without DNS lists would
// otherwise pay for a codec it never uses.
let dnsPacket: typeof DnsPacket;

export interface DnsServer {
  /** Address to send to (may carry an IPv6 zone). */
  address: string;
  /** Canonical form, compared with the source of answers. */
  canonical: string;
  port: number;
  family: 4 | 6;
}

export interface DnsRecord {
  type: QueryType;
  /** A: dotted quad; TXT: the record's strings joined (RFC 7208 §3.3 style). */
  data: string;
  ttl: number;
}

export interface DnsResponse {
  /** NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, ... */
  rcode: string;
  answers: DnsRecord[];
  /** RFC 2308 §5: min(SOA TTL, SOA MINIMUM) of the authority section, null if no SOA. */
  negativeTtl: number | null;
  /** "ip:port" of the server that answered. */
  server: string;
  tcp: boolean;
}

export type DnsErrorCode = 'timeout' | 'network' | 'closed' | 'overload' | 'bad_name';

export class DnsError extends Error {
  constructor(readonly code: DnsErrorCode, message: string) {
    super(message);
    this.name = 'DnsError';
  }
}

export interface DnsClientOptions {
  /** "ip", "ip:port", "[v6]:port"; empty = nameservers of resolvConf. */
  servers: string[];
  /** Milliseconds per try. */
  timeout: number;
  /** Extra tries, each on the next server. */
  retries: number;
  /** UDP source sockets per address family (default 4). */
  sockets?: number;
  /** Most queries outstanding at once (default 10000); more reject with 'overload'. */
  maxOutstanding?: number;
  /**
   * Most queries on the wire at once per UDP socket (default 128); more wait their turn in
   * order. A burst (1000 new clients x 5 zones) would otherwise return more answers at once
   * than a socket's receive buffer holds, and the kernel drops the rest.
   */
  windowPerSocket?: number;
  resolvConf?: string;
}

export interface DnsClientStats {
  queries: number;
  sent: number;
  answers: number;
  /** Datagrams that matched no outstanding query (wrong ID, question, server or port). */
  dropped: number;
  timeouts: number;
  tcp: number;
}

/** A DNS client as the list checker sees it (tests may substitute one). */
export interface Resolver {
  query(name: string, type: QueryType): Promise<DnsResponse>;
  close(): void;
}

const DEFAULT_PORT = 53;
const MAX_TCP_MESSAGE = 65535; // RFC 1035 §4.2.2: two-octet length prefix
const ID_TRIES = 16;

function canonicalIp(addr: string): string {
  if (addr.includes('%')) return addr.toLowerCase();
  if (isIP(addr) !== 6) return addr;
  // WHATWG URL serialises IPv6 hosts in RFC 5952 form, as Node reports sources.
  return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
}

/** "192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]:5353". */
export function parseServer(spec: string): DnsServer {
  const s = spec.trim();
  let host = s;
  let port = DEFAULT_PORT;
  const br = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (br) {
    host = br[1]!;
    if (br[2] !== undefined) port = Number(br[2]);
  } else if (s.split(':').length === 2) {
    const [h, p] = s.split(':') as [string, string];
    host = h;
    if (!/^\d+$/.test(p)) throw new Error(`bad port in DNS server "${spec}"`);
    port = Number(p);
  }
  const fam = isIP(host.split('%')[0]!);
  if (fam === 0) throw new Error(`not an IP address: DNS server "${spec}"`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port out of range in DNS server "${spec}"`);
  return { address: host, canonical: canonicalIp(host), port, family: fam === 6 ? 6 : 4 };
}

function serverTag(s: DnsServer): string {
  return s.family === 6 ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`;
}

function txtString(data: unknown): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (typeof data === 'string') return data;
  if (Array.isArray(data)) return data.map(txtString).join('');
  return '';
}

interface Attempt {
  query: Query;
  sock: UdpSocket;
  id: number;
  server: DnsServer;
}

/** Where a query carries its place among the outstanding ones. */
const ACTIVE_QUERY = Symbol('fakemx.dns.active');

interface Query {
  name: string;
  lname: string;
  type: QueryType;
  attempts: Attempt[];
  tries: number;
  timer: NodeJS.Timeout | null;
  tcp: TcpSocket | null;
  done: boolean;
  /** Holds a place in the send window. */
  running: boolean;
  lastResponse: DnsResponse | null;
  lastError: DnsError | null;
  resolve(r: DnsResponse): void;
  reject(e: DnsError): void;
}

interface PooledSocket {
  sock: UdpSocket;
  pending: Map<number, Attempt>;
  ready: Promise<void>;
}

export class DnsClient implements Resolver {
  readonly servers: DnsServer[];
  readonly stats: DnsClientStats = { queries: 0, sent: 0, answers: 0, dropped: 0, timeouts: 0, tcp: 0 };
  private readonly timeout: number;
  private readonly maxTries: number;
  private readonly poolSize: number;
  private readonly maxOutstanding: number;
  private readonly pools: { 4: PooledSocket[]; 6: PooledSocket[] } = { 4: [], 6: [] };
  /** Objects that come and go per query sit in a roster (src/util/roster.ts; docs/architecture.md). */
  private readonly active = new Roster<Query>(ACTIVE_QUERY);
  private readonly window: number;
  private running = 0;
  private waiting: Query[] = [];
  private waitHead = 0;
  private closed = false;

  constructor(opts: DnsClientOptions) {
    dnsPacket ??= createRequire(import.meta.url)('dns-packet') as typeof DnsPacket;
    const specs = opts.servers.length > 0 ? opts.servers : readResolvConf(opts.resolvConf);
    this.servers = specs.map(parseServer);
    this.timeout = Math.max(1, opts.timeout);
    this.maxTries = 1 + Math.max(0, opts.retries);
    this.poolSize = Math.max(1, Math.min(64, opts.sockets ?? 4));
    this.maxOutstanding = Math.max(1, opts.maxOutstanding ?? 10_000);
    this.window = this.poolSize * Math.max(1, opts.windowPerSocket ?? 128);
  }

  get outstanding(): number {
    return this.active.size;
  }

  query(name: string, type: QueryType): Promise<DnsResponse> {
    const qname = name.replace(/\.$/, '');
    if (this.closed) return Promise.reject(new DnsError('closed', 'resolver closed'));
    if (qname.length === 0 || qname.length > 253 || qname.split('.').some((l) => l.length === 0 || l.length > 63)) {
      return Promise.reject(new DnsError('bad_name', `invalid query name "${name}"`));
    }
    if (this.active.size >= this.maxOutstanding) return Promise.reject(new DnsError('overload', 'too many outstanding DNS queries'));
    this.stats.queries++;
    return new Promise<DnsResponse>((resolve, reject) => {
      const q: Query = {
        name: qname, lname: qname.toLowerCase(), type, attempts: [], tries: 0, timer: null, tcp: null, done: false,
        running: false, lastResponse: null, lastError: null, resolve, reject,
      };
      this.active.add(q);
      if (this.running < this.window) this.begin(q);
      else this.waiting.push(q);
    });
  }

  /** Stops every socket and timer; outstanding queries reject with 'closed'. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const q of this.active.toArray()) this.finish(q, new DnsError('closed', 'resolver closed'));
    for (const fam of [4, 6] as const) {
      for (const p of this.pools[fam]) {
        try {
          p.sock.close();
        } catch {
          // already closed
        }
      }
      this.pools[fam] = [];
    }
  }

  // ---- query state machine ---------------------------------------------------------

  /** Runs a step from a socket or timer callback: nothing may escape it; a failure ends the query. */
  private guard(q: Query, step: () => void): void {
    try {
      step();
    } catch (e) {
      this.finish(q, new DnsError('network', e instanceof Error ? e.message : String(e)));
    }
  }

  private nextTry(q: Query): void {
    if (q.done) return;
    if (q.timer) clearTimeout(q.timer);
    q.timer = null;
    if (q.tcp) {
      q.tcp.destroy();
      q.tcp = null;
    }
    if (q.tries >= this.maxTries || this.servers.length === 0) {
      // A SERVFAIL/REFUSED from some server beats a later timeout: report what was said.
      this.finish(q, q.lastResponse ?? q.lastError ?? new DnsError('timeout', `no answer for ${q.name}`));
      return;
    }
    const server = this.servers[q.tries % this.servers.length]!;
    q.tries++;
    q.timer = setTimeout(() => this.guard(q, () => {
      this.stats.timeouts++;
      q.lastError = new DnsError('timeout', `no answer for ${q.name} from ${serverTag(server)}`);
      this.nextTry(q);
    }), this.timeout);
    let pooled: PooledSocket;
    try {
      pooled = this.pick(server.family);
    } catch (e) {
      q.lastError = new DnsError('network', e instanceof Error ? e.message : String(e));
      setImmediate(() => this.guard(q, () => this.nextTry(q)));
      return;
    }
    let id = -1;
    for (let i = 0; i < ID_TRIES; i++) {
      const cand = randomInt(0, 65536);
      if (!pooled.pending.has(cand)) {
        id = cand;
        break;
      }
    }
    if (id < 0) {
      q.lastError = new DnsError('overload', 'no free query ID');
      setImmediate(() => this.guard(q, () => this.nextTry(q)));
      return;
    }
    const a: Attempt = { query: q, sock: pooled.sock, id, server };
    pooled.pending.set(id, a);
    q.attempts.push(a);
    const msg = dnsPacket.encode({
      type: 'query',
      id,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: q.type, name: q.name, class: 'IN' }],
    });
    pooled.ready.then(
      () => this.guard(q, () => {
        if (q.done || this.closed) return;
        pooled.sock.send(msg, server.port, server.address, (err) => this.guard(q, () => {
          if (err && !q.done) {
            q.lastError = new DnsError('network', err.message);
            this.nextTry(q);
          } else if (!err) this.stats.sent++;
        }));
      }),
      () => this.guard(q, () => {
        q.lastError = new DnsError('network', 'socket bind failed');
        this.nextTry(q);
      }),
    );
  }

  private begin(q: Query): void {
    q.running = true;
    this.running++;
    this.nextTry(q);
  }

  /** A place in the window came free: start the oldest waiting query. */
  private release(): void {
    this.running--;
    while (this.waitHead < this.waiting.length && this.running < this.window) {
      const q = this.waiting[this.waitHead++]!;
      if (!q.done) this.begin(q);
    }
    if (this.waitHead > 1024 && this.waitHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitHead);
      this.waitHead = 0;
    }
  }

  private finish(q: Query, r: DnsResponse | DnsError): void {
    if (q.done) return;
    q.done = true;
    if (q.timer) clearTimeout(q.timer);
    q.timer = null;
    if (q.tcp) q.tcp.destroy();
    q.tcp = null;
    for (const a of q.attempts) {
      const p = this.poolOf(a.sock);
      if (p && p.pending.get(a.id) === a) p.pending.delete(a.id);
    }
    this.active.delete(q);
    if (q.running) {
      q.running = false;
      // Settle first: the next query may start (and even fail) synchronously.
      if (r instanceof DnsError) q.reject(r);
      else q.resolve(r);
      if (!this.closed) this.release();
      return;
    }
    if (r instanceof DnsError) q.reject(r);
    else q.resolve(r);
  }

  private poolOf(sock: UdpSocket): PooledSocket | undefined {
    return this.pools[4].find((p) => p.sock === sock) ?? this.pools[6].find((p) => p.sock === sock);
  }

  /** A random socket of the family's pool, opening one while the pool is short. */
  private pick(family: 4 | 6): PooledSocket {
    const pool = this.pools[family];
    if (pool.length < this.poolSize) {
      const p = this.open(family);
      pool.push(p);
      return p;
    }
    return pool[randomInt(0, pool.length)]!;
  }

  private open(family: 4 | 6): PooledSocket {
    // A larger receive buffer where the kernel allows it (capped by net.core.rmem_max).
    const sock = createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: 1 << 20 });
    const pending = new Map<number, Attempt>();
    const p: PooledSocket = { sock, pending, ready: Promise.resolve() };
    p.ready = new Promise<void>((resolve, reject) => {
      sock.once('listening', () => resolve());
      sock.once('error', reject);
    });
    // Port 0: the kernel picks a random ephemeral source port per socket.
    sock.bind({ port: 0, address: family === 6 ? '::' : '0.0.0.0' });
    sock.unref();
    p.ready.catch(() => undefined);
    sock.on('error', () => {
      // A broken socket leaves the pool; its queries time out and move on.
      const pool = this.pools[family];
      const i = pool.indexOf(p);
      if (i >= 0) pool.splice(i, 1);
      try {
        sock.close();
      } catch {
        // already closed
      }
    });
    sock.on('message', (msg, rinfo) => {
      try {
        this.onDatagram(p, msg, rinfo);
      } catch {
        this.stats.dropped++;
      }
    });
    return p;
  }

  private onDatagram(p: PooledSocket, msg: Buffer, rinfo: RemoteInfo): void {
    if (msg.length < 12) {
      this.stats.dropped++;
      return;
    }
    const a = p.pending.get(msg.readUInt16BE(0));
    if (!a || a.query.done || canonicalIp(rinfo.address) !== a.server.canonical || rinfo.port !== a.server.port) {
      this.stats.dropped++;
      return;
    }
    let pkt: DnsPacket.DecodedPacket;
    try {
      pkt = dnsPacket.decode(msg);
    } catch {
      this.stats.dropped++;
      return;
    }
    if (!this.matches(a.query, pkt)) {
      this.stats.dropped++;
      return;
    }
    this.stats.answers++;
    const q = a.query;
    if (pkt.flag_tc) {
      // RFC 1035 §4.2.1 / RFC 7766 §5: a truncated UDP answer is retried over TCP.
      if (!q.tcp) this.tryTcp(q, a.server);
      return;
    }
    this.accept(q, pkt, a.server, false);
  }

  private matches(q: Query, pkt: DnsPacket.DecodedPacket): boolean {
    if (!pkt.flag_qr) return false;
    const qs = pkt.questions ?? [];
    if (qs.length !== 1) return false;
    const qq = qs[0]!;
    return qq.name.toLowerCase() === q.lname && qq.type === q.type && (qq.class ?? 'IN') === 'IN';
  }

  private accept(q: Query, pkt: DnsPacket.DecodedPacket, server: DnsServer, tcp: boolean): void {
    const rcode = (pkt as DnsPacket.DecodedPacket & { rcode?: string }).rcode ?? 'NOERROR';
    const resp: DnsResponse = { rcode, answers: extractAnswers(q, pkt), negativeTtl: negativeTtl(pkt), server: serverTag(server), tcp };
    if ((rcode === 'SERVFAIL' || rcode === 'REFUSED') && q.tries < this.maxTries) {
      // Like the C library: a server that cannot answer is skipped for the next one.
      q.lastResponse = resp;
      this.nextTry(q);
      return;
    }
    this.finish(q, resp);
  }

  private tryTcp(q: Query, server: DnsServer): void {
    if (q.timer) clearTimeout(q.timer);
    // The TCP exchange gets a fresh per-try timeout.
    q.timer = setTimeout(() => this.guard(q, () => {
      this.stats.timeouts++;
      q.lastError = new DnsError('timeout', `no TCP answer for ${q.name} from ${serverTag(server)}`);
      this.nextTry(q);
    }), this.timeout);
    this.stats.tcp++;
    const id = randomInt(0, 65536);
    const sock = connect({ host: server.address, port: server.port });
    q.tcp = sock;
    let buf = Buffer.alloc(0);
    const fail = (why: string) => {
      if (q.tcp !== sock || q.done) return;
      q.tcp = null;
      sock.destroy();
      q.lastError = new DnsError('network', `TCP ${serverTag(server)}: ${why}`);
      this.nextTry(q);
    };
    sock.on('error', (e) => this.guard(q, () => fail(e.message)));
    sock.on('close', () => this.guard(q, () => fail('closed')));
    sock.on('connect', () => this.guard(q, () => {
      sock.write(dnsPacket.streamEncode({
        type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: q.type, name: q.name, class: 'IN' }],
      }));
    }));
    sock.on('data', (chunk: Buffer) => {
      try {
        if (buf.length + chunk.length > MAX_TCP_MESSAGE + 2) return fail('answer too long');
        buf = Buffer.concat([buf, chunk]);
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length < len + 2) return;
        const pkt = dnsPacket.decode(buf.subarray(2, 2 + len));
        if (pkt.id !== id || !this.matches(q, pkt)) {
          this.stats.dropped++;
          return fail('mismatched answer');
        }
        this.stats.answers++;
        q.tcp = null;
        sock.destroy();
        this.accept(q, pkt, server, true);
      } catch (e) {
        fail(e instanceof Error ? e.message : String(e));
      }
    });
  }
}

/** A and TXT records of the question's type, following a CNAME chain inside the answer. */
function extractAnswers(q: Query, pkt: DnsPacket.DecodedPacket): DnsRecord[] {
  const names = new Set([q.lname]);
  const out: DnsRecord[] = [];
  for (const rr of pkt.answers ?? []) {
    const owner = rr.name.toLowerCase();
    if (!names.has(owner)) continue;
    const ttl = 'ttl' in rr && typeof rr.ttl === 'number' ? rr.ttl : 0;
    if (rr.type === 'CNAME' && typeof rr.data === 'string') names.add(rr.data.toLowerCase());
    else if (rr.type === 'A' && q.type === 'A' && typeof rr.data === 'string') out.push({ type: 'A', data: rr.data, ttl });
    else if (rr.type === 'TXT' && q.type === 'TXT') out.push({ type: 'TXT', data: txtString(rr.data), ttl });
    if (out.length >= 64) break; // bound what one answer may put in memory and logs
  }
  return out;
}

function negativeTtl(pkt: DnsPacket.DecodedPacket): number | null {
  for (const rr of pkt.authorities ?? []) {
    if (rr.type !== 'SOA') continue;
    const min = rr.data.minimum ?? 0;
    const ttl = typeof rr.ttl === 'number' ? rr.ttl : min;
    return Math.min(ttl, min);
  }
  return null;
}
