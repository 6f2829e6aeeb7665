// `npm test`: the unit and end-to-end suite, real sockets on 127.0.0.1 only, kept under a
// minute on a 2-core machine. The slow robustness tests (fuzz, crash, slowloris, memory, disk
// full: test/robustness/, `npm run test:robustness`) and the interop suite (Debian tools,
// `npm run test:interop`) have their own configs and are excluded here; .ci/run runs all three.
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // src/ has CommonJS TypeScript too (*.cts: the bin's own modules); Vite transforms only .ts
  // and .mts by default.
  esbuild: { include: /\.[cm]?tsx?$/ },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/interop/**', 'test/robustness/**', 'node_modules/**', 'bench/**'],
    // Bounds for a stuck test, not expectations: a machine shared with other test runs can take
    // seconds to start each CLI child process.
    testTimeout: 60000,
    hookTimeout: 60000,
    pool: 'forks',
    // Test files share a worker's module graph instead of each importing src/ afresh: the
    // imports were a third of the suite's CPU on 2 cores (measured: 61 s -> 36 s wall). Safe
    // because nothing in src/ keeps process-wide state a test relies on: servers, registries
    // and stores are made per test and closed in its hooks.
    isolate: false,
    // The suite waits on sockets, timers and child processes far more than it computes: one
    // worker per core and two more (vitest's default is cores - 1, a single worker on 2 cores).
    // On 2 cores, vitest alone: 41.8 s with 3 workers, 39.6 s with 4; a fresh `npm test` (the
    // lint running beside it): 55.0-67.2 s with 3, 54.3-58.3 s with 4 (2026-12-04, same VM).
    maxWorkers: availableParallelism() + 2,
    reporters: ['default'],
  },
});
