// The README's config reference, generated from the schema so the two cannot drift:
// `fakemx config-doc` prints it and test/config/doc.test.ts checks the README holds it.

import { envName, leaves } from './schema.js';

function fmt(v: unknown): string {
  if (v === '') return '`""`';
  return '`' + JSON.stringify(v) + '`';
}

export function configTable(): string {
  const rows = leaves().map(([path, leaf]) => {
    const range = leaf.range ? ` (${leaf.range.min}..${leaf.range.max})` : '';
    const doc = leaf.doc.replace(/\|/g, '\\|');
    return `| \`${path}\` | ${fmt(leaf.default)} | \`${envName(path)}\` | ${doc}${range} |`;
  });
  return ['| key | default | env override | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
