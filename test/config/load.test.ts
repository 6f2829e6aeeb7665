// Config loading: FakeSMTP's keys and defaults, env overrides, and strict validation that
// names the key, the source and the reason for every kind of mistake, JSON values of the
// wrong type included (only FAKEMX_* strings are parsed); exit 78 is tested through the CLI
// in test/cli.test.ts.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError, hostNameProblem, loadConfig } from '../../src/config/load.js';
import { envName, leaves } from '../../src/config/schema.js';

type Cfg = ReturnType<typeof loadConfig>['config'];

const dir = mkdtempSync(join(tmpdir(), 'fakemx-cfg-'));
function file(name: string, body: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
  return p;
}
const domains = file('domains.txt', '# ours\nExample.COM\n\nexample.net # trailing comment\n');
const mailboxes = file('mailboxes.txt', 'Alice@Example.com\n');
const access = file('access.txt', 'permit 127.0.0.1/32\nreject ::1\n# end\n');

describe('FakeSMTP defaults', () => {
  const { config } = loadConfig({ env: {} });
  it.each([
    ['listenPort', 25], ['receiveTimeout', 8000], ['maxSmtpErrors', 4], ['maxSmtpNoop', 7], ['maxSmtpVrfy', 10],
    ['maxSmtpRcpt', 100], ['maxMessages', 10], ['maxSessions', 16], ['storeData', true], ['maxDataSize', 2097152],
    ['logPath', ''], ['verboseLogging', false], ['bannerDelay', 1000], ['errorDelay', 500], ['doTempFail', false],
    ['doEarlyTalk', true], ['rwlProviders', []], ['rblProviders', []], ['localDomains', ''], ['localMailboxes', ''],
  ])('%s defaults to %j', (key, value) => {
    expect((config as unknown as Record<string, unknown>)[key]).toEqual(value);
  });
  it('blank hostName is the system host name', () => expect(config.hostName).toBe(hostname()));
  it('blank listenAddress is loopback', () => expect(config.listenAddress).toBe('127.0.0.1'));
  it('blank storePath is ./var/corpus', () => expect(config.storePath).toBe(resolve('var/corpus')));
  // Resolved at load like storePath: check-config --get, the daemon and `fakemx state` read one absolute path.
  it('blank state.path is ./var/state, resolved', () => expect(config.state.path).toBe(resolve('var/state')));
  it('a relative state.path is resolved against the working directory', () => expect(loadConfig({ env: {}, overrides: { state: { path: 'st' } } }).config.state.path).toBe(resolve('st')));
  it('one listener from listenAddress/listenPort', () => expect(config.listeners).toEqual([{ address: '127.0.0.1', port: 25, tls: 'none' }]));
});

describe('the shipped configs validate', () => {
  it.each(['fakemx.json', 'fake-mx.json', 'corpus.json', 'sink.json'])('config/%s', (name) => {
    const { config } = loadConfig({ file: join('config', name), env: {} });
    expect(config.listeners[0]!.port).toBe(2525);
  });
});

describe('env overrides FAKEMX_<KEY>', () => {
  it('every key has a distinct env name', () => {
    const names = leaves().map(([p]) => envName(p));
    expect(new Set(names).size).toBe(names.length);
    expect(envName('dns.healthCheckInterval')).toBe('FAKEMX_DNS_HEALTH_CHECK_INTERVAL');
    expect(envName('maxSmtpRcpt')).toBe('FAKEMX_MAX_SMTP_RCPT');
  });
  it.each([
    ['number', { FAKEMX_BANNER_DELAY: '250' }, (c: Cfg) => c.bannerDelay, 250],
    ['boolean', { FAKEMX_STORE_DATA: 'false' }, (c: Cfg) => c.storeData, false],
    ['nested', { FAKEMX_DNS_TIMEOUT: '900' }, (c: Cfg) => c.dns.timeout, 900],
    ['list, comma separated', { FAKEMX_RBL_PROVIDERS: 'a.example,b.example*2' }, (c: Cfg) => c.rblProviders, ['a.example', 'b.example*2']],
    ['list as JSON', { FAKEMX_DNS_SERVERS: '["127.0.0.1:5353"]' }, (c: Cfg) => c.dns.servers, ['127.0.0.1:5353']],
    // Environment values are strings by nature: they alone are parsed (the file holds { bannerDelay: 1 }).
    ['boolean "0" over a file', { FAKEMX_DO_TEMP_FAIL: '1', FAKEMX_DO_EARLY_TALK: '0' }, (c: Cfg) => [c.doTempFail, c.doEarlyTalk], [true, false]],
    // systemd's and compose files' spellings, any case, surrounding blanks ignored.
    ['boolean yes/off', { FAKEMX_DO_TEMP_FAIL: 'Yes', FAKEMX_DO_EARLY_TALK: ' off ' }, (c: Cfg) => [c.doTempFail, c.doEarlyTalk], [true, false]],
    ['boolean on/NO', { FAKEMX_DO_TEMP_FAIL: 'on', FAKEMX_STORE_DATA: 'NO' }, (c: Cfg) => [c.doTempFail, c.storeData], [true, false]],
    ['number over a file value', { FAKEMX_BANNER_DELAY: '1500' }, (c: Cfg) => c.bannerDelay, 1500],
  ])('%s', (_n, env, pick, want) => {
    const f = file('env.json', { bannerDelay: 1 });
    expect(pick(loadConfig({ file: f, env }).config)).toEqual(want);
  });
});

describe('list files', () => {
  it('domains: case-insensitive, comments and blanks ignored', () => {
    const l = loadConfig({ overrides: { localDomains: domains }, env: {} });
    expect([...l.lists.domains(l.config.localDomains)]).toEqual(['example.com', 'example.net']);
  });
  it('mailboxes are lower-cased local@domain', () => {
    const l = loadConfig({ overrides: { localMailboxes: mailboxes }, env: {} });
    expect([...l.lists.mailboxes(l.config.localMailboxes)]).toEqual(['alice@example.com']);
  });
  it('access list rules in order', () => {
    const l = loadConfig({ overrides: { accessList: access }, env: {} });
    expect(l.lists.access(l.config.accessList).map((r) => [r.action, r.cidr.text])).toEqual([['permit', '127.0.0.1/32'], ['reject', '::1']]);
  });
});

interface Bad {
  name: string;
  body?: unknown;
  env?: Record<string, string>;
  key: string;
  reason: RegExp;
  source?: RegExp;
}
const bad: Bad[] = [
  { name: 'unknown top-level key', body: { bannerDelays: 1 }, key: 'bannerDelays', reason: /unknown key/ },
  { name: 'unknown nested key', body: { dns: { timeOut: 1 } }, key: 'dns.timeOut', reason: /unknown key/ },
  // The greeting's and the Received header's domain (RFC 5321 §4.1.3).
  { name: 'hostName with a non-ASCII label', body: { hostName: 'mx.exämple.com' }, key: 'hostName', reason: /must be ASCII: give an internationalised name as its A-label/ },
  { name: 'hostName with punctuation', body: { hostName: 'a/b;c' }, key: 'hostName', reason: /is not a host name \(label "a\/b;c"/ },
  { name: 'hostName with an empty label', body: { hostName: 'mx..example' }, key: 'hostName', reason: /label ""/ },
  { name: 'hostName longer than 253', body: { hostName: `${'a.'.repeat(130)}com` }, key: 'hostName', reason: /longer than 253 octets/ },
  { name: 'hostName with a 64-octet label', body: { hostName: `${'a'.repeat(64)}.example` }, key: 'hostName', reason: /1 to 63 octets/ },
  { name: 'hostName in a listener profile', body: { listeners: [{ port: 2525, profile: { hostName: 'bad host' } }] }, key: 'listeners[0].profile.hostName', reason: /is not a host name \(label "bad host"/ },
  // JSON.parse keeps "__proto__" as a key (a JS literal would set the prototype instead).
  { name: '__proto__ at the top', body: JSON.parse('{"__proto__": {"storeData": false, "maxSessions": 0}}'), key: '__proto__', reason: /unknown key/ },
  { name: '__proto__ in a group', body: JSON.parse('{"dns": {"__proto__": {"timeout": 1}}}'), key: 'dns.__proto__', reason: /unknown key/ },
  { name: 'wrong type (string for number)', body: { maxSmtpErrors: 'four' }, key: 'maxSmtpErrors', reason: /integer/ },
  { name: 'wrong type (number for boolean)', body: { storeData: 1 }, key: 'storeData', reason: /boolean/i },
  // A file's value must have the schema's JSON type: convict would read "no" as true.
  { name: 'string "no" for a boolean', body: { doTempFail: 'no' }, key: 'doTempFail', reason: /must be a boolean .*got a string "no"/ },
  { name: 'string "no" for storeData', body: { storeData: 'no' }, key: 'storeData', reason: /must be a boolean/ },
  { name: 'string "off" for a boolean', body: { doEarlyTalk: 'off' }, key: 'doEarlyTalk', reason: /must be a boolean .*got a string "off"/ },
  { name: 'string "true" for a boolean', body: { verboseLogging: 'true' }, key: 'verboseLogging', reason: /must be a boolean/ },
  { name: 'numeric string for a number', body: { bannerDelay: '1500' }, key: 'bannerDelay', reason: /must be a duration, a positive integer \(a JSON number\) of milliseconds or a string with a unit .*got a string "1500" \(no unit\)/ },
  { name: 'numeric string for a port', body: { listenPort: '2525' }, key: 'listenPort', reason: /port number .*got a string/ },
  { name: 'numeric string for an int', body: { dns: { threshold: '2' } }, key: 'dns.threshold', reason: /integer .*got a string/ },
  { name: 'boolean for a number', body: { maxMessages: true }, key: 'maxMessages', reason: /got a boolean true/ },
  { name: 'comma string for a list', body: { rblProviders: 'a.example,b.example' }, key: 'rblProviders', reason: /must be an array, got a string/ },
  { name: 'number for a string', body: { hostName: 5 }, key: 'hostName', reason: /must be a string, got a number 5/ },
  { name: 'null for a string', body: { storePath: null }, key: 'storePath', reason: /must be a string, got null/ },
  { name: 'number for an enum', body: { logLevel: 3 }, key: 'logLevel', reason: /must be one of fatal, .*got a number 3/ },
  { name: 'array for an object', body: { webhook: { headers: [] } }, key: 'webhook.headers', reason: /must be an object, got an array/ },
  { name: 'scalar for a group', body: { dns: 5 }, key: 'dns', reason: /must be an object \(a group of settings\)/ },
  { name: 'string in a nested group', body: { tarpit: { stutter: 'yes' } }, key: 'tarpit.stutter', reason: /must be a boolean/ },
  // JSON.parse reads these as ±Infinity, which convict's own message printed as "value was null".
  { name: 'a number beyond a double', body: '{"maxSessions": 1e309}', key: 'maxSessions', reason: /^must be a finite number, got Infinity \(a JSON number beyond 1\.8e308\)$/ },
  { name: 'a duration beyond a double, negative', body: '{"greylist": {"passtime": -1e400}}', key: 'greylist.passtime', reason: /^must be a finite number, got -Infinity/ },
  { name: 'negative number', body: { bannerDelay: -5 }, key: 'bannerDelay', reason: /positive integer/ },
  { name: 'out of range', body: { receiveTimeout: 10 }, key: 'receiveTimeout', reason: /between 100 and/ },
  { name: 'port out of range', body: { listenPort: 70000 }, key: 'listenPort', reason: /port/ },
  { name: 'enum', body: { earlyTalkAction: 'kill' }, key: 'earlyTalkAction', reason: /possible values/ },
  { name: 'list of non-strings', body: { rblProviders: [1] }, key: 'rblProviders', reason: /array of strings/ },
  { name: 'bad provider syntax', body: { rblProviders: ['zen.spamhaus.org=127.0.0'] }, key: 'rblProviders', reason: /four octet/ },
  { name: 'missing list file', body: { localDomains: join(dir, 'nope.txt') }, key: 'localDomains', reason: /does not exist/ },
  { name: 'bad access list line', body: { accessList: file('acc-bad.txt', 'allow 1.2.3.4\n') }, key: 'accessList', reason: /acc-bad.txt:1/ },
  { name: 'bad listen address', body: { listenAddress: 'localhost' }, key: 'listenAddress', reason: /IP address/ },
  { name: 'bad DNS server', body: { dns: { servers: ['dns.example'] } }, key: 'dns.servers', reason: /not an IP/ },
  { name: 'minTtl above maxTtl', body: { dns: { minTtl: 100, maxTtl: 50 } }, key: 'dns.minTtl', reason: /exceed/ },
  { name: 'tls cert without key', body: { tls: { cert: '/x.pem' } }, key: 'tls.key', reason: /together/ },
  { name: 'tls listener without cert', body: { listeners: [{ port: 2525, tls: 'implicit' }] }, key: 'listeners[0].tls', reason: /tls.cert/ },
  { name: 'listener unknown key', body: { listeners: [{ port: 2525, tsl: 'none' }] }, key: 'listeners[0].tsl', reason: /unknown/ },
  { name: 'two listeners with one name', body: { listeners: [{ port: 1, name: 'smtp' }, { port: 2 }, { port: 3, name: 'smtp' }] }, key: 'listeners[2].name', reason: /^"smtp" is listeners\[0\]'s name already$/ },
  { name: 'listener bad port', body: { listeners: [{ port: 'x' }] }, key: 'listeners[0].port', reason: /port/ },
  { name: 'profile: not per-listener', body: { listeners: [{ port: 1, profile: { maxSessions: 3 } }] }, key: 'listeners[0].profile.maxSessions', reason: /not a per-listener/ },
  { name: 'profile: wrong type', body: { listeners: [{ port: 1, profile: { bannerDelay: 'x' } }] }, key: 'listeners[0].profile.bannerDelay', reason: /integer/ },
  { name: 'profile: string for a boolean', body: { listeners: [{ port: 1, profile: { doTempFail: 'no' } }] }, key: 'listeners[0].profile.doTempFail', reason: /must be a boolean .*"no"/ },
  { name: 'profile: numeric string', body: { listeners: [{ port: 1, profile: { bannerDelay: '1500' } }] }, key: 'listeners[0].profile.bannerDelay', reason: /a JSON number/ },
  { name: 'profile: nested group', body: { listeners: [{ port: 1, profile: { tarpit: { stutter: 'on' } } }] }, key: 'listeners[0].profile.tarpit.stutter', reason: /must be a boolean/ },
  { name: 'profile: missing list file', body: { listeners: [{ port: 1, profile: { localMailboxes: '/nonexistent/x' } }] }, key: 'listeners[0].profile.localMailboxes', reason: /does not exist/ },
  { name: 'proxy trusted not CIDR', body: { listeners: [{ port: 1, proxyProtocol: { trusted: ['x'] } }] }, key: 'listeners[0].proxyProtocol.trusted', reason: /not an IP/ },
  { name: 'bad webhook url', body: { webhook: { url: 'ftp://x' } }, key: 'webhook.url', reason: /http/ },
  { name: 'env value of the wrong type', body: {}, env: { FAKEMX_MAX_SESSIONS: 'many' }, key: 'maxSessions', reason: /integer/, source: /environment FAKEMX_MAX_SESSIONS/ },
  { name: 'env boolean not a boolean word', body: {}, env: { FAKEMX_STORE_DATA: 'maybe' }, key: 'storeData', reason: /must be true or false \(also 1\/0, yes\/no, on\/off\), got "maybe"/, source: /environment FAKEMX_STORE_DATA/ },
  { name: 'not JSON', body: '{ "a": ', key: '(file)', reason: /invalid JSON/ },
  { name: 'JSON but not an object', body: '[1]', key: '(file)', reason: /object/ },
  // Read no further than the cap (readCapped): -c /dev/zero took 4 GB in 20 s.
  { name: 'a file larger than 1 MiB', body: `{"hostName": "${'a'.repeat(1024 * 1024)}"}`, key: '(file)', reason: /^larger than 1048576 bytes; not a config file$/ },
  { name: '/dev/zero as a list file', body: { localDomains: '/dev/zero' }, key: 'localDomains', reason: /^list file \/dev\/zero is larger than 67108864 bytes$/ },
  // JSON.parse keeps the last of two equal keys without a word; keys compared as decoded.
  { name: 'a key given twice', body: '{"listenPort": 25, "bannerDelay": 0, "listenPort": 2525}', key: 'listenPort', reason: /^given twice in one object \(only one may be\)$/ },
  { name: 'a key given twice, once escaped', body: '{"dns": {"timeout": 100, "time\\u006fut": 200}}', key: 'dns.timeout', reason: /^given twice/ },
  { name: 'a key given twice in a listener profile', body: '{"listeners": [{"port": 1, "name": "a"}, {"port": 2, "profile": {"tarpit": {}, "storeData": true, "storeData": false}}]}', key: 'listeners[1].profile.storeData', reason: /^given twice/ },
  { name: 'env JSON with a key given twice', body: {}, env: { FAKEMX_LISTENERS: '[{"port": 1}, {"port": 2, "port": 3}]' }, key: 'listeners[1].port', reason: /^given twice/, source: /environment FAKEMX_LISTENERS/ },
  // convict walks every level: 20,000 deep took a minute, 100,000 overflowed the stack.
  { name: 'nested deeper than any setting', body: `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`, key: '(file)', reason: /^nested deeper than 32 levels$/ },
  { name: 'an array nested 100,000 deep', body: `{"listeners":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, key: '(file)', reason: /^nested deeper than 32 levels$/ },
  { name: 'env JSON nested 100,000 deep', body: {}, env: { FAKEMX_LISTENERS: `${'['.repeat(100_000)}${']'.repeat(100_000)}` }, key: 'listeners', reason: /^nested deeper than 32 levels$/, source: /environment FAKEMX_LISTENERS/ },
];

describe('FAKEMX_* variables that name no setting', () => {
  it('are taken as no setting but said, with the nearest name; FAKEMX_CONFIG and real settings are not', () => {
    const l = loadConfig({ env: { FAKEMX_BANER_DELAY: '5', FAKEMX_BANNER_DELAY: '1', FAKEMX_CONFIG: 'x.json', FAKEMX_NOTHING_LIKE_IT_AT_ALL: '1', PATH: '/bin' } });
    expect(l.config.bannerDelay).toBe(1);
    expect(l.warnings).toEqual([
      'environment FAKEMX_BANER_DELAY is not a setting; ignored (did you mean FAKEMX_BANNER_DELAY?)',
      'environment FAKEMX_NOTHING_LIKE_IT_AT_ALL is not a setting; ignored',
    ]);
  });
});

describe('hostName: what the greeting may name', () => {
  it.each(['mx.example.com', 'localhost', 'mx-1.example', 'xn--exmple-cua.com', '[192.0.2.1]', '[IPv6:2001:db8::1]'])('%s is taken', (h) => {
    expect(hostNameProblem(h)).toBeNull();
  });
  it.each(['[not an ip]', '-mx.example', 'mx.example-', 'mx_1.example'])('%s is refused', (h) => {
    expect(hostNameProblem(h)).not.toBeNull();
  });
});

describe('strict validation: one error naming key, source and reason', () => {
  it.each(bad.map((b) => [b.name, b] as const))('%s', (_n, b) => {
    const f = file(`bad-${b.key.replace(/\W/g, '_')}.json`, b.body ?? {});
    let e: unknown;
    try {
      loadConfig({ file: f, env: b.env ?? {} });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(ConfigError);
    const ce = e as ConfigError;
    expect(ce.key).toBe(b.key);
    expect(ce.reason).toMatch(b.reason);
    expect(ce.file).toMatch(b.source ?? /bad-.*\.json$/);
    expect(ce.message.split('\n')).toHaveLength(1);
  });
  it('programmatic overrides are held to the same types', () => {
    expect(() => loadConfig({ overrides: { storeData: 'no' }, env: {} })).toThrow(/^overrides: storeData: must be a boolean/);
  });
  it('the same key in different objects, and keys inside strings, are no duplicates', () => {
    const f = file('same-keys.json', '{"listeners": [{"port": 2525, "name": "a", "profile": {"tarpit": {"stutter": true}}}, {"port": 2526, "name": "b"}], "tarpit": {"stutter": false}, "hostName": "x\\"port\\": 1, \\"port"}');
    expect(() => loadConfig({ file: f, env: {} })).toThrow(/hostName: "x"port": 1, "port" is not a host name/);
  });
  it('a UTF-8 byte order mark before the JSON is skipped', () => {
    expect(loadConfig({ file: file('bom.json', '\uFEFF{"listenPort": 2526}'), env: {} }).config.listenPort).toBe(2526);
  });
  it('a missing config file', () => {
    expect(() => loadConfig({ file: join(dir, 'missing.json'), env: {} })).toThrow(/missing.json: \(file\): no such file/);
  });
});
