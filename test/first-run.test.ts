// The first ten minutes of a new user (issue 16): `fakemx init` for each profile (a commented
// config that loads, list files, nothing overwritten), `check-config --changed` and `--get`,
// comments in config files, one "fakemx: error: " prefix for CLI errors, the READY line of
// `fakemx run`, the man page and the LICENSE. The built CLI (dist/cli.js) is what runs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { changedText, configValue, valueText } from '../src/config/changed.js';
import { stripJsonComments } from '../src/config/jsonc.js';
import { loadConfig } from '../src/config/load.js';
import { startupLine, swaksCommand } from '../src/startup.js';
import { plural } from '../src/util/plural.js';
import { greeted } from './helpers/client.js';
import { CLI, runCli, startListening, type Daemon } from './helpers/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'fakemx-first-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

let d: Daemon | undefined;
afterEach(() => {
  d?.kill();
  d = undefined;
});

describe('fakemx init', () => {
  it.concurrent.each(['fake-mx', 'corpus', 'sink'])('--profile %s writes a commented config that loads, and the list files', async (profile) => {
    const to = join(dir, profile);
    const r = await run(['init', '--profile', profile, '--dir', to]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const text = readFileSync(join(to, 'fakemx.json'), 'utf8');
    expect(text).toMatch(/^\/\/ fakemx config, profile /);
    expect(text).toContain('  // bannerDelay: Milliseconds between accept and the 220 greeting.');
    for (const f of ['local-domains.txt', 'local-mailboxes.txt', 'access.txt']) expect(existsSync(join(to, f))).toBe(true);
    const c = loadConfig({ file: join(to, 'fakemx.json'), env: {} }).config;
    expect(c.storeData).toBe(profile !== 'fake-mx');
    expect(c.doTempFail).toBe(profile !== 'sink');
    expect(c.http.console).toBe(true);
    // Uncommenting a list line keeps the JSON valid.
    const withList = text.replace(`// "localDomains": "${join(to, 'local-domains.txt')}",`, `"localDomains": "${join(to, 'local-domains.txt')}",`);
    writeFileSync(join(to, 'uncommented.json'), withList);
    expect(loadConfig({ file: join(to, 'uncommented.json'), env: {} }).config.localDomains).toBe(join(to, 'local-domains.txt'));
  });

  it('overwrites nothing without --force (exit 73); an unknown profile is a usage error (64)', async () => {
    const to = join(dir, 'again');
    const [first, relay] = await Promise.all([run(['init', '--dir', to]), run(['init', '--profile', 'relay'])]);
    expect(first.code).toBe(0);
    expect(relay.code).toBe(64);
    writeFileSync(join(to, 'access.txt'), 'permit 192.0.2.0/24\n');
    const r = await run(['init', '--dir', to]);
    expect(r.code).toBe(73);
    expect(r.stderr).toMatch(/^fakemx: error: .*exist; nothing written \(--force overwrites\)\n$/);
    expect(readFileSync(join(to, 'access.txt'), 'utf8')).toBe('permit 192.0.2.0/24\n');
    expect((await run(['init', '--dir', to, '--force'])).code).toBe(0);
  });
});

describe('check-config --changed / --get', () => {
  const file = join(dir, 'cc.json');
  writeFileSync(file, '// a comment\n{\n  "listenPort": 2526, /* inline */ "bannerDelay": 1000,\n  "http": { "token": "sekrit", "port": 9000 },\n  "webhook": { "url": "http://hooks.example/in" }\n}\n');

  it('prints only what differs from the defaults, secrets masked', async () => {
    const r = await run(['check-config', '-c', file, '--changed']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('listenPort = 2526\nhttp.port = 9000\nhttp.token = "[redacted]"\nwebhook.url = "http://hooks.example/in"\n');
    const c = loadConfig({ file, env: {} }).config;
    expect(changedText(loadConfig({ env: {} }).config)).toBe('');
    expect(configValue(c, 'dns.timeout')).toBe(2000);
    expect(configValue(c, 'nope')).toBeUndefined();
    expect(valueText('x y')).toBe('x y');
  });

  it('--get KEY prints one value (a string bare, a group as JSON); an unknown key is a usage error', async () => {
    const get = (key: string) => run(['check-config', '-c', file, '--get', key]);
    const [url, port, http, bad] = await Promise.all([get('webhook.url'), get('listenPort'), get('http'), get('listenPortt')]);
    expect(url.stdout).toBe('http://hooks.example/in\n');
    expect(port.stdout).toBe('2526\n');
    expect(JSON.parse(http.stdout)).toMatchObject({ port: 9000, token: '[redacted]' });
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/^fakemx: error: unknown key "listenPortt"/);
  });

  it('comments are blanked, strings kept, positions of a parse error stay right', () => {
    expect(stripJsonComments('{"a": "http://x" // c\n}')).toBe('{"a": "http://x"     \n}');
    expect(stripJsonComments('/* a\nb */{"k": "\\" /* no */"}')).toBe('    \n    {"k": "\\" /* no */"}');
    const bad = '// one\n/* two */\n{,}';
    expect(stripJsonComments(bad)).toHaveLength(bad.length);
    expect(() => JSON.parse(stripJsonComments(bad)) as unknown).toThrow(/position 18/);
  });
});

describe('errors and the start-up line', () => {
  it('every kind of CLI error starts with "fakemx: error: "', async () => {
    const cases: [string[], number][] = [
      [['check-config', '-c', join(dir, 'missing.json')], 78],
      [['bogus'], 64],
      [['report', '--store', join(dir, 'no-store')], 66],
      [['import-appconfig', join(dir, 'missing.config')], 66],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    cases.forEach(([args, code], i) => {
      expect(results[i]!.code, args.join(' ')).toBe(code);
      expect(results[i]!.stderr, args.join(' ')).toMatch(/^fakemx: error: /);
    });
  });

  it('a reader that goes away (fakemx init | head -1) ends the command quietly', async () => {
    const child = spawn(process.execPath, [CLI, 'init', '--dir', join(dir, 'epipe')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (x: string) => (stderr += x));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('fakemx run logs one READY line: where it listens, how to try it, corpus, logs, console', async () => {
    d = await startListening({ http: { port: 0 } });
    const l = await d.waitFor('READY');
    expect(l.msg).toBe(`fakemx ready: SMTP on 127.0.0.1:${d.port}; try: swaks --server 127.0.0.1:${d.port} --to user@example.com; corpus in ${join(d.dir, 'corpus')}; logs to stdout; console off (http.port, http.console)`);
  });

  it('a listener on port 0 is named by the address it got: in LISTENING, and in the stored record', async () => {
    d = await startListening({ bannerDelay: 0 });
    expect((await d.waitFor('LISTENING')).name).toBe(`127.0.0.1:${d.port}`);
    const c = await greeted(d.port);
    for (const line of ['MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.com>', 'DATA']) await c.cmd(line);
    expect((await c.cmd('Subject: x\r\n\r\nhi\r\n.')).code).toBe(250);
    const stored = await d.waitFor('STORED');
    const meta = JSON.parse(readFileSync(String(stored.file).replace(/\.eml$/, '.json'), 'utf8')) as { listener: string };
    expect(meta.listener).toBe(`127.0.0.1:${d.port}`);
    expect((await d.waitFor('OPEN')).listener).toBe(`127.0.0.1:${d.port}`);
    // Plurals: one message is "1 message".
    const r = await run(['report', '--store', join(d.dir, 'corpus')]);
    expect(r.stdout).toMatch(/^1 message, /m);
    expect(r.stdout).toContain('TLS: 0 messages');
  });

  it('a SIGHUP that moves the listener logs where it now listens', async () => {
    d = await startListening({ bannerDelay: 0 });
    const srv = createServer();
    const next = await new Promise<number>((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as AddressInfo).port)));
    await new Promise((r) => srv.close(r));
    d.writeConfig({ listenAddress: '127.0.0.1', listenPort: next, bannerDelay: 0 });
    d.child.kill('SIGHUP');
    const moved = await d.waitFor('LISTENING', 5000, (l) => l.port === next);
    expect(moved.msg).toBe(`listening on 127.0.0.1:${next} (none)`);
    await d.waitFor('CONFIG_RELOADED');
  });

  it('the corpus profile logs STORED before TEMPFAIL, and CLOSE counts the stored message', async () => {
    d = await startListening({ bannerDelay: 0, storeData: true, doTempFail: true, earlyTalkAction: 'ignore' });
    const c = await greeted(d.port);
    for (const line of ['MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.com>', 'DATA']) await c.cmd(line);
    expect((await c.cmd('Subject: x\r\n\r\nhi\r\n.')).code).toBe(421);
    const close = await d.waitFor('CLOSE');
    const tags = d.lines.map((l) => l.tag);
    expect(tags.indexOf('STORED')).toBeGreaterThan(-1);
    expect(tags.indexOf('STORED')).toBeLessThan(tags.indexOf('TEMPFAIL'));
    expect(close).toMatchObject({ stored: 1, verdicts: { STORED: 1, TEMPFAIL: 1 } });
  });

  it('plural', () => {
    expect([plural(0, 'message'), plural(1, 'message'), plural(2, 'entry', 'entries')]).toEqual(['0 messages', '1 message', '2 entries']);
  });

  it('startupLine: wildcard addresses, TLS, no store, the console', () => {
    const c = loadConfig({ overrides: { storeData: false, logPath: '/var/log/fakemx', http: { address: '0.0.0.0', port: 9325, console: true, token: 't' } }, env: {} });
    expect(startupLine(c, [{ name: 'a', address: '::', port: 25, tls: 'starttls' }])).toBe(
      'fakemx ready: SMTP on [::]:25 (starttls); try: swaks --server ::1 --port 25 --tls --to user@example.com; messages are not stored (storeData false); logs to stdout and /var/log/fakemx; console at http://127.0.0.1:9325/console/',
    );
    expect(swaksCommand({ name: 'b', address: '0.0.0.0', port: 465, tls: 'implicit' })).toBe('swaks --server 127.0.0.1:465 --tls-on-connect --to user@example.com');
  });

  it('startupLine: the suggested recipient is one the listener accepts (localMailboxes, else localDomains)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fakemx-ready-'));
    writeFileSync(join(dir, 'domains'), '# ours\nmail.example.net\nother.example\n');
    writeFileSync(join(dir, 'boxes'), 'postmaster@box.example\n');
    // A name the shell would read as two words or a redirection is not suggested.
    writeFileSync(join(dir, 'odd'), 'a|b@odd.example\n');
    const at = [{ name: '127.0.0.1:2525', address: '127.0.0.1', port: 2525, tls: 'none' as const }];
    const to = (o: Record<string, unknown>) => /--to ([^;\s]+)/.exec(startupLine(loadConfig({ overrides: { listenPort: 2525, ...o }, env: {} }), at))![1];
    expect(to({ localDomains: join(dir, 'domains') })).toBe('user@mail.example.net');
    expect(to({ localDomains: join(dir, 'domains'), localMailboxes: join(dir, 'boxes') })).toBe('postmaster@box.example');
    expect(to({ localMailboxes: join(dir, 'odd') })).toBe('user@example.com');
    expect(to({})).toBe('user@example.com');
    rmSync(dir, { recursive: true });
  });
});

describe('package', () => {
  it('the man page is built from the help texts and the config reference; LICENSE matches package.json', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { license: string; man: string[] | string; files: string[] };
    expect(pkg.man).toEqual(['./dist/fakemx.1']);
    const man = readFileSync('dist/fakemx.1', 'utf8');
    expect(man).toMatch(/^\.TH FAKEMX 1 /);
    for (const s of ['.SS "fakemx run"', '.SS "fakemx init"', '.SS "fakemx check\\-config"', '.B http.console', 'FAKEMX_HTTP_TOKEN']) expect(man).toContain(s);
    expect(pkg.license).toBe('MIT');
    expect(readFileSync('LICENSE', 'utf8')).toMatch(/^MIT License\n/);
  });

  it("the man page's EXIT STATUS gives each command the exit codes of the README's table", () => {
    const readme = readFileSync('README.md', 'utf8');
    const rows = [...readme.matchAll(/^\| `([a-z-]+)` \| (.+) \|$/gm)].filter((m) => /\b\d\d?\b/.test(m[2]!));
    expect(rows.map((m) => m[1])).toEqual(['run', 'check-config', 'init', 'dnsbl', 'import-appconfig', 'report', 'state']);
    const man = readFileSync('dist/fakemx.1', 'utf8');
    const exit = man.slice(man.indexOf('.SH EXIT STATUS'), man.indexOf('.SH SIGNALS'));
    for (const [, cmd, codes] of rows) {
      const at = exit.indexOf(`.B ${cmd!.replace(/-/g, '\\-')}\n`);
      expect(at, `EXIT STATUS has an entry for ${cmd}`).toBeGreaterThan(0);
      const text = exit.slice(at).split('\n')[1]!;
      for (const code of codes!.match(/\b\d+\b/g)!) expect(text, `${cmd}: exit ${code}`).toMatch(new RegExp(`\\b${code}\\b`));
    }
  });

  // No Docker engine here: the image's build stage is checked against what `npm run build` runs,
  // and its writable paths against the volume and the non-root user.
  it('the Dockerfile copies everything `npm run build` reads, and keeps the state store on the volume', () => {
    const docker = readFileSync('Dockerfile', 'utf8');
    const build = docker.slice(docker.indexOf(' AS build'), docker.indexOf('# ---- runtime'));
    const copied = [...build.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { build: string } };
    const needs = ['tsconfig.json', 'src', ...[...pkg.scripts.build.matchAll(/node (scripts)\//g)].map((m) => m[1]!)];
    for (const n of needs) expect(copied, `build stage copies ${n}`).toContain(n);
    expect(docker).toMatch(/^ENV FAKEMX_STATE_PATH=\/var\/lib\/fakemx\/state$/m);
    expect(docker).toMatch(/mkdir -p [^\n]*\/var\/lib\/fakemx\/state/);
    expect(docker).toMatch(/^VOLUME \/var\/lib\/fakemx$/m);
  });

  it('the daemon runs with the same V8 heap flags wherever it is shipped (systemd, Docker, npm start; the bench reads the unit)', () => {
    const unit = /^Environment=NODE_OPTIONS=(.+)$/m.exec(readFileSync('systemd/fakemx.service', 'utf8'))?.[1];
    expect(unit).toMatch(/^--max-semi-space-size=\d+$/);
    expect(readFileSync('systemd/fakemx-activated.service', 'utf8')).toContain(`Environment=NODE_OPTIONS=${unit}\n`);
    expect(readFileSync('Dockerfile', 'utf8')).toContain(`ENV NODE_OPTIONS=${unit}\n`);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } };
    expect(pkg.scripts.start).toContain(`node ${unit} dist/fakemx.cjs run`);
  });
});
