// `fakemx run` when the machine refuses a directory the config names: the start fails with
// 69 (cannot start) and a START_FAILED line naming the path, or 73 for logPath (no log yet:
// one line on stderr), and never hangs: Node's recursive mkdir spins for ever under /proc.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, startListening, type Daemon } from './helpers/daemon.js';

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

describe('directories the daemon cannot make', () => {
  it.each([
    ['storePath', { storePath: '/proc/fakemx-nope/corpus' }],
    ['state.path', { state: { path: '/proc/fakemx-nope/state' }, greylist: { enabled: true } }],
  ] as const)('%s under /proc: START_FAILED naming it, exit 69', async (_n, cfg) => {
    d = await startDaemon({ listenAddress: '127.0.0.1', listenPort: 0, ...cfg });
    expect(await d.exited(15_000)).toBe(69);
    const failed = d.lines.filter((l) => l.tag === 'START_FAILED');
    expect(failed).toHaveLength(1);
    expect(String(failed[0]!.err)).toContain("mkdir '/proc/fakemx-nope'");
    expect(d.stderr).toMatch(/^fakemx: error: cannot start: .*mkdir '\/proc\/fakemx-nope'.*\n$/);
  });

  it('a port already taken: START_FAILED, the same on stderr, exit 69', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      d = await startDaemon({ listenAddress: '127.0.0.1', listenPort: (taken.address() as AddressInfo).port });
      expect(await d.exited(15_000)).toBe(69);
      expect(d.lines.filter((l) => l.tag === 'START_FAILED')).toHaveLength(1);
      expect(d.stderr).toMatch(/^fakemx: error: cannot start: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+\n$/);
    } finally {
      taken.close();
    }
  });
});

// systemd's view of a reload (Type=notify): RELOADING=1, then READY=1 with a STATUS= line that
// `systemctl status` shows until the next one. A stand-in systemd-notify first on the daemon's
// PATH records each call's arguments, one call a line.
describe('sd_notify status around a reload', () => {
  const notifyCalls = async (file: string, n: number): Promise<string[][]> => {
    const end = Date.now() + 10_000;
    for (;;) {
      const calls = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t')) : [];
      if (calls.length >= n || Date.now() > end) return calls;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  it('a refused file: the status says the reload failed and why, not "reloaded"', async () => {
    const bin = mkdtempSync(join(tmpdir(), 'fakemx-notify-'));
    const out = join(bin, 'calls');
    try {
      writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\n(IFS="$(printf '\\t')"; echo "$*") >> '${out}'\n`);
      chmodSync(join(bin, 'systemd-notify'), 0o755);
      const env = { NOTIFY_SOCKET: join(bin, 'notify.sock'), PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` };
      d = await startListening({ bannerDelay: 0 }, { env });
      const started = await notifyCalls(out, 1);
      const listening = `STATUS=listening on 127.0.0.1:${d.port}`;
      expect(started[0]).toEqual([`--pid=${d.child.pid}`, 'READY=1', listening]);

      d.writeConfig({ listenAddress: '127.0.0.1', listenPort: d.port, bannerDelay: -1 });
      d.child.kill('SIGHUP');
      await d.waitFor('CONFIG_RELOAD_FAILED');
      const failed = (await notifyCalls(out, 3)).slice(1);
      expect(failed[0]).toContain('RELOADING=1');
      expect(failed[1]).toContain('READY=1');
      const status = failed[1]!.find((a) => a.startsWith('STATUS='));
      expect(status).toMatch(/^STATUS=reload failed \(bannerDelay: .*positive integer.*\); running unchanged, listening on 127\.0\.0\.1:\d+$/);

      d.writeConfig({ listenAddress: '127.0.0.1', listenPort: d.port, bannerDelay: 0 });
      d.child.kill('SIGHUP');
      await d.waitFor('CONFIG_RELOADED');
      const ok = (await notifyCalls(out, 5)).slice(3);
      expect(ok[1]).toEqual([`--pid=${d.child.pid}`, 'READY=1', `STATUS=reloaded; ${listening.slice('STATUS='.length)}`]);
    } finally {
      d?.kill();
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
