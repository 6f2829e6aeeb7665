// Connection limits per client: at most maxSessionsPerIp sessions from one IPv4 address
// or one IPv6 /ipv6Prefix network at a time. Counts live in one Map that holds only
// keys with open sessions, so it is bounded by maxSessions.

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
