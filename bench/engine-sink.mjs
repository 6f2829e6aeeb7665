// The SMTP engine alone as a sink: src/smtp/session.ts with no hooks (no policy, observer,
// metrics or store) behind a plain net.Server. Between the bare Node floor
// (held-sessions.mjs --bare-server) and the daemon, it splits a connection's cost into what
// the engine adds and what the daemon's layers add (bench/RESULTS.md, Round 8).
// Usage: node bench/engine-sink.mjs PORT   (needs dist/: npm run build)
import net from 'node:net';

const { Session } = await import(new URL('../dist/smtp/session.js', import.meta.url).href);
const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: node bench/engine-sink.mjs PORT');
  process.exit(2);
}
// The limits of the bench's fakemx sink config (bench/run.mjs), so the engine does the same work.
const cfg = Object.freeze({
  listener: 'engine', hostName: 'engine.test', receiveTimeout: 300_000, maxLineLength: 2048, maxPendingInput: 1 << 20,
  maxDataSize: 52_428_800, dataTimeout: 0, maxSessionTime: 0, maxSmtpErrors: 10_000, maxSmtpNoop: 100, maxSmtpVrfy: 100,
  maxSmtpRcpt: 1000, maxRcptOvershoot: 0, maxJunkCommands: 100, maxMessages: 1_000_000, advertisePipelining: true,
  bannerTeaser: false, chunking: true, binaryMime: false,
});
const backend = { newSession: () => ({}) };
let n = 0;
const srv = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
  sock.on('error', () => {});
  const s = new Session(sock, { id: `e${n++}`, remoteAddress: sock.remoteAddress ?? '', remotePort: sock.remotePort ?? 0 }, cfg, backend);
  s.start();
});
srv.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ tag: 'LISTENING', port })));
process.on('SIGTERM', () => process.exit(0));
