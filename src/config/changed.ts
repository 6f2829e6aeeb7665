// `fakemx check-config --changed` and `--get KEY`: the effective config compared with the
// defaults, key by key (as `postconf -n` shows only what main.cf sets), and one value by its
// dotted key. Secrets (schema `sensitive`) are masked in both. Durations are numbers (ms, or
// the key's unit) in both; --changed adds the readable form as a trailing `# 25 minutes`.

import { loadConfig, redacted } from './load.js';
import { DURATION_UNITS, formatDuration, isDurationFormat } from './duration.js';
import { leaves, type Config } from './schema.js';

const LEAF_PATHS = leaves().map(([p]) => p);
/** Duration keys and their unit in ms (most are ms; dns.minTtl/maxTtl seconds, healthCheckInterval minutes). */
const DURATION_UNIT = new Map(leaves().flatMap(([p, l]) => (isDurationFormat(l.format) ? [[p, DURATION_UNITS[l.format]] as const] : [])));

function get(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** The config every key at its default, loaded as `config` was (paths resolved against the same directory). */
export function defaultConfig(): Config {
  return loadConfig({ env: {} }).config;
}

/** The listener list a config without `listeners` gets: one from listenAddress/listenPort. */
function derivedListeners(c: Config): unknown {
  return [{ address: c.listenAddress, port: c.listenPort, tls: c.tls.cert ? 'starttls' : 'none' }];
}

/** [dotted key, value] for every leaf whose value differs from its default, in schema order. */
export function changedValues(config: Config, defaults: Config = defaultConfig()): [string, unknown][] {
  const shown = redacted(config);
  const out: [string, unknown][] = [];
  for (const path of LEAF_PATHS) {
    const v = get(config, path);
    if (path === 'listeners' && JSON.stringify(v) === JSON.stringify(derivedListeners(config))) continue;
    if (JSON.stringify(v) !== JSON.stringify(get(defaults, path))) out.push([path, get(shown, path)]);
  }
  return out;
}

/**
 * `key = value` lines (values as JSON), one per changed key; a duration is followed by its
 * readable form (`greylist.passtime = 600000  # 10 minutes`), so a reader need not count zeros.
 * A script takes the JSON before `  #`.
 */
export function changedText(config: Config, defaults?: Config): string {
  return changedValues(config, defaults)
    .map(([k, v]) => {
      const unit = DURATION_UNIT.get(k);
      const note = unit !== undefined && typeof v === 'number' && v > 0 ? `  # ${formatDuration(v * unit)}` : '';
      return `${k} = ${JSON.stringify(v)}${note}`;
    })
    .join('\n');
}

/** A value by dotted key (a leaf or a group such as `dns`), secrets masked; undefined for an unknown key. */
export function configValue(config: Config, key: string): unknown {
  if (!LEAF_PATHS.some((p) => p === key || p.startsWith(key + '.'))) return undefined;
  return get(redacted(config), key);
}

/** How --get prints a value: a string as it is (for shell use), anything else as JSON. */
export function valueText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v, null, typeof v === 'object' && v !== null ? 2 : undefined);
}
