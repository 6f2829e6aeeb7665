// Vitest config for `npm run mutate` (StrykerJS, stryker.config.json): only the tests that
// drive the SMTP engine (src/smtp/) through src/ imports, in-process. Tests that run the
// built daemon (dist/, test/helpers/daemon.ts: crash, memory, slowloris, cli) would not see
// Stryker's mutants of src/ and are left out. The fuzz runs small here: each surviving
// mutant runs every test that covers it.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'test/smtp/**/*.test.ts',
      'test/server.test.ts',
      'test/policy/bot-zoo.test.ts',
      'test/tls-listeners.test.ts',
      'test/robustness/fuzz.test.ts',
    ],
    exclude: ['test/interop/**', 'node_modules/**', 'bench/**'],
    // Small fuzz, volume batches of 5,000 (not 100,000), no 5 s heap-settling wait.
    env: {
      FAKEMX_FUZZ_RUNS: '300', FAKEMX_FUZZ_BATCH: '25', FAKEMX_FUZZ_HEAP: '0',
      FAKEMX_FUZZ_VOLUME: '3', FAKEMX_FUZZ_VOLUME_MAX: '5000', FAKEMX_FUZZ_VOLUME_BIG: '5000',
    },
    testTimeout: 30000,
    hookTimeout: 30000,
    reporters: ['default'],
  },
});
