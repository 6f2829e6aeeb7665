// The README's config reference, generated from the schema so the two cannot drift:
// `fakemx config-doc` prints it and test/config/doc.test.ts checks the README holds it.
// Durations show their default and range in readable units beside the number.

import { DURATION_UNITS, formatDuration, isDurationFormat } from './duration.js';
import { envName, leaves, type SchemaLeaf } from './schema.js';

function fmt(v: unknown): string {
  if (v === '') return '`""`';
  return '`' + JSON.stringify(v) + '`';
}

/** A zero in the key's own unit: "0 seconds" for dns.minTtl, not "0 ms" (its numbers are seconds). */
const ZERO: Record<number, string> = { 1: '0 ms', 1000: '0 seconds', 60_000: '0 minutes' };

/** ` (100..3600000)`, or for a duration ` (100 ms..1 hour; a duration)`. */
export function rangeText(leaf: SchemaLeaf): string {
  if (!isDurationFormat(leaf.format)) return leaf.range ? ` (${leaf.range.min}..${leaf.range.max})` : '';
  const unit = DURATION_UNITS[leaf.format];
  const bound = (n: number) => (n === 0 ? (ZERO[unit] ?? '0 ms') : formatDuration(n * unit));
  return leaf.range ? ` (${bound(leaf.range.min)}..${bound(leaf.range.max)}; a duration)` : ' (a duration)';
}

function defaultText(leaf: SchemaLeaf): string {
  if (!isDurationFormat(leaf.format) || typeof leaf.default !== 'number' || leaf.default === 0) return fmt(leaf.default);
  return `${fmt(leaf.default)} (${formatDuration(leaf.default * DURATION_UNITS[leaf.format])})`;
}

export function configTable(): string {
  const rows = leaves().map(([path, leaf]) => {
    const range = rangeText(leaf);
    const doc = leaf.doc.replace(/\|/g, '\\|');
    return `| \`${path}\` | ${defaultText(leaf)} | \`${envName(path)}\` | ${doc}${range} |`;
  });
  return ['| key | default | env override | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
