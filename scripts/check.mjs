// `npm run check` (part of `npm test`): the type check and the lint of src/, test/ and the
// vitest configs on one TypeScript program (tsconfig.eslint.json). tsc's diagnostics come
// first; eslint's type-checked rules (eslint.config.js) then read types from that same
// program instead of building their own: on a fresh clone 26 CPU-s, where `tsc` and `eslint`
// apart took 44.
//
// A rerun checks only what changed: tsc keeps its diagnostics in .cache/check.tsbuildinfo,
// and the files that passed are kept by content hash in .cache/check.json (eslint's own cache
// cannot hash a config that holds a program). Nothing changed: nothing is built. Otherwise
// eslint lints the changed files and the ones tsc re-checked with them because the types they
// import changed, so an unchanged file's type-aware finding is not missed.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { ESLint } from 'eslint';

const CONFIG = 'tsconfig.eslint.json';
const STATE = '.cache/check.json';
/** A change in any of these rechecks every file. */
const GLOBAL = ['eslint.config.js', 'tsconfig.json', CONFIG, 'package-lock.json', 'scripts/check.mjs'];

const hash = (path) => createHash('sha1').update(readFileSync(path)).digest('hex');
const readState = () => {
  try {
    return JSON.parse(readFileSync(STATE, 'utf8'));
  } catch {
    return { global: '', files: {} };
  }
};

/** Folders never holding the project's own TypeScript. */
const SKIP = new Set(['node_modules', 'dist', '.git', '.cache', '.stryker-tmp', 'coverage', 'reports', 'var']);

/** Every .ts/.cts/.mts file under `dir`, as a path relative to the project. */
function tsFiles(dir = '.', out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (!SKIP.has(e.name)) tsFiles(join(dir, e.name), out);
    } else if (/\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(join(dir, e.name));
  }
  return out;
}

/**
 * TypeScript files eslint would lint (not ignored by eslint.config.js) that the program leaves
 * out: neither type-checked nor linted here, so each is an error to fix in tsconfig.eslint.json.
 */
async function outside(files) {
  const inProgram = new Set(files);
  const eslint = new ESLint();
  const out = [];
  for (const f of tsFiles()) if (!inProgram.has(f) && !(await eslint.isPathIgnored(f))) out.push(f);
  return out;
}

const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => process.cwd(), getNewLine: () => '\n' };
const report = (diags) => diags.length > 0 && process.stdout.write(ts.formatDiagnosticsWithColorAndContext(diags, host));

async function main() {
  const read = ts.readConfigFile(CONFIG, ts.sys.readFile);
  if (read.error) return report([read.error]), 1;
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, process.cwd(), undefined, CONFIG);
  if (parsed.errors.length > 0) return report(parsed.errors), 1;
  const files = parsed.fileNames.map((f) => relative(process.cwd(), resolve(f)));
  const missed = await outside(files);
  for (const f of missed) process.stdout.write(`${f}: not in ${CONFIG}'s program: neither type-checked nor linted\n`);
  if (missed.length > 0) return 1;
  const global = createHash('sha1').update(GLOBAL.map(hash).join()).digest('hex');
  const before = readState();
  const same = before.global === global ? before.files : {};
  const now = Object.fromEntries(files.map((f) => [f, hash(f)]));
  const stale = (f) => same[f] !== now[f];
  if (!files.some(stale)) return 0;

  const options = { ...parsed.options, incremental: true, noEmit: true, tsBuildInfoFile: '.cache/check.tsbuildinfo' };
  const builder = ts.createIncrementalProgram({ rootNames: parsed.fileNames, options });
  // The files tsc re-checks are the changed ones and those whose types changed with them (an
  // import's declarations changed): eslint's type-aware rules can only change their verdict there.
  const affected = new Set();
  for (let r; (r = builder.getSemanticDiagnosticsOfNextAffectedFile()); ) {
    if ('fileName' in r.affected) affected.add(relative(process.cwd(), resolve(r.affected.fileName)));
  }
  const diags = [...builder.getConfigFileParsingDiagnostics(), ...builder.getSyntacticDiagnostics(), ...builder.getGlobalDiagnostics(), ...builder.getSemanticDiagnostics()];
  // With noEmit this writes only the build info: the diagnostics of unchanged files next time.
  builder.emit();
  report(diags);
  const bad = await lint(builder.getProgram(), files.filter((f) => stale(f) || affected.has(f)));
  for (const d of diags) if (d.file) bad.add(relative(process.cwd(), resolve(d.file.fileName)));
  const passed = Object.fromEntries(files.filter((f) => !bad.has(f)).map((f) => [f, now[f]]));
  mkdirSync('.cache', { recursive: true });
  writeFileSync(STATE, JSON.stringify({ global, files: passed }));
  return diags.length > 0 || bad.size > 0 ? 1 : 0;
}

/** eslint over `files`, typed by `program`; the files with an error. */
async function lint(program, files) {
  const eslint = new ESLint({ overrideConfig: { languageOptions: { parserOptions: { project: null, programs: [program] } } } });
  const results = await eslint.lintFiles(files);
  const text = (await eslint.loadFormatter('stylish')).format(results);
  if (text) process.stdout.write(text);
  return new Set(results.filter((r) => r.errorCount > 0 || r.fatalErrorCount > 0).map((r) => relative(process.cwd(), r.filePath)));
}

process.exitCode = await main();
