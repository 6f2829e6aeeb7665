// The `fakemx` command as a user runs it (the built dist/cli.js): --version/--help,
// check-config (exit 0 / 78 with one line naming key, file, reason), the package bin, and the
// shipped profiles end to end. Usage errors: cli-usage.test.ts; signals: cli-signals.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RawClient } from './helpers/client.js';
import { runCli, startListening, type Daemon } from './helpers/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'fakemx-cli-'));
const run = runCli;

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

// Each test runs its own child processes and files: concurrent (vitest's maxConcurrency, 5),
// so the spawns overlap instead of queueing one after another.
describe.concurrent('fakemx CLI', () => {
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
    // The file's text in the message (here an OSC 52 clipboard write and a newline) is escaped.
    ['control characters in a value', { hostName: 'mx\x1b]52;c;SGk=\x07\nx' }, /bad\.json: hostName: "mx\\x1b\]52;c;SGk=\\x07\\nx" is not a host name/],
    ['control characters in a key', { 'a\x1b[31m': 1 }, /bad\.json: a\\x1b\[31m: unknown key$/m],
  ])('check-config: %s -> exit 78 and one line', async (_n, body, msg) => {
    const f = join(mkdtempSync(join(dir, 'case-')), 'bad.json');
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
    writeFileSync(f, JSON.stringify({ hostName: 'mx\x1b]0;title\x07\nx' }));
    const esc = await run(['run', '--config', f]);
    expect(esc.code).toBe(78);
    expect(esc.stderr).toBe(`fakemx: error: config: ${f}: hostName: "mx\\x1b]0;title\\x07\\nx" is not a host name (label "mx\\x1b]0;title\\x07\\nx": letters, digits and inner hyphens, 1 to 63 octets)\n`);
  });

  it('a config path that never ends (/dev/zero) is refused after 1 MiB, exit 78', async () => {
    const r = await run(['check-config', '--config', '/dev/zero']);
    expect(r.code).toBe(78);
    expect(r.stderr).toBe('fakemx: error: config: /dev/zero: (file): larger than 1048576 bytes; not a config file\n');
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
