// Client address helpers: address bytes (the one IPv6 expansion in fakemx: ipv6Bytes),
// normalisation (IPv4-mapped IPv6 -> IPv4, lower-case, zone stripped), CIDR parsing and
// matching, and the per-network key that groups IPv6 clients for maxSessionsPerIp.
// Pure functions; the parsers return null for what is not an address, the rest throw a plain Error.

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

/** The four octets of a dotted quad (1-3 digits each, at most 255), or null. */
export function ipv4Bytes(s: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const b = m.slice(1).map(Number);
  return b.every((n) => n <= 255) ? b : null;
}

const V6_CHARS = /^[0-9a-f:.]+$/;

/**
 * The sixteen bytes of an IPv6 address, or null: `::` expanded, an embedded dotted IPv4 tail
 * (`::ffff:192.0.2.1`) read as the last 32 bits, a zone (`%eth0`) ignored, any case.
 * The only IPv6 expansion in fakemx: everything else that needs the full address asks here.
 */
export function ipv6Bytes(input: string): number[] | null {
  const pct = input.indexOf('%');
  let s = (pct >= 0 ? input.slice(0, pct) : input).toLowerCase();
  if (!V6_CHARS.test(s) || !s.includes(':')) return null;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const v4 = ipv4Bytes(s.slice(lastColon + 1));
    if (!v4) return null;
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const rest = halves.length === 2 && halves[1] !== '' ? halves[1]!.split(':') : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const out: number[] = [];
  const put = (g: string): boolean => {
    // Only hex digits, ':' and '.' got this far; a group is 1-4 hex digits.
    if (g.length === 0 || g.length > 4 || g.includes('.')) return false;
    const v = parseInt(g, 16);
    out.push(v >> 8, v & 0xff);
    return true;
  };
  for (const g of head) if (!put(g)) return null;
  for (let i = 0; i < (halves.length === 2 ? fill : 0); i++) out.push(0, 0);
  for (const g of rest) if (!put(g)) return null;
  return out;
}

/** Address bytes and family, or null; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as IPv4. */
export function ipBytes(ip: string): { family: 4 | 6; bytes: number[] } | null {
  const v4 = ipv4Bytes(ip);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = ipv6Bytes(ip);
  if (!v6) return null;
  if (v6.slice(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) return { family: 4, bytes: v6.slice(12) };
  return { family: 6, bytes: v6 };
}

/**
 * The network of an address, as text: the first v4bits (IPv4) or v6bits (IPv6) kept, RFC 5952
 * ("192.0.2.0/24", "2001:db8::/64"). null when `ip` is not an address.
 */
export function prefixText(ip: string, v4bits: number, v6bits: number): string | null {
  const b = ipBytes(ip);
  if (!b) return null;
  const bits = b.family === 4 ? v4bits : v6bits;
  const bytes = b.bytes.map((x, i) => x & (0xff << (8 - Math.max(0, Math.min(8, bits - i * 8)))) & 0xff);
  return `${ipText(b.family, bytes)}/${bits}`;
}

/** "192.0.2.1:25", "[2001:db8::1]:25": an address and port as one unambiguous string (RFC 3986 §3.2.2). */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The text of an address from its bytes: dotted IPv4, or IPv6 with the first longest run of
 * zero groups compressed (RFC 5952 §4.2), and a v4-mapped address in mixed form (§5).
 */
export function ipText(family: 4 | 6, bytes: readonly number[]): string {
  if (family === 4) return bytes.join('.');
  if (bytes[10] === 0xff && bytes[11] === 0xff && bytes.slice(0, 10).every((x) => x === 0)) return `::ffff:${bytes.slice(12, 16).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    // §4.2.2: a single zero group is not compressed.
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  return best < 0 ? groups.join(':') : `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function ipv4ToBig(ip: string): bigint {
  const p = ip.split('.');
  let n = 0n;
  for (const o of p) n = (n << 8n) | BigInt(Number(o));
  return n;
}

/** 128-bit value of an IPv6 address (accepts an embedded dotted IPv4 tail); throws if it is none. */
export function ipv6ToBig(ip: string): bigint {
  const b = ipv6Bytes(ip);
  if (!b) throw new Error(`not an IPv6 address: "${ip}"`);
  let hex = '0x';
  for (const x of b) hex += x < 16 ? `0${x.toString(16)}` : x.toString(16);
  return BigInt(hex);
}

export function parseCidr(text: string): Cidr {
  const t = text.trim();
  const slash = t.indexOf('/');
  const addr = normalizeIp(slash >= 0 ? t.slice(0, slash) : t);
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (family === 0) throw new Error(`not an IP address or CIDR: "${text}"`);
  // An IPv4-mapped address (::ffff:a.b.c.d) is matched as IPv4, but its prefix length is an
  // IPv6 one: /96../128 stand for /0../32; a shorter one is not a mapped network at all.
  const mapped = family === 4 && (slash >= 0 ? t.slice(0, slash) : t).includes(':');
  const max = mapped ? 128 : family === 4 ? 32 : 128;
  let bits = family === 4 ? 32 : 128;
  if (slash >= 0) {
    const b = t.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max) throw new Error(`bad prefix length in "${text}"`);
    bits = Number(b);
    if (mapped) {
      if (bits < 96) throw new Error(`bad prefix length in "${text}": an IPv4-mapped network is /96 to /128 (or write it as IPv4)`);
      bits -= 96;
    }
  }
  const value = family === 4 ? ipv4ToBig(addr) : ipv6ToBig(addr);
  const width = family === 4 ? 32 : 128;
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(width - bits);
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
  // Every connection asks: an IPv4 address (no colon) is its own key, without the IPv6 regex.
  if (!ip.includes(':')) return ip;
  const a = normalizeIp(ip);
  if (!isIPv6(a)) return a;
  const bits = Math.max(0, Math.min(128, v6prefix));
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits);
  return `${(ipv6ToBig(a) & mask).toString(16)}/${bits}`;
}

/** A loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or the name localhost. */
export function isLoopback(address: string): boolean {
  const a = normalizeIp(address.trim().toLowerCase());
  return a === 'localhost' || a === '::1' || (isIPv4(a) && a.startsWith('127.'));
}
