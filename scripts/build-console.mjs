// Part of `npm run build`: the console's browser assets into dist/console/assets/. Our own
// console.js/console.css are copied from src/console/assets/; the chart library comes from
// its npm package (uplot, a devDependency), so nothing is fetched from a CDN at run time and
// the built package carries every byte a page loads. Prints each file's gzipped size and
// fails if a page would weigh 200 KB gzipped or more.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/console/assets');
const require = createRequire(import.meta.url);
mkdirSync(out, { recursive: true });
const files = {
  'console.js': join(root, 'src/console/assets/console.js'),
  'console.css': join(root, 'src/console/assets/console.css'),
  'uPlot.iife.min.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  'uPlot.min.css': require.resolve('uplot/dist/uPlot.min.css'),
};
let total = 0;
for (const [name, src] of Object.entries(files)) {
  copyFileSync(src, join(out, name));
  total += gzipSync(readFileSync(src), { level: 9 }).length;
}
const LIMIT = 200 * 1024;
// The heaviest page (Live) loads every asset plus its HTML shell (a few KB).
if (total >= LIMIT) {
  console.error(`build-console: assets weigh ${total} octets gzipped, over the ${LIMIT} page budget`);
  process.exit(1);
}
console.error(`build-console: ${Object.keys(files).length} assets, ${total} octets gzipped`);
