// Scoring, FakeSMTP's order: any matching allow list wins (DNSWL); otherwise the weights of
// the matching block-list entries add up, listed once the sum reaches dns.threshold. Also
// the zone a listed client's reply names: the matched block list with the largest weight.

import type { DnsListResult, DnsZoneResult } from '../store/metadata.js';

/** The list result from per-entry results of the allow lists (wl) and the block lists (bl). */
export function score(wl: DnsZoneResult[], bl: DnsZoneResult[], threshold: number): DnsListResult {
  const allowed = wl.some((z) => z.matched);
  const score = bl.reduce((s, z) => s + (z.matched ? z.weight : 0), 0);
  const listed = !allowed && bl.some((z) => z.matched) && score >= threshold;
  return { score, listed, allowed, zones: [...wl, ...bl] };
}

/**
 * The matched zone with the largest weight (the first one on a tie), among `blockZones` when
 * given. In a listed result no allow list matched, so every matched zone is a block list's.
 */
export function replyZone(r: DnsListResult, blockZones?: ReadonlySet<string>): string {
  let best: DnsZoneResult | undefined;
  for (const z of r.zones) {
    if (!z.matched || (blockZones && !blockZones.has(z.zone))) continue;
    if (!best || z.weight > best.weight) best = z;
  }
  return best?.zone ?? '';
}
