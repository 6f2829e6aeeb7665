// The state store in a running server (real sockets on 127.0.0.1, the local LMDB backend in a
// temp directory): greylisting deferred then accepted with the message stored, the client cache
// skipping the banner delay, a trap, the config per listener profile, /healthz's state health,
// reload keeping the store, close releasing it.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { checkHealth } from '../../src/http/admin.js';
import { keys } from '../../src/state/types.js';
import { greeted, RawClient } from '../helpers/client.js';
import { startServer, type TestServer, FAST } from '../helpers/server.js';

let srv: TestServer | undefined;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'fakemx-state-srv-'));
  dirs.push(d);
  return d;
};
afterEach(async () => {
  await srv?.close();
  srv = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function send(port: number, rcpt: string): Promise<{ rcpt: number; data?: number; end?: number }> {
  const c = await greeted(port);
  await c.cmd('MAIL FROM:<sender@example.com>');
  const r = await c.cmd(`RCPT TO:<${rcpt}>`);
  if (r.code !== 250) {
    await c.cmd('QUIT');
    c.close();
    return { rcpt: r.code };
  }
  const d = await c.cmd('DATA');
  const e = await c.cmd('Subject: t\r\n\r\nhello\r\n.');
  await c.cmd('QUIT');
  c.close();
  return { rcpt: r.code, data: d.code, end: e.code };
}

describe('state in a running server (local backend)', () => {
  it('greylisting: the first attempt is deferred 451, the retry after passtime is accepted and stored', async () => {
    const dir = tmp();
    srv = await startServer({ state: { path: dir }, greylist: { enabled: true, passtime: 300 } });
    expect(srv.server.state?.kind).toBe('local');
    expect((await send(srv.port, 'alice@example.org')).rcpt).toBe(451);
    expect((await send(srv.port, 'alice@example.org')).rcpt).toBe(451);
    await new Promise((r) => setTimeout(r, 320));
    expect(await send(srv.port, 'alice@example.org')).toEqual({ rcpt: 250, data: 354, end: 250 });
    const [m] = srv.messages();
    expect(m!.meta.verdicts.map((v) => v.tag)).toEqual(['GREYLIST_PASS']);
    expect(await srv.server.state!.get(keys.white('127.0.0.0/24'))).not.toBeNull();
  });

  it('the client cache: after one passed banner delay the greeting comes at once', async () => {
    // A delay long enough that "skipped" and "waited" cannot be confused on a loaded machine.
    srv = await startServer({ state: { path: tmp() }, bannerDelay: 1500, cache: { enabled: true } });
    let t0 = Date.now();
    const c1 = await RawClient.connect(srv.port);
    expect((await c1.reply(4000)).code).toBe(220);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1490);
    c1.close();
    await new Promise((r) => setTimeout(r, 20));
    t0 = Date.now();
    const c2 = await RawClient.connect(srv.port);
    expect((await c2.reply(2000)).code).toBe(220);
    expect(Date.now() - t0).toBeLessThan(1000);
    c2.close();
  });

  it('greytraps from a file; per listener profile: the corpus listener is not greylisted', async () => {
    const dir = tmp();
    const traps = join(dir, 'traps');
    writeFileSync(traps, '# traps\ntrap@example.org\n');
    srv = await startServer({
      state: { path: join(dir, 'state') },
      greylist: { trapAddresses: traps },
      listeners: [
        { address: '127.0.0.1', port: 0, tls: 'none', profile: { greylist: { enabled: true } } },
        { address: '127.0.0.1', port: 0, tls: 'none' },
      ],
    });
    const [grey, corpus] = srv.server.listening;
    expect((await send(corpus!.port, 'alice@example.org')).end).toBe(250);
    expect((await send(grey!.port, 'trap@example.org')).rcpt).toBe(451);
    // Trapped: the greylisting listener tempfails it; the corpus listener stores and marks it.
    expect((await send(grey!.port, 'alice@example.org')).rcpt).toBe(451);
    expect((await send(corpus!.port, 'bob@example.org')).end).toBe(250);
    const tags = srv.messages().map((m) => m.meta.verdicts.map((v) => v.tag));
    expect(tags).toContainEqual(['TRAP']);
  });

  it('/healthz is degraded while the store is down, ok otherwise; no store without a use', async () => {
    srv = await startServer({ state: { path: tmp() }, greylist: { enabled: true } });
    const health = () => checkHealth(srv!.server, false, Date.now(), async () => ({ ok: true }));
    expect((await health()).body.status).toBe('ok');
    srv.server.state!.markDown('test outage');
    expect((await health()).body).toMatchObject({ status: 'degraded', reason: expect.stringContaining('test outage') as unknown });
    srv.server.state!.markUp();
    expect((await health()).body.status).toBe('ok');
    const plain = await startServer({});
    expect(plain.server.state).toBeNull();
    await plain.close();
  });

  it('reload keeps the store while state.* is unchanged; close closes it', async () => {
    const dir = tmp();
    srv = await startServer({ state: { path: dir }, greylist: { enabled: true } });
    const st = srv.server.state!;
    await srv.server.reload(loadConfig({ env: {}, overrides: { ...FAST, listenPort: srv.port, storePath: srv.store, state: { path: dir }, greylist: { enabled: true, passtime: 1000 } } }));
    expect(srv.server.state).toBe(st);
    await srv.server.reload(loadConfig({ env: {}, overrides: { ...FAST, listenPort: srv.port, storePath: srv.store, state: { path: join(dir, 'other') }, greylist: { enabled: true } } }));
    expect(srv.server.state).not.toBe(st);
    await expect(st.get('x')).rejects.toThrow(/closed/);
  });

  it('a session open across a state.* reload keeps the old store until it ends (greylisting still applies to it)', async () => {
    const dir = tmp();
    srv = await startServer({ state: { path: dir }, greylist: { enabled: true } });
    const st = srv.server.state!;
    const open = await greeted(srv.port);
    await srv.server.reload(loadConfig({ env: {}, overrides: { ...FAST, listenPort: srv.port, storePath: srv.store, state: { path: join(dir, 'other') }, greylist: { enabled: true } } }));
    expect(srv.server.state).not.toBe(st);
    // The old session's policy still reads and writes its store: its first attempt is greylisted.
    await open.cmd('MAIL FROM:<a@example.org>');
    expect((await open.cmd('RCPT TO:<b@example.com>')).code).toBe(451);
    expect(await st.get(keys.grey('127.0.0.0/24', 'a@example.org', 'b@example.com'))).not.toBeNull();
    await open.cmd('QUIT');
    open.close();
    // Once it has ended, the old store is closed.
    for (let i = 0; i < 50 && (await st.get('x').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 20));
    await expect(st.get('x')).rejects.toThrow(/closed/);
  });

  it('a config with greylist files that do not parse is a config error naming the key', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'allow'), 'not an entry\n');
    expect(() => loadConfig({ env: {}, overrides: { greylist: { allowList: join(dir, 'allow') } } })).toThrow(/greylist\.allowList/);
    expect(() => loadConfig({ env: {}, overrides: { greylist: { trapAddresses: join(dir, 'missing') } } })).toThrow(/greylist\.trapAddresses/);
  });
});
