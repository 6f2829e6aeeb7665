// The README's config reference must be exactly what `fakemx config-doc` generates from
// the schema, so a new key without documentation (or a stale default) fails the suite.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { configTable, rangeText } from '../../src/config/doc.js';
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

describe('ranges in the reference', () => {
  const leaf = (path: string) => {
    const l = leaves().find(([p]) => p === path);
    if (!l) throw new Error(`no key ${path}`);
    return l[1];
  };
  const cases = [
    { name: 'a millisecond key', path: 'bannerDelay', text: ' (0 ms..5 minutes; a duration)' },
    { name: 'a seconds key says its zero in seconds', path: 'dns.minTtl', text: ' (0 seconds..1 day; a duration)' },
    { name: 'a minutes key says its zero in minutes', path: 'dns.healthCheckInterval', text: ' (0 minutes..' },
    { name: 'a plain number', path: 'maxSessions', text: ' (1..1000000)' },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.path}`, () => {
      expect(rangeText(leaf(c.path))).toContain(c.text);
    });
  }
});
