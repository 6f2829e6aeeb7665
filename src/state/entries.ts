// The state store's entries as an operator sees and edits them, shared by `fakemx state` (the
// CLI) and the console's State page: what an entry is about, the search filter, the JSON view,
// and the allow/deny/trap entries an operator adds.

import type { Config } from '../config/schema.js';
import { cidrContains, ipBytes, ipText, normalizeIp, parseCidr } from '../net/ip.js';
import type { StateStore } from './store.js';
import { clientNetwork, keys, KINDS, kindOf, type Kind, type StateEntry } from './types.js';

/** The kinds an operator lists, searches and edits: all but leases (per-session bookkeeping). */
export const ENTRY_KINDS: readonly Kind[] = KINDS.filter((k) => k !== 'lease');

/** Whether a key is an entry an operator may see and delete (not a lease, not foreign). */
export function isEntryKey(key: string): boolean {
  const k = kindOf(key);
  return k !== null && k !== 'lease';
}

/**
 * The TTL an operator may give an entry (CLI --ttl, console ttlMs), in milliseconds: at least a
 * second, at most 400 days. Past about 8,000 years expiresAt is no Date, and listing or
 * exporting the store failed on that entry ("Invalid time value").
 */
export const TTL_RANGE = { min: 1000, max: 400 * 86_400_000, text: 'from 1000 to 400 days' } as const;

/** Why `what` cannot be added for `target` (deny and trap are about one client address), or null. */
export function addProblem(what: AddWhat, target: string): string | null {
  return what !== 'allow' && target.includes('/') ? `${what} takes one address, not a network` : null;
}

export interface StateFilter {
  kind?: string;
  ip?: string;
  net?: string;
  grep?: string;
}

/** The client address or network an entry is about (`grey:<net>|...`, `pass:<test>:<ip>`, ...). */
export function subjectOf(key: string): string {
  const kind = kindOf(key);
  const rest = key.slice(key.indexOf(':') + 1);
  if (kind === 'grey') return rest.slice(0, rest.indexOf('|'));
  if (kind === 'pass') return rest.slice(rest.indexOf(':') + 1);
  return rest;
}

export function cidrOf(text: string) {
  try {
    return parseCidr(text);
  } catch {
    return null;
  }
}

/**
 * The filter as a predicate, its address, network and text parsed once (a scan applies it to
 * thousands of entries); --ip matches the address and the networks holding it.
 */
export function compileFilter(f: StateFilter): (e: StateEntry) => boolean {
  const ip = f.ip ? normalizeIp(f.ip) : null;
  const net = f.net ? cidrOf(f.net) : null;
  const grep = f.grep ? f.grep.toLowerCase() : null;
  return (e) => {
    if (f.kind && kindOf(e.key) !== f.kind) return false;
    const subject = subjectOf(e.key);
    if (ip !== null && subject !== ip) {
      const c = subject.includes('/') ? cidrOf(subject) : null;
      if (!c || !cidrContains(c, ip)) return false;
    }
    if (f.net) {
      if (!net) return false;
      const sc = cidrOf(subject);
      if (!sc || sc.family !== net.family || sc.bits < net.bits) return false;
      const addr = subject.includes('/') ? subject.slice(0, subject.indexOf('/')) : subject;
      if (!cidrContains(net, addr)) return false;
    }
    if (grep !== null && !e.key.toLowerCase().includes(grep) && !JSON.stringify(e.value).toLowerCase().includes(grep)) return false;
    return true;
  };
}

/** Whether one entry passes the filter (compileFilter for many). */
export function matches(e: StateEntry, f: StateFilter): boolean {
  return compileFilter(f)(e);
}

/** An entry as export and the console's API show it. */
export function entryView(e: StateEntry, now: number): { key: string; kind: string | null; subject: string; expiresAt: string; ttlMs: number; value: StateEntry['value'] } {
  return { key: e.key, kind: kindOf(e.key), subject: subjectOf(e.key), expiresAt: new Date(e.expiresAt).toISOString(), ttlMs: e.expiresAt - now, value: e.value };
}

export type AddWhat = 'allow' | 'deny' | 'trap';

/** The most greylisting networks one `add allow` may stand for (a /12 at the default /24). */
export const MAX_ALLOW_NETWORKS = 4096;

/** An allow/deny/trap target that is well formed but cannot be taken as given (too wide). */
export class EntryProblem extends Error {}

/**
 * The networks an allow for `target` must name. Greylisting looks up exactly one allowlist key
 * per client, its network at greylist.ipv4Prefix / ipv6Prefix (policy/client-cache.ts), so an
 * entry for any other prefix would be kept and never read: an address or a narrower network
 * stands for the one network holding it (`widened`), a wider one for each network inside it,
 * at most MAX_ALLOW_NETWORKS of them.
 */
export function allowNetworks(target: string, config: Config): { nets: string[]; widened: boolean } {
  const slash = target.indexOf('/');
  const addr = slash < 0 ? target : target.slice(0, slash);
  const b = ipBytes(normalizeIp(addr));
  if (!b) throw new EntryProblem(`"${addr}" is not an IP address`);
  const total = b.family === 4 ? 32 : 128;
  const prefix = b.family === 4 ? config.greylist.ipv4Prefix : config.greylist.ipv6Prefix;
  const bits = slash < 0 ? total : parseCidr(target).bits;
  const net = (bytes: readonly number[]) => clientNetwork(ipText(b.family, bytes), prefix, prefix);
  // A bare address stands for its network by definition; only a narrower CIDR is widened.
  if (bits >= prefix) return { nets: [net(b.bytes)], widened: slash >= 0 && bits > prefix };
  if (prefix - bits > 12 || 2 ** (prefix - bits) > MAX_ALLOW_NETWORKS) {
    const key = b.family === 4 ? 'greylist.ipv4Prefix' : 'greylist.ipv6Prefix';
    throw new EntryProblem(`${target} holds 2^${prefix - bits} networks of /${prefix} (${key}); an allow covers at most ${MAX_ALLOW_NETWORKS}`);
  }
  // The networks inside: the first address of the target, then one step of a /prefix network each.
  let first = 0n;
  for (const x of b.bytes) first = (first << 8n) | BigInt(x);
  const hostBits = BigInt(total - bits);
  first = (first >> hostBits) << hostBits;
  const step = 1n << BigInt(total - prefix);
  const nets: string[] = [];
  for (let n = 0n; n < 1n << BigInt(prefix - bits); n++) {
    let v = first + n * step;
    const bytes = new Array<number>(total / 8);
    for (let i = bytes.length - 1; i >= 0; i--, v >>= 8n) bytes[i] = Number(v & 0xffn);
    nets.push(net(bytes));
  }
  return { nets, widened: false };
}

/** The keys an allow/deny/trap entry for `target` has (allow: the networks greylisting looks up). */
export function keysFor(what: AddWhat, target: string, config: Config): string[] {
  if (what === 'allow') return allowNetworks(target, config).nets.map((n) => keys.white(n));
  return [what === 'deny' ? keys.fail(target) : keys.trap(target)];
}

/** Writes an allow/deny/trap entry as an operator made it (`via`: who, for the record); the CLI and the console. */
export async function addEntry(store: StateStore, what: AddWhat, target: string, ttl: number | undefined, config: Config, via = 'manual'): Promise<{ keys: string[]; ttlMs: number; widened: boolean }> {
  const { nets, widened } = what === 'allow' ? allowNetworks(target, config) : { nets: [], widened: false };
  const ks = what === 'allow' ? nets.map((n) => keys.white(n)) : keysFor(what, target, config);
  const now = Date.now();
  const ms = ttl ?? (what === 'allow' ? config.greylist.whiteExpiry : what === 'deny' ? config.cache.failTtl : config.greylist.trapExpiry);
  // In slices: a wide allow is thousands of writes, never thousands of calls in flight at once.
  for (let i = 0; i < ks.length; i += 256) {
    await Promise.all(
      ks.slice(i, i + 256).map((key) => {
        const subject = subjectOf(key);
        const value =
          what === 'allow' ? { net: subject, first: now, last: now, n: 0, via }
          // test 'manual' is what makes a cached failure drop at connect (policy/client-cache.ts), whoever wrote it.
          : what === 'deny' ? { test: 'manual', at: now, ...(via === 'manual' ? {} : { via }) }
          : { ip: subject, rcpt: `(${via})`, at: now, hits: 0 };
        return store.set(key, value, ms);
      }),
    );
  }
  return { keys: ks, ttlMs: ms, widened };
}

/** An IP address or CIDR network as `add`/`del` take it, trimmed; null when it is neither. */
export function targetOf(value: string): string | null {
  const v = value.trim();
  // parseCidr checks the address part too, so one parse says it all.
  return cidrOf(v) === null ? null : v;
}

