#!/usr/bin/env node
// `npm run soak`: the slowloris test (test/robustness/slowloris.test.ts) at soak size —
// 10,000 dripping sockets by default — against the built daemon, then its report: time to
// connect, the permitted client's EHLO and delivery time, flood refusals, cut-off lateness,
// daemon RSS per held session. Usage: node bench/soak.mjs [sockets] [--timeout ms] [--drip ms]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
// Default receiveTimeout: the test's (2 s + 1 ms per socket), long enough to open them all first.
const timeout = opt('--timeout', process.env.FAKEMX_SOAK_TIMEOUT);
const drip = opt('--drip', process.env.FAKEMX_SOAK_DRIP_MS ?? '1000');
const sockets = Number(args[0] ?? process.env.FAKEMX_SOAK_SOCKETS ?? 10_000);

// Each side (this client, the daemon) holds one descriptor per socket, plus a margin.
let nofile = Infinity;
try {
  nofile = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()) || Infinity;
} catch {
  /* no sh: go on and let the run tell */
}
if (sockets + 200 > nofile) {
  console.error(`soak: ${sockets} sockets need more than the open-file limit ${nofile}; raise it (ulimit -n) or ask for fewer`);
  process.exit(2);
}
if (!existsSync('dist/cli.js')) {
  console.error('soak: dist/cli.js missing; run `npm run build` first');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'fakemx-soak-'));
const report = join(dir, 'report.json');
console.log(`soak: ${sockets} sockets dripping one byte per ${drip} ms, receiveTimeout ${timeout ? timeout + ' ms' : '2 s + 1 ms per socket'}`);
const env = { ...process.env, FAKEMX_SOAK_SOCKETS: String(sockets), FAKEMX_SOAK_DRIP_MS: drip, FAKEMX_SOAK_REPORT: report, ...(timeout ? { FAKEMX_SOAK_TIMEOUT: timeout } : {}) };
const child = spawn('npx', ['vitest', 'run', '--config', 'vitest.robustness.config.ts', 'test/robustness/slowloris.test.ts', '--reporter=dot'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
let out = '';
child.stdout.on('data', (d) => (out += d));
child.stderr.on('data', (d) => (out += d));
const code = await new Promise((r) => child.on('close', r));

if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  console.log('');
  console.log(`sockets           ${r.sockets} (maxSessions ${r.maxSessions}, receiveTimeout ${r.receiveTimeoutMs} ms), all connected in ${r.connectMs} ms`);
  console.log(`permitted client  EHLO after ${r.normalEhloMs} ms, message delivered in ${r.normalDeliveryMs} ms`);
  console.log(`flood             ${r.floodRefused} refused with 421 4.3.2, ${r.floodHeld} held in the slack`);
  console.log(`cut off           every dripper, ${r.cutLatenessMs.min}..${r.cutLatenessMs.max} ms after receiveTimeout from its greeting`);
  console.log(`daemon RSS        ${r.daemonRssKb.before} kB idle, ${r.daemonRssKb.held} kB held (${r.daemonRssKb.perHeldSessionKb} kB per session), ${r.daemonRssKb.after} kB after`);
  console.log(`total             ${(r.totalMs / 1000).toFixed(1)} s`);
}
if (code !== 0) {
  console.log('\nsoak FAILED:');
  console.log(out.split('\n').filter((l) => /Error|expected|FAIL|×/.test(l)).slice(0, 30).join('\n'));
}
rmSync(dir, { recursive: true, force: true });
process.exitCode = code === 0 ? 0 : 1;
