#!/usr/bin/env node
// The `fakemx` command's process (dist/cli.js): runs program.ts on process.argv with the
// process's stdout and stderr, and exits with the code it returns (sysexits; README,
// "Command line").

// Run through dist/fakemx.cjs (the bin), which sizes the thread pool first; this type-only
// import keeps that .cts entry in the build, whose include pattern names *.ts files only.
import type {} from './fakemx.cjs';
import { runCommand } from './program.js';
import { EX_SOFTWARE } from './util/sysexits.js';

// `fakemx config-doc | head`, `fakemx ... 2>&1 | head -1`: a reader that goes away ends the
// command quietly with its own code (a usage error's help meeting a closed stderr is still 64),
// not with an unhandled error's 1.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

const code = await runCommand(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  // Let stdout drain, then leave even if a stray handle lingers.
  leave: () => setTimeout(() => process.exit(), 200).unref(),
});
// An internal error may have left sockets or timers open: end now.
if (code === EX_SOFTWARE) process.exit(code);
process.exitCode = code;
