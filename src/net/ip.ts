// Client address helpers: normalisation (IPv4-mapped IPv6 -> IPv4, lower-case, zone
// stripped), CIDR parsing and matching, and the per-network key that groups IPv6 clients
// for maxSessionsPerIp. Pure functions; invalid input throws a plain Error with a reason.

import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  family: 4 | 6;
  /** Network bits as a bigint (IPv4 in the low 32 bits). */
  net: bigint;
  bits: number;
  text: string;
}

/** `::ffff:1.2.3.4` -> `1.2.3.4`; IPv6 lower-cased without zone; anything else as is. */
export function normalizeIp(ip: string): string {
  let s = ip;
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  if (s.includes(':')) {
    const lower = s.toLowerCase();
    if (lower.includes('ffff') && isIPv6(lower)) {
      const v = ipv6ToBig(lower);
      if (v >> 32n === 0xffffn) return [24n, 16n, 8n, 0n].map((sh) => String(Number((v >> sh) & 0xffn))).join('.');
    }
    return lower;
  }
  return s;
}

export function ipv4ToBig(ip: string): bigint {
  const p = ip.split('.');
  let n = 0n;
  for (const o of p) n = (n << 8n) | BigInt(Number(o));
  return n;
}

/** 128-bit value of an IPv6 address (accepts an embedded dotted IPv4 tail). */
export function ipv6ToBig(ip: string): bigint {
  let s = ip.toLowerCase();
  const dot = s.lastIndexOf(':');
  if (s.includes('.')) {
    const v4 = ipv4ToBig(s.slice(dot + 1));
    s = `${s.slice(0, dot + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  let n = 0n;
  for (const g of groups) n = (n << 16n) | BigInt(parseInt(g || '0', 16));
  return n;
}

export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addr = normalizeIp(slash >= 0 ? t.slice(0, slash) : t);
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (family === 0) throw new Error(`not an IP address or CIDR: "${text}"`);
  const max = family === 4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) throw new Error(`bad prefix length in "${text}"`);
    bits = Number(b);
  }
  const value = family === 4 ? ipv4ToBig(addr) : ipv6ToBig(addr);
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(max - bits);
  return { family, net: value & mask, bits, text: t };
}

export function cidrContains(c: Cidr, ip: string): boolean {
  const a = normalizeIp(ip);
  const fam = isIPv4(a) ? 4 : isIPv6(a) ? 6 : 0;
  if (fam !== c.family) return false;
  const max = fam === 4 ? 32 : 128;
  const v = fam === 4 ? ipv4ToBig(a) : ipv6ToBig(a);
  const mask = c.bits === 0 ? 0n : ((1n << BigInt(c.bits)) - 1n) << BigInt(max - c.bits);
  return (v & mask) === c.net;
}

/** Key for per-address counting: IPv4 as is, IPv6 by its /prefix network. */
export function prefixKey(ip: string, v6prefix: number): string {
  const a = normalizeIp(ip);
  if (!isIPv6(a)) return a;
  const bits = Math.max(0, Math.min(128, v6prefix));
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits);
  return `${(ipv6ToBig(a) & mask).toString(16)}/${bits}`;
}
