// Durations in the config: a non-negative integer of milliseconds, or a string with a unit
// ("25 minutes", "4 hours", "36 days", "1500 ms") as convict's `duration` format reads them
// (convict-format-with-moment; moment's lengths: a month is 30 days, a year 365). One parser
// for the file, the environment, listener profiles and proxyProtocol.timeout.

/** Milliseconds per unit. Full words singular or plural, and the short forms people write. */
const UNITS: ReadonlyMap<string, number> = new Map([
  ...['ms', 'msec', 'msecs', 'millisecond', 'milliseconds'].map((u) => [u, 1] as const),
  ...['s', 'sec', 'secs', 'second', 'seconds'].map((u) => [u, 1000] as const),
  ...['m', 'min', 'mins', 'minute', 'minutes'].map((u) => [u, 60_000] as const),
  ...['h', 'hr', 'hrs', 'hour', 'hours'].map((u) => [u, 3_600_000] as const),
  ...['d', 'day', 'days'].map((u) => [u, 86_400_000] as const),
  ...['w', 'week', 'weeks'].map((u) => [u, 604_800_000] as const),
  ...['month', 'months'].map((u) => [u, 2_592_000_000] as const),
  ...['year', 'years'].map((u) => [u, 31_536_000_000] as const),
]);

/** What a duration key accepts, for error messages and the config reference. */
const DURATION_HINT = 'a positive integer (a JSON number) of milliseconds or a string with a unit such as "25 minutes"';

/**
 * Milliseconds of a duration string, or the reason it is not one. Bare digits are milliseconds
 * (convict's reading, used for FAKEMX_* variables); a count is a whole number (convict:
 * `^\d+ (.+)$`). Unlike convict-format-with-moment, an unknown unit is an error, not 0 ms.
 */
export function parseDuration(text: string): { ms: number } | { error: string } {
  const t = text.trim();
  if (t === '') return { error: 'is an empty string' };
  if (/^\d+$/.test(t)) {
    const ms = Number(t);
    return Number.isSafeInteger(ms) ? { ms } : { error: 'is too large' };
  }
  const m = /^([+-]?\d+(?:\.\d+)?)\s*([A-Za-z]+)$/.exec(t);
  if (!m) return { error: 'is not a whole number followed by a unit, such as "25 minutes"' };
  const count = Number(m[1]);
  if (count < 0) return { error: 'is negative' };
  if (!Number.isInteger(count)) return { error: 'needs a whole number (write "90 minutes", not "1.5 hours")' };
  const unit = UNITS.get(m[2]!.toLowerCase());
  if (unit === undefined) return { error: `has an unknown unit "${m[2]}" (ms, seconds, minutes, hours, days, weeks, months, years)` };
  const ms = count * unit;
  return Number.isSafeInteger(ms) ? { ms } : { error: 'is too large' };
}

/** The name of a duration key's unit: "milliseconds", "seconds" or "minutes". */
function durationUnitName(unitMs: number): string {
  return unitMs === 1 ? 'milliseconds' : unitMs === 1000 ? 'seconds' : unitMs === 60_000 ? 'minutes' : `${unitMs} ms units`;
}

/** DURATION_HINT for a key kept in another unit. */
export function durationHint(unitMs: number): string {
  return DURATION_HINT.replace('milliseconds', durationUnitName(unitMs));
}

/**
 * A convict format for durations in `unitMs` units (1: milliseconds; 1000 and 60000 for the
 * few keys kept in seconds or minutes so existing configs keep their meaning). coerce turns a
 * good string into the number; a bad one is left as it is for validate to name the reason,
 * since convict reports validate's errors with the key and coerce's without it.
 */
export function durationFormat(name: string, unitMs: number) {
  const unitName = durationUnitName(unitMs);
  const toUnit = (text: string): number | string => {
    const r = parseDuration(text);
    if ('error' in r) return r.error;
    // Bare digits are already in the key's unit (like a JSON number).
    if (/^\s*\d+\s*$/.test(text)) return r.ms;
    if (r.ms % unitMs !== 0) return `is not a whole number of ${unitName}`;
    return r.ms / unitMs;
  };
  return {
    name,
    coerce: (v: unknown): unknown => {
      if (typeof v !== 'string') return v;
      const n = toUnit(v);
      return typeof n === 'number' ? n : v;
    },
    validate: (x: unknown): void => {
      if (typeof x === 'number' && Number.isInteger(x) && x >= 0) return;
      const hint = durationHint(unitMs);
      if (typeof x === 'string') {
        const n = toUnit(x);
        // convict appends `: value was "..."` (except for ""), so the value is not repeated here.
        throw new Error(`must be a duration, ${hint}; this string ${typeof n === 'string' ? n : 'is not one'}`);
      }
      throw new Error(`must be a duration, ${hint}`);
    },
  };
}

/** The formats the schema uses, by name, with their unit in milliseconds. */
export const DURATION_UNITS = { duration: 1, 'duration-s': 1000, 'duration-min': 60_000 } as const;
type DurationFormat = keyof typeof DURATION_UNITS;

export function isDurationFormat(f: unknown): f is DurationFormat {
  return typeof f === 'string' && Object.hasOwn(DURATION_UNITS, f);
}

/** "25 minutes", "36 days", "1500 ms": the largest unit that divides `ms` evenly (docs, errors). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0 ms';
  for (const [unit, size] of [['year', 31_536_000_000], ['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1000]] as const) {
    if (ms % size === 0) {
      const n = ms / size;
      return `${n} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return `${ms} ms`;
}
