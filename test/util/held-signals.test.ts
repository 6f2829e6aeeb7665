// util/held-signals.cts: which command lines hold signals, and what is handed over.
import { describe, expect, it } from 'vitest';
import { holdSignals, releaseSignals, runsDaemon } from '../../src/util/held-signals.cjs';

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

  it('holds SIGHUP, SIGTERM and SIGINT in order until released, then lets go of them', () => {
    const before = ['SIGHUP', 'SIGTERM', 'SIGINT'].map((s) => process.listenerCount(s));
    holdSignals();
    holdSignals(); // once
    process.emit('SIGHUP', 'SIGHUP');
    process.emit('SIGTERM', 'SIGTERM');
    expect(releaseSignals()).toEqual(['SIGHUP', 'SIGTERM']);
    expect(['SIGHUP', 'SIGTERM', 'SIGINT'].map((s) => process.listenerCount(s))).toEqual(before);
    expect(releaseSignals()).toEqual([]);
  });
});
