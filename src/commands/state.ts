// `fakemx state` (spamd's spamdb for fakemx): list, grep, count and export the state store's
// entries, and add or delete allow/deny/trap entries, against the store the config names
// (local LMDB file or Redis), with the daemon running. Exit: 0 ok, 1 nothing matched (del of a
// missing entry), 64 usage, 69 store unreachable, 78 config error.

import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { addEntry, addProblem, compileFilter, ENTRY_KINDS, EntryProblem, entryView, keysFor, targetOf, TTL_RANGE, type AddWhat, type StateFilter } from '../state/entries.js';
import type { StateStore } from '../state/store.js';
import { kindOf, type StateEntry } from '../state/types.js';
import { escapeText, safeJson } from '../util/escape.js';
import { EX_UNAVAILABLE, EX_USAGE } from '../util/sysexits.js';

function duration(ms: number): string {
  if (ms <= 0) return '0s';
  const s = Math.round(ms / 1000);
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return [d ? `${d}d` : '', h ? `${h}h` : '', m ? `${m}m` : '', !d && !h && sec ? `${sec}s` : ''].join('') || '0s';
}

/**
 * One entry as a JSON line. A grey entry's key and value hold the client's sender and recipient
 * as sent (RFC 6531 lets a quoted local part carry C1 and bidi controls, which JSON.stringify
 * leaves raw): safeJson escapes them, and the line still parses to the same entry.
 */
export function jsonLine(e: StateEntry, now: number): string {
  return safeJson(entryView(e, now));
}

export function textLine(e: StateEntry, now: number): string {
  return `${escapeText(e.key)}  expires ${new Date(e.expiresAt).toISOString()} (in ${duration(e.expiresAt - now)})  ${escapeText(JSON.stringify(e.value))}`;
}

export type Out = (line: string) => void;

/**
 * Opens the store a config names; the Redis one must answer within its connect timeout. A local
 * store that does not exist is made only by `add` (seeding entries before the first start): a
 * command that reads would otherwise make an empty one and report nothing, silently, when it is
 * run from another directory than the daemon with a relative state.path.
 */
export async function openForCli(config: Config, create = false): Promise<StateStore> {
  // Imported here, not above: program.ts registers `state` (this module) for every command.
  const [{ openStateStore }, { RedisBackend }] = await Promise.all([import('../state/store.js'), import('../state/redis.js')]);
  const cfg = config.state;
  // state.path as loaded: absolute, a relative one resolved against the current directory.
  if (cfg.backend === 'local' && !create && !existsSync(join(cfg.path, 'state.mdb'))) {
    throw new Error(`no state store at ${join(cfg.path, 'state.mdb')} (state.path; a relative one is read from the current directory); the daemon makes it when it starts`);
  }
  const store = openStateStore({ ...cfg, timeout: Math.max(cfg.timeout, 2000) }, { sweepInterval: 0 });
  if (store.backend instanceof RedisBackend) {
    const b = store.backend;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([b.whenConnected(), new Promise((r) => (timer = setTimeout(r, cfg.redis.connectTimeout + 500)))]);
    clearTimeout(timer);
    if (!b.connected) {
      await store.close();
      throw new Error(`cannot reach Redis at ${redactUrl(cfg.redis.url)}`);
    }
  }
  return store;
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

export async function listCommand(store: StateStore, f: StateFilter, json: boolean, out: Out): Promise<number> {
  const now = Date.now();
  let n = 0;
  const match = compileFilter(f);
  for await (const e of store.scan(f.kind ? `${f.kind}:` : '')) {
    if (!match(e)) continue;
    n++;
    out(json ? jsonLine(e, now) : textLine(e, now));
  }
  return n > 0 ? 0 : 1;
}

export async function countsCommand(store: StateStore, f: StateFilter, json: boolean, out: Out): Promise<number> {
  const now = Date.now();
  const counts = new Map<string, { n: number; minTtl: number; maxTtl: number; bytes: number }>();
  for (const k of ENTRY_KINDS) counts.set(k, { n: 0, minTtl: Infinity, maxTtl: 0, bytes: 0 });
  const match = compileFilter(f);
  for await (const e of store.scan(f.kind ? `${f.kind}:` : '')) {
    if (!match(e)) continue;
    const c = counts.get(kindOf(e.key) ?? 'other') ?? { n: 0, minTtl: Infinity, maxTtl: 0, bytes: 0 };
    counts.set(kindOf(e.key) ?? 'other', c);
    const ttl = e.expiresAt - now;
    c.n++;
    c.minTtl = Math.min(c.minTtl, ttl);
    c.maxTtl = Math.max(c.maxTtl, ttl);
    c.bytes += e.key.length + JSON.stringify({ v: e.value, e: e.expiresAt }).length;
  }
  const rows = [...counts].filter(([k]) => !f.kind || k === f.kind);
  if (json) {
    out(JSON.stringify({ backend: store.kind, kinds: Object.fromEntries(rows.map(([k, c]) => [k, { count: c.n, minTtlMs: c.n ? c.minTtl : null, maxTtlMs: c.n ? c.maxTtl : null, bytes: c.bytes }])) }));
    return 0;
  }
  out(`backend ${store.kind}`);
  for (const [k, c] of rows) {
    out(`${k.padEnd(6)} ${String(c.n).padStart(8)}${c.n ? `  ttl ${duration(c.minTtl)}..${duration(c.maxTtl)}  ~${c.bytes} bytes (keys + values)` : ''}`);
  }
  return 0;
}

export async function addCommand(store: StateStore, what: AddWhat, target: string, ttl: number | undefined, config: Config, out: Out, err: Out = out): Promise<number> {
  let added: Awaited<ReturnType<typeof addEntry>>;
  try {
    added = await addEntry(store, what, target, ttl, config);
  } catch (e) {
    if (!(e instanceof EntryProblem)) throw e;
    err(`fakemx: error: ${escapeText(e.message)}`);
    return EX_USAGE;
  }
  const { keys: ks, ttlMs, widened } = added;
  const prefix = `/${target.includes(':') ? config.greylist.ipv6Prefix : config.greylist.ipv4Prefix}`;
  if (ks.length === 1) out(`added ${ks[0]} for ${duration(ttlMs)}${widened ? ` (greylisting allows whole ${prefix} networks; ${escapeText(target)} is inside it)` : ''}`);
  else out(`added ${ks.length} entries ${ks[0]} .. ${ks[ks.length - 1]} for ${duration(ttlMs)} (${escapeText(target)} as the ${prefix} networks greylisting looks up)`);
  return 0;
}

/** Deletes each key (an allow for a wide network is several); exit 1 when none was there. */
export async function delCommand(store: StateStore, keyList: readonly string[], out: Out): Promise<number> {
  let had = 0;
  for (const key of keyList) {
    const gone = await store.del(key);
    if (gone) had++;
    if (keyList.length === 1) out(gone ? `deleted ${escapeText(key)}` : `no entry ${escapeText(key)}`);
  }
  if (keyList.length > 1) out(`deleted ${had} of ${keyList.length} entries ${escapeText(keyList[0]!)} .. ${escapeText(keyList[keyList.length - 1]!)}`);
  return had > 0 ? 0 : 1;
}

/** What `fakemx state` needs from program.ts. */
export interface CliHelpers {
  config(file: string | undefined): Promise<Config>;
  configOption(): import('commander').Option;
  out: Out;
  err: Out;
  /** Each subcommand reports usage errors as 64 like the rest of the CLI. */
  usage(cmd: Command): void;
  /** The command's exit code. */
  exit(code: number): void;
}

function target(value: string): string {
  const v = targetOf(value);
  if (v === null) throw new InvalidArgumentError(`"${escapeText(value)}" is not an IP address or CIDR network.`);
  return v;
}

function ms(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= TTL_RANGE.min && n <= TTL_RANGE.max)) throw new InvalidArgumentError(`must be milliseconds (a whole number) ${TTL_RANGE.text}.`);
  return n;
}

async function withStore(h: CliHelpers, file: string | undefined, fn: (store: StateStore, config: Config) => Promise<number>, create = false): Promise<void> {
  const config = await h.config(file);
  let store: StateStore;
  try {
    store = await openForCli(config, create);
  } catch (e) {
    h.err(`fakemx: error: state store: ${escapeText(e instanceof Error ? e.message : String(e))}`);
    h.exit(EX_UNAVAILABLE);
    return;
  }
  try {
    h.exit(await fn(store, config));
  } catch (e) {
    h.err(`fakemx: error: state store: ${escapeText(e instanceof Error ? e.message : String(e))}`);
    h.exit(EX_UNAVAILABLE);
  } finally {
    await store.close();
  }
}

type FilterOpts = { config?: string; kind?: string; ip?: string; net?: string; grep?: string; json?: boolean };
const filterOf = (o: FilterOpts): StateFilter => ({ ...(o.kind ? { kind: o.kind } : {}), ...(o.ip ? { ip: o.ip } : {}), ...(o.net ? { net: o.net } : {}), ...(o.grep ? { grep: o.grep } : {}) });

function kindArg(value: string): string {
  if (!(ENTRY_KINDS as readonly string[]).includes(value)) throw new InvalidArgumentError(`must be one of ${ENTRY_KINDS.join(', ')}.`);
  return value;
}

/** Registers `fakemx state <list|counts|export|add|del>`. */
export function addStateCommand(program: Command, h: CliHelpers): void {
  const state = program.command('state').description('inspect and edit the state store (client cache, greylisting, greytraps), local or Redis, with the daemon running');
  const withFilters = (c: Command) =>
    c
      .addOption(h.configOption())
      .option('--kind <kind>', 'grey, white, trap, pass or fail', kindArg)
      .option('--ip <address>', 'entries about this address (and the networks holding it)', target)
      .option('--net <cidr>', 'entries about addresses or networks inside this network', target)
      .option('--grep <text>', 'entries whose key or value contains this text');
  withFilters(state.command('list').description('list entries, one a line (exit 1 when none matches)'))
    .option('--json', 'JSON lines instead of text')
    .action(async (o: FilterOpts) => withStore(h, o.config, (st) => listCommand(st, filterOf(o), o.json === true, h.out)));
  withFilters(state.command('export').description('every matching entry as JSON lines (key, kind, subject, expiresAt, ttlMs, value)'))
    .action(async (o: FilterOpts) => withStore(h, o.config, async (st) => (await listCommand(st, filterOf(o), true, h.out), 0)));
  withFilters(state.command('counts').description('entries per kind with their remaining TTLs and approximate size'))
    .option('--json', 'one JSON object')
    .action(async (o: FilterOpts) => withStore(h, o.config, (st) => countsCommand(st, filterOf(o), o.json === true, h.out)));
  state
    .command('add')
    .description('allow: allowlist a client network (skips greylisting); deny: remember the client as failed (cache.failTtl; dropped at connect where cache.enabled); trap: trap the client')
    .argument('<what>', 'allow, deny or trap', (v: string) => {
      if (v !== 'allow' && v !== 'deny' && v !== 'trap') throw new InvalidArgumentError('must be allow, deny or trap.');
      return v;
    })
    .argument('<ip-or-cidr>', 'client address (allow: or network)', target)
    .addOption(h.configOption())
    .option('--ttl <ms>', 'lifetime in milliseconds, 1000 to 400 days (default: greylist.whiteExpiry, cache.failTtl, greylist.trapExpiry)', ms)
    .action(async (what: AddWhat, t: string, o: { config?: string; ttl?: number }, cmd: Command) => {
      // A usage error like commander's own: the reason, then the help (exit 64).
      const problem = addProblem(what, t);
      if (problem) cmd.error(`error: ${problem}`, { exitCode: EX_USAGE, code: 'fakemx.badTarget' });
      await withStore(h, o.config, (st, config) => addCommand(st, what, t, o.ttl, config, h.out, h.err), true);
    });
  state
    .command('del')
    .description('delete an allow/deny/trap entry, or any entry by its key (exit 1 when there was none)')
    .argument('<what>', 'allow, deny, trap or key')
    .argument('<target>', 'address, network, or (key) the full key as list prints it')
    .addOption(h.configOption())
    .action(async (what: string, t: string, o: { config?: string }, cmd: Command) => {
      if (what !== 'key' && what !== 'allow' && what !== 'deny' && what !== 'trap') cmd.error('error: <what> must be allow, deny, trap or key', { exitCode: EX_USAGE, code: 'fakemx.badWhat' });
      // The same reading of an address or network as `add` (trimmed, checked once).
      const at = what === 'key' ? t : targetOf(t);
      if (at === null) cmd.error(`error: "${escapeText(t)}" is not an IP address or CIDR network`, { exitCode: EX_USAGE, code: 'fakemx.badTarget' });
      await withStore(h, o.config, async (st, config) => {
        try {
          return await delCommand(st, what === 'key' ? [at] : keysFor(what, at, config), h.out);
        } catch (e) {
          if (!(e instanceof EntryProblem)) throw e;
          h.err(`fakemx: error: ${escapeText(e.message)}`);
          return EX_USAGE;
        }
      });
    });
  h.usage(state);
  for (const c of state.commands) h.usage(c);
}
