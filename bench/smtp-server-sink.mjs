// The smtp-server (Nodemailer) peer for the benchmarks: accepts every sender and recipient and
// discards each message, or with --store DIR writes each one durably (temp file, fsync, rename,
// directory fsync: the same guarantee fakemx gives). Its per-connection reverse-DNS lookup stays
// on but is answered by the harness's local DNS server (--dns 127.0.0.1:PORT).
// Usage: node bench/smtp-server-sink.mjs --port P [--store DIR] [--dns HOST:PORT]

import { createRequire } from 'node:module';
import dns from 'node:dns';
import { mkdirSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const require = createRequire(import.meta.url);
const { SMTPServer } = require('./peers/node_modules/smtp-server');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const port = Number(arg('port', 2526));
const storeDir = arg('store', '');
const dnsServer = arg('dns', '');
if (dnsServer) dns.setServers([dnsServer]);
if (storeDir) mkdirSync(storeDir, { recursive: true });

const MAX_SIZE = 50 * 1024 * 1024;

async function storeDurably(buf) {
  const name = `${Date.now()}.${randomBytes(6).toString('hex')}.eml`;
  const tmp = join(storeDir, `.tmp-${name}`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(buf);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(storeDir, name));
  const d = await open(storeDir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

const server = new SMTPServer({
  secure: false,
  // No TLS or AUTH: fakemx advertises neither without a certificate, and smtp-source uses neither.
  disabledCommands: ['STARTTLS', 'AUTH'],
  authOptional: true,
  logger: false,
  size: MAX_SIZE,
  // Held sessions must stay open for the whole scenario.
  socketTimeout: 3600_000,
  onData(stream, _session, callback) {
    if (!storeDir) {
      stream.on('data', () => {});
      stream.on('end', () => callback());
      return;
    }
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      if (stream.sizeExceeded) return callback(new Error('message too big'));
      storeDurably(Buffer.concat(chunks)).then(
        () => callback(),
        (e) => callback(Object.assign(new Error(`store failed: ${e.message}`), { responseCode: 451 })),
      );
    });
  },
});
server.on('error', (e) => console.error(`smtp-server-sink: ${e.message}`));
server.listen(port, '127.0.0.1', () => console.log(JSON.stringify({ tag: 'LISTENING', port })));
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
