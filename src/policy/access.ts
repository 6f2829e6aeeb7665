// The access list (postscreen_access_list): `permit CIDR` / `reject CIDR` lines, first
// match wins. Parsing lives with the other list files (src/config/lists.ts); this is the
// lookup, a linear scan, which is right for the short lists operators keep.

import type { AccessRule } from '../config/lists.js';
import { cidrContains } from '../net/ip.js';
import type { Reply } from '../smtp/reply.js';

export type { AccessRule };

export function matchAccess(rules: readonly AccessRule[], ip: string): 'permit' | 'reject' | null {
  for (const r of rules) if (cidrContains(r.cidr, ip)) return r.action;
  return null;
}

/** A `reject` entry: 554 5.7.1 and close at connect. */
export const accessDenied = (): Reply => ({ code: 554, enhanced: '5.7.1', text: 'access denied', close: true, outcome: 'access_reject' });
