// One connection's policy state, typed, and the hooks that read it. The engine calls these
// in the order src/policy/index.ts describes; each decision is made by its own file
// (access, limits, dnsbl, early-talker, recipients, tempfail, tarpit) and every verdict
// goes to the session's list and to the observer, nowhere else.

import type {
  Address, CloseInfo, EarlyTalkEvent, MessageSink, ReplyShape, SessionHooks, SessionInfo, TlsInfo,
} from '../smtp/hooks.js';
import { replies, type Reply } from '../smtp/reply.js';
import type { Corpus } from '../store/corpus.js';
import type { DnsListResult, VerdictRecord } from '../store/metadata.js';
import { dnsVerdict } from '../dnsbl/verdict.js';
import { accessDenied } from './access.js';
import { earlyTalkVerdict } from './early-talker.js';
import { perIpLimit } from './limits.js';
import type { BannerWait, Policy } from './index.js';
import { checkRecipient } from './recipients.js';
import { tarpitShape } from './tarpit.js';
import { tempfailPoint, tempfailReply } from './tempfail.js';

/** A session without verdicts (most): one frozen empty list for all of them. */
const NO_VERDICTS = Object.freeze([]) as unknown as VerdictRecord[];

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
  /** While in the banner delay: when it ends, and what ends it (BannerWait). */
  wakeAt = 0;
  private waker: (() => void) | undefined;
  private dns: DnsListResult | null = null;

  constructor(
    private readonly policy: Policy,
    private readonly s: SessionInfo,
  ) {}

  verdict(_s: SessionInfo, tag: string, details: Record<string, unknown>): void {
    const rec: VerdictRecord = { tag, atMs: Date.now() - this.s.openedAt, ...details };
    (this.list ??= []).push(rec);
    this.policy.svc.observer.verdict(this.s, rec);
  }

  get verdicts(): VerdictRecord[] {
    return this.list ?? NO_VERDICTS;
  }

  connect(s: SessionInfo): Reply | undefined | Promise<Reply | undefined> {
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
    if (!svc.perIp.acquire(key, cfg.maxSessionsPerIp)) {
      this.verdict(s, 'LIMIT', { limit: 'sessions per address', max: cfg.maxSessionsPerIp });
      return perIpLimit();
    }
    this.ipKey = key;
    const dns = svc.dns;
    // DNS lookups run during the banner delay; the greeting waits at most dns.timeout more.
    const pending = dns ? dns.check(ip, { deadline: Date.now() + cfg.bannerDelay + dns.timeout }) : null;
    if (!pending) return cfg.bannerDelay > 0 ? this.sleep() : undefined;
    return (cfg.bannerDelay > 0 ? this.sleep() : Promise.resolve(undefined)).then(() => this.dnsVerdict(pending));
  }

  /** The banner delay, in the policy's shared queue; resolves with no reply (the greeting). */
  private sleep(): Promise<undefined> {
    return new Promise((resolve) => {
      this.waker = resolve as () => void;
      this.policy.bannerQueue.add(this);
    });
  }

  wake(): void {
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
    const v = earlyTalkVerdict(ev, cfg.earlyTalkAction);
    this.verdict(s, v.tag, v.details);
    if (v.rcptReject) {
      this.rcptReject ??= v.rcptReject;
      this.flagged = true;
    }
    return v.reply;
  }

  rcpt(_s: SessionInfo, to: Address): Reply | undefined {
    if (this.rcptReject) return this.rcptReject;
    return checkRecipient(to, this.policy.svc.domains, this.policy.svc.mailboxes);
  }

  dataStart(s: SessionInfo): Reply | MessageSink {
    const { cfg, svc } = this.policy;
    if (tempfailPoint(cfg) === 'DATA') {
      // FakeSMTP's MX sandwich: refuse at DATA; a real MTA retries the real MX.
      this.verdict(s, 'TEMPFAIL', { at: 'DATA' });
      svc.observer.messageResult(s, 'tempfailed', 0);
      return tempfailReply();
    }
    return svc.corpus && cfg.storeData ? this.storeSink(svc.corpus) : this.discardSink();
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

  close(s: SessionInfo, info: CloseInfo): void {
    if (this.waker) {
      this.waker = undefined;
      this.policy.bannerQueue.cancel(this);
    }
    if (this.ipKey !== undefined) this.policy.svc.perIp.release(this.ipKey);
    this.policy.svc.observer.close(s, info, this.verdicts);
    this.policy.svc.gone(s);
  }

  private discardSink(): MessageSink {
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
          stored = await w.commit({ verdicts: tempfailed ? [...this.verdicts, tf] : this.verdicts, dns: this.dns, tempfailed });
        } catch (e) {
          this.verdict(s, 'STORE_FAILED', { error: e instanceof Error ? e.message : String(e) });
          svc.observer.messageResult(s, 'store_failed', size);
          return replies.storeFailed();
        }
        // Logged before TEMPFAIL, so the log reads in the order things happened.
        this.verdict(s, 'STORED', { id: stored.id, file: stored.path, bytes: stored.metadata.sizes.file });
        svc.observer.stored(s, stored);
        if (tempfailed) {
          (this.list ??= []).push(tf);
          svc.observer.verdict(s, tf);
        }
        svc.observer.messageResult(s, tempfailed ? 'tempfailed' : 'stored', size);
        return tempfailed ? tempfailReply() : replies.queued(stored.id);
      },
    };
  }
}
