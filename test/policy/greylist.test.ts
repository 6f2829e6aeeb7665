// Greylisting, greytraps and the client cache as pure logic over the state store, on a test
// clock: every state transition spamd and postscreen define, with the TTLs the config names.
import { describe, expect, it } from 'vitest';
import { cachedFail, dnsblPassTtl, lookupClient, recordFail, recordPass, type CacheConfig } from '../../src/policy/client-cache.js';
import { parseGreylistAllow } from '../../src/config/lists.js';
import { greylist, greylistedReply, greylistExempt, type GreylistConfig } from '../../src/policy/greylist.js';
import { isTrapAddress, trapClient, trappedReply } from '../../src/policy/greytrap.js';
import { memoryStateStore } from '../../src/state/store.js';
import { keys } from '../../src/state/types.js';
import type { DnsZoneResult } from '../../src/store/metadata.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const cfg: GreylistConfig = {
  enabled: true, at: 'rcpt', passtime: 25 * MIN, greyExpiry: 4 * HOUR, whiteExpiry: 36 * DAY,
  ipv4Prefix: 24, ipv6Prefix: 64, allowList: '', trapAddresses: '', trapExpiry: DAY,
};

function setup() {
  let t = Date.UTC(2026, 0, 1);
  const store = memoryStateStore(() => t);
  return { store, advance: (ms: number) => (t += ms) };
}

const T = { ip: '192.0.2.10', from: 'sender@example.com', rcpt: 'alice@example.org' };

describe('greylisting (spamd semantics)', () => {
  it('first attempt is greylisted for passtime; a retry before passtime still is', async () => {
    const { store, advance } = setup();
    expect(await greylist(store, cfg, T)).toEqual({ result: 'greylisted', net: '192.0.2.0/24', first: true, retryInMs: 25 * MIN });
    advance(10 * MIN);
    expect(await greylist(store, cfg, T)).toEqual({ result: 'greylisted', net: '192.0.2.0/24', first: false, retryInMs: 15 * MIN });
    advance(15 * MIN - 1);
    expect((await greylist(store, cfg, T)).result).toBe('greylisted');
  });

  // Two nodes (one Redis) see the same retry: this node read no triplet entry, but the other
  // node's write lands first, so the set-if-absent finds it. The decision is then taken on
  // the other node's first-seen time, not this node's.
  it('a triplet another node wrote between our read and our write: its first-seen time decides', async () => {
    const race = async (waited: number) => {
      const { store, advance } = setup();
      await greylist(store, cfg, T); // the other node's first attempt
      advance(waited);
      const getMany = store.getMany.bind(store);
      let missed = false;
      store.getMany = async (ks) => {
        if (missed) return getMany(ks);
        missed = true;
        return ks.map(() => null); // read before the other node's write was seen
      };
      return greylist(store, cfg, T);
    };
    expect(await race(10 * MIN)).toEqual({ result: 'greylisted', net: '192.0.2.0/24', first: false, retryInMs: 15 * MIN });
    expect(await race(30 * MIN)).toEqual({ result: 'passed', net: '192.0.2.0/24', waitedMs: 30 * MIN });
  });

  it('a retry after passtime passes and allowlists the network; other triplets from it pass at once', async () => {
    const { store, advance } = setup();
    await greylist(store, cfg, T);
    advance(25 * MIN);
    expect(await greylist(store, cfg, T)).toEqual({ result: 'passed', net: '192.0.2.0/24', waitedMs: 25 * MIN });
    expect(await store.get(keys.grey('192.0.2.0/24', T.from, T.rcpt))).toBeNull();
    // Same /24, another address, another sender and recipient: the big sender's other outbound host.
    expect(await greylist(store, cfg, { ip: '192.0.2.200', from: 'x@example.net', rcpt: 'bob@example.org' })).toEqual({ result: 'allowlisted', net: '192.0.2.0/24' });
    // Another network is not.
    expect((await greylist(store, cfg, { ...T, ip: '192.0.3.10' })).result).toBe('greylisted');
  });

  it('a retry after greyExpiry starts over', async () => {
    const { store, advance } = setup();
    await greylist(store, cfg, T);
    advance(4 * HOUR);
    expect(await greylist(store, cfg, T)).toMatchObject({ result: 'greylisted', first: true });
  });

  it('the allowlist entry expires after whiteExpiry without deliveries, and each delivery refreshes it', async () => {
    const { store, advance } = setup();
    await greylist(store, cfg, T);
    advance(30 * MIN);
    await greylist(store, cfg, T);
    advance(35 * DAY);
    // A delivery on day 35 refreshes: it lasts 36 days from now.
    expect((await greylist(store, cfg, T)).result).toBe('allowlisted');
    advance(35 * DAY);
    expect((await greylist(store, cfg, T)).result).toBe('allowlisted');
    expect((await store.get(keys.white('192.0.2.0/24')))?.value.n).toBe(3);
    // Within a minute of a refresh the entry is not written again (its expiry moves with the minute).
    const before = (await store.get(keys.white('192.0.2.0/24')))!.expiresAt;
    advance(30_000);
    expect((await greylist(store, cfg, T)).result).toBe('allowlisted');
    expect((await store.get(keys.white('192.0.2.0/24')))!.expiresAt).toBe(before);
    advance(30_000);
    expect((await greylist(store, cfg, T)).result).toBe('allowlisted');
    expect((await store.get(keys.white('192.0.2.0/24')))!.expiresAt).toBe(before + 60_000);
    advance(36 * DAY + 60_000);
    expect(await greylist(store, cfg, T)).toMatchObject({ result: 'greylisted', first: true });
  });

  it('a whiteExpiry under two minutes is refreshed every half of it, so a steady sender never lapses', async () => {
    const { store, advance } = setup();
    const short = { ...cfg, passtime: MIN, whiteExpiry: MIN };
    await greylist(store, short, T);
    advance(MIN);
    expect((await greylist(store, short, T)).result).toBe('passed');
    advance(30_000);
    expect((await greylist(store, short, T)).result).toBe('allowlisted');
    // Refreshed at 30 s (not after REFRESH_EVERY_MS): still allowlisted 75 s after passing.
    advance(45_000);
    expect((await greylist(store, short, T)).result).toBe('allowlisted');
  });

  it('IPv6 clients are grouped by /64 (configurable)', async () => {
    const { store, advance } = setup();
    const v6 = { ...T, ip: '2001:db8:1:2::10' };
    await greylist(store, cfg, v6);
    advance(26 * MIN);
    expect(await greylist(store, cfg, { ...v6, ip: '2001:db8:1:2:ffff::1' })).toMatchObject({ result: 'passed', net: '2001:db8:1:2::/64' });
    expect((await greylist(store, { ...cfg, ipv6Prefix: 128 }, { ...v6, ip: '2001:db8:1:2::11' })).result).toBe('greylisted');
  });

  it('the reply is 451 4.7.1, names greylisting and the wait, and is neutral (not a client error)', () => {
    expect(greylistedReply(25 * MIN)).toEqual({ code: 451, enhanced: '4.7.1', text: 'Greylisted, please try again in 25 minutes', neutral: true });
    expect(greylistedReply(1).text).toBe('Greylisted, please try again in 1 second');
    expect(greylistedReply(3000).text).toBe('Greylisted, please try again in 3 seconds');
    expect(greylistedReply(59_001).text).toBe('Greylisted, please try again in 1 minute');
    expect(greylistedReply(61_000).text).toBe('Greylisted, please try again in 2 minutes');
  });

  it('a first attempt another node recorded passtime ago (read missed it, add found it) passes', async () => {
    const { store, advance } = setup();
    const greyKey = keys.grey('192.0.2.0/24', T.from, T.rcpt);
    const getMany = store.getMany.bind(store);
    // The other node's add lands between this node's read and its own add.
    store.getMany = async (ks) => {
      const got = await getMany(ks);
      await store.set(greyKey, { first: store.clock() - 25 * MIN }, cfg.greyExpiry);
      return got;
    };
    advance(HOUR);
    expect(await greylist(store, cfg, T)).toMatchObject({ result: 'passed', net: '192.0.2.0/24' });
  });

  it('the null sender is a triplet like any other', async () => {
    const { store, advance } = setup();
    await greylist(store, cfg, { ...T, from: '' });
    advance(26 * MIN);
    expect((await greylist(store, cfg, { ...T, from: '' })).result).toBe('passed');
  });
});

describe('greytraps', () => {
  const traps = new Set(['trap@example.org']);

  it('matches trap addresses case-insensitively', () => {
    expect(isTrapAddress(traps, 'Trap@Example.org')).toBe(true);
    expect(isTrapAddress(traps, 'alice@example.org')).toBe(false);
    expect(isTrapAddress(null, 'trap@example.org')).toBe(false);
    expect(trappedReply().code).toBe(451);
  });

  it('a trapped client is never allowlisted by a retry, and the trap overrides an allowlisting', async () => {
    const { store, advance } = setup();
    // Allowlisted first...
    await greylist(store, cfg, T);
    advance(26 * MIN);
    expect((await greylist(store, cfg, T)).result).toBe('passed');
    // ...then it writes to a trap.
    await trapClient(store, T.ip, 'trap@example.org', cfg.trapExpiry);
    expect((await greylist(store, cfg, T)).result).toBe('trapped');
    advance(2 * HOUR);
    expect((await greylist(store, cfg, T)).result).toBe('trapped');
    // Others of its network are still allowlisted (spamd traps the address).
    expect((await greylist(store, cfg, { ...T, ip: '192.0.2.11' })).result).toBe('allowlisted');
  });

  it('the trap lasts trapExpiry; a new hit extends it and counts', async () => {
    const { store, advance } = setup();
    await trapClient(store, T.ip, 'trap@example.org', DAY);
    advance(20 * HOUR);
    const e = await trapClient(store, T.ip, 'trap@example.org', DAY);
    expect(e.value.hits).toBe(2);
    advance(20 * HOUR);
    expect((await greylist(store, cfg, T)).result).toBe('trapped');
    advance(4 * HOUR);
    expect((await greylist(store, cfg, T)).result).toBe('greylisted');
  });
});

describe('greylist allowList file', () => {
  it('addresses and domains, for sender, recipient or both', () => {
    const a = parseGreylistAllow('# exempt\nfrom:bank.example\nto:postmaster@example.org\n@partner.example\nboss@example.com\n');
    expect(greylistExempt(a, 'x@bank.example', 'a@b')).toBe(true);
    expect(greylistExempt(a, 'a@b', 'x@bank.example')).toBe(false);
    expect(greylistExempt(a, 'a@b', 'Postmaster@example.org')).toBe(true);
    expect(greylistExempt(a, 'postmaster@example.org', 'a@b')).toBe(false);
    expect(greylistExempt(a, 'a@partner.example', 'x@y')).toBe(true);
    expect(greylistExempt(a, 'x@y', 'a@partner.example')).toBe(true);
    expect(greylistExempt(a, 'boss@example.com', 'x@y')).toBe(true);
    expect(greylistExempt(a, '', 'x@y')).toBe(false);
    expect(greylistExempt(null, 'boss@example.com', 'x@y')).toBe(false);
  });

  it('mail to postmaster is never greylisted (RFC 5321 §4.5.1), with or without an allowList', () => {
    for (const to of ['postmaster', 'Postmaster@example.com', 'POSTMASTER@x.test']) expect(greylistExempt(null, 'a@b', to)).toBe(true);
    for (const to of ['postmaster2@example.com', 'not-postmaster@example.com', 'x@postmaster.example']) expect(greylistExempt(null, 'a@b', to)).toBe(false);
  });

  it('a malformed line names the file and line', () => {
    expect(() => parseGreylistAllow('ok@example.com\nnot valid\n', 'allow.txt')).toThrow('allow.txt:2');
    expect(() => parseGreylistAllow('a@b@c\n')).toThrow(':1');
  });
});

describe('client cache (postscreen temporary allow/deny list)', () => {
  const cc: CacheConfig = { enabled: true, passTtl: { greet: DAY, pipelining: 30 * DAY, dnsbl: HOUR }, dnsblMinTtl: MIN, failTtl: HOUR };

  it('each test has its own pass TTL', async () => {
    const { store, advance } = setup();
    await recordPass(store, cc, T.ip, 'greet');
    await recordPass(store, cc, T.ip, 'pipelining');
    await recordPass(store, cc, T.ip, 'dnsbl', 10 * MIN);
    expect([...(await lookupClient(store, T.ip)).passed].sort()).toEqual(['dnsbl', 'greet', 'pipelining']);
    advance(10 * MIN);
    expect([...(await lookupClient(store, T.ip)).passed].sort()).toEqual(['greet', 'pipelining']);
    advance(DAY);
    expect([...(await lookupClient(store, T.ip)).passed]).toEqual(['pipelining']);
    advance(30 * DAY);
    expect((await lookupClient(store, T.ip)).passed.size).toBe(0);
  });

  it('a DNS answer TTL longer than passTtl.dnsbl is clamped to it', async () => {
    const { store, advance } = setup();
    await recordPass(store, cc, T.ip, 'dnsbl', 10 * DAY);
    advance(HOUR);
    expect((await lookupClient(store, T.ip)).passed.has('dnsbl')).toBe(false);
  });

  const zone = (ttl?: number): DnsZoneResult => ({ zone: 'bl.test', answers: [], matched: false, weight: 1, ...(ttl === undefined ? {} : { ttl }) });
  it.each<[string, CacheConfig, DnsZoneResult[], number]>([
    ['no TTL from any list: passTtl.dnsbl', cc, [], HOUR],
    ['the smallest answer TTL, in seconds', cc, [zone(900), zone(600), zone()], 10 * MIN],
    ['raised to dnsblMinTtl', cc, [zone(5)], MIN],
    ['cut to passTtl.dnsbl', cc, [zone(86_400)], HOUR],
    ['the ceiling wins when dnsblMinTtl is above it', { ...cc, dnsblMinTtl: 2 * HOUR }, [zone(5)], HOUR],
  ])('dnsblPassTtl: %s', (_name, c, zones, want) => {
    expect(dnsblPassTtl(c, zones)).toBe(want);
  });

  it('a failure is remembered for failTtl and forgets the passes', async () => {
    const { store, advance } = setup();
    await recordPass(store, cc, T.ip, 'greet');
    await recordFail(store, cc, T.ip, 'pipelining', { sample: 'MAIL' });
    const r = await lookupClient(store, T.ip);
    expect(r.passed.size).toBe(0);
    expect(r.failed?.value).toMatchObject({ test: 'pipelining', sample: 'MAIL' });
    advance(HOUR);
    expect((await lookupClient(store, T.ip)).failed).toBeNull();
  });

  it('a lookup also reports a trap', async () => {
    const { store } = setup();
    await trapClient(store, T.ip, 'trap@example.org', DAY);
    expect((await lookupClient(store, T.ip)).trapped?.value.rcpt).toBe('trap@example.org');
  });

  it('a cached failure acts as the failed test\'s action says', async () => {
    const { store } = setup();
    await recordFail(store, cc, T.ip, 'greet');
    const f = (await lookupClient(store, T.ip)).failed!;
    const base = { dnsAction: 'drop' as const, storeData: false };
    expect(cachedFail(f, T.ip, { ...base, earlyTalkAction: 'drop' }).reply).toMatchObject({ code: 421, enhanced: '4.7.1', close: true });
    expect(cachedFail(f, T.ip, { ...base, earlyTalkAction: 'enforce' })).toMatchObject({ action: 'enforce', reply: undefined, rcptReject: { code: 550 } });
    expect(cachedFail(f, T.ip, { ...base, earlyTalkAction: 'ignore' })).toEqual({ action: 'ignore', reply: undefined, rcptReject: undefined });
    // A manual deny (fakemx state deny) drops whatever earlyTalkAction says.
    await recordFail(store, cc, T.ip, 'manual');
    const m = (await lookupClient(store, T.ip)).failed!;
    expect(cachedFail(m, T.ip, { ...base, earlyTalkAction: 'ignore' })).toMatchObject({ action: 'drop', reply: { code: 421, close: true }, rcptReject: undefined });
    await recordFail(store, cc, T.ip, 'dnsbl', { zone: 'zen.example' });
    const d = (await lookupClient(store, T.ip)).failed!;
    expect(cachedFail(d, T.ip, { ...base, earlyTalkAction: 'ignore' }).reply?.text).toContain('blocked using zen.example');
    expect(cachedFail(d, T.ip, { earlyTalkAction: 'ignore', dnsAction: 'auto', storeData: true }).action).toBe('ignore');
  });

  it('a failTtl of 0 remembers nothing', async () => {
    const { store } = setup();
    await recordFail(store, { ...cc, failTtl: 0 }, T.ip, 'greet');
    expect((await lookupClient(store, T.ip)).failed).toBeNull();
  });
});

describe('lookupClient: one read of what is known', () => {
  it.each([
    ['greylisting off: no allowlist key is read', undefined, 5],
    ['greylisting on: the network\'s allowlist key too', keys.white('192.0.2.0/24'), 6],
  ] as const)('%s', async (_name, whiteKey, n) => {
    const { store } = setup();
    const asked: string[] = [];
    const getMany = store.getMany.bind(store);
    store.getMany = (ks) => (asked.push(...ks), getMany(ks));
    await store.set(keys.white('192.0.2.0/24'), { net: '192.0.2.0/24' }, Date.UTC(2027, 0, 1));
    const r = await lookupClient(store, T.ip, whiteKey);
    expect(asked).toHaveLength(n);
    expect(asked.some((k) => k.startsWith('white:'))).toBe(whiteKey !== undefined);
    expect(r.white === null).toBe(whiteKey === undefined);
  });
});

