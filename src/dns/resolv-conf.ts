// The nameservers of /etc/resolv.conf, used when dns.servers is empty. Only
// `nameserver` lines matter: fakemx asks fully qualified names, so search/domain/ndots
// are deliberately ignored (no search-domain appending, see issue 4).

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/** glibc's MAXNS: further nameserver lines are ignored by the C library too. */
export const MAX_NAMESERVERS = 3;

/** resolv.conf(5): with no nameserver line the local machine's server is used. */
export const DEFAULT_NAMESERVER = '127.0.0.1';

/** Nameserver addresses of a resolv.conf text, in order, at most MAX_NAMESERVERS. */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const m = /^nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const addr = m[1]!;
    // An IPv6 address may carry a zone (fe80::1%eth0); validate without it.
    const bare = addr.split('%')[0]!;
    if (isIP(bare) === 0) continue;
    out.push(addr);
    if (out.length >= MAX_NAMESERVERS) break;
  }
  return out;
}

/** Nameservers of the file (default /etc/resolv.conf); the local server when none or unreadable. */
export function readResolvConf(path = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [DEFAULT_NAMESERVER];
  }
  const ns = parseResolvConf(text);
  return ns.length > 0 ? ns : [DEFAULT_NAMESERVER];
}
