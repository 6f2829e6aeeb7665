// The policy chain without sockets: a Policy's per-session hooks over a fake SessionInfo and a
// recording observer, driven by vitest's fake clock. Table-driven cases for the pure pieces
// (tarpit shape, early-talk verdicts) and exact banner-delay timing on a test clock.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { PolicyConfig } from '../../src/config/schema.js';
import { Policy, type PolicyServices } from '../../src/policy/index.js';
import type { Observer } from '../../src/observer.js';
import { earlyTalkVerdict } from '../../src/policy/early-talker.js';
import { PerIpLimiter } from '../../src/policy/limits.js';
import { tarpitShape } from '../../src/policy/tarpit.js';
import { tempfailPoint } from '../../src/policy/tempfail.js';
import type { SessionInfo } from '../../src/smtp/hooks.js';
import { replies, type Reply } from '../../src/smtp/reply.js';

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
    ['off above highWater', err, 3, { errorDelay: 500 }, false, 91, undefined],
    ['on at highWater', err, 3, { errorDelay: 500 }, false, 90, { delay: 1500, stutter: 0 }],
  ])('%s', (_n, reply, errors, cfg, flagged, active, want) => {
    expect(tarpitShape(session(errors), reply, policy(cfg), flagged, active, 100)).toEqual(want);
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
    expect(pol.newSession(c).connect(c)).toBeUndefined();
    expect(svc.verdicts.map((v) => v[0])).toEqual(['LIMIT']);
  });

  it('doTempFail without storing refuses DATA with 421 4.3.2 (TEMPFAIL)', () => {
    const svc = services();
    const s = session();
    const r = new Policy(policy({ doTempFail: true, storeData: false }), svc).newSession(s).dataStart(s) as Reply;
    expect([r.code, r.enhanced]).toEqual([421, '4.3.2']);
    expect(svc.verdicts.map((v) => v[0])).toEqual(['TEMPFAIL']);
  });
});
