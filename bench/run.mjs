// `npm run bench`: fakemx side by side with Postfix smtp-sink, Haraka and smtp-server on loopback.
// Starts each server, runs the scenarios of issue 8 with the runs of each server interleaved,
// prints one table (medians, min-max, fakemx/peer ratios) and writes it to bench/RESULTS.md.
// Options: --quick (2-minute smoke run) --held N --messages M --reps R --store-reps R
//          --fakemx-node-options "FLAGS" (node/V8 flags for the fakemx process only)
//          --scenarios sink,store,held,dnsbl --no-write --cpu-prof (profile fakemx) --keep
//          --one-cpu N (every server and smtp-source on CPU N: compares the work each server
//          does per message, without the two-CPU scheduling effects of Round 15)
//          --client-malloc default (smtp-source with glibc's own heap settings; see CLIENT_MALLOC)

import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import dgram from 'node:dgram';
import os from 'node:os';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, pct, sleep, waitGreeting } from './held-sessions.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH, '..');
const OUT = join(BENCH, 'out');
const require = createRequire(import.meta.url);
const dnsPacket = require(join(ROOT, 'node_modules/dns-packet'));

// ---- options ---------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (n) => argv.includes(`--${n}`);
function opt(n, dflt) {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
}
/** NODE_OPTIONS of systemd/fakemx.service (a test checks the Dockerfile and npm start agree). */
function shippedNodeOptions() {
  const m = /^Environment=NODE_OPTIONS=(.*)$/m.exec(readFileSync(new URL('../systemd/fakemx.service', import.meta.url), 'utf8'));
  return m ? m[1] : '';
}

const QUICK = flag('quick');
const O = {
  quick: QUICK,
  messages: Number(opt('messages', QUICK ? 500 : 2000)),
  // Reused connections (-d) run ~5x faster; more messages keep each run well above process start-up.
  messagesReuse: Number(opt('messages-reuse', QUICK ? 2000 : 10000)),
  // Sink repetitions at -m 2000 last about a second each; a ratio between two servers moves by
  // ±20 % from one repetition to the next on a 2-core VM, so the verdicts take nine.
  reps: Number(opt('reps', QUICK ? 1 : 9)),
  storeReps: Number(opt('store-reps', QUICK ? 1 : 3)),
  held: Number(opt('held', QUICK ? 2000 : 15000)),
  samples: Number(opt('samples', QUICK ? 50 : 200)),
  burst: Number(opt('burst', QUICK ? 200 : 1000)),
  size: Number(opt('size', 4096)),
  sessions: opt('sessions', '20,50').split(',').map(Number),
  scenarios: opt('scenarios', 'sink,store,held,dnsbl').split(','),
  servers: opt('servers', 'fakemx,smtp-sink,haraka,smtp-server').split(','),
  write: !flag('no-write'),
  cpuProf: flag('cpu-prof'),
  // Pin every server and smtp-source to this one CPU (taskset): throughput then follows the CPU
  // each side spends per message, not how the two processes meet across two CPUs (Round 15).
  oneCpu: opt('one-cpu', ''),
  // 'fixed' (default): smtp-source runs with CLIENT_MALLOC; 'default': with glibc's own settings.
  clientMalloc: opt('client-malloc', 'fixed'),
  // Node/V8 flags for the fakemx process only, e.g. "--max-semi-space-size=4" (to compare heap settings).
  // Default: the NODE_OPTIONS the shipped systemd unit sets, so fakemx runs here as it is deployed.
  fakemxNode: opt('fakemx-node-options', shippedNodeOptions()).split(' ').filter(Boolean),
  keep: flag('keep'),
  floor: !flag('no-floor'),
};
if (O.oneCpu !== '' && !/^\d+$/.test(O.oneCpu)) {
  process.stderr.write(`bench: --one-cpu wants a CPU number, got ${JSON.stringify(O.oneCpu)}\n`);
  process.exit(2);
}
if (!['fixed', 'default'].includes(O.clientMalloc)) {
  process.stderr.write(`bench: --client-malloc wants fixed or default, got ${JSON.stringify(O.clientMalloc)}\n`);
  process.exit(2);
}
const SMTP_SOURCE = '/usr/sbin/smtp-source';
// The load generator's heap, held still (Round 16). With glibc's defaults, smtp-source's heap
// top is given back (brk) whenever 128 KiB at its end come free and taken again at the next
// session: in some runs 300-1,200 brk calls and 6,000-40,000 page faults per 4,000 messages
// instead of 12 and ~1,000, so the client's CPU per message doubled, against any server, at
// random. A 16 MiB top pad and high trim/mmap thresholds keep the heap it has; every server
// meets the same client. `--client-malloc default` measures with glibc's settings.
const CLIENT_MALLOC = 'glibc.malloc.top_pad=16777216:glibc.malloc.trim_threshold=67108864:glibc.malloc.mmap_threshold=67108864';
const CLIENT_ENV = O.clientMalloc === 'fixed' ? { GLIBC_TUNABLES: CLIENT_MALLOC } : {};
const HAND_WRITTEN = '<!-- hand-written sections below: bench/run.mjs keeps them -->';
const SMTP_SINK = '/usr/sbin/smtp-sink';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const log = (m) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const commands = []; // exact command lines, for RESULTS.md

// ---- helpers ---------------------------------------------------------------------------------


function quoteCmd(args) {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(String(a)) ? String(a) : `'${String(a).replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Records a command for RESULTS.md: paths relative to the project, ports and pids as placeholders. */
function noteCommand(c) {
  const t = c
    .split(`${ROOT}/`).join('')
    .split(process.execPath).join('node')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    .replace(/--(port|pid|bare-server) \d+/g, (_, k) => `--${k} ${k === 'pid' ? 'PID' : 'PORT'}`);
  if (!commands.includes(t)) commands.push(t);
}

/** A local DNS server: PTR -> localhost., A -> 127.0.0.1, anything else NXDOMAIN; answered at once. */
function startLocalDns() {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    let queries = 0;
    sock.on('message', (msg, rinfo) => {
      try {
        const q = dnsPacket.decode(msg);
        const question = q.questions?.[0];
        if (!question) return;
        queries++;
        const answers = [];
        if (question.type === 'PTR') answers.push({ type: 'PTR', name: question.name, ttl: 300, data: 'localhost' });
        else if (question.type === 'A' && /^localhost\.?$/i.test(question.name)) answers.push({ type: 'A', name: question.name, ttl: 300, data: '127.0.0.1' });
        const reply = dnsPacket.encode({
          type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (answers.length ? 0 : 3),
          questions: q.questions, answers,
        });
        sock.send(reply, rinfo.port, rinfo.address);
      } catch {
        // malformed query: no answer, the client times out
      }
    });
    sock.on('error', reject);
    sock.bind(0, '127.0.0.1', () => resolve({ addr: `127.0.0.1:${sock.address().port}`, stats: () => ({ queries }), close: () => sock.close() }));
  });
}

/** Every server this run started and has not stopped: killed on exit, so a failed run leaves no orphan. */
const live = new Set();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

/** `cmd args` as run: under `taskset -c N` with --one-cpu. */
function pinned(cmd, args) {
  return O.oneCpu ? ['taskset', ['-c', O.oneCpu, cmd, ...args]] : [cmd, args];
}

/** Spawns a server under `ulimit -n` raised to the hard limit; `exec` keeps the pid the server's. */
function spawnServer(name, cmd0, args0, env = {}) {
  const [cmd, args] = pinned(cmd0, args0);
  const shownEnv = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  noteCommand(`${[...shownEnv, quoteCmd([cmd, ...args])].join(' ')}   # ${name}`);
  const proc = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', cmd, ...args], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = [];
  const keep = (d) => {
    for (const l of d.toString().split('\n')) if (l.trim()) tail.push(l.slice(0, 300));
    while (tail.length > 30) tail.shift();
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  live.add(proc);
  proc.exitCodeP = new Promise((r) =>
    proc.on('exit', (code, sig) => {
      live.delete(proc);
      r(code ?? sig);
    }),
  );
  proc.tail = tail;
  return proc;
}

async function stopProc(proc, graceMs = 5000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await proc.exitCodeP;
  clearTimeout(t);
}

// ---- the servers -----------------------------------------------------------------------------

/**
 * Starts one server. kind: fakemx | smtp-sink | haraka | smtp-server; mode: sink | store | held.
 * Returns { name, port, proc, pid, note }.
 */
async function startServer(kind, mode, dns) {
  const port = await freePort();
  const tag = `${kind}-${mode}`;
  const storeDir = join(OUT, 'store', kind);
  if (mode === 'store') {
    rmSync(storeDir, { recursive: true, force: true });
    mkdirSync(storeDir, { recursive: true });
  }
  let proc;
  let note = '';
  if (kind === 'fakemx') {
    const access = join(OUT, 'access.txt');
    writeFileSync(access, '# bench: the fresh client of the held-sessions scenario skips the banner delay\npermit 127.0.0.2/32\n');
    const cfg = {
      listenAddress: '127.0.0.1', listenPort: port, storeData: mode === 'store', storePath: storeDir,
      bannerDelay: mode === 'held' ? 300000 : 0, errorDelay: 0, doEarlyTalk: false, doTempFail: false,
      maxSessions: 1000000, maxSessionsPerIp: 1000000, maxMessages: 1000000, maxSmtpErrors: 10000,
      maxDataSize: 52428800, logLevel: 'warn', shutdownGrace: 1000, receiveTimeout: 300000,
      accessList: mode === 'held' ? access : '',
    };
    const file = join(OUT, `${tag}.json`);
    writeFileSync(file, `${JSON.stringify(cfg, null, 2)}\n`);
    const nodeArgs = [...O.fakemxNode, ...(O.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', join(OUT, 'prof')] : [])];
    // dist/fakemx.cjs as shipped (package.json bin, systemd, Docker): it sizes libuv's pool to 16.
    proc = spawnServer(tag, process.execPath, [...nodeArgs, 'dist/fakemx.cjs', 'run', '--config', file]);
    note = mode === 'store' ? 'fsync .eml; journal + dir fsync shared' : '';
  } else if (kind === 'smtp-sink') {
    const args = ['-u', 'nobody'];
    if (mode === 'store') {
      chmodSync(storeDir, 0o777); // smtp-sink drops to nobody before it writes
      args.push('-d', `${storeDir}/%H%M%S.`);
      note = 'no fsync';
    }
    proc = spawnServer(tag, SMTP_SINK, [...args, `127.0.0.1:${port}`, '1024']);
  } else if (kind === 'haraka') {
    const dir = join(OUT, tag);
    rmSync(dir, { recursive: true, force: true });
    cpSync(join(BENCH, 'peers-config'), dir, { recursive: true });
    const tpl = readFileSync(join(dir, 'config/smtp.ini.template'), 'utf8');
    writeFileSync(join(dir, 'config/smtp.ini'), tpl.replaceAll('@PORT@', String(port)));
    const env = { BENCH_DNS: dns.addr };
    if (mode === 'store') env.BENCH_STORE_DIR = storeDir;
    proc = spawnServer(tag, process.execPath, [join(BENCH, 'peers/node_modules/Haraka/bin/haraka'), '-c', dir], env);
    note = mode === 'store' ? 'fsync .eml + dir' : 'rDNS via local DNS';
  } else if (kind === 'smtp-server') {
    const args = [join(BENCH, 'smtp-server-sink.mjs'), '--port', String(port), '--dns', dns.addr];
    if (mode === 'store') args.push('--store', storeDir);
    proc = spawnServer(tag, process.execPath, args);
    note = mode === 'store' ? 'fsync .eml + dir' : 'fixed 100 ms greeting wait';
  } else if (kind === 'node-net') {
    proc = spawnServer(tag, process.execPath, [join(BENCH, 'held-sessions.mjs'), '--bare-server', String(port)]);
    note = 'bare Node sink, no parsing or limits';
  } else {
    throw new Error(`unknown server ${kind}`);
  }
  try {
    await waitGreeting({ port, localAddress: '127.0.0.2', timeoutMs: 30000 });
  } catch (e) {
    await stopProc(proc);
    throw new Error(`${tag} did not start: ${e.message}\n${proc.tail.join('\n')}`);
  }
  return { kind, mode, port, proc, pid: proc.pid, note, storeDir };
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (proc(5) fields 14, 15)
  } catch {
    return NaN;
  }
}

/**
 * One smtp-source run against a server process; returns msgs/s on the wall clock around the
 * client, the server's CPU µs per message, and the client's CPU share (near 100% = client-bound).
 */
function runSource(port, { s, m, d }, note = true, serverPid = 0) {
  const args = ['-s', String(s), '-m', String(m), '-l', String(O.size), '-f', 'bench@source.example', '-t', 'sink@fakemx.example'];
  if (d) args.push('-d');
  args.push(`127.0.0.1:${port}`);
  const shownEnv = Object.entries(CLIENT_ENV).map(([k, v]) => `${k}=${v} `).join('');
  if (note) noteCommand(`${shownEnv}${quoteCmd(pinned(SMTP_SOURCE, args.slice(0, -1)).flat())} 127.0.0.1:PORT`);
  return new Promise((resolve) => {
    const cpu0 = serverPid ? cpuSeconds(serverPid) : NaN;
    const t0 = performance.now();
    // bash's `times` prints the CPU time of its children (smtp-source) on the last line.
    const p = spawn('bash', ['-c', '"$0" "$@"; rc=$?; times >&2; exit $rc', ...pinned(SMTP_SOURCE, args).flat()], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...CLIENT_ENV },
    });
    let err = '';
    p.stderr.on('data', (c) => {
      if (err.length < 8000) err += c.toString();
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 300000);
    p.on('exit', (code, sig) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      const cpu1 = serverPid ? cpuSeconds(serverPid) : NaN;
      const lines = err.split('\n').filter((l) => l.trim());
      const toS = (t) => {
        const x = /^(\d+)m([\d.]+)s$/.exec(t);
        return x ? Number(x[1]) * 60 + Number(x[2]) : NaN;
      };
      const last = lines.length ? lines[lines.length - 1].trim().split(/\s+/) : [];
      const clientCpu = last.length === 2 ? toS(last[0]) + toS(last[1]) : NaN;
      const warnings = lines.slice(0, -2).filter((l) => l.trim());
      resolve({
        ok: code === 0 && warnings.length === 0, code: code ?? sig, ms, rate: (m * 1000) / ms, warnings: warnings.slice(0, 3),
        serverUsPerMsg: ((cpu1 - cpu0) * 1e6) / m, clientCpuShare: clientCpu / (ms / 1000),
      });
    });
  });
}

function countFiles(dir) {
  let n = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.eml') || (!e.name.startsWith('.') && !e.name.endsWith('.json'))) n++;
    }
  };
  if (existsSync(dir)) walk(dir);
  return n;
}

// ---- scenarios -------------------------------------------------------------------------------

const results = { throughput: {}, held: {}, dnsbl: null, failures: [] };

async function throughput(mode, dns) {
  const reps = mode === 'store' ? O.storeReps : O.reps;
  // The sink scenario also runs the bare Node floor (held-sessions.mjs --bare-server).
  const kinds = mode === 'sink' && O.floor ? [...O.servers, 'node-net'] : [...O.servers];
  log(`${mode}: starting ${kinds.join(', ')}`);
  const servers = [];
  for (const k of kinds) servers.push(await startServer(k, mode, dns));
  const modes = [];
  for (const s of O.sessions) for (const d of [false, true]) modes.push({ s, d, m: d ? O.messagesReuse : O.messages });
  // Warm-up, not counted: JIT, pools and caches of every server get the same start.
  for (const sv of servers) {
    for (const md of [{ s: 50, m: O.quick ? 200 : 500, d: false }, { s: 20, m: O.quick ? 500 : 2000, d: true }]) {
      const w = await runSource(sv.port, md, false);
      if (!w.ok) results.failures.push(`${mode} ${sv.kind} warm-up: exit ${w.code} ${w.warnings.join(' | ')}`);
    }
  }
  const table = {};
  const cpu = {};
  const client = {};
  for (const md of modes) {
    for (const t of [table, cpu, client]) t[`${md.s}${md.d ? 'd' : ''}`] = Object.fromEntries(servers.map((sv) => [sv.kind, []]));
  }
  for (let r = 0; r < reps; r++) {
    for (const md of modes) {
      // Rotate the order each repetition so no server always runs first (or after the same one).
      const order = servers.map((_, i) => servers[(i + r) % servers.length]);
      for (const sv of order) {
        const before = mode === 'store' ? countFiles(sv.storeDir) : 0;
        const res = await runSource(sv.port, md, true, sv.pid);
        const key = `${md.s}${md.d ? 'd' : ''}`;
        if (mode === 'store') {
          const stored = countFiles(sv.storeDir) - before;
          if (stored !== md.m) res.warnings.push(`stored ${stored} of ${md.m}`);
        }
        if (!res.ok) results.failures.push(`${mode} ${sv.kind} -s ${md.s}${md.d ? ' -d' : ''}: exit ${res.code} ${res.warnings.join(' | ')}`);
        table[key][sv.kind].push(res.rate);
        cpu[key][sv.kind].push(res.serverUsPerMsg);
        client[key][sv.kind].push(res.clientCpuShare);
        log(`${mode} rep ${r + 1}/${reps} -s ${md.s}${md.d ? ' -d' : '   '} ${sv.kind.padEnd(11)} ${res.rate.toFixed(0).padStart(6)} msgs/s  server ${res.serverUsPerMsg.toFixed(0).padStart(4)} µs/msg  client ${(res.clientCpuShare * 100).toFixed(0)}% CPU${res.ok ? '' : `  (${res.warnings.join(' | ')})`}`);
      }
    }
  }
  for (const sv of servers) {
    await stopProc(sv.proc);
    if (mode === 'store' && !O.keep) rmSync(sv.storeDir, { recursive: true, force: true });
  }
  results.throughput[mode] = { kinds, table, cpu, client, notes: Object.fromEntries(servers.map((sv) => [sv.kind, sv.note])), reps };
}

/** Runs a bench script as a child (a fresh client process, no garbage from earlier scenarios); parses its JSON. */
function runChild(script, args) {
  noteCommand(quoteCmd(['node', `bench/${script}`, ...args]));
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, join(BENCH, script), ...args], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => {
      err += d;
      for (const l of d.toString().split('\n')) if (l.trim()) log(`  ${script}: ${l.trim()}`);
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 600000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      try {
        if (code !== 0) throw new Error(`exit ${code}: ${err.slice(-500)}`);
        resolve(JSON.parse(out));
      } catch (e) {
        reject(e);
      }
    });
  });
}

async function held(dns) {
  // Only servers that can hold a session (smtp-sink has no way to), plus a bare Node net server
  // as the floor of what a Node process pays per socket.
  const kinds = [...O.servers.filter((x) => x !== 'smtp-sink'), 'node-net'];
  for (const k of kinds) {
    log(`held: ${k}, ${O.held} sessions`);
    const sv = await startServer(k, 'held', dns);
    try {
      const r = await runChild('held-sessions.mjs', ['--port', String(sv.port), '--pid', String(sv.pid), '--count', String(O.held), '--samples', String(O.samples)]);
      if (r.stillOpen !== r.count || r.lost > 0) results.failures.push(`held ${k}: ${r.stillOpen}/${r.count} still open, ${r.lost} lost ${JSON.stringify(r.errors)}`);
      if (r.probeErrorCount > 0) results.failures.push(`held ${k}: ${r.probeErrorCount} probe errors: ${r.probeErrors.join(' | ')}`);
      results.held[k] = r;
      log(`held ${k}: ${r.kibPerSession.toFixed(2)} KiB/session, EHLO p50 ${r.ehlo.p50.toFixed(2)} ms p99 ${r.ehlo.p99.toFixed(2)} ms`);
    } catch (e) {
      results.failures.push(`held ${k}: ${e.message}`);
      log(`held ${k} failed: ${e.message}`);
    } finally {
      await stopProc(sv.proc);
    }
    await sleep(1000); // let the kernel reap the closed sockets before the next server
  }
}

// ---- report ----------------------------------------------------------------------------------

const SHORT = { fakemx: 'fakemx', 'smtp-sink': 'smtp-sink', haraka: 'Haraka', 'smtp-server': 'smtp-server', 'node-net': 'floor' };
const NAMES = { fakemx: 'fakemx', 'smtp-sink': 'smtp-sink', haraka: 'Haraka', 'smtp-server': 'smtp-server', 'node-net': 'floor' };
const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '—');

function throughputTable(mode) {
  const t = results.throughput[mode];
  if (!t) return '';
  const peers = t.kinds.filter((k) => k !== 'fakemx');
  const head = ['smtp-source', ...t.kinds.map((k) => `${NAMES[k]}${t.notes[k] ? ` (${t.notes[k]})` : ''}`), ...peers.map((k) => `fakemx ÷ ${SHORT[k]}`)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const [key, byServer] of Object.entries(t.table)) {
    const d = key.endsWith('d');
    const s = parseInt(key, 10);
    const med = Object.fromEntries(Object.entries(byServer).map(([k, v]) => [k, pct(v, 50)]));
    const cells = t.kinds.map((k) => {
      const v = byServer[k];
      let c = `${fmt(med[k])} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})`;
      if (k === 'smtp-server' && !d) c += ` ≤${fmt(s / 0.1)} cap`;
      return c;
    });
    const r = peers.map((k) => ratio(med.fakemx, med[k]));
    lines.push(`| -s ${s}${d ? ' -d' : ''} -m ${d ? O.messagesReuse : O.messages} | ${cells.join(' | ')} | ${r.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Server CPU per message: independent of how fast the one smtp-source process can drive it. */
function cpuTable(mode) {
  const t = results.throughput[mode];
  if (!t) return '';
  const peers = t.kinds.filter((k) => k !== 'fakemx');
  const head = ['smtp-source', ...t.kinds.map((k) => SHORT[k]), ...peers.map((k) => `${SHORT[k]} ÷ fakemx`), 'smtp-source CPU share (fakemx runs)'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const [key, byServer] of Object.entries(t.cpu)) {
    const d = key.endsWith('d');
    const med = Object.fromEntries(Object.entries(byServer).map(([k, v]) => [k, pct(v, 50)]));
    const cells = t.kinds.map((k) => fmt(med[k]));
    const r = peers.map((k) => ratio(med[k], med.fakemx));
    const share = pct(t.client[key].fakemx ?? [], 50);
    lines.push(`| -s ${parseInt(key, 10)}${d ? ' -d' : ''} | ${cells.join(' | ')} | ${r.join(' | ')} | ${Number.isFinite(share) ? `${(share * 100).toFixed(0)}%` : '—'} |`);
  }
  return lines.join('\n');
}

function heldTable() {
  const ks = Object.keys(results.held);
  if (ks.length === 0) return '';
  const lines = [
    '| server | held | RSS before → held (MiB) | KiB per held session | fresh EHLO p50 (ms) | p99 (ms) | max (ms) | before hold p50/p99 (ms) | still open |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const k of ks) {
    const r = results.held[k];
    lines.push(`| ${NAMES[k]} | ${r.count} | ${(r.rssBaseKiB / 1024).toFixed(1)} → ${(Math.max(r.rssHeldKiB, r.rssAfterProbesKiB) / 1024).toFixed(1)} | ${r.kibPerSession.toFixed(2)} | ${r.ehlo.p50.toFixed(2)} | ${r.ehlo.p99.toFixed(2)} | ${r.ehlo.max.toFixed(2)} | ${r.ehloBefore.p50.toFixed(2)} / ${r.ehloBefore.p99.toFixed(2)} | ${r.stillOpen} |`);
  }
  return lines.join('\n');
}

function dnsblTable() {
  const r = results.dnsbl;
  if (!r) return '';
  const f = (x) => (Number.isFinite(x) ? x.toFixed(2) : '—');
  const row = (name, x, target) => `| ${name} | ${x.n} | ${f(x.p50)} | ${f(x.p99)} | ${f(x.max)} | ${target} |`;
  const lines = [
    `A DNS server in its own process answers every query after ${r.delayMs} ms; fakemx asks ${r.zones} zones. Daemon rows: connect → first reply line at the client (bannerDelay 0, so the greeting waits only for the verdict). Engine rows: \`DnsblCheck.check()\` from dist/dnsbl/check.js called in the measuring process, no SMTP.`,
    '',
    '| case | n | p50 (ms) | p99 (ms) | max (ms) | target |',
    '|---|---|---|---|---|---|',
    row('daemon: no lists (permitted client, baseline)', r.baseline, '—'),
    row('daemon: cold (new address each time)', r.cold, '≤ 55 ms'),
    row('daemon: cached (same addresses again)', r.cached, '≤ 1 ms'),
    row(`daemon: burst, ${r.burst.n} addresses at once`, r.burst, '—'),
  ];
  const e = r.engine;
  if (e && !e.error) {
    lines.push(row('engine: cold', e.cold, '≤ 55 ms'), row('engine: cached', e.cached, '≤ 1 ms'), row(`engine: burst, ${e.burst.n} addresses at once`, e.burst, '—'));
  }
  lines.push(
    '',
    `Daemon burst: wall ${r.burstWallMs.toFixed(0)} ms; SYNs dropped at a full accept queue (TcpExt ListenOverflows) ${r.burstListenOverflows}; UDP datagrams dropped at a full socket receive buffer (Udp RcvbufErrors, system-wide) ${r.burstUdpRcvbufErrors}; DNS queries answered in the whole scenario ${r.queries}; replies other than 220: ${r.non220}.`,
  );
  if (e?.error) lines.push('', `Engine measurement failed: ${e.error}`);
  else if (e) lines.push('', `Engine burst: wall ${e.burstWallMs.toFixed(0)} ms; zone errors ${JSON.stringify(e.zoneErrors)}; UDP receive-buffer drops ${e.udpRcvbufErrors}.`);
  return lines.join('\n');
}

function verdicts() {
  const out = [];
  const t = results.throughput;
  const check = (label, ok) => out.push(`- ${ok === null ? '—' : ok ? 'met' : '**missed**'}: ${label}`);
  for (const mode of ['sink', 'store']) {
    if (!t[mode]) continue;
    for (const [key, by] of Object.entries(t[mode].table)) {
      const med = (k) => (by[k] ? pct(by[k], 50) : NaN);
      const f = med('fakemx');
      const label = `-s ${parseInt(key, 10)}${key.endsWith('d') ? ' -d' : ''}`;
      if (mode === 'sink' && by['smtp-sink']) check(`sink ${label}: fakemx ≥ 0.8× smtp-sink (${ratio(f, med('smtp-sink'))})`, f >= 0.8 * med('smtp-sink'));
      // Issue 13: ≥ 0.85× the bare Node floor per new connection, ≥ 0.9× with reused connections.
      const floorNeed = key.endsWith('d') ? 0.9 : 0.85;
      // fakemx and the floor run back to back in each repetition, so each repetition's own ratio
      // compares the two under the same machine load; the verdict is the median of those paired
      // ratios (a drift in the VM's speed between repetitions cancels out of each pair). The
      // ratio of the medians is printed beside it.
      const paired = (by.fakemx ?? []).map((x, i) => x / (by['node-net']?.[i] ?? NaN)).filter(Number.isFinite);
      const pairedMed = pct(paired, 50);
      const perRep = paired.map((x) => `${x.toFixed(2)}×`).join(', ');
      if (mode === 'sink' && by['node-net']) check(`sink ${label}: fakemx ≥ ${floorNeed}× the bare Node floor (median of paired ratios ${ratio(pairedMed, 1)}; ratio of medians ${ratio(f, med('node-net'))}; per repetition ${perRep})`, pairedMed >= floorNeed);
      const need = mode === 'sink' ? 2 : 1.5;
      for (const k of ['haraka', 'smtp-server']) {
        if (by[k]) check(`${mode} ${label}: fakemx ≥ ${need}× ${NAMES[k]} (${ratio(f, med(k))})`, f >= need * med(k));
      }
    }
  }
  const h = results.held.fakemx;
  if (h) {
    const floor = results.held['node-net'];
    // Issue 13 set 4.0 KiB (the round-1 target of 3 KiB was below a bare Node socket's 3.4).
    check(`held: ≤ 4.0 KiB per held session (${h.kibPerSession.toFixed(2)}${floor ? `; a bare Node socket costs ${floor.kibPerSession.toFixed(2)} here` : ''})`, h.kibPerSession <= 4);
    check(`held: fresh-client EHLO p99 ≤ 5 ms (${h.ehlo.p99.toFixed(2)})`, h.ehlo.p99 <= 5);
  }
  const d = results.dnsbl;
  if (d) {
    check(`DNSBL cold (daemon) p50 ≤ 55 ms (${d.cold.p50.toFixed(2)}; p99 ${d.cold.p99.toFixed(2)})`, d.cold.p50 <= 55);
    check(`DNSBL cached (daemon) p50 ≤ 1 ms (${d.cached.p50.toFixed(2)}; p99 ${d.cached.p99.toFixed(2)})`, d.cached.p50 <= 1);
    if (d.engine && !d.engine.error) {
      check(`DNSBL cold (engine) p99 ≤ 55 ms (${d.engine.cold.p99.toFixed(2)})`, d.engine.cold.p99 <= 55);
      check(`DNSBL cached (engine) p99 ≤ 1 ms (${d.engine.cached.p99.toFixed(2)})`, d.engine.cached.p99 <= 1);
    }
  }
  return out.join('\n');
}

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

function machineFacts() {
  const pkgV = (p) => {
    try {
      return JSON.parse(readFileSync(join(BENCH, 'peers/node_modules', p, 'package.json'), 'utf8')).version;
    } catch {
      return '?';
    }
  };
  const rev = sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']) ? ' + uncommitted changes in src/' : '';
  return [
    `- CPU: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`,
    `- Memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; kernel ${os.release()}; ${sh('bash', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'])}`,
    `- Open files per process: ${sh('bash', ['-c', 'ulimit -n'])}; ephemeral ports ${sh('sysctl', ['-n', 'net.ipv4.ip_local_port_range']).replace(/\s+/g, '–')}`,
    `- Store filesystem: ${sh('stat', ['-f', '-c', '%T', BENCH])} (${sh('bash', ['-c', `df -h --output=source,size ${BENCH} | tail -1`])})`,
    `- Node ${process.version}; fakemx ${rev}${dirty}; postfix ${sh('dpkg-query', ['-W', '-f=${Version}', 'postfix'])} (smtp-source, smtp-sink); Haraka ${pkgV('Haraka')}; smtp-server ${pkgV('smtp-server')}`,
  ].join('\n');
}

const loads = [];
function cpuTotals() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}
/**
 * Notes how busy the machine is while the bench itself is idle (1 s of /proc/stat between
 * scenarios): other work on the machine skews every number.
 */
async function noteLoad(at) {
  const a = cpuTotals();
  await sleep(1000);
  const b = cpuTotals();
  const busy = 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
  loads.push({ at, busy });
}

function report(startedAt, wallMs) {
  const parts = [
    '# fakemx benchmark results',
    '',
    '(The generated report of the last full run follows; the dated "Round" sections after it are hand-written and kept when the bench rewrites this file.)',
    '',
    `Run ${startedAt.toISOString()} (${(wallMs / 60000).toFixed(1)} min) with \`node bench/run.mjs ${argv.join(' ')}\`${O.quick ? ' — **quick smoke run, small counts**' : ''}.`,
    '',
    '## Machine',
    machineFacts(),
    `- CPU busy with other work while the bench was idle (1 s samples): ${loads.map((l) => `${l.at} ${(l.busy * 100).toFixed(0)}%`).join(', ')}${Math.max(...loads.map((l) => l.busy)) > 0.15 ? ' — **the machine was busy with other work; treat these numbers as rough and rerun on an idle machine**' : ''}`,
    '',
    `All servers on 127.0.0.1, one process each, logging at warn.${O.oneCpu ? ` Every server and smtp-source pinned to CPU ${O.oneCpu} (\`--one-cpu\`).` : ''}${O.clientMalloc === 'fixed' ? ` smtp-source runs with \`GLIBC_TUNABLES=${CLIENT_MALLOC}\` (its heap held still, Round 16; \`--client-malloc default\` drops it).` : ' smtp-source runs with glibc\'s default heap settings (`--client-malloc default`).'} Messages ${O.size} octets (\`-l ${O.size}\`). Cells: median msgs/s (min–max) over the repetitions; runs of the servers interleaved, order rotated each repetition. "-d" = connections reused; otherwise one connection per message.`,
  ];
  const cpuNote = 'Server CPU time (user + system, all threads, from /proc/PID/stat) per message, median µs; lower is better; "÷ fakemx" = how many times more CPU the peer spends per message. The last column is the CPU share of the single smtp-source process in the fakemx runs: near 100% means the client, not the server, set the pace.';
  if (results.throughput.sink) {
    parts.push('', `## 1. Sink throughput (msgs/s, ${results.throughput.sink.reps} repetitions)`, '', throughputTable('sink'), '', cpuNote, '', cpuTable('sink'));
  }
  if (results.throughput.sink && O.servers.includes('smtp-server')) {
    parts.push('', 'smtp-server waits a fixed 100 ms before its greeting, so without `-d` it cannot exceed sessions ÷ 0.1 s (the "cap" in its cells).');
  }
  if (results.throughput.store) {
    parts.push('', `## 2. Store throughput (msgs/s, ${results.throughput.store.reps} repetitions; each server writes every message to its own directory)`, '', throughputTable('store'), '', 'Server CPU µs per message (median):', '', cpuTable('store'));
  }
  if (Object.keys(results.held).length) {
    parts.push('', `## 3. Held sessions (${O.held} idle connections; fresh client from 127.0.0.2, ${O.samples} sequential samples of connect → EHLO reply)`, '', heldTable(), '',
      'fakemx holds its sessions in a 300 s banner delay (the fresh client is permitted by the access list and skips it); Haraka and smtp-server hold them idle after their greeting. RSS is the server process\'s VmRSS; per session = (RSS while held − RSS before) ÷ sessions.');
  }
  if (results.dnsbl) parts.push('', '## 4. DNSBL latency (fakemx daemon)', '', dnsblTable());
  parts.push('', '## Targets', '', verdicts());
  if (results.failures.length) parts.push('', '## Errors during the run', '', ...results.failures.map((f) => `- ${f}`));
  parts.push('', '## Exact commands', '', '```', 'bash bench/setup.sh', ...commands, '```', '');
  return parts.join('\n');
}

// ---- main ------------------------------------------------------------------------------------

async function main() {
  const startedAt = new Date();
  const t0 = Date.now();
  mkdirSync(OUT, { recursive: true });
  for (const f of [SMTP_SOURCE, SMTP_SINK]) if (!existsSync(f)) throw new Error(`${f} missing: run bash bench/setup.sh`);
  if (!existsSync(join(ROOT, 'dist/cli.js'))) throw new Error('dist/cli.js missing: run npm run build');
  const dns = await startLocalDns();
  try {
    await noteLoad('before sink');
    if (O.scenarios.includes('sink')) await throughput('sink', dns);
    await noteLoad('before store');
    if (O.scenarios.includes('store')) await throughput('store', dns);
    await noteLoad('before held');
    if (O.scenarios.includes('held')) await held(dns);
    if (O.scenarios.includes('dnsbl')) {
      await noteLoad('before dnsbl');
      log('dnsbl: fakemx with 5 zones, 50 ms each');
      try {
        noteCommand('node dist/cli.js run --config bench/out/fakemx-dnsbl.json   # started by dnsbl-latency.mjs (5 rblProviders)');
        results.dnsbl = await runChild('dnsbl-latency.mjs', ['--burst', String(O.burst), '--samples', String(O.quick ? 50 : 200)]);
      } catch (e) {
        results.failures.push(`dnsbl: ${e.message}`);
      }
    }
  } finally {
    dns.close();
  }
  await noteLoad('end');
  const text = report(startedAt, Date.now() - t0);
  process.stdout.write(`${text}\n`);
  if (O.write) {
    // The dated, hand-written sections after the marker (rounds of work, other benches) stay.
    const file = join(BENCH, 'RESULTS.md');
    const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const at = old.indexOf(HAND_WRITTEN);
    writeFileSync(file, at >= 0 ? `${text}\n\n${old.slice(at)}` : text);
    log('wrote bench/RESULTS.md');
  }
  return results.failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
