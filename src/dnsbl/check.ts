// One policy's DNS list check: the DnsCheck the policy chain consumes, and DnsblCheck, which
// asks its allow and block lists through the shared engine, all at once, and scores what has
// settled by the deadline. check() never rejects; unanswered zones fail open (tagged timeout).

import type { DnsAction } from '../config/schema.js';
import type { DnsListResult, DnsZoneResult } from '../store/metadata.js';
import { byDeadline, type DnsblEngine, type LookupOutcome } from './engine.js';
import { matchFilter, type ProviderEntry } from './provider.js';
import { isPrivate, reverseName } from './query.js';
import { replyZone, score } from './score.js';

/** What a DNS list checker offers the policy chain (DnsblCheck implements it). */
export interface DnsCheck {
  check(ip: string, opts: { deadline: number }): Promise<DnsListResult>;
  /** The listed zone with the largest weight, for the reply text (the one dnsVerdict() names). */
  replyZone(r: DnsListResult): string;
  /** Wait this long beyond the banner delay for a verdict (dns.timeout). */
  readonly timeout: number;
  readonly action: DnsAction;
}

export interface DnsblCheckOptions {
  threshold: number;
  skipPrivate: boolean;
  timeout: number;
  action: DnsCheck['action'];
}

export const EMPTY_RESULT: Readonly<DnsListResult> = Object.freeze({ score: 0, listed: false, allowed: false, zones: [] });

export class DnsblCheck implements DnsCheck {
  readonly timeout: number;
  readonly action: DnsCheck['action'];
  private readonly rblZones: Set<string>;
  private readonly now: () => number;

  constructor(
    private readonly engine: DnsblEngine,
    readonly rwl: readonly ProviderEntry[],
    readonly rbl: readonly ProviderEntry[],
    private readonly opts: DnsblCheckOptions,
    now?: () => number,
  ) {
    this.timeout = opts.timeout;
    this.action = opts.action;
    this.rblZones = new Set(rbl.map((p) => p.zone));
    this.now = now ?? Date.now;
  }

  /** Every zone this check asks (for health checks). */
  zones(): string[] {
    return [...new Set([...this.rwl, ...this.rbl].map((p) => p.zone))];
  }

  async check(ip: string, opts: { deadline: number }): Promise<DnsListResult> {
    try {
      return await this.run(ip, opts.deadline, this.opts.skipPrivate);
    } catch {
      return { ...EMPTY_RESULT, zones: [] }; // fail open; run() should not throw
    }
  }

  /** The check itself; the CLI calls it with skipPrivate false. */
  async run(ip: string, deadline: number, skipPrivate: boolean): Promise<DnsListResult> {
    const rev = reverseName(ip);
    if (rev === null || (skipPrivate && isPrivate(ip))) return { ...EMPTY_RESULT, zones: [] };
    const rwl = this.rwl.filter((p) => this.engine.healthy(p.zone));
    const rbl = this.rbl.filter((p) => this.engine.healthy(p.zone));
    const zones = [...new Set([...rwl, ...rbl].map((p) => p.zone))];
    // All lists are asked at once (one round trip); only the verdict follows FakeSMTP's order.
    const got = new Map<string, LookupOutcome>();
    await byDeadline(
      Promise.all(zones.map((z) => this.engine.lookupA(z, rev).then((o) => void got.set(z, o)))),
      deadline,
      this.now,
    );
    const result = (p: ProviderEntry): DnsZoneResult => {
      const o = got.get(p.zone);
      if (!o) return { zone: p.zone, answers: [], matched: false, weight: p.weight, error: 'timeout' };
      const l = o.lookup;
      const base = { zone: p.zone, answers: [...l.answers], weight: p.weight, ms: o.ms };
      if (l.error) return { ...base, matched: false, error: l.error };
      return { ...base, matched: l.answers.some((a) => matchFilter(p.filter, a)), ...(o.ttl !== null ? { ttl: o.ttl } : {}) };
    };
    const wl = rwl.map((p): DnsZoneResult => ({ ...result(p), allow: true }));
    const bl = rbl.map(result);
    const all = [...wl, ...bl];
    const listedZones = [...new Set(all.filter((z) => z.matched).map((z) => z.zone))];
    if (listedZones.length > 0) {
      const txt = new Map<string, string[]>();
      await byDeadline(
        Promise.all(listedZones.map((z) => this.engine.lookupTxt(z, rev).then((t) => void txt.set(z, t)))),
        deadline,
        this.now,
      );
      for (const z of all) {
        const t = z.matched ? txt.get(z.zone) : undefined;
        if (t && t.length > 0) z.txt = t;
      }
    }
    return score(wl, bl, this.opts.threshold);
  }

  /** The matched block-list zone with the largest weight (first one on a tie). */
  replyZone(r: DnsListResult): string {
    return replyZone(r, this.rblZones);
  }
}
