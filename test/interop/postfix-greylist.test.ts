// A real Postfix as the client (Debian `postfix`, run privately by the test, never as a system
// service) delivering to a greylisting fakemx: deferred with 451 4.7.1, retried after its backoff,
// accepted and stored. Then an MX sandwich: two greylisting fake MX nodes sharing a Redis around a
// real MX (a storing fakemx in the real MX's place); Postfix tries them in MX order; the
// message is delivered and never bounced. Last, a message bigger than the fake MX's
// maxDataSize: deferred there (Postfix bounced it when told the SIZE limit), delivered to the
// real MX.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startListening, type Daemon } from '../helpers/daemon.js';
import { PrivatePostfix, postfixAvailable } from './postfix.js';
import { RedisServer } from './redis-server.js';

const work = mkdtempSync(join(tmpdir(), 'fakemx-postfix-'));
let redis: RedisServer;
const daemons: Daemon[] = [];
let pf: PrivatePostfix | undefined;
beforeAll(async () => {
  redis = await RedisServer.start();
});
afterAll(async () => {
  await redis?.stop();
  rmSync(work, { recursive: true, force: true });
});
afterEach(async () => {
  await pf?.stop();
  pf = undefined;
  for (const d of daemons.splice(0)) d.kill();
});

function stored(d: Daemon): string[] {
  const root = join(d.dir, 'corpus');
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((day) => readdirSync(join(root, day)).filter((f) => f.endsWith('.eml') && !f.startsWith('.tmp-')));
}

const until = async (cond: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
};

describe.runIf(postfixAvailable())('Postfix delivering to greylisting fakemx', () => {
  it('is deferred (451 4.7.1), retries, and is accepted', async () => {
    const mx = await startListening({ bannerDelay: 0, errorDelay: 0, greylist: { enabled: true, passtime: 3000 }, state: { path: join(work, 'state-1') } });
    daemons.push(mx);
    pf = await PrivatePostfix.start(join(work, 'pf-1'), [`[127.0.0.1]:${mx.port}`]);
    const t0 = Date.now();
    await pf.send('sender@client.test', 'alice@example.org', 'Subject: greylisting interop\r\n\r\nhello from postfix\r\n');
    expect(await until(() => stored(mx).length === 1, 40_000)).toBe(true);
    const waited = Date.now() - t0;
    const log = pf.log();
    expect(log).toMatch(/status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 451 4\.7\.1 Greylisted/);
    expect(log).toMatch(/status=sent \(250 /);
    expect(log).not.toMatch(/status=bounced/);
    expect(waited).toBeGreaterThanOrEqual(3000);
    await mx.waitFor('GREYLIST_PASS', 1000, (l) => l.via === 'retry');
  });

  it('MX sandwich with two greylisting fake MX nodes on one Redis and a real MX: delivered, never bounced', async () => {
    const prefix = 'sandwich:';
    const fake = { bannerDelay: 0, errorDelay: 0, greylist: { enabled: true }, state: { backend: 'redis', redis: { url: redis.url, prefix } } };
    const primary = await startListening(fake);
    const real = await startListening({ bannerDelay: 0, errorDelay: 0 });
    const last = await startListening(fake);
    daemons.push(primary, real, last);
    // MX order: fake primary, the real MX, fake last (no DNS: relayhost then smtp_fallback_relay).
    pf = await PrivatePostfix.start(join(work, 'pf-2'), [`[127.0.0.1]:${primary.port}`, `[127.0.0.1]:${real.port}`, `[127.0.0.1]:${last.port}`]);
    for (let i = 0; i < 3; i++) await pf.send('sender@client.test', `user${i}@example.org`, `Subject: sandwich ${i}\r\n\r\nmessage ${i}\r\n`);
    // On failure the message carries Postfix's log and the fake nodes' lines: a CI log is all there is to go on.
    const delivered = await until(() => stored(real).length === 3, 40_000);
    expect(delivered, `${pf.log().slice(-4000)}\n${[...primary.lines, ...last.lines].map((l) => JSON.stringify(l)).join('\n').slice(-4000)}`).toBe(true);
    const log = pf.log();
    expect(log).toMatch(/451 4\.7\.1 Greylisted/);
    expect(log).not.toMatch(/status=bounced/);
    expect(stored(primary)).toEqual([]);
    expect(stored(last)).toEqual([]);
    expect(await pf.queued()).toBe(0);
  });
});

describe.runIf(postfixAvailable())('Postfix delivering through a tempfailing fake MX', () => {
  it('a message over the fake MX maxDataSize is deferred there and delivered to the real MX, never bounced', async () => {
    const fake = await startListening({ bannerDelay: 0, errorDelay: 0, doTempFail: true, storeData: false, maxDataSize: 100_000 });
    const real = await startListening({ bannerDelay: 0, errorDelay: 0, maxDataSize: 10_000_000 });
    daemons.push(fake, real);
    pf = await PrivatePostfix.start(join(work, 'pf-3'), [`[127.0.0.1]:${fake.port}`, `[127.0.0.1]:${real.port}`]);
    await pf.send('sender@client.test', 'user@example.org', `Subject: big\r\n\r\n${'x'.repeat(76).concat('\r\n').repeat(3000)}`);
    // A bounce would reach the real MX too (to the sender): wait for the message's own delivery.
    expect(await until(() => /to=<user@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+.*status=sent/.test(pf!.log()), 40_000)).toBe(true);
    const log = pf.log();
    expect(log).toMatch(/421 4\.3\.2 Service temporarily unavailable.*\(in reply to MAIL FROM command\)/);
    expect(stored(real)).toHaveLength(1);
    expect(log).not.toMatch(/status=bounced/);
    expect(await pf.queued()).toBe(0);
  });
});
