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
    env: { FAKEMX_FUZZ_RUNS: '300', FAKEMX_FUZZ_BATCH: '25' },
    testTimeout: 30000,
    hookTimeout: 30000,
    reporters: ['default'],
  },
});
