// What the policy does with a DNS list result, as a pure function: the verdict records
// (DNS_TIMEOUT / DNSBL_ERROR / DNS_ERROR per failed zone, DNSWL, DNSBL) and, for a listed
// client, the reply: "421 4.7.1 ... blocked using <zone>" and close (drop) or 550 per RCPT (enforce).

import type { DnsAction } from '../config/schema.js';
import type { Reply } from '../smtp/reply.js';
import type { DnsListResult } from '../store/metadata.js';
import { replyZone } from './score.js';

/** What DnsCheck.check() settled with: its result, or what it rejected with (it should not). */
export type DnsCheckOutcome = DnsListResult | { error: unknown };

export interface DnsVerdict {
  /** The result to keep with the session (metadata `dns`); null when the check failed. */
  result: DnsListResult | null;
  /** Verdict records to emit, in this order. */
  verdicts: { tag: 'DNS_TIMEOUT' | 'DNSBL_ERROR' | 'DNS_ERROR' | 'DNSWL' | 'DNSBL'; details: Record<string, unknown> }[];
  /** Reply that ends the session now, instead of the greeting (drop), or undefined. */
  reply: Reply | undefined;
  /** Reply for every later RCPT (enforce; the session counts as flagged), or undefined. */
  rcptReject: Reply | undefined;
}

const blockedText = (ip: string, zone: string) => `Service unavailable; client [${ip}] blocked using ${zone}`;

/** drop: 421 4.7.1 and close, session outcome 'dnsbl'. */
export function dnsblDropReply(ip: string, zone: string): Reply {
  return { code: 421, enhanced: '4.7.1', text: blockedText(ip, zone), close: true, outcome: 'dnsbl' };
}

/** enforce: 550 5.7.1 to every RCPT. */
export function dnsblRcptReply(ip: string, zone: string): Reply {
  return { code: 550, enhanced: '5.7.1', text: blockedText(ip, zone) };
}

/** dns.action with `auto` resolved as FakeSMTP does: collect (ignore) when storing, else drop. */
export function effectiveAction(action: DnsAction, storeData: boolean): Exclude<DnsAction, 'auto'> {
  return action === 'auto' ? (storeData ? 'ignore' : 'drop') : action;
}

/**
 * The policy's answer to one client's DNS list outcome. `ip` is the client address as the
 * session knows it (named in the reply); `action` is dns.action, `storeData` the policy's.
 * A failed check fails open: one DNS_ERROR record, no reply.
 */
export function dnsVerdict(outcome: DnsCheckOutcome, ip: string, cfg: { action: DnsAction; storeData: boolean }): DnsVerdict {
  const v: DnsVerdict = { result: null, verdicts: [], reply: undefined, rcptReject: undefined };
  if ('error' in outcome) {
    const e = outcome.error;
    v.verdicts.push({ tag: 'DNS_ERROR', details: { error: e instanceof Error ? e.message : String(e) } });
    return v;
  }
  const r = outcome;
  v.result = r;
  for (const z of r.zones) {
    if (!z.error) continue;
    const tag = z.error === 'timeout' ? 'DNS_TIMEOUT' : z.error === 'bad_answer' ? 'DNSBL_ERROR' : 'DNS_ERROR';
    v.verdicts.push({ tag, details: { zone: z.zone, error: z.error, answers: z.answers } });
  }
  const matched = () => r.zones.filter((z) => z.matched).map((z) => z.zone);
  if (r.allowed) {
    v.verdicts.push({ tag: 'DNSWL', details: { zones: matched(), score: r.score } });
    return v;
  }
  if (!r.listed) return v;
  const action = effectiveAction(cfg.action, cfg.storeData);
  v.verdicts.push({ tag: 'DNSBL', details: { zones: matched(), score: r.score, action } });
  const zone = replyZone(r);
  if (action === 'drop') v.reply = dnsblDropReply(ip, zone);
  else if (action === 'enforce') v.rcptReject = dnsblRcptReply(ip, zone);
  return v;
}
