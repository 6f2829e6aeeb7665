// The `fakemx` command as a user runs it (the built dist/cli.js): --version/--help,
// check-config (exit 0 / 78 with one line naming key, file, reason), run with signals:
// SIGHUP reloads (or keeps running on a bad file), SIGTERM drains with 421 and exits 0;
// every usage error of every subcommand exits 64 (never 1, which dnsbl means as "listed").
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient, greeted } from './helpers/client.js';
import { CLI, startListening, type Daemon } from './helpers/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'fakemx-cli-'));
function run(args: string[], env: NodeJS.ProcessEnv = {}, entry = [CLI]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...entry, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

describe('fakemx CLI', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('--help lists the commands', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['run', 'check-config', 'dnsbl', 'import-appconfig', 'report', 'config-doc']) expect(r.stdout).toContain(c);
  });

  it('check-config prints the effective config and exits 0', async () => {
    const r = await run(['check-config', '--config', 'config/fakemx.json']);
    expect(r.code).toBe(0);
    const cfg = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(cfg.listenPort).toBe(2525);
    expect(cfg.maxSmtpErrors).toBe(4);
  });

  it.each([
    ['unknown key', { listenPortt: 1 }, /bad\.json: listenPortt: unknown key/],
    ['wrong type', { maxSessions: 'x' }, /bad\.json: maxSessions: must be a positive integer/],
    // A string is not a boolean in a file: "no" used to be read as true.
    ['string for a boolean', { doTempFail: 'no' }, /bad\.json: doTempFail: must be a boolean \(true or false\), got a string "no"/],
    // A duration string needs a unit in a file ("1500 ms"); bare digits are as ambiguous as for any number.
    ['numeric string for a duration', { bannerDelay: '1500' }, /bad\.json: bannerDelay: must be a duration, a positive integer \(a JSON number\) of milliseconds or a string with a unit such as "25 minutes", got a string "1500" \(no unit\)/],
    ['duration with an unknown unit', { greylist: { passtime: '5 fortnights' } }, /bad\.json: greylist\.passtime: must be a duration, .*unknown unit "fortnights".*value was "5 fortnights"/],
    ['negative duration in a profile', { listeners: [{ port: 2525, profile: { cache: { failTtl: '-3 minutes' } } }] }, /bad\.json: listeners\[0\]\.profile\.cache\.failTtl: must be a duration, .*negative/],
    ['string in a listener profile', { listeners: [{ port: 2525, profile: { storeData: 'no' } }] }, /bad\.json: listeners\[0\]\.profile\.storeData: must be a boolean/],
    ['out of range', { bannerDelay: 999999999 }, /bad\.json: bannerDelay: must be between 0 and 300000 ms \(0 ms to 5 minutes\), got 999999999 ms/],
    ['missing list file', { localDomains: '/nonexistent/domains' }, /bad\.json: localDomains: list file \/nonexistent\/domains does not exist/],
  ])('check-config: %s -> exit 78 and one line', async (_n, body, msg) => {
    const f = join(dir, 'bad.json');
    writeFileSync(f, JSON.stringify(body));
    const r = await run(['check-config', '--config', f]);
    expect(r.code).toBe(78);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
  });

  it('run with a bad config exits 78', async () => {
    const f = join(dir, 'bad-run.json');
    writeFileSync(f, JSON.stringify({ maxSmtpRcpt: 0 }));
    const r = await run(['run', '--config', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/maxSmtpRcpt: must be between 1 and/);
  });

  it('an env override with a bad value exits 78 naming the variable', async () => {
    const r = await run(['check-config', '--config', 'config/fakemx.json'], { FAKEMX_BANNER_DELAY: 'soon' });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/environment FAKEMX_BANNER_DELAY: bannerDelay: must be a duration, .*value was "soon"/);
  });

  it('the package bin (which sizes the thread pool first) is the same CLI, exit codes included', async () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; bin: { fakemx: string } };
    const viaBin = (args: string[]) => run(args, {}, [join(process.cwd(), pkg.bin.fakemx)]);
    expect((await viaBin(['--version'])).stdout.trim()).toBe(pkg.version);
    expect((await viaBin(['dnsbl'])).code).toBe(64);
    const f = join(dir, 'bad-bin.json');
    writeFileSync(f, JSON.stringify({ doTempFail: 'no' }));
    expect((await viaBin(['check-config', '--config', f])).code).toBe(78);
  });

  it('help and version are not errors', async () => {
    for (const args of [['help'], ['help', 'run'], ['run', '--help'], ['dnsbl', '--help'], ['-V']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).not.toBe('');
    }
  });

  it('config-doc prints the reference table', async () => {
    const r = await run(['config-doc']);
    expect(r.stdout).toMatch(/^\| key \| default \| env override \| meaning \|/);
    expect(r.stdout).toContain('`FAKEMX_MAX_SMTP_RCPT`');
  });
});

describe('usage errors exit 64 (EX_USAGE), with the reason on stderr and nothing on stdout', () => {
  const SUBCOMMANDS = ['run', 'check-config', 'dnsbl', 'import-appconfig', 'report', 'config-doc', 'state', 'init'];
  const cases: [name: string, args: string[], reason: RegExp][] = [
    ['no command', [], /Usage: fakemx/],
    ['unknown command', ['nosuch'], /unknown command 'nosuch'/],
    ['unknown program option', ['--bogus'], /unknown option '--bogus'/],
    ['help for an unknown command', ['help', 'nosuch'], /Usage: fakemx/],
    // The same mistake in every subcommand (the list is checked against --help below).
    ...SUBCOMMANDS.map((c): [string, string[], RegExp] => [`${c}: unknown option`, [c, '--no-such-option', ...(c === 'dnsbl' ? ['192.0.2.1'] : c === 'import-appconfig' ? ['x.config'] : [])], /unknown option '--no-such-option'/]),
    ['run: extra argument', ['run', 'extra'], /too many arguments for 'run'/],
    ['check-config: --config without a file', ['check-config', '--config'], /argument missing/],
    ['dnsbl: no address', ['dnsbl'], /missing required argument 'ip'/],
    ['dnsbl: not an address', ['dnsbl', 'nope', '--rbl', 'bl.test'], /"nope" is not an IPv4 or IPv6 address/],
    ['dnsbl: two addresses', ['dnsbl', '192.0.2.1', '192.0.2.2', '--rbl', 'bl.test'], /too many arguments/],
    ['dnsbl: bad --rbl entry', ['dnsbl', '192.0.2.1', '--rbl', 'bl.test=127.0.0'], /--rbl .* is invalid.*four octets/],
    ['dnsbl: bad --rwl entry', ['dnsbl', '192.0.2.1', '--rwl', 'wl.test*x'], /--rwl .* is invalid.*bad weight/],
    ['dnsbl: no lists to ask', ['dnsbl', '192.0.2.1', '--config', 'config/fakemx.json'], /no DNS lists to ask/],
    ['import-appconfig: no file', ['import-appconfig'], /missing required argument 'app.config'/],
    ['report: bad --top', ['report', '--store', '.', '--top', 'x'], /--top must be/],
    ['report: bad --since', ['report', '--store', '.', '--since', 'yesterday'], /--since "yesterday" is not a date/],
    ['report: extra argument', ['report', 'extra'], /too many arguments for 'report'/],
    ['config-doc: extra argument', ['config-doc', 'extra'], /too many arguments for 'config-doc'/],
    ['init: unknown profile', ['init', '--profile', 'relay'], /argument 'relay' is invalid/],
    ['check-config: unknown key', ['check-config', '--get', 'nope'], /unknown key "nope"/],
    ['state: no such action', ['state', 'add', 'nope', '192.0.2.1'], /must be allow, deny or trap/],
    ['state: not an address', ['state', 'list', '--ip', 'nope'], /"nope" is not an IP address or CIDR network/],
    ['state: a network to trap', ['state', 'add', 'trap', '192.0.2.0/24'], /trap takes one address, not a network/],
  ];
  it.each(cases)('%s', async (_n, args, reason) => {
    const r = await run(args);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(reason);
    expect(r.stdout).toBe('');
  });

  it('the table covers every subcommand --help lists', async () => {
    const help = (await run(['--help'])).stdout;
    const listed = [...help.split('Commands:')[1]!.matchAll(/^ {2}([a-z-]+)/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(listed.sort()).toEqual([...SUBCOMMANDS].sort());
  });
});

describe('fakemx run: signals', () => {
  it('SIGTERM: stop accepting, 421 4.3.2 at the next command, exit 0', async () => {
    d = await startListening({ bannerDelay: 0, shutdownGrace: 3000 });
    const c = await greeted(d.port);
    d.child.kill('SIGTERM');
    await d.waitFor('SHUTDOWN');
    const r = await c.cmd('NOOP');
    expect(r.raw).toMatch(/^421 4\.3\.2 .* shutting down\r\n$/);
    expect(await c.waitClose()).toBe(true);
    expect(await d.exited()).toBe(0);
    await d.waitFor('STOPPED', 100).catch(() => undefined);
  });

  it('SIGTERM: sessions that do not finish are closed after shutdownGrace', async () => {
    d = await startListening({ bannerDelay: 0, shutdownGrace: 300 });
    const c = await greeted(d.port);
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    expect(await d.exited()).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(await c.waitClose()).toBe(true);
  });

  it('SIGTERM mid-DATA: the message is either stored and acknowledged or neither', async () => {
    d = await startListening({ bannerDelay: 0, shutdownGrace: 2000 });
    const c = await greeted(d.port);
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    c.send('Subject: during shutdown\r\n\r\nbody\r\n');
    d.child.kill('SIGTERM');
    await d.waitFor('SHUTDOWN');
    c.send('.\r\n');
    const r = await c.reply();
    expect(r.code).toBe(250);
    const id = /queued as (\S+)/.exec(r.text)![1]!;
    expect(await d.exited()).toBe(0);
    const stored = d.lines.find((l) => l.tag === 'STORED');
    expect(stored?.id).toBe(id);
  });

  it('SIGHUP: a valid new config applies to new sessions', async () => {
    d = await startListening({ bannerDelay: 0, hostName: 'before.test' });
    const a = await RawClient.connect(d.port);
    expect((await a.reply()).text).toMatch(/^before\.test /);
    a.close();
    const cfg = JSON.parse(readFileSync(d.configPath, 'utf8')) as Record<string, unknown>;
    d.writeConfig({ ...cfg, hostName: 'after.test', listenPort: d.port });
    d.child.kill('SIGHUP');
    await d.waitFor('CONFIG_RELOADED');
    const b = await RawClient.connect(d.port);
    expect((await b.reply()).text).toMatch(/^after\.test /);
    b.close();
  });

  it('SIGHUP: an invalid config is logged with key and reason, and nothing changes', async () => {
    d = await startListening({ bannerDelay: 0, hostName: 'stable.test' });
    d.writeConfig({ hostName: 'x', bannerDelay: -1 });
    d.child.kill('SIGHUP');
    const l = await d.waitFor('CONFIG_RELOAD_FAILED');
    expect(l).toMatchObject({ key: 'bannerDelay' });
    expect(String(l.reason)).toMatch(/positive integer/);
    const c = await RawClient.connect(d.port);
    expect((await c.reply()).text).toMatch(/^stable\.test /);
    c.close();
  });

  it('one OPEN and one CLOSE line per session, with client [ip]:port', async () => {
    d = await startListening({ bannerDelay: 0 });
    const c = await greeted(d.port, 'logged.test');
    await c.cmd('QUIT');
    const close = await d.waitFor('CLOSE');
    expect(close).toMatchObject({ helo: 'logged.test', outcome: 'quit' });
    expect(String(close.client)).toMatch(/^\[127\.0\.0\.1\]:\d+$/);
    expect(d.lines.filter((l) => l.tag === 'OPEN')).toHaveLength(1);
  });
});

describe('the shipped profiles, started as a user would (env overrides port and store)', () => {
  it.each([
    ['config/fakemx.json', 250, true],
    ['config/fake-mx.json', 421, false],
    ['config/corpus.json', 421, true],
    ['config/sink.json', 250, true],
  ] as const)('%s: DATA ends with %i, stored: %s', async (file, code, kept) => {
    const store = mkdtempSync(join(tmpdir(), 'fakemx-profile-'));
    d = await startListening({}, { configFile: file, env: { FAKEMX_LISTEN_PORT: '0', FAKEMX_STORE_PATH: store, FAKEMX_BANNER_DELAY: '50', FAKEMX_HOST_NAME: 'profile.test' } });
    const c = await RawClient.connect(d.port);
    expect((await c.reply(2000)).text).toMatch(/^profile\.test ESMTP/);
    await c.cmd('EHLO good.test');
    await c.cmd('MAIL FROM:<a@example.org>');
    await c.cmd('RCPT TO:<b@example.com>');
    const data = await c.cmd('DATA', 3000);
    const final = data.code === 354 ? await c.cmd('Subject: p\r\n\r\nbody\r\n.', 3000) : data;
    expect(final.code).toBe(code);
    if (code === 421) expect(final.enhanced).toBe('4.3.2');
    const stored = existsSync(store) ? readdirSync(store, { recursive: true }).filter((f) => String(f).endsWith('.eml')) : [];
    expect(stored.length > 0).toBe(kept);
    c.close();
  });
});
