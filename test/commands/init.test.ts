// The test receiver profile (`fakemx init --profile sink`, config/sink.json) as an application's
// mail client uses it: a pooled connection that idles between messages or checks itself with
// NOOP must not be cut off by the anti-bot limits (8 s receiveTimeout, 7 NOOPs, 100 junk
// commands). RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next command.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configText } from '../../src/commands/init.js';
import { loadConfig } from '../../src/config/load.js';
import { createServer, type FakemxServer } from '../../src/server.js';
import { greeted } from '../helpers/client.js';

const FIVE_MINUTES = 5 * 60_000;
const dirs: string[] = [];
let server: FakemxServer | undefined;
afterEach(async () => {
  await server?.close(500);
  server = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The two files a user starts a test receiver from: the shipped one and the one init writes. */
function sinkFiles(): [string, string][] {
  const dir = mkdtempSync(join(tmpdir(), 'fakemx-init-sink-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'fakemx.json'), configText('sink', dir));
  return [['config/sink.json', 'config/sink.json'], ['fakemx init --profile sink', join(dir, 'fakemx.json')]];
}

describe('the sink profile keeps an application\'s connection', () => {
  it.each(sinkFiles())('%s: receiveTimeout of 5 minutes, NOOP and RSET not limited', (_name, file) => {
    const { config } = loadConfig({ file, env: {} });
    expect(config.receiveTimeout).toBeGreaterThanOrEqual(FIVE_MINUTES);
    expect(config.maxSmtpNoop).toBeGreaterThanOrEqual(10_000);
    expect(config.maxJunkCommands).toBeGreaterThanOrEqual(1_000_000);
  });

  it('config/sink.json on a socket: a NOOP before each of 120 messages on one connection', async () => {
    const store = mkdtempSync(join(tmpdir(), 'fakemx-init-sink-store-'));
    dirs.push(store);
    const cfg = JSON.parse(readFileSync('config/sink.json', 'utf8')) as Record<string, unknown>;
    server = createServer({ config: { ...cfg, listenPort: 0, storePath: store, storeData: false } });
    const [l] = await server.listen();
    const c = await greeted(l!.port);
    for (let i = 0; i < 120; i++) {
      expect((await c.cmd('NOOP')).code).toBe(250);
      expect((await c.cmd('RSET')).code).toBe(250);
      expect((await c.cmd('MAIL FROM:<app@example.org>')).code).toBe(250);
      expect((await c.cmd('RCPT TO:<user@example.com>')).code).toBe(250);
      expect((await c.cmd('DATA')).code).toBe(354);
      expect((await c.cmd(`Subject: ${i}\r\n\r\nbody\r\n.`)).code).toBe(250);
    }
    expect((await c.cmd('QUIT')).code).toBe(221);
    c.close();
  });
});
