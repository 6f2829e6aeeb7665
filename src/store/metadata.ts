// The metadata record stored beside each message as <id>.json (same directory, same id).
// It is the machine-readable twin of the trace headers: `fakemx report`, the webhook and
// research tools read it. Bump `version` on any incompatible change.

import type { SessionInfo, TlsInfo } from '../smtp/hooks.js';

/** The session facts the trace headers and the record are made from. */
export interface TraceInfo {
  hostName: string;
  sessionId: string;
  clientIp: string;
  clientPort: number;
  helo: string | undefined;
  esmtp: boolean;
  tls: boolean;
  smtputf8: boolean;
  mailFrom: string;
  rcptTo: string[];
}

export interface VerdictRecord {
  /** Stable upper-case tag: PREGREET, PIPELINING, TARPIT, TEMPFAIL, LIMIT, DNSBL, DNSWL... */
  tag: string;
  /** Milliseconds since the session opened. */
  atMs: number;
  [detail: string]: unknown;
}

export interface DnsZoneResult {
  zone: string;
  /** A records returned (127.0.0.x), empty when not listed. */
  answers: string[];
  /** Whether the filter matched and the weight counted. */
  matched: boolean;
  weight: number;
  txt?: string[];
  error?: string;
  ms?: number;
  /** Seconds the answer was good for (RFC 2308 §5 negative TTL when not listed); absent on errors and in older records. */
  ttl?: number;
  /** An allow list (rwlProviders): its listing vouches for the client. Absent for block lists and in older records. */
  allow?: true;
}

export interface DnsListResult {
  score: number;
  listed: boolean;
  allowed: boolean;
  zones: DnsZoneResult[];
}

export interface MessageMetadata {
  version: 1;
  id: string;
  /** Path of the .eml relative to storePath. */
  file: string;
  receivedAt: string;
  session: string;
  listener: string;
  client: { ip: string; port: number; helo: string | null; esmtp: boolean };
  server: { ip: string; port: number; hostName: string };
  tls: TlsInfo | null;
  envelope: {
    mailFrom: string;
    rcptTo: string[];
    declaredSize: number | null;
    body: '7BIT' | '8BITMIME' | 'BINARYMIME' | null;
    smtputf8: boolean;
  };
  sizes: { body: number; headers: number; file: number };
  timings: { sessionOpenedAt: string; dataStartedAt: string; dataEndedAt: string; dataMs: number };
  verdicts: VerdictRecord[];
  /** Verdicts the session reached beyond the first 100 it keeps (logged, not listed here); absent when none. */
  verdictsOmitted?: number;
  dns: DnsListResult | null;
  tempfailed: boolean;
  /** How the body came: DATA, or BDAT chunks (RFC 3030) and how many (absent in records before it was kept). */
  transfer?: 'DATA' | 'BDAT';
  chunks?: number;
  /** store.dedupe: SHA-256 (hex) of the body after the trace headers. */
  bodySha256?: string;
  /** store.dedupe: later arrivals of the same body, folded into this (the first) message. */
  duplicates?: Duplicates;
}

/** One later arrival of a body already stored (store.dedupe). */
export interface Arrival {
  /** Its own message id (logs, reply). */
  id: string;
  receivedAt: string;
  session: string;
  listener: string;
  client: { ip: string; port: number; helo: string | null };
  envelope: { mailFrom: string; rcptTo: string[] };
  tls: string | null;
  /** It got the tempfail after the final dot (doTempFail), as the first copy did; absent otherwise and in older records. */
  tempfailed?: true;
}

export interface Duplicates {
  /** Later arrivals in all (the first message not counted). */
  count: number;
  lastAt: string;
  /** The first MAX_ARRIVALS of them in full; `count` goes on past it. */
  arrivals: Arrival[];
}

/** Arrivals kept in full per message; past it only count and lastAt grow. */
export const MAX_ARRIVALS = 100;

/** Fold later arrivals into a record (the live store and the crash recovery use this one function). */
export function addArrivals(m: MessageMetadata, arrivals: readonly Arrival[]): MessageMetadata {
  if (arrivals.length === 0) return m;
  const d: Duplicates = m.duplicates ? { ...m.duplicates, arrivals: [...m.duplicates.arrivals] } : { count: 0, lastAt: '', arrivals: [] };
  for (const a of arrivals) {
    d.count++;
    d.lastAt = a.receivedAt;
    if (d.arrivals.length < MAX_ARRIVALS) d.arrivals.push(a);
  }
  return { ...m, duplicates: d };
}

/** The arrival record of a message found to be a duplicate. */
export function arrivalOf(id: string, m: Omit<MessageMetadata, 'id' | 'file' | 'sizes'>): Arrival {
  return {
    id,
    receivedAt: m.receivedAt,
    session: m.session,
    listener: m.listener,
    client: { ip: m.client.ip, port: m.client.port, helo: m.client.helo },
    envelope: { mailFrom: m.envelope.mailFrom, rcptTo: m.envelope.rcptTo },
    tls: m.tls ? m.tls.protocol : null,
    ...(m.tempfailed ? { tempfailed: true as const } : {}),
  };
}

/** What the policy knows of a message that the session does not: its verdicts so far, the DNS answer, the tempfail. */
export interface PolicyFacts {
  verdicts: readonly VerdictRecord[];
  /** Verdicts the session reached past those it keeps (policy MAX_SESSION_VERDICTS); 0 or absent: none. */
  verdictsOmitted?: number;
  dns: DnsListResult | null;
  tempfailed: boolean;
}

/** The trace headers' input, from the session. */
export function traceInfo(s: SessionInfo, hostName: string): TraceInfo {
  return {
    hostName,
    sessionId: s.id,
    clientIp: s.remoteAddress,
    clientPort: s.remotePort,
    helo: s.helo,
    esmtp: s.esmtp,
    tls: s.tls !== undefined,
    smtputf8: s.mailParams?.smtputf8 === true,
    mailFrom: s.mailFrom?.address ?? '',
    rcptTo: s.rcptTo.map((r) => r.address),
  };
}

/** The record, from the session and the policy's facts; the writer adds id, file and sizes. */
export function buildMetadata(
  s: SessionInfo,
  hostName: string,
  dataStartedAt: Date,
  facts: PolicyFacts,
  ended = new Date(),
): Omit<MessageMetadata, 'id' | 'file' | 'sizes'> {
  return {
    version: 1,
    receivedAt: ended.toISOString(),
    session: s.id,
    listener: s.listener,
    client: { ip: s.remoteAddress, port: s.remotePort, helo: s.helo ?? null, esmtp: s.esmtp },
    server: { ip: s.localAddress, port: s.localPort, hostName },
    tls: s.tls ?? null,
    envelope: {
      mailFrom: s.mailFrom?.address ?? '',
      rcptTo: s.rcptTo.map((r) => r.address),
      declaredSize: s.mailParams?.size ?? null,
      body: s.mailParams?.body ?? null,
      smtputf8: s.mailParams?.smtputf8 === true,
    },
    timings: {
      sessionOpenedAt: new Date(s.openedAt).toISOString(),
      dataStartedAt: dataStartedAt.toISOString(),
      dataEndedAt: ended.toISOString(),
      dataMs: ended.getTime() - dataStartedAt.getTime(),
    },
    verdicts: [...facts.verdicts],
    ...(facts.verdictsOmitted ? { verdictsOmitted: facts.verdictsOmitted } : {}),
    dns: facts.dns,
    tempfailed: facts.tempfailed,
    transfer: s.transfer ?? 'DATA',
    ...(s.transfer === 'BDAT' ? { chunks: s.chunks } : {}),
  };
}
