// The DNS list runtime of one loaded config: one engine (resolver, cache, health table) shared
// by every policy, one DnsCheck per distinct provider set, all entries parsed at creation.
// createDnsCheck() gives null when no policy (top level or listener profile) names a provider.

import type { Config, PolicyConfig } from '../config/schema.js';
import type { DnsQueryEvent } from '../events.js';
import type { Logger } from '../log/logger.js';
import { DnsblCheck, type DnsCheck } from './check.js';
import { DnsblEngine, type ZoneHealth } from './engine.js';
import { parseProviders } from './provider.js';

export interface DnsRuntime {
  forPolicy(p: PolicyConfig): DnsCheck | null;
  start(): Promise<void>;
  stop(): void;
  /** Each zone's health as the engine's own RFC 5782 tests found it. */
  health(): ZoneHealth[];
}

function providerLists(p: Pick<PolicyConfig, 'rwlProviders' | 'rblProviders'>): { rwl: string[]; rbl: string[] } {
  return { rwl: (p.rwlProviders ?? []).map(String), rbl: (p.rblProviders ?? []).map(String) };
}

class Runtime implements DnsRuntime {
  private readonly checks = new Map<string, DnsblCheck | null>();

  constructor(
    readonly engine: DnsblEngine,
    private readonly config: Config,
    private readonly policies: PolicyConfig[],
  ) {
    for (const p of policies) this.forPolicy(p); // parse every entry now: bad syntax fails the load
  }

  forPolicy(p: PolicyConfig): DnsCheck | null {
    const { rwl, rbl } = providerLists(p);
    if (rwl.length + rbl.length === 0) return null;
    const key = JSON.stringify([rwl, rbl]);
    let c = this.checks.get(key);
    if (c === undefined) {
      const d = this.config.dns;
      c = new DnsblCheck(this.engine, parseProviders(rwl), parseProviders(rbl), {
        threshold: d.threshold, skipPrivate: d.skipPrivate, timeout: d.timeout, action: d.action,
      });
      this.checks.set(key, c);
    }
    return c;
  }

  async start(): Promise<void> {
    const zones = new Set<string>();
    for (const p of this.policies) for (const z of (this.forPolicy(p) as DnsblCheck | null)?.zones() ?? []) zones.add(z);
    await this.engine.startHealthChecks([...zones]);
  }

  stop(): void {
    this.engine.stop();
  }

  health(): ZoneHealth[] {
    return this.engine.health();
  }
}

export function createDnsCheck(
  config: Config,
  logger: Logger,
  onQuery: (ev: DnsQueryEvent) => void,
  prev: DnsRuntime | null,
): DnsRuntime | null {
  const policies: PolicyConfig[] = [
    config,
    ...(config.listeners ?? []).map((l) => ({ ...config, ...(l.profile ?? {}) })),
  ];
  if (!policies.some((p) => {
    const { rwl, rbl } = providerLists(p);
    return rwl.length + rbl.length > 0;
  })) return null;
  const engine = new DnsblEngine({
    dns: config.dns,
    logger,
    onQuery,
    // A reload keeps the cached answers and zone health; the old resolver is stopped by the caller.
    ...(prev instanceof Runtime ? { prev: prev.engine } : {}),
  });
  try {
    return new Runtime(engine, config, policies);
  } catch (e) {
    engine.stop();
    throw e;
  }
}
