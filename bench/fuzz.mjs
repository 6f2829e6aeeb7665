#!/usr/bin/env node
// `npm run fuzz`: the CI fuzz (test/robustness/fuzz.test.ts) at full size — 1,000,000 sessions
// by default — split into one shard per core, each its own vitest process with its own seed,
// then one report: sessions, time, rate, reply codes, memory, and the volume part (sessions
// of up to 100,000 pipelined commands in one write, in every state: per shard sessions/2000 of
// them by default, --volume N to change). Usage:
//   node bench/fuzz.mjs [sessions] [--shards N] [--seed S] [--volume N]   (FAKEMX_FUZZ_* env also works)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args.splice(i, 2)[1] : dflt;
};
const shards = Number(opt('--shards', process.env.FAKEMX_FUZZ_SHARDS ?? cpus().length));
const seed0 = Number(opt('--seed', process.env.FAKEMX_FUZZ_SEED ?? Date.now() % 1_000_000_000));
const volume = opt('--volume', process.env.FAKEMX_FUZZ_VOLUME);
const total = Number(args[0] ?? process.env.FAKEMX_FUZZ_RUNS ?? 1_000_000);
const per = Math.ceil(total / shards);
const dir = mkdtempSync(join(tmpdir(), 'fakemx-fuzzrun-'));

console.log(`fuzz: ${total} sessions in ${shards} shard(s) of ${per}, seeds ${seed0}..${seed0 + shards - 1}`);
const t0 = Date.now();

function shard(i) {
  const report = join(dir, `shard-${i}.json`);
  const env = {
    ...process.env,
    FAKEMX_FUZZ_RUNS: String(per),
    FAKEMX_FUZZ_SEED: String(seed0 + i),
    FAKEMX_FUZZ_REPORT: report,
    ...(volume !== undefined ? { FAKEMX_FUZZ_VOLUME: String(Math.ceil(Number(volume) / shards)) } : {}),
  };
  return new Promise((resolve) => {
    const child = spawn('npx', ['vitest', 'run', '--config', 'vitest.robustness.config.ts', 'test/robustness/fuzz.test.ts', '--reporter=dot'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => {
      const r = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : null;
      resolve({ i, code, out, report: r, seed: seed0 + i });
    });
  });
}

const results = await Promise.all(Array.from({ length: shards }, (_, i) => shard(i)));
const secs = (Date.now() - t0) / 1000;

const sum = { sessions: 0, byKind: {}, codes: {}, serverClosed: 0, clientGaveUp: 0, maxSessionMs: 0, peakRssGrowthMb: 0, heapGrowthMb: 0 };
const vol = { sessions: 0, commands: 0, answered: 0, completed: 0, cutBy: {}, maxCommands: 0, maxMs: 0, ms: 0 };
for (const { report: r } of results) {
  if (!r) continue;
  sum.sessions += r.sessions;
  sum.serverClosed += r.serverClosed;
  sum.clientGaveUp += r.clientGaveUp;
  sum.maxSessionMs = Math.max(sum.maxSessionMs, r.maxSessionMs);
  sum.peakRssGrowthMb = Math.max(sum.peakRssGrowthMb, r.peakRssGrowthMb);
  sum.heapGrowthMb = Math.max(sum.heapGrowthMb, r.heapGrowthMb);
  for (const [k, v] of Object.entries(r.byKind)) sum.byKind[k] = (sum.byKind[k] ?? 0) + v;
  for (const [k, v] of Object.entries(r.codes)) sum.codes[k] = (sum.codes[k] ?? 0) + v;
  const v = r.volume;
  if (!v) continue;
  for (const k of ['sessions', 'commands', 'answered', 'completed', 'ms']) vol[k] += v[k];
  vol.maxCommands = Math.max(vol.maxCommands, v.maxCommands);
  vol.maxMs = Math.max(vol.maxMs, v.maxMs);
  for (const [k, n] of Object.entries(v.cutBy)) vol.cutBy[k] = (vol.cutBy[k] ?? 0) + n;
}

console.log('');
console.log(`sessions        ${sum.sessions.toLocaleString('en')} in ${secs.toFixed(1)} s (${Math.round(sum.sessions / secs).toLocaleString('en')}/s over ${shards} shard(s))`);
console.log(`by kind         ${Object.entries(sum.byKind).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`reply codes     ${Object.entries(sum.codes).sort().map(([k, v]) => `${k}:${v}`).join(' ')}`);
console.log(`closed by srv   ${sum.serverClosed} (client gave up: ${sum.clientGaveUp}); longest session ${sum.maxSessionMs} ms`);
console.log(`volume          ${vol.sessions} sessions, ${vol.commands.toLocaleString('en')} pipelined commands (up to ${vol.maxCommands.toLocaleString('en')} in one session, longest ${vol.maxMs} ms), ${Math.round(vol.commands / Math.max(0.001, vol.ms / 1000)).toLocaleString('en')} commands/s per session`);
console.log(`                ${vol.completed} answered whole, cut by a limit: ${Object.entries(vol.cutBy).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; ${vol.answered.toLocaleString('en')} replies checked`);
console.log(`memory          peak RSS growth ${sum.peakRssGrowthMb} MB per shard (client+server), heap left after GC ${sum.heapGrowthMb} MB`);
const failed = results.filter((r) => r.code !== 0);
for (const f of failed) {
  console.log(`\nshard ${f.i} FAILED (replay: FAKEMX_FUZZ_SEED=${f.seed} FAKEMX_FUZZ_RUNS=${per} npx vitest run --config vitest.robustness.config.ts test/robustness/fuzz.test.ts)`);
  console.log(f.out.split('\n').filter((l) => /Error|Caused by|case |received |Counterexample|seed/.test(l)).slice(0, 30).join('\n').slice(0, 6000));
}
rmSync(dir, { recursive: true, force: true });
process.exitCode = failed.length > 0 ? 1 : 0;
