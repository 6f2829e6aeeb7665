// Duration keys (issue 14): a non-negative integer of milliseconds or a string with a unit
// ("25 minutes"), as convict's `duration` format reads them, in the file, the environment, a
// listener profile and proxyProtocol.timeout alike; the effective config holds numbers; a bad
// string is a ConfigError naming the key (exit 78 through the CLI in test/cli.test.ts).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { changedText, configValue } from '../../src/config/changed.js';
import { configTable } from '../../src/config/doc.js';
import { formatDuration, isDurationFormat, parseDuration } from '../../src/config/duration.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { leaves } from '../../src/config/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'fakemx-dur-'));
let n = 0;
function file(body: unknown): string {
  const p = join(dir, `c${++n}.json`);
  writeFileSync(p, JSON.stringify(body));
  return p;
}
function load(body: unknown, env: Record<string, string> = {}) {
  return loadConfig({ file: file(body), env });
}
function error(body: unknown, env: Record<string, string> = {}): ConfigError {
  try {
    load(body, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('loaded without an error');
}

const DAY = 86_400_000;

describe('parseDuration', () => {
  it.each([
    ['25 minutes', 1_500_000],
    ['4 hours', 14_400_000],
    ['36 days', 36 * DAY],
    ['1500 ms', 1500],
    ['1 minute', 60_000],
    ['90 s', 90_000],
    ['2 weeks', 14 * DAY],
    ['1 month', 30 * DAY], // moment's month
    ['1 year', 365 * DAY],
    ['24h', DAY],
    ['  10 Seconds ', 10_000],
    ['0 ms', 0],
    ['1500', 1500], // bare digits: milliseconds (convict; FAKEMX_* variables)
  ])('%j is %d ms', (text, ms) => expect(parseDuration(text)).toEqual({ ms }));

  it.each([
    ['5 fortnights', /unknown unit "fortnights"/],
    ['-3 minutes', /negative/],
    ['', /empty/],
    ['   ', /empty/],
    ['1.5 hours', /whole number/],
    ['minutes', /whole number followed by a unit/],
    ['5 minutes ago', /whole number followed by a unit/],
    ['99999999999 years', /too large/],
  ])('%j is refused', (text, why) => {
    const r = parseDuration(text);
    expect(r).toHaveProperty('error');
    expect((r as { error: string }).error).toMatch(why);
  });

  it('formats the way the docs show it', () => {
    expect([0, 1500, 60_000, 1_500_000, 14_400_000, 36 * DAY, 365 * DAY].map(formatDuration)).toEqual(['0 ms', '1500 ms', '1 minute', '25 minutes', '4 hours', '36 days', '1 year']);
  });
});

describe('duration keys in the config', () => {
  it('every key that holds a time is a duration, and only those', () => {
    const durations = leaves().filter(([, l]) => isDurationFormat(l.format)).map(([p]) => p);
    expect(durations.sort()).toEqual([
      'bannerDelay', 'cache.dnsblMinTtl', 'cache.failTtl', 'cache.passTtl.dnsbl', 'cache.passTtl.greet', 'cache.passTtl.pipelining',
      'dataTimeout', 'dns.healthCheckInterval', 'dns.maxTtl', 'dns.minTtl', 'dns.timeout', 'errorDelay',
      'greylist.greyExpiry', 'greylist.passtime', 'greylist.trapExpiry', 'greylist.whiteExpiry', 'logFlushInterval', 'maxSessionTime', 'receiveTimeout',
      'shutdownGrace', 'state.leaseTtl', 'state.redis.connectTimeout', 'state.timeout', 'tarpit.stutterInterval', 'tls.handshakeTimeout',
      'webhook.timeout',
    ]);
    // No key the docs call milliseconds, seconds or minutes is left a plain number.
    const timeDocs = leaves().filter(([, l]) => /\bMilliseconds\b|\bmilliseconds\b|, seconds\.|^Minutes/.test(l.doc)).map(([p]) => p);
    expect(timeDocs.filter((p) => !durations.includes(p))).toEqual([]);
  });

  it.each([
    ['greylist.passtime', { greylist: { passtime: '25 minutes' } }, 1_500_000],
    ['greylist.greyExpiry', { greylist: { greyExpiry: '4 hours' } }, 14_400_000],
    ['greylist.whiteExpiry', { greylist: { whiteExpiry: '36 days' } }, 36 * DAY],
    ['greylist.trapExpiry', { greylist: { trapExpiry: '1 day' } }, DAY],
    ['cache.passTtl.dnsbl', { cache: { passTtl: { dnsbl: '2 hours' } } }, 7_200_000],
    ['cache.failTtl', { cache: { failTtl: '30 minutes' } }, 1_800_000],
    ['state.timeout', { state: { timeout: '40 ms' } }, 40],
    ['bannerDelay', { bannerDelay: '1500 ms' }, 1500],
    ['receiveTimeout', { receiveTimeout: '2 minutes' }, 120_000],
    ['bannerDelay (number)', { bannerDelay: 2500 }, 2500],
    ['dns.minTtl (seconds)', { dns: { minTtl: '2 minutes' } }, 120],
    ['dns.maxTtl (seconds, number)', { dns: { maxTtl: 7200 } }, 7200],
    ['dns.healthCheckInterval (minutes)', { dns: { healthCheckInterval: '2 hours' } }, 120],
  ])('%s', (_name, body, want) => {
    const key = _name.split(' ')[0]!;
    expect(configValue(load(body).config, key)).toBe(want);
  });

  it.each([
    ['5 fortnights', { greylist: { passtime: '5 fortnights' } }, 'greylist.passtime', /must be a duration.*unknown unit "fortnights".*value was "5 fortnights"/],
    ['-3 minutes', { cache: { failTtl: '-3 minutes' } }, 'cache.failTtl', /must be a duration.*negative/],
    ['""', { bannerDelay: '' }, 'bannerDelay', /must be a duration.*empty string/],
    ['a negative number', { bannerDelay: -5 }, 'bannerDelay', /must be a duration, a positive integer/],
    ['bare digits in a file', { bannerDelay: '1500' }, 'bannerDelay', /must be a duration, .*got a string "1500" \(no unit\)/],
    ['a boolean', { state: { timeout: true } }, 'state.timeout', /must be a duration, .*got a boolean true/],
    ['over the range', { greylist: { passtime: '2 days' } }, 'greylist.passtime', /between 0 and 86400000 ms \(0 ms to 1 day\), got 172800000 ms \(2 days\)/],
    ['not whole seconds', { dns: { minTtl: '1500 ms' } }, 'dns.minTtl', /whole number of seconds/],
  ])('%s is a config error naming the key', (_n, body, key, why) => {
    const e = error(body);
    expect(e.key).toBe(key);
    expect(e.reason).toMatch(why);
    expect(e.message.split('\n')).toHaveLength(1);
  });

  it('FAKEMX_* variables take the same strings, and bare digits as the key\'s unit', () => {
    const c = load({}, { FAKEMX_GREYLIST_PASSTIME: '10 minutes', FAKEMX_BANNER_DELAY: '250', FAKEMX_DNS_MIN_TTL: '30' }).config;
    expect([c.greylist.passtime, c.bannerDelay, c.dns.minTtl]).toEqual([600_000, 250, 30]);
    const e = error({}, { FAKEMX_CACHE_FAIL_TTL: '5 fortnights' });
    expect([e.key, e.file]).toEqual(['cache.failTtl', 'environment FAKEMX_CACHE_FAIL_TTL']);
  });

  it('a listener profile takes the same strings and holds milliseconds, merged over the top level', () => {
    const { config, listeners } = load({
      greylist: { passtime: '20 minutes' },
      listeners: [
        { port: 2525, profile: { bannerDelay: '3 seconds', greylist: { passtime: '5 minutes', whiteExpiry: '10 days' }, cache: { passTtl: { greet: '12 hours' } } } },
        { port: 2526 },
      ],
    });
    expect(config.listeners[0]!.profile).toMatchObject({ bannerDelay: 3000, greylist: { passtime: 300_000, whiteExpiry: 10 * DAY }, cache: { passTtl: { greet: 43_200_000 } } });
    const p = listeners[0]!.policy;
    expect([p.bannerDelay, p.greylist.passtime, p.greylist.whiteExpiry, p.greylist.greyExpiry, p.cache.passTtl.greet, p.cache.passTtl.dnsbl]).toEqual([3000, 300_000, 10 * DAY, 14_400_000, 43_200_000, 3_600_000]);
    expect(listeners[1]!.policy.greylist.passtime).toBe(1_200_000);
  });

  it.each([
    ['5 fortnights', { greylist: { passtime: '5 fortnights' } }, 'listeners[0].profile.greylist.passtime', /unknown unit "fortnights"/],
    ['-3 minutes', { bannerDelay: '-3 minutes' }, 'listeners[0].profile.bannerDelay', /negative/],
    ['""', { cache: { failTtl: '' } }, 'listeners[0].profile.cache.failTtl', /empty string/],
    ['over the range', { greylist: { passtime: '2 days' } }, 'listeners[0].profile.greylist.passtime', /between 0 and 86400000 ms/],
  ])('profile: %s is a config error naming the key', (_n, profile, key, why) => {
    const e = error({ listeners: [{ port: 1, profile }] });
    expect(e.key).toBe(key);
    expect(e.reason).toMatch(why);
  });

  it('proxyProtocol.timeout is a duration too', () => {
    const { config } = load({ listeners: [{ port: 1, proxyProtocol: { trusted: ['127.0.0.1/32'], timeout: '3 seconds' } }] });
    expect(config.listeners[0]!.proxyProtocol!.timeout).toBe(3000);
    const e = error({ listeners: [{ port: 1, proxyProtocol: { trusted: ['127.0.0.1/32'], timeout: '3 fortnights' } }] });
    expect([e.key, e.reason]).toEqual(['listeners[0].proxyProtocol.timeout', expect.stringMatching(/unknown unit/) as unknown]);
  });

  it('proxyProtocol.timeout: default, and the same checks and messages as a schema duration', () => {
    const pp = (timeout?: unknown) => ({ listeners: [{ port: 1, proxyProtocol: { trusted: ['127.0.0.1/32'], ...(timeout === undefined ? {} : { timeout }) } }] });
    expect(load(pp()).config.listeners[0]!.proxyProtocol!.timeout).toBe(5000);
    expect(load(pp(120_000)).config.listeners[0]!.proxyProtocol!.timeout).toBe(120_000);
    const reason = (timeout: unknown) => {
      const e = error(pp(timeout));
      expect(e.key).toBe('listeners[0].proxyProtocol.timeout');
      return e.reason;
    };
    // The messages receiveTimeout (same format, a range) gets for the same values.
    const top = (receiveTimeout: unknown) => error({ receiveTimeout }).reason;
    expect(reason('5000')).toBe(top('5000'));
    expect(reason('5000')).toMatch(/no unit/);
    expect(reason('3 fortnights')).toBe(top('3 fortnights'));
    expect(reason('3 fortnights')).toMatch(/value was "3 fortnights"/);
    expect(reason(true)).toMatch(/must be a duration.*got a boolean true/);
    expect(reason(-5)).toMatch(/must be a duration.*value was -5/);
    expect(reason(99)).toBe('must be between 100 and 120000 ms (100 ms to 2 minutes), got 99 ms (99 ms)');
    expect(reason('3 minutes')).toBe('must be between 100 and 120000 ms (100 ms to 2 minutes), got 180000 ms (3 minutes)');
  });

  it('--changed shows milliseconds with the readable form; --get the number', () => {
    const c = load({ greylist: { passtime: '10 minutes', whiteExpiry: '36 days' }, dns: { minTtl: '2 minutes' } }).config;
    expect(changedText(c)).toBe('dns.minTtl = 120  # 2 minutes\ngreylist.passtime = 600000  # 10 minutes');
    expect(configValue(c, 'greylist.whiteExpiry')).toBe(36 * DAY);
  });

  it('the config reference shows defaults and ranges in readable units', () => {
    const t = configTable();
    expect(t).toContain('| `greylist.passtime` | `1500000` (25 minutes) |');
    expect(t).toContain('| `greylist.whiteExpiry` | `3110400000` (36 days) |');
    expect(t).toMatch(/`dns.minTtl` \| `60` \(1 minute\) .*\(0 seconds\.\.1 day; a duration\)/);
  });
});
