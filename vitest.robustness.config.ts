// `npm run test:robustness` (built first; .ci/run runs it after `npm test`): the slow tests
// that drive the daemon hard — whole-session fuzzing, SIGKILL crash durability, slowloris,
// memory bounds, a full disk. Their own per-test timeouts size them; the defaults are as
// `npm test`'s (bounds for a stuck test on a shared machine, not expectations).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/robustness/**/*.test.ts'],
    exclude: ['node_modules/**', 'bench/**'],
    testTimeout: 60000,
    hookTimeout: 60000,
    pool: 'forks',
    reporters: ['default'],
  },
});
