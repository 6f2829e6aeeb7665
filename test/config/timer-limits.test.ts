// Every duration key that arms a Node timer (setTimeout/setInterval) has a range a timer can
// hold: Node fires a delay over 2^31-1 ms (24.8 days) after 1 ms, which is how a 30-day log
// roll became a roll per millisecond. Expiries kept as timestamps (cache and greylist TTLs,
// dns.maxTtl) may be longer; they are listed so a new key has to be put on one side or the other.
import { describe, expect, it } from 'vitest';
import { DURATION_UNITS, isDurationFormat } from '../../src/config/duration.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { leaves } from '../../src/config/schema.js';

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Keys whose value (in ms) is a timer's delay somewhere in src/. */
const ARMS_A_TIMER = [
  'receiveTimeout', 'bannerDelay', 'errorDelay', 'logFlushInterval', 'shutdownGrace', 'maxSessionTime', 'dataTimeout',
  'tarpit.stutterInterval', 'tls.handshakeTimeout', 'dns.timeout', 'dns.healthCheckInterval',
  'webhook.timeout', 'state.timeout', 'state.leaseTtl', 'state.redis.connectTimeout',
];
/** Keys that only ever become an expiry timestamp (state entries, the DNS cache), never a timer. */
const EXPIRY_ONLY = [
  'dns.minTtl', 'dns.maxTtl', 'cache.passTtl.greet', 'cache.passTtl.pipelining', 'cache.passTtl.dnsbl', 'cache.dnsblMinTtl', 'cache.failTtl',
  'greylist.passtime', 'greylist.greyExpiry', 'greylist.whiteExpiry', 'greylist.trapExpiry',
];

const durations = leaves().filter(([, l]) => isDurationFormat(l.format));

describe('duration keys and Node timers', () => {
  it('every duration key is listed as a timer delay or as an expiry', () => {
    expect(durations.map(([k]) => k).sort()).toEqual([...ARMS_A_TIMER, ...EXPIRY_ONLY].sort());
  });

  it.each(ARMS_A_TIMER)('%s: its largest value fits a Node timer', (key) => {
    const [, leaf] = durations.find(([k]) => k === key)!;
    const unit = DURATION_UNITS[leaf.format as keyof typeof DURATION_UNITS];
    const max = (leaf as { range?: { max: number } }).range?.max;
    expect(max).toBeDefined();
    expect(max! * unit).toBeLessThanOrEqual(MAX_TIMER_MS);
  });

  it('listeners[].proxyProtocol.timeout (read outside the schema) refuses a delay no timer holds', () => {
    const listen = (timeout: unknown) => () => loadConfig({ overrides: { listeners: [{ port: 1, proxyProtocol: { trusted: ['127.0.0.1'], timeout } }] }, env: {} });
    expect(listen('2 minutes')).not.toThrow();
    expect(listen(MAX_TIMER_MS + 1)).toThrow(ConfigError);
    expect(listen('25 days')).toThrow(ConfigError);
  });
});
