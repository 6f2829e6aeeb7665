// The policy session with a state store, without sockets: greylisting at RCPT and at DATA,
// greytraps, the client cache (pass skips the banner delay, fail acts at connect), leases
// shared by two nodes, and state.onError when the store fails or is slow. Stores over memory on
// a test clock; two StateStores over one backend stand for two nodes sharing Redis. The DNS
// list pass's TTL comes from real answers of the in-process DNS server (RFC 2308 SOA minimum).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { PolicyConfig } from '../../src/config/schema.js';
import type { DnsCheck } from '../../src/dnsbl/check.js';
import type { Observer } from '../../src/observer.js';
import { Policy, type PolicyServices } from '../../src/policy/index.js';
import { PerIpLimiter } from '../../src/policy/limits.js';
import { MAX_SESSION_VERDICTS, type PolicySession } from '../../src/policy/session.js';
import type { Address, MessageSink, SessionInfo } from '../../src/smtp/hooks.js';
import type { Reply } from '../../src/smtp/reply.js';
import { MemoryBackend } from '../../src/state/memory.js';
import { StateStore } from '../../src/state/store.js';
import { keys } from '../../src/state/types.js';
import { setup as dnsSetup, srv, useDnsServer } from '../helpers/dnsbl.js';

const MIN = 60_000;
const base = loadConfig({ env: {}, overrides: { hostName: 'mx.test' } }).config;

type Over = Partial<Omit<PolicyConfig, 'greylist' | 'cache'>> & { greylist?: Partial<PolicyConfig['greylist']>; cache?: Partial<PolicyConfig['cache']> };
const policy = (o: Over = {}): PolicyConfig => ({
  ...base, bannerDelay: 0, ...o,
  tarpit: { ...base.tarpit, ...(o.tarpit ?? {}) },
  greylist: { ...base.greylist, ...(o.greylist ?? {}) },
  cache: { ...base.cache, ...(o.cache ?? {}), passTtl: { ...base.cache.passTtl, ...(o.cache?.passTtl ?? {}) } },
});

const addr = (a: string): Address => ({ address: a, local: a.split('@')[0]!, domain: a.split('@')[1] ?? '', utf8: false });

let n = 0;
function session(ip = '192.0.2.1', from = 'sender@example.com', rcpt: string[] = []): SessionInfo & { counts: { rcpt: number } } {
  // Only what the policy reads; the engine's own fields are left out.
  const info: Record<string, unknown> = {
    id: `s${++n}`, remoteAddress: ip, remotePort: 4711, localAddress: '127.0.0.1', localPort: 25, listener: 'l',
    openedAt: Date.now(), helo: 'h', esmtp: true, tls: undefined, mailFrom: addr(from), mailParams: undefined,
    rcptTo: rcpt.map(addr), counts: { commands: 0, errors: 0, noop: 0, vrfy: 0, rcpt: 0, messages: 0, junk: 0, overshoot: 0, deferred: 0 },
  };
  return info as unknown as SessionInfo & { counts: { rcpt: number } };
}

function node(backend: MemoryBackend, clock: { t: number }, over: Partial<PolicyServices> = {}) {
  const state = new StateStore(backend, { timeout: 50, now: () => clock.t, leaseTtl: 60_000 });
  const verdicts: [string, Record<string, unknown>][] = [];
  const svc: PolicyServices = {
    maxSessions: 100, active: () => 1, perIp: new PerIpLimiter(), ipKey: (ip) => ip, access: null,
    domains: null, mailboxes: null, corpus: null, dns: null, gone: () => undefined,
    observer: {
      verdict: (_s: SessionInfo, rec: { tag: string; atMs: number }) => {
        const { tag, atMs: _a, ...d } = rec;
        verdicts.push([tag, d]);
      },
      messageResult: () => undefined, stored: () => undefined, close: () => undefined, command: () => undefined, reply: () => undefined,
    } as unknown as Observer,
    state, stateOnError: 'open', fleet: false, greylistAllow: null, traps: null,
    ...over,
  };
  return { svc, state, verdicts, tags: () => verdicts.map((v) => v[0]) };
}

function setup() {
  const clock = { t: Date.UTC(2026, 0, 1) };
  const backend = new MemoryBackend(() => clock.t);
  return { clock, backend };
}

/** connect, then RCPT for each recipient; the replies. */
async function deliver(pol: Policy, s: SessionInfo, rcpts: string[]): Promise<{ hooks: PolicySession; connect: Reply | undefined; rcpt: (Reply | undefined)[] }> {
  const hooks = pol.newSession(s);
  const connect = await hooks.connect(s);
  const rcpt: (Reply | undefined)[] = [];
  for (const r of rcpts) rcpt.push(await hooks.rcpt(s, addr(r)));
  return { hooks, connect, rcpt };
}

const close = (h: PolicySession, s: SessionInfo) => h.close(s, { reason: 'quit', durationMs: 1 });
const isSink = (x: Reply | MessageSink): x is MessageSink => 'write' in x;

describe('greylisting in a session', () => {
  it('at RCPT: 451 4.7.1 first; after passtime the retry passes; the network is allowlisted', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock);
    const pol = new Policy(policy({ greylist: { enabled: true } }), a.svc);
    const r1 = await deliver(pol, session(), ['alice@example.org']);
    expect(r1.rcpt[0]).toMatchObject({ code: 451, enhanced: '4.7.1' });
    expect(a.verdicts.find((v) => v[0] === 'GREYLISTED')?.[1]).toMatchObject({ net: '192.0.2.0/24', first: true, rcpt: 'alice@example.org' });
    clock.t += 10 * MIN;
    expect((await deliver(pol, session(), ['alice@example.org'])).rcpt[0]?.code).toBe(451);
    clock.t += 15 * MIN;
    const r3 = await deliver(pol, session('192.0.2.99'), ['alice@example.org']);
    expect(r3.rcpt[0]).toBeUndefined();
    expect(a.verdicts.at(-1)).toEqual(['GREYLIST_PASS', { net: '192.0.2.0/24', via: 'retry', waitedMs: 25 * MIN }]);
    const r4 = await deliver(pol, session('192.0.2.5', 'other@example.net'), ['bob@example.org', 'carol@example.org']);
    expect(r4.rcpt).toEqual([undefined, undefined]);
    expect(a.verdicts.at(-1)).toEqual(['GREYLIST_PASS', { net: '192.0.2.0/24', via: 'allowlist' }]);
  });

  it('at DATA (spamd): RCPTs are accepted, DATA gets 451 until the retry is due', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock);
    const pol = new Policy(policy({ storeData: false, greylist: { enabled: true, at: 'data' } }), a.svc);
    const s = session('192.0.2.1', 'sender@example.com', ['alice@example.org']);
    const { hooks, rcpt } = await deliver(pol, s, ['alice@example.org']);
    expect(rcpt).toEqual([undefined]);
    expect(await hooks.dataStart(s)).toMatchObject({ code: 451, enhanced: '4.7.1' });
    clock.t += 26 * MIN;
    const s2 = session('192.0.2.1', 'sender@example.com', ['alice@example.org']);
    const d = await pol.newSession(s2).dataStart(s2);
    expect(isSink(d)).toBe(true);
  });

  it('exempt: allowList senders/recipients, and a client the access list permits', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock, { greylistAllow: { from: new Set(['@bank.example']), to: new Set(['postmaster@example.org']) } });
    const pol = new Policy(policy({ greylist: { enabled: true } }), a.svc);
    expect((await deliver(pol, session('192.0.2.1', 'x@bank.example'), ['alice@example.org'])).rcpt).toEqual([undefined]);
    expect((await deliver(pol, session(), ['postmaster@example.org'])).rcpt).toEqual([undefined]);
    const p = node(backend, clock, { access: () => 'permit' });
    expect((await deliver(new Policy(policy({ greylist: { enabled: true } }), p.svc), session(), ['alice@example.org'])).rcpt).toEqual([undefined]);
    expect(a.tags()).toEqual([]);
  });

  it('greylisting is per profile: a listener without it never greylists', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock);
    expect((await deliver(new Policy(policy(), a.svc), session(), ['alice@example.org'])).rcpt).toEqual([undefined]);
  });

  it('two nodes sharing the store: greylisted on A, the retry on B after passtime passes', async () => {
    const { clock, backend } = setup();
    const A = new Policy(policy({ greylist: { enabled: true } }), node(backend, clock).svc);
    const B = new Policy(policy({ greylist: { enabled: true } }), node(backend, clock).svc);
    expect((await deliver(A, session(), ['alice@example.org'])).rcpt[0]?.code).toBe(451);
    clock.t += 25 * MIN;
    expect((await deliver(B, session(), ['alice@example.org'])).rcpt[0]).toBeUndefined();
  });
});

describe('greytraps in a session', () => {
  it('a trap hit tempfails and traps the client: its next session is flagged and tempfailed, never allowlisted', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock, { traps: new Set(['trap@example.org']) });
    const pol = new Policy(policy({ greylist: { enabled: true }, tarpit: { stutter: true, stutterInterval: 100, highWater: 90 } }), a.svc);
    const r1 = await deliver(pol, session(), ['trap@example.org']);
    expect(r1.rcpt[0]).toMatchObject({ code: 451 });
    expect(a.verdicts.find((v) => v[0] === 'TRAP')?.[1]).toEqual({ hit: true, rcpt: 'trap@example.org' });
    expect((await a.state.get(keys.trap('192.0.2.1')))?.value.rcpt).toBe('trap@example.org');
    clock.t += 30 * MIN;
    const s2 = session();
    const r2 = await deliver(pol, s2, ['alice@example.org']);
    expect(r2.rcpt[0]?.code).toBe(451);
    expect(a.verdicts.filter((v) => v[0] === 'TRAP').at(-1)?.[1]).toMatchObject({ known: true, rcpt: 'trap@example.org' });
    // Stuttered from the first reply on.
    expect(r2.hooks.shapeReply(s2, { code: 250, text: 'ok' })).toEqual({ delay: 0, stutter: 100 });
    expect(a.tags()).not.toContain('GREYLIST_PASS');
  });

  it('a trap on B blocks the client on A (shared state)', async () => {
    const { clock, backend } = setup();
    const A = node(backend, clock, { traps: new Set(['trap@example.org']) });
    const B = node(backend, clock, { traps: new Set(['trap@example.org']) });
    await deliver(new Policy(policy({ greylist: { enabled: true } }), B.svc), session(), ['trap@example.org']);
    const r = await deliver(new Policy(policy({ greylist: { enabled: true } }), A.svc), session(), ['alice@example.org']);
    expect(r.rcpt[0]?.code).toBe(451);
    expect(A.tags()).toContain('TRAP');
  });

  it('on a corpus profile without greylisting, a trapped client is accepted and its messages marked TRAP', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock, { traps: new Set(['trap@example.org']) });
    const pol = new Policy(policy({ storeData: false }), a.svc);
    const r = await deliver(pol, session(), ['trap@example.org']);
    expect(r.rcpt).toEqual([undefined]);
    expect(r.hooks.verdicts.map((v) => v.tag)).toEqual(['TRAP']);
    const s2 = session();
    const r2 = await deliver(pol, s2, ['alice@example.org']);
    expect(r2.rcpt).toEqual([undefined]);
    expect(r2.hooks.verdicts.map((v) => v.tag)).toEqual(['TRAP']);
  });
});

describe('verdicts a session keeps', () => {
  it('past MAX_SESSION_VERDICTS they are logged, not kept: a trap hit per recipient on a profile that accepts them', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock, { traps: new Set(['trap@example.org']) });
    const pol = new Policy(policy({ storeData: false, maxSmtpRcpt: 1000 }), a.svc);
    const n = MAX_SESSION_VERDICTS + 150;
    const r = await deliver(pol, session(), Array.from({ length: n }, () => 'trap@example.org'));
    expect(r.rcpt.every((x) => x === undefined)).toBe(true);
    expect(a.tags().filter((t) => t === 'TRAP')).toHaveLength(n);
    expect(r.hooks.verdicts).toHaveLength(MAX_SESSION_VERDICTS);
    expect(r.hooks.verdictsOmitted).toBe(150);
  });
});

describe('client cache in a session', () => {
  it('a client that passed the banner delay skips it next time (CACHE_PASS); others still wait', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock);
    const pol = new Policy(policy({ bannerDelay: 80, cache: { enabled: true } }), a.svc);
    const s1 = session();
    let t0 = Date.now();
    await pol.newSession(s1).connect(s1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
    await new Promise((r) => setTimeout(r, 5));
    expect(await a.state.get(keys.pass('greet', '192.0.2.1'))).not.toBeNull();
    const s2 = session();
    t0 = Date.now();
    expect(await pol.newSession(s2).connect(s2)).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(40);
    expect(a.verdicts.at(-1)).toEqual(['CACHE_PASS', { tests: ['greet'] }]);
    // Past passTtl.greet it waits again.
    clock.t += base.cache.passTtl.greet;
    const s3 = session();
    t0 = Date.now();
    await pol.newSession(s3).connect(s3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(75);
  });

  it('an early talker is remembered: its next connection is dropped at connect (CACHE_FAIL) until failTtl', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock);
    const pol = new Policy(policy({ bannerDelay: 50, earlyTalkAction: 'drop', cache: { enabled: true } }), a.svc);
    const s1 = session('198.51.100.7');
    const h1 = pol.newSession(s1);
    void h1.connect(s1);
    expect(h1.earlyTalk(s1, { kind: 'pregreet', afterMs: 3, sample: Buffer.from('EHLO x\r\n') })?.code).toBe(554);
    close(h1, s1);
    await new Promise((r) => setTimeout(r, 5));
    const s2 = session('198.51.100.7');
    const r = await pol.newSession(s2).connect(s2);
    expect(r).toMatchObject({ code: 421, enhanced: '4.7.1', close: true });
    expect(a.verdicts.at(-1)?.[0]).toBe('CACHE_FAIL');
    expect(a.verdicts.at(-1)?.[1]).toMatchObject({ test: 'greet', action: 'drop' });
    clock.t += base.cache.failTtl;
    const s3 = session('198.51.100.7');
    const before = a.verdicts.length;
    expect(await pol.newSession(s3).connect(s3)).toBeUndefined();
    expect(a.verdicts.slice(before)).toEqual([]);
  });

  it('a session that never reached RCPT (connect, EHLO, QUIT) does not pass the pipelining test', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock);
    const pol = new Policy(policy({ cache: { enabled: true } }), a.svc);
    const s = session('192.0.2.2');
    const { hooks } = await deliver(pol, s, []);
    close(hooks, s);
    await new Promise((r) => setTimeout(r, 5));
    expect(await a.state.get(keys.pass('pipelining', '192.0.2.2'))).toBeNull();
  });

  it('a session that reached RCPT without talking out of turn passes the pipelining test', async () => {
    const { clock, backend } = setup();
    const a = node(backend, clock);
    const pol = new Policy(policy({ cache: { enabled: true } }), a.svc);
    const s = session();
    const { hooks } = await deliver(pol, s, ['alice@example.org']);
    s.counts.rcpt = 1;
    close(hooks, s);
    await new Promise((r) => setTimeout(r, 5));
    expect(await a.state.get(keys.pass('pipelining', '192.0.2.1'))).not.toBeNull();
    // Next time a PIPELINING event is not judged.
    const s2 = session();
    const h2 = pol.newSession(s2);
    await h2.connect(s2);
    expect(h2.earlyTalk(s2, { kind: 'pipelining', afterMs: 3, sample: Buffer.from('RCPT'), after: 'MAIL' })).toBeUndefined();
    expect(a.tags()).toEqual(['CACHE_PASS']);
  });
});

/** A DNS check answering `result(ip)`, and the addresses it was asked about. */
function dnsCheck(result: (ip: string) => Awaited<ReturnType<DnsCheck['check']>>) {
  const asked: string[] = [];
  const check: DnsCheck = {
    timeout: 100,
    action: 'drop',
    replyZone: () => 'bl.example',
    check: async (ip) => {
      asked.push(ip);
      return result(ip);
    },
  };
  return { check, asked };
}

describe('DNS list verdicts in the client cache (shared by a fleet)', () => {
  const dns = (listed: (ip: string) => boolean) =>
    dnsCheck((ip) => {
      const hit = listed(ip);
      return { score: hit ? 1 : 0, listed: hit, allowed: false, zones: [{ zone: 'bl.example', answers: hit ? ['127.0.0.2'] : [], matched: hit, weight: 1 }] };
    });

  it('not listed on A: B skips the lookup (CACHE_PASS dnsbl); listed on A: B drops it at connect naming the zone', async () => {
    const { clock, backend } = setup();
    const dA = dns((ip) => ip === '203.0.113.9');
    const dB = dns(() => false);
    const A = new Policy(policy({ cache: { enabled: true } }), node(backend, clock, { dns: dA.check }).svc);
    const b = node(backend, clock, { dns: dB.check });
    const B = new Policy(policy({ cache: { enabled: true } }), b.svc);
    const ok = session('192.0.2.1');
    expect(await A.newSession(ok).connect(ok)).toBeUndefined();
    const bad = session('203.0.113.9');
    expect(await A.newSession(bad).connect(bad)).toMatchObject({ code: 421, text: expect.stringContaining('bl.example') as unknown });
    await new Promise((r) => setTimeout(r, 5));
    const ok2 = session('192.0.2.1');
    expect(await B.newSession(ok2).connect(ok2)).toBeUndefined();
    const bad2 = session('203.0.113.9');
    expect(await B.newSession(bad2).connect(bad2)).toMatchObject({ code: 421, text: expect.stringContaining('blocked using bl.example') as unknown });
    // One lookup per client across the two nodes.
    expect(dA.asked).toEqual(['192.0.2.1', '203.0.113.9']);
    expect(dB.asked).toEqual([]);
    expect(b.verdicts.map((v) => v[0])).toEqual(['CACHE_PASS', 'CACHE_FAIL']);
    expect(b.verdicts[0]![1]).toEqual({ tests: ['dnsbl'] });
  });
});

describe('a DNSWL listing remembered by the client cache', () => {
  it('keeps the client exempt from greylisting when a later session (the other node) skips the lookup', async () => {
    const { clock, backend } = setup();
    // Listed on the block list and on the allow list: allowed (DNSWL), the block list skipped.
    const { check, asked } = dnsCheck(() => ({
      score: 1, listed: true, allowed: true,
      zones: [{ zone: 'wl.example', answers: ['127.0.10.2'], matched: true, weight: 1, allow: true, ttl: 600 }, { zone: 'bl.example', answers: ['127.0.0.2'], matched: true, weight: 1, ttl: 600 }],
    }));
    const cfg = policy({ cache: { enabled: true }, greylist: { enabled: true } });
    const A = new Policy(cfg, node(backend, clock, { dns: check }).svc);
    const b = node(backend, clock, { dns: check });
    const B = new Policy(cfg, b.svc);
    expect((await deliver(A, session('198.51.100.7'), ['alice@example.org'])).rcpt).toEqual([undefined]);
    await new Promise((r) => setTimeout(r, 5));
    const second = await deliver(B, session('198.51.100.7'), ['alice@example.org']);
    expect(asked).toEqual(['198.51.100.7']);
    expect(b.tags()).toEqual(['CACHE_PASS']);
    expect(second.rcpt).toEqual([undefined]);
    // The pass says which allow list vouched for the client.
    expect(await b.state.get(keys.pass('dnsbl', '198.51.100.7'))).toMatchObject({ value: { dnswl: 'wl.example' } });
  });
});

describe('fleet leases', () => {
  it('maxSessionsPerIp holds across two nodes and frees at close', async () => {
    const { clock, backend } = setup();
    clock.t = Date.now();
    const A = new Policy(policy({ maxSessionsPerIp: 2 }), node(backend, clock, { fleet: true }).svc);
    const B = new Policy(policy({ maxSessionsPerIp: 2 }), node(backend, clock, { fleet: true }).svc);
    const [s1, s2, s3, s4] = [session(), session(), session(), session()];
    const h1 = A.newSession(s1);
    expect(await h1.connect(s1)).toBeUndefined();
    expect(await B.newSession(s2).connect(s2)).toBeUndefined();
    expect(await A.newSession(s3).connect(s3)).toMatchObject({ code: 421, enhanced: '4.7.0' });
    close(h1, s1);
    await new Promise((r) => setTimeout(r, 5));
    expect(await B.newSession(s4).connect(s4)).toBeUndefined();
  });
});

/** A backend whose calls fail or hang. */
class BrokenBackend extends MemoryBackend {
  constructor(private readonly mode: 'fail' | 'hang') {
    super();
    Object.defineProperty(this, 'kind', { value: 'redis' });
  }
  override async getMany(): Promise<never> {
    if (this.mode === 'hang') return new Promise<never>(() => {});
    throw new Error('ECONNREFUSED');
  }
  override async acquire(): Promise<never> {
    return this.getMany();
  }
}

function broken(mode: 'fail' | 'hang', onError: 'open' | 'tempfail', over: Partial<PolicyServices> = {}, timeout = 30) {
  const state = new StateStore(new BrokenBackend(mode), { timeout });
  const { svc, tags } = node(new MemoryBackend(), { t: Date.now() }, { state, stateOnError: onError, ...over });
  return { svc, tags, state };
}

describe('state.onError', () => {
  it('open: a failing store skips greylisting and the cache; nothing is logged per session', async () => {
    const b = broken('fail', 'open');
    const r = await deliver(new Policy(policy({ greylist: { enabled: true }, cache: { enabled: true } }), b.svc), session(), ['alice@example.org']);
    expect(r.connect).toBeUndefined();
    expect(r.rcpt).toEqual([undefined]);
    expect(b.tags()).toEqual([]);
    expect(b.state.errors).toBeGreaterThanOrEqual(2);
  });

  it('tempfail: 421 4.3.0 at connect, 451 4.3.0 at RCPT', async () => {
    const b = broken('fail', 'tempfail');
    const pol = new Policy(policy({ greylist: { enabled: true } }), b.svc);
    const s = session();
    expect(await pol.newSession(s).connect(s)).toMatchObject({ code: 421, enhanced: '4.3.0', close: true });
    const open = broken('fail', 'tempfail');
    // A profile that reads no state at connect: the RCPT is where it fails.
    const h = new Policy(policy({ greylist: { enabled: true } }), open.svc).newSession(s);
    expect(await h.rcpt(s, addr('alice@example.org'))).toMatchObject({ code: 451, enhanced: '4.3.0' });
  });

  it('a hanging store costs a session at most the deadline, per call', async () => {
    // A 200 ms deadline, so one deadline and two apart stay clear of timer lateness under load.
    const b = broken('hang', 'open', { fleet: true }, 200);
    const pol = new Policy(policy({ greylist: { enabled: true }, cache: { enabled: true } }), b.svc);
    const s = session();
    const t0 = Date.now();
    expect(await pol.newSession(s).connect(s)).toBeUndefined();
    const dt = Date.now() - t0;
    // The lease and the client record are asked together: one deadline, not one after the other.
    expect(dt).toBeGreaterThanOrEqual(195);
    expect(dt).toBeLessThan(390);
  });
});

describe('a DNS list pass lasts as long as the DNS answer said (issue 14)', () => {
  useDnsServer();
  const SEC = 1000;

  /** One node with the cache (or only a fleet's sharing) over real DNS lookups on the test clock. */
  function dnsNode(o: { rbl: string[]; threshold?: number; cache?: Over['cache']; fleet?: boolean }, shared?: { clock: { t: number }; backend: MemoryBackend }) {
    const { clock, backend } = shared ?? setup();
    const d = dnsSetup({ rbl: o.rbl, dns: { threshold: o.threshold ?? 1, action: 'drop' }, clock });
    const n = node(backend, clock, { dns: d.check, fleet: o.fleet ?? false });
    const pol = new Policy(policy({ cache: o.cache ?? { enabled: true } }), n.svc);
    const connect = async (ip: string) => {
      const s = session(ip);
      const r = await pol.newSession(s).connect(s);
      return r;
    };
    /** The dnsbl pass entry's TTL in ms once written (writes are not awaited by the session), or null. */
    const passTtl = async (ip: string): Promise<number | null> => {
      for (let i = 0; i < 50; i++) {
        const e = await n.state.get(keys.pass('dnsbl', ip));
        if (e) return e.expiresAt - clock.t;
        await new Promise((r) => setTimeout(r, 2));
      }
      return null;
    };
    return { ...n, clock, backend, pol, connect, passTtl, engine: d.engine };
  }

  it('NXDOMAIN: min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5); the client skips the lookup until then, and is asked again after', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 90 } });
    const a = dnsNode({ rbl: ['bl.test'] });
    expect(await a.connect('192.0.2.7')).toBeUndefined();
    expect(await a.passTtl('192.0.2.7')).toBe(90 * SEC);
    a.clock.t += 89 * SEC;
    await a.connect('192.0.2.7');
    expect(a.verdicts.at(-1)).toEqual(['CACHE_PASS', { tests: ['dnsbl'] }]);
    expect(srv.count('7.2.0.192.bl.test', 'A')).toBe(1);
    a.clock.t += 2 * SEC;
    const before = a.verdicts.length;
    await a.connect('192.0.2.7');
    expect(a.tags().slice(before)).not.toContain('CACHE_PASS');
    expect(srv.count('7.2.0.192.bl.test', 'A')).toBe(2);
  });

  it('listed below dns.threshold: the A record TTL, the least over the lists asked', async () => {
    srv.zone('bl.test', { a: ['127.0.0.2'], ttl: 120 });
    srv.zone('b2.test', { rcode: 'NXDOMAIN', soa: { ttl: 600, minimum: 600 } });
    const a = dnsNode({ rbl: ['bl.test', 'b2.test'], threshold: 2 });
    expect(await a.connect('192.0.2.8')).toBeUndefined();
    expect(await a.passTtl('192.0.2.8')).toBe(120 * SEC);
  });

  it.each([
    ['a TTL under the floor is raised to cache.dnsblMinTtl', { ttl: 300, minimum: 5 }, {}, 60 * SEC],
    ['a TTL over cache.passTtl.dnsbl is cut to it', { ttl: 86_400, minimum: 86_400 }, { passTtl: { ...base.cache.passTtl, dnsbl: 600 * SEC } }, 600 * SEC],
    ['the floor is a config key', { ttl: 300, minimum: 5 }, { dnsblMinTtl: 10 * SEC }, 10 * SEC],
    ['the ceiling wins where they cross', { ttl: 300, minimum: 5 }, { dnsblMinTtl: 600 * SEC, passTtl: { ...base.cache.passTtl, dnsbl: 30 * SEC } }, 30 * SEC],
  ])('%s', async (_n, soa, cache, want) => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN', soa });
    const a = dnsNode({ rbl: ['bl.test'], cache: { enabled: true, ...cache } });
    await a.connect('192.0.2.9');
    expect(await a.passTtl('192.0.2.9')).toBe(want);
  });

  it('a check in which any list failed is not remembered as a pass', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 90 } });
    srv.zone('bad.test', { rcode: 'SERVFAIL' });
    const a = dnsNode({ rbl: ['bl.test', 'bad.test'] });
    expect(await a.connect('192.0.2.11')).toBeUndefined();
    expect(await a.passTtl('192.0.2.11')).toBeNull();
  });

  it('an answer from the local DNS cache counts only what is left of it', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 90 } });
    const a = dnsNode({ rbl: ['bl.test'] });
    await a.connect('192.0.2.10');
    expect(await a.passTtl('192.0.2.10')).toBe(90 * SEC);
    await a.state.del(keys.pass('dnsbl', '192.0.2.10'));
    a.clock.t += 30 * SEC;
    await a.connect('192.0.2.10');
    expect(srv.count('10.2.0.192.bl.test', 'A')).toBe(1);
    expect(await a.passTtl('192.0.2.10')).toBe(60 * SEC);
  });

  it('with redis (fleet) a verdict is shared without cache.enabled: one lookup per client per TTL across two nodes', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 90 } });
    const a = dnsNode({ rbl: ['bl.test'], cache: { enabled: false }, fleet: true });
    const b = dnsNode({ rbl: ['bl.test'], cache: { enabled: false }, fleet: true }, a);
    await a.connect('192.0.2.11');
    expect(await a.passTtl('192.0.2.11')).toBe(90 * SEC);
    await b.connect('192.0.2.11');
    expect(b.verdicts).toEqual([['CACHE_PASS', { tests: ['dnsbl'] }]]);
    expect(srv.count('11.2.0.192.bl.test', 'A')).toBe(1);
    // Nothing else of the client cache is remembered without cache.enabled.
    expect(await a.state.get(keys.pass('greet', '192.0.2.11'))).toBeNull();
    // A listed client is known to the other node too, and answered as dns.action says.
    srv.zone('bl.test', { a: ['127.0.0.2'], ttl: 300 });
    expect(await a.connect('203.0.113.12')).toMatchObject({ code: 421 });
    await new Promise((r) => setTimeout(r, 10));
    expect(await b.connect('203.0.113.12')).toMatchObject({ code: 421, text: expect.stringContaining('bl.test') as unknown });
    expect(srv.count('12.113.0.203.bl.test', 'A')).toBe(1);
  });

  it('with the local backend and cache.enabled false nothing is remembered', async () => {
    srv.zone('bl.test', { rcode: 'NXDOMAIN', soa: { ttl: 300, minimum: 90 } });
    const a = dnsNode({ rbl: ['bl.test'], cache: { enabled: false }, fleet: false });
    await a.connect('192.0.2.13');
    await new Promise((r) => setTimeout(r, 10));
    expect(await a.state.get(keys.pass('dnsbl', '192.0.2.13'))).toBeNull();
  });
});
