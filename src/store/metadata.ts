// The metadata record stored beside each message as <id>.json (same directory, same id).
// It is the machine-readable twin of the trace headers: `fakemx report`, the webhook and
// research tools read it. Bump `version` on any incompatible change.

import type { TlsInfo } from '../smtp/hooks.js';

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
    body: '7BIT' | '8BITMIME' | null;
    smtputf8: boolean;
  };
  sizes: { body: number; headers: number; file: number };
  timings: { sessionOpenedAt: string; dataStartedAt: string; dataEndedAt: string; dataMs: number };
  verdicts: VerdictRecord[];
  dns: DnsListResult | null;
  tempfailed: boolean;
}
