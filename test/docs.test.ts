// What the README quotes from the code, word for word: the console's Content-Security-Policy
// and the metric names under /metrics (what a dashboard or a proxy rule is written against).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { CSP } from '../src/console/routes.js';
import { Metrics } from '../src/metrics.js';

const readme = readFileSync('README.md', 'utf8');
/** The README as one line: quotes may wrap. */
const flat = readme.replace(/\s+/g, ' ');

describe('README quotes the code', () => {
  it('gives the console CSP as sent', () => {
    expect(/`Content-Security-Policy: ([^`]*)`/.exec(flat)?.[1]).toBe(CSP);
  });

  it('lists under GET /metrics each fakemx_ metric the daemon registers, and no other', async () => {
    const item = /^- `GET \/metrics`:[\s\S]*?(?=^- |^\S)/m.exec(readme)?.[0] ?? '';
    const listed = [...new Set([...item.matchAll(/`(fakemx_[a-z_]+)/g)].map((m) => m[1]))].sort();
    const registered = (await new Metrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name).sort();
    expect(listed).toEqual(registered);
  });
});
