// The metadata record stored beside each message as <id>.json (same directory, same id).
// It is the machine-readable twin of the trace headers: `fakemx report`, the webhook and
// research tools read it. Bump `version` on any incompatible change.

import type { SessionInfo, TlsInfo } from '../smtp/hooks.js';
import type { TraceInfo } from './corpus.js';

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
  dns: DnsListResult | null;
  tempfailed: boolean;
  /** How the body came: DATA, or BDAT chunks (RFC 3030) and how many (absent in records before it was kept). */
  transfer?: 'DATA' | 'BDAT';
  chunks?: number;
}

/** What the policy knows of a message that the session does not: its verdicts so far, the DNS answer, the tempfail. */
export interface PolicyFacts {
  verdicts: readonly VerdictRecord[];
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
    dns: facts.dns,
    tempfailed: facts.tempfailed,
    transfer: s.transfer ?? 'DATA',
    ...(s.transfer === 'BDAT' ? { chunks: s.chunks } : {}),
  };
}
