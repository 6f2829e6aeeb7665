// RFC 5782 §2 on the wire: the name asked for a client (octets or nibbles reversed, then the
// zone), which clients are not worth a query (private ranges), and which answers are not
// listings at all (outside 127/8, or Spamhaus's 127.255.255.0/24 "refused/limited").

import { ipBytes, ipv4Bytes } from '../net/ip.js';

/** RFC 5782 §2.1 (IPv4: octets reversed) and §2.4 (IPv6: 32 nibbles reversed); IPv4-mapped as IPv4. */
export function reverseName(ip: string): string | null {
  const a = ipBytes(ip);
  if (!a) return null;
  if (a.family === 4) return [...a.bytes].reverse().join('.');
  const nibbles: string[] = [];
  for (const b of a.bytes) nibbles.push((b >> 4).toString(16), (b & 0xf).toString(16));
  return nibbles.reverse().join('.');
}

export function queryName(ip: string, zone: string): string | null {
  const r = reverseName(ip);
  return r === null ? null : `${r}.${zone}`;
}

/** Private, loopback, link-local, CGNAT, ULA (and unspecified) addresses: not worth a query. */
export function isPrivate(ip: string): boolean {
  const a = ipBytes(ip);
  if (!a) return true;
  const b = a.bytes;
  if (a.family === 4) {
    return (
      b[0] === 0 || // RFC 1122 "this network"
      b[0] === 10 || // RFC 1918
      b[0] === 127 || // loopback
      (b[0] === 169 && b[1] === 254) || // RFC 3927 link-local
      (b[0] === 172 && (b[1]! & 0xf0) === 16) || // RFC 1918
      (b[0] === 192 && b[1] === 168) || // RFC 1918
      (b[0] === 100 && (b[1]! & 0xc0) === 64) // RFC 6598 CGNAT
    );
  }
  if (b.every((x) => x === 0)) return true; // ::
  if (b.slice(0, 15).every((x) => x === 0) && b[15] === 1) return true; // ::1
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return true; // fe80::/10 link-local
  if ((b[0]! & 0xfe) === 0xfc) return true; // RFC 4193 ULA fc00::/7
  return false;
}

/** RFC 5782 §2.3: answers are in 127/8; 127.255.255.0/24 is Spamhaus's "refused/limited". */
export function isBadAnswer(a: string): boolean {
  const b = ipv4Bytes(a);
  return !b || b[0] !== 127 || (b[1] === 255 && b[2] === 255);
}
