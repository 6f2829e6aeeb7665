// Loads and validates the one config file: defaults < file < FAKEMX_* environment <
// programmatic overrides, validated strictly by convict plus fakemx's own checks (JSON types,
// ranges, listeners and their profiles, TLS files, list files). Any problem is a ConfigError
// naming the key, the source and the reason, which the CLI turns into exit 78 (EX_CONFIG).
// Only FAKEMX_* variables are parsed from strings; a file's values must have the schema's type.

import { effectiveListeners, effectiveTls, TlsSettingError, type EffectiveListener, type EffectiveTls } from './effective.js';
import convict from 'convict';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { parseServer } from '../dns/client.js';
import { isLoopback, parseCidr } from '../net/ip.js';
import { parseProvider } from '../dnsbl/provider.js';
import { DURATION_UNITS, durationFormat, durationHint, formatDuration, isDurationFormat } from './duration.js';
import { duplicateKey, stripJsonComments } from './jsonc.js';
import { ListError, ListSet } from './lists.js';
import { readCapped } from '../util/read-capped.js';
import { envName, leaves, PROFILE_KEYS, schema, type Config, type ListenerConfig, type PolicyConfig, type SchemaLeaf, type SchemaNode } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${key}: ${reason}`);
    this.name = 'ConfigError';
  }
}

export interface LoadedConfig {
  config: Config;
  /** Absolute path of the file read, or null for defaults/overrides only. */
  file: string | null;
  lists: ListSet;
  /** Each listener's effective, frozen settings (computed here once). */
  listeners: readonly EffectiveListener[];
  /** Certificate options and context, read once; undefined without a certificate. */
  tls: EffectiveTls | undefined;
  /** What was taken but is probably a mistake (a FAKEMX_* variable that names no setting). */
  warnings: string[];
}

export interface LoadOptions {
  file?: string;
  overrides?: Record<string, unknown>;
  /** Environment to read FAKEMX_* from; default process.env. */
  env?: NodeJS.ProcessEnv;
}

// convict 6 has no `duration` format of its own (it moved to convict-format-with-moment);
// fakemx's has the same syntax but rejects unknown units (see duration.ts).
// Kept by name so a duration outside the schema (readDuration) goes through the same format.
const DURATION_FORMATS = new Map<unknown, ReturnType<typeof durationFormat>>(Object.entries(DURATION_UNITS).map(([name, unit]) => [name, durationFormat(name, unit)]));
for (const f of DURATION_FORMATS.values()) convict.addFormat(f);

const LEAVES = leaves();
const LEAF_BY_PATH = new Map(LEAVES);

/** The schema without fakemx's own `range` annotations, in convict's shape. */
function convictSchema(node: SchemaNode = schema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    if ('doc' in v && 'default' in v) {
      const { range: _range, env: _env, ...rest } = v as SchemaLeaf;
      out[k] = rest;
    } else out[k] = convictSchema(v);
  }
  return out;
}

/** `a string "no"`, `a number 5`, `null`, `an array`: the JSON value a type error names. */
function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const prim = v as string | number | boolean | bigint | symbol | undefined | (() => unknown); // objects returned above
  const text = JSON.stringify(prim) ?? String(prim);
  return `${typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : `a ${typeof v}`} ${text.length > 60 ? text.slice(0, 57) + '...' : text}`;
}

/**
 * The JSON type a leaf needs, or null when the value has it. convict would coerce instead:
 * "no" and "off" to true for a boolean, "1500" to 1500, "a,b" to a list; a file that says
 * `"doTempFail": "no"` must fail, not mean the opposite. Ranges and enums are checked later.
 */
function typeProblem(leaf: SchemaLeaf, v: unknown): string | null {
  const f = leaf.format;
  const got = `, got ${jsonKind(v)}`;
  // JSON.parse reads 1e309 as Infinity, which convict's messages then print as null.
  if (typeof v === 'number' && !Number.isFinite(v)) return `must be a finite number, got ${v} (a JSON number beyond 1.8e308)`;
  if (f === Boolean) return typeof v === 'boolean' ? null : `must be a boolean (true or false)${got}`;
  if (f === 'nat') return typeof v === 'number' ? null : `must be a positive integer (a JSON number)${got}`;
  if (f === 'int') return typeof v === 'number' ? null : `must be an integer (a JSON number)${got}`;
  if (isDurationFormat(f)) {
    // A string needs a unit: "1500" in a file is as ambiguous as it is for any number key.
    if (typeof v === 'number' || (typeof v === 'string' && !/^\s*[+-]?\d+\s*$/.test(v))) return null;
    return `must be a duration, ${durationHint(DURATION_UNITS[f])}${got}${typeof v === 'string' ? ' (no unit)' : ''}`;
  }
  if (f === 'port') return typeof v === 'number' ? null : `must be a port number (a JSON number)${got}`;
  if (f === String) return typeof v === 'string' ? null : `must be a string${got}`;
  if (Array.isArray(f)) return typeof v === 'string' ? null : `must be one of ${f.join(', ')}${got}`;
  if (f === Array) return Array.isArray(v) ? null : `must be an array${got}`;
  if (f === Object) return v !== null && typeof v === 'object' && !Array.isArray(v) ? null : `must be an object${got}`;
  return null;
}

/** Every known key of a JSON layer (file, overrides, profile) against the schema's types; unknown keys are convict's to name. */
function checkTypes(obj: Record<string, unknown>, where: string, prefix = '', node: SchemaNode = schema, path = ''): void {
  for (const [k, v] of Object.entries(obj)) {
    const p = path ? `${path}.${k}` : k;
    // JSON.parse makes "__proto__" an own key, which convict's merge then assigns as the
    // prototype: silently dropped. Named here like any other key not in the schema.
    if (k === '__proto__') throw new ConfigError(prefix + p, where, 'unknown key');
    if (!Object.hasOwn(node, k)) continue;
    const n = node[k]!;
    if ('doc' in n && 'default' in n) {
      const problem = typeProblem(n as SchemaLeaf, v);
      if (problem) throw new ConfigError(prefix + p, where, problem);
    } else if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new ConfigError(prefix + p, where, `must be an object (a group of settings), got ${jsonKind(v)}`);
    } else checkTypes(v as Record<string, unknown>, where, prefix, n, p);
  }
}

function get(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

/** FAKEMX_ variables that are not settings but are fakemx's own (the CLI's config file). */
const ENV_NOT_SETTINGS = new Set(['FAKEMX_CONFIG']);

/**
 * A FAKEMX_* variable that names no setting is ignored, as the environment is shared with
 * everything else; but a misspelt one silently keeps the default, so each is said (with the
 * nearest setting's name when one is close).
 */
function envWarnings(env: NodeJS.ProcessEnv): string[] {
  const known = new Set(LEAVES.map(([path]) => envName(path)));
  const out: string[] = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('FAKEMX_') || known.has(name) || ENV_NOT_SETTINGS.has(name)) continue;
    let best: string | null = null;
    let bestD = 4;
    for (const k of known) {
      const d = editDistance(name, k, bestD);
      if (d < bestD) [best, bestD] = [k, d];
    }
    out.push(`environment ${name} is not a setting; ignored${best ? ` (did you mean ${best}?)` : ''}`);
  }
  return out;
}

/** Levenshtein distance, or `cap` when it is at least that (cheap for long unrelated names). */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return Math.min(prev[b.length]!, cap);
}

/** FAKEMX_* variables as a config layer; values are coerced by the leaf's format. */
const ENV_BOOLEAN = /^(true|false|1|0|yes|no|on|off)$/i;
const ENV_TRUE = /^(true|1|yes|on)$/i;

function envLayer(env: NodeJS.ProcessEnv): { layer: Record<string, unknown>; source: Map<string, string> } {
  const layer: Record<string, unknown> = {};
  const source = new Map<string, string>();
  for (const [path, leaf] of LEAVES) {
    const name = envName(path);
    const raw = env[name];
    if (raw === undefined) continue;
    const where = `environment ${name}`;
    let value: unknown = raw;
    const f = leaf.format;
    if (f === Boolean) {
      // The spellings systemd's Environment= and compose files use for a boolean, any case.
      const t = raw.trim();
      if (!ENV_BOOLEAN.test(t)) throw new ConfigError(path, where, `must be true or false (also 1/0, yes/no, on/off), got "${raw}"`);
      value = ENV_TRUE.test(t);
    } else if (isDurationFormat(f)) {
      // Bare digits or a string with a unit; convict's coerce converts, its validate names a bad one.
      value = raw.trim();
    } else if (f === 'nat' || f === 'int' || f === 'port') {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(path, where, `must be an integer, got "${raw}"`);
      value = Number(raw);
    } else if (f === Array || f === Object) {
      const t = raw.trim();
      if (t.startsWith('[') || t.startsWith('{')) {
        try {
          value = JSON.parse(t);
        } catch (e) {
          throw new ConfigError(path, where, `invalid JSON: ${(e as Error).message}`);
        }
        if (tooDeep(value)) throw new ConfigError(path, where, `nested deeper than ${MAX_DEPTH} levels`);
        const twice = duplicateKey(t);
        if (twice !== null) throw new ConfigError(twice.startsWith('[') ? path + twice : `${path}.${twice}`, where, TWICE);
      } else if (f === Array) value = t === '' ? [] : t.split(',').map((s) => s.trim()).filter(Boolean);
      else throw new ConfigError(path, where, 'must be a JSON object');
    }
    setPath(layer, path, value);
    source.set(path, where);
  }
  return { layer, source };
}

/**
 * Deepest a config value may nest, objects and arrays counted: the schema's deepest setting is
 * listeners[].profile.cache.passTtl.greet (6). convict's merge and validation walk every level,
 * with work growing faster than the depth: a file or FAKEMX_* JSON nested 20,000 deep took a
 * minute (a SIGHUP reload stalls the daemon as long), 60,000 overflowed the stack.
 */
const MAX_DEPTH = 32;

/** Whether a parsed JSON value nests deeper than MAX_DEPTH (walked without recursion). */
function tooDeep(v: unknown): boolean {
  const stack: [unknown, number][] = [[v, 1]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [x, depth] = next;
    if (x === null || typeof x !== 'object') continue;
    if (depth > MAX_DEPTH) return true;
    for (const child of Object.values(x)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Largest config file read, in bytes: one is a few KiB, with init's comments ~20 KiB. */
const MAX_FILE_BYTES = 1024 * 1024;

/** A key given twice in one object: JSON.parse would keep the last one without a word. */
const TWICE = 'given twice in one object (only one may be)';

function readJson(file: string): Record<string, unknown> {
  let buf: Buffer | null;
  try {
    buf = readCapped(file, MAX_FILE_BYTES);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError('(file)', file, code === 'ENOENT' ? 'no such file' : `cannot read: ${code ?? String(e)}`);
  }
  if (buf === null) throw new ConfigError('(file)', file, `larger than ${MAX_FILE_BYTES} bytes; not a config file`);
  const text = buf.toString('utf8');
  let v: unknown;
  // A UTF-8 byte order mark, as Notepad writes one (FakeSMTP's users edit on Windows), is no
  // part of the JSON (RFC 8259 §8.1 lets a parser skip it); JSON.parse would refuse the file.
  const json = stripJsonComments(text.replace(/^\uFEFF/, ''));
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new ConfigError('(file)', file, `invalid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError('(file)', file, 'must hold a JSON object');
  if (tooDeep(v)) throw new ConfigError('(file)', file, `nested deeper than ${MAX_DEPTH} levels`);
  const twice = duplicateKey(json);
  if (twice !== null) throw new ConfigError(twice, file, TWICE);
  return v as Record<string, unknown>;
}

/** convict's first message line -> (key, reason). */
function convictProblem(message: string): { key: string; reason: string } {
  const line = message.split('\n')[0] ?? message;
  const undeclared = /^configuration param '([^']+)' not declared in the schema/.exec(line);
  if (undeclared) return { key: undeclared[1]!, reason: 'unknown key' };
  const m = /^([\w.]+): (.*)$/.exec(line);
  if (m) return { key: m[1]!, reason: m[2]! };
  return { key: '(config)', reason: line };
}

/** Checks one leaf value beyond convict: element types and fakemx's ranges. */
function checkLeaf(path: string, leaf: SchemaLeaf, value: unknown): string | null {
  if (leaf.format === Array) {
    if (!Array.isArray(value)) return 'must be an array';
    if (path !== 'listeners' && value.some((x) => typeof x !== 'string')) return 'must be an array of strings';
  }
  if (leaf.format === Object && (value === null || typeof value !== 'object' || Array.isArray(value))) return 'must be an object';
  if (leaf.range && typeof value === 'number') {
    if (!Number.isInteger(value)) return `must be an integer, got ${value}`;
    if (value < leaf.range.min || value > leaf.range.max) {
      if (leaf.format === 'duration') return `must be between ${leaf.range.min} and ${leaf.range.max} ms (${formatDuration(leaf.range.min)} to ${formatDuration(leaf.range.max)}), got ${value} ms (${formatDuration(value)})`;
      return `must be between ${leaf.range.min} and ${leaf.range.max}, got ${value}`;
    }
  }
  return null;
}

/**
 * listeners[].proxyProtocol.timeout as if it were a schema leaf: `listeners` is one Array leaf
 * to convict, so its inner keys never reach convict's formats or fakemx's ranges.
 */
const PROXY_TIMEOUT: SchemaLeaf = { doc: 'Milliseconds the PROXY header may take to arrive.', format: 'duration', default: 5000, range: { min: 100, max: 120_000 } };

/**
 * A duration outside the convict schema, read by the steps a schema key goes through (JSON
 * type, the format's coerce and validate, the range) so its syntax and messages cannot drift
 * from theirs. The value in the leaf's unit, or the reason, naming the value as convict does.
 */
function readDuration(leaf: SchemaLeaf, path: string, v: unknown): { value: number } | { problem: string } {
  const typed = typeProblem(leaf, v);
  if (typed) return { problem: typed };
  const format = DURATION_FORMATS.get(leaf.format);
  if (!format) throw new Error(`readDuration: ${path} has no duration format`);
  const value = format.coerce(v);
  try {
    format.validate(value);
  } catch (e) {
    return { problem: `${(e as Error).message}: value was ${JSON.stringify(value)}` };
  }
  const problem = checkLeaf(path, leaf, value);
  return problem ? { problem } : { value: value as number };
}

function sourceOf(path: string, sources: { env: Map<string, string>; overrides?: Record<string, unknown> }, file: string | null): string {
  if (sources.overrides && get(sources.overrides, path) !== undefined) return 'overrides';
  return sources.env.get(path) ?? file ?? 'defaults';
}

function validatePolicy(p: PolicyConfig, where: string, prefix: string, lists: ListSet): void {
  const at = (k: string) => `${prefix}${k}`;
  for (const [key, read] of [
    ['localDomains', (f: string) => lists.domains(f)],
    ['localMailboxes', (f: string) => lists.mailboxes(f)],
    ['accessList', (f: string) => lists.access(f)],
  ] as const) {
    const f = p[key];
    if (!f) continue;
    try {
      read(f);
    } catch (e) {
      if (e instanceof ListError) throw new ConfigError(at(key), where, e.message);
      throw e;
    }
  }
  // Greylisting's files: trap recipients are mailboxes; the allowList has its own syntax.
  for (const [key, read] of [
    ['trapAddresses', (f: string) => lists.mailboxes(f)],
    ['allowList', (f: string) => lists.greylistAllow(f)],
  ] as const) {
    const f = (p.greylist as Partial<PolicyConfig['greylist']> | undefined)?.[key];
    if (!f) continue;
    try {
      read(f);
    } catch (e) {
      if (e instanceof ListError) throw new ConfigError(at(`greylist.${key}`), where, e.message);
      throw e;
    }
  }
  for (const key of ['rwlProviders', 'rblProviders'] as const) {
    // The DNS checker's own parser, so start-up rejects exactly what it could not use.
    for (const entry of p[key]) {
      try {
        parseProvider(entry);
      } catch (e) {
        throw new ConfigError(at(key), where, (e as Error).message);
      }
    }
  }
}

function validateListeners(raw: unknown[], base: Config, where: string, lists: ListSet): ListenerConfig[] {
  const out: ListenerConfig[] = [];
  raw.forEach((item, i) => {
    const at = `listeners[${i}]`;
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw new ConfigError(at, where, 'must be an object');
    const l = item as Record<string, unknown>;
    for (const k of Object.keys(l)) {
      if (!['address', 'port', 'tls', 'proxyProtocol', 'profile', 'name'].includes(k)) throw new ConfigError(`${at}.${k}`, where, 'unknown key');
    }
    const address = l.address ?? '127.0.0.1';
    if (typeof address !== 'string' || (address !== '' && !isIP(address))) throw new ConfigError(`${at}.address`, where, `must be an IP address, got ${JSON.stringify(address)}`);
    const port = l.port;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${at}.port`, where, `must be a port number 0-65535, got ${JSON.stringify(port)}`);
    const tls = l.tls ?? 'none';
    if (tls !== 'none' && tls !== 'starttls' && tls !== 'implicit') throw new ConfigError(`${at}.tls`, where, `must be none, starttls or implicit, got ${JSON.stringify(tls)}`);
    if (tls !== 'none' && (!base.tls.cert || !base.tls.key)) throw new ConfigError(`${at}.tls`, where, `"${tls}" needs tls.cert and tls.key`);
    if (l.name !== undefined && (typeof l.name !== 'string' || !/^[\w.-]{1,255}$/.test(l.name))) throw new ConfigError(`${at}.name`, where, 'must be a name of letters, digits, "_", "-", "."');
    // The name is the listener in logs, records and metrics, and picks its socket under socket activation.
    const same = l.name ? out.findIndex((o) => o.name === l.name) : -1;
    if (same >= 0) throw new ConfigError(`${at}.name`, where, `"${l.name as string}" is listeners[${same}]'s name already`);
    const lc: ListenerConfig = { address: address || '127.0.0.1', port, tls, ...(l.name ? { name: l.name } : {}) };
    if (l.proxyProtocol !== undefined) {
      const pp = l.proxyProtocol as Record<string, unknown>;
      if (pp === null || typeof pp !== 'object' || !Array.isArray(pp.trusted) || pp.trusted.length === 0) {
        throw new ConfigError(`${at}.proxyProtocol.trusted`, where, 'must be a non-empty array of CIDRs');
      }
      for (const k of Object.keys(pp)) if (k !== 'trusted' && k !== 'timeout') throw new ConfigError(`${at}.proxyProtocol.${k}`, where, 'unknown key');
      for (const c of pp.trusted) {
        try {
          parseCidr(String(c));
        } catch (e) {
          throw new ConfigError(`${at}.proxyProtocol.trusted`, where, (e as Error).message);
        }
      }
      const t = readDuration(PROXY_TIMEOUT, `${at}.proxyProtocol.timeout`, pp.timeout ?? PROXY_TIMEOUT.default);
      if ('problem' in t) throw new ConfigError(`${at}.proxyProtocol.timeout`, where, t.problem);
      const timeout = t.value;
      // The header would have to be read before the TLS handshake; not supported (yet).
      if (tls === 'implicit') throw new ConfigError(`${at}.proxyProtocol`, where, 'not supported on an implicit-TLS listener');
      lc.proxyProtocol = { trusted: pp.trusted.map(String), timeout };
    }
    if (l.profile !== undefined) lc.profile = validateProfile(l.profile, base, `${at}.profile`, where, lists);
    out.push(lc);
  });
  return out;
}

function validateProfile(raw: unknown, base: Config, at: string, where: string, lists: ListSet): Partial<PolicyConfig> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(at, where, 'must be an object');
  const prof = raw as Record<string, unknown>;
  for (const k of Object.keys(prof)) {
    if (!(PROFILE_KEYS as readonly string[]).includes(k)) throw new ConfigError(`${at}.${k}`, where, LEAF_BY_PATH.has(k) ? 'not a per-listener setting' : 'unknown key');
  }
  // Type-check the profile with the same schema: JSON types first (convict would coerce),
  // then convict's formats with the profile loaded alone over the defaults.
  checkTypes(prof, where, `${at}.`);
  const c = convict(convictSchema() as never);
  try {
    c.load(prof);
    c.validate({ allowed: 'strict' });
  } catch (e) {
    const p = convictProblem((e as Error).message);
    throw new ConfigError(`${at}.${p.key}`, where, p.reason);
  }
  // A copy holding what convict made of each value: durations in milliseconds, as at the top level.
  const out = structuredClone(prof) as Partial<PolicyConfig>;
  for (const [path, leaf] of LEAVES) {
    if (get(prof, path) === undefined) continue;
    const v: unknown = c.get(path as never);
    const problem = checkLeaf(path, leaf, v);
    if (problem) throw new ConfigError(`${at}.${path}`, where, problem);
    if (isDurationFormat(leaf.format)) setPath(out, path, v);
  }
  if (typeof out.hostName === 'string' && out.hostName === '') out.hostName = base.hostName;
  else if (typeof out.hostName === 'string') {
    const problem = hostNameProblem(out.hostName);
    if (problem) throw new ConfigError(`${at}.hostName`, where, problem);
  }
  if (typeof out.storePath === 'string') out.storePath = out.storePath === '' ? base.storePath : resolve(out.storePath);
  for (const k of ['localDomains', 'localMailboxes', 'accessList'] as const) if (out[k]) out[k] = resolve(out[k]);
  const effective = { ...base, ...out, tarpit: { ...base.tarpit, ...(out.tarpit ?? {}) } };
  validatePolicy(effective, where, `${at}.`, lists);
  return out;
}

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * Why a configured hostName cannot be the greeting's domain (RFC 5321 §4.1.3 Domain: LDH labels
 * of at most 63 octets, 253 in all; an IDN as its A-label, RFC 5890), or null. An address
 * literal such as [192.0.2.1] is a Domain's alternative there and is taken as well.
 */
export function hostNameProblem(h: string): string | null {
  if (/^\[.*\]$/.test(h)) return isIP(h.slice(1, -1).replace(/^IPv6:/i, '')) ? null : `"${h}" is not an address literal`;
  if (/[^\x00-\x7f]/.test(h)) return `"${h}" must be ASCII: give an internationalised name as its A-label (xn--...)`;
  if (h.length > 253) return `"${h.slice(0, 40)}..." is longer than 253 octets`;
  const bad = h.split('.').find((l) => !LABEL.test(l));
  return bad === undefined ? null : `"${h}" is not a host name (label "${bad}": letters, digits and inner hyphens, 1 to 63 octets)`;
}

export function loadConfig(opts: LoadOptions = {}): LoadedConfig {
  const file = opts.file ? resolve(opts.file) : null;
  const fromFile = file ? readJson(file) : {};
  if (file) checkTypes(fromFile, file);
  // A library caller's object is held to the same types as a file.
  if (opts.overrides) checkTypes(opts.overrides, 'overrides');
  const { layer, source } = envLayer(opts.env ?? process.env);
  const sources = { env: source, ...(opts.overrides ? { overrides: opts.overrides } : {}) };
  const where = (path: string) => sourceOf(path, sources, file);

  const c = convict(convictSchema() as never);
  try {
    c.load(fromFile);
    c.load(layer);
    if (opts.overrides) c.load(opts.overrides);
    c.validate({ allowed: 'strict' });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const p = convictProblem((e as Error).message);
    throw new ConfigError(p.key, where(p.key), p.reason);
  }
  const config = c.getProperties() as Config;
  for (const [path, leaf] of LEAVES) {
    const problem = checkLeaf(path, leaf, get(config, path));
    if (problem) throw new ConfigError(path, where(path), problem);
  }

  // FakeSMTP's blank-means-default values. A hostName given is the greeting's and the Received
  // header's domain: it must be one (the system's own name is taken as the OS reports it).
  if (config.hostName) {
    const problem = hostNameProblem(config.hostName);
    if (problem) throw new ConfigError('hostName', where('hostName'), problem);
  } else config.hostName = hostname() || 'localhost';
  if (/[\s\x00-\x1f\x7f]/.test(config.hostName)) throw new ConfigError('hostName', where('hostName'), 'must not contain spaces or control characters');
  if (!config.listenAddress) config.listenAddress = '127.0.0.1';
  if (!isIP(config.listenAddress)) throw new ConfigError('listenAddress', where('listenAddress'), `must be an IP address, got "${config.listenAddress}"`);
  config.storePath = resolve(config.storePath || './var/corpus');
  // Resolved once, here, like storePath: the daemon, the install salt and `fakemx state` read it as is.
  config.state.path = resolve(config.state.path || './var/state');
  if (config.logPath) config.logPath = resolve(config.logPath);
  for (const k of ['localDomains', 'localMailboxes', 'accessList'] as const) if (config[k]) config[k] = resolve(config[k]);
  if (config.dns.minTtl > config.dns.maxTtl) throw new ConfigError('dns.minTtl', where('dns.minTtl'), `must not exceed dns.maxTtl (${config.dns.maxTtl})`);
  // The console shows the corpus: off loopback only behind a token.
  if (config.http.console && config.http.port === 0) throw new ConfigError('http.port', where('http.port'), 'must be set: http.console is on and is served by the admin HTTP listener');
  if (config.http.console && !config.http.token && !isLoopback(config.http.address)) {
    throw new ConfigError('http.token', where('http.token'), `must be set: http.console is on and http.address ${config.http.address} is not loopback`);
  }
  for (const s of config.dns.servers) {
    try {
      parseServer(s);
    } catch (e) {
      throw new ConfigError('dns.servers', where('dns.servers'), (e as Error).message);
    }
  }
  if (config.webhook.url) {
    let u: URL;
    try {
      u = new URL(config.webhook.url);
    } catch {
      throw new ConfigError('webhook.url', where('webhook.url'), `not a URL: "${config.webhook.url}"`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError('webhook.url', where('webhook.url'), 'must be http: or https:');
  }
  for (const [k, v] of Object.entries(config.webhook.headers)) {
    if (typeof v !== 'string' || /[\r\n]/.test(v)) throw new ConfigError(`webhook.headers.${k}`, where('webhook.headers'), 'must be a single-line string');
  }

  if ((config.tls.cert === '') !== (config.tls.key === '')) {
    throw new ConfigError(config.tls.cert ? 'tls.key' : 'tls.cert', where('tls.cert'), 'tls.cert and tls.key must be set together');
  }
  let tls: EffectiveTls | undefined;
  if (config.tls.cert) {
    for (const k of ['cert', 'key', 'ca'] as const) if (config.tls[k]) config.tls[k] = resolve(config.tls[k]);
    try {
      tls = effectiveTls(config);
    } catch (e) {
      if (e instanceof TlsSettingError) throw new ConfigError(e.key, where(e.key), e.message);
      throw new ConfigError('tls.cert', where('tls.cert'), `cannot use the certificate/key: ${(e as Error).message}`);
    }
  }

  const lists = new ListSet();
  validatePolicy(config, where('localDomains'), '', lists);
  const rawListeners = config.listeners as unknown[];
  config.listeners =
    rawListeners.length > 0
      ? validateListeners(rawListeners, config, where('listeners'), lists)
      : [{ address: config.listenAddress, port: config.listenPort, tls: config.tls.cert ? 'starttls' : 'none' }];
  return { config, file, lists, listeners: effectiveListeners(config), tls, warnings: envWarnings(opts.env ?? process.env) };
}

/** The effective config as JSON, secrets masked (check-config prints this). */
export function redacted(config: Config): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
  for (const [path, leaf] of LEAVES) {
    if (!leaf.sensitive) continue;
    const v = get(copy, path);
    if (v && (typeof v !== 'object' || Object.keys(v).length > 0)) setPath(copy, path, '[redacted]');
  }
  return copy;
}
