// receiveTimeout is an idle limit, kept as a lazily checked deadline (one timer per session,
// scheduled again for the rest when it fires early): a session that keeps talking is never cut
// however long it runs, and an idle one is cut receiveTimeout after its last input, not after
// the timer's first deadline. Real sockets on loopback, timings with wide margins.
import { afterEach, describe, expect, it } from 'vitest';
import { greeted, type RawClient } from '../helpers/client.js';
import { startServer, type TestServer } from '../helpers/server.js';

const T = 400;
let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Case {
  name: string;
  /** Keeps the session busy past several receive timeouts; returns the last reply code. */
  busy: (c: RawClient) => Promise<number>;
}

const cases: Case[] = [
  {
    name: 'commands every half timeout for three timeouts',
    busy: async (c) => {
      let code = 0;
      for (let i = 0; i < 6; i++) {
        await pause(T / 2);
        code = (await c.cmd('NOOP')).code;
        if (code !== 250) break;
      }
      return code;
    },
  },
  {
    name: 'a DATA body dripped every half timeout for three timeouts',
    busy: async (c) => {
      await c.cmd('MAIL FROM:<a@example.org>');
      await c.cmd('RCPT TO:<b@example.com>');
      expect((await c.cmd('DATA')).code).toBe(354);
      for (let i = 0; i < 6; i++) {
        await pause(T / 2);
        c.send(`line ${i}\r\n`);
      }
      return (await c.cmd('.')).code;
    },
  },
];

describe('receiveTimeout counts idle time only', () => {
  for (const k of cases) {
    it(`${k.name}: never timed out`, { timeout: 15_000 }, async () => {
      srv = await startServer({ receiveTimeout: T, maxSmtpNoop: 1000, storeData: false });
      const c = await greeted(srv.port);
      expect(await k.busy(c)).toBe(250);
    });
  }

  it('an idle client is cut receiveTimeout after its last command, not at the first deadline', { timeout: 15_000 }, async () => {
    // A longer timeout here: the bounds below tell "T after the NOOP" (right) from "the first
    // deadline, then a whole T more" (1.5 T) with 0.25 T of slack for a loaded machine.
    const T2 = 1000;
    srv = await startServer({ receiveTimeout: T2, maxSmtpNoop: 1000, storeData: false });
    const c = await greeted(srv.port);
    // The wait for this command began with the greeting; half a timeout later it is over.
    await pause(T2 / 2);
    expect((await c.cmd('NOOP')).code).toBe(250);
    const last = Date.now();
    const r = await c.reply(T2 * 5);
    const after = Date.now() - last;
    expect(r.code).toBe(421);
    expect(r.enhanced).toBe('4.4.2');
    expect(after).toBeGreaterThanOrEqual(T2 - 30);
    expect(after).toBeLessThan(T2 * 1.25);
    expect(await c.waitClose(2000)).toBe(true);
  });
});
