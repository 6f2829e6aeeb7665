#!/usr/bin/env node
// The `fakemx` executable (package.json "bin", systemd, Docker): sizes libuv's thread pool,
// then loads the CLI. CommonJS on purpose: libuv reads UV_THREADPOOL_SIZE once, when the pool
// is first used, and Node's ESM loader reads an ES module entry through that pool, so a
// setting made by any ES module comes too late (measured: 4 threads either way).

// fsync, rename and open run in the pool; 4 threads (libuv's default) would queue the
// durable writes of busy sessions behind each other. An operator's own value wins; an empty
// one counts as unset.
process.env.UV_THREADPOOL_SIZE ||= '16';

// `run`: signals are held from here until the daemon takes them (util/held-signals.cts).
import { holdSignals, runsDaemon } from './util/held-signals.cjs';
if (runsDaemon(process.argv.slice(2))) holdSignals();

import('./cli.js').catch((e: unknown) => {
  process.stderr.write(`fakemx: cannot load the CLI: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(70);
});
