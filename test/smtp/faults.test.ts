// Fault containment: every hook, thrown from synchronously or rejected asynchronously, costs
// only its own session (421 4.3.0, SESSION_FAULT with the stack) while other sessions are
// in the middle of DATA and complete. Nothing escapes as an uncaught exception or an
// unhandled rejection: the process-level handlers below would see it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MessageSink, SessionHooks, SessionInfo } from '../../src/smtp/hooks.js';
import { replies } from '../../src/smtp/reply.js';
import { RawClient } from '../helpers/client.js';
import { startEngine, type Engine } from '../helpers/engine.js';
import { startServer, type TestServer } from '../helpers/server.js';

const escaped: unknown[] = [];
const onEscape = (e: unknown) => escaped.push(e);
beforeAll(() => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});
afterAll(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
});

type HookName = 'connect' | 'helo' | 'mail' | 'rcpt' | 'dataStart' | 'write' | 'end' | 'command' | 'reply' | 'shapeReply' | 'earlyTalk';
type Mode = 'sync' | 'async';

/** A session is the faulty one when it says EHLO fault.test (connect: when its port is marked). */
const faulty = (s: SessionInfo) => s.helo === 'fault.test';
/** The connect hook fails for the next connection only. */
let faultNext = false;

function boom(hook: string, mode: Mode): never | Promise<never> {
  const e = new Error(`injected ${mode} fault in ${hook}`);
  if (mode === 'async') return Promise.reject(e);
  throw e;
}

function hooksWith(target: HookName, mode: Mode, verdicts: { tag: string; details: Record<string, unknown> }[]): SessionHooks {
  const f = (name: HookName, s: SessionInfo) => name === target && faulty(s);
  const sink = (s: SessionInfo): MessageSink => ({
    write() {
      if (f('write', s)) return boom('write', mode);
      return undefined;
    },
    end() {
      if (f('end', s)) return boom('end', mode);
      return replies.queued('x');
    },
    abort() {},
  });
  return {
    connect: () => {
      if (target !== 'connect' || !faultNext) return undefined;
      faultNext = false;
      return boom('connect', mode);
    },
    helo: (_s, name) => (name === 'fault.test' && target === 'helo' ? boom('helo', mode) : undefined),
    mail: (s) => (f('mail', s) ? boom('mail', mode) : undefined),
    rcpt: (s) => (f('rcpt', s) ? boom('rcpt', mode) : undefined),
    dataStart: (s) => (f('dataStart', s) ? boom('dataStart', mode) : sink(s)),
    // These hooks cannot return a promise; an async fault there is a rejection nobody awaits,
    // which the engine never creates, so they are tested synchronously only.
    command: (_s, line) => {
      if (target === 'command' && line === 'NOOP fault') throw new Error('injected fault in command');
    },
    reply: (s, r) => {
      if (target === 'reply' && faulty(s) && r.code === 250 && s.mailFrom) throw new Error('injected fault in reply');
    },
    shapeReply: (s, r) => {
      if (target === 'shapeReply' && faulty(s) && r.code === 500) throw new Error('injected fault in shapeReply');
      return undefined;
    },
    earlyTalk: (s) => {
      if (target === 'earlyTalk' && faulty(s)) throw new Error('injected fault in earlyTalk');
      return undefined;
    },
    verdict: (_s, tag, details) => verdicts.push({ tag, details }),
  };
}

/** A healthy client that has sent half of its body and waits for the word to finish. */
async function midData(port: number): Promise<{ c: RawClient; finish: () => Promise<number> }> {
  const c = await RawClient.connect(port);
  expect((await c.reply()).code).toBe(220);
  expect((await c.cmd('EHLO good.test')).code).toBe(250);
  expect((await c.cmd('MAIL FROM:<a@example.org>')).code).toBe(250);
  expect((await c.cmd('RCPT TO:<b@example.com>')).code).toBe(250);
  expect((await c.cmd('DATA')).code).toBe(354);
  c.send('Subject: half\r\n\r\nfirst half\r\n');
  return {
    c,
    finish: async () => {
      const r = await c.cmd('second half\r\n.');
      return r.code;
    },
  };
}

let eng: Engine | undefined;
afterEach(async () => {
  await eng?.close();
  eng = undefined;
  faultNext = false;
});

const cases: [HookName, Mode, string][] = [];
for (const h of ['connect', 'helo', 'mail', 'rcpt', 'dataStart', 'write', 'end'] as HookName[]) for (const m of ['sync', 'async'] as Mode[]) cases.push([h, m, `${h} (${m})`]);
for (const h of ['command', 'reply', 'shapeReply', 'earlyTalk'] as HookName[]) cases.push([h, 'sync', `${h} (sync)`]);

describe('a fault in one hook costs one session', () => {
  it.each(cases)('%s %s: 421 4.3.0 for the faulty session, the others finish their DATA', async (hook, mode) => {
    const verdicts: { tag: string; details: Record<string, unknown> }[] = [];
    eng = await startEngine(hooksWith(hook, mode, verdicts), { advertisePipelining: hook !== 'earlyTalk' });
    const others = await Promise.all([midData(eng.port), midData(eng.port)]);

    faultNext = hook === 'connect';
    const bad = await RawClient.connect(eng.port);
    const script: Record<HookName, string[]> = {
      connect: [],
      helo: ['EHLO fault.test'],
      mail: ['EHLO fault.test', 'MAIL FROM:<x@example.org>'],
      rcpt: ['EHLO fault.test', 'MAIL FROM:<x@example.org>', 'RCPT TO:<y@example.com>'],
      dataStart: ['EHLO fault.test', 'MAIL FROM:<x@example.org>', 'RCPT TO:<y@example.com>', 'DATA'],
      write: ['EHLO fault.test', 'MAIL FROM:<x@example.org>', 'RCPT TO:<y@example.com>', 'DATA', 'body\r\n.'],
      end: ['EHLO fault.test', 'MAIL FROM:<x@example.org>', 'RCPT TO:<y@example.com>', 'DATA', 'body\r\n.'],
      command: ['EHLO fault.test', 'NOOP fault'],
      reply: ['EHLO fault.test', 'MAIL FROM:<x@example.org>'],
      shapeReply: ['EHLO fault.test', 'XBAD'],
      earlyTalk: ['EHLO fault.test', 'NOOP\r\nNOOP'],
    };
    let last = hook === 'connect' ? await bad.reply() : null;
    if (hook !== 'connect') {
      // The connect hook of a port not yet marked passes: the greeting comes first.
      expect((await bad.reply()).code).toBe(220);
      for (const line of script[hook]) {
        last = await bad.cmd(line);
        if (last.code === 421) break;
      }
      // A fault in the reply hook comes after that reply was written: the 421 follows it.
      if (hook === 'reply' && last?.code === 250) last = await bad.reply();
    }
    expect(last?.code).toBe(421);
    expect(last?.enhanced).toBe('4.3.0');
    expect(await bad.waitClose(2000)).toBe(true);
    const fault = verdicts.find((v) => v.tag === 'SESSION_FAULT');
    expect(fault?.details.error).toMatch(/injected/);
    expect(String(fault?.details.stack)).toMatch(/Error: injected/);

    for (const o of others) expect(await o.finish()).toBe(250);
    for (const o of others) expect((await o.c.cmd('QUIT')).code).toBe(221);
    // The engine still accepts and serves.
    const fresh = await RawClient.connect(eng.port);
    expect((await fresh.reply()).code).toBe(220);
    fresh.close();
    expect(escaped).toEqual([]);
  });
});

describe('a fault in the server wiring costs one session', () => {
  let srv: TestServer | undefined;
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });

  it('a throwing command listener (an embedding program\'s bug) gives that session 421 and SESSION_FAULT', async () => {
    srv = await startServer({ verboseLogging: false });
    const tags: string[] = [];
    srv.server.on('verdict', (v) => tags.push(v.tag));
    srv.server.on('command', (_s, line) => {
      if (line === 'NOOP boom') throw new Error('listener bug');
    });
    const good = await midData(srv.port);
    const c = await RawClient.connect(srv.port);
    await c.reply();
    await c.cmd('EHLO x.test');
    const r = await c.cmd('NOOP boom');
    expect(r.code).toBe(421);
    expect(r.enhanced).toBe('4.3.0');
    expect(tags).toContain('SESSION_FAULT');
    expect(await good.finish()).toBe(250);
    expect(srv.messages()).toHaveLength(1);
    expect(escaped).toEqual([]);
  });
});
