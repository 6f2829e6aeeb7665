// Unit and end-to-end suite: real sockets on 127.0.0.1 only; the interop suite
// (Debian tools) has its own config and is excluded here.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/interop/**', 'node_modules/**', 'bench/**'],
    testTimeout: 20000,
    hookTimeout: 20000,
    pool: 'forks',
    reporters: ['default'],
  },
});
