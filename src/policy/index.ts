// The order of checks, in one place. A Policy is built once per listener and config from
// its effective settings and the server's services; newSession() gives the engine one typed
// PolicySession per connection (go-smtp's Backend.NewSession). Connect: access list ->
// per-IP limit (a state lease with redis) -> client cache and trap lookup (CACHE_FAIL acts,
// CACHE_PASS skips tests) -> DNS lists (started at once) -> banner delay -> DNS verdict.
// Input: early talk. RCPT: enforced verdicts -> recipients -> greytrap -> greylist (at rcpt).
// DATA/BDAT: greylist (at data) -> tempfail -> store or sink. AUTH: recorded, then 535 (421
// past auth.maxAttempts). Replies: tarpit. Close: cache passes,
// lease released. A client the access list permits skips every anti-spam check.

import type { GreylistAllow } from '../config/lists.js';
import type { PolicyConfig } from '../config/schema.js';
import type { Observer } from '../observer.js';
import type { Backend, SessionInfo } from '../smtp/hooks.js';
import type { Corpus } from '../store/corpus.js';
import type { DnsCheck } from '../dnsbl/check.js';
import type { StateStore } from '../state/store.js';
import { Roster } from '../util/roster.js';
import { authJournalFor, type AuthJournal } from './auth.js';
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
  /** Cross-connection state (client cache, greylisting, greytraps, fleet leases); absent or null = none. */
  state?: StateStore | null;
  /** state.onError: what a failed or late state call means. */
  stateOnError?: 'open' | 'tempfail';
  /**
   * The state store is a fleet's (the redis backend): maxSessionsPerIp is counted by its leases
   * across every node, and DNS list verdicts are shared through it even without cache.enabled.
   */
  fleet?: boolean;
  /** greylist.allowList, read. */
  greylistAllow?: GreylistAllow | null;
  /** greylist.trapAddresses, read (lower-case). */
  traps?: ReadonlySet<string> | null;
  /** The salt of AUTH password hashes (auth.salt or the per-install one); with auth.enabled. */
  authSalt?: string;
  /** The session said its last word and only waits for the socket to close: it no longer
   *  takes one of maxSessions. */
  closing?(s: SessionInfo): void;
  /** The session has closed: the server's own bookkeeping (session table, drain). */
  gone(s: SessionInfo): void;
}

/** Where a waiting session carries its place in the banner queue (src/util/roster.ts). */
const BANNER_WAIT = Symbol('fakemx.policy.banner');

/**
 * The sessions of one policy waiting out its banner delay. All wait the same time, so the
 * order they arrived in is the order they are due: one timer for the head, no timer or
 * closure per held session (a fake MX may hold thousands of them in the delay).
 */
export class BannerQueue {
  private readonly waiting = new Roster<BannerWait>(BANNER_WAIT);
  private timer: NodeJS.Timeout | null = null;
  private armedFor = 0;

  constructor(private readonly ms: number) {}

  /** Calls w.wake() once `ms` have passed, unless cancel(w) is called first. */
  add(w: BannerWait): void {
    w.wakeAt = Date.now() + this.ms;
    this.waiting.add(w);
    if (!this.timer) this.arm(w.wakeAt, this.ms);
  }

  cancel(w: BannerWait): void {
    this.waiting.delete(w);
    if (this.waiting.size === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private arm(at: number, ms: number): void {
    this.armedFor = at;
    this.timer = setTimeout(() => this.due(), Math.max(1, ms));
  }

  private due(): void {
    this.timer = null;
    // The timer fired for `armedFor`: whoever is due by then goes, even if the clock reads a
    // millisecond early (they would have shared that timer's list).
    const limit = Math.max(Date.now(), this.armedFor);
    for (let w = this.waiting.first(); w; w = this.waiting.first()) {
      if (w.wakeAt > limit) return this.arm(w.wakeAt, w.wakeAt - Date.now());
      this.waiting.delete(w);
      w.wake();
    }
  }
}

export interface BannerWait {
  wakeAt: number;
  wake(): void;
}

/** One listener's policy under one config: shared by all its sessions, never changed. */
export class Policy implements Backend {
  /** The banner delay's waiting room (made on first use). */
  private bq: BannerQueue | null = null;

  constructor(
    readonly cfg: Readonly<PolicyConfig>,
    readonly svc: PolicyServices,
  ) {}

  /** The AUTH journal of this listener's corpus (auth.enabled with storeData), or null. */
  get authJournal(): AuthJournal | null {
    if (this.aj === undefined) this.aj = this.cfg.auth.enabled && this.cfg.storeData ? authJournalFor(this.cfg.storePath) : null;
    return this.aj;
  }
  private aj: AuthJournal | null | undefined;

  get bannerQueue(): BannerQueue {
    return (this.bq ??= new BannerQueue(this.cfg.bannerDelay));
  }

  newSession(s: SessionInfo): PolicySession {
    return new PolicySession(this, s);
  }
}
