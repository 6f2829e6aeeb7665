// The console's throttle of wrong tokens per client address, on a test clock: blocked after
// MAX_FAILURES in a window (the block said once), free again when the window ends, bounded.
import { describe, expect, it } from 'vitest';
import { LoginThrottle, MAX_CLIENTS, MAX_FAILURES, WINDOW_MS } from '../../src/console/login-throttle.js';

describe('LoginThrottle', () => {
  it('blocks an address at its MAX_FAILURES-th wrong token, says so once, and frees it when the window ends', () => {
    let now = 1_000_000;
    const t = new LoginThrottle(() => now);
    const starts: boolean[] = [];
    for (let i = 0; i < MAX_FAILURES - 1; i++) starts.push(t.fail('192.0.2.1'));
    expect(t.wait('192.0.2.1')).toBe(0);
    starts.push(t.fail('192.0.2.1'));
    expect(starts.filter(Boolean)).toHaveLength(1);
    expect(starts.at(-1)).toBe(true);
    now += 1_000;
    expect(t.wait('192.0.2.1')).toBe(WINDOW_MS - 1_000);
    // More failures while blocked (none reach the check in the console, but say nothing again).
    expect(t.fail('192.0.2.1')).toBe(false);
    // Another address is not touched.
    expect(t.wait('192.0.2.2')).toBe(0);
    now += WINDOW_MS;
    expect(t.wait('192.0.2.1')).toBe(0);
    expect(t.tracked).toBe(0);
  });

  it('failures spread over more than a window never block', () => {
    let now = 0;
    const t = new LoginThrottle(() => now);
    for (let i = 0; i < 3 * MAX_FAILURES; i++) {
      expect(t.fail('192.0.2.9')).toBe(false);
      // At most MAX_FAILURES - 1 of them fall in any one window.
      now += WINDOW_MS / (MAX_FAILURES - 2);
    }
    expect(t.wait('192.0.2.9')).toBe(0);
  });

  it('tracks at most MAX_CLIENTS addresses, dropping the oldest', () => {
    const t = new LoginThrottle(() => 0);
    for (let i = 0; i <= MAX_CLIENTS; i++) t.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(t.tracked).toBe(MAX_CLIENTS);
  });
});
