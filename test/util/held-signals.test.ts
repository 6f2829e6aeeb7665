// util/held-signals.cts: which command lines hold signals, and what is handed over. The
// holding runs in a child process: signals sent to a test worker would reach its own handlers.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runsDaemon } from '../../src/util/held-signals.cjs';

describe('held signals', () => {
  it.each([
    { argv: ['run', '--config', 'x.json'], run: true },
    { argv: ['--config=x.json', 'run'], run: true },
    { argv: ['report', 'run'], run: false },
    { argv: ['--help'], run: false },
    { argv: [], run: false },
  ])('runsDaemon($argv) is $run', ({ argv, run }) => {
    expect(runsDaemon(argv)).toBe(run);
  });

  it('holds SIGHUP, SIGTERM and SIGINT in order until released, then lets go of them (a real process)', () => {
    const mod = join(process.cwd(), 'dist', 'util', 'held-signals.cjs');
    const script = `
      const h = require(${JSON.stringify(mod)});
      const count = () => ['SIGHUP', 'SIGTERM', 'SIGINT'].map((s) => process.listenerCount(s)).join(',');
      const before = count();
      h.holdSignals(); h.holdSignals();
      process.kill(process.pid, 'SIGHUP');
      process.kill(process.pid, 'SIGTERM');
      setTimeout(() => {
        const held = h.releaseSignals();
        console.log(JSON.stringify({ held, before, after: count(), again: h.releaseSignals() }));
      }, 200);`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 })) as Record<string, unknown>;
    expect(out).toEqual({ held: ['SIGHUP', 'SIGTERM'], before: '0,0,0', after: '0,0,0', again: [] });
  });
});
