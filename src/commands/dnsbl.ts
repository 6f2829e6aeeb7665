// `fakemx dnsbl <ip>`: asks every configured allow and block list about one address,
// as the daemon would (but private addresses too), and prints per zone the query name,
// answers, TXT, TTL and time, then score and verdict. Exit: 0 not listed, 1 listed, 2 error.
// TXT answers are whatever a list's operator (or a spoofer) put there: escaped before printing.

import type { Config } from '../config/schema.js';
import { DnsblCheck } from '../dnsbl/check.js';
import { DnsblEngine } from '../dnsbl/engine.js';
import { parseProviders, type ProviderEntry } from '../dnsbl/provider.js';
import { queryName } from '../dnsbl/query.js';
import { silentLogger } from '../log/logger.js';
import { escapeText } from '../util/escape.js';

function describe(p: ProviderEntry): string {
  return escapeText(p.raw === p.zone ? p.zone : `${p.zone} (${p.raw})`);
}

export async function dnsblCommand(ip: string, config: Config, out: (line: string) => void): Promise<number> {
  let rwl: ProviderEntry[];
  let rbl: ProviderEntry[];
  try {
    rwl = parseProviders(config.rwlProviders ?? []);
    rbl = parseProviders(config.rblProviders ?? []);
  } catch (e) {
    out(`error: ${escapeText(e instanceof Error ? e.message : String(e))}`);
    return 2;
  }
  if (queryName(ip, 'x') === null) {
    out(`error: "${escapeText(ip)}" is not an IP address`);
    return 2;
  }
  if (rwl.length + rbl.length === 0) {
    out('error: no rwlProviders or rblProviders configured');
    return 2;
  }
  let engine: DnsblEngine;
  try {
    // A fresh engine: no cache carried over, no periodic health checks, nothing logged.
    engine = new DnsblEngine({ dns: { ...config.dns, healthCheckInterval: 0 }, logger: silentLogger() });
  } catch (e) {
    out(`error: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
  try {
    const d = config.dns;
    const check = new DnsblCheck(engine, rwl, rbl, { threshold: d.threshold, skipPrivate: false, timeout: d.timeout, action: d.action });
    // The whole budget a lookup may take: every try of the A query, then of the TXT query.
    const budget = 2 * d.timeout * (1 + d.retries) + 100;
    const r = await check.run(ip, Date.now() + budget, false);
    let errors = 0;
    const entries = [...rwl.map((p) => ['allow', p] as const), ...rbl.map((p) => ['block', p] as const)];
    entries.forEach(([kind, p], i) => {
      const z = r.zones[i]!;
      const name = queryName(ip, p.zone)!;
      const ttl = engine.cache.get(`${p.zone} ${name.slice(0, -(p.zone.length + 1))}`)?.ttl;
      const answers = z.answers.length > 0 ? z.answers.join(',') : 'none';
      const status = z.error ? `error ${escapeText(z.error)}` : z.matched ? `matched, weight ${p.weight}` : z.answers.length > 0 ? 'filter did not match' : 'not listed';
      if (z.error) errors++;
      out(`${kind} ${describe(p)}: ${name} A ${answers}; ${status}; ttl ${ttl === undefined ? '-' : `${ttl}s`}; ${z.ms === undefined ? '-' : `${z.ms} ms`}`);
      // Quotes escaped too, so the closing quote is always ours.
      for (const t of z.txt ?? []) out(`  TXT "${escapeText(t).replace(/"/g, '\\"')}"`);
    });
    const verdict = r.allowed ? 'allowed (DNSWL)' : r.listed ? `listed (DNSBL: ${check.replyZone(r)})` : 'not listed';
    out(`score ${r.score} (threshold ${d.threshold}): ${verdict}`);
    if (r.listed) return 1;
    if (!r.allowed && errors > 0) return 2;
    return 0;
  } finally {
    engine.stop();
  }
}
