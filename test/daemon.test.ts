// `fakemx run` when the machine refuses a directory the config names: the start fails with
// 69 (cannot start) and a START_FAILED line naming the path, or 73 for logPath (no log yet:
// one line on stderr), and never hangs: Node's recursive mkdir spins for ever under /proc.
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type Daemon } from './helpers/daemon.js';

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
