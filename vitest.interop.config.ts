// Interop suite: drives the built daemon with Debian tools (swaks, python3 smtplib,
// openssl s_client, rbldnsd, systemd-analyze). test/interop/setup.sh installs them.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    testTimeout: 60000,
    hookTimeout: 60000,
    pool: 'forks',
    fileParallelism: false,
  },
});
