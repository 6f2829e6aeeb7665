// The README's config reference must be exactly what `fakemx config-doc` generates from
// the schema, so a new key without documentation (or a stale default) fails the suite.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { configTable } from '../../src/config/doc.js';
import { leaves } from '../../src/config/schema.js';

describe('README config reference', () => {
  const readme = readFileSync('README.md', 'utf8');
  const m = /<!-- config-table:start -->\n([\s\S]*?)\n<!-- config-table:end -->/.exec(readme);
  it('holds the generated table', () => {
    expect(m?.[1]).toBe(configTable());
  });
  it.each(leaves().map(([p]) => p))('documents %s', (path) => {
    expect(readme).toContain(`| \`${path}\` |`);
  });
});
