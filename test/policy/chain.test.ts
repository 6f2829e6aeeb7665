// The policy chain without sockets: a Policy's per-session hooks over a fake SessionInfo and a
// recording observer, driven by vitest's fake clock. Table-driven cases for the pure pieces
// (tarpit shape, early-talk verdicts) and exact banner-delay timing on a test clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { PolicyConfig } from '../../src/config/schema.js';
import { Policy, type PolicyServices } from '../../src/policy/index.js';
import type { Observer } from '../../src/observer.js';
import { matchAccess, type AccessRule } from '../../src/policy/access.js';
import { earlyTalkVerdict } from '../../src/policy/early-talker.js';
import { PerIpLimiter } from '../../src/policy/limits.js';
import { checkRecipient } from '../../src/policy/recipients.js';
import { tarpitShape } from '../../src/policy/tarpit.js';
import { tempfailPoint } from '../../src/policy/tempfail.js';
import type { SessionInfo } from '../../src/smtp/hooks.js';
import { replies, type Reply } from '../../src/smtp/reply.js';
import { parseCidr } from '../../src/net/ip.js';

const base = loadConfig({ env: {}, overrides: { hostName: 'mx.test' } }).config;
const policy = (o: Partial<PolicyConfig> = {}): PolicyConfig => ({ ...base, ...o, tarpit: { ...base.tarpit, ...(o.tarpit ?? {}) } });

function session(errors = 0, ip = '192.0.2.1'): SessionInfo {
  return {
    id: 's1', remoteAddress: ip, remotePort: 4711, localAddress: '127.0.0.1', localPort: 25, listener: 'l',
    openedAt: Date.now(), helo: 'h', esmtp: true, tls: undefined, mailFrom: undefined, mailParams: undefined,
    rcptTo: [], counts: { commands: 0, errors, noop: 0, vrfy: 0, rcpt: 0, messages: 0, junk: 0, overshoot: 0, deferred: 0 },
  };
}

function services(over: Partial<PolicyServices> = {}): PolicyServices & { verdicts: [string, Record<string, unknown>][] } {
  const verdicts: [string, Record<string, unknown>][] = [];
  return {
    maxSessions: 100, active: () => 1, perIp: new PerIpLimiter(), ipKey: (ip) => ip, access: null,
    domains: null, mailboxes: null, corpus: null, dns: null, gone: () => undefined,
    observer: {
      verdict: (_s: SessionInfo, rec: { tag: string; atMs: number }) => {
        const { tag, atMs: _a, ...d } = rec;
        verdicts.push([tag, d]);
      },
      messageResult: () => undefined, stored: () => undefined, close: () => undefined, command: () => undefined, reply: () => undefined,
    } as unknown as Observer,
    verdicts, ...over,
  };
}

describe('tarpitShape', () => {
  const err = replies.unknownCommand();
  const ok = replies.ok();
  it.each<[string, Reply, number, Partial<PolicyConfig>, boolean, number, ReturnType<typeof tarpitShape>]>([
    ['no errors yet: no delay', err, 0, { errorDelay: 500 }, false, 1, undefined],
    ['errorDelay x errors so far', err, 3, { errorDelay: 500 }, false, 1, { delay: 1500, stutter: 0 }],
    ['a success reply is never delayed', ok, 3, { errorDelay: 500 }, false, 1, undefined],
    ['neutral 452 is not an error', replies.tooManyRcpts(), 3, { errorDelay: 500 }, false, 1, undefined],
    ['stutter for a client with errors', ok, 1, { errorDelay: 0, tarpit: { stutter: true, stutterInterval: 1000, highWater: 90 } }, false, 1, { delay: 0, stutter: 1000 }],
    ['stutter for a flagged client', ok, 0, { errorDelay: 0, tarpit: { stutter: true, stutterInterval: 250, highWater: 90 } }, true, 1, { delay: 0, stutter: 250 }],
    // A clean client (no errors, not flagged) is never stuttered at, even with stutter on.
    ['no stutter for a clean client', ok, 0, { errorDelay: 500, tarpit: { stutter: true, stutterInterval: 250, highWater: 90 } }, false, 1, undefined],
    // RFC 5321 §4.2.1: 4xx is an error reply too, not only 5xx.
    ['a 4xx error is delayed too', replies.authUnavailable(), 2, { errorDelay: 500 }, false, 1, { delay: 1000, stutter: 0 }],
    ['off above highWater', err, 3, { errorDelay: 500 }, false, 91, undefined],
    ['on at highWater', err, 3, { errorDelay: 500 }, false, 90, { delay: 1500, stutter: 0 }],
  ])('%s', (_n, reply, errors, cfg, flagged, active, want) => {
    expect(tarpitShape(session(errors), reply, policy(cfg), flagged, active, 100)).toEqual(want);
  });
});

describe('matchAccess: first matching rule wins, none matching is no verdict', () => {
  const rules: AccessRule[] = [
    { action: 'permit', cidr: parseCidr('192.0.2.10/32') },
    { action: 'reject', cidr: parseCidr('192.0.2.0/24') },
    { action: 'permit', cidr: parseCidr('2001:db8::/32') },
  ];
  it.each<[string, string, ReturnType<typeof matchAccess>]>([
    ['the first of two matching rules', '192.0.2.10', 'permit'],
    ['the only matching rule', '192.0.2.11', 'reject'],
    ['an IPv6 rule', '2001:db8::1', 'permit'],
    ['an address no rule covers', '198.51.100.1', null],
    ['an IPv6 address no rule covers', '2001:db9::1', null],
  ])('%s', (_n, ip, want) => {
    expect(matchAccess(rules, ip)).toBe(want);
  });
});

describe('checkRecipient: localDomains and localMailboxes', () => {
  const domains = new Set(['example.com']);
  const mailboxes = new Set(['alice@example.com']);
  const addr = (address: string) => {
    const at = address.lastIndexOf('@');
    return { address, local: at < 0 ? address : address.slice(0, at), domain: at < 0 ? '' : address.slice(at + 1), utf8: false };
  };
  it.each<[string, string, ReadonlySet<string> | null, ReadonlySet<string> | null, string | undefined]>([
    ['a local domain', 'bob@example.com', domains, null, undefined],
    ['a local domain in capitals', 'bob@EXAMPLE.Com', domains, null, undefined],
    ['another domain: relaying denied', 'bob@other.example', domains, null, '550 5.7.1'],
    ['bare <postmaster> with localDomains', 'postmaster', domains, null, undefined],
    ['bare <postmaster> with localMailboxes', 'postmaster', null, mailboxes, undefined],
    ['a listed mailbox in capitals', 'ALICE@Example.COM', null, mailboxes, undefined],
    ['an unlisted mailbox: unknown user', 'carol@example.com', null, mailboxes, '550 5.1.1'],
    ['postmaster@ a local domain is always a mailbox', 'Postmaster@example.com', domains, mailboxes, undefined],
  ])('%s', (_n, address, d, m, want) => {
    const r = checkRecipient(addr(address), d, m);
    expect(r && `${r.code} ${r.enhanced}`).toBe(want);
  });
});

describe('PerIpLimiter', () => {
  it('holds max slots per key, frees one per release, and forgets a key with none open', () => {
    const l = new PerIpLimiter();
    expect([l.acquire('a', 2), l.acquire('a', 2), l.acquire('a', 2), l.acquire('b', 2)]).toEqual([true, true, false, true]);
    l.release('a');
    expect(l.acquire('a', 2)).toBe(true);
    expect(l.acquire('a', 2)).toBe(false);
    l.release('a');
    l.release('a');
    l.release('b');
    expect(l.size).toBe(0);
    l.release('never');
    expect(l.size).toBe(0);
  });
});

describe('tempfailPoint', () => {
  it.each([
    ['off', false, true, null],
    ['off, sink', false, false, null],
    ['sink: refuse DATA itself', true, false, 'DATA'],
    ['store: keep the message, refuse the final dot', true, true, 'end of data'],
  ] as const)('%s', (_n, doTempFail, storeData, want) => expect(tempfailPoint({ doTempFail, storeData })).toBe(want));
});

describe('earlyTalkVerdict', () => {
  const ev = { kind: 'pregreet' as const, afterMs: 210, sample: Buffer.from('EHLO x\r\n') };
  it.each([
    ['drop', 'PREGREET', 554, undefined],
    ['enforce', 'PREGREET', undefined, 550],
    ['ignore', 'PREGREET', undefined, undefined],
  ] as const)('%s', (action, tag, reply, rcpt) => {
    const v = earlyTalkVerdict(ev, action);
    expect(v.tag).toBe(tag);
    expect(v.reply?.code).toBe(reply);
    expect(v.rcptReject?.code).toBe(rcpt);
    expect(v.details).toMatchObject({ afterMs: 210, sample: 'EHLO x\\r\\n', action });
  });
  it('under enforce every RCPT is refused but postmaster (RFC 5321 §4.5.1)', () => {
    const s = session();
    const hooks = new Policy(policy({ earlyTalkAction: 'enforce' }), services()).newSession(s);
    hooks.earlyTalk(s, ev);
    const to = (address: string) => ({ address, local: address.split('@')[0]!, domain: address.split('@')[1] ?? '', utf8: false });
    expect((hooks.rcpt(s, to('user@example.com')) as Reply | undefined)?.code).toBe(550);
    for (const pm of ['postmaster', 'PostMaster@example.com']) expect(hooks.rcpt(s, to(pm))).toBeUndefined();
  });
  it('pipelining names the command it did not wait for', () => {
    expect(earlyTalkVerdict({ kind: 'pipelining', afterMs: 5, sample: Buffer.from('RCPT'), after: 'MAIL' }, 'drop')).toMatchObject({ tag: 'PIPELINING', details: { after: 'MAIL' } });
  });
});

describe('connect: banner delay on a test clock', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the greeting is released exactly at bannerDelay', async () => {
    const s = session();
    const hooks = new Policy(policy({ bannerDelay: 1000 }), services()).newSession(s);
    let done = false;
    const p = Promise.resolve(hooks.connect(s)).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('a permitted client skips the delay and every check', async () => {
    const svc = services({ access: () => 'permit' });
    const s = session(3);
    const hooks = new Policy(policy({ bannerDelay: 1000, errorDelay: 500 }), svc).newSession(s);
    expect(hooks.connect(s)).toBeUndefined();
    expect(hooks.earlyTalk(s, { kind: 'pregreet', afterMs: 1, sample: Buffer.from('x') })).toBeUndefined();
    expect(hooks.shapeReply(s, replies.unknownCommand())).toBeUndefined();
    expect(svc.verdicts).toEqual([]);
  });

  it('the per-address limit is released when the session closes', () => {
    const svc = services();
    const pol = new Policy(policy({ bannerDelay: 0, maxSessionsPerIp: 1 }), svc);
    const [a, b, c] = [session(), session(), session()];
    const ha = pol.newSession(a);
    expect(ha.connect(a)).toBeUndefined();
    expect((pol.newSession(b).connect(b) as Reply).code).toBe(421);
    ha.close(a, { reason: 'quit', durationMs: 1 });
    const hc = pol.newSession(c);
    expect(hc.connect(c)).toBeUndefined();
    expect(svc.verdicts.map((v) => v[0])).toEqual(['LIMIT']);
    // The count map holds only addresses with open sessions: the last release drops the key.
    expect(svc.perIp.size).toBe(1);
    hc.close(c, { reason: 'quit', durationMs: 1 });
    expect(svc.perIp.size).toBe(0);
  });

  it('doTempFail without storing refuses DATA with 421 4.3.2 (TEMPFAIL)', () => {
    const svc = services();
    const s = session();
    const r = new Policy(policy({ doTempFail: true, storeData: false }), svc).newSession(s).dataStart(s) as Reply;
    expect([r.code, r.enhanced]).toEqual([421, '4.3.2']);
    expect(svc.verdicts.map((v) => v[0])).toEqual(['TEMPFAIL']);
  });
});
