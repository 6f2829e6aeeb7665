// `fakemx import-appconfig`: FakeSMTP's app.config (<appSettings><add key value/>) to fakemx
// JSON. Every one of FakeSMTP's 23 keys maps to the lowerCamelCase key of the same meaning;
// a blank value means "default" (the key is left out); whatever cannot map is a warning.

import { readFile, stat, writeFile } from 'node:fs/promises';
import { escapeText } from '../util/escape.js';
import { plural } from '../util/plural.js';
import { isIP } from 'node:net';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { leaves, type SchemaLeaf } from '../config/schema.js';
import { EX_CANTCREAT, EX_DATAERR, EX_NOINPUT } from '../util/sysexits.js';
import { parseProvider } from '../dnsbl/provider.js';
import { hostNameProblem } from '../config/load.js';

type Kind = 'host' | 'ip' | 'port' | 'int' | 'bool' | 'list' | 'dir' | 'file';

/** FakeSMTP key -> fakemx key and value kind, in FakeSMTP's file order. */
const KEYS: readonly [string, string, Kind][] = [
  ['HostName', 'hostName', 'host'],
  ['ListenAddress', 'listenAddress', 'ip'],
  ['ListenPort', 'listenPort', 'port'],
  ['ReceiveTimeOut', 'receiveTimeout', 'int'],
  ['MaxSmtpErrors', 'maxSmtpErrors', 'int'],
  ['MaxSmtpNoop', 'maxSmtpNoop', 'int'],
  ['MaxSmtpVrfy', 'maxSmtpVrfy', 'int'],
  ['MaxSmtpRcpt', 'maxSmtpRcpt', 'int'],
  ['MaxMessages', 'maxMessages', 'int'],
  ['MaxSessions', 'maxSessions', 'int'],
  ['StoreData', 'storeData', 'bool'],
  ['StorePath', 'storePath', 'dir'],
  ['MaxDataSize', 'maxDataSize', 'int'],
  ['LogPath', 'logPath', 'dir'],
  ['VerboseLogging', 'verboseLogging', 'bool'],
  ['BannerDelay', 'bannerDelay', 'int'],
  ['ErrorDelay', 'errorDelay', 'int'],
  ['DoTempFail', 'doTempFail', 'bool'],
  ['DoEarlyTalk', 'doEarlyTalk', 'bool'],
  ['RWLproviders', 'rwlProviders', 'list'],
  ['RBLproviders', 'rblProviders', 'list'],
  ['LocalDomains', 'localDomains', 'file'],
  ['LocalMailBoxes', 'localMailboxes', 'file'],
];

/** .NET's NameValueCollection behind AppSettings compares keys case-insensitively. */
const BY_LOWER = new Map(KEYS.map(([k, ours, kind]) => [k.toLowerCase(), { fakesmtp: k, key: ours, kind }]));
const LEAF = new Map<string, SchemaLeaf>(leaves());
/** Output in schema order, so the JSON reads like the reference table. */
const ORDER = leaves().map(([p]) => p);

/** Sections of an app.config that say nothing about SMTP behaviour: skipped without a warning. */
const QUIET_SECTIONS = new Set(['startup', 'configSections', 'runtime']);

const MAX_INPUT = 1024 * 1024;

/**
 * `X:\dir`, `X:/dir`, `\\server\share` or one naming a Windows environment variable
 * (`%TEMP%\FakeSMTP`, FakeSMTP's own default): a Windows path means nothing on this host.
 */
function windowsPath(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\') || /%[^%\\/]+%/.test(p);
}

/** A DNS zone name as the loader accepts it (postscreen-style entries without filter or weight). */
/** A plain zone (FakeSMTP has no weights or filters) that the config loader takes: its own parser decides. */
function zoneOk(z: string): boolean {
  if (/[=*]/.test(z) || !z.includes('.')) return false;
  try {
    parseProvider(z);
    return true;
  } catch {
    return false;
  }
}

interface Add {
  key: string | undefined;
  value: string | undefined;
}

type XmlNode = Record<string, unknown>;

function children(node: XmlNode, name: string): XmlNode[] {
  const v = node[name];
  return Array.isArray(v) ? (v as XmlNode[]) : [];
}

function tagOf(node: XmlNode): string | undefined {
  return Object.keys(node).find((k) => k !== ':@' && k !== '#text' && k !== '#comment' && !k.startsWith('?'));
}

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The five predefined entities and character references; anything else stays as written. */
function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9A-Fa-f]+|#\d+|amp|lt|gt|quot|apos);/g, (whole, ref: string) => {
    if (ref[0] !== '#') return PREDEFINED[ref]!;
    const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : whole;
  });
}

function attrs(node: XmlNode): Record<string, string> {
  const a = node[':@'];
  if (!a || typeof a !== 'object') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a as Record<string, unknown>)) if (typeof v === 'string') out[k] = decodeEntities(v);
  return out;
}

/**
 * The effective <appSettings> entries, with .NET's semantics: <add> sets (a later one
 * wins), <remove key> deletes, <clear/> forgets everything before it.
 */
function appSettings(xml: string, warnings: string[]): Map<string, { key: string; value: string }> {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new Error(`not well-formed XML at line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`);
  const parser = new XMLParser({
    preserveOrder: true,
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseAttributeValue: false,
    parseTagValue: false,
    trimValues: false,
    // Decoded below in one pass, numeric references included (XML 1.0 §4.1, §4.6).
    processEntities: false,
  });
  const doc = parser.parse(xml) as XmlNode[];
  const sections: XmlNode[] = [];
  for (const top of doc) {
    const tag = tagOf(top);
    if (tag === 'configuration') {
      for (const sec of children(top, 'configuration')) {
        const t = tagOf(sec);
        if (t === 'appSettings') sections.push(sec);
        else if (t && !QUIET_SECTIONS.has(t)) warnings.push(`<${t}> section ignored: fakemx reads only <appSettings>`);
      }
    } else if (tag === 'appSettings') {
      sections.push(top);
    }
  }
  if (sections.length === 0) throw new Error('no <appSettings> section found');

  const entries = new Map<string, { key: string; value: string }>();
  for (const sec of sections) {
    const a = attrs(sec);
    if (a.file) warnings.push(`<appSettings file="${a.file}">: the external file is not read; merge its <add> entries into this file first`);
    if (a.configSource) warnings.push(`<appSettings configSource="${a.configSource}">: the external file is not read`);
    for (const el of children(sec, 'appSettings')) {
      const t = tagOf(el);
      if (t === undefined) continue;
      const at = attrs(el);
      const add: Add = { key: at.key, value: at.value };
      if (t === 'clear') {
        entries.clear();
      } else if (t === 'remove') {
        if (add.key !== undefined) entries.delete(add.key.toLowerCase());
      } else if (t === 'add') {
        if (add.key === undefined) {
          warnings.push('<add> without a key attribute ignored');
          continue;
        }
        const lower = add.key.toLowerCase();
        if (entries.has(lower)) warnings.push(`${add.key}: set more than once; the last value wins (as in .NET)`);
        entries.set(lower, { key: add.key, value: add.value ?? '' });
      } else {
        warnings.push(`<${t}> in <appSettings> ignored`);
      }
    }
  }
  return entries;
}

/** One value; undefined = leave the key out (default). Pushes a warning for anything lost. */
function convert(fakesmtp: string, key: string, kind: Kind, raw: string, warnings: string[]): unknown {
  const v = raw.trim();
  const w = (msg: string) => {
    warnings.push(`${fakesmtp}: ${msg}`);
    return undefined;
  };
  // FakeSMTP: a blank value means its default, which is fakemx's default for the same key.
  if (v === '') return undefined;
  switch (kind) {
    case 'bool':
      // .NET bool.Parse: "True"/"False", case-insensitive, surrounding blanks allowed.
      if (/^true$/i.test(v)) return true;
      if (/^false$/i.test(v)) return false;
      return w(`"${raw}" is not True or False; left at the fakemx default`);
    case 'int':
    case 'port': {
      // .NET int.Parse: optional sign, decimal digits only.
      if (!/^[+-]?\d+$/.test(v)) return w(`"${raw}" is not a whole number; left at the fakemx default`);
      const n = Number(v);
      const range = kind === 'port' ? { min: 1, max: 65535 } : LEAF.get(key)?.range;
      if (range && (n < range.min || n > range.max)) {
        // FakeSMTP itself turns an out-of-range ListenPort into 25, the default here too.
        return w(`${n} is outside fakemx's range ${range.min}..${range.max} for ${key}; left at the fakemx default`);
      }
      return n;
    }
    case 'host':
      // The loader's own rule (a host name or an address literal, ASCII).
      if (hostNameProblem(v) !== null) return w(`"${raw}" is not a host name; left at the fakemx default (system host name)`);
      return v;
    case 'ip':
      // FakeSMTP falls back to loopback when the address does not parse; so does fakemx's default.
      if (!isIP(v)) return w(`"${raw}" is not an IP address; left at the fakemx default (127.0.0.1)`);
      return v;
    case 'list': {
      // FakeSMTP: "set this to null to disable"; a literal null means an empty list, the default.
      if (/^null$/i.test(v)) return undefined;
      const out: string[] = [];
      for (const part of v.split(',')) {
        const z = part.trim();
        if (z === '') continue;
        if (!zoneOk(z)) {
          w(`entry "${z}" is not a DNS zone name; dropped`);
          continue;
        }
        if (!out.includes(z)) out.push(z);
      }
      return out.length > 0 ? out : undefined;
    }
    case 'dir':
    case 'file':
      if (windowsPath(v)) {
        return w(
          `"${raw}" is a Windows path; left at the fakemx default` +
            (kind === 'file' ? ` (accept all): copy the file to this host and set ${key}` : `: set ${key} to a directory on this host`),
        );
      }
      if (kind === 'dir' && key === 'storePath') warnings.push(`${fakesmtp}: fakemx stores each message as <id>.eml plus <id>.json under dated subdirectories of ${v}, not FakeSMTP's single files`);
      return v;
  }
}

/** Converts an app.config text. Throws on XML that is not well-formed or has no <appSettings>. */
export function importAppConfig(xml: string): { config: Record<string, unknown>; warnings: string[] } {
  const warnings: string[] = [];
  const entries = appSettings(xml, warnings);
  const values = new Map<string, unknown>();
  for (const { key, value } of entries.values()) {
    const m = BY_LOWER.get(key.toLowerCase());
    if (!m) {
      warnings.push(`${key}: not a FakeSMTP setting fakemx knows; ignored`);
      continue;
    }
    if (key !== m.fakesmtp) warnings.push(`${key}: read as ${m.fakesmtp} (keys are case-insensitive in .NET)`);
    const v = convert(m.fakesmtp, m.key, m.kind, value, warnings);
    if (v !== undefined) values.set(m.key, v);
  }
  const config: Record<string, unknown> = {};
  for (const k of ORDER) if (values.has(k)) config[k] = values.get(k);
  return { config, warnings };
}

export type Writer = (s: string) => void;

/** The CLI command: 0 ok (warnings on err), 65 bad XML, 66 unreadable input, 73 cannot write. */
export async function importAppConfigCommand(file: string, outFile: string | undefined, out: Writer, toStderr: Writer, force = false): Promise<number> {
  // Warnings and errors quote the app.config's keys and values (and the parser's reading of
  // its markup): a file from elsewhere must not drive the terminal or break a line.
  const err: Writer = (s) => toStderr(escapeText(s));
  let xml: string;
  try {
    const st = await stat(file);
    if (!st.isFile()) {
      err(`fakemx: error: import-appconfig: ${file}: not a regular file`);
      return EX_NOINPUT;
    }
    if (st.size > MAX_INPUT) {
      err(`fakemx: error: import-appconfig: ${file}: larger than ${MAX_INPUT} bytes; not an app.config`);
      return EX_DATAERR;
    }
    xml = await readFile(file, 'utf8');
  } catch (e) {
    err(`fakemx: error: import-appconfig: ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    return EX_NOINPUT;
  }
  // A UTF-8 byte order mark is common in Visual Studio's files.
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1);
  let result: ReturnType<typeof importAppConfig>;
  try {
    result = importAppConfig(xml);
  } catch (e) {
    err(`fakemx: error: import-appconfig: ${file}: ${(e as Error).message}`);
    return EX_DATAERR;
  }
  for (const w of result.warnings) err(`fakemx: import-appconfig: warning: ${w}`);
  const json = JSON.stringify(result.config, null, 2) + '\n';
  if (outFile) {
    try {
      // As `init`: an existing file (a config in use, say) is replaced only when asked to.
      await writeFile(outFile, json, { mode: 0o640, flag: force ? 'w' : 'wx' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      err(code === 'EEXIST' ? `fakemx: error: import-appconfig: ${outFile} exists; nothing written (--force overwrites)` : `fakemx: error: import-appconfig: ${outFile}: cannot write (${code ?? String(e)})`);
      return EX_CANTCREAT;
    }
    err(`fakemx: import-appconfig: wrote ${outFile} (${plural(Object.keys(result.config).length, 'key')}, ${plural(result.warnings.length, 'warning')}); check it with: fakemx check-config -c ${outFile}`);
  } else {
    out(json);
  }
  return 0;
}
