// The SMTP engine alone as a sink: src/smtp/session.ts with no hooks (no policy, observer,
// metrics or store) behind a plain net.Server. Between the bare Node floor
// (held-sessions.mjs --bare-server) and the daemon, it splits a connection's cost into what
// the engine adds and what the daemon's layers add (bench/RESULTS.md, Round 8).
// Usage: node bench/engine-sink.mjs PORT   (needs dist/: npm run build)
import net from 'node:net';

const dist = (f) => import(new URL(`../dist/${f}`, import.meta.url).href);
const { Session } = await dist('smtp/session.js');
const { sessionConfig } = await dist('server.js');
const { loadConfig } = await dist('config/load.js');
const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: node bench/engine-sink.mjs PORT');
  process.exit(2);
}
// The engine's config as the daemon derives it from the bench's fakemx sink config
// (bench/run.mjs), so the engine alone does the same work per command as the daemon's engine.
const loaded = loadConfig({
  env: {},
  overrides: {
    listenAddress: '127.0.0.1', listenPort: port, storeData: false, bannerDelay: 0, errorDelay: 0, doEarlyTalk: false,
    doTempFail: false, maxSessions: 1000000, maxSessionsPerIp: 1000000, maxMessages: 1000000, maxSmtpErrors: 10000,
    maxDataSize: 52428800, logLevel: 'warn', receiveTimeout: 300000, accessList: '',
  },
});
const cfg = sessionConfig(loaded.listeners[0], loaded);
const backend = { newSession: () => ({}) };
let n = 0;
const srv = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
  sock.on('error', () => {});
  const s = new Session(sock, { id: `e${n++}`, remoteAddress: sock.remoteAddress ?? '', remotePort: sock.remotePort ?? 0 }, cfg, backend);
  s.start();
});
srv.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ tag: 'LISTENING', port })));
process.on('SIGTERM', () => process.exit(0));
