// Wrong console credentials per client address (the login form's token, a Bearer token, a
// login cookie): after MAX_FAILURES within WINDOW_MS the address gets 429 for what is left of
// the window, without a check, so http.token cannot be guessed at request rate and the log
// holds one CONSOLE_LOGIN_THROTTLED line per blocked window instead of a line per guess.
// At most MAX_CLIENTS addresses are tracked; past that the oldest entry goes.

export const MAX_FAILURES = 10;
export const WINDOW_MS = 60_000;
export const MAX_CLIENTS = 10_000;

export class LoginThrottle {
  private readonly seen = new Map<string, { since: number; n: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Milliseconds until `ip` may present credentials again; 0 when it may now. */
  wait(ip: string): number {
    const e = this.seen.get(ip);
    if (!e) return 0;
    const left = e.since + WINDOW_MS - this.now();
    if (left <= 0) {
      this.seen.delete(ip);
      return 0;
    }
    return e.n >= MAX_FAILURES ? left : 0;
  }

  /** A wrong credential from `ip`; true when it is the one that starts a block (log it once). */
  fail(ip: string): boolean {
    const now = this.now();
    let e = this.seen.get(ip);
    if (!e || now - e.since >= WINDOW_MS) {
      this.seen.delete(ip);
      if (this.seen.size >= MAX_CLIENTS) {
        const oldest = this.seen.keys().next().value;
        if (oldest !== undefined) this.seen.delete(oldest);
      }
      e = { since: now, n: 0 };
      this.seen.set(ip, e);
    }
    return ++e.n === MAX_FAILURES;
  }

  get tracked(): number {
    return this.seen.size;
  }
}
