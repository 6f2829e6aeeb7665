// Logs: with logPath the daemon writes one file per period (roll-file.ts) as well as stdout, and a
// client value with CR/LF can never start a new log line (JSON escaping).
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from '../helpers/client.js';
import { startDaemon, startListening, type Daemon } from '../helpers/daemon.js';

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

describe('log files', () => {
  it('logPath: the same lines go to stdout and to a rotating file', async () => {
    const logDir = join(mkdtempSync(join(tmpdir(), 'fakemx-logs-')), 'logs');
    d = await startListening({ bannerDelay: 0, verboseLogging: true, logPath: logDir });
    const c = await RawClient.connect(d.port);
    await c.reply();
    // A bare CR inside a command line is replaced before it is logged.
    await c.cmd('NOOP evil\rX-Injected: 1');
    await c.cmd('QUIT');
    await d.waitFor('CLOSE');
    d.child.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    const files = existsSync(logDir) ? readdirSync(logDir) : [];
    // One file: the month's (the default frequency), whatever the day of the month.
    expect(files).toEqual([`fakemx.${new Date().toISOString().slice(0, 7)}.log`]);
    const text = files.map((f) => readFileSync(join(logDir, f), 'utf8')).join('');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const tags = lines.map((l) => l.tag);
    for (const t of ['LISTENING', 'OPEN', 'CMD', 'REPLY', 'CLOSE', 'STOPPED']) expect(tags).toContain(t);
    expect(lines.find((l) => l.tag === 'CMD' && String(l.line).startsWith('NOOP evil'))?.line).toBe('NOOP evil?X-Injected: 1');
    expect(d.lines.map((l) => l.tag)).toEqual(expect.arrayContaining(['LISTENING', 'CLOSE']));
    expect(d.lines.find((l) => l.tag === 'READY')?.msg).toContain(`; logs to stdout and ${logDir};`);
  });

  it('verboseLogging: a REPLY line has the enhanced code the client got (none before HELO/EHLO)', async () => {
    d = await startListening({ bannerDelay: 0, errorDelay: 0, verboseLogging: true });
    const c = await RawClient.connect(d.port);
    await c.reply();
    expect((await c.cmd('MAIL FROM:<a@example.org>')).raw).toBe('503 Error: send HELO/EHLO first\r\n');
    await c.cmd('EHLO client.example');
    expect((await c.cmd('MAIL FROM:<a@example.org>')).raw).toBe('250 2.1.0 Sender ok\r\n');
    await c.cmd('QUIT');
    await d.waitFor('CLOSE');
    const replies = d.lines.filter((l) => l.tag === 'REPLY').map((l) => [l.code, l.enhanced, l.text]);
    expect(replies).toEqual([
      [220, undefined, expect.stringContaining('ESMTP fakemx')],
      [503, undefined, 'Error: send HELO/EHLO first'],
      [250, undefined, expect.arrayContaining(['8BITMIME'])],
      [250, '2.1.0', 'Sender ok'],
      [221, '2.0.0', expect.stringContaining('closing connection')],
    ]);
  });

  it('client text reaches the log escaped: C1, U+2028/9 and bidi controls as \\u escapes, a non-UTF-8 command with its bytes escaped', async () => {
    d = await startListening({ bannerDelay: 0, errorDelay: 0, verboseLogging: true });
    const c = await RawClient.connect(d.port);
    await c.reply();
    const sly = 'NOOP a\u0085b\u2028c\u202ed\u009b31m';
    c.send(Buffer.from(`${sly}\r\n`, 'utf8'));
    await c.reply(); // refused or not, the command is logged
    c.send(Buffer.from('FOO \xff\xfe\r\n', 'latin1'));
    expect((await c.reply()).code).toBe(500);
    await c.cmd('QUIT');
    await d.waitFor('CLOSE');
    const cmds = d.lines.filter((l) => l.tag === 'CMD').map((l) => l.line);
    // The JSON still parses to what the client sent...
    expect(cmds).toEqual(['NOOP a\u0085b\u2028c\u202ed\u009b31m', 'FOO \\xff\\xfe', 'QUIT']);
    // ...but none of those characters is on stdout raw.
    expect(d.stdout).toContain('NOOP a\\u0085b\\u2028c\\u202ed\\u009b31m');
    expect(d.stdout).not.toMatch(/[\u0080-\u009f\u2028\u2029\u202a-\u202e]/);
  });

  it.each([
    // A regular file where a directory must be.
    ['a path through a file', (base: string) => (writeFileSync(join(base, 'f'), ''), join(base, 'f', 'logs')), /logPath: cannot create .*\/f\/logs \(ENOTDIR\)/],
    // Node's recursive mkdir never returns here (a parent that says ENOENT to every child).
    ['a path under /proc', () => '/proc/fakemx-nope/logs', /logPath: cannot create \/proc\/fakemx-nope \(ENOENT\)/],
  ] as const)('logPath that cannot be made (%s): one line on stderr, exit 73, no hang', async (_n, path, said) => {
    const base = mkdtempSync(join(tmpdir(), 'fakemx-logs-'));
    d = await startDaemon({ listenAddress: '127.0.0.1', listenPort: 0, logPath: path(base) });
    expect(await d.exited(15_000)).toBe(73);
    expect(d.stderr.trim().split('\n')).toHaveLength(1);
    expect(d.stderr).toMatch(said);
  });

  it('a log file that cannot be opened: said once on stderr, and stdout keeps every line', async () => {
    const logDir = mkdtempSync(join(tmpdir(), 'fakemx-logs-'));
    // The month's file name is taken by a directory: the file target fails at its open.
    mkdirSync(join(logDir, `fakemx.${new Date().toISOString().slice(0, 7)}.log`));
    d = await startListening({ bannerDelay: 0, logPath: logDir });
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(d.port);
      await c.reply();
      await c.cmd('QUIT');
      expect(await c.waitClose()).toBe(true);
    }
    await d.waitFor('CLOSE', 5000, (l) => d!.lines.filter((x) => x.tag === 'CLOSE').indexOf(l) === 2);
    d.child.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    expect(d.lines.map((l) => l.tag)).toContain('STOPPED');
    expect(d.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^fakemx: error: log files under .*EISDIR.*; logging to stdout only until a restart$/)]);
    // The first line a user reads does not claim the files.
    expect(d.lines.find((l) => l.tag === 'READY')?.msg).toContain(`; logs to stdout only (the files under ${logDir} failed, see stderr);`);
  });

  it('logFlushInterval: a connection\'s lines wait for the batch; daemon lines and the stop do not', async () => {
    d = await startListening({ bannerDelay: 0, logFlushInterval: 10_000 });
    // LISTENING came at once (startListening waited for it): a daemon line is never held back.
    const c = await RawClient.connect(d.port);
    await c.reply();
    await c.cmd('QUIT');
    expect(await c.waitClose()).toBe(true);
    // The session is over, but its CLOSE line waits in the batch (10 s or 8 KiB).
    await new Promise((r) => setTimeout(r, 300));
    expect(d.lines.map((l) => l.tag)).not.toContain('CLOSE');
    d.child.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    const tags = d.lines.map((l) => l.tag);
    expect(tags).toContain('CLOSE');
    expect(tags.indexOf('CLOSE')).toBeLessThan(tags.indexOf('STOPPED'));
  });

  it('logFlushInterval 50 (the default): a session\'s lines come within the interval, with no stop needed', async () => {
    d = await startListening({ bannerDelay: 0, logFlushInterval: 50 });
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.connect(d.port);
      await c.reply();
      await c.cmd('QUIT');
      expect(await c.waitClose()).toBe(true);
      // Bounded wait for the timer's flush (the batch holds far less than 8 KiB).
      await d.waitFor('CLOSE', 2000, (l) => d!.lines.filter((x) => x.tag === 'CLOSE').indexOf(l) === i);
    }
    expect(d.lines.filter((l) => l.tag === 'CLOSE')).toHaveLength(3);
  });
});
