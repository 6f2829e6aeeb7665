// `fakemx run` when the machine refuses a directory the config names: the start fails with
// 69 (cannot start) and a START_FAILED line naming the path, or 73 for logPath (no log yet:
// one line on stderr), and never hangs: Node's recursive mkdir spins for ever under /proc.
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
  });
});
