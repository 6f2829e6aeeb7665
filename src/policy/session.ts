// One connection's policy state, typed, and the hooks that read it. The engine calls these
// in the order src/policy/index.ts describes; each decision is made by its own file
// (access, limits, dnsbl, early-talker, recipients, client-cache, greytrap, greylist,
// tempfail, tarpit) and every verdict goes to the session's list and to the observer, nowhere
// else. Without a state store every hook answers as before (synchronously where it did).

import type {
  Address, AuthAttempt, CloseInfo, EarlyTalkEvent, MessageSink, ReplyShape, SessionHooks, SessionInfo, TlsInfo,
} from '../smtp/hooks.js';
import { LATER, type GreetResume } from '../smtp/hooks.js';
import { replies, type Reply } from '../smtp/reply.js';
import { StoreFullError, type Corpus } from '../store/corpus.js';
import type { DnsListResult, VerdictRecord } from '../store/metadata.js';
import { dnsVerdict } from '../dnsbl/verdict.js';
import type { StateStore } from '../state/store.js';
import { clientNetwork, keys, type CacheTest, type Lease, type StateEntry } from '../state/types.js';
import { accessDenied } from './access.js';
import { authDetails, authReply } from './auth.js';
import { cachedFail, dnsblPassTtl, lookupClient, recordFail, recordPass, type ClientRecord } from './client-cache.js';
import { greylist, greylistedReply, greylistExempt, refreshAllowlisted, stateUnavailableReply } from './greylist.js';
import { isTrapAddress, trapClient, trappedReply } from './greytrap.js';
import { earlyTalkVerdict } from './early-talker.js';
import { perIpLimit } from './limits.js';
import type { BannerWait, Policy } from './index.js';
import { checkRecipient, isPostmaster } from './recipients.js';
import { tarpitShape } from './tarpit.js';
import { tempfailPoint, tempfailReply } from './tempfail.js';

/** `white:<net>` -> `<net>`. */
const subjectOfWhite = (key: string) => key.slice(key.indexOf(':') + 1);

/**
 * Verdicts that say what became of one message. Logged and counted like any verdict, but not
 * kept in the session's list: an earlier message's outcome is no fact of the next one's record
 * (a session of n messages wrote n-1 STORED entries into the last record), and a sink session
 * of up to maxMessages messages would hold one entry per message.
 */
const MESSAGE_OUTCOMES: ReadonlySet<string> = new Set(['STORED', 'DUPLICATE', 'STORE_FULL', 'STORE_FAILED']);

/** A session without verdicts (most): one frozen empty list for all of them. */
const NO_VERDICTS = Object.freeze([]) as unknown as VerdictRecord[];

/**
 * Verdicts a session keeps for its records. Some come once per recipient (a trap hit on a
 * profile that accepts it), so a session of maxMessages messages of maxSmtpRcpt recipients
 * would otherwise hold and copy into each record millions; past this they are still logged and
 * counted in the metrics, and the record says how many it lacks (verdictsOmitted).
 */
export const MAX_SESSION_VERDICTS = 100;

export class PolicySession implements SessionHooks, BannerWait {
  /** Verdicts in the order they were reached (the metadata and the CLOSE line count them); made at the first. */
  private list: VerdictRecord[] | null = null;
  /** The access list said permit: no anti-spam check applies. */
  private permitted = false;
  /** The per-IP slot this session holds, released at close. */
  private ipKey: string | undefined;
  /** The reply every RCPT gets once a verdict is enforced (early talk, DNSBL). */
  private rcptReject: Reply | undefined;
  /** Tarpitted by a verdict (stutter applies even before the first error). */
  private flagged = false;
  private stuttering = false;
  /** AUTH attempts this session made (auth.maxAttempts). */
  private authAttempts = 0;
  /** While in the banner delay: when it ends, and what ends it (BannerWait). */
  wakeAt = 0;
  private waker: (() => void) | undefined;
  /** The engine waiting for the greeting (the promise-free path of connect()). */
  private resume: GreetResume | undefined;
  private dns: DnsListResult | null = null;
  /** Tests the client cache says this client passed (skipped this time). */
  private cached: ReadonlySet<CacheTest> | null = null;
  /** Talked early (PREGREET/PIPELINING) in this session: no cache pass for it. */
  private talkedEarly = false;
  /** Wrote to a greytrap, now or before (TRAP). */
  private trapped = false;
  /** A DNS allow list zone vouched for the client, as its cached dnsbl pass says (the lookup was skipped). */
  private dnswlCached: string | null = null;
  /** Greylisting passed for this client's network in this session (no more lookups). */
  private greyPassed = false;
  /** The network's allowlist entry as read at connect (greylisting then needs no read). */
  private white: StateEntry | null = null;
  /** The fleet-wide per-IP lease (state leases), released at close. */
  private lease: Lease | undefined;
  /** Verdicts past MAX_SESSION_VERDICTS: logged, not kept. */
  private omitted = 0;
  /** MESSAGE_OUTCOMES seen in this session, by tag (for the CLOSE line). */
  private outcomes: Record<string, number> | undefined;
  private closed = false;

  constructor(
    private readonly policy: Policy,
    private readonly s: SessionInfo,
  ) {}

  verdict(_s: SessionInfo, tag: string, details: Record<string, unknown>): void {
    const rec: VerdictRecord = { tag, atMs: Date.now() - this.s.openedAt, ...details };
    if (MESSAGE_OUTCOMES.has(tag)) (this.outcomes ??= {})[tag] = (this.outcomes[tag] ?? 0) + 1;
    else if ((this.list ??= []).length < MAX_SESSION_VERDICTS) this.list.push(rec);
    else this.omitted++;
    this.policy.svc.observer.verdict(this.s, rec);
  }

  get verdicts(): VerdictRecord[] {
    return this.list ?? NO_VERDICTS;
  }

  /** Verdicts reached but not kept (MAX_SESSION_VERDICTS). */
  get verdictsOmitted(): number {
    return this.omitted;
  }

  connect(s: SessionInfo): Reply | undefined | Promise<Reply | undefined>;
  connect(s: SessionInfo, resume: GreetResume | undefined): Reply | undefined | Promise<Reply | undefined> | typeof LATER;
  connect(s: SessionInfo, resume?: GreetResume): Reply | undefined | Promise<Reply | undefined> | typeof LATER {
    const { cfg, svc } = this.policy;
    const ip = s.remoteAddress;
    const acc = svc.access?.(ip) ?? null;
    if (acc === 'reject') {
      this.verdict(s, 'ACCESS_REJECT', {});
      return accessDenied();
    }
    if (acc === 'permit') {
      this.permitted = true;
      return undefined;
    }
    const key = svc.ipKey(ip);
    const st = svc.state ?? null;
    if (st && svc.fleet) return this.leaseThenGreet(s, st, key);
    if (!svc.perIp.acquire(key, cfg.maxSessionsPerIp)) {
      this.verdict(s, 'LIMIT', { limit: 'sessions per address', max: cfg.maxSessionsPerIp });
      return perIpLimit();
    }
    this.ipKey = key;
    if (st && this.usesClientState()) return this.lookupThenGreet(s, st);
    return this.greet(s, resume);
  }

  /** The DNS lists and the banner delay, minus what the client cache let this client skip. */
  private greet(s: SessionInfo): Reply | undefined | Promise<Reply | undefined>;
  private greet(s: SessionInfo, resume: GreetResume | undefined): Reply | undefined | Promise<Reply | undefined> | typeof LATER;
  private greet(s: SessionInfo, resume?: GreetResume): Reply | undefined | Promise<Reply | undefined> | typeof LATER {
    const { cfg, svc } = this.policy;
    const delay = this.cached?.has('greet') ? 0 : cfg.bannerDelay;
    const dns = this.cached?.has('dnsbl') ? null : svc.dns;
    // DNS lookups run during the banner delay; the greeting waits at most dns.timeout more.
    const pending = dns ? dns.check(s.remoteAddress, { deadline: Date.now() + delay + dns.timeout }) : null;
    const remember = this.cacheOn() && delay > 0 && cfg.doEarlyTalk;
    if (!pending) {
      if (delay <= 0) return undefined;
      if (resume && !remember) {
        // The plain banner delay, the one a held bot sits in: wake() greets, no promise. (Only
        // reached without the client cache, so there is no pass to record when it ends.)
        this.resume = resume;
        this.policy.bannerQueue.add(this);
        return LATER;
      }
      return remember ? this.sleep().then(() => this.greetPassed(s)) : this.sleep();
    }
    const verdict = (delay > 0 ? this.sleep() : Promise.resolve(undefined)).then(() => this.dnsVerdict(pending));
    return remember ? verdict.then((r) => r ?? this.greetPassed(s)) : verdict;
  }

  // ---- state: fleet leases, client cache, greytraps, greylisting ---------------------------

  private cacheOn(): boolean {
    return this.policy.cfg.cache.enabled && !!this.policy.svc.state;
  }

  /**
   * DNS list verdicts are remembered: by the client cache, or across a fleet (redis) even
   * without it, since there a verdict is a fleet-wide DNS cache (issue 14: one lookup per
   * client per TTL across the fleet) and means what the lookup would have meant.
   */
  private dnsblShared(): boolean {
    const { svc } = this.policy;
    return this.cacheOn() || (!!svc.fleet && !!svc.state && !!svc.dns);
  }

  /** Whether connect must read the client's record (cache, shared DNS verdicts, or a trap to stutter). */
  private usesClientState(): boolean {
    const { cfg, svc } = this.policy;
    return cfg.cache.enabled || cfg.greylist.enabled || !!svc.traps || this.dnsblShared();
  }

  /** state.onError at connect: open goes on, tempfail is 421 4.3.0 and close. */
  private connectStateError(): Reply | undefined {
    if (this.policy.svc.stateOnError !== 'tempfail') return undefined;
    return { ...stateUnavailableReply(), code: 421, close: true, outcome: 'state_error' };
  }

  private async leaseThenGreet(s: SessionInfo, st: StateStore, key: string): Promise<Reply | undefined> {
    const { cfg, svc } = this.policy;
    // The client's record is asked for together with the lease, not after it: the Redis client
    // pipelines the two, so the greeting waits one round trip (and at most one state.timeout)
    // instead of two (bench/state.mjs). A refused lease only wastes that read.
    const record = this.usesClientState() ? this.readClient(s, st) : null;
    try {
      const lease = await st.acquireLease(keys.lease(key), s.id, cfg.maxSessionsPerIp);
      if (!lease) {
        this.verdict(s, 'LIMIT', { limit: 'sessions per address', max: cfg.maxSessionsPerIp, fleet: true });
        return perIpLimit();
      }
      if (this.closed) st.releaseLease(lease);
      else this.lease = lease;
    } catch {
      // The store is down: this node's own count stands in (open), or the client comes back later.
      const r = this.connectStateError();
      if (r) return r;
      if (!svc.perIp.acquire(key, cfg.maxSessionsPerIp)) {
        this.verdict(s, 'LIMIT', { limit: 'sessions per address', max: cfg.maxSessionsPerIp });
        return perIpLimit();
      }
      this.ipKey = key;
    }
    if (record) return this.greetWith(s, await record);
    return this.greet(s);
  }

  /** The client's record, or null when the store failed (never rejects: it may go unawaited). */
  private readClient(s: SessionInfo, st: StateStore): Promise<ClientRecord | null> {
    const g = this.policy.cfg.greylist;
    return lookupClient(st, s.remoteAddress, g.enabled ? keys.white(clientNetwork(s.remoteAddress, g.ipv4Prefix, g.ipv6Prefix)) : undefined).catch(() => null);
  }

  private async lookupThenGreet(s: SessionInfo, st: StateStore): Promise<Reply | undefined> {
    return this.greetWith(s, await this.readClient(s, st));
  }

  /** state.onError when the record could not be read; else what it says, then the greeting. */
  private greetWith(s: SessionInfo, rec: ClientRecord | null): Reply | undefined | Promise<Reply | undefined> {
    if (!rec) return this.connectStateError() ?? this.greet(s);
    return this.applyRecord(s, rec) ?? this.greet(s);
  }

  /** What is remembered about the client: TRAP, CACHE_FAIL (acts now) or CACHE_PASS (skips tests). */
  private applyRecord(s: SessionInfo, rec: ClientRecord): Reply | undefined {
    const { cfg, svc } = this.policy;
    if (rec.trapped) {
      this.trapped = true;
      this.flagged = true;
      this.verdict(s, 'TRAP', { known: true, rcpt: rec.trapped.value.rcpt, until: new Date(rec.trapped.expiresAt).toISOString() });
    }
    this.white = rec.white;
    if (!cfg.cache.enabled) {
      // Without the client cache only a fleet's shared DNS list verdict counts (dnsblShared).
      if (!this.dnsblShared()) return undefined;
      const failed = rec.failed?.value.test === 'dnsbl' ? rec.failed : null;
      rec = { ...rec, failed, passed: rec.passed.has('dnsbl') ? new Set(['dnsbl'] as const) : new Set() };
    }
    if (rec.failed) {
      const v = cachedFail(rec.failed, s.remoteAddress, { earlyTalkAction: cfg.earlyTalkAction, dnsAction: svc.dns?.action ?? 'auto', storeData: cfg.storeData });
      this.verdict(s, 'CACHE_FAIL', { test: rec.failed.value.test, action: v.action, until: new Date(rec.failed.expiresAt).toISOString() });
      if (v.action !== 'ignore') this.flagged = true;
      if (v.rcptReject) this.rcptReject ??= v.rcptReject;
      return v.reply;
    }
    if (rec.passed.size > 0) {
      this.cached = rec.passed;
      if (rec.passed.has('dnsbl')) this.dnswlCached = rec.dnswl;
      this.verdict(s, 'CACHE_PASS', { tests: [...rec.passed] });
    }
    return undefined;
  }

  /** The banner delay passed without early talk: the greet test is passed (remembered). */
  private greetPassed(s: SessionInfo): undefined {
    const { cfg, svc } = this.policy;
    if (!this.talkedEarly && !this.flagged && svc.state) void recordPass(svc.state, cfg.cache, s.remoteAddress, 'greet').catch(() => undefined);
    return undefined;
  }

  /**
   * The DNS list result, remembered: not listed passes dnsbl for as long as the answers said
   * (dnsblPassTtl), listed fails it for cache.failTtl; shared by a fleet. A result with a
   * failed lookup is not remembered (the next connection asks again).
   */
  private rememberDns(s: SessionInfo, r: DnsListResult | null): void {
    const { cfg, svc } = this.policy;
    if (!r || !svc.state || !this.dnsblShared()) return;
    if (r.zones.some((z) => z.error)) return;
    if (r.listed && !r.allowed) {
      const zone = r.zones.find((z) => z.matched)?.zone ?? 'a DNS list';
      void recordFail(svc.state, cfg.cache, s.remoteAddress, 'dnsbl', { zone, score: r.score }).catch(() => undefined);
    } else {
      // A DNSWL listing is remembered as such: it exempts the client from greylisting (greylistOne).
      const dnswl = r.allowed ? (r.zones.find((z) => z.allow && z.matched)?.zone ?? 'a DNS allow list') : undefined;
      void recordPass(svc.state, cfg.cache, s.remoteAddress, 'dnsbl', dnsblPassTtl(cfg.cache, r.zones), dnswl).catch(() => undefined);
    }
  }

  private async rcptState(s: SessionInfo, st: StateStore, to: Address, trapHit: boolean): Promise<Reply | undefined> {
    const { cfg } = this.policy;
    if (trapHit) {
      this.trapped = true;
      this.flagged = true;
      this.verdict(s, 'TRAP', { hit: true, rcpt: to.address });
      // A store failure is counted by the store; this session treats the client as trapped either way.
      await trapClient(st, s.remoteAddress, to.address, cfg.greylist.trapExpiry).catch(() => undefined);
    }
    if (this.trapped) return cfg.greylist.enabled ? trappedReply() : undefined;
    return this.greylistOne(s, st, to.address);
  }

  /** One recipient through greylisting (RCPT, or each recipient at DATA). */
  private async greylistOne(s: SessionInfo, st: StateStore, rcpt: string): Promise<Reply | undefined> {
    const { cfg, svc } = this.policy;
    if (this.greyPassed) return undefined;
    const from = s.mailFrom?.address ?? '';
    // DNSWL-listed clients and allowList senders/recipients are never greylisted.
    if (this.dns?.allowed || this.dnswlCached !== null || greylistExempt(svc.greylistAllow ?? null, from, rcpt)) return undefined;
    if (this.white) {
      // Allowlisted as read at connect: no read, at most a refresh (a failed one is the store's to count).
      this.greyPassed = true;
      this.verdict(s, 'GREYLIST_PASS', { net: subjectOfWhite(this.white.key), via: 'allowlist' });
      await refreshAllowlisted(st, cfg.greylist, this.white).catch(() => undefined);
      return undefined;
    }
    let o;
    try {
      o = await greylist(st, cfg.greylist, { ip: s.remoteAddress, from, rcpt });
    } catch {
      return svc.stateOnError === 'tempfail' ? stateUnavailableReply() : undefined;
    }
    if (o.result === 'trapped') {
      this.trapped = true;
      this.flagged = true;
      this.verdict(s, 'TRAP', { known: true, rcpt: o.trap.value.rcpt });
      return trappedReply();
    }
    if (o.result === 'greylisted') {
      this.verdict(s, 'GREYLISTED', { net: o.net, from, rcpt, first: o.first, retryInMs: o.retryInMs });
      return greylistedReply(o.retryInMs);
    }
    this.greyPassed = true;
    this.verdict(s, 'GREYLIST_PASS', o.result === 'passed' ? { net: o.net, via: 'retry', waitedMs: o.waitedMs } : { net: o.net, via: 'allowlist' });
    return undefined;
  }

  /** greylist.at data: every recipient of the transaction, then DATA as usual. */
  private async greylistAtData(s: SessionInfo, st: StateStore): Promise<Reply | MessageSink> {
    if (this.trapped) return trappedReply();
    for (const to of s.rcptTo) {
      const r = await this.greylistOne(s, st, to.address);
      if (r) return r;
    }
    return this.dataStartNow(s);
  }

  /** The banner delay, in the policy's shared queue; resolves with no reply (the greeting). */
  private sleep(): Promise<undefined> {
    return new Promise((resolve) => {
      this.waker = resolve as () => void;
      this.policy.bannerQueue.add(this);
    });
  }

  wake(): void {
    const r = this.resume;
    if (r) {
      this.resume = undefined;
      return r.greetLater(undefined);
    }
    const w = this.waker;
    this.waker = undefined;
    w?.();
  }

  private async dnsVerdict(pending: Promise<DnsListResult>): Promise<Reply | undefined> {
    const s = this.s;
    const dns = this.policy.svc.dns!;
    // A check that rejects (it should not) fails open, as dnsVerdict() says.
    const outcome = await pending.catch((error: unknown) => ({ error }));
    const v = dnsVerdict(outcome, s.remoteAddress, { action: dns.action, storeData: this.policy.cfg.storeData });
    this.dns = v.result;
    this.rememberDns(s, v.result);
    for (const r of v.verdicts) this.verdict(s, r.tag, r.details);
    if (v.rcptReject) {
      this.rcptReject ??= v.rcptReject;
      this.flagged = true;
    }
    return v.reply;
  }

  earlyTalk(s: SessionInfo, ev: EarlyTalkEvent): Reply | undefined {
    const { cfg } = this.policy;
    if (!cfg.doEarlyTalk || this.permitted) return undefined;
    // A test the client cache says it passed is not run again (postscreen).
    if (this.cached?.has(ev.kind === 'pregreet' ? 'greet' : 'pipelining')) return undefined;
    this.talkedEarly = true;
    const v = earlyTalkVerdict(ev, cfg.earlyTalkAction);
    const st = this.policy.svc.state;
    if (st && this.cacheOn()) void recordFail(st, cfg.cache, s.remoteAddress, ev.kind === 'pregreet' ? 'greet' : 'pipelining', { afterMs: ev.afterMs }).catch(() => undefined);
    this.verdict(s, v.tag, v.details);
    if (v.rcptReject) {
      this.rcptReject ??= v.rcptReject;
      this.flagged = true;
    }
    return v.reply;
  }

  rcpt(s: SessionInfo, to: Address): Reply | undefined | Promise<Reply | undefined> {
    // An enforced verdict (DNS list, early talk) refuses every recipient but postmaster: a
    // sender listed by mistake can still reach this site's admin (RFC 5321 §4.5.1).
    if (this.rcptReject && !isPostmaster(to)) return this.rcptReject;
    const { cfg, svc } = this.policy;
    const r = checkRecipient(to, svc.domains, svc.mailboxes);
    if (r || this.permitted || !svc.state) return r;
    const trapHit = isTrapAddress(svc.traps ?? null, to.address);
    if (!trapHit && !this.trapped && !(cfg.greylist.enabled && cfg.greylist.at === 'rcpt')) return undefined;
    return this.rcptState(s, svc.state, to, trapHit);
  }

  dataStart(s: SessionInfo): Reply | MessageSink | Promise<Reply | MessageSink> {
    const { cfg, svc } = this.policy;
    if (svc.state && !this.permitted && cfg.greylist.enabled && cfg.greylist.at === 'data') return this.greylistAtData(s, svc.state);
    return this.dataStartNow(s);
  }

  private dataStartNow(s: SessionInfo): Reply | MessageSink {
    const { cfg, svc } = this.policy;
    if (tempfailPoint(cfg) === 'DATA') {
      // FakeSMTP's MX sandwich: refuse at DATA; a real MTA retries the real MX.
      this.verdict(s, 'TEMPFAIL', { at: 'DATA' });
      svc.observer.messageResult(s, 'tempfailed', 0);
      return tempfailReply();
    }
    return svc.corpus && cfg.storeData ? this.storeSink(svc.corpus) : this.discardSink();
  }

  tooBig(s: SessionInfo, at: 'MAIL' | 'data'): Reply | undefined {
    // A tempfail profile defers every message, a big one too: 552 would make a real MTA
    // bounce it instead of trying the real MX (RFC 5321 §4.5.4.1).
    if (tempfailPoint(this.policy.cfg) === null) return undefined;
    this.verdict(s, 'TEMPFAIL', { at, reason: 'size' });
    return tempfailReply();
  }

  shapeReply(s: SessionInfo, reply: Reply): ReplyShape | undefined {
    if (this.permitted) return undefined;
    const { cfg, svc } = this.policy;
    const shape = tarpitShape(s, reply, cfg, this.flagged, svc.active(), svc.maxSessions);
    // One TARPIT verdict per delayed error reply, and one when stuttering starts.
    if (shape && ((shape.delay ?? 0) > 0 || ((shape.stutter ?? 0) > 0 && !this.stuttering))) {
      if ((shape.stutter ?? 0) > 0) this.stuttering = true;
      this.verdict(s, 'TARPIT', { delayMs: shape.delay, stutterMs: shape.stutter, errors: s.counts.errors, code: reply.code });
    }
    return shape;
  }

  command(s: SessionInfo, line: string): void {
    this.policy.svc.observer.command(s, line, this.policy.cfg.verboseLogging);
  }

  reply(s: SessionInfo, r: Reply): void {
    this.policy.svc.observer.reply(s, r, this.policy.cfg.verboseLogging);
  }

  tls(s: SessionInfo, info: TlsInfo): void {
    this.verdict(s, 'TLS', { ...info });
  }

  /** The AUTH honeypot (auth.ts): every attempt is recorded as an AUTH verdict and fails. */
  auth(s: SessionInfo, a: AuthAttempt): Reply {
    const { cfg, svc } = this.policy;
    const n = ++this.authAttempts;
    const details = authDetails(s, a, cfg.auth, svc.authSalt ?? '', n);
    this.verdict(s, 'AUTH', details);
    this.policy.authJournal?.append({ session: s.id, listener: s.listener, ip: s.remoteAddress, port: s.remotePort, helo: s.helo ?? null, ...details });
    return authReply(n, cfg.auth);
  }

  closing(s: SessionInfo): void {
    this.policy.svc.closing?.(s);
  }

  close(s: SessionInfo, info: CloseInfo): void {
    if (this.waker || this.resume) {
      this.waker = this.resume = undefined;
      this.policy.bannerQueue.cancel(this);
    }
    this.closed = true;
    const { cfg, svc } = this.policy;
    if (this.ipKey !== undefined) svc.perIp.release(this.ipKey);
    if (this.lease) svc.state?.releaseLease(this.lease);
    // A session that reached RCPT without talking out of turn passed the pipelining test.
    if (svc.state && this.cacheOn() && cfg.doEarlyTalk && !this.talkedEarly && !this.flagged && !this.permitted && s.counts.rcpt > 0 && !this.cached?.has('pipelining')) {
      void recordPass(svc.state, cfg.cache, s.remoteAddress, 'pipelining').catch(() => undefined);
    }
    this.policy.svc.observer.close(s, info, this.verdicts, this.outcomes);
    this.policy.svc.gone(s);
  }

  /** The discard sink holds nothing per message: one per session, made at its first DATA. */
  private discarding: MessageSink | null = null;

  private discardSink(): MessageSink {
    return (this.discarding ??= this.newDiscardSink());
  }

  private newDiscardSink(): MessageSink {
    const s = this.s;
    const observer = this.policy.svc.observer;
    return {
      write() {},
      abort(reason) {
        if (reason === 'too_big') observer.messageResult(s, 'too_big', 0);
      },
      end(size) {
        observer.messageResult(s, 'discarded', size);
        return replies.ok('Ok: message accepted');
      },
    };
  }

  /** The store builds the trace headers and the metadata from the session; policy adds only its verdicts. */
  private storeSink(corpus: Corpus): MessageSink {
    const { cfg, svc } = this.policy;
    const s = this.s;
    const w = corpus.beginFor(s, cfg.hostName);
    return {
      write: (c) => w.write(c),
      abort(reason) {
        w.abort();
        if (reason === 'too_big') svc.observer.messageResult(s, 'too_big', 0);
      },
      end: async (size) => {
        const tempfailed = tempfailPoint(cfg) === 'end of data';
        // The stored record says it was tempfailed; the TEMPFAIL line is logged after STORED.
        const tf: VerdictRecord = { tag: 'TEMPFAIL', atMs: Date.now() - s.openedAt, at: 'end of data' };
        let stored;
        try {
          stored = await w.commit({ verdicts: tempfailed ? [...this.verdicts, tf] : this.verdicts, verdictsOmitted: this.omitted, dns: this.dns, tempfailed });
        } catch (e) {
          if (e instanceof StoreFullError) {
            // The disk cap (store.onFull): nothing stored, the reply is what it would have been.
            this.verdict(s, 'STORE_FULL', { id: e.id, reason: e.reason });
            if (tempfailed) {
              (this.list ??= []).push(tf);
              svc.observer.verdict(s, tf);
            }
            svc.observer.messageResult(s, tempfailed ? 'tempfailed' : 'discarded', size);
            return tempfailed ? tempfailReply() : replies.queued(e.id);
          }
          this.verdict(s, 'STORE_FAILED', { error: e instanceof Error ? e.message : String(e) });
          svc.observer.messageResult(s, 'store_failed', size);
          return replies.storeFailed();
        }
        // Logged before TEMPFAIL, so the log reads in the order things happened.
        if (stored.duplicateOf !== undefined) {
          // store.dedupe: recorded in the first message's record; the reply names this arrival.
          this.verdict(s, 'DUPLICATE', { id: stored.arrivalId, of: stored.duplicateOf, count: stored.metadata.duplicates?.count });
        } else {
          this.verdict(s, 'STORED', { id: stored.id, file: stored.path, bytes: stored.metadata.sizes.file });
          svc.observer.stored(s, stored);
        }
        if (tempfailed) {
          (this.list ??= []).push(tf);
          svc.observer.verdict(s, tf);
        }
        svc.observer.messageResult(s, tempfailed ? 'tempfailed' : 'stored', size);
        return tempfailed ? tempfailReply() : replies.queued(stored.arrivalId ?? stored.id);
      },
    };
  }
}
