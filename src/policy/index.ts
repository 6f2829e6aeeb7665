// The order of checks, in one place. A Policy is built once per listener and config from
// its effective settings and the server's services; newSession() gives the engine one typed
// PolicySession per connection (go-smtp's Backend.NewSession). Connect: access list ->
// per-IP limit -> DNS lists (started at once) -> banner delay -> DNS verdict. Input: early
// talk. RCPT: enforced verdicts -> recipients. DATA: tempfail -> store or sink. Replies:
// tarpit. A client the access list permits skips every anti-spam check.

import type { PolicyConfig } from '../config/schema.js';
import type { Observer } from '../observer.js';
import type { Backend, SessionInfo } from '../smtp/hooks.js';
import type { Corpus } from '../store/corpus.js';
import type { DnsCheck } from '../dnsbl/check.js';
import type { PerIpLimiter } from './limits.js';
import { PolicySession } from './session.js';

export interface PolicyServices {
  maxSessions: number;
  active(): number;
  perIp: PerIpLimiter;
  ipKey(ip: string): string;
  access: ((ip: string) => 'permit' | 'reject' | null) | null;
  domains: ReadonlySet<string> | null;
  mailboxes: ReadonlySet<string> | null;
  corpus: Corpus | null;
  dns: DnsCheck | null;
  observer: Observer;
  /** The session has closed: the server's own bookkeeping (session table, drain). */
  gone(s: SessionInfo): void;
}

/** One listener's policy under one config: shared by all its sessions, never changed. */
export class Policy implements Backend {
  constructor(
    readonly cfg: Readonly<PolicyConfig>,
    readonly svc: PolicyServices,
  ) {}

  newSession(s: SessionInfo): PolicySession {
    return new PolicySession(this, s);
  }
}
