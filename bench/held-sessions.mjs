// Held-sessions scenario and the small SMTP client helpers the other bench scripts share.
// measureHeld() opens `count` idle connections to a running server, reports its RSS growth per
// held connection and the connect->EHLO-reply latency of fresh clients meanwhile (p50/p99).
// Standalone: node bench/held-sessions.mjs --port P --pid PID [--count 15000] [--samples 200]
// (prints the result as JSON on stdout); or --bare-server PORT: the least a Node SMTP sink can be,
// the floor for a Node server's RSS per session and CPU per message.

import net from 'node:net';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** A free TCP port on loopback (for servers that need one named up front). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves after ms milliseconds. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Percentile of a numeric array (nearest rank); NaN for an empty one. */
export function pct(values, p) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i];
}

/** Resident set size of a process in KiB, from /proc (Linux only). */
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/**
 * One scripted client: connect (optionally from localAddress), wait for the greeting, then send
 * each of `commands` and wait for its final reply line. Resolves with the replies and timings
 * (ms since connect start); rejects on error, close, or after timeoutMs.
 */
export function smtpExchange({ host = '127.0.0.1', port, localAddress, commands = ['EHLO bench.example'], quit = true, timeoutMs = 10000 }) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const replies = [];
    const times = [];
    let buf = '';
    let done = false;
    const sock = net.connect({ host, port, localAddress });
    const timer = setTimeout(() => finish(new Error(`timeout after ${timeoutMs} ms (${replies.length} replies)`)), timeoutMs);
    function finish(err) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        sock.destroy();
        reject(err);
        return;
      }
      if (quit) sock.end('QUIT\r\n');
      // Close shortly after QUIT without waiting for 221, so the probe never stalls on a slow close.
      setTimeout(() => sock.destroy(), 50).unref();
      resolve({ replies, times });
    }
    sock.setNoDelay(true);
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error(`closed after ${replies.length} replies`)));
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.length > 65536) return finish(new Error('reply too long'));
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl + 1);
        buf = buf.slice(nl + 1);
        // RFC 5321 §4.2.1: "NNN " ends a (multi-line) reply, "NNN-" continues it.
        if (/^\d{3}(?: |\r?\n)/.test(line)) {
          replies.push(line.trimEnd());
          times.push(performance.now() - t0);
          const next = commands[replies.length - 1];
          if (next === undefined) return finish();
          sock.write(`${next}\r\n`);
        }
      }
    });
  });
}

/** Connect -> greeting -> EHLO reply, in ms; throws if either reply is not 2xx. */
export async function ehloProbe(opts) {
  const r = await smtpExchange({ ...opts, commands: ['EHLO bench.example'] });
  if (!r.replies[0]?.startsWith('220') || !r.replies[1]?.startsWith('250')) {
    throw new Error(`unexpected replies: ${JSON.stringify(r.replies)}`);
  }
  return r.times[1];
}

/** Waits until a TCP server on host:port greets with 220 (from localAddress), up to timeoutMs. */
export async function waitGreeting({ host = '127.0.0.1', port, localAddress, timeoutMs = 30000 }) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const r = await smtpExchange({ host, port, localAddress, commands: [], timeoutMs: 3000 });
      if (r.replies[0]?.startsWith('220')) return;
      last = new Error(`greeting ${r.replies[0]}`);
    } catch (e) {
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`no greeting from ${host}:${port}: ${last?.message}`);
}

/**
 * Opens `count` connections that stay idle (they read and drop whatever the server sends),
 * `concurrency` connects at a time, spread over the `sources` local addresses so one address
 * never runs out of ports. Returns the sockets and a live count of ones that closed early.
 */
export async function openHeld({ host = '127.0.0.1', port, count, sources, concurrency = 256, timeoutMs = 120000 }) {
  const sockets = [];
  const state = { lost: 0, errors: new Map() };
  let next = 0;
  const deadline = Date.now() + timeoutMs;
  async function worker() {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      await new Promise((resolve) => {
        const s = net.connect({ host, port, localAddress: sources[i % sources.length] });
        let settled = false;
        const settle = () => {
          if (!settled) {
            settled = true;
            resolve();
          }
        };
        s.on('connect', () => {
          sockets.push(s);
          settle();
        });
        s.on('data', () => {});
        s.on('error', (e) => {
          state.errors.set(e.code ?? e.message, (state.errors.get(e.code ?? e.message) ?? 0) + 1);
        });
        s.on('close', () => {
          state.lost++;
          settle();
        });
      });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { sockets, state };
}

/**
 * The scenario on an already-running server (process `pid`): baseline RSS, hold `count`
 * connections, RSS again, then `samples` sequential fresh-client EHLO probes from `freshAddress`.
 */
export async function measureHeld({ host = '127.0.0.1', port, pid, count, samples = 200, freshAddress = '127.0.0.2', sources, settleMs = 3000, log = () => {} }) {
  sources ??= Array.from({ length: 8 }, (_, i) => `127.0.1.${i + 1}`);
  // Warm the server's code paths before the baseline, so JIT and pools are not charged to sessions.
  const before = [];
  for (let i = 0; i < Math.min(50, samples); i++) before.push(await ehloProbe({ host, port, localAddress: freshAddress }));
  await sleep(500);
  const rss0 = rssKiB(pid);
  const t0 = Date.now();
  const held = await openHeld({ host, port, count, sources });
  const openMs = Date.now() - t0;
  log(`held: ${held.sockets.length} open in ${openMs} ms (lost ${held.state.lost})`);
  await sleep(settleMs);
  const rss1 = rssKiB(pid);
  const lat = [];
  const probeErrors = [];
  for (let i = 0; i < samples; i++) {
    try {
      lat.push(await ehloProbe({ host, port, localAddress: freshAddress }));
    } catch (e) {
      probeErrors.push(e.message);
    }
  }
  const rss2 = rssKiB(pid);
  const stillOpen = held.sockets.filter((s) => !s.destroyed).length;
  for (const s of held.sockets) s.destroy();
  return {
    count,
    opened: held.sockets.length,
    stillOpen,
    lost: held.state.lost,
    errors: Object.fromEntries(held.state.errors),
    openMs,
    rssBaseKiB: rss0,
    rssHeldKiB: rss1,
    rssAfterProbesKiB: rss2,
    kibPerSession: (Math.max(rss1, rss2) - rss0) / Math.max(1, held.sockets.length),
    ehloBefore: { p50: pct(before, 50), p99: pct(before, 99) },
    ehlo: { n: lat.length, p50: pct(lat, 50), p99: pct(lat, 99), max: pct(lat, 100) },
    probeErrors: probeErrors.slice(0, 5),
    probeErrorCount: probeErrors.length,
  };
}

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/**
 * The floor: the least a Node SMTP sink can do. One 'data' listener per socket, a reply per
 * command line, DATA read until CRLF.CRLF and dropped; no parsing, limits, timers or logging.
 */
function bareServer(port) {
  const srv = net.createServer((sock) => {
    let buf = '';
    let inData = false;
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.length > 1 << 20 && !inData) return sock.destroy();
      let out = '';
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) {
            buf = buf.slice(-4); // keep a possible split terminator only
            break;
          }
          buf = buf.slice(end + 5);
          inData = false;
          out += '250 ok\r\n';
          continue;
        }
        const nl = buf.indexOf('\n');
        if (nl < 0) break;
        const verb = buf.slice(0, 4).toUpperCase();
        buf = buf.slice(nl + 1);
        if (verb === 'DATA') {
          out += '354 go\r\n';
          inData = true;
        } else if (verb === 'QUIT') {
          sock.end(`${out}221 bye\r\n`);
          return;
        } else if (verb === 'EHLO') out += '250-bare\r\n250 PIPELINING\r\n';
        else out += '250 ok\r\n';
      }
      if (out) sock.write(out);
    });
    sock.write('220 bare ESMTP\r\n');
  });
  srv.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ tag: 'LISTENING', port })));
  process.on('SIGTERM', () => process.exit(0));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && arg('bare-server')) {
  bareServer(Number(arg('bare-server')));
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(arg('port'));
  const pid = Number(arg('pid'));
  if (!port || !pid) {
    console.error('usage: node bench/held-sessions.mjs --port P --pid PID [--count 15000] [--samples 200]');
    process.exit(2);
  }
  const r = await measureHeld({ port, pid, count: Number(arg('count', 15000)), samples: Number(arg('samples', 200)), log: (m) => console.error(m) });
  console.log(JSON.stringify(r, null, 2));
  process.exit(0);
}
