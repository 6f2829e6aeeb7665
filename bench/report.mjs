// `fakemx report` over a large store: how long buildReport (dist/commands/report.js) takes to
// read N metadata records spread over D UTC days, and its rate. A speed figure belongs here,
// not in a unit test (test/commands/report.test.ts checks the counts only).
//
// npm run build && node bench/report.mjs [--records N] [--days D] [--reps R]
// Prints one JSON object. Target (was a unit test's bound): 2,000 records well under a second.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReport } from '../dist/commands/report.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('records', 20_000);
const DAYS = arg('days', 4);
const REPS = arg('reps', 3);

const dir = mkdtempSync(join(tmpdir(), 'fakemx-bench-report-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// The record shape the store writes (store/metadata.ts), with varied clients and senders.
for (let d = 0; d < DAYS; d++) {
  const date = `2024-06-${String(d + 1).padStart(2, '0')}`;
  mkdirSync(join(dir, date), { recursive: true });
  for (let i = 0; i < N / DAYS; i++) {
    const id = `m${d}-${i}`;
    const at = `${date}T10:00:00.000Z`;
    writeFileSync(join(dir, date, `${id}.json`), JSON.stringify({
      version: 1, id, file: `${date}/${id}.eml`, receivedAt: at, session: `s${d}-${i >> 2}`, listener: 'mx',
      client: { ip: `198.51.${i % 256}.${d}`, port: 4000, helo: `h${i % 50}.example`, esmtp: true },
      server: { ip: '127.0.0.1', port: 25, hostName: 'mx.test' }, tls: null,
      envelope: { mailFrom: `a@d${i % 300}.example`, rcptTo: ['x@example.net'], declaredSize: null, body: null, smtputf8: false },
      sizes: { body: i * 10, headers: 0, file: i * 10 },
      timings: { sessionOpenedAt: at, dataStartedAt: at, dataEndedAt: at, dataMs: 1 },
      verdicts: i % 7 === 0 ? [{ tag: 'PREGREET', atMs: 1 }] : [], dns: null, tempfailed: false,
    }));
  }
}

const ms = [];
let messages = 0;
for (let r = 0; r < REPS; r++) {
  const t0 = performance.now();
  const rep = await buildReport({ dir });
  ms.push(performance.now() - t0);
  messages = rep.messages;
}
ms.sort((a, b) => a - b);
const median = ms[Math.floor(ms.length / 2)];
console.log(JSON.stringify({
  records: N, days: DAYS, counted: messages, reps: REPS,
  medianMs: Math.round(median), minMs: Math.round(ms[0]), maxMs: Math.round(ms[ms.length - 1]),
  recordsPerSec: Math.round(N / (median / 1000)), loadavg: loadavg().map((x) => x.toFixed(2)),
}));
