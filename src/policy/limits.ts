// Connection limits per client: at most maxSessionsPerIp sessions from one IPv4 address
// or one IPv6 /ipv6Prefix network at a time. Counts live in one Map that holds only
// keys with open sessions, so it is bounded by maxSessions.

import type { Reply } from '../smtp/reply.js';

/** One session too many from this address (or IPv6 network): 421 4.7.0 and close at connect. */
export const perIpLimit = (): Reply => ({ code: 421, enhanced: '4.7.0', text: 'too many connections from your address', close: true, outcome: 'limit' });

export class PerIpLimiter {
  private readonly counts = new Map<string, number>();

  /** Take a slot for `key`; false when the key already holds `max`. */
  acquire(key: string, max: number): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= max) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = this.counts.get(key);
    if (n === undefined) return;
    if (n <= 1) this.counts.delete(key);
    else this.counts.set(key, n - 1);
  }

  get size(): number {
    return this.counts.size;
  }
}
