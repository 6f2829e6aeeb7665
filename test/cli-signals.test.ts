// `fakemx run` driven by signals as systemd and a shell send them: SIGHUP reloads (or keeps
// running on a bad file), SIGTERM drains with 421 and exits 0, a message in flight is either
// stored and acknowledged or neither; one OPEN and one CLOSE line per session.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, greeted } from './helpers/client.js';
import { BIN, startListening, type Daemon } from './helpers/daemon.js';

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

describe('fakemx run: signals', () => {
  it('SIGTERM: stop accepting, 421 4.3.2 at the next command, exit 0', async () => {
    d = await startListening({ bannerDelay: 0, shutdownGrace: 3000 });
    const c = await greeted(d.port);
    d.child.kill('SIGTERM');
    await d.waitFor('SHUTDOWN');
    const r = await c.cmd('NOOP');
    expect(r.raw).toMatch(/^421 4\.3\.2 .* shutting down\r\n$/);
    expect(await c.waitClose()).toBe(true);
    expect(await d.exited()).toBe(0);
    await d.waitFor('STOPPED', 100).catch(() => undefined);
  });

  it.each([
    ['SIGHUP', 'CONFIG_RELOADED'],
    ['SIGTERM', 'STOPPED'],
  ] as const)('%s while the bin is still loading is held, then acted on (%s), never the default action', async (sig, tag) => {
    const dir = mkdtempSync(join(tmpdir(), 'fakemx-sig-'));
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ listenAddress: '127.0.0.1', listenPort: 0, bannerDelay: 0, storeData: false, logLevel: 'info' }));
    const child = spawn(process.execPath, [BIN, 'run', '--config', join(dir, 'c.json')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code, s) => r(code ?? (s ? 128 : null))));
    try {
      // Signal as soon as the process catches SIGHUP (SigCgt's lowest bit; Node itself catches
      // SIGINT and SIGTERM from its start, to restore the terminal before dying of them): with
      // dist/fakemx.cjs holding signals that is before the CLI's modules have loaded.
      const bit = 1n;
      const end = Date.now() + 10_000;
      for (;;) {
        const st = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        if (BigInt('0x' + /SigCgt:\s*([0-9a-f]+)/.exec(st)![1]) & bit) break;
        if (Date.now() > end) throw new Error(`${sig} never caught`);
        await new Promise((r) => setTimeout(r, 1));
      }
      expect(out).not.toContain('"READY"');
      child.kill(sig);
      const until = Date.now() + 10_000;
      while (!out.includes(`"tag":"${tag}"`) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(out).toContain(`"tag":"${tag}"`);
      if (sig === 'SIGHUP') child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('SIGTERM: sessions that do not finish are closed after shutdownGrace', async () => {
    d = await startListening({ bannerDelay: 0, shutdownGrace: 300 });
    const c = await greeted(d.port);
    // A second client is mid-message: it is told too, and nothing is stored.
    const m = await greeted(d.port);
    await m.cmd('MAIL FROM:<a@example.org>');
    await m.cmd('RCPT TO:<b@example.com>');
    expect((await m.cmd('DATA')).code).toBe(354);
    m.send('Subject: never finished\r\n');
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(await c.waitClose()).toBe(true);
    // RFC 5321 §3.8: the idle client is told before the connection goes, not left to find it closed.
    expect(c.pending).toMatch(/^421 4\.3\.2 .* shutting down\r\n$/);
    expect(await m.waitClose()).toBe(true);
    expect(m.pending).toMatch(/^421 4\.3\.2 .* shutting down\r\n$/);
    expect(d.lines.some((l) => l.tag === 'STORED')).toBe(false);
  });

  it('SIGTERM mid-DATA: the message is either stored and acknowledged or neither', async () => {
    d = await startListening({ bannerDelay: 0, shutdownGrace: 2000 });
    const c = await greeted(d.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    c.send('Subject: during shutdown\r\n\r\nbody\r\n');
    d.child.kill('SIGTERM');
    await d.waitFor('SHUTDOWN');
    c.send('.\r\n');
    const r = await c.reply();
    expect(r.code).toBe(250);
    const id = /queued as (\S+)/.exec(r.text)![1]!;
    expect(await d.exited()).toBe(0);
    const stored = d.lines.find((l) => l.tag === 'STORED');
    expect(stored?.id).toBe(id);
  });

  it('SIGHUP: a valid new config applies to new sessions', async () => {
    d = await startListening({ bannerDelay: 0, hostName: 'before.test' });
    const a = await RawClient.connect(d.port);
    expect((await a.reply()).text).toMatch(/^before\.test /);
    a.close();
    const cfg = JSON.parse(readFileSync(d.configPath, 'utf8')) as Record<string, unknown>;
    d.writeConfig({ ...cfg, hostName: 'after.test', listenPort: d.port });
    d.child.kill('SIGHUP');
    await d.waitFor('CONFIG_RELOADED');
    const b = await RawClient.connect(d.port);
    expect((await b.reply()).text).toMatch(/^after\.test /);
    b.close();
  });

  it('SIGHUP: a change to the log settings is reported as needing a restart', async () => {
    d = await startListening({ bannerDelay: 0 });
    const cfg = JSON.parse(readFileSync(d.configPath, 'utf8')) as Record<string, unknown>;
    d.writeConfig({ ...cfg, listenPort: d.port, logLevel: 'debug' });
    d.child.kill('SIGHUP');
    await d.waitFor('CONFIG_RELOADED');
    expect(await d.waitFor('CONFIG_RESTART_NEEDED')).toMatchObject({ keys: ['logLevel'], msg: 'logLevel takes effect at the next start' });
  });

  it('SIGHUP: an invalid config is logged with key and reason, and nothing changes', async () => {
    d = await startListening({ bannerDelay: 0, hostName: 'stable.test' });
    d.writeConfig({ hostName: 'x', bannerDelay: -1 });
    d.child.kill('SIGHUP');
    const l = await d.waitFor('CONFIG_RELOAD_FAILED');
    expect(l).toMatchObject({ key: 'bannerDelay' });
    expect(String(l.reason)).toMatch(/positive integer/);
    const c = await RawClient.connect(d.port);
    expect((await c.reply()).text).toMatch(/^stable\.test /);
    c.close();
  });

  it('one OPEN and one CLOSE line per session, with client [ip]:port', async () => {
    d = await startListening({ bannerDelay: 0 });
    const c = await greeted(d.port, 'logged.test');
    await c.cmd('QUIT');
    const close = await d.waitFor('CLOSE');
    expect(close).toMatchObject({ helo: 'logged.test', outcome: 'quit' });
    expect(String(close.client)).toMatch(/^\[127\.0\.0\.1\]:\d+$/);
    expect(d.lines.filter((l) => l.tag === 'OPEN')).toHaveLength(1);
  });
});

