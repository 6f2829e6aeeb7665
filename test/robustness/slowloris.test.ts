// Slowloris against the daemon (dist/cli.js as a child, as deployed): N sockets that drip a
// command one byte per interval are cut off by receiveTimeout, which bounds the whole line,
// not the gap between bytes; maxSessions holds under a flood; a permitted client is served
// meanwhile. N = FAKEMX_SOAK_SOCKETS (default 2,000; `npm run soak` uses 10,000).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { greeted } from '../helpers/client.js';
import { startListening, type Daemon } from '../helpers/daemon.js';

const SOCKETS = Math.max(10, Number(process.env.FAKEMX_SOAK_SOCKETS ?? 2000));
/**
 * Whole-line limit. It must outlast opening all the sockets (this VM opens ~1,500 loopback
 * connections a second), so the first dripper is still held when the flood comes.
 */
const RECEIVE_TIMEOUT = Number(process.env.FAKEMX_SOAK_TIMEOUT ?? Math.max(2500, 2000 + SOCKETS));
const DRIP_MS = Number(process.env.FAKEMX_SOAK_DRIP_MS ?? 500);
/** Attackers are held in the banner delay first: the permitted client skips it. */
const BANNER_DELAY = 1000;
/** Room above the drippers: the normal client, then part of the flood. */
const SLACK = 16;
const CAP = SOCKETS + SLACK;
const FLOOD = SLACK + 40;
/** Connections opened per wave: well under the listen backlog (511). */
const WAVE = 250;
const REPORT = process.env.FAKEMX_SOAK_REPORT;

const dir = mkdtempSync(join(tmpdir(), 'fakemx-slowloris-'));
const accessList = join(dir, 'access');
// The normal client comes from 127.0.0.2 (Linux routes all of 127/8 to lo).
writeFileSync(accessList, 'permit 127.0.0.2/32\n');

let d: Daemon | undefined;
// Last resort: never leave a daemon behind, even if the worker ends before afterAll.
process.once('exit', () => d?.kill());
afterAll(() => {
  d?.kill();
  if (d) rmSync(d.dir, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

interface Peer {
  sock: Socket;
  text: string;
  openedAt: number;
  greetedAt: number;
  closedAt: number;
  sent: number;
}

/** Open n raw sockets from 127.0.0.1 in waves; each records what it got and when. */
async function openPeers(port: number, n: number): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (let i = 0; i < n; i += WAVE) {
    const wave = Array.from({ length: Math.min(WAVE, n - i) }, () =>
      new Promise<Peer>((resolve) => {
        // No localAddress: an explicit bind() searches the port range per socket (5x slower).
        const p: Peer = { sock: connect({ port, host: '127.0.0.1' }), text: '', openedAt: Date.now(), greetedAt: 0, closedAt: 0, sent: 0 };
        p.sock.setEncoding('latin1');
        p.sock.on('data', (s: string) => {
          p.text += s;
          if (!p.greetedAt && p.text.startsWith('220 ')) p.greetedAt = Date.now();
        });
        p.sock.on('error', () => undefined);
        p.sock.on('close', () => (p.closedAt = Date.now()));
        p.sock.once('connect', () => resolve(p));
        p.sock.once('error', () => resolve(p));
      }),
    );
    peers.push(...(await Promise.all(wave)));
  }
  return peers;
}

const until = async (cond: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

/**
 * Concurrent sessions over time, replayed from the daemon's own OPEN/CLOSE lines (logged in
 * event order): the most at once, and how many were open at each maxSessions refusal.
 */
function replay(lines: Record<string, unknown>[]): { max: number; atRefusal: number[] } {
  let now = 0;
  let max = 0;
  const atRefusal: number[] = [];
  for (const l of lines) {
    if (l.tag === 'OPEN') max = Math.max(max, ++now);
    else if (l.tag === 'CLOSE') now--;
    else if (l.tag === 'LIMIT' && l.limit === 'maxSessions') atRefusal.push(now);
  }
  return { max, atRefusal };
}

describe(`slowloris: ${SOCKETS} dripping sockets`, () => {
  it('receiveTimeout cuts every dripper, maxSessions holds, a permitted client is served meanwhile', { timeout: 30_000 + SOCKETS * 5 }, async () => {
    d = await startListening({
      hostName: 'mx.test', bannerDelay: BANNER_DELAY, errorDelay: 0, receiveTimeout: RECEIVE_TIMEOUT,
      maxSessions: CAP, maxSessionsPerIp: CAP + FLOOD, accessList, storeData: true, logLevel: 'info',
    });
    const pid = d.child.pid!;
    const rss0 = rssKb(pid);
    const t0 = Date.now();

    // 1. The drippers: each, once greeted, sends its EHLO line one byte per DRIP_MS.
    const drippers = await openPeers(d.port, SOCKETS);
    const line = 'EHLO slowloris.example\r\n';
    const drip = setInterval(() => {
      for (const p of drippers) {
        if (p.greetedAt && !p.closedAt && p.sent < line.length - 2) p.sock.write(line[p.sent++]!);
      }
    }, DRIP_MS);
    try {
      const connectedMs = Date.now() - t0;

      // 2. Meanwhile a permitted client (no banner delay for it) delivers a message.
      const n0 = Date.now();
      const c = await greeted(d.port, 'normal.example', { localAddress: '127.0.0.2' });
      const ehloMs = Date.now() - n0;
      expect((await c.cmd('MAIL FROM:<a@normal.example>')).code).toBe(250);
      expect((await c.cmd('RCPT TO:<b@mx.test>')).code).toBe(250);
      expect((await c.cmd('DATA')).code).toBe(354);
      c.send('Subject: served meanwhile\r\n\r\nhello\r\n.\r\n');
      expect((await c.reply()).code).toBe(250);
      expect((await c.cmd('QUIT')).code).toBe(221);
      c.close();
      const normalMs = Date.now() - n0;

      // 3. A flood beyond maxSessions (the drippers are still in their banner delay or
      //    dripping): the overflow is refused at once with 421 4.3.2.
      const flood = await openPeers(d.port, FLOOD);
      expect(await until(() => flood.every((p) => p.text.length > 0 || p.closedAt > 0), 5000)).toBe(true);
      const floodDoneAt = Date.now();
      const refused = flood.filter((p) => p.text === '421 4.3.2 mx.test too busy, try later\r\n');
      const floodHeld = flood.filter((p) => !p.text.startsWith('421'));
      const drippersLeft = drippers.filter((p) => !p.closedAt || p.closedAt > floodDoneAt).length;
      const why = JSON.stringify({ connectedMs, sinceStart: floodDoneAt - t0, refused: refused.length, held: floodHeld.length, drippersLeft, sample: flood.slice(0, 3).map((p) => p.text) });
      expect(refused.length + floodHeld.length, why).toBe(FLOOD);
      expect(refused.length, why).toBeGreaterThan(0);
      expect(drippersLeft + floodHeld.length).toBeLessThanOrEqual(CAP);
      // No dripper was cut before its time, so exactly the slack (less the closed normal client) was left.
      if (drippersLeft === SOCKETS) expect(floodHeld.length).toBeLessThanOrEqual(SLACK);
      const rssHeld = rssKb(pid);

      // Every dripper is in: greeted after the banner delay (they are not permitted), none refused.
      expect(await until(() => drippers.every((p) => p.greetedAt > 0), 5000 + SOCKETS)).toBe(true);
      expect(Math.min(...drippers.map((p) => p.greetedAt - p.openedAt))).toBeGreaterThanOrEqual(BANNER_DELAY - 50);

      // 4. Every dripper is cut by the whole-line limit, counted from its greeting, not from its last byte.
      const cutBound = RECEIVE_TIMEOUT + 3000 + SOCKETS;
      expect(await until(() => drippers.every((p) => p.closedAt > 0), cutBound + 2000)).toBe(true);
      const lateness = drippers.map((p) => p.closedAt - p.greetedAt - RECEIVE_TIMEOUT);
      for (const p of drippers) expect(p.text).toMatch(/^220 mx\.test ESMTP fakemx\r\n421 4\.4\.2 mx\.test timeout, closing connection\r\n$/);
      // Never early: the line timer starts at the greeting, which is BANNER_DELAY after accept
      // (measured from our connect, since our view of the greeting lags under load).
      expect(Math.min(...drippers.map((p) => p.closedAt - p.openedAt - BANNER_DELAY - RECEIVE_TIMEOUT))).toBeGreaterThanOrEqual(-50);
      expect(Math.max(...lateness)).toBeLessThan(cutBound - RECEIVE_TIMEOUT);
      // They did drip: several bytes each, never the whole line.
      expect(Math.min(...drippers.map((p) => p.sent))).toBeGreaterThanOrEqual(Math.max(1, Math.floor(RECEIVE_TIMEOUT / DRIP_MS / 2)));
      expect(await until(() => flood.every((p) => p.closedAt > 0), RECEIVE_TIMEOUT + BANNER_DELAY + 5000)).toBe(true);

      // 5. The daemon's own account: never more than maxSessions at once, every session closed.
      const opens = () => d!.lines.filter((l) => l.tag === 'OPEN').length;
      const closes = () => d!.lines.filter((l) => l.tag === 'CLOSE').length;
      expect(await until(() => opens() === closes(), 5000)).toBe(true);
      const r = replay(d.lines);
      expect(r.max).toBeLessThanOrEqual(CAP);
      // Refused only when full: never a 421 4.3.2 with a free slot.
      expect(r.atRefusal.length).toBe(refused.length);
      expect(new Set(r.atRefusal)).toEqual(new Set([CAP]));
      expect(d.lines.filter((l) => l.tag === 'TIMEOUT').length).toBe(SOCKETS + floodHeld.length);

      // 6. And it still serves.
      const after = await greeted(d.port, 'after.example', { localAddress: '127.0.0.2' });
      expect((await after.cmd('QUIT')).code).toBe(221);
      after.close();
      const rssAfter = rssKb(pid);

      const report = {
        sockets: SOCKETS, receiveTimeoutMs: RECEIVE_TIMEOUT, dripMs: DRIP_MS, maxSessions: CAP, connectMs: connectedMs,
        normalEhloMs: ehloMs, normalDeliveryMs: normalMs, floodRefused: refused.length, floodHeld: floodHeld.length,
        cutLatenessMs: { min: Math.min(...lateness), max: Math.max(...lateness) },
        daemonRssKb: { before: rss0, held: rssHeld, after: rssAfter, perHeldSessionKb: Math.round(((rssHeld - rss0) / (SOCKETS + floodHeld.length)) * 100) / 100 },
        totalMs: Date.now() - t0,
      };
      console.log(`slowloris: ${JSON.stringify(report)}`);
      if (REPORT) writeFileSync(REPORT, JSON.stringify(report, null, 2));
    } finally {
      clearInterval(drip);
      for (const p of drippers) p.sock.destroy();
    }
  });

  // Inside DATA, receiveTimeout bounds idle gaps only; dataTimeout bounds the whole body
  // (Postfix bounds this with smtpd_per_record_deadline), so a dripper is cut off too.
  it('a dripper inside DATA is cut off by dataTimeout', { timeout: 20_000 }, async () => {
    const dd = await startListening({ hostName: 'mx.test', bannerDelay: 0, receiveTimeout: 1000, dataTimeout: 2000, storeData: false });
    try {
      const c = await greeted(dd.port);
      await c.cmd('MAIL FROM:<a@b.example>');
      await c.cmd('RCPT TO:<c@d.example>');
      expect((await c.cmd('DATA')).code).toBe(354);
      const t0 = Date.now();
      const t = setInterval(() => c.send('x'), 300);
      const r = await c.reply(5000);
      clearInterval(t);
      expect(r.raw).toBe('421 4.4.2 mx.test timeout, closing connection\r\n');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
      expect(await c.waitClose(2000)).toBe(true);
    } finally {
      dd.kill();
      rmSync(dd.dir, { recursive: true, force: true });
    }
  });
});
