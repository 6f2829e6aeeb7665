// `fakemx init [--profile fake-mx|corpus|sink] [--dir DIR]`: a commented config for one
// profile and its list files, ready to edit. Paths in the config are absolute (fakemx resolves
// relative paths against the working directory, not the config's). Nothing is overwritten
// without --force; the written config is loaded back before the command says it is done.

import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { leaves } from '../config/schema.js';
import { EX_CANTCREAT } from '../util/sysexits.js';
import { mkdirpSync } from '../util/mkdirp.js';

export const PROFILES = ['fake-mx', 'corpus', 'sink'] as const;
export type InitProfile = (typeof PROFILES)[number];


const DOCS = new Map(leaves().map(([p, l]) => [p, l.doc]));

interface Setting {
  key: string;
  value: unknown;
  /** Written commented out: a choice to make, not a default to keep. */
  off?: boolean;
  /** Extra words after the schema's doc. */
  note?: string;
}

const ABOUT: Record<InitProfile, string> = {
  'fake-mx':
    'MX sandwich: the lowest- and highest-preference MX records point here. Real MTAs get 4xx at\n// DATA and retry the real MX; most bots do not retry. Nothing is stored.',
  corpus: 'Spam corpus: every message is stored (<storePath>/<day>/<id>.eml and .json), then answered\n// 421 so a real sender retries elsewhere. The console shows what arrives.',
  sink: 'Test receiver: accepts and stores everything at once (no delays, no early-talk checks),\n// for an application\'s outgoing mail in development or CI.',
};

function settings(profile: InitProfile, dir: string): Setting[] {
  const corpus = join(dir, 'corpus');
  const lists = [
    { key: 'localDomains', value: join(dir, 'local-domains.txt'), off: true, note: 'Uncomment after listing your domains in the file.' },
    { key: 'localMailboxes', value: join(dir, 'local-mailboxes.txt'), off: true },
    { key: 'accessList', value: join(dir, 'access.txt'), off: true },
  ];
  const common = [
    { key: 'hostName', value: '', note: 'Set it to the name in your MX records.' },
    { key: 'listenAddress', value: '127.0.0.1', note: 'Use "::" (all IPv6 and IPv4) and port 25 in production.' },
    { key: 'listenPort', value: 2525 },
  ];
  if (profile === 'fake-mx') {
    return [
      ...common,
      { key: 'storeData', value: false },
      { key: 'doTempFail', value: true },
      { key: 'bannerDelay', value: 1500 },
      { key: 'errorDelay', value: 750 },
      { key: 'doEarlyTalk', value: true },
      { key: 'earlyTalkAction', value: 'drop' },
      { key: 'maxSessions', value: 64 },
      { key: 'rblProviders', value: ['zen.spamhaus.org*2', 'bl.spamcop.net'], off: true, note: 'Public lists limit free use; check their terms.' },
      ...lists,
      { key: 'http', value: { port: 9325, console: true }, note: 'The console on http://127.0.0.1:9325/console/ (loopback only without http.token).' },
    ];
  }
  if (profile === 'corpus') {
    return [
      ...common,
      { key: 'storeData', value: true },
      { key: 'storePath', value: corpus },
      { key: 'doTempFail', value: true },
      { key: 'bannerDelay', value: 1000 },
      { key: 'errorDelay', value: 500 },
      { key: 'doEarlyTalk', value: true },
      { key: 'earlyTalkAction', value: 'ignore', note: 'Collect early talkers too (their verdict is in the record).' },
      { key: 'maxSessions', value: 64 },
      ...lists,
      { key: 'http', value: { port: 9325, console: true }, note: 'The console on http://127.0.0.1:9325/console/ (loopback only without http.token).' },
    ];
  }
  return [
    ...common,
    { key: 'storeData', value: true },
    { key: 'storePath', value: corpus },
    { key: 'doTempFail', value: false },
    { key: 'doEarlyTalk', value: false },
    { key: 'bannerDelay', value: 0 },
    { key: 'errorDelay', value: 0 },
    { key: 'maxMessages', value: 1_000_000 },
    { key: 'maxSmtpErrors', value: 100 },
    { key: 'maxSessions', value: 256 },
    { key: 'maxSessionsPerIp', value: 256 },
    // An application's pooled connection may idle, or check itself with NOOP (JavaMail's
    // isConnected), between messages: RFC 5321 §4.5.3.2.7 asks 5 minutes of a server.
    { key: 'receiveTimeout', value: '5 minutes', note: 'RFC 5321 4.5.3.2.7: at least 5 minutes between commands.' },
    { key: 'maxSmtpNoop', value: 10_000 },
    { key: 'maxJunkCommands', value: 1_000_000 },
    ...lists,
    { key: 'http', value: { port: 9325, console: true }, note: 'The console on http://127.0.0.1:9325/console/ (loopback only without http.token).' },
  ];
}

/** The config text: JSON with a // comment above each key (fakemx reads comments in config files). */
export function configText(profile: InitProfile, dir: string): string {
  const list = settings(profile, dir);
  const lines = [
    `// fakemx config, profile ${profile}, written by \`fakemx init\`.`,
    `// ${ABOUT[profile]}`,
    '// Every key and its default: `fakemx config-doc` or man fakemx. Check: `fakemx check-config -c <this file> --changed`.',
    '{',
  ];
  list.forEach((s, i) => {
    const doc = DOCS.get(s.key) ?? (s.key === 'http' ? 'Admin HTTP listener (/healthz, /metrics) and the operator console.' : '');
    lines.push(`  // ${s.key}: ${doc}${s.note ? ' ' + s.note : ''}`);
    const last = list.slice(i + 1).every((x) => x.off);
    const text = `"${s.key}": ${JSON.stringify(s.value)}${last ? '' : ','}`;
    lines.push(s.off ? `  // ${text}` : `  ${text}`);
  });
  lines.push('}', '');
  return lines.join('\n');
}

const LIST_FILES: Record<string, string> = {
  'local-domains.txt': '# Recipient domains fakemx accepts (localDomains), one a line; # starts a comment.\n# Used only once localDomains names this file in the config. Others get 550 5.7.1.\n# example.com\n',
  'local-mailboxes.txt': '# Recipient mailboxes fakemx accepts (localMailboxes), local@domain one a line.\n# Used only once localMailboxes names this file in the config.\n# postmaster@example.com\n',
  'access.txt': '# Access list (accessList): `permit CIDR` skips every anti-spam check, `reject CIDR` gets\n# 554 5.7.1 at connect; the first match wins. Used only once accessList names this file.\n# permit 192.0.2.0/24\n# reject 198.51.100.0/24\n',
};

export interface InitResult {
  code: number;
  written: string[];
}

export async function initCommand(opts: { profile: InitProfile; dir: string; force: boolean }, out: (s: string) => void, err: (s: string) => void): Promise<InitResult> {
  const dir = resolve(opts.dir);
  const files: [string, string][] = [[join(dir, 'fakemx.json'), configText(opts.profile, dir)], ...Object.entries(LIST_FILES).map(([n, t]): [string, string] => [join(dir, n), t])];
  const existing = files.filter(([p]) => existsSync(p)).map(([p]) => p);
  if (existing.length > 0 && !opts.force) {
    err(`fakemx: error: ${existing.join(', ')} ${existing.length === 1 ? 'exists' : 'exist'}; nothing written (--force overwrites)`);
    return { code: EX_CANTCREAT, written: [] };
  }
  try {
    mkdirpSync(dir);
    for (const [p, t] of files) writeFileSync(p, t);
  } catch (e) {
    err(`fakemx: error: cannot write in ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    return { code: EX_CANTCREAT, written: [] };
  }
  const config = files[0]![0];
  // Imported when the files are written: program.ts reads PROFILES from here for every command.
  const { ConfigError, loadConfig } = await import('../config/load.js');
  try {
    loadConfig({ file: config, env: {} });
  } catch (e) {
    // A bug here, not the user's: the profile must always load.
    err(`fakemx: error: the written config does not load: ${e instanceof ConfigError ? e.message : String(e)}`);
    return { code: 70, written: files.map(([p]) => p) };
  }
  out(`wrote ${files.map(([p]) => p).join(', ')}`);
  out(`next: fakemx check-config -c ${config} --changed`);
  out(`      fakemx run -c ${config}`);
  return { code: 0, written: files.map(([p]) => p) };
}
