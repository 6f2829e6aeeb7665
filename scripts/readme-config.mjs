// Regenerates the README's config reference from the built schema: `npm run docs`.
import { readFileSync, writeFileSync } from 'node:fs';
import { configTable } from '../dist/config/doc.js';
const readme = readFileSync('README.md', 'utf8');
const next = readme.replace(/(<!-- config-table:start -->\n)[\s\S]*?(\n?<!-- config-table:end -->)/, (_m, a) => `${a}${configTable()}\n<!-- config-table:end -->`);
writeFileSync('README.md', next);
