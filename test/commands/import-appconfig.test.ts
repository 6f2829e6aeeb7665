// import-appconfig: both FakeSMTP configurations from seed 002 convert to fakemx JSON that
// loadConfig (what check-config runs) accepts, with the same meaning; value formats and
// everything unmappable are covered case by case.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importAppConfig, importAppConfigCommand } from '../../src/commands/import-appconfig.js';
import { loadConfig } from '../../src/config/load.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
const tmp = mkdtempSync(join(tmpdir(), 'fakemx-import-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** <appSettings> with the given <add> lines. */
const xml = (adds: string) => `<?xml version="1.0"?>\n<configuration><appSettings>${adds}</appSettings></configuration>`;
const add = (key: string, value: string) => `<add key="${key}" value="${value}"/>`;

/** Validate as check-config does: write the JSON to a file and load it. */
function check(config: Record<string, unknown>) {
  const file = join(tmp, `c-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  return loadConfig({ file, env: {} }).config;
}

describe('FakeSMTP fixtures (seed 002)', () => {
  it('default app.config: blanks left out, numbers and booleans mapped, empty list entries removed, loads', () => {
    const { config, warnings } = importAppConfig(fixture('fakesmtp-default.config'));
    expect(config).toEqual({
      listenPort: 25,
      receiveTimeout: 8000,
      maxSmtpErrors: 4,
      maxSmtpNoop: 7,
      maxSmtpVrfy: 10,
      maxSmtpRcpt: 100,
      maxMessages: 10,
      maxSessions: 16,
      storeData: true,
      maxDataSize: 2097152,
      verboseLogging: false,
      bannerDelay: 1000,
      errorDelay: 500,
      doTempFail: false,
      doEarlyTalk: true,
      rwlProviders: ['list.dnswl.org'],
      rblProviders: ['zen.spamhaus.org', 'bl.spamcop.net'],
    });
    expect(warnings).toEqual([]);
    const c = check(config);
    expect(c.maxSessions).toBe(16);
    expect(c.rblProviders).toEqual(['zen.spamhaus.org', 'bl.spamcop.net']);
    expect(c.listenAddress).toBe('127.0.0.1'); // FakeSMTP's loopback fallback
    expect(c.storePath).toMatch(/var\/corpus$/);
  });

  it('MX sandwich app.config: tempfail, no storage, Windows paths warned and left out, loads', () => {
    const { config, warnings } = importAppConfig(fixture('fakesmtp-sandwich.config'));
    expect(config).toMatchObject({
      hostName: 'mx9.example.com',
      listenAddress: '192.0.2.9',
      maxSessions: 32,
      storeData: false,
      bannerDelay: 1500,
      errorDelay: 750,
      doTempFail: true,
      doEarlyTalk: true,
      rblProviders: ['zen.spamhaus.org', 'bl.spamcop.net', 'b.barracudacentral.org', 'dnsbl.sorbs.net', 'psbl.surriel.com'],
    });
    expect(config).not.toHaveProperty('storePath');
    expect(config).not.toHaveProperty('logPath');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^StorePath: "X:\\FakeSMTP\\Data" is a Windows path/);
    expect(warnings[1]).toMatch(/^LogPath: "X:\\FakeSMTP\\Logs" is a Windows path/);
    const c = check(config);
    expect(c.doTempFail).toBe(true);
    expect(c.storeData).toBe(false);
    expect(c.hostName).toBe('mx9.example.com');
  });

  it('every one of the 23 keys maps to a schema key (non-blank values everywhere)', () => {
    const all = [
      add('HostName', 'mx.example.org'), add('ListenAddress', '::'), add('ListenPort', '2525'), add('ReceiveTimeOut', '9000'),
      add('MaxSmtpErrors', '1'), add('MaxSmtpNoop', '2'), add('MaxSmtpVrfy', '3'), add('MaxSmtpRcpt', '5'),
      add('MaxMessages', '6'), add('MaxSessions', '7'), add('StoreData', 'true'), add('StorePath', join(tmp, 'store')),
      add('MaxDataSize', '4096'), add('LogPath', join(tmp, 'logs')), add('VerboseLogging', 'TRUE'), add('BannerDelay', '0'),
      add('ErrorDelay', '0'), add('DoTempFail', 'false'), add('DoEarlyTalk', 'False'), add('RWLproviders', 'list.dnswl.org'),
      add('RBLproviders', ',zen.spamhaus.org,'), add('LocalDomains', join(tmp, 'domains')), add('LocalMailBoxes', join(tmp, 'boxes')),
    ].join('');
    writeFileSync(join(tmp, 'domains'), 'example.org\n');
    writeFileSync(join(tmp, 'boxes'), 'postmaster@example.org\n');
    const { config, warnings } = importAppConfig(xml(all));
    expect(Object.keys(config)).toHaveLength(23);
    expect(warnings.filter((w) => !w.startsWith('StorePath:'))).toEqual([]);
    const c = check(config);
    expect(c.listenPort).toBe(2525);
    expect(c.verboseLogging).toBe(true);
    expect(c.localMailboxes).toBe(join(tmp, 'boxes'));
  });
});

describe('value formats', () => {
  const cases: { name: string; adds: string; config: Record<string, unknown>; warn?: RegExp }[] = [
    { name: 'True/False any case, blanks around', adds: add('StoreData', ' FALSE ') + add('DoTempFail', 'tRuE'), config: { storeData: false, doTempFail: true } },
    { name: 'not a boolean', adds: add('StoreData', 'yes'), config: {}, warn: /^StoreData: "yes" is not True or False/ },
    { name: 'not a number', adds: add('MaxSessions', '1e3'), config: {}, warn: /^MaxSessions: "1e3" is not a whole number/ },
    { name: 'number out of range', adds: add('ReceiveTimeOut', '0'), config: {}, warn: /^ReceiveTimeOut: 0 is outside fakemx's range 100\.\.3600000/ },
    { name: 'port 0 (FakeSMTP: 25)', adds: add('ListenPort', '0'), config: {}, warn: /^ListenPort: 0 is outside/ },
    { name: 'signed number', adds: add('MaxMessages', '+12'), config: { maxMessages: 12 } },
    { name: 'blank = default', adds: add('MaxSessions', '  ') + add('RBLproviders', ''), config: {} },
    { name: 'only commas = empty list = default', adds: add('RWLproviders', ', ,,'), config: {} },
    { name: '"null" list disables', adds: add('RBLproviders', 'null'), config: {} },
    { name: 'duplicate list entries once', adds: add('RBLproviders', 'a.example, a.example ,b.example'), config: { rblProviders: ['a.example', 'b.example'] } },
    { name: 'bad list entry dropped', adds: add('RBLproviders', 'zen.spamhaus.org,not a zone'), config: { rblProviders: ['zen.spamhaus.org'] }, warn: /^RBLproviders: entry "not a zone" is not a DNS zone name/ },
    { name: 'bad listen address', adds: add('ListenAddress', 'localhost'), config: {}, warn: /^ListenAddress: "localhost" is not an IP address/ },
    { name: 'host name with a space', adds: add('HostName', 'my host'), config: {}, warn: /^HostName: "my host" is not a host name/ },
    { name: 'UNC list path', adds: add('LocalDomains', '\\\\srv\\share\\domains.txt'), config: {}, warn: /^LocalDomains: .* Windows path.*copy the file/ },
    { name: '%TEMP% path (FakeSMTP default when blank)', adds: add('LogPath', '%TEMP%\\FakeSMTP') + add('StorePath', '%TEMP%'), config: {}, warn: /^LogPath: "%TEMP%\\FakeSMTP" is a Windows path/ },
    { name: 'unknown key', adds: add('SmtpBanner', 'hi'), config: {}, warn: /^SmtpBanner: not a FakeSMTP setting/ },
    { name: 'key case differs', adds: add('maxsessions', '9'), config: { maxSessions: 9 }, warn: /^maxsessions: read as MaxSessions/ },
    { name: 'last <add> wins', adds: add('MaxSessions', '9') + add('MaxSessions', '11'), config: { maxSessions: 11 }, warn: /set more than once/ },
    { name: '<remove> deletes', adds: add('MaxSessions', '9') + '<remove key="MaxSessions"/>', config: {} },
    { name: '<clear/> forgets earlier', adds: add('MaxSessions', '9') + '<clear/>' + add('MaxMessages', '3'), config: { maxMessages: 3 } },
    { name: 'character references decoded', adds: add('HostName', 'mx&#46;example&#x2e;com'), config: { hostName: 'mx.example.com' } },
    { name: 'no double decoding', adds: add('RBLproviders', 'a.example,&amp;#46;'), config: { rblProviders: ['a.example'] }, warn: /entry "&#46;" is not a DNS zone name/ },
    // The loader's own zone rule decides: what it would refuse is dropped here, with a warning.
    { name: 'hostName the loader would refuse', adds: add('HostName', 'mx.exämple.com'), config: {}, warn: /^HostName: "mx\.exämple\.com" is not a host name/ },
    { name: 'zone with a leading hyphen', adds: add('RBLproviders', 'a.example,-bad.example.com'), config: { rblProviders: ['a.example'] }, warn: /entry "-bad\.example\.com" is not a DNS zone name/ },
    { name: 'zone with a 64-character label', adds: add('RBLproviders', `a.example,${'a'.repeat(64)}.example.com`), config: { rblProviders: ['a.example'] }, warn: /is not a DNS zone name/ },
    { name: '<add> without key', adds: '<add value="1"/>', config: {}, warn: /without a key/ },
  ];
  it.each(cases)('$name', ({ adds, config, warn }) => {
    const r = importAppConfig(xml(adds));
    expect(r.config).toEqual(config);
    if (warn) expect(r.warnings.some((w) => warn.test(w)), r.warnings.join('\n')).toBe(true);
    else expect(r.warnings).toEqual([]);
  });

  it('other sections: <startup> is quiet, anything else is a warning', () => {
    const r = importAppConfig('<configuration><startup><supportedRuntime version="v4.0"/></startup><connectionStrings/><appSettings file="more.config"/></configuration>');
    expect(r.warnings).toEqual([
      '<connectionStrings> section ignored: fakemx reads only <appSettings>',
      expect.stringMatching(/^<appSettings file="more.config">: the external file is not read/),
    ]);
  });

  it.each([
    { name: 'malformed XML', text: '<configuration><appSettings><add key="A" value="1"></appSettings>', error: /not well-formed XML at line 1/ },
    { name: 'no appSettings', text: '<configuration><startup/></configuration>', error: /no <appSettings>/ },
  ])('rejects $name', ({ text, error }) => {
    expect(() => importAppConfig(text)).toThrow(error);
  });
});

describe('importAppConfigCommand', () => {
  const run = async (file: string, outFile?: string, force = false) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await importAppConfigCommand(file, outFile, (s) => out.push(s), (s) => err.push(s), force);
    return { code, out: out.join(''), err: err.join('\n') };
  };
  const fixturePath = (n: string) => new URL(`../fixtures/${n}`, import.meta.url).pathname;

  it('prints JSON to stdout and warnings to stderr', async () => {
    const r = await run(fixturePath('fakesmtp-sandwich.config'));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ doTempFail: true, maxSessions: 32 });
    // Shown escaped, as every quoted value of the file is: "\\" for each backslash.
    expect(r.err).toMatch(/warning: StorePath: "X:\\\\FakeSMTP\\\\Data" is a Windows path/);
  });

  it('--out writes a file that loads', async () => {
    const target = join(tmp, 'out.json');
    const r = await run(fixturePath('fakesmtp-default.config'), target);
    expect(r.code).toBe(0);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/wrote .*out\.json/);
    expect(loadConfig({ file: target, env: {} }).config.maxSessions).toBe(16);
    // As init: a file that exists (a config in use) is kept unless --force.
    writeFileSync(target, '{"maxSessions": 7}\n');
    const again = await run(fixturePath('fakesmtp-default.config'), target);
    expect(again.code).toBe(73);
    expect(again.err).toMatch(/out\.json exists; nothing written \(--force overwrites\)$/);
    expect(readFileSync(target, 'utf8')).toBe('{"maxSessions": 7}\n');
    expect((await run(fixturePath('fakesmtp-default.config'), target, true)).code).toBe(0);
    expect(loadConfig({ file: target, env: {} }).config.maxSessions).toBe(16);
  });

  it.each([
    { name: 'missing file', setup: () => join(tmp, 'nope.config'), code: 66, err: /cannot read \(ENOENT\)/ },
    { name: 'a directory', setup: () => tmp, code: 66, err: /not a regular file/ },
    { name: 'bad XML', setup: () => (writeFileSync(join(tmp, 'bad.config'), '<configuration>'), join(tmp, 'bad.config')), code: 65, err: /not well-formed/ },
    // XML 1.0 forbids them even as references, but the parser passes them on: ESC, BEL, a newline.
    { name: 'control characters in a key shown escaped', setup: () => (writeFileSync(join(tmp, 'esc.config'), xml(add('X&#x1b;]52;c;SGk=&#x7;&#xa;Y', '1'))), join(tmp, 'esc.config')), code: 0, err: /^fakemx: import-appconfig: warning: X\\x1b\]52;c;SGk=\\x07\\nY: not a FakeSMTP setting fakemx knows; ignored$/ },
    { name: 'BOM accepted', setup: () => (writeFileSync(join(tmp, 'bom.config'), '\ufeff' + xml(add('MaxSessions', '5'))), join(tmp, 'bom.config')), code: 0, err: /^$/ },
  ])('$name -> exit $code', async ({ setup, code, err }) => {
    const r = await run(setup());
    expect(r.code).toBe(code);
    expect(r.err).toMatch(err);
  });

  it('unwritable --out -> exit 73', async () => {
    const r = await run(fixturePath('fakesmtp-default.config'), join(tmp, 'no-such-dir', 'x.json'));
    expect(r.code).toBe(73);
  });
});
