// DNS list entries in postscreen's syntax (postscreen_dnsbl_sites): `zone[=filter][*weight]`,
// the filter four octet patterns such as `127.0.0.[2..11;15]`. parseProvider() is the one
// parser: the config loader validates with it, the runtime and `fakemx dnsbl` use its result.

import { ipv4Bytes } from '../net/ip.js';

/** One octet pattern: inclusive ranges; `[2..11;15]` is [[2,11],[15,15]]. */
export type OctetPattern = readonly (readonly [number, number])[];

export interface ProviderEntry {
  /** The entry as configured. */
  raw: string;
  /** Lower case, no trailing dot. */
  zone: string;
  /** Four octet patterns, or null: any 127/8 answer matches. */
  filter: readonly OctetPattern[] | null;
  /** Defaults to 1; negative weights allow (postscreen). */
  weight: number;
}

const ZONE_RE = /^(?=.{1,200}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

function parseOctetNumber(s: string, raw: string): number {
  if (!/^\d{1,3}$/.test(s) || Number(s) > 255) throw new Error(`invalid DNS list entry "${raw}": bad octet "${s}"`);
  return Number(s);
}

function parseOctetPattern(p: string, raw: string): OctetPattern {
  if (!p.startsWith('[')) {
    const n = parseOctetNumber(p, raw);
    return [[n, n]];
  }
  if (!p.endsWith(']') || p.length < 3) throw new Error(`invalid DNS list entry "${raw}": bad pattern "${p}"`);
  const out: [number, number][] = [];
  for (const item of p.slice(1, -1).split(';')) {
    const range = item.split('..');
    if (range.length === 1) {
      const n = parseOctetNumber(range[0]!, raw);
      out.push([n, n]);
    } else if (range.length === 2) {
      const lo = parseOctetNumber(range[0]!, raw);
      const hi = parseOctetNumber(range[1]!, raw);
      if (lo > hi) throw new Error(`invalid DNS list entry "${raw}": empty range "${item}"`);
      out.push([lo, hi]);
    } else {
      throw new Error(`invalid DNS list entry "${raw}": bad range "${item}"`);
    }
  }
  return out;
}

/** Splits "127.0.[1..3].2" into octet patterns, the dots inside brackets kept. */
function splitFilter(f: string, raw: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of f) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0 || depth > 1) throw new Error(`invalid DNS list entry "${raw}": unbalanced brackets`);
    if (ch === '.' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new Error(`invalid DNS list entry "${raw}": unbalanced brackets`);
  parts.push(cur);
  return parts;
}

/** postscreen_dnsbl_sites syntax: `zone[=d.d.d.d][*weight]`, each d a number or `[n;m..k]`. */
export function parseProvider(raw: string): ProviderEntry {
  let s = String(raw).trim();
  let weight = 1;
  const star = s.lastIndexOf('*');
  if (star >= 0) {
    const w = s.slice(star + 1);
    if (!/^[+-]?\d{1,6}$/.test(w)) throw new Error(`invalid DNS list entry "${raw}": bad weight "${w}"`);
    weight = Number(w);
    s = s.slice(0, star);
  }
  let filter: OctetPattern[] | null = null;
  const eq = s.indexOf('=');
  if (eq >= 0) {
    const parts = splitFilter(s.slice(eq + 1), raw);
    if (parts.length !== 4) throw new Error(`invalid DNS list entry "${raw}": a filter has four octets`);
    filter = parts.map((p) => parseOctetPattern(p, raw));
    s = s.slice(0, eq);
  }
  const zone = s.toLowerCase().replace(/\.$/, '');
  if (!ZONE_RE.test(zone)) throw new Error(`invalid DNS list entry "${raw}": bad zone "${s}"`);
  return { raw: String(raw), zone, filter, weight };
}

export function parseProviders(list: readonly unknown[]): ProviderEntry[] {
  return list.map((e) => parseProvider(String(e)));
}

/** Whether a dotted-quad answer matches the entry (no filter: any answer matches). */
export function matchFilter(filter: readonly OctetPattern[] | null, answer: string): boolean {
  if (!filter) return true;
  const oct = ipv4Bytes(answer);
  if (!oct) return false;
  return filter.every((pat, i) => pat.some(([lo, hi]) => oct[i]! >= lo && oct[i]! <= hi));
}
