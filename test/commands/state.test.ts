// `fakemx state` against the local store of a running server: the CLI as another process on the
// same LMDB file (list what greylisting wrote, add an allow entry and see the next delivery pass,
// exit codes 64 and 69; few spawns, each costs a Node start), the commands themselves over the
// running store (grep, filters, counts, export, trap add/delete), and the pure pieces.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { addCommand, countsCommand, delCommand, listCommand } from '../../src/commands/state.js';
import { addEntry, addProblem, EntryProblem, isEntryKey, keysFor, matches, MAX_ALLOW_NETWORKS, subjectOf } from '../../src/state/entries.js';
import { memoryStateStore } from '../../src/state/store.js';
import { greeted } from '../helpers/client.js';
import { CLI } from '../helpers/daemon.js';
import { startServer, type TestServer } from '../helpers/server.js';

const root = mkdtempSync(join(tmpdir(), 'fakemx-state-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let srv: TestServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

function cli(args: string[], config: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'state', ...args, '-c', config], { timeout: 60_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function rcpt(port: number, to: string, from?: string): Promise<number> {
  const c = await greeted(port, 'client.test', from ? { localAddress: from } : {});
  await c.cmd('MAIL FROM:<sender@example.com>');
  const r = await c.cmd(`RCPT TO:<${to}>`);
  await c.cmd('QUIT');
  c.close();
  return r.code;
}

describe('fakemx state (local store, daemon running)', () => {
  it('another process lists what greylisting wrote; its allow entry lets the next delivery through', async () => {
    const dir = mkdtempSync(join(root, 'a-'));
    const config = join(dir, 'fakemx.json');
    writeFileSync(config, JSON.stringify({ state: { path: join(dir, 'state') } }));
    srv = await startServer({ state: { path: join(dir, 'state') }, greylist: { enabled: true } });
    expect(await rcpt(srv.port, 'alice@example.org')).toBe(451);
    const list = await cli(['list', '--kind', 'grey', '--json'], config);
    expect(list.code).toBe(0);
    const rows = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { key: string; subject: string; value: Record<string, unknown> });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ key: 'grey:127.0.0.0/24|sender@example.com|alice@example.org', subject: '127.0.0.0/24', value: { from: 'sender@example.com', rcpt: 'alice@example.org' } });
    const add = await cli(['add', 'allow', '127.0.0.1'], config);
    expect(add).toMatchObject({ code: 0, stdout: 'added white:127.0.0.0/24 for 36d\n' });
    expect(await rcpt(srv.port, 'bob@example.org')).toBe(250);
  });

  it('grep, filters, counts, export, trap add and delete (the commands over the running store)', async () => {
    const dir = mkdtempSync(join(root, 'c-'));
    srv = await startServer({ state: { path: join(dir, 'state') }, greylist: { enabled: true } });
    const st = srv.server.state!;
    const cfg = srv.server.config;
    const lines: string[] = [];
    const out = (l: string) => lines.push(l);
    const take = () => lines.splice(0);
    expect(await rcpt(srv.port, 'alice@example.org')).toBe(451);
    expect(await listCommand(st, { grep: 'ALICE@' }, false, out)).toBe(0);
    expect(take()[0]).toMatch(/^grey:127\.0\.0\.0\/24\|sender@example\.com\|alice@example\.org {2}expires .* \(in (3h59m|4h)\) {2}\{/);
    expect(await listCommand(st, { ip: '127.0.0.1' }, false, out)).toBe(0);
    expect(await listCommand(st, { net: '10.0.0.0/8' }, false, out)).toBe(1);
    take();
    expect(await addCommand(st, 'trap', '127.0.0.1', 60_000, cfg, out)).toBe(0);
    expect(take()).toEqual(['added trap:127.0.0.1 for 1m']);
    expect(await rcpt(srv.port, 'bob@example.org')).toBe(451);
    expect(await countsCommand(st, {}, true, out)).toBe(0);
    expect((JSON.parse(take()[0]!) as { kinds: Record<string, { count: number }> }).kinds).toMatchObject({ grey: { count: 1 }, white: { count: 0 }, trap: { count: 1 } });
    expect(await delCommand(st, keysFor('trap', '127.0.0.1', cfg), out)).toBe(0);
    expect(await delCommand(st, keysFor('trap', '127.0.0.1', cfg), out)).toBe(1);
    expect(take()).toEqual(['deleted trap:127.0.0.1', 'no entry trap:127.0.0.1']);
    expect(await addCommand(st, 'allow', '127.0.0.0/24', undefined, cfg, out)).toBe(0);
    expect(await rcpt(srv.port, 'bob@example.org')).toBe(250);
    take();
    await listCommand(st, {}, true, out);
    expect(take().map((l) => (JSON.parse(l) as { kind: string }).kind).sort()).toEqual(['grey', 'white']);
  });

  // Greylisting reads one allowlist key per client, its /24 (or /64): an allow for any other
  // prefix is stored as the /24s greylisting looks up, or widened to the one holding it.
  it('allow for a network wider or narrower than greylisting\'s /24 lets its clients through', async () => {
    const dir = mkdtempSync(join(root, 'w-'));
    srv = await startServer({ state: { path: join(dir, 'state') }, greylist: { enabled: true } });
    const st = srv.server.state!;
    const cfg = srv.server.config;
    const lines: string[] = [];
    const out = (l: string) => lines.push(l);
    expect(await rcpt(srv.port, 'a@example.org', '127.1.5.5')).toBe(451);
    expect(await addCommand(st, 'allow', '127.1.0.0/16', undefined, cfg, out)).toBe(0);
    expect(lines.splice(0)).toEqual(['added 256 entries white:127.1.0.0/24 .. white:127.1.255.0/24 for 36d (127.1.0.0/16 as the /24 networks greylisting looks up)']);
    expect(await rcpt(srv.port, 'b@example.org', '127.1.5.5')).toBe(250);
    expect(await rcpt(srv.port, 'c@example.org', '127.1.200.9')).toBe(250);
    expect(await addCommand(st, 'allow', '127.4.4.0/28', undefined, cfg, out)).toBe(0);
    expect(lines.splice(0)).toEqual(['added white:127.4.4.0/24 for 36d (greylisting allows whole /24 networks; 127.4.4.0/28 is inside it)']);
    expect(await rcpt(srv.port, 'd@example.org', '127.4.4.2')).toBe(250);
    // Too wide: refused with the reason, nothing written.
    expect(await addCommand(st, 'allow', '10.0.0.0/8', undefined, cfg, out, out)).toBe(64);
    expect(lines.splice(0)).toEqual([`fakemx: error: 10.0.0.0/8 holds 2^16 networks of /24 (greylist.ipv4Prefix); an allow covers at most ${MAX_ALLOW_NETWORKS}`]);
    expect(await delCommand(st, keysFor('allow', '127.1.0.0/16', cfg), out)).toBe(0);
    expect(lines.splice(0)).toEqual(['deleted 256 of 256 entries white:127.1.0.0/24 .. white:127.1.255.0/24']);
    expect(await rcpt(srv.port, 'e@example.org', '127.1.5.5')).toBe(451);
  });

  it('usage errors exit 64, an unreachable Redis 69 (its password not shown)', async () => {
    const dir = mkdtempSync(join(root, 'b-'));
    const config = join(dir, 'fakemx.json');
    writeFileSync(config, JSON.stringify({ state: { path: join(dir, 'state') } }));
    expect((await cli(['add', 'deny', '10.0.0.0/8'], config)).code).toBe(64);
    // No store there (the daemon never ran with this state.path): said, and none made.
    const none = await cli(['list'], config);
    expect(none.code).toBe(69);
    expect(none.stderr).toContain(`no state store at ${join(dir, 'state', 'state.mdb')}`);
    expect(existsSync(join(dir, 'state'))).toBe(false);
    // The console's bounds: a TTL past ~8,000 years made an entry that `list` could not show.
    for (const ttl of ['99999999999999999999', '34560000001', '999', '1e9']) {
      const r = await cli(['add', 'trap', '192.0.2.1', '--ttl', ttl], config);
      expect(r.code, ttl).toBe(64);
      expect(r.stderr, ttl).toContain('must be milliseconds (a whole number) from 1000 to 400 days.');
    }
    const redis = join(dir, 'redis.json');
    writeFileSync(redis, JSON.stringify({ state: { backend: 'redis', redis: { url: 'redis://user:secret@127.0.0.1:1', connectTimeout: 100 } } }));
    const r = await cli(['list'], redis);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain('redis://***@127.0.0.1:1');
    expect(r.stderr).not.toContain('secret');
    // A CA bundle past the cap of a TLS file is refused, not read whole (a path to /dev/zero).
    const ca = join(dir, 'huge-ca.pem');
    writeFileSync(ca, Buffer.alloc(16 * 1024 * 1024 + 1, 0x41));
    writeFileSync(redis, JSON.stringify({ state: { backend: 'redis', redis: { url: 'rediss://127.0.0.1:1', connectTimeout: 100, tlsCa: ca } } }));
    const big = await cli(['list'], redis);
    expect(big.code).toBe(69);
    expect(big.stderr).toContain(`state.redis.tlsCa: ${ca} is larger than 16777216 bytes`);
  });
});

describe('state CLI pieces', () => {
  const cfg = loadConfig({ env: {}, overrides: {} }).config;
  const e = (key: string) => ({ key, value: { rcpt: 'trap@example.org' }, expiresAt: 0 });
  it('the subject of each kind of key', () => {
    expect(subjectOf('grey:192.0.2.0/24|a@b|c@d')).toBe('192.0.2.0/24');
    expect(subjectOf('pass:dnsbl:2001:db8::1')).toBe('2001:db8::1');
    expect(subjectOf('white:2001:db8::/64')).toBe('2001:db8::/64');
    expect(subjectOf('trap:192.0.2.1')).toBe('192.0.2.1');
  });
  it('filters: --ip matches the address and its networks, --net what lies inside, --kind, --grep', () => {
    expect(matches(e('white:192.0.2.0/24'), { ip: '192.0.2.77' })).toBe(true);
    expect(matches(e('white:192.0.2.0/24'), { ip: '192.0.3.1' })).toBe(false);
    expect(matches(e('trap:192.0.2.1'), { net: '192.0.0.0/16' })).toBe(true);
    expect(matches(e('white:192.0.0.0/16'), { net: '192.0.2.0/24' })).toBe(false);
    // A network wider than --net is not inside it, though its first address is.
    expect(matches(e('white:192.0.0.0/16'), { net: '192.0.0.0/24' })).toBe(false);
    expect(matches(e('white:192.0.0.0/24'), { net: '192.0.0.0/24' })).toBe(true);
    expect(matches(e('pass:greet:2001:db8::1'), { net: '2001:db8::/32', kind: 'pass' })).toBe(true);
    expect(matches(e('trap:192.0.2.1'), { grep: 'TRAP@' })).toBe(true);
    expect(matches(e('trap:192.0.2.1'), { kind: 'fail' })).toBe(false);
  });
  it.each([
    ['an address: its /24', 'allow', '192.0.2.9', ['white:192.0.2.0/24']],
    ['a /24 as is', 'allow', '192.0.2.0/24', ['white:192.0.2.0/24']],
    ['a /28: the /24 holding it', 'allow', '127.4.4.0/28', ['white:127.4.4.0/24']],
    ['a /22: its four /24s', 'allow', '198.51.100.0/22', ['white:198.51.100.0/24', 'white:198.51.101.0/24', 'white:198.51.102.0/24', 'white:198.51.103.0/24']],
    ['a /23 given by an inner address', 'allow', '127.5.1.7/23', ['white:127.5.0.0/24', 'white:127.5.1.0/24']],
    ['an IPv6 address: its /64', 'allow', '2001:db8:1:2:3::1', ['white:2001:db8:1:2::/64']],
    ['an IPv6 /62: its four /64s', 'allow', '2001:db8::/62', ['white:2001:db8::/64', 'white:2001:db8:0:1::/64', 'white:2001:db8:0:2::/64', 'white:2001:db8:0:3::/64']],
    ['deny: the address', 'deny', '192.0.2.9', ['fail:192.0.2.9']],
    ['trap: a mapped address as IPv4', 'trap', '::ffff:192.0.2.9', ['trap:192.0.2.9']],
  ] as const)('keys: %s', (_n, what, target, want) => {
    expect(keysFor(what, target, cfg)).toEqual(want);
  });
  it('entry keys are every kind but the fleet\'s leases', () => {
    expect(['grey:192.0.2.0/24|a@b|c@d', 'white:192.0.2.0/24', 'trap:192.0.2.1', 'pass:greet:192.0.2.1', 'fail:192.0.2.1', 'lease:192.0.2.1', 'other:x'].filter(isEntryKey))
      .toEqual(['grey:192.0.2.0/24|a@b|c@d', 'white:192.0.2.0/24', 'trap:192.0.2.1', 'pass:greet:192.0.2.1', 'fail:192.0.2.1']);
  });
  it.each([
    ['allow: greylist.whiteExpiry', 'allow', '192.0.2.9', cfg.greylist.whiteExpiry],
    ['deny: cache.failTtl', 'deny', '192.0.2.9', cfg.cache.failTtl],
    ['trap: greylist.trapExpiry', 'trap', '192.0.2.9', cfg.greylist.trapExpiry],
  ] as const)('add without --ttl, %s', async (_n, what, target, ms) => {
    const t = Date.now();
    const store = memoryStateStore(() => t);
    const r = await addEntry(store, what, target, undefined, cfg);
    expect(r.ttlMs).toBe(ms);
    expect((await store.get(r.keys[0]!))?.expiresAt).toBe(t + ms);
  });
  it('a manual deny is recorded as test "manual" (the client cache drops it), and only an allow takes a network', async () => {
    const store = memoryStateStore(() => Date.now());
    const r = await addEntry(store, 'deny', '192.0.2.9', 60_000, cfg);
    expect((await store.get(r.keys[0]!))?.value).toMatchObject({ test: 'manual' });
    expect([addProblem('allow', '192.0.2.0/24'), addProblem('deny', '192.0.2.9'), addProblem('trap', '192.0.2.9')]).toEqual([null, null, null]);
    expect(addProblem('deny', '192.0.2.0/24')).toMatch(/one address/);
    expect(addProblem('trap', '192.0.2.0/24')).toMatch(/one address/);
  });
  it('keys: a /12 is the most an allow covers (4,096 /24s); a /11 is refused', () => {
    const ks = keysFor('allow', '10.0.0.0/12', cfg);
    expect([ks.length, ks[0], ks[ks.length - 1]]).toEqual([MAX_ALLOW_NETWORKS, 'white:10.0.0.0/24', 'white:10.15.255.0/24']);
    expect(() => keysFor('allow', '10.0.0.0/11', cfg)).toThrow(EntryProblem);
    expect(() => keysFor('allow', '2001:db8::/48', cfg)).toThrow(/2\^16 networks of \/64 \(greylist.ipv6Prefix\)/);
  });
});
