// @ts-check
// `npm run mutate`: StrykerJS mutation testing of the SMTP engine (src/smtp/) — shows whether
// the conformance, engine and robustness tests would notice a change in it (issue 12: "a
// suite that can fail"). Slow, so not part of `npm test` or CI. The tests that run are in
// vitest.mutate.config.ts; they import src/ directly (vitest transforms TypeScript), so the
// sandbox's mutated src/ is what they exercise — no build step. Report:
// reports/mutation/mutation.html (and .json). On a busy machine: npm run mutate -- --concurrency 1
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  coverageAnalysis: 'perTest',
  mutate: ['src/smtp/**/*.ts'],
  ignorePatterns: ['dist', 'var', 'coverage', 'bench/peers', 'bench/out', 'reports'],
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  concurrency: 2,
  // Engine tests use real sockets and timers: a mutant that stalls a session must time out fast.
  timeoutMS: 10000,
  timeoutFactor: 2,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
