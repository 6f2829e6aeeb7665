// The order of checks, in one place. Builds the engine's SessionHooks for one listener
// from its effective policy config and the server's services. Connect: access list ->
// per-IP limit -> DNS lists (started at once) -> banner delay -> DNS verdict. Input:
// early talk. RCPT: enforced verdicts -> recipients. DATA: tempfail -> store or sink.
// Replies: tarpit. A client the access list permits skips every anti-spam check.

import type { MessageResult } from '../events.js';
import type { PolicyConfig } from '../config/schema.js';
import type { Corpus, StoredMessage } from '../store/corpus.js';
import type { DnsListResult, MessageMetadata, VerdictRecord } from '../store/metadata.js';
import type { MessageSink, SessionHooks, SessionInfo } from '../smtp/hooks.js';
import { replies, type Reply } from '../smtp/reply.js';
import { earlyTalkVerdict } from './early-talker.js';
import { PerIpLimiter } from './limits.js';
import { checkRecipient } from './recipients.js';
import { tarpitShape } from './tarpit.js';
import { tempfailPoint, tempfailReply } from './tempfail.js';

/** What a DNS list checker offers the chain (src/policy/dnsbl.ts implements it). */
export interface DnsCheck {
  check(ip: string, opts: { deadline: number }): Promise<DnsListResult>;
  /** The listed zone with the largest weight, for the reply text. */
  replyZone(r: DnsListResult): string;
  /** Wait this long beyond the banner delay for a verdict (dns.timeout). */
  readonly timeout: number;
  readonly action: 'auto' | 'drop' | 'enforce' | 'ignore';
}

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
  verdict(s: SessionInfo, tag: string, details: Record<string, unknown>): void;
  messageResult(s: SessionInfo, result: MessageResult, bytes: number): void;
  message(s: SessionInfo, stored: StoredMessage): void;
}

// Keys of per-session policy state (SessionInfo.state).
const PERMITTED = 'permitted';
const IP_KEY = 'ipKey';
const RCPT_REJECT = 'rcptReject';
const FLAGGED = 'tarpitted';
const BANNER_TIMER = 'bannerTimer';
const STUTTERING = 'stuttering';
export const VERDICTS = 'verdicts';
export const DNS_RESULT = 'dns';

export function verdictList(s: SessionInfo): VerdictRecord[] {
  let v = s.state.get(VERDICTS) as VerdictRecord[] | undefined;
  if (!v) s.state.set(VERDICTS, (v = []));
  return v;
}

function sleep(s: SessionInfo, ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    s.state.set(BANNER_TIMER, setTimeout(resolve, ms));
  });
}

export function buildHooks(cfg: PolicyConfig, svc: PolicyServices): SessionHooks {
  const permitted = (s: SessionInfo) => s.state.get(PERMITTED) === true;

  async function dnsVerdict(s: SessionInfo, pending: Promise<DnsListResult>): Promise<Reply | undefined> {
    const dns = svc.dns!;
    let r: DnsListResult;
    try {
      r = await pending;
    } catch (e) {
      svc.verdict(s, 'DNS_ERROR', { error: e instanceof Error ? e.message : String(e) });
      return undefined; // fail open
    }
    s.state.set(DNS_RESULT, r);
    for (const z of r.zones) {
      if (!z.error) continue;
      const tag = z.error === 'timeout' ? 'DNS_TIMEOUT' : z.error === 'bad_answer' ? 'DNSBL_ERROR' : 'DNS_ERROR';
      svc.verdict(s, tag, { zone: z.zone, error: z.error, answers: z.answers });
    }
    if (r.allowed) {
      svc.verdict(s, 'DNSWL', { zones: r.zones.filter((z) => z.matched).map((z) => z.zone), score: r.score });
      return undefined;
    }
    if (!r.listed) return undefined;
    const zone = dns.replyZone(r);
    const action = dns.action === 'auto' ? (cfg.storeData ? 'ignore' : 'drop') : dns.action;
    svc.verdict(s, 'DNSBL', { zones: r.zones.filter((z) => z.matched).map((z) => z.zone), score: r.score, action });
    if (action === 'drop') return replies.dnsblDrop(s.remoteAddress, zone);
    if (action === 'enforce') {
      if (!s.state.has(RCPT_REJECT)) s.state.set(RCPT_REJECT, replies.dnsblRcpt(s.remoteAddress, zone));
      s.state.set(FLAGGED, true);
    }
    return undefined;
  }

  const hooks: SessionHooks = {
    connect(s) {
      const ip = s.remoteAddress;
      const acc = svc.access?.(ip) ?? null;
      if (acc === 'reject') {
        svc.verdict(s, 'ACCESS_REJECT', {});
        return replies.accessDenied();
      }
      if (acc === 'permit') {
        s.state.set(PERMITTED, true);
        return undefined;
      }
      const key = svc.ipKey(ip);
      if (!svc.perIp.acquire(key, cfg.maxSessionsPerIp)) {
        svc.verdict(s, 'LIMIT', { limit: 'sessions per address', max: cfg.maxSessionsPerIp });
        return replies.perIpLimit();
      }
      s.state.set(IP_KEY, key);
      const dns = svc.dns;
      // DNS lookups run during the banner delay; the greeting waits at most dns.timeout more.
      const pending = dns ? dns.check(ip, { deadline: Date.now() + cfg.bannerDelay + dns.timeout }) : null;
      if (!pending) return cfg.bannerDelay > 0 ? (sleep(s, cfg.bannerDelay) as Promise<undefined>) : undefined;
      return sleep(s, cfg.bannerDelay).then(() => dnsVerdict(s, pending));
    },

    earlyTalk(s, ev) {
      if (!cfg.doEarlyTalk || permitted(s)) return undefined;
      const v = earlyTalkVerdict(ev, cfg.earlyTalkAction);
      svc.verdict(s, v.tag, v.details);
      if (v.rcptReject) {
        if (!s.state.has(RCPT_REJECT)) s.state.set(RCPT_REJECT, v.rcptReject);
        s.state.set(FLAGGED, true);
      }
      return v.reply;
    },

    rcpt(s, to) {
      const enforced = s.state.get(RCPT_REJECT) as Reply | undefined;
      if (enforced) return enforced;
      return checkRecipient(to, svc.domains, svc.mailboxes);
    },

    dataStart(s): Reply | MessageSink {
      if (tempfailPoint(cfg) === 'DATA') {
        // FakeSMTP's MX sandwich: refuse at DATA; a real MTA retries the real MX.
        svc.verdict(s, 'TEMPFAIL', { at: 'DATA' });
        svc.messageResult(s, 'tempfailed', 0);
        return tempfailReply();
      }
      return svc.corpus && cfg.storeData ? storeSink(s, svc.corpus) : discardSink(s);
    },

    shapeReply(s, reply) {
      if (permitted(s)) return undefined;
      const shape = tarpitShape(s, reply, cfg, s.state.get(FLAGGED) === true, svc.active(), svc.maxSessions);
      // One TARPIT verdict per delayed error reply, and one when stuttering starts.
      if (shape && ((shape.delay ?? 0) > 0 || ((shape.stutter ?? 0) > 0 && !s.state.has(STUTTERING)))) {
        if ((shape.stutter ?? 0) > 0) s.state.set(STUTTERING, true);
        svc.verdict(s, 'TARPIT', { delayMs: shape.delay, stutterMs: shape.stutter, errors: s.counts.errors, code: reply.code });
      }
      return shape;
    },

    close(s) {
      const t = s.state.get(BANNER_TIMER) as NodeJS.Timeout | undefined;
      if (t) clearTimeout(t);
      const key = s.state.get(IP_KEY) as string | undefined;
      if (key !== undefined) svc.perIp.release(key);
    },
  };

  function discardSink(s: SessionInfo): MessageSink {
    return {
      write() {},
      abort(reason) {
        if (reason === 'too_big') svc.messageResult(s, 'too_big', 0);
      },
      end(size) {
        svc.messageResult(s, 'discarded', size);
        return replies.ok('Ok: message accepted');
      },
    };
  }

  function storeSink(s: SessionInfo, corpus: Corpus): MessageSink {
    const dataStartedAt = new Date();
    const w = corpus.begin({
      hostName: cfg.hostName,
      sessionId: s.id,
      clientIp: s.remoteAddress,
      clientPort: s.remotePort,
      helo: s.helo,
      esmtp: s.esmtp,
      tls: s.tls !== undefined,
      smtputf8: s.mailParams?.smtputf8 === true,
      mailFrom: s.mailFrom?.address ?? '',
      rcptTo: s.rcptTo.map((r) => r.address),
    });
    return {
      write: (c) => w.write(c),
      abort(reason) {
        w.abort();
        if (reason === 'too_big') svc.messageResult(s, 'too_big', 0);
      },
      async end(size) {
        const tempfailed = tempfailPoint(cfg) === 'end of data';
        if (tempfailed) svc.verdict(s, 'TEMPFAIL', { at: 'end of data' });
        const ended = new Date();
        const meta: Omit<MessageMetadata, 'id' | 'file' | 'sizes'> = {
          version: 1,
          receivedAt: ended.toISOString(),
          session: s.id,
          listener: s.listener,
          client: { ip: s.remoteAddress, port: s.remotePort, helo: s.helo ?? null, esmtp: s.esmtp },
          server: { ip: s.localAddress, port: s.localPort, hostName: cfg.hostName },
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
          verdicts: [...verdictList(s)],
          dns: (s.state.get(DNS_RESULT) as DnsListResult | undefined) ?? null,
          tempfailed,
        };
        let stored: StoredMessage;
        try {
          stored = await w.commit(meta);
        } catch (e) {
          svc.verdict(s, 'STORE_FAILED', { error: e instanceof Error ? e.message : String(e) });
          svc.messageResult(s, 'store_failed', size);
          return replies.storeFailed();
        }
        svc.message(s, stored);
        svc.messageResult(s, tempfailed ? 'tempfailed' : 'stored', size);
        return tempfailed ? tempfailReply() : replies.queued(stored.id);
      },
    };
  }

  return hooks;
}
