// In-process authoritative-ish DNS server for tests, on dns-packet over UDP and TCP on
// 127.0.0.1 (one random port for both). Scriptable per name and type: answers with TTL,
// NXDOMAIN with SOA, SERVFAIL, silence, TC bit, delay, forged answers (wrong ID, port,
// question or QR bit, or records of another owner).

import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';

export type ForgeKind = 'id' | 'port' | 'name' | 'type' | 'qr' | 'owner';

export interface Script {
  /** A records (dotted quads). */
  a?: string[];
  /** TXT strings, one record each. */
  txt?: string[];
  /** TTL of the answers (default 300). */
  ttl?: number;
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' | 'FORMERR';
  /** SOA in the authority section (default for NXDOMAIN / empty: ttl 300, minimum 120). */
  soa?: { ttl: number; minimum: number } | null;
  /** Never answer. */
  drop?: boolean;
  /** Answer over UDP with TC set and no answers; TCP gets the full answer. */
  tc?: boolean;
  /** Milliseconds before answering. */
  delayMs?: number;
  /**
   * Send a forged listed answer first: with a wrong ID, from another port, for another
   * question name or type, without the QR (response) bit, or right in all of those but with
   * its A records owned by another name.
   */
  forge?: { kind: ForgeKind; a: string[] };
}

export interface SeenQuery {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
  id: number;
  /** Client source port. */
  port: number;
}

const RCODES: Record<NonNullable<Script['rcode']>, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 };

export class TestDnsServer {
  readonly queries: SeenQuery[] = [];
  port = 0;
  private udp!: UdpSocket;
  private forger!: UdpSocket;
  private tcp!: Server;
  private readonly rules = new Map<string, Script>();
  private readonly zones = new Map<string, Script>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly conns = new Set<Socket>();

  /** Script a name (any type, or one type). */
  set(name: string, script: Script, type?: 'A' | 'TXT'): this {
    this.rules.set(`${name.toLowerCase()}|${type ?? '*'}`, script);
    return this;
  }

  /** Default for every name at or under the zone (default of defaults: NXDOMAIN with SOA). */
  zone(zone: string, script: Script): this {
    this.zones.set(zone.toLowerCase(), script);
    return this;
  }

  /** Queries seen for a name (optionally one type). */
  count(name: string, type?: string): number {
    return this.queries.filter((q) => q.name === name.toLowerCase() && (!type || q.type === type)).length;
  }

  reset(): void {
    this.queries.length = 0;
    this.rules.clear();
    this.zones.clear();
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      this.udp = createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        this.udp.once('error', reject);
        this.udp.bind(0, '127.0.0.1', () => resolve());
      });
      this.port = this.udp.address().port;
      this.tcp = createServer((s) => this.onTcp(s));
      const ok = await new Promise<boolean>((resolve) => {
        this.tcp.once('error', () => resolve(false));
        this.tcp.listen(this.port, '127.0.0.1', () => resolve(true));
      });
      if (ok) break;
      this.udp.close();
      if (attempt === 19) throw new Error('no free port for UDP and TCP');
    }
    this.udp.on('message', (m, r) => this.onUdp(m, r));
    this.forger = createSocket('udp4');
    await new Promise<void>((resolve) => this.forger.bind(0, '127.0.0.1', () => resolve()));
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.conns) c.destroy();
    this.udp.close();
    this.forger.close();
    await new Promise<void>((r) => this.tcp.close(() => r()));
  }

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) return fn();
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private scriptFor(name: string, type: string): Script {
    const exact = this.rules.get(`${name}|${type}`) ?? this.rules.get(`${name}|*`);
    if (exact) return exact;
    let best: [string, Script] | undefined;
    for (const [z, s] of this.zones) {
      if ((name === z || name.endsWith(`.${z}`)) && (!best || z.length > best[0].length)) best = [z, s];
    }
    return best?.[1] ?? { rcode: 'NXDOMAIN' };
  }

  private answer(q: dnsPacket.DecodedPacket, script: Script, opts: { truncate: boolean; forged?: string[]; forge?: ForgeKind }): Buffer {
    const asked = q.questions![0]!;
    const question =
      opts.forge === 'name' ? { ...asked, name: `x${asked.name}` } : opts.forge === 'type' ? { ...asked, type: asked.type === 'A' ? ('TXT' as const) : ('A' as const) } : asked;
    const owner = opts.forge === 'owner' ? `other.${question.name}` : question.name;
    const ttl = script.ttl ?? 300;
    const a = opts.forged ?? script.a ?? [];
    const answers: dnsPacket.Answer[] = [];
    if (!opts.truncate) {
      if (question.type === 'A' || opts.forge === 'type') for (const ip of a) answers.push({ type: 'A', name: owner, ttl, data: ip });
      if (question.type === 'TXT' && !opts.forged) for (const t of script.txt ?? []) answers.push({ type: 'TXT', name: question.name, ttl, data: t });
    }
    const rcode = opts.forged ? 'NOERROR' : (script.rcode ?? (answers.length > 0 || (script.a?.length ?? 0) > 0 || (script.txt?.length ?? 0) > 0 ? 'NOERROR' : 'NXDOMAIN'));
    const soa = script.soa === undefined ? { ttl: 300, minimum: 120 } : script.soa;
    const authorities: dnsPacket.Answer[] =
      answers.length === 0 && !opts.truncate && soa && (rcode === 'NXDOMAIN' || rcode === 'NOERROR')
        ? [{ type: 'SOA', name: question.name.split('.').slice(-2).join('.'), ttl: soa.ttl, data: { mname: 'ns.test', rname: 'hostmaster.test', serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: soa.minimum } }]
        : [];
    return dnsPacket.encode({
      type: opts.forge === 'qr' ? 'query' : 'response',
      id: q.id ?? 0,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (opts.truncate ? dnsPacket.TRUNCATED_RESPONSE : 0) | RCODES[rcode],
      questions: [question],
      answers,
      authorities,
    });
  }

  private parse(msg: Buffer): dnsPacket.DecodedPacket | null {
    try {
      const q = dnsPacket.decode(msg);
      return q.questions && q.questions.length === 1 ? q : null;
    } catch {
      return null;
    }
  }

  private onUdp(msg: Buffer, r: RemoteInfo): void {
    const q = this.parse(msg);
    if (!q) return;
    const question = q.questions![0]!;
    const name = question.name.toLowerCase();
    this.queries.push({ name, type: question.type, transport: 'udp', id: q.id ?? 0, port: r.port });
    const s = this.scriptFor(name, question.type);
    if (s.drop) return;
    if (s.forge) {
      const forged = this.answer(q, s, { truncate: false, forged: s.forge.a, forge: s.forge.kind });
      if (s.forge.kind === 'id') forged.writeUInt16BE(((q.id ?? 0) + 1) & 0xffff, 0);
      (s.forge.kind === 'port' ? this.forger : this.udp).send(forged, r.port, r.address);
    }
    const reply = this.answer(q, s, { truncate: s.tc === true });
    this.later(s.delayMs ?? 0, () => this.udp.send(reply, r.port, r.address));
  }

  private onTcp(sock: Socket): void {
    this.conns.add(sock);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= buf.readUInt16BE(0) + 2) {
        const len = buf.readUInt16BE(0);
        const q = this.parse(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (!q) continue;
        const question = q.questions![0]!;
        const name = question.name.toLowerCase();
        this.queries.push({ name, type: question.type, transport: 'tcp', id: q.id ?? 0, port: sock.remotePort ?? 0 });
        const s = this.scriptFor(name, question.type);
        if (s.drop) continue;
        const reply = this.answer(q, s, { truncate: false });
        const framed = Buffer.concat([Buffer.from([reply.length >> 8, reply.length & 0xff]), reply]);
        this.later(s.delayMs ?? 0, () => {
          if (!sock.destroyed) sock.write(framed);
        });
      }
    });
  }
}

export async function startDnsServer(): Promise<TestDnsServer> {
  const s = new TestDnsServer();
  await s.start();
  return s;
}
